// The linearization is right (DESIGN.md section 3): the full reference
// recurrence with one fixed key, fixed gates and v = 0 moves the components of
// S and M along k^ by A_par^t and those orthogonal to k^ by A_perp^t.
#include <gtest/gtest.h>

#include <Eigen/SVD>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <random>
#include <vector>

#include "mdnstab/linearization.hpp"
#include "mdnstab/recurrent_ref.hpp"

namespace mdnstab {
namespace {

void check_gates(const Gates& g, uint64_t seed) {
  constexpr int DK = 8, DV = 3, T = 60;
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> n01;
  // A unit key and a unit vector orthogonal to it.
  std::vector<double> kh(DK), u(DK);
  double nk = 0;
  for (auto& x : kh) x = n01(rng), nk += x * x;
  for (auto& x : kh) x /= std::sqrt(nk);
  double dot = 0, nu = 0;
  for (int i = 0; i < DK; ++i) u[i] = n01(rng);
  for (int i = 0; i < DK; ++i) dot += u[i] * kh[i];
  for (int i = 0; i < DK; ++i) u[i] -= dot * kh[i], nu += u[i] * u[i];
  for (auto& x : u) x /= std::sqrt(nu);

  std::vector<double> q(T * DK), k(T * DK), v(T * DV, 0.0), la(T, g.log_alpha), lm(T, g.log_mu), beta(T, g.beta),
      eta(T, g.eta), o(T * DV), s0(DK * DV), m0(DK * DV), sf(DK * DV), mf(DK * DV);
  for (int t = 0; t < T; ++t)
    for (int i = 0; i < DK; ++i) k[t * DK + i] = kh[i], q[t * DK + i] = kh[i];
  for (auto& x : s0) x = n01(rng);
  for (auto& x : m0) x = n01(rng);
  auto project = [&](const std::vector<double>& X, const std::vector<double>& dir, int j) {
    double s = 0;
    for (int i = 0; i < DK; ++i) s += dir[i] * X[i * DV + j];
    return s;
  };
  const Mat2 Ap = a_par(g), Ao = a_perp(g);
  for (int steps : {1, 7, T}) {
    RecurrentArgs<double> a;
    a.steps = steps, a.dk = DK, a.dv = DV, a.q = q.data(), a.k = k.data(), a.v = v.data();
    a.log_alpha = la.data(), a.log_mu = lm.data(), a.beta = beta.data(), a.eta = eta.data();
    a.l2norm_qk = false, a.p_scale = g.p_scale, a.s0 = s0.data(), a.m0 = m0.data(), a.o = o.data();
    a.s_final = sf.data(), a.m_final = mf.data();
    ASSERT_TRUE(recurrent_ref(a).is_ok());
    for (int j = 0; j < DV; ++j)
      for (auto [dir, A] : {std::pair{&kh, Ap}, std::pair{&u, Ao}}) {
        std::array<double, 2> x{project(s0, *dir, j), project(m0, *dir, j)};
        Mat2 P{1, 0, 0, 1};
        for (int t = 0; t < steps; ++t) P = P * A;
        const auto want = P.apply(x);
        const std::array<double, 2> got{project(sf, *dir, j), project(mf, *dir, j)};
        // Relative to the state |(S_t, M_t)|_F: rounding leaks between key directions at
        // eps times the whole state, which can dwarf a fast-decaying direction.
        double scale = 0;
        for (int i = 0; i < DK * DV; ++i) scale += sf[i] * sf[i] + mf[i] * mf[i];
        scale = std::sqrt(scale);
        EXPECT_LE(std::hypot(got[0] - want[0], got[1] - want[1]), 1e-12 * scale)
            << "steps " << steps << " column " << j << (dir == &kh ? " along k" : " orthogonal");
      }
  }
}

TEST(Linearization, RecurrenceFollowsTheBlocks) {
  std::mt19937_64 rng(17);
  std::uniform_real_distribution<double> u01(0, 1);
  for (int i = 0; i < 40; ++i) {
    const PScale p = i % 2 ? PScale::kOne : PScale::kAlpha;
    const Gates g = Gates::from_linear(0.5 + 0.5 * u01(rng), u01(rng), 0.5 + 0.5 * u01(rng), 2 * u01(rng), p).value;
    check_gates(g, 100 + i);
  }
  check_gates(Gates::from_linear(0.99, 0.9, 0.99, 1.9).value, 1);  // complex, tier-2 example
  check_gates(Gates::from_linear(0.9, 1.0, 0.01, 2.0).value, 2);   // negative real eigenvalue
}

TEST(Linearization, BlocksMatchDesign) {
  const Gates g = Gates::from_linear(0.8, 0.5, 0.6, 1.5).value;
  const Mat2 p = a_par(g), q = a_perp(g);
  EXPECT_DOUBLE_EQ(p.a, 0.8 - 0.5 * 1.5 * 0.8);
  EXPECT_DOUBLE_EQ(p.b, -0.5 * 0.6);
  EXPECT_DOUBLE_EQ(p.c, 1.5 * 0.8);
  EXPECT_DOUBLE_EQ(p.d, 0.6);
  EXPECT_EQ(q.c, 0.0);
  const Gates h = Gates::from_linear(0.8, 0.5, 0.6, 1.5, PScale::kOne).value;
  EXPECT_DOUBLE_EQ(a_par(h).a, 0.8 - 0.5 * 1.5);
  EXPECT_DOUBLE_EQ(a_par(h).c, 1.5);
  // Spectral norm against the singular values of a diagonal matrix.
  EXPECT_DOUBLE_EQ(norm2(Mat2{3, 0, 0, -4}), 4.0);
}

// norm2 against Eigen's Jacobi SVD in long double, on random blocks and on blocks
// whose singular values nearly meet (scaled rotations and reflections, entries
// perturbed by 1e-13 to 1e-7 relative): there F - 2 det cancels, and the textbook
// closed form lost up to ~1e-8 of sigma_1^2. Within 4 u of sigma_1 (u = 2^-53), the
// rounding of the closed form (see linearization.hpp).
TEST(Linearization, Norm2IsAccurateWhereSingularValuesMeet) {
  using LM = Eigen::Matrix<long double, 2, 2>;
  auto ref = [](const Mat2& m) {
    LM x;
    x << m.a, m.b, m.c, m.d;
    return Eigen::JacobiSVD<LM>(x).singularValues()(0);
  };
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> u(-1, 1);
  const double tol = 4 * std::ldexp(1.0, -53);
  double worst = 0;
  int n = 0;
  auto check = [&](const Mat2& m) {
    const long double want = ref(m);
    if (want == 0) return;
    const double rel = double(std::abs((long double)norm2(m) - want) / want);
    worst = std::max(worst, rel);
    ++n;
    EXPECT_LE(rel, tol) << m.a << " " << m.b << " " << m.c << " " << m.d;
    // norm2_sq and norm2 agree, and the Frobenius bound of the header holds.
    EXPECT_EQ(norm2(m), std::sqrt(norm2_sq(m)));
    const double f = m.a * m.a + m.b * m.b + m.c * m.c + m.d * m.d;
    EXPECT_LE(norm2_sq(m), f * (1 + 6 * std::ldexp(1.0, -53)));
  };
  for (int i = 0; i < 20000; ++i) check({2 * u(rng), 2 * u(rng), 2 * u(rng), 2 * u(rng)});
  for (int i = 0; i < 20000; ++i) {
    const double rho = std::exp(3 * u(rng)), th = 3.2 * u(rng), c = rho * std::cos(th), s = rho * std::sin(th);
    const double d = std::pow(10.0, -13 + 6 * (u(rng) + 1) / 2);  // 1e-13 .. 1e-7
    auto j = [&] { return 1 + d * u(rng); };
    check({c * j(), -s * j(), s * j(), c * j()});  // rotation
    check({c * j(), s * j(), s * j(), -c * j()});  // reflection
  }
  EXPECT_GT(n, 59000);
  std::cout << "  norm2: worst relative error " << worst << " over " << n << " blocks\n";
}

}  // namespace
}  // namespace mdnstab
