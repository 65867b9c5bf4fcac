// The exact recurrent MDN forward kernel (DESIGN.md section 2), one token at a time:
//   w = S^T p - v;  M = mu M + eta k^ w^T;  S = alpha S - beta M;  o = S^T (scale q^).
// Reference: src/mdnstab/recurrent_ref.hpp; tested in tests/gpu/test_gpu_recurrent.cpp.
// Layout, versions and latency model: reports/bench/recurrent-gpu.md (v3; v2 is kept in
// kernels/dev/recurrent_v2.cuh).
//
// Each warp owns 8 whole value columns of one (sequence, head): value columns evolve
// independently, so warps never wait for each other inside a chunk. A column group of C
// columns is spread over G lanes, each lane holding kRows consecutive key rows:
//   DK <= 128: G = 16, C = 4, S and M in registers;
//   DK <= 256: G = 32, C = 8, S in registers, M in the warp's slice of shared memory.
// The two reductions over DK of one token, o_t = S_t^T q^_t and S_t^T p_{t+1} (the w of
// the next token), are fused into one transpose-reduce over the G lanes, so a token
// costs one shuffle round trip. Inputs do not depend on the state: kChunk tokens at a
// time are copied with cp.async into a second staging buffer while one is consumed.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cfloat>
#include <cstdint>

// Chunk lengths (tokens staged at a time); compile-time knobs for kernel experiments.
#ifndef MDNSTAB_G16_CHUNK
#define MDNSTAB_G16_CHUNK 24
#endif
#ifndef MDNSTAB_MAX_CHUNK
#define MDNSTAB_MAX_CHUNK (MDNSTAB_G16_CHUNK > 16 ? MDNSTAB_G16_CHUNK : 16)
#endif

