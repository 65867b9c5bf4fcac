// The GPU side of `validate` and `lyapunov --device gpu`: kernels/many_config.hpp
// behind the library's ValidateBackend. Only this file and the kernels know about
// the GPU build; without CUDA (or without a device) gpu_backend says why.
// Tested through tests/cli/test_cli_validate.cpp (no device) and the gpu tests.
#pragma once

#include <memory>
#include <string>

#include "mdnstab/validate.hpp"

namespace mdnstab::cli {

// The backend on every visible GPU (at most max_devices, 0: all), or null with the
// reason in `why`.
std::unique_ptr<ValidateBackend> gpu_backend(std::string* why, int max_devices = 0);

}  // namespace mdnstab::cli
