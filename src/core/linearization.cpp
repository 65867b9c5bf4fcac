// A_par and A_perp of DESIGN.md section 3, and the 2x2 spectral norm.
#include "mdnstab/linearization.hpp"

#include <cmath>

namespace mdnstab {

double norm2_sq(const Mat2& m) {
  // sigma_1^2 = (F + sqrt(F^2 - 4 det^2)) / 2 with F the squared Frobenius norm, and
  // F -+ 2 det = (a -+ d)^2 + (b +- c)^2 formed as sums of squares: F - 2 det taken
  // as a difference cancels where the singular values nearly meet (a near-normal
  // block), and the square root then doubles the loss (1e-8 relative in sigma_1^2).
  const double f = m.a * m.a + m.b * m.b + m.c * m.c + m.d * m.d;
  const double p = m.a + m.d, q = m.b - m.c, r = m.a - m.d, s = m.b + m.c;
  const double g = std::sqrt((r * r + s * s) * (p * p + q * q));
  return 0.5 * (f + g);
}

double norm2(const Mat2& m) { return std::sqrt(norm2_sq(m)); }

Mat2 a_par(const Gates& g) {
  const double rp = g.rho_p();
  return {g.alpha - g.beta * g.eta * rp, -g.beta * g.mu, g.eta * rp, g.mu};
}

Mat2 a_perp(const Gates& g) { return {g.alpha, -g.beta * g.mu, 0.0, g.mu}; }

}  // namespace mdnstab
