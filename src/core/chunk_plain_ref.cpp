// The chunkwise MDN forward pass in exact algebra (double), the second
// reference of the chunkwise path (STYLE.md 2.2): the chunk decomposition of
// chunk_ref without its geometric reordering. With A_t = prod_{i<=t} alpha_i and
// Mu_t = prod_{i<=t} mu_i inside the chunk,
//   S_t = A_t S_0 - b_t M_0 - sum_{j<=t} Gamma_{t,j} k~_j w_j^T,
//   Gamma_{t,j} = alpha_t Gamma_{t-1,j} + beta_t (Mu_t/Mu_j),   b_t = alpha_t b_{t-1} + beta_t Mu_t,
// so only products of gates <= 1 are formed (no exp of a growing sum, no 1 - exp).
// The pseudo-values u = -w solve (I + L) u = v - A_{t-1} S_0^T p_t + b_{t-1} M_0^T p_t
// with L_{t,j} = Gamma_{t-1,j} p_t.k~_j, by forward substitution (no explicit inverse).
// Tested against recurrent_ref in tests/test_chunk_ref.cpp.
#include <algorithm>
#include <cmath>
#include <vector>

#include <Eigen/Dense>

#include "mdnstab/chunk_ref.hpp"
#include "serial_eigen.hpp"

