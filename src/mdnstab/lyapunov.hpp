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

}  // namespace mdnstab
