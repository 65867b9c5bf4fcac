// `mdnstab lyapunov`: the top Lyapunov exponent of the full recurrence under
// random unit keys or a rotating schedule (DESIGN.md sections 4 and 7), on the
// CPU (src/core/lyapunov.cpp) or the GPU's many-config mode (--device gpu).
// Tested in tests/cli/test_cli_certify.cpp.
#include <chrono>
#include <cmath>
#include <memory>
#include <vector>

#include <fmt/format.h>

#include "app.hpp"
#include "gpu_backend.hpp"
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
  int chains_given = 0;  // --chains on the command line (GPU default: 1024 heads)
};

// --device gpu: `chains` independent heads of the many-config mode (kernels/many_config.hpp),
// one random stream each; the exponent is the mean of their rates and its standard error
// the spread of the rates over sqrt(heads) (batch means of one head when heads = 1).
int run_lyapunov_gpu(const LyapunovCliOptions& o, const LyapunovOptions& opt, const Gates& g, const App& app) {
  std::string why;
  std::unique_ptr<ValidateBackend> backend = gpu_backend(&why);
  if (!backend) throw UsageError(fmt::format("lyapunov --device gpu: {} (use --device cpu)", why));
  if (opt.dk < 1 || opt.dk > 256) throw UsageError(fmt::format("--dk {} must be in [1, 256] on the GPU", opt.dk));
  if (opt.steps < 4) throw UsageError(fmt::format("--steps {} must be >= 4", opt.steps));
  if (opt.chains < 1) throw UsageError(fmt::format("--chains {} must be >= 1", opt.chains));
  if (opt.keys == LyapunovOptions::Keys::kRotating && opt.dk < 2)
    throw UsageError(fmt::format("--dk {}: rotating keys need dk >= 2", opt.dk));
  const long burn = opt.burn_in >= 0 ? opt.burn_in : opt.steps / 10;
  const std::vector<double> table = {g.alpha, g.beta, g.mu, g.eta}, keys = {1.0, 0.0};
  std::vector<kernels::ManyHead> heads(size_t(opt.chains));
  for (size_t h = 0; h < heads.size(); ++h) {
    heads[h].stream = h;
    if (opt.keys == LyapunovOptions::Keys::kRotating) {
      heads[h].key_mode = keygen::kKeyPlane;
      heads[h].drift = opt.angle;  // k_t = R(t angle) e1 = cos(t angle) e1 + sin(t angle) e2
    }
  }
  const int K = 4;
  std::vector<double> ln(heads.size() * (K + 1));
  std::vector<std::int32_t> flags(heads.size());
  kernels::ManyConfigParams m;
  m.heads = std::int64_t(heads.size());
  m.dk = opt.dk;
  m.burn_in = burn;
  m.steps = opt.steps;
  m.checkpoints = K;
  m.seed = opt.seed;
  m.p_alpha = g.p_scale == PScale::kAlpha;
  m.head = heads.data();
  m.gate_table = table.data();
  m.gate_rows = 1;
  m.key_table = keys.data();
  m.key_rows = 1;
  m.log_norm = ln.data();
  m.flags = flags.data();
  double secs = 0;
  const auto t0 = std::chrono::steady_clock::now();
  ok_or_throw(backend->many_config(m, &secs));
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  int nonfinite = 0, underflow = 0;
  for (std::int32_t f : flags) nonfinite += (f & kernels::kFlagNonFinite) != 0, underflow += (f & kernels::kFlagUnderflow) != 0;
  if (nonfinite) throw UsageError(fmt::format("{} of {} GPU heads went non-finite", nonfinite, heads.size()));
  double mean = 0, ss = 0;
  const double n = double(heads.size());
  for (size_t h = 0; h < heads.size(); ++h) mean += kernels::many_rate(m, std::int64_t(h)) / n;
  double se = 0;
  if (heads.size() > 1) {
    for (size_t h = 0; h < heads.size(); ++h) {
      const double d = kernels::many_rate(m, std::int64_t(h)) - mean;
      ss += std::isfinite(d) ? d * d : 0.0;
    }
    se = std::isfinite(mean) ? std::sqrt(ss / (n - 1) / n) : 0.0;
  } else {
    double b[K], bm = 0;
    for (int j = 0; j < K; ++j) {
      b[j] = (ln[size_t(j) + 1] - ln[size_t(j)]) / double(kernels::many_checkpoint_step(m, j + 1) - kernels::many_checkpoint_step(m, j));
      bm += b[j] / K;
    }
    for (double x : b) ss += (x - bm) * (x - bm);
    se = std::isfinite(mean) ? std::sqrt(ss / (K - 1) / K) : 0.0;
  }
  const double rate = double(heads.size()) * double(burn + opt.steps) / secs;
  if (app.format() == Format::kJson) {
    print_json({{"exponent", number_or_null(mean)},
                {"stderr", number_or_null(se)},
                {"dk", opt.dk},
                {"steps", opt.steps},
                {"burn_in", burn},
                {"chains", opt.chains},
                {"heads", opt.chains},
                {"keys", o.keys},
                {"seed", opt.seed},
                {"growth_per_step", number_or_null(std::exp(mean))},
                {"device", "gpu"},
                {"device_name", backend->device()},
                {"underflow_heads", underflow},
                {"gates", gates_json(g)},
                {"seconds", wall},
                {"kernel_seconds", secs},
                {"head_steps_per_second", rate}});
    return 0;
  }
  fmt::print("lyapunov: alpha={} beta={} mu={} eta={} p-scale={}, DK={}, keys {}, GPU\n", num(g.alpha), num(g.beta),
             num(g.mu), num(g.eta), to_string(g.p_scale), opt.dk, o.keys);
  fmt::print("  top exponent      {:.6g} per step (+/- {:.2g} standard error over heads)\n", mean, se);
  fmt::print("  growth per step   {:.6g}  -> {}\n", std::exp(mean), mean > 0 ? "the state grows" : "the state decays");
  fmt::print("  {} heads x {} steps (after {} burn-in), seed {}, on {}: {:.3f} s, {:.3g} head-steps/s\n", opt.chains,
             opt.steps, burn, opt.seed, backend->device(), secs, rate);
  if (underflow) fmt::print("  {} heads underflowed fp32 between renormalizations: their rates are upper bounds\n", underflow);
  return 0;
}

int run_lyapunov(const LyapunovCliOptions& o, const App& app) {
  if (o.device != "cpu" && o.device != "gpu") throw UsageError(fmt::format("--device '{}' (expected cpu or gpu)", o.device));
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
  if (o.device == "gpu") {
    if (o.chains_given <= 0) opt.chains = 1024;  // heads are cheap on the GPU
    return run_lyapunov_gpu(o, opt, g, app);
  }
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
  sub->add_option("--chains", o->chains, "independent chains (GPU: heads, default 1024)")
      ->capture_default_str()
      ->each([o](const std::string&) { o->chains_given = 1; });
  sub->add_option("--threads", o->threads, "threads (0: all cores)")->capture_default_str();
  sub->add_option("--device", o->device, "cpu, or gpu (the many-config kernel on every visible GPU)")->capture_default_str();
  app.add_command(sub, [o, &app] { return run_lyapunov(*o, app); });
}

}  // namespace mdnstab::cli
