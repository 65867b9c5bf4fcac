// End-to-end tests of `constraint`: the GDN parametrization is certified, MDN's
// reaches refuted gates whose reported raw values map to the reported gates
// and whose witness grows when replayed here (an independent 4x4 rotating-frame
// product); gate dumps (CSV, safetensors) and checkpoints written byte by byte
// here; every bad input exits 2 with one line naming it and leaves no file.
#include <gtest/gtest.h>

#include <array>
#include <bit>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "run_cli.hpp"

namespace mdnstab::test {
namespace {

using nlohmann::json;

// ---------- independent references ----------

// DESIGN.md section 2, as written there, in long double; 400M: tau = 32, min_log_mu = -2.
std::array<long double, 4> mdn_gates(const json& raw, const json& learned, double tau = 32, double min_log_mu = -2) {
  using LD = long double;
  auto sp = [](LD x) { return std::log1p(std::exp(x)); };
  const LD a = raw["a"].get<double>(), b = raw["b"].get<double>(), m = raw["m"].get<double>(),
           e = raw["e"].get<double>();
  const LD A_log = learned["A_log"].get<double>(), Mu_log = learned["Mu_log"].get<double>(),
           dt_bias = learned["dt_bias"].get<double>(), mu_bias = learned["mu_bias"].get<double>(),
           log_factor = learned["log_factor"].get<double>();
  const LD eta = std::tanh(e / tau) + 1;
  const LD theta = std::atan(eta * std::exp(log_factor));
  const LD beta = std::pow(std::sin(theta), 2) / (1 + std::exp(-b));
  const LD log_alpha = std::log(std::pow(std::cos(theta), 2)) - std::exp(A_log) * sp(a + dt_bias);
  const LD log_mu = std::max<LD>(-std::exp(Mu_log) * sp(m + mu_bias), min_log_mu);
  return {log_alpha, beta, log_mu, eta};
}

using Mat4 = std::array<double, 16>;

Mat4 mul(const Mat4& x, const Mat4& y) {
  Mat4 z{};
  for (int i = 0; i < 4; ++i)
    for (int k = 0; k < 4; ++k)
      for (int j = 0; j < 4; ++j) z[size_t(4 * i + j)] += x[size_t(4 * i + k)] * y[size_t(4 * k + j)];
  return z;
}

// Growth per step of keys rotating by `angle` in a plane: in the rotating frame
// one step is the constant map y -> step_e1(Q(-angle) y) on y = (S1, S2, M1, M2)
// (DK = 2, DV = 1, v = 0), with step_k: w = rho_p k.S, M = mu M + eta k w,
// S = alpha S - beta M (DESIGN.md section 2). Its spectral radius comes from
// |P^(2^40)|^(2^-40) by repeated normalized squaring.
double rotation_growth_replay(double alpha, double beta, double mu, double eta, double angle) {
  const double c = std::cos(angle), s = std::sin(angle);
  Mat4 P{};
  for (int j = 0; j < 4; ++j) {
    double y[4] = {0, 0, 0, 0};
    y[j] = 1;
    // Q(-angle) on the key coordinates of S and of M.
    const double S1 = c * y[0] + s * y[1], S2 = -s * y[0] + c * y[1];
    const double M1 = c * y[2] + s * y[3], M2 = -s * y[2] + c * y[3];
    const double w = alpha * S1;  // p = alpha k, k = e1
    const double m1 = mu * M1 + eta * w, m2 = mu * M2;
    const double s1 = alpha * S1 - beta * m1, s2 = alpha * S2 - beta * m2;
    const double out[4] = {s1, s2, m1, m2};
    for (int i = 0; i < 4; ++i) P[size_t(4 * i + j)] = out[i];
  }
  auto fro = [](const Mat4& x) {
    double n = 0;
    for (double v : x) n += v * v;
    return std::sqrt(n);
  };
  double log_c = std::log(fro(P));
  for (double& v : P) v /= std::exp(log_c);
  for (int k = 0; k < 40; ++k) {
    P = mul(P, P);
    const double n = fro(P);
    for (double& v : P) v /= n;
    log_c = 2 * log_c + std::log(n);
  }
  return std::exp(log_c / std::ldexp(1.0, 40));
}

// ---------- files written byte by byte ----------

void le(std::string& s, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) s.push_back(char((v >> (8 * i)) & 0xff));
}

struct Tensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;
  std::string dtype = "F32";
};

