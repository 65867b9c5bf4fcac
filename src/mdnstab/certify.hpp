// Stability over ALL key sequences (DESIGN.md section 4, tier 3): an upper
// bound gamma from the best 2x2 quadratic Lyapunov function W shared by A_par
// and A_perp of every gate in a set, a lower bound from an explicit key
// schedule (the witness), and the verdict. Contract shared by `certify`,
// `constraint`, `sweep` and `validate`; implemented in src/core/certify*.cpp.
#pragma once

#include <array>
#include <span>
#include <string>
#include <vector>

#include "mdnstab/gates.hpp"
#include "mdnstab/status.hpp"

namespace mdnstab {

enum class Verdict { kCertified, kRefuted, kUndecided };
const char* to_string(Verdict v);

// A key schedule another program can replay.
struct Witness {
  enum class Kind { kNone, kRotation, kSwitching };
  Kind kind = Kind::kNone;
  double growth = 0;  // growth per step of the state norm under this schedule
  // kRotation: unit keys k_t = cos(t*angle) e1 + sin(t*angle) e2 in a 2-D plane.
  double angle = 0;
  // Steps after which the schedule repeats (0: not periodic, e.g. irrational angle).
  int period = 0;
  // kSwitching (and gate sets): for each step of one period, the key in the
  // plane as (cos, sin) of its angle and the index of the gate set row used.
  std::vector<std::array<double, 2>> keys;
  std::vector<int> gate_index;
};

struct Certificate {
  double upper_bound = 0;           // gamma: |x_t|_W <= gamma^t |x_0|_W for all keys
  std::array<double, 3> W{1, 0, 1};  // [w11, w12, w22] of the 2x2 W > 0
  double lower_bound = 0;           // growth per step of the witness
  Witness witness;
  Verdict verdict = Verdict::kUndecided;
  double frozen_spectral_radius = 0;  // max over the set
};

struct CertifyOptions {
  double rel_tol = 1e-6;      // on gamma
  bool lower_bound = true;    // search a witness
};

// An empty set is an error (kInvalidArgument), not "certified".
Result<Certificate> certify(std::span<const Gates> gate_set, const CertifyOptions& opt = {});

}  // namespace mdnstab
