// Continuous-time equivalents of the 2x2 blocks, Odeint trajectories and the
// rotating-key experiment (DESIGN.md sections 3 and 4). References: Eigen's
// MatrixFunctions log/exp, the discrete powers A^t x0, and the rotating-frame
// eigenvalues, in tests/test_continuous_time.cpp.
#include "mdnstab/continuous_time.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <exception>
#include <limits>
#include <numbers>

#include <Eigen/Dense>
#include <boost/numeric/odeint.hpp>
#include <fmt/format.h>

namespace mdnstab {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kEps = std::numeric_limits<double>::epsilon();
constexpr double kPi = std::numbers::pi;
// Odeint gives up after this many steps in one call (a tolerance it cannot meet).
constexpr long kMaxOdeSteps = 200'000'000;
constexpr int kMaxFailedTries = 500;

Mat2 affine(double diag, double c, const Mat2& a, double m) {
  // diag I + c (A - m I)
  return {diag + c * (a.a - m), c * a.b, c * a.c, diag + c * (a.d - m)};
}

// zeta, w_n and what follows from them, given L's eigenvalues.
void fill_oscillator(ContinuousTime& ct, std::optional<double> zeta, std::optional<double> w_n) {
  ct.zeta = zeta;
  ct.w_n = w_n;
  const double tr = ct.nu1.real() + ct.nu2.real();  // tr L = -2 zeta w_n
  ct.decay_time = tr == 0 ? kInf : -2.0 / tr;
  const double top = ct.nu1.real();
  ct.slowest_time_constant = top == 0 ? kInf : -1.0 / top;
  if (ct.nu1.imag() != 0) {
    ct.damped_frequency = std::abs(ct.nu1.imag());
    ct.period = 2 * kPi / *ct.damped_frequency;
  }
  if (zeta) {
    if (std::isinf(*zeta))
      ct.q_factor = 0.0;
    else
      ct.q_factor = *zeta == 0 ? kInf : 1.0 / (2 * *zeta);
  }
}

}  // namespace

const char* to_string(CtClass c) {
  switch (c) {
    case CtClass::kUnderdamped: return "underdamped";
    case CtClass::kCriticallyDamped: return "critically damped";
    case CtClass::kOverdamped: return "overdamped";
    case CtClass::kSaddle: return "saddle";
    case CtClass::kNoRealEquivalent: return "no real equivalent";
  }
  return "?";
}

