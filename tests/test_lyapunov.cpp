// Lyapunov exponents (src/mdnstab/lyapunov.hpp) against independent values:
// rotating keys against the closed-form rotation growth (and Eigen through
// witness_growth), random keys against the certificate's bounds, and
// repeatability across thread counts.
#include <gtest/gtest.h>

#include <cmath>

#include "mdnstab/certify.hpp"
#include "mdnstab/lyapunov.hpp"

namespace mdnstab {
namespace {

Gates lin(double a, double b, double m, double e) { return Gates::from_linear(a, b, m, e).value; }

LyapunovResult run(const Gates& g, LyapunovOptions o) {
  auto r = lyapunov(g, o);
  EXPECT_TRUE(r.is_ok()) << r.status.message;
  return r.value;
}

TEST(Lyapunov, RotatingKeysMatchTheRotatingFrameSpectralRadius) {
  // In the rotating frame the map is one constant 4x4 matrix C, so the exponent
  // is log rho(C). The estimate over T steps after burn-in differs by at most
  // log(cond)/T from oscillation of a complex dominant pair: ~1e-4 at T = 2e4.
  for (const Gates& g : {lin(0.99, 0.9, 0.99, 1.9), lin(0.9, 0.5, 0.8, 1.2), lin(0.95, 0.3, 0.97, 1.99)})
    for (double th : {0.3, 0.868926, 1.4}) {
      LyapunovOptions o;
      o.dk = 2, o.steps = 20000, o.seed = 3, o.chains = 4;
      o.keys = LyapunovOptions::Keys::kRotating, o.angle = th;
      const double expect = std::log(rotation_growth(g, th));
      EXPECT_NEAR(run(g, o).exponent, expect, 1e-3) << th;
    }
}

TEST(Lyapunov, DesignExampleGrowsUnderRandomKeys) {
  // DESIGN.md section 4: about +0.14 per step at DK = 128 and +0.18 at DK = 2,
  // and never above log(gamma) (the worst case over all key sequences).
  const Gates g = lin(0.99, 0.9, 0.99, 1.9);
  const double log_gamma = std::log(certify(std::span<const Gates>(&g, 1)).value.upper_bound);
  LyapunovOptions o;
  o.dk = 128, o.steps = 2000, o.seed = 1;
  const LyapunovResult r = run(g, o);
  EXPECT_GT(r.exponent, 0.1);
  EXPECT_LT(r.exponent, 0.2);
  EXPECT_LT(r.stderr_, 0.01);
  o.dk = 2, o.steps = 20000;
  const LyapunovResult r2 = run(g, o);
  EXPECT_NEAR(r2.exponent, 0.18, 0.02);
  EXPECT_LT(r2.exponent, log_gamma);
}

TEST(Lyapunov, CertifiedGatesDecayAtLeastAsFastAsGamma) {
  for (const Gates& g : {lin(0.9, 0.5, 0.0, 1.5), lin(0.95, 0.2, 0.8, 0.5)}) {
    const Certificate c = certify(std::span<const Gates>(&g, 1)).value;
    ASSERT_EQ(c.verdict, Verdict::kCertified);
    LyapunovOptions o;
    o.dk = 16, o.steps = 4000, o.seed = 5;
    const LyapunovResult r = run(g, o);
    EXPECT_LE(r.exponent, std::log(c.upper_bound) + 4 * r.stderr_ + 1e-9);
  }
}

TEST(Lyapunov, RepeatsForASeedWhateverTheThreadCount) {
  const Gates g = lin(0.99, 0.9, 0.99, 1.9);
  LyapunovOptions o;
  o.dk = 8, o.steps = 500, o.seed = 42, o.chains = 5;
  o.threads = 1;
  const LyapunovResult a = run(g, o);
  o.threads = 2;
  const LyapunovResult b = run(g, o);
  EXPECT_EQ(a.exponent, b.exponent);
  EXPECT_EQ(a.stderr_, b.stderr_);
  o.seed = 43;
  EXPECT_NE(run(g, o).exponent, a.exponent);
}

TEST(Lyapunov, ZeroStateGivesMinusInfinity) {
  // alpha = mu = 0 with p-scale alpha: every transition is the zero matrix.
  LyapunovOptions o;
  o.dk = 4, o.steps = 100;
  EXPECT_EQ(run(lin(0, 0.5, 0, 1), o).exponent, -INFINITY);
}

TEST(Lyapunov, BadOptionsAreRefused) {
  const Gates g = lin(0.5, 0.5, 0.5, 1);
  LyapunovOptions o;
  o.dk = 0, o.steps = 10;
  EXPECT_FALSE(lyapunov(g, o).is_ok());
  o.dk = 4, o.steps = 0;
  EXPECT_FALSE(lyapunov(g, o).is_ok());
  o.steps = 10, o.dk = 1, o.keys = LyapunovOptions::Keys::kRotating;
  EXPECT_FALSE(lyapunov(g, o).is_ok());
  LyapunovOptions p;
  EXPECT_TRUE(parse_keys("rotating:0.5", p).is_ok());
  EXPECT_EQ(p.angle, 0.5);
  for (const char* s : {"rotating:", "rotating:x", "rotating:inf", "spiral", ""})
    EXPECT_FALSE(parse_keys(s, p).is_ok()) << s;
}

}  // namespace
}  // namespace mdnstab
