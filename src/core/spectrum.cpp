// Closed-form 2x2 spectra (DESIGN.md section 3). Reference: Eigen's
// EigenSolver and a __float128 evaluation in tests/test_spectrum.cpp.
#include "mdnstab/spectrum.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace mdnstab {

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
// Beyond this many powers the running maximum is returned; reached only for
// rho > 1 - 1e-6 or so, where the half-life alone is ~10^6 steps.
constexpr long kMaxPeakSteps = 1L << 24;
// 1 + 9 eps: margin of the Frobenius test that skips a power in transient_peak.
constexpr double kSkip = 1.0 + 1e-15;
}  // namespace

const char* to_string(Regime r) { return r == Regime::kComplex ? "complex" : "real"; }

Eigenvalues2 eigenvalues(const Mat2& m) {
  Eigenvalues2 e;
  if (m.c == 0.0 || m.b == 0.0) {  // triangular: the diagonal, exactly
    double l1 = m.a, l2 = m.d;
    if (std::abs(l2) > std::abs(l1)) std::swap(l1, l2);
    e.l1 = l1;
    e.l2 = l2;
    return e;
  }
  const double half = 0.5 * (m.a + m.d);
  // disc = trace^2/4 - det = ((a - d)/2)^2 + bc, evaluated in double-double
  // (TwoSum for a - d, fma for the products) so that its sign and value are
  // right near the complex/real boundary, where sqrt(disc) amplifies errors.
  const double diff = m.a - m.d;
  const double z = diff - m.a;
  const double diff_lo = (m.a - (diff - z)) - (m.d + z);  // a - d = diff + diff_lo exactly
  const double dd = 0.5 * diff, dd_lo = 0.5 * diff_lo;
  const double p = dd * dd, p_lo = std::fma(dd, dd, -p);
  const double q = m.b * m.c, q_lo = std::fma(m.b, m.c, -q);
  const double disc = (p + q) + (p_lo + q_lo + 2.0 * dd * dd_lo);
  if (disc >= 0.0) {
    const double s = std::sqrt(disc);
    const double l1 = half + std::copysign(s, half);  // no cancellation
    const double l2 = l1 != 0.0 ? m.det() / l1 : 0.0;
    e.l1 = l1;
    e.l2 = l2;
  } else {
    const double im = std::sqrt(-disc);
    e.l1 = {half, im};
    e.l2 = {half, -im};
    e.complex_pair = true;
  }
  return e;
}

double transient_peak(const Mat2& m, const Eigenvalues2& eig, double r) {
  if (!(r < 1.0)) return kInf;
  // A^s = c1(s) A + c0(s) I (Cayley-Hamilton) with c0(s) = -det c1(s-1) and
  // |c1(s)| <= min(2 r^s / |l1 - l2|, s r^(s-1)); both bounds are nonincreasing
  // in s (the second once s >= 1/ln(1/r)), so U(s) bounds every later power.
  const double n_a = norm2(m);
  const double det = std::abs(eig.l1) * std::abs(eig.l2);
  const double gap = std::abs(eig.l1 - eig.l2);
  const double lnr = std::log(r);
  const double s0 = lnr < 0 ? -1.0 / lnr : kInf;
  auto c1_bound = [&](double s, double rs) {  // rs = r^s
    double b = gap > 0 ? 2.0 * rs / gap : kInf;
    if (s - 1 >= s0) b = std::min(b, r > 0 ? s * rs / r : (s == 1 ? 1.0 : 0.0));
    return b;
  };
  // An upper-triangular block (A_perp; A_par where eta rho_p = 0) has
  // A^t = [[a^t, b c(t)], [0, d^t]] with c(1) = 1, c(t+1) = a^t + d c(t): its powers
  // are formed that way, so that b enters once per power and the fast kernel can
  // share a^t, c(t), d^t between every point of a row of the grid. (Its gates keep
  // a, d >= 0.)
  const bool tri = m.c == 0.0;
  const bool falls = tri && m.a >= 0.0 && m.d >= 0.0;
  double pa = m.a, pd = m.d, c = 1.0;
  // The running maximum of |A^t|_2^2 (t = 0: 1), its square root taken once per
  // update: sqrt is monotone and correctly rounded, so sqrt of the largest square is
  // the largest norm. A power is skipped only where its Frobenius norm proves it
  // cannot raise the maximum (norm2_sq <= f (1 + 6 u) < f kSkip): the result
  // is the maximum over every power up to the stop, whatever the order of updates.
  double best_sq = 1.0, best = 1.0;
  Mat2 p = m;
  double rt = r;  // r^t
  for (long t = 1; t <= kMaxPeakSteps; ++t) {
    if (tri) p = {pa, m.b * c, 0.0, pd};
    const double f = p.a * p.a + p.b * p.b + p.c * p.c + p.d * p.d;
    if (f * kSkip > best_sq) {
      const double u = norm2_sq(p);
      if (u > best_sq) {
        best_sq = u;
        best = std::sqrt(best_sq);
      }
    }
    const double s = static_cast<double>(t + 1);
    const double bound = n_a * c1_bound(s, rt * r) + det * c1_bound(s - 1, rt);
    if (bound <= best) break;
    // Triangular, 0 <= a, d < 1: c(t+1) - c(t) = a^t - (1 - d) c(t) and a^t / c(t)
    // decreases, so once c falls it falls for good, like a^t and d^t: no later power
    // has a larger entry, nor a larger norm (the margin covers the rounding).
    if (falls && pa <= (1.0 - m.d) * c * (1.0 - 1e-12) && f * (1.0 + 1e-10) <= best_sq) break;
    if (tri) {
      c = pa + c * m.d;
      pa = pa * m.a;
      pd = pd * m.d;
    } else {
      p = p * m;
    }
    rt *= r;
  }
  return best;
}

