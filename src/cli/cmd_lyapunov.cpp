// `mdnstab lyapunov`: the top Lyapunov exponent of the full recurrence under
// random unit keys or a rotating schedule (DESIGN.md sections 4 and 7), CPU.
// Tested in tests/cli/test_cli_certify.cpp.
#include <cmath>
#include <memory>

#include <fmt/format.h>

#include "app.hpp"
#include "mdnstab/lyapunov.hpp"

namespace mdnstab::cli {

namespace {

struct LyapunovCliOptions {
  GateOptions gates;
  int dk = 0;
  long steps = 0;
  long burn_in = -1;
  std::uint64_t seed = 0;
  std::string keys = "random", device = "cpu";
  int chains = 16, threads = 0;
};

int run_lyapunov(const LyapunovCliOptions& o, const App& app) {
  if (o.device == "gpu")
    throw UsageError("--device gpu: the GPU path is not available in this build (use --device cpu)");
  if (o.device != "cpu") throw UsageError(fmt::format("--device '{}' (expected cpu or gpu)", o.device));
  const Gates g = resolve_gates(o.gates);
  LyapunovOptions opt;
  opt.dk = o.dk;
  opt.steps = o.steps;
  opt.burn_in = o.burn_in;
  opt.seed = o.seed;
  opt.chains = o.chains;
  opt.threads = o.threads;
  if (o.burn_in < -1) throw UsageError(fmt::format("--burn-in {} must be >= 0", o.burn_in));
  ok_or_throw(parse_keys(o.keys, opt));
  const LyapunovResult r = value_or_throw(lyapunov(g, opt));
  const long burn = opt.burn_in >= 0 ? opt.burn_in : opt.steps / 10;
  if (app.format() == Format::kJson) {
    print_json({{"exponent", number_or_null(r.exponent)},
                {"stderr", number_or_null(r.stderr_)},
                {"dk", opt.dk},
                {"steps", opt.steps},
                {"burn_in", burn},
                {"chains", opt.chains},
                {"keys", o.keys},
                {"seed", opt.seed},
                {"growth_per_step", number_or_null(std::exp(r.exponent))},
                {"device", "cpu"},
                {"gates", gates_json(g)},
                {"threads", r.threads},
                {"seconds", r.seconds}});
    return 0;
  }
  fmt::print("lyapunov: alpha={} beta={} mu={} eta={} p-scale={}, DK={}, keys {}\n", num(g.alpha), num(g.beta),
             num(g.mu), num(g.eta), to_string(g.p_scale), opt.dk, o.keys);
  fmt::print("  top exponent      {:.6g} per step (+/- {:.2g} standard error)\n", r.exponent, r.stderr_);
  fmt::print("  growth per step   {:.6g}  -> {}\n", std::exp(r.exponent),
             r.exponent > 0 ? "the state grows" : "the state decays");
  fmt::print("  {} chains x {} steps (after {} burn-in), seed {}, {} threads, {:.3f} s\n", opt.chains, opt.steps,
             burn, opt.seed, r.threads, r.seconds);
  return 0;
}

}  // namespace

void setup_lyapunov(App& app) {
  auto o = std::make_shared<LyapunovCliOptions>();
  CLI::App* sub = app.add_subcommand(
      "lyapunov", "top Lyapunov exponent of the full recurrence under random or rotating unit keys");
  add_gate_options(sub, o->gates);
  sub->add_option("--dk", o->dk, "key dimension DK")->required();
  sub->add_option("--steps", o->steps, "measured steps per chain")->required();
  sub->add_option("--seed", o->seed, "seed (results repeat for a seed, whatever the thread count)")
      ->capture_default_str();
  sub->add_option("--keys", o->keys, "random (uniform on the sphere) or rotating:RADIANS")->capture_default_str();
  sub->add_option("--burn-in", o->burn_in, "steps before measuring (default: steps / 10)");
  sub->add_option("--chains", o->chains, "independent chains")->capture_default_str();
  sub->add_option("--threads", o->threads, "threads (0: all cores)")->capture_default_str();
  sub->add_option("--device", o->device, "cpu (gpu: not in this build)")->capture_default_str();
  app.add_command(sub, [o, &app] { return run_lyapunov(*o, app); });
}

}  // namespace mdnstab::cli
