// Study spec loading (src/mdnstab/study.hpp): toml++ parses, a small reader
// checks every table against its allowed keys, types and ranges, citing the
// source position toml++ keeps for each key and value. Tested in tests/test_study.cpp.
#include "mdnstab/study.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <string_view>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "mdnstab/checkpoint.hpp"
#include "mdnstab/gate_dump.hpp"

namespace mdnstab {

namespace {

using std::string;
using std::string_view;

// Spec limits: beyond these a report would take hours or a figure would be
// unreadable; the message says which limit.
constexpr long kMaxResolution = 1001;
constexpr long kMaxSamples = 1000000;
constexpr long kMaxSteps = 100000;
constexpr int kMaxDk = 1024;
constexpr int kMaxRandomKeys = 16;
constexpr long kMaxAngles = 20001;
constexpr size_t kMaxPanels = 6;
constexpr size_t kMaxModels = 8;              // [[gate_dump]] plus [[checkpoint]] entries
constexpr long kMaxChunkResolution = 201;     // each point runs a whole sequence twice
constexpr double kMaxChunkMapSeconds = 3600;  // estimated, on all cores

// Thrown inside the reader only, turned into a Status at its boundary.
struct SpecError {
  string message;
};

const char* type_name(toml::node_type t) {
  switch (t) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    default: return "nothing";
  }
}

class Reader {
 public:
  explicit Reader(string file) : file_(std::move(file)) {}

  [[noreturn]] void fail(const toml::source_region& src, const string& key, const string& why) const {
    throw SpecError{fmt::format("{}:{}:{}: key '{}': {}", file_, src.begin.line, src.begin.column, key, why)};
  }
  [[noreturn]] void fail_at(const toml::source_region& src, const string& why) const {
    throw SpecError{fmt::format("{}:{}:{}: {}", file_, src.begin.line, src.begin.column, why)};
  }

  // Every key of `t` must be in `allowed`.
  void allow_only(const toml::table& t, const string& prefix, std::initializer_list<string_view> allowed) const {
    for (auto&& [k, v] : t) {
      if (std::find(allowed.begin(), allowed.end(), k.str()) != allowed.end()) continue;
      string list;
      for (string_view a : allowed) list += (list.empty() ? "" : ", ") + string(a);
      fail_at(k.source(), fmt::format("unknown key '{}{}' (expected one of: {})", prefix, k.str(), list));
    }
  }

  const toml::node* find(const toml::table& t, string_view key) const { return t.get(key); }

  // A number (integer or float), finite, in [lo, hi].
  double number(const toml::node& n, const string& key, double lo, double hi) const {
    double v = 0;
    if (auto i = n.as_integer())
      v = double(i->get());
    else if (auto f = n.as_floating_point())
      v = f->get();
    else
      fail(n.source(), key, fmt::format("must be a number, got {}", type_name(n.type())));
    if (!std::isfinite(v)) fail(n.source(), key, fmt::format("= {} must be finite", v));
    if (v < lo || v > hi) fail(n.source(), key, fmt::format("= {} is outside [{}, {}]", v, lo, hi));
    return v;
  }
  long integer(const toml::node& n, const string& key, long lo, long hi) const {
    auto i = n.as_integer();
    if (!i) fail(n.source(), key, fmt::format("must be an integer, got {}", type_name(n.type())));
    const int64_t v = i->get();
    if (v < lo || v > hi) fail(n.source(), key, fmt::format("= {} is outside [{}, {}]", v, lo, hi));
    return long(v);
  }
  string str(const toml::node& n, const string& key) const {
    auto s = n.as_string();
    if (!s) fail(n.source(), key, fmt::format("must be a string, got {}", type_name(n.type())));
    return s->get();
  }
  const toml::table& table(const toml::node& n, const string& key) const {
    auto t = n.as_table();
    if (!t) fail(n.source(), key, fmt::format("must be a table, got {}", type_name(n.type())));
    return *t;
  }
  const toml::array& array(const toml::node& n, const string& key) const {
    auto a = n.as_array();
    if (!a) fail(n.source(), key, fmt::format("must be an array, got {}", type_name(n.type())));
    return *a;
  }
  const toml::node& required(const toml::table& t, const toml::source_region& where, const string& prefix,
                             string_view key) const {
    const toml::node* n = t.get(key);
    if (!n) fail(where, prefix + string(key), "is required");
    return *n;
  }

