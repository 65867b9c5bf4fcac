// The chunkwise MDN forward pass on the GPU (DESIGN.md section 5), in the exact
// algebra of src/core/chunk_plain_ref.cpp: inside a chunk of C tokens only
// products of gates <= 1 are formed (A_t = prod alpha, Mu_t / Mu_j, and
// Gamma_{t,j} = alpha_t Gamma_{t-1,j} + beta_t Mu_t / Mu_j), never the ratios
// prod(mu) / prod(alpha) of the paper's reordering, so no gate in the closed
// ranges can overflow or cancel it. Two launches:
//  - chunk_prep_kernel, one CTA per (chunk, head, sequence), all chunks at once:
//    the chunk's gate products, the Gram matrices k^.k^ and q^.k^ and the inverse
//    T = (I + L)^-1 of the unit lower-triangular system of the pseudo-values;
//  - chunk_scan_kernel, one CTA per (64 value columns, head, sequence), chunks in
//    order: pseudo-values U = T (v - a' k^ S + b' k^ M), output
//    o = A q^ S - b q^ M + (Gamma o q^.k~) U, and the state passed to the next chunk.
// Matrix products run on tensor cores in tf32 (fp32 accumulation); the state S, M
// and everything element-wise stay fp32. Plain C++ callers use kernels/mdn_kernels.hpp.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <cuda_pipeline.h>
#include <mma.h>

#include <cstdint>
#include <type_traits>

#include "mdn_kernels.hpp"
#include "pass_args.hpp"

namespace mdnstab::kernels::chunk_detail {

namespace wmma = nvcuda::wmma;

constexpr int kC = 64;         // tokens per chunk
constexpr int kCols = 64;      // value columns per scan CTA
constexpr int kThreads = 256;  // 8 warps, both kernels
// Row stride (floats) of the C x C and C x kCols tiles in shared memory: 72 = 8 mod 32
// makes row-major B-fragment and accumulator accesses free of bank conflicts.
constexpr int kLdc = kC + 8;

// Per-chunk workspace written by the prep kernel (floats).
enum : int {
  // T and the output weights as tf32 A fragments (16 x 8, in wmma's element order):
  // fragment (row tile m, column tile k) at ((m * C/8 + k) * 32 + lane) * 4.
  kWsT = 0,                     // T = (I + L)^-1, lower triangular
  kWsQkg = kWsT + kC * kC,      // Gamma_{t,j} eta_j q^_t.k^_j (j <= t), 0 above
  kWsKinv = kWsQkg + kC * kC,   // [C] 1 / (|k_t| + 1e-6) (1 without the L2 norm; 0 past the end)
  kWsQinv = kWsKinv + kC,       // [C] scale / (|q_t| + 1e-6)
  kWsAp = kWsQinv + kC,         // [C] A_{t-1} rho_t: S's weight in u_t
  kWsBp = kWsAp + kC,           // [C] b_{t-1} rho_t: M's weight in u_t
  kWsA = kWsBp + kC,            // [C] A_t: S's weight in o_t
  kWsB = kWsA + kC,             // [C] b_t: M's weight in o_t
  kWsG = kWsB + kC,             // [C] Gamma_{C-1,j} eta_j: u_j's weight in the next S
  kWsM = kWsG + kC,             // [C] (Mu_{C-1} / Mu_j) eta_j: u_j's weight in the next M
  kWsTail = kWsM + kC,          // A_{C-1}, b_{C-1}, Mu_{C-1}
  kWsFloats = kWsTail + 16,
};

struct ChunkArgs {
  int H = 0, DK = 0, DV = 0;
  int64_t T = 0;
  int n_chunks = 0;  // per sequence
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  const float *log_alpha = nullptr, *log_mu = nullptr, *beta = nullptr, *eta = nullptr;
  bool p_alpha = true, l2norm = true, out_bf16 = false;
  bool o_vec4 = false;   // o is 16-byte aligned and DV % 4 == 0: four outputs per store
  bool kq_vec4 = false;  // q, k 16-byte aligned and DK % 4 == 0: four inputs per load
  bool v_vec4 = false;   // v 16-byte aligned and DV % 4 == 0
  float scale = 1.f;
  const float *s0 = nullptr, *m0 = nullptr;
  float *s_final = nullptr, *m_final = nullptr;
  void* o = nullptr;
  float* ws = nullptr;  // [B, H, n_chunks, kWsFloats]
  // Development only (kernels/dev/chunk_phases.cu): when set, the scan's thread 0 adds
  // up the cycles of each phase, [scan CTA][kScanPhases].
  long long* phase_clocks = nullptr;
};

// The scan's phases, each ended by a barrier (phase_clocks).
enum ScanPhase : int {
  kPhState, kPhWait, kPhIssue, kPhLoadOwn, kPhLoadKq, kPhKS, kPhRhs, kPhU, kPhQkgU, kPhStoreO, kScanPhases
};

__device__ __forceinline__ float to_f(float x) { return x; }
__device__ __forceinline__ float to_f(__nv_bfloat16 x) { return __bfloat162float(x); }

// N consecutive inputs (N = 2 or 4) as one raw vector: loaded first, converted to
// floats later, so that no load waits on another's data before the next is issued.
template <int N, class In>
struct RawN {
  using T = typename std::conditional<sizeof(In) == 2, typename std::conditional<N == 4, uint2, unsigned>::type,
                                      typename std::conditional<N == 4, float4, float2>::type>::type;
  T w;
  // p must be aligned to the vector; zero where !ok.
  __device__ __forceinline__ void load(const In* p, bool ok) {
    if (ok)
      w = *reinterpret_cast<const T*>(p);
    else
      w = T{};
  }
  __device__ __forceinline__ void to_floats(float* out) const {
    if constexpr (sizeof(In) == 2 && N == 4) {
      const float2 lo = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&w.x));
      const float2 hi = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&w.y));
      out[0] = lo.x, out[1] = lo.y, out[2] = hi.x, out[3] = hi.y;
    } else if constexpr (sizeof(In) == 2) {
      const float2 f = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&w));
      out[0] = f.x, out[1] = f.y;
    } else if constexpr (N == 4) {
      out[0] = w.x, out[1] = w.y, out[2] = w.z, out[3] = w.w;
    } else {
      out[0] = w.x, out[1] = w.y;
    }
  }
};

