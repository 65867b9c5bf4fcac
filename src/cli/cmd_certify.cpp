// `mdnstab certify`: stability over all key sequences (DESIGN.md sections 4
// and 7) for one gate set, a CSV of gate rows (one time-varying set, or each
// row on its own with --each), or a box of gate ranges (certified at its
// vertices). Tested in tests/cli/test_cli_certify.cpp.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>

#include <fmt/format.h>
#include <omp.h>

#include "app.hpp"
#include "certificate_json.hpp"
#include "mdnstab/atomic_file.hpp"
#include "mdnstab/certify.hpp"
#include "mdnstab/gate_csv.hpp"

namespace mdnstab::cli {

namespace {

struct CertifyCliOptions {
  GateOptions gates;
  std::string csv, out;
  std::vector<std::string> box;
  bool each = false;
  bool no_lower = false;
  double rel_tol = 1e-6;
  int threads = 0;
  int gate_memory = -1;
};

std::string key_text(const std::array<double, 2>& k) {
  if (k[0] == 1 && k[1] == 0) return "e1";
  if (k[0] == 0 && k[1] == 1) return "e2";
  return fmt::format("({:.17g}, {:.17g})", k[0], k[1]);
}

// One line a person can replay by hand.
std::string witness_text(const Witness& w, bool single) {
  std::string gates;
  if (!single && w.gate_index.size() == 1) gates = fmt::format(", gate row {}", w.gate_index[0]);
  if (!single && w.gate_index.size() > 1) {
    gates = ", gate rows";
    for (int g : w.gate_index) gates += fmt::format(" {}", g);
    gates += " in turn";
  }
  if (w.kind == Witness::Kind::kRotation)
    return fmt::format("keys k_t = cos(t a) e1 + sin(t a) e2, a = {:.12g} rad per step{}", w.angle, gates);
  if (w.kind == Witness::Kind::kSwitching) {
    std::string keys;
    for (size_t t = 0; t < w.keys.size(); ++t)
      keys += (t ? " " : "") + key_text(w.keys[t]) + (single ? "" : fmt::format("@{}", w.gate_index[t]));
    if (w.drift != 0)
      return fmt::format("keys {}{}, the pattern turning by {:.12g} rad every {} steps", keys,
                         single ? "" : " (key@gate row)", w.drift, w.period);
    return fmt::format("keys repeating every {} steps: {}{}", w.period, keys, single ? "" : " (key@gate row)");
  }
  return "none";
}

void print_table(const Certificate& c, std::span<const Gates> set, const std::string& what) {
  fmt::print("certify: {}\n", what);
  auto row = [](const char* name, const std::string& v) { fmt::print("  {:<24}{}\n", name, v); };
  const std::string common_w =
      fmt::format("with W = [[{:.6g}, {:.6g}], [{:.6g}, {:.6g}]]", c.W[0], c.W[1], c.W[1], c.W[2]);
  if (c.gate_memory > 0) {
    const int labels = c.gate_label.empty() ? 0 : 1 + *std::max_element(c.gate_label.begin(), c.gate_label.end());
    const bool clusters = labels < int(set.size());
    const std::string last = c.gate_memory == 1 ? "last gate row" : fmt::format("last {} gate rows", c.gate_memory);
    row("upper bound gamma",
        clusters ? fmt::format("{:.9g}   with one W per cluster of the {} ({} clusters of rows; --format json lists "
                               "the W's and each row's cluster)",
                               c.upper_bound, last, labels)
                 : fmt::format("{:.9g}   with one W per {} ({} W's; --format json lists them)", c.upper_bound,
                               c.gate_memory == 1 ? last : "word of the " + last, c.W_by_word.size()));
    row("common W", fmt::format("{:.9g}   {}", c.common_upper_bound, common_w));
  } else {
    row("upper bound gamma", fmt::format("{:.9g}   {}", c.upper_bound, common_w));
  }
  if (c.witness.kind != Witness::Kind::kNone) {
    row("lower bound", fmt::format("{:.9g}   ({})", c.lower_bound, c.witness.family));
    row("witness", witness_text(c.witness, set.size() == 1));
    row("gap", fmt::format("{:.3g} (gamma / lower - 1)", c.upper_bound / c.lower_bound - 1));
  } else {
    row("lower bound", fmt::format("{:.9g}   (frozen keys; witness search off)", c.lower_bound));
  }
  row(c.gate_memory > 0 ? "best common W" : "best quadratic gamma",
      fmt::format(">= {:.9g} (dual bound; {} within {:.2g})", c.gamma_dual,
                  c.gate_memory > 0 ? "the common W's bound" : "gamma", c.common_upper_bound / c.gamma_dual - 1));
  row("frozen spectral radius", num(c.frozen_spectral_radius));
  switch (c.verdict) {
    case Verdict::kCertified:
      row("verdict", fmt::format("CERTIFIED: {} (margin {:.3g})",
                                 c.gate_memory > 0 ? "|x_t| <= C gamma^t |x_0| for every key and gate sequence"
                                                   : "|x_t|_W <= gamma^t |x_0|_W for every key sequence",
                                 1 - c.upper_bound));
      break;
    case Verdict::kRefuted:
      row("verdict", fmt::format("REFUTED: the witness grows {:.4g}% per step (margin {:.3g})",
                                 100 * (c.lower_bound - 1), c.lower_bound - 1));
      break;
    default:
      row("verdict", fmt::format("UNDECIDED: lower {:.9g} <= 1 <= gamma {:.9g}", c.lower_bound, c.upper_bound));
  }
}

int run_each(const CertifyCliOptions& o, const std::vector<Gates>& rows, const CertifyOptions& copt,
             const App& app) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<Certificate> certs = value_or_throw(certify_each(rows, copt, o.threads));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  long count[3] = {0, 0, 0};
  double worst_gamma = 0, worst_gap = 0;
  for (const Certificate& c : certs) {
    ++count[int(c.verdict)];
    worst_gamma = std::max(worst_gamma, c.upper_bound);
    if (copt.lower_bound) worst_gap = std::max(worst_gap, c.upper_bound / c.lower_bound - 1);
  }
  if (!o.out.empty()) {
    AtomicFile f;
    ok_or_throw(f.open(o.out));
    std::string buf =
        "row,alpha,beta,mu,eta,gamma,w11,w12,w22,lower_bound,verdict,gamma_dual,frozen_rho,witness_kind,"
        "witness_angle,witness_period,witness_keys\n";
    for (size_t i = 0; i < certs.size(); ++i) {
      const Certificate& c = certs[i];
      const Gates& g = rows[i];
      std::string keys;
      for (const auto& k : c.witness.keys) keys += fmt::format("{}{:.17g}:{:.17g}", keys.empty() ? "" : " ", k[0], k[1]);
      buf += fmt::format("{},{:.17g},{:.17g},{:.17g},{:.17g},{:.17g},{:.17g},{:.17g},{:.17g},{:.17g},{},{:.17g},{:.17g},{},{:.17g},{},{}\n", i,
                         g.alpha, g.beta, g.mu, g.eta, c.upper_bound, c.W[0], c.W[1], c.W[2], c.lower_bound,
                         to_string(c.verdict), c.gamma_dual, c.frozen_spectral_radius, to_string(c.witness.kind),
                         c.witness.angle, c.witness.period, keys);
      if (buf.size() > (1 << 20)) {
        ok_or_throw(f.write(buf));
        buf.clear();
      }
    }
    ok_or_throw(f.write(buf));
    ok_or_throw(f.commit());
  }
  const int threads = o.threads > 0 ? o.threads : omp_get_num_procs();
  if (app.format() == Format::kJson) {
    print_json({{"rows", certs.size()},
                {"certified", count[0]},
                {"refuted", count[1]},
                {"undecided", count[2]},
                {"max_upper_bound", worst_gamma},
                {"max_gap", copt.lower_bound ? nlohmann::json(worst_gap) : nlohmann::json(nullptr)},
                {"lower_bound", copt.lower_bound},
                {"out", o.out.empty() ? nlohmann::json(nullptr) : nlohmann::json(o.out)},
                {"threads", threads},
                {"seconds_compute", secs},
                {"rate", double(certs.size()) / secs}});
    return 0;
  }
  fmt::print("certify --each: {} gate sets{}\n", certs.size(), o.out.empty() ? "" : " -> " + o.out);
  fmt::print("  certified {}  refuted {}  undecided {}\n", count[0], count[1], count[2]);
  fmt::print("  max gamma {:.9g}{}\n", worst_gamma,
             copt.lower_bound ? fmt::format(", max gap gamma/lower - 1 = {:.3g}", worst_gap) : std::string());
  fmt::print("  time {:.3f} s on {} threads ({:.4g} gate sets/s)\n", secs, threads, double(certs.size()) / secs);
  return 0;
}

bool any_gate_flag(const GateOptions& g) {
  return g.alpha || g.beta || g.mu || g.eta || g.log_alpha || g.log_mu;
}

int run_certify(const CertifyCliOptions& o, const App& app) {
  const PScale p = resolve_p_scale(o.gates.p_scale);
  const int sources = int(!o.csv.empty()) + int(!o.box.empty());
  if (sources > 1) throw UsageError("give --csv or --box, not both");
  if (!o.csv.empty() && any_gate_flag(o.gates)) throw UsageError("give --csv or the gate flags (--alpha ...), not both");
  if (o.each && o.csv.empty()) throw UsageError("--each needs --csv FILE");
  if (!o.out.empty() && !o.each) throw UsageError("--out is written only with --csv FILE --each");
  if (!(o.rel_tol > 0 && o.rel_tol < 1)) throw UsageError(fmt::format("--rel-tol {} must be in (0, 1)", o.rel_tol));
  if (o.threads < 0) throw UsageError(fmt::format("--threads {} must be >= 0", o.threads));
  if (o.gate_memory < -1) throw UsageError(fmt::format("--gate-memory {} must be >= 0 (or -1: automatic)", o.gate_memory));
  if (!o.out.empty()) ok_or_throw(check_writable(o.out));  // before any work
  CertifyOptions copt;
  copt.rel_tol = o.rel_tol;
  copt.lower_bound = !o.no_lower;
  copt.gate_memory = o.gate_memory;

  std::vector<Gates> set;
  std::string what;
  if (!o.csv.empty()) {
    set = value_or_throw(read_gate_csv(o.csv, p));
    if (o.each) return run_each(o, set, copt, app);
    what = fmt::format("{} gate rows from {} as one time-varying set", set.size(), o.csv);
  } else if (!o.box.empty()) {
    std::vector<GateRange> ranges;
    for (const auto& b : o.box) ranges.push_back(value_or_throw(parse_gate_range(b)));
    // Gate flags fill in the gates the box leaves fixed.
    auto fix = [&](const char* name, const std::optional<double>& v) {
      if (v) ranges.push_back({name, *v, *v});
    };
    fix("alpha", o.gates.alpha);
    fix("log_alpha", o.gates.log_alpha);
    fix("beta", o.gates.beta);
    fix("mu", o.gates.mu);
    fix("log_mu", o.gates.log_mu);
    fix("eta", o.gates.eta);
    for (const GateRange& r : ranges) ok_or_throw(check_gate(r.name, r.lo));
    set = value_or_throw(box_vertices(ranges, p));
    std::string desc;
    for (const GateRange& r : ranges)
      desc += fmt::format(" {}={}", r.name, r.lo == r.hi ? num(r.lo) : num(r.lo) + ":" + num(r.hi));
    what = fmt::format("the box{} (p-scale {}): certified at its {} vertices, which suffices since A_par and "
                       "A_perp are multilinear in each gate",
                       desc, to_string(p), set.size());
  } else {
    set = {resolve_gates(o.gates)};
    const Gates& g = set[0];
    what = fmt::format("alpha={} beta={} mu={} eta={} p-scale={}", num(g.alpha), num(g.beta), num(g.mu), num(g.eta),
                       to_string(g.p_scale));
  }
  const Certificate c = value_or_throw(certify(set, copt));
  if (app.format() == Format::kJson) {
    nlohmann::json j = certificate_json(c, set);
    j["input"] = !o.csv.empty() ? "csv" : (!o.box.empty() ? "box" : "gates");
    if (set.size() == 1) j["gate"] = gates_json(set[0]);
    if (!o.box.empty())
      j["note"] = "box certified at its vertices: A_par and A_perp are multilinear in each gate, so every matrix "
                  "of the box is a convex combination of the vertices' matrices (the common W bounds them all; a "
                  "set's joint spectral radius equals its convex hull's, so gamma holds for the box)";
    print_json(j);
    return 0;
  }
  print_table(c, set, what);
  return 0;
}

}  // namespace

