// Grid sweeps over the gate space (DESIGN.md section 7, `sweep`): axes over
// alpha, beta, mu, eta, log_alpha, log_mu, fixed values for the rest, and a
// table of named metrics evaluated at every point on all cores. Tested in
// tests/test_sweep.cpp (engine) and tests/cli/ (command).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mdnstab/gates.hpp"
#include "mdnstab/precision.hpp"
#include "mdnstab/spectrum.hpp"
#include "mdnstab/spectrum_batch.hpp"
#include "mdnstab/status.hpp"

namespace mdnstab {

inline constexpr std::string_view kGateNames[] = {"alpha", "beta", "mu", "eta", "log_alpha", "log_mu"};

struct Axis {
  std::string name;
  double start = 0, stop = 0;
  long n = 1;
  // Evenly spaced, endpoints exact.
  double at(long i) const { return i == n - 1 ? stop : start + (stop - start) * double(i) / double(n - 1); }
};

// "NAME=START:STOP:N"; N = 1 requires START = STOP.
Result<Axis> parse_axis(std::string_view spec);

struct FixedGate {
  std::string name;
  double value = 0;
};
// "NAME=VALUE".
Result<FixedGate> parse_fixed(std::string_view spec);

// Settings of the chunk_safe metric (the rule of chunk_safety.hpp).
struct SweepChunkConfig {
  int chunk = 64;                         // C
  Precision precision = Precision::kFp32;
  double tol = 1e-2;                      // relative error that breaks a chunk
  int steps = 4096;                       // sequence length (caps the state's memory)
  int dk = 64;                            // key dimension (the memory under random keys)
};

// What a metric sees at one grid point.
struct SweepPointContext {
  const Gates& gates;
  const FrozenSpectrum* spectrum;          // set when the metric needs_spectrum
  const SweepChunkConfig* chunk = nullptr;  // always set by run_sweep
};

// What a metric sees for a block of consecutive grid points (the engine's unit).
struct SweepBlockContext {
  const GateBatch& gates;        // [n] each
  const SpectrumBatch* spectrum;  // set when the metric needs_spectrum
  long n;
};

// One metric: a named group of CSV columns. A value of NaN means "none"
// (written as an empty field); categorical columns store an index into labels.
struct MetricDef {
  std::string name;
  std::string help;
  std::vector<std::string> columns;
  std::vector<std::string> labels;  // non-empty: columns are categorical
  bool needs_spectrum = true;
  bool needs_transient_peak = false;
  bool needs_dynamics = true;  // of the spectrum: damping ratio, natural frequency, half-life
  bool default_on = true;
  std::function<void(const SweepPointContext&, double* out)> eval;
  // Optional, the same for a block of points: out[k][i] is column k at point i.
  // out[k] comes pointing at scratch room for n values; a metric may instead point
  // it at a column that stays valid for the block (the spectrum's: no copy).
  // Metrics without it are evaluated point by point through `eval`.
  std::function<void(const SweepBlockContext&, const double** out)> eval_block;
};

// Every metric `sweep --metrics` knows, in column order.
const std::vector<MetricDef>& sweep_metrics();

struct SweepSpec {
  std::vector<Axis> axes;        // 1 to 4
  std::vector<FixedGate> fixed;  // the gates no axis covers
  PScale p_scale = PScale::kAlpha;
  std::vector<std::string> metrics;  // empty: the default set
  SweepChunkConfig chunk;            // for chunk_safe
};

// Which engine computes the spectra: the portable reference (analyze_frozen per
// point), or the fast path (analyze_frozen_batch) at a vector width. kAuto: the fast
// path where the CPU has AVX2 or AVX-512, else the portable one.
enum class SweepEngine { kAuto, kPortable, kFast };

struct EngineChoice {
  SweepEngine engine = SweepEngine::kAuto;
  std::optional<SimdLevel> simd;  // kFast only; empty: the widest supported
};
// "auto", "portable", "fast", "fast-avx512", "fast-avx2", "fast-scalar".
Result<EngineChoice> parse_sweep_engine(std::string_view s);

struct SweepOptions {
  int threads = 0;              // 0: all cores
  std::string out_path;         // empty: compute and summarize only
  bool progress = false;        // a progress line on stderr
  double max_output_bytes = 20e9;
  EngineChoice engine;
};

struct SweepSummary {
  long points = 0;
  double fraction_complex = 0;   // A_par has a complex pair (A_perp never does)
  double fraction_negative = 0;  // either block has a negative real eigenvalue
  double max_frozen_rho = 0;
  Gates argmax;                  // where max_frozen_rho is reached (first such point)
  std::vector<std::string> columns;
  double estimated_bytes = 0;
  double seconds_compute = 0;    // evaluating metrics (and formatting, with output)
  double seconds_total = 0;
  double seconds_cpu = 0;        // CPU time of the whole process meanwhile, all threads
  int threads = 1;
  std::string engine;            // the engine that ran: "portable", "fast-avx512", ...
};

// Checks the spec (axes, fixed values, metrics, sizes) before any work.
Status check(const SweepSpec& spec, const SweepOptions& opt);

Result<SweepSummary> run_sweep(const SweepSpec& spec, const SweepOptions& opt);

}  // namespace mdnstab