// N consecutive inputs p[0 .. N) as floats, those at or past `valid` zero, one at a
// time (unaligned or ragged rows).
template <int N, class In>
__device__ __forceinline__ void load_scalar(const In* p, int valid, float* out) {
#pragma unroll
  for (int j = 0; j < N; ++j) out[j] = j < valid ? to_f(p[j]) : 0.f;
}

using FragA = wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major>;
using FragAT = wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::col_major>;
using FragB = wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major>;
using FragBT = wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::col_major>;
using Acc = wmma::fragment<wmma::accumulator, 16, 16, 8, float>;

// Fragment loads: operands written already rounded to tf32 (k^, q^, T, the weights of
// U) load as they are; the fp32 state and U are rounded here.
template <class F>
__device__ __forceinline__ void load_tf32(F& f, const float* p, unsigned ld) {
  wmma::load_matrix_sync(f, p, ld);
#pragma unroll
  for (int i = 0; i < f.num_elements; ++i) f.x[i] = wmma::__float_to_tf32(f.x[i]);
}

// A tf32 A fragment stored in wmma's element order (the prep kernel's output): lane's
// four elements are 16 contiguous bytes.
__device__ __forceinline__ void load_fragment_order(FragA& f, const float* p) {
  const float4 x = *reinterpret_cast<const float4*>(p);
  f.x[0] = x.x, f.x[1] = x.y, f.x[2] = x.z, f.x[3] = x.w;
}

template <int DKP>
__host__ __device__ constexpr int prep_row() {  // k^ and q^ rows, wide enough for the C x C tiles laid over them
  return DKP + 4 > kLdc ? DKP + 4 : kLdc;
}
template <int DKP>
constexpr int prep_smem_bytes() {
  return (2 * kC * prep_row<DKP>() + 2 * kC * kLdc) * 4;
}
template <int DKP>
constexpr int scan_smem_bytes() {
  return (2 * DKP * kLdc + 2 * kC * (DKP + 4) + 3 * kC * kLdc + kC * kC) * 4;
}