namespace mdnstab::kernels::detail {

constexpr int kRows = 8;       // key rows per lane
constexpr int kWarpCols = 8;   // value columns per warp
constexpr int kMaxChunk = MDNSTAB_MAX_CHUNK;  // tokens staged per chunk (chunk_of)
constexpr int kMaxWarps = 4;   // warps per CTA (1, 2 or 4, chosen per shape)
constexpr int kMinCtas = 3;    // CTAs of kMaxWarps per SM the register budget allows
constexpr unsigned kFull = 0xffffffffu;

// Per-configuration constants: lanes per column group G, columns per lane C, where M lives.
template <int G>
struct Cfg {
  static_assert(G == 16 || G == 32, "column groups span 16 or 32 lanes");
  static constexpr int kCols = G == 16 ? 4 : 8;
  static constexpr bool kMInRegs = G == 16;
  static constexpr int kWarpMBytes = kMInRegs ? 0 : kRows * kCols * 32 * 4;  // 8 KiB for G = 32
  // DK <= 128: the norm pass also writes c = eta k^, p = rho_p k^ and scale q^ in fp32
  // (lane-interleaved), so a token needs no unpacking or scaling. DK <= 256 has no room
  // for it beside M and reads the staged raw vectors.
  static constexpr bool kPrescaled = G == 16;
  static_assert((32 / G) * kCols == kWarpCols, "a warp covers kWarpCols columns");
};
// Tokens per chunk: two raw staging buffers (and the prescaled vectors, or M) must fit
// with 3 CTAs per SM; fp32 staging is twice as large as bf16.
template <int G, class InT>
__host__ __device__ constexpr int chunk_of() {
  return sizeof(InT) == 2 ? (G == 16 ? MDNSTAB_G16_CHUNK : 16) : 8;
}

struct KernelArgs {
  int H = 0, DK = 0, DV = 0;
  int64_t T = 0;                       // tokens per batch row of the [B,T,...] layout
  const int64_t* cu_seqlens = nullptr; // [N+1] or null
  const void* q = nullptr;             // [B,T,H,DK]
  const void* k = nullptr;             // [B,T,H,DK]
  const void* v = nullptr;             // [B,T,H,DV]
  const float* log_alpha = nullptr;    // [B,T,H]
  const float* log_mu = nullptr;       // [B,T,H]
  const float* beta = nullptr;         // [B,T,H] or [B,T,H,DV]
  const float* eta = nullptr;          // [B,T,H] or [B,T,H,DV]
  int beta_pc = 0, eta_pc = 0, p_alpha = 1, l2norm = 1, out_bf16 = 0;
  float scale = 1.f;
  const float* s0 = nullptr;  // [N,H,DK,DV]
  const float* m0 = nullptr;  // [N,H,DK,DV]
  float* s_final = nullptr;   // [N,H,DK,DV]
  float* m_final = nullptr;   // [N,H,DK,DV]
  void* o = nullptr;          // [B,T,H,DV]
  // Probes: sums of squares (made norms by finalize_probes), max |o| as float bits,
  // first non-finite step as an unsigned 64-bit minimum (all ones = none = -1).
  int probe_every = 0, n_probes = 0;  // steps < 2^31 (check())
  double* probe_s2 = nullptr;              // [N,H,P]
  double* probe_m2 = nullptr;              // [N,H,P]
  unsigned* probe_maxo = nullptr;          // [N,H,P]
  unsigned long long* first_bad = nullptr; // [N,H]
  // Geometry: CTA = `warps` warps over cols_per_cta value columns of one pair.
  int warps = 1, ctas_per_pair = 1, cols_per_cta = 8, dkp = 128;
  // Staging layout in bytes of one raw buffer (two are used), and of the buffer of
  // prescaled fp32 vectors (Cfg::kPrescaled): c [kChunk], p [kChunk+1], q [kChunk].
  int stage_bytes = 0, off_k = 0, off_q = 0, off_v = 0, off_la = 0, off_lm = 0, off_beta = 0, off_eta = 0;
  int vec_bytes = 0;
};

// Per-token scalars of the staged chunk, computed once per chunk.
struct TokScalars {
  float kc[kMaxChunk + 1];    // eta / (|k| + 1e-6) (eta 1 when per column): c = raw k * kc
  float kp[kMaxChunk + 1];    // kinv * rho_p: p = raw k * kp
  float qinv[kMaxChunk];      // scale / (|q| + 1e-6)
  float alpha[kMaxChunk];
  float mu[kMaxChunk];
  float one;                  // 1.0: the per-column eta of a scalar-eta run (folded into k^)
};
constexpr int kTsBytes = (sizeof(TokScalars) + 15) / 16 * 16;

__device__ __forceinline__ float to_f(float x) { return x; }
__device__ __forceinline__ float to_f(__nv_bfloat16 x) { return __bfloat162float(x); }

// Eight consecutive staged elements (16-byte aligned), times f.
__device__ __forceinline__ void load8(const float* p, float f, float (&x)[8]) {
  const float4 a = reinterpret_cast<const float4*>(p)[0];
  const float4 b = reinterpret_cast<const float4*>(p)[1];
  x[0] = a.x * f; x[1] = a.y * f; x[2] = a.z * f; x[3] = a.w * f;
  x[4] = b.x * f; x[5] = b.y * f; x[6] = b.z * f; x[7] = b.w * f;
}
__device__ __forceinline__ void load8(const __nv_bfloat16* p, float f, float (&x)[8]) {
  const uint4 u = *reinterpret_cast<const uint4*>(p);
  const unsigned w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {  // bf16 is the high half of an fp32: element 2i is the low half-word
    x[2 * i] = __uint_as_float(w[i] << 16) * f;
    x[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u) * f;
  }
}

// A lane's 8 rows of a prescaled fp32 vector: two 16-byte loads G float4 apart.
template <int G>
__device__ __forceinline__ void load_vec(const float* buf, int t, int g, float (&x)[8]) {
  const float4* p = reinterpret_cast<const float4*>(buf) + t * 2 * G + g;
  const float4 a = p[0], b = p[G];
  x[0] = a.x; x[1] = a.y; x[2] = a.z; x[3] = a.w;
  x[4] = b.x; x[5] = b.y; x[6] = b.z; x[7] = b.w;
}
template <int G>
__device__ __forceinline__ void load_vec2(const float4* p, float (&x)[8]) {
  const float4 a = p[0], b = p[G];
  x[0] = a.x; x[1] = a.y; x[2] = a.z; x[3] = a.w;
  x[4] = b.x; x[5] = b.y; x[6] = b.z; x[7] = b.w;
}

template <int A>
__device__ __forceinline__ void cp_async(uint32_t dst, const void* src) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], %2;\n" ::"r"(dst), "l"(src), "n"(A) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_all;\n" ::: "memory"); }

template <int A>
__device__ void copy_rows_async(char* dst, int dst_stride, const char* src, int64_t src_stride, int row_bytes,
                                int n_rows, int tid, int nt) {
  const int ppr = row_bytes / A;  // pieces per row
  const uint32_t d0 = static_cast<uint32_t>(__cvta_generic_to_shared(dst));
  if ((ppr & (ppr - 1)) == 0) {  // the usual case (DK, DV powers of two): shifts, no division
    const int sh = __ffs(ppr) - 1;
    for (int i = tid; i < n_rows * ppr; i += nt) {
      const int r = i >> sh, c = i & (ppr - 1);
      cp_async<A>(d0 + r * dst_stride + c * A, src + r * src_stride + c * A);
    }
    return;
  }
  for (int i = tid; i < n_rows * ppr; i += nt) {
    const int r = i / ppr, c = i - r * ppr;
    cp_async<A>(d0 + r * dst_stride + c * A, src + r * src_stride + c * A);
  }
}

