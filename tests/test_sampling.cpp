// Reachable-gate sampling: repeatable across thread counts, inside its stated
// box, drawn from DESIGN.md's initialization law, and reaching the saturating
// edges (mu, alpha', beta' -> 1, eta -> 2) that decide the certificates.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "mdnstab/sampling.hpp"

namespace mdnstab {
namespace {

std::vector<SampledGate> draw(Parametrization p, SampleRange r, long n, int threads = 0, uint64_t seed = 9) {
  SamplingOptions o;
  o.samples = n;
  o.range = r;
  o.seed = seed;
  o.threads = threads;
  auto s = sample_reachable_gates(p, ParamConfig{}, o);
  EXPECT_TRUE(s.is_ok()) << s.status.message;
  return s.value;
}

TEST(Sampling, RepeatableAcrossThreadCounts) {
  const auto a = draw(Parametrization::kMdn, SampleRange::kBoth, 3000, 1);
  const auto b = draw(Parametrization::kMdn, SampleRange::kBoth, 3000, 2);
  const auto c = draw(Parametrization::kMdn, SampleRange::kBoth, 3000, 2, 10);
  ASSERT_EQ(a.size(), b.size());
  int differ = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].raw.a, b[i].raw.a);
    EXPECT_EQ(a[i].head.log_factor, b[i].head.log_factor);
    EXPECT_EQ(a[i].mapped.gates.log_alpha, b[i].mapped.gates.log_alpha);
    differ += a[i].raw.e != c[i].raw.e;
  }
  EXPECT_GT(differ, 2990);  // another seed, another stream
}

TEST(Sampling, StaysInsideTheBoxAndKeepsRawValues) {
  const ParamConfig c;
  for (SampleRange r : {SampleRange::kInitial, SampleRange::kWide}) {
    const SamplingBox box = sampling_box(r);
    for (const SampledGate& s : draw(Parametrization::kMdn, r, 4000)) {
      EXPECT_EQ(s.range, r);
      EXPECT_LE(std::fabs(s.raw.a), box.raw_abs);
      EXPECT_LE(std::fabs(s.raw.m), box.raw_abs);
      EXPECT_LE(std::fabs(s.raw.e), box.e_over_tau_abs * c.tau() * (1 + 1e-15));
      const double A = std::exp(s.head.A_log), F = std::exp(s.head.log_factor);
      EXPECT_GT(A, box.A_lo * (1 - 1e-12));
      EXPECT_LE(A, box.A_hi * (1 + 1e-12));
      EXPECT_LE(F, box.factor_hi * (1 + 1e-12));
      const double dt = softplus(s.head.dt_bias);
      EXPECT_GE(dt, box.dt_lo * (1 - 1e-9));
      EXPECT_LE(dt, box.dt_hi * (1 + 1e-9));
      // The gates are the map of the kept raw values.
      const MappedGates g = map_gates(Parametrization::kMdn, c, s.head, s.raw).value;
      EXPECT_EQ(g.gates.log_alpha, s.mapped.gates.log_alpha);
      EXPECT_EQ(g.gates.beta, s.mapped.gates.beta);
    }
  }
}

TEST(Sampling, InitialLawOfLearnedParameters) {
  // exp(A_log) ~ U(0, 16): mean 8, sd 16/sqrt(12); over n uniform-kind samples
  // the mean is within 5 standard errors. log10(dt) ~ U(-3, -1): mean -2.
  const auto s = draw(Parametrization::kMdn, SampleRange::kInitial, 20000);
  double sum_a = 0, sum_f = 0, sum_ldt = 0;
  long n = 0;
  for (const SampledGate& g : s) {
    if (g.kind != SampleKind::kUniform) continue;
    sum_a += std::exp(g.head.A_log);
    sum_f += std::exp(g.head.log_factor);
    sum_ldt += std::log10(softplus(g.head.dt_bias));
    ++n;
  }
  ASSERT_GT(n, 7000);  // 40% uniform
  EXPECT_NEAR(sum_a / n, 8.0, 5 * 16 / std::sqrt(12.0 * n));
  EXPECT_NEAR(sum_f / n, 2.0, 5 * 4 / std::sqrt(12.0 * n));
  EXPECT_NEAR(sum_ldt / n, -2.0, 5 * 2 / std::sqrt(12.0 * n));
}