std::string safetensors_bytes(const std::vector<Tensor>& ts) {
  json h = json::object();
  std::string data;
  for (const Tensor& t : ts) {
    const size_t begin = data.size();
    for (float v : t.values) le(data, std::bit_cast<uint32_t>(v), 4);
    h[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {begin, data.size()}}};
  }
  const std::string hs = h.dump();
  std::string out;
  le(out, hs.size(), 8);
  return out + hs + data;
}

void put(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

// ---------- parametrizations ----------

TEST(CliConstraint, GdnIsFullyCertified) {
  auto r = run_cli("--format json constraint --param gdn --samples 3000 --range initial");
  ASSERT_EQ(r.code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["counts"]["certified"], 3000);
  EXPECT_EQ(j["fractions"]["certified"], 1.0);
  EXPECT_FALSE(j["refuted_reachable"].get<bool>());
  EXPECT_TRUE(j["counterexamples"].empty());
  EXPECT_LT(j["worst_gamma"].get<double>(), 1.0);
  EXPECT_EQ(j["reachable_set"]["sampled"]["mu"][1], 0.0);
  // Well beyond the initial ranges: still nothing refuted inside the margin.
  r = run_cli("--format json constraint --param gdn --samples 3000 --range wide");
  ASSERT_EQ(r.code, 0) << r.err;
  const json w = json::parse(r.out);
  EXPECT_EQ(w["inside_margin"]["counts"]["refuted"], 0);
  EXPECT_EQ(w["inside_margin"]["counts"]["undecided"], 0);
  EXPECT_LT(w["inside_margin"]["worst_gamma"].get<double>(), 1.0);
  r = run_cli("constraint --param gdn --samples 500 --range initial");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("conclusion: CERTIFIED"), std::string::npos) << r.out;
}

void check_counterexample(const json& c) {
  EXPECT_EQ(c["verdict"], "refuted");
  EXPECT_GE(c["depth"].get<double>(), 1e-3);
  const json& g = c["gates"];
  const double alpha = g["alpha"], beta = g["beta"], mu = g["mu"], eta = g["eta"];
  EXPECT_LT(alpha + beta, 1.0);
  // The reported raw values and learned parameters map to the reported gates
  // (1e-12: double evaluation against long double, moderate arguments).
  const auto want = mdn_gates(c["raw"], c["learned"]);
  EXPECT_NEAR(g["log_alpha"].get<double>(), double(want[0]), 1e-12 * (1 + std::fabs(double(want[0]))));
  EXPECT_NEAR(beta, double(want[1]), 1e-12);
  EXPECT_NEAR(g["log_mu"].get<double>(), double(want[2]), 1e-12);
  EXPECT_NEAR(eta, double(want[3]), 1e-12);
  // The witness grows: replayed here, it matches the lower bound to 1e-6.
  ASSERT_EQ(c["witness"]["kind"], "rotation");
  const double growth = rotation_growth_replay(alpha, beta, mu, eta, c["witness"]["angle"].get<double>());
  EXPECT_GT(growth, 1.0);
  EXPECT_NEAR(growth, c["lower_bound"].get<double>(), 1e-6);
  EXPECT_GE(c["upper_bound"].get<double>(), c["lower_bound"].get<double>() * (1 - 1e-9));
}

