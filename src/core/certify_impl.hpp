// Internal pieces of the certificate engine (src/core/certify*.cpp), shared
// between the upper bound (certify_upper.cpp), the witness search
// (certify_lower.cpp) and the driver (certify.cpp). Not a public header.
#pragma once

#include <array>
#include <span>
#include <vector>

#include "mdnstab/certify.hpp"
#include "mdnstab/linearization.hpp"

namespace mdnstab::detail {

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

// Spectral radius of a 2x2 matrix (closed form).
double spectral_radius2(const Mat2& m);

// Best witness for the gate set, searched over the families of certify_lower.cpp.
// `hint` lists gate rows worth combining (e.g. the ones active at W). No growth
// exceeds the upper bound `ceiling`, so the search stops once a family meets it.
Witness search_witness(std::span<const Gates> gates, const CertifyOptions& opt, std::span<const int> hint,
                       double ceiling);

}  // namespace mdnstab::detail
