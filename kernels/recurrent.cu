// Host side of the recurrent MDN forward kernel: validation, launch geometry, probe
// finalization and the host-memory convenience entry (kernels/mdn_kernels.hpp).
// Reference: src/mdnstab/recurrent_ref.hpp; tested in tests/gpu/test_gpu_recurrent.cpp.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "mdn_kernels.hpp"
#include "pass_args.hpp"
#include "recurrent_kernel.cuh"

namespace mdnstab::kernels {

namespace {

using detail::KernelArgs;

Status fail(Status s, std::string* why, const std::string& msg) {
  if (why) *why = msg;
  return s;
}

Status cuda_fail(cudaError_t e, std::string* why, const char* what) {
  return fail(Status::kCudaError, why, std::string(what) + ": " + cudaGetErrorString(e));
}

constexpr int64_t kChunkSlack = 16;  // step counters are 32-bit inside the kernel

size_t dtype_size(DType d) { return d == DType::kBF16 ? 2 : 4; }

int align16(int x) { return (x + 15) / 16 * 16; }

struct Geometry {
  int G = 16, warps = 1, cols_per_cta = 16, ctas_per_pair = 1, smem = 0, per_sm = 0;
  KernelArgs args;
};

template <int G, class InT>
void* kernel_ptr() {
  return reinterpret_cast<void*>(&detail::recurrent_fwd_kernel<G, InT>);
}

void* pick_kernel(int G, DType in) {
  if (G == 16) return in == DType::kBF16 ? kernel_ptr<16, __nv_bfloat16>() : kernel_ptr<16, float>();
  return in == DType::kBF16 ? kernel_ptr<32, __nv_bfloat16>() : kernel_ptr<32, float>();
}

// Staging layout of one buffer for `warps` warps (see recurrent_kernel.cuh).
int chunk(int G, DType in) {
  if (G == 16) return in == DType::kBF16 ? detail::chunk_of<16, __nv_bfloat16>() : detail::chunk_of<16, float>();
  return in == DType::kBF16 ? detail::chunk_of<32, __nv_bfloat16>() : detail::chunk_of<32, float>();
}
int warp_m_bytes(int G) { return G == 16 ? detail::Cfg<16>::kWarpMBytes : detail::Cfg<32>::kWarpMBytes; }

void layout(KernelArgs& a, const RecurrentParams& p, int G, int warps) {
  const int kChunk = chunk(G, p.in_dtype);
  const int es = static_cast<int>(dtype_size(p.in_dtype));
  a.warps = warps;
  a.cols_per_cta = warps * detail::kWarpCols;
  a.dkp = G * detail::kRows;
  int off = 0;
  auto take = [&off](int bytes) {
    const int at = off;
    off = align16(off + bytes);
    return at;
  };
  a.off_k = take((kChunk + 1) * a.dkp * es);
  a.off_q = take(kChunk * a.dkp * es);
  a.off_v = take(kChunk * a.cols_per_cta * es);
  a.off_la = take((kChunk + 1) * 4);
  a.off_lm = take(kChunk * 4);
  a.off_beta = take(kChunk * (p.beta_per_channel ? a.cols_per_cta : 1) * 4);
  a.off_eta = take(kChunk * (p.eta_per_channel ? a.cols_per_cta : 1) * 4);
  a.stage_bytes = off;
  const bool prescaled = G == 16 ? detail::Cfg<16>::kPrescaled : detail::Cfg<32>::kPrescaled;
  a.vec_bytes = prescaled ? (3 * kChunk + 1) * a.dkp * 4 : 0;
}

int smem_bytes(const KernelArgs& a, int G) {
  return a.warps * warp_m_bytes(G) + 2 * a.stage_bytes + detail::kTsBytes + a.vec_bytes;
}

struct DeviceInfo {
  int count = -1, sms = 0;
  std::string error;
};

const DeviceInfo& device_info() {
  static DeviceInfo info = [] {
    DeviceInfo d;
    cudaError_t e = cudaGetDeviceCount(&d.count);
    if (e != cudaSuccess) {
      d.count = 0;
      d.error = std::string("no usable CUDA device: ") + cudaGetErrorString(e);
      cudaGetLastError();  // clear the sticky-free error state
      return d;
    }
    if (d.count == 0) {
      d.error = "no CUDA device found";
      return d;
    }
    int dev = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&d.sms, cudaDevAttrMultiProcessorCount, dev);
    return d;
  }();
  return info;
}

}  // namespace

