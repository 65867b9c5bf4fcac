// The gate maps of DESIGN.md section 2 against an independent long-double
// evaluation of the formulas as written there (tanh, atan, sin, cos, log1p(exp)),
// their limits, monotonicity, and the reachable-set facts the theta bound implies.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "mdnstab/parametrization.hpp"
#include "mdnstab/sampling.hpp"
#include "mdnstab/spectrum.hpp"

namespace mdnstab {
namespace {

using LD = long double;

// DESIGN.md section 2 verbatim, in long double (64-bit mantissa).
struct Naive {
  LD log_alpha, beta, log_mu, eta;
};
Naive naive(Parametrization p, const ParamConfig& c, const HeadParams& h, const RawInputs& x) {
  auto sp = [](LD v) { return std::log1p(std::exp(v)); };
  Naive n;
  LD log_alpha = -std::exp(LD(h.A_log)) * sp(LD(x.a) + h.dt_bias);
  LD beta = 1 / (1 + std::exp(-LD(x.b)));
  if (p == Parametrization::kGdn) return {log_alpha, beta, -std::numeric_limits<LD>::infinity(), 1};
  n.log_mu = std::max(-std::exp(LD(h.Mu_log)) * sp(LD(x.m) + h.mu_bias), LD(c.min_log_mu));
  n.eta = std::tanh(LD(x.e) / std::sqrt(LD(c.hidden_size) / LD(c.tau_factor))) + 1;
  if (p == Parametrization::kMdn) {
    const LD theta = std::atan(n.eta * std::exp(LD(h.log_factor)));
    beta *= std::sin(theta) * std::sin(theta);
    log_alpha += std::log(std::cos(theta) * std::cos(theta));
  }
  n.log_alpha = log_alpha;
  n.beta = beta;
  return n;
}

// Relative error with a floor: 1e-13 covers the double evaluation (a few ulp
// through exp, log1p, sigmoid) against a 64-bit-mantissa reference, for
// moderate inputs where the naive formulas are themselves accurate.
void expect_close(double got, LD want, const char* what) {
  const double tol = 1e-13 * std::max<double>(1.0, std::fabs(double(want)));
  EXPECT_NEAR(got, double(want), tol) << what;
}

TEST(Parametrization, MatchesTheFormulasOfDesign) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> raw(-6, 6);
  const ParamConfig configs[] = {reference_config("400M").value, reference_config("1.3B").value};
  for (Parametrization p : {Parametrization::kMdn, Parametrization::kMdnUnconstrained, Parametrization::kGdn})
    for (const ParamConfig& c : configs)
      for (int i = 0; i < 2000; ++i) {
        const HeadParams h = initial_head_params(11, uint64_t(i));
        const RawInputs x{raw(rng), raw(rng), raw(rng), 8 * raw(rng)};
        auto g = map_gates(p, c, h, x);
        ASSERT_TRUE(g.is_ok()) << g.status.message;
        const Naive n = naive(p, c, h, x);
        expect_close(g.value.gates.log_alpha, n.log_alpha, "log_alpha");
        expect_close(g.value.gates.beta, n.beta, "beta");
        if (p == Parametrization::kGdn) {
          EXPECT_EQ(g.value.gates.mu, 0.0);
          EXPECT_EQ(g.value.gates.eta, 1.0);
        } else {
          expect_close(g.value.gates.log_mu, n.log_mu, "log_mu");
          expect_close(g.value.gates.eta, n.eta, "eta");
        }
      }
}

TEST(Parametrization, HandComputedValue) {
  // A_log = log 2, dt_bias = 0, a = 0: log_alpha' = -2 log 2, alpha' = 1/4.
  // b = 0: beta' = 1/2. e = tau * atanh(0) = 0: eta = 1. log_factor = 0: theta =
  // atan(1) = pi/4, sin^2 = cos^2 = 1/2. So alpha = 1/8, beta = 1/4.
  // Mu_log = 0, mu_bias = 0, m = 0: log_mu = -log 2 > -2, mu = 1/2.
  const ParamConfig c = reference_config("400M").value;
  const HeadParams h{std::log(2.0), 0, 0, 0, 0};
  auto g = map_gates(Parametrization::kMdn, c, h, RawInputs{0, 0, 0, 0});
  ASSERT_TRUE(g.is_ok());
  EXPECT_NEAR(g.value.gates.alpha, 0.125, 1e-15);
  EXPECT_NEAR(g.value.gates.beta, 0.25, 1e-15);
  EXPECT_NEAR(g.value.gates.mu, 0.5, 1e-15);
  EXPECT_NEAR(g.value.gates.eta, 1.0, 1e-15);
  EXPECT_NEAR(g.value.theta, std::atan(1.0), 1e-15);
  EXPECT_FALSE(g.value.mu_clamped);
  // e = tau * atanh(0.5) gives eta = 1.5 exactly in exact arithmetic.
  g = map_gates(Parametrization::kMdn, c, h, RawInputs{0, 0, 0, c.tau() * std::atanh(0.5)});
  EXPECT_NEAR(g.value.gates.eta, 1.5, 1e-15);
  // tan(theta) = 1.5: cos^2 = 1/3.25, sin^2 = 2.25/3.25.
  EXPECT_NEAR(g.value.gates.alpha, 0.25 / 3.25, 1e-15);
  EXPECT_NEAR(g.value.gates.beta, 0.5 * 2.25 / 3.25, 1e-15);
  // The min_log_mu clamp: Mu_log = log 16, m = 5: -16 softplus(5) < -2.
  g = map_gates(Parametrization::kMdn, c, HeadParams{0, std::log(16.0), 0, 0, 0}, RawInputs{0, 0, 5, 0});
  EXPECT_EQ(g.value.gates.log_mu, -2.0);
  EXPECT_TRUE(g.value.mu_clamped);
  EXPECT_EQ(reference_config("1.3B").value.min_log_mu, -1.0);
  EXPECT_DOUBLE_EQ(reference_config("400M").value.tau(), 32.0);
  EXPECT_DOUBLE_EQ(reference_config("1.3B").value.tau(), 16.0);
}

TEST(Parametrization, SaturatedLimitsAreExact) {
  const ParamConfig c;
  const HeadParams h{std::log(8.0), std::log(8.0), 0.5, 0.5, std::log(2.0)};
  // e -> +inf: eta = 2; theta = atan(4); a -> -inf: alpha' = 1 so alpha = cos^2(theta) = 1/17.
  auto g = map_gates(Parametrization::kMdn, c, h, RawInputs{-1000, 1000, -1000, 1e6});
  ASSERT_TRUE(g.is_ok());
  EXPECT_EQ(g.value.gates.eta, 2.0);
  EXPECT_EQ(g.value.log_alpha_prime, 0.0);
  EXPECT_NEAR(g.value.gates.alpha, 1.0 / 17.0, 1e-16);
  EXPECT_NEAR(g.value.gates.beta, 16.0 / 17.0, 1e-15);
  EXPECT_EQ(g.value.gates.mu, 1.0);  // m -> -inf: softplus underflows, mu = 1 in double
  // e -> -inf: eta = 0, theta = 0, no bound: beta = 0, alpha = alpha'.
  g = map_gates(Parametrization::kMdn, c, h, RawInputs{0, 0, 0, -1e6});
  ASSERT_TRUE(g.is_ok());
  EXPECT_EQ(g.value.gates.eta, 0.0);
  EXPECT_EQ(g.value.gates.beta, 0.0);
  EXPECT_EQ(g.value.gates.log_alpha, g.value.log_alpha_prime);
  // Huge scales give the valid limits alpha = 0 and mu at its clamp, never NaN.
  g = map_gates(Parametrization::kMdn, c, HeadParams{800, 800, 0, 0, 800}, RawInputs{0, 0, 0, 1});
  ASSERT_TRUE(g.is_ok());
  EXPECT_EQ(g.value.gates.alpha, 0.0);
  EXPECT_EQ(g.value.gates.log_mu, -2.0);
  EXPECT_NEAR(g.value.gates.beta, 0.5, 1e-16);
  // A_log = 800 with a -> -inf: exp(800) * softplus(-1e4) is inf * 0 if formed naively.
  g = map_gates(Parametrization::kMdn, c, HeadParams{800, 0, 0, 0, 0}, RawInputs{-1e4, 0, 0, 0});
  ASSERT_TRUE(g.is_ok());
  EXPECT_EQ(g.value.log_alpha_prime, 0.0);
}

TEST(Parametrization, LogCosSquaredNearHalfPi) {
  // theta -> pi/2: log cos^2(theta) = -log(1 + r^2) = -2 log r - log1p(r^-2),
  // the second form computed independently; cos(atan(r)) in double would lose
  // all digits here.
  const ParamConfig c;
  for (double log_factor : {5.0, 20.0, 100.0, 300.0}) {
    const HeadParams h{-50, 0, 0, 0, log_factor};  // exp(A_log) ~ 2e-22: alpha' = 1 to rounding
    auto g = map_gates(Parametrization::kMdn, c, h, RawInputs{0, 0, 0, 0});
    ASSERT_TRUE(g.is_ok());
    const double r = std::exp(log_factor);  // eta = 1
    const double want = -2 * log_factor - std::log1p(1 / (r * r));
    EXPECT_NEAR(g.value.gates.log_alpha, want, 4e-16 * std::fabs(want)) << log_factor;
    EXPECT_NEAR(g.value.theta, M_PI / 2 - std::atan(1 / r), 1e-15);
  }
}

TEST(Parametrization, Monotonicity) {
  const ParamConfig c;
  const HeadParams h = initial_head_params(3, 0);
  auto at = [&](RawInputs x) { return map_gates(Parametrization::kMdn, c, h, x).value; };
  for (int i = 1; i <= 200; ++i) {
    const double t = -10 + 0.1 * i;
    // Each raw input moves its own gate monotonically, the others fixed.
    const MappedGates ga = at({t, 0, 0, 0}), ga0 = at({t - 0.1, 0, 0, 0});
    EXPECT_LT(ga.gates.log_alpha, ga0.gates.log_alpha);  // a up: alpha down
    const MappedGates gb = at({0, t, 0, 0}), gb0 = at({0, t - 0.1, 0, 0});
    EXPECT_GT(gb.gates.beta, gb0.gates.beta);
    const MappedGates gm = at({0, 0, t, 0}), gm0 = at({0, 0, t - 0.1, 0});
    EXPECT_LE(gm.gates.log_mu, gm0.gates.log_mu);
    // e up: eta up, theta up, so beta up and alpha down.
    const MappedGates ge = at({0, 0, 0, 30 * t}), ge0 = at({0, 0, 0, 30 * (t - 0.1)});
    EXPECT_GT(ge.gates.eta, ge0.gates.eta);
    EXPECT_GT(ge.gates.beta, ge0.gates.beta);
    EXPECT_LT(ge.gates.log_alpha, ge0.gates.log_alpha);
  }
}

// What the theta bound does and does not guarantee, over random, saturated and
// extreme inputs: alpha <= cos^2(theta), beta <= sin^2(theta), hence
// alpha + beta <= 1 (strict in exact arithmetic; rounding may reach 1 when both
// alpha' and beta' saturate to 1); mu in [exp(min_log_mu), 1]; eta in [0, 2];
// frozen rho < 1 whenever alpha, mu < 1 (DESIGN.md section 4, tier 1).
TEST(Parametrization, ReachableSetFacts) {
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> raw(-60, 60), lg(-12, 7);
  const ParamConfig c;
  double max_sum_unconstrained = 0;
  for (int i = 0; i < 20000; ++i) {
    const HeadParams h{lg(rng), lg(rng), raw(rng) / 6, raw(rng) / 6, lg(rng)};
    const RawInputs x{raw(rng), raw(rng), raw(rng), 30 * raw(rng)};
    const MappedGates g = map_gates(Parametrization::kMdn, c, h, x).value;
    const double r = g.gates.eta * std::exp(h.log_factor);
    // alpha = exp(-log1p(r^2) + log_alpha') and beta = sigmoid(log r^2) beta'
    // carry a relative rounding error of a few ulp of |log r^2| (exp of a
    // rounded argument) plus a few ulp of their own.
    const double lr2 = std::fabs(2 * (std::log(g.gates.eta) + h.log_factor));
    const double eps = (16 + 4 * lr2) * std::numeric_limits<double>::epsilon();
    EXPECT_LE(g.gates.alpha * (1 + r * r), 1 + eps);
    EXPECT_LE(g.gates.beta, r * r / (1 + r * r) * (1 + eps));
    EXPECT_LE(g.gates.alpha + g.gates.beta, 1 + eps);
    EXPECT_GE(g.gates.log_mu, c.min_log_mu);
    EXPECT_LE(g.gates.mu, 1.0);
    EXPECT_GE(g.gates.eta, 0.0);
    EXPECT_LE(g.gates.eta, 2.0);
    // Tier 1: frozen rho < 1 once alpha, mu < 1 (here by a margin that rounding
    // of the spectral radius cannot eat).
    if (g.gates.alpha < 1 - 1e-9 && g.gates.mu < 1 - 1e-9) {
      const FrozenSpectrum f = analyze_frozen(g.gates, SpectrumOptions{.transient_peak = false});
      EXPECT_LT(f.frozen_spectral_radius, 1.0);
    }
    const MappedGates u = map_gates(Parametrization::kMdnUnconstrained, c, h, x).value;
    EXPECT_EQ(u.gates.beta, u.beta_prime);
    EXPECT_EQ(u.gates.log_alpha, u.log_alpha_prime);
    max_sum_unconstrained = std::max(max_sum_unconstrained, u.gates.alpha + u.gates.beta);
    const MappedGates d = map_gates(Parametrization::kGdn, c, h, x).value;
    EXPECT_EQ(d.gates.mu, 0.0);
    EXPECT_EQ(d.gates.eta, 1.0);
    EXPECT_EQ(d.gates.log_alpha, u.gates.log_alpha);
  }
  // Without the bound, alpha + beta comes close to 2.
  EXPECT_GT(max_sum_unconstrained, 1.9);
}

TEST(Parametrization, BadInputsAreNamed) {
  const ParamConfig c;
  auto g = map_gates(Parametrization::kMdn, c, HeadParams{}, RawInputs{0, std::nan(""), 0, 0});
  ASSERT_FALSE(g.is_ok());
  EXPECT_NE(g.status.message.find("b = nan"), std::string::npos) << g.status.message;
  g = map_gates(Parametrization::kMdn, c, HeadParams{0, 0, 0, 0, INFINITY}, RawInputs{});
  ASSERT_FALSE(g.is_ok());
  EXPECT_NE(g.status.message.find("log_factor"), std::string::npos);
  EXPECT_FALSE(parse_parametrization("mdn2").is_ok());
  EXPECT_EQ(parse_parametrization("mdn-unconstrained").value, Parametrization::kMdnUnconstrained);
  ParamConfig bad;
  bad.min_log_mu = 0.5;
  EXPECT_NE(check(bad).message.find("min_log_mu"), std::string::npos);
  bad = ParamConfig{};
  bad.tau_factor = 0;
  EXPECT_FALSE(check(bad).is_ok());
  EXPECT_FALSE(reference_config("7B").is_ok());
}

TEST(Parametrization, ScalarHelpers) {
  for (double y : {1e-300, 1e-12, 1e-3, 0.1, 1.0, 30.0, 700.0}) {
    // softplus(x) = log1p(exp(x)) turns the rounding of x = inverse_softplus(y)
    // into a relative error of about |x| ulp.
    const double x = inverse_softplus(y);
    EXPECT_NEAR(softplus(x), y, 4 * (1 + std::fabs(x)) * 2.3e-16 * y) << y;
  }
  EXPECT_EQ(softplus(-800), 0.0);
  EXPECT_EQ(softplus(800), 800.0);
  EXPECT_EQ(sigmoid(-800), 0.0);
  EXPECT_EQ(sigmoid(800), 1.0);
  EXPECT_NEAR(sigmoid(logit(0.3)), 0.3, 1e-16);
  // sigmoid keeps relative accuracy in its lower tail: sigmoid(-50) = e^-50 / (1 + e^-50).
  EXPECT_NEAR(sigmoid(-50), std::exp(-50) / (1 + std::exp(-50)), 1e-16 * std::exp(-50));
}

}  // namespace
}  // namespace mdnstab
