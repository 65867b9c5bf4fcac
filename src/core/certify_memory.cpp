// The gate-memory quadratic bound for gate sets (DESIGN.md section 4): one W per
// word of the last m gate rows instead of one W for the whole set.
//
// V_w(x) = sum over key coordinates of (s, m) W_w (s, m)^T is invariant under
// rotations of key space, so "V_w' (T_k(g) x) <= gamma^2 V_w(x) for every unit
// key k" splits, exactly as for one W, into the 2x2 LMIs
//   A^T W_w' A <= gamma^2 W_w   for A in {A_par(g), A_perp(g)},
// one pair per edge w -> w' = (w without its oldest row) + g of the De Bruijn
// graph on words of m rows. That graph is path-complete (every gate sequence is
// a walk on it), so along any sequence of gate rows and keys
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
// log-barrier path-following Newton method on the 2x2 blocks. Every gamma it
// returns is recomputed exactly from the W's (the solver only has to find them).
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
  std::vector<int> edge_gate;  // per edge block: the gate row whose matrix it holds (-1: node block)
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

// Blocks for gamma^2 = lam: edges (lam W_w - A^T W_w' A - t I) and nodes (W_w - t I).
Problem build(std::span<const Gates> gates, int memory, double lam) {
  Problem P;
  const long n = long(gates.size());
  P.nodes = int(ipow(n, memory));
  P.nvar = 3 * P.nodes + 1;
  const int t = 3 * P.nodes;
  std::vector<Mat2> mats;
  for (const Gates& g : gates) mats.push_back(a_par(g)), mats.push_back(a_perp(g));
  const long mod = ipow(n, std::max(memory - 1, 0));
  for (int w = 0; w < P.nodes; ++w)
    for (long g = 0; g < n; ++g) {
      const int w2 = memory == 0 ? 0 : int((w % mod) * n + g);
      for (int x = 0; x < 2; ++x) {
        double k11[3], k12[3], k22[3];
        atwa(mats[size_t(2 * g + x)], k11, k12, k22);
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
        P.edge_gate.push_back(int(g));
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
    P.edge_gate.push_back(-1);
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

double memory_bound_at(std::span<const Gates> gates, int memory, std::span<const std::array<double, 3>> W,
                       int* active) {
  const long n = long(gates.size());
  const long nodes = ipow(n, memory);
  std::vector<Factor> f;
  if (long(W.size()) != nodes || !factors(W, f)) return kInf;
  const long mod = ipow(n, std::max(memory - 1, 0));
  double gamma = 0;
  if (active) *active = -1;
  for (long w = 0; w < nodes; ++w)
    for (long g = 0; g < n; ++g) {
      const long w2 = memory == 0 ? 0 : (w % mod) * n + g;
      for (const Mat2& A : {a_par(gates[size_t(g)]), a_perp(gates[size_t(g)])}) {
        const double v = edge_norm(A, f[size_t(w)], f[size_t(w2)]);
        if (!(v < kInf)) return kInf;  // NaN or inf
        if (v > gamma) {
          gamma = v;
          if (active) *active = int(g);
        }
      }
    }
  return gamma;
}

MemoryBound upper_bound_memory(std::span<const Gates> gates, int memory, const std::array<double, 3>& W0,
                               double lo, double hi, double rel_tol) {
  MemoryBound out;
  out.memory = memory;
  const long nodes = ipow(long(gates.size()), memory);
  // The common W on every node: feasible at its own gamma.
  out.W.assign(size_t(nodes), W0);
  out.gamma = memory_bound_at(gates, memory, out.W, &out.active_gate);
  if (!std::isfinite(out.gamma)) return out;
  hi = std::min(hi, out.gamma);
  lo = std::min(lo, hi);
  const int nvar = 3 * int(nodes) + 1;
  // Start inside tr W < 1.
  Eigen::VectorXd start(nvar);
  const double tr0 = W0[0] + W0[2];
  for (long w = 0; w < nodes; ++w)
    for (int j = 0; j < 3; ++j) start[3 * w + j] = 0.5 * W0[size_t(j)] / tr0;
  start[nvar - 1] = 0;
  for (int it = 0; it < 80 && hi > lo * (1 + rel_tol); ++it) {
    const double mid = lo > 0 ? std::sqrt(lo * hi) : 0.5 * hi;
    const Problem P = build(gates, memory, mid * mid);
    Eigen::VectorXd z = start;
    const Feasible f = solve(P, z);
    if (f == Feasible::kYes) {
      std::vector<std::array<double, 3>> W(static_cast<size_t>(nodes));
      double trmax = 0;
      for (long w = 0; w < nodes; ++w) {
        W[size_t(w)] = {z[3 * w], z[3 * w + 1], z[3 * w + 2]};
        trmax = std::max(trmax, z[3 * w] + z[3 * w + 2]);
      }
      int act = -1;
      const double g = memory_bound_at(gates, memory, W, &act);
      if (g < out.gamma) {
        out.gamma = g, out.W = W, out.active_gate = act;
        // The next start: these W's, pulled inside tr W < 1.
        for (long w = 0; w < nodes; ++w)
          for (int j = 0; j < 3; ++j) start[3 * w + j] = z[3 * w + j] * 0.9 / trmax;
      }
      hi = std::min(mid, out.gamma);
    } else if (f == Feasible::kNo) {
      lo = mid;
    } else {
      break;  // numerical trouble: keep the best W's found
    }
  }
  // Normalized as the common W: max(w11, w22) = 1 over all nodes.
  double s = 0;
  for (const auto& w : out.W) s = std::max({s, w[0], w[2]});
  if (s > 0)
    for (auto& w : out.W)
      for (double& v : w) v /= s;
  out.gamma_lower = lo;
  return out;
}

long memory_nodes(long gates, int memory) { return ipow(gates, memory); }

std::vector<std::vector<int>> active_cycles(std::span<const Gates> gates, int memory,
                                            std::span<const std::array<double, 3>> W, double gamma, int max_len,
                                            int max_count) {
  std::vector<std::vector<int>> out;
  const long n = long(gates.size()), nodes = ipow(n, memory);
  if (memory < 1 || long(W.size()) != nodes || !(gamma > 0)) return out;
  // Active edges: the ones within 1e-5 of gamma (the solver stops at 1e-7 of
  // the optimum, so the extremal edges sit well inside that band).
  const long mod = ipow(n, memory - 1);
  std::vector<Factor> f;
  if (!factors(W, f)) return out;
  std::vector<std::vector<std::pair<long, int>>> next(static_cast<size_t>(nodes));
  for (long w = 0; w < nodes; ++w)
    for (long g = 0; g < n; ++g) {
      const long w2 = (w % mod) * n + g;
      double v = 0;
      for (const Mat2& A : {a_par(gates[size_t(g)]), a_perp(gates[size_t(g)])})
        v = std::max(v, edge_norm(A, f[size_t(w)], f[size_t(w2)]));
      if (v >= gamma * (1 - 1e-5)) next[size_t(w)].push_back({w2, int(g)});
    }
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
