// Which (alpha, beta) a parametrization reaches at a fixed (mu, eta), in
// closed form from the gate map of DESIGN.md section 2 and the sampling box:
// the region the report overlays on its three-tier map. For "mdn",
// alpha = cos^2(theta) alpha', beta = sin^2(theta) beta' with
// tan(theta) = eta * exp(log_factor), so alpha + beta / beta'_max < 1.
// Tested against sample_reachable_gates in tests/test_reachable_slice.cpp.
#pragma once

#include <cmath>
#include <vector>

#include "mdnstab/parametrization.hpp"
#include "mdnstab/sampling.hpp"

namespace mdnstab {

struct ReachableSlice {
  bool mu_reachable = false;   // the slice's mu is a value the gate map gives
  bool eta_reachable = false;  // likewise eta
  bool any() const { return mu_reachable && eta_reachable; }
  // Per sampling box (one for "initial" or "wide", two for "both"): the
  // largest sin^2(theta) and beta' the box allows (theta = pi/2 and
  // sin^2 = 1 without the theta bound), and the smallest.
  struct Box {
    double s_lo = 0, s_hi = 1;         // sin^2(theta) range (1, 1 without a bound)
    double bprime_lo = 0, bprime_hi = 1;  // beta' = sigmoid(b) range
    bool theta_bound = true;
  };
  std::vector<Box> boxes;
};

ReachableSlice reachable_slice(Parametrization p, const ParamConfig& c, SampleRange range, double mu, double eta);

// Whether (alpha, beta) lies in the slice (open at alpha -> 0 and 1).
// one_minus_alpha: 1 - alpha when known more accurately than from alpha
// (-expm1(log_alpha) near alpha = 1); NaN to form it from alpha.
bool reachable(const ReachableSlice& s, double alpha, double beta, double one_minus_alpha = NAN);

// The upper edge beta_max(alpha) of the slice (the union over boxes); NaN
// where no beta is reachable at this alpha or the slice is empty.
double reachable_beta_max(const ReachableSlice& s, double alpha, double one_minus_alpha = NAN);

}  // namespace mdnstab
