// Chunk safety (DESIGN.md section 5): where the paper's reordered chunkwise
// algorithm loses precision or overflows, measured (the emulation chunk_ref
// against the fp64 recurrence) and predicted (a rule on the gates, the chunk
// size and the precision). Tested in tests/test_chunk_safety.cpp.
//
// The rule. Inside a chunk the algorithm forms, for t = 0..L-1,
//   log C_t = log sum_{j<=t} c_j,  c_j = beta_j Mu_j / A_j  (A, Mu: products of alpha, mu)
//   Gamma_{t,j} = exp(logA_t + log C_t - logMu_j) * (1 - exp(log C_{j-1} - log C_t)).
// The true Gamma_{t,t} is beta_t, but it is formed as a huge exponential times a
// tiny difference: 1 - exp(log C_{t-1} - log C_t) = c_t / C_t = exp(-kappa_t) with
//   kappa_t = log C_t - log c_t >= 0    (constant gates: about t (log alpha - log mu)
//                                        when alpha > mu, at most log(t + 1) otherwise).
// log C_t carries an absolute rounding error of about u (1 + |log C_t|) (u: the unit
// roundoff), so the difference has a relative error of about u e^kappa_t (1 + |log C_t|);
// once e^-kappa_t < u it is 0 and Gamma_{t,t} is lost: the output is wrong by O(1).
// The exponent of that entry, logA_t + log C_t - logMu_t = kappa_t + log beta_t, is
// the largest of its row; past log(max) (88.7 in fp32 and bf16, 709.8 in fp64) it is
// inf, and inf * 0 is NaN. The relative RMS output error is then predicted as
//   err = u [ sqrt(mean_t e^(2 kappa_t) (1 + |log C_t|)^2) sqrt(max(1, K / L)) + sigma ]
//       + u sqrt(8 + max(H, K) / L) + u' sqrt(1 + 4 beta_max K),
// where sigma = |logA|_2 + |logMu|_2 + |log(Mu/A)|_2 + max |log C| (2-norms over the
// chunk of the cumulative sums, whose rounding errors enter every exponent), H is the
// memory of the state in tokens (1 / (1 - max(alpha, mu)), capped at the sequence)
// over which the roundings of S and M at each of the L-token chunk boundaries add
// up, 8 counts the rounded elementwise stages, and u' is the unit roundoff of the
// matrix-product operands (tf32: 2^-11). Four such products round every token's key
// update (in size beta_t times the state), and the errors add up over K tokens, the
// memory of the state under changing keys: the mean age of what the state holds when
// each token adds to it and its mean square grows by r^2 per token, r the mean-square
// growth under random unit keys of the inputs' dimension (mean_square_growth in
// lyapunov.hpp). About 1 / (1 - r^2) where r < 1; about the whole sequence where r > 1
// (the recurrence grows, the oldest content dominates, and every error grows with it).
// That last term does not depend on C: it breaks every chunk size alike. (Each token's
// error grows as the state does; the state's content is, in the mean, K tokens old.)
// By the same token the cancellation's error, made afresh in every chunk, adds up over
// the K / L chunks the state remembers, and so do the roundings of S and M where K
// exceeds H. (sigma is left alone: it already overstates where |log alpha| is huge.)
// A chunk is unsafe when an exponent overflows or err > tol. For constant gates with
// alpha > mu and C >> 1 the first term dominates: fp32 breaks near
// (C - 1)(log alpha - log mu) ~ 13 (C = 64), fp64 near 33; in bf16 the other terms
// alone reach 1e-2; in tf32 at beta = 0.9 an r > 1 breaks sequences of a few hundred
// tokens.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mdnstab/checkpoint.hpp"
#include "mdnstab/chunk_ref.hpp"
#include "mdnstab/gate_dump.hpp"
#include "mdnstab/gates.hpp"
#include "mdnstab/precision.hpp"
#include "mdnstab/sampling.hpp"
#include "mdnstab/status.hpp"
#include "mdnstab/sweep.hpp"

