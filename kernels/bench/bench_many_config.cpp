// Benchmark of the many-configurations mode (kernels/many_config.cu): head-steps per
// second at DK = 128 (and 64, 256), one value column, random keys made in the kernel,
// v = 0 (and v random), constant gates; median of --reps runs after a warm-up. It
// first replays sample heads on the CPU reference and prints no time if they differ
// by more than 1e-5 per step. --cpu-only measures the CPU reference's rate (on the
// machine it runs on); --cpu-rate prints a rate measured elsewhere beside the GPU's.
// Results: reports/bench/validate-gpu.md.
//   mdnstab_bench_many_config [--cpu-only] [--cpu-rate R --cpu-note TEXT] [--reps N] [--csv FILE]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <omp.h>

#include "many_config.hpp"
#include "mdnstab/many_config_ref.hpp"

namespace kn = mdnstab::kernels;

namespace {

struct Problem {
  kn::ManyConfigParams p;
  std::vector<kn::ManyHead> heads;
  std::vector<double> gates = {0.99, 0.9, 0.99, 1.9, 0.9, 0.5, 0.5, 1.0}, log_norm;
  std::vector<std::int32_t> flags;
  Problem(std::int64_t H, int dk, std::int64_t steps, double v_std) : heads(static_cast<size_t>(H)) {
    for (size_t h = 0; h < heads.size(); ++h) {
      heads[h].gate_first = std::uint32_t(h % 2);  // a growing and a decaying gate, interleaved
      heads[h].v_std = v_std;
      heads[h].stream = h;
    }
    log_norm.assign(heads.size() * 2, NAN);
    flags.assign(heads.size(), -1);
    p.heads = H;
    p.dk = dk;
    p.burn_in = 0;
    p.steps = steps;
    p.checkpoints = 1;
    p.seed = 2026;
    p.head = heads.data();
    p.gate_table = gates.data();
    p.gate_rows = 2;
    p.log_norm = log_norm.data();
    p.flags = flags.data();
  }
};

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

double cpu_rate(int dk, int threads) {
  Problem pr(64, dk, 1500, 0.0);
  const double t0 = now();
  if (!mdnstab::many_config_ref(pr.p, threads).is_ok()) std::exit(1);
  return double(pr.p.heads) * double(pr.p.steps) / (now() - t0);
}

}  // namespace

int main(int argc, char** argv) {
  bool cpu_only = false;
  double cpu_given = 0;
  std::string cpu_note = "measured elsewhere", csv;
  int reps = 5;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--cpu-only") cpu_only = true;
    else if (a == "--cpu-rate" && i + 1 < argc) cpu_given = std::atof(argv[++i]);
    else if (a == "--cpu-note" && i + 1 < argc) cpu_note = argv[++i];
    else if (a == "--reps" && i + 1 < argc) reps = std::max(1, std::atoi(argv[++i]));
    else if (a == "--csv" && i + 1 < argc) csv = argv[++i];
    else {
      std::fprintf(stderr, "usage: %s [--cpu-only] [--cpu-rate R --cpu-note TEXT] [--reps N] [--csv FILE]\n", argv[0]);
      return 2;
    }
  }
  const int threads = omp_get_num_procs();
  if (cpu_only) {
    for (int dk : {128, 64, 256})
      std::printf("cpu reference (double, %d threads): DK %3d  %.4g head-steps/s\n", threads, dk, cpu_rate(dk, threads));
    return 0;
  }
  std::string why;
  if (kn::device_count(&why) <= 0) {
    std::fprintf(stderr, "bench_many_config: no GPU: %s\n", why.c_str());
    return 2;
  }
  // Check before timing: sample heads replayed on the CPU.
  {
    Problem g(2048, 128, 4000, 0.0);
    kn::ManyConfigInfo info;
    if (kn::run_many_config(g.p, &info, &why) != kn::Status::kOk) {
      std::fprintf(stderr, "check run failed: %s\n", why.c_str());
      return 1;
    }
    double worst = 0;
    for (std::int64_t h : {0, 1, 2, 3, 1023, 2046, 2047}) {
      Problem c(1, 128, 4000, 0.0);
      c.heads[0] = g.heads[size_t(h)];
      if (!mdnstab::many_config_ref(c.p, threads).is_ok()) return 1;
      worst = std::max(worst, std::abs(kn::many_rate(g.p, h) - kn::many_rate(c.p, 0)));
    }
    std::printf("check: 7 heads replayed on the CPU, largest rate difference %.3g per step (bound 1e-5)\n", worst);
    if (!(worst <= 1e-5)) {
      std::printf("check FAILED: no timing printed\n");
      return 1;
    }
    std::printf("device: %s, %d GPU(s) used\n", info.device_name.c_str(), info.devices);
  }
  std::FILE* out = csv.empty() ? nullptr : std::fopen(csv.c_str(), "w");
  if (out) std::fprintf(out, "dk,v_std,heads,steps,median_s,head_steps_per_s\n");
  std::printf("%5s %6s %9s %7s %10s %14s\n", "DK", "v", "heads", "steps", "median s", "head-steps/s");
  double best128 = 0;
  struct Shape {
    int dk;
    double v;
    std::int64_t heads, steps;
  };
  for (const Shape& s : {Shape{128, 0.0, 1 << 16, 4096}, Shape{128, 0.0, 1 << 18, 4096}, Shape{128, 0.0, 1 << 20, 2048},
                         Shape{128, 1.0, 1 << 18, 4096}, Shape{64, 0.0, 1 << 18, 4096}, Shape{256, 0.0, 1 << 18, 2048}}) {
    Problem pr(s.heads, s.dk, s.steps, s.v);
    std::vector<double> secs;
    for (int r = 0; r <= reps; ++r) {  // run 0 warms up
      kn::ManyConfigInfo info;
      if (kn::run_many_config(pr.p, &info, &why) != kn::Status::kOk) {
        std::fprintf(stderr, "run failed: %s\n", why.c_str());
        return 1;
      }
      if (r > 0) secs.push_back(info.seconds);
    }
    for (std::int32_t f : pr.flags)
      if (f & kn::kFlagNonFinite) {
        std::fprintf(stderr, "a head went non-finite\n");
        return 1;
      }
    std::sort(secs.begin(), secs.end());
    const double med = secs[secs.size() / 2], rate = double(s.heads) * double(s.steps) / med;
    if (s.dk == 128 && s.v == 0) best128 = std::max(best128, rate);
    std::printf("%5d %6.1f %9lld %7lld %10.4f %14.4g\n", s.dk, s.v, static_cast<long long>(s.heads),
                static_cast<long long>(s.steps), med, rate);
    if (out) std::fprintf(out, "%d,%g,%lld,%lld,%.6f,%.6g\n", s.dk, s.v, static_cast<long long>(s.heads),
                          static_cast<long long>(s.steps), med, rate);
  }
  if (out) std::fclose(out);
  const double here = cpu_rate(128, threads);
  std::printf("DK 128, v = 0: GPU %.4g head-steps/s (goal >= 1e9: %s)\n", best128, best128 >= 1e9 ? "met" : "NOT met");
  std::printf("CPU reference on the device host (%d threads): %.4g head-steps/s, ratio %.3g\n", threads, here, best128 / here);
  if (cpu_given > 0)
    std::printf("CPU reference %s: %.4g head-steps/s, GPU / CPU = %.3g\n", cpu_note.c_str(), cpu_given, best128 / cpu_given);
  return 0;
}