// Stages n_rows rows of row_bytes bytes (row r at src + r * src_stride) at dst + r *
// dst_stride; rows from n_valid on (past the sequence's end) are zero-filled over
// their whole dst_stride. Uses the widest cp.async that the alignment of src,
// src_stride and row_bytes allows; rows aligned to 2 bytes only (bf16, odd sizes)
// fall back to plain loads.
__device__ void stage_rows(char* dst, int dst_stride, const char* src, int64_t src_stride, int row_bytes,
                           int n_rows, int n_valid, int tid, int nt) {
  if (n_valid > 0) {
    const uint64_t al = reinterpret_cast<uintptr_t>(src) | static_cast<uint64_t>(src_stride) |
                        static_cast<uint64_t>(row_bytes);
    if (al % 16 == 0) {
      copy_rows_async<16>(dst, dst_stride, src, src_stride, row_bytes, n_valid, tid, nt);
    } else if (al % 8 == 0) {
      copy_rows_async<8>(dst, dst_stride, src, src_stride, row_bytes, n_valid, tid, nt);
    } else if (al % 4 == 0) {
      copy_rows_async<4>(dst, dst_stride, src, src_stride, row_bytes, n_valid, tid, nt);
    } else {
      const int ppr = row_bytes / 2;
      for (int i = tid; i < n_valid * ppr; i += nt) {
        const int r = i / ppr, c = i - r * ppr;
        *reinterpret_cast<uint16_t*>(dst + r * dst_stride + c * 2) =
            *reinterpret_cast<const uint16_t*>(src + r * src_stride + c * 2);
      }
    }
  }
  // dst_stride is a multiple of 4 bytes (of 16 for the k, q and v rows).
  unsigned* z = reinterpret_cast<unsigned*>(dst + n_valid * dst_stride);
  for (int i = tid; i < (n_rows - n_valid) * dst_stride / 4; i += nt) z[i] = 0u;
}

// One halving round of transpose_reduce: lanes with the `Off` bit set keep the upper
// half of the first 2*Half values and send the lower half to their partner, and vice versa.
template <int Half, int Off, int N>
__device__ __forceinline__ void reduce_round(float (&v)[N], int lane) {
  const bool up = (lane & Off) != 0;
#pragma unroll
  for (int i = 0; i < Half; ++i) {
    const float send = up ? v[i] : v[i + Half];
    const float keep = up ? v[i + Half] : v[i];
    v[i] = keep + __shfl_xor_sync(kFull, send, Off);
  }
}
template <int Half, int Off, int N>
__device__ __forceinline__ void halving_rounds(float (&v)[N], int lane) {
  if constexpr (Half >= 1) {
    reduce_round<Half, Off, N>(v, lane);
    halving_rounds<Half / 2, Off / 2, N>(v, lane);
  }
}
template <int Off>
__device__ __forceinline__ void butterfly_rounds(float& x) {
  if constexpr (Off >= 1) {
    x += __shfl_xor_sync(kFull, x, Off);
    butterfly_rounds<Off / 2>(x);
  }
}

// Sum over the G lanes of a column group of N values per lane (N <= G, powers of two),
// halving the vector at each shuffle round: N - 1 + log2(G/N) shuffles instead of
// N log2(G). The lane ends with value index (lane % G) / (G / N) in v[0] (G / N lanes
// agree). Written as templates so that v stays in registers (a loop the compiler
// declines to unroll sends v to local memory).
template <int G, int N>
__device__ __forceinline__ void transpose_reduce(float (&v)[N], int lane) {
  static_assert(N >= 2 && N <= G && (N & (N - 1)) == 0, "N values, a power of two <= G");
  halving_rounds<N / 2, G / 2, N>(v, lane);
  butterfly_rounds<G / (2 * N)>(v[0]);
}

// Sum of squares of x[0..n) without overflow of the fp32 squares: scaled by the
// largest magnitude, accumulated in fp32 (each term <= 1), rescaled in fp64. NaN or
// inf elements make the result NaN or inf.
__device__ __forceinline__ double sum_squares_scaled(float amax, float acc_of_scaled) {
  if (amax >= FLT_MIN && amax <= FLT_MAX) return static_cast<double>(acc_of_scaled) * amax * amax;
  return static_cast<double>(acc_of_scaled);
}

