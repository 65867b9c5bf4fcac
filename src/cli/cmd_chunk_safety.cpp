// `mdnstab chunk-safety`: where the paper's reordered chunkwise algorithm breaks
// (DESIGN.md section 5). Grid mode: the emulated chunk output (chunk_ref) against
// the fp64 recurrence over a grid of gates, to CSV, with the broken region and the
// agreement of the predictive rule (chunk_safety.hpp). Tested in
// tests/cli/test_cli_chunk_safety.cpp.
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>

#include <fmt/format.h>

#include "app.hpp"
#include "mdnstab/chunk_safety.hpp"

namespace mdnstab::cli {

namespace {

struct ChunkSafetyOptions {
  int chunk = 64;
  std::string precision = "fp32";
  std::vector<std::string> axes, fixed;
  std::optional<double> beta, eta;
  std::string p_scale = "alpha";
  int dk = 64, dv = 64, steps = 1024;
  uint64_t seed = 0;
  double tol = kChunkTolerance;
  double beta_eps = 0;
  int threads = 0;
  double max_hours = 12;
  std::string out;
};

nlohmann::json point_json(const ChunkMapPoint& p) {
  return {{"gates", gates_json(p.gates)},
          {"rel_error", number_or_null(p.error.rel_rms)},
          {"finite", p.error.finite},
          {"broken", p.broken},
          {"predicted_error", p.risk.predicted_error},
          {"log_cancellation", number_or_null(p.risk.log_cancellation)},
          {"max_exponent", number_or_null(p.risk.max_exponent)},
          {"rule_safe", !p.predicted}};
}

std::string gate_text(const ChunkMapSpec& spec, const Gates& g) {
  std::string s;
  for (const Axis& a : spec.axes) {
    double v = 0;
    if (a.name == "alpha") v = g.alpha;
    if (a.name == "log_alpha") v = g.log_alpha;
    if (a.name == "mu") v = g.mu;
    if (a.name == "log_mu") v = g.log_mu;
    if (a.name == "beta") v = g.beta;
    if (a.name == "eta") v = g.eta;
    s += fmt::format("{}{}={}", s.empty() ? "" : " ", a.name, num(v));
  }
  return s;
}

// One character per point: '.' fine, 'x' wrong, 'N' not finite, '-' no reference;
// '!' broken although the rule said safe, '~' fine although the rule said unsafe.
char map_char(const ChunkMapPoint& p) {
  if (!p.error.reference_finite) return '-';
  if (p.broken != p.predicted) return p.broken ? '!' : '~';
  if (!p.broken) return '.';
  return p.error.finite ? 'x' : 'N';
}

void print_map(const ChunkMapSpec& spec, const ChunkMapSummary& s) {
  const long n0 = spec.axes[0].n, n1 = spec.axes.size() > 1 ? spec.axes[1].n : 1;
  const long step0 = (n0 + 47) / 48, step1 = (n1 + 71) / 72;  // fit a terminal
  if (spec.axes.size() == 1) {
    fmt::print("  map over {} from {} to {}:\n    ", spec.axes[0].name, num(spec.axes[0].start),
               num(spec.axes[0].stop));
    for (long i = 0; i < n0; i += step0) fmt::print("{}", map_char(s.points_list[size_t(i)]));
    fmt::print("\n");
    return;
  }
  fmt::print("  map: rows {} from {} (top) to {}, columns {} from {} to {}{}:\n", spec.axes[0].name,
             num(spec.axes[0].start), num(spec.axes[0].stop), spec.axes[1].name, num(spec.axes[1].start),
             num(spec.axes[1].stop), step0 > 1 || step1 > 1 ? " (subsampled)" : "");
  for (long i = 0; i < n0; i += step0) {
    fmt::print("    ");
    for (long j = 0; j < n1; j += step1) fmt::print("{}", map_char(s.points_list[size_t(i * n1 + j)]));
    fmt::print("\n");
  }
  fmt::print("    . fine  x wrong  N not finite  ! broke where the rule said safe  ~ fine where it said unsafe\n");
}

int run_chunk_safety(const ChunkSafetyOptions& o, const App& app) {
  ChunkMapSpec spec;
  spec.precision = value_or_throw(parse_precision(o.precision));
  spec.p_scale = resolve_p_scale(o.p_scale);
  for (const auto& a : o.axes) spec.axes.push_back(value_or_throw(parse_axis(a)));
  for (const auto& f : o.fixed) spec.fixed.push_back(value_or_throw(parse_fixed(f)));
  auto covered = [&](const char* gate) {
    for (const Axis& a : spec.axes)
      if (a.name == gate) return true;
    for (const FixedGate& f : spec.fixed)
      if (f.name == gate) return true;
    return false;
  };
  // --beta and --eta, or the measured cases' defaults (DESIGN.md section 5) when no axis sets them.
  if (o.beta || !covered("beta")) spec.fixed.push_back({"beta", o.beta.value_or(0.1)});
  if (o.eta || !covered("eta")) spec.fixed.push_back({"eta", o.eta.value_or(1.0)});
  spec.chunk = o.chunk;
  spec.dk = o.dk;
  spec.dv = o.dv;
  spec.steps = o.steps;
  spec.seed = o.seed;
  spec.tol = o.tol;
  spec.beta_eps = o.beta_eps;
  spec.threads = o.threads;
  spec.out_path = o.out;
  if (!(o.max_hours > 0)) throw UsageError(fmt::format("--max-hours = {} must be > 0", o.max_hours));
  spec.max_seconds = o.max_hours * 3600;
  ok_or_throw(check(spec));
  const int threads = spec.threads > 0 ? spec.threads : omp_get_num_procs();
  const double estimate = estimate_seconds(spec, threads);
  spec.progress = isatty(STDERR_FILENO) && estimate > 5;
  const ChunkMapSummary s = value_or_throw(run_chunk_map(spec));

  std::string axes;
  for (const Axis& a : spec.axes) axes += (axes.empty() ? "" : " x ") + a.name;
  const double judged = std::max<double>(double(s.judged), 1.0);
  auto range = [&](size_t a) {
    return s.broken ? nlohmann::json{s.broken_min[a], s.broken_max[a]} : nlohmann::json(nullptr);
  };
  if (app.format() == Format::kJson) {
    nlohmann::json region = nlohmann::json::object();
    for (size_t a = 0; a < spec.axes.size(); ++a) region[spec.axes[a].name] = range(a);
    print_json({{"points", s.points},
                {"axes", axes},
                {"chunk", spec.chunk},
                {"precision", std::string(to_string(spec.precision))},
                {"steps", spec.steps},
                {"dk", spec.dk},
                {"dv", spec.dv},
                {"seed", spec.seed},
                {"tolerance", spec.tol},
                {"out", o.out.empty() ? nlohmann::json(nullptr) : nlohmann::json(o.out)},
                {"judged", s.judged},
                {"reference_nonfinite", s.reference_nonfinite},
                {"broken", s.broken},
                {"nonfinite", s.nonfinite},
                {"fraction_broken", double(s.broken) / judged},
                {"broken_region", region},
                {"lambda_broken_min", number_or_null(s.lambda_broken_min)},
                {"lambda_safe_max", number_or_null(s.lambda_safe_max)},
                {"max_error_not_broken", s.max_error_safe},
                {"rule_agree", s.rule_agree},
                {"rule_agreement", double(s.rule_agree) / judged},
                {"rule_false_safe", s.false_safe},
                {"rule_false_unsafe", s.false_unsafe},
                {"worst_miss", s.has_miss ? point_json(s.worst_miss) : nlohmann::json(nullptr)},
                {"worst_miss_decades", s.has_miss ? number_or_null(s.worst_miss_margin) : nlohmann::json(nullptr)},
                {"far_points", s.far_points},
                {"far_misses", s.far_misses},
                {"threads", s.threads},
                {"seconds", s.seconds},
                {"estimated_seconds", estimate}});
    return 0;
  }
  std::string fixed_text;
  for (const FixedGate& f : spec.fixed) fixed_text += fmt::format(", {} = {}", f.name, num(f.value));
  fmt::print("chunk-safety: {} points over {}, C = {}, {}, T = {}, DK = {}, DV = {}{}{}\n", s.points, axes, spec.chunk,
             to_string(spec.precision), spec.steps, spec.dk, spec.dv, fixed_text,
             o.out.empty() ? " (no output file)" : " -> " + o.out);
  fmt::print("  broken (error > {} or not finite): {} of {} ({:.1f}%), {} not finite\n", num(spec.tol), s.broken,
             s.judged, 100.0 * double(s.broken) / judged, s.nonfinite);
  if (s.reference_nonfinite)
    fmt::print("  not judged: {} points where the fp64 recurrence itself overflows\n", s.reference_nonfinite);
  if (s.broken) {
    std::string reg;
    for (size_t a = 0; a < spec.axes.size(); ++a)
      reg += fmt::format("{}{} in [{}, {}]", a ? ", " : "", spec.axes[a].name, num(s.broken_min[a]),
                         num(s.broken_max[a]));
    fmt::print("  broken region:          {}\n", reg);
    fmt::print("  rule's Lambda there:    broken from {} on, fine up to {} (Lambda = max_t log(C_t/c_t))\n",
               num(s.lambda_broken_min), num(s.lambda_safe_max));
  }
  fmt::print("  largest error elsewhere: {}\n", num(s.max_error_safe));
  fmt::print("  rule agrees on {} of {} points ({:.1f}%): {} broke where it said safe, {} fine where it said unsafe\n",
             s.rule_agree, s.judged, 100.0 * double(s.rule_agree) / judged, s.false_safe, s.false_unsafe);
  if (s.has_miss)
    fmt::print("  worst miss:             {}: error {}, predicted {} ({:.2f} decades from the rule's boundary)\n",
               gate_text(spec, s.worst_miss.gates), num(s.worst_miss.error.rel_rms),
               num(s.worst_miss.risk.predicted_error), s.worst_miss_margin);
  fmt::print("  far from the boundary (> 1 decade): {} points, {} misses\n", s.far_points, s.far_misses);
  print_map(spec, s);
  fmt::print("  time:                   {:.2f} s on {} threads ({:.3g} points/s; estimated {:.3g} s)\n", s.seconds,
             s.threads, double(s.points) / s.seconds, estimate);
  return 0;
}

}  // namespace

void setup_chunk_safety(App& app) {
  auto o = std::make_shared<ChunkSafetyOptions>();
  CLI::App* sub = app.add_subcommand(
      "chunk-safety", "where the reordered chunkwise algorithm breaks: emulated map and predictive rule");
  sub->add_option("--chunk", o->chunk, "chunk size C")->capture_default_str();
  sub->add_option("--precision", o->precision, "fp64, fp32, tf32 (fp32 with tf32 products) or bf16")
      ->capture_default_str();
  sub->add_option("--axis", o->axes, "NAME=START:STOP:N over log_alpha, log_mu, alpha, mu, beta, eta (1 or 2)");
  sub->add_option("--fix", o->fixed, "NAME=VALUE for a gate no axis covers");
  sub->add_option("--beta", o->beta, "beta for every token (default 0.1)");
  sub->add_option("--eta", o->eta, "eta for every token (default 1)");
  sub->add_option("--p-scale", o->p_scale, "p_t = alpha k^ (alpha) or k^ (one)")
      ->check(CLI::IsMember({"alpha", "one"}))
      ->capture_default_str();
  sub->add_option("--dk", o->dk, "key dimension")->capture_default_str();
  sub->add_option("--dv", o->dv, "value dimension")->capture_default_str();
  sub->add_option("--steps", o->steps, "sequence length T")->capture_default_str();
  sub->add_option("--seed", o->seed, "seed of the random q, k, v")->capture_default_str();
  sub->add_option("--tolerance", o->tol, "relative error above which a point is broken")->capture_default_str();
  sub->add_option("--beta-eps", o->beta_eps, "weights from log(beta + EPS) (the reference kernel: 1e-6)")
      ->capture_default_str();
  sub->add_option("--threads", o->threads, "threads (0: all cores)")->capture_default_str();
  sub->add_option("--max-hours", o->max_hours, "refuse grids estimated to take longer")->capture_default_str();
  sub->add_option("--out", o->out, "CSV file, one row per grid point");
  app.add_command(sub, [o, &app] { return run_chunk_safety(*o, app); });
}

}  // namespace mdnstab::cli
