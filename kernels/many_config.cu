// GPU side of the many-configurations mode (kernels/many_config.hpp): one group of G
// lanes per head, each lane holding kR consecutive key components of the state
// (S column, M column) in registers and drawing its own key components from the
// counter generator (kernels/keygen.hpp). The three sums a step needs over DK
// (|g|^2, g.S and |(S, M)|^2 of the state before the step) share one xor-butterfly,
// whose sums are bitwise equal on every lane, so renormalizing is a uniform decision.
// Reference: src/core/many_config_ref.cpp; tests/gpu/test_gpu_many_config.cpp.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include "keygen.hpp"
#include "many_config.hpp"

namespace mdnstab::kernels {

namespace {

constexpr int kR = 8;         // key components per lane
constexpr int kThreads = 256;  // threads per CTA
constexpr float kLow = 0x1p-30f, kHigh = 0x1p30f;  // renormalize when |x|^2 leaves [2^-30, 2^30]
constexpr float kUnderflow = 0x1p-100f;            // |x|^2 below this lost precision to subnormals
static_assert(kR % 4 == 0, "a lane draws whole blocks of four normals");
static_assert(kThreads % 32 == 0, "whole warps");

struct ManyArgs {
  std::int64_t heads = 0;
  int dk = 0, p_alpha = 1;
  std::uint64_t seed = 0;
  const ManyHead* head = nullptr;  // [H]
  const float* gates = nullptr;    // [R,4]
  const double* keys = nullptr;    // [Q,2]
  float* state = nullptr;          // [H,G,2*kR]: per lane S[kR] then M[kR]
  long long* expo = nullptr;       // [H]: |x| = 2^expo * |stored x|
  int* flags = nullptr;            // [H]
  double* log_norm = nullptr;      // [H,K+1]
  int cols = 0;                    // K + 1
  int col = -1;                    // checkpoint written at the end of this launch (-1: none)
  std::int64_t t_begin = 0, t_end = 0;
  int init = 0;                    // draw the initial state first
};

template <int G>
__device__ __forceinline__ void reduce3(float& a, float& b, float& c, unsigned mask) {
#pragma unroll
  for (int off = G / 2; off > 0; off >>= 1) {
    a += __shfl_xor_sync(mask, a, off, G);
    b += __shfl_xor_sync(mask, b, off, G);
    c += __shfl_xor_sync(mask, c, off, G);
  }
}

// v_std * 2^-E: the value input in the units of the renormalized state.
__device__ __forceinline__ float v_scale(double v_std, long long E) {
  const int e = E > 2000 ? 2000 : (E < -2000 ? -2000 : int(E));
  return float(ldexp(v_std, -e));
}

// 2^e as a float, |e| <= 126.
__device__ __forceinline__ float pow2f(int e) { return __int_as_float((127 + e) << 23); }

template <int G>
__global__ void __launch_bounds__(kThreads) many_config_kernel(ManyArgs a) {
  const std::int64_t tid = std::int64_t(blockIdx.x) * kThreads + threadIdx.x;
  const std::int64_t h = tid / G;
  if (h >= a.heads) return;  // whole groups leave together (G divides 32)
  const int lane = int(tid % G);
  const unsigned wl = threadIdx.x % 32;
  const unsigned mask = G == 32 ? 0xffffffffu : ((1u << G) - 1u) << (wl / G * G);
  const ManyHead hd = a.head[h];
  const int c0 = lane * kR;  // first key component of this lane

  float S[kR], M[kR];  // [kR] each: this lane's rows of the S and M columns
  long long E = 0;
  int flags = 0;
  float* st = a.state + (h * G + lane) * (2 * kR);
  if (a.init) {
#pragma unroll
    for (int b = 0; b < kR / 4; ++b) {
      keygen::normal4(a.seed, hd.stream, 0, keygen::kInitDomain, std::uint32_t(c0 / 4 + b), &S[4 * b]);
      keygen::normal4(a.seed, hd.stream, 1, keygen::kInitDomain, std::uint32_t(c0 / 4 + b), &M[4 * b]);
    }
#pragma unroll
    for (int r = 0; r < kR; ++r)
      if (c0 + r >= a.dk) S[r] = M[r] = 0.f;
  } else {
#pragma unroll
    for (int r = 0; r < 2 * kR; r += 4) {
      const float4 x = *reinterpret_cast<const float4*>(st + r);
      float* dst = r < kR ? &S[r] : &M[r - kR];
      dst[0] = x.x, dst[1] = x.y, dst[2] = x.z, dst[3] = x.w;
    }
    E = a.expo[h];
    flags = a.flags[h];
  }

  float alpha = 0.f, beta = 0.f, mu = 0.f, eta = 0.f;
  auto load_gates = [&](std::uint32_t row) {
    const float4 g = *reinterpret_cast<const float4*>(a.gates + 4 * row);
    alpha = g.x, beta = g.y, mu = g.z, eta = g.w;
  };
  if (hd.gate_mode == keygen::kGateConstant) load_gates(hd.gate_first);
  float vscale = v_scale(hd.v_std, E);

  // Renormalizes by an exact power of two when |x|^2 = nn leaves [kLow, kHigh].
  auto renorm = [&](float& nn, float& gs) {
    if (nn >= kLow && nn <= kHigh) return;
    if (!(nn <= 3.0e38f)) {  // NaN or inf
      flags |= kFlagNonFinite;
      return;
    }
    if (nn == 0.f) {
      flags |= kFlagZero;
      return;
    }
    if (nn < kUnderflow) flags |= kFlagUnderflow;
    const int e = ilogbf(nn) >> 1;  // floor(log2(nn) / 2), in [-75, 63]
    const float f = pow2f(-e);
#pragma unroll
    for (int r = 0; r < kR; ++r) S[r] *= f, M[r] *= f;
    gs *= f;
    nn *= f * f;
    E += e;
    vscale = v_scale(hd.v_std, E);
  };

  for (std::int64_t t = a.t_begin; t < a.t_end; ++t) {
    if (hd.gate_mode == keygen::kGateBox) {
      float lo[4], hi[4], g[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) lo[i] = a.gates[4 * hd.gate_first + i], hi[i] = a.gates[4 * hd.gate_first + 4 + i];
      keygen::gate_box(lo, hi, a.seed, hd.stream, std::uint64_t(t), g);
      alpha = g[0], beta = g[1], mu = g[2], eta = g[3];
    } else if (hd.gate_mode != keygen::kGateConstant) {
      load_gates(keygen::gate_row(hd.gate_mode, hd.gate_first, hd.gate_count, a.seed, hd.stream, std::uint64_t(t)));
    }
    float g[kR];  // [kR]: this lane's components of the (unnormalized) key
    if (hd.key_mode == keygen::kKeyRandom) {
#pragma unroll
      for (int b = 0; b < kR / 4; ++b) {
        if (c0 + 4 * b < a.dk)
          keygen::normal4(a.seed, hd.stream, std::uint64_t(t), keygen::kKeyDomain, std::uint32_t(c0 / 4 + b), &g[4 * b]);
        else
          g[4 * b] = g[4 * b + 1] = g[4 * b + 2] = g[4 * b + 3] = 0.f;
      }
#pragma unroll
      for (int r = 0; r < kR; ++r)
        if (c0 + r >= a.dk) g[r] = 0.f;
    } else {
#pragma unroll
      for (int r = 0; r < kR; ++r) g[r] = 0.f;
      if (lane == 0) {
        double c, s;
        keygen::plane_rotation(std::uint64_t(t), hd.key_period, hd.drift, c, s);
        const double* k = a.keys + 2 * (hd.key_first + std::uint64_t(t) % hd.key_period);
        g[0] = float(c * k[0] - s * k[1]);
        g[1] = float(s * k[0] + c * k[1]);
      }
    }
    float gg = 0.f, gs = 0.f, nn = 0.f;
#pragma unroll
    for (int r = 0; r < kR; ++r) {
      gg = fmaf(g[r], g[r], gg);
      gs = fmaf(g[r], S[r], gs);
      nn = fmaf(S[r], S[r], fmaf(M[r], M[r], nn));
    }
    reduce3<G>(gg, gs, nn, mask);
    renorm(nn, gs);
    float v = 0.f;
    if (hd.v_std != 0.0) {
      float z[4];
      keygen::normal4(a.seed, hd.stream, std::uint64_t(t), keygen::kValueDomain, 0, z);
      v = z[0] * vscale;
    }
    const float inv = rsqrtf(gg);
    const float rp = a.p_alpha ? alpha : 1.f;
    const float w = rp * gs * inv - v;  // w = p . S - v, p = rho_p k^
    const float c = eta * w * inv;      // M += eta k^ w, k^ = g * inv
#pragma unroll
    for (int r = 0; r < kR; ++r) {
      M[r] = fmaf(mu, M[r], c * g[r]);
      S[r] = fmaf(alpha, S[r], -beta * M[r]);
    }
  }

  float nn = 0.f, dummy = 0.f, dummy2 = 0.f;
#pragma unroll
  for (int r = 0; r < kR; ++r) nn = fmaf(S[r], S[r], fmaf(M[r], M[r], nn));
  reduce3<G>(nn, dummy, dummy2, mask);
  renorm(nn, dummy);
#pragma unroll
  for (int r = 0; r < 2 * kR; r += 4) {
    const float* src = r < kR ? &S[r] : &M[r - kR];
    *reinterpret_cast<float4*>(st + r) = make_float4(src[0], src[1], src[2], src[3]);
  }
  if (lane == 0) {
    a.expo[h] = E;
    a.flags[h] = flags;
    if (a.col >= 0) {
      double L;
      if (flags & kFlagNonFinite)
        L = NAN;
      else if (nn == 0.f)
        L = -INFINITY;
      else
        L = double(E) * 0.69314718055994531 + 0.5 * log(double(nn));
      a.log_norm[h * a.cols + a.col] = L;
    }
  }
}

int lanes_for(int dk) {
  int g = 1;
  while (g * kR < dk) g *= 2;
  return g;  // 1..32 for dk <= 256
}

Status fail(Status s, std::string* why, const std::string& m) {
  if (why) *why = m;
  return s;
}

Status cuda_fail(cudaError_t e, std::string* why, const std::string& what) {
  return fail(Status::kCudaError, why, what + ": " + cudaGetErrorString(e));
}

void launch(int G, const ManyArgs& a, cudaStream_t st) {
  const std::int64_t threads = a.heads * G;
  const unsigned blocks = unsigned((threads + kThreads - 1) / kThreads);
  switch (G) {
    case 1: many_config_kernel<1><<<blocks, kThreads, 0, st>>>(a); break;
    case 2: many_config_kernel<2><<<blocks, kThreads, 0, st>>>(a); break;
    case 4: many_config_kernel<4><<<blocks, kThreads, 0, st>>>(a); break;
    case 8: many_config_kernel<8><<<blocks, kThreads, 0, st>>>(a); break;
    case 16: many_config_kernel<16><<<blocks, kThreads, 0, st>>>(a); break;
    default: many_config_kernel<32><<<blocks, kThreads, 0, st>>>(a); break;
  }
}

// Device buffers of one GPU's share of the heads.
struct DeviceShare {
  int dev = 0;
  std::int64_t h0 = 0, n = 0;
  cudaStream_t stream = nullptr;
  void* head = nullptr;
  void* gates = nullptr;
  void* keys = nullptr;
  void* state = nullptr;
  void* expo = nullptr;
  void* flags = nullptr;
  void* log_norm = nullptr;
  void release() {
    if (n == 0 && !stream) return;
    cudaSetDevice(dev);
    for (void* p : {head, gates, keys, state, expo, flags, log_norm})
      if (p) cudaFree(p);
    if (stream) cudaStreamDestroy(stream);
    head = gates = keys = state = expo = flags = log_norm = nullptr;
    stream = nullptr;
  }
};

}  // namespace

Status run_many_config(const ManyConfigParams& p, ManyConfigInfo* info, std::string* why) {
  if (Status s = check(p, why); s != Status::kOk) return s;
  const int count = device_count(why);
  if (count <= 0) return Status::kNoDevice;
  const int G = lanes_for(p.dk);
  if (p.heads * G / kThreads >= (std::int64_t{1} << 31) - 1)
    return fail(Status::kUnsupported, why, "heads = " + std::to_string(p.heads) + " exceeds one grid");
  const int ndev = int(std::min<std::int64_t>(p.max_devices > 0 ? std::min(count, p.max_devices) : count, p.heads));
  const int K1 = p.checkpoints + 1;
  std::vector<float> gates(size_t(p.gate_rows) * 4);  // [R,4]
  for (size_t i = 0; i < gates.size(); ++i) gates[i] = float(p.gate_table[i]);

  std::vector<DeviceShare> shares(static_cast<size_t>(ndev));
  Status status = Status::kOk;
  auto cleanup = [&] {
    for (auto& s : shares) s.release();
  };
  // Upload and allocate on every device first, then launch everything, then wait:
  // the devices run concurrently.
  for (int d = 0; d < ndev && status == Status::kOk; ++d) {
    DeviceShare& s = shares[size_t(d)];
    s.dev = d;
    s.h0 = p.heads * d / ndev;
    s.n = p.heads * (d + 1) / ndev - s.h0;
    cudaError_t e = cudaSetDevice(d);
    auto alloc = [&](void*& ptr, size_t bytes) {
      if (e == cudaSuccess) e = cudaMalloc(&ptr, std::max<size_t>(bytes, 16));
    };
    auto put = [&](void* dst, const void* src, size_t bytes) {
      if (e == cudaSuccess && bytes) e = cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice);
    };
    if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking);
    alloc(s.head, size_t(s.n) * sizeof(ManyHead));
    alloc(s.gates, gates.size() * sizeof(float));
    alloc(s.keys, size_t(p.key_rows) * 2 * sizeof(double));
    alloc(s.state, size_t(s.n) * G * 2 * kR * sizeof(float));
    alloc(s.expo, size_t(s.n) * sizeof(long long));
    alloc(s.flags, size_t(s.n) * sizeof(int));
    alloc(s.log_norm, size_t(s.n) * K1 * sizeof(double));
    put(s.head, p.head + s.h0, size_t(s.n) * sizeof(ManyHead));
    put(s.gates, gates.data(), gates.size() * sizeof(float));
    put(s.keys, p.key_table, size_t(p.key_rows) * 2 * sizeof(double));
    if (e != cudaSuccess) status = cuda_fail(e, why, "device " + std::to_string(d) + ": allocation or upload");
  }
  if (status != Status::kOk) {
    cleanup();
    return status;
  }
  const auto t0 = std::chrono::steady_clock::now();
  for (int d = 0; d < ndev && status == Status::kOk; ++d) {
    DeviceShare& s = shares[size_t(d)];
    cudaSetDevice(d);
    ManyArgs a;
    a.heads = s.n;
    a.dk = p.dk;
    a.p_alpha = p.p_alpha;
    a.seed = p.seed;
    a.head = static_cast<const ManyHead*>(s.head);
    a.gates = static_cast<const float*>(s.gates);
    a.keys = static_cast<const double*>(s.keys);
    a.state = static_cast<float*>(s.state);
    a.expo = static_cast<long long*>(s.expo);
    a.flags = static_cast<int*>(s.flags);
    a.log_norm = static_cast<double*>(s.log_norm);
    a.cols = K1;
    // Launch j runs up to checkpoint j; launch 0 also draws the initial state.
    for (int j = 0; j <= p.checkpoints; ++j) {
      a.init = j == 0;
      a.t_begin = j == 0 ? 0 : many_checkpoint_step(p, j - 1);
      a.t_end = many_checkpoint_step(p, j);
      a.col = j;
      launch(G, a, s.stream);
      if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) {
        status = cuda_fail(e, why, "device " + std::to_string(d) + ": many-config launch");
        break;
      }
    }
  }
  for (int d = 0; d < ndev; ++d) {
    DeviceShare& s = shares[size_t(d)];
    cudaSetDevice(d);
    cudaError_t e = cudaStreamSynchronize(s.stream);
    if (e != cudaSuccess && status == Status::kOk) status = cuda_fail(e, why, "device " + std::to_string(d) + ": many-config kernel");
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (int d = 0; d < ndev && status == Status::kOk; ++d) {
    DeviceShare& s = shares[size_t(d)];
    cudaSetDevice(d);
    cudaError_t e = cudaMemcpy(p.log_norm + s.h0 * K1, s.log_norm, size_t(s.n) * K1 * sizeof(double), cudaMemcpyDeviceToHost);
    if (e == cudaSuccess) {
      std::vector<int> fl(static_cast<size_t>(s.n));
      e = cudaMemcpy(fl.data(), s.flags, fl.size() * sizeof(int), cudaMemcpyDeviceToHost);
      for (std::int64_t i = 0; i < s.n; ++i) p.flags[s.h0 + i] = fl[size_t(i)];
    }
    if (e != cudaSuccess) status = cuda_fail(e, why, "device " + std::to_string(d) + ": download");
  }
  cleanup();
  if (status != Status::kOk) return status;
  if (info) {
    info->devices = ndev;
    info->device_name = device_name();
    info->seconds = secs;
    info->head_steps = double(p.heads) * double(p.burn_in + p.steps);
  }
  return Status::kOk;
}

