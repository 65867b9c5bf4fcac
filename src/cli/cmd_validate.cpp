// `mdnstab validate`: every stability prediction for a list or grid of gate sets
// checked against long runs (DESIGN.md section 4) on the GPU (default) or the CPU
// references (--device cpu). Exit code 1 when any row disagrees; 2 on bad input or
// when no GPU is there for --device gpu. Tested in tests/cli/test_cli_validate.cpp.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <memory>
#include <sstream>

#include <fmt/format.h>

#include "app.hpp"
#include "gpu_backend.hpp"
#include "mdnstab/atomic_file.hpp"
#include "mdnstab/gate_csv.hpp"
#include "mdnstab/study.hpp"
#include "mdnstab/sweep.hpp"
#include "mdnstab/validate.hpp"

namespace mdnstab::cli {

namespace {

struct ValidateCliOptions {
  GateOptions gates;
  std::vector<std::string> axes, fixed;
  std::string gate_file, gate_set_file, predictions, study, save, csv, device = "gpu", angles = "0.5,1.2";
  int study_grid = 0;
  bool predict_only = false;
  int max_devices = 0;
  ValidateOptions opt;
};

std::string join_args() {
  std::ifstream f("/proc/self/cmdline", std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::replace(s.begin(), s.end(), '\0', ' ');
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

std::vector<double> parse_angles(const std::string& text) {
  std::vector<double> out;
  if (text.empty() || text == "none") return out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t pos = 0;
      const double v = std::stod(item, &pos);
      if (pos != item.size() || !std::isfinite(v)) throw std::invalid_argument(item);
      out.push_back(v);
    } catch (...) {
      throw UsageError(fmt::format("--angles: '{}' is not a finite angle in radians", item));
    }
  }
  if (out.size() > 16) throw UsageError(fmt::format("--angles: {} angles (at most 16)", out.size()));
  return out;
}

// The grid of --axis NAME=START:STOP:N ... with --fix NAME=VALUE for the other gates.
std::vector<Gates> grid(const std::vector<std::string>& axes, const std::vector<std::string>& fixed, PScale ps) {
  std::vector<Axis> ax;
  for (const auto& a : axes) ax.push_back(value_or_throw(parse_axis(a)));
  std::vector<FixedGate> fx;
  for (const auto& f : fixed) fx.push_back(value_or_throw(parse_fixed(f)));
  if (ax.size() > 4) throw UsageError(fmt::format("{} axes given (at most 4)", ax.size()));
  // Which of alpha/log_alpha, beta, mu/log_mu, eta each name sets.
  auto slot = [](const std::string& n) { return n == "alpha" || n == "log_alpha" ? 0 : n == "beta" ? 1 : n == "mu" || n == "log_mu" ? 2 : 3; };
  std::string who[4];
  auto claim = [&](const std::string& n) {
    const int s = slot(n);
    if (!who[s].empty()) throw UsageError(fmt::format("{} is set twice (by {} and {})", n, who[s], n));
    who[s] = n;
  };
  long points = 1;
  for (const auto& a : ax) claim(a.name), points *= a.n;
  for (const auto& f : fx) claim(f.name);
  static const char* names[4] = {"alpha (or log_alpha)", "beta", "mu (or log_mu)", "eta"};
  for (int s = 0; s < 4; ++s)
    if (who[s].empty()) throw UsageError(fmt::format("the grid does not set {}: add an --axis or --fix", names[s]));
  if (points > 1000000) throw UsageError(fmt::format("the grid has {} gate sets (at most 1000000)", points));
  std::vector<Gates> out;
  for (long i = 0; i < points; ++i) {
    double v[6] = {NAN, NAN, NAN, NAN, NAN, NAN};  // alpha, beta, mu, eta, log_alpha, log_mu
    auto set = [&](const std::string& n, double x) {
      for (int k = 0; k < 6; ++k)
        if (n == kGateNames[k]) v[k] = x;
    };
    long rest = i;
    for (auto it = ax.rbegin(); it != ax.rend(); ++it) {  // the first axis varies slowest
      set(it->name, it->at(rest % it->n));
      rest /= it->n;
    }
    for (const auto& f : fx) set(f.name, f.value);
    const double la = std::isnan(v[4]) ? (v[0] > 0 ? std::log(v[0]) : -INFINITY) : v[4];
    const double lm = std::isnan(v[5]) ? (v[2] > 0 ? std::log(v[2]) : -INFINITY) : v[5];
    if (!std::isnan(v[0])) ok_or_throw(check_gate("alpha", v[0]));
    if (!std::isnan(v[2])) ok_or_throw(check_gate("mu", v[2]));
    if (!std::isnan(v[4]) || !std::isnan(v[5]))
      out.push_back(value_or_throw(Gates::from_log(la, v[1], lm, v[3], ps)));
    else
      out.push_back(value_or_throw(Gates::from_linear(v[0], v[1], v[2], v[3], ps)));
  }
  return out;
}

// The gate sets of a study spec (analysis/*.toml): its named [[gate_set]] entries and,
// with grid = N > 0, N x N cell centres of (alpha, beta) on each of its [tiers] panels.
std::vector<ValidateRow> study_rows(const std::string& path, int grid) {
  const Study s = value_or_throw(load_study(path));
  std::vector<ValidateRow> rows;
  for (const StudyGateSet& g : s.gate_sets) rows.push_back({{g.gates}, g.name});
  if (grid > 0) {
    if (!s.tiers) throw UsageError(fmt::format("--study-grid: {} has no [tiers] panels", path));
    for (const StudyPanel& p : s.tiers->panels)
      for (int i = 0; i < grid; ++i)
        for (int j = 0; j < grid; ++j) {
          const double a = (i + 0.5) / grid, b = (j + 0.5) / grid;
          rows.push_back({{value_or_throw(Gates::from_log(std::log(a), b, p.log_mu, p.eta, s.p_scale))},
                          fmt::format("tiers mu={:.6g} eta={:.6g} alpha={:.6g} beta={:.6g}", p.mu, p.eta, a, b)});
        }
  }
  if (rows.empty()) throw UsageError(fmt::format("{} has no [[gate_set]] entries (add --study-grid N for its tiers panels)", path));
  return rows;
}

std::string gates_text(const std::vector<Gates>& set) {
  if (set.size() > 1) return fmt::format("set of {} rows", set.size());
  const Gates& g = set[0];
  return fmt::format("{:<8.6g} {:<8.6g} {:<8.6g} {:<8.6g}", g.alpha, g.beta, g.mu, g.eta);
}

std::string pm(double v, double se) {
  if (std::isnan(v)) return "-";
  if (std::isinf(v)) return v < 0 ? "-inf" : "+inf";
  return fmt::format("{:+.5f} ± {:.1e}", v, se);
}

std::string rate_text(double v) {
  if (std::isnan(v)) return "-";
  if (std::isinf(v)) return v < 0 ? "-inf" : "+inf";
  return fmt::format("{:+.6f}", v);
}

void print_table(const ValidationReport& r, const ValidateOptions& o, bool predict_only) {
  fmt::print("validate: {} gate sets on {}, DK = {}, {} steps ({} burn-in), {} random + {} rotating heads per set\n",
             r.rows.size(), predict_only ? "no device (predictions only)" : r.device, o.dk, o.steps, burn_in_steps(o),
             o.random_heads, o.rotation_angles.size() + 1);
  const bool all_rows = r.rows.size() <= 200;
  if (all_rows) {
    fmt::print("  {:>4}  {:<36}  {:<10} {:>10} {:>10}  {:<22} {:<22} {:<23} {:<22} {}\n", "row",
               "alpha    beta     mu       eta", "verdict", "gamma", "lower", "cpu exponent", "measured exponent",
               "witness rate meas/pred", "full kernel", "result");
    for (size_t i = 0; i < r.rows.size(); ++i) {
      const RowResult& rr = r.rows[i];
      const Certificate& c = rr.prediction.cert;
      const Measurement& m = rr.measured;
      std::string full = "-";
      if (m.full_steps > 0)
        full = m.first_nonfinite >= 0 ? fmt::format("non-finite @ {}", m.first_nonfinite) : fmt::format("finite {} steps", m.full_steps);
      std::string result = "agree";
      if (!rr.agrees()) {
        result = "DISAGREE:";
        for (const Check& ck : rr.checks)
          if (ck.state == Check::State::kFail) result += " " + ck.name;
      }
      if (predict_only) result = full = "-";
      fmt::print("  {:>4}  {:<36}  {:<10} {:>10.7f} {:>10.7f}  {:<22} {:<22} {:<23} {:<22} {}\n", i, gates_text(rr.row.gates),
                 to_string(c.verdict), c.upper_bound, c.lower_bound, pm(rr.prediction.exponent, rr.prediction.exponent_se),
                 predict_only ? "-" : pm(m.exponent, m.exponent_se),
                 predict_only ? "-" : rate_text(m.witness_rate) + "/" + rate_text(m.witness_expected), full, result);
    }
  } else {
    fmt::print("  ({} rows: see --save FILE.json or --csv FILE.csv for each row)\n", r.rows.size());
  }
  if (predict_only) return;
  long fails = 0;
  for (const RowResult& rr : r.rows)
    for (const Check& ck : rr.checks) fails += ck.state == Check::State::kFail;
  if (fails > 0) {
    fmt::print("disagreements ({} checks in {} gate sets):\n", fails, r.disagreements());
    for (size_t i = 0; i < r.rows.size(); ++i)
      for (const Check& ck : r.rows[i].checks)
        if (ck.state == Check::State::kFail)
          fmt::print("  row {} [{}] {}: measured {:.9g}, expected {:.9g}, tolerance {:.3g}: {}\n", i,
                     gates_text(r.rows[i].row.gates), ck.name, ck.measured, ck.expected, ck.tolerance, ck.detail);
  }
  long v[3] = {0, 0, 0};
  for (const RowResult& rr : r.rows) ++v[int(rr.prediction.cert.verdict)];
  fmt::print("summary: {} of {} gate sets agree ({} certified, {} refuted, {} undecided); predictions {:.1f} s, "
             "measurements {:.1f} s ({:.3g} head-steps/s in the many-config runs)\n",
             long(r.rows.size()) - r.disagreements(), r.rows.size(), v[0], v[1], v[2], r.seconds_predict, r.seconds_measure,
             r.many_config_seconds > 0 ? r.head_steps / r.many_config_seconds : 0.0);
}

void write_file(const std::string& path, const std::string& text) {
  AtomicFile f;
  ok_or_throw(f.open(path));
  ok_or_throw(f.write(text));
  ok_or_throw(f.commit());
}

int run_validate(ValidateCliOptions& o, const App& app) {
  if (o.device != "cpu" && o.device != "gpu") throw UsageError(fmt::format("--device '{}' (expected cpu or gpu)", o.device));
  o.opt.rotation_angles = parse_angles(o.angles);
  ok_or_throw(check(o.opt));
  if (o.max_devices < 0) throw UsageError(fmt::format("--max-devices {} must be >= 0", o.max_devices));
  const bool flags = o.gates.alpha || o.gates.log_alpha || o.gates.beta || o.gates.mu || o.gates.log_mu || o.gates.eta;
  const int sources = int(flags) + int(!o.axes.empty() || !o.fixed.empty()) + int(!o.gate_file.empty()) +
                      int(!o.gate_set_file.empty()) + int(!o.predictions.empty()) + int(!o.study.empty());
  if (sources != 1)
    throw UsageError(sources == 0 ? "no gate sets: give gate flags, --axis/--fix, --gates FILE, --gate-set FILE, "
                                    "--study FILE or --predictions FILE"
                                  : "give only one of gate flags, --axis/--fix, --gates, --gate-set, --study, --predictions");
  if (o.study_grid < 0 || o.study_grid > 100) throw UsageError(fmt::format("--study-grid {} must be in [0, 100]", o.study_grid));
  if (o.study_grid > 0 && o.study.empty()) throw UsageError("--study-grid needs --study FILE");
  for (const std::string& path : {o.save, o.csv})
    if (!path.empty()) ok_or_throw(check_writable(path));
  // Fail early, before minutes of predictions, when the device is not there.
  std::unique_ptr<ValidateBackend> backend;
  if (!o.predict_only) {
    if (o.device == "gpu") {
      std::string why;
      backend = gpu_backend(&why, o.max_devices);
      if (!backend) throw UsageError(fmt::format("validate --device gpu: {} (use --device cpu for the CPU path)", why));
    } else {
      backend = cpu_backend(o.opt.threads);
    }
  }

  const PScale ps = resolve_p_scale(o.gates.p_scale);
  std::vector<ValidateRow> rows;
  std::vector<Prediction> preds;
  if (!o.predictions.empty()) {
    SavedPredictions sp = value_or_throw(read_predictions(o.predictions));
    rows = std::move(sp.rows);
    preds = std::move(sp.predictions);
  } else if (flags) {
    rows.push_back({{resolve_gates(o.gates)}, ""});
  } else if (!o.study.empty()) {
    rows = study_rows(o.study, o.study_grid);
  } else if (!o.gate_set_file.empty()) {
    rows.push_back({value_or_throw(read_gate_csv(o.gate_set_file, ps)), o.gate_set_file});
  } else {
    const std::vector<Gates> gs = o.gate_file.empty() ? grid(o.axes, o.fixed, ps) : value_or_throw(read_gate_csv(o.gate_file, ps));
    for (const Gates& g : gs) rows.push_back({{g}, ""});
  }
  if (rows.size() > 1000000) throw UsageError(fmt::format("{} gate sets (at most 1000000)", rows.size()));
  const auto t0 = std::chrono::steady_clock::now();
  if (preds.empty()) preds = value_or_throw(predict(rows, o.opt));
  const double t_predict = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const Provenance prov = current_provenance(join_args());

  ValidationReport rep;
  if (o.predict_only) {
    for (size_t i = 0; i < rows.size(); ++i) {
      RowResult rr;
      rr.row = rows[i];
      rr.prediction = preds[i];
      rep.rows.push_back(std::move(rr));
    }
    rep.device = "none";
  } else {
    rep = value_or_throw(validate(rows, preds, o.opt, *backend));
  }
  rep.seconds_predict = t_predict;
  nlohmann::json j = report_json(rep, o.opt, prov);
  if (o.predict_only) {
    j["schema"] = "mdnstab-validate-predictions/1";
    for (auto& r : j["rows"]) r.erase("measurement"), r.erase("checks"), r.erase("agrees");
    j.erase("disagreements");
    j["summary"] = {{"rows", rows.size()}, {"seconds_predict", t_predict}};
  }
  if (!o.save.empty()) write_file(o.save, (rows.size() <= 50 ? j.dump(1) : j.dump()) + "\n");
  if (!o.csv.empty() && !o.predict_only) write_file(o.csv, report_csv(rep));
  if (app.format() == Format::kJson)
    print_json(j);
  else
    print_table(rep, o.opt, o.predict_only);
  return !o.predict_only && rep.disagreements() > 0 ? 1 : 0;
}

}  // namespace

void setup_validate(App& app) {
  auto o = std::make_shared<ValidateCliOptions>();
  CLI::App* sub = app.add_subcommand(
      "validate", "check every stability prediction against long GPU runs (or the CPU references) per gate set");
  add_gate_options(sub, o->gates, false);
  sub->add_option("--axis", o->axes, "grid axis NAME=START:STOP:N (alpha, beta, mu, eta, log_alpha, log_mu)");
  sub->add_option("--fix", o->fixed, "grid: NAME=VALUE for a gate no axis covers");
  sub->add_option("--gates", o->gate_file, "CSV of gate rows (alpha, beta, mu, eta columns): one gate set per row");
  sub->add_option("--gate-set", o->gate_set_file, "CSV of gate rows forming ONE set, drawn per step");
  sub->add_option("--study", o->study, "the [[gate_set]] entries of a study spec (analysis/*.toml)");
  sub->add_option("--study-grid", o->study_grid, "with --study: also N x N (alpha, beta) points on each [tiers] panel")
      ->capture_default_str();
  sub->add_option("--predictions", o->predictions, "reuse the gate sets and predictions of a --save file");
  sub->add_flag("--predict-only", o->predict_only, "compute the CPU predictions only (write them with --save)");
  sub->add_option("--device", o->device, "gpu (every visible GPU) or cpu (the CPU references)")->capture_default_str();
  sub->add_option("--max-devices", o->max_devices, "use at most this many GPUs (0: all)")->capture_default_str();
  sub->add_option("--dk", o->opt.dk, "key dimension")->capture_default_str();
  sub->add_option("--steps", o->opt.steps, "measured steps per many-config head")->capture_default_str();
  sub->add_option("--burn-in", o->opt.burn_in, "steps before measuring (default: steps / 10)");
  sub->add_option("--heads", o->opt.random_heads, "random-key heads per gate set")->capture_default_str();
  sub->add_option("--angles", o->angles, "extra rotating-key angles (radians per step, comma-separated, or none)")
      ->capture_default_str();
  sub->add_option("--full-steps", o->opt.full_steps, "steps of the full recurrent kernel run (default: --steps; 0: off)");
  sub->add_option("--full-dv", o->opt.full_dv, "value columns of the full run")->capture_default_str();
  sub->add_option("--seed", o->opt.seed, "seed of the measurements")->capture_default_str();
  sub->add_option("--cpu-steps", o->opt.cpu_steps, "CPU random-key estimate: steps per chain")->capture_default_str();
  sub->add_option("--cpu-chains", o->opt.cpu_chains, "CPU random-key estimate: chains")->capture_default_str();
  sub->add_option("--z", o->opt.z, "standard errors allowed between the two exponent estimates")->capture_default_str();
  sub->add_option("--tol", o->opt.tol_round, "per-step rounding allowance on growth rates")->capture_default_str();
  sub->add_option("--threads", o->opt.threads, "CPU threads (0: all cores)")->capture_default_str();
  sub->add_option("--save", o->save, "write the results (JSON, with provenance) to FILE");
  sub->add_option("--csv", o->csv, "write one CSV row per gate set to FILE");
  app.add_command(sub, [o, &app] { return run_validate(*o, app); });
}

}  // namespace mdnstab::cli
