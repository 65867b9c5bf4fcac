// Closed-form spectra of the 2x2 blocks and the metrics derived from them
// (DESIGN.md section 3): regime, negative eigenvalue, damping ratio and natural
// frequency of the continuous-time equivalent, half-life, transient peak.
// Tested against Eigen and a quad-precision closed form in tests/test_spectrum.cpp.
#pragma once

#include <cmath>
#include <complex>
#include <optional>

#include "mdnstab/gates.hpp"
#include "mdnstab/linearization.hpp"

namespace mdnstab {

enum class Regime { kComplex, kReal };
const char* to_string(Regime r);

// Eigenvalues ordered |l1| >= |l2|; for a complex pair l1 has positive imaginary part.
struct Eigenvalues2 {
  std::complex<double> l1, l2;
  bool complex_pair = false;
};

// Accurate near the complex/real boundary (discriminant formed without
// cancellation of trace^2/4 against det) and for tiny or equal entries.
Eigenvalues2 eigenvalues(const Mat2& m);

struct BlockSpectrum {
  Eigenvalues2 eig;
  double spectral_radius = 0;
  Regime regime = Regime::kReal;
  bool negative_eigenvalue = false;  // a real eigenvalue < 0
  // Continuous-time equivalent x'' + 2 zeta w_n x' + w_n^2 x = 0 with
  // ln(lambda) = -zeta w_n +/- i w_n sqrt(1 - zeta^2); empty where none exists
  // (an eigenvalue <= 0, a unit eigenvalue, or one growing and one decaying mode).
  std::optional<double> damping_ratio;
  std::optional<double> natural_frequency;
  // Steps for |x| to halve at the asymptotic rate: ln(1/2)/ln(rho); +inf for rho >= 1.
  double half_life = 0;
  // max_{t >= 0} |A^t|_2; +inf when rho >= 1 (the powers do not decay).
  double transient_peak = 1;
};

// Which metrics to compute; the transient peak is the costly one. Without
// `dynamics` the damping ratio and natural frequency are none and the half-life NaN.
struct SpectrumOptions {
  bool transient_peak = true;
  bool dynamics = true;  // damping ratio, natural frequency, half-life
};

// log_det: log(det A) when known more accurately than from the entries
// (log_alpha + log_mu for both blocks); NaN to derive it from the matrix.
BlockSpectrum analyze_block(const Mat2& m, double log_det = NAN, const SpectrumOptions& opt = {});

// max_t |A^t|_2 for t >= 0, exact up to rounding: powers are formed until a
// rigorous bound on all later norms falls below the running maximum (at most
// 2^24 powers: for rho within ~1e-6 of 1 the maximum over those is returned).
double transient_peak(const Mat2& m, const Eigenvalues2& eig, double spectral_radius);

struct FrozenSpectrum {
  BlockSpectrum parallel;
  BlockSpectrum perpendicular;
  double frozen_spectral_radius = 0;
  bool frozen_stable = false;  // frozen_spectral_radius < 1
};

FrozenSpectrum analyze_frozen(const Gates& g, const SpectrumOptions& opt = {});

}  // namespace mdnstab