namespace mdnstab {

namespace {

using Mat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct Plain {
  const RecurrentArgs<double>& a;
  int C;
  double scale;

  size_t gate_index(int b, int64_t t, int h) const { return (size_t(b) * a.steps + size_t(t)) * a.heads + h; }

  void chunk(int b, int64_t ts, int L, int h, int c0, int w, Mat& S, Mat& M) const {
    const int DK = a.dk, DV = a.dv;
    Mat Q(L, DK), P(L, DK), K(L, DK), V(L, w);  // [L,DK], [L,w]
    std::vector<double> alpha(L), mu(L), beta(L);
    for (int i = 0; i < L; ++i) {
      const size_t g = gate_index(b, ts + i, h);
      alpha[i] = std::exp(a.log_alpha[g]);
      mu[i] = std::exp(a.log_mu[g]);
      beta[i] = a.beta[a.beta_per_channel ? g * DV + c0 : g];
      const double eta = a.eta[a.eta_per_channel ? g * DV + c0 : g];
      const double* kt = a.k + g * DK;
      const double* qt = a.q + g * DK;
      double kn = 0, qn = 0;
      for (int d = 0; d < DK; ++d) {
        kn += kt[d] * kt[d];
        qn += qt[d] * qt[d];
      }
      const double kd = a.l2norm_qk ? std::sqrt(kn) + 1e-6 : 1.0;
      const double qd = a.l2norm_qk ? std::sqrt(qn) + 1e-6 : 1.0;
      const double rho = a.p_scale == PScale::kAlpha ? alpha[i] : 1.0;
      for (int d = 0; d < DK; ++d) {
        const double kh = kt[d] / kd;
        Q(i, d) = scale * qt[d] / qd;
        P(i, d) = rho * kh;
        K(i, d) = eta * kh;
      }
      for (int j = 0; j < w; ++j) V(i, j) = a.v[g * DV + c0 + j];
    }
    // Gamma (lower triangle with diagonal), A_t, Mu_t, b_t by recursions.
    Mat G = Mat::Zero(L, L);                  // [L,L]
    std::vector<double> A(L), Mu(L), bt(L);
    for (int j = 0; j < L; ++j) {
      double ratio = 1;  // Mu_t / Mu_j
      G(j, j) = beta[j];
      for (int t = j + 1; t < L; ++t) {
        ratio *= mu[t];
        G(t, j) = alpha[t] * G(t - 1, j) + beta[t] * ratio;
      }
    }
    for (int t = 0; t < L; ++t) {
      A[t] = (t ? A[t - 1] : 1.0) * alpha[t];
      Mu[t] = (t ? Mu[t - 1] : 1.0) * mu[t];
      bt[t] = (t ? alpha[t] * bt[t - 1] : 0.0) + beta[t] * Mu[t];
    }
    const Mat PK = P * K.transpose(), QK = Q * K.transpose();  // [L,L]
    const Mat PS = P * S, PM = P * M, QS = Q * S, QM = Q * M;   // [L,w]
    Mat U(L, w);  // [L,w] pseudo-values
    for (int t = 0; t < L; ++t) {
      const double a_prev = t ? A[t - 1] : 1.0, b_prev = t ? bt[t - 1] : 0.0;
      U.row(t) = V.row(t) - a_prev * PS.row(t) + b_prev * PM.row(t);
      for (int j = 0; j < t; ++j) U.row(t) -= (G(t - 1, j) * PK(t, j)) * U.row(j);
    }
    Mat W = G.cwiseProduct(QK);  // [L,L]
    const Mat O = W * U;         // [L,w]
    for (int t = 0; t < L; ++t) {
      double* ot = a.o + gate_index(b, ts + t, h) * DV + c0;
      for (int j = 0; j < w; ++j) ot[j] = A[t] * QS(t, j) - bt[t] * QM(t, j) + O(t, j);
    }
    const int l = L - 1;
    Mat US(L, w), UM(L, w);
    for (int j = 0; j < L; ++j) {
      double ratio = 1;  // Mu_l / Mu_j
      for (int t = j + 1; t <= l; ++t) ratio *= mu[t];
      US.row(j) = G(l, j) * U.row(j);
      UM.row(j) = ratio * U.row(j);
    }
    const Mat Snew = A[l] * S - bt[l] * M + K.transpose() * US;
    M = Mu[l] * M - K.transpose() * UM;
    S = Snew;
  }

  void group(int n, int b, int64_t t0, int64_t t1, int h, int c0, int w) const {
    const int DK = a.dk, DV = a.dv;
    Mat S = Mat::Zero(DK, w), M = Mat::Zero(DK, w);  // [DK,w]
    const size_t soff = (size_t(n) * a.heads + h) * size_t(DK) * DV;
    for (int i = 0; i < DK; ++i)
      for (int j = 0; j < w; ++j) {
        if (a.s0) S(i, j) = a.s0[soff + size_t(i) * DV + c0 + j];
        if (a.m0) M(i, j) = a.m0[soff + size_t(i) * DV + c0 + j];
      }
    for (int64_t ts = t0; ts < t1; ts += C) chunk(b, ts, int(std::min<int64_t>(C, t1 - ts)), h, c0, w, S, M);
    for (int i = 0; i < DK; ++i)
      for (int j = 0; j < w; ++j) {
        if (a.s_final) a.s_final[soff + size_t(i) * DV + c0 + j] = S(i, j);
        if (a.m_final) a.m_final[soff + size_t(i) * DV + c0 + j] = M(i, j);
      }
  }
};

}  // namespace

Status chunk_plain_ref(const RecurrentArgs<double>& a, int chunk) {
  ChunkOptions c;
  c.chunk = chunk;
  if (Status s = check(a, c); !s.is_ok()) return s;
  const SerialEigenProducts serial;
  const Plain p{a, chunk, std::isnan(a.scale) ? 1.0 / std::sqrt(double(a.dk)) : a.scale};
  const bool per_channel = a.beta_per_channel || a.eta_per_channel;
  const int n_seq = a.cu_seqlens ? a.num_seqs : a.batch;
  for (int n = 0; n < n_seq; ++n) {
    const int b = a.cu_seqlens ? 0 : n;
    const int64_t t0 = a.cu_seqlens ? a.cu_seqlens[n] : 0;
    const int64_t t1 = a.cu_seqlens ? a.cu_seqlens[n + 1] : a.steps;
    for (int h = 0; h < a.heads; ++h) {
      if (per_channel)
        for (int j = 0; j < a.dv; ++j) p.group(n, b, t0, t1, h, j, 1);
      else
        p.group(n, b, t0, t1, h, 0, a.dv);
    }
  }
  return Status::ok();
}

}  // namespace mdnstab
