// Benchmark of the recurrent MDN forward kernel (kernels/recurrent.cu) on the shapes of
// DESIGN.md section 8: bf16 inputs, forward only, median of many runs after warm-up,
// input sets larger than L2 rotated, probes off and on. Checks the kernel against the
// double-precision CPU reference first and prints no time if that fails. Prints time
// per step beside a latency model of one step. Results: reports/bench/recurrent-gpu.md.
//   mdnstab_bench_recurrent [--reps N] [--csv FILE] [--commit SHA] [--quick]
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench_inputs.cuh"
#include "mdn_kernels.hpp"
#include "recurrent_case.hpp"

namespace kn = mdnstab::kernels;
using mdnstab::test::Case;
using mdnstab::bench::InputSet;

namespace {

struct Shape {
  int64_t B, T, H, DK, DV;
  double target_ms, reference_ms;  // DESIGN.md section 8 (reference recurrent kernel, H100)
};

// The kernel on a small problem of the benchmark's head size against the CPU reference.
bool check_shape(const Shape& s, bool probes) {
  Case c;
  c.B = 1; c.T = 203; c.H = 2; c.DK = s.DK; c.DV = s.DV;
  c.in = kn::DType::kBF16;
  c.init_state = true;
  c.seed = 1000 + s.DK;
  const auto d = mdnstab::test::make_case(c);
  const auto ref = mdnstab::test::run_reference<double>(d, probes ? 64 : 0);
  auto up = [](const auto& h) {
    void* p = nullptr;
    const size_t b = std::max<size_t>(h.size() * sizeof(h[0]), 1);
    CUDA_OK(cudaMalloc(&p, b));
    if (!h.empty()) CUDA_OK(cudaMemcpy(p, h.data(), h.size() * sizeof(h[0]), cudaMemcpyHostToDevice));
    return p;
  };
  kn::RecurrentParams p;
  p.batch = c.B; p.steps = c.T; p.heads = c.H; p.dk = c.DK; p.dv = c.DV;
  p.in_dtype = kn::DType::kBF16;
  p.q = up(d.q); p.k = up(d.k); p.v = up(d.v);
  p.log_alpha = static_cast<float*>(up(d.la)); p.log_mu = static_cast<float*>(up(d.lm));
  p.beta = static_cast<float*>(up(d.beta)); p.eta = static_cast<float*>(up(d.eta));
  p.s0 = static_cast<float*>(up(d.s0)); p.m0 = static_cast<float*>(up(d.m0));
  const size_t no = c.T * c.H * c.DV;
  void* o = nullptr;
  CUDA_OK(cudaMalloc(&o, no * 4));
  CUDA_OK(cudaMemset(o, 0xff, no * 4));  // NaN: unwritten outputs fail
  p.o = o;
  double *ns = nullptr, *nm = nullptr;
  float* mo = nullptr;
  int64_t* fb = nullptr;
  if (probes) {
    p.probe_interval = 64;
    const size_t P = kn::probe_count(p) * c.H;
    CUDA_OK(cudaMalloc(&ns, P * 8)); CUDA_OK(cudaMalloc(&nm, P * 8));
    CUDA_OK(cudaMalloc(&mo, P * 4)); CUDA_OK(cudaMalloc(&fb, c.H * 8));
    p.probe_norm_s = ns; p.probe_norm_m = nm; p.probe_max_abs_o = mo; p.first_nonfinite = fb;
  }
  std::string why;
  if (kn::run(p, nullptr, &why) != kn::Status::kOk) {
    std::printf("check DK %ld DV %ld: run failed: %s\n", long(s.DK), long(s.DV), why.c_str());
    return false;
  }
  CUDA_OK(cudaDeviceSynchronize());
  std::vector<float> go(no);
  CUDA_OK(cudaMemcpy(go.data(), o, no * 4, cudaMemcpyDeviceToHost));
  double num = 0, den = 0;
  bool finite = true;
  for (size_t i = 0; i < no; ++i) {
    finite = finite && std::isfinite(go[i]);
    num += (go[i] - ref.o[i]) * (go[i] - ref.o[i]);
    den += ref.o[i] * ref.o[i];
  }
  const double rel = std::sqrt(num / den);
  bool ok = finite && den > 0 && rel <= 2e-5;
  if (probes) {
    std::vector<double> hns(ref.norm_s.size());
    std::vector<int64_t> hfb(c.H);
    CUDA_OK(cudaMemcpy(hns.data(), ns, hns.size() * 8, cudaMemcpyDeviceToHost));
    CUDA_OK(cudaMemcpy(hfb.data(), fb, c.H * 8, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < hns.size(); ++i) ok = ok && std::abs(hns[i] - ref.norm_s[i]) <= 2e-5 * ref.norm_s[i];
    for (int64_t x : hfb) ok = ok && x == -1;
    for (void* x : {static_cast<void*>(ns), static_cast<void*>(nm), static_cast<void*>(mo), static_cast<void*>(fb)})
      cudaFree(x);
  }
  std::printf("check DK %3ld DV %3ld bf16 in, fp32 out, T %ld, probes %s: rel err %.2e vs double CPU -> %s\n",
              long(s.DK), long(s.DV), long(c.T), probes ? "on " : "off", rel, ok ? "PASS" : "FAIL");
  for (const void* x : {p.q, p.k, p.v, static_cast<const void*>(p.log_alpha), static_cast<const void*>(p.log_mu),
                        static_cast<const void*>(p.beta), static_cast<const void*>(p.eta),
                        static_cast<const void*>(p.s0), static_cast<const void*>(p.m0), static_cast<const void*>(o)})
    cudaFree(const_cast<void*>(x));
  return ok;
}

struct Timing {
  double median = 0, min = 0, max = 0;
};

Timing time_shape(const Shape& s, std::vector<InputSet>& sets, void* o, int64_t probe_every, int reps,
                  double** probe_bufs) {
  std::vector<kn::RecurrentParams> ps;
  for (const InputSet& in : sets) {
    kn::RecurrentParams p;
    p.batch = s.B; p.steps = s.T; p.heads = s.H; p.dk = s.DK; p.dv = s.DV;
    p.in_dtype = kn::DType::kBF16;
    p.out_dtype = kn::DType::kBF16;
    p.q = in.q; p.k = in.k; p.v = in.v;
    p.log_alpha = in.la; p.log_mu = in.lm; p.beta = in.beta; p.eta = in.eta;
    p.o = o;
    if (probe_every > 0) {
      p.probe_interval = probe_every;
      p.probe_norm_s = probe_bufs[0];
      p.probe_norm_m = probe_bufs[1];
      p.probe_max_abs_o = reinterpret_cast<float*>(probe_bufs[2]);
      p.first_nonfinite = reinterpret_cast<int64_t*>(probe_bufs[3]);
    }
    ps.push_back(p);
  }
  std::string why;
  for (int i = 0; i < 3; ++i)  // warm-up
    if (kn::run(ps[i % ps.size()], nullptr, &why) != kn::Status::kOk) {
      std::fprintf(stderr, "run failed: %s\n", why.c_str());
      std::exit(1);
    }
  std::vector<cudaEvent_t> ev(2 * reps);
  for (auto& e : ev) CUDA_OK(cudaEventCreate(&e));
  for (int r = 0; r < reps; ++r) {
    CUDA_OK(cudaEventRecord(ev[2 * r]));
    kn::run(ps[(r + 3) % ps.size()], nullptr, nullptr);
    CUDA_OK(cudaEventRecord(ev[2 * r + 1]));
  }
  CUDA_OK(cudaDeviceSynchronize());
  CUDA_OK(cudaGetLastError());
  std::vector<double> ms(reps);
  for (int r = 0; r < reps; ++r) {
    float t = 0;
    CUDA_OK(cudaEventElapsedTime(&t, ev[2 * r], ev[2 * r + 1]));
    ms[r] = t;
  }
  for (auto& e : ev) cudaEventDestroy(e);
  std::sort(ms.begin(), ms.end());
  return {ms[reps / 2], ms.front(), ms.back()};
}

// Latency model of one token on the busiest SM, in SM cycles (kernels/recurrent_kernel.cuh,
// v3). Per warp and token, with R x C state elements per lane over G lanes per group:
//   FP32: 6 per element (M: mul + fma, S: mul + fma, two dot-product fmas), + 48 to
//         unpack and scale k, q, p where they are not prescaled (DK > 128);
//   transpose-reduce of 2C values: 2C - 1 + log2(G / 2C) shuffles, twice as many
//         selects, as many adds; broadcast of eta*w: C shuffles;
//   shared memory: M read and written where it lives there (DK > 128), R*C/2 128-bit
//         accesses; k, q, p and gate loads ~10; loop, pointers, output: ~50.
// Bounds per SM and token, W_sm warps on the busiest SM, 4 schedulers issuing one
// warp-instruction per cycle, 128 B/cycle of shared memory, one warp-wide shuffle per cycle:
//   issue   = ceil(W_sm / 4) * (instructions per warp and token)
//   smem    = W_sm * (shared bytes per warp and token) / 128
//   shuffle = W_sm * (shuffles per warp and token)
//   chain   = one warp's dependent path: its own instructions (alone on its scheduler)
//             + log2(G) + 1 shuffle round trips of ~30 cycles + ~40 for eta*w
void print_model(const Shape& s, const kn::LaunchPlan& lp, double ms, double mhz) {
  const int R = lp.rows_per_lane, C = lp.cols_per_lane, G = lp.lanes_per_group;
  const bool dk_small = G == 16;  // M in registers, prescaled vectors
  const int nv = 2 * C, rounds = static_cast<int>(std::log2(G));
  const double shuffles = (nv - 1) + std::log2(double(G) / nv) + C;
  const double fp32 = 6.0 * R * C + (dk_small ? 0 : 48);
  const double other = shuffles + 3.0 * (nv - 1) + (dk_small ? 0 : R * C / 2.0) + 10 + 50;
  const double per_warp = fp32 + other;
  const double smem_bytes = (dk_small ? 0 : 2.0 * R * C * 32 * 4) + 3 * 512 + 256;
  const int64_t per_sm_ctas = (lp.ctas + lp.sms - 1) / lp.sms;
  const int64_t w_sm = per_sm_ctas * lp.warps_per_cta;
  const double issue = std::ceil(w_sm / 4.0) * per_warp;
  const double smem = w_sm * smem_bytes / 128;
  const double shfl = w_sm * shuffles;
  const double chain = per_warp + (rounds + 1) * 30 + 40;
  const double bound = std::max({issue, smem, shfl, chain});
  const double cyc = ms * 1e-3 / s.T * mhz * 1e6;
  std::printf("  model DK %ld DV %ld: G %d lanes/group, %dx%d state per lane, %d warps/CTA, %ld CTAs, %d CTAs/SM max, "
              "%ld warps on the busiest SM, %d regs, %d B local, %d B smem/CTA\n",
              long(s.DK), long(s.DV), G, R, C, lp.warps_per_cta, long(lp.ctas), lp.ctas_per_sm, long(w_sm),
              lp.registers, lp.local_bytes, lp.smem_bytes);
  std::printf("    per warp and token ~%.0f instructions (%.0f FP32, %.0f shuffles); per token on the busiest SM "
              "(cycles): issue %.0f | shared memory %.0f | shuffles %.0f | dependent chain %.0f -> bound %.0f (%s)\n",
              per_warp, fp32, shuffles, issue, smem, shfl, chain, bound,
              bound == issue ? "issue" : bound == smem ? "shared memory" : bound == shfl ? "shuffles" : "latency chain");
  std::printf("    measured %.0f cycles per token at %.0f MHz = %.2f x the bound; %.3f us per token\n", cyc, mhz,
              cyc / bound, ms * 1e3 / s.T);
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 30;
  std::string csv, commit = MDNSTAB_GIT_COMMIT;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--reps" && i + 1 < argc) reps = std::atoi(argv[++i]);
    else if (a == "--csv" && i + 1 < argc) csv = argv[++i];
    else if (a == "--commit" && i + 1 < argc) commit = argv[++i];
    else if (a == "--quick") quick = true;
    else {
      std::fprintf(stderr, "usage: %s [--reps N] [--csv FILE] [--commit SHA] [--quick]\n", argv[0]);
      return 2;
    }
  }
  std::string why;
  if (kn::device_count(&why) <= 0) {
    std::fprintf(stderr, "mdnstab_bench_recurrent: %s\n", why.c_str());
    return 2;
  }
  cudaDeviceProp prop{};
  CUDA_OK(cudaGetDeviceProperties(&prop, 0));
  int khz = 0;
  CUDA_OK(cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, 0));
  const double mhz = khz / 1000.0;
  std::printf("device: %s, %d SMs, max SM clock %.0f MHz, L2 %.0f MiB\n", prop.name, prop.multiProcessorCount, mhz,
              prop.l2CacheSize / 1048576.0);

