// The gate-memory quadratic bound for gate sets (DESIGN.md section 4): one W per
// word of the last m gate rows' labels instead of one W for the whole set. A
// label is the row itself, or for large sets the row's cluster.
//
// V_w(x) = sum over key coordinates of (s, m) W_w (s, m)^T is invariant under
// rotations of key space, so "V_w' (T_k(g) x) <= gamma^2 V_w(x) for every unit
// key k" splits, exactly as for one W, into the 2x2 LMIs
//   A^T W_w' A <= gamma^2 W_w   for A in {A_par(g), A_perp(g)},
// one pair per edge w -> w' = (w without its oldest label) + label(g) of the De
// Bruijn graph on words of m labels, one edge per row g. That graph is
// path-complete (every gate sequence is a walk on it), so along any sequence of
// gate rows and keys
//   V_{w_t}(x_t) <= gamma^2 V_{w_{t-1}}(x_{t-1}),
// i.e. |x_t| <= sqrt(cond) gamma^t |x_0| with cond = max lambda_max(W) / min
// lambda_min(W): gamma bounds the joint spectral radius. m = 0 is the common W.
// For a box the transitions of any gate inside are convex combinations of the
// vertices' (A_par and A_perp are affine in each gate), and the joint spectral
// radius of a set equals that of its convex hull: the vertices' gamma holds
// for the whole box.
//
// The optimum is a generalized eigenvalue problem, quasi-convex in W: bisection
// on gamma, each step a feasibility problem (maximize t subject to
// gamma^2 W_w - A^T W_w' A >= t I, W_w >= t I, tr W_w <= 1) solved by a
// log-barrier path-following Newton method on the 2x2 blocks, over an active
// set of rows in large sets. Every gamma it returns is recomputed from the W's
// over every edge (the solver only has to find them).
// Tested in tests/test_certify_memory.cpp (an SDP solved with cvxopt, the
// common W, replays through the reference recurrence).
#include <algorithm>
#include <cmath>
#include <limits>

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include "certify_impl.hpp"

