// `mdnstab ode`: the continuous-time picture of one gate set (DESIGN.md section
// 3): each block's real logarithm L and oscillator figures, an Odeint
// trajectory of x' = L x beside A^t x0, and the rotating-key omega scan.
// Library: src/core/continuous_time.cpp. Tested in tests/cli/test_cli_ode.cpp.
#include <cmath>
#include <memory>
#include <numbers>
#include <optional>
#include <span>

#include <fmt/format.h>

#include "app.hpp"
#include "mdnstab/atomic_file.hpp"
#include "mdnstab/certify.hpp"
#include "mdnstab/continuous_time.hpp"

namespace mdnstab::cli {

namespace {

struct OdeOptions {
  GateOptions gates;
  std::string block = "par";
  std::vector<double> x0{1.0, 0.0};
  double t_end = 50;
  double abs_tol = OdeTolerances{}.abs_tol;
  double rel_tol = OdeTolerances{}.rel_tol;
  std::string out;
  std::string omega = "0:3.141592653589793:33";
  int dk = 2;
  std::optional<double> tilt;
  std::string scan_out;
};

nlohmann::json opt_json(const std::optional<double>& v) { return v ? number_or_null(*v) : nlohmann::json(nullptr); }

nlohmann::json ct_json(const ContinuousTime& c) {
  nlohmann::json j = {{"exists", c.exists},
                      {"class", to_string(c.cls)},
                      {"reason", c.exists ? nlohmann::json(nullptr) : nlohmann::json(c.reason)},
                      {"decays", c.decays},
                      {"grows", c.grows}};
  if (!c.exists) {
    for (const char* k : {"log", "eigenvalues", "zeta", "w_n", "damped_frequency", "period", "decay_time",
                          "slowest_time_constant", "q_factor"})
      j[k] = nullptr;
    j["principal"] = nullptr;
    return j;
  }
  j["log"] = {{c.log.a, c.log.b}, {c.log.c, c.log.d}};
  j["principal"] = c.principal;
  j["eigenvalues"] = {{c.nu1.real(), c.nu1.imag()}, {c.nu2.real(), c.nu2.imag()}};
  // JSON has no inf: an infinite zeta, period or decay time is null, and the
  // class says which (zeta = inf only overdamped at a unit eigenvalue).
  j["zeta"] = opt_json(c.zeta);
  j["w_n"] = opt_json(c.w_n);
  j["damped_frequency"] = opt_json(c.damped_frequency);
  j["period"] = opt_json(c.period);
  j["decay_time"] = opt_json(c.decay_time);
  j["slowest_time_constant"] = opt_json(c.slowest_time_constant);
  j["q_factor"] = opt_json(c.q_factor);
  return j;
}

std::string opt_text(const std::optional<double>& v, const char* unit = "") {
  if (!v) return "none";
  return num(*v) + unit;
}

std::string nu_text(const ContinuousTime& c) {
  if (!c.exists) return "none";
  if (c.nu1.imag() != 0) return fmt::format("{} +/- {}i", num(c.nu1.real()), num(std::abs(c.nu1.imag())));
  if (c.nu1 == c.nu2) return fmt::format("{} (double)", num(c.nu1.real()));
  return fmt::format("{}, {}", num(c.nu1.real()), num(c.nu2.real()));
}

std::string modes_text(const ContinuousTime& c) {
  if (c.grows) return "a mode GROWS";
  if (c.decays) return "all decay";
  return "marginal (bounded, not decaying)";
}

std::string csv_number(double v) { return std::isnan(v) ? std::string() : fmt::format("{}", v); }

void write_trajectory_csv(AtomicFile& f, const Trajectory& tr) {
  std::string buf = "t,ode_s,ode_m,discrete_s,discrete_m,diff,rel_diff\n";
  for (size_t i = 0; i < tr.t.size(); ++i) {
    const double norm = std::hypot(tr.discrete[i][0], tr.discrete[i][1]);
    const double rel = std::isnan(tr.diff[i]) ? NAN : (tr.diff[i] == 0 ? 0.0 : tr.diff[i] / norm);
    fmt::format_to(std::back_inserter(buf), "{},{},{},{},{},{},{}\n", tr.t[i], tr.ode[i][0], tr.ode[i][1],
                   csv_number(tr.discrete[i][0]), csv_number(tr.discrete[i][1]), csv_number(tr.diff[i]),
                   csv_number(rel));
    if (buf.size() > (1 << 20)) {
      ok_or_throw(f.write(buf));
      buf.clear();
    }
  }
  ok_or_throw(f.write(buf));
}

void write_scan_csv(AtomicFile& f, const RotationScan& sc) {
  std::string buf = "omega,rate,rate_closed_form,growth_per_step,discrete_log_growth\n";
  for (size_t i = 0; i < sc.omega.size(); ++i)
    fmt::format_to(std::back_inserter(buf), "{},{},{},{},{}\n", sc.omega[i], sc.rate[i], sc.rate_closed_form[i],
                   std::exp(sc.rate[i]), sc.discrete_log_growth[i]);
  ok_or_throw(f.write(buf));
}

int run_ode(const OdeOptions& o, const App& app) {
  // Everything is checked before any work or output.
  const Gates g = resolve_gates(o.gates);
  TrajectoryOptions topt;
  topt.tol = {o.abs_tol, o.rel_tol};
  topt.t_end = o.t_end;
  if (o.x0.size() != 2) throw UsageError(fmt::format("--x0 takes two values s,m, got {}", o.x0.size()));
  topt.x0 = {o.x0[0], o.x0[1]};
  ok_or_throw(check(topt));
  RotationSetup rs;
  rs.dk = o.dk;
  if (o.tilt) {
    if (o.dk != 3) throw UsageError(fmt::format("--tilt = {} needs --dk 3", *o.tilt));
    rs.tilt = *o.tilt;
  }
  ok_or_throw(check(rs));
  const OmegaRange range = value_or_throw(parse_omega_range(o.omega));
  if (!o.out.empty()) ok_or_throw(check_writable(o.out));
  if (!o.scan_out.empty()) ok_or_throw(check_writable(o.scan_out));
  if (!o.out.empty() && !o.scan_out.empty() && o.out == o.scan_out)
    throw UsageError(fmt::format("--out and --scan-out are the same file '{}'", o.out));

  const FrozenContinuousTime ct = analyze_continuous_time(g);
  const bool par = o.block == "par";
  const ContinuousTime& tb = par ? ct.parallel : ct.perpendicular;
  const char* tb_name = par ? "A_par" : "A_perp";
  if (!o.out.empty() && !tb.exists)
    throw UsageError(fmt::format("--out {}: {} has no real continuous-time equivalent ({})", o.out, tb_name, tb.reason));
  const bool rot_ok = ct.parallel.exists && ct.perpendicular.exists;
  if (!o.scan_out.empty() && !rot_ok)
    throw UsageError(fmt::format("--scan-out {}: no rotating-key flow, {} has no real logarithm ({})", o.scan_out,
                                 ct.parallel.exists ? "A_perp" : "A_par",
                                 ct.parallel.exists ? ct.perpendicular.reason : ct.parallel.reason));

  std::optional<Trajectory> tr;
  if (tb.exists) tr = value_or_throw(integrate_trajectory(par ? a_par(g) : a_perp(g), tb, topt));
  std::optional<RotationScan> sc;
  if (rot_ok) sc = value_or_throw(rotation_scan(g, ct, rs, range, topt.tol));
  // The discrete worst case from `certify` (src/core/certify*.cpp): its
  // rotating-key witness beside the continuous flow at the same angle.
  const Result<Certificate> cert = certify(std::span<const Gates>(&g, 1));
  std::optional<double> cont_at_witness, cont_at_witness_cf;
  if (cert.is_ok() && rot_ok && cert.value.witness.kind == Witness::Kind::kRotation &&
      check_omega(cert.value.witness.angle).is_ok()) {
    const double w = cert.value.witness.angle;
    cont_at_witness = value_or_throw(rotating_rate_odeint(ct.parallel.log, ct.perpendicular.log, rs, w, topt.tol)).rate;
    cont_at_witness_cf = value_or_throw(rotating_rate_closed_form(ct.parallel.log, ct.perpendicular.log, rs, w));
  }

  // Both files are written whole before either is renamed into place.
  AtomicFile f_traj, f_scan;
  if (!o.out.empty()) {
    ok_or_throw(f_traj.open(o.out));
    write_trajectory_csv(f_traj, *tr);
  }
  if (!o.scan_out.empty()) {
    ok_or_throw(f_scan.open(o.scan_out));
    write_scan_csv(f_scan, *sc);
  }
  if (!o.out.empty()) ok_or_throw(f_traj.commit());
  if (!o.scan_out.empty()) ok_or_throw(f_scan.commit());

  const std::string setup = o.dk == 2 ? "DK = 2, keys turning in a plane"
                                      : fmt::format("DK = 3, keys on a cone at tilt {} rad about e3{}", num(rs.tilt),
                                                    rs.tilt == std::numbers::pi / 2 ? " (in a plane)" : "");
  if (app.format() == Format::kJson) {
    nlohmann::json j = {{"gates", gates_json(g)},
                        {"parallel", ct_json(ct.parallel)},
                        {"perpendicular", ct_json(ct.perpendicular)}};
    nlohmann::json jt = {{"block", par ? "parallel" : "perpendicular"},
                         {"x0", {topt.x0[0], topt.x0[1]}},
                         {"t_end", topt.t_end},
                         {"abs_tol", topt.tol.abs_tol},
                         {"rel_tol", topt.tol.rel_tol},
                         {"stepper", "runge_kutta_dopri5 (controlled)"},
                         {"out", o.out.empty() ? nlohmann::json(nullptr) : nlohmann::json(o.out)},
                         {"available", tr.has_value()}};
    if (tr) {
      jt["points"] = tr->t.size();
      jt["steps"] = tr->steps;
      jt["max_abs_diff"] = tr->max_abs_diff;
      jt["max_rel_diff"] = number_or_null(tr->max_rel_diff);
      jt["t_at_max_rel_diff"] = tr->t_at_max_rel;
      jt["final_ode"] = {tr->ode.back()[0], tr->ode.back()[1]};
    } else {
      jt["reason"] = tb.reason;
    }
    j["trajectory"] = jt;
    nlohmann::json jr = {{"dk", rs.dk},
                         {"tilt", rs.dk == 3 ? nlohmann::json(rs.tilt) : nlohmann::json(nullptr)},
                         {"setup", setup},
                         {"out", o.scan_out.empty() ? nlohmann::json(nullptr) : nlohmann::json(o.scan_out)},
                         {"available", sc.has_value()}};
    if (sc) {
      std::vector<double> growth;
      for (double r : sc->rate) growth.push_back(std::exp(r));
      jr["omega"] = sc->omega;
      jr["rate"] = sc->rate;
      jr["rate_closed_form"] = sc->rate_closed_form;
      jr["growth_per_step"] = growth;
      jr["discrete_log_growth"] = sc->discrete_log_growth;
      jr["frozen_rate"] = sc->frozen_rate;
      jr["max_abs_disagreement"] = sc->max_abs_disagreement;
      jr["steps"] = sc->steps;
      const size_t p = size_t(sc->peak), q = size_t(sc->discrete_peak);
      jr["peak"] = {{"omega", sc->omega[p]},
                    {"rate", sc->rate[p]},
                    {"rate_closed_form", sc->rate_closed_form[p]},
                    {"growth_per_step", std::exp(sc->rate[p])},
                    {"gain_over_frozen", sc->rate[p] - sc->frozen_rate},
                    {"unstable", sc->rate[p] > 0}};
      jr["discrete_peak"] = {{"theta", sc->omega[q]},
                             {"log_growth", sc->discrete_log_growth[q]},
                             {"growth_per_step", std::exp(sc->discrete_log_growth[q])},
                             {"source", "rho((R(theta)^T (x) I_2) T(k0)) on the same grid"}};
    } else {
      jr["reason"] = fmt::format("{} has no real logarithm ({})", ct.parallel.exists ? "A_perp" : "A_par",
                                 ct.parallel.exists ? ct.perpendicular.reason : ct.parallel.reason);
    }
    j["rotation"] = jr;
    if (cert.is_ok()) {
      const Certificate& c = cert.value;
      const bool rot = c.witness.kind == Witness::Kind::kRotation;
      j["certify"] = {{"upper_bound", c.upper_bound},
                      {"lower_bound", c.lower_bound},
                      {"verdict", to_string(c.verdict)},
                      {"witness_kind", to_string(c.witness.kind)},
                      {"witness_angle", rot ? nlohmann::json(c.witness.angle) : nlohmann::json(nullptr)},
                      {"continuous_rate_at_witness_angle", opt_json(cont_at_witness)},
                      {"continuous_rate_closed_form_at_witness_angle", opt_json(cont_at_witness_cf)}};
    } else {
      j["certify"] = {{"error", cert.status.message}};
    }
    print_json(j);
    return 0;
  }

  const ContinuousTime& a = ct.parallel;
  const ContinuousTime& b = ct.perpendicular;
  auto row = [](const char* name, const std::string& x, const std::string& y) {
    fmt::print("  {:<26}{:<34}{}\n", name, x, y);
  };
  auto lrow = [](const ContinuousTime& c, int r) {
    if (!c.exists) return std::string("none");
    return r == 0 ? fmt::format("[{} {}]", num(c.log.a), num(c.log.b)) : fmt::format("[{} {}]", num(c.log.c), num(c.log.d));
  };
  fmt::print("gates: alpha={} beta={} mu={} eta={} p-scale={}\n", num(g.alpha), num(g.beta), num(g.mu), num(g.eta),
             to_string(g.p_scale));
  fmt::print("continuous-time equivalent x' = L x with exp(L) = A (time in steps):\n");
  row("", "along k^ (A_par)", "orthogonal to k^ (A_perp)");
  row("class", to_string(a.cls), to_string(b.cls));
  row("L = log(A)", lrow(a, 0), lrow(b, 0));
  row("", lrow(a, 1), lrow(b, 1));
  row("eigenvalues of L", nu_text(a), nu_text(b));
  row("damping ratio zeta", opt_text(a.zeta), opt_text(b.zeta));
  row("natural freq w_n", opt_text(a.w_n, " rad/step"), opt_text(b.w_n, " rad/step"));
  row("damped freq", opt_text(a.damped_frequency, " rad/step"), opt_text(b.damped_frequency, " rad/step"));
  row("period", opt_text(a.period, " steps"), opt_text(b.period, " steps"));
  row("decay time 1/(zeta w_n)", opt_text(a.decay_time, " steps"), opt_text(b.decay_time, " steps"));
  row("slowest time constant", opt_text(a.slowest_time_constant, " steps"),
      opt_text(b.slowest_time_constant, " steps"));
  row("quality factor Q", opt_text(a.q_factor), opt_text(b.q_factor));
  row("modes", modes_text(a), modes_text(b));
  for (const auto* c : {&a, &b})
    if (!c->exists) fmt::print("  {}: no real equivalent: {}\n", c == &a ? "A_par" : "A_perp", c->reason);
    else if (!c->principal)
      fmt::print("  {}: L is a real but not the principal logarithm (A = -r I has infinitely many)\n",
                 c == &a ? "A_par" : "A_perp");

  fmt::print("trajectory of x' = L x for {} from x0 = ({}, {}), t = 0..{}, Odeint dopri5 (abs-tol {}, rel-tol {}):\n",
             tb_name, num(topt.x0[0]), num(topt.x0[1]), num(topt.t_end), num(topt.tol.abs_tol),
             num(topt.tol.rel_tol));
  if (tr)
    fmt::print("  {} points, {} steps; largest |x_ode(t) - A^t x0| = {} (relative {} at t = {}){}\n", tr->t.size(),
               tr->steps, num(tr->max_abs_diff), num(tr->max_rel_diff), num(tr->t_at_max_rel),
               o.out.empty() ? "" : " -> " + o.out);
  else
    fmt::print("  not available: {}\n", tb.reason);

  auto print_certify = [&] {
    if (!cert.is_ok()) {
      fmt::print("  certify: not available ({})\n", cert.status.message);
      return;
    }
    const Certificate& c = cert.value;
    fmt::print("  certify (discrete keys, every sequence): gamma = {} (upper bound), witness {} per step (lower "
               "bound), verdict {}\n",
               num(c.upper_bound), num(c.lower_bound), to_string(c.verdict));
    if (c.witness.kind == Witness::Kind::kRotation) {
      fmt::print("    witness: keys turning {} rad/step grow x{} per step", num(c.witness.angle), num(c.lower_bound));
      if (cont_at_witness)
        fmt::print("; the key turning continuously at omega = {}: rate {} per step (x{}; closed form {})",
                   num(c.witness.angle), num(*cont_at_witness), num(std::exp(*cont_at_witness)),
                   num(*cont_at_witness_cf));
      fmt::print("\n");
    } else if (c.witness.kind == Witness::Kind::kSwitching) {
      fmt::print("    witness: a switching schedule of period {} (no single angle)\n", c.witness.period);
    }
  };
  fmt::print("rotating key ({}), x' = G(k(t)) x, growth rate per step:\n", setup);
  if (!sc) {
    fmt::print("  not available: {} has no real logarithm ({})\n", a.exists ? "A_perp" : "A_par",
               a.exists ? b.reason : a.reason);
    print_certify();
    return 0;
  }
  fmt::print("  {:>10}  {:>14}  {:>14}  {:>11}  {:>22}\n", "omega", "rate (Odeint)", "closed form", "growth/step",
             "discrete ln rho(theta)");
  for (size_t i = 0; i < sc->omega.size(); ++i)
    fmt::print("  {:>10.6g}  {:>14.8g}  {:>14.8g}  {:>11.6g}  {:>22.8g}{}\n", sc->omega[i], sc->rate[i],
               sc->rate_closed_form[i], std::exp(sc->rate[i]), sc->discrete_log_growth[i],
               long(i) == sc->peak ? "  <- peak" : "");
  const size_t p = size_t(sc->peak), q = size_t(sc->discrete_peak);
  fmt::print("  peak: omega = {} rad/step, rate {} per step (x{} per step), frozen rate {}: {}\n", num(sc->omega[p]),
             num(sc->rate[p]), num(std::exp(sc->rate[p])), num(sc->frozen_rate),
             sc->rate[p] > 0            ? "the rotation pumps energy in, the flow is UNSTABLE"
             : sc->rate[p] > sc->frozen_rate ? "the rotation slows the decay but the flow stays stable"
                                           : "no rotation on this grid beats the frozen key");
  fmt::print("  discrete keys turning theta per step (rho((R(theta)^T (x) I_2) T(k0)), same grid): peak at theta = {}, "
             "growth {} per step\n",
             num(sc->omega[q]), num(std::exp(sc->discrete_log_growth[q])));
  fmt::print("  Odeint vs closed form: largest disagreement {} over {} Odeint steps{}\n", num(sc->max_abs_disagreement),
             sc->steps, o.scan_out.empty() ? "" : " -> " + o.scan_out);
  print_certify();
  return 0;
}

}  // namespace

void setup_ode(App& app) {
  auto o = std::make_shared<OdeOptions>();
  CLI::App* sub = app.add_subcommand(
      "ode", "continuous-time picture: log(A), damping, Odeint trajectories, rotating-key resonance scan");
  add_gate_options(sub, o->gates);
  sub->add_option("--block", o->block, "block whose trajectory is integrated: par (A_par) or perp (A_perp)")
      ->check(CLI::IsMember({"par", "perp"}))
      ->capture_default_str();
  sub->add_option("--x0", o->x0, "initial state s,m of the trajectory (default 1,0)")->delimiter(',')->expected(2);
  sub->add_option("--t-end", o->t_end, "end of the trajectory in steps (> 0)")->capture_default_str();
  sub->add_option("--abs-tol", o->abs_tol, "Odeint absolute tolerance (> 0)")->capture_default_str();
  sub->add_option("--rel-tol", o->rel_tol, "Odeint relative tolerance (1e-15 to 1)")->capture_default_str();
  sub->add_option("--out", o->out, "trajectory CSV: t,ode_s,ode_m,discrete_s,discrete_m,diff,rel_diff");
  sub->add_option("--omega", o->omega, "rotation rates START:STOP:N in rad/step")->capture_default_str();
  sub->add_option("--dk", o->dk, "key dimension of the rotating-key experiment")
      ->check(CLI::IsMember({2, 3}))
      ->capture_default_str();
  sub->add_option("--tilt", o->tilt, "DK = 3: angle in rad between the key and the rotation axis (default pi/2)");
  sub->add_option("--scan-out", o->scan_out, "omega scan CSV: omega,rate,rate_closed_form,growth_per_step,...");
  app.add_command(sub, [o, &app] { return run_ode(*o, app); });
}

}  // namespace mdnstab::cli