  // The third shape of DESIGN.md section 8 has no reference recurrent figure: shown, not judged.
  std::vector<Shape> shapes = {{8, 4096, 6, 128, 256, 3.6, 7.29}, {4, 8192, 6, 256, 512, 17.8, 35.9},
                               {1, 65536, 6, 128, 256, 0, 0}};
  if (quick) shapes = {{2, 1024, 6, 128, 256, 3.6 / 16, 7.29 / 16}};

  bool ok = true;
  for (size_t i = 0; i < std::min<size_t>(shapes.size(), 2); ++i)  // the third has the first's head size
    for (bool pr : {false, true}) ok = check_shape(shapes[i], pr) && ok;
  if (!ok) {
    std::printf("check FAILED: no timings\n");
    return 1;
  }

  std::FILE* out = csv.empty() ? nullptr : std::fopen(csv.c_str(), "a");
  std::printf("\n%-24s %-10s %9s %8s %8s %8s %9s %9s %8s\n", "shape (B,T,H,DK,DV)", "probes", "median ms", "min ms",
              "max ms", "us/token", "target ms", "ref ms", "vs ref");
  for (const Shape& s : shapes) {
    const int64_t tok = s.B * s.T * s.H;
    const int nsets = mdnstab::bench::rotation_sets({s.B, s.T, s.H, s.DK, s.DV}, prop.l2CacheSize);
    std::vector<InputSet> sets;
    for (int i = 0; i < nsets; ++i) sets.push_back(mdnstab::bench::make_set({s.B, s.T, s.H, s.DK, s.DV}, 77 + i));
    void* o = nullptr;
    CUDA_OK(cudaMalloc(&o, tok * s.DV * 2));
    const int64_t pairs = s.B * s.H;
    double* bufs[4];
    CUDA_OK(cudaMalloc(&bufs[0], pairs * s.T * 8));
    CUDA_OK(cudaMalloc(&bufs[1], pairs * s.T * 8));
    CUDA_OK(cudaMalloc(&bufs[2], pairs * s.T * 4));
    CUDA_OK(cudaMalloc(&bufs[3], pairs * 8));
    char shape[64];
    std::snprintf(shape, sizeof shape, "%ld,%ld,%ld,%ld,%ld", long(s.B), long(s.T), long(s.H), long(s.DK), long(s.DV));
    double off_ms = 0;
    for (int64_t every : {int64_t{0}, int64_t{64}, int64_t{1}}) {
      const Timing t = time_shape(s, sets, o, every, reps, bufs);
      if (every == 0) off_ms = t.median;
      const std::string mode = every == 0 ? "off" : "every " + std::to_string(every);
      std::printf("%-24s %-10s %9.3f %8.3f %8.3f %8.3f", shape, mode.c_str(), t.median, t.min, t.max,
                  t.median * 1e3 / s.T);
      if (s.target_ms > 0)
        std::printf(" %9.2f %9.2f %7.2fx", s.target_ms, s.reference_ms, s.reference_ms / t.median);
      else
        std::printf(" %9s %9s %8s", "-", "-", "-");
      if (every != 0) std::printf("  probe cost %+.1f%%", 100.0 * (t.median / off_ms - 1));
      std::printf("%s\n", s.target_ms <= 0 || t.median <= s.target_ms ? "" : "  ABOVE TARGET");
      if (out)
        std::fprintf(out, "%s,%s,\"%s\",bf16,probes %s,%.4f\n", prop.name, commit.c_str(), shape, mode.c_str(), t.median);
    }
    kn::RecurrentParams p;
    p.batch = s.B; p.steps = s.T; p.heads = s.H; p.dk = s.DK; p.dv = s.DV;
    p.in_dtype = kn::DType::kBF16;
    p.q = p.k = p.v = sets[0].q;
    p.log_alpha = p.log_mu = p.beta = p.eta = sets[0].la;
    p.o = o;
    kn::LaunchPlan lp;
    if (kn::plan_launch(p, &lp, &why) == kn::Status::kOk) print_model(s, lp, off_ms, mhz);
    for (auto& in : sets) mdnstab::bench::free_set(in);
    cudaFree(o);
    for (double* b : bufs) cudaFree(b);
  }
  if (out) std::fclose(out);
  return 0;
}