namespace mdnstab::detail {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// A 2x2 symmetric block affine in the variables: F = sum_k coef_k z[idx_k].
// Edge blocks touch W_w (3), W_w' (3) and t: 7 terms (indices may repeat).
struct Block {
  int n = 0;
  int idx[7];
  double c11[7], c12[7], c22[7];
};

struct Problem {
  int nodes = 0, nvar = 0;  // z = (w11, w12, w22 of each node, t)
  std::vector<Block> blocks;
};

// A^T W A as coefficients on (w11, w12, w22), entries 11, 12, 22.
void atwa(const Mat2& A, double k11[3], double k12[3], double k22[3]) {
  const double p = A.a, q = A.b, r = A.c, s = A.d;
  k11[0] = p * p, k11[1] = 2 * p * r, k11[2] = r * r;
  k12[0] = p * q, k12[1] = p * s + q * r, k12[2] = r * s;
  k22[0] = q * q, k22[1] = 2 * q * s, k22[2] = s * s;
}

long ipow(long n, int m) {
  long r = 1;
  for (int i = 0; i < m; ++i) r *= n;
  return r;
}

// Blocks for gamma^2 = lam: edges (lam W_w - A^T W_w' A - t I) of the gates
// in `subset` and nodes (W_w - t I).
Problem build(std::span<const Gates> gates, const MemoryGraph& G, std::span<const int> subset, double lam) {
  Problem P;
  P.nodes = int(G.words);
  P.nvar = 3 * P.nodes + 1;
  const int t = 3 * P.nodes;
  for (int w = 0; w < P.nodes; ++w)
    for (int g : subset) {
      const int w2 = int(G.next(w, g));
      for (const Mat2& A : {a_par(gates[size_t(g)]), a_perp(gates[size_t(g)])}) {
        double k11[3], k12[3], k22[3];
        atwa(A, k11, k12, k22);
        Block b;
        b.n = 7;
        for (int j = 0; j < 3; ++j) {
          b.idx[j] = 3 * w + j;
          b.c11[j] = j == 0 ? lam : 0.0;
          b.c12[j] = j == 1 ? lam : 0.0;
          b.c22[j] = j == 2 ? lam : 0.0;
          b.idx[3 + j] = 3 * w2 + j;
          b.c11[3 + j] = -k11[j];
          b.c12[3 + j] = -k12[j];
          b.c22[3 + j] = -k22[j];
        }
        b.idx[6] = t, b.c11[6] = -1, b.c12[6] = 0, b.c22[6] = -1;
        P.blocks.push_back(b);
      }
    }
  for (int w = 0; w < P.nodes; ++w) {
    Block b;
    b.n = 4;
    for (int j = 0; j < 3; ++j) {
      b.idx[j] = 3 * w + j;
      b.c11[j] = j == 0;
      b.c12[j] = j == 1;
      b.c22[j] = j == 2;
    }
    b.idx[3] = t, b.c11[3] = -1, b.c12[3] = 0, b.c22[3] = -1;
    P.blocks.push_back(b);
  }
  return P;
}

struct Entries {
  double f11, f12, f22;
};
inline Entries eval(const Block& b, const Eigen::VectorXd& z) {
  Entries e{0, 0, 0};
  for (int k = 0; k < b.n; ++k) {
    const double v = z[b.idx[k]];
    e.f11 += b.c11[k] * v, e.f12 += b.c12[k] * v, e.f22 += b.c22[k] * v;
  }
  return e;
}
inline double min_eig(const Entries& e) {
  const double h = 0.5 * (e.f11 + e.f22), r = std::hypot(0.5 * (e.f11 - e.f22), e.f12);
  return h - r;
}

// The barrier terms: -sum log det F_b - sum_w log(1 - tr W_w). +inf outside.
double barrier(const Problem& P, const Eigen::VectorXd& z) {
  double s = 0;
  for (const Block& b : P.blocks) {
    const Entries e = eval(b, z);
    const double d = e.f11 * e.f22 - e.f12 * e.f12;
    if (!(e.f11 > 0 && d > 0)) return kInf;
    s -= std::log(d);
  }
  for (int w = 0; w < P.nodes; ++w) {
    const double l = 1 - z[3 * w] - z[3 * w + 2];
    if (!(l > 0)) return kInf;
    s -= std::log(l);
  }
  return s;
}

enum class Feasible { kYes, kNo, kUnknown };

// Maximizes t at gamma^2 = lam from z (its W's strictly inside tr W < 1; t is
// set here). Stops as soon as t > 0 (feasible: z holds the W's) or once the
// barrier's duality gap proves max t < 0.
Feasible solve(const Problem& P, Eigen::VectorXd& z) {
  const int t = P.nvar - 1;
  double m = kInf;
  for (const Block& b : P.blocks) {
    Entries e = eval(b, z);
    const double tz = z[t];
    e.f11 += tz, e.f22 += tz;  // F without the t term
    m = std::min(m, min_eig(e));
  }
  if (!std::isfinite(m)) return Feasible::kUnknown;
  if (m > 0) {
    z[t] = 0.5 * m;
    return Feasible::kYes;
  }
  z[t] = m - std::max(1e-3, 0.1 * std::abs(m));
  // Barrier parameter: the central point at mu is within nu * mu of max t.
  const double nu = 2.0 * double(P.blocks.size()) + P.nodes;
  Eigen::VectorXd g(P.nvar), dz(P.nvar), zn(P.nvar);
  Eigen::MatrixXd H(P.nvar, P.nvar);
  for (double mu = 1.0 / nu; mu > 1e-16 / nu; mu *= 0.1) {
    // Phi = -t + mu * barrier.
    double phi = -z[t] + mu * barrier(P, z);
    for (int it = 0; it < 100; ++it) {
      g.setZero();
      H.setZero();
      g[t] = -1;
      for (const Block& b : P.blocks) {
        const Entries e = eval(b, z);
        const double d = e.f11 * e.f22 - e.f12 * e.f12;
        // grad d = f22 g11 + f11 g22 - 2 f12 g12; hess d = g11 g22^T + g22 g11^T - 2 g12 g12^T.
        double gd[7];
        for (int k = 0; k < b.n; ++k) gd[k] = e.f22 * b.c11[k] + e.f11 * b.c22[k] - 2 * e.f12 * b.c12[k];
        const double id = 1 / d;
        for (int k = 0; k < b.n; ++k) {
          g[b.idx[k]] -= mu * gd[k] * id;
          for (int l = 0; l < b.n; ++l)
            H(b.idx[k], b.idx[l]) +=
                mu * (gd[k] * gd[l] * id * id -
                      (b.c11[k] * b.c22[l] + b.c22[k] * b.c11[l] - 2 * b.c12[k] * b.c12[l]) * id);
        }
      }
      for (int w = 0; w < P.nodes; ++w) {
        const double il = 1 / (1 - z[3 * w] - z[3 * w + 2]);
        for (int a : {3 * w, 3 * w + 2}) {
          g[a] += mu * il;
          for (int c : {3 * w, 3 * w + 2}) H(a, c) += mu * il * il;
        }
      }
      Eigen::LDLT<Eigen::MatrixXd> ldlt(H);
      if (ldlt.info() != Eigen::Success) return Feasible::kUnknown;
      dz = -ldlt.solve(g);
      const double dec2 = -g.dot(dz);  // Newton decrement squared (times mu)
      if (!std::isfinite(dec2)) return Feasible::kUnknown;
      if (dec2 < 1e-10 * mu) break;
      double s = 1;
      double phin = kInf;
      for (int ls = 0; ls < 60; ++ls, s *= 0.5) {
        zn = z + s * dz;
        phin = -zn[t] + mu * barrier(P, zn);
        if (phin <= phi - 0.25 * s * dec2) break;
      }
      if (!(phin < phi)) break;  // no progress: as central as rounding allows
      z = zn;
      phi = phin;
      if (z[t] > 0) return Feasible::kYes;
    }
    if (z[t] + 2 * nu * mu < 0) return Feasible::kNo;
  }
  return z[t] > 0 ? Feasible::kYes : Feasible::kNo;
}

// W = L^T L with L = s [[1, x], [0, y]]; false where W is not positive definite.
struct Factor {
  double x, y, s;
};
bool factor_of(const std::array<double, 3>& W, Factor& f) {
  if (!(W[0] > 0)) return false;
  const double d = W[0] * W[2] - W[1] * W[1];
  if (!(d > 0)) return false;
  f = {W[1] / W[0], std::sqrt(d) / W[0], std::sqrt(W[0])};
  return std::isfinite(f.x) && f.y > 0 && std::isfinite(f.y);
}

// |L_to A L_from^-1|_2 = |W_to^1/2 A W_from^-1/2|_2 (NaN where not finite).
double edge_norm(const Mat2& A, const Factor& from, const Factor& to) {
  const Mat2 LA{A.a + to.x * A.c, A.b + to.x * A.d, to.y * A.c, to.y * A.d};
  const double r = to.s / from.s;
  return norm2_accurate(
      {r * LA.a, r * (LA.b - from.x * LA.a) / from.y, r * LA.c, r * (LA.d - from.x * LA.c) / from.y});
}

// The factors of every word's W; false where one is not positive definite.
bool factors(std::span<const std::array<double, 3>> W, std::vector<Factor>& f) {
  f.resize(W.size());
  for (size_t w = 0; w < W.size(); ++w)
    if (!factor_of(W[w], f[w])) return false;
  return true;
}

}  // namespace

