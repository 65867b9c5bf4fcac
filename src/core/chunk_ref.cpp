// Emulation of the paper's geometric-reordering chunkwise forward pass (DESIGN.md
// section 5), following the order of operations of the reference Triton kernels
// (chunk_mode_rule_fwd: cumsum, scaled dot, solve_tril, recompute_u_y_z, inter
// chunk h and o, intra chunk o). Per chunk of L <= C tokens, positions 0..L-1:
//   logA_t = cumsum log_alpha, logMu_t = cumsum log_mu,
//   log c_t = log(beta_t + eps) + cumsum(log_mu - log_alpha),  log C_t = logcumsumexp(log c)
//   Gq_{t,j} = exp(logA_t + log C_t - logMu_j) * (1 - exp(log C_{j-1} - log C_t)), j <= t
//   b_t = exp(logA_t + log C_t);  L_{t,j} = Gq_{t-1,j} (p_t . k~_j), j < t;  X = (I + L)^-1
//   u = X v,  y = X (A_{t-1} p),  z = X (b_{t-1} p),  v_new = u - y S + z M   (= -w)
//   o = scale [(A_t q) S - (b_t q) M + ((q k~^T) o Gq) v_new]
//   S <- A_L S - b_L M + k~^T (Gq_{L,.} v_new),  M <- Mu_L M - k~^T ((Mu_L/Mu_j) v_new)
// with k~ = eta k^. Derivation: S_t = A_t S_0 - b_t M_0 - sum_j Gamma_{t,j} k~_j w_j^T
// where Gamma_{t,j} = sum_{i=j..t} (A_t/A_i) beta_i (Mu_i/Mu_j) = (A_t/Mu_j)(C_t - C_{j-1}),
// c_i = beta_i Mu_i / A_i: the reordering that makes the chunk a few matrix products,
// and whose exp/1-exp factors lose precision (chunk_safety.hpp).
// Reference: chunk_plain_ref and recurrent_ref; tested in tests/test_chunk_ref.cpp.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include <Eigen/Dense>
#include <fmt/format.h>

#include "mdnstab/chunk_ref.hpp"
#include "serial_eigen.hpp"

namespace mdnstab {

namespace {

// Arithmetic policies. E: the type of elementwise arithmetic (every result
// rounded to it); S: the storage / accumulation type of matrix products.
struct PolicyF64 {
  using E = double;
  using S = double;
  static constexpr bool kRoundOperands = false, kRoundResults = false;
  static S operand(S x) { return x; }
  static S result(S x) { return x; }
};
struct PolicyF32 {
  using E = float;
  using S = float;
  static constexpr bool kRoundOperands = false, kRoundResults = false;
  static S operand(S x) { return x; }
  static S result(S x) { return x; }
};
// fp32 with tensor-core products on tf32 operands (Triton's default for fp32 tl.dot).
struct PolicyTf32 {
  using E = float;
  using S = float;
  static constexpr bool kRoundOperands = true, kRoundResults = false;
  static S operand(S x) { return round_tf32(x); }
  static S result(S x) { return x; }
};
// bf16 operands (exact products in fp32), fp32 accumulation, bf16 results.
struct PolicyBf16 {
  using E = Bf16;
  using S = float;
  static constexpr bool kRoundOperands = false, kRoundResults = true;
  static S operand(S x) { return x; }
  static S result(S x) { return round_bf16(x); }
};

template <class E>
E ex(E x) {
  using std::exp;
  return exp(x);
}
template <class E>
E lg(E x) {
  using std::log;
  return log(x);
}
template <class E>
E sq(E x) {
  using std::sqrt;
  return sqrt(x);
}

template <class P>
class Emulator {
 public:
  using E = typename P::E;
  using S = typename P::S;
  using Mat = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using RowV = Eigen::Matrix<S, 1, Eigen::Dynamic>;

  Emulator(const RecurrentArgs<E>& a, const ChunkOptions& c) : a_(a), c_(c) {
    scale_ = std::isnan(a.scale) ? E(1) / sq(E(a.dk)) : E(a.scale);
  }

