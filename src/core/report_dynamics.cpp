// Report sections on dynamics: the worst counterexample simulated with the
// exact recurrence (recurrent_ref) under its witness schedule next to random
// keys; the rotating-key resonance scan; GPU validation results (saved ones
// reused when no GPU is present). Tested in tests/test_report.cpp and tests/report/.
#include <cmath>
#include <cstring>
#include <fstream>
#include <numbers>
#include <random>

#include <fmt/format.h>

#include "mdnstab/continuous_time.hpp"
#include "mdnstab/lyapunov.hpp"
#include "mdnstab/recurrent_ref.hpp"
#include "mdnstab/spectrum.hpp"
#include "report_impl.hpp"

namespace mdnstab::report_detail {

namespace {

// log10 of the state norm sqrt(|S|^2 + |M|^2), relative to the initial one, after each of `steps` steps of
// the exact recurrence with v = 0 (the homogeneous system whose growth the
// certificate bounds), renormalizing every step so nothing overflows.
// keys(t, k) fills the unit key of step t (t = 0, 1, ...).
template <class KeyFn>
Result<std::vector<double>> simulate_norms(const Gates& g, int dk, int dv, long steps, uint64_t seed, KeyFn keys) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  std::vector<double> S(size_t(dk) * dv), M(size_t(dk) * dv);  // [DK,DV]
  for (double& x : S) x = normal(rng);
  for (double& x : M) x = normal(rng);
  std::vector<double> q(size_t(dk), 0.0), k(size_t(dk), 0.0), v(size_t(dv), 0.0), o(size_t(dv), 0.0);  // one token
  std::vector<double> S1(S.size()), M1(M.size());
  const double la = g.log_alpha, lm = g.log_mu, beta = g.beta, eta = g.eta;
  RecurrentArgs<double> a;
  a.steps = 1;
  a.dk = dk;
  a.dv = dv;
  a.q = q.data();
  a.k = k.data();
  a.v = v.data();
  a.log_alpha = &la;
  a.log_mu = &lm;
  a.beta = &beta;
  a.eta = &eta;
  a.l2norm_qk = false;  // keys are unit vectors already
  a.p_scale = g.p_scale;
  a.o = o.data();
  std::vector<double> out;
  out.reserve(size_t(steps) + 1);
  double log10_scale = 0;
  auto norm = [&]() {
    double n2 = 0;
    for (double x : S) n2 += x * x;
    for (double x : M) n2 += x * x;
    return std::sqrt(n2);
  };
  {
    // Norms are relative to the initial state's: the curves start at 0.
    const double n0 = norm();
    for (double& x : S) x /= n0;
    for (double& x : M) x /= n0;
    out.push_back(0.0);
  }
  for (long t = 0; t < steps; ++t) {
    if (interrupted()) return interrupted_status();
    keys(t, k);
    a.s0 = S.data();  // set every step: the buffers swap below
    a.m0 = M.data();
    a.s_final = S1.data();
    a.m_final = M1.data();
    if (Status s = recurrent_ref(a); !s.is_ok()) return s;
    S.swap(S1);
    M.swap(M1);
    const double n = norm();
    if (!std::isfinite(n)) return error(Code::kNumericalIssue, fmt::format("the simulated state is not finite at step {}", t + 1));
    if (n == 0) {
      out.push_back(-INFINITY);
      break;
    }
    log10_scale += std::log10(n);
    out.push_back(log10_scale);
    for (double& x : S) x /= n;
    for (double& x : M) x /= n;
  }
  return out;
}

// Growth per step from the least-squares slope of log10 |x_t| over the second half.
double fitted_growth(const std::vector<double>& lg) {
  const size_t n = lg.size(), i0 = n / 2;
  double st = 0, sy = 0, stt = 0, sty = 0, m = 0;
  for (size_t i = i0; i < n; ++i) {
    if (!std::isfinite(lg[i])) return 0;
    const double t = double(i);
    st += t;
    sy += lg[i];
    stt += t * t;
    sty += t * lg[i];
    m += 1;
  }
  const double slope = (m * sty - st * sy) / (m * stt - st * st);
  return std::pow(10.0, slope);
}

}  // namespace

