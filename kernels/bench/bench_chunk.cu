// Benchmark of the chunkwise MDN forward pass (kernels/chunk.cu) on the shapes of
// DESIGN.md section 8, beside this project's recurrent kernel on the same inputs:
// bf16 inputs and output, forward only, median of many CUDA-event timings after
// warm-up, input sets larger than L2 rotated. Checks the chunkwise pass against the
// double-precision CPU reference first, and against the recurrent kernel on every
// benchmark shape, and prints no time if either fails. Results:
// reports/bench/chunk-gpu.md.
//   mdnstab_bench_chunk [--reps N] [--quick]
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench_inputs.cuh"
#include "mdn_kernels.hpp"
#include "recurrent_case.hpp"

namespace kn = mdnstab::kernels;
using mdnstab::bench::Dims;
using mdnstab::bench::InputSet;

namespace {

struct Shape {
  Dims d;
  double chunk_ref_ms, recurrent_ref_ms;  // DESIGN.md section 8: the reference MDN kernels (0: none)
};

// The tolerance of tests/gpu/test_gpu_chunk.cpp for tf32 products and a bf16 output.
constexpr double kTol = 8 * 0x1p-11 + 0x1p-9;

double rel_err(const std::vector<double>& x, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(x[i])) return INFINITY;
    num += (x[i] - ref[i]) * (x[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return std::sqrt(num / den);
}

std::vector<double> widen_bf16(const void* dev, size_t n) {
  std::vector<uint16_t> raw(n);
  CUDA_OK(cudaMemcpy(raw.data(), dev, n * 2, cudaMemcpyDeviceToHost));
  std::vector<double> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = mdnstab::test::from_bf16(raw[i]);
  return out;
}

kn::RecurrentParams params(const Dims& s, const InputSet& in, void* o) {
  kn::RecurrentParams p;
  p.batch = s.B; p.steps = s.T; p.heads = s.H; p.dk = s.DK; p.dv = s.DV;
  p.in_dtype = kn::DType::kBF16;
  p.out_dtype = kn::DType::kBF16;
  p.q = in.q; p.k = in.k; p.v = in.v;
  p.log_alpha = in.la; p.log_mu = in.lm; p.beta = in.beta; p.eta = in.eta;
  p.o = o;
  return p;
}

// The chunkwise pass on a small problem with the benchmark's head size against the CPU reference.
bool check_small(const Dims& s) {
  mdnstab::test::Case c;
  c.B = 1; c.T = 203; c.H = 2; c.DK = s.DK; c.DV = s.DV;
  c.in = kn::DType::kBF16;
  c.out = kn::DType::kBF16;
  c.seed = 2000 + s.DK;
  const auto d = mdnstab::test::make_case(c);
  const auto ref = mdnstab::test::run_reference<double>(d);
  kn::RecurrentParams p;
  p.batch = c.B; p.steps = c.T; p.heads = c.H; p.dk = c.DK; p.dv = c.DV;
  p.in_dtype = p.out_dtype = kn::DType::kBF16;
  p.q = d.q.data(); p.k = d.k.data(); p.v = d.v.data();
  p.log_alpha = d.la.data(); p.log_mu = d.lm.data(); p.beta = d.beta.data(); p.eta = d.eta.data();
  std::vector<uint16_t> o(ref.o.size());
  p.o = o.data();
  std::string why;
  if (kn::run_host(p, &why, kn::Algorithm::kChunk) != kn::Status::kOk) {
    std::printf("check DK=%ld DV=%ld: %s\n", long(s.DK), long(s.DV), why.c_str());
    return false;
  }
  std::vector<double> x(o.size());
  for (size_t i = 0; i < o.size(); ++i) x[i] = mdnstab::test::from_bf16(o[i]);
  const double e = rel_err(x, ref.o);
  std::printf("check DK=%ld DV=%ld T=203 against the CPU reference (double): rel. error %.3e (tolerance %.1e)%s\n",
              long(s.DK), long(s.DV), e, kTol, e <= kTol ? "" : "  FAILED");
  return e <= kTol;
}

struct Timing {
  double median = 0, min = 0, max = 0;
};

template <class F>
Timing time_it(int reps, int nsets, F run) {
  cudaEvent_t a, b;
  CUDA_OK(cudaEventCreate(&a));
  CUDA_OK(cudaEventCreate(&b));
  for (int i = 0; i < 3; ++i) run(i % nsets);
  CUDA_OK(cudaDeviceSynchronize());
  std::vector<double> ms;
  for (int r = 0; r < reps; ++r) {
    CUDA_OK(cudaEventRecord(a));
    run(r % nsets);
    CUDA_OK(cudaEventRecord(b));
    CUDA_OK(cudaEventSynchronize(b));
    float t = 0;
    CUDA_OK(cudaEventElapsedTime(&t, a, b));
    ms.push_back(t);
  }
  CUDA_OK(cudaEventDestroy(a));
  CUDA_OK(cudaEventDestroy(b));
  std::sort(ms.begin(), ms.end());
  return {ms[ms.size() / 2], ms.front(), ms.back()};
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 30;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--reps" && i + 1 < argc) reps = std::atoi(argv[++i]);
    else if (a == "--quick") quick = true;
    else {
      std::fprintf(stderr, "usage: %s [--reps N] [--quick]\n", argv[0]);
      return 2;
    }
  }
  std::string why;
  if (kn::device_count(&why) <= 0) {
    std::fprintf(stderr, "mdnstab_bench_chunk: %s\n", why.c_str());
    return 2;
  }
  cudaDeviceProp prop{};
  CUDA_OK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s, %d SMs, L2 %.0f MiB\n", prop.name, prop.multiProcessorCount, prop.l2CacheSize / 1048576.0);

  std::vector<Shape> shapes = {{{8, 4096, 6, 128, 256}, 1.80, 7.29}, {{4, 8192, 6, 256, 512}, 8.20, 35.9},
                               {{1, 65536, 6, 128, 256}, 4.52, 0}, {{8, 4096, 6, 64, 128}, 0, 0}};
  if (quick) shapes = {{{2, 1024, 6, 128, 256}, 0, 0}};
  bool ok = check_small({1, 203, 2, 128, 256}) && check_small({1, 203, 2, 64, 128});
  if (!ok) {
    std::printf("check FAILED: no timings\n");
    return 1;
  }

  std::printf("\n%-22s %10s %8s %8s %12s %9s %13s %9s %10s\n", "shape (B,T,H,DK,DV)", "chunk ms", "min", "max",
              "recurrent ms", "chunk/rec", "ref chunk ms", "vs ref", "chunk-rec");
  for (const Shape& sh : shapes) {
    const Dims& s = sh.d;
    char name[64];
    std::snprintf(name, sizeof name, "%ld,%ld,%ld,%ld,%ld", long(s.B), long(s.T), long(s.H), long(s.DK), long(s.DV));
    kn::RecurrentParams probe = params(s, InputSet{}, nullptr);
    probe.q = probe.k = probe.v = probe.o = &reps;
    probe.log_alpha = probe.log_mu = probe.beta = probe.eta = reinterpret_cast<const float*>(&reps);
    if (kn::check_chunk(probe, &why) != kn::Status::kOk) {
      std::printf("%-22s unsupported by the chunkwise kernel: %s\n", name, why.c_str());
      continue;
    }
    const int64_t tok = s.B * s.T * s.H;
    const int nsets = mdnstab::bench::rotation_sets(s, prop.l2CacheSize);
    std::vector<InputSet> sets;
    for (int i = 0; i < nsets; ++i) sets.push_back(mdnstab::bench::make_set(s, 91 + i));
    void *oc = nullptr, *orr = nullptr, *ws = nullptr;
    CUDA_OK(cudaMalloc(&oc, tok * s.DV * 2));
    CUDA_OK(cudaMalloc(&orr, tok * s.DV * 2));
    CUDA_OK(cudaMalloc(&ws, kn::chunk_workspace_bytes(params(s, sets[0], oc))));
    // The two passes on the same inputs agree (bf16 outputs, tf32 products).
    if (kn::run_chunk(params(s, sets[0], oc), ws, nullptr, &why) != kn::Status::kOk ||
        kn::run(params(s, sets[0], orr), nullptr, &why) != kn::Status::kOk) {
      std::printf("%-22s launch failed: %s\n", name, why.c_str());
      return 1;
    }
    CUDA_OK(cudaDeviceSynchronize());
    const double agree = rel_err(widen_bf16(oc, tok * s.DV), widen_bf16(orr, tok * s.DV));
    if (!(agree <= kTol + 0x1p-9)) {
      std::printf("%-22s chunkwise and recurrent outputs differ: rel. %.3e  FAILED\n", name, agree);
      return 1;
    }
    const Timing tc = time_it(reps, nsets, [&](int i) { kn::run_chunk(params(s, sets[i], oc), ws, nullptr, nullptr); });
    const Timing tr = time_it(reps, nsets, [&](int i) { kn::run(params(s, sets[i], orr), nullptr, nullptr); });
    CUDA_OK(cudaGetLastError());
    std::printf("%-22s %10.3f %8.3f %8.3f %12.3f %9.2f", name, tc.median, tc.min, tc.max, tr.median,
                tc.median / tr.median);
    if (sh.chunk_ref_ms > 0)
      std::printf(" %13.2f %8.2fx", sh.chunk_ref_ms, sh.chunk_ref_ms / tc.median);
    else
      std::printf(" %13s %9s", "-", "-");
    std::printf(" %10.2e\n", agree);
    for (auto& in : sets) mdnstab::bench::free_set(in);
    cudaFree(oc);
    cudaFree(orr);
    cudaFree(ws);
  }
  return 0;
}