__device__ __forceinline__ double warp_sum(double x) {
#pragma unroll
  for (int off = 16; off > 0; off /= 2) x += __shfl_xor_sync(kFull, x, off);
  return x;
}
__device__ __forceinline__ unsigned warp_max(unsigned x) {
#pragma unroll
  for (int off = 16; off > 0; off /= 2) x = max(x, __shfl_xor_sync(kFull, x, off));
  return x;
}
__device__ __forceinline__ unsigned warp_min(unsigned x) {
#pragma unroll
  for (int off = 16; off > 0; off /= 2) x = min(x, __shfl_xor_sync(kFull, x, off));
  return x;
}

// Copies chunk `c` (tokens c*kChunk ..) of one pair's inputs into a staging buffer:
// kChunk + 1 rows of k and log_alpha (the extra token feeds p_{t+1} of the chunk's last
// token), kChunk rows of q, v, log_mu, beta, eta.
template <int G, class InT>
__device__ void issue_chunk(const KernelArgs& a, char* stg, int64_t bt0, int h, int len, int c, int col0g, int ncols,
                            int tid, int nt) {
  constexpr int es = sizeof(InT);
  constexpr int kChunk = chunk_of<G, InT>();
  const int tok0 = c * kChunk;
  const int nk = min(kChunk + 1, len - tok0);
  const int nq = min(nk, kChunk);
  const int64_t row = (bt0 + tok0) * a.H + h;  // [B*T*H] row of the chunk's first token
  const int64_t H = a.H;
  stage_rows(stg + a.off_k, a.dkp * es, static_cast<const char*>(a.k) + row * a.DK * es, H * a.DK * es, a.DK * es,
             kChunk + 1, nk, tid, nt);
  stage_rows(stg + a.off_q, a.dkp * es, static_cast<const char*>(a.q) + row * a.DK * es, H * a.DK * es, a.DK * es,
             kChunk, nq, tid, nt);
  stage_rows(stg + a.off_v, a.cols_per_cta * es, static_cast<const char*>(a.v) + (row * a.DV + col0g) * es,
             H * a.DV * es, ncols * es, kChunk, nq, tid, nt);
  // Gates are fp32, one per token (strided by H) or one per value column.
  stage_rows(stg + a.off_la, 4, reinterpret_cast<const char*>(a.log_alpha + row), H * 4, 4, kChunk + 1, nk, tid, nt);
  stage_rows(stg + a.off_lm, 4, reinterpret_cast<const char*>(a.log_mu + row), H * 4, 4, kChunk, nq, tid, nt);
  if (a.beta_pc)
    stage_rows(stg + a.off_beta, a.cols_per_cta * 4, reinterpret_cast<const char*>(a.beta + row * a.DV + col0g),
               H * a.DV * 4, ncols * 4, kChunk, nq, tid, nt);
  else
    stage_rows(stg + a.off_beta, 4, reinterpret_cast<const char*>(a.beta + row), H * 4, 4, kChunk, nq, tid, nt);
  if (a.eta_pc)
    stage_rows(stg + a.off_eta, a.cols_per_cta * 4, reinterpret_cast<const char*>(a.eta + row * a.DV + col0g),
               H * a.DV * 4, ncols * 4, kChunk, nq, tid, nt);
  else
    stage_rows(stg + a.off_eta, 4, reinterpret_cast<const char*>(a.eta + row), H * 4, 4, kChunk, nq, tid, nt);
}

