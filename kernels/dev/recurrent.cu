// Numbered versions of the recurrent MDN forward kernel (STYLE.md 2.10); each is checked
// against the double-precision CPU reference (src/mdnstab/recurrent_ref.hpp) before it
// is timed, and no time is printed after a failed check. CI compiles this file.
//   mdnstab_dev_recurrent [version ...] [--shape B,T,H,DK,DV]   (default: all, 8,512,6,128,256)
// v1: the plainest correct kernel: one thread per (sequence, head, value column), S and M
//     columns in global memory, norms recomputed by every thread. Scalar gates, fp32 out.
// v2: kernels/dev/recurrent_v2.cuh, bf16 inputs here: columns split over warps, 8 per
//     lane, S in registers, M in shared memory, one fused transpose-reduce per token,
//     inputs staged 8 tokens ahead with cp.async, one warp per vector norm.
// v3: the production kernel (kernels/recurrent_kernel.cuh through kernels::run): v2 with
//     4 columns per lane and M in registers for DK <= 128 (twice the warps to hide the
//     shuffle latency), k, p, q prescaled to fp32 once per chunk for DK <= 128, per-token
//     pointers, 16-token chunks for bf16 (24 for DK <= 128), norms 4 lanes per vector.
//     A variant with a ring of three staging buffers and one barrier per chunk (commit
//     0898903) needed 8-token chunks to fit and ran slower (3.68 against 3.58 ms then).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench/bench_inputs.cuh"  // CUDA_OK
#include "mdn_kernels.hpp"
#include "recurrent_case.hpp"
#include "recurrent_v2.cuh"

namespace kn = mdnstab::kernels;
using mdnstab::test::Case;


