// `mdnstab simulate`: one long probed run of the exact recurrence on synthetic inputs
// (src/mdnstab/simulate.hpp) on the GPU kernel (kernels/mdn_kernels.hpp) or the CPU
// reference; the norm trajectory to CSV and a summary (growth rate, first non-finite
// step). Tested in tests/cli/test_cli_simulate.cpp.
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>

#include <fmt/format.h>

#include "app.hpp"
#include "mdnstab/atomic_file.hpp"
#include "mdnstab/gate_dump.hpp"
#include "mdnstab/lyapunov.hpp"
#include "mdnstab/simulate.hpp"

#ifdef MDNSTAB_HAVE_CUDA
#include "mdn_kernels.hpp"
#endif

namespace mdnstab::cli {

namespace {

struct SimulateCliOptions {
  GateOptions gates;
  std::string gates_file, keys = "random", device = "auto", dtype = "fp32", out;
  int batch = 1, heads = 1, dk = 0, dv = 0;
  int64_t steps = 0, probe_every = 0, segment = 0;
  double jitter = 0;
  uint64_t seed = 1;
};

// Whether a GPU can run the kernel; `why` says why not.
bool gpu_available(std::string* why) {
#ifdef MDNSTAB_HAVE_CUDA
  return kernels::device_count(why) > 0;
#else
  *why = "this mdnstab was built without CUDA";
  return false;
#endif
}

#ifdef MDNSTAB_HAVE_CUDA
uint16_t bf16_bits(float x) {  // x is already bf16-representable (SimulateOptions::bf16)
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return static_cast<uint16_t>(u >> 16);
}

// One segment on the GPU kernel through the host-memory entry.
Status run_segment_gpu(const SimSegment& seg) {
  kernels::RecurrentParams p;
  p.batch = seg.batch;
  p.steps = seg.steps;
  p.heads = seg.heads;
  p.dk = seg.dk;
  p.dv = seg.dv;
  p.p_scale = seg.p_scale == PScale::kAlpha ? kernels::PScale::kAlpha : kernels::PScale::kOne;
  std::vector<uint16_t> qb, kb, vb;
  if (seg.bf16) {
    const size_t nk = size_t(seg.batch) * seg.steps * seg.heads * seg.dk;
    const size_t nv = size_t(seg.batch) * seg.steps * seg.heads * seg.dv;
    qb.resize(nk);
    kb.resize(nk);
    vb.resize(nv);
    for (size_t i = 0; i < nk; ++i) {
      qb[i] = bf16_bits(seg.q[i]);
      kb[i] = bf16_bits(seg.k[i]);
    }
    for (size_t i = 0; i < nv; ++i) vb[i] = bf16_bits(seg.v[i]);
    p.in_dtype = kernels::DType::kBF16;
    p.q = qb.data();
    p.k = kb.data();
    p.v = vb.data();
  } else {
    p.q = seg.q;
    p.k = seg.k;
    p.v = seg.v;
  }
  p.log_alpha = seg.log_alpha;
  p.log_mu = seg.log_mu;
  p.beta = seg.beta;
  p.eta = seg.eta;
  p.s0 = seg.s;
  p.m0 = seg.m;
  p.s_final = seg.s;  // uploaded before the run, downloaded after it
  p.m_final = seg.m;
  p.o = seg.o;
  p.probe_interval = seg.probe_interval;
  const size_t slots = size_t(seg.batch) * seg.heads * seg.probe_count;
  std::vector<float> max_o(slots);
  p.probe_norm_s = seg.norm_s;
  p.probe_norm_m = seg.norm_m;
  p.probe_max_abs_o = max_o.data();
  p.first_nonfinite = seg.first_nonfinite;
  std::string why;
  const kernels::Status s = kernels::run_host(p, &why);
  // kNonFinite: the probes say where; the trajectory is the result, not an error.
  if (s != kernels::Status::kOk && s != kernels::Status::kNonFinite)
    return error(s == kernels::Status::kNoDevice ? Code::kUnavailable : Code::kInvalidArgument,
                 fmt::format("GPU kernel: {}", why));
  for (size_t i = 0; i < slots; ++i) seg.max_abs_o[i] = max_o[i];
  return Status::ok();
}
#endif

int run_simulate(const SimulateCliOptions& o, const App& app) {
  if (o.device != "cpu" && o.device != "gpu" && o.device != "auto")
    throw UsageError(fmt::format("--device '{}' (expected cpu, gpu or auto)", o.device));
  if (o.dtype != "fp32" && o.dtype != "bf16") throw UsageError(fmt::format("--dtype '{}' (expected fp32 or bf16)", o.dtype));
  SimulateOptions opt;
  opt.batch = o.batch;
  opt.heads = o.heads;
  opt.dk = o.dk;
  opt.dv = o.dv;
  opt.steps = o.steps;
  opt.seed = o.seed;
  opt.gate_jitter = o.jitter;
  opt.probe_every = o.probe_every;
  opt.segment = o.segment;
  opt.bf16 = o.dtype == "bf16";
  LyapunovOptions keys;
  ok_or_throw(parse_keys(o.keys, keys));
  opt.rotating_keys = keys.keys == LyapunovOptions::Keys::kRotating;
  opt.angle = keys.angle;
  std::optional<GateDump> dump;
  const PScale ps = resolve_p_scale(o.gates.p_scale);
  if (!o.gates_file.empty()) {
    if (o.gates.alpha || o.gates.log_alpha || o.gates.beta || o.gates.mu || o.gates.log_mu || o.gates.eta)
      throw UsageError("--gates FILE replaces --alpha, --beta, --mu and --eta: give one or the other");
    if (o.jitter > 0) throw UsageError("--gate-jitter applies to fixed gates, not to --gates FILE");
    dump = value_or_throw(read_gate_dump(o.gates_file, ps));
    opt.dump = &*dump;
    opt.gates.p_scale = ps;
  } else {
    opt.gates = resolve_gates(o.gates);
  }
  if (!o.out.empty()) ok_or_throw(check_writable(o.out));  // before any work
  if (o.dk > 256 && o.device != "cpu")
    throw UsageError(fmt::format("--dk {} is above the GPU kernel's 256 (use --device cpu)", o.dk));

  std::string why, device = o.device;
  if (device != "cpu" && !gpu_available(&why)) {
    if (device == "gpu") throw UsageError(fmt::format("--device gpu: {}", why));
    fmt::print(stderr, "mdnstab: note: no GPU ({}); simulate runs on the CPU reference\n", why);
    device = "cpu";
  }
  if (device == "auto") device = "gpu";
  SegmentRunner runner = run_segment_cpu;
#ifdef MDNSTAB_HAVE_CUDA
  if (device == "gpu") runner = run_segment_gpu;
#endif
  const SimulateResult r = value_or_throw(simulate(opt, runner));

  if (!o.out.empty()) {
    AtomicFile f;
    ok_or_throw(f.open(o.out));
    std::string buf = "batch,head,step,norm_s,norm_m,max_abs_o\n";
    for (const SimProbe& p : r.probes) {
      buf += fmt::format("{},{},{},{:.9g},{:.9g},{:.9g}\n", p.batch, p.head, p.step, p.norm_s, p.norm_m, p.max_abs_o);
      if (buf.size() > (1 << 20)) {
        ok_or_throw(f.write(buf));
        buf.clear();
      }
    }
    ok_or_throw(f.write(buf));
    ok_or_throw(f.commit());
  }

  double worst = -std::numeric_limits<double>::infinity(), mean = 0;
  int64_t first = -1, fitted = 0;
  for (const SimHead& h : r.heads) {
    if (!std::isnan(h.growth_rate)) {
      worst = std::max(worst, h.growth_rate);
      mean += h.growth_rate;
      ++fitted;
    }
    if (h.first_nonfinite >= 0 && (first < 0 || h.first_nonfinite < first)) first = h.first_nonfinite;
  }
  const double rate = fitted ? worst : std::numeric_limits<double>::quiet_NaN();
  mean = fitted ? mean / fitted : std::numeric_limits<double>::quiet_NaN();
  const std::string gates_desc = dump ? fmt::format("file {} ({} [B,T,H] = [{},{},{}])", o.gates_file, dump->format,
                                                    dump->batch, dump->time, dump->heads)
                                      : fmt::format("alpha={} beta={} mu={} eta={}{}", num(opt.gates.alpha),
                                                    num(opt.gates.beta), num(opt.gates.mu), num(opt.gates.eta),
                                                    o.jitter > 0 ? fmt::format(" jitter {}", num(o.jitter)) : "");
  if (app.format() == Format::kJson) {
    nlohmann::json heads = nlohmann::json::array();
    for (const SimHead& h : r.heads)
      heads.push_back({{"batch", h.batch},
                       {"head", h.head},
                       {"growth_rate", number_or_null(h.growth_rate)},
                       {"fit_points", h.fit_points},
                       {"first_nonfinite_step", h.first_nonfinite >= 0 ? nlohmann::json(h.first_nonfinite) : nullptr},
                       {"final_norm_s", number_or_null(h.final_norm_s)},
                       {"final_norm_m", number_or_null(h.final_norm_m)}});
    nlohmann::json j = {{"device", device},
                        {"dtype", o.dtype},
                        {"batch", o.batch},
                        {"heads", o.heads},
                        {"dk", o.dk},
                        {"dv", o.dv},
                        {"steps", o.steps},
                        {"steps_run", r.steps_run},
                        {"seed", o.seed},
                        {"keys", o.keys},
                        {"p_scale", std::string(to_string(opt.gates.p_scale))},
                        {"probe_every", r.probe_every},
                        {"growth_rate", number_or_null(rate)},
                        {"growth_rate_mean", number_or_null(mean)},
                        {"growth_per_step", number_or_null(std::exp(rate))},
                        {"first_nonfinite_step", first >= 0 ? nlohmann::json(first) : nullptr},
                        {"heads_detail", heads},
                        {"seconds", r.seconds}};
    if (dump)
      j["gates_file"] = o.gates_file;
    else
      j["gates"] = gates_json(opt.gates), j["gate_jitter"] = o.jitter;
    if (!o.out.empty()) j["out"] = o.out;
    print_json(j);
    return 0;
  }
  fmt::print("simulate on the {} ({} inputs): B={} H={} DK={} DV={}, {} steps, keys {}, seed {}\n",
             device == "gpu" ? "GPU kernel" : "CPU reference", o.dtype, o.batch, o.heads, o.dk, o.dv, o.steps, o.keys,
             o.seed);
  fmt::print("  gates {}, p-scale {}\n", gates_desc, to_string(opt.gates.p_scale));
  auto norm = [](double x) { return std::isnan(x) ? std::string("nan") : num(x); };
  fmt::print("  {:<6}{:<6}{:>14}{:>18}{:>14}{:>14}\n", "batch", "head", "growth/step", "first non-finite", "final |S|",
             "final |M|");
  for (const SimHead& h : r.heads)
    fmt::print("  {:<6}{:<6}{:>14}{:>18}{:>14}{:>14}\n", h.batch, h.head, num(h.growth_rate),
               h.first_nonfinite >= 0 ? std::to_string(h.first_nonfinite) : std::string("none"), norm(h.final_norm_s),
               norm(h.final_norm_m));
  fmt::print("growth rate (ln |S| per step, fitted after the first 10% of the finite run): max {} mean {} -> {}\n", num(rate),
             num(mean), std::isnan(rate) ? "not enough finite probes" : rate > 0 ? "the state grows" : "the state decays");
  fmt::print("first non-finite step: {}{}\n", first >= 0 ? std::to_string(first) : std::string("none"),
             r.steps_run < o.steps ? fmt::format(" (every head overflowed; stopped after step {})", r.steps_run) : "");
  fmt::print("probes every {} steps{}; {:.3f} s\n", r.probe_every, o.out.empty() ? "" : fmt::format(" -> {}", o.out),
             r.seconds);
  return 0;
}

}  // namespace

void setup_simulate(App& app) {
  auto o = std::make_shared<SimulateCliOptions>();
  CLI::App* sub = app.add_subcommand(
      "simulate", "one long run of the exact recurrence (GPU kernel or CPU reference) with norm probes");
  add_gate_options(sub, o->gates, false);
  sub->add_option("--gates", o->gates_file, "per-token gates from a dump (CSV rows or safetensors [B,T,H]), cycled");
  sub->add_option("--gate-jitter", o->jitter, "per token and head, each gate uniform within +/- jitter x its range")
      ->capture_default_str();
  sub->add_option("--batch", o->batch, "batch B")->capture_default_str();
  sub->add_option("--heads", o->heads, "heads H")->capture_default_str();
  sub->add_option("--dk", o->dk, "key dimension DK (GPU: <= 256)")->required();
  sub->add_option("--dv", o->dv, "value dimension DV")->required();
  sub->add_option("--steps", o->steps, "tokens T")->required();
  sub->add_option("--seed", o->seed, "seed of q, k, v and the jitter")->capture_default_str();
  sub->add_option("--keys", o->keys, "random (Gaussian, normalized) or rotating:RADIANS (a random plane per head)")
      ->capture_default_str();
  sub->add_option("--device", o->device, "gpu, cpu (the fp32 reference) or auto (gpu when there is one)")
      ->capture_default_str();
  sub->add_option("--dtype", o->dtype, "q, k, v rounded to fp32 or bf16")->capture_default_str();
  sub->add_option("--probe-every", o->probe_every, "steps between probes (0: steps / 1000)")->capture_default_str();
  sub->add_option("--segment", o->segment, "tokens per kernel call (0: automatic)")->capture_default_str();
  sub->add_option("--out", o->out, "norm trajectory CSV: batch,head,step,norm_s,norm_m,max_abs_o");
  app.add_command(sub, [o, &app] { return run_simulate(*o, app); });
}

}  // namespace mdnstab::cli
