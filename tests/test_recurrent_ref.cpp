// The reference recurrence (DESIGN.md section 2) against a hand-derived case,
// float against double, and identities that tie its features together:
// per-channel gates = per-column scalar runs, varlen = separate sequences,
// final state = initial state of the continuation.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "mdnstab/recurrent_ref.hpp"

namespace mdnstab {
namespace {

template <class T>
struct Problem {
  int B, T_, H, DK, DV;
  std::vector<T> q, k, v, la, lm, beta, eta, s0, m0, o, sf, mf;
  bool pc = false;  // per-channel beta and eta

  Problem(int b, int t, int h, int dk, int dv, bool per_channel, uint64_t seed)
      : B(b), T_(t), H(h), DK(dk), DV(dv), pc(per_channel) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> n01;
    std::uniform_real_distribution<double> u(0, 1);
    auto fill = [&](std::vector<T>& x, size_t n, auto gen) {
      x.resize(n);
      for (auto& e : x) e = T(gen());
    };
    const size_t bth = size_t(B) * T_ * H;
    fill(q, bth * DK, [&] { return n01(rng); });
    fill(k, bth * DK, [&] { return n01(rng); });
    fill(v, bth * DV, [&] { return n01(rng); });
    fill(la, bth, [&] { return -0.5 * u(rng); });
    fill(lm, bth, [&] { return -0.5 * u(rng); });
    fill(beta, bth * (pc ? DV : 1), [&] { return u(rng); });
    fill(eta, bth * (pc ? DV : 1), [&] { return 2 * u(rng); });
    fill(s0, size_t(B) * H * DK * DV, [&] { return 0.1 * n01(rng); });
    fill(m0, size_t(B) * H * DK * DV, [&] { return 0.1 * n01(rng); });
    o.assign(bth * DV, T(NAN));
    sf.assign(s0.size(), T(NAN));
    mf.assign(s0.size(), T(NAN));
  }

