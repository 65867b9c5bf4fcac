// Does a gating parametrization keep every reachable gate certified for all
// key sequences (DESIGN.md section 4, tier 3)? Certifies sampled reachable
// gates (sampling.hpp), gate dumps of real models (gate_dump.hpp) and each
// head of a checkpoint (checkpoint.hpp), and summarizes verdicts, the worst
// gamma, and counterexamples with their raw values and witnesses.
// Tested in tests/test_constraint.cpp and tests/cli/test_cli_constraint.cpp.
#pragma once

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "mdnstab/certify.hpp"
#include "mdnstab/checkpoint.hpp"
#include "mdnstab/gate_dump.hpp"
#include "mdnstab/sampling.hpp"

namespace mdnstab {

// The interval a quantity covers over a set (empty: lo > hi).
struct ValueRange {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  void add(double v) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  bool empty() const { return lo > hi; }
};

// Ranges of the gates (and derived quantities) over a set of gates.
struct GateSetRanges {
  long n = 0;
  ValueRange alpha, beta, mu, eta, beta_eta, alpha_plus_beta;
  // 1 - max(alpha, mu): how far inside the open gate set (its edge is alpha or mu = 1).
  ValueRange depth;
  void add(const Gates& g);
};

// How far a gate lies inside the reachable set: 1 - max(alpha, mu), from the
// logs so that it stays exact near 1.
double gate_depth(const Gates& g);

struct VerdictCounts {
  long certified = 0, refuted = 0, undecided = 0;
  long failed = 0;  // certify() returned an error (reported, never counted as certified)
  long total() const { return certified + refuted + undecided + failed; }
  double fraction(long k) const { return total() ? double(k) / double(total()) : 0.0; }
  void add(Verdict v);
};

struct ConstraintOptions {
  SamplingOptions sampling;
  // Applied per gate. The witness search runs only where gamma >= 1 (a
  // certified gate needs none), which keeps whole-set runs fast.
  CertifyOptions certify;
  double margin = 1e-3;  // "inside the margin": max(alpha, mu) <= 1 - margin
  int top = 5;           // counterexamples kept
  int threads = 0;       // 0: all cores
};

// One certified sample (or token) with what produced it.
struct CheckedGate {
  SampledGate sample;  // raw inputs and learned parameters (zero for dumps)
  Certificate cert;
  Status status;       // not ok: certify() failed on this gate
  double depth = 0;    // gate_depth()
  double replayed_growth = NAN;  // witness_growth() of the witness, an independent re-evaluation
};

struct ConstraintReport {
  Parametrization param = Parametrization::kMdn;
  ParamConfig config;
  SampleRange range = SampleRange::kBoth;
  long samples = 0;
  double margin = 1e-3;
  GateSetRanges reachable;          // every sample
  GateSetRanges refuted_region;     // refuted samples inside the margin
  double worst_frozen_rho = 0;
  CheckedGate worst_frozen;
  VerdictCounts all, inside_margin;
  VerdictCounts by_range[2];        // [initial, wide]
  VerdictCounts by_kind[3];         // [uniform, edge, corner]
  double worst_gamma = 0;           // max gamma over all samples
  double worst_gamma_inside_margin = 0;
  double worst_certified_gamma = 0;  // the largest gamma < 1 (how close certified gates come)
  CheckedGate worst_gamma_sample;
  std::vector<CheckedGate> counterexamples;  // refuted, by witness growth, at most `top`
  CheckedGate deepest_refuted;               // the refuted sample farthest inside (if any)
  std::vector<CheckedGate> undecided;        // by gamma, at most `top`
  // Refuted samples at least this deep inside: depths 1e-6, 1e-3, 1e-2, 0.1.
  long refuted_deeper_than[4] = {0, 0, 0, 0};
  std::string first_failure;  // message of the first failed certify(), empty if none
  double seconds = 0;
};
inline constexpr double kDepthThresholds[4] = {1e-6, 1e-3, 1e-2, 0.1};

// Certifies already sampled gates (each on its own) and summarizes them.
// `keep` (optional) receives every checked sample, in order, for output files.
Result<ConstraintReport> analyze_samples(std::vector<SampledGate> samples, const ConstraintOptions& opt,
                                         std::vector<CheckedGate>* keep = nullptr);

// Samples the parametrization (opt.sampling) and analyzes the samples.
Result<ConstraintReport> analyze_parametrization(Parametrization p, const ParamConfig& c,
                                                 const ConstraintOptions& opt,
                                                 std::vector<CheckedGate>* keep = nullptr);

// One token of a dump with its single-gate verdict.
struct TokenCheck {
  int64_t b = 0, t = 0, h = 0;
  CheckedGate check;
};

struct DumpHeadReport {
  int64_t head = 0;
  long tokens = 0, distinct = 0;  // distinct: gate sets after removing repeats
  GateSetRanges ranges;
  // The head's gates over all batches and tokens as ONE time-varying set.
  Certificate set_cert;
  Status set_status;
  VerdictCounts token_verdicts;       // each token's gates on their own
  double worst_token_gamma = 0;
  std::vector<TokenCheck> flagged;    // refuted then undecided tokens, worst first, at most `top`
};

struct DumpReport {
  int64_t batch = 0, time = 0, heads = 0;
  std::string format;
  std::vector<DumpHeadReport> heads_report;
  VerdictCounts token_verdicts;  // all heads
  double seconds = 0;
};

// Certifies each head's gates as one set and every token on its own (tokens
// with equal gates are certified once). `tokens` (optional) receives every
// token's check in [B,T,H] order.
Result<DumpReport> analyze_dump(const GateDump& d, const ConstraintOptions& opt,
                                std::vector<TokenCheck>* tokens = nullptr);

struct HeadConstraint {
  int layer = 0, head = 0;
  HeadParams params;
  ConstraintReport report;
};

// Each head of a checkpoint: its learned parameters fixed, raw inputs sampled
// (opt.sampling, whose `head` is overridden), the samples certified.
Result<std::vector<HeadConstraint>> analyze_checkpoint(const Checkpoint& ck, Parametrization p,
                                                       const ConstraintOptions& opt);

// The verdict of a sampled set as a whole (one head of a checkpoint, or a
// parametrization) from its samples inside the margin: refuted when any of
// them is refuted, undecided when any is undecided or failed or none lies
// inside, certified otherwise.
Verdict margin_verdict(const ConstraintReport& r);

// A sentence describing the reachable set of a parametrization (from the map,
// not from samples), for reports.
std::string describe_reachable_set(Parametrization p, const ParamConfig& c);

}  // namespace mdnstab
