// v2 of the recurrent MDN forward kernel, frozen for kernels/dev/recurrent.cu (numbered
// versions, STYLE.md 2.10): C = 8 columns per lane for every DK, M always in shared
// memory, 8-token chunks, one warp per vector norm. Measured on an H100 (2026-11-24):
// 6.93 ms at (8,4096,6,128,256) and 15.56 ms at (4,8192,6,256,512), bf16 in and out;
// reports/bench/recurrent-gpu.md says why v3 replaced it. Reference and tests as v3's.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cfloat>
#include <cstdint>

namespace mdnstab::kernels::dev_v2 {

constexpr int kRows = 8;       // key rows per lane
constexpr int kCols = 8;       // value columns per lane (one column group)
constexpr int kChunk = 8;      // tokens staged per chunk
constexpr int kMaxWarps = 4;   // warps per CTA (1, 2 or 4, chosen per shape)
constexpr int kMinCtas = 3;    // CTAs of kMaxWarps per SM the register budget allows
constexpr unsigned kFull = 0xffffffffu;
constexpr int kWarpMBytes = kRows * kCols * 32 * 4;  // M slice of one warp: 8 KiB

static_assert(kRows == 8 && kCols == 8, "load8 and the 16-value transpose-reduce assume 8x8 per lane");
static_assert(kChunk >= 1, "chunk must hold a token");

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
  // Staging buffer layout in bytes (one buffer; two are used).
  int stage_bytes = 0, off_k = 0, off_q = 0, off_v = 0, off_la = 0, off_lm = 0, off_beta = 0, off_eta = 0;
};

// Per-token scalars of the staged chunk, computed once per chunk.
struct TokScalars {
  float kinv[kChunk + 1];   // 1 / (|k| + 1e-6)
  float kp[kChunk + 1];     // kinv * rho_p: p = raw k * kp
  float qinv[kChunk];       // scale / (|q| + 1e-6)
  float alpha[kChunk];
  float mu[kChunk];
};

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

template <int A>
__device__ __forceinline__ void cp_async(uint32_t dst, const void* src) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], %2;\n" ::"r"(dst), "l"(src), "n"(A) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_all;\n" ::: "memory"); }

