// Saved `validate` results (src/mdnstab/validate.hpp): JSON with provenance, a CSV
// table, and the reader of saved predictions (`validate --predictions FILE`).
// Non-finite numbers are written as the strings "inf", "-inf", "nan" so that a
// state that died (-inf) survives a round trip. Tested in tests/test_validate.cpp.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <ctime>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "mdnstab/validate.hpp"

namespace mdnstab {

namespace {

using nlohmann::json;

json num(double v) {
  if (std::isfinite(v)) return v;
  if (std::isnan(v)) return "nan";
  return v > 0 ? "inf" : "-inf";
}

// A number written by num(); `what` names it in errors.
Result<double> get_num(const json& j, const char* key, const std::string& what, bool required = true) {
  if (!j.contains(key)) {
    if (!required) return NAN;
    return error(Code::kInvalidArgument, fmt::format("{}: missing \"{}\"", what, key));
  }
  const json& v = j.at(key);
  if (v.is_number()) return v.get<double>();
  if (v.is_null()) return NAN;
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (s == "inf") return INFINITY;
    if (s == "-inf") return -INFINITY;
    if (s == "nan") return NAN;
  }
  return error(Code::kInvalidArgument, fmt::format("{}: \"{}\" = {} is not a number", what, key, v.dump()));
}

const char* state_name(Check::State s) {
  switch (s) {
    case Check::State::kPass: return "pass";
    case Check::State::kFail: return "fail";
    default: return "skip";
  }
}

json check_json(const Check& c) {
  return {{"name", c.name},
          {"state", state_name(c.state)},
          {"measured", num(c.measured)},
          {"expected", num(c.expected)},
          {"tolerance", num(c.tolerance)},
          {"detail", c.detail}};
}

json measurement_json(const Measurement& m) {
  json rot = json::array();
  for (size_t i = 0; i < m.rotation_angle.size(); ++i)
    rot.push_back({{"angle", m.rotation_angle[i]}, {"rate", num(m.rotation_rate[i])}, {"expected", num(m.rotation_expected[i])}});
  return {{"random_exponent", num(m.exponent)},
          {"random_exponent_se", num(m.exponent_se)},
          {"random_max_rate", num(m.max_rate)},
          {"random_sigma2", num(m.sigma2)},
          {"random_heads", m.heads},
          {"flagged_heads", m.flagged},
          {"nonfinite_heads", m.nonfinite},
          {"witness_rate", num(m.witness_rate)},
          {"witness_expected", num(m.witness_expected)},
          {"rotations", rot},
          {"full_steps", m.full_steps},
          {"full_first_nonfinite", m.first_nonfinite},
          {"full_max_norm", num(m.full_max_norm)},
          {"full_bound", num(m.full_bound)}};
}

std::string iso_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

json gate_json(const Gates& g) {
  return {{"alpha", g.alpha}, {"beta", g.beta}, {"mu", g.mu}, {"eta", g.eta}, {"log_alpha", num(g.log_alpha)},
          {"log_mu", num(g.log_mu)}, {"p_scale", std::string(to_string(g.p_scale))}};
}

json prediction_json(const Prediction& p, std::span<const Gates> set) {
  const Certificate& c = p.cert;
  const Witness& w = c.witness;
  json keys = json::array();
  for (const auto& k : w.keys) keys.push_back({k[0], k[1]});
  (void)set;
  json by_word = nullptr;
  if (c.gate_memory > 0) {
    by_word = json::array();
    for (const auto& x : c.W_by_word) by_word.push_back({x[0], x[1], x[2]});
  }
  return {{"frozen_spectral_radius", num(c.frozen_spectral_radius)},
          {"upper_bound", num(c.upper_bound)},
          {"common_upper_bound", num(c.common_upper_bound)},
          {"gate_memory", c.gate_memory},
          {"gate_label", c.gate_memory > 0 ? json(c.gate_label) : json(nullptr)},
          {"W_by_word", by_word},
          {"W", {c.W[0], c.W[1], c.W[2]}},
          {"W_factor", {c.W_factor[0], c.W_factor[1]}},
          {"lower_bound", num(c.lower_bound)},
          {"gamma_dual", num(c.gamma_dual)},
          {"verdict", to_string(c.verdict)},
          {"witness",
           {{"kind", to_string(w.kind)},
            {"family", w.family},
            {"growth", num(w.growth)},
            {"angle", w.angle},
            {"period", w.period},
            {"drift", w.drift},
            {"keys", keys},
            {"gate_index", w.gate_index}}},
          {"exponent", num(p.exponent)},
          {"exponent_se", num(p.exponent_se)},
          {"exponent_method", p.exponent_method},
          {"exponent_dk", p.exponent_dk},
          {"exponent_steps", p.exponent_steps},
          {"exponent_chains", p.exponent_chains},
          {"exponent_seed", p.exponent_seed}};
}

Provenance current_provenance(const std::string& command) {
  Provenance p;
  p.tool_version = MDNSTAB_VERSION;
  p.git_commit = MDNSTAB_GIT_COMMIT;
  p.date = iso_now();
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) == 0) p.host = host;
  p.command = command;
  return p;
}

