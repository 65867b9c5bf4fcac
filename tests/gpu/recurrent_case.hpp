// Random inputs of one recurrent forward pass, rounded to the kernel's input dtype,
// and the double-precision CPU reference (src/mdnstab/recurrent_ref.hpp) on the same
// rounded values. Used by tests/gpu/test_gpu_recurrent.cpp.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "mdn_kernels.hpp"
#include "mdnstab/recurrent_ref.hpp"

namespace mdnstab::test {

// bf16 round-to-nearest-even of a float, as its 16 raw bits.
inline uint16_t to_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;  // NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float from_bf16(uint16_t b) {
  const uint32_t u = uint32_t(b) << 16;
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}

enum class Keys { kRandom, kPlane };  // Gaussian keys, or keys rotating in the (e1, e2) plane

struct GateRange {  // per-token gates drawn uniformly in [lo, hi] (lo == hi: fixed)
  double log_alpha_lo = -0.2, log_alpha_hi = 0.0;
  double log_mu_lo = -0.7, log_mu_hi = 0.0;
  double beta_lo = 0.0, beta_hi = 1.0;
  double eta_lo = 0.0, eta_hi = 2.0;
};

struct Case {
  std::string name;
  int64_t B = 1, T = 16, H = 1, DK = 32, DV = 32;
  kernels::DType in = kernels::DType::kF32;
  kernels::DType out = kernels::DType::kF32;
  bool beta_pc = false, eta_pc = false, l2norm = true, init_state = false;
  kernels::PScale p_scale = kernels::PScale::kAlpha;
  float scale = NAN;
  std::vector<int64_t> seqlens;  // varlen when non-empty (B must be 1, T = sum)
  GateRange gates;
  Keys keys = Keys::kRandom;
  double theta = 0.3;  // rotation per step for Keys::kPlane
  int warps = 0;
  uint64_t seed = 1;
};

// A case with the defaults and a name (set the rest field by field).
inline Case named(const std::string& name) {
  Case c;
  c.name = name;
  return c;
}

// Inputs as the kernel sees them (raw dtype bytes) and as the reference sees them.
struct CaseData {
  Case c;
  std::vector<int64_t> cu;           // [N+1] when varlen
  std::vector<uint8_t> q, k, v;      // raw, [B,T,H,DK] / [B,T,H,DV]
  std::vector<float> la, lm, beta, eta, s0, m0;
  std::vector<double> qd, kd, vd, lad, lmd, betad, etad, s0d, m0d;  // rounded values in double
  int64_t nseq() const { return c.seqlens.empty() ? c.B : int64_t(c.seqlens.size()); }
  int64_t tokens() const { return c.B * c.T; }
};

inline CaseData make_case(const Case& c) {
  CaseData d;
  d.c = c;
  if (!c.seqlens.empty()) {
    d.c.B = 1;
    d.cu.push_back(0);
    for (int64_t L : c.seqlens) d.cu.push_back(d.cu.back() + L);
    d.c.T = d.cu.back();
  }
  std::mt19937_64 rng(c.seed);
  std::normal_distribution<double> gauss(0.0, 1.0);
  std::uniform_real_distribution<double> uni(0.0, 1.0);
  const int64_t BT = d.tokens(), H = c.H, DK = c.DK, DV = c.DV;
  const size_t es = c.in == kernels::DType::kBF16 ? 2 : 4;

  // Stores x rounded to the input dtype into raw (index i) and returns the rounded value.
  auto put = [&](std::vector<uint8_t>& raw, size_t i, double x) -> double {
    if (c.in == kernels::DType::kBF16) {
      const uint16_t b = to_bf16(static_cast<float>(x));
      std::memcpy(&raw[i * 2], &b, 2);
      return from_bf16(b);
    }
    const float f = static_cast<float>(x);
    std::memcpy(&raw[i * 4], &f, 4);
    return f;
  };
  d.q.resize(BT * H * DK * es);
  d.k.resize(BT * H * DK * es);
  d.v.resize(BT * H * DV * es);
  d.qd.resize(BT * H * DK);
  d.kd.resize(BT * H * DK);
  d.vd.resize(BT * H * DV);
  // Per (sequence, head) rotation of the plane keys: k_t = cos(t theta) e1 + sin(t theta) e2.
  for (int64_t bt = 0; bt < BT; ++bt)
    for (int64_t h = 0; h < H; ++h) {
      const size_t base = (bt * H + h) * DK;
      const double t = double(bt % std::max<int64_t>(c.T, 1));
      for (int64_t i = 0; i < DK; ++i) {
        d.qd[base + i] = put(d.q, base + i, gauss(rng));
        double kv = gauss(rng);
        if (c.keys == Keys::kPlane) kv = i == 0 ? std::cos(t * c.theta) : i == 1 ? std::sin(t * c.theta) : 0.0;
        d.kd[base + i] = put(d.k, base + i, kv);
      }
      for (int64_t j = 0; j < DV; ++j) d.vd[(bt * H + h) * DV + j] = put(d.v, (bt * H + h) * DV + j, gauss(rng));
    }
  auto draw = [&](double lo, double hi) { return lo == hi ? lo : lo + (hi - lo) * uni(rng); };
  const GateRange& g = c.gates;
  d.la.resize(BT * H);
  d.lm.resize(BT * H);
  for (int64_t i = 0; i < BT * H; ++i) {
    d.la[i] = static_cast<float>(draw(g.log_alpha_lo, g.log_alpha_hi));
    d.lm[i] = static_cast<float>(draw(g.log_mu_lo, g.log_mu_hi));
  }
  d.beta.resize(BT * H * (c.beta_pc ? DV : 1));
  d.eta.resize(BT * H * (c.eta_pc ? DV : 1));
  for (auto& x : d.beta) x = static_cast<float>(draw(g.beta_lo, g.beta_hi));
  for (auto& x : d.eta) x = static_cast<float>(draw(g.eta_lo, g.eta_hi));
  if (c.init_state) {
    const size_t st = d.nseq() * H * DK * DV;
    d.s0.resize(st);
    d.m0.resize(st);
    for (auto& x : d.s0) x = static_cast<float>(0.3 * gauss(rng));
    for (auto& x : d.m0) x = static_cast<float>(0.3 * gauss(rng));
  }
  auto widen = [](const std::vector<float>& f) { return std::vector<double>(f.begin(), f.end()); };
  d.lad = widen(d.la);
  d.lmd = widen(d.lm);
  d.betad = widen(d.beta);
  d.etad = widen(d.eta);
  d.s0d = widen(d.s0);
  d.m0d = widen(d.m0);
  return d;
}

