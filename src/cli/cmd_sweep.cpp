// `mdnstab sweep`: metrics over a grid of gates to CSV, with a summary
// (DESIGN.md section 7).
#include <unistd.h>

#include <cstdlib>
#include <memory>

#include <fmt/format.h>

#include "app.hpp"
#include "mdnstab/precision.hpp"
#include "mdnstab/sweep.hpp"

namespace mdnstab::cli {

namespace {

struct SweepCliOptions {
  std::vector<std::string> axes, fixed, metrics;
  std::string out, p_scale = "alpha", engine;
  int threads = 0;
  double max_output_gb = 20;
  bool list_metrics = false;
  int chunk = 64;                 // chunk_safe: C
  std::string precision = "fp32";  // chunk_safe: arithmetic
  double chunk_tol = 1e-2;         // chunk_safe: error that breaks a chunk
  int chunk_steps = 4096;          // chunk_safe: sequence length
  int chunk_dk = 64;               // chunk_safe: key dimension
};

int run_sweep_cmd(const SweepCliOptions& o, const App& app) {
  if (o.list_metrics) {
    for (const MetricDef& m : sweep_metrics())
      fmt::print("{:<20}{}{}\n", m.name, m.help, m.default_on ? "" : " (not in the default set)");
    return 0;
  }
  SweepSpec spec;
  spec.p_scale = resolve_p_scale(o.p_scale);
  for (const auto& a : o.axes) spec.axes.push_back(value_or_throw(parse_axis(a)));
  for (const auto& f : o.fixed) spec.fixed.push_back(value_or_throw(parse_fixed(f)));
  // Split here, not by CLI11's delimiter, which drops empty items: "rho," is refused.
  for (const auto& list : o.metrics)
    for (size_t at = 0;;) {
      const size_t comma = list.find(',', at);
      const std::string name = list.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
      if (name.empty()) throw UsageError(fmt::format("--metrics '{}': an empty metric name", list));
      spec.metrics.push_back(name);
      if (comma == std::string::npos) break;
      at = comma + 1;
    }
  spec.chunk.chunk = o.chunk;
  spec.chunk.precision = value_or_throw(parse_precision(o.precision));
  spec.chunk.tol = o.chunk_tol;
  spec.chunk.steps = o.chunk_steps;
  spec.chunk.dk = o.chunk_dk;
  SweepOptions opt;
  opt.threads = o.threads;
  opt.out_path = o.out;
  opt.max_output_bytes = o.max_output_gb * 1e9;
  // --engine, else MDNSTAB_SWEEP_ENGINE, else auto.
  if (!o.engine.empty()) {
    opt.engine = value_or_throw(parse_sweep_engine(o.engine));
  } else if (const char* env = std::getenv("MDNSTAB_SWEEP_ENGINE"); env && *env) {
    auto e = parse_sweep_engine(env);
    if (!e.is_ok()) throw UsageError("MDNSTAB_SWEEP_ENGINE: " + e.status.message);
    opt.engine = e.value;
  }
  ok_or_throw(check(spec, opt));
  long points = 1;
  for (const Axis& a : spec.axes) points *= a.n;
  opt.progress = isatty(STDERR_FILENO) && points >= 200000;
  const SweepSummary s = value_or_throw(run_sweep(spec, opt));

  std::string axes;
  for (const Axis& a : spec.axes) axes += (axes.empty() ? "" : " x ") + a.name;
  if (app.format() == Format::kJson) {
    print_json({{"points", s.points},
                {"axes", axes},
                {"columns", s.columns},
                {"out", o.out.empty() ? nlohmann::json(nullptr) : nlohmann::json(o.out)},
                {"fraction_complex", s.fraction_complex},
                {"fraction_negative", s.fraction_negative},
                {"max_frozen_rho", s.max_frozen_rho},
                {"argmax", gates_json(s.argmax)},
                {"threads", s.threads},
                {"engine", s.engine},
                {"seconds_compute", s.seconds_compute},
                {"seconds_total", s.seconds_total},
                {"seconds_cpu", s.seconds_cpu}});
    return 0;
  }
  fmt::print("sweep: {} points over {}, {} columns{}\n", s.points, axes, s.columns.size(),
             o.out.empty() ? " (no output file)" : " -> " + o.out);
  fmt::print("  complex pair (A_par):   {:.2f}%\n", 100 * s.fraction_complex);
  fmt::print("  negative eigenvalue:    {:.2f}%\n", 100 * s.fraction_negative);
  fmt::print("  max frozen rho:         {} at alpha={} beta={} mu={} eta={}\n", num(s.max_frozen_rho),
             num(s.argmax.alpha), num(s.argmax.beta), num(s.argmax.mu), num(s.argmax.eta));
  fmt::print("  time:                   {:.3f} s on {} threads ({:.3g} points/s, engine {})\n", s.seconds_total,
             s.threads, double(s.points) / s.seconds_total, s.engine);
  return 0;
}

}  // namespace

void setup_sweep(App& app) {
  auto o = std::make_shared<SweepCliOptions>();
  CLI::App* sub = app.add_subcommand("sweep", "spectral metrics over a grid of gates, to CSV");
  sub->add_option("--axis", o->axes, "NAME=START:STOP:N over alpha, beta, mu, eta, log_alpha, log_mu (1 to 4)");
  sub->add_option("--fix", o->fixed, "NAME=VALUE for each gate no axis covers");
  sub->add_option("--metrics", o->metrics, "metrics to write, comma-separated (default: all spectral ones; see --list-metrics)");
  sub->add_option("--out", o->out,
                  "CSV file, one row per grid point (written whole or not at all; large files by direct I/O, "
                  "MDNSTAB_DIRECT_IO=0 to turn that off)");
  sub->add_option("--p-scale", o->p_scale, "p_t = alpha k^ (alpha) or k^ (one)")
      ->check(CLI::IsMember({"alpha", "one"}))
      ->capture_default_str();
  sub->add_option("--threads", o->threads, "threads (0: all cores)")->capture_default_str();
  sub->add_option("--max-output-gb", o->max_output_gb, "refuse outputs larger than this")->capture_default_str();
  sub->add_option("--engine", o->engine,
                  "auto (default: fast where the CPU has AVX2/AVX-512), portable, fast, fast-avx512, fast-avx2, "
                  "fast-scalar; overrides MDNSTAB_SWEEP_ENGINE");
  sub->add_flag("--list-metrics", o->list_metrics, "list the metrics and exit");
  sub->add_option("--chunk", o->chunk, "chunk size C for the chunk_safe metric")->capture_default_str();
  sub->add_option("--precision", o->precision, "fp64, fp32, tf32 or bf16 for the chunk_safe metric")
      ->capture_default_str();
  sub->add_option("--chunk-steps", o->chunk_steps, "sequence length for the chunk_safe metric")
      ->capture_default_str();
  sub->add_option("--chunk-dk", o->chunk_dk, "key dimension for the chunk_safe metric (the memory under random keys)")
      ->capture_default_str();
  sub->add_option("--chunk-tolerance", o->chunk_tol, "relative error that breaks a chunk (chunk_safe)")
      ->capture_default_str();
  app.add_command(sub, [o, &app] { return run_sweep_cmd(*o, app); });
}

}  // namespace mdnstab::cli
