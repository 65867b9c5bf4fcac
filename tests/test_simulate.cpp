// The probed long run (src/mdnstab/simulate.hpp): the log-slope fit on exact
// exponentials, independence from the segment size, the growth of rotating keys
// against the closed-form rotation growth (certify.hpp), early stop on overflow,
// jittered and dumped gates as the runner sees them, and bad options.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <set>

#include "mdnstab/certify.hpp"
#include "mdnstab/simulate.hpp"

namespace mdnstab {
namespace {

Gates lin(double a, double b, double m, double e) { return Gates::from_linear(a, b, m, e).value; }

SimulateResult run(const SimulateOptions& o, const SegmentRunner& r = run_segment_cpu) {
  auto res = simulate(o, r);
  EXPECT_TRUE(res.is_ok()) << res.status.message;
  return res.value;
}

TEST(Simulate, LogSlopeFitRecoversAnExponential) {
  std::vector<double> x, y;
  for (int i = 0; i < 50; ++i) x.push_back(i), y.push_back(3.0 * std::exp(0.05 * i));
  y[7] = std::numeric_limits<double>::quiet_NaN();  // left out
  y[9] = 0;                                         // left out
  int64_t n = 0;
  EXPECT_NEAR(fit_log_slope(x, y, &n), 0.05, 1e-12);
  EXPECT_EQ(n, 48);
  EXPECT_TRUE(std::isnan(fit_log_slope({1.0}, {2.0})));
}

TEST(Simulate, SegmentSizeDoesNotChangeTheRun) {
  SimulateOptions o;
  o.batch = 2, o.heads = 2, o.dk = 6, o.dv = 3, o.steps = 203, o.seed = 5;
  o.gates = lin(0.95, 0.4, 0.9, 1.2);
  o.gate_jitter = 0.05;
  o.probe_every = 10;
  const SimulateResult a = run(o);
  o.segment = 30;  // three probe intervals per call
  const SimulateResult b = run(o);
  EXPECT_EQ(b.segment, 30);
  ASSERT_EQ(a.probes.size(), b.probes.size());
  EXPECT_EQ(a.probes.size(), 2u * 2 * 21);  // ceil(203 / 10) per head
  for (size_t i = 0; i < a.probes.size(); ++i) {
    EXPECT_EQ(a.probes[i].step, b.probes[i].step);
    EXPECT_EQ(a.probes[i].norm_s, b.probes[i].norm_s) << i;  // same inputs, same operations
    EXPECT_EQ(a.probes[i].max_abs_o, b.probes[i].max_abs_o) << i;
  }
  EXPECT_EQ(a.probes.back().step, 203);
}

TEST(Simulate, RotatingKeysGrowAtTheClosedFormRate) {
  // Keys turning by a fixed angle in a plane: the growth per step is the spectral
  // radius of one 4x4 matrix in the rotating frame (DESIGN.md section 4). The input
  // v only adds a bounded forcing; over ~2700 fitted steps the oscillation of a
  // complex dominant pair moves the slope by ~1e-3.
  const Gates g = lin(0.9, 0.5, 0.8, 1.2);
  SimulateOptions o;
  o.heads = 2, o.dk = 8, o.dv = 2, o.steps = 3000, o.seed = 7;
  o.gates = g;
  o.rotating_keys = true;
  o.angle = 0.2;
  o.probe_every = 10;
  const double expect = std::log(rotation_growth(g, 0.2));
  ASSERT_GT(expect, 0.01);
  for (const SimHead& h : run(o).heads) {
    EXPECT_NEAR(h.growth_rate, expect, 3e-3) << h.head;
    EXPECT_EQ(h.first_nonfinite, -1);
  }
}

TEST(Simulate, OverflowStopsTheRunAndIsFoundAtAnySegmentSize) {
  // DESIGN.md section 4's gates with random keys at DK = 2 grow ~e^0.18 per step:
  // the fp32 state overflows after a few hundred steps.
  SimulateOptions o;
  o.heads = 3, o.dk = 2, o.dv = 4, o.steps = 5000, o.seed = 11;
  o.gates = lin(0.99, 0.9, 0.99, 1.9);
  o.probe_every = 25;
  const SimulateResult a = run(o);
  o.segment = 50;
  const SimulateResult b = run(o);
  for (size_t h = 0; h < a.heads.size(); ++h) {
    EXPECT_GT(a.heads[h].first_nonfinite, 100);
    EXPECT_LT(a.heads[h].first_nonfinite, 1500);
    EXPECT_EQ(a.heads[h].first_nonfinite, b.heads[h].first_nonfinite);
    EXPECT_NEAR(a.heads[h].growth_rate, 0.18, 0.05);  // DESIGN.md: about +0.18 per step at DK = 2
  }
  EXPECT_LT(b.steps_run, 5000);  // every head overflowed: the run stopped
  EXPECT_EQ(b.steps_run % 50, 0);
}

TEST(Simulate, JitteredGatesStayInRangeAndVary) {
  SimulateOptions o;
  o.heads = 2, o.dk = 4, o.dv = 2, o.steps = 400, o.seed = 3;
  o.gates = lin(0.98, 0.95, 0.02, 1.95);
  o.gate_jitter = 0.1;
  std::set<float> seen;
  bool in_range = true;
  auto spy = [&](const SimSegment& s) {
    for (int64_t i = 0; i < s.batch * s.steps * s.heads; ++i) {
      in_range = in_range && s.log_alpha[i] <= 0 && s.log_mu[i] <= 0 && s.beta[i] >= 0 && s.beta[i] <= 1 &&
                 s.eta[i] >= 0 && s.eta[i] <= 2;
      seen.insert(s.eta[i]);
    }
    return run_segment_cpu(s);
  };
  run(o, spy);
  EXPECT_TRUE(in_range);
  EXPECT_GT(seen.size(), 100u);
}

TEST(Simulate, DumpedGatesAreCycled) {
  GateDump d;
  d.batch = 1, d.time = 3, d.heads = 1, d.format = "csv";
  d.gates = {lin(0.9, 0.1, 0.5, 1.0), lin(0.8, 0.2, 0.4, 0.5), lin(0.7, 0.3, 0.3, 0.25)};
  SimulateOptions o;
  o.heads = 2, o.dk = 4, o.dv = 2, o.steps = 10;
  o.dump = &d;
  std::vector<float> beta;
  run(o, [&](const SimSegment& s) {
    beta.assign(s.beta, s.beta + s.steps * s.heads);
    return run_segment_cpu(s);
  });
  ASSERT_EQ(beta.size(), 20u);
  for (int t = 0; t < 10; ++t)
    for (int h = 0; h < 2; ++h) EXPECT_FLOAT_EQ(beta[t * 2 + h], 0.1f * float(t % 3 + 1)) << t;
}

TEST(Simulate, BadOptionsNameTheValue) {
  auto expect_bad = [](SimulateOptions o, const std::string& named) {
    const auto r = simulate(o, run_segment_cpu);
    EXPECT_FALSE(r.is_ok()) << named;
    EXPECT_NE(r.status.message.find(named), std::string::npos) << r.status.message;
  };
  SimulateOptions o;
  o.dk = 4, o.dv = 2, o.steps = 10;
  SimulateOptions b = o;
  b.dk = 0;
  expect_bad(b, "dk = 0");
  b = o, b.steps = 0;
  expect_bad(b, "steps = 0");
  b = o, b.gate_jitter = 1.5;
  expect_bad(b, "jitter = 1.5");
  b = o, b.rotating_keys = true, b.dk = 1;
  expect_bad(b, "dk >= 2");
  b = o, b.heads = 0;
  expect_bad(b, "heads = 0");
}

}  // namespace
}  // namespace mdnstab