// Normalized k and q rows of one chunk into shared memory (rounded to tf32 once, as
// every product takes them; rows past the sequence's end and columns past DK zero).
// Warp w takes rows w, w + 8, ...; all of its loads are issued before any is used.
// Returns the factors through kinv / qinv (the prep kernel), or applies stored ones.
template <int DKP, class In>
__device__ void load_kq(const ChunkArgs& a, int b, int h, int64_t t0, int n, float* kh, float* qh, float* kinv,
                        float* qinv, const float* kinv_in, const float* qinv_in) {
  constexpr int kLd = DKP + 4, kPer = DKP / 32, kRows = kC / (kThreads / 32);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const In* k = static_cast<const In*>(a.k);
  const In* q = static_cast<const In*>(a.q);
  // Lane l holds columns [l kPer, (l + 1) kPer) of each of its rows.
  float kv[kRows][kPer], qv[kRows][kPer];
  if (a.kq_vec4) {
    RawN<kPer, In> kr[kRows], qr[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const int t = warp + r * (kThreads / 32);
      const size_t base = ((size_t(b) * a.T + t0 + t) * a.H + h) * a.DK + lane * kPer;
      const bool ok = t < n && lane * kPer < a.DK;  // DK % 4 == 0: a lane's columns are all in or all out
      kr[r].load(k + base, ok);
      qr[r].load(q + base, ok);
    }
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      kr[r].to_floats(kv[r]);
      qr[r].to_floats(qv[r]);
    }
  } else {
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const int t = warp + r * (kThreads / 32);
      const size_t base = ((size_t(b) * a.T + t0 + t) * a.H + h) * a.DK + lane * kPer;
      const int valid = t < n ? a.DK - lane * kPer : 0;
      load_scalar<kPer>(k + base, valid, kv[r]);
      load_scalar<kPer>(q + base, valid, qv[r]);
    }
  }
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int t = warp + r * (kThreads / 32);
    float ki, qi;
    if (kinv_in) {
      ki = kinv_in[t];
      qi = qinv_in[t];
    } else {
      float ks = 0.f, qs = 0.f;
#pragma unroll
      for (int i = 0; i < kPer; ++i) {
        ks += kv[r][i] * kv[r][i];
        qs += qv[r][i] * qv[r][i];
      }
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) {
        ks += __shfl_xor_sync(0xffffffffu, ks, o);
        qs += __shfl_xor_sync(0xffffffffu, qs, o);
      }
      ki = t < n ? (a.l2norm ? 1.f / (sqrtf(ks) + 1e-6f) : 1.f) : 0.f;
      qi = t < n ? a.scale * (a.l2norm ? 1.f / (sqrtf(qs) + 1e-6f) : 1.f) : 0.f;
      if (lane == 0) {
        kinv[t] = ki;
        qinv[t] = qi;
      }
    }
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
      kh[t * kLd + lane * kPer + i] = wmma::__float_to_tf32(kv[r][i] * ki);
      qh[t * kLd + lane * kPer + i] = wmma::__float_to_tf32(qv[r][i] * qi);
    }
  }
}