ContinuousTime continuous_time(const Mat2& a, const BlockSpectrum& s, double log_det) {
  ContinuousTime ct;
  const Eigenvalues2& e = s.eig;
  const double rho = s.spectral_radius;
  // Growth of the discrete powers: at rho = 1 only a Jordan block (a repeated
  // real unit eigenvalue with A != lambda I) grows, linearly.
  const bool scalar = a.b == 0 && a.c == 0 && a.a == a.d;
  const bool repeated_unit = !e.complex_pair && std::abs(e.l1.real()) == 1 && e.l1 == e.l2;
  ct.decays = rho < 1;
  ct.grows = rho > 1 || (repeated_unit && !scalar);
  if (std::isnan(log_det)) {  // -inf is exact: det = alpha*mu = 0
    const double det = a.det();
    log_det = det > 0 ? std::log(det) : -kInf;
  }
  if (log_det == -kInf) {
    // det = alpha*mu = 0 exactly: the rounded eigenvalue of A may miss 0 by an ulp.
    ct.reason = "eigenvalue 0 (det A = 0): A erases a direction in one step, which no flow exp(tL) can do";
    return ct;
  }
  const double m = 0.5 * (a.a + a.d);
  const double lnr = 0.5 * log_det;  // ln sqrt(det): the mean of ln l1 and ln l2
  // The discriminant m^2 - det is only known to about eps times its terms
  // ((a - d)/2)^2 and |bc|; within that band the pair is critically damped.
  const double dd = 0.5 * (a.a - a.d);
  const double disc_band = 8 * kEps * (dd * dd + std::abs(a.b * a.c));

  if (e.complex_pair) {
    // A = m I + y J with J^2 = -I, so log A = ln|lambda| I + theta J, theta in (0, pi):
    // real for any complex pair, a negative real part included.
    const double y = e.l1.imag();
    const double theta = std::atan2(y, m);
    ct.exists = true;
    ct.log = affine(lnr, theta / y, a, m);
    ct.nu1 = {lnr, theta};
    ct.nu2 = {lnr, -theta};
    ct.cls = (m > 0 && y * y <= disc_band) ? CtClass::kCriticallyDamped : CtClass::kUnderdamped;
    fill_oscillator(ct, s.damping_ratio, s.natural_frequency);
    return ct;
  }

  const double l1 = e.l1.real(), l2 = e.l2.real();
  if (l1 == 0 || l2 == 0) {
    ct.reason = "eigenvalue 0 (det A = 0): A erases a direction in one step, which no flow exp(tL) can do";
    return ct;
  }
  if (l1 < 0 || l2 < 0) {
    if (scalar) {
      // A = -r I = exp(ln r I + pi J) with J a quarter turn: real, but not the
      // principal logarithm and not unique (any J with J^2 = -I will do).
      ct.exists = true;
      ct.principal = false;
      const double ln_r = std::log(-a.a);
      ct.log = {ln_r, -kPi, kPi, ln_r};
      ct.nu1 = {ln_r, kPi};
      ct.nu2 = {ln_r, -kPi};
      ct.cls = CtClass::kUnderdamped;
      const double wn = std::hypot(ln_r, kPi);
      fill_oscillator(ct, -ln_r / wn, wn);
      return ct;
    }
    if (l1 < 0 && l2 < 0 && l1 == l2)
      ct.reason = fmt::format(
          "repeated eigenvalue {:.6g} < 0 with a single eigenvector: exp(L) of a real L cannot be such a Jordan block",
          l1);
    else
      ct.reason = fmt::format(
          "real eigenvalue {:.6g} < 0: the mode flips sign every step, and exp(L) of a real L has a negative "
          "eigenvalue only as a repeated pair",
          l1 < 0 ? l1 : l2);
    return ct;
  }

  // Two positive eigenvalues m +/- h: ln l = lnr +/- atanh(h/m), so
  // c = atanh(h/m)/h -> 1/m as h -> 0, smooth through critical damping and
  // exact for a Jordan block (log(m I + N) = ln m I + N/m).
  const double h = 0.5 * (l1 - l2);  // l1 >= l2 > 0
  const double c = h == 0 ? 1.0 / m : std::atanh(h / m) / h;
  ct.exists = true;
  ct.log = affine(lnr, c, a, m);
  // As analyze_block: s1 = ln l1 read off the eigenvalue (exactly 0 at l1 = 1).
  const double s1 = std::log(l1), s2 = log_det - s1;
  ct.nu1 = std::max(s1, s2);
  ct.nu2 = std::min(s1, s2);
  const double p = s1 * s2;  // w_n^2 = det L
  const bool critical = h * h <= disc_band;
  std::optional<double> zeta = s.damping_ratio, w_n = s.natural_frequency;
  if (!w_n && p == 0) {
    w_n = 0.0;
    const double sum = s1 + s2;  // -2 zeta w_n
    if (sum != 0) zeta = sum < 0 ? kInf : -kInf;
  }
  if (critical)
    ct.cls = CtClass::kCriticallyDamped;
  else if (p < 0)
    ct.cls = CtClass::kSaddle;
  else
    ct.cls = CtClass::kOverdamped;
  fill_oscillator(ct, zeta, w_n);
  return ct;
}

ContinuousTime continuous_time(const Mat2& a, double log_det) {
  const BlockSpectrum s = analyze_block(a, log_det, SpectrumOptions{false});
  return continuous_time(a, s, log_det);
}

FrozenContinuousTime analyze_continuous_time(const Gates& g) {
  const double log_det = g.log_alpha + g.log_mu;  // det A_par = det A_perp = alpha*mu
  const FrozenSpectrum f = analyze_frozen(g, SpectrumOptions{false});
  return {continuous_time(a_par(g), f.parallel, log_det), continuous_time(a_perp(g), f.perpendicular, log_det)};
}

