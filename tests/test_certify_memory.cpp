// The gate-memory certificate for gate sets (src/core/certify_memory.cpp)
// against independent references: an SDP of the same LMIs solved with cvxopt
// (scripts/ref_gate_memory.py), the common-W optimizer of certify_upper.cpp,
// Eigen's generalized eigenvalues for the bound the reported W's prove, and
// the reference recurrence (src/mdnstab/recurrent_ref.hpp) stepping along
// random gate and key sequences.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <Eigen/Dense>

#include "certify_replay.hpp"
#include "core/certify_impl.hpp"
#include "mdnstab/certify.hpp"
#include "mdnstab/recurrent_ref.hpp"

namespace mdnstab {
namespace {

using Eigen::Matrix2d;

Gates lin(double a, double b, double m, double e) {
  auto g = Gates::from_linear(a, b, m, e, PScale::kAlpha);
  EXPECT_TRUE(g.is_ok()) << g.status.message;
  return g.value;
}

std::vector<Gates> rows(std::initializer_list<std::array<double, 4>> r) {
  std::vector<Gates> out;
  for (const auto& g : r) out.push_back(lin(g[0], g[1], g[2], g[3]));
  return out;
}

// The cases of scripts/ref_gate_memory.py.
std::vector<Gates> three() { return rows({{0.9, 0.5, 0.9, 1.5}, {0.5, 0.9, 0.99, 1.0}, {0.99, 0.1, 0.5, 1.9}}); }
std::vector<Gates> pair() { return rows({{0.8644, 0.1490, 0.6140, 0.4710}, {0.5215, 0.6985, 0.8593, 0.6396}}); }
std::vector<Gates> box() {
  std::vector<GateRange> r;
  for (const char* s : {"alpha=0.5:0.95", "beta=0.1:0.5", "mu=0.3:0.9", "eta=0.5:1.5"})
    r.push_back(parse_gate_range(s).value);
  return box_vertices(r).value;
}

Certificate cert(std::span<const Gates> set, int memory, bool lower = true) {
  CertifyOptions o;
  o.gate_memory = memory;
  o.lower_bound = lower;
  auto r = certify(set, o);
  EXPECT_TRUE(r.is_ok()) << r.status.message;
  return r.value;
}

Matrix2d eig2(const Mat2& A) {
  Matrix2d m;
  m << A.a, A.b, A.c, A.d;
  return m;
}

// max over the De Bruijn edges of the largest generalized eigenvalue of
// (A^T W_w' A, W_w), square-rooted: what the W's prove, with the word index of
// the Certificate's documented layout.
double eigen_bound(std::span<const Gates> set, int memory, const std::vector<std::array<double, 3>>& W,
                   const std::vector<int>& label) {
  const long n = long(set.size());
  EXPECT_EQ(label.size(), set.size());
  const long labels = 1 + *std::max_element(label.begin(), label.end());
  long words = 1;
  for (int i = 0; i < memory; ++i) words *= labels;
  EXPECT_EQ(long(W.size()), words);
  double worst = 0;
  for (long w = 0; w < words; ++w)
    for (long g = 0; g < n; ++g) {
      const long w2 = (w * labels + label[size_t(g)]) % words;  // drop the oldest label, append g's
      Matrix2d Wa, Wb;
      Wa << W[size_t(w)][0], W[size_t(w)][1], W[size_t(w)][1], W[size_t(w)][2];
      Wb << W[size_t(w2)][0], W[size_t(w2)][1], W[size_t(w2)][1], W[size_t(w2)][2];
      for (const Mat2& A : {a_par(set[size_t(g)]), a_perp(set[size_t(g)])}) {
        const Matrix2d M = eig2(A).transpose() * Wb * eig2(A);
        Eigen::GeneralizedSelfAdjointEigenSolver<Matrix2d> es(M, Wa);
        EXPECT_EQ(es.info(), Eigen::Success);
        worst = std::max(worst, std::sqrt(es.eigenvalues().maxCoeff()));
      }
    }
  return worst;
}

TEST(CertifyMemory, MatchesAnSdpSolvedWithCvxopt) {
  // gamma from scripts/ref_gate_memory.py (bisection to 1e-10 over cvxopt's SDP).
  struct Case {
    std::vector<Gates> set;
    int memory;
    double ref;
  };
  const std::vector<Case> cases = {{three(), 1, 1.3942755733}, {three(), 2, 1.3792367946},
                                   {pair(), 1, 0.9717316279},  {pair(), 2, 0.9512294607},
                                   {box(), 1, 1.3107482867}};
  for (const Case& k : cases) {
    const Certificate c = cert(k.set, k.memory, false);
    EXPECT_EQ(c.gate_memory, k.memory);
    EXPECT_EQ(long(c.W_by_word.size()), detail::memory_nodes(long(k.set.size()), k.memory));
    // No W's of this memory prove less than the SDP's optimum (its own
    // tolerance is 1e-10); certify finds them to 1e-7 (its rel_tol / 10).
    EXPECT_GE(c.upper_bound, k.ref * (1 - 1e-9)) << k.memory;
    EXPECT_NEAR(c.upper_bound, k.ref, 1e-6 * k.ref) << k.memory;
    // The reported W's prove the reported gamma (Eigen, another computation).
    EXPECT_NEAR(eigen_bound(k.set, k.memory, c.W_by_word, c.gate_label), c.upper_bound, 1e-9 * c.upper_bound);
    for (size_t g = 0; g < k.set.size(); ++g) EXPECT_EQ(c.gate_label[g], int(g));  // each row its own label
  }
}

TEST(CertifyMemory, MemoryZeroIsTheCommonW) {
  // The barrier solver at memory 0 against the common-W optimizer (golden
  // section on a quasi-convex function) and the SDP: three algorithms agree.
  const double sdp[3] = {1.6266155704, 1.0132601873, 1.3619272331};
  int i = 0;
  for (const auto& set : {three(), pair(), box()}) {
    const Certificate c = cert(set, 0, false);
    EXPECT_EQ(c.gate_memory, 0);
    EXPECT_TRUE(c.W_by_word.empty());
    EXPECT_EQ(c.upper_bound, c.common_upper_bound);
    EXPECT_NEAR(c.common_upper_bound, sdp[i], 1e-6 * sdp[i]);
    // (Unscaled gates: entries near 1 already.)
    const detail::MemoryBound mb =
        detail::upper_bound_memory(set, detail::de_bruijn(long(set.size()), 0), {1, 0, 1}, 0.0, 10.0, 1e-8);
    EXPECT_NEAR(mb.gamma, c.common_upper_bound, 1e-6 * c.common_upper_bound) << i;
    ++i;
  }
}

TEST(CertifyMemory, CertifiesAPairTheCommonWCannot) {
  const auto set = pair();
  const Certificate c = cert(set, -1);
  EXPECT_GT(c.common_upper_bound, 1.01);
  EXPECT_EQ(c.gate_memory, 4);  // automatic: 2 rows, 16 words
  EXPECT_LT(c.upper_bound, 0.951);  // memory 2 gives 0.9512 (the SDP), longer memories less
  EXPECT_EQ(c.verdict, Verdict::kCertified);
  EXPECT_LE(c.lower_bound, c.upper_bound);
}

TEST(CertifyMemory, WordWsContractAlongTheReferenceRecurrence) {
  std::mt19937_64 rng(31);
  std::uniform_real_distribution<double> U(0, 1);
  int tested = 0, beat_common = 0;
  for (int i = 0; tested < 10 && i < 400; ++i) {
    std::vector<Gates> set;
    const int n = 2 + i % 3;
    for (int j = 0; j < n; ++j) set.push_back(lin(0.3 + 0.7 * U(rng), U(rng), 0.3 + 0.7 * U(rng), 2 * U(rng)));
    const Certificate c = cert(set, -1, false);
    if (c.gate_memory == 0) continue;
    ++tested;
    beat_common += c.upper_bound < c.common_upper_bound * (1 - 1e-3);
    // Rounding of one step is ~1e-15 relative: 1e-12 is generous, and a wrong
    // W (or a wrong word index) exceeds it.
    for (bool rot : {false, true})
      EXPECT_LE(worst_step_ratio(set, c.W_by_word, c.upper_bound, rot, 2000, rng), 1 + 1e-12) << i << rot;
  }
  EXPECT_EQ(tested, 10);
  EXPECT_GE(beat_common, 5);
}

TEST(CertifyMemory, BracketsTheWitnessAndNeverLosesToTheCommonW) {
  std::mt19937_64 rng(32);
  std::uniform_real_distribution<double> U(0, 1);
  for (int i = 0; i < 20; ++i) {
    std::vector<Gates> set;
    const int n = 2 + i % 3;
    for (int j = 0; j < n; ++j) set.push_back(lin(U(rng), U(rng), U(rng), 2 * U(rng)));
    const Certificate c1 = cert(set, 1), c2 = cert(set, 2);
    for (const Certificate* c : {&c1, &c2}) {
      EXPECT_LE(c->upper_bound, c->common_upper_bound) << i;
      EXPECT_LE(c->lower_bound, c->upper_bound) << i;
      EXPECT_GE(c->upper_bound, c->frozen_spectral_radius * (1 - 1e-12)) << i;
    }
    // A memory-1 certificate lifts to memory 2 (W_{g1 g2} = W_{g2}).
    EXPECT_LE(c2.upper_bound, c1.upper_bound * (1 + 2e-7)) << i;
  }
}

TEST(CertifyMemory, LargeSetsRememberClustersOfRows) {
  // 48 random rows: more than 16, so the automatic certificate keeps one W per
  // cluster of the last row (16 clusters). The W's prove the reported gamma
  // (Eigen), contract along the reference recurrence, and beat the common W.
  std::mt19937_64 rng(33);
  std::uniform_real_distribution<double> U(0, 1);
  int improved = 0;
  for (int i = 0; i < 3; ++i) {
    std::vector<Gates> set;
    for (int j = 0; j < 48; ++j) set.push_back(lin(0.3 + 0.7 * U(rng), U(rng), 0.3 + 0.7 * U(rng), 2 * U(rng)));
    const Certificate c = cert(set, -1);
    ASSERT_EQ(c.gate_memory, 1) << i;
    ASSERT_EQ(c.gate_label.size(), set.size());
    EXPECT_EQ(*std::max_element(c.gate_label.begin(), c.gate_label.end()), 15);
    EXPECT_EQ(c.W_by_word.size(), 16u);
    EXPECT_NEAR(eigen_bound(set, 1, c.W_by_word, c.gate_label), c.upper_bound, 1e-9 * c.upper_bound) << i;
    EXPECT_LE(c.lower_bound, c.upper_bound);
    improved += c.upper_bound < c.common_upper_bound * (1 - 1e-3);
    for (bool rot : {false, true})
      EXPECT_LE(worst_step_ratio(set, c.W_by_word, c.upper_bound, rot, 1000, rng, c.gate_label), 1 + 1e-12) << i;
  }
  EXPECT_EQ(improved, 3);
}

TEST(CertifyMemory, OneGateHasNoMemory) {
  const Gates g = lin(0.9, 0.5, 0.9, 1.5);
  const Certificate c = cert(std::span<const Gates>(&g, 1), 2);
  EXPECT_EQ(c.gate_memory, 0);
  EXPECT_EQ(c.upper_bound, c.common_upper_bound);
}

TEST(CertifyMemory, BadMemoryIsRefusedAndNamed) {
  const auto set = three();
  CertifyOptions o;
  o.gate_memory = -2;
  auto r = certify(set, o);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status.message.find("gate memory -2"), std::string::npos) << r.status.message;
  o.gate_memory = 6;  // 3^6 = 729 words
  r = certify(set, o);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status.message.find("more than 64"), std::string::npos) << r.status.message;
  // Automatic: the longest memory up to 4 with at most 16 words and 256 edges.
  EXPECT_EQ(gate_memory_for(2, -1), 4);
  EXPECT_EQ(gate_memory_for(3, -1), 2);
  EXPECT_EQ(gate_memory_for(4, -1), 2);
  EXPECT_EQ(gate_memory_for(5, -1), 1);
  EXPECT_EQ(gate_memory_for(16, -1), 1);
  EXPECT_EQ(gate_memory_for(17, -1), 1);  // over clusters of rows
  EXPECT_EQ(gate_memory_for(1, 3), 0);
  EXPECT_EQ(gate_memory_for(5, 2), 2);
}

}  // namespace
}  // namespace mdnstab