template <int DKP, class In>
__global__ void __launch_bounds__(kThreads) chunk_prep_kernel(ChunkArgs a) {
  constexpr int kLd = DKP + 4;
  extern __shared__ __align__(128) float sm[];
  float* kh = sm;                          // [C][kLd] k^
  float* qh = kh + kC * prep_row<DKP>();   // [C][kLd] scale q^
  float* L = qh + kC * prep_row<DKP>();    // [C][kLdc] k^_t.k^_j, then L
  float* Q = L + kC * kLdc;    // [C][kLdc] q^_t.k^_j, then Gamma o q^.k~
  float* G = kh;               // [C][kLdc] Gamma_{t,j}, once the Gram matrices are done
  float* Tm = qh;              // [C][kLdc] T, likewise
  __shared__ float al[kC], mu[kC], be[kC], et[kC], rho[kC];
  __shared__ __align__(32) float order[16 * 8];  // order[r][c] = 8 r + c: a fragment's element order
  const int c = blockIdx.x, h = blockIdx.y, b = blockIdx.z, tid = threadIdx.x;
  const int64_t t0 = int64_t(c) * kC;
  const int n = static_cast<int>(a.T - t0 < kC ? a.T - t0 : kC);
  float* ws = a.ws + ((size_t(b) * a.H + h) * a.n_chunks + c) * kWsFloats;

  // Gates; tokens past the end are identities (alpha = mu = 1, beta = eta = 0).
  if (tid < kC) {
    float x = 1.f, m = 1.f, be_ = 0.f, e = 0.f;
    if (tid < n) {
      const size_t g = (size_t(b) * a.T + t0 + tid) * a.H + h;
      x = expf(a.log_alpha[g]);
      m = expf(a.log_mu[g]);
      be_ = a.beta[g];
      e = a.eta[g];
    }
    al[tid] = x;
    mu[tid] = m;
    be[tid] = be_;
    et[tid] = e;
    rho[tid] = a.p_alpha ? x : 1.f;
  }
  if (tid < 128) order[tid] = float(tid);
  load_kq<DKP, In>(a, b, h, t0, n, kh, qh, ws + kWsKinv, ws + kWsQinv, nullptr, nullptr);
  __syncthreads();

  // Gram matrices k^ k^T and q^ k^T: 32 tiles of 16 x 16, four per warp.
  const int warp = tid >> 5;
  for (int tile = warp; tile < 32; tile += kThreads / 32) {
    const float* A = tile < 16 ? kh : qh;
    float* D = tile < 16 ? L : Q;
    const int tm = (tile & 15) >> 2, tn = tile & 3;
    Acc acc;
    wmma::fill_fragment(acc, 0.f);
    for (int kk = 0; kk < DKP; kk += 8) {
      FragA fa;
      FragBT fb;
      wmma::load_matrix_sync(fa, A + tm * 16 * kLd + kk, kLd);
      wmma::load_matrix_sync(fb, kh + tn * 16 * kLd + kk, kLd);
      wmma::mma_sync(acc, fa, fb, acc);
    }
    wmma::store_matrix_sync(D + tm * 16 * kLdc + tn * 16, acc, kLdc, wmma::mem_row_major);
  }
  __syncthreads();  // k^ and q^ are done with: G and T take their place

  // Gamma column by column, the prefix products by one thread.
  if (tid < kC) {
    const int j = tid;
    float g = be[j], ratio = 1.f;  // only t >= j is ever read
    G[j * kLdc + j] = g;
    for (int t = j + 1; t < kC; ++t) {
      ratio *= mu[t];
      g = al[t] * g + be[t] * ratio;
      G[t * kLdc + j] = g;
    }
    ws[kWsG + j] = g * et[j];
    ws[kWsM + j] = ratio * et[j];
  } else if (tid == kC) {
    float A = 1.f, Mu = 1.f, B = 0.f;
    for (int t = 0; t < kC; ++t) {
      ws[kWsAp + t] = A * rho[t];
      ws[kWsBp + t] = B * rho[t];
      A *= al[t];
      Mu *= mu[t];
      B = al[t] * B + be[t] * Mu;
      ws[kWsA + t] = A;
      ws[kWsB + t] = B;
    }
    ws[kWsTail + 0] = A;
    ws[kWsTail + 1] = B;
    ws[kWsTail + 2] = Mu;
  }
  __syncthreads();

  // L_{t,j} = Gamma_{t-1,j} rho_t eta_j k^_t.k^_j (j < t) and the output's weights.
  for (int e = tid; e < kC * kC; e += kThreads) {
    const int t = e / kC, j = e % kC;
    L[t * kLdc + j] = j < t ? G[(t - 1) * kLdc + j] * rho[t] * et[j] * L[t * kLdc + j] : 0.f;
    Q[t * kLdc + j] = j <= t ? G[t * kLdc + j] * et[j] * Q[t * kLdc + j] : 0.f;
    Tm[t * kLdc + j] = t == j ? 1.f : 0.f;
  }
  __syncthreads();
  // T = (I + L)^-1 row by row: T_{t,j} = -sum_{i=j}^{t-1} L_{t,i} T_{i,j}, four
  // threads per column.
  {
    const int j = tid >> 2, part = tid & 3;
    for (int t = 1; t < kC; ++t) {
      float s = 0.f;
      if (j < t)
        for (int i = j + part; i < t; i += 4) s = fmaf(L[t * kLdc + i], Tm[i * kLdc + j], s);
      s += __shfl_xor_sync(0xffffffffu, s, 1);
      s += __shfl_xor_sync(0xffffffffu, s, 2);
      if (j < t && part == 0) Tm[t * kLdc + j] = -s;
      __syncthreads();
    }
  }
  // T and the output weights out in fragment order, rounded to tf32 once here. The
  // order is read from wmma itself: a fragment loaded from `order`.
  {
    static_assert(FragA::num_elements == 4, "a tf32 16 x 8 A fragment holds 4 elements per lane");
    FragA map;
    wmma::load_matrix_sync(map, order, 8);
    const int lane = tid & 31;
    for (int f = warp; f < 2 * (kC / 16) * (kC / 8); f += kThreads / 32) {
      const int ff = f % ((kC / 16) * (kC / 8)), m = ff / (kC / 8), k = ff % (kC / 8);
      const float* src = f < (kC / 16) * (kC / 8) ? Tm : Q;
      float x[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int rc = static_cast<int>(map.x[i]);
        x[i] = wmma::__float_to_tf32(src[(m * 16 + rc / 8) * kLdc + k * 8 + rc % 8]);
      }
      float* dst = ws + (src == Tm ? kWsT : kWsQkg) + (size_t(ff) * 32 + lane) * 4;
      *reinterpret_cast<float4*>(dst) = make_float4(x[0], x[1], x[2], x[3]);
    }
  }
}

// The k, q and v rows of the chunk starting at token tn (this CTA's 64 columns of v)
// into L2, one 128-byte line per thread and round: a chunk's wait on DRAM for them was
// its longest phase.
template <class In>
__device__ void prefetch_rows_l2(const ChunkArgs& a, const In* v, int b, int h, int c0, int64_t tn) {
  const int rows = static_cast<int>(a.T - tn < kC ? a.T - tn : kC);
  const int v_cols = a.DV - c0 < kCols ? a.DV - c0 : kCols;
  const int kq_lines = (a.DK * int(sizeof(In)) + 127) / 128, v_lines = (v_cols * int(sizeof(In)) + 127) / 128;
  const int per_row = 2 * kq_lines + v_lines;
  const In* k = static_cast<const In*>(a.k);
  const In* q = static_cast<const In*>(a.q);
  for (int i = threadIdx.x; i < rows * per_row; i += kThreads) {
    const int t = i / per_row, l = i % per_row;
    const size_t tok = (size_t(b) * a.T + tn + t) * a.H + h;
    const In* row = l < kq_lines ? k + tok * a.DK : l < 2 * kq_lines ? q + tok * a.DK : v + tok * a.DV + c0;
    const int line = l < kq_lines ? l : l < 2 * kq_lines ? l - kq_lines : l - 2 * kq_lines;
    asm volatile("prefetch.global.L2 [%0];" ::"l"(reinterpret_cast<const char*>(row) + 128 * line));
  }
}