namespace mdnstab {

inline constexpr double kChunkTolerance = 1e-2;  // "breaks": relative error above this

// What the rule needs besides the gates.
struct ChunkRuleOptions {
  double tol = kChunkTolerance;  // an error above this breaks the chunk
  int steps = 4096;              // sequence length (caps the state's memory)
  int dk = 64;                   // key dimension (the memory under random keys)
  double beta_eps = 0;           // as ChunkOptions::beta_eps
};

// The gate statistics of one chunk that decide its accuracy (computed in fp64).
struct ChunkRisk {
  double log_cancellation = 0;  // Lambda = max_t kappa_t = max_t (log C_t - log c_t)
  double max_exponent = 0;      // the largest argument of exp (overflow past log_max)
  double log_magnitude = 0;     // sigma: size of the cumulative log sums (see above)
  double key_memory = 0;        // K: tokens over which the products' errors add up (see above)
  double predicted_error = 0;   // capped at 1
  bool overflow = false;        // max_exponent > log_max of the precision
};

// One chunk of per-token gates (log_alpha, log_mu, beta all of the chunk's length);
// key_memory: K at the chunk (key_memory_along; NaN: unknown, the whole sequence).
ChunkRisk chunk_risk(std::span<const double> log_alpha, std::span<const double> log_mu,
                     std::span<const double> beta, double key_memory, Precision p, const ChunkRuleOptions& o = {});
// Gates held constant over a chunk of C tokens (and over the o.steps of the sequence);
// key_memory: key_memory(key_growth(g, o), o.steps), computed here when not given.
ChunkRisk chunk_risk(const Gates& g, int C, Precision p, const ChunkRuleOptions& o = {},
                     std::optional<double> key_memory = std::nullopt);
// The rule's r for g: mean_square_growth(g, o.dk).
double key_growth(const Gates& g, const ChunkRuleOptions& o);
// K after `steps` tokens of constant r: the mean of the ages 1 .. steps weighted by
// r^(2 (age - 1)), in closed form. NaN r: `steps`.
double key_memory(double r, long steps);
// K after each token of a sequence whose tokens have growths r[t] (K_t = the mean age,
// weights the products of r^2 since), by a running recurrence. A chunk takes the
// largest K_t of its tokens.
std::vector<double> key_memory_along(std::span<const double> r);

// The rule's verdict: no overflow and predicted error <= tol.
bool chunk_safe(const Gates& g, int C, Precision p, const ChunkRuleOptions& o = {});
bool chunk_safe(const ChunkRisk& r, double tol = kChunkTolerance);

// The largest C in [1, c_max] for which every gate set (each held constant over a
// chunk) is safe; 0 when none is. The risk grows with C, so this is a bisection.
int largest_safe_chunk(std::span<const Gates> gates, Precision p, const ChunkRuleOptions& o = {},
                       int c_max = kMaxChunk);

// Random inputs of the measurements: q, k, v standard normal ([T,DK], [T,DK], [T,DV]).
struct ChunkInputs {
  int dk = 64, dv = 64, steps = 1024;
  std::vector<double> q, k, v;
};
ChunkInputs random_chunk_inputs(int dk, int dv, int steps, uint64_t seed);
inline constexpr int kMaxChunkDim = 4096;          // dk, dv
inline constexpr long kMaxChunkSteps = 1L << 24;   // tokens per measured sequence
// Sizes a measurement takes: dk and dv in [1, kMaxChunkDim], steps in [1, kMaxChunkSteps];
// else one line naming the option.
Status check_chunk_inputs(int dk, int dv, long steps);

// largest_safe_chunk() with the rule's "unsafe" verdicts checked by emulation.
struct CheckedSafeChunk {
  int largest = 0;             // as largest_safe_chunk, over the gate sets not left out
  long emulations = 0;         // measure_chunk_error calls made
  long unrepresentable = 0;    // left out: broken by emulation even at C = 1 (see below)
  // Of those, why no chunk size mends them (the rest: p's arithmetic errs above o.tol):
  long overflow = 0;   // the emulated output or the fp64 reference is not finite
  long underflow = 0;  // every reference output lies below p's smallest normal value
  long judged = 0;             // the gate sets the figure covers (none: it is c_max, vacuously)
};
// The largest C in [1, min(c_max, in.steps)] (past the emulated sequence a chunk is all
// of it) at which every gate set is safe by the rule or, where the
// rule says unsafe, measured safe on `in` (finite, error <= o.tol against a finite fp64
// reference). A gate set the emulation breaks even at C = 1 is left out and counted, by
// cause: no chunk size mends it (its outputs are not finite, inf or NaN from inf - inf,
// or lie below p's smallest normal value, or p's arithmetic errs above o.tol however
// short the chunks). The rule is conservative where |log alpha| reaches 10^4 (its
// u sigma term is then 10 to 100 x the measured error), so that one such gate set would
// otherwise decide the figure for all.
// The count is of those the rule calls unsafe at the figure. Emulates only where the
// rule says unsafe, at the sizes a bisection visits (first below C = 64, above only when
// all are safe there); the emulations run on `threads` cores (0: all), and neither the
// figure nor the counts depend on how many.
CheckedSafeChunk largest_safe_chunk_checked(std::span<const Gates> gates, Precision p, const ChunkRuleOptions& o,
                                            const ChunkInputs& in, int c_max = kMaxChunk, int threads = 0);

struct ChunkError {
  double rel_rms = 0;    // |o - o_ref|_F / |o_ref|_F (inf when o is not finite)
  double max_abs = 0;    // max |o - o_ref|
  double state_rel = 0;  // the same relative error of the final S and M together
  bool finite = true;    // the emulated output and states are finite
  bool reference_finite = true;
  double reference_max_abs = 0;  // max |o_ref|
  // Broken at tolerance tol: not finite, or the error above tol (judged only where the
  // reference is finite).
  bool broken(double tol) const { return !finite || rel_rms > tol; }
};

// Why a measurement is broken even at C = 1, which no chunk size mends: the output or
// the fp64 reference is not finite (overflow), every reference output lies below p's
// smallest normal value (underflow), or else p's arithmetic errs above the tolerance.
enum class BrokenCause { kOverflow, kUnderflow, kErred };
BrokenCause broken_cause(const ChunkError& e, Precision p);

// The rule's "safe" verdicts at C, spot-checked by emulation. largest_safe_chunk_checked()
// emulates only where the rule says unsafe; this takes up to n of the gate sets the
// rule calls safe at C (a seeded random choice where there are more, the same on any
// number of threads) and emulates each on `in` at C. The rule can call safe what
// breaks where the recurrence grows under changing keys (README, "known limit").
inline constexpr long kSafeSpotChecks = 256;  // safe verdicts emulated by the CLI and the report
struct SafeVerdictCheck {
  int chunk = 0;
  long safe = 0;         // gate sets the rule calls safe at C
  long checked = 0;      // of those, emulated
  long judged = 0;       // of those, with a finite fp64 reference
  long left_out = 0;     // of those, broken even at C = 1, which no chunk size mends (as
                         // largest_safe_chunk_checked leaves them out)
  long broken = 0;       // the others broken at C: not finite or error above o.tol
  double max_error = 0;  // the largest error among the judged not left out (inf: not finite)
  long worst = -1;       // the gate set with it (index into gates), -1 if none
  struct Sample {
    long index = 0;  // into gates
    ChunkError error;
    bool left_out = false;  // broken at C and at C = 1 (finite reference)
    bool broken = false;    // broken at C only (finite reference): the rule's verdict was wrong
  };
  std::vector<Sample> samples;  // every one emulated, in index order
};
SafeVerdictCheck check_safe_verdicts(std::span<const Gates> gates, int C, Precision p, const ChunkRuleOptions& o,
                                     const ChunkInputs& in, long n, uint64_t seed, int threads = 0);

// Emulated chunk output with gates g held constant over every token, against
// recurrent_ref in fp64 on the same inputs rounded to p (so only the algorithm's
// arithmetic is measured).
ChunkError measure_chunk_error(const Gates& g, const ChunkInputs& in, int C, Precision p, double beta_eps = 0);
// The same with every token's own gates (each of the four has in.steps values).
ChunkError measure_chunk_error(std::vector<double> log_alpha, std::vector<double> log_mu, std::vector<double> beta,
                               std::vector<double> eta, PScale p_scale, const ChunkInputs& in, int C, Precision p,
                               double beta_eps = 0);

// The map of `chunk-safety`: a grid over 1 or 2 gate axes (alpha or log_alpha, mu or
// log_mu, beta, eta), the other gates fixed.
struct ChunkMapSpec {
  std::vector<Axis> axes;        // 1 or 2
  std::vector<FixedGate> fixed;  // the gates no axis covers
  PScale p_scale = PScale::kAlpha;
  int chunk = 64;
  Precision precision = Precision::kFp32;
  int dk = 64, dv = 64, steps = 1024;
  uint64_t seed = 0;
  double tol = kChunkTolerance;
  double beta_eps = 0;
  int threads = 0;                // 0: all cores
  std::string out_path;           // CSV; empty: none
  double max_seconds = 12 * 3600; // refuse grids estimated to take longer
  bool progress = false;          // a progress line on stderr
  // Polled between points: once it holds a nonzero value the remaining points are
  // skipped and run_chunk_map returns an error (a caller's SIGINT flag).
  const std::atomic<int>* stop = nullptr;
};

struct ChunkMapPoint {
  Gates gates;
  ChunkError error;
  ChunkRisk risk;
  bool broken = false;     // measured: error > tol or not finite
  bool predicted = false;  // the rule says unsafe
};

struct ChunkMapSummary {
  long points = 0;
  long reference_nonfinite = 0;  // the fp64 recurrence itself overflowed: not judged
  long judged = 0;               // the other points
  long broken = 0, nonfinite = 0;
  long rule_agree = 0;
  long false_safe = 0, false_unsafe = 0;  // rule misses: said safe but broke / said unsafe but fine
  // The worst miss: the disagreeing point farthest from the rule's boundary
  // (|log10(predicted_error / tol)|, inf for an overflow verdict).
  bool has_miss = false;
  ChunkMapPoint worst_miss;
  double worst_miss_margin = 0;
  // Points whose prediction is more than a decade from tol (or overflow) and
  // where the rule still disagrees: none expected.
  long far_points = 0, far_misses = 0;
  // The broken region: ranges of the axes over the broken points.
  std::vector<double> broken_min, broken_max;
  // Lambda (the rule's cancellation exponent) at the edge of the broken region.
  double lambda_broken_min = 0, lambda_safe_max = 0;
  double max_error_safe = 0;  // the largest error among unbroken points
  double seconds = 0;
  int threads = 1;
  std::vector<ChunkMapPoint> points_list;  // every point, in grid order
};

// Checks the spec (axes, gates, sizes, estimated time and output) before any work.
Status check(const ChunkMapSpec& spec);
// Estimated seconds on `threads` cores (from the multiply-add count).
double estimate_seconds(const ChunkMapSpec& spec, int threads);
// Bytes that emulations of `steps` tokens take on `threads` threads, and the check of a
// total against this machine's memory (kTooLarge naming what to `lower`).
double emulation_bytes(long steps, int dk, int dv, int chunk, int threads);
Status check_memory(double bytes, std::string_view lower);
Result<ChunkMapSummary> run_chunk_map(const ChunkMapSpec& spec);

// ---------- gate sets: a parametrization's samples, a gate dump, a checkpoint ----------

// The chunk sizes whose unsafe fractions are always reported (the kernels' usual ones).
inline constexpr int kReportedChunks[] = {16, 32, 64, 128, 256};

struct ChunkCount {
  int chunk = 0;
  long unsafe = 0;    // gate sets the rule calls unsafe at this C
  long overflow = 0;  // of which an exponent overflows (the kernel returns inf/NaN)
};

// Every gate set held constant over a chunk (the worst case of a gate that recurs).
struct GateSetChunkSafety {
  long gates = 0;
  ChunkCount at;                   // at the requested C
  std::vector<ChunkCount> by_chunk;  // kReportedChunks
  int largest_safe_chunk = 0;      // any C in [1, kMaxChunk]; 0: unsafe even at C = 1
  int largest_safe_pow2 = 0;       // the largest power of two <= largest_safe_chunk (0 if none)
  long worst = -1;                 // index of the gate set with the largest Lambda at C (first of equals)
  ChunkRisk worst_risk;
};

// Evaluates the rule for every gate set on all cores (threads = 0: all).
GateSetChunkSafety analyze_chunk_safety(std::span<const Gates> gates, int C, Precision p, const ChunkRuleOptions& o,
                                        int threads = 0);

// A dump of per-token gates [B,T,H]: every token held constant (`tokens`), and
// the dump's own chunks of C consecutive tokens of one batch row and head, judged
// with their per-token gates (`chunks`).
struct DumpChunkSafety {
  GateSetChunkSafety tokens;
  long chunks = 0, unsafe_chunks = 0, overflow_chunks = 0;
  long tokens_in_unsafe_chunks = 0;
  // The largest power of two C for which every chunk of the dump is safe.
  int largest_safe_pow2 = 0;
  int64_t worst_b = -1, worst_t = -1, worst_h = -1;  // start of the worst chunk at C
  ChunkRisk worst_risk;
};
Result<DumpChunkSafety> analyze_chunk_safety(const GateDump& d, int C, Precision p, const ChunkRuleOptions& o,
                                             int threads = 0);

// A gate dump's own sequences emulated: each (batch, head) row, every token with its own
// gates, through the chunkwise algorithm on random q, k, v against the fp64 recurrence.
struct DumpSequenceCheck {
  int64_t batch = 0, head = 0;
  ChunkError error;        // at the chunk size asked
  bool rule_safe = true;   // every chunk of the row safe by the rule
  bool broken = false;     // measured (judged where the reference is finite)
};
struct DumpChunkCheck {
  int chunk = 0;
  std::vector<DumpSequenceCheck> sequences;  // row b * heads + h
  // Over the rows whose fp64 reference is finite (judged): measured broken, called
  // unsafe by the rule, agreeing, and broken where the rule said safe.
  long judged = 0, broken = 0, rule_unsafe = 0, agree = 0, false_safe = 0;
  double max_error_unbroken = 0;
  // The largest power of two C <= min(time, kMaxChunk) at which every judged row not
  // left out measures unbroken (0: none judged). Left out: broken even at C = 1, by
  // cause as in CheckedSafeChunk.
  int largest_safe_pow2 = 0;
  long left_out = 0, overflow = 0, underflow = 0;
  long emulations = 0;
};
// `in` must have in.steps = d.time. Runs the rows on `threads` cores (0: all); the
// results do not depend on how many. Fails on a chunk size out of [1, min(time, kMaxChunk)],
// inputs of the wrong length, or (kTooLarge) an estimate above max_seconds for the
// worst case, every power of two emulated.
Result<DumpChunkCheck> check_dump_chunks(const GateDump& d, int C, Precision p, const ChunkRuleOptions& o,
                                         const ChunkInputs& in, int threads = 0, double max_seconds = 12 * 3600);

struct HeadChunkSafety {
  int layer = 0, head = 0;
  HeadParams params;
  GateSetChunkSafety safety;
  std::optional<CheckedSafeChunk> checked;  // with `check` inputs
  std::vector<Gates> gates;  // with `check` inputs: the sampled gate sets (for check_safe_verdicts)
};
// Each head of a checkpoint: its learned parameters fixed, raw inputs sampled
// (sampling.head is overridden), every sample's gates held constant. With `check`,
// each head's largest safe chunk is also checked by emulation on those inputs
// (largest_safe_chunk_checked). Runs on sampling.threads cores (0: all), heads in
// parallel where there are at least twice as many; results do not depend on it.
Result<std::vector<HeadChunkSafety>> analyze_chunk_safety(const Checkpoint& ck, Parametrization param,
                                                          const SamplingOptions& sampling, int C, Precision p,
                                                          const ChunkRuleOptions& o,
                                                          const ChunkInputs* check = nullptr);

}  // namespace mdnstab
