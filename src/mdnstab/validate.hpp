// GPU validation of the stability predictions (DESIGN.md section 4): for each gate
// set, the CPU predictions (frozen rho, gamma with W, lower bound with its witness,
// verdict, random-key exponent) next to long many-configuration runs and a long run
// of the full recurrent kernel, and one check per claim; every failed check is kept.
// The runs go through a backend (CPU reference here, GPU in src/cli/gpu_backend.cpp),
// so the library needs no CUDA. Tested in tests/test_validate.cpp and
// tests/cli/test_cli_validate.cpp.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "many_config.hpp"
#include "mdnstab/certify.hpp"
#include "mdnstab/gates.hpp"
#include "mdnstab/status.hpp"

namespace mdnstab {

// One row: a gate set. One gate: constant gates. Several: random keys and the full
// run draw a row uniformly per step; the witness cycles rows as it says.
struct ValidateRow {
  std::vector<Gates> gates;
  std::string label;
};

// What the CPU analyses claim for a row.
struct Prediction {
  Certificate cert;                    // gamma, W, lower bound, witness, verdict, frozen rho
  double exponent = NAN;               // random-key top Lyapunov exponent per step
  double exponent_se = NAN;            // its standard error
  std::string exponent_method;         // "lyapunov" (single gate) or "many-config-ref" (gate set)
  int exponent_dk = 0;
  long exponent_steps = 0;
  int exponent_chains = 0;
  std::uint64_t exponent_seed = 0;
};

struct ValidateOptions {
  int dk = 128;                    // key dimension of every run
  long steps = 1000000;            // measured steps per many-config head
  long burn_in = -1;               // steps before measuring; -1: steps / 10
  int random_heads = 64;           // random-key heads per row
  std::vector<double> rotation_angles = {0.5, 1.2};  // extra rotating-key heads per row (radians per step)
  long full_steps = -1;            // full recurrent kernel with random q, k, v: -1 = steps, 0 = off
  int full_dv = 8;                 // its value columns
  std::uint64_t seed = 1;
  long cpu_steps = 20000;          // CPU random-key estimate: steps per chain
  int cpu_chains = 16;
  double z = 5;                    // standard errors allowed between two exponent estimates
  double tol_round = 1e-5;         // per-step allowance for fp32 against double (the 1e-5 replay agreement)
  int threads = 0;                 // CPU threads (0: all cores)
  CertifyOptions certify;
};

Status check(const ValidateOptions& o);
long burn_in_steps(const ValidateOptions& o);
long full_run_steps(const ValidateOptions& o);

// One claim checked against a measurement.
struct Check {
  enum class State { kPass, kFail, kSkip };
  std::string name;
  State state = State::kSkip;
  double measured = NAN, expected = NAN, tolerance = NAN;
  std::string detail;  // what was compared, in words (why skipped)
};
const char* to_string(Check::State s);

struct Measurement {
  // Random keys: mean and standard error of the per-head rates, the largest one.
  double exponent = NAN, exponent_se = NAN, max_rate = NAN;
  double sigma2 = NAN;   // per-step variance of the log-norm increments (steps * var of head rates)
  int heads = 0;
  int flagged = 0;       // heads with an underflow, zero or non-finite flag
  int nonfinite = 0;     // heads with a non-finite state
  // The witness replayed (NaN: no witness).
  double witness_rate = NAN, witness_expected = NAN;
  // Rotating keys at the extra angles.
  std::vector<double> rotation_angle, rotation_rate, rotation_expected;
  // Full recurrent kernel, random q, k, v.
  long full_steps = 0;
  std::int64_t first_nonfinite = -1;  // 1-based step, -1: finite throughout
  double full_max_norm = NAN, full_bound = NAN;
};

struct RowResult {
  ValidateRow row;
  Prediction prediction;
  Measurement measured;
  std::vector<Check> checks;
  bool agrees() const;
};

struct ValidationReport {
  std::vector<RowResult> rows;
  std::string device;            // where the measurements ran
  int devices = 1;
  double seconds_predict = 0;    // CPU predictions
  double seconds_measure = 0;    // backend runs, wall
  double many_config_seconds = 0;  // the many-config runs alone
  double head_steps = 0;         // many-config head-steps done
  long disagreements() const;
};

// Runs the many-config heads and the long full-kernel runs somewhere.
class ValidateBackend {
 public:
  virtual ~ValidateBackend() = default;
  virtual std::string device() const = 0;
  virtual int devices() const { return 1; }
  virtual bool gpu() const = 0;
  virtual Status many_config(const kernels::ManyConfigParams& p, double* seconds) = 0;
  virtual Status long_run(const kernels::LongRunParams& p) = 0;
};

// The CPU references (src/mdnstab/many_config_ref.hpp) on `threads` threads.
std::unique_ptr<ValidateBackend> cpu_backend(int threads = 0);

// The CPU predictions of every row.
Result<std::vector<Prediction>> predict(std::span<const ValidateRow> rows, const ValidateOptions& opt);

// Measures every row on `backend` and checks each prediction against it.
Result<ValidationReport> validate(std::span<const ValidateRow> rows, std::span<const Prediction> predictions,
                                  const ValidateOptions& opt, ValidateBackend& backend);

// ---- saved results (reports reuse them without a GPU) ----

struct Provenance {
  std::string tool_version, git_commit, date, host, command;
};
Provenance current_provenance(const std::string& command);

// The whole result: provenance, options, rows (gates, prediction, measurement,
// checks), the disagreements, a summary. Schema "mdnstab-validate/1".
nlohmann::json report_json(const ValidationReport& r, const ValidateOptions& opt, const Provenance& prov);
// One CSV row per gate set (header first).
std::string report_csv(const ValidationReport& r);

// Rows and predictions of a saved results (or --predict-only) file.
struct SavedPredictions {
  std::vector<ValidateRow> rows;
  std::vector<Prediction> predictions;
};
Result<SavedPredictions> read_predictions(const std::string& path);
Result<SavedPredictions> parse_predictions(const nlohmann::json& j, const std::string& source);
nlohmann::json prediction_json(const Prediction& p, std::span<const Gates> set);
nlohmann::json gate_json(const Gates& g);

}  // namespace mdnstab