template <int A>
__device__ void copy_rows_async(char* dst, int dst_stride, const char* src, int64_t src_stride, int row_bytes,
                                int n_rows, int tid, int nt) {
  const int ppr = row_bytes / A;
  const uint32_t d0 = static_cast<uint32_t>(__cvta_generic_to_shared(dst));
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

// One halving round of transpose_reduce16: lanes with the `off` bit set keep the
// upper half of the vector and send the lower half to their partner, and vice versa.
template <int Half, int Off>
__device__ __forceinline__ void reduce_round(float (&v)[16], int lane) {
  const bool up = (lane & Off) != 0;
#pragma unroll
  for (int i = 0; i < Half; ++i) {
    const float send = up ? v[i] : v[i + Half];
    const float keep = up ? v[i + Half] : v[i];
    v[i] = keep + __shfl_xor_sync(kFull, send, Off);
  }
}

// Sum over the G lanes of a column group of 16 values per lane [o_0..o_7, w_0..w_7],
// halving the vector at each shuffle round: 15 shuffles instead of 16 * log2(G). The
// lane ends with value index (lane >> 1) & 15 for G = 32 (pairs of lanes agree) and
// lane & 15 for G = 16, in v[0]. Written out round by round so that v stays in
// registers (a loop the compiler declines to unroll sends v to local memory).
template <int G>
__device__ __forceinline__ void transpose_reduce16(float (&v)[16], int lane) {
  static_assert(G == 16 || G == 32, "column groups span 16 or 32 lanes");
  reduce_round<8, G / 2>(v, lane);
  reduce_round<4, G / 4>(v, lane);
  reduce_round<2, G / 8>(v, lane);
  reduce_round<1, G / 16>(v, lane);
  if constexpr (G == 32) v[0] += __shfl_xor_sync(kFull, v[0], 1);
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
template <class InT>
__device__ void issue_chunk(const KernelArgs& a, char* stg, int64_t bt0, int h, int len, int c, int col0g, int ncols,
                            int tid, int nt) {
  constexpr int es = sizeof(InT);
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

// Per-token scalars of a landed chunk: norms of k and q (one warp per vector), gates.
template <class InT>
__device__ void prep_chunk(const KernelArgs& a, const char* stg, TokScalars& ts, int warp, int lane) {
  const InT* kr = reinterpret_cast<const InT*>(stg + a.off_k);
  const InT* qr = reinterpret_cast<const InT*>(stg + a.off_q);
  const float* la = reinterpret_cast<const float*>(stg + a.off_la);
  const float* lm = reinterpret_cast<const float*>(stg + a.off_lm);
  for (int vi = warp; vi < 2 * kChunk + 1; vi += a.warps) {
    const bool isk = vi <= kChunk;
    const int r = isk ? vi : vi - kChunk - 1;
    const InT* x = (isk ? kr : qr) + r * a.dkp;
    float ss = 0.f;
    for (int i = lane; i < a.DK; i += 32) {
      const float e = to_f(x[i]);
      ss = fmaf(e, e, ss);
    }
#pragma unroll
    for (int off = 16; off > 0; off /= 2) ss += __shfl_xor_sync(kFull, ss, off);
    if (lane == 0) {
      const float inv = a.l2norm ? 1.f / (sqrtf(ss) + 1e-6f) : 1.f;
      if (isk) {
        ts.kinv[r] = inv;
        ts.kp[r] = a.p_alpha ? inv * expf(la[r]) : inv;
      } else {
        ts.qinv[r] = inv * a.scale;
      }
    }
  }
  const int tid = warp * 32 + lane;
  if (tid < kChunk) {
    ts.alpha[tid] = expf(la[tid]);
    ts.mu[tid] = expf(lm[tid]);
  }
}

template <int G, class InT>
__global__ void __launch_bounds__(kMaxWarps * 32, kMinCtas) recurrent_fwd_kernel(const KernelArgs a) {
  static_assert(G == 16 || G == 32, "G lanes per column group");
  constexpr int kGroups = 32 / G;           // column groups per warp
  constexpr int kWarpCols = kGroups * kCols;  // value columns per warp
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

  const int g = lane % G;             // row group: rows g*kRows .. g*kRows + 7
  const int hg = lane / G;            // column group within the warp
  const int wcol = warp * kWarpCols + hg * kCols;  // CTA-local first column of the lane's group
  // After transpose_reduce16 the lane holds value x = my_x: o_x (x < 8) or w_{x-8}.
  const int my_x = G == 32 ? (lane >> 1) & 15 : lane & 15;
  const bool is_w = my_x >= kCols;
  const int jj = my_x & (kCols - 1);
  const int my_col = col0g + wcol + jj;  // global column of the value the lane holds
  const bool stores_o = !is_w && my_col < a.DV && (G == 16 || (lane & 1) == 0);

  float4* Mw = reinterpret_cast<float4*>(smem) + warp * (kRows * kCols / 4) * 32 + lane;  // [kRows*2][32 lanes]
  char* stg_base = smem + a.warps * kWarpMBytes;
  TokScalars& ts = *reinterpret_cast<TokScalars*>(stg_base + 2 * a.stage_bytes);

  // Zero both staging buffers once: padding rows (>= DK) and columns (>= ncols) stay zero.
  for (int i = tid; i < 2 * a.stage_bytes / 16; i += nt)
    reinterpret_cast<uint4*>(stg_base)[i] = make_uint4(0, 0, 0, 0);
  __syncthreads();

  const int n_chunks = (len + kChunk - 1) / kChunk;
  if (n_chunks > 0) issue_chunk<InT>(a, stg_base, bt0, h, len, 0, col0g, ncols, tid, nt);
  cp_async_commit();

  // Initial state: S in registers, M in the warp's shared slice.
  float S[kRows][kCols];  // [rows g*8+r][cols wcol+j]
  const int64_t state0 = static_cast<int64_t>(pair) * a.DK * a.DV;
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int i = g * kRows + r;
    float mrow[kCols];
#pragma unroll
    for (int j = 0; j < kCols; ++j) {
      const int col = col0g + wcol + j;
      const bool in = i < a.DK && col < a.DV;
      const int64_t idx = state0 + static_cast<int64_t>(i) * a.DV + col;
      S[r][j] = (in && a.s0) ? a.s0[idx] : 0.f;
      mrow[j] = (in && a.m0) ? a.m0[idx] : 0.f;
    }
    Mw[(2 * r) * 32] = make_float4(mrow[0], mrow[1], mrow[2], mrow[3]);
    Mw[(2 * r + 1) * 32] = make_float4(mrow[4], mrow[5], mrow[6], mrow[7]);
  }

  cp_async_wait_all();
  __syncthreads();
  if (n_chunks > 0) prep_chunk<InT>(a, stg_base, ts, warp, lane);
  __syncthreads();

  // Probe state of the lane.
  const bool probes = a.probe_every > 0;
  unsigned maxo = 0;      // largest |o| bits since the last probe
  unsigned bad = 0;       // first non-finite step, 0 = none
  int countdown = a.probe_every;  // steps to the next probe (probe_every < 2^31)
  int probe_idx = 0;

  // w of the first token: S_0^T p_{t0}.
  float red = 0.f;
  if (n_chunks > 0) {
    float kn[kRows];
    load8(reinterpret_cast<const InT*>(stg_base + a.off_k) + g * kRows, ts.kp[0], kn);
    float vals[16];
#pragma unroll
    for (int j = 0; j < kCols; ++j) {
      vals[j] = 0.f;
      float acc = 0.f;
#pragma unroll
      for (int r = 0; r < kRows; ++r) acc = fmaf(S[r][j], kn[r], acc);
      vals[kCols + j] = acc;
    }
    transpose_reduce16<G>(vals, lane);
    red = vals[0];
  }

  const int64_t o_stride = static_cast<int64_t>(a.H) * a.DV;
  int64_t o_off = (bt0 * a.H + h) * static_cast<int64_t>(a.DV) + my_col;

  for (int c = 0; c < n_chunks; ++c) {
    char* stg = stg_base + (c & 1) * a.stage_bytes;
    if (c + 1 < n_chunks)
      issue_chunk<InT>(a, stg_base + ((c + 1) & 1) * a.stage_bytes, bt0, h, len, c + 1, col0g, ncols, tid, nt);
    cp_async_commit();

    const InT* sk = reinterpret_cast<const InT*>(stg + a.off_k) + g * kRows;
    const InT* sq = reinterpret_cast<const InT*>(stg + a.off_q) + g * kRows;
    const InT* sv = reinterpret_cast<const InT*>(stg + a.off_v);
    const float* sbeta = reinterpret_cast<const float*>(stg + a.off_beta);
    const float* seta = reinterpret_cast<const float*>(stg + a.off_eta);
    const int ns = min(kChunk, len - c * kChunk);

    for (int s = 0; s < ns; ++s) {
      // w_t = S_{t-1}^T p_t - v_t on the owner lanes, times eta per column; broadcast.
      float ewown = 0.f;
      if (is_w) {
        const int cl = wcol + jj;
        const float vv = to_f(sv[s * a.cols_per_cta + cl]);
        const float e = a.eta_pc ? seta[s * a.cols_per_cta + cl] : 1.f;
        ewown = e * (red - vv);
      }
      float ew[kCols];
#pragma unroll
      for (int j = 0; j < kCols; ++j)
        ew[j] = __shfl_sync(kFull, ewown, G == 32 ? 16 + 2 * j : hg * 16 + kCols + j);

      const float alpha = ts.alpha[s], mu = ts.mu[s];
      const float etas = a.eta_pc ? 1.f : seta[s];
      float kc[kRows], qv[kRows], kn[kRows], nb[kCols];
      load8(sk + s * a.dkp, etas * ts.kinv[s], kc);  // eta k^_t (scalar eta)
      load8(sq + s * a.dkp, ts.qinv[s], qv);         // scale q^_t
      load8(sk + (s + 1) * a.dkp, ts.kp[s + 1], kn); // p_{t+1}
      if (a.beta_pc) {
        const float4 b0 = *reinterpret_cast<const float4*>(sbeta + s * a.cols_per_cta + wcol);
        const float4 b1 = *reinterpret_cast<const float4*>(sbeta + s * a.cols_per_cta + wcol + 4);
        nb[0] = -b0.x; nb[1] = -b0.y; nb[2] = -b0.z; nb[3] = -b0.w;
        nb[4] = -b1.x; nb[5] = -b1.y; nb[6] = -b1.z; nb[7] = -b1.w;
      } else {
        const float b = -sbeta[s];
#pragma unroll
        for (int j = 0; j < kCols; ++j) nb[j] = b;
      }

      float vals[16];  // [o partials, w partials]
#pragma unroll
      for (int j = 0; j < 16; ++j) vals[j] = 0.f;
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        float4 m0 = Mw[(2 * r) * 32], m1 = Mw[(2 * r + 1) * 32];
        float m[kCols] = {m0.x, m0.y, m0.z, m0.w, m1.x, m1.y, m1.z, m1.w};
#pragma unroll
        for (int j = 0; j < kCols; ++j) {
          m[j] = fmaf(kc[r], ew[j], mu * m[j]);          // M = mu M + eta k^ w^T
          const float sn = fmaf(nb[j], m[j], alpha * S[r][j]);  // S = alpha S - beta M
          S[r][j] = sn;
          vals[j] = fmaf(sn, qv[r], vals[j]);            // o partial
          vals[kCols + j] = fmaf(sn, kn[r], vals[kCols + j]);  // next w partial
        }
        Mw[(2 * r) * 32] = make_float4(m[0], m[1], m[2], m[3]);
        Mw[(2 * r + 1) * 32] = make_float4(m[4], m[5], m[6], m[7]);
      }
      transpose_reduce16<G>(vals, lane);

      const int step = c * kChunk + s + 1;
      if (is_w) {
        red = vals[0];
      } else {
        const float o = vals[0];
        if (stores_o) {
          if (a.out_bf16)
            static_cast<__nv_bfloat16*>(a.o)[o_off] = __float2bfloat16_rn(o);
          else
            static_cast<float*>(a.o)[o_off] = o;
        }
        if (probes && my_col < a.DV) {
          // Any non-finite S or M element reaches o_t through 0 * inf = NaN, and a
          // non-finite w reaches M in every row, so checking o is checking everything.
          const unsigned bits = __float_as_uint(o) & 0x7fffffffu;  // |o|; NaN > inf > finite
          maxo = max(maxo, bits);
          if (bits >= 0x7f800000u && bad == 0) bad = static_cast<unsigned>(step);
        }
      }
      o_off += o_stride;

      if (probes && (--countdown == 0 || step == len)) {
        countdown = a.probe_every;
        float as = 0.f, am = 0.f;
#pragma unroll
        for (int r = 0; r < kRows; ++r) {
          const float4 m0 = Mw[(2 * r) * 32], m1 = Mw[(2 * r + 1) * 32];
          const float m[kCols] = {m0.x, m0.y, m0.z, m0.w, m1.x, m1.y, m1.z, m1.w};
#pragma unroll
          for (int j = 0; j < kCols; ++j) {
            as = fmaxf(as, fabsf(S[r][j]));
            am = fmaxf(am, fabsf(m[j]));
          }
        }
        const float is = (as >= FLT_MIN && as <= FLT_MAX) ? 1.f / as : 1.f;
        const float im = (am >= FLT_MIN && am <= FLT_MAX) ? 1.f / am : 1.f;
        float accs = 0.f, accm = 0.f;
#pragma unroll
        for (int r = 0; r < kRows; ++r) {
          const float4 m0 = Mw[(2 * r) * 32], m1 = Mw[(2 * r + 1) * 32];
          const float m[kCols] = {m0.x, m0.y, m0.z, m0.w, m1.x, m1.y, m1.z, m1.w};
#pragma unroll
          for (int j = 0; j < kCols; ++j) {
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

    cp_async_wait_all();
    __syncthreads();  // chunk c+1 landed; every warp is done with chunk c
    if (c + 1 < n_chunks) prep_chunk<InT>(a, stg_base + ((c + 1) & 1) * a.stage_bytes, ts, warp, lane);
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
    const float4 m0 = Mw[(2 * r) * 32], m1 = Mw[(2 * r + 1) * 32];
    const float m[kCols] = {m0.x, m0.y, m0.z, m0.w, m1.x, m1.y, m1.z, m1.w};
#pragma unroll
    for (int j = 0; j < kCols; ++j) {
      const int col = col0g + wcol + j;
      if (i < a.DK && col < a.DV) {
        const int64_t idx = state0 + static_cast<int64_t>(i) * a.DV + col;
        if (a.s_final) a.s_final[idx] = S[r][j];
        if (a.m_final) a.m_final[idx] = m[j];
      }
    }
  }
}

}  // namespace mdnstab::kernels::dev_v2
