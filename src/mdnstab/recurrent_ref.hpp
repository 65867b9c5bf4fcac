// The exact CPU reference of the MDN recurrence (DESIGN.md section 2), the
// ground truth for every GPU kernel. Templated on float and double; all
// arithmetic in T. Tested in tests/test_recurrent_ref.cpp.
#pragma once

#include <cmath>
#include <cstdint>

#include "mdnstab/gates.hpp"
#include "mdnstab/status.hpp"

namespace mdnstab {

// Probes of a run, the same quantities as the GPU kernel's (kernels/mdn_kernels.hpp):
// steps count t = 1..len per sequence; probe p records after step
// min((p+1)*interval, len) the Frobenius norms of S and M and the largest |o| over
// steps (p*interval, (p+1)*interval]; slots past a sequence's end are NaN.
// first_nonfinite is the first step whose w, M, S or o holds a NaN or inf, -1 if none.
// Tested in tests/test_recurrent_probes.cpp.
struct RecurrentProbes {
  int64_t interval = 0;                // N >= 1
  int64_t count = 0;                   // P slots per (sequence, head), >= ceil(longest / N)
  double* norm_s = nullptr;            // [B or N,H,P]
  double* norm_m = nullptr;            // [B or N,H,P]
  double* max_abs_o = nullptr;         // [B or N,H,P]
  int64_t* first_nonfinite = nullptr;  // [B or N,H]
};

template <class T>
struct RecurrentArgs {
  int batch = 1, heads = 1, steps = 0, dk = 0, dv = 0;
  const T* q = nullptr;          // [B,T,H,DK]
  const T* k = nullptr;          // [B,T,H,DK]
  const T* v = nullptr;          // [B,T,H,DV]
  const T* log_alpha = nullptr;  // [B,T,H]
  const T* log_mu = nullptr;     // [B,T,H]
  const T* beta = nullptr;       // [B,T,H] or [B,T,H,DV] when beta_per_channel
  const T* eta = nullptr;        // [B,T,H] or [B,T,H,DV] when eta_per_channel
  bool beta_per_channel = false;
  bool eta_per_channel = false;
  bool l2norm_qk = true;  // k^ = k / (|k| + 1e-6), likewise q
  double scale = NAN;     // NaN: 1/sqrt(DK)
  PScale p_scale = PScale::kAlpha;
  // Packed variable-length sequences: batch must be 1 and sequence n spans
  // tokens [cu_seqlens[n], cu_seqlens[n+1]); states are then per sequence.
  const int64_t* cu_seqlens = nullptr;  // [N+1]
  int num_seqs = 0;
  const T* s0 = nullptr;  // [B or N,H,DK,DV], zero when null
  const T* m0 = nullptr;  // [B or N,H,DK,DV]
  T* o = nullptr;         // [B,T,H,DV]
  T* s_final = nullptr;   // [B or N,H,DK,DV], optional
  T* m_final = nullptr;   // [B or N,H,DK,DV], optional
  RecurrentProbes* probes = nullptr;  // optional
};

// Checks shapes and pointers; names the offending field.
template <class T>
Status check(const RecurrentArgs<T>& a);

template <class T>
Status recurrent_ref(const RecurrentArgs<T>& a);

}  // namespace mdnstab