json report_json(const ValidationReport& r, const ValidateOptions& opt, const Provenance& prov) {
  json rows = json::array(), dis = json::array();
  long verdicts[3] = {0, 0, 0};
  for (size_t i = 0; i < r.rows.size(); ++i) {
    const RowResult& rr = r.rows[i];
    ++verdicts[int(rr.prediction.cert.verdict)];
    json gates = json::array(), checks = json::array();
    for (const Gates& g : rr.row.gates) gates.push_back(gate_json(g));
    for (const Check& c : rr.checks) {
      checks.push_back(check_json(c));
      if (c.state == Check::State::kFail) {
        json d = check_json(c);
        d["row"] = i;
        d["label"] = rr.row.label;
        d["gates"] = gates;
        dis.push_back(d);
      }
    }
    rows.push_back({{"index", i},
                    {"label", rr.row.label},
                    {"gates", gates},
                    {"prediction", prediction_json(rr.prediction, rr.row.gates)},
                    {"measurement", measurement_json(rr.measured)},
                    {"checks", checks},
                    {"agrees", rr.agrees()}});
  }
  const double hs_rate = r.many_config_seconds > 0 ? r.head_steps / r.many_config_seconds : 0.0;
  return {{"schema", "mdnstab-validate/1"},
          {"provenance",
           {{"tool_version", prov.tool_version},
            {"git_commit", prov.git_commit},

            {"date", prov.date},
            {"host", prov.host},
            {"command", prov.command},
            {"device", r.device},
            {"devices", r.devices}}},
          {"options",
           {{"dk", opt.dk},
            {"steps", opt.steps},
            {"burn_in", burn_in_steps(opt)},
            {"random_heads", opt.random_heads},
            {"rotation_angles", opt.rotation_angles},
            {"full_steps", full_run_steps(opt)},
            {"full_dv", opt.full_dv},
            {"seed", opt.seed},
            {"cpu_steps", opt.cpu_steps},
            {"cpu_chains", opt.cpu_chains},
            {"z", opt.z},
            {"tol_round", opt.tol_round}}},
          {"summary",
           {{"rows", r.rows.size()},
            {"agree", long(r.rows.size()) - r.disagreements()},
            {"disagree", r.disagreements()},
            {"certified", verdicts[int(Verdict::kCertified)]},
            {"refuted", verdicts[int(Verdict::kRefuted)]},
            {"undecided", verdicts[int(Verdict::kUndecided)]},
            {"seconds_predict", r.seconds_predict},
            {"seconds_measure", r.seconds_measure},
            {"many_config_seconds", r.many_config_seconds},
            {"head_steps", r.head_steps},
            {"head_steps_per_second", hs_rate}}},
          {"rows", rows},
          {"disagreements", dis}};
}