void setup_certify(App& app) {
  auto o = std::make_shared<CertifyCliOptions>();
  CLI::App* sub = app.add_subcommand(
      "certify", "stability for every key sequence: quadratic upper bound gamma, witness lower bound, verdict");
  add_gate_options(sub, o->gates, false);
  sub->add_option("--csv", o->csv, "gate rows (columns alpha,beta,mu,eta or log_alpha,beta,log_mu,eta): one "
                                   "time-varying gate set, or each row alone with --each");
  sub->add_option("--box", o->box, "NAME=LO:HI (or NAME=VALUE), repeatable: a box of gates, certified at its vertices");
  sub->add_flag("--each", o->each, "with --csv: certify every row as its own gate set");
  sub->add_option("--out", o->out, "with --each: CSV of the per-row results");
  sub->add_flag("--no-lower-bound", o->no_lower, "skip the witness search (upper bound only)");
  sub->add_option("--rel-tol", o->rel_tol, "relative tolerance on gamma")->capture_default_str();
  sub->add_option("--threads", o->threads, "threads for --each (0: all cores)")->capture_default_str();
  sub->add_option("--gate-memory", o->gate_memory,
                  "gate sets: one W per word of the last M gate rows (0: one common W; -1: automatic, up to 4 while "
                  "the graph stays small)")
      ->capture_default_str();
  app.add_command(sub, [o, &app] { return run_certify(*o, app); });
}

}  // namespace mdnstab::cli
