// Stability over ALL key sequences (DESIGN.md section 4, tier 3): an upper
// bound gamma from the best 2x2 quadratic Lyapunov function W shared by A_par
// and A_perp of every gate in a set, a lower bound from an explicit key
// schedule (the witness), and the verdict. Contract shared by `certify`,
// `constraint`, `sweep` and `validate`; implemented in src/core/certify*.cpp,
// tested in tests/test_certify.cpp (independent optimizer, duality, replays).
#pragma once

#include <array>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mdnstab/gates.hpp"
#include "mdnstab/linearization.hpp"
#include "mdnstab/status.hpp"

namespace mdnstab {

enum class Verdict { kCertified, kRefuted, kUndecided };
const char* to_string(Verdict v);

// A key schedule another program can replay. Steps are numbered t = 0, 1, 2, ...
// (the first token is t = 0); keys are unit vectors in the plane of two
// orthonormal key directions e1, e2 (any DK >= 2), v = 0, no L2 norm needed.
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
  // kRotation with a gate set: gate_index is the cycle of gate rows, step t
  // uses gate_index[t % size] (empty: row 0).
  std::vector<std::array<double, 2>> keys;
  std::vector<int> gate_index;
  // kSwitching: the key pattern turns by `drift` radians each period:
  // k_{t + n*period} = R(n*drift) keys[t] (0: strictly periodic keys).
  double drift = 0;
  // "rotation", "switching", "rotation-cycle", "turning-cycle" (how it was found)
  std::string family;
};
const char* to_string(Witness::Kind k);

struct Certificate {
  // gamma, the best of the two quadratic certificates below: the joint spectral
  // radius over all key sequences (and gate sequences of the set) is <= gamma.
  double upper_bound = 0;
  // The common W: |x_t|_W <= common_upper_bound^t |x_0|_W for all keys and
  // gates (for a box, every gate inside it).
  double common_upper_bound = 0;
  std::array<double, 3> W{1, 0, 1};  // [w11, w12, w22] of the 2x2 W > 0 (max(w11, w22) = 1)
  // Gate sets: the gate-memory certificate (certify_memory.cpp), one W per word
  // of the labels of the last gate_memory gate rows: w = l_1 ... l_m (l_m the
  // latest row's label) at index sum_k l_k L^(m-k), L labels. Each row is its
  // own label (gate_label[i] = i) in sets of up to kAutoMemoryWords rows, or
  // larger ones under an explicit gate_memory; automatic for larger sets, the
  // rows fall in kAutoMemoryWords clusters. V_w(x_t) <= gamma^2 V_w'(x_{t-1})
  // along every sequence. gate_memory = 0 and W_by_word empty: the common W
  // gives gamma.
  int gate_memory = 0;
  std::vector<int> gate_label;  // per gate row (empty with gate_memory = 0)
  std::vector<std::array<double, 3>> W_by_word;
  // W = c L^T L with L = [[1, x], [0, y]]: [x, y]. Where W is nearly singular
  // (an optimum approached, not attained) its entries round away the small
  // eigenvalue; the factor does not, and gamma is computed from it.
  std::array<double, 2> W_factor{0, 1};
  // Growth per step of the witness, capped at upper_bound: no schedule grows
  // faster than gamma, and a witness growth is an eigenvalue, which near a
  // double eigenvalue (alpha ~ mu) is computed only to ~eps * its condition
  // number (up to ~1e-8 relative); a computed growth above gamma by less than
  // kWitnessRoundoff is that rounding (witness.growth keeps the raw value).
  double lower_bound = 0;
  Witness witness;
  Verdict verdict = Verdict::kUndecided;
  double frozen_spectral_radius = 0;  // max over the set
  // A lower bound on the best quadratic gamma from the dual of the LMI
  // (weights Z_i >= 0 with sum A_i Z_i A_i^T >= g^2 sum Z_i): gamma / gamma_dual - 1
  // bounds how far upper_bound is from the optimal 2x2 certificate.
  double gamma_dual = 0;
  int gates = 0;          // size of the set
  int active_gate = -1;   // a gate row whose A_par or A_perp reaches gamma at W
  bool single_gate = false;
};

