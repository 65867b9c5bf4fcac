// Batch frozen spectra: the column storage, the portable reference (analyze_frozen
// per point), and the fast path's dispatch on CPU features with the one-lane
// instantiation of spectrum_batch_kernel.hpp. Tested in tests/test_spectrum_batch.cpp.
#include "mdnstab/spectrum_batch.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>

#include "spectrum_batch_impl.hpp"

// One lane: the kernel's operations on plain doubles, with libm's functions.
namespace mdnstab::batch_kernel {
namespace {
struct ScalarLane {
  using D = double;
  using M = bool;
  static constexpr int W = 1;
  static double load(const double* p) { return *p; }
  static void store(double* p, double v) { *p = v; }
};
inline double select(bool m, double a, double b) { return m ? a : b; }
inline bool any(bool m) { return m; }
inline bool land(bool a, bool b) { return a && b; }
inline bool lor(bool a, bool b) { return a || b; }
inline bool lnot(bool a) { return !a; }
inline long count(bool m) { return m ? 1 : 0; }
inline bool same_bits(double a, double b) { return __builtin_memcmp(&a, &b, sizeof a) == 0; }
inline bool uniform(double) { return true; }
inline double min_(double a, double b) { return b < a ? b : a; }  // std::min
inline double max_(double a, double b) { return a < b ? b : a; }  // std::max
inline double sqrt_(double x) { return std::sqrt(x); }
inline double fma_(double a, double b, double c) { return std::fma(a, b, c); }
inline double abs_(double x) { return std::abs(x); }
inline double copysign_(double a, double b) { return std::copysign(a, b); }
inline double log_(double x) { return std::log(x); }
inline double exp_(double x) { return std::exp(x); }
inline double atan2_(double y, double x) { return std::atan2(y, x); }
inline double hypot_(double x, double y) { return std::hypot(x, y); }
}  // namespace
}  // namespace mdnstab::batch_kernel

#include "spectrum_batch_kernel.hpp"