std::string report_csv(const ValidationReport& r) {
  std::string out =
      "row,label,gates,alpha,beta,mu,eta,verdict,frozen_rho,gamma,lower_bound,witness_kind,cpu_exponent,cpu_exponent_se,"
      "gpu_exponent,gpu_exponent_se,gpu_max_rate,log_gamma,witness_rate,witness_expected,full_steps,full_first_nonfinite,"
      "full_max_norm,full_bound,agrees,failed_checks\n";
  // 17 significant digits: the values round-trip exactly (reports recompute from them).
  auto f = [](double v) { return std::isnan(v) ? std::string() : fmt::format("{:.17g}", v); };
  for (size_t i = 0; i < r.rows.size(); ++i) {
    const RowResult& rr = r.rows[i];
    const Certificate& c = rr.prediction.cert;
    const Measurement& m = rr.measured;
    const Gates& g = rr.row.gates[0];
    std::string failed;
    for (const Check& ck : rr.checks)
      if (ck.state == Check::State::kFail) failed += (failed.empty() ? "" : " ") + ck.name;
    std::string label = rr.row.label;
    for (char& ch : label)
      if (ch == ',' || ch == '"' || ch == '\n') ch = ' ';
    out += fmt::format("{},{},{},{:.17g},{:.17g},{:.17g},{:.17g},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", i,
                       label, rr.row.gates.size(), g.alpha, g.beta, g.mu, g.eta, to_string(c.verdict),
                       f(c.frozen_spectral_radius), f(c.upper_bound), f(c.lower_bound), to_string(c.witness.kind),
                       f(rr.prediction.exponent), f(rr.prediction.exponent_se), f(m.exponent), f(m.exponent_se),
                       f(m.max_rate), f(c.upper_bound > 0 ? std::log(c.upper_bound) : -INFINITY), f(m.witness_rate),
                       f(m.witness_expected), m.full_steps, m.first_nonfinite, f(m.full_max_norm), f(m.full_bound),
                       rr.agrees() ? 1 : 0, failed);
  }
  return out;
}

