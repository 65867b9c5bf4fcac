// Internal pieces of the certificate engine (src/core/certify*.cpp), shared
// between the upper bound (certify_upper.cpp), the witness search
// (certify_lower.cpp) and the driver (certify.cpp). Not a public header.
#pragma once

#include <array>
#include <cmath>
#include <span>
#include <vector>

#include "mdnstab/certify.hpp"
#include "mdnstab/linearization.hpp"

namespace mdnstab::detail {

// A_par, A_perp and every key transition are homogeneous of degree 1 in
// (alpha, mu) for p-scale "alpha" and in (alpha, mu, eta) for "one" (beta
// fixed), so gamma, the dual bound and every growth rate scale by the same
// factor. The engine works on gates scaled by an exact power of two that puts
// the largest entry near 1: for tiny alpha and mu (down to subnormal) the
// squares it forms (|B|_F^2, det^2) would otherwise underflow and the norms
// come out too small, i.e. invalid bounds.
struct ScaledGates {
  std::vector<Gates> gates;  // A(gates[i]) = 2^-shift A(original[i])
  int shift = 0;
};
ScaledGates scale_gates(std::span<const Gates> gate_set);
// v computed on scaled gates, back in original units: rounded up for an upper
// bound, down for a lower bound (ldexp is exact unless the result is subnormal).
double unscale(double v, int shift, bool round_up);

// The optimum of min_W max_i |W^1/2 A_i W^-1/2|_2 over the matrices A_i.
struct UpperBound {
  double gamma = 0;                  // the max norm at W, recomputed from W
  std::array<double, 3> W{1, 0, 1};  // normalized so that max(w11, w22) = 1
  std::array<double, 2> factor{0, 1};  // W ~ L^T L, L = [[1, x], [0, y]]: [x, y]
  double gamma_dual = 0;             // dual lower bound on the optimum
  int active = -1;                   // index of a matrix reaching gamma
};

// Two matrices of equal determinant (A_par, A_perp of one gate): closed-form
// inner minimization, golden section on the outer variable.
UpperBound upper_bound_pair(const Mat2& par, const Mat2& perp);
// Any set of matrices (dets may differ).
UpperBound upper_bound_set(std::span<const Mat2> mats);

// The gate-memory bound (certify_memory.cpp): one W per word of the labels of
// the last `memory` gate rows. A label per row: the row itself (de_bruijn), or
// a cluster of rows for large sets (clustered). Words are base-`labels`
// numbers, oldest label first; after gate g, word w goes to next(w, g).
struct MemoryGraph {
  int memory = 0;
  int labels = 1;
  std::vector<int> label;  // per gate row, in [0, labels)
  long words = 1;          // labels^memory
  long next(long w, int g) const;
};
MemoryGraph de_bruijn(long n, int memory);
MemoryGraph clustered(std::span<const Gates> gates, int k, int memory);

struct MemoryBound {
  double gamma = 0;        // max over the graph's edges of |W_w'^1/2 A W_w^-1/2|_2 at W
  int memory = 0;
  std::vector<std::array<double, 3>> W;  // per word, max(w11, w22) = 1 over all
  int active_gate = -1;                  // the gate row of an edge reaching gamma
};
// On scaled gates. Starts from the common W0 on every word; bisects gamma in
// [lo, hi] to rel_tol, over an active set of gate rows for large sets.
MemoryBound upper_bound_memory(std::span<const Gates> gates, const MemoryGraph& G, const std::array<double, 3>& W0,
                               double lo, double hi, double rel_tol);
// The bound the W's prove (+inf where one is not positive definite).
double memory_bound_at(std::span<const Gates> gates, const MemoryGraph& G, std::span<const std::array<double, 3>> W,
                       int* active = nullptr);
long memory_nodes(long gates, int memory);
// The gate cycles of the graph's edges that reach gamma at the W's (within
// 1e-5): the sequences the certificate says are extremal, shortest first, each
// as its gate rows (one per necklace), at most max_count of up to max_len.
std::vector<std::vector<int>> active_cycles(std::span<const Gates> gates, const MemoryGraph& G,
                                            std::span<const std::array<double, 3>> W, double gamma, int max_len,
                                            int max_count);

// |A|_2 of a 2x2 matrix from sigma_1 = (|(a + d, b - c)| + |(a - d, b + c)|) / 2:
// a sum of two non-negative terms, accurate to a few ulps. The usual
// sqrt((F + sqrt(F^2 - 4 det^2)) / 2) (norm2 of linearization.hpp) loses half
// the digits where the two singular values nearly meet (F ~ 2|det|, e.g.
// alpha ~ mu ~ 1 with a near-singular W), and there it can come out below the
// spectral radius by ~1e-9: an invalid gamma. Every bound the engine reports
// goes through this one.
inline double norm2_accurate(const Mat2& A) {
  const double p = A.a + A.d, q = A.b - A.c, r = A.a - A.d, s = A.b + A.c;
  const double n = 0.5 * (std::sqrt(p * p + q * q) + std::sqrt(r * r + s * s));
  // hypot only where the squares leave the double range (entries beyond ~1e150
  // or all below ~1e-150; the engine's matrices are scaled to entries near 1).
  if (n < 1e150 && n > 1e-140) return n;
  return 0.5 * (std::hypot(p, q) + std::hypot(r, s));
}

// Spectral radius of a 2x2 matrix (closed form).
double spectral_radius2(const Mat2& m);

// Best witness for the gate set, searched over the families of certify_lower.cpp.
// `hint` lists gate rows worth combining (e.g. the ones active at W). No growth
// exceeds the upper bound `ceiling`, so the search stops once a family meets it.
// `cycles`: gate cycles worth trying first (e.g. active_cycles of a gate-memory bound).
Witness search_witness(std::span<const Gates> gates, const CertifyOptions& opt, std::span<const int> hint,
                       double ceiling, std::span<const std::vector<int>> cycles = {});

}  // namespace mdnstab::detail
