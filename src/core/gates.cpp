// Gate validation and constructors (DESIGN.md section 2: alpha, mu, beta in
// [0, 1] and eta in [0, 2] are accepted; anything else, or non-finite, is bad input).
#include "mdnstab/gates.hpp"

#include <cmath>

#include <fmt/format.h>

namespace mdnstab {

std::string_view to_string(PScale p) { return p == PScale::kAlpha ? "alpha" : "one"; }

Result<PScale> parse_p_scale(std::string_view s) {
  if (s == "alpha") return PScale::kAlpha;
  if (s == "one") return PScale::kOne;
  return error(Code::kInvalidArgument, fmt::format("unknown p-scale '{}' (expected alpha or one)", s));
}

Status check_gate(std::string_view name, double value) {
  double lo = 0.0, hi = 1.0;
  if (name == "eta") hi = 2.0;
  if (name == "log_alpha" || name == "log_mu") {
    if (std::isnan(value) || value > 0.0)
      return error(Code::kGateOutOfRange,
                   fmt::format("{} = {} is out of range (expected a value <= 0)", name, value));
    return Status::ok();
  }
  if (!std::isfinite(value) || value < lo || value > hi)
    return error(Code::kGateOutOfRange,
                 fmt::format("{} = {} is out of range (expected {} <= {} <= {})", name, value, lo, name, hi));
  return Status::ok();
}

Result<Gates> Gates::from_linear(double alpha, double beta, double mu, double eta, PScale p) {
  for (auto [name, v] : {std::pair{"alpha", alpha}, {"beta", beta}, {"mu", mu}, {"eta", eta}})
    if (Status s = check_gate(name, v); !s.is_ok()) return s;
  Gates g;
  g.alpha = alpha;
  g.beta = beta;
  g.mu = mu;
  g.eta = eta;
  g.log_alpha = std::log(alpha);
  g.log_mu = std::log(mu);
  g.p_scale = p;
  return g;
}

Result<Gates> Gates::from_log(double log_alpha, double beta, double log_mu, double eta, PScale p) {
  for (auto [name, v] :
       {std::pair{"log_alpha", log_alpha}, {"beta", beta}, {"log_mu", log_mu}, {"eta", eta}})
    if (Status s = check_gate(name, v); !s.is_ok()) return s;
  Gates g;
  g.alpha = std::exp(log_alpha);
  g.beta = beta;
  g.mu = std::exp(log_mu);
  g.eta = eta;
  g.log_alpha = log_alpha;
  g.log_mu = log_mu;
  g.p_scale = p;
  return g;
}

}  // namespace mdnstab