// One CTA: 64 value columns [c0, c0 + 64) of one (sequence, head), every chunk in order.
template <int DKP, class In>
__global__ void __launch_bounds__(kThreads) chunk_scan_kernel(ChunkArgs a) {
  constexpr int kLd = DKP + 4, kRowTiles = DKP / 16;
  constexpr int kItems = kC * kCols / 4 / kThreads;  // element-wise passes: four columns per item
  extern __shared__ __align__(128) float sm[];
  float* S = sm;                // [DKP][kLdc]
  float* M = S + DKP * kLdc;    // [DKP][kLdc]
  float* kh = M + DKP * kLdc;   // [C][kLd]
  float* qh = kh + kC * kLd;    // [C][kLd]
  float* B1 = qh + kC * kLd;    // [C][kLdc]
  float* B2 = B1 + kC * kLdc;
  float* B3 = B2 + kC * kLdc;
  float* Ts = B3 + kC * kLdc;   // [C * C] T in fragment order, copied a chunk ahead
  constexpr int kVec = kWsTail + 16 - kWsKinv;  // the per-token vectors and the tail
  __shared__ __align__(16) float vec_buf[2][kVec];
  const int slice = blockIdx.x, h = blockIdx.y, b = blockIdx.z, tid = threadIdx.x, warp = tid >> 5;
  const int c0 = slice * kCols;
  const size_t st = (size_t(b) * a.H + h) * size_t(a.DK) * a.DV;

  for (int e = tid; e < DKP * kCols; e += kThreads) {
    const int r = e / kCols, col = e % kCols;
    const bool in = r < a.DK && c0 + col < a.DV;
    S[r * kLdc + col] = in && a.s0 ? a.s0[st + size_t(r) * a.DV + c0 + col] : 0.f;
    M[r * kLdc + col] = in && a.m0 ? a.m0[st + size_t(r) * a.DV + c0 + col] : 0.f;
  }
  const In* v = static_cast<const In*>(a.v);
  // C x 64 products: 16 tiles; warp w owns column tile cj = w % 4 and row tiles
  // ri0, ri0 + 1 (ri0 = 2 (w / 4)), so that each B fragment it loads serves two row tiles.
  const int cj = warp & 3, ri0 = (warp >> 2) * 2;
  // The row (0..15) of each element of an accumulator fragment, read from wmma itself.
  __shared__ __align__(32) float rows16[16 * 16];
  rows16[tid] = float(tid / 16);
  __syncthreads();
  int acc_row[Acc::num_elements];
  {
    Acc map;
    wmma::load_matrix_sync(map, rows16, 16, wmma::mem_row_major);
#pragma unroll
    for (int x = 0; x < Acc::num_elements; ++x) acc_row[x] = static_cast<int>(map.x[x]);
  }

  // The next chunk's vectors are copied asynchronously while this one runs.
  const float* ws_pair = a.ws + (size_t(b) * a.H + h) * a.n_chunks * size_t(kWsFloats);
  auto fetch_vec = [&](int c) {
    if (tid < kVec / 4)
      __pipeline_memcpy_async(&vec_buf[c & 1][4 * tid], ws_pair + size_t(c) * kWsFloats + kWsKinv + 4 * tid, 16);
    __pipeline_commit();
  };
  auto fetch_t = [&](int c) {  // T is read whole by every warp: 16 bytes per thread per round
    const float* src = ws_pair + size_t(c) * kWsFloats + kWsT;
    for (int i = tid; i < kC * kC / 4; i += kThreads) __pipeline_memcpy_async(Ts + 4 * i, src + 4 * i, 16);
    __pipeline_commit();
  };
  fetch_vec(0);
  fetch_t(0);
  const bool clocked = a.phase_clocks && tid == 0;
  long long clk_last = clocked ? clock64() : 0, clk[kScanPhases] = {};
  auto mark = [&](int phase) {  // after a barrier: the phase that just ended
    if (clocked) {
      const long long now = clock64();
      clk[phase] += now - clk_last;
      clk_last = now;
    }
  };
  for (int c = 0; c < a.n_chunks; ++c) {
    const int64_t t0 = int64_t(c) * kC;
    const int n = static_cast<int>(a.T - t0 < kC ? a.T - t0 : kC);
    const float* ws = ws_pair + size_t(c) * kWsFloats;
    __syncthreads();  // the last chunk's readers of vec_buf, kh and the state are done
    mark(kPhState);
    __pipeline_wait_prior(0);
    __syncthreads();
    mark(kPhWait);
    if (c + 1 < a.n_chunks) {
      fetch_vec(c + 1);
      prefetch_rows_l2(a, v, b, h, c0, t0 + kC);
    }
    const float* vec = vec_buf[c & 1];
    const float *kinv = vec, *qinv = vec + kC, *ap = vec + 2 * kC, *bp = vec + 3 * kC, *At = vec + 4 * kC,
                *Bt = vec + 5 * kC, *gw = vec + 6 * kC, *mw = vec + 7 * kC, *tail = vec + 8 * kC;
    // v, needed two phases later, loaded now: four columns per item, kItems per thread.
    RawN<4, In> vr[kItems];  // converted where used
    float vv[kItems][4];
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      const int e = tid + i * kThreads, t = e / (kCols / 4), col = (e % (kCols / 4)) * 4;
      const size_t vi = ((size_t(b) * a.T + t0 + t) * a.H + h) * a.DV + c0 + col;
      if (a.v_vec4)  // DV % 4 == 0: an item's four columns are all in or all out
        vr[i].load(v + vi, t < n && c0 + col < a.DV);
      else
        load_scalar<4>(v + vi, t < n ? a.DV - c0 - col : 0, vv[i]);
    }
    mark(kPhIssue);
    load_kq<DKP, In>(a, b, h, t0, n, kh, qh, nullptr, nullptr, kinv, qinv);
    mark(kPhLoadOwn);
    __syncthreads();
    mark(kPhLoadKq);

    // B1 = k^ S, B2 = k^ M; q^ S and q^ M stay in registers until the output. Each
    // B fragment of the state is loaded and rounded once for both.
    Acc ys[2], ym[2];
    {
      Acc xs[2], xm[2];
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        wmma::fill_fragment(xs[r], 0.f);
        wmma::fill_fragment(xm[r], 0.f);
        wmma::fill_fragment(ys[r], 0.f);
        wmma::fill_fragment(ym[r], 0.f);
      }
#pragma unroll 2
      for (int kk = 0; kk < DKP; kk += 8) {
        FragB fs, fm;
        load_tf32(fs, S + kk * kLdc + cj * 16, kLdc);
        load_tf32(fm, M + kk * kLdc + cj * 16, kLdc);
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          FragA fk, fq;
          wmma::load_matrix_sync(fk, kh + (ri0 + r) * 16 * kLd + kk, kLd);
          wmma::load_matrix_sync(fq, qh + (ri0 + r) * 16 * kLd + kk, kLd);
          wmma::mma_sync(xs[r], fk, fs, xs[r]);
          wmma::mma_sync(xm[r], fk, fm, xm[r]);
          wmma::mma_sync(ys[r], fq, fs, ys[r]);
          wmma::mma_sync(ym[r], fq, fm, ym[r]);
        }
      }
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        wmma::store_matrix_sync(B1 + (ri0 + r) * 16 * kLdc + cj * 16, xs[r], kLdc, wmma::mem_row_major);
        wmma::store_matrix_sync(B2 + (ri0 + r) * 16 * kLdc + cj * 16, xm[r], kLdc, wmma::mem_row_major);
      }
    }
    __syncthreads();
    mark(kPhKS);
    // B3 = v - a' k^S + b' k^M (the right-hand side of the pseudo-values).
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      if (a.v_vec4) vr[i].to_floats(vv[i]);
      const int e = tid + i * kThreads, t = e / (kCols / 4), col = (e % (kCols / 4)) * 4;
      const float4 x = *reinterpret_cast<const float4*>(B1 + t * kLdc + col);
      const float4 y = *reinterpret_cast<const float4*>(B2 + t * kLdc + col);
      const float at = ap[t], bt = bp[t];
      float4 r;
      r.x = wmma::__float_to_tf32(vv[i][0] - at * x.x + bt * y.x);
      r.y = wmma::__float_to_tf32(vv[i][1] - at * x.y + bt * y.y);
      r.z = wmma::__float_to_tf32(vv[i][2] - at * x.z + bt * y.z);
      r.w = wmma::__float_to_tf32(vv[i][3] - at * x.w + bt * y.w);
      *reinterpret_cast<float4*>(B3 + t * kLdc + col) = r;
    }
    __syncthreads();
    mark(kPhRhs);
    // B1 = U = T B3.
    {
      Acc u[2];
#pragma unroll
      for (int r = 0; r < 2; ++r) wmma::fill_fragment(u[r], 0.f);
#pragma unroll
      for (int kk = 0; kk < kC / 8; ++kk) {
        FragB fb;
        wmma::load_matrix_sync(fb, B3 + kk * 8 * kLdc + cj * 16, kLdc);
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          FragA tf;
          load_fragment_order(tf, Ts + (size_t((ri0 + r) * (kC / 8) + kk) * 32 + (tid & 31)) * 4);
          wmma::mma_sync(u[r], tf, fb, u[r]);
        }
      }