  const string& file() const { return file_; }

 private:
  string file_;
};

string join_key(const string& prefix, string_view k) { return prefix + string(k); }

// Gate names with their ranges; check_gate gives the wording for out-of-range values.
double gate_value(const Reader& r, const toml::node& n, const string& key, string_view gate) {
  const double lo = gate.starts_with("log_") ? -1e300 : 0.0;
  const double hi = gate == "eta" ? 2.0 : (gate.starts_with("log_") ? 0.0 : 1.0);
  return r.number(n, key, lo, hi);
}

// mu (or log_mu) and eta of one panel.
StudyPanel read_panel(const Reader& r, const toml::table& t, const string& prefix) {
  r.allow_only(t, prefix, {"mu", "log_mu", "eta"});
  StudyPanel p;
  const toml::node* mu = t.get("mu");
  const toml::node* lmu = t.get("log_mu");
  if (mu && lmu) r.fail(lmu->source(), prefix + "log_mu", "give mu or log_mu, not both");
  if (!mu && !lmu) r.fail(t.source(), prefix + "mu", "is required (or log_mu)");
  if (mu) {
    p.mu = gate_value(r, *mu, prefix + "mu", "mu");
    p.log_mu = std::log(p.mu);
  } else {
    p.log_mu = gate_value(r, *lmu, prefix + "log_mu", "log_mu");
    p.mu = std::exp(p.log_mu);
  }
  p.eta = gate_value(r, r.required(t, t.source(), prefix, "eta"), prefix + "eta", "eta");
  return p;
}

std::vector<StudyPanel> read_panels(const Reader& r, const toml::table& t, const string& section) {
  const string key = section + ".panels";
  const toml::array& a = r.array(r.required(t, t.source(), section + ".", "panels"), key);
  if (a.empty()) r.fail(a.source(), key, "needs at least one panel");
  if (a.size() > kMaxPanels) r.fail(a.source(), key, fmt::format("has {} panels, at most {}", a.size(), kMaxPanels));
  std::vector<StudyPanel> out;
  for (size_t i = 0; i < a.size(); ++i) {
    const string k = fmt::format("{}[{}]", key, i);
    out.push_back(read_panel(r, r.table(*a.get(i), k), k + "."));
  }
  return out;
}

// [x0, x1] with x0 < x1 inside the gate's range.
void read_range(const Reader& r, const toml::table& t, const string& section, string_view gate, double& lo,
                double& hi) {
  const toml::node* n = t.get(gate);
  if (!n) return;
  const string key = join_key(section + ".", gate);
  const toml::array& a = r.array(*n, key);
  if (a.size() != 2) r.fail(a.source(), key, fmt::format("must be [low, high], got {} values", a.size()));
  lo = gate_value(r, *a.get(0), key + "[0]", gate);
  hi = gate_value(r, *a.get(1), key + "[1]", gate);
  if (!(lo < hi)) r.fail(a.source(), key, fmt::format("= [{}, {}] is empty: low must be < high", lo, hi));
}

ParamConfig read_config(const Reader& r, const toml::node& n, const string& key) {
  if (n.is_string()) {
    auto c = reference_config(r.str(n, key));
    if (!c.is_ok()) r.fail(n.source(), key, c.status.message);
    return c.value;
  }
  const toml::table& t = r.table(n, key);
  const string p = key + ".";
  r.allow_only(t, p, {"base", "name", "min_log_mu", "hidden_size", "tau_factor"});
  const toml::node& base = r.required(t, t.source(), p, "base");
  auto c = reference_config(r.str(base, p + "base"));
  if (!c.is_ok()) r.fail(base.source(), p + "base", c.status.message);
  ParamConfig cfg = c.value;
  if (auto x = t.get("name")) cfg.name = r.str(*x, p + "name");
  if (auto x = t.get("min_log_mu")) {
    cfg.min_log_mu = r.number(*x, p + "min_log_mu", -1e300, 0);
    if (cfg.min_log_mu >= 0) r.fail(x->source(), p + "min_log_mu", "must be negative");
  }
  if (auto x = t.get("hidden_size")) cfg.hidden_size = int(r.integer(*x, p + "hidden_size", 1, 1 << 20));
  if (auto x = t.get("tau_factor")) {
    cfg.tau_factor = r.number(*x, p + "tau_factor", 0, 1e6);
    if (cfg.tau_factor <= 0) r.fail(x->source(), p + "tau_factor", "must be positive");
  }
  return cfg;
}

bool valid_name(const string& s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.';
  });
}