// Reference outputs of a case in precision T (double for accuracy, float to match the
// kernel's fp32 overflow behaviour).
template <class T>
struct RefOut {
  std::vector<T> o, s_final, m_final;
  std::vector<double> norm_s, norm_m, max_o;
  std::vector<int64_t> first_bad;
  Status status;
};

template <class T>
RefOut<T> run_reference(const CaseData& d, int64_t probe_interval = 0) {
  const Case& c = d.c;
  auto cast = [](const std::vector<double>& x) { return std::vector<T>(x.begin(), x.end()); };
  const auto q = cast(d.qd), k = cast(d.kd), v = cast(d.vd), la = cast(d.lad), lm = cast(d.lmd);
  const auto beta = cast(d.betad), eta = cast(d.etad), s0 = cast(d.s0d), m0 = cast(d.m0d);
  RefOut<T> r;
  const size_t st = d.nseq() * c.H * c.DK * c.DV;
  r.o.assign(d.tokens() * c.H * c.DV, T(0));
  r.s_final.assign(st, T(0));
  r.m_final.assign(st, T(0));
  RecurrentArgs<T> a;
  a.batch = static_cast<int>(c.B);
  a.heads = static_cast<int>(c.H);
  a.steps = static_cast<int>(c.T);
  a.dk = static_cast<int>(c.DK);
  a.dv = static_cast<int>(c.DV);
  a.q = q.data();
  a.k = k.data();
  a.v = v.data();
  a.log_alpha = la.data();
  a.log_mu = lm.data();
  a.beta = beta.data();
  a.eta = eta.data();
  a.beta_per_channel = c.beta_pc;
  a.eta_per_channel = c.eta_pc;
  a.l2norm_qk = c.l2norm;
  a.scale = std::isnan(c.scale) ? NAN : double(c.scale);
  a.p_scale = c.p_scale == kernels::PScale::kAlpha ? PScale::kAlpha : PScale::kOne;
  if (!d.cu.empty()) {
    a.cu_seqlens = d.cu.data();
    a.num_seqs = static_cast<int>(d.cu.size() - 1);
  }
  if (c.init_state) {
    a.s0 = s0.data();
    a.m0 = m0.data();
  }
  a.o = r.o.data();
  a.s_final = r.s_final.data();
  a.m_final = r.m_final.data();
  RecurrentProbes pr;
  if (probe_interval > 0) {
    int64_t longest = c.T;
    if (!d.cu.empty()) {
      longest = 0;
      for (size_t n = 0; n + 1 < d.cu.size(); ++n) longest = std::max(longest, d.cu[n + 1] - d.cu[n]);
    }
    pr.interval = probe_interval;
    pr.count = (longest + probe_interval - 1) / probe_interval;
    const size_t slots = d.nseq() * c.H * pr.count;
    r.norm_s.resize(slots);
    r.norm_m.resize(slots);
    r.max_o.resize(slots);
    r.first_bad.resize(d.nseq() * c.H);
    pr.norm_s = r.norm_s.data();
    pr.norm_m = r.norm_m.data();
    pr.max_abs_o = r.max_o.data();
    pr.first_nonfinite = r.first_bad.data();
    a.probes = &pr;
  }
  r.status = recurrent_ref(a);
  return r;
}

}  // namespace mdnstab::test