Status check(const OdeTolerances& tol) {
  if (!std::isfinite(tol.abs_tol) || tol.abs_tol <= 0)
    return error(Code::kInvalidArgument, fmt::format("--abs-tol = {} must be finite and > 0", tol.abs_tol));
  if (!std::isfinite(tol.rel_tol) || tol.rel_tol <= 0)
    return error(Code::kInvalidArgument, fmt::format("--rel-tol = {} must be finite and > 0", tol.rel_tol));
  // Below ~5 eps a step's own rounding exceeds the tolerance and Odeint would
  // shrink the step forever.
  if (tol.rel_tol < 1e-15)
    return error(Code::kInvalidArgument,
                 fmt::format("--rel-tol = {} is below 1e-15, beyond double precision's reach", tol.rel_tol));
  if (tol.rel_tol > 1)
    return error(Code::kInvalidArgument, fmt::format("--rel-tol = {} must be <= 1", tol.rel_tol));
  return Status::ok();
}

Status check(const TrajectoryOptions& opt) {
  if (Status s = check(opt.tol); !s.is_ok()) return s;
  if (!std::isfinite(opt.t_end) || opt.t_end <= 0)
    return error(Code::kInvalidArgument, fmt::format("--t-end = {} must be finite and > 0", opt.t_end));
  for (int i = 0; i < 2; ++i)
    if (!std::isfinite(opt.x0[i]))
      return error(Code::kInvalidArgument,
                   fmt::format("--x0 {} = {} is not finite", i == 0 ? "s" : "m", opt.x0[i]));
  const double points = std::floor(opt.t_end) + 2;
  if (points > kMaxTrajectoryPoints)
    return error(Code::kTooLarge, fmt::format("--t-end = {} gives {:.3g} output points, more than the {:.0e} held in "
                                              "memory",
                                              opt.t_end, points, kMaxTrajectoryPoints));
  return Status::ok();
}

Result<Trajectory> integrate_trajectory(const Mat2& a, const ContinuousTime& ct, const TrajectoryOptions& opt) {
  namespace odeint = boost::numeric::odeint;
  if (Status s = check(opt); !s.is_ok()) return s;
  if (!ct.exists)
    return error(Code::kInvalidArgument, "no real continuous-time equivalent to integrate: " + ct.reason);
  using State = std::array<double, 2>;
  Trajectory tr;
  const long n_int = long(std::floor(opt.t_end));
  for (long i = 0; i <= n_int; ++i) tr.t.push_back(double(i));
  if (opt.t_end > double(n_int)) tr.t.push_back(opt.t_end);
  tr.ode.reserve(tr.t.size());

  const Mat2 L = ct.log;
  auto sys = [&L](const State& x, State& dxdt, double /*t*/) { dxdt = L.apply(x); };
  auto stepper = odeint::make_controlled(opt.tol.abs_tol, opt.tol.rel_tol, odeint::runge_kutta_dopri5<State>());
  State x = opt.x0;
  try {
    // integrate_times steps adaptively and lands exactly on every output time.
    tr.steps = long(odeint::integrate_times(stepper, sys, x, tr.t.begin(), tr.t.end(), 0.01,
                                            [&tr](const State& s, double) { tr.ode.push_back(s); },
                                            odeint::max_step_checker(kMaxOdeSteps)));
  } catch (const std::exception& ex) {
    return error(Code::kNoConvergence, fmt::format("Odeint stopped: {} (abs-tol = {}, rel-tol = {})", ex.what(),
                                                   opt.tol.abs_tol, opt.tol.rel_tol));
  }
  if (tr.ode.size() != tr.t.size())
    return error(Code::kNumericalIssue, "Odeint returned fewer points than requested");

  State d = opt.x0;  // A^t x0
  tr.discrete.resize(tr.t.size());
  tr.diff.resize(tr.t.size());
  for (size_t i = 0; i < tr.t.size(); ++i) {
    const bool integer = long(i) <= n_int;
    if (integer && i > 0) d = a.apply(d);
    const State& o = tr.ode[i];
    if (!std::isfinite(o[0]) || !std::isfinite(o[1]))
      return error(Code::kNumericalIssue, fmt::format("the Odeint solution is not finite at t = {}", tr.t[i]));
    if (!integer) {
      tr.discrete[i] = {NAN, NAN};
      tr.diff[i] = NAN;
      continue;
    }
    tr.discrete[i] = d;
    const double diff = std::hypot(o[0] - d[0], o[1] - d[1]);
    const double norm = std::hypot(d[0], d[1]);
    const double rel = diff == 0 ? 0.0 : diff / norm;  // x/0 = inf
    tr.diff[i] = diff;
    tr.max_abs_diff = std::max(tr.max_abs_diff, diff);
    if (rel > tr.max_rel_diff) {
      tr.max_rel_diff = rel;
      tr.t_at_max_rel = tr.t[i];
    }
  }
  return tr;
}