Status section_counterexample(Context& c, Shared& shared) {
  const Study& s = c.study;
  const StudyCounterexample& ce = *s.counterexample;
  c.progress(fmt::format("counterexample: {} steps of the exact recurrence, DK = {}", ce.steps, ce.dk));
  c.doc.heading(2, "The worst counterexample, simulated", "counterexample");
  if (!shared.worst.found) {
    c.doc.paragraph(s.parametrization
                        ? "No sampled reachable gate is refuted, so there is no counterexample to simulate."
                        : "No gate set of the study is refuted, so there is no counterexample to simulate.");
    c.findings["counterexample.found"] = false;
    return Status::ok();
  }
  const Counterexample& w = shared.worst;
  const Certificate& cert = w.cert;
  const Gates& g = w.gates;
  const int dv = 4;
  const uint64_t seed = s.seed;
  c.seeds["counterexample.initial_state"] = seed;
  auto witness_keys = [&](long t, std::vector<double>& k) {
    std::fill(k.begin(), k.end(), 0.0);
    if (cert.witness.kind == Witness::Kind::kRotation) {
      k[0] = std::cos(double(t) * cert.witness.angle);
      k[1] = std::sin(double(t) * cert.witness.angle);
    } else {
      const auto& key = cert.witness.keys[size_t(t) % cert.witness.keys.size()];
      const double nk = std::hypot(key[0], key[1]);
      k[0] = key[0] / nk;
      k[1] = key[1] / nk;
    }
  };
  auto wit = simulate_norms(g, ce.dk, dv, ce.steps, seed, witness_keys);
  if (!wit.is_ok()) return wit.status;
  std::vector<std::vector<double>> rnd;
  std::vector<double> rnd_growth;
  for (int r = 0; r < ce.random_keys; ++r) {
    std::mt19937_64 krng(seed + 1000 + uint64_t(r));
    std::normal_distribution<double> normal;
    c.seeds[fmt::format("counterexample.random_keys_{}", r + 1)] = seed + 1000 + uint64_t(r);
    auto random_keys = [&](long, std::vector<double>& k) {
      double n2 = 0;
      for (double& x : k) {
        x = normal(krng);
        n2 += x * x;
      }
      const double n = std::sqrt(n2);
      for (double& x : k) x /= n;
    };
    auto res = simulate_norms(g, ce.dk, dv, ce.steps, seed, random_keys);
    if (!res.is_ok()) return res.status;
    rnd_growth.push_back(fitted_growth(res.value));
    rnd.push_back(std::move(res.value));
  }
  const std::vector<double>& wl = wit.value;
  const double measured = fitted_growth(wl);
  // Tier 2 for the same gates: many longer random-key chains than the curves drawn.
  LyapunovOptions lo;
  lo.dk = ce.dk;
  lo.steps = c.options.quick ? 400 : 3000;
  lo.seed = seed;
  c.seeds["counterexample.lyapunov"] = lo.seed;
  auto ly = lyapunov(g, lo);
  if (!ly.is_ok()) return error(ly.status.code, "counterexample: " + ly.status.message);
  std::vector<std::string> header = {"step", "witness"};
  for (int r = 0; r < ce.random_keys; ++r) header.push_back(fmt::format("random_{}", r + 1));
  header.push_back("predicted");
  CsvWriter csv(header);
  const size_t mid = wl.size() / 2;
  for (size_t t = 0; t < wl.size(); ++t) {
    csv.num(double(t)).num(wl[t]);
    for (const auto& r : rnd) csv.num(t < r.size() ? r[t] : NAN);
    csv.num(wl[mid] + (double(t) - double(mid)) * std::log10(cert.lower_bound));
    csv.end();
  }
  if (Status e = write_text(c.data("counterexample_norms.csv"), csv.text); !e.is_ok()) return e;
  nlohmann::json meta = {{"source", w.source},
                         {"gates", {{"alpha", g.alpha}, {"beta", g.beta}, {"mu", g.mu}, {"eta", g.eta},
                                    {"log_alpha", g.log_alpha}, {"log_mu", std::isfinite(g.log_mu) ? nlohmann::json(g.log_mu) : nlohmann::json(nullptr)},
                                    {"p_scale", std::string(to_string(g.p_scale))}}},
                         {"gamma", cert.upper_bound},
                         {"W", cert.W},
                         {"lower_bound", cert.lower_bound},
                         {"witness", {{"kind", to_string(cert.witness.kind)}, {"angle", cert.witness.angle},
                                      {"period", cert.witness.period}, {"keys", cert.witness.keys}}},
                         {"dk", ce.dk},
                         {"dv", dv},
                         {"steps", ce.steps},
                         {"measured_growth_witness", measured},
                         {"measured_growth_random", rnd_growth},
                         {"lyapunov_random", {{"exponent", ly.value.exponent}, {"stderr", ly.value.stderr_},
                                              {"chains", lo.chains}, {"steps", lo.steps}, {"seed", lo.seed}}},
                         {"note", "log10 of sqrt(|S_t|_F^2 + |M_t|_F^2) / sqrt(|S_0|_F^2 + |M_0|_F^2), v = 0, random "
                                  "initial S and M; growth per step fitted over the second half"}};
  if (Status e = write_text(c.data("counterexample.json"), meta.dump(1) + "\n"); !e.is_ok()) return e;

  double mean_rnd = 0;
  for (double x : rnd_growth) mean_rnd += x;
  if (!rnd_growth.empty()) mean_rnd /= double(rnd_growth.size());
  const std::string wit_text =
      cert.witness.kind == Witness::Kind::kRotation
          ? fmt::format("keys rotating by {} rad per step in the plane of two key directions",
                        c.state("counterexample.witness_angle", cert.witness.angle, fmt_num(cert.witness.angle, 4)))
          : fmt::format("its switching key schedule (period {})", cert.witness.period);
  c.doc.paragraph(fmt::format(
      "The worst counterexample ({}: {}) simulated with the exact recurrence in double precision (DK = {}, DV = {}, "
      "v = 0, a random initial state), {} steps. Under {} the state norm grows {}× per step (fitted over the second "
      "half), against the certificate's lower bound {}× (γ = {}). Under random keys uniform on the sphere it changes "
      "{}× per step{}; the top Lyapunov exponent for random keys ({} chains of {} steps) is λ = {} ± {} per step, "
      "a factor {} per step.",
      w.source, gates_text(g),
      ce.dk, dv, ce.steps, wit_text, c.state("counterexample.measured_growth", measured, fmt_num(measured, 5)),
      c.state("counterexample.lower_bound", cert.lower_bound, fmt_num(cert.lower_bound, 5)),
      fmt_num(cert.upper_bound, 5),
      rnd_growth.empty() ? "(not run)" : c.state("counterexample.random_growth", mean_rnd, fmt_num(mean_rnd, 4)),
      rnd_growth.size() > 1 ? fmt::format(" (mean of {} key sequences)", rnd_growth.size()) : "", lo.chains, lo.steps,
      c.state("counterexample.random_lyapunov", ly.value.exponent, fmt_num(ly.value.exponent, 3)),
      fmt_num(ly.value.stderr_, 1), fmt_num(std::exp(ly.value.exponent), 4)));
  c.highlights.push_back(fmt::format(
      "Simulated with the exact recurrence, the worst counterexample grows {}× per step under its witness keys and "
      "{}× per step under random keys (DK = {}).",
      fmt_num(measured, 5), rnd_growth.empty() ? "—" : fmt_num(mean_rnd, 4), ce.dk));

  std::string b = "set tics out nomirror\nset key top left\nset grid ytics lc rgb '#dddddd'\n";
  b += "set xlabel 'step t'\nset ylabel 'log10 of the state norm |(S_t, M_t)| / |(S_0, M_0)|'\n";
  b += fmt::format("plot '../data/counterexample_norms.csv' skip 1 using 1:2 with lines lw 3 lc rgb '#1b1b3a' "
                   "title {}",
                   gp_quote(fmt::format("witness keys (growth {}×/step)", fmt_num(measured, 4))));
  for (int r = 0; r < ce.random_keys; ++r)
    b += fmt::format(", '' skip 1 using 1:{} with lines lw 2 dt {} lc rgb '#7a7a7a' title {}", 3 + r, 2 + r % 3,
                     gp_quote(fmt::format("random keys {} ({}×/step)", r + 1, fmt_num(rnd_growth[size_t(r)], 4))));
  b += fmt::format(", '' skip 1 using 1:{} with lines lw 1.5 dt 3 lc rgb '#c0392b' title {}\n", 3 + ce.random_keys,
                   gp_quote(fmt::format("certificate lower bound {}×/step", fmt_num(cert.lower_bound, 4))));
  if (Status e = render(c, Plot{"counterexample_growth", 900, 560, b}); !e.is_ok()) return e;
  c.doc.figure("counterexample_growth",
               "State norm of the worst counterexample under its witness key schedule and under random keys, "
               "simulated with the exact recurrence; the dotted line has the certificate's lower-bound slope.",
               {"counterexample_norms.csv", "counterexample.json"});
  return Status::ok();
}

