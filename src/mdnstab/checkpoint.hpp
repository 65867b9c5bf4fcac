// A trained MDN model's learned gate parameters (DESIGN.md section 2): per
// layer i the per-head tensors model.layers.{i}.attn.{A_log, Mu_log, dt_bias,
// mu_bias, log_factor}, from a folder (config.json + model.safetensors, or a
// sharded model.safetensors.index.json) or a .safetensors file alone.
// Tested in tests/test_checkpoint.cpp.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "mdnstab/parametrization.hpp"
#include "mdnstab/status.hpp"

namespace mdnstab {

struct CheckpointOptions {
  // Which tensors are required: "gdn" needs only A_log and dt_bias.
  Parametrization param = Parametrization::kMdn;
  // Values that override config.json (which overrides the base config).
  std::optional<double> min_log_mu;
  std::optional<int> hidden_size;
  std::optional<double> tau_factor;
  std::string base_config = "400M";  // reference_config() name for keys nobody gives
};

struct Checkpoint {
  ParamConfig config;
  std::vector<std::vector<HeadParams>> layers;  // [L][H]
  std::vector<std::string> files;               // the safetensors files read
  std::string config_json;                      // path of the config.json used, empty if none
  // Where min_log_mu, hidden_size and tau_factor came from ("flag",
  // "config.json" or "default 400M"), for reports.
  std::string min_log_mu_source, hidden_size_source, tau_factor_source;
};

// `path` is a folder or a .safetensors file; a config.json beside the file (or
// in the folder) is read when present. config.json keys used: hidden_size,
// num_heads, head_dim, expand_v, tau_factor, min_log_mu (null: no clamp),
// num_hidden_layers. Layers are the i with model.layers.{i}.attn.A_log,
// numbered 0..L-1 without gaps; every tensor must be 1-D [H] with the same H
// and finite values. Errors name the file and the tensor or key.
Result<Checkpoint> read_checkpoint(const std::string& path, const CheckpointOptions& opt = {});

}  // namespace mdnstab