// A path relative to the spec's folder, so that a spec works from any working directory.
string anchored(const string& spec_path, const string& p) {
  namespace fs = std::filesystem;
  const fs::path rp(p);
  return rp.is_relative() ? (fs::path(spec_path).parent_path() / rp).lexically_normal().string() : p;
}

// [[gate_dump]] and [[checkpoint]]: each file is read here, so that a missing or
// broken one fails before any work, at the line of its path.
void read_models(const Reader& r, const toml::table& root, const string& path, Study& s) {
  std::vector<string> names;
  auto read_name = [&](const toml::table& t, const string& p) {
    const toml::node& nm = r.required(t, t.source(), p, "name");
    string name = r.str(nm, p + "name");
    if (!valid_name(name))
      r.fail(nm.source(), p + "name", fmt::format("'{}' must be 1 to 64 of A-Z a-z 0-9 - _ .", name));
    if (std::find(names.begin(), names.end(), name) != names.end())
      r.fail(nm.source(), p + "name", fmt::format("'{}' names another gate dump or checkpoint", name));
    names.push_back(name);
    return name;
  };
  auto read_path = [&](const toml::table& t, const string& p) -> std::pair<string, const toml::node*> {
    const toml::node& n = r.required(t, t.source(), p, "path");
    const string given = r.str(n, p + "path");
    if (given.empty()) r.fail(n.source(), p + "path", "is empty");
    const string full = anchored(path, given);
    std::error_code ec;
    if (!std::filesystem::exists(full, ec))
      r.fail(n.source(), p + "path", fmt::format("'{}' does not exist (resolved to '{}')", given, full));
    return {full, &n};
  };
  size_t count = 0;
  if (auto n = root.get("gate_dump")) {
    const toml::array& a = r.array(*n, "gate_dump");
    count += a.size();
    if (count > kMaxModels) r.fail(a.source(), "gate_dump", fmt::format("at most {} gate dumps and checkpoints", kMaxModels));
    for (size_t i = 0; i < a.size(); ++i) {
      const string key = fmt::format("gate_dump[{}]", i);
      const toml::table& t = r.table(*a.get(i), key);
      const string p = key + ".";
      r.allow_only(t, p, {"name", "path", "note"});
      StudyGateDump d;
      d.name = read_name(t, p);
      auto [full, pn] = read_path(t, p);
      d.path = full;
      if (auto x = t.get("note")) d.note = r.str(*x, p + "note");
      auto dump = read_gate_dump(d.path, s.p_scale);
      if (!dump.is_ok()) r.fail(pn->source(), p + "path", dump.status.message);
      s.gate_dumps.push_back(std::move(d));
    }
  }
  if (auto n = root.get("checkpoint")) {
    const toml::array& a = r.array(*n, "checkpoint");
    count += a.size();
    if (count > kMaxModels)
      r.fail(a.source(), "checkpoint", fmt::format("at most {} gate dumps and checkpoints", kMaxModels));
    for (size_t i = 0; i < a.size(); ++i) {
      const string key = fmt::format("checkpoint[{}]", i);
      const toml::table& t = r.table(*a.get(i), key);
      const string p = key + ".";
      r.allow_only(t, p, {"name", "path", "note", "param", "model", "samples"});
      StudyCheckpoint ck;
      ck.name = read_name(t, p);
      auto [full, pn] = read_path(t, p);
      ck.path = full;
      if (auto x = t.get("note")) ck.note = r.str(*x, p + "note");
      if (auto x = t.get("param")) {
        auto k = parse_parametrization(r.str(*x, p + "param"));
        if (!k.is_ok()) r.fail(x->source(), p + "param", k.status.message);
        ck.param = k.value;
      }
      if (auto x = t.get("model")) {
        ck.model = r.str(*x, p + "model");
        if (auto c = reference_config(ck.model); !c.is_ok()) r.fail(x->source(), p + "model", c.status.message);
      }
      if (auto x = t.get("samples")) ck.samples = r.integer(*x, p + "samples", 1, kMaxSamples);
      CheckpointOptions co;
      co.param = ck.param;
      co.base_config = ck.model;
      auto read = read_checkpoint(ck.path, co);
      if (!read.is_ok()) r.fail(pn->source(), p + "path", read.status.message);
      s.checkpoints.push_back(std::move(ck));
    }
  }
}