long MemoryGraph::next(long w, int g) const {
  return memory == 0 ? 0 : (w % (words / labels)) * labels + label[size_t(g)];
}

MemoryGraph de_bruijn(long n, int memory) {
  MemoryGraph G;
  G.memory = memory;
  G.labels = int(n);
  G.label.resize(size_t(n));
  for (long g = 0; g < n; ++g) G.label[size_t(g)] = int(g);
  G.words = ipow(n, memory);
  return G;
}

MemoryGraph clustered(std::span<const Gates> gates, int k, int memory) {
  // k-means on the entries of A_par and A_perp (the transitions are linear in
  // them), farthest-point seeds from the row of largest norm: deterministic.
  const long n = long(gates.size());
  k = int(std::min<long>(k, n));
  std::vector<std::array<double, 7>> x(static_cast<size_t>(n));
  for (long g = 0; g < n; ++g) {
    const Mat2 P = a_par(gates[size_t(g)]), Q = a_perp(gates[size_t(g)]);
    x[size_t(g)] = {P.a, P.b, P.c, P.d, Q.a, Q.b, Q.d};
  }
  auto d2 = [](const std::array<double, 7>& a, const std::array<double, 7>& b) {
    double s = 0;
    for (int i = 0; i < 7; ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
    return s;
  };
  std::vector<std::array<double, 7>> c;
  long first = 0;
  for (long g = 1; g < n; ++g)
    if (norm2_accurate(a_par(gates[size_t(g)])) > norm2_accurate(a_par(gates[size_t(first)]))) first = g;
  c.push_back(x[size_t(first)]);
  std::vector<double> near(static_cast<size_t>(n), kInf);
  while (int(c.size()) < k) {
    long far = 0;
    for (long g = 0; g < n; ++g) {
      near[size_t(g)] = std::min(near[size_t(g)], d2(x[size_t(g)], c.back()));
      if (near[size_t(g)] > near[size_t(far)]) far = g;
    }
    if (!(near[size_t(far)] > 0)) break;  // fewer distinct rows than k
    c.push_back(x[size_t(far)]);
  }
  k = int(c.size());
  std::vector<int> label(static_cast<size_t>(n), 0);
  for (int it = 0; it < 20; ++it) {
    bool moved = false;
    for (long g = 0; g < n; ++g) {
      int best = 0;
      for (int j = 1; j < k; ++j)
        if (d2(x[size_t(g)], c[size_t(j)]) < d2(x[size_t(g)], c[size_t(best)])) best = j;
      moved = moved || best != label[size_t(g)];
      label[size_t(g)] = best;
    }
    if (!moved && it > 0) break;
    std::vector<std::array<double, 7>> sum(static_cast<size_t>(k), std::array<double, 7>{});
    std::vector<long> cnt(static_cast<size_t>(k), 0);
    for (long g = 0; g < n; ++g) {
      ++cnt[size_t(label[size_t(g)])];
      for (int i = 0; i < 7; ++i) sum[size_t(label[size_t(g)])][size_t(i)] += x[size_t(g)][size_t(i)];
    }
    for (int j = 0; j < k; ++j)
      if (cnt[size_t(j)] > 0)
        for (int i = 0; i < 7; ++i) c[size_t(j)][size_t(i)] = sum[size_t(j)][size_t(i)] / double(cnt[size_t(j)]);
  }
  // Labels in order of first appearance, none empty.
  std::vector<int> renum(static_cast<size_t>(k), -1);
  int used = 0;
  for (int& l : label) {
    if (renum[size_t(l)] < 0) renum[size_t(l)] = used++;
    l = renum[size_t(l)];
  }
  MemoryGraph G;
  G.memory = memory;
  G.labels = used;
  G.label = std::move(label);
  G.words = ipow(used, memory);
  return G;
}

namespace {

// Calls fn(w, w2, g, v) for every edge w -> w2 of the rows in `rows` (all where
// empty), v = the larger of A_par(g)'s and A_perp(g)'s norms at the W's factors f.
// Returns false, stopping, at a norm that is not finite.
template <class F>
bool for_each_edge(std::span<const Gates> gates, const MemoryGraph& G, const std::vector<Factor>& f,
                   std::span<const int> rows, F&& fn) {
  const long n = rows.empty() ? long(gates.size()) : long(rows.size());
  for (long w = 0; w < G.words; ++w)
    for (long i = 0; i < n; ++i) {
      const int g = rows.empty() ? int(i) : rows[size_t(i)];
      const long w2 = G.next(w, g);
      double v = 0;
      for (const Mat2& A : {a_par(gates[size_t(g)]), a_perp(gates[size_t(g)])}) {
        const double e = edge_norm(A, f[size_t(w)], f[size_t(w2)]);
        if (!(e < kInf)) return false;  // NaN or inf
        v = std::max(v, e);
      }
      fn(w, w2, g, v);
    }
  return true;
}

// max over the edges of `rows` (all where empty) at the factors f (+inf where a
// norm is not finite); per gate in `per_gate` (if given).
double bound_over(std::span<const Gates> gates, const MemoryGraph& G, const std::vector<Factor>& f,
                  std::vector<double>* per_gate, int* active, std::span<const int> rows = {}) {
  double gamma = 0;
  if (active) *active = -1;
  if (per_gate) per_gate->assign(gates.size(), 0.0);
  const bool finite = for_each_edge(gates, G, f, rows, [&](long, long, int g, double v) {
    if (per_gate) (*per_gate)[size_t(g)] = std::max((*per_gate)[size_t(g)], v);
    if (v > gamma) {
      gamma = v;
      if (active) *active = g;
    }
  });
  return finite ? gamma : kInf;
}

}  // namespace

double memory_bound_at(std::span<const Gates> gates, const MemoryGraph& G, std::span<const std::array<double, 3>> W,
                       int* active) {
  std::vector<Factor> f;
  if (long(W.size()) != G.words || long(G.label.size()) != long(gates.size()) || !factors(W, f)) return kInf;
  return bound_over(gates, G, f, nullptr, active);
}

MemoryBound upper_bound_memory(std::span<const Gates> gates, const MemoryGraph& G, const std::array<double, 3>& W0,
                               double lo, double hi, double rel_tol) {
  MemoryBound out;
  out.memory = G.memory;
  const long nodes = G.words, n = long(gates.size());
  // The common W on every node: feasible at its own gamma.
  out.W.assign(size_t(nodes), W0);
  std::vector<double> per_gate;
  std::vector<Factor> f;
  out.gamma = factors(out.W, f) ? bound_over(gates, G, f, &per_gate, &out.active_gate) : kInf;
  if (!std::isfinite(out.gamma)) return out;
  const double lo0 = lo;
  const int nvar = 3 * int(nodes) + 1;
  // Start inside tr W < 1.
  Eigen::VectorXd start(nvar);
  const double tr0 = W0[0] + W0[2];
  for (long w = 0; w < nodes; ++w)
    for (int j = 0; j < 3; ++j) start[3 * w + j] = 0.5 * W0[size_t(j)] / tr0;
  start[nvar - 1] = 0;
  // Active set: the gates that reach the highest norms at the current W's,
  // more added while the W's found for them leave others above their gamma.
  // The returned gamma is over every gate, whatever the subset.
  constexpr long kFirst = 32, kAdd = 16;
  std::vector<int> subset;
  std::vector<char> in(static_cast<size_t>(n), 0);
  auto add = [&](long k, double above) {
    std::vector<int> order;
    for (long g = 0; g < n; ++g)
      if (!in[size_t(g)] && per_gate[size_t(g)] > above) order.push_back(int(g));
    std::sort(order.begin(), order.end(), [&](int a, int b) { return per_gate[size_t(a)] > per_gate[size_t(b)]; });
    if (long(order.size()) > k) order.resize(size_t(k));
    for (int g : order) in[size_t(g)] = 1, subset.push_back(g);
    return order.size();
  };
  add(n <= kFirst + kAdd ? n : kFirst, -1.0);
  double proven_lo = 0;
  for (int round = 0; round < 64; ++round) {
    // A subset's optimum bounds a larger subset's from below: the next round
    // starts from this one's proven lower end.
    double sub_hi = std::min(hi, out.gamma), sub_lo = std::min(std::max(lo0, proven_lo), sub_hi);
    double sub_gamma = kInf;  // the subset's bound at the subset's best W's
    std::vector<std::array<double, 3>> sub_W;
    for (int it = 0; it < 80 && sub_hi > sub_lo * (1 + rel_tol); ++it) {
      const double mid = sub_lo > 0 ? std::sqrt(sub_lo * sub_hi) : 0.5 * sub_hi;
      const Problem P = build(gates, G, subset, mid * mid);
      Eigen::VectorXd z = start;
      const Feasible fz = solve(P, z);
      if (fz == Feasible::kYes) {
        std::vector<std::array<double, 3>> W(static_cast<size_t>(nodes));
        double trmax = 0;
        for (long w = 0; w < nodes; ++w) {
          W[size_t(w)] = {z[3 * w], z[3 * w + 1], z[3 * w + 2]};
          trmax = std::max(trmax, z[3 * w] + z[3 * w + 2]);
        }
        std::vector<Factor> fw;
        if (!factors(W, fw)) break;
        // The subset's own bound at these W's (over its gates only).
        const double g_sub = bound_over(gates, G, fw, nullptr, nullptr, subset);
        if (g_sub < sub_gamma) {
          sub_gamma = g_sub, sub_W = W;
          for (long w = 0; w < nodes; ++w)
            for (int j = 0; j < 3; ++j) start[3 * w + j] = z[3 * w + j] * 0.9 / trmax;
        }
        sub_hi = std::min(mid, g_sub);
      } else {
        // kNo, or kUnknown (numerical trouble): no W's found at mid; only a
        // proof (kNo) moves the lower bound the caller sees.
        sub_lo = mid;
        if (fz == Feasible::kNo) proven_lo = std::max(proven_lo, mid);
      }
    }
    if (sub_W.empty()) break;
    std::vector<Factor> fw;
    if (!factors(sub_W, fw)) break;
    int act = -1;
    const double g_all = bound_over(gates, G, fw, &per_gate, &act);
    if (g_all < out.gamma) out.gamma = g_all, out.W = sub_W, out.active_gate = act;
    // Done when no gate outside the subset rises above the subset's gamma.
    if (!(g_all > sub_gamma * (1 + 1e-12)) || add(kAdd, sub_gamma * (1 + 1e-12)) == 0) break;
  }
  // Normalized as the common W: max(w11, w22) = 1 over all nodes.
  double s = 0;
  for (const auto& w : out.W) s = std::max({s, w[0], w[2]});
  if (s > 0)
    for (auto& w : out.W)
      for (double& v : w) v /= s;
  return out;
}

long memory_nodes(long gates, int memory) { return ipow(gates, memory); }

std::vector<std::vector<int>> active_cycles(std::span<const Gates> gates, const MemoryGraph& G,
                                            std::span<const std::array<double, 3>> W, double gamma, int max_len,
                                            int max_count) {
  std::vector<std::vector<int>> out;
  const long nodes = G.words;
  if (G.memory < 1 || long(W.size()) != nodes || !(gamma > 0)) return out;
  // Active edges: the ones within 1e-5 of gamma (the solver stops at 1e-7 of
  // the optimum, so the extremal edges sit well inside that band).
  std::vector<Factor> f;
  if (!factors(W, f)) return out;
  std::vector<std::vector<std::pair<long, int>>> next(static_cast<size_t>(nodes));
  if (!for_each_edge(gates, G, f, {}, [&](long w, long w2, int g, double v) {
        if (v >= gamma * (1 - 1e-5)) next[size_t(w)].push_back({w2, g});
      }))
    return out;
  // Simple cycles through their smallest word, shortest first (iterative
  // deepening), each as its gate rows; rotations of one cycle are one.
  std::vector<int> path;
  std::vector<char> on(static_cast<size_t>(nodes), 0);
  auto canonical = [](std::vector<int> c) {
    std::vector<int> best = c;
    for (size_t r = 1; r < c.size(); ++r) {
      std::rotate(c.begin(), c.begin() + 1, c.end());
      if (c < best) best = c;
    }
    return best;
  };
  for (int len = 1; len <= max_len && int(out.size()) < max_count; ++len)
    for (long s = 0; s < nodes && int(out.size()) < max_count; ++s) {
      // Depth-first over words > s, closing at s after exactly len edges.
      auto dfs = [&](auto&& self, long w) -> void {
        if (int(out.size()) >= max_count) return;
        for (const auto& [w2, g] : next[size_t(w)]) {
          path.push_back(g);
          if (w2 == s && int(path.size()) == len) {
            const std::vector<int> c = canonical(path);
            if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
          } else if (w2 > s && !on[size_t(w2)] && int(path.size()) < len) {
            on[size_t(w2)] = 1;
            self(self, w2);
            on[size_t(w2)] = 0;
          }
          path.pop_back();
        }
      };
      dfs(dfs, s);
    }
  return out;
}

}  // namespace mdnstab::detail
