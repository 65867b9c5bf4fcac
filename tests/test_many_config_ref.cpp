// The CPU reference of the many-configurations mode and of long random-input runs
// (src/mdnstab/many_config_ref.hpp) against independent values: the closed-form
// rotation growth and the certificate's witnesses (src/core/certify*.cpp), log
// max(alpha, mu) when keys do not act, cert's own Lyapunov estimator (a different
// generator and code) within standard errors, the gamma bound, and invariances.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "mdnstab/certify.hpp"
#include "mdnstab/lyapunov.hpp"
#include "mdnstab/many_config_ref.hpp"

namespace mdnstab {
namespace {

namespace kn = mdnstab::kernels;

Gates lin(double a, double b, double m, double e) { return Gates::from_linear(a, b, m, e).value; }

// A many-config problem owning its tables and outputs.
struct Problem {
  kn::ManyConfigParams p;
  std::vector<kn::ManyHead> heads;
  std::vector<double> gates, keys, log_norm;
  std::vector<std::int32_t> flags;

  std::uint32_t add_gate(const Gates& g) {
    for (double x : {g.alpha, g.beta, g.mu, g.eta}) gates.push_back(x);  // (insert: a GCC 12 false warning)
    return std::uint32_t(gates.size() / 4 - 1);
  }
  std::uint32_t add_key(double angle) {
    keys.push_back(std::cos(angle));
    keys.push_back(std::sin(angle));
    return std::uint32_t(keys.size() / 2 - 1);
  }
  kn::ManyHead& add_head(std::uint32_t gate_row) {
    kn::ManyHead h;
    h.gate_first = gate_row;
    h.stream = heads.size();
    heads.push_back(h);
    return heads.back();
  }
  void run(int dk, std::int64_t burn, std::int64_t steps, int K = 4, int threads = 0, std::uint64_t seed = 1) {
    p.heads = std::int64_t(heads.size());
    p.dk = dk;
    p.burn_in = burn;
    p.steps = steps;
    p.checkpoints = K;
    p.seed = seed;
    p.head = heads.data();
    p.gate_table = gates.data();
    p.gate_rows = std::int64_t(gates.size() / 4);
    p.key_table = keys.empty() ? nullptr : keys.data();
    p.key_rows = std::int64_t(keys.size() / 2);
    log_norm.assign(heads.size() * size_t(K + 1), NAN);
    flags.assign(heads.size(), -1);
    p.log_norm = log_norm.data();
    p.flags = flags.data();
    const Status s = many_config_ref(p, threads);
    ASSERT_TRUE(s.is_ok()) << s.message;
  }
  double rate(std::int64_t h) const { return kn::many_rate(p, h); }
};

TEST(ManyConfigRef, RotatingKeysGrowAtTheRotatingFrameRadius) {
  // One plane key rotated by `angle` each step (period 1, drift = angle): in the
  // rotating frame one constant 4x4 matrix (DESIGN.md section 4), so the rate is
  // log rotation_growth (certify's closed form). Finite-T error: log of the
  // eigenvector conditioning over T = 2e4 steps, below 1e-3 for these gates.
  for (const Gates& g : {lin(0.99, 0.9, 0.99, 1.9), lin(0.9, 0.5, 0.8, 1.2), lin(0.95, 0.3, 0.97, 1.99)})
    for (double th : {0.3, 0.868926, 1.4}) {
      Problem pr;
      kn::ManyHead& h = pr.add_head(pr.add_gate(g));
      h.key_mode = keygen::kKeyPlane;
      h.key_first = pr.add_key(0.0);
      h.drift = th;
      pr.run(2, 2000, 20000);
      EXPECT_NEAR(pr.rate(0), std::log(rotation_growth(g, th)), 1e-3) << th;
      EXPECT_EQ(pr.flags[0], 0);
    }
}

TEST(ManyConfigRef, ReplayedWitnessesGrowAtTheLowerBound) {
  // certify's witness (rotation or switching, a gate cycle for a set) replayed
  // here from its description only: the rate is log(lower_bound), up to the same
  // finite-T error as above.
  const std::vector<std::vector<Gates>> sets = {
      {lin(0.99, 0.9, 0.99, 1.9)}, {lin(0.6, 0.4, 0.99, 1.95)}, {lin(0.5, 0.9, 0.9, 1.0)},
      {lin(0.95, 0.5, 0.9, 1.5), lin(0.7, 0.9, 0.99, 1.9)}};
  for (const auto& set : sets) {
    const Certificate c = certify(set).value;
    const Witness& w = c.witness;
    ASSERT_NE(w.kind, Witness::Kind::kNone);
    Problem pr;
    for (const Gates& g : set) pr.add_gate(g);
    kn::ManyHead h;
    h.key_mode = keygen::kKeyPlane;
    if (w.kind == Witness::Kind::kRotation) {
      h.key_first = pr.add_key(0.0);
      h.key_period = 1;
      h.drift = w.angle;
    } else {
      for (const auto& k : w.keys) pr.keys.push_back(k[0]), pr.keys.push_back(k[1]);
      h.key_period = std::uint32_t(w.keys.size());
      h.drift = w.drift;
    }
    if (w.gate_index.size() > 1) {
      // The cycle of gate rows, copied in order so row first + (t mod L) is gate_index[t mod L].
      std::vector<double> cyc;
      for (int gi : w.gate_index) cyc.insert(cyc.end(), pr.gates.begin() + 4 * gi, pr.gates.begin() + 4 * gi + 4);
      h.gate_first = std::uint32_t(pr.gates.size() / 4);
      h.gate_count = std::uint32_t(w.gate_index.size());
      h.gate_mode = keygen::kGateCycle;
      pr.gates.insert(pr.gates.end(), cyc.begin(), cyc.end());
    } else {
      h.gate_first = w.gate_index.empty() ? 0 : std::uint32_t(w.gate_index[0]);
    }
    pr.heads.push_back(h);
    pr.run(2, 4000, 40000);
    EXPECT_NEAR(pr.rate(0), std::log(c.lower_bound), 1e-3) << w.family;
    EXPECT_LE(pr.rate(0), std::log(c.upper_bound) + 1e-3);
  }
}

TEST(ManyConfigRef, KeysDoNotActWithoutEta) {
  // eta = 0: M_t = mu M, S_t = alpha S - beta M on every coordinate: rate log max(alpha, mu).
  for (const Gates& g : {lin(0.9, 0.5, 0.7, 0.0), lin(0.6, 0.3, 0.8, 0.0)}) {
    Problem pr;
    pr.add_head(pr.add_gate(g));
    pr.run(16, 500, 5000);
    EXPECT_NEAR(pr.rate(0), std::log(std::max(g.alpha, g.mu)), 1e-3);
  }
}

TEST(ManyConfigRef, RandomKeysAgreeWithTheLyapunovEstimator) {
  // Two independent estimators (different generators, code, initial states) of the
  // same exponent: within 5 combined standard errors.
  for (const Gates& g : {lin(0.99, 0.9, 0.99, 1.9), lin(0.9, 0.5, 0.8, 1.2)}) {
    Problem pr;
    for (int i = 0; i < 32; ++i) pr.add_head(pr.add_gate(g));
    pr.run(8, 400, 4000);
    double m = 0, ss = 0;
    for (int i = 0; i < 32; ++i) m += pr.rate(i) / 32;
    for (int i = 0; i < 32; ++i) ss += (pr.rate(i) - m) * (pr.rate(i) - m);
    const double se = std::sqrt(ss / 31 / 32);
    LyapunovOptions o;
    o.dk = 8, o.steps = 4000, o.seed = 9, o.chains = 32;
    const LyapunovResult r = lyapunov(g, o).value;
    EXPECT_NEAR(m, r.exponent, 5 * std::hypot(se, r.stderr_)) << "se " << se << " " << r.stderr_;
    // And below the worst case over all key sequences.
    const Certificate c = certify(std::span<const Gates>(&g, 1)).value;
    for (int i = 0; i < 32; ++i) EXPECT_LE(pr.rate(i), std::log(c.upper_bound) + 0.5 * std::log(1e4) / 4000);
  }
}

TEST(ManyConfigRef, CertifiedGatesStayBelowGammaForEveryHead) {
  // |x_T|_W <= gamma^T |x_0|_W for any keys: rate <= log gamma + log(cond W) / (2 T).
  const Gates g = lin(0.9, 0.5, 0.0, 1.5);
  const Certificate c = certify(std::span<const Gates>(&g, 1)).value;
  ASSERT_EQ(c.verdict, Verdict::kCertified);
  const double w11 = c.W[0], w12 = c.W[1], w22 = c.W[2];
  const double tr = w11 + w22, det = w11 * w22 - w12 * w12, disc = std::sqrt(tr * tr / 4 - det);
  const double cond = (tr / 2 + disc) / (tr / 2 - disc);
  Problem pr;
  for (int i = 0; i < 16; ++i) pr.add_head(pr.add_gate(g));
  pr.heads[3].key_mode = keygen::kKeyPlane;
  pr.heads[3].key_first = pr.add_key(0.2);
  pr.heads[3].drift = c.witness.angle;
  pr.run(16, 0, 3000);
  for (int i = 0; i < 16; ++i) EXPECT_LE(pr.rate(i), std::log(c.upper_bound) + 0.5 * std::log(cond) / 3000 + 1e-12);
}

TEST(ManyConfigRef, ValueInputKeepsAContractingStateAtItsLevel) {
  // v != 0 with contracting gates: the state settles at the level v drives it to,
  // so the log norm stops falling (rate ~ 0 instead of log rho < 0).
  const Gates g = lin(0.9, 0.5, 0.5, 1.0);
  Problem pr;
  pr.add_head(pr.add_gate(g));
  pr.add_head(pr.add_gate(g)).v_std = 1.0;
  pr.run(8, 2000, 20000);
  EXPECT_LT(pr.rate(0), -0.05);
  EXPECT_NEAR(pr.rate(1), 0.0, 3e-4);  // log|x| of a stationary state moves by O(1): / 2e4 steps
  // And the renormalization is transparent to v: a growing state with v grows as without.
  const Gates up = lin(0.99, 0.9, 0.99, 1.9);
  Problem q;
  q.add_head(q.add_gate(up));
  q.add_head(q.add_gate(up)).v_std = 1.0;
  q.heads[1].stream = q.heads[0].stream;  // the same keys: v's share of the state decays
  q.run(8, 1000, 10000);
  EXPECT_NEAR(q.rate(0), q.rate(1), 1e-3);
  EXPECT_GT(q.rate(1), 0.05);
}

TEST(ManyConfigRef, GateModesThatMeanTheSameGiveTheSameBits) {
  // A random draw among identical rows, a cycle of identical rows and a box with
  // lo = hi are the constant gate: gate draws use their own domain, keys are untouched.
  const Gates g = lin(0.95, 0.6, 0.9, 1.7);
  Problem pr;
  const std::uint32_t r0 = pr.add_gate(g);
  pr.add_gate(g);
  pr.add_gate(g);
  for (int mode : {int(keygen::kGateConstant), int(keygen::kGateRandom), int(keygen::kGateCycle), int(keygen::kGateBox)}) {
    kn::ManyHead& h = pr.add_head(r0);
    h.stream = 7;  // the same keys for all four
    h.gate_mode = std::uint32_t(mode);
    h.gate_count = mode == keygen::kGateConstant ? 1 : (mode == keygen::kGateBox ? 2 : 3);
  }
  pr.run(12, 10, 500);
  for (int i = 1; i < 4; ++i)
    for (int j = 0; j <= 4; ++j) EXPECT_EQ(pr.log_norm[size_t(i * 5 + j)], pr.log_norm[size_t(j)]) << i;
}

TEST(ManyConfigRef, ResultsDoNotDependOnThreadsOrPosition) {
  Problem a;
  const std::uint32_t r = a.add_gate(lin(0.99, 0.9, 0.99, 1.9));
  for (int i = 0; i < 6; ++i) a.add_head(r);
  a.run(5, 100, 900, 3, 1);
  Problem b = a;
  std::swap(b.heads[0], b.heads[5]);  // streams travel with the heads
  b.run(5, 100, 900, 3, 2);
  for (int j = 0; j < 4; ++j) {
    EXPECT_EQ(a.log_norm[size_t(j)], b.log_norm[size_t(5 * 4 + j)]);
    EXPECT_EQ(a.log_norm[size_t(2 * 4 + j)], b.log_norm[size_t(2 * 4 + j)]);
  }
}

TEST(ManyConfigRef, ExactZeroStateIsFlagged) {
  // alpha = mu = beta = 0: S_1 = 0, then w = 0 and M = 0: the log norm is -inf.
  Problem pr;
  pr.add_head(pr.add_gate(lin(0.0, 0.0, 0.0, 1.0)));
  pr.run(4, 0, 10, 2);
  EXPECT_TRUE(pr.flags[0] & kn::kFlagZero);
  EXPECT_TRUE(std::isinf(pr.log_norm[2]) && pr.log_norm[2] < 0);
  EXPECT_TRUE(std::isfinite(pr.log_norm[0]));
}

TEST(ManyConfigRef, BadInputIsRefusedNamingTheValue) {
  Problem pr;
  pr.add_head(pr.add_gate(lin(0.9, 0.5, 0.8, 1.0)));
  pr.p.heads = 1, pr.p.dk = 300, pr.p.steps = 10, pr.p.head = pr.heads.data();
  pr.p.gate_table = pr.gates.data(), pr.p.gate_rows = 1;
  double ln[2];
  std::int32_t fl;
  pr.p.log_norm = ln, pr.p.flags = &fl;
  Status s = many_config_ref(pr.p);
  EXPECT_NE(s.message.find("dk = 300"), std::string::npos) << s.message;
  pr.p.dk = 4;
  pr.gates[1] = 1.5;  // beta
  s = many_config_ref(pr.p);
  EXPECT_NE(s.message.find("beta = 1.5"), std::string::npos) << s.message;
  pr.gates[1] = 0.5;
  pr.heads[0].key_mode = keygen::kKeyPlane;  // no key table
  s = many_config_ref(pr.p);
  EXPECT_NE(s.message.find("key rows"), std::string::npos) << s.message;
  pr.heads[0].key_mode = keygen::kKeyRandom;
  pr.heads[0].gate_count = 2;
  s = many_config_ref(pr.p);
  EXPECT_NE(s.message.find("constant gate"), std::string::npos) << s.message;
}

// ---- long runs of the full recurrence ----

struct LongRun {
  kn::LongRunParams p;
  std::vector<kn::ManyHead> heads;
  std::vector<double> gates, max_norm, final_norm;
  std::vector<std::int64_t> first;
  void add(const Gates& g) {
    for (double x : {g.alpha, g.beta, g.mu, g.eta}) gates.push_back(x);
    kn::ManyHead h;
    h.gate_first = std::uint32_t(heads.size());
    h.stream = heads.size();
    heads.push_back(h);
  }
  void run(std::int64_t T, int dk, int dv, std::int64_t segment, std::int64_t probe = 64) {
    p.batch = std::int64_t(heads.size());
    p.steps = T, p.dk = dk, p.dv = dv, p.seed = 5, p.segment = segment, p.probe_interval = probe;
    p.head = heads.data(), p.gate_table = gates.data(), p.gate_rows = std::int64_t(heads.size());
    max_norm.assign(heads.size(), -1), final_norm.assign(heads.size(), -1), first.assign(heads.size(), -2);
    p.max_norm = max_norm.data(), p.final_norm = final_norm.data(), p.first_nonfinite = first.data();
    const Status s = long_recurrent_ref(p, 2);
    ASSERT_TRUE(s.is_ok()) << s.message;
  }
};

TEST(LongRecurrentRef, SegmentsDoNotChangeTheRun) {
  LongRun a;
  a.add(lin(0.95, 0.5, 0.9, 1.5));
  a.add(lin(0.99, 0.9, 0.99, 1.9));
  a.run(1024, 16, 8, 1024);
  LongRun b = a;
  b.run(1024, 16, 8, 192);  // a multiple of the probe interval: the same probes
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(a.first[size_t(i)], b.first[size_t(i)]);
    EXPECT_EQ(a.max_norm[size_t(i)], b.max_norm[size_t(i)]);
  }
}

TEST(LongRecurrentRef, CertifiedStaysUnderItsBoundAndTheDesignExampleOverflows) {
  // Certified: |x_c|_W <= sup |b|_W / (1 - gamma) per value column with
  // |b| = eta sqrt(1 + beta^2) |v_c| and |v_c| <= kMaxNormal (keygen.hpp).
  const Gates good = lin(0.9, 0.5, 0.5, 1.0);
  const Certificate c = certify(std::span<const Gates>(&good, 1)).value;
  ASSERT_EQ(c.verdict, Verdict::kCertified);
  const double w11 = c.W[0], w12 = c.W[1], w22 = c.W[2];
  const double tr = w11 + w22, det = w11 * w22 - w12 * w12, disc = std::sqrt(tr * tr / 4 - det);
  const double cond = (tr / 2 + disc) / (tr / 2 - disc);
  const int dv = 8;
  const double bound = std::sqrt(dv * cond) * good.eta * std::sqrt(1 + good.beta * good.beta) * keygen::kMaxNormal /
                       (1 - c.upper_bound);
  LongRun r;
  r.add(good);
  r.add(lin(0.99, 0.9, 0.99, 1.9));  // random-key exponent ~ +0.15 at DK = 32
  r.run(3000, 32, dv, 1000);
  EXPECT_EQ(r.first[0], -1);
  EXPECT_GT(r.max_norm[0], 0.1);
  EXPECT_LE(r.max_norm[0], bound);
  EXPECT_TRUE(std::isfinite(r.final_norm[0]));
  // fp32 overflows near exp(88.7): about 88.7 / 0.15 ~ 600 steps.
  EXPECT_GT(r.first[1], 200);
  EXPECT_LT(r.first[1], 2000);
  EXPECT_TRUE(std::isnan(r.final_norm[1]));
}

}  // namespace
}  // namespace mdnstab
