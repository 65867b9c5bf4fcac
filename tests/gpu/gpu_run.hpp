// Runs one case (tests/gpu/recurrent_case.hpp) through a GPU forward pass on
// NaN-poisoned device buffers, so unwritten outputs fail, and compares outputs with
// a reference. Shared by tests/gpu/test_gpu_recurrent.cpp and test_gpu_chunk.cpp.
#pragma once

#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "recurrent_case.hpp"

namespace mdnstab::test {

namespace kn = mdnstab::kernels;

inline bool have_gpu(std::string* why) { return kn::device_count(why) > 0; }

#define REQUIRE_GPU()                                             \
  do {                                                            \
    std::string why_;                                             \
    if (!have_gpu(&why_)) {                                       \
      GTEST_SKIP() << "no GPU: " << why_;                         \
    }                                                             \
  } while (0)

// A device buffer, NaN-poisoned (all bytes 0xff) on allocation.
struct Dev {
  void* p = nullptr;
  size_t bytes = 0;
  explicit Dev(size_t n) : bytes(std::max<size_t>(n, 1)) {
    EXPECT_EQ(cudaMalloc(&p, bytes), cudaSuccess);
    EXPECT_EQ(cudaMemset(p, 0xff, bytes), cudaSuccess);
  }
  template <class T>
  Dev(const std::vector<T>& host) : Dev(host.size() * sizeof(T)) {
    if (!host.empty()) {
      EXPECT_EQ(cudaMemcpy(p, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
    }
  }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  ~Dev() { cudaFree(p); }
  template <class T>
  std::vector<T> get(size_t n) const {
    std::vector<T> h(n);
    EXPECT_EQ(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return h;
  }
};

struct GpuOut {
  std::vector<double> o, s_final, m_final;  // widened
  std::vector<double> norm_s, norm_m;
  std::vector<float> max_o;
  std::vector<int64_t> first_bad;
  kn::Status status = kn::Status::kOk;
  std::string why;
};

inline GpuOut run_gpu(const CaseData& d, int64_t probe_interval = 0, kn::Algorithm alg = kn::Algorithm::kRecurrent) {
  const Case& c = d.c;
  const int64_t N = d.nseq(), BT = d.tokens();
  const size_t st = N * c.H * c.DK * c.DV, nout = BT * c.H * c.DV;
  const size_t os = c.out == kn::DType::kBF16 ? 2 : 4;
  Dev q(d.q), k(d.k), v(d.v), la(d.la), lm(d.lm), beta(d.beta), eta(d.eta), cu(d.cu), s0(d.s0), m0(d.m0);
  Dev o(nout * os), sf(st * 4), mf(st * 4);
  kn::RecurrentParams p;
  p.batch = c.B;
  p.steps = c.T;
  p.heads = c.H;
  p.dk = c.DK;
  p.dv = c.DV;
  p.in_dtype = c.in;
  p.out_dtype = c.out;
  p.q = q.p;
  p.k = k.p;
  p.v = v.p;
  p.log_alpha = static_cast<const float*>(la.p);
  p.log_mu = static_cast<const float*>(lm.p);
  p.beta = static_cast<const float*>(beta.p);
  p.eta = static_cast<const float*>(eta.p);
  p.beta_per_channel = c.beta_pc;
  p.eta_per_channel = c.eta_pc;
  p.p_scale = c.p_scale;
  p.l2norm_qk = c.l2norm;
  p.scale = c.scale;
  p.warps_per_cta = c.warps;
  if (!d.cu.empty()) {
    p.cu_seqlens = static_cast<const int64_t*>(cu.p);
    p.num_seqs = N;
    for (int64_t n = 0; n < N; ++n) p.max_seqlen = std::max(p.max_seqlen, d.cu[n + 1] - d.cu[n]);
  }
  if (c.init_state) {
    p.s0 = static_cast<const float*>(s0.p);
    p.m0 = static_cast<const float*>(m0.p);
  }
  p.o = o.p;
  p.s_final = static_cast<float*>(sf.p);
  p.m_final = static_cast<float*>(mf.p);
  p.probe_interval = probe_interval;
  const int64_t P = kn::probe_count(p);
  Dev ns(N * c.H * std::max<int64_t>(P, 1) * 8), nm(N * c.H * std::max<int64_t>(P, 1) * 8);
  Dev mo(N * c.H * std::max<int64_t>(P, 1) * 4), fb(N * c.H * 8);
  if (probe_interval > 0) {
    p.probe_norm_s = static_cast<double*>(ns.p);
    p.probe_norm_m = static_cast<double*>(nm.p);
    p.probe_max_abs_o = static_cast<float*>(mo.p);
    p.first_nonfinite = static_cast<int64_t*>(fb.p);
  }
  GpuOut r;
  r.status = alg == kn::Algorithm::kChunk ? kn::run_chunk(p, nullptr, nullptr, &r.why) : kn::run(p, nullptr, &r.why);
  if (r.status != kn::Status::kOk) return r;
  const cudaError_t e = cudaDeviceSynchronize();
  EXPECT_EQ(e, cudaSuccess) << cudaGetErrorString(e);
  if (c.out == kn::DType::kBF16) {
    const auto raw = o.get<uint16_t>(nout);
    for (uint16_t b : raw) r.o.push_back(from_bf16(b));
  } else {
    const auto f = o.get<float>(nout);
    r.o.assign(f.begin(), f.end());
  }
  const auto s = sf.get<float>(st), m = mf.get<float>(st);
  r.s_final.assign(s.begin(), s.end());
  r.m_final.assign(m.begin(), m.end());
  if (probe_interval > 0) {
    r.norm_s = ns.get<double>(N * c.H * P);
    r.norm_m = nm.get<double>(N * c.H * P);
    r.max_o = mo.get<float>(N * c.H * P);
    r.first_bad = fb.get<int64_t>(N * c.H);
  }
  return r;
}

struct Err {
  double rel = 0, max_abs = 0;
  bool finite = true;
  double ref_norm = 0;
};

// ||x - ref|| / ||ref|| (Frobenius), max |x - ref|; NaN or inf in x fails `finite`.
template <class R>
Err compare(const std::vector<double>& x, const std::vector<R>& ref) {
  Err e;
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(x[i])) e.finite = false;
    const double d = x[i] - double(ref[i]);
    num += d * d;
    den += double(ref[i]) * double(ref[i]);
    e.max_abs = std::max(e.max_abs, std::abs(d));
  }
  e.ref_norm = std::sqrt(den);
  e.rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  return e;
}

}  // namespace mdnstab::test
