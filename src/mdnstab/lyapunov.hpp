// Top Lyapunov exponent of the full MDN recurrence (DESIGN.md section 4, tier 2):
// DK-dim unit keys, one value column, v = 0, state (S column, M column) in
// R^{2 DK}; renormalized products over independent chains on all cores.
// Tested in tests/test_lyapunov.cpp (rotating keys against the closed-form
// rotation growth, random keys against the certificate's bounds).
#pragma once

#include <cstdint>
#include <vector>

#include "mdnstab/gates.hpp"
#include "mdnstab/status.hpp"

namespace mdnstab {

struct LyapunovOptions {
  enum class Keys { kRandom, kRotating };
  int dk = 0;
  long steps = 0;        // measured steps per chain
  long burn_in = -1;     // steps run before measuring; -1: steps / 10
  std::uint64_t seed = 0;
  Keys keys = Keys::kRandom;
  double angle = 0;      // kRotating: k_t = cos(t angle) e1 + sin(t angle) e2, t = 0, 1, ...
  int chains = 16;       // independent chains; the result does not depend on the thread count
  int batches = 4;       // batch means per chain for the standard error
  int threads = 0;       // 0: all cores
};

struct LyapunovResult {
  double exponent = 0;  // per step, natural log (-inf: the state reached exactly 0)
  double stderr_ = 0;   // standard error of the mean over all batches
  std::vector<double> chain_exponents;
  int threads = 1;
  double seconds = 0;
};

// Parses "random" or "rotating:RADIANS" into opt.keys / opt.angle.
Status parse_keys(const std::string& spec, LyapunovOptions& opt);

Result<LyapunovResult> lyapunov(const Gates& g, const LyapunovOptions& opt);

// Mean-square growth per step under independent uniformly random unit keys in dk
// dimensions, in closed form: E|x_t|^2 grows as r^(2t). With k k^T (I - k k^T) = 0 and
// E[k k^T] = I / dk, the second moment of an isotropic state, Sigma (x) I_dk with Sigma
// the 2x2 covariance of (s, m), maps to itself by
//   Sigma -> A_par Sigma A_par^T / dk + (1 - 1 / dk) A_perp Sigma A_perp^T,
// and the largest growth of this positive map is taken on such a Sigma: r is the square
// root of the spectral radius of (A_par (x) A_par) / dk + (1 - 1 / dk) (A_perp (x) A_perp).
// By Jensen r >= e^lambda, the random-key Lyapunov growth, and it is far closer to it
// than certify's gamma, the bound over all key sequences. NaN for dk < 1.
double mean_square_growth(const Gates& g, int dk);

}  // namespace mdnstab