#pragma unroll
      for (int r = 0; r < 2; ++r)
        wmma::store_matrix_sync(B1 + (ri0 + r) * 16 * kLdc + cj * 16, u[r], kLdc, wmma::mem_row_major);
    }
    __syncthreads();
    mark(kPhU);
    if (c + 1 < a.n_chunks) fetch_t(c + 1);  // T is done with
    // The output weights, needed two phases later.
    FragA qf[2][kC / 8];
#pragma unroll
    for (int r = 0; r < 2; ++r)
#pragma unroll
      for (int kk = 0; kk < kC / 8; ++kk)
        load_fragment_order(qf[r][kk], ws + kWsQkg + (size_t((ri0 + r) * (kC / 8) + kk) * 32 + (tid & 31)) * 4);
    // B3 = o = A_t q^S - b_t q^M + (Gamma o q^.k~) U, the first two terms scaled row by
    // row in registers (acc_row: each accumulator element's row).
    {
      Acc o[2];
#pragma unroll
      for (int r = 0; r < 2; ++r)
#pragma unroll
        for (int x = 0; x < o[r].num_elements; ++x) {
          const int row = (ri0 + r) * 16 + acc_row[x];
          o[r].x[x] = At[row] * ys[r].x[x] - Bt[row] * ym[r].x[x];
        }
#pragma unroll
      for (int kk = 0; kk < kC / 8; ++kk) {
        FragB fb;
        load_tf32(fb, B1 + kk * 8 * kLdc + cj * 16, kLdc);
#pragma unroll
        for (int r = 0; r < 2; ++r) wmma::mma_sync(o[r], qf[r][kk], fb, o[r]);
      }
#pragma unroll
      for (int r = 0; r < 2; ++r)
        wmma::store_matrix_sync(B3 + (ri0 + r) * 16 * kLdc + cj * 16, o[r], kLdc, wmma::mem_row_major);
    }
    __syncthreads();
    mark(kPhQkgU);
    // o out; U's weights for the state: B2 = Gamma_{C-1,j} eta_j u_j, B1 = -(Mu_{C-1}/Mu_j) eta_j u_j.
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      const int e = tid + i * kThreads, t = e / (kCols / 4), col = (e % (kCols / 4)) * 4;
      const float4 ov = *reinterpret_cast<const float4*>(B3 + t * kLdc + col);
      if (t < n) {
        const size_t oi = ((size_t(b) * a.T + t0 + t) * a.H + h) * a.DV + c0 + col;
        const float o4[4] = {ov.x, ov.y, ov.z, ov.w};
        if (a.o_vec4 && c0 + col + 4 <= a.DV) {  // aligned, all four inside
          if (a.out_bf16) {
            const __nv_bfloat162 p0 = __floats2bfloat162_rn(ov.x, ov.y), p1 = __floats2bfloat162_rn(ov.z, ov.w);
            uint2 w;
            w.x = *reinterpret_cast<const unsigned*>(&p0);
            w.y = *reinterpret_cast<const unsigned*>(&p1);
            *reinterpret_cast<uint2*>(static_cast<__nv_bfloat16*>(a.o) + oi) = w;
          } else {
            *reinterpret_cast<float4*>(static_cast<float*>(a.o) + oi) = ov;
          }
        } else {
          for (int j = 0; j < 4 && c0 + col + j < a.DV; ++j) {
            if (a.out_bf16)
              static_cast<__nv_bfloat16*>(a.o)[oi + j] = __float2bfloat16(o4[j]);
            else
              static_cast<float*>(a.o)[oi + j] = o4[j];
          }
        }
      }
      const float4 u = *reinterpret_cast<const float4*>(B1 + t * kLdc + col);
      const float g = gw[t], m = -mw[t];
      *reinterpret_cast<float4*>(B2 + t * kLdc + col) =
          make_float4(wmma::__float_to_tf32(g * u.x), wmma::__float_to_tf32(g * u.y), wmma::__float_to_tf32(g * u.z),
                      wmma::__float_to_tf32(g * u.w));
      *reinterpret_cast<float4*>(B1 + t * kLdc + col) =
          make_float4(wmma::__float_to_tf32(m * u.x), wmma::__float_to_tf32(m * u.y), wmma::__float_to_tf32(m * u.z),
                      wmma::__float_to_tf32(m * u.w));
    }
    __syncthreads();
    mark(kPhStoreO);
    // S = A S - b M + k^T B2, M = Mu M + k^T B1; warp w owns kRT row tiles from
    // kRT (w / 2) and column tiles 2 (w % 2) + {0, 1} of both.
    {
      const float A_l = tail[0], b_l = tail[1], Mu_l = tail[2];
      constexpr int kRT = kRowTiles / 4;
      const int r0 = (warp >> 1) * kRT, n0 = (warp & 1) * 2;
      Acc as[kRT][2], am[kRT][2];
#pragma unroll
      for (int r = 0; r < kRT; ++r)
#pragma unroll
        for (int i = 0; i < 2; ++i) {
          wmma::load_matrix_sync(as[r][i], S + (r0 + r) * 16 * kLdc + (n0 + i) * 16, kLdc, wmma::mem_row_major);
          wmma::load_matrix_sync(am[r][i], M + (r0 + r) * 16 * kLdc + (n0 + i) * 16, kLdc, wmma::mem_row_major);
#pragma unroll
          for (int x = 0; x < as[r][i].num_elements; ++x) {
            as[r][i].x[x] = A_l * as[r][i].x[x] - b_l * am[r][i].x[x];
            am[r][i].x[x] = Mu_l * am[r][i].x[x];
          }
        }
#pragma unroll 2
      for (int kk = 0; kk < kC; kk += 8) {
        FragB fg[2], fm[2];
#pragma unroll
        for (int i = 0; i < 2; ++i) {
          wmma::load_matrix_sync(fg[i], B2 + kk * kLdc + (n0 + i) * 16, kLdc);
          wmma::load_matrix_sync(fm[i], B1 + kk * kLdc + (n0 + i) * 16, kLdc);
        }
#pragma unroll
        for (int r = 0; r < kRT; ++r) {
          FragAT fa;  // k^T: column-major view of k^'s rows
          wmma::load_matrix_sync(fa, kh + kk * kLd + (r0 + r) * 16, kLd);
#pragma unroll
          for (int i = 0; i < 2; ++i) {
            wmma::mma_sync(as[r][i], fa, fg[i], as[r][i]);
            wmma::mma_sync(am[r][i], fa, fm[i], am[r][i]);
          }
        }
      }
#pragma unroll
      for (int r = 0; r < kRT; ++r)
#pragma unroll
        for (int i = 0; i < 2; ++i) {
          wmma::store_matrix_sync(S + (r0 + r) * 16 * kLdc + (n0 + i) * 16, as[r][i], kLdc, wmma::mem_row_major);
          wmma::store_matrix_sync(M + (r0 + r) * 16 * kLdc + (n0 + i) * 16, am[r][i], kLdc, wmma::mem_row_major);
        }
    }
  }
  __syncthreads();
  mark(kPhState);
  if (clocked) {
    const size_t cta = (size_t(b) * gridDim.y + h) * gridDim.x + slice;
    for (int p = 0; p < kScanPhases; ++p) a.phase_clocks[cta * kScanPhases + p] = clk[p];
  }
  for (int e = tid; e < DKP * kCols; e += kThreads) {
    const int r = e / kCols, col = e % kCols;
    if (r < a.DK && c0 + col < a.DV) {
      if (a.s_final) a.s_final[st + size_t(r) * a.DV + c0 + col] = S[r * kLdc + col];
      if (a.m_final) a.m_final[st + size_t(r) * a.DV + c0 + col] = M[r * kLdc + col];
    }
  }
}