Status section_resonance(Context& c, Shared& shared) {
  const Study& s = c.study;
  const StudyResonance& r = *s.resonance;
  c.progress(fmt::format("resonance scan: {} angles", r.angles));
  c.doc.heading(2, "Rotating-key resonance scan", "resonance");
  c.doc.paragraph(fmt::format(
      "Keys turning by a fixed angle θ per step in a plane make the recurrence one constant matrix in the rotating "
      "frame (DESIGN.md section 4); its spectral radius is the state's growth per step under that schedule. The scan "
      "covers θ in [0, π/2] at {} angles (growth is even in θ and has period π). θ = 0 is the frozen key.",
      r.angles));
  std::vector<std::pair<std::string, Gates>> sets;
  std::vector<std::string> notes;
  for (const std::string& name : r.gate_sets) {
    if (name == "worst") {
      if (shared.worst.found)
        sets.push_back({"worst", shared.worst.gates});
      else
        notes.push_back("`worst`: no refuted gate was found, so there is no worst counterexample to scan.");
      continue;
    }
    for (const StudyGateSet& g : s.gate_sets)
      if (g.name == name) sets.push_back({name, g.gates});
  }
  if (sets.empty()) {
    c.doc.list(notes);
    return Status::ok();
  }
  std::vector<std::string> header = {"angle"};
  for (const auto& [name, g] : sets) header.push_back("growth_" + name);
  CsvWriter csv(header);
  std::vector<std::vector<double>> growth(sets.size());
  std::vector<double> angles;
  for (long i = 0; i < r.angles; ++i) angles.push_back(i == r.angles - 1 ? std::numbers::pi / 2
                                                                         : std::numbers::pi / 2 * double(i) / double(r.angles - 1));
  for (size_t k = 0; k < sets.size(); ++k)
    for (double th : angles) growth[k].push_back(rotation_growth(sets[k].second, th));
  // The continuous-time view (DESIGN.md section 3): x' = G(k(t)) x with the key
  // turning smoothly at omega rad/step; its growth per step is exp(rate), the
  // rate from the rotating frame in closed form, cross-checked by Odeint at a
  // few angles. None where a block has no real logarithm (a negative eigenvalue).
  std::vector<std::vector<double>> ct_growth(sets.size());
  std::vector<double> ct_check(sets.size(), NAN);
  const RotationSetup plane;
  for (size_t k = 0; k < sets.size(); ++k) {
    const FrozenContinuousTime fct = analyze_continuous_time(sets[k].second);
    header.push_back("continuous_growth_" + sets[k].first);
    if (!fct.parallel.exists || !fct.perpendicular.exists) {
      ct_growth[k].assign(angles.size(), NAN);
      continue;
    }
    for (double om : angles) {
      auto rr = rotating_rate_closed_form(fct.parallel.log, fct.perpendicular.log, plane, om);
      ct_growth[k].push_back(rr.is_ok() ? std::exp(rr.value) : NAN);
    }
    double worst = 0;
    for (size_t i : {angles.size() / 4, angles.size() / 2, 3 * angles.size() / 4}) {
      if (interrupted()) return interrupted_status();
      auto o = rotating_rate_odeint(fct.parallel.log, fct.perpendicular.log, plane, angles[i], OdeTolerances{});
      if (!o.is_ok() || std::isnan(ct_growth[k][i])) continue;
      worst = std::max(worst, std::abs(std::exp(o.value.rate) - ct_growth[k][i]) / ct_growth[k][i]);
    }
    ct_check[k] = worst;
  }
  CsvWriter csv2(header);
  for (size_t i = 0; i < angles.size(); ++i) {
    csv2.num(angles[i]);
    for (size_t k = 0; k < sets.size(); ++k) csv2.num(growth[k][i]);
    for (size_t k = 0; k < sets.size(); ++k) csv2.num(ct_growth[k][i]);
    csv2.end();
  }
  csv = csv2;
  if (Status e = write_text(c.data("resonance.csv"), csv.text); !e.is_ok()) return e;
  std::vector<std::string> findings;
  for (size_t k = 0; k < sets.size(); ++k) {
    const auto& gr = growth[k];
    size_t peak = 0;
    for (size_t i = 0; i < gr.size(); ++i)
      if (gr[i] > gr[peak]) peak = i;
    long above = 0;
    double lo = NAN, hi = NAN;
    for (size_t i = 0; i < gr.size(); ++i)
      if (gr[i] > 1) {
        ++above;
        if (std::isnan(lo)) lo = angles[i];
        hi = angles[i];
      }
    const std::string key = "resonance." + sets[k].first;
    const Gates& g = sets[k].second;
    std::string sent = fmt::format(
        "`{}` ({}): growth per step peaks at {}× for θ = {} rad per step; at θ = 0 (frozen key) it is {}",
        sets[k].first,
        gates_text(g),
        c.state(key + ".peak_growth", gr[peak], fmt_num(gr[peak], 6)),
        c.state(key + ".peak_angle", angles[peak], fmt_num(angles[peak], 4)),
        c.state(key + ".frozen_growth", gr[0], fmt_num(gr[0], 6)));
    if (above > 0)
      sent += fmt::format(", and above 1 (the state grows) for θ from {} to {} rad per step ({} of the scanned angles)",
                          fmt_num(lo, 3), fmt_num(hi, 3), c.state(key + ".fraction_growing", double(above) / double(gr.size()),
                                                                  pct(double(above) / double(gr.size()))));
    else
      sent += ", and below 1 at every scanned angle";
    const auto& cg = ct_growth[k];
    if (!cg.empty() && !std::isnan(cg[0])) {
      size_t cp = 0;
      for (size_t i = 0; i < cg.size(); ++i)
        if (cg[i] > cg[cp]) cp = i;
      sent += fmt::format(
          ". With the key turning smoothly (continuous time), growth peaks at {}× for ω = {} rad per step "
          "(Odeint agrees with the closed form to {} relative)",
          c.state(key + ".continuous_peak_growth", cg[cp], fmt_num(cg[cp], 6)), fmt_num(angles[cp], 4),
          fmt_num(ct_check[k], 2));
    } else {
      sent += ". No continuous-time view: a block has a negative eigenvalue (no real logarithm)";
    }
    findings.push_back(sent + ".");
  }
  findings.insert(findings.end(), notes.begin(), notes.end());
  c.doc.list(findings);

  std::string b = "set tics out nomirror\nset key below maxrows 3 samplen 2.5\nset grid lc rgb '#dddddd'\n";
  b += "set xlabel 'key rotation angle θ or rate ω (rad per step)'\nset ylabel 'growth per step of the state norm (×)'\n";
  b += "set xrange [0:pi/2]\nset arrow 1 from graph 0, first 1 to graph 1, first 1 nohead dt 3 lc rgb '#555555'\n";
  b += "plot ";
  const char* colours[6] = {"#1b1b3a", "#c0392b", "#2c718e", "#8a6d00", "#5a1a32", "#27ad81"};
  for (size_t k = 0; k < sets.size(); ++k)
    b += fmt::format("{}'../data/resonance.csv' skip 1 using 1:{} with lines lw 2.5 dt 1 lc rgb '{}' title {}",
                     k ? ", " : "", k + 2, colours[k % 6], gp_quote(sets[k].first + " (keys jump θ per step)"));
  for (size_t k = 0; k < sets.size(); ++k)
    if (!ct_growth[k].empty() && !std::isnan(ct_growth[k][0]))
      b += fmt::format(", '../data/resonance.csv' skip 1 using 1:{} with lines lw 1.5 dt 2 lc rgb '{}' title {}",
                       k + 2 + sets.size(), colours[k % 6], gp_quote(sets[k].first + " (key turning smoothly)"));
  b += "\n";
  if (Status e = render(c, Plot{"resonance_scan", 900, 640, b}); !e.is_ok()) return e;
  c.doc.figure("resonance_scan",
               "Growth per step under keys rotating by θ per step (solid: the key jumps by θ each step, the "
               "recurrence itself; dashed: the continuous-time equivalent with the key turning smoothly at ω = θ "
               "per step), for each scanned gate set; above the dotted line the state grows.",
               {"resonance.csv"});
  return Status::ok();
}