namespace mdnstab {

namespace batch_kernel {
void run_scalar(KernelArgs& a, long begin, long end) { Kernel<ScalarLane>::run(a, begin, end); }
#if !defined(MDNSTAB_HAVE_LIBMVEC)
// Without glibc's vector math library only the one-lane path exists.
void run_avx2(KernelArgs& a, long begin, long end) { run_scalar(a, begin, end); }
void run_avx512(KernelArgs& a, long begin, long end) { run_scalar(a, begin, end); }
#endif
}  // namespace batch_kernel

namespace {
using batch_kernel::kColumns;
using batch_kernel::kPerBlock;

// Column stride: the capacity, rounded up to whole cache lines, plus three lines, so
// that columns at the same index fall in different cache sets (a stride of a
// multiple of 4 KiB would put all of them in one set of the L1 cache).
long column_stride(long capacity) { return (capacity + 7) / 8 * 8 + 24; }

BlockColumns block_columns(double* base, long stride) {
  auto col = [&](int k) { return base + long(k) * stride; };
  using namespace batch_kernel;
  return {col(kL1Re),   col(kL1Im),     col(kL2Re),    col(kL2Im),    col(kRho), col(kComplex),
          col(kNegative), col(kDamping), col(kNatural), col(kHalfLife), col(kPeak)};
}

double* column(const BlockColumns& b, int k) {
  using namespace batch_kernel;
  switch (k) {
    case kL1Re: return b.l1_re;
    case kL1Im: return b.l1_im;
    case kL2Re: return b.l2_re;
    case kL2Im: return b.l2_im;
    case kRho: return b.rho;
    case kComplex: return b.complex_pair;
    case kNegative: return b.negative;
    case kDamping: return b.damping_ratio;
    case kNatural: return b.natural_frequency;
    case kHalfLife: return b.half_life;
    default: return b.transient_peak;
  }
}

void set_block(const BlockColumns& c, long i, const BlockSpectrum& b) {
  c.l1_re[i] = b.eig.l1.real();
  c.l1_im[i] = b.eig.l1.imag();
  c.l2_re[i] = b.eig.l2.real();
  c.l2_im[i] = b.eig.l2.imag();
  c.rho[i] = b.spectral_radius;
  c.complex_pair[i] = b.regime == Regime::kComplex ? 1.0 : 0.0;
  c.negative[i] = b.negative_eigenvalue ? 1.0 : 0.0;
  c.damping_ratio[i] = b.damping_ratio ? *b.damping_ratio : NAN;
  c.natural_frequency[i] = b.natural_frequency ? *b.natural_frequency : NAN;
  c.half_life[i] = b.half_life;
  c.transient_peak[i] = b.transient_peak;
}

BlockSpectrum get_block(const BlockColumns& c, long i) {
  BlockSpectrum b;
  b.eig.l1 = {c.l1_re[i], c.l1_im[i]};
  b.eig.l2 = {c.l2_re[i], c.l2_im[i]};
  b.eig.complex_pair = c.complex_pair[i] != 0.0;
  b.spectral_radius = c.rho[i];
  b.regime = b.eig.complex_pair ? Regime::kComplex : Regime::kReal;
  b.negative_eigenvalue = c.negative[i] != 0.0;
  if (!std::isnan(c.damping_ratio[i])) b.damping_ratio = c.damping_ratio[i];
  if (!std::isnan(c.natural_frequency[i])) b.natural_frequency = c.natural_frequency[i];
  b.half_life = c.half_life[i];
  b.transient_peak = c.transient_peak[i];
  return b;
}

}  // namespace

std::string_view to_string(SimdLevel s) {
  switch (s) {
    case SimdLevel::kAvx512: return "avx512";
    case SimdLevel::kAvx2: return "avx2";
    default: return "none";
  }
}

bool simd_supported(SimdLevel s) {
  if (s == SimdLevel::kNone) return true;
#if defined(MDNSTAB_HAVE_LIBMVEC) && (defined(__x86_64__) || defined(__i386__))
  __builtin_cpu_init();
  if (s == SimdLevel::kAvx2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

SimdLevel best_simd_level() {
  static const SimdLevel best = simd_supported(SimdLevel::kAvx512) ? SimdLevel::kAvx512
                                : simd_supported(SimdLevel::kAvx2) ? SimdLevel::kAvx2
                                                                   : SimdLevel::kNone;
  return best;
}

Gates GateBatch::at(long i) const {
  Gates g;
  g.alpha = alpha[i];
  g.beta = beta[i];
  g.mu = mu[i];
  g.eta = eta[i];
  g.log_alpha = log_alpha[i];
  g.log_mu = log_mu[i];
  g.p_scale = p_scale;
  return g;
}

SpectrumBatch::SpectrumBatch(long capacity)
    : capacity_(capacity), store_(size_t(kColumns) * size_t(column_stride(capacity)) + 8) {
  const long stride = column_stride(capacity);
  // Columns start on a cache line.
  double* base = store_.data() + (8 - (reinterpret_cast<uintptr_t>(store_.data()) / 8) % 8) % 8;
  par = block_columns(base, stride);
  perp = block_columns(base + long(kPerBlock) * stride, stride);
  frozen_rho = base + long(2 * kPerBlock) * stride;
}

FrozenSpectrum SpectrumBatch::at(long i) const {
  FrozenSpectrum f;
  f.parallel = get_block(par, i);
  f.perpendicular = get_block(perp, i);
  f.frozen_spectral_radius = frozen_rho[i];
  f.frozen_stable = f.frozen_spectral_radius < 1.0;
  return f;
}

void SpectrumBatch::set(long i, const FrozenSpectrum& f) {
  set_block(par, i, f.parallel);
  set_block(perp, i, f.perpendicular);
  frozen_rho[i] = f.frozen_spectral_radius;
}

namespace {
// The summary of points [0, n), point by point.
void summarize(SpectrumBatch& out, long n) {
  out.n_complex = out.n_negative = 0;
  out.max_frozen_rho = -std::numeric_limits<double>::infinity();
  for (long i = 0; i < n; ++i) {
    out.n_complex += out.par.complex_pair[i] != 0.0;
    out.n_negative += out.par.negative[i] != 0.0 || out.perp.negative[i] != 0.0;
    out.max_frozen_rho = std::max(out.max_frozen_rho, out.frozen_rho[i]);
  }
}
}  // namespace

void analyze_frozen_batch_ref(const GateBatch& g, const SpectrumOptions& opt, SpectrumBatch& out) {
  for (long i = 0; i < g.n; ++i) out.set(i, analyze_frozen(g.at(i), opt));
  summarize(out, g.n);
}

long analyze_frozen_batch(const GateBatch& g, const SpectrumOptions& opt, SimdLevel level, SpectrumBatch& out) {
  if (g.n <= 0) return 0;
  batch_kernel::KernelArgs a{};
  a.alpha = g.alpha;
  a.beta = g.beta;
  a.mu = g.mu;
  a.eta = g.eta;
  a.log_alpha = g.log_alpha;
  a.log_mu = g.log_mu;
  a.p_one = g.p_scale == PScale::kOne;
  a.peak = opt.transient_peak;
  a.dynamics = opt.dynamics;
  a.log_half = std::log(0.5);
  for (int k = 0; k < kPerBlock; ++k) {
    a.out[k] = column(out.par, k);
    a.out[kPerBlock + k] = column(out.perp, k);
  }
  a.out[batch_kernel::kFrozenRho] = out.frozen_rho;
  thread_local std::vector<long> patch;
  patch.resize(size_t(g.n));
  a.patch = patch.data();
  a.n_patch = 0;
  a.n_complex = a.n_negative = 0;
  a.max_frozen_rho = -std::numeric_limits<double>::infinity();
  const int width = level == SimdLevel::kAvx512 ? 8 : level == SimdLevel::kAvx2 ? 4 : 1;
  const long n_vec = width > 1 ? g.n / width * width : 0;
  if (level == SimdLevel::kAvx512)
    batch_kernel::run_avx512(a, 0, n_vec);
  else if (level == SimdLevel::kAvx2)
    batch_kernel::run_avx2(a, 0, n_vec);
  batch_kernel::run_scalar(a, n_vec, g.n);  // the ragged tail, or everything at kNone
  out.n_complex = a.n_complex;
  out.n_negative = a.n_negative;
  out.max_frozen_rho = a.max_frozen_rho;
  // Points at the edges of the gate ranges: the reference itself, and the summary
  // afresh (rare: only where rho = 0).
  for (long j = 0; j < a.n_patch; ++j) out.set(patch[size_t(j)], analyze_frozen(g.at(patch[size_t(j)]), opt));
  if (a.n_patch) summarize(out, g.n);
  return a.n_patch;
}

}  // namespace mdnstab
