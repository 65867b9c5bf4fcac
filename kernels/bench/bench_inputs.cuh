// Random benchmark inputs made on the device (the host would take seconds for the
// large shapes): bf16 q, k, v and fp32 gates in the range a trained MDN layer reaches.
// Shared by kernels/bench/bench_recurrent.cu and bench_chunk.cu.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#define CUDA_OK(x)                                                                                 \
  do {                                                                                             \
    cudaError_t e_ = (x);                                                                          \
    if (e_ != cudaSuccess) {                                                                       \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_));     \
      std::exit(1);                                                                                \
    }                                                                                              \
  } while (0)

namespace mdnstab::bench {

struct Dims {
  int64_t B, T, H, DK, DV;
};

inline uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

__device__ float uniform01(uint64_t seed, uint64_t i) {
  uint64_t x = seed + i * 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  x ^= x >> 31;
  return static_cast<float>(x >> 40) * (1.0f / 16777216.0f);
}

// Random inputs on the device: the host would take seconds for the large shapes.
inline __global__ void fill_bf16(__nv_bfloat16* p, int64_t n, uint64_t seed, float lo, float hi) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    p[i] = __float2bfloat16_rn(lo + (hi - lo) * uniform01(seed, i));
}
inline __global__ void fill_f32(float* p, int64_t n, uint64_t seed, float lo, float hi) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    p[i] = lo + (hi - lo) * uniform01(seed, i);
}

struct InputSet {
  void *q = nullptr, *k = nullptr, *v = nullptr;
  float *la = nullptr, *lm = nullptr, *beta = nullptr, *eta = nullptr;
  size_t bytes = 0;
};

inline InputSet make_set(const Dims& s, uint64_t seed) {
  InputSet in;
  const int64_t tok = s.B * s.T * s.H;
  auto alloc = [&in](void** p, size_t b) {
    CUDA_OK(cudaMalloc(p, b));
    in.bytes += b;
  };
  alloc(&in.q, tok * s.DK * 2);
  alloc(&in.k, tok * s.DK * 2);
  alloc(&in.v, tok * s.DV * 2);
  alloc(reinterpret_cast<void**>(&in.la), tok * 4);
  alloc(reinterpret_cast<void**>(&in.lm), tok * 4);
  alloc(reinterpret_cast<void**>(&in.beta), tok * 4);
  alloc(reinterpret_cast<void**>(&in.eta), tok * 4);
  fill_bf16<<<1024, 256>>>(static_cast<__nv_bfloat16*>(in.q), tok * s.DK, splitmix(seed + 1), -1.f, 1.f);
  fill_bf16<<<1024, 256>>>(static_cast<__nv_bfloat16*>(in.k), tok * s.DK, splitmix(seed + 2), -1.f, 1.f);
  fill_bf16<<<1024, 256>>>(static_cast<__nv_bfloat16*>(in.v), tok * s.DV, splitmix(seed + 3), -1.f, 1.f);
  // Gates in the range a trained MDN layer reaches; the values do not change the work.
  fill_f32<<<1024, 256>>>(in.la, tok, splitmix(seed + 4), -0.1f, 0.f);
  fill_f32<<<1024, 256>>>(in.lm, tok, splitmix(seed + 5), -1.f, 0.f);
  fill_f32<<<1024, 256>>>(in.beta, tok, splitmix(seed + 6), 0.05f, 0.5f);
  fill_f32<<<1024, 256>>>(in.eta, tok, splitmix(seed + 7), 0.5f, 1.5f);
  CUDA_OK(cudaGetLastError());
  CUDA_OK(cudaDeviceSynchronize());
  return in;
}

// How many input sets a timing loop rotates through so that no set is still in L2 when
// it comes round again: more than twice L2 in all, at least two.
inline int rotation_sets(const Dims& s, size_t l2_bytes) {
  const int64_t tok = s.B * s.T * s.H;
  const size_t set_bytes = tok * (2 * s.DK + s.DV) * 2 + tok * 16;  // bf16 q, k, v; four fp32 gates
  const int n = static_cast<int>(2.0 * double(l2_bytes) / double(set_bytes)) + 2;
  return n < 2 ? 2 : n;
}

inline void free_set(InputSet& in) {
  for (void* p : {in.q, in.k, in.v, static_cast<void*>(in.la), static_cast<void*>(in.lm), static_cast<void*>(in.beta),
                  static_cast<void*>(in.eta)})
    cudaFree(p);
}

}  // namespace mdnstab::bench