// ---- Rotating keys ----

namespace {

// The key at time t and the rotation generator Omega / omega (DK x DK).
Eigen::VectorXd key_at(const RotationSetup& r, double phase) {
  Eigen::VectorXd k(r.dk);
  if (r.dk == 2) {
    k << std::cos(phase), std::sin(phase);
  } else {
    const double st = std::sin(r.tilt);
    k << st * std::cos(phase), st * std::sin(phase), std::cos(r.tilt);
  }
  return k;
}

Eigen::MatrixXd unit_generator(int dk) {
  Eigen::MatrixXd J = Eigen::MatrixXd::Zero(dk, dk);
  J(0, 1) = -1;
  J(1, 0) = 1;
  return J;
}

Eigen::Matrix2d eig2(const Mat2& m) {
  Eigen::Matrix2d e;
  e << m.a, m.b, m.c, m.d;
  return e;
}

// (k k^T) (x) X_par + (I - k k^T) (x) X_perp, key-major [2DK x 2DK].
Eigen::MatrixXd key_operator(const Eigen::VectorXd& k, const Eigen::Matrix2d& par, const Eigen::Matrix2d& perp) {
  const long dk = k.size();
  const Eigen::MatrixXd P = k * k.transpose();
  Eigen::MatrixXd G(2 * dk, 2 * dk);
  for (long i = 0; i < dk; ++i)
    for (long j = 0; j < dk; ++j)
      G.block<2, 2>(2 * i, 2 * j) = P(i, j) * par + ((i == j ? 1.0 : 0.0) - P(i, j)) * perp;
  return G;
}

Result<double> max_real_eigenvalue(const Eigen::MatrixXd& M, const char* what) {
  if (!M.allFinite()) return error(Code::kNumericalIssue, fmt::format("{} is not finite", what));
  Eigen::EigenSolver<Eigen::MatrixXd> es(M, false);
  if (es.info() != Eigen::Success)
    return error(Code::kNoConvergence, fmt::format("the eigenvalues of {} did not converge", what));
  return es.eigenvalues().real().maxCoeff();
}

Result<double> spectral_radius(const Eigen::MatrixXd& M, const char* what) {
  if (!M.allFinite()) return error(Code::kNumericalIssue, fmt::format("{} is not finite", what));
  Eigen::EigenSolver<Eigen::MatrixXd> es(M, false);
  if (es.info() != Eigen::Success)
    return error(Code::kNoConvergence, fmt::format("the eigenvalues of {} did not converge", what));
  return es.eigenvalues().cwiseAbs().maxCoeff();
}

bool planar(const RotationSetup& r) { return r.dk == 2 || r.tilt == kPi / 2; }

Result<double> parse_double(std::string_view s, std::string_view what) {
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size())
    return error(Code::kInvalidArgument, fmt::format("{}: '{}' is not a number", what, s));
  return v;
}

}  // namespace

Status check(const RotationSetup& r) {
  if (r.dk != 2 && r.dk != 3) return error(Code::kInvalidArgument, fmt::format("--dk = {} must be 2 or 3", r.dk));
  if (!std::isfinite(r.tilt)) return error(Code::kInvalidArgument, fmt::format("--tilt = {} is not finite", r.tilt));
  return Status::ok();
}