TEST(CliConstraint, MdnReachesRefutedGatesAtInitAndBeyond) {
  for (const char* range : {"initial", "wide"}) {
    auto r = run_cli(std::string("--format json constraint --param mdn --samples 3000 --top 3 --range ") + range);
    ASSERT_EQ(r.code, 0) << r.err;
    const json j = json::parse(r.out);
    EXPECT_TRUE(j["refuted_reachable"].get<bool>()) << range;
    EXPECT_GT(j["inside_margin"]["counts"]["refuted"].get<long>(), 0);
    ASSERT_FALSE(j["counterexamples"].empty());
    EXPECT_LE(j["counterexamples"].size(), 3u);
    for (const json& c : j["counterexamples"]) check_counterexample(c);
    // Where DESIGN.md section 4 says: alpha + beta < 1, mu near 1, eta near 2.
    const json& g = j["counterexamples"][0]["gates"];
    EXPECT_GT(g["mu"].get<double>(), 0.9);
    EXPECT_GT(g["eta"].get<double>(), 1.9);
    EXPECT_GT(j["worst_gamma"].get<double>(), 1.05);
    EXPECT_LE(j["worst_frozen_rho"].get<double>(), 1.0);
    EXPECT_TRUE(j["ranges"].contains(range));
    for (const char* k : {"fractions", "reachable_set", "deepest_refuted", "refuted_region", "assumptions"})
      EXPECT_TRUE(j.contains(k)) << k;
  }
  auto r = run_cli("constraint --param mdn --samples 1000 --range initial --top 1");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("conclusion: NOT SAFE"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("raw: a="), std::string::npos);
}

TEST(CliConstraint, CounterexampleCarriesTheCertifyCertificate) {
  // One JSON form for certificates (src/cli/certificate_json.cpp): a
  // counterexample of `constraint` holds every key of `certify`'s certificate,
  // with the same values as `certify` run on its gates (the 17 digits of the
  // JSON numbers give the gates back exactly), the witness included.
  auto r = run_cli("--format json constraint --param mdn --samples 1000 --range initial --top 1");
  ASSERT_EQ(r.code, 0) << r.err;
  const json j = json::parse(r.out);
  ASSERT_FALSE(j["counterexamples"].empty());
  const json& c = j["counterexamples"][0];
  const json& g = c["gates"];
  auto fmt17 = [](const json& v) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", v.get<double>());
    return std::string(buf);
  };
  auto rc = run_cli("--format json certify --alpha " + fmt17(g["alpha"]) + " --beta " + fmt17(g["beta"]) + " --mu " +
                    fmt17(g["mu"]) + " --eta " + fmt17(g["eta"]));
  ASSERT_EQ(rc.code, 0) << rc.err;
  const json k = json::parse(rc.out);
  for (const char* key : {"upper_bound", "W", "W_factor", "lower_bound", "verdict", "certified_margin", "refuted_margin",
                          "gap", "gamma_dual", "optimality_gap", "frozen_spectral_radius", "active_gate", "set_size"}) {
    ASSERT_TRUE(c.contains(key)) << key;
    ASSERT_TRUE(k.contains(key)) << key;
    EXPECT_EQ(c[key], k[key]) << key;
  }
  EXPECT_EQ(c["set_size"], 1);
  for (const char* key : {"kind", "family", "growth", "angle", "period", "keys", "drift", "gate_index", "replay"}) {
    ASSERT_TRUE(c["witness"].contains(key)) << key;
    EXPECT_EQ(c["witness"][key], k["witness"][key]) << key;
  }
  // The witness's gate rows (log_alpha, log_mu differ in the last digit: the
  // sample keeps the parametrization's own logs, certify takes log(alpha)).
  ASSERT_EQ(c["witness"]["gates"].size(), k["witness"]["gates"].size());
  for (size_t i = 0; i < k["witness"]["gates"].size(); ++i)
    for (const char* key : {"alpha", "beta", "mu", "eta"})
      EXPECT_EQ(c["witness"]["gates"][i][key], k["witness"]["gates"][i][key]) << key;
}

TEST(CliConstraint, UnconstrainedAndOtherConfig) {
  auto r = run_cli("--format json constraint --param mdn-unconstrained --samples 1000 --model 1.3B --seed 4");
  ASSERT_EQ(r.code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["config"]["min_log_mu"], -1.0);
  EXPECT_EQ(j["config"]["tau"], 16.0);
  EXPECT_GT(j["reachable_set"]["sampled"]["alpha_plus_beta"][1].get<double>(), 1.5);
  EXPECT_GE(j["reachable_set"]["sampled"]["mu"][0].get<double>(), std::exp(-1.0) * (1 - 1e-15));
  EXPECT_TRUE(j["refuted_reachable"].get<bool>());
  // --min-log-mu overrides the config's clamp.
  r = run_cli("--format json constraint --param mdn --samples 200 --min-log-mu -0.5");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_GE(json::parse(r.out)["reachable_set"]["sampled"]["mu"][0].get<double>(), std::exp(-0.5) * (1 - 1e-15));
}