// ---- long runs of the full recurrent kernel ----

namespace {

// Inputs of tokens [t0, t0 + len) of every sequence: k (q aliases it) [B,len,1,DK],
// v [B,len,1,DV], gates [B,len,1] (log_alpha, log_mu, beta, eta).
__global__ void long_run_fill(std::int64_t B, std::int64_t len, std::int64_t t0, int dk, int dv, std::uint64_t seed,
                              const ManyHead* head, const float* gates, float* k, float* v, float* la, float* lm,
                              float* beta, float* eta) {
  const std::int64_t n = B * len;
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t b = i / len, tt = i % len;
    const ManyHead hd = head[b];
    const std::uint64_t t = std::uint64_t(t0 + tt);
    long_run_inputs<float>(seed, hd.stream, t, dk, dv, k + i * dk, v + i * dv);
    float g[4];
    if (hd.gate_mode == keygen::kGateBox) {
      keygen::gate_box(gates + 4 * hd.gate_first, gates + 4 * hd.gate_first + 4, seed, hd.stream, t, g);
    } else {
      const std::uint32_t row = keygen::gate_row(hd.gate_mode, hd.gate_first, hd.gate_count, seed, hd.stream, t);
      for (int j = 0; j < 4; ++j) g[j] = gates[4 * row + j];
    }
    la[i] = logf(g[0]);  // -inf for alpha = 0, which the kernel accepts
    beta[i] = g[1];
    lm[i] = logf(g[2]);
    eta[i] = g[3];
  }
}

}  // namespace