Status check_omega(double omega) {
  if (!std::isfinite(omega)) return error(Code::kInvalidArgument, fmt::format("omega = {} is not finite", omega));
  if (omega == 0) return Status::ok();
  if (std::abs(omega) > kMaxOmega)
    return error(Code::kInvalidArgument, fmt::format("omega = {} exceeds {:g} rad/step in magnitude", omega, kMaxOmega));
  if (kPi / std::abs(omega) > kMaxRotationPeriod)
    return error(Code::kInvalidArgument,
                 fmt::format("omega = {}: its period pi/|omega| = {:.3g} steps exceeds {:g} (use 0 for a frozen key, "
                             "or |omega| >= {:.3g})",
                             omega, kPi / std::abs(omega), kMaxRotationPeriod, kPi / kMaxRotationPeriod));
  return Status::ok();
}

Result<OmegaRange> parse_omega_range(std::string_view spec) {
  std::vector<std::string_view> parts;
  for (size_t p = 0;;) {
    const size_t c = spec.find(':', p);
    parts.push_back(spec.substr(p, c == std::string_view::npos ? std::string_view::npos : c - p));
    if (c == std::string_view::npos) break;
    p = c + 1;
  }
  if (parts.size() != 3)
    return error(Code::kInvalidArgument, fmt::format("--omega '{}' is not START:STOP:N", spec));
  OmegaRange r;
  auto start = parse_double(parts[0], "--omega START");
  if (!start.is_ok()) return start.status;
  auto stop = parse_double(parts[1], "--omega STOP");
  if (!stop.is_ok()) return stop.status;
  long n = 0;
  auto [p, ec] = std::from_chars(parts[2].data(), parts[2].data() + parts[2].size(), n);
  if (parts[2].empty() || ec != std::errc() || p != parts[2].data() + parts[2].size())
    return error(Code::kInvalidArgument, fmt::format("--omega: N = '{}' is not an integer", parts[2]));
  r.start = start.value;
  r.stop = stop.value;
  r.n = n;
  if (!std::isfinite(r.start) || !std::isfinite(r.stop))
    return error(Code::kInvalidArgument, fmt::format("--omega '{}' is not finite", spec));
  if (r.n < 1) return error(Code::kInvalidArgument, fmt::format("--omega '{}' is empty: N = {} < 1", spec, r.n));
  if (r.start > r.stop)
    return error(Code::kInvalidArgument, fmt::format("--omega '{}' is empty: START > STOP", spec));
  if (r.n == 1 && r.start != r.stop)
    return error(Code::kInvalidArgument, fmt::format("--omega '{}': N = 1 needs START = STOP", spec));
  if (r.n > kMaxOmegaPoints)
    return error(Code::kTooLarge, fmt::format("--omega '{}': N = {} exceeds {} points", spec, r.n, kMaxOmegaPoints));
  for (long i = 0; i < r.n; ++i)
    if (Status s = check_omega(r.at(i)); !s.is_ok())
      return error(s.code, fmt::format("--omega '{}': {}", spec, s.message));
  return r;
}

Result<double> rotating_rate_closed_form(const Mat2& l_par, const Mat2& l_perp, const RotationSetup& r,
                                         double omega) {
  if (Status s = check(r); !s.is_ok()) return s;
  if (!std::isfinite(omega)) return error(Code::kInvalidArgument, fmt::format("omega = {} is not finite", omega));
  // x = (R(wt) (x) I) y turns G(k(t)) into the constant G(k0) - Omega (x) I.
  Eigen::MatrixXd M = key_operator(key_at(r, 0.0), eig2(l_par), eig2(l_perp));
  const Eigen::MatrixXd J = unit_generator(r.dk);
  for (int i = 0; i < r.dk; ++i)
    for (int j = 0; j < r.dk; ++j) M.block<2, 2>(2 * i, 2 * j) -= omega * J(i, j) * Eigen::Matrix2d::Identity();
  return max_real_eigenvalue(M, "the rotating-frame matrix M");
}

