// A study spec (analysis/*.toml, issue 9): which parametrization, gate sets,
// maps, certificates, counterexample simulations, resonance scans and GPU
// validations one `mdnstab report` runs. Loaded and checked in full before any
// work; every error names the file, line and key. Tested in tests/test_study.cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mdnstab/chunk_safety.hpp"
#include "mdnstab/gates.hpp"
#include "mdnstab/parametrization.hpp"
#include "mdnstab/precision.hpp"
#include "mdnstab/sampling.hpp"
#include "mdnstab/status.hpp"

namespace mdnstab {

// One (mu, eta) slice of the (alpha, beta) plane.
struct StudyPanel {
  double mu = 0, eta = 0;
  double log_mu = 0;  // exactly log(mu) (given as log_mu, or log of mu)
};

struct StudyGateSet {
  std::string name;
  Gates gates;
};

struct StudyParametrization {
  Parametrization kind = Parametrization::kMdn;
  std::vector<ParamConfig> configs;  // at least one
  SampleRange range = SampleRange::kBoth;
  long samples = 4000;
};

struct StudyMaps {  // regime, frozen rho, damping ratio, natural frequency (from `sweep`)
  double alpha_lo = 0, alpha_hi = 1, beta_lo = 0, beta_hi = 1;
  long resolution = 81;  // points per axis
  std::vector<StudyPanel> panels;
};

struct StudyTiers {  // certified / undecided / refuted over (alpha, beta)
  long resolution = 61;
  std::vector<StudyPanel> panels;
};

struct StudyCounterexample {  // norm growth under the witness vs random keys
  long steps = 400;
  int dk = 128;
  int random_keys = 3;
};

struct StudyResonance {  // growth per step vs key rotation angle
  long angles = 181;
  std::vector<std::string> gate_sets;  // names of [[gate_set]] entries, or "worst"
};

struct StudyGpuValidation {
  std::string results;  // saved results (JSON), resolved against the spec's folder
};

// A model's per-token gates (gate_dump.hpp: CSV or safetensors [B,T,H]),
// certified as `constraint --param FILE` does; one report section each.
struct StudyGateDump {
  std::string name;
  std::string path;  // resolved against the spec's folder
  std::string note;  // where the gates come from (e.g. "synthetic"), shown in the report
};

// A trained model's learned gate parameters (checkpoint.hpp), each head
// checked as `constraint --checkpoint` does; one report section each.
struct StudyCheckpoint {
  std::string name;
  std::string path;  // folder or .safetensors, resolved against the spec's folder
  std::string note;
  Parametrization param = Parametrization::kMdn;
  std::string model = "400M";  // reference config for keys config.json does not give
  long samples = 1000;         // raw-input samples per head
};

// The chunkwise algorithm's accuracy (chunk_safety.hpp): the emulated error
// map over (log_alpha, log_mu) with the predictive rule, and the rule over the
// parametrization's reachable samples.
struct StudyChunkSafety {
  int chunk = 64;
  Precision precision = Precision::kFp32;
  long resolution = 33;  // points per axis
  double log_alpha_lo = -8, log_alpha_hi = 0, log_mu_lo = -8, log_mu_hi = 0;
  double beta = 0.1, eta = 1.0;  // held fixed over the map
  int steps = 1024, dk = 64, dv = 64;
  double tolerance = 1e-2;  // a relative output error above this is broken
};

struct Study {
  std::string path;  // the spec file as given
  std::string name, title, summary;
  uint64_t seed = 1;
  PScale p_scale = PScale::kAlpha;
  std::optional<StudyParametrization> parametrization;
  std::vector<StudyGateSet> gate_sets;
  std::optional<StudyMaps> maps;
  std::optional<StudyTiers> tiers;
  std::optional<StudyCounterexample> counterexample;
  std::optional<StudyResonance> resonance;
  std::optional<StudyGpuValidation> gpu_validation;
  std::vector<StudyGateDump> gate_dumps;
  std::vector<StudyCheckpoint> checkpoints;
  std::optional<StudyChunkSafety> chunk_safety;
};

// Reads and checks a spec: TOML syntax, unknown keys, types, ranges,
// cross-references, and that every gate dump and checkpoint it names reads. Messages read "FILE:LINE:COL: key 'TABLE.KEY': why".
Result<Study> load_study(const std::string& path);
// The same from text in memory (`path` names it in messages and anchors
// relative paths).
Result<Study> parse_study(const std::string& text, const std::string& path);

// The measured map of a [chunk_safety] table, as `chunk-safety --axis
// log_alpha=... --axis log_mu=...` runs it (seed 0, all cores).
ChunkMapSpec chunk_map_spec(const StudyChunkSafety& c, PScale p);

// The coarse version `report --quick` runs: every grid, sample count and
// step count capped so that the whole report takes seconds.
Study quick_version(Study s);

}  // namespace mdnstab