const char* to_string(Status s) {
  switch (s) {
    case Status::kOk: return "ok";
    case Status::kInvalidArgument: return "invalid argument";
    case Status::kUnsupported: return "unsupported";
    case Status::kNoDevice: return "no device";
    case Status::kCudaError: return "CUDA error";
    case Status::kNonFinite: return "non-finite state";
  }
  return "unknown";
}

int device_count(std::string* why) {
  const DeviceInfo& d = device_info();
  if (d.count <= 0 && why) *why = d.error;
  return d.count;
}

std::string device_name() {
  const DeviceInfo& d = device_info();
  if (d.count <= 0) return d.error;
  int dev = 0;
  cudaGetDevice(&dev);
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, dev) != cudaSuccess) return "unknown CUDA device";
  return std::string(prop.name) + ", " + std::to_string(prop.multiProcessorCount) + " SMs";
}

int64_t num_sequences(const RecurrentParams& p) { return p.cu_seqlens ? p.num_seqs : p.batch; }

int64_t probe_count(const RecurrentParams& p) {
  if (p.probe_interval <= 0) return 0;
  const int64_t longest = p.cu_seqlens ? p.max_seqlen : p.steps;
  return (longest + p.probe_interval - 1) / p.probe_interval;
}

Status check(const RecurrentParams& p, std::string* why) {
  auto bad = [why](const std::string& m) { return fail(Status::kInvalidArgument, why, m); };
  auto num = [](int64_t x) { return std::to_string(x); };
  if (p.batch < 1) return bad("batch = " + num(p.batch) + " must be >= 1");
  if (p.heads < 1) return bad("heads = " + num(p.heads) + " must be >= 1");
  if (p.steps < 0) return bad("steps = " + num(p.steps) + " must be >= 0");
  if (p.steps >= (int64_t{1} << 31) - kChunkSlack)
    return fail(Status::kUnsupported, why, "steps = " + num(p.steps) + " is above 2^31 - 16");
  if (p.dk < 1) return bad("dk = " + num(p.dk) + " must be >= 1");
  if (p.dv < 1) return bad("dv = " + num(p.dv) + " must be >= 1");
  if (p.dk > 256) return fail(Status::kUnsupported, why, "dk = " + num(p.dk) + " is above the kernel's limit of 256");
  if (p.dv > (int64_t{1} << 20)) return fail(Status::kUnsupported, why, "dv = " + num(p.dv) + " is above 2^20");
  if (p.heads > (int64_t{1} << 16)) return fail(Status::kUnsupported, why, "heads = " + num(p.heads) + " is above 2^16");
  if (p.steps > 0) {
    if (!p.q || !p.k || !p.v) return bad("q, k and v must be given");
    if (!p.log_alpha || !p.log_mu || !p.beta || !p.eta) return bad("log_alpha, log_mu, beta and eta must be given");
    if (!p.o) return bad("the output o must be given");
  }
  if (!(std::isnan(p.scale) || std::isfinite(p.scale))) return bad("scale = " + std::to_string(p.scale) + " is not finite");
  if (p.cu_seqlens) {
    if (p.batch != 1) return bad("batch = " + num(p.batch) + " must be 1 with cu_seqlens");
    if (p.num_seqs < 1) return bad("num_seqs = " + num(p.num_seqs) + " must be >= 1 with cu_seqlens");
    if (p.max_seqlen < 0 || p.max_seqlen > p.steps)
      return bad("max_seqlen = " + num(p.max_seqlen) + " must be in [0, steps = " + num(p.steps) + "]");
  }
  const int64_t pairs = num_sequences(p) * p.heads;
  if (pairs * ((p.dv + 7) / 8) > (int64_t{1} << 31) - 1)
    return fail(Status::kUnsupported, why, "sequences x heads x dv/8 exceeds the grid limit");
  if (p.probe_interval < 0) return bad("probe_interval = " + num(p.probe_interval) + " must be >= 0");
  if (p.probe_interval > 0) {
    if (!p.probe_norm_s || !p.probe_norm_m || !p.probe_max_abs_o || !p.first_nonfinite)
      return bad("probes on (probe_interval = " + num(p.probe_interval) +
                 ") need probe_norm_s, probe_norm_m, probe_max_abs_o and first_nonfinite");
  }
  if (p.warps_per_cta != 0 && p.warps_per_cta != 1 && p.warps_per_cta != 2 && p.warps_per_cta != 4)
    return bad("warps_per_cta = " + std::to_string(p.warps_per_cta) + " must be 0 (automatic), 1, 2 or 4");
  return Status::kOk;
}