Study read_study(const Reader& r, const toml::table& root, const string& path, PScale& p_scale_out) {
  r.allow_only(root, "",
               {"study", "parametrization", "gate_set", "maps", "tiers", "counterexample", "resonance",
                "gpu_validation", "gate_dump", "checkpoint", "chunk_safety"});
  Study s;
  s.path = path;

  const toml::table& st = r.table(r.required(root, root.source(), "", "study"), "study");
  r.allow_only(st, "study.", {"name", "title", "summary", "seed", "p_scale"});
  {
    const toml::node& n = r.required(st, st.source(), "study.", "name");
    s.name = r.str(n, "study.name");
    if (!valid_name(s.name))
      r.fail(n.source(), "study.name", fmt::format("'{}' must be 1 to 64 of A-Z a-z 0-9 - _ .", s.name));
  }
  s.title = r.str(r.required(st, st.source(), "study.", "title"), "study.title");
  if (auto n = st.get("summary")) s.summary = r.str(*n, "study.summary");
  if (auto n = st.get("seed")) s.seed = uint64_t(r.integer(*n, "study.seed", 0, (1L << 62)));
  if (auto n = st.get("p_scale")) {
    auto p = parse_p_scale(r.str(*n, "study.p_scale"));
    if (!p.is_ok()) r.fail(n->source(), "study.p_scale", p.status.message);
    s.p_scale = p.value;
  }
  p_scale_out = s.p_scale;

  if (auto n = root.get("parametrization")) {
    const toml::table& t = r.table(*n, "parametrization");
    const string p = "parametrization.";
    r.allow_only(t, p, {"kind", "configs", "range", "samples"});
    StudyParametrization sp;
    const toml::node& kind = r.required(t, t.source(), p, "kind");
    auto k = parse_parametrization(r.str(kind, p + "kind"));
    if (!k.is_ok()) r.fail(kind.source(), p + "kind", k.status.message);
    sp.kind = k.value;
    const toml::array& cfgs = r.array(r.required(t, t.source(), p, "configs"), p + "configs");
    if (cfgs.empty()) r.fail(cfgs.source(), p + "configs", "needs at least one model config");
    if (cfgs.size() > 4) r.fail(cfgs.source(), p + "configs", fmt::format("has {} configs, at most 4", cfgs.size()));
    for (size_t i = 0; i < cfgs.size(); ++i) {
      const string key = fmt::format("{}configs[{}]", p, i);
      ParamConfig c = read_config(r, *cfgs.get(i), key);
      for (const ParamConfig& o : sp.configs)
        if (o.name == c.name) r.fail(cfgs.get(i)->source(), key, fmt::format("config '{}' is given twice", c.name));
      if (!valid_name(c.name)) r.fail(cfgs.get(i)->source(), key, fmt::format("name '{}' is not a plain name", c.name));
      sp.configs.push_back(std::move(c));
    }
    if (auto x = t.get("range")) {
      auto rg = parse_sample_range(r.str(*x, p + "range"));
      if (!rg.is_ok()) r.fail(x->source(), p + "range", rg.status.message);
      sp.range = rg.value;
    }
    if (auto x = t.get("samples")) sp.samples = r.integer(*x, p + "samples", 1, kMaxSamples);
    s.parametrization = std::move(sp);
  }

  if (auto n = root.get("gate_set")) {
    const toml::array& a = r.array(*n, "gate_set");
    for (size_t i = 0; i < a.size(); ++i) {
      const string key = fmt::format("gate_set[{}]", i);
      const toml::table& t = r.table(*a.get(i), key);
      const string p = key + ".";
      r.allow_only(t, p, {"name", "alpha", "log_alpha", "beta", "mu", "log_mu", "eta"});
      StudyGateSet g;
      const toml::node& nm = r.required(t, t.source(), p, "name");
      g.name = r.str(nm, p + "name");
      if (!valid_name(g.name) || g.name == "worst")
        r.fail(nm.source(), p + "name", fmt::format("'{}' must be a plain name (A-Z a-z 0-9 - _ .), not 'worst'", g.name));
      for (const StudyGateSet& o : s.gate_sets)
        if (o.name == g.name) r.fail(nm.source(), p + "name", fmt::format("gate set '{}' is given twice", g.name));
      auto pick = [&](string_view lin, string_view lg) -> std::pair<double, bool> {
        const toml::node* a1 = t.get(lin);
        const toml::node* a2 = t.get(lg);
        if (a1 && a2) r.fail(a2->source(), p + string(lg), fmt::format("give {} or {}, not both", lin, lg));
        if (!a1 && !a2) r.fail(t.source(), p + string(lin), fmt::format("is required (or {})", lg));
        if (a1) return {gate_value(r, *a1, p + string(lin), lin), false};
        return {gate_value(r, *a2, p + string(lg), lg), true};
      };
      auto [al, al_log] = pick("alpha", "log_alpha");
      auto [m, m_log] = pick("mu", "log_mu");
      const double beta = gate_value(r, r.required(t, t.source(), p, "beta"), p + "beta", "beta");
      const double eta = gate_value(r, r.required(t, t.source(), p, "eta"), p + "eta", "eta");
      auto gates = Gates::from_log(al_log ? al : std::log(al), beta, m_log ? m : std::log(m), eta, s.p_scale);
      if (!gates.is_ok()) r.fail(t.source(), key, gates.status.message);
      g.gates = gates.value;
      s.gate_sets.push_back(std::move(g));
    }
  }

  if (auto n = root.get("maps")) {
    const toml::table& t = r.table(*n, "maps");
    r.allow_only(t, "maps.", {"alpha", "beta", "resolution", "panels"});
    StudyMaps m;
    read_range(r, t, "maps", "alpha", m.alpha_lo, m.alpha_hi);
    read_range(r, t, "maps", "beta", m.beta_lo, m.beta_hi);
    if (auto x = t.get("resolution")) m.resolution = r.integer(*x, "maps.resolution", 2, kMaxResolution);
    m.panels = read_panels(r, t, "maps");
    s.maps = std::move(m);
  }

  if (auto n = root.get("tiers")) {
    const toml::table& t = r.table(*n, "tiers");
    r.allow_only(t, "tiers.", {"resolution", "panels"});
    StudyTiers ti;
    if (auto x = t.get("resolution")) ti.resolution = r.integer(*x, "tiers.resolution", 2, kMaxResolution);
    ti.panels = read_panels(r, t, "tiers");
    s.tiers = std::move(ti);
  }

  if (auto n = root.get("counterexample")) {
    const toml::table& t = r.table(*n, "counterexample");
    r.allow_only(t, "counterexample.", {"steps", "dk", "random_keys"});
    StudyCounterexample c;
    if (auto x = t.get("steps")) c.steps = r.integer(*x, "counterexample.steps", 10, kMaxSteps);
    if (auto x = t.get("dk")) c.dk = int(r.integer(*x, "counterexample.dk", 2, kMaxDk));
    if (auto x = t.get("random_keys")) c.random_keys = int(r.integer(*x, "counterexample.random_keys", 0, kMaxRandomKeys));
    if (!s.parametrization && s.gate_sets.empty())
      r.fail(t.source(), "counterexample",
             "needs a [parametrization] or a [[gate_set]] to take the counterexample from");
    s.counterexample = c;
  }

  if (auto n = root.get("resonance")) {
    const toml::table& t = r.table(*n, "resonance");
    r.allow_only(t, "resonance.", {"angles", "gate_sets"});
    StudyResonance res;
    if (auto x = t.get("angles")) res.angles = r.integer(*x, "resonance.angles", 3, kMaxAngles);
    const toml::array& a = r.array(r.required(t, t.source(), "resonance.", "gate_sets"), "resonance.gate_sets");
    if (a.empty()) r.fail(a.source(), "resonance.gate_sets", "needs at least one gate set name");
    if (a.size() > 6) r.fail(a.source(), "resonance.gate_sets", fmt::format("has {} names, at most 6", a.size()));
    for (size_t i = 0; i < a.size(); ++i) {
      const string key = fmt::format("resonance.gate_sets[{}]", i);
      const string nm = r.str(*a.get(i), key);
      const bool known = nm == "worst" ? bool(s.parametrization)
                                       : std::any_of(s.gate_sets.begin(), s.gate_sets.end(),
                                                     [&](const StudyGateSet& g) { return g.name == nm; });
      if (!known)
        r.fail(a.get(i)->source(), key,
               nm == "worst" ? string("'worst' needs a [parametrization] to find the worst counterexample in")
                             : fmt::format("no [[gate_set]] is named '{}'", nm));
      res.gate_sets.push_back(nm);
    }
    s.resonance = std::move(res);
  }

  if (auto n = root.get("gpu_validation")) {
    const toml::table& t = r.table(*n, "gpu_validation");
    r.allow_only(t, "gpu_validation.", {"results"});
    StudyGpuValidation g;
    const toml::node& res = r.required(t, t.source(), "gpu_validation.", "results");
    g.results = r.str(res, "gpu_validation.results");
    if (g.results.empty()) r.fail(res.source(), "gpu_validation.results", "is empty");
    g.results = anchored(path, g.results);
    s.gpu_validation = std::move(g);
  }

  read_models(r, root, path, s);

  if (auto n = root.get("chunk_safety")) {
    const toml::table& t = r.table(*n, "chunk_safety");
    const string p = "chunk_safety.";
    r.allow_only(t, p,
                 {"chunk", "precision", "resolution", "log_alpha", "log_mu", "beta", "eta", "steps", "dk", "dv",
                  "tolerance"});
    StudyChunkSafety c;
    if (auto x = t.get("chunk")) c.chunk = int(r.integer(*x, p + "chunk", 1, kMaxChunk));
    if (auto x = t.get("precision")) {
      auto pr = parse_precision(r.str(*x, p + "precision"));
      if (!pr.is_ok()) r.fail(x->source(), p + "precision", pr.status.message);
      c.precision = pr.value;
    }
    if (auto x = t.get("resolution")) c.resolution = r.integer(*x, p + "resolution", 2, kMaxChunkResolution);
    read_range(r, t, "chunk_safety", "log_alpha", c.log_alpha_lo, c.log_alpha_hi);
    read_range(r, t, "chunk_safety", "log_mu", c.log_mu_lo, c.log_mu_hi);
    // log(0) = -inf is not a point the map can hold.
    for (const char* g : {"log_alpha", "log_mu"})
      if (auto x = t.get(g)) {
        const toml::array& a = *x->as_array();
        for (size_t i = 0; i < 2; ++i)
          if (r.number(*a.get(i), fmt::format("{}{}[{}]", p, g, i), -1e300, 0) < -700)
            r.fail(a.get(i)->source(), fmt::format("{}{}[{}]", p, g, i), "must be >= -700 (exp underflows below)");
      }
    if (auto x = t.get("beta")) c.beta = gate_value(r, *x, p + "beta", "beta");
    if (auto x = t.get("eta")) c.eta = gate_value(r, *x, p + "eta", "eta");
    if (auto x = t.get("steps")) c.steps = int(r.integer(*x, p + "steps", 1, kMaxSteps));
    if (auto x = t.get("dk")) c.dk = int(r.integer(*x, p + "dk", 1, kMaxDk));
    if (auto x = t.get("dv")) c.dv = int(r.integer(*x, p + "dv", 1, kMaxDk));
    if (auto x = t.get("tolerance")) {
      c.tolerance = r.number(*x, p + "tolerance", 0, 1);
      if (!(c.tolerance > 0)) r.fail(x->source(), p + "tolerance", "must be > 0");
    }
    if (c.chunk > c.steps)
      r.fail(t.get("chunk") ? t.get("chunk")->source() : t.source(), p + "chunk",
             fmt::format("= {} is larger than the sequence (steps = {})", c.chunk, c.steps));
    ChunkMapSpec spec = chunk_map_spec(c, s.p_scale);
    spec.max_seconds = kMaxChunkMapSeconds;
    if (Status e = check(spec); !e.is_ok()) r.fail(t.source(), "chunk_safety", e.message);
    s.chunk_safety = c;
  }

  return s;
}

}  // namespace

