// The continuous-time picture of DESIGN.md section 3: the real logarithm
// L = log(A) of each 2x2 block (a damped oscillator x' = L x with exp(L) = A),
// its damping ratio, natural frequency, period, decay time, Q and class;
// Boost.Odeint trajectories of x' = L x against the powers A^t x0; and the
// rotating-key experiment (x' = G(k(t)) x, the key turning at rate omega).
// Tested in tests/test_continuous_time.cpp and tests/cli/test_cli_ode.cpp.
#pragma once

#include <array>
#include <complex>
#include <numbers>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mdnstab/gates.hpp"
#include "mdnstab/linearization.hpp"
#include "mdnstab/spectrum.hpp"
#include "mdnstab/status.hpp"

namespace mdnstab {

// Underdamped: L has a complex pair (zeta < 1). Critically damped: a repeated
// eigenvalue (zeta = 1, within the rounding of A's entries). Overdamped: two
// real eigenvalues of one sign (|zeta| > 1; zeta = +inf at a unit eigenvalue of
// A). Saddle: real eigenvalues of opposite sign (w_n^2 < 0, not an
// oscillator). No real equivalent: A has a zero or negative real eigenvalue
// with no real logarithm.
enum class CtClass { kUnderdamped, kCriticallyDamped, kOverdamped, kSaddle, kNoRealEquivalent };
const char* to_string(CtClass c);

struct ContinuousTime {
  bool exists = false;   // a real L with exp(L) = A
  std::string reason;    // why none exists (empty when exists)
  bool principal = true;  // false only for A = -r I, whose real logs are not unique
  Mat2 log;              // L
  // Eigenvalues of L, nu1 with the larger real part (positive imaginary part
  // for a complex pair); nu = ln(lambda) = -zeta w_n +/- i w_n sqrt(1 - zeta^2).
  std::complex<double> nu1, nu2;
  CtClass cls = CtClass::kNoRealEquivalent;
  // x'' + 2 zeta w_n x' + w_n^2 x = 0 with w_n^2 = det L, 2 zeta w_n = -tr L.
  // w_n = 0 at a unit eigenvalue of A (zeta = +/-inf, or none for A = I and
  // its Jordan form). Both none for a saddle or without a real L.
  std::optional<double> zeta, w_n;
  std::optional<double> damped_frequency;  // |Im nu| in rad/step, when oscillating
  std::optional<double> period;            // 2 pi / damped_frequency, in steps
  // 1/(zeta w_n) = -2/tr L: the envelope's time constant in steps; negative
  // when the envelope grows, +inf when undamped.
  std::optional<double> decay_time;
  // -1/max Re nu: the slowest mode's time constant (differs from decay_time
  // when overdamped); negative when that mode grows.
  std::optional<double> slowest_time_constant;
  std::optional<double> q_factor;  // 1/(2 zeta): +inf undamped, 0 at zeta = inf
  bool decays = false;  // every solution tends to 0 (rho(A) < 1)
  bool grows = false;   // some solution is unbounded (rho > 1, or a Jordan block at rho = 1)
};

// Builds on the block's spectrum (analyze_block): eigenvalues, zeta and w_n.
// log_det: log(det A) when known exactly (log_alpha + log_mu), else NaN.
// L in closed form, smooth across critical damping:
//   L = (log_det / 2) I + c (A - m I),  m = tr A / 2,
//   c = atanh(h/m)/h for real eigenvalues m +/- h (c = 1/m when h = 0, which
//   covers the Jordan case), c = atan2(y, m)/y for a complex pair m +/- i y.
ContinuousTime continuous_time(const Mat2& a, const BlockSpectrum& s, double log_det = NAN);
ContinuousTime continuous_time(const Mat2& a, double log_det = NAN);

struct FrozenContinuousTime {
  ContinuousTime parallel;       // of A_par
  ContinuousTime perpendicular;  // of A_perp
};
FrozenContinuousTime analyze_continuous_time(const Gates& g);

// Adaptive Odeint tolerances (both > 0 and finite).
struct OdeTolerances {
  double abs_tol = 1e-30;  // tiny: relative control, as the states decay by orders of magnitude
  double rel_tol = 1e-10;
};
Status check(const OdeTolerances& tol);

// ---- Trajectories of x' = L x at integer times, beside A^t x0 ----

inline constexpr double kMaxTrajectoryPoints = 1e7;  // ~0.5 GB held in memory

struct TrajectoryOptions {
  OdeTolerances tol;
  double t_end = 50;                 // in steps, > 0
  std::array<double, 2> x0{1.0, 0.0};  // (s, m)
};
Status check(const TrajectoryOptions& opt);

struct Trajectory {
  std::vector<double> t;                       // [P]: 0, 1, ..., floor(t_end), then t_end if fractional
  std::vector<std::array<double, 2>> ode;      // [P,2] Odeint solution of x' = L x
  std::vector<std::array<double, 2>> discrete; // [P,2] A^t x0 (NaN at a fractional t)
  std::vector<double> diff;                    // [P] |ode - discrete|_2 (NaN at a fractional t)
  double max_abs_diff = 0;
  double max_rel_diff = 0;  // max of diff / |discrete|_2 (0/0 counts 0, x/0 inf)
  double t_at_max_rel = 0;
  long steps = 0;           // accepted Odeint steps
};

// Fails (kInvalidArgument) when ct has no real L; kNoConvergence when Odeint gives up.
Result<Trajectory> integrate_trajectory(const Mat2& a, const ContinuousTime& ct, const TrajectoryOptions& opt);

// ---- The rotating-key experiment ----

// The key turns at angular rate omega (rad/step) about a fixed axis: DK = 2 in
// the plane, k(t) = (cos wt, sin wt); DK = 3 about e3 at angle `tilt` from it,
// k(t) = (sin tilt cos wt, sin tilt sin wt, cos tilt) (tilt = pi/2: in a plane).
// The state is the (s, m) pair of each key coordinate, ordered key-major:
//   x' = G(k) x,  G(k) = (k k^T) (x) L_par + (I - k k^T) (x) L_perp   [2DK x 2DK],
// so exp(G(k)) is the frozen transition T(k) of DESIGN.md section 4.
struct RotationSetup {
  int dk = 2;             // 2 or 3
  double tilt = std::numbers::pi / 2;  // DK = 3 only
};
Status check(const RotationSetup& r);

// Per-step omega limits: the period pi/|omega| must stay <= kMaxRotationPeriod
// steps (omega = 0, the frozen key, is always accepted).
inline constexpr double kMaxRotationPeriod = 1e4;
inline constexpr double kMaxOmega = 1e4;
inline constexpr long kMaxOmegaPoints = 10000;

struct OmegaRange {
  double start = 0, stop = 0;
  long n = 1;
  double at(long i) const { return i == n - 1 ? stop : start + (stop - start) * double(i) / double(n - 1); }
};
// "START:STOP:N" with START <= STOP (N = 1 needs START = STOP), finite, and
// every point within the omega limits above.
Result<OmegaRange> parse_omega_range(std::string_view spec);
Status check_omega(double omega);

// In the frame turning with the key the system is constant,
//   y' = M y,  M = G(k0) - Omega (x) I_2,  Omega the key rotation's generator,
// so the growth rate per step is max Re eig(M) (Eigen). The closed-form reference.
Result<double> rotating_rate_closed_form(const Mat2& l_par, const Mat2& l_perp, const RotationSetup& r,
                                         double omega);

struct RotatingRate {
  double rate = 0;     // per step: ln rho(monodromy) / horizon
  double horizon = 0;  // integrated time (whole periods of G(k(t)))
  long steps = 0;      // accepted Odeint steps
};
// The same rate from Odeint in the fixed (lab) frame: the fundamental matrix
// of x' = G(k(t)) x over whole periods (the monodromy matrix), renormalised
// every step unit so that it neither overflows nor underflows; the rate is its
// Floquet exponent. omega = 0 integrates the frozen system over one step.
Result<RotatingRate> rotating_rate_odeint(const Mat2& l_par, const Mat2& l_perp, const RotationSetup& r,
                                          double omega, const OdeTolerances& tol);

// The discrete counterpart: keys turning by theta per step (frozen during a
// step), growth per step rho((R(theta)^T (x) I_2) T(k0)) (DESIGN.md section 4);
// returns ln of it, -inf when it is 0.
double discrete_rotating_log_growth(const Mat2& a_par, const Mat2& a_perp, const RotationSetup& r, double theta);

struct RotationScan {
  std::vector<double> omega;            // [N]
  std::vector<double> rate;             // [N] Odeint, per step
  std::vector<double> rate_closed_form; // [N] max Re eig(M)
  std::vector<double> discrete_log_growth;  // [N] ln rho, theta = omega per step
  long peak = 0;                        // index of the largest rate
  long discrete_peak = 0;               // index of the largest discrete growth
  double frozen_rate = 0;               // max Re nu over both blocks (= rate at omega 0)
  double max_abs_disagreement = 0;      // max |rate - rate_closed_form|
  long steps = 0;
};
// Fails with kInvalidArgument when a block has no real L (the reason named).
Result<RotationScan> rotation_scan(const Gates& g, const FrozenContinuousTime& ct, const RotationSetup& r,
                                   const OmegaRange& range, const OdeTolerances& tol);

}  // namespace mdnstab
