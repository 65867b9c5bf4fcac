// Internal interface between the batch dispatcher (src/core/spectrum_batch.cpp)
// and the fast kernel's instantiations (spectrum_batch_kernel.hpp compiled for one
// lane, AVX2 and AVX-512). Plain data only: this header is included by translation
// units compiled for different instruction sets.
#pragma once

namespace mdnstab::batch_kernel {

// Column indices inside KernelArgs::out: per block (par at 0, perp at kPerBlock),
// then frozen_rho. kL1Re .. kHalfLife are a block's metrics but the peak.
enum : int {
  kL1Re, kL1Im, kL2Re, kL2Im, kRho, kComplex, kNegative, kDamping, kNatural, kHalfLife, kPeak, kPerBlock
};
constexpr int kFrozenRho = 2 * kPerBlock;
constexpr int kColumns = 2 * kPerBlock + 1;

// One call over points [begin, end), end - begin a multiple of the lane width.
struct KernelArgs {
  const double *alpha, *beta, *mu, *eta, *log_alpha, *log_mu;  // [n]
  bool p_one;        // p-scale "one": rho_p = 1
  bool peak;         // compute the transient peak
  bool dynamics;     // compute damping ratio, natural frequency, half-life (else NaN)
  double log_half;   // std::log(0.5), as the reference computes it
  double* out[kColumns];  // each [n]
  long* patch;       // points left to the reference, appended; room for n
  long n_patch;
  // Accumulated over the points computed (patched points excluded; the caller
  // recounts those): A_par complex, either block with a negative eigenvalue, and
  // the largest frozen_rho.
  long n_complex, n_negative;
  double max_frozen_rho;
};

void run_scalar(KernelArgs& a, long begin, long end);
void run_avx2(KernelArgs& a, long begin, long end);    // needs AVX2 + FMA and libmvec
void run_avx512(KernelArgs& a, long begin, long end);  // needs AVX-512F and libmvec

}  // namespace mdnstab::batch_kernel
