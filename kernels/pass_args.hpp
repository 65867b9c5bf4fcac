// The inputs, outputs and options every MDN forward pass takes from RecurrentParams
// (kernels/mdn_kernels.hpp), copied into a kernel's own argument struct, whose fields
// carry the same names (recurrent_kernel.cuh's KernelArgs, chunk_kernel.cuh's ChunkArgs).
// Host code only; no CUDA type.
#pragma once

#include <cmath>

#include "mdn_kernels.hpp"

namespace mdnstab::kernels {

template <class Args>
void copy_pass_args(Args& a, const RecurrentParams& p) {
  a.H = static_cast<int>(p.heads);
  a.DK = static_cast<int>(p.dk);
  a.DV = static_cast<int>(p.dv);
  a.T = p.steps;
  a.q = p.q;
  a.k = p.k;
  a.v = p.v;
  a.log_alpha = p.log_alpha;
  a.log_mu = p.log_mu;
  a.beta = p.beta;
  a.eta = p.eta;
  a.p_alpha = p.p_scale == PScale::kAlpha;
  a.l2norm = p.l2norm_qk;
  a.out_bf16 = p.out_dtype == DType::kBF16;
  a.scale = std::isnan(p.scale) ? 1.f / std::sqrt(static_cast<float>(p.dk)) : p.scale;
  a.s0 = p.s0;
  a.m0 = p.m0;
  a.s_final = p.s_final;
  a.m_final = p.m_final;
  a.o = p.o;
}

}  // namespace mdnstab::kernels
