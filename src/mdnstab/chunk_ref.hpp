// Chunkwise forward passes of the MDN recurrence (DESIGN.md sections 2 and 5),
// the references for every chunkwise kernel (STYLE.md 2.2):
//  - chunk_ref: a faithful CPU emulation of the paper's geometric-reordering
//    algorithm, operation by operation as the reference Triton kernels order it,
//    in double, float (optionally with tf32 matrix-product operands) or bf16;
//  - chunk_plain_ref: the same chunk decomposition in exact algebra (only decay
//    ratios <= 1 are ever formed), double only.
// Same argument layout as recurrent_ref. Tested in tests/test_chunk_ref.cpp.
#pragma once

#include <span>

#include "mdnstab/bf16.hpp"
#include "mdnstab/precision.hpp"
#include "mdnstab/recurrent_ref.hpp"
#include "mdnstab/status.hpp"

namespace mdnstab {

inline constexpr int kMaxChunk = 4096;  // C^2 work space per chunk

struct ChunkOptions {
  int chunk = 64;  // C, tokens per chunk; a sequence's last chunk may be shorter
  // The weights are c_j = (beta_j + beta_eps) * prod(mu) / prod(alpha); the reference
  // kernel takes log(beta + 1e-6). 0 keeps the algebra exact (beta = 0 allowed).
  double beta_eps = 0.0;
  bool tf32_products = false;  // T = float only: round matrix-product operands to tf32
};

// Checks shapes, pointers and the options; names the offending field.
template <class T>
Status check(const RecurrentArgs<T>& a, const ChunkOptions& c);

// The reordered chunkwise forward pass, T = double, float or Bf16. Per chunk:
// cumulative sums of log_alpha and log(mu/alpha); log C_t by a log-cum-sum-exp of
// log c_j = log beta_j + sum_{i<=j} (log mu_i - log alpha_i); decay masks
// Gamma_{t,j} = exp(logA_t + log C_t - logMu_j) * (1 - exp(log C_{j-1} - log C_t));
// the unit-lower-triangular system (I + L) with L_{t,j} = Gamma_{t-1,j} p_t.k~_j
// inverted by forward substitution; pseudo-values u - y S + z M; output and the
// chunk-to-chunk passing of S and M. Non-finite values propagate (that is what is
// being measured); inputs are not validated beyond shapes.
template <class T>
Status chunk_ref(const RecurrentArgs<T>& a, const ChunkOptions& c);

// Exact-algebra chunkwise forward pass in double: Gamma_{t,j} = sum_{i=j..t}
// (A_t/A_i) beta_i (Mu_i/Mu_j) by a recursion over products of gates <= 1, and a
// direct forward-substitution solve for the pseudo-values. Agrees with
// recurrent_ref to rounding for any gates and chunk size.
Status chunk_plain_ref(const RecurrentArgs<double>& a, int chunk);

// chunk_ref in precision p on double data: every input array (and s0, m0) is
// rounded to p's storage type (a copy), outputs are converted back to double.
// c.tf32_products is set from p. Run recurrent_ref on inputs rounded with
// round_to(p, ...) to measure the algorithm's error alone.
Status chunk_ref(Precision p, const RecurrentArgs<double>& a, ChunkOptions c);

// Rounds x in place to the values p stores (float for fp32 and tf32, bf16 for bf16).
void round_to(Precision p, std::span<double> x);

}  // namespace mdnstab