Result<Study> parse_study(const std::string& text, const std::string& path) {
  toml::table root;
  try {
    root = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    const auto& src = e.source();
    return error(Code::kInvalidArgument, fmt::format("{}:{}:{}: TOML syntax error: {}", path, src.begin.line,
                                                     src.begin.column, e.description()));
  }
  Reader r(path);
  try {
    PScale p = PScale::kAlpha;
    return read_study(r, root, path, p);
  } catch (const SpecError& e) {
    return error(Code::kInvalidArgument, e.message);
  }
}

Result<Study> load_study(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return error(Code::kIoError, fmt::format("cannot read study spec '{}'", path));
  std::stringstream ss;
  ss << f.rdbuf();
  if (f.bad()) return error(Code::kIoError, fmt::format("cannot read study spec '{}'", path));
  return parse_study(ss.str(), path);
}

ChunkMapSpec chunk_map_spec(const StudyChunkSafety& c, PScale p) {
  ChunkMapSpec m;
  m.axes = {Axis{"log_alpha", c.log_alpha_lo, c.log_alpha_hi, c.resolution},
            Axis{"log_mu", c.log_mu_lo, c.log_mu_hi, c.resolution}};
  m.fixed = {FixedGate{"beta", c.beta}, FixedGate{"eta", c.eta}};
  m.p_scale = p;
  m.chunk = c.chunk;
  m.precision = c.precision;
  m.dk = c.dk;
  m.dv = c.dv;
  m.steps = c.steps;
  m.seed = 0;
  m.tol = c.tolerance;
  return m;
}

Study quick_version(Study s) {
  // Coarse but complete: every section still runs, on grids a few seconds fill.
  if (s.parametrization) s.parametrization->samples = std::min(s.parametrization->samples, 400L);
  if (s.maps) s.maps->resolution = std::min(s.maps->resolution, 25L);
  if (s.tiers) s.tiers->resolution = std::min(s.tiers->resolution, 25L);
  if (s.counterexample) {
    s.counterexample->steps = std::min(s.counterexample->steps, 120L);
    s.counterexample->dk = std::min(s.counterexample->dk, 16);
    s.counterexample->random_keys = std::min(s.counterexample->random_keys, 2);
  }
  if (s.resonance) s.resonance->angles = std::min(s.resonance->angles, 61L);
  for (StudyCheckpoint& ck : s.checkpoints) ck.samples = std::min(ck.samples, 200L);
  if (s.chunk_safety) {
    StudyChunkSafety& c = *s.chunk_safety;
    c.resolution = std::min(c.resolution, 13L);
    c.steps = std::max(std::min(c.steps, 256), c.chunk);
    c.dk = std::min(c.dk, 16);
    c.dv = std::min(c.dv, 16);
  }
  return s;
}

}  // namespace mdnstab
