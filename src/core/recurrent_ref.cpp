// Token-by-token MDN forward pass, DESIGN.md section 2:
//   w = S^T p - v;  M = mu M + eta k^ w^T;  S = alpha S - beta M;  o = S^T (scale q^).
#include "mdnstab/recurrent_ref.hpp"

#include <algorithm>
#include <vector>

#include <fmt/format.h>

namespace mdnstab {

template <class T>
Status check(const RecurrentArgs<T>& a) {
  auto bad = [](std::string m) { return error(Code::kInvalidArgument, std::move(m)); };
  if (a.batch < 1) return bad(fmt::format("batch = {} must be >= 1", a.batch));
  if (a.heads < 1) return bad(fmt::format("heads = {} must be >= 1", a.heads));
  if (a.steps < 0) return bad(fmt::format("steps = {} must be >= 0", a.steps));
  if (a.dk < 1) return bad(fmt::format("dk = {} must be >= 1", a.dk));
  if (a.dv < 1) return bad(fmt::format("dv = {} must be >= 1", a.dv));
  if (!a.q || !a.k || !a.v) return bad("q, k and v must be given");
  if (!a.log_alpha || !a.log_mu || !a.beta || !a.eta) return bad("log_alpha, log_mu, beta and eta must be given");
  if (!a.o) return bad("the output o must be given");
  if (!(std::isnan(a.scale) || std::isfinite(a.scale))) return bad(fmt::format("scale = {} is not finite", a.scale));
  if (a.cu_seqlens) {
    if (a.batch != 1) return bad(fmt::format("batch = {} must be 1 with cu_seqlens", a.batch));
    if (a.num_seqs < 1) return bad(fmt::format("num_seqs = {} must be >= 1", a.num_seqs));
    if (a.cu_seqlens[0] != 0) return bad("cu_seqlens[0] must be 0");
    for (int n = 0; n < a.num_seqs; ++n)
      if (a.cu_seqlens[n + 1] < a.cu_seqlens[n]) return bad(fmt::format("cu_seqlens decreases at {}", n + 1));
    if (a.cu_seqlens[a.num_seqs] != a.steps)
      return bad(fmt::format("cu_seqlens[{}] = {} must equal steps = {}", a.num_seqs, a.cu_seqlens[a.num_seqs], a.steps));
  }
  if (const RecurrentProbes* pr = a.probes) {
    if (pr->interval < 1) return bad(fmt::format("probe interval = {} must be >= 1", pr->interval));
    if (!pr->norm_s || !pr->norm_m || !pr->max_abs_o || !pr->first_nonfinite)
      return bad("probes need norm_s, norm_m, max_abs_o and first_nonfinite");
    int64_t longest = a.steps;
    if (a.cu_seqlens) {
      longest = 0;
      for (int n = 0; n < a.num_seqs; ++n) longest = std::max<int64_t>(longest, a.cu_seqlens[n + 1] - a.cu_seqlens[n]);
    }
    const int64_t need = (longest + pr->interval - 1) / pr->interval;
    if (pr->count < need)
      return bad(fmt::format("probe count = {} is below ceil({} / {}) = {}", pr->count, longest, pr->interval, need));
  }
  return Status::ok();
}

template <class T>
Status recurrent_ref(const RecurrentArgs<T>& a) {
  if (Status s = check(a); !s.is_ok()) return s;
  const int H = a.heads, DK = a.dk, DV = a.dv;
  const T scale = std::isnan(a.scale) ? T(1) / std::sqrt(T(DK)) : T(a.scale);
  const int n_seq = a.cu_seqlens ? a.num_seqs : a.batch;
  const size_t state = size_t(DK) * DV;
  std::vector<T> S(state), M(state), kh(DK), qh(DK), w(DV);  // S, M: [DK,DV]

  RecurrentProbes* pr = a.probes;
  if (pr) {
    const size_t slots = size_t(n_seq) * H * size_t(pr->count);
    for (size_t i = 0; i < slots; ++i) pr->norm_s[i] = pr->norm_m[i] = pr->max_abs_o[i] = NAN;
    for (size_t i = 0; i < size_t(n_seq) * H; ++i) pr->first_nonfinite[i] = -1;
  }

  for (int n = 0; n < n_seq; ++n) {
    // Token range and batch index of sequence n in the [B,T,H,*] layout.
    const int b = a.cu_seqlens ? 0 : n;
    const int64_t t0 = a.cu_seqlens ? a.cu_seqlens[n] : 0;
    const int64_t t1 = a.cu_seqlens ? a.cu_seqlens[n + 1] : a.steps;
    for (int h = 0; h < H; ++h) {
      const size_t soff = (size_t(n) * H + h) * state;
      for (size_t i = 0; i < state; ++i) {
        S[i] = a.s0 ? a.s0[soff + i] : T(0);
        M[i] = a.m0 ? a.m0[soff + i] : T(0);
      }
      double max_o = 0;  // largest |o| since the last probe; NaN sticks
      int64_t probe = 0;
      int64_t* first_bad = pr ? &pr->first_nonfinite[size_t(n) * H + h] : nullptr;
      for (int64_t t = t0; t < t1; ++t) {
        const size_t bt = size_t(b) * a.steps + size_t(t);  // token index in [B,T]
        const size_t g = bt * H + h;                          // gate index [B,T,H]
        const T* kt = a.k + g * DK;
        const T* qt = a.q + g * DK;
        const T* vt = a.v + g * DV;
        T kn = 0, qn = 0;
        for (int i = 0; i < DK; ++i) {
          kn += kt[i] * kt[i];
          qn += qt[i] * qt[i];
        }
        const T kd = a.l2norm_qk ? std::sqrt(kn) + T(1e-6) : T(1);
        const T qd = a.l2norm_qk ? std::sqrt(qn) + T(1e-6) : T(1);
        for (int i = 0; i < DK; ++i) {
          kh[i] = kt[i] / kd;
          qh[i] = qt[i] / qd;
        }
        const T alpha = std::exp(a.log_alpha[g]);
        const T mu = std::exp(a.log_mu[g]);
        const T rp = a.p_scale == PScale::kAlpha ? alpha : T(1);
        // w = S^T p - v with p = rp * k^
        for (int j = 0; j < DV; ++j) w[j] = T(0);
        for (int i = 0; i < DK; ++i) {
          const T pi = rp * kh[i];
          const T* Si = &S[size_t(i) * DV];
          for (int j = 0; j < DV; ++j) w[j] += Si[j] * pi;
        }
        for (int j = 0; j < DV; ++j) w[j] -= vt[j];
        bool finite = true;  // w, M, S and o of this step, when probed
        if (pr)
          for (int j = 0; j < DV; ++j) finite = finite && std::isfinite(w[j]);
        const T* beta = a.beta + (a.beta_per_channel ? g * DV : g);
        const T* eta = a.eta + (a.eta_per_channel ? g * DV : g);
        for (int i = 0; i < DK; ++i) {
          T* Si = &S[size_t(i) * DV];
          T* Mi = &M[size_t(i) * DV];
          for (int j = 0; j < DV; ++j) {
            const T e = eta[a.eta_per_channel ? j : 0];
            const T be = beta[a.beta_per_channel ? j : 0];
            Mi[j] = mu * Mi[j] + e * kh[i] * w[j];
            Si[j] = alpha * Si[j] - be * Mi[j];
          }
        }
        T* ot = a.o + g * DV;
        for (int j = 0; j < DV; ++j) ot[j] = T(0);
        for (int i = 0; i < DK; ++i) {
          const T qi = scale * qh[i];
          const T* Si = &S[size_t(i) * DV];
          for (int j = 0; j < DV; ++j) ot[j] += Si[j] * qi;
        }
        if (pr) {
          for (size_t i = 0; i < state; ++i) finite = finite && std::isfinite(S[i]) && std::isfinite(M[i]);
          for (int j = 0; j < DV; ++j) {
            const double ao = std::abs(double(ot[j]));
            finite = finite && std::isfinite(ao);
            if (std::isnan(ao) || ao > max_o) max_o = std::isnan(max_o) ? max_o : ao;
          }
          const int64_t step = t - t0 + 1;
          if (!finite && *first_bad < 0) *first_bad = step;
          if (step % pr->interval == 0 || t + 1 == t1) {
            double ss = 0, sm = 0;
            for (size_t i = 0; i < state; ++i) {
              ss += double(S[i]) * double(S[i]);
              sm += double(M[i]) * double(M[i]);
            }
            const size_t slot = (size_t(n) * H + h) * size_t(pr->count) + size_t(probe++);
            pr->norm_s[slot] = std::sqrt(ss);
            pr->norm_m[slot] = std::sqrt(sm);
            pr->max_abs_o[slot] = max_o;
            max_o = 0;
          }
        }
      }
      for (size_t i = 0; i < state; ++i) {
        if (a.s_final) a.s_final[soff + i] = S[i];
        if (a.m_final) a.m_final[soff + i] = M[i];
      }
    }
  }
  return Status::ok();
}

template Status check(const RecurrentArgs<float>&);
template Status check(const RecurrentArgs<double>&);
template Status recurrent_ref(const RecurrentArgs<float>&);
template Status recurrent_ref(const RecurrentArgs<double>&);

}  // namespace mdnstab
