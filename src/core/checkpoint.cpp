// Reading a checkpoint's per-head gate parameters and its config.json; only
// the gate tensors are read from the safetensors files (seek + read).
// Tested in tests/test_checkpoint.cpp.
#include "mdnstab/checkpoint.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <string_view>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "mdnstab/safetensors.hpp"

namespace mdnstab {

namespace {

// i of a tensor named model.layers.{i}.attn.A_log (i: decimal digits only), else -1.
long layer_of(std::string_view name) {
  constexpr std::string_view kPre = "model.layers.", kPost = ".attn.A_log";
  if (name.size() <= kPre.size() + kPost.size() || !name.starts_with(kPre) || !name.ends_with(kPost)) return -1;
  const std::string_view digits = name.substr(kPre.size(), name.size() - kPre.size() - kPost.size());
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) return -1;
  unsigned long i = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), i);
  if (ec != std::errc() || end != digits.data() + digits.size() || i > (1UL << 40)) return -1;
  return long(i);
}

namespace fs = std::filesystem;
using nlohmann::json;

Result<json> read_json(const fs::path& p) {
  std::ifstream f(p);
  if (!f) return error(Code::kIoError, fmt::format("cannot read '{}'", p.string()));
  std::stringstream s;
  s << f.rdbuf();
  json j = json::parse(s.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return error(Code::kInvalidArgument, fmt::format("'{}' is not a JSON object", p.string()));
  return j;
}

// Tensor name -> the file holding it: one file, or a sharded index's weight_map.
struct TensorFiles {
  std::map<std::string, std::string> where;  // name -> file path
  std::map<std::string, std::shared_ptr<SafetensorsReader>> open;

  Result<const SafetensorsReader*> reader_for(const std::string& name) {
    auto it = where.find(name);
    if (it == where.end()) return error(Code::kInvalidArgument, fmt::format("tensor '{}' is missing", name));
    auto& r = open[it->second];
    if (!r) {
      auto o = SafetensorsReader::open(it->second);
      if (!o.is_ok()) return o.status;
      r = std::make_shared<SafetensorsReader>(std::move(o.value));
    }
    return static_cast<const SafetensorsReader*>(r.get());
  }
};

struct Located {
  TensorFiles files;
  fs::path config;  // empty: none
};

Result<Located> locate(const std::string& path) {
  Located l;
  std::error_code ec;
  const fs::path p(path);
  fs::path dir;
  if (fs::is_directory(p, ec)) {
    dir = p;
    const fs::path single = p / "model.safetensors", index = p / "model.safetensors.index.json";
    if (fs::is_regular_file(single, ec)) {
      auto r = SafetensorsReader::open(single.string());
      if (!r.is_ok()) return r.status;
      for (const TensorInfo& t : r.value.tensors()) l.files.where[t.name] = single.string();
      l.files.open[single.string()] = std::make_shared<SafetensorsReader>(std::move(r.value));
    } else if (fs::is_regular_file(index, ec)) {
      auto j = read_json(index);
      if (!j.is_ok()) return j.status;
      if (!j.value.contains("weight_map") || !j.value["weight_map"].is_object())
        return error(Code::kInvalidArgument, fmt::format("'{}' has no weight_map object", index.string()));
      for (auto it = j.value["weight_map"].begin(); it != j.value["weight_map"].end(); ++it) {
        if (!it.value().is_string())
          return error(Code::kInvalidArgument,
                       fmt::format("'{}': weight_map entry '{}' is not a file name", index.string(), it.key()));
        l.files.where[it.key()] = (p / it.value().get<std::string>()).string();
      }
    } else {
      return error(Code::kInvalidArgument,
                   fmt::format("checkpoint folder '{}' has neither model.safetensors nor model.safetensors.index.json",
                               path));
    }
  } else if (fs::is_regular_file(p, ec)) {
    dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
    auto r = SafetensorsReader::open(path);
    if (!r.is_ok()) return r.status;
    for (const TensorInfo& t : r.value.tensors()) l.files.where[t.name] = path;
    l.files.open[path] = std::make_shared<SafetensorsReader>(std::move(r.value));
  } else {
    return error(Code::kIoError, fmt::format("checkpoint '{}' does not exist", path));
  }
  if (fs::is_regular_file(dir / "config.json", ec)) l.config = dir / "config.json";
  return l;
}

// Applies config.json's keys to c; records which keys it set.
Status apply_config_json(const fs::path& p, ParamConfig& c, bool& set_min_log_mu, bool& set_hidden,
                         bool& set_tau) {
  auto jr = read_json(p);
  if (!jr.is_ok()) return jr.status;
  const json& j = jr.value;
  auto bad = [&](const char* key, const char* want) {
    return error(Code::kInvalidArgument,
                 fmt::format("'{}': key '{}' = {} is not {}", p.string(), key, j.at(key).dump(), want));
  };
  auto get_int = [&](const char* key, int& dst, bool* set) -> Status {
    if (!j.contains(key)) return Status::ok();
    if (!j[key].is_number_integer() || j[key].get<int64_t>() <= 0 || j[key].get<int64_t>() > 1'000'000'000)
      return bad(key, "a positive integer");
    dst = int(j[key].get<int64_t>());
    if (set) *set = true;
    return Status::ok();
  };
  for (auto [key, dst, set] : {std::tuple{"hidden_size", &c.hidden_size, &set_hidden},
                               {"num_heads", &c.num_heads, (bool*)nullptr},
                               {"head_dim", &c.head_dim, (bool*)nullptr},
                               {"num_hidden_layers", &c.num_layers, (bool*)nullptr}})
    if (Status s = get_int(key, *dst, set); !s.is_ok()) return s;
  if (j.contains("expand_v")) {
    if (!j["expand_v"].is_number() || !(j["expand_v"].get<double>() > 0)) return bad("expand_v", "a positive number");
    c.expand_v = j["expand_v"].get<double>();
  }
  if (j.contains("tau_factor")) {
    if (!j["tau_factor"].is_number() || !(j["tau_factor"].get<double>() > 0))
      return bad("tau_factor", "a positive number");
    c.tau_factor = j["tau_factor"].get<double>();
    set_tau = true;
  }
  if (j.contains("min_log_mu")) {
    if (j["min_log_mu"].is_null()) {
      c.min_log_mu = -std::numeric_limits<double>::infinity();  // the layer skips its clamp
    } else {
      if (!j["min_log_mu"].is_number() || !(j["min_log_mu"].get<double>() < 0))
        return bad("min_log_mu", "a negative number or null");
      c.min_log_mu = j["min_log_mu"].get<double>();
    }
    set_min_log_mu = true;
  }
  return Status::ok();
}

}  // namespace

Result<Checkpoint> read_checkpoint(const std::string& path, const CheckpointOptions& opt) {
  auto base = reference_config(opt.base_config);
  if (!base.is_ok()) return base.status;
  Checkpoint ck;
  ck.config = base.value;
  auto loc = locate(path);
  if (!loc.is_ok()) return loc.status;
  TensorFiles& files = loc.value.files;

  bool cfg_mu = false, cfg_hidden = false, cfg_tau = false;
  if (!loc.value.config.empty()) {
    ck.config_json = loc.value.config.string();
    ck.config.name = "checkpoint";
    if (Status s = apply_config_json(loc.value.config, ck.config, cfg_mu, cfg_hidden, cfg_tau); !s.is_ok()) return s;
  }
  const std::string dflt = "default " + base.value.name;
  ck.min_log_mu_source = opt.min_log_mu ? "flag" : cfg_mu ? "config.json" : dflt;
  ck.hidden_size_source = opt.hidden_size ? "flag" : cfg_hidden ? "config.json" : dflt;
  ck.tau_factor_source = opt.tau_factor ? "flag" : cfg_tau ? "config.json" : dflt;
  if (opt.min_log_mu) ck.config.min_log_mu = *opt.min_log_mu;
  if (opt.hidden_size) ck.config.hidden_size = *opt.hidden_size;
  if (opt.tau_factor) ck.config.tau_factor = *opt.tau_factor;
  if (Status s = check(ck.config); !s.is_ok()) return s;

  // Layers: every i with model.layers.{i}.attn.A_log, numbered without gaps.
  std::vector<long> ids;
  for (const auto& [name, file] : files.where)
    if (const long i = layer_of(name); i >= 0) ids.push_back(i);
  if (ids.empty())
    return error(Code::kInvalidArgument,
                 fmt::format("'{}' holds no tensor model.layers.{{i}}.attn.A_log: not an MDN checkpoint?", path));
  std::sort(ids.begin(), ids.end());
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] != long(i))
      return error(Code::kInvalidArgument,
                   fmt::format("'{}': tensor model.layers.{}.attn.A_log is missing (layers found up to {})", path, i,
                               ids.back()));

  const bool gdn = opt.param == Parametrization::kGdn;
  const std::vector<std::string> keys =
      gdn ? std::vector<std::string>{"A_log", "dt_bias"}
          : std::vector<std::string>{"A_log", "Mu_log", "dt_bias", "mu_bias", "log_factor"};
  int64_t heads = -1;
  ck.layers.resize(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    std::map<std::string, std::vector<double>> v;
    for (const std::string& k : keys) {
      const std::string name = fmt::format("model.layers.{}.attn.{}", i, k);
      auto r = files.reader_for(name);
      if (!r.is_ok()) return error(r.status.code, fmt::format("'{}': {}", path, r.status.message));
      const int64_t want[] = {heads};  // -1 until the first tensor fixes H
      auto t = r.value->read(name, want);
      if (!t.is_ok()) return t.status;
      if (t.value.empty()) return error(Code::kInvalidArgument, fmt::format("'{}': tensor '{}' is empty", path, name));
      heads = int64_t(t.value.size());
      for (size_t h = 0; h < t.value.size(); ++h)
        if (!std::isfinite(t.value[h]))
          return error(Code::kNumericalIssue,
                       fmt::format("'{}': tensor '{}' head {} = {} is not finite", path, name, h, t.value[h]));
      v[k] = std::move(t.value);
    }
    ck.layers[i].resize(size_t(heads));
    for (int64_t h = 0; h < heads; ++h) {
      HeadParams& hp = ck.layers[i][size_t(h)];
      hp.A_log = v["A_log"][size_t(h)];
      hp.dt_bias = v["dt_bias"][size_t(h)];
      if (!gdn) {
        hp.Mu_log = v["Mu_log"][size_t(h)];
        hp.mu_bias = v["mu_bias"][size_t(h)];
        hp.log_factor = v["log_factor"][size_t(h)];
      }
    }
  }
  for (const auto& [file, reader] : files.open)
    if (reader) ck.files.push_back(file);
  ck.config.num_layers = int(ids.size());
  ck.config.num_heads = int(heads);
  return ck;
}

}  // namespace mdnstab
