// The many-configurations kernel (kernels/many_config.cu) replayed on the CPU
// reference (src/core/many_config_ref.cpp, double precision, the same counter
// generator): for a sample of heads of every gate and key mode, the growth rates agree
// to 1e-5 per step. Also the long runs of the recurrent kernel against recurrent_ref
// on the same inputs. Outputs are NaN-poisoned before each run. Without a GPU the
// device cases skip, saying why; the check() cases always run.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "many_config.hpp"
#include "mdnstab/certify.hpp"
#include "mdnstab/many_config_ref.hpp"

namespace mdnstab {
namespace {

namespace kn = mdnstab::kernels;

// fp32 state and keys against double: each step perturbs the state by a few ulps
// (~1e-7 relative) and the keys by a few ulps of float log/sqrt/sincospi; the rate
// is a time average of log-norm increments that depend smoothly on both (the state's
// direction is pulled back by the contraction of projective space), so the rates
// differ by O(1e-7). The bound is 1e-5 per step.
constexpr double kRateTol = 1e-5;

#define REQUIRE_GPU()                                       \
  do {                                                      \
    std::string why_;                                       \
    if (kn::device_count(&why_) <= 0) {                     \
      GTEST_SKIP() << "no GPU: " << why_;                   \
    }                                                       \
  } while (0)

Gates lin(double a, double b, double m, double e) { return Gates::from_linear(a, b, m, e).value; }

struct Problem {
  kn::ManyConfigParams p;
  std::vector<kn::ManyHead> heads;
  std::vector<double> gates, keys, log_norm;
  std::vector<std::int32_t> flags;
  std::uint32_t add_gate(const Gates& g) {
    for (double x : {g.alpha, g.beta, g.mu, g.eta}) gates.push_back(x);
    return std::uint32_t(gates.size() / 4 - 1);
  }
  void finish(int dk, std::int64_t burn, std::int64_t steps, int K) {
    for (size_t h = 0; h < heads.size(); ++h) heads[h].stream = h;
    p.heads = std::int64_t(heads.size());
    p.dk = dk;
    p.burn_in = burn;
    p.steps = steps;
    p.checkpoints = K;
    p.seed = 12345;
    p.head = heads.data();
    p.gate_table = gates.data();
    p.gate_rows = std::int64_t(gates.size() / 4);
    p.key_table = keys.empty() ? nullptr : keys.data();
    p.key_rows = std::int64_t(keys.size() / 2);
    log_norm.assign(heads.size() * size_t(K + 1), NAN);  // poison
    flags.assign(heads.size(), -1);
    p.log_norm = log_norm.data();
    p.flags = flags.data();
  }
  // The same problem restricted to heads `ids` (streams travel with the heads).
  Problem subset(const std::vector<size_t>& ids) const {
    Problem q = *this;
    q.heads.clear();
    for (size_t i : ids) q.heads.push_back(heads[i]);
    q.p.heads = std::int64_t(q.heads.size());
    q.p.head = q.heads.data();
    q.p.gate_table = q.gates.data();
    q.p.key_table = q.keys.empty() ? nullptr : q.keys.data();
    q.log_norm.assign(q.heads.size() * size_t(p.checkpoints + 1), NAN);
    q.flags.assign(q.heads.size(), -1);
    q.p.log_norm = q.log_norm.data();
    q.p.flags = q.flags.data();
    return q;
  }
};

// A mix of every gate mode and key mode over gates that grow, decay and sit near 1.
Problem mixed(int heads_per_kind) {
  Problem pr;
  const std::vector<Gates> gs = {lin(0.99, 0.9, 0.99, 1.9), lin(0.9, 0.5, 0.5, 1.0), lin(0.999, 0.5, 0.766, 1.2),
                                 lin(0.5, 0.1, 0.3, 0.5), lin(0.95, 0.3, 0.97, 1.99)};
  std::vector<std::uint32_t> rows;
  for (const Gates& g : gs) rows.push_back(pr.add_gate(g));
  const std::uint32_t box = pr.add_gate(lin(0.9, 0.2, 0.8, 0.5));
  pr.add_gate(lin(0.99, 0.9, 0.99, 1.9));
  // A witness to replay: certify's schedule for the first gate.
  const Certificate c = certify(std::span<const Gates>(&gs[0], 1)).value;
  for (int i = 0; i < heads_per_kind; ++i)
    for (size_t k = 0; k < gs.size(); ++k) {
      kn::ManyHead h;
      h.gate_first = rows[k];
      pr.heads.push_back(h);  // random keys, constant gates
      h.v_std = 0.5;
      pr.heads.push_back(h);  // with a value input
      kn::ManyHead s;
      s.gate_mode = keygen::kGateRandom, s.gate_first = 0, s.gate_count = std::uint32_t(gs.size());
      pr.heads.push_back(s);  // gates drawn from the set per step
      kn::ManyHead b;
      b.gate_mode = keygen::kGateBox, b.gate_first = box, b.gate_count = 2;
      pr.heads.push_back(b);  // gates drawn from a box per step
      kn::ManyHead cy;
      cy.gate_mode = keygen::kGateCycle, cy.gate_first = 0, cy.gate_count = 3;
      cy.key_mode = keygen::kKeyPlane, cy.key_first = 0, cy.key_period = 1, cy.drift = 0.3 + 0.1 * double(k);
      pr.heads.push_back(cy);  // rotating keys over a gate cycle
      kn::ManyHead w;
      w.gate_first = rows[0];
      w.key_mode = keygen::kKeyPlane, w.key_first = 0, w.key_period = 1, w.drift = c.witness.angle;
      pr.heads.push_back(w);  // the witness of gate 0
    }
  pr.keys = {1.0, 0.0};
  return pr;
}

void run_gpu(Problem& pr) {
  std::string why;
  kn::ManyConfigInfo info;
  ASSERT_EQ(kn::run_many_config(pr.p, &info, &why), kn::Status::kOk) << why;
  EXPECT_GE(info.devices, 1);
  EXPECT_GT(info.seconds, 0);
}

void replay(const Problem& gpu, const std::vector<size_t>& ids, const std::string& what) {
  Problem cpu = gpu.subset(ids);
  const Status s = many_config_ref(cpu.p);
  ASSERT_TRUE(s.is_ok()) << s.message;
  for (size_t j = 0; j < ids.size(); ++j) {
    const auto h = std::int64_t(ids[j]);
    ASSERT_EQ(gpu.flags[ids[j]] & kn::kFlagNonFinite, 0) << what << " head " << h;
    const double rg = kn::many_rate(gpu.p, h), rc = kn::many_rate(cpu.p, std::int64_t(j));
    ASSERT_TRUE(std::isfinite(rg)) << what << " head " << h;
    EXPECT_NEAR(rg, rc, kRateTol) << what << " head " << h << " mode " << gpu.heads[ids[j]].gate_mode << "/"
                                  << gpu.heads[ids[j]].key_mode;
    // Every checkpoint was written and tracks the CPU's log norm.
    for (int k = 0; k <= gpu.p.checkpoints; ++k) {
      const double lg = gpu.log_norm[ids[j] * size_t(gpu.p.checkpoints + 1) + size_t(k)];
      const double lc = cpu.log_norm[j * size_t(gpu.p.checkpoints + 1) + size_t(k)];
      ASSERT_TRUE(std::isfinite(lg)) << what << " head " << h << " checkpoint " << k;
      EXPECT_NEAR(lg, lc, kRateTol * double(std::max<std::int64_t>(1, kn::many_checkpoint_step(gpu.p, k))) + 1e-5)
          << what << " head " << h << " checkpoint " << k;
    }
  }
}

TEST(GpuManyConfig, ReplayedOnTheCpuAtDk128) {
  REQUIRE_GPU();
  Problem pr = mixed(40);  // 1200 heads
  pr.finish(128, 2000, 20000, 4);
  run_gpu(pr);
  std::vector<size_t> ids;
  for (size_t h = 0; h < pr.heads.size(); h += 37) ids.push_back(h);  // 33 heads over every mode
  for (size_t h = 0; h < 30; ++h) ids.push_back(h);                    // one of each kind, twice over
  replay(pr, ids, "DK 128");
}

TEST(GpuManyConfig, ReplayedOnTheCpuAtOtherKeyDimensions) {
  REQUIRE_GPU();
  for (int dk : {1, 2, 3, 8, 37, 64, 100, 256}) {
    Problem pr = mixed(3);
    if (dk < 2)  // plane keys need two components
      std::erase_if(pr.heads, [](const kn::ManyHead& h) { return h.key_mode == keygen::kKeyPlane; });
    pr.finish(dk, 500, 4000, 2);
    run_gpu(pr);
    std::vector<size_t> ids;
    for (size_t h = 0; h < pr.heads.size(); h += 5) ids.push_back(h);
    replay(pr, ids, "DK " + std::to_string(dk));
  }
}

TEST(GpuManyConfig, HeadsDoNotDependOnTheirPositionOrTheDeviceSplit) {
  REQUIRE_GPU();
  Problem a = mixed(8);
  a.finish(128, 100, 2000, 2);
  run_gpu(a);
  std::vector<size_t> rev;
  for (size_t h = a.heads.size(); h-- > 0;) rev.push_back(h);
  Problem b = a.subset(rev);
  run_gpu(b);
  for (size_t j = 0; j < rev.size(); ++j)
    for (int k = 0; k <= 2; ++k)
      ASSERT_EQ(a.log_norm[rev[j] * 3 + size_t(k)], b.log_norm[j * 3 + size_t(k)]) << "head " << rev[j];
  std::string why;
  if (kn::device_count(&why) < 2) GTEST_SKIP() << "one GPU: the split over devices is not exercised here";
  Problem c = a.subset(rev);
  c.p.max_devices = 1;
  run_gpu(c);
  EXPECT_EQ(c.log_norm, b.log_norm);
}

TEST(GpuManyConfig, CheckRefusesBadInputWithoutADevice) {
  Problem pr;
  pr.add_gate(lin(0.9, 0.5, 0.8, 1.0));
  pr.heads.resize(2);
  pr.finish(300, 0, 10, 1);
  std::string why;
  EXPECT_EQ(kn::run_many_config(pr.p, nullptr, &why), kn::Status::kUnsupported);
  EXPECT_NE(why.find("dk = 300"), std::string::npos) << why;
  pr.finish(8, 0, 10, 1);
  pr.heads[1].gate_first = 5;
  EXPECT_EQ(kn::run_many_config(pr.p, nullptr, &why), kn::Status::kInvalidArgument);
  EXPECT_NE(why.find("head 1"), std::string::npos) << why;
}

// ---- long runs of the recurrent kernel ----

struct Long {
  kn::LongRunParams p;
  std::vector<kn::ManyHead> heads;
  std::vector<double> gates, max_norm, final_norm;
  std::vector<std::int64_t> first;
  void finish(std::int64_t T, int dk, int dv) {
    for (size_t h = 0; h < heads.size(); ++h) heads[h].stream = h;
    p.batch = std::int64_t(heads.size()), p.steps = T, p.dk = dk, p.dv = dv, p.seed = 99;
    p.segment = 1024, p.probe_interval = 256;
    p.head = heads.data(), p.gate_table = gates.data(), p.gate_rows = std::int64_t(gates.size() / 4);
    max_norm.assign(heads.size(), NAN), final_norm.assign(heads.size(), NAN), first.assign(heads.size(), -7);
    p.max_norm = max_norm.data(), p.final_norm = final_norm.data(), p.first_nonfinite = first.data();
  }
};

TEST(GpuLongRun, MatchesTheFp32ReferenceOnTheSameInputs) {
  REQUIRE_GPU();
  Long g;
  for (const Gates& x : {lin(0.9, 0.5, 0.5, 1.0), lin(0.999, 0.5, 0.766, 1.2), lin(0.99, 0.9, 0.99, 1.9), lin(0.5, 0.1, 0.3, 0.5)}) {
    for (double v : {x.alpha, x.beta, x.mu, x.eta}) g.gates.push_back(v);
    kn::ManyHead h;
    h.gate_first = std::uint32_t(g.heads.size());
    g.heads.push_back(h);
  }
  kn::ManyHead set;  // the first three drawn per step
  set.gate_mode = keygen::kGateRandom, set.gate_count = 3;
  g.heads.push_back(set);
  g.finish(3000, 64, 8);
  Long c = g;
  c.finish(3000, 64, 8);
  std::string why;
  ASSERT_EQ(kn::run_long_recurrent(g.p, &why), kn::Status::kOk) << why;
  ASSERT_TRUE(long_recurrent_ref(c.p).is_ok());
  for (size_t b = 0; b < g.heads.size(); ++b) {
    EXPECT_EQ(g.first[b] >= 0, c.first[b] >= 0) << b;
    if (c.first[b] >= 0) {
      // Overflow of a growing state: rounding moves it by a step or two.
      EXPECT_NEAR(double(g.first[b]), double(c.first[b]), 3 + 0.02 * double(c.first[b])) << b;
    } else {
      // A bounded state: fp32 rounding of two reductions per step, relative ~1e-5 over 3000 steps.
      EXPECT_NEAR(g.max_norm[b], c.max_norm[b], 1e-3 * c.max_norm[b]) << b;
      EXPECT_NEAR(g.final_norm[b], c.final_norm[b], 1e-3 * c.final_norm[b]) << b;
    }
  }
  EXPECT_GT(c.first[2], 0);    // the design example overflows
  EXPECT_EQ(c.first[0], -1);   // the certified gate does not
}

}  // namespace
}  // namespace mdnstab