  RecurrentArgs<T> args() {
    RecurrentArgs<T> a;
    a.batch = B, a.heads = H, a.steps = T_, a.dk = DK, a.dv = DV;
    a.q = q.data(), a.k = k.data(), a.v = v.data(), a.log_alpha = la.data(), a.log_mu = lm.data();
    a.beta = beta.data(), a.eta = eta.data(), a.beta_per_channel = a.eta_per_channel = pc;
    a.s0 = s0.data(), a.m0 = m0.data(), a.o = o.data(), a.s_final = sf.data(), a.m_final = mf.data();
    return a;
  }
};

TEST(RecurrentRef, HandDerivedTwoSteps) {
  // DK = DV = 1, no L2 norm, k = q = 1, v = (1, 2), alpha = mu = beta = 1/2, eta = 1, scale 1:
  // t=1: p = 1/2, w = -1, M = -1, S = 1/2, o = 1/2;
  // t=2: p = 1/2, w = 1/4 - 2 = -7/4, M = -1/2 - 7/4 = -9/4, S = 1/4 + 9/8 = 11/8, o = 11/8.
  std::vector<double> q{1, 1}, k{1, 1}, v{1, 2}, la{std::log(0.5), std::log(0.5)}, lm = la, beta{0.5, 0.5},
      eta{1, 1}, o(2, NAN), sf(1), mf(1);
  RecurrentArgs<double> a;
  a.steps = 2, a.dk = 1, a.dv = 1, a.q = q.data(), a.k = k.data(), a.v = v.data();
  a.log_alpha = la.data(), a.log_mu = lm.data(), a.beta = beta.data(), a.eta = eta.data();
  a.l2norm_qk = false, a.scale = 1.0, a.o = o.data(), a.s_final = sf.data(), a.m_final = mf.data();
  ASSERT_TRUE(recurrent_ref(a).is_ok());
  EXPECT_NEAR(o[0], 0.5, 1e-15);
  EXPECT_NEAR(o[1], 11.0 / 8, 1e-15);
  EXPECT_NEAR(sf[0], 11.0 / 8, 1e-15);
  EXPECT_NEAR(mf[0], -9.0 / 4, 1e-15);
  // p-scale one: p = k = 1. t=1: w = -1, M = -1, S = 1/2. t=2: w = 1/2 - 2 = -3/2,
  // M = -1/2 - 3/2 = -2, S = 1/4 + 1 = 5/4.
  a.p_scale = PScale::kOne;
  ASSERT_TRUE(recurrent_ref(a).is_ok());
  EXPECT_NEAR(o[1], 5.0 / 4, 1e-15);
  EXPECT_NEAR(mf[0], -2.0, 1e-15);
}

TEST(RecurrentRef, FloatFollowsDouble) {
  Problem<double> d(2, 64, 3, 16, 8, true, 1);
  Problem<float> f(2, 64, 3, 16, 8, true, 1);  // same seed: the float inputs are d's rounded
  for (size_t i = 0; i < d.q.size(); ++i) d.q[i] = f.q[i], d.k[i] = f.k[i];
  for (size_t i = 0; i < d.v.size(); ++i) d.v[i] = f.v[i];
  for (size_t i = 0; i < d.la.size(); ++i) d.la[i] = f.la[i], d.lm[i] = f.lm[i];
  for (size_t i = 0; i < d.beta.size(); ++i) d.beta[i] = f.beta[i], d.eta[i] = f.eta[i];
  for (size_t i = 0; i < d.s0.size(); ++i) d.s0[i] = f.s0[i], d.m0[i] = f.m0[i];
  ASSERT_TRUE(recurrent_ref(d.args()).is_ok());
  ASSERT_TRUE(recurrent_ref(f.args()).is_ok());
  double num = 0, den = 0;
  for (size_t i = 0; i < d.o.size(); ++i) {
    ASSERT_TRUE(std::isfinite(f.o[i]));
    num += (double(f.o[i]) - d.o[i]) * (double(f.o[i]) - d.o[i]);
    den += d.o[i] * d.o[i];
  }
  // Rounding grows at most linearly in steps and DK: T * DK * eps_float = 64*16*6e-8 = 6e-5.
  EXPECT_LT(std::sqrt(num / den), 64 * 16 * 6e-8);
  EXPECT_GT(den, 0);
}

TEST(RecurrentRef, PerChannelGatesEqualScalarRunsPerColumn) {
  Problem<double> p(1, 37, 2, 5, 3, true, 2);
  ASSERT_TRUE(recurrent_ref(p.args()).is_ok());
  for (int j = 0; j < p.DV; ++j) {
    // Value column j alone, with its own scalar beta and eta.
    Problem<double> s(1, 37, 2, 5, 1, false, 2);
    s.q = p.q, s.k = p.k;
    s.la = p.la, s.lm = p.lm;
    const size_t bth = size_t(37) * 2;
    for (size_t g = 0; g < bth; ++g) {
      s.v[g] = p.v[g * 3 + j];
      s.beta[g] = p.beta[g * 3 + j];
      s.eta[g] = p.eta[g * 3 + j];
    }
    for (size_t hk = 0; hk < size_t(2) * 5; ++hk) s.s0[hk] = p.s0[hk * 3 + j], s.m0[hk] = p.m0[hk * 3 + j];
    ASSERT_TRUE(recurrent_ref(s.args()).is_ok());
    for (size_t g = 0; g < bth; ++g) EXPECT_NEAR(s.o[g], p.o[g * 3 + j], 1e-13 * (1 + std::abs(s.o[g])));
  }
}

TEST(RecurrentRef, VarlenEqualsSeparateSequencesAndStatesChain) {
  // Two sequences of 9 and 14 tokens packed, versus run one after the other with
  // the final state of the first segment of a split run fed back as initial state.
  Problem<double> packed(1, 23, 2, 4, 3, false, 3);
  std::vector<int64_t> cu{0, 9, 23};
  std::vector<double> s0(2 * 2 * 4 * 3), m0(s0.size()), sf(s0.size()), mf(s0.size());
  for (size_t i = 0; i < s0.size(); ++i) s0[i] = 0.01 * double(i % 7), m0[i] = -0.02 * double(i % 5);
  auto a = packed.args();
  a.cu_seqlens = cu.data(), a.num_seqs = 2, a.s0 = s0.data(), a.m0 = m0.data(), a.s_final = sf.data(),
  a.m_final = mf.data();
  ASSERT_TRUE(recurrent_ref(a).is_ok());
  for (int n = 0; n < 2; ++n) {
    const int t0 = int(cu[n]), len = int(cu[n + 1] - cu[n]);
    const int split = len / 2;
    std::vector<double> st(s0.begin() + n * 24, s0.begin() + (n + 1) * 24), mt(m0.begin() + n * 24, m0.begin() + (n + 1) * 24);
    for (auto [from, to] : {std::pair{0, split}, std::pair{split, len}}) {
      const int steps = to - from;
      Problem<double> one(1, steps, 2, 4, 3, false, 0);
      const size_t g0 = size_t(t0 + from) * 2;
      for (size_t g = 0; g < size_t(steps) * 2; ++g) {
        for (int i = 0; i < 4; ++i) one.q[g * 4 + i] = packed.q[(g0 + g) * 4 + i], one.k[g * 4 + i] = packed.k[(g0 + g) * 4 + i];
        for (int j = 0; j < 3; ++j) one.v[g * 3 + j] = packed.v[(g0 + g) * 3 + j];
        one.la[g] = packed.la[g0 + g], one.lm[g] = packed.lm[g0 + g];
        one.beta[g] = packed.beta[g0 + g], one.eta[g] = packed.eta[g0 + g];
      }
      one.s0 = st, one.m0 = mt;
      ASSERT_TRUE(recurrent_ref(one.args()).is_ok());
      for (size_t g = 0; g < size_t(steps) * 2; ++g)
        for (int j = 0; j < 3; ++j)
          EXPECT_NEAR(one.o[g * 3 + j], packed.o[(g0 + g) * 3 + j], 1e-13 * (1 + std::abs(one.o[g * 3 + j])));
      st = one.sf, mt = one.mf;
    }
    for (size_t i = 0; i < 24; ++i) {
      EXPECT_NEAR(st[i], sf[n * 24 + i], 1e-13 * (1 + std::abs(st[i])));
      EXPECT_NEAR(mt[i], mf[n * 24 + i], 1e-13 * (1 + std::abs(mt[i])));
    }
  }
}

TEST(RecurrentRef, RefusesBadArguments) {
  Problem<double> p(1, 4, 1, 2, 2, false, 4);
  auto a = p.args();
  a.dk = 0;
  EXPECT_EQ(recurrent_ref(a).code, Code::kInvalidArgument);
  a = p.args();
  a.v = nullptr;
  EXPECT_EQ(recurrent_ref(a).code, Code::kInvalidArgument);
  a = p.args();
  std::vector<int64_t> cu{0, 3, 2};
  a.cu_seqlens = cu.data(), a.num_seqs = 2;
  EXPECT_NE(recurrent_ref(a).message.find("decreases"), std::string::npos);
}

}  // namespace
}  // namespace mdnstab
