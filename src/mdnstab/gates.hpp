// Gate values of one token and head: (alpha, beta, mu, eta) and the p-scale
// (DESIGN.md section 2). Validated on construction; log-space constructors keep
// log_alpha and log_mu exact, which the spectra use near alpha, mu -> 1.
// Tested in tests/test_gates.cpp.
#pragma once

#include <string_view>

#include "mdnstab/status.hpp"

namespace mdnstab {

// "alpha": p_t = alpha_t * k^_t (the default); "one": p_t = k^_t.
enum class PScale { kAlpha, kOne };

std::string_view to_string(PScale p);
Result<PScale> parse_p_scale(std::string_view s);

struct Gates {
  double alpha = 1.0;
  double beta = 0.0;
  double mu = 0.0;
  double eta = 0.0;
  double log_alpha = 0.0;  // exactly log(alpha); -inf for alpha = 0
  double log_mu = 0.0;     // exactly log(mu); -inf for mu = 0
  PScale p_scale = PScale::kAlpha;

  // alpha, mu, beta in [0, 1], eta in [0, 2], all finite.
  static Result<Gates> from_linear(double alpha, double beta, double mu, double eta,
                                   PScale p = PScale::kAlpha);
  // log_alpha, log_mu in [-inf, 0] (NaN and +inf rejected).
  static Result<Gates> from_log(double log_alpha, double beta, double log_mu, double eta,
                                PScale p = PScale::kAlpha);

  // rho_p of DESIGN.md section 3: alpha for p-scale "alpha", 1 for "one".
  double rho_p() const { return p_scale == PScale::kAlpha ? alpha : 1.0; }
};

// Checks one named gate value against its range; the message names it.
Status check_gate(std::string_view name, double value);

}  // namespace mdnstab