  // One sequence n (batch row b, tokens [t0, t1)), head h, value columns [c0, c0 + w)
  // sharing their gates (all columns, or one when beta or eta is per channel).
  void run_group(int n, int b, int64_t t0, int64_t t1, int h, int c0, int w) {
    const int DK = a_.dk, DV = a_.dv;
    Mat Sst = Mat::Zero(DK, w), Mst = Mat::Zero(DK, w);  // [DK,w]
    const size_t soff = (size_t(n) * a_.heads + h) * size_t(DK) * DV;
    for (int i = 0; i < DK; ++i)
      for (int j = 0; j < w; ++j) {
        if (a_.s0) Sst(i, j) = S(a_.s0[soff + size_t(i) * DV + c0 + j]);
        if (a_.m0) Mst(i, j) = S(a_.m0[soff + size_t(i) * DV + c0 + j]);
      }
    for (int64_t ts = t0; ts < t1; ts += c_.chunk) {
      const int L = int(std::min<int64_t>(c_.chunk, t1 - ts));
      chunk(b, ts, L, h, c0, w, Sst, Mst);
      if (!Sst.allFinite() || !Mst.allFinite()) {
        // A non-finite state makes every later output non-finite (it enters each
        // through a product with nonzero decays): NaN the rest instead of computing it.
        for (int64_t t = ts + L; t < t1; ++t)
          for (int j = 0; j < w; ++j) a_.o[gate_index(b, t, h) * DV + c0 + j] = E(std::numeric_limits<float>::quiet_NaN());
        Sst.setConstant(std::numeric_limits<S>::quiet_NaN());
        Mst.setConstant(std::numeric_limits<S>::quiet_NaN());
        break;
      }
    }
    for (int i = 0; i < DK; ++i)
      for (int j = 0; j < w; ++j) {
        if (a_.s_final) a_.s_final[soff + size_t(i) * DV + c0 + j] = E(Sst(i, j));
        if (a_.m_final) a_.m_final[soff + size_t(i) * DV + c0 + j] = E(Mst(i, j));
      }
  }

 private:
  static E at(const Mat& m, int i, int j) { return E(m(i, j)); }
  static void put(Mat& m, int i, int j, E x) { m(i, j) = static_cast<S>(x); }

  // A matrix product on the tensor cores: operands rounded (tf32), accumulated
  // in S, the result rounded to E's storage (bf16).
  template <class X, class Y>
  static Mat mm(const Eigen::MatrixBase<X>& x, const Eigen::MatrixBase<Y>& y) {
    Mat r(x.rows(), y.cols());
    if constexpr (P::kRoundOperands) {
      const Mat xr = x.unaryExpr([](S v) { return P::operand(v); });
      const Mat yr = y.unaryExpr([](S v) { return P::operand(v); });
      r.noalias() = xr * yr;
    } else {
      r.noalias() = x * y;
    }
    if constexpr (P::kRoundResults) r = r.unaryExpr([](S v) { return P::result(v); });
    return r;
  }

  size_t gate_index(int b, int64_t t, int h) const { return (size_t(b) * a_.steps + size_t(t)) * a_.heads + h; }

