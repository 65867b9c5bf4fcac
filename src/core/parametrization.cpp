// The MDN, unconstrained-MDN and GDN gate maps of DESIGN.md section 2, in
// double with every nonlinearity in a form that neither overflows nor cancels.
// Tested against trigonometric closed forms and limits in tests/test_parametrization.cpp.
#include "mdnstab/parametrization.hpp"

#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace mdnstab {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// log(softplus(x)). For x << 0, softplus(x) = e^x (1 - e^x/2 + ...) underflows
// long before its log does; keeping the log lets -exp(A_log) * softplus(x)
// be formed as -exp(A_log + log_softplus(x)) with no inf * 0.
double log_softplus(double x) {
  if (x < -20) return x - 0.5 * std::exp(x);  // next term e^(2x)/24 < 1e-18 relative
  return std::log(softplus(x));
}

// -exp(log_scale) * softplus(x) without overflow or inf * 0.
double neg_scaled_softplus(double log_scale, double x) { return -std::exp(log_scale + log_softplus(x)); }

}  // namespace

const char* to_string(Parametrization p) {
  switch (p) {
    case Parametrization::kMdn: return "mdn";
    case Parametrization::kMdnUnconstrained: return "mdn-unconstrained";
    case Parametrization::kGdn: return "gdn";
  }
  return "?";
}

Result<Parametrization> parse_parametrization(std::string_view s) {
  if (s == "mdn") return Parametrization::kMdn;
  if (s == "mdn-unconstrained") return Parametrization::kMdnUnconstrained;
  if (s == "gdn") return Parametrization::kGdn;
  return error(Code::kInvalidArgument,
               fmt::format("unknown parametrization '{}' (expected mdn, mdn-unconstrained or gdn)", s));
}

double ParamConfig::tau() const { return std::sqrt(double(hidden_size) / tau_factor); }

Result<ParamConfig> reference_config(std::string_view name) {
  ParamConfig c;  // the 400M defaults
  if (name == "400M" || name == "400m") return c;
  if (name == "1.3B" || name == "1.3b") {
    c.name = "1.3B";
    c.num_layers = 24;  // not in DESIGN.md; only reports show it
    c.head_dim = 256;
    c.hidden_size = 2048;
    c.tau_factor = 8;
    c.min_log_mu = -1;
    return c;
  }
  return error(Code::kInvalidArgument, fmt::format("unknown model config '{}' (expected 400M or 1.3B)", name));
}

Status check(const ParamConfig& c) {
  if (c.hidden_size <= 0)
    return error(Code::kInvalidArgument, fmt::format("hidden_size = {} must be positive", c.hidden_size));
  if (!std::isfinite(c.tau_factor) || c.tau_factor <= 0)
    return error(Code::kInvalidArgument, fmt::format("tau_factor = {} must be positive and finite", c.tau_factor));
  // -inf: no clamp (a checkpoint whose config has min_log_mu = null).
  if (std::isnan(c.min_log_mu) || c.min_log_mu >= 0)
    return error(Code::kInvalidArgument, fmt::format("min_log_mu = {} must be negative (or -inf: no clamp)", c.min_log_mu));
  return Status::ok();
}

double softplus(double x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }

double inverse_softplus(double y) {
  // log(e^y - 1) = y + log(1 - e^-y); expm1 keeps 1 - e^-y exact for small y.
  return y + std::log(-std::expm1(-y));
}

double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  const double z = std::exp(x);
  return z / (1.0 + z);
}

double logit(double p) { return std::log(p) - std::log1p(-p); }

Result<MappedGates> map_gates(Parametrization p, const ParamConfig& c, const HeadParams& h, const RawInputs& x,
                              PScale scale) {
  const std::pair<const char*, double> inputs[] = {
      {"a", x.a},           {"b", x.b},           {"m", x.m},
      {"e", x.e},           {"A_log", h.A_log},   {"Mu_log", h.Mu_log},
      {"dt_bias", h.dt_bias}, {"mu_bias", h.mu_bias}, {"log_factor", h.log_factor}};
  for (auto [name, v] : inputs)
    if (!std::isfinite(v)) return error(Code::kInvalidArgument, fmt::format("{} = {} is not finite", name, v));

  MappedGates out;
  out.log_alpha_prime = neg_scaled_softplus(h.A_log, x.a + h.dt_bias);
  out.beta_prime = sigmoid(x.b);

  if (p == Parametrization::kGdn) {
    auto g = Gates::from_log(out.log_alpha_prime, out.beta_prime, -kInf, 1.0, scale);
    if (!g.is_ok()) return g.status;
    out.gates = g.value;
    return out;
  }

  double log_mu = neg_scaled_softplus(h.Mu_log, x.m + h.mu_bias);
  if (log_mu < c.min_log_mu) {
    log_mu = c.min_log_mu;
    out.mu_clamped = true;
  }
  // eta = tanh(e/tau) + 1 = 2 sigmoid(2 e / tau); log(eta) = log 2 - softplus(-2 e / tau).
  const double z = 2.0 * x.e / c.tau();
  const double eta = 2.0 * sigmoid(z);
  double beta = out.beta_prime, log_alpha = out.log_alpha_prime;
  if (p == Parametrization::kMdn) {
    // r = tan(theta) = eta * exp(log_factor); with l = log(r^2):
    // sin^2(theta) = r^2 / (1 + r^2) = sigmoid(l), log cos^2(theta) = -log1p(r^2) = -softplus(l).
    const double log_eta = std::log(2.0) - softplus(-z);
    const double l = 2.0 * (log_eta + h.log_factor);
    out.theta = std::atan(std::exp(0.5 * l));
    beta = sigmoid(l) * out.beta_prime;
    log_alpha = -softplus(l) + out.log_alpha_prime;
  }
  auto g = Gates::from_log(log_alpha, beta, log_mu, eta, scale);
  if (!g.is_ok()) return g.status;
  out.gates = g.value;
  return out;
}

}  // namespace mdnstab
