// Frozen spectra of many gate sets at once, as columns (structure of arrays):
// the sweep engine's hot path. analyze_frozen_batch_ref is analyze_frozen()
// point by point (the portable reference); analyze_frozen_batch is the fast path
// (AVX-512 / AVX2 with glibc's libmvec, or the same algorithm one lane at a time).
// Tested against the reference and brute force in tests/test_spectrum_batch.cpp.
#pragma once

#include <string_view>
#include <vector>

#include "mdnstab/gates.hpp"
#include "mdnstab/spectrum.hpp"

namespace mdnstab {

// The vector width the fast path runs at. kNone: the fast algorithm one lane at a
// time (any CPU); kAvx2: 4 lanes (AVX2 + FMA); kAvx512: 8 lanes (AVX-512F).
enum class SimdLevel { kNone, kAvx2, kAvx512 };
std::string_view to_string(SimdLevel s);
// Whether this CPU and this build can run a level (kNone always can).
bool simd_supported(SimdLevel s);
// The widest supported level.
SimdLevel best_simd_level();

// n gate sets, each array [n]; log_alpha and log_mu exactly as Gates holds them.
struct GateBatch {
  long n = 0;
  const double *alpha = nullptr, *beta = nullptr, *mu = nullptr, *eta = nullptr;
  const double *log_alpha = nullptr, *log_mu = nullptr;
  PScale p_scale = PScale::kAlpha;
  Gates at(long i) const;
};

// One block's spectra as columns, each [capacity]. Flags are 1.0 / 0.0; NaN in
// damping_ratio and natural_frequency means "none" (BlockSpectrum's empty optional).
struct BlockColumns {
  double *l1_re, *l1_im, *l2_re, *l2_im;
  double *rho;
  double *complex_pair;  // 1: a complex-conjugate pair (Regime::kComplex)
  double *negative;      // 1: a real eigenvalue < 0
  double *damping_ratio, *natural_frequency, *half_life;
  double *transient_peak;  // NaN when not asked for
};

class SpectrumBatch {
 public:
  explicit SpectrumBatch(long capacity = 0);
  SpectrumBatch(const SpectrumBatch&) = delete;
  SpectrumBatch& operator=(const SpectrumBatch&) = delete;
  long capacity() const { return capacity_; }
  BlockColumns par{}, perp{};
  double* frozen_rho = nullptr;  // [capacity]
  // Summary of the last analysis: points whose A_par has a complex pair, points
  // with a negative eigenvalue in either block, the largest frozen_rho.
  long n_complex = 0, n_negative = 0;
  double max_frozen_rho = 0;
  // Point i as the point-wise structure (for metrics that take one point).
  FrozenSpectrum at(long i) const;
  void set(long i, const FrozenSpectrum& f);

 private:
  long capacity_ = 0;
  std::vector<double> store_;  // [kColumns, capacity]
};

// The portable reference: analyze_frozen() for each point. out.capacity() >= g.n.
void analyze_frozen_batch_ref(const GateBatch& g, const SpectrumOptions& opt, SpectrumBatch& out);

// The fast path at `level` (must be supported). Agrees with the reference: the
// eigenvalues, spectral radius of a real pair, regime and negative flags bit for bit;
// what goes through libmvec's log, exp, atan2, hypot (< 4 ulp) to ~1e-14 relative;
// the transient peak is the same exact maximum over integer powers, found with
// tighter rigorous stopping bounds. Returns how many points were handed to the
// reference (gates at the edges of the closed ranges, such as alpha = mu = 0).
long analyze_frozen_batch(const GateBatch& g, const SpectrumOptions& opt, SimdLevel level, SpectrumBatch& out);

}  // namespace mdnstab