  void chunk(int b, int64_t ts, int L, int h, int c0, int w, Mat& Sst, Mat& Mst) {
    const int DK = a_.dk, DV = a_.dv;
    const E ninf = E(-std::numeric_limits<float>::infinity());
    Mat Qh(L, DK), Pm(L, DK), Kt(L, DK), V(L, w);  // [L,DK], [L,w]
    std::vector<E> la(L), lm(L), be(L);
    for (int i = 0; i < L; ++i) {
      const size_t g = gate_index(b, ts + i, h);
      la[i] = a_.log_alpha[g];
      lm[i] = a_.log_mu[g];
      be[i] = a_.beta[a_.beta_per_channel ? g * DV + c0 : g];
      const E eta = a_.eta[a_.eta_per_channel ? g * DV + c0 : g];
      const E* kt = a_.k + g * DK;
      const E* qt = a_.q + g * DK;
      // L2 norms: reductions accumulated in S, as the kernel's tl.sum.
      S kn = 0, qn = 0;
      for (int d = 0; d < DK; ++d) {
        kn += static_cast<S>(kt[d]) * static_cast<S>(kt[d]);
        qn += static_cast<S>(qt[d]) * static_cast<S>(qt[d]);
      }
      const E kd = a_.l2norm_qk ? sq(E(kn)) + E(1e-6) : E(1);
      const E qd = a_.l2norm_qk ? sq(E(qn)) + E(1e-6) : E(1);
      const E rho = a_.p_scale == PScale::kAlpha ? ex(la[i]) : E(1);
      for (int d = 0; d < DK; ++d) {
        const E kh = kt[d] / kd;
        put(Qh, i, d, qt[d] / qd);
        put(Pm, i, d, rho * kh);
        put(Kt, i, d, eta * kh);
      }
      const E* vt = a_.v + g * DV + c0;
      for (int j = 0; j < w; ++j) put(V, i, j, vt[j]);
    }

    // Gate sums (chunk_mode_rule_cumsum_scalar_fwd).
    std::vector<E> la_cum(L), lm_cum(L), lc(L), lct(L), bt(L);
    {
      E sa = E(0), sm = E(0), sd = E(0);
      const E eps = E(c_.beta_eps);
      for (int i = 0; i < L; ++i) {
        sa = sa + la[i];
        sm = sm + lm[i];
        sd = sd + (lm[i] - la[i]);
        la_cum[i] = sa;
        lm_cum[i] = sm;
        lc[i] = lg(be[i] + eps) + sd;
      }
      // log C_t, the kernel's masked row max and sum of exps.
      for (int i = 0; i < L; ++i) {
        E mx = lc[0];
        for (int j = 1; j <= i; ++j) mx = std::max(mx, lc[j]);
        if (!(mx > ninf)) {  // every beta so far is 0: C_t = 0
          lct[i] = ninf;
          continue;
        }
        S sum = 0;
        for (int j = 0; j <= i; ++j) sum += static_cast<S>(ex(lc[j] - mx));
        lct[i] = lg(E(sum)) + mx;
      }
      for (int i = 0; i < L; ++i) bt[i] = ex(la_cum[i] + lct[i]);
    }

    // Decay mask Gq (chunk_scaled_dot_mode_rule_pkt_fwd).
    Mat Gq = Mat::Zero(L, L);  // [L,L] lower triangle with diagonal
    for (int i = 0; i < L; ++i) {
      if (!(lct[i] > ninf)) continue;  // C_t = 0: the row is exactly 0
      const E base = la_cum[i] + lct[i];
      for (int j = 0; j <= i; ++j) {
        const E x = (j == 0 ? ninf : lct[j - 1]) - lct[i];
        put(Gq, i, j, ex(base - lm_cum[j]) * (E(1) - ex(x)));
      }
    }
    // L = (p k~^T) o Gq shifted one row down; the shift is a tl.dot with a 0/1
    // matrix in the kernel, so its operand is rounded like any product operand.
    const Mat PK = mm(Pm, Kt.transpose());  // [L,L]
    Mat Lm = Mat::Zero(L, L);
    for (int i = 1; i < L; ++i)
      for (int j = 0; j < i; ++j) put(Lm, i, j, at(PK, i, j) * E(P::operand(Gq(i - 1, j))));

    // X = (I + L)^-1 by forward substitution (solve_tril: fp32 "ieee" reductions):
    // row i of the strict part is -L_i - sum_{m<i} L_{i,m} X_m.
    Mat X = Mat::Zero(L, L);  // [L,L]
    for (int i = 1; i < L; ++i) {
      RowV r = RowV::Zero(i);
      if (i > 1) r.noalias() = -Lm.row(i).head(i) * X.topLeftCorner(i, i);
      for (int j = 0; j < i; ++j) put(X, i, j, -at(Lm, i, j) + E(P::result(r(j))));
    }
    X.diagonal().setOnes();

    // Pseudo-value pieces (recompute_u_y_z_fwd).
    Mat PA(L, DK), PB(L, DK);  // [L,DK]
    for (int i = 0; i < L; ++i) {
      const E ba = i == 0 ? E(1) : ex(la_cum[i - 1]);
      const E bb = i == 0 ? E(0) : bt[i - 1];
      for (int d = 0; d < DK; ++d) {
        put(PA, i, d, ba * at(Pm, i, d));
        put(PB, i, d, bb * at(Pm, i, d));
      }
    }
    const Mat U = mm(X, V), Y = mm(X, PA), Z = mm(X, PB);  // [L,w], [L,DK], [L,DK]

    // Inter-chunk part and the new values (chunk_mode_rule_fwd_inter_qS_qM).
    const Mat YS = mm(Y, Sst), ZM = mm(Z, Mst);  // [L,w]
    Mat Vn(L, w), QA(L, DK), QB(L, DK);
    for (int i = 0; i < L; ++i) {
      for (int j = 0; j < w; ++j) put(Vn, i, j, at(U, i, j) + (at(ZM, i, j) - at(YS, i, j)));
      const E ea = ex(la_cum[i]);
      for (int d = 0; d < DK; ++d) {
        put(QA, i, d, ea * at(Qh, i, d));
        put(QB, i, d, bt[i] * at(Qh, i, d));
      }
    }
    const Mat O1 = mm(QA, Sst), O2 = mm(QB, Mst);  // [L,w]

    // Intra-chunk output (chunk_mode_rule_fwd_o), then o = o_intra + o_inter.
    const Mat QK = mm(Qh, Kt.transpose());  // [L,L]
    Mat Aq = Mat::Zero(L, L);
    for (int i = 0; i < L; ++i)
      for (int j = 0; j <= i; ++j) put(Aq, i, j, at(QK, i, j) * at(Gq, i, j));
    const Mat O3 = mm(Aq, Vn);  // [L,w]
    for (int i = 0; i < L; ++i) {
      E* ot = a_.o + gate_index(b, ts + i, h) * DV + c0;
      for (int j = 0; j < w; ++j) {
        const E inter = (at(O1, i, j) - at(O2, i, j)) * scale_;
        ot[j] = at(O3, i, j) * scale_ + inter;
      }
    }

    // State passing to the next chunk.
    const int l = L - 1;
    const E a_last = ex(la_cum[l]), mu_last = ex(lm_cum[l]), b_last = bt[l];
    Mat VS(L, w), VM(L, w);  // [L,w]
    for (int i = 0; i < L; ++i) {
      const E fs = at(Gq, l, i), fm = ex(lm_cum[l] - lm_cum[i]);
      for (int j = 0; j < w; ++j) {
        put(VS, i, j, at(Vn, i, j) * fs);
        put(VM, i, j, at(Vn, i, j) * fm);
      }
    }
    const Mat KS = mm(Kt.transpose(), VS), KM = mm(Kt.transpose(), VM);  // [DK,w]
    for (int i = 0; i < DK; ++i)
      for (int j = 0; j < w; ++j) {
        const E s = at(Sst, i, j), m = at(Mst, i, j);
        put(Sst, i, j, (a_last * s - b_last * m) + at(KS, i, j));
        put(Mst, i, j, mu_last * m - at(KM, i, j));
      }
  }

