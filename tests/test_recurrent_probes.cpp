// Probes of the CPU reference recurrence (src/mdnstab/recurrent_ref.hpp): norms
// against the finals of independent truncated runs, max |o| against the output,
// the first non-finite step against an injected NaN, slots past a sequence's end.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "mdnstab/recurrent_ref.hpp"

namespace mdnstab {
namespace {

struct Inputs {
  int B = 2, T = 37, H = 2, DK = 5, DV = 3;
  std::vector<double> q, k, v, la, lm, beta, eta;
  explicit Inputs(unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<double> g;
    std::uniform_real_distribution<double> u(0, 1);
    const size_t tok = size_t(B) * T * H;
    for (size_t i = 0; i < tok * DK; ++i) q.push_back(g(rng)), k.push_back(g(rng));
    for (size_t i = 0; i < tok * DV; ++i) v.push_back(g(rng));
    for (size_t i = 0; i < tok; ++i) {
      la.push_back(-0.2 * u(rng));
      lm.push_back(-0.5 * u(rng));
      beta.push_back(u(rng));
      eta.push_back(u(rng));
    }
  }
  // Runs the first `steps` tokens of every sequence (the [B,T,...] layout is kept).
  RecurrentArgs<double> args(std::vector<double>& o, std::vector<double>& sf, std::vector<double>& mf, int steps) {
    RecurrentArgs<double> a;
    a.batch = B, a.heads = H, a.dk = DK, a.dv = DV, a.steps = steps;
    // Truncation: copy the first `steps` tokens of each batch row.
    qs.clear(), ks.clear(), vs.clear(), las.clear(), lms.clear(), bs.clear(), es.clear();
    for (int b = 0; b < B; ++b)
      for (int t = 0; t < steps; ++t)
        for (int h = 0; h < H; ++h) {
          const size_t gi = (size_t(b) * T + t) * H + h;
          for (int i = 0; i < DK; ++i) qs.push_back(q[gi * DK + i]), ks.push_back(k[gi * DK + i]);
          for (int j = 0; j < DV; ++j) vs.push_back(v[gi * DV + j]);
          las.push_back(la[gi]), lms.push_back(lm[gi]), bs.push_back(beta[gi]), es.push_back(eta[gi]);
        }
    a.q = qs.data(), a.k = ks.data(), a.v = vs.data(), a.log_alpha = las.data(), a.log_mu = lms.data();
    a.beta = bs.data(), a.eta = es.data();
    o.assign(size_t(B) * steps * H * DV, 0.0);
    sf.assign(size_t(B) * H * DK * DV, 0.0);
    mf.assign(size_t(B) * H * DK * DV, 0.0);
    a.o = o.data(), a.s_final = sf.data(), a.m_final = mf.data();
    return a;
  }
  std::vector<double> qs, ks, vs, las, lms, bs, es;
};

double frob(const std::vector<double>& x, size_t off, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; ++i) s += x[off + i] * x[off + i];
  return std::sqrt(s);
}

TEST(RecurrentProbes, NormsAreThoseOfTruncatedRuns) {
  Inputs in(1);
  std::vector<double> o, sf, mf;
  RecurrentArgs<double> a = in.args(o, sf, mf, in.T);
  const int64_t N = 10, P = 4;  // probes after steps 10, 20, 30 and 37
  std::vector<double> ns(in.B * in.H * P), nm(ns.size()), mo(ns.size());
  std::vector<int64_t> fb(in.B * in.H);
  RecurrentProbes pr{N, P, ns.data(), nm.data(), mo.data(), fb.data()};
  a.probes = &pr;
  ASSERT_TRUE(recurrent_ref(a).is_ok());
  const size_t st = size_t(in.DK) * in.DV;
  for (int p = 0; p < P; ++p) {
    const int steps = p + 1 < P ? int((p + 1) * N) : in.T;
    std::vector<double> o2, sf2, mf2;
    RecurrentArgs<double> a2 = in.args(o2, sf2, mf2, steps);
    ASSERT_TRUE(recurrent_ref(a2).is_ok());
    for (int bh = 0; bh < in.B * in.H; ++bh) {
      // Same operations in the same order: equal to rounding of the norm itself.
      EXPECT_NEAR(ns[bh * P + p], frob(sf2, bh * st, st), 1e-12 * frob(sf2, bh * st, st)) << bh << " " << p;
      EXPECT_NEAR(nm[bh * P + p], frob(mf2, bh * st, st), 1e-12 * frob(mf2, bh * st, st)) << bh << " " << p;
      double m = 0;  // largest |o| of the interval, from the output of the full run
      for (int t = int(p * N); t < steps; ++t)
        for (int j = 0; j < in.DV; ++j)
          m = std::max(m, std::abs(o[((size_t(bh / in.H) * in.T + t) * in.H + bh % in.H) * in.DV + j]));
      EXPECT_EQ(mo[bh * P + p], m) << bh << " " << p;
    }
  }
  for (int64_t x : fb) EXPECT_EQ(x, -1);
}

TEST(RecurrentProbes, FirstNonFiniteIsTheStepOfAnInjectedNaN) {
  Inputs in(2);
  // A NaN in v at token 12 of (batch 1, head 0) reaches w, M, S and o at step 13;
  // an inf in q at token 20 of (batch 0, head 1) makes only o non-finite at step 21.
  in.v[((size_t(1) * in.T + 12) * in.H + 0) * in.DV + 1] = std::numeric_limits<double>::quiet_NaN();
  in.q[((size_t(0) * in.T + 20) * in.H + 1) * in.DK + 3] = std::numeric_limits<double>::infinity();
  std::vector<double> o, sf, mf;
  RecurrentArgs<double> a = in.args(o, sf, mf, in.T);
  std::vector<double> ns(in.B * in.H), nm(ns.size()), mo(ns.size());
  std::vector<int64_t> fb(in.B * in.H);
  RecurrentProbes pr{in.T, 1, ns.data(), nm.data(), mo.data(), fb.data()};
  a.probes = &pr;
  ASSERT_TRUE(recurrent_ref(a).is_ok());
  EXPECT_EQ(fb[0 * in.H + 0], -1);
  EXPECT_EQ(fb[0 * in.H + 1], 21);
  EXPECT_EQ(fb[1 * in.H + 0], 13);
  EXPECT_EQ(fb[1 * in.H + 1], -1);
  EXPECT_TRUE(std::isnan(mo[1 * in.H + 0]));          // NaN sticks in max |o|
  EXPECT_TRUE(std::isnan(ns[1 * in.H + 0]));          // and in the state norm
  EXPECT_TRUE(std::isfinite(ns[0 * in.H + 1]));       // q does not touch the state
}

TEST(RecurrentProbes, VarlenSlotsPastTheEndAreNaNAndCountIsChecked) {
  Inputs in(3);
  std::vector<double> o, sf, mf;
  in.B = 1;
  RecurrentArgs<double> a = in.args(o, sf, mf, in.T);  // 37 packed tokens
  const int64_t cu[] = {0, 5, 5, 37};                   // lengths 5, 0, 32
  a.cu_seqlens = cu, a.num_seqs = 3;
  sf.resize(3 * in.H * in.DK * in.DV), mf.resize(sf.size());
  a.s_final = sf.data(), a.m_final = mf.data();
  const int64_t N = 8, P = 4;  // ceil(32 / 8)
  std::vector<double> ns(3 * in.H * P), nm(ns.size()), mo(ns.size());
  std::vector<int64_t> fb(3 * in.H);
  RecurrentProbes pr{N, P, ns.data(), nm.data(), mo.data(), fb.data()};
  a.probes = &pr;
  ASSERT_TRUE(recurrent_ref(a).is_ok());
  for (int h = 0; h < in.H; ++h) {
    EXPECT_FALSE(std::isnan(ns[(0 * in.H + h) * P + 0]));  // sequence 0: one probe (step 5)
    for (int p = 1; p < P; ++p) EXPECT_TRUE(std::isnan(ns[(0 * in.H + h) * P + p]));
    for (int p = 0; p < P; ++p) EXPECT_TRUE(std::isnan(ns[(1 * in.H + h) * P + p]));  // empty
    for (int p = 0; p < P; ++p) EXPECT_FALSE(std::isnan(ns[(2 * in.H + h) * P + p]));
  }
  pr.count = 3;  // below ceil(32 / 8)
  const Status s = recurrent_ref(a);
  EXPECT_EQ(s.code, Code::kInvalidArgument);
  EXPECT_NE(s.message.find("probe count = 3"), std::string::npos) << s.message;
  pr.count = 4, pr.interval = 0;
  EXPECT_NE(recurrent_ref(a).message.find("probe interval = 0"), std::string::npos);
}

}  // namespace
}  // namespace mdnstab
