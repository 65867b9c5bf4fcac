// The reachable (alpha, beta) slice at fixed (mu, eta) (src/mdnstab/reachable_slice.hpp).
// Tested in tests/test_reachable_slice.cpp.
#include "mdnstab/reachable_slice.hpp"

#include <algorithm>
#include <cmath>

namespace mdnstab {

namespace {

// sin^2(atan(r)) = r^2 / (1 + r^2).
double sin2_of_tan(double r) { return r * r / (1.0 + r * r); }

std::vector<SamplingBox> boxes_of(SampleRange range) {
  if (range == SampleRange::kBoth) return {sampling_box(SampleRange::kInitial), sampling_box(SampleRange::kWide)};
  return {sampling_box(range)};
}

}  // namespace

ReachableSlice reachable_slice(Parametrization p, const ParamConfig& c, SampleRange range, double mu, double eta) {
  ReachableSlice s;
  for (const SamplingBox& b : boxes_of(range)) {
    ReachableSlice::Box box;
    box.bprime_lo = sigmoid(-b.raw_abs);
    box.bprime_hi = sigmoid(b.raw_abs);
    bool eta_ok = false, mu_ok = false;
    if (p == Parametrization::kGdn) {
      // GDN: mu = 0 and eta = 1 exactly, no theta.
      eta_ok = eta == 1.0;
      mu_ok = mu == 0.0;
      box.theta_bound = false;
      box.s_lo = box.s_hi = 1;
    } else {
      // eta = 2 sigmoid(2 e / tau) with e / tau in [-E, E].
      const double z = 2.0 * b.e_over_tau_abs;
      eta_ok = eta >= 2.0 * sigmoid(-z) && eta <= 2.0 * sigmoid(z);
      // log_mu = max(-exp(Mu_log) softplus(m + mu_bias), min_log_mu): every value
      // in [min_log_mu, 0) is reached (the clamp pins the low end; exp(Mu_log) -> its
      // lower end gives log_mu -> 0; mu = 1 is kept: log_mu in (-1e-16, 0) rounds to it).
      mu_ok = mu <= 1.0 && (std::isinf(c.min_log_mu) ? mu > 0 : std::log(mu) >= c.min_log_mu - 1e-12);
      if (p == Parametrization::kMdn) {
        box.theta_bound = true;
        box.s_lo = sin2_of_tan(eta * b.factor_lo);
        box.s_hi = sin2_of_tan(eta * b.factor_hi);
      } else {
        box.theta_bound = false;
        box.s_lo = box.s_hi = 1;
      }
    }
    if (eta_ok && mu_ok) s.boxes.push_back(box);
    s.eta_reachable = s.eta_reachable || eta_ok;
    s.mu_reachable = s.mu_reachable || mu_ok;
  }
  if (!s.any()) s.boxes.clear();
  return s;
}

bool reachable(const ReachableSlice& s, double alpha, double beta, double one_minus_alpha) {
  const double oma = std::isnan(one_minus_alpha) ? 1.0 - alpha : one_minus_alpha;
  if (!(alpha > 0 && oma > 0) || !(beta >= 0)) return false;
  for (const ReachableSlice::Box& b : s.boxes) {
    if (!b.theta_bound) {
      if (beta >= b.bprime_lo && beta <= b.bprime_hi) return true;
      continue;
    }
    // Some u = sin^2(theta) in [s_lo, s_hi] with beta / u in [b'_lo, b'_hi] and
    // alpha / (1 - u) < 1 (alpha' in (0, 1)).
    const double u_lo = std::max(b.s_lo, beta / b.bprime_hi);
    const double u_hi = std::min({b.s_hi, b.bprime_lo > 0 ? beta / b.bprime_lo : 1.0, oma});
    if (u_lo < u_hi || (u_lo == u_hi && u_lo < oma)) return true;
  }
  return false;
}

double reachable_beta_max(const ReachableSlice& s, double alpha, double one_minus_alpha) {
  const double oma = std::isnan(one_minus_alpha) ? 1.0 - alpha : one_minus_alpha;
  if (!(alpha > 0 && oma > 0)) return NAN;
  double best = NAN;
  for (const ReachableSlice::Box& b : s.boxes) {
    const double v = b.theta_bound ? b.bprime_hi * std::min(b.s_hi, oma) : b.bprime_hi;
    // sin^2(theta) >= s_lo leaves alpha < 1 - s_lo: past that no beta is reachable.
    if (b.theta_bound && oma <= b.s_lo) continue;
    best = std::isnan(best) ? v : std::max(best, v);
  }
  return best;
}

}  // namespace mdnstab