// Host side. Chunks per sequence of T tokens.
inline int64_t chunks_of(int64_t steps) { return (steps + kC - 1) / kC; }

// The arguments of one pass (ws and phase_clocks left to the caller).
inline ChunkArgs make_args(const RecurrentParams& p) {
  ChunkArgs a;
  copy_pass_args(a, p);
  a.n_chunks = static_cast<int>(chunks_of(p.steps));
  auto aligned = [](const void* x) { return reinterpret_cast<uintptr_t>(x) % 16 == 0; };
  a.o_vec4 = p.dv % 4 == 0 && aligned(p.o);
  a.kq_vec4 = p.dk % 4 == 0 && aligned(p.q) && aligned(p.k);
  a.v_vec4 = p.dv % 4 == 0 && aligned(p.v);
  return a;
}

// The two launches over `batch` sequences, each with its shared-memory limit raised.
template <int DKP, class In>
cudaError_t launch_prep(const ChunkArgs& a, int64_t batch, cudaStream_t st) {
  constexpr int smem = prep_smem_bytes<DKP>();
  auto* kernel = &chunk_prep_kernel<DKP, In>;
  if (cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem); e != cudaSuccess)
    return e;
  kernel<<<dim3(a.n_chunks, a.H, static_cast<unsigned>(batch)), kThreads, smem, st>>>(a);
  return cudaGetLastError();
}
template <int DKP, class In>
cudaError_t launch_scan(const ChunkArgs& a, int64_t batch, cudaStream_t st) {
  constexpr int smem = scan_smem_bytes<DKP>();
  auto* kernel = &chunk_scan_kernel<DKP, In>;
  if (cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem); e != cudaSuccess)
    return e;
  kernel<<<dim3((a.DV + kCols - 1) / kCols, a.H, static_cast<unsigned>(batch)), kThreads, smem, st>>>(a);
  return cudaGetLastError();
}

}  // namespace mdnstab::kernels::chunk_detail