Result<SavedPredictions> parse_predictions(const json& j, const std::string& source) {
  auto bad = [&](const std::string& m) { return error(Code::kInvalidArgument, fmt::format("{}: {}", source, m)); };
  if (!j.is_object() || !j.contains("rows") || !j.at("rows").is_array())
    return bad("expected a JSON object with a \"rows\" array (a `validate --save` or `--predict-only` file)");
  SavedPredictions out;
  const json& rows = j.at("rows");
  if (rows.empty()) return bad("\"rows\" is empty");
  for (size_t i = 0; i < rows.size(); ++i) {
    const json& r = rows[i];
    const std::string what = fmt::format("{}: row {}", source, i);
    if (!r.is_object() || !r.contains("gates") || !r.at("gates").is_array() || r.at("gates").empty() ||
        !r.contains("prediction") || !r.at("prediction").is_object())
      return error(Code::kInvalidArgument, fmt::format("{}: needs a non-empty \"gates\" array and a \"prediction\" object", what));
    ValidateRow row;
    if (r.contains("label") && r.at("label").is_string()) row.label = r.at("label").get<std::string>();
    for (const json& g : r.at("gates")) {
      if (!g.is_object()) return error(Code::kInvalidArgument, fmt::format("{}: a gate is not an object", what));
      PScale ps = PScale::kAlpha;
      if (g.contains("p_scale")) {
        auto p = parse_p_scale(g.at("p_scale").is_string() ? g.at("p_scale").get<std::string>() : "?");
        if (!p.is_ok()) return error(Code::kInvalidArgument, fmt::format("{}: {}", what, p.status.message));
        ps = p.value;
      }
      double v[6];
      const char* keys[6] = {"alpha", "beta", "mu", "eta", "log_alpha", "log_mu"};
      for (int k = 0; k < 6; ++k) {
        auto x = get_num(g, keys[k], what, k < 4);
        if (!x.is_ok()) return x.status;
        v[k] = x.value;
      }
      // Log values are exact near 1; the linear ones are kept otherwise.
      auto gr = !std::isnan(v[4]) && !std::isnan(v[5]) ? Gates::from_log(v[4], v[1], v[5], v[3], ps)
                                                        : Gates::from_linear(v[0], v[1], v[2], v[3], ps);
      if (!gr.is_ok()) return error(gr.status.code, fmt::format("{}: {}", what, gr.status.message));
      row.gates.push_back(gr.value);
    }
    const json& p = r.at("prediction");
    Prediction pr;
    Certificate& c = pr.cert;
    for (auto [key, dst] : {std::pair{"frozen_spectral_radius", &c.frozen_spectral_radius},
                            {"upper_bound", &c.upper_bound},
                            {"lower_bound", &c.lower_bound},
                            {"gamma_dual", &c.gamma_dual},
                            {"exponent", &pr.exponent},
                            {"exponent_se", &pr.exponent_se}}) {
      auto x = get_num(p, key, what, std::string(key) == "upper_bound" || std::string(key) == "lower_bound");
      if (!x.is_ok()) return x.status;
      *dst = x.value;
    }
    try {
      if (p.contains("W")) {
        const auto w = p.at("W").get<std::vector<double>>();
        if (w.size() != 3) return error(Code::kInvalidArgument, fmt::format("{}: \"W\" needs 3 numbers", what));
        c.W = {w[0], w[1], w[2]};
      }
      // Gate-memory certificates (files without them: the common W gave gamma).
      c.common_upper_bound = c.upper_bound;
      if (p.contains("common_upper_bound") && p.at("common_upper_bound").is_number())
        c.common_upper_bound = p.at("common_upper_bound").get<double>();
      c.gate_memory = p.value("gate_memory", 0);
      if (c.gate_memory < 0) return error(Code::kInvalidArgument, fmt::format("{}: \"gate_memory\" must be >= 0", what));
      if (c.gate_memory > 0) {
        c.gate_label = p.at("gate_label").get<std::vector<int>>();
        const auto words = p.at("W_by_word").get<std::vector<std::vector<double>>>();
        for (const auto& x : words) {
          if (x.size() != 3) return error(Code::kInvalidArgument, fmt::format("{}: \"W_by_word\" needs 3 numbers per word", what));
          c.W_by_word.push_back({x[0], x[1], x[2]});
        }
      }
      if (p.contains("W_factor")) {
        const auto w = p.at("W_factor").get<std::vector<double>>();
        if (w.size() != 2) return error(Code::kInvalidArgument, fmt::format("{}: \"W_factor\" needs 2 numbers", what));
        c.W_factor = {w[0], w[1]};
      }
      const std::string verdict = p.value("verdict", std::string("undecided"));
      if (verdict == "certified")
        c.verdict = Verdict::kCertified;
      else if (verdict == "refuted")
        c.verdict = Verdict::kRefuted;
      else if (verdict == "undecided")
        c.verdict = Verdict::kUndecided;
      else
        return error(Code::kInvalidArgument, fmt::format("{}: verdict '{}' (expected certified, refuted or undecided)", what, verdict));
      pr.exponent_method = p.value("exponent_method", std::string());
      pr.exponent_dk = p.value("exponent_dk", 0);
      pr.exponent_steps = p.value("exponent_steps", 0L);
      pr.exponent_chains = p.value("exponent_chains", 0);
      pr.exponent_seed = p.value("exponent_seed", std::uint64_t{0});
      if (p.contains("witness")) {
        const json& w = p.at("witness");
        Witness& wt = c.witness;
        const std::string kind = w.value("kind", std::string("none"));
        wt.kind = kind == "rotation" ? Witness::Kind::kRotation
                                     : (kind == "switching" ? Witness::Kind::kSwitching : Witness::Kind::kNone);
        wt.family = w.value("family", std::string());
        auto g = get_num(w, "growth", what, false);
        if (!g.is_ok()) return g.status;
        wt.growth = g.value;
        wt.angle = w.value("angle", 0.0);
        wt.period = w.value("period", 0);
        wt.drift = w.value("drift", 0.0);
        if (w.contains("keys"))
          for (const json& k : w.at("keys")) {
            const auto kk = k.get<std::vector<double>>();
            if (kk.size() != 2) return error(Code::kInvalidArgument, fmt::format("{}: a witness key needs 2 numbers", what));
            wt.keys.push_back({kk[0], kk[1]});
          }
        if (w.contains("gate_index")) wt.gate_index = w.at("gate_index").get<std::vector<int>>();
        for (int gi : wt.gate_index)
          if (gi < 0 || size_t(gi) >= row.gates.size())
            return error(Code::kInvalidArgument, fmt::format("{}: witness gate index {} is outside the set", what, gi));
      }
    } catch (const json::exception& e) {
      return error(Code::kInvalidArgument, fmt::format("{}: {}", what, e.what()));
    }
    c.gates = int(row.gates.size());
    c.single_gate = row.gates.size() == 1;
    out.rows.push_back(std::move(row));
    out.predictions.push_back(std::move(pr));
  }
  return out;
}

Result<SavedPredictions> read_predictions(const std::string& path) {
  std::ifstream f(path);
  if (!f) return error(Code::kIoError, fmt::format("cannot read predictions file '{}'", path));
  std::stringstream ss;
  ss << f.rdbuf();
  json j;
  try {
    j = json::parse(ss.str());
  } catch (const json::exception& e) {
    return error(Code::kInvalidArgument, fmt::format("{}: not JSON ({})", path, e.what()));
  }
  return parse_predictions(j, path);
}

}  // namespace mdnstab