namespace {

// Launch geometry: G from DK, then the CTA width (1, 2 or 4 warps) that puts the
// fewest warps on the busiest SM (ties: the wider CTA, which loads k and q fewer times).
Status plan(const RecurrentParams& p, Geometry& geo, std::string* why) {
  const DeviceInfo& d = device_info();
  geo.G = p.dk <= 128 ? 16 : 32;
  const int64_t pairs = num_sequences(p) * p.heads;
  void* kern = pick_kernel(geo.G, p.in_dtype);
  int64_t best_cost = -1;
  for (int w : {4, 2, 1}) {
    if (p.warps_per_cta != 0 && w != p.warps_per_cta) continue;
    KernelArgs a;
    layout(a, p, geo.G, w);
    const int smem = smem_bytes(a, geo.G);
    if (cudaError_t e = cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem); e != cudaSuccess)
      return cuda_fail(e, why, "cudaFuncSetAttribute");
    int per_sm = 0;
    if (cudaError_t e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kern, w * 32, smem); e != cudaSuccess)
      return cuda_fail(e, why, "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
    if (per_sm < 1) continue;
    const int64_t ctas_per_pair = (p.dv + a.cols_per_cta - 1) / a.cols_per_cta;
    const int64_t ctas = pairs * ctas_per_pair;
    const int64_t cost = (ctas + d.sms - 1) / d.sms * w;
    if (best_cost < 0 || cost < best_cost) {
      best_cost = cost;
      geo.warps = w;
      geo.cols_per_cta = a.cols_per_cta;
      geo.ctas_per_pair = static_cast<int>(ctas_per_pair);
      geo.smem = smem;
      geo.per_sm = per_sm;
      geo.args = a;
    }
  }
  if (best_cost < 0) return fail(Status::kUnsupported, why, "no CTA width fits on this device");
  return Status::kOk;
}

}  // namespace

Status plan_launch(const RecurrentParams& p, LaunchPlan* out, std::string* why) {
  if (Status s = check(p, why); s != Status::kOk) return s;
  if (device_count(why) <= 0) return Status::kNoDevice;
  Geometry geo;
  if (Status s = plan(p, geo, why); s != Status::kOk) return s;
  cudaFuncAttributes attr{};
  if (cudaError_t e = cudaFuncGetAttributes(&attr, pick_kernel(geo.G, p.in_dtype)); e != cudaSuccess)
    return cuda_fail(e, why, "cudaFuncGetAttributes");
  LaunchPlan lp;
  lp.lanes_per_group = geo.G;
  lp.rows_per_lane = detail::kRows;
  lp.cols_per_lane = geo.G == 16 ? detail::Cfg<16>::kCols : detail::Cfg<32>::kCols;
  lp.warps_per_cta = geo.warps;
  lp.ctas = num_sequences(p) * p.heads * geo.ctas_per_pair;
  lp.ctas_per_sm = geo.per_sm;
  lp.smem_bytes = geo.smem;
  lp.registers = attr.numRegs;
  lp.local_bytes = static_cast<int>(attr.localSizeBytes);
  lp.sms = device_info().sms;
  lp.chunk = chunk(geo.G, p.in_dtype);
  *out = lp;
  return Status::kOk;
}