Result<RotatingRate> rotating_rate_odeint(const Mat2& l_par, const Mat2& l_perp, const RotationSetup& r,
                                          double omega, const OdeTolerances& tol) {
  namespace odeint = boost::numeric::odeint;
  if (Status s = check(r); !s.is_ok()) return s;
  if (Status s = check(tol); !s.is_ok()) return s;
  if (Status s = check_omega(omega); !s.is_ok()) return s;
  const int n = 2 * r.dk;
  const Eigen::Matrix2d par = eig2(l_par), perp = eig2(l_perp);
  // G(k(t)) repeats when k k^T does: every pi/|omega| for a key in a plane
  // (k and -k give the same projector), every 2 pi/|omega| on a cone. Whole
  // periods, at least one step long, so that short periods still average
  // the integration error over a unit of time.
  double horizon = 1.0;
  if (omega != 0) {
    const double period = (planar(r) ? kPi : 2 * kPi) / std::abs(omega);
    horizon = period * std::ceil(1.0 / period);
  }
  using State = std::vector<double>;  // [n*n] the fundamental matrix, column-major
  // G(k) x = k (x) (L_par - L_perp) (sum_j k_j x_j) + (I (x) L_perp) x per column x
  // ([DK,2] pairs x_j): O(DK) per column, no matrix G formed, nothing allocated.
  const Eigen::Matrix2d delta = par - perp;
  const double st = std::sin(r.tilt), ct = std::cos(r.tilt);
  auto sys = [&](const State& x, State& dxdt, double t) {
    const double c = std::cos(omega * t), s = std::sin(omega * t);
    const double k[3] = {r.dk == 2 ? c : st * c, r.dk == 2 ? s : st * s, ct};  // k(t)
    for (int col = 0; col < n; ++col) {
      const double* xc = x.data() + size_t(col) * n;  // [DK,2]
      double* dc = dxdt.data() + size_t(col) * n;     // [DK,2]
      Eigen::Vector2d u = Eigen::Vector2d::Zero();
      for (int j = 0; j < r.dk; ++j) u += k[j] * Eigen::Vector2d(xc[2 * j], xc[2 * j + 1]);
      const Eigen::Vector2d v = delta * u;
      for (int i = 0; i < r.dk; ++i) {
        const Eigen::Vector2d y = k[i] * v + perp * Eigen::Vector2d(xc[2 * i], xc[2 * i + 1]);
        dc[2 * i] = y(0);
        dc[2 * i + 1] = y(1);
      }
    }
  };
  State x(size_t(n) * n, 0.0);
  for (int i = 0; i < n; ++i) x[size_t(i) * n + i] = 1.0;
  auto stepper = odeint::make_controlled(tol.abs_tol, tol.rel_tol, odeint::runge_kutta_dopri5<State>());
  RotatingRate out;
  out.horizon = horizon;
  double log_scale = 0;  // Phi(t) = exp(log_scale) * x
  double t = 0, dt = 0.01;
  // Renormalise at every whole step of time: the entries then stay near 1
  // whatever the growth rate, and the absolute tolerance keeps its meaning.
  const long segments = std::max(1L, long(std::ceil(horizon)));
  for (long seg = 1; seg <= segments; ++seg) {
    const double t1 = seg == segments ? horizon : horizon * double(seg) / double(segments);
    while (t1 - t > 1e-14 * std::max(1.0, t1)) {
      double step = std::min(dt, t1 - t);
      int fails = 0;
      odeint::controlled_step_result res;
      do {
        res = stepper.try_step(sys, x, t, step);
      } while (res == odeint::fail && ++fails < kMaxFailedTries);
      if (res == odeint::fail)
        return error(Code::kNoConvergence, fmt::format("Odeint could not meet rel-tol = {} at omega = {}, t = {}",
                                                       tol.rel_tol, omega, t));
      dt = step;  // the stepper's proposal for the next step
      if (++out.steps > kMaxOdeSteps)
        return error(Code::kNoConvergence, fmt::format("Odeint took more than {} steps at omega = {}", kMaxOdeSteps,
                                                       omega));
    }
    t = t1;
    double big = 0;
    for (double v : x) big = std::max(big, std::abs(v));
    if (!std::isfinite(big) || big == 0)
      return error(Code::kNumericalIssue, fmt::format("the monodromy matrix is not finite at omega = {}", omega));
    for (double& v : x) v /= big;
    log_scale += std::log(big);
    stepper.reset();  // dopri5 keeps the last derivative (FSAL); x was rescaled
  }
  Eigen::Map<const Eigen::MatrixXd> Phi(x.data(), n, n);
  auto rho = spectral_radius(Phi, "the monodromy matrix");
  if (!rho.is_ok()) return rho.status;
  out.rate = (log_scale + std::log(rho.value)) / horizon;
  return out;
}