  const RecurrentArgs<E>& a_;
  ChunkOptions c_;
  E scale_;
};

template <class P>
void run_all(const RecurrentArgs<typename P::E>& a, const ChunkOptions& c) {
  const SerialEigenProducts serial;
  Emulator<P> em(a, c);
  const bool per_channel = a.beta_per_channel || a.eta_per_channel;
  const int n_seq = a.cu_seqlens ? a.num_seqs : a.batch;
  for (int n = 0; n < n_seq; ++n) {
    const int b = a.cu_seqlens ? 0 : n;
    const int64_t t0 = a.cu_seqlens ? a.cu_seqlens[n] : 0;
    const int64_t t1 = a.cu_seqlens ? a.cu_seqlens[n + 1] : a.steps;
    for (int h = 0; h < a.heads; ++h) {
      if (per_channel)
        for (int j = 0; j < a.dv; ++j) em.run_group(n, b, t0, t1, h, j, 1);
      else
        em.run_group(n, b, t0, t1, h, 0, a.dv);
    }
  }
}

// The same fields with non-null placeholders, so the shape checks of
// recurrent_ref (instantiated for float and double) serve every T.
template <class T>
RecurrentArgs<float> shape_of(const RecurrentArgs<T>& a) {
  static const float dummy = 0;
  auto p = [](const void* x) -> const float* { return x ? &dummy : nullptr; };
  RecurrentArgs<float> s;
  s.batch = a.batch, s.heads = a.heads, s.steps = a.steps, s.dk = a.dk, s.dv = a.dv;
  s.q = p(a.q), s.k = p(a.k), s.v = p(a.v), s.log_alpha = p(a.log_alpha), s.log_mu = p(a.log_mu);
  s.beta = p(a.beta), s.eta = p(a.eta);
  s.o = a.o ? const_cast<float*>(&dummy) : nullptr;
  s.scale = a.scale;
  s.cu_seqlens = a.cu_seqlens;
  s.num_seqs = a.num_seqs;
  return s;
}

template <class T>
std::vector<T> to_type(const double* x, size_t n) {
  std::vector<T> r(x ? n : 0);
  for (size_t i = 0; i < r.size(); ++i) r[i] = static_cast<T>(x[i]);
  return r;
}

template <class T>
Status run_as(const RecurrentArgs<double>& a, const ChunkOptions& c) {
  const int n_seq = a.cu_seqlens ? a.num_seqs : a.batch;
  const size_t tok = size_t(a.batch) * a.steps * a.heads, state = size_t(n_seq) * a.heads * a.dk * a.dv;
  const auto q = to_type<T>(a.q, tok * a.dk), k = to_type<T>(a.k, tok * a.dk), v = to_type<T>(a.v, tok * a.dv);
  const auto la = to_type<T>(a.log_alpha, tok), lm = to_type<T>(a.log_mu, tok);
  const auto beta = to_type<T>(a.beta, tok * (a.beta_per_channel ? a.dv : 1));
  const auto eta = to_type<T>(a.eta, tok * (a.eta_per_channel ? a.dv : 1));
  const auto s0 = to_type<T>(a.s0, state), m0 = to_type<T>(a.m0, state);
  std::vector<T> o(tok * a.dv), sf(a.s_final ? state : 0), mf(a.m_final ? state : 0);
  RecurrentArgs<T> t;
  t.batch = a.batch, t.heads = a.heads, t.steps = a.steps, t.dk = a.dk, t.dv = a.dv;
  t.q = q.data(), t.k = k.data(), t.v = v.data(), t.log_alpha = la.data(), t.log_mu = lm.data();
  t.beta = beta.data(), t.eta = eta.data();
  t.beta_per_channel = a.beta_per_channel, t.eta_per_channel = a.eta_per_channel;
  t.l2norm_qk = a.l2norm_qk, t.scale = a.scale, t.p_scale = a.p_scale;
  t.cu_seqlens = a.cu_seqlens, t.num_seqs = a.num_seqs;
  t.s0 = a.s0 ? s0.data() : nullptr, t.m0 = a.m0 ? m0.data() : nullptr;
  t.o = o.data(), t.s_final = a.s_final ? sf.data() : nullptr, t.m_final = a.m_final ? mf.data() : nullptr;
  if (Status s = chunk_ref(t, c); !s.is_ok()) return s;
  for (size_t i = 0; i < o.size(); ++i) a.o[i] = static_cast<double>(o[i]);
  for (size_t i = 0; i < sf.size(); ++i) a.s_final[i] = static_cast<double>(sf[i]);
  for (size_t i = 0; i < mf.size(); ++i) a.m_final[i] = static_cast<double>(mf[i]);
  return Status::ok();
}

}  // namespace

template <class T>
Status check(const RecurrentArgs<T>& a, const ChunkOptions& c) {
  if (Status s = check(shape_of(a)); !s.is_ok()) return s;
  if (c.chunk < 1 || c.chunk > kMaxChunk)
    return error(Code::kInvalidArgument, fmt::format("chunk size C = {} must be in [1, {}]", c.chunk, kMaxChunk));
  if (!std::isfinite(c.beta_eps) || c.beta_eps < 0)
    return error(Code::kInvalidArgument, fmt::format("beta_eps = {} must be finite and >= 0", c.beta_eps));
  if (c.tf32_products && !std::is_same_v<T, float>)
    return error(Code::kInvalidArgument, "tf32 products need float data");
  return Status::ok();
}

template <class T>
Status chunk_ref(const RecurrentArgs<T>& a, const ChunkOptions& c) {
  if (Status s = check(a, c); !s.is_ok()) return s;
  if constexpr (std::is_same_v<T, double>) {
    run_all<PolicyF64>(a, c);
  } else if constexpr (std::is_same_v<T, float>) {
    if (c.tf32_products)
      run_all<PolicyTf32>(a, c);
    else
      run_all<PolicyF32>(a, c);
  } else {
    run_all<PolicyBf16>(a, c);
  }
  return Status::ok();
}

Status chunk_ref(Precision p, const RecurrentArgs<double>& a, ChunkOptions c) {
  c.tf32_products = false;
  if (Status s = check(a, c); !s.is_ok()) return s;
  c.tf32_products = p == Precision::kTf32;
  switch (p) {
    case Precision::kFp64: return chunk_ref(a, c);
    case Precision::kFp32:
    case Precision::kTf32: return run_as<float>(a, c);
    case Precision::kBf16: return run_as<Bf16>(a, c);
  }
  return error(Code::kInvalidArgument, "unknown precision");
}

void round_to(Precision p, std::span<double> x) {
  switch (p) {
    case Precision::kFp64: return;
    case Precision::kFp32:
    case Precision::kTf32:
      for (double& v : x) v = static_cast<float>(v);
      return;
    case Precision::kBf16:
      for (double& v : x) v = round_bf16(v);
      return;
  }
}

template Status check(const RecurrentArgs<double>&, const ChunkOptions&);
template Status check(const RecurrentArgs<float>&, const ChunkOptions&);
template Status check(const RecurrentArgs<Bf16>&, const ChunkOptions&);
template Status chunk_ref(const RecurrentArgs<double>&, const ChunkOptions&);
template Status chunk_ref(const RecurrentArgs<float>&, const ChunkOptions&);
template Status chunk_ref(const RecurrentArgs<Bf16>&, const ChunkOptions&);

}  // namespace mdnstab