namespace {
// Damping ratio, natural frequency and half-life of a block whose eigenvalues and
// spectral radius are set.
void set_dynamics(BlockSpectrum& b, double log_det) {
  double ln_rho;
  if (b.eig.complex_pair) {
    // |lambda|^2 = det, so ln|lambda| = log_det / 2 (exact for log-space gates).
    const double lnr = 0.5 * log_det;
    const double theta = std::atan2(b.eig.l1.imag(), b.eig.l1.real());  // (0, pi)
    const double wn = std::hypot(lnr, theta);
    b.natural_frequency = wn;
    b.damping_ratio = -lnr / wn;
    ln_rho = lnr;
  } else {
    const double l1 = b.eig.l1.real(), l2 = b.eig.l2.real();
    const double a1 = std::abs(b.eig.l1);
    ln_rho = a1 > 0 ? std::log(a1) : -kInf;
    if (l1 > 0 && l2 > 0) {
      const double s1 = std::log(l1);
      const double s2 = std::isfinite(log_det) ? log_det - s1 : std::log(l2);
      const double p = s1 * s2;  // w_n^2; <= 0 means a unit or one growing mode
      if (p > 0) {
        const double wn = std::sqrt(p);
        b.natural_frequency = wn;
        b.damping_ratio = -(s1 + s2) / (2 * wn);
      }
    }
  }
  if (b.spectral_radius >= 1.0)
    b.half_life = kInf;
  else if (b.spectral_radius == 0.0)
    b.half_life = 0.0;
  else
    b.half_life = std::log(0.5) / ln_rho;
}
}  // namespace

BlockSpectrum analyze_block(const Mat2& m, double log_det, const SpectrumOptions& opt) {
  BlockSpectrum b;
  b.eig = eigenvalues(m);
  const double a1 = std::abs(b.eig.l1), a2 = std::abs(b.eig.l2);
  b.regime = b.eig.complex_pair ? Regime::kComplex : Regime::kReal;
  if (!std::isfinite(log_det)) {
    const double det = m.det();
    log_det = det > 0 ? std::log(det) : -kInf;
  }
  // A complex pair has |lambda| = sqrt(det) exactly: alpha = mu = 1 gives rho = 1,
  // where |re + i im| would round below 1 and hide that the block does not decay.
  b.spectral_radius = b.eig.complex_pair ? std::exp(0.5 * log_det) : std::max(a1, a2);
  if (!b.eig.complex_pair) b.negative_eigenvalue = b.eig.l1.real() < 0 || b.eig.l2.real() < 0;
  if (opt.dynamics)
    set_dynamics(b, log_det);
  else
    b.half_life = NAN;
  b.transient_peak = opt.transient_peak ? transient_peak(m, b.eig, b.spectral_radius) : NAN;
  return b;
}

FrozenSpectrum analyze_frozen(const Gates& g, const SpectrumOptions& opt) {
  FrozenSpectrum f;
  const double log_det = g.log_alpha + g.log_mu;  // det A_par = det A_perp = alpha*mu
  f.parallel = analyze_block(a_par(g), log_det, opt);
  f.perpendicular = analyze_block(a_perp(g), log_det, opt);
  f.frozen_spectral_radius = std::max(f.parallel.spectral_radius, f.perpendicular.spectral_radius);
  f.frozen_stable = f.frozen_spectral_radius < 1.0;
  return f;
}

}  // namespace mdnstab