TEST(CliConstraint, OutWritesOneRowPerSample) {
  const auto d = scratch_dir("constraint_out");
  const auto out = d / "samples.csv";
  auto r = run_cli("constraint --param mdn --samples 700 --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string csv = slurp(out);
  EXPECT_EQ(count_lines(csv), 701);
  EXPECT_EQ(csv.substr(0, csv.find(',', csv.find(',', csv.find(',') + 1) + 1)), "index,range,kind");
  EXPECT_NE(csv.find("refuted"), std::string::npos);
  EXPECT_EQ(count_entries(d), 1);
}

// ---------- gate dumps ----------

TEST(CliConstraint, CsvDumpFlagsTheRefutedToken) {
  const auto d = scratch_dir("constraint_csv");
  const auto f = d / "gates.csv";
  std::string text = "alpha,beta,mu,eta\n";
  for (int i = 0; i < 6; ++i) text += i == 3 ? "0.99,0.9,0.99,1.9\n" : "0.9,0.5,0.1,1\n";
  put(f, text);
  auto r = run_cli("--format json constraint --param " + f.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["format"], "csv");
  EXPECT_EQ(j["time"], 6);
  const json& h = j["per_head"][0];
  EXPECT_EQ(h["set"]["verdict"], "refuted");
  EXPECT_EQ(h["distinct_gates"], 2);
  EXPECT_EQ(h["token_counts"]["refuted"], 1);
  EXPECT_EQ(h["token_counts"]["certified"], 5);
  ASSERT_EQ(h["flagged_tokens"].size(), 1u);
  EXPECT_EQ(h["flagged_tokens"][0]["t"], 3);
  // DESIGN.md section 4: this gate is refuted with bounds near 1.62 and 1.63.
  EXPECT_NEAR(h["flagged_tokens"][0]["lower_bound"].get<double>(), 1.63, 0.01);
  // The set of the certified rows alone is certified.
  put(f, "log_alpha,beta,log_mu,eta\n-0.1,0.5,-2,1\n-0.2,0.3,-1,1.5\n");
  r = run_cli("--format json constraint --param " + f.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["per_head"][0]["set"]["verdict"], "certified");
}

std::vector<Tensor> dump(int B, int T, int H) {
  std::vector<Tensor> t = {{"log_alpha", {B, T, H}, {}}, {"beta", {B, T, H}, {}}, {"log_mu", {B, T, H}, {}},
                           {"eta", {B, T, H}, {}}};
  for (int b = 0; b < B; ++b)
    for (int tt = 0; tt < T; ++tt)
      for (int h = 0; h < H; ++h) {
        const bool bad = b == 1 && tt == 2 && h == 1;  // the refuted gate of DESIGN.md section 4
        t[0].values.push_back(bad ? std::log(0.99f) : -0.5f);
        t[1].values.push_back(bad ? 0.9f : 0.25f);
        t[2].values.push_back(bad ? std::log(0.99f) : -1.0f);
        t[3].values.push_back(bad ? 1.9f : 1.0f);
      }
  return t;
}

TEST(CliConstraint, SafetensorsDumpPerHeadAndToken) {
  const auto d = scratch_dir("constraint_st");
  const auto f = d / "gates.safetensors";
  put(f, safetensors_bytes(dump(2, 3, 2)));
  const auto out = d / "tokens.csv";
  auto r = run_cli("--format json constraint --param " + f.string() + " --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["format"], "safetensors");
  EXPECT_EQ(j["heads"], 2);
  EXPECT_EQ(j["token_counts"]["total"], 12);
  EXPECT_EQ(j["token_counts"]["refuted"], 1);
  EXPECT_EQ(j["per_head"][0]["set"]["verdict"], "certified");
  EXPECT_EQ(j["per_head"][1]["set"]["verdict"], "refuted");
  const json& t = j["per_head"][1]["flagged_tokens"][0];
  EXPECT_EQ(t["b"], 1);
  EXPECT_EQ(t["t"], 2);
  EXPECT_EQ(t["h"], 1);
  EXPECT_EQ(count_lines(slurp(out)), 13);
  r = run_cli("constraint --param " + f.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("[b=1, t=2] refuted"), std::string::npos) << r.out;
}

TEST(CliConstraint, BrokenDumpsNameTheTensorRowOrColumn) {
  const auto d = scratch_dir("constraint_st_bad");
  const auto f = d / "gates.safetensors";
  const std::string param = " --param " + f.string() + " --out " + (d / "x.csv").string();
  auto t = dump(2, 3, 2);
  auto missing = t;
  missing.erase(missing.begin() + 1);
  put(f, safetensors_bytes(missing));
  expect_bad("constraint" + param, "tensor 'beta' is missing");
  auto range = t;
  range[1].values[5] = 1.5f;
  put(f, safetensors_bytes(range));
  expect_bad("constraint" + param, "tensor 'beta' at [0, 2, 1]");
  auto shape = t;
  shape[3].shape = {2, 6, 1};
  put(f, safetensors_bytes(shape));
  expect_bad("constraint" + param, "tensor 'eta' has shape [2, 6, 1]");
  auto dtype = t;
  dtype[2].dtype = "I32";
  put(f, safetensors_bytes(dtype));
  expect_bad("constraint" + param, "tensor 'log_mu' has dtype I32");
  std::string bytes = safetensors_bytes(t);
  put(f, bytes.substr(0, bytes.size() - 6));  // eta's data lies last
  expect_bad("constraint" + param, "tensor 'eta' runs past the end of the file");
  put(f, safetensors_bytes(dump(1, 0, 2)));
  expect_bad("constraint" + param, "empty");
  const auto c = d / "gates.csv";
  put(c, "alpha,beta,mu,eta\n0.5,0.5,0.5,1\n0.5,1.5,0.5,1\n");
  expect_bad("constraint --param " + c.string(), "row 2");
  expect_bad("constraint --param " + c.string(), "beta");
  put(c, "alpha,beta,mu,eta\n");
  expect_bad("constraint --param " + c.string(), "gates.csv");
  std::filesystem::remove(c);
  std::filesystem::remove(f);
  EXPECT_EQ(count_entries(d), 0);
}

// ---------- checkpoints ----------

// One layer, two heads: exp(log_factor) = 1e-4 (certified) and 0.23 (refuted
// gates reachable), other parameters equal.
std::vector<Tensor> checkpoint_tensors() {
  const float l4 = std::log(4.0f);
  return {{"model.layers.0.attn.A_log", {2}, {l4, l4}},
          {"model.layers.0.attn.Mu_log", {2}, {l4, l4}},
          {"model.layers.0.attn.dt_bias", {2}, {-4, -4}},
          {"model.layers.0.attn.mu_bias", {2}, {-4, -4}},
          {"model.layers.0.attn.log_factor", {2}, {std::log(1e-4f), std::log(0.23f)}},
          {"model.layers.0.attn.q_proj.weight", {8, 8}, std::vector<float>(64, 0.5f)}};
}

TEST(CliConstraint, CheckpointPerLayerAndHead) {
  const auto d = scratch_dir("constraint_ck");
  put(d / "model.safetensors", safetensors_bytes(checkpoint_tensors()));
  put(d / "config.json", R"({"hidden_size": 1024, "min_log_mu": -1})");
  auto r = run_cli("--format json constraint --checkpoint " + d.string() + " --samples 1500");
  ASSERT_EQ(r.code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["config"]["min_log_mu"], -1.0);
  EXPECT_EQ(j["config"]["min_log_mu_source"], "config.json");
  ASSERT_EQ(j["heads"].size(), 2u);
  EXPECT_FALSE(j["heads"][0]["refuted_reachable"].get<bool>());
  EXPECT_TRUE(j["heads"][1]["refuted_reachable"].get<bool>());
  EXPECT_EQ(j["heads_refuted"], 1);
  const json& c = j["heads"][1]["worst_counterexample"];
  EXPECT_NEAR(c["learned"]["log_factor"].get<double>(), std::log(0.23f), 1e-7);
  // The head's counterexample maps from its raw inputs with min_log_mu = -1.
  const auto want = mdn_gates(c["raw"], c["learned"], 32, -1);
  EXPECT_NEAR(c["gates"]["beta"].get<double>(), double(want[1]), 1e-12);
  EXPECT_GE(c["gates"]["mu"].get<double>(), std::exp(-1.0) * (1 - 1e-15));
  // A flag overrides config.json; the file alone works too.
  r = run_cli("--format json constraint --checkpoint " + (d / "model.safetensors").string() +
              " --samples 300 --min-log-mu -2");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["config"]["min_log_mu_source"], "flag");
  r = run_cli("constraint --checkpoint " + d.string() + " --samples 300 --out " + (d / "heads.csv").string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("conclusion: NOT SAFE: 1 of 2 heads"), std::string::npos) << r.out;
  EXPECT_EQ(count_lines(slurp(d / "heads.csv")), 3);
}

TEST(CliConstraint, BrokenCheckpointsNameTheTensor) {
  const auto d = scratch_dir("constraint_ck_bad");
  const auto f = d / "model.safetensors";
  const std::string args = "constraint --checkpoint " + d.string() + " --samples 10 --out " + (d / "x.csv").string();
  auto t = checkpoint_tensors();
  auto missing = t;
  missing.erase(missing.begin() + 1);
  put(f, safetensors_bytes(missing));
  expect_bad(args, "model.layers.0.attn.Mu_log' is missing");
  auto shape = t;
  shape[3].shape = {1, 2};
  put(f, safetensors_bytes(shape));
  expect_bad(args, "model.layers.0.attn.mu_bias' has shape [1, 2]");
  auto nan = t;
  nan[2].values[1] = NAN;
  put(f, safetensors_bytes(nan));
  expect_bad(args, "model.layers.0.attn.dt_bias' head 1 = nan");
  put(f, safetensors_bytes({t.back()}));
  expect_bad(args, "no tensor model.layers.{i}.attn.A_log");
  std::string bytes = safetensors_bytes(t);
  put(f, bytes.substr(0, bytes.size() - 260));  // into log_factor (q_proj, 256 bytes, lies last)
  expect_bad(args, "runs past the end of the file");
  put(f, safetensors_bytes(t));
  put(d / "config.json", R"({"min_log_mu": "low"})");
  expect_bad(args, "min_log_mu");
  std::filesystem::remove(d / "config.json");
  std::filesystem::remove(f);
  EXPECT_EQ(count_entries(d), 0);
  expect_bad("constraint --checkpoint " + (d / "nothing").string(), "nothing");
}

// ---------- bad arguments ----------

TEST(CliConstraint, BadArgumentsExitTwoAndLeaveNoFile) {
  const auto d = scratch_dir("constraint_bad");
  const std::string out = " --out " + (d / "x.csv").string();
  expect_bad("constraint --param bogus" + out, "bogus");
  expect_bad("constraint" + out, "--param");
  expect_bad("constraint --param mdn --samples 0" + out, "--samples 0");
  expect_bad("constraint --param mdn --samples x" + out, "samples");
  expect_bad("constraint --param mdn --margin 1.5" + out, "--margin 1.5");
  expect_bad("constraint --param mdn --range everywhere" + out, "range");
  expect_bad("constraint --param mdn --min-log-mu 0.5" + out, "--min-log-mu 0.5");
  expect_bad("constraint --param mdn --min-log-mu nan" + out, "min-log-mu");
  expect_bad("constraint --param mdn --model 7B" + out, "model");
  expect_bad("constraint --param mdn --tau-factor 0" + out, "--tau-factor 0");
  expect_bad("constraint --param mdn --out /nonexistent/dir/x.csv", "/nonexistent");
  expect_bad("constraint --param mdn --p-scale two" + out, "p-scale");
  const auto f = d / "g.csv";
  put(f, "alpha,beta,mu,eta\n0.5,0.5,0.5,1\n");
  expect_bad("constraint --param " + f.string() + " --checkpoint " + d.string(), f.string());
  std::filesystem::remove(f);
  EXPECT_EQ(count_entries(d), 0);
}

}  // namespace
}  // namespace mdnstab::test