Status run(const RecurrentParams& p, void* stream, std::string* why) {
  if (Status s = check(p, why); s != Status::kOk) return s;
  if (device_count(why) <= 0) return Status::kNoDevice;
  Geometry geo;
  if (Status s = plan(p, geo, why); s != Status::kOk) return s;
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  const int64_t N = num_sequences(p), pairs = N * p.heads, P = probe_count(p);

  KernelArgs& a = geo.args;
  copy_pass_args(a, p);
  a.cu_seqlens = p.cu_seqlens;
  a.beta_pc = p.beta_per_channel;
  a.eta_pc = p.eta_per_channel;
  a.ctas_per_pair = geo.ctas_per_pair;
  if (P > 0) {
    a.probe_every = static_cast<int>(std::min<int64_t>(p.probe_interval, std::max<int64_t>(p.steps, 1)));
    a.n_probes = static_cast<int>(P);
    a.probe_s2 = p.probe_norm_s;
    a.probe_m2 = p.probe_norm_m;
    a.probe_maxo = reinterpret_cast<unsigned*>(p.probe_max_abs_o);
    a.first_bad = reinterpret_cast<unsigned long long*>(p.first_nonfinite);
    const size_t n = static_cast<size_t>(pairs * P);
    cudaMemsetAsync(p.probe_norm_s, 0, n * sizeof(double), st);
    cudaMemsetAsync(p.probe_norm_m, 0, n * sizeof(double), st);
    cudaMemsetAsync(p.probe_max_abs_o, 0, n * sizeof(float), st);
  }
  if (p.probe_interval > 0)  // all ones = -1 = none, lowered by atomicMin
    cudaMemsetAsync(p.first_nonfinite, 0xff, static_cast<size_t>(pairs) * sizeof(int64_t), st);

  // plan() tried every width: raise the shared-memory limit for the one chosen.
  if (cudaError_t e = cudaFuncSetAttribute(pick_kernel(geo.G, p.in_dtype), cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           geo.smem);
      e != cudaSuccess)
    return cuda_fail(e, why, "cudaFuncSetAttribute");
  const dim3 grid(static_cast<unsigned>(pairs * geo.ctas_per_pair));
  const dim3 block(geo.warps * 32);
  if (geo.G == 16) {
    if (p.in_dtype == DType::kBF16)
      detail::recurrent_fwd_kernel<16, __nv_bfloat16><<<grid, block, geo.smem, st>>>(a);
    else
      detail::recurrent_fwd_kernel<16, float><<<grid, block, geo.smem, st>>>(a);
  } else {
    if (p.in_dtype == DType::kBF16)
      detail::recurrent_fwd_kernel<32, __nv_bfloat16><<<grid, block, geo.smem, st>>>(a);
    else
      detail::recurrent_fwd_kernel<32, float><<<grid, block, geo.smem, st>>>(a);
  }
  if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return cuda_fail(e, why, "recurrent kernel launch");
  if (P > 0) {
    const int64_t n = pairs * P;
    const int blocks = static_cast<int>(std::min<int64_t>((n + 255) / 256, 4096));
    detail::finalize_probes_kernel<<<blocks, 256, 0, st>>>(pairs, a.H, P, p.probe_interval, p.steps, p.cu_seqlens,
                                                          p.probe_norm_s, p.probe_norm_m, p.probe_max_abs_o);
    if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return cuda_fail(e, why, "probe finalize launch");
  }
  return Status::kOk;
}

namespace {

// One device allocation, freed on scope exit.
struct DevBuf {
  void* ptr = nullptr;
  DevBuf() = default;
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  ~DevBuf() {
    if (ptr) cudaFree(ptr);
  }
  cudaError_t alloc(size_t bytes) { return cudaMalloc(&ptr, std::max<size_t>(bytes, 1)); }
};

}  // namespace