Status run_long_recurrent(const LongRunParams& p, std::string* why) {
  auto bad = [why](const std::string& m) { return fail(Status::kInvalidArgument, why, m); };
  if (p.batch < 1) return bad("batch = " + std::to_string(p.batch) + " must be >= 1");
  if (p.steps < 1) return bad("steps = " + std::to_string(p.steps) + " must be >= 1");
  if (p.dk < 1 || p.dk > 256) return bad("dk = " + std::to_string(p.dk) + " must be in [1, 256]");
  if (p.dv < 1 || p.dv > 1024) return bad("dv = " + std::to_string(p.dv) + " must be in [1, 1024]");
  if (p.segment < 1 || p.probe_interval < 1) return bad("segment and probe_interval must be >= 1");
  if (!p.head || !p.gate_table || p.gate_rows < 1) return bad("head and gate_table must be given");
  if (!p.first_nonfinite || !p.max_norm || !p.final_norm) return bad("the outputs must be given");
  {  // the gate rules, through the many-config check
    ManyConfigParams m;
    m.heads = p.batch;
    m.dk = std::max(p.dk, 2);
    m.steps = 1;
    m.head = p.head;
    m.gate_table = p.gate_table;
    m.gate_rows = p.gate_rows;
    double ln = 0;
    std::int32_t fl = 0;
    m.log_norm = &ln;
    m.flags = &fl;
    std::vector<ManyHead> heads(p.head, p.head + p.batch);
    for (auto& h : heads) h.key_mode = keygen::kKeyRandom;
    m.head = heads.data();
    if (Status s = check(m, why); s != Status::kOk) return s;
  }
  if (device_count(why) <= 0) return Status::kNoDevice;
  cudaSetDevice(0);
  const std::int64_t B = p.batch;
  // Segment length: at most ~1 GiB of k per segment, whole probe intervals.
  std::int64_t L = std::min<std::int64_t>(p.segment, p.steps);
  L = std::max<std::int64_t>(1, std::min<std::int64_t>(L, (std::int64_t{1} << 28) / (B * p.dk)));
  if (L >= p.probe_interval) L -= L % p.probe_interval;
  const std::int64_t PI = std::min(p.probe_interval, L);
  const std::int64_t Pmax = (L + PI - 1) / PI;
  std::vector<float> gates(size_t(p.gate_rows) * 4);
  for (size_t i = 0; i < gates.size(); ++i) gates[i] = float(p.gate_table[i]);

  std::vector<void*> bufs;
  cudaError_t e = cudaSuccess;
  auto alloc = [&](size_t bytes) -> void* {
    void* ptr = nullptr;
    if (e == cudaSuccess) e = cudaMalloc(&ptr, std::max<size_t>(bytes, 16));
    if (ptr) bufs.push_back(ptr);
    return ptr;
  };
  const size_t tok = size_t(B * L), st = size_t(B) * p.dk * p.dv;
  auto* d_head = static_cast<ManyHead*>(alloc(size_t(B) * sizeof(ManyHead)));
  auto* d_gates = static_cast<float*>(alloc(gates.size() * 4));
  auto* k = static_cast<float*>(alloc(tok * p.dk * 4));
  auto* v = static_cast<float*>(alloc(tok * p.dv * 4));
  auto* la = static_cast<float*>(alloc(tok * 4));
  auto* lm = static_cast<float*>(alloc(tok * 4));
  auto* be = static_cast<float*>(alloc(tok * 4));
  auto* et = static_cast<float*>(alloc(tok * 4));
  auto* o = static_cast<float*>(alloc(tok * p.dv * 4));
  float* s_buf[2] = {static_cast<float*>(alloc(st * 4)), static_cast<float*>(alloc(st * 4))};
  float* m_buf[2] = {static_cast<float*>(alloc(st * 4)), static_cast<float*>(alloc(st * 4))};
  auto* ns = static_cast<double*>(alloc(size_t(B * Pmax) * 8));
  auto* nm = static_cast<double*>(alloc(size_t(B * Pmax) * 8));
  auto* mo = static_cast<float*>(alloc(size_t(B * Pmax) * 4));
  auto* fb = static_cast<std::int64_t*>(alloc(size_t(B) * 8));
  if (e == cudaSuccess) e = cudaMemcpy(d_head, p.head, size_t(B) * sizeof(ManyHead), cudaMemcpyHostToDevice);
  if (e == cudaSuccess) e = cudaMemcpy(d_gates, gates.data(), gates.size() * 4, cudaMemcpyHostToDevice);
  auto free_all = [&] {
    for (void* b : bufs) cudaFree(b);
  };
  if (e != cudaSuccess) {
    free_all();
    return cuda_fail(e, why, "long run: allocation or upload");
  }
  for (std::int64_t b = 0; b < B; ++b) {
    p.first_nonfinite[b] = -1;
    p.max_norm[b] = 0;
    p.final_norm[b] = NAN;
  }
  std::vector<double> hs(size_t(B * Pmax)), hm(size_t(B * Pmax));
  std::vector<std::int64_t> hf(static_cast<size_t>(B));
  Status status = Status::kOk;
  int cur = 0;
  for (std::int64_t t0 = 0; t0 < p.steps && status == Status::kOk; t0 += L) {
    const std::int64_t len = std::min(L, p.steps - t0);
    long_run_fill<<<4096, 256>>>(B, len, t0, p.dk, p.dv, p.seed, d_head, d_gates, k, v, la, lm, be, et);
    if ((e = cudaGetLastError()) != cudaSuccess) {
      status = cuda_fail(e, why, "long run: input fill launch");
      break;
    }
    RecurrentParams r;
    r.batch = B;
    r.steps = len;
    r.heads = 1;
    r.dk = p.dk;
    r.dv = p.dv;
    r.q = k;
    r.k = k;
    r.v = v;
    r.log_alpha = la;
    r.log_mu = lm;
    r.beta = be;
    r.eta = et;
    r.p_scale = p.p_alpha ? PScale::kAlpha : PScale::kOne;
    r.s0 = t0 == 0 ? nullptr : s_buf[cur];
    r.m0 = t0 == 0 ? nullptr : m_buf[cur];
    r.s_final = s_buf[1 - cur];
    r.m_final = m_buf[1 - cur];
    r.o = o;
    r.probe_interval = PI;
    r.probe_norm_s = ns;
    r.probe_norm_m = nm;
    r.probe_max_abs_o = mo;
    r.first_nonfinite = fb;
    if (Status s = run(r, nullptr, why); s != Status::kOk) {
      status = s;
      break;
    }
    cur = 1 - cur;
    const std::int64_t P = (len + PI - 1) / PI;
    if ((e = cudaDeviceSynchronize()) != cudaSuccess) {
      status = cuda_fail(e, why, "long run: recurrent kernel");
      break;
    }
    e = cudaMemcpy(hs.data(), ns, size_t(B * P) * 8, cudaMemcpyDeviceToHost);
    if (e == cudaSuccess) e = cudaMemcpy(hm.data(), nm, size_t(B * P) * 8, cudaMemcpyDeviceToHost);
    if (e == cudaSuccess) e = cudaMemcpy(hf.data(), fb, size_t(B) * 8, cudaMemcpyDeviceToHost);
    if (e != cudaSuccess) {
      status = cuda_fail(e, why, "long run: probe download");
      break;
    }
    for (std::int64_t b = 0; b < B; ++b) {
      if (hf[size_t(b)] >= 0 && p.first_nonfinite[b] < 0) p.first_nonfinite[b] = t0 + hf[size_t(b)];
      for (std::int64_t j = 0; j < P; ++j) {
        const double n = std::hypot(hs[size_t(b * P + j)], hm[size_t(b * P + j)]);
        if (std::isfinite(n)) p.max_norm[b] = std::max(p.max_norm[b], n);
        p.final_norm[b] = p.first_nonfinite[b] >= 0 ? NAN : n;
      }
    }
  }
  free_all();
  return status;
}

}  // namespace mdnstab::kernels
