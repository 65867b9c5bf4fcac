// CPU references of the many-configurations mode and of the long random-input runs
// of the full recurrence (kernels/many_config.hpp): the same counter generator
// (kernels/keygen.hpp), so any GPU head or sequence can be replayed here. Double
// precision for the many-config heads, fp32 recurrent_ref for the long runs (whose
// first non-finite step is an fp32 property). Tested in tests/test_many_config_ref.cpp
// (closed forms) and tests/gpu/test_gpu_many_config.cpp (GPU replays).
#pragma once

#include "many_config.hpp"
#include "mdnstab/status.hpp"

namespace mdnstab {

// Fills p.log_norm and p.flags like kernels::run_many_config, on `threads` threads
// (0: all cores); results do not depend on the thread count.
Status many_config_ref(const kernels::ManyConfigParams& p, int threads = 0);

// Fills p.first_nonfinite, p.max_norm and p.final_norm like kernels::run_long_recurrent.
Status long_recurrent_ref(const kernels::LongRunParams& p, int threads = 0);

// kernels::Status -> Status, keeping the message.
Status from_kernel_status(kernels::Status s, const std::string& why);

}  // namespace mdnstab