// Per-token scalars of a landed chunk: norms of k and q (4 lanes per vector, 8 vectors
// per warp at a time, so that the shuffle round trips of many vectors overlap), gates; with Cfg::kPrescaled also the fp32 vectors c = eta k^
// (scalar eta), p = rho_p k^ and scale q^ of the chunk. Lane `sub` of a vector's 4 lanes
// handles the 8-row groups g = sub + 4m (16-byte loads); prescaled row g*8 + r of token t
// is stored as float4 [t][r / 4][g], so that the G lanes' two 16-byte loads of a token
// are contiguous.
template <int G, class InT>
__device__ void prep_chunk(const KernelArgs& a, const char* stg, float* vec, TokScalars& ts, int warp, int lane) {
  constexpr int kChunk = chunk_of<G, InT>();
  constexpr int kVecs = 2 * kChunk + 1;  // kChunk + 1 rows of k, kChunk rows of q
  constexpr int kPer = G / 4;            // 8-row groups per lane (dkp = 8 G rows)
  const InT* kr = reinterpret_cast<const InT*>(stg + a.off_k);
  const InT* qr = reinterpret_cast<const InT*>(stg + a.off_q);
  const float* la = reinterpret_cast<const float*>(stg + a.off_la);
  const float* lm = reinterpret_cast<const float*>(stg + a.off_lm);
  const float* eta = reinterpret_cast<const float*>(stg + a.off_eta);
  const int grp = lane >> 2, sub = lane & 3;
  for (int base = warp * 8; base < kVecs; base += a.warps * 8) {
    const int vi = base + grp;
    const bool live = vi < kVecs;
    const bool isk = vi <= kChunk;
    const int r = isk ? vi : vi - kChunk - 1;
    const InT* x = (isk ? kr : qr) + (live ? r : 0) * a.dkp;
    // Rows past DK are zero in the staging buffer: they add nothing and stay zero.
    float e[Cfg<G>::kPrescaled ? kPer : 1][8];
    float ss = 0.f;
#pragma unroll
    for (int m = 0; m < kPer; ++m) {
      float y[8];
      load8(x + (sub + 4 * m) * kRows, 1.f, y);
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        ss = fmaf(y[j], y[j], ss);
        if constexpr (Cfg<G>::kPrescaled) e[m][j] = y[j];
      }
    }
    ss += __shfl_xor_sync(kFull, ss, 2);
    ss += __shfl_xor_sync(kFull, ss, 1);
    if (!live) continue;
    const float inv = a.l2norm ? 1.f / (sqrtf(ss) + 1e-6f) : 1.f;
    const float kp = a.p_alpha ? inv * expf(la[r]) : inv;
    const float qinv = inv * a.scale;
    if (sub == 0) {
      if (isk) {
        ts.kc[r] = (a.eta_pc || r >= kChunk) ? inv : inv * eta[r];
        ts.kp[r] = kp;
      } else {
        ts.qinv[r] = qinv;
      }
    }
    if constexpr (Cfg<G>::kPrescaled) {
      float4* v4 = reinterpret_cast<float4*>(vec);
      auto put = [&](int base4, float f, int m) {  // token slot base4 (float4 units), group sub + 4m
        const int g = sub + 4 * m;
        v4[base4 + g] = make_float4(e[m][0] * f, e[m][1] * f, e[m][2] * f, e[m][3] * f);
        v4[base4 + G + g] = make_float4(e[m][4] * f, e[m][5] * f, e[m][6] * f, e[m][7] * f);
      };
#pragma unroll
      for (int m = 0; m < kPer; ++m) {
        if (isk) {
          put((kChunk + r) * 2 * G, kp, m);  // p rows: kChunk + 1 tokens after the c rows
          if (r < kChunk) put(r * 2 * G, a.eta_pc ? inv : inv * eta[r], m);
        } else {
          put((2 * kChunk + 1 + r) * 2 * G, qinv, m);
        }
      }
    }
  }
  const int tid = warp * 32 + lane;
  if (tid < kChunk) {
    ts.alpha[tid] = expf(la[tid]);
    ts.mu[tid] = expf(lm[tid]);
  }
}

// Rows r of the lane's M: registers (G = 16) or the warp's shared slice laid out
// [kRows * C / 4][32 lanes] float4, so each warp access is 512 contiguous bytes.
template <int G>
struct MState {
  static constexpr int C = Cfg<G>::kCols;
  static constexpr int kQuads = C / 4;
  float reg[Cfg<G>::kMInRegs ? kRows : 1][Cfg<G>::kMInRegs ? C : 1];
  float4* sh = nullptr;  // the lane's first float4

  __device__ __forceinline__ void load(int r, float (&m)[C]) const {
    if constexpr (Cfg<G>::kMInRegs) {
#pragma unroll
      for (int j = 0; j < C; ++j) m[j] = reg[r][j];
    } else {
#pragma unroll
      for (int qd = 0; qd < kQuads; ++qd) {
        const float4 x = sh[(r * kQuads + qd) * 32];
        m[4 * qd] = x.x; m[4 * qd + 1] = x.y; m[4 * qd + 2] = x.z; m[4 * qd + 3] = x.w;
      }
    }
  }
  __device__ __forceinline__ void store(int r, const float (&m)[C]) {
    if constexpr (Cfg<G>::kMInRegs) {
#pragma unroll
      for (int j = 0; j < C; ++j) reg[r][j] = m[j];
    } else {
#pragma unroll
      for (int qd = 0; qd < kQuads; ++qd)
        sh[(r * kQuads + qd) * 32] = make_float4(m[4 * qd], m[4 * qd + 1], m[4 * qd + 2], m[4 * qd + 3]);
    }
  }
};