double discrete_rotating_log_growth(const Mat2& a_par, const Mat2& a_perp, const RotationSetup& r, double theta) {
  // Keys k_t = R(theta)^t k0 make y_t = (R^-t (x) I) x_t evolve by the constant
  // (R(theta)^T (x) I) T(k0).
  const Eigen::MatrixXd T = key_operator(key_at(r, 0.0), eig2(a_par), eig2(a_perp));
  const Eigen::MatrixXd J = unit_generator(r.dk);
  Eigen::MatrixXd R = Eigen::MatrixXd::Identity(r.dk, r.dk);
  R.topLeftCorner(2, 2) << std::cos(theta), -std::sin(theta), std::sin(theta), std::cos(theta);
  Eigen::MatrixXd Rt(2 * r.dk, 2 * r.dk);
  for (int i = 0; i < r.dk; ++i)
    for (int j = 0; j < r.dk; ++j) Rt.block<2, 2>(2 * i, 2 * j) = R(j, i) * Eigen::Matrix2d::Identity();
  auto rho = spectral_radius(Rt * T, "the rotating-frame transition");
  if (!rho.is_ok()) return NAN;
  return rho.value > 0 ? std::log(rho.value) : -kInf;
}

Result<RotationScan> rotation_scan(const Gates& g, const FrozenContinuousTime& ct, const RotationSetup& r,
                                   const OmegaRange& range, const OdeTolerances& tol) {
  if (Status s = check(r); !s.is_ok()) return s;
  if (Status s = check(tol); !s.is_ok()) return s;
  for (const auto& [blk, c] : {std::pair<const char*, const ContinuousTime*>{"A_par", &ct.parallel},
                               std::pair<const char*, const ContinuousTime*>{"A_perp", &ct.perpendicular}})
    if (!c->exists)
      return error(Code::kInvalidArgument, fmt::format("no rotating-key flow: {} has no real logarithm ({})", blk,
                                                       c->reason));
  RotationScan sc;
  sc.frozen_rate = std::max(ct.parallel.nu1.real(), ct.perpendicular.nu1.real());
  const Mat2 ap = a_par(g), aq = a_perp(g);
  for (long i = 0; i < range.n; ++i) {
    const double w = range.at(i);
    auto ode = rotating_rate_odeint(ct.parallel.log, ct.perpendicular.log, r, w, tol);
    if (!ode.is_ok()) return ode.status;
    auto cf = rotating_rate_closed_form(ct.parallel.log, ct.perpendicular.log, r, w);
    if (!cf.is_ok()) return cf.status;
    sc.omega.push_back(w);
    sc.rate.push_back(ode.value.rate);
    sc.rate_closed_form.push_back(cf.value);
    sc.discrete_log_growth.push_back(discrete_rotating_log_growth(ap, aq, r, w));
    sc.steps += ode.value.steps;
    sc.max_abs_disagreement = std::max(sc.max_abs_disagreement, std::abs(ode.value.rate - cf.value));
    // The first of near-equal maxima: the discrete growth is symmetric under
    // theta -> pi - theta for keys in a plane, and ties should name the smaller angle.
    const size_t k = sc.rate.size() - 1;
    auto beats = [](double x, double best) { return x - best > 1e-12 * std::max(1.0, std::abs(best)); };
    if (beats(sc.rate[k], sc.rate[size_t(sc.peak)])) sc.peak = long(k);
    if (beats(sc.discrete_log_growth[k], sc.discrete_log_growth[size_t(sc.discrete_peak)])) sc.discrete_peak = long(k);
  }
  return sc;
}

}  // namespace mdnstab
