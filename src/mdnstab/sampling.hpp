// Sampling the gate set a parametrization reaches (DESIGN.md sections 2 and 4):
// raw inputs (a, b, m, e) and learned per-head parameters drawn from a stated
// box, uniformly and pushed to the saturating ends where gamma is decided, then
// mapped to gates with their raw values kept. Tested in tests/test_sampling.cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mdnstab/parametrization.hpp"

namespace mdnstab {

// "initial": the learned parameters over their initialization ranges
// (DESIGN.md section 2) and raw inputs as unit-variance projections within 4
// standard deviations. "wide": both well beyond (see SamplingBox). "both":
// even-numbered samples from the initial box, odd-numbered from the wide one.
enum class SampleRange { kInitial, kWide, kBoth };
const char* to_string(SampleRange r);
Result<SampleRange> parse_sample_range(std::string_view s);

// The box samples are drawn from. Learned scales are given as values
// (exp(A_log), exp(Mu_log), exp(log_factor), dt); a lower end of 0 is open.
struct SamplingBox {
  double raw_abs = 4;         // a, b, m in [-raw_abs, raw_abs]
  double e_over_tau_abs = 4;  // e / tau in [-e_over_tau_abs, e_over_tau_abs]
  double A_lo = 0, A_hi = 16;          // exp(A_log)
  double Mu_lo = 0, Mu_hi = 16;        // exp(Mu_log)
  double factor_lo = 0, factor_hi = 4;  // exp(log_factor)
  double dt_lo = 1e-3, dt_hi = 0.1;    // dt_bias = inverse_softplus(dt); mu_bias likewise
  bool log_uniform_learned = false;    // uniform draws in log scale (wide) or linear (initial)
  // "initial": exp(A_log), exp(Mu_log), exp(log_factor) uniform, dt log-uniform
  // (the initialization of DESIGN.md section 2).
};

// initial: the box above (also for kBoth). wide: a, b, m, e/tau in [-40, 40] (every sigmoid and
// softplus saturates to its double-precision limit), exp(A_log), exp(Mu_log)
// in [1e-6, 1e3], exp(log_factor) in [1e-4, 1e3], dt in [1e-6, 10], all log-uniform.
SamplingBox sampling_box(SampleRange r);
// One line saying what the box is, for reports.
std::string describe(const SamplingBox& box, const ParamConfig& c);

// How a sample was drawn.
enum class SampleKind {
  kUniform,  // every coordinate uniform over the box (learned: their init law)
  kEdge,     // each coordinate, with probability 1/2, near one end of its range
             // (distance log-uniform from 1e-6 to 1 of the range)
  kCorner,   // raw inputs near the ends that push alpha', mu, beta' to 1 and eta
             // to 2 (a, m low; b, e high), learned parameters uniform or at edges
};
const char* to_string(SampleKind k);

struct SamplingOptions {
  long samples = 20000;
  uint64_t seed = 1;
  SampleRange range = SampleRange::kBoth;
  std::optional<SamplingBox> box;  // overrides range's box (not with kBoth)
  // Fractions of kEdge and kCorner samples; the rest are kUniform.
  double edge_fraction = 0.35;
  double corner_fraction = 0.25;
  // Fixed learned parameters (one head of a checkpoint): only raw inputs are sampled.
  std::optional<HeadParams> head;
  PScale p_scale = PScale::kAlpha;
  int threads = 0;  // 0: all cores
};

struct SampledGate {
  HeadParams head;
  RawInputs raw;
  MappedGates mapped;
  SampleKind kind = SampleKind::kUniform;
  SampleRange range = SampleRange::kInitial;  // the box it came from: initial or wide
};

// Draws opt.samples samples on all cores. Sample i depends only on (seed, i),
// so results do not depend on the thread count. Fails on a bad option or
// config (naming it), or if a mapped gate is invalid.
Result<std::vector<SampledGate>> sample_reachable_gates(Parametrization p, const ParamConfig& c,
                                                        const SamplingOptions& opt);

// The learned parameters of one head drawn from DESIGN.md's initialization,
// for tests and examples: exp(A_log), exp(Mu_log) ~ U(0, 16), exp(log_factor)
// ~ U(0, 4), dt_bias and mu_bias = inverse_softplus(dt), dt log-uniform in [1e-3, 0.1].
HeadParams initial_head_params(uint64_t seed, uint64_t index);

}  // namespace mdnstab