template <int G, class InT>
__global__ void __launch_bounds__(kMaxWarps * 32, kMinCtas) recurrent_fwd_kernel(const KernelArgs a) {
  constexpr int C = Cfg<G>::kCols;   // value columns per lane
  constexpr int NV = 2 * C;          // values reduced per token: [o_0..o_C-1, w_0..w_C-1]
  constexpr int kSpread = G / NV;    // lanes that end up holding the same reduced value
  constexpr int kChunk = chunk_of<G, InT>();
  extern __shared__ __align__(16) char smem[];

  const int tid = threadIdx.x, nt = blockDim.x;
  const int lane = tid & 31, warp = tid >> 5;
  const int pair = blockIdx.x / a.ctas_per_pair;  // n * H + h
  const int slice = blockIdx.x - pair * a.ctas_per_pair;
  const int n = pair / a.H, h = pair - n * a.H;
  const int col0g = slice * a.cols_per_cta;  // first value column of the CTA
  const int ncols = min(a.cols_per_cta, a.DV - col0g);

  // [B*T] row of the sequence's first token, and its length (< 2^31, see check()).
  int64_t bt0;
  int len;
  if (a.cu_seqlens) {
    bt0 = a.cu_seqlens[n];
    len = static_cast<int>(a.cu_seqlens[n + 1] - bt0);
  } else {
    bt0 = static_cast<int64_t>(n) * a.T;
    len = static_cast<int>(a.T);
  }

  const int g = lane % G;   // row group: rows g*kRows .. g*kRows + 7
  const int hg = lane / G;  // column group within the warp
  const int wcol = warp * kWarpCols + hg * C;  // CTA-local first column of the lane's group
  // After transpose_reduce the lane holds value my_x: o_{my_x} (my_x < C) or w_{my_x - C}.
  const int my_x = g / kSpread;
  const bool is_w = my_x >= C;
  const int jj = my_x % C;
  const int my_col = col0g + wcol + jj;  // global column of the value the lane holds
  const bool stores_o = !is_w && my_col < a.DV && g % kSpread == 0;
  const bool probes = a.probe_every > 0;
  const bool probe_o = probes && !is_w && my_col < a.DV;

  // Shared memory: [M slices of the warps][raw staging x2][TokScalars][prescaled vectors].
  MState<G> M;
  M.sh = reinterpret_cast<float4*>(smem) + warp * (Cfg<G>::kWarpMBytes / 16) + lane;
  char* raw_base = smem + a.warps * Cfg<G>::kWarpMBytes;
  TokScalars& ts = *reinterpret_cast<TokScalars*>(raw_base + 2 * a.stage_bytes);
  float* vec = reinterpret_cast<float*>(raw_base + 2 * a.stage_bytes + kTsBytes);
  auto raw = [&](int c) { return raw_base + (c & 1) * a.stage_bytes; };

  // Zero both raw buffers once: padding rows (>= DK) and columns (>= ncols) stay zero.
  for (int i = tid; i < 2 * a.stage_bytes / 16; i += nt)
    reinterpret_cast<uint4*>(raw_base)[i] = make_uint4(0, 0, 0, 0);
  if (tid == 0) ts.one = 1.f;
  __syncthreads();

  const int n_chunks = (len + kChunk - 1) / kChunk;
  if (n_chunks > 0) issue_chunk<G, InT>(a, raw(0), bt0, h, len, 0, col0g, ncols, tid, nt);
  cp_async_commit();

  // Initial state: S in registers, M in registers or the warp's shared slice.
  float S[kRows][C];  // [rows g*8+r][cols wcol+j]
  const int64_t state0 = static_cast<int64_t>(pair) * a.DK * a.DV;
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int i = g * kRows + r;
    float mrow[C];
#pragma unroll
    for (int j = 0; j < C; ++j) {
      const int col = col0g + wcol + j;
      const bool in = i < a.DK && col < a.DV;
      const int64_t idx = state0 + static_cast<int64_t>(i) * a.DV + col;
      S[r][j] = (in && a.s0) ? a.s0[idx] : 0.f;
      mrow[j] = (in && a.m0) ? a.m0[idx] : 0.f;
    }
    M.store(r, mrow);
  }

  cp_async_wait_all();
  __syncthreads();
  if (n_chunks > 0) prep_chunk<G, InT>(a, raw(0), vec, ts, warp, lane);
  __syncthreads();

  // Probe state of the lane.
  unsigned maxo = 0;  // largest |o| bits since the last probe
  unsigned bad = 0;   // first non-finite step, 0 = none
  int countdown = a.probe_every;  // steps to the next probe (probe_every < 2^31)
  int probe_idx = 0;

  // w of the first token: S_0^T p_{t0}.
  float red = 0.f;
  if (n_chunks > 0) {
    float kn[kRows];
    if constexpr (Cfg<G>::kPrescaled)
      load_vec<G>(vec + kChunk * a.dkp, 0, g, kn);
    else
      load8(reinterpret_cast<const InT*>(raw(0) + a.off_k) + g * kRows, ts.kp[0], kn);
    float vals[NV];
#pragma unroll
    for (int j = 0; j < C; ++j) {
      vals[j] = 0.f;
      float acc = 0.f;
#pragma unroll
      for (int r = 0; r < kRows; ++r) acc = fmaf(S[r][j], kn[r], acc);
      vals[C + j] = acc;
    }
    transpose_reduce<G, NV>(vals, lane);
    red = vals[0];
  }

  // Output pointer of the lane's column, one token (H * DV elements) apart.
  const int64_t o_stride = static_cast<int64_t>(a.H) * a.DV * (a.out_bf16 ? 2 : 4);
  char* optr = static_cast<char*>(a.o) + ((bt0 * a.H + h) * static_cast<int64_t>(a.DV) + my_col) * (a.out_bf16 ? 2 : 4);
  const int own_col = wcol + jj;  // CTA-local column of the lane's reduced value
  const int beta_step = a.beta_pc ? a.cols_per_cta : 1;

  for (int c = 0; c < n_chunks; ++c) {
    const char* stg = raw(c);
    if (c + 1 < n_chunks) issue_chunk<G, InT>(a, raw(c + 1), bt0, h, len, c + 1, col0g, ncols, tid, nt);
    cp_async_commit();
    // Per-token pointers, advanced by one token per step (no address arithmetic inside).
    const InT* sk = reinterpret_cast<const InT*>(stg + a.off_k) + g * kRows;  // raw k rows (G = 32)
    const InT* sq = reinterpret_cast<const InT*>(stg + a.off_q) + g * kRows;  // raw q rows (G = 32)
    const float4* vc = reinterpret_cast<const float4*>(vec) + g;               // prescaled (G = 16)
    const float4* vp = vc + 2 * G * kChunk + 2 * G;
    const float4* vq = vc + 2 * G * (2 * kChunk + 1);
    const InT* own_v = reinterpret_cast<const InT*>(stg + a.off_v) + own_col;
    const float* own_eta = a.eta_pc ? reinterpret_cast<const float*>(stg + a.off_eta) + own_col : &ts.one;
    const int eta_step = a.eta_pc ? a.cols_per_cta : 0;
    const float* sbeta = reinterpret_cast<const float*>(stg + a.off_beta) + (a.beta_pc ? wcol : 0);
    const int ns = min(kChunk, len - c * kChunk);

    for (int s = 0; s < ns; ++s) {
      // w_t = S_{t-1}^T p_t - v_t on the owner lanes, times eta per column; broadcast.
      const float ewown = *own_eta * (red - to_f(*own_v));
      own_v += a.cols_per_cta;
      own_eta += eta_step;
      float ew[C];
#pragma unroll
      for (int j = 0; j < C; ++j) ew[j] = __shfl_sync(kFull, ewown, hg * G + (C + j) * kSpread);

      const float alpha = ts.alpha[s], mu = ts.mu[s];
      float kc[kRows], qv[kRows], kn[kRows], nb[C];
      if constexpr (Cfg<G>::kPrescaled) {
        load_vec2<G>(vc, kc);  // eta k^_t (scalar eta)
        load_vec2<G>(vq, qv);  // scale q^_t
        load_vec2<G>(vp, kn);  // p_{t+1}
        vc += 2 * G;
        vq += 2 * G;
        vp += 2 * G;
      } else {
        load8(sk, ts.kc[s], kc);  // eta k^_t (scalar eta)
        load8(sq, ts.qinv[s], qv);
        load8(sk + a.dkp, ts.kp[s + 1], kn);
        sk += a.dkp;
        sq += a.dkp;
      }
      if (a.beta_pc) {
#pragma unroll
        for (int qd = 0; qd < C / 4; ++qd) {
          const float4 b = reinterpret_cast<const float4*>(sbeta)[qd];
          nb[4 * qd] = b.x; nb[4 * qd + 1] = b.y; nb[4 * qd + 2] = b.z; nb[4 * qd + 3] = b.w;
        }
      } else {
        const float b = *sbeta;
#pragma unroll
        for (int j = 0; j < C; ++j) nb[j] = b;
      }
      sbeta += beta_step;

      float vals[NV];  // [o partials, w partials]
#pragma unroll
      for (int j = 0; j < NV; ++j) vals[j] = 0.f;
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        float m[C];
        M.load(r, m);
#pragma unroll
        for (int j = 0; j < C; ++j) {
          m[j] = fmaf(kc[r], ew[j], mu * m[j]);                  // M = mu M + eta k^ w^T
          const float sn = fmaf(-nb[j], m[j], alpha * S[r][j]);  // S = alpha S - beta M
          S[r][j] = sn;
          vals[j] = fmaf(sn, qv[r], vals[j]);          // o partial
          vals[C + j] = fmaf(sn, kn[r], vals[C + j]);  // next w partial
        }
        M.store(r, m);
      }
      transpose_reduce<G, NV>(vals, lane);

      const int step = c * kChunk + s + 1;
      red = vals[0];  // w lanes: S_t^T p_{t+1}; o lanes: o_t
      if (stores_o) {
        if (a.out_bf16)
          *reinterpret_cast<__nv_bfloat16*>(optr) = __float2bfloat16_rn(red);
        else
          *reinterpret_cast<float*>(optr) = red;
      }
      optr += o_stride;

      if (probes) {
        if (probe_o) {
          // Any non-finite S or M element reaches o_t through 0 * inf = NaN, and a
          // non-finite w reaches M in every row, so checking o is checking everything.
          const unsigned bits = __float_as_uint(red) & 0x7fffffffu;  // |o|; NaN > inf > finite
          maxo = max(maxo, bits);
          if (bits >= 0x7f800000u && bad == 0) bad = static_cast<unsigned>(step);
        }
        if (--countdown == 0 || step == len) {
          countdown = a.probe_every;
          float as = 0.f, am = 0.f;
#pragma unroll
          for (int r = 0; r < kRows; ++r) {
            float m[C];
            M.load(r, m);
#pragma unroll
            for (int j = 0; j < C; ++j) {
              as = fmaxf(as, fabsf(S[r][j]));
              am = fmaxf(am, fabsf(m[j]));
            }
          }
          const float is = (as >= FLT_MIN && as <= FLT_MAX) ? 1.f / as : 1.f;
          const float im = (am >= FLT_MIN && am <= FLT_MAX) ? 1.f / am : 1.f;
          float accs = 0.f, accm = 0.f;
#pragma unroll
          for (int r = 0; r < kRows; ++r) {
            float m[C];
            M.load(r, m);
#pragma unroll
            for (int j = 0; j < C; ++j) {
              const float ys = S[r][j] * is, ym = m[j] * im;
              accs = fmaf(ys, ys, accs);
              accm = fmaf(ym, ym, accm);
            }
          }
          const double s2 = warp_sum(sum_squares_scaled(as, accs));
          const double m2 = warp_sum(sum_squares_scaled(am, accm));
          const unsigned mo = warp_max(maxo);
          maxo = 0;
          if (lane == 0 && probe_idx < a.n_probes) {
            const int64_t pi = static_cast<int64_t>(pair) * a.n_probes + probe_idx;
            atomicAdd(a.probe_s2 + pi, s2);
            atomicAdd(a.probe_m2 + pi, m2);
            atomicMax(a.probe_maxo + pi, mo);
          }
          ++probe_idx;
        }
      }
    }

    cp_async_wait_all();
    __syncthreads();  // chunk c+1 landed; every warp is done with chunk c
    if (c + 1 < n_chunks) prep_chunk<G, InT>(a, raw(c + 1), vec, ts, warp, lane);
    __syncthreads();
  }

  if (probes) {
    const unsigned first = warp_min(bad == 0 ? 0xffffffffu : bad);
    if (lane == 0 && first != 0xffffffffu) atomicMin(a.first_bad + pair, static_cast<unsigned long long>(first));
  }

  // Final state.
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int i = g * kRows + r;
    float m[C];
    M.load(r, m);
#pragma unroll
    for (int j = 0; j < C; ++j) {
      const int col = col0g + wcol + j;
      if (i < a.DK && col < a.DV) {
        const int64_t idx = state0 + static_cast<int64_t>(i) * a.DV + col;
        if (a.s_final) a.s_final[idx] = S[r][j];
        if (a.m_final) a.m_final[idx] = m[j];
      }
    }
  }
}

// Sums of squares -> norms; probe slots past a sequence's end -> NaN.
__global__ void finalize_probes_kernel(int64_t n_pairs, int H, int64_t P, int64_t every, int64_t T,
                                       const int64_t* cu_seqlens, double* s2, double* m2, float* maxo) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n_pairs * P;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t pair = i / P, p = i - pair * P, n = pair / H;
    const int64_t len = cu_seqlens ? cu_seqlens[n + 1] - cu_seqlens[n] : T;
    if (p < (len + every - 1) / every) {
      s2[i] = sqrt(s2[i]);
      m2[i] = sqrt(m2[i]);
    } else {
      s2[i] = m2[i] = __longlong_as_double(0x7ff8000000000000LL);
      maxo[i] = __int_as_float(0x7fc00000);
    }
  }
}

}  // namespace mdnstab::kernels::detail
