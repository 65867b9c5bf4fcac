// Test helper shared by tests/test_certify.cpp and tests/test_certify_memory.cpp:
// a certificate's quadratic forms checked step by step along the reference
// recurrence (src/mdnstab/recurrent_ref.hpp), independent of the 2x2 reduction.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <random>
#include <span>
#include <vector>

#include "mdnstab/gates.hpp"
#include "mdnstab/recurrent_ref.hpp"

namespace mdnstab {

// V(x) = sum over key coordinates i and value columns j of (s_ij, m_ij) W (s_ij, m_ij)^T.
inline double v_norm2(const std::vector<double>& S, const std::vector<double>& M, const std::array<double, 3>& W) {
  double v = 0;
  for (size_t i = 0; i < S.size(); ++i) v += W[0] * S[i] * S[i] + 2 * W[1] * S[i] * M[i] + W[2] * M[i] * M[i];
  return v;
}

// Runs `steps` tokens one at a time through recurrent_ref (DK = 4, DV = 2, v = 0,
// unit keys random or rotating in a plane, no L2 norm), each with a gate row
// drawn at random, and returns the largest V_{w_t}(x_t) / (gamma^2 V_{w_{t-1}}(x_{t-1})).
// W holds one form per word of the labels of the last gate rows (w_t =
// (w_{t-1} L + label[g_t]) mod |W| with L labels, Certificate::W_by_word's
// layout; no labels: each row its own); a single form is the common W.
inline double worst_step_ratio(std::span<const Gates> set, std::span<const std::array<double, 3>> W, double gamma,
                               bool rotating, int steps, std::mt19937_64& rng, std::span<const int> label = {}) {
  const int DK = 4, DV = 2;
  const long n = long(set.size()), words = long(W.size());
  const long labels = label.empty() ? n : 1 + *std::max_element(label.begin(), label.end());
  std::normal_distribution<double> N(0, 1);
  std::uniform_int_distribution<int> pick(0, int(n) - 1);
  std::vector<double> S(DK * DV), M(DK * DV), S1(DK * DV), M1(DK * DV);  // [DK, DV]
  for (double& x : S) x = N(rng);
  for (double& x : M) x = N(rng);
  std::vector<double> q(DK, 1.0), k(DK), v(DV, 0.0), o(DV);
  long w = words > 1 ? std::uniform_int_distribution<long>(0, words - 1)(rng) : 0;  // any word may start
  double worst = 0;
  const double theta = 0.7 + 0.5 * N(rng);
  for (int t = 0; t < steps; ++t) {
    if (rotating) {
      std::fill(k.begin(), k.end(), 0.0);
      k[0] = std::cos(t * theta);
      k[1] = std::sin(t * theta);
    } else {
      double nn = 0;
      for (double& x : k) x = N(rng), nn += x * x;
      for (double& x : k) x /= std::sqrt(nn);
    }
    const int gi = pick(rng);
    const Gates& g = set[size_t(gi)];
    const double la = g.log_alpha, lm = g.log_mu, b = g.beta, e = g.eta;
    RecurrentArgs<double> a;
    a.steps = 1, a.dk = DK, a.dv = DV;
    a.q = q.data(), a.k = k.data(), a.v = v.data();
    a.log_alpha = &la, a.log_mu = &lm, a.beta = &b, a.eta = &e;
    a.l2norm_qk = false;
    a.p_scale = g.p_scale;
    a.s0 = S.data(), a.m0 = M.data(), a.o = o.data(), a.s_final = S1.data(), a.m_final = M1.data();
    EXPECT_TRUE(recurrent_ref(a).is_ok());
    const long w2 = (w * labels + (label.empty() ? gi : label[size_t(gi)])) % words;
    const double v0 = v_norm2(S, M, W[size_t(w)]), v1 = v_norm2(S1, M1, W[size_t(w2)]);
    if (v0 > 0) worst = std::max(worst, v1 / (gamma * gamma * v0));
    // Renormalize (the system is linear) so 10^4 contracting steps never underflow.
    const double s = 1 / std::sqrt(v1 > 0 ? v1 : 1.0);
    for (int i = 0; i < DK * DV; ++i) S[i] = S1[i] * s, M[i] = M1[i] * s;
    w = w2;
  }
  return worst;
}

}  // namespace mdnstab