namespace {

__device__ float ld(const float* p, int64_t i) { return p[i]; }
__device__ float ld(const __nv_bfloat16* p, int64_t i) { return __bfloat162float(p[i]); }

// v1. scratch: [pairs, 2, DK, DV] (S then M), zeroed by the caller.
template <class InT>
__global__ void recurrent_v1(int B, int T, int H, int DK, int DV, const InT* q, const InT* k, const InT* v,
                             const float* la, const float* lm, const float* beta, const float* eta, float scale,
                             float* scratch, float* o) {
  const int64_t gid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (gid >= int64_t(B) * H * DV) return;
  const int j = int(gid % DV);
  const int64_t pair = gid / DV;
  const int h = int(pair % H), b = int(pair / H);
  float* S = scratch + pair * 2 * DK * DV;
  float* M = S + int64_t(DK) * DV;
  for (int t = 0; t < T; ++t) {
    const int64_t g = (int64_t(b) * T + t) * H + h;
    const InT* kt = k + g * DK;
    const InT* qt = q + g * DK;
    float kn = 0, qn = 0;
    for (int i = 0; i < DK; ++i) {
      kn += ld(kt, i) * ld(kt, i);
      qn += ld(qt, i) * ld(qt, i);
    }
    const float kd = 1.f / (sqrtf(kn) + 1e-6f), qd = scale / (sqrtf(qn) + 1e-6f);
    const float alpha = expf(la[g]), mu = expf(lm[g]);
    float w = 0;
    for (int i = 0; i < DK; ++i) w += S[int64_t(i) * DV + j] * (alpha * ld(kt, i) * kd);
    w -= ld(v, g * DV + j);
    float acc = 0;
    for (int i = 0; i < DK; ++i) {
      const int64_t e = int64_t(i) * DV + j;
      M[e] = mu * M[e] + eta[g] * (ld(kt, i) * kd) * w;
      S[e] = alpha * S[e] - beta[g] * M[e];
      acc += S[e] * ld(qt, i) * qd;
    }
    o[g * DV + j] = acc;
  }
}

// v2's launch as the library made it then: G from DK, the CTA width (4, 2 or 1 warps)
// that puts the fewest warps on the busiest SM. bf16 inputs, fp32 output, no probes.
void launch_v2(const kn::RecurrentParams& p) {
  namespace v2 = mdnstab::kernels::dev_v2;
  const int G = p.dk <= 128 ? 16 : 32;
  int sms = 0;
  CUDA_OK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  const int64_t pairs = p.batch * p.heads;
  int w_best = 4;
  int64_t best = -1;
  for (int w : {4, 2, 1}) {
    const int cols = w * (32 / G) * v2::kCols;
    const int64_t cost = (pairs * ((p.dv + cols - 1) / cols) + sms - 1) / sms * w;
    if (best < 0 || cost < best) best = cost, w_best = w;
  }
  v2::KernelArgs a;
  a.H = int(p.heads); a.DK = int(p.dk); a.DV = int(p.dv); a.T = p.steps;
  a.q = p.q; a.k = p.k; a.v = p.v;
  a.log_alpha = p.log_alpha; a.log_mu = p.log_mu; a.beta = p.beta; a.eta = p.eta;
  a.scale = 1.f / std::sqrt(float(p.dk));
  a.o = p.o;
  a.warps = w_best;
  a.cols_per_cta = w_best * (32 / G) * v2::kCols;
  a.ctas_per_pair = int((p.dv + a.cols_per_cta - 1) / a.cols_per_cta);
  a.dkp = G * v2::kRows;
  int off = 0;
  auto take = [&off](int bytes) {
    const int at = off;
    off = (off + bytes + 15) / 16 * 16;
    return at;
  };
  a.off_k = take((v2::kChunk + 1) * a.dkp * 2);
  a.off_q = take(v2::kChunk * a.dkp * 2);
  a.off_v = take(v2::kChunk * a.cols_per_cta * 2);
  a.off_la = take((v2::kChunk + 1) * 4);
  a.off_lm = take(v2::kChunk * 4);
  a.off_beta = take(v2::kChunk * 4);
  a.off_eta = take(v2::kChunk * 4);
  a.stage_bytes = off;
  const int smem = w_best * v2::kWarpMBytes + 2 * off + int((sizeof(v2::TokScalars) + 15) / 16 * 16);
  const dim3 grid(unsigned(pairs * a.ctas_per_pair)), block(w_best * 32);
  if (G == 16) {
    CUDA_OK(cudaFuncSetAttribute(&v2::recurrent_fwd_kernel<16, __nv_bfloat16>,
                                 cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    v2::recurrent_fwd_kernel<16, __nv_bfloat16><<<grid, block, smem>>>(a);
  } else {
    CUDA_OK(cudaFuncSetAttribute(&v2::recurrent_fwd_kernel<32, __nv_bfloat16>,
                                 cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    v2::recurrent_fwd_kernel<32, __nv_bfloat16><<<grid, block, smem>>>(a);
  }
  CUDA_OK(cudaGetLastError());
}

struct Problem {
  kn::RecurrentParams p;  // device pointers, fp32 output
  std::vector<void*> owned;
  ~Problem() {
    for (void* x : owned) cudaFree(x);
  }
};

template <class V>
void* upload(Problem& pb, const V& h) {
  void* p = nullptr;
  CUDA_OK(cudaMalloc(&p, std::max<size_t>(h.size() * sizeof(h[0]), 1)));
  if (!h.empty()) CUDA_OK(cudaMemcpy(p, h.data(), h.size() * sizeof(h[0]), cudaMemcpyHostToDevice));
  pb.owned.push_back(p);
  return p;
}

void setup(Problem& pb, const mdnstab::test::CaseData& d) {
  const Case& c = d.c;
  kn::RecurrentParams& p = pb.p;
  p.batch = c.B; p.steps = c.T; p.heads = c.H; p.dk = c.DK; p.dv = c.DV;
  p.in_dtype = c.in;
  p.q = upload(pb, d.q); p.k = upload(pb, d.k); p.v = upload(pb, d.v);
  p.log_alpha = static_cast<float*>(upload(pb, d.la)); p.log_mu = static_cast<float*>(upload(pb, d.lm));
  p.beta = static_cast<float*>(upload(pb, d.beta)); p.eta = static_cast<float*>(upload(pb, d.eta));
  void* o = nullptr;
  CUDA_OK(cudaMalloc(&o, c.B * c.T * c.H * c.DV * 4));
  pb.owned.push_back(o);
  p.o = o;
}

// Enqueues one forward pass of `version`.
void launch(int version, const kn::RecurrentParams& p, float* scratch) {
  if (version == 1) {
    CUDA_OK(cudaMemsetAsync(scratch, 0, p.batch * p.heads * 2 * p.dk * p.dv * 4));
    const int64_t n = p.batch * p.heads * p.dv;
    const float scale = 1.f / std::sqrt(float(p.dk));
    if (p.in_dtype == kn::DType::kBF16)
      recurrent_v1<<<unsigned((n + 127) / 128), 128>>>(
          int(p.batch), int(p.steps), int(p.heads), int(p.dk), int(p.dv), static_cast<const __nv_bfloat16*>(p.q),
          static_cast<const __nv_bfloat16*>(p.k), static_cast<const __nv_bfloat16*>(p.v), p.log_alpha, p.log_mu,
          p.beta, p.eta, scale, scratch, static_cast<float*>(p.o));
    else
      recurrent_v1<<<unsigned((n + 127) / 128), 128>>>(
          int(p.batch), int(p.steps), int(p.heads), int(p.dk), int(p.dv), static_cast<const float*>(p.q),
          static_cast<const float*>(p.k), static_cast<const float*>(p.v), p.log_alpha, p.log_mu, p.beta, p.eta, scale,
          scratch, static_cast<float*>(p.o));
    CUDA_OK(cudaGetLastError());
  } else if (version == 2) {
    launch_v2(p);
  } else {
    std::string why;
    if (kn::run(p, nullptr, &why) != kn::Status::kOk) {
      std::fprintf(stderr, "v%d: %s\n", version, why.c_str());
      std::exit(1);
    }
  }
}

bool check(int version) {
  bool ok = true;
  for (auto in : {kn::DType::kF32, kn::DType::kBF16})
  for (int64_t dk : {100, 200}) {  // both column-group layouts (G = 16 and 32)
    if (version == 2 && in == kn::DType::kF32) continue;  // v2 is built for bf16 inputs only
    Case c;
    c.B = 2; c.T = 61; c.H = 3; c.DK = dk; c.DV = 72;
    c.in = in;
    c.seed = 5;
    const auto d = mdnstab::test::make_case(c);
    const auto ref = mdnstab::test::run_reference<double>(d);
    Problem pb;
    setup(pb, d);
    float* scratch = nullptr;
    CUDA_OK(cudaMalloc(&scratch, c.B * c.H * 2 * c.DK * c.DV * 4));
    const size_t no = ref.o.size();
    CUDA_OK(cudaMemset(pb.p.o, 0xff, no * 4));  // NaN: unwritten outputs fail
    launch(version, pb.p, scratch);
    CUDA_OK(cudaDeviceSynchronize());
    std::vector<float> o(no);
    CUDA_OK(cudaMemcpy(o.data(), pb.p.o, no * 4, cudaMemcpyDeviceToHost));
    cudaFree(scratch);
    double num = 0, den = 0;
    bool finite = true;
    for (size_t i = 0; i < no; ++i) {
      finite = finite && std::isfinite(o[i]);
      num += (o[i] - ref.o[i]) * (o[i] - ref.o[i]);
      den += ref.o[i] * ref.o[i];
    }
    const double rel = std::sqrt(num / den);
    const bool pass = finite && den > 0 && rel <= 2e-5;  // fp32 against double (tests/gpu)
    std::printf("v%d check %s in, DK %ld: rel err %.2e -> %s\n", version, in == kn::DType::kBF16 ? "bf16" : "f32 ",
                long(dk), rel, pass ? "PASS" : "FAIL");
    ok = ok && pass;
  }
  return ok;
}

struct Dims {
  int64_t B = 8, T = 512, H = 6, DK = 128, DV = 256;
};

void time_version(int version, const Dims& dims) {
  Case c;
  c.B = dims.B; c.T = dims.T; c.H = dims.H; c.DK = dims.DK; c.DV = dims.DV;
  c.in = kn::DType::kBF16;
  const auto d = mdnstab::test::make_case(c);
  Problem pb;
  setup(pb, d);
  float* scratch = nullptr;
  CUDA_OK(cudaMalloc(&scratch, c.B * c.H * 2 * c.DK * c.DV * 4));
  cudaEvent_t e0, e1;
  CUDA_OK(cudaEventCreate(&e0));
  CUDA_OK(cudaEventCreate(&e1));
  std::vector<float> ms;
  for (int r = 0; r < 12; ++r) {
    CUDA_OK(cudaEventRecord(e0));
    launch(version, pb.p, scratch);
    CUDA_OK(cudaEventRecord(e1));
    CUDA_OK(cudaEventSynchronize(e1));
    float t = 0;
    CUDA_OK(cudaEventElapsedTime(&t, e0, e1));
    if (r >= 2) ms.push_back(t);  // two warm-ups
  }
  std::sort(ms.begin(), ms.end());
  std::printf("v%d (%ld,%ld,%ld,%ld,%ld) bf16: median %.3f ms, %.3f us per token\n", version, long(c.B), long(c.T),
              long(c.H), long(c.DK), long(c.DV), ms[ms.size() / 2], ms[ms.size() / 2] * 1e3 / c.T);
  cudaFree(scratch);
}

}  // namespace

int main(int argc, char** argv) {
  std::string why;
  if (kn::device_count(&why) <= 0) {
    std::fprintf(stderr, "mdnstab_dev_recurrent: %s\n", why.c_str());
    return 2;
  }
  std::vector<int> versions;
  Dims dims;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--shape" && i + 1 < argc) {
      long b, t, h, dk, dv;
      if (std::sscanf(argv[++i], "%ld,%ld,%ld,%ld,%ld", &b, &t, &h, &dk, &dv) != 5) {
        std::fprintf(stderr, "--shape takes B,T,H,DK,DV\n");
        return 2;
      }
      dims = {b, t, h, dk, dv};
    } else {
      versions.push_back(std::atoi(argv[i]));
    }
  }
  if (versions.empty()) versions = {1, 2, 3};
  for (int v : versions) {
    if (v < 1 || v > 3) {
      std::fprintf(stderr, "unknown version %d (1, 2 or 3)\n", v);
      return 2;
    }
    if (!check(v)) {
      std::printf("v%d: check failed, not timed\n", v);
      return 1;
    }
    time_version(v, dims);
  }
  return 0;
}
