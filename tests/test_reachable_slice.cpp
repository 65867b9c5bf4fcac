// The closed-form reachable slice (src/mdnstab/reachable_slice.hpp) against
// an independent source of truth: the gates sample_reachable_gates actually
// produces by mapping raw inputs. Every sample must lie in the slice of its
// own (mu, eta), and the samples must come close to the slice's edge.
#include <gtest/gtest.h>

#include <cmath>

#include "mdnstab/reachable_slice.hpp"
#include "mdnstab/sampling.hpp"

namespace mdnstab {
namespace {

struct Case {
  Parametrization p;
  SampleRange range;
};

TEST(ReachableSlice, EverySampleLiesInItsSlice) {
  const ParamConfig cfg = reference_config("400M").value;
  for (Case cs : {Case{Parametrization::kMdn, SampleRange::kInitial}, Case{Parametrization::kMdn, SampleRange::kBoth},
                  Case{Parametrization::kMdnUnconstrained, SampleRange::kBoth},
                  Case{Parametrization::kGdn, SampleRange::kBoth}}) {
    SamplingOptions so;
    so.samples = 4000;
    so.seed = 3;
    so.range = cs.range;
    auto smp = sample_reachable_gates(cs.p, cfg, so);
    ASSERT_TRUE(smp.is_ok()) << smp.status.message;
    double closest = 0;  // max over samples of beta / beta_max(alpha)
    long inside = 0, considered = 0;
    for (const SampledGate& s : smp.value) {
      const Gates& g = s.mapped.gates;
      // Samples at alpha = 0 or 1 in double (saturated) sit on the open slice's boundary.
      if (!(g.alpha > 0 && g.alpha < 1)) continue;
      ++considered;
      const ReachableSlice sl = reachable_slice(cs.p, cfg, cs.range, g.mu, g.eta);
      ASSERT_TRUE(sl.any()) << to_string(cs.p) << " mu=" << g.mu << " eta=" << g.eta;
      // Tolerance: the sampler forms beta = sigmoid(l) beta' and alpha from logs;
      // a few ulps of rounding may cross the edge, nothing more.
      const double oma = -std::expm1(g.log_alpha);
      const double bmax = reachable_beta_max(sl, g.alpha, oma);
      ASSERT_FALSE(std::isnan(bmax)) << to_string(cs.p) << " alpha=" << g.alpha;
      EXPECT_LE(g.beta, bmax * (1 + 1e-12) + 1e-300)
          << to_string(cs.p) << " alpha=" << g.alpha << " beta=" << g.beta << " mu=" << g.mu << " eta=" << g.eta;
      const bool in = reachable(sl, g.alpha, g.beta * (1 - 1e-12), oma);
      EXPECT_TRUE(in) << to_string(cs.p) << " alpha=" << g.alpha << " beta=" << g.beta << " mu=" << g.mu
                      << " eta=" << g.eta;
      inside += in;
      if (bmax > 0) closest = std::max(closest, g.beta / bmax);
    }
    ASSERT_GT(considered, 1000) << to_string(cs.p);
    EXPECT_GE(double(inside), 0.999 * double(considered)) << to_string(cs.p);
    // The edge is reached, not just bounded: some sample comes within 2% of it.
    EXPECT_GT(closest, 0.98) << to_string(cs.p) << " " << to_string(cs.range);
  }
}

TEST(ReachableSlice, MdnEdgeIsAlphaPlusBetaBelowOne) {
  // With the wide box the theta bound is the only limit: beta < 1 - alpha.
  const ParamConfig cfg = reference_config("400M").value;
  const ReachableSlice sl = reachable_slice(Parametrization::kMdn, cfg, SampleRange::kWide, 0.99, 1.9);
  ASSERT_TRUE(sl.any());
  EXPECT_TRUE(reachable(sl, 0.5, 0.49));
  EXPECT_FALSE(reachable(sl, 0.5, 0.51));
  EXPECT_NEAR(reachable_beta_max(sl, 0.3), 0.7, 1e-12);
  // Unconstrained: beta anywhere in (0, 1) for any alpha.
  const ReachableSlice un = reachable_slice(Parametrization::kMdnUnconstrained, cfg, SampleRange::kWide, 0.99, 1.9);
  EXPECT_TRUE(reachable(un, 0.9, 0.9));
}

TEST(ReachableSlice, MuBelowTheClampIsNotReachable) {
  const ParamConfig c400 = reference_config("400M").value;  // min_log_mu = -2
  const ParamConfig c13 = reference_config("1.3B").value;   // min_log_mu = -1
  EXPECT_TRUE(reachable_slice(Parametrization::kMdn, c400, SampleRange::kBoth, 0.3, 1.5).any());
  const ReachableSlice s13 = reachable_slice(Parametrization::kMdn, c13, SampleRange::kBoth, 0.3, 1.5);
  EXPECT_FALSE(s13.any());
  EXPECT_FALSE(s13.mu_reachable);
  EXPECT_TRUE(s13.eta_reachable);
  EXPECT_TRUE(std::isnan(reachable_beta_max(s13, 0.5)));
  EXPECT_FALSE(reachable(s13, 0.5, 0.1));
}

TEST(ReachableSlice, GdnReachesOnlyMuZeroEtaOne) {
  const ParamConfig cfg = reference_config("400M").value;
  EXPECT_TRUE(reachable_slice(Parametrization::kGdn, cfg, SampleRange::kBoth, 0.0, 1.0).any());
  EXPECT_FALSE(reachable_slice(Parametrization::kGdn, cfg, SampleRange::kBoth, 0.5, 1.0).any());
  EXPECT_FALSE(reachable_slice(Parametrization::kGdn, cfg, SampleRange::kBoth, 0.0, 1.5).any());
}

}  // namespace
}  // namespace mdnstab
