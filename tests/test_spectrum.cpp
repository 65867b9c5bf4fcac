// Closed-form 2x2 spectra against two independent references: Eigen's
// EigenSolver (a QR algorithm) where the eigenvalues are well conditioned, and
// the same closed form evaluated in __float128 near the complex/real boundary,
// where any double-precision solver's error grows like sqrt(eps) and only a
// higher-precision evaluation can hold our 1e-12 to account.
#include <gtest/gtest.h>
#include <quadmath.h>

#include <Eigen/Eigenvalues>
#include <cmath>
#include <complex>
#include <random>

#include "mdnstab/spectrum.hpp"

namespace mdnstab {
namespace {

using C = std::complex<double>;

// Eigenvalues of the exact double entries of m, in quad precision, ordered like ours.
std::pair<C, C> quad_eigenvalues(const Mat2& m) {
  const __float128 a = m.a, b = m.b, c = m.c, d = m.d;
  const __float128 half = (a + d) / 2, dd = (a - d) / 2;
  const __float128 disc = dd * dd + b * c;
  if (disc >= 0) {
    const __float128 s = sqrtq(disc);
    __float128 l1 = half + (half >= 0 ? s : -s), l2 = half - (half >= 0 ? s : -s);
    if (fabsq(l2) > fabsq(l1)) std::swap(l1, l2);
    return {C(double(l1), 0), C(double(l2), 0)};
  }
  const double im = double(sqrtq(-disc));
  return {C(double(half), im), C(double(half), -im)};
}

void expect_close(C got, C want, double tol, const Mat2& m) {
  EXPECT_LE(std::abs(got - want), tol * std::max(1.0, std::abs(want)))
      << "A = [[" << m.a << ", " << m.b << "], [" << m.c << ", " << m.d << "]] got " << got << " want " << want;
}

TEST(Spectrum, AgreesWithEigenOnRandomBlocks) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u01(0, 1), u(-2, 2);
  int compared = 0;
  for (int i = 0; i < 20000; ++i) {
    Mat2 m;
    if (i % 2 == 0) {
      const Gates g = Gates::from_linear(u01(rng), u01(rng), u01(rng), 2 * u01(rng), i % 4 ? PScale::kAlpha : PScale::kOne).value;
      m = i % 3 ? a_par(g) : a_perp(g);
    } else {
      m = {u(rng), u(rng), u(rng), u(rng)};
    }
    const Eigenvalues2 e = eigenvalues(m);
    Eigen::Matrix2d em;
    em << m.a, m.b, m.c, m.d;
    Eigen::EigenSolver<Eigen::Matrix2d> es(em, false);
    ASSERT_EQ(es.info(), Eigen::Success);
    C r1 = es.eigenvalues()[0], r2 = es.eigenvalues()[1];
    // Eigen's backward-stable error is ~eps |A|^2 / separation: it is a 1e-12
    // reference only where the eigenvalues are separated by more than 1e-3.
    if (std::abs(r1 - r2) < 1e-3) continue;
    ++compared;
    // Match the pairing: ours is ordered by modulus, then by sign of the imaginary part.
    if (std::abs(r1 - e.l1) + std::abs(r2 - e.l2) > std::abs(r1 - e.l2) + std::abs(r2 - e.l1)) std::swap(r1, r2);
    expect_close(e.l1, r1, 1e-12, m);
    expect_close(e.l2, r2, 1e-12, m);
    EXPECT_EQ(e.complex_pair, r1.imag() != 0);
  }
  EXPECT_GT(compared, 19000);
}

TEST(Spectrum, AccurateAtTheComplexRealBoundary) {
  // A_par with the discriminant (alpha - beta*eta*alpha - mu)^2/4 - beta*mu*eta*alpha within
  // 1e-15 of zero: solve for beta on the boundary, then nudge by a few ulps.
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> u01(0.01, 1);
  int n_complex = 0, n_real = 0;
  for (int i = 0; i < 5000; ++i) {
    const double alpha = u01(rng), mu = u01(rng), eta = 1.0;
    // Boundary: alpha(1 - b) + mu = 2 sqrt(alpha mu) with b = beta*eta.
    const double b = 1 - (2 * std::sqrt(alpha * mu) - mu) / alpha;
    if (b < 0 || b > 1) continue;
    for (int k = -3; k <= 3; ++k) {
      const double beta = b + k * 1e-16;
      if (beta < 0 || beta > 1) continue;
      const Mat2 m = a_par(Gates::from_linear(alpha, beta, mu, eta).value);
      const Eigenvalues2 e = eigenvalues(m);
      const auto [q1, q2] = quad_eigenvalues(m);
      expect_close(e.l1, q1, 1e-12, m);
      expect_close(e.l2, q2, 1e-12, m);
      EXPECT_EQ(e.complex_pair, q1.imag() != 0) << "regime flips at the boundary";
      (e.complex_pair ? n_complex : n_real)++;
    }
  }
  EXPECT_GT(n_complex, 100);  // both sides of the boundary were exercised
  EXPECT_GT(n_real, 100);
}

TEST(Spectrum, TinyEqualAndUnitGates) {
  const double cases[][4] = {
      {1e-12, 0.5, 1e-12, 1.0}, {1e-12, 1e-12, 1e-12, 1e-12}, {0.7, 0.5, 0.7, 1.0},  // alpha = mu
      {0.9, 0.5, 0.3, 2.0},     {0.9, 1.0, 0.3, 1.0},                                 // beta*eta = 1
      {0.0, 0.5, 0.5, 1.0},     {0.5, 0.5, 0.0, 1.0},  {1.0, 0.0, 1.0, 0.0}, {1.0, 1.0, 1.0, 2.0},
  };
  for (const auto& c : cases)
    for (PScale p : {PScale::kAlpha, PScale::kOne}) {
      const Gates g = Gates::from_linear(c[0], c[1], c[2], c[3], p).value;
      for (const Mat2& m : {a_par(g), a_perp(g)}) {
        const Eigenvalues2 e = eigenvalues(m);
        const auto [q1, q2] = quad_eigenvalues(m);
        expect_close(e.l1, q1, 1e-12, m);
        expect_close(e.l2, q2, 1e-12, m);
      }
    }
}

TEST(Spectrum, IdentitiesOfTheBlocks) {
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> u01(0, 1);
  for (int i = 0; i < 2000; ++i) {
    const Gates g = Gates::from_linear(u01(rng), u01(rng), u01(rng), 2 * u01(rng)).value;
    const Mat2 p = a_par(g), q = a_perp(g);
    // det A_par = det A_perp = alpha mu (DESIGN.md section 3).
    EXPECT_NEAR(p.det(), g.alpha * g.mu, 1e-15);
    EXPECT_NEAR(q.det(), g.alpha * g.mu, 1e-15);
    const Eigenvalues2 e = eigenvalues(p);
    EXPECT_NEAR((e.l1 * e.l2).real(), g.alpha * g.mu, 1e-14);
    EXPECT_NEAR((e.l1 + e.l2).real(), g.alpha + g.mu - g.beta * g.eta * g.alpha, 1e-14);
    if (e.complex_pair) {
      EXPECT_NEAR(std::abs(e.l1), std::sqrt(g.alpha * g.mu), 1e-14);
    }
    const Eigenvalues2 f = eigenvalues(q);  // exactly alpha and mu
    EXPECT_EQ(std::max(g.alpha, g.mu), f.l1.real());
    EXPECT_EQ(std::min(g.alpha, g.mu), f.l2.real());
  }
}

TEST(Spectrum, ContinuousTimeEquivalentReproducesTheEigenvalues) {
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> u01(0, 1);
  int complex = 0, real = 0;
  for (int i = 0; i < 5000; ++i) {
    const Gates g = Gates::from_linear(u01(rng), u01(rng), u01(rng), 2 * u01(rng)).value;
    const BlockSpectrum b = analyze_block(a_par(g), g.log_alpha + g.log_mu);
    if (!b.damping_ratio) {
      // None exists only for a real pair with an eigenvalue <= 0 or on both sides of 1.
      ASSERT_EQ(b.regime, Regime::kReal);
      EXPECT_TRUE(b.eig.l2.real() <= 0 || (b.eig.l1.real() - 1) * (b.eig.l2.real() - 1) <= 0);
      continue;
    }
    const double z = *b.damping_ratio, w = *b.natural_frequency;
    if (b.regime == Regime::kComplex) {
      ++complex;
      ASSERT_LT(z, 1.0);
      const C s(-z * w, w * std::sqrt(1 - z * z));
      expect_close(std::exp(s), b.eig.l1, 1e-12, a_par(g));
    } else {
      ++real;
      ASSERT_GE(std::abs(z), 1.0 - 1e-12);
      const double r = w * std::sqrt(std::max(0.0, z * z - 1));
      double l1 = std::exp(-z * w + r), l2 = std::exp(-z * w - r);
      expect_close(l1, b.eig.l1, 1e-10, a_par(g));  // exp of a sum: conditioning ~ |z w|
      expect_close(l2, b.eig.l2, 1e-10, a_par(g));
    }
  }
  EXPECT_GT(complex, 500);
  EXPECT_GT(real, 500);
}

TEST(Spectrum, NegativeEigenvalueHasNoContinuousEquivalent) {
  // beta*eta > 1 + mu/alpha makes the trace negative; with a real pair one eigenvalue is negative.
  const BlockSpectrum b = analyze_frozen(Gates::from_linear(0.9, 1.0, 0.01, 2.0).value).parallel;
  EXPECT_EQ(b.regime, Regime::kReal);
  EXPECT_TRUE(b.negative_eigenvalue);
  EXPECT_FALSE(b.damping_ratio.has_value());
  // A complex pair with negative real part keeps its real logarithm.
  const BlockSpectrum c = analyze_frozen(Gates::from_linear(0.5, 1.0, 0.2, 1.9).value).parallel;
  EXPECT_EQ(c.regime, Regime::kComplex);
  EXPECT_LT(c.eig.l1.real(), 0);
  EXPECT_TRUE(c.damping_ratio.has_value());
}

TEST(Spectrum, HalfLifeFollowsTheSpectralRadius) {
  const FrozenSpectrum f = analyze_frozen(Gates::from_log(-0.01, 0.9, -0.02, 1.9).value);
  // Complex pair: |lambda| = exp((log_alpha + log_mu)/2), half-life = ln 2 / 0.015.
  ASSERT_EQ(f.parallel.regime, Regime::kComplex);
  EXPECT_NEAR(f.parallel.half_life, std::log(2.0) / 0.015, 1e-9);
  EXPECT_NEAR(f.perpendicular.half_life, std::log(2.0) / 0.01, 1e-9);
  const FrozenSpectrum u = analyze_frozen(Gates::from_linear(1.0, 0.5, 0.5, 1.0).value);
  EXPECT_TRUE(std::isinf(u.perpendicular.half_life));
  EXPECT_TRUE(std::isinf(u.perpendicular.transient_peak));
}

// max_t |A^t|_2 by brute force: every power up to a horizon far past any peak.
double brute_peak(const Mat2& m, int horizon) {
  double best = 1;
  Mat2 p = m;
  for (int t = 1; t <= horizon; ++t, p = p * m) best = std::max(best, norm2(p));
  return best;
}

TEST(Spectrum, TransientPeakMatchesBruteForce) {
  std::mt19937_64 rng(9);
  std::uniform_real_distribution<double> u01(0, 1);
  for (int i = 0; i < 3000; ++i) {
    const double r = i % 10 == 0 ? 0.999 : 0.98;  // keep the brute-force horizon finite
    const Gates g = Gates::from_linear(r * u01(rng), u01(rng), r * u01(rng), 2 * u01(rng)).value;
    for (const Mat2& m : {a_par(g), a_perp(g)}) {
      const BlockSpectrum b = analyze_block(m);
      if (b.spectral_radius >= 1) continue;
      EXPECT_NEAR(b.transient_peak, brute_peak(m, r > 0.99 ? 40000 : 4000), 1e-12 * b.transient_peak);
    }
  }
  // A_perp with alpha = mu (a Jordan block) peaks at t ~ 1/(1 - alpha).
  const Mat2 j = a_perp(Gates::from_linear(0.99, 1.0, 0.99, 1.0).value);
  EXPECT_NEAR(transient_peak(j, eigenvalues(j), 0.99), brute_peak(j, 20000), 1e-12 * brute_peak(j, 20000));
  EXPECT_GT(transient_peak(j, eigenvalues(j), 0.99), 30.0);
}

}  // namespace
}  // namespace mdnstab