struct CertifyOptions {
  // On gamma: where the dual bound does not prove gamma within rel_tol of the
  // best quadratic certificate, a second algorithm is tried; the remaining gap
  // is reported (gamma / gamma_dual - 1), never hidden.
  double rel_tol = 1e-6;
  bool lower_bound = true;  // search a witness
  int rotation_scan = 256;  // angles scanned in [0, pi/2] before refinement
  int max_word_length = 8;  // switching words over {A_par, A_perp} (single gate)
  // Gate sets: the memory of the gate-dependent W's. -1: automatic, the
  // longest memory up to kAutoGateMemory whose graph stays small (words <=
  // kAutoMemoryWords, edges <= kAutoMemoryEdges), or memory 1 over clusters
  // of rows where even memory 1 would not; 0: the common W only;
  // m >= 1: words of m rows (at most kMaxMemoryWords: the solver's Newton
  // steps are dense in 3 variables per word).
  int gate_memory = -1;
};
inline constexpr int kAutoGateMemory = 4;
inline constexpr long kAutoMemoryWords = 16, kAutoMemoryEdges = 256, kMaxMemoryWords = 64;
// The memory `opt.gate_memory` means for a set of n gates (0 for one gate).
int gate_memory_for(long n, int requested);

// An empty set is an error (kInvalidArgument), not "certified".
Result<Certificate> certify(std::span<const Gates> gate_set, const CertifyOptions& opt = {});

// Each gate as its own (single-gate) set, on `threads` threads (0: all cores);
// result i belongs to gates[i], whatever the thread count.
Result<std::vector<Certificate>> certify_each(std::span<const Gates> gates, const CertifyOptions& opt = {},
                                              int threads = 0);

// ---- building blocks, exposed for tests, `sweep` and `constraint` ----

// max over the set of |W^1/2 A W^-1/2|_2 for A in {A_par(g), A_perp(g)}: the
// bound a given W proves (W = [w11, w12, w22] > 0).
Result<double> quadratic_bound(std::span<const Gates> gate_set, const std::array<double, 3>& W);

// Growth per step of keys rotating by `angle` per step in a plane, for one
// gate set: the spectral radius of the 4x4 rotating-frame matrix (closed form).
double rotation_growth(const Gates& g, double angle);

// The 4x4 transition of one step with unit key (cos, sin) in the plane, state
// ordered (s1, m1, s2, m2) (the (s, m) pairs of the two key coordinates).
std::array<double, 16> transition4(const Gates& g, double cos_k, double sin_k);

// Growth per step of a witness recomputed from explicit 4x4 products (an
// evaluator independent of the search): for kRotation in the rotating frame.
Result<double> witness_growth(std::span<const Gates> gate_set, const Witness& w);

// The verdict rule: certified iff gamma < 1, refuted iff lower > 1, each by
// more than kVerdictRoundoff: the bounds come from closed forms accurate to a
// few ulps, so a bound within 1e-13 of 1 (e.g. a unit eigenvalue computed as
// 1 + 2^-52) decides nothing.
inline constexpr double kVerdictRoundoff = 1e-13;
// A witness growth above gamma by more than this relative amount is no
// rounding: the lower bound is left above gamma, exposing the defect.
inline constexpr double kWitnessRoundoff = 1e-7;
Verdict verdict_of(double upper_bound, double lower_bound);

// A box of gates given as ranges: NAME=LO:HI or NAME=VALUE for NAME in alpha,
// beta, mu, eta, log_alpha, log_mu. A_par and A_perp are multilinear in each
// gate, so every matrix of the box is a convex combination of the vertices'
// matrices: certifying the 2^k vertices certifies the whole box.
struct GateRange {
  std::string name;
  double lo = 0, hi = 0;
};
Result<GateRange> parse_gate_range(std::string_view spec);
// All four gates must be covered (alpha or log_alpha, mu or log_mu, beta, eta).
Result<std::vector<Gates>> box_vertices(std::span<const GateRange> ranges, PScale p = PScale::kAlpha);

}  // namespace mdnstab