Status run_host(const RecurrentParams& host, std::string* why, Algorithm alg) {
  const bool chunked = alg == Algorithm::kChunk;
  if (Status s = chunked ? check_chunk(host, why) : check(host, why); s != Status::kOk) return s;
  if (device_count(why) <= 0) return Status::kNoDevice;
  RecurrentParams d = host;
  if (host.cu_seqlens && host.max_seqlen == 0)
    for (int64_t n = 0; n < host.num_seqs; ++n)
      d.max_seqlen = std::max(d.max_seqlen, host.cu_seqlens[n + 1] - host.cu_seqlens[n]);
  const int64_t N = num_sequences(d), P = probe_count(d);
  const size_t tok = static_cast<size_t>(d.batch * d.steps * d.heads);
  const size_t es = dtype_size(d.in_dtype), os = dtype_size(d.out_dtype);
  const size_t state = static_cast<size_t>(N * d.heads * d.dk * d.dv);
  const size_t probes = static_cast<size_t>(N * d.heads * P);

  DevBuf bq, bk, bv, bla, blm, bbeta, beta_, bcu, bs0, bm0, bo, bsf, bmf, bns, bnm, bmo, bfb;
  cudaError_t e = cudaSuccess;
  // Allocates a device twin of `src` (bytes long) and copies it over.
  auto upload = [&e](DevBuf& b, const void* src, size_t bytes) -> const void* {
    if (!src || e != cudaSuccess) return nullptr;
    if ((e = b.alloc(bytes)) != cudaSuccess) return nullptr;
    e = cudaMemcpy(b.ptr, src, bytes, cudaMemcpyHostToDevice);
    return b.ptr;
  };
  auto output = [&e](DevBuf& b, const void* dst, size_t bytes) -> void* {
    if (!dst || e != cudaSuccess) return nullptr;
    if ((e = b.alloc(bytes)) != cudaSuccess) return nullptr;
    return b.ptr;
  };
  d.q = upload(bq, host.q, tok * d.dk * es);
  d.k = upload(bk, host.k, tok * d.dk * es);
  d.v = upload(bv, host.v, tok * d.dv * es);
  d.log_alpha = static_cast<const float*>(upload(bla, host.log_alpha, tok * 4));
  d.log_mu = static_cast<const float*>(upload(blm, host.log_mu, tok * 4));
  d.beta = static_cast<const float*>(upload(bbeta, host.beta, tok * (d.beta_per_channel ? d.dv : 1) * 4));
  d.eta = static_cast<const float*>(upload(beta_, host.eta, tok * (d.eta_per_channel ? d.dv : 1) * 4));
  d.cu_seqlens = static_cast<const int64_t*>(upload(bcu, host.cu_seqlens, (d.num_seqs + 1) * sizeof(int64_t)));
  d.s0 = static_cast<const float*>(upload(bs0, host.s0, state * 4));
  d.m0 = static_cast<const float*>(upload(bm0, host.m0, state * 4));
  d.o = output(bo, host.o, tok * d.dv * os);
  d.s_final = static_cast<float*>(output(bsf, host.s_final, state * 4));
  d.m_final = static_cast<float*>(output(bmf, host.m_final, state * 4));
  if (P > 0) {
    d.probe_norm_s = static_cast<double*>(output(bns, host.probe_norm_s, probes * 8));
    d.probe_norm_m = static_cast<double*>(output(bnm, host.probe_norm_m, probes * 8));
    d.probe_max_abs_o = static_cast<float*>(output(bmo, host.probe_max_abs_o, probes * 4));
  }
  if (d.probe_interval > 0)
    d.first_nonfinite = static_cast<int64_t*>(output(bfb, host.first_nonfinite, N * d.heads * sizeof(int64_t)));
  if (e != cudaSuccess) return cuda_fail(e, why, "device allocation or upload");

  if (Status s = chunked ? run_chunk(d, nullptr, nullptr, why) : run(d, nullptr, why); s != Status::kOk) return s;
  if ((e = cudaDeviceSynchronize()) != cudaSuccess)
    return cuda_fail(e, why, chunked ? "chunkwise kernels" : "recurrent kernel");

  auto download = [&e](void* dst, const void* src, size_t bytes) {
    if (dst && src && e == cudaSuccess) e = cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost);
  };
  download(host.o, d.o, tok * d.dv * os);
  download(host.s_final, d.s_final, state * 4);
  download(host.m_final, d.m_final, state * 4);
  if (P > 0) {
    download(host.probe_norm_s, d.probe_norm_s, probes * 8);
    download(host.probe_norm_m, d.probe_norm_m, probes * 8);
    download(host.probe_max_abs_o, d.probe_max_abs_o, probes * 4);
  }
  if (d.probe_interval > 0) download(host.first_nonfinite, d.first_nonfinite, N * d.heads * sizeof(int64_t));
  if (e != cudaSuccess) return cuda_fail(e, why, "download of the outputs");

  if (d.probe_interval > 0) {
    int64_t first = -1, at = -1;
    for (int64_t i = 0; i < N * d.heads; ++i)
      if (host.first_nonfinite[i] >= 0 && (first < 0 || host.first_nonfinite[i] < first)) {
        first = host.first_nonfinite[i];
        at = i;
      }
    if (first >= 0)
      return fail(Status::kNonFinite, why,
                  "the state became non-finite at step " + std::to_string(first) + " of sequence " +
                      std::to_string(at / d.heads) + ", head " + std::to_string(at % d.heads));
  }
  return Status::kOk;
}

}  // namespace mdnstab::kernels