TEST(Sampling, ReachesTheSaturatingEdges) {
  // The edges that decide gamma: how close to 1 (or 2) the samples get.
  for (SampleRange r : {SampleRange::kInitial, SampleRange::kWide}) {
    const auto s = draw(Parametrization::kMdn, r, 20000);
    double min_1m_mu = 1, min_1m_alpha_p = 1, min_2m_eta = 2, min_1m_beta_p = 1, max_sum = 0;
    long kinds[3] = {0, 0, 0};
    for (const SampledGate& g : s) {
      min_1m_mu = std::min(min_1m_mu, -std::expm1(g.mapped.gates.log_mu));
      min_1m_alpha_p = std::min(min_1m_alpha_p, -std::expm1(g.mapped.log_alpha_prime));
      min_2m_eta = std::min(min_2m_eta, 2 - g.mapped.gates.eta);
      min_1m_beta_p = std::min(min_1m_beta_p, 1 - g.mapped.beta_prime);
      max_sum = std::max(max_sum, g.mapped.gates.alpha + g.mapped.gates.beta);
      ++kinds[int(g.kind)];
    }
    // Expected counts: 35% edge, 25% corner, 40% uniform, within 5 sd.
    EXPECT_NEAR(kinds[1], 7000, 5 * std::sqrt(20000 * 0.35 * 0.65));
    EXPECT_NEAR(kinds[2], 5000, 5 * std::sqrt(20000 * 0.25 * 0.75));
    if (r == SampleRange::kInitial) {
      // Raw inputs end at +-4 (e/tau at +-4): 1 - sigmoid(4) = 0.018,
      // 2 - eta >= 2 - 2 sigmoid(8) = 6.7e-4; mu and alpha' reach 1 through
      // small exp(Mu_log), exp(A_log) (their range starts at 0).
      EXPECT_LT(min_1m_beta_p, 0.0181);
      EXPECT_GT(min_1m_beta_p, 0.0179);
      EXPECT_LT(min_2m_eta, 6.8e-4);
      EXPECT_LT(min_1m_mu, 1e-4);
      EXPECT_LT(min_1m_alpha_p, 1e-4);
    } else {
      EXPECT_LT(min_1m_beta_p, 1e-15);
      EXPECT_LT(min_2m_eta, 1e-15);
      EXPECT_LT(min_1m_mu, 1e-12);
      EXPECT_LT(min_1m_alpha_p, 1e-12);
    }
    EXPECT_GT(max_sum, 0.97);  // alpha + beta < 1 is approached
    EXPECT_LE(max_sum, 1 + 1e-15);
  }
}

TEST(Sampling, FixedHeadAndGdn) {
  SamplingOptions o;
  o.samples = 500;
  o.head = HeadParams{1, 2, 0.5, -0.5, 0.3};
  auto s = sample_reachable_gates(Parametrization::kGdn, ParamConfig{}, o);
  ASSERT_TRUE(s.is_ok());
  for (const SampledGate& g : s.value) {
    EXPECT_EQ(g.head.A_log, 1);
    EXPECT_EQ(g.head.log_factor, 0.3);
    EXPECT_EQ(g.mapped.gates.mu, 0.0);
    EXPECT_EQ(g.mapped.gates.eta, 1.0);
  }
}

TEST(Sampling, BadOptionsAreNamed) {
  SamplingOptions o;
  o.samples = 0;
  auto s = sample_reachable_gates(Parametrization::kMdn, ParamConfig{}, o);
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.status.message.find("samples = 0"), std::string::npos);
  o = SamplingOptions{};
  o.edge_fraction = 0.8;
  EXPECT_FALSE(sample_reachable_gates(Parametrization::kMdn, ParamConfig{}, o).is_ok());
  o = SamplingOptions{};
  o.range = SampleRange::kWide;
  SamplingBox b = sampling_box(SampleRange::kWide);
  b.A_lo = 0;  // log-uniform from 0 is impossible
  o.box = b;
  s = sample_reachable_gates(Parametrization::kMdn, ParamConfig{}, o);
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.status.message.find("exp(A_log)"), std::string::npos);
  o = SamplingOptions{};
  o.head = HeadParams{std::nan(""), 0, 0, 0, 0};
  s = sample_reachable_gates(Parametrization::kMdn, ParamConfig{}, o);
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.status.message.find("A_log = nan"), std::string::npos);
  EXPECT_FALSE(parse_sample_range("everywhere").is_ok());
}

}  // namespace
}  // namespace mdnstab