namespace {

// A CSV read by column name; text kept as is.
struct TextTable {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  int col(const std::string& n) const {
    for (size_t i = 0; i < header.size(); ++i)
      if (header[i] == n) return int(i);
    return -1;
  }
};

TextTable read_text_csv(std::istream& in) {
  TextTable t;
  std::string line;
  auto split = [](const std::string& l) {
    std::vector<std::string> out;
    size_t start = 0;
    for (;;) {
      const size_t c = l.find(',', start);
      out.push_back(l.substr(start, c == std::string::npos ? std::string::npos : c - start));
      if (c == std::string::npos) break;
      start = c + 1;
    }
    return out;
  };
  if (std::getline(in, line)) t.header = split(line);
  while (std::getline(in, line))
    if (!line.empty()) t.rows.push_back(split(line));
  return t;
}

double to_num(const std::string& s) {
  if (s.empty()) return NAN;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  return end && *end == '\0' ? v : NAN;
}

}  // namespace

Status section_gpu_validation(Context& c, Shared&) {
  const Study& s = c.study;
  const std::string& path = s.gpu_validation->results;
  c.progress("GPU validation results");
  c.doc.heading(2, "GPU validation: predicted vs measured growth", "gpu-validation");
  auto gpu = capture({"nvidia-smi", "-L"}, ".");
  const bool have_gpu = gpu.is_ok() && gpu.value.find("GPU") != std::string::npos;
  std::ifstream f(path);
  if (!f) {
    c.doc.paragraph(fmt::format(
        "Not run: {}, and no saved GPU validation results exist at `{}` (`mdnstab validate --csv` on a GPU machine "
        "writes them). No numbers are shown for this section.",
        have_gpu ? "this build of the report runs no live GPU validation" : "no GPU is present", path));
    c.findings["gpu_validation.run"] = false;
    return Status::ok();
  }
  // `mdnstab validate --csv`: one row per gate set with the CPU prediction and
  // the GPU measurement of the random-key exponent and the witness's rate.
  const TextTable t = read_text_csv(f);
  const int c_cpu = t.col("cpu_exponent"), c_gpu = t.col("gpu_exponent"), c_wexp = t.col("witness_expected"),
            c_wrate = t.col("witness_rate"), c_agree = t.col("agrees"), c_verdict = t.col("verdict"),
            c_alpha = t.col("alpha"), c_beta = t.col("beta"), c_mu = t.col("mu"), c_eta = t.col("eta");
  for (auto [name, col] : {std::pair{"cpu_exponent", c_cpu}, {"gpu_exponent", c_gpu}, {"witness_expected", c_wexp},
                           {"witness_rate", c_wrate}, {"agrees", c_agree}})
    if (col < 0)
      return error(Code::kInvalidArgument,
                   fmt::format("GPU validation results '{}' have no column '{}' (expected `mdnstab validate --csv` output)",
                               path, name));
  if (t.rows.empty()) return error(Code::kInvalidArgument, fmt::format("GPU validation results '{}' have no rows", path));
  CsvWriter csv({"row", "alpha", "beta", "mu", "eta", "verdict", "predicted_random_growth", "measured_random_growth",
                 "predicted_witness_growth", "measured_witness_growth", "agrees"});
  double worst_random = 0, worst_witness = 0;
  long agree = 0, n = 0;
  for (size_t i = 0; i < t.rows.size(); ++i) {
    const auto& r = t.rows[i];
    if (r.size() != t.header.size())
      return error(Code::kInvalidArgument, fmt::format("GPU validation results '{}': row {} has {} fields, the "
                                                       "header {}", path, i + 1, r.size(), t.header.size()));
    const double pr = std::exp(to_num(r[size_t(c_cpu)])), mr = std::exp(to_num(r[size_t(c_gpu)]));
    const double pw = std::exp(to_num(r[size_t(c_wexp)])), mw = std::exp(to_num(r[size_t(c_wrate)]));
    if (std::isfinite(pr) && std::isfinite(mr)) worst_random = std::max(worst_random, std::abs(mr - pr) / pr);
    if (std::isfinite(pw) && std::isfinite(mw)) worst_witness = std::max(worst_witness, std::abs(mw - pw) / pw);
    const bool ok = r[size_t(c_agree)] == "1" || r[size_t(c_agree)] == "true";
    agree += ok;
    ++n;
    auto field = [&](int col) { return col >= 0 ? to_num(r[size_t(col)]) : NAN; };
    csv.num(double(i)).num(field(c_alpha)).num(field(c_beta)).num(field(c_mu)).num(field(c_eta))
        .str(c_verdict >= 0 ? r[size_t(c_verdict)] : "").exact(pr).exact(mr).exact(pw).exact(mw).num(ok ? 1 : 0).end();
  }
  if (Status e = write_text(c.data("gpu_validation.csv"), csv.text); !e.is_ok()) return e;
  // Provenance of the measurement: the summary `scripts/validate_summary.py` writes beside the CSV.
  std::string summary_path = path;
  if (summary_path.ends_with(".csv")) summary_path.replace(summary_path.size() - 4, 4, ".summary.json");
  nlohmann::json prov = nlohmann::json::object();
  if (std::ifstream sf(summary_path); sf) {
    // Python's json writes NaN as a bare `nan`/`NaN`, which is not JSON: read those as null.
    std::string text((std::istreambuf_iterator<char>(sf)), std::istreambuf_iterator<char>());
    for (const char* bad : {": nan", ": NaN", ": -Infinity", ": Infinity"})
      for (size_t pos = 0; (pos = text.find(bad, pos)) != std::string::npos;) text.replace(pos, std::strlen(bad), ": null");
    try {
      prov = nlohmann::json::parse(text).value("provenance", nlohmann::json::object());
    } catch (const std::exception&) {
      prov = nlohmann::json::object();
    }
  }
  c.findings["gpu_validation.run"] = true;
  const std::string where =
      prov.empty() ? std::string("an unrecorded GPU (no summary JSON beside the CSV)")
                   : fmt::format("{} on {}, commit {}", prov.value("device", std::string("?")),
                                 prov.value("date", std::string("?")), prov.value("git_commit", std::string("?")));
  c.doc.paragraph(fmt::format(
      "{} saved results of `mdnstab validate` from `{}` (measured with {}). Over {} gate sets the GPU kernel's "
      "measurements agree with every check of the analysis for {} of them ({}); the random-key growth per step "
      "measured on the GPU differs from the CPU prediction by at most {} (relative), and the witness schedules' "
      "growth by at most {}.",
      have_gpu ? "A GPU is present, but this build of the report runs no live validation; it reuses the"
               : "No GPU is present: the report reuses the",
      path, where, n, agree, c.state("gpu_validation.fraction_agree", double(agree) / double(n), pct(double(agree) / double(n))),
      c.state("gpu_validation.worst_relative_error", worst_random, fmt_num(worst_random, 3)),
      c.state("gpu_validation.worst_witness_relative_error", worst_witness, fmt_num(worst_witness, 3))));
  c.highlights.push_back(fmt::format(
      "GPU validation (saved, {}): {} of {} gate sets agree with the analysis; predicted and measured growth per step "
      "differ by at most {} (random keys) and {} (witness keys).",
      prov.value("device", std::string("GPU")), pct(double(agree) / double(n)), n, fmt_num(worst_random, 3),
      fmt_num(worst_witness, 3)));
  std::string b = "set tics out nomirror\nset key top left\nset grid lc rgb '#dddddd'\nset size ratio -1\n";
  b += "set xlabel 'predicted growth per step of the state norm (×)'\n"
       "set ylabel 'measured on the GPU (×)'\n";
  // At most about 300 points per series in the SVG (one element per point); all rows are in the data.
  const long every = std::max(1L, n / 300);
  b += fmt::format("plot '../data/gpu_validation.csv' skip 1 every {0} using 7:8 with points pt 7 ps 0.6 "
                   "lc rgb '#2c718e' title 'random keys (CPU prediction)', "
                   "'' skip 1 every {0} using 9:10 with points pt 4 ps 0.8 lc rgb '#1b1b3a' "
                   "title 'witness keys (certificate)', x with lines dt 2 lc rgb '#555555' title 'measured = predicted'\n",
                   every);
  if (Status e = render(c, Plot{"gpu_validation", 720, 660, b}); !e.is_ok()) return e;
  c.doc.figure("gpu_validation",
               "Growth per step measured by the GPU kernel against the analysis' prediction: random keys (the CPU "
               "reference's Lyapunov exponent) and each gate set's witness key schedule (the certificate's lower "
               "bound). With more than 300 gate sets every k-th is drawn; all are in the data.",
               {"gpu_validation.csv"});
  return Status::ok();
}

}  // namespace mdnstab::report_detail
