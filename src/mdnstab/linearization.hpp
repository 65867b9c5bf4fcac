// The frozen-key linearization of DESIGN.md section 3: each key coordinate
// carries a pair (s, m) evolving by A_par (along k^) or A_perp (orthogonal).
// Tested against the full reference recurrence in tests/test_linearization.cpp.
#pragma once

#include <array>
#include <cmath>

#include "mdnstab/gates.hpp"

namespace mdnstab {

// Row-major 2x2 matrix [[a, b], [c, d]].
struct Mat2 {
  double a = 0, b = 0, c = 0, d = 0;

  double trace() const { return a + d; }
  // ad - bc with one rounding (Kahan's fma trick), so det stays accurate when
  // the two products nearly cancel.
  double det() const {
    const double w = b * c;
    const double e = std::fma(b, c, -w);
    return std::fma(a, d, -w) - e;
  }
  Mat2 operator*(const Mat2& o) const {
    return {a * o.a + b * o.c, a * o.b + b * o.d, c * o.a + d * o.c, c * o.b + d * o.d};
  }
  std::array<double, 2> apply(const std::array<double, 2>& x) const {
    return {a * x[0] + b * x[1], c * x[0] + d * x[1]};
  }
};

// Largest singular value of a 2x2 matrix, closed form: norm2 = sqrt(norm2_sq), with
// norm2_sq = (F + sqrt(((a - d)^2 + (b + c)^2) ((a + d)^2 + (b - c)^2))) / 2, a few
// ulps from the exact value everywhere (no cancellation; tested against Eigen's SVD in
// long double). With F the computed squared Frobenius norm (a^2 + b^2 + c^2 + d^2 in
// that order), norm2_sq <= F (1 + 6 u), u = 2^-53: the product under the root is
// (F - 2 det)(F + 2 det) <= F^2 within 9 roundings, F within 4.
double norm2_sq(const Mat2& m);
double norm2(const Mat2& m);

// A_par = [[alpha - beta*eta*rho_p, -beta*mu], [eta*rho_p, mu]].
Mat2 a_par(const Gates& g);
// A_perp = [[alpha, -beta*mu], [0, mu]].
Mat2 a_perp(const Gates& g);

}  // namespace mdnstab
