// End-to-end tests of `certify` and `lyapunov`: the JSON contract, the three
// kinds of input (gates, CSV, box), --each output, and every bad input answered
// with exit code 2, one line naming the value, and no file left behind.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "run_cli.hpp"

namespace mdnstab::test {
namespace {

using nlohmann::json;

void write(const std::filesystem::path& p, const std::string& s) {
  std::ofstream f(p);
  f << s;
}

TEST(CliCertify, DesignExampleIsRefutedWithAReplayableWitness) {
  auto r = run_cli("--format json certify --alpha 0.99 --beta 0.9 --mu 0.99 --eta 1.9");
  ASSERT_EQ(r.code, 0) << r.err;
  const json j = json::parse(r.out);
  for (const char* k : {"upper_bound", "W", "lower_bound", "witness", "verdict", "gap", "certified_margin",
                        "refuted_margin", "frozen_spectral_radius", "gamma_dual"})
    EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_EQ(j["verdict"], "refuted");
  EXPECT_GT(j["lower_bound"].get<double>(), 1.62);
  EXPECT_LT(j["upper_bound"].get<double>(), 1.64);
  EXPECT_EQ(j["W"].size(), 3u);
  EXPECT_EQ(j["witness"]["kind"], "rotation");
  EXPECT_GT(j["witness"]["angle"].get<double>(), 0.0);
  EXPECT_NEAR(j["refuted_margin"].get<double>(), j["lower_bound"].get<double>() - 1, 1e-15);
}

TEST(CliCertify, GdnIsCertifiedAndTheTableSaysSo) {
  auto r = run_cli("certify --alpha 0.9 --beta 1 --mu 0 --eta 1.5");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("CERTIFIED"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("upper bound gamma"), std::string::npos);
}

TEST(CliCertify, CsvGateSetAndBox) {
  const auto d = scratch_dir("certify_csv");
  write(d / "g.csv", "alpha,beta,mu,eta\n0.9,0.2,0.5,1\n0.95,0.1,0.6,0.5\n");
  auto r = run_cli("--format json certify --csv " + (d / "g.csv").string());
  ASSERT_EQ(r.code, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["set_size"], 2);
  EXPECT_EQ(j["input"], "csv");
  EXPECT_LE(j["lower_bound"].get<double>(), j["upper_bound"].get<double>() * (1 + 1e-12));

  r = run_cli("--format json certify --box alpha=0.9:0.95 --box beta=0.1:0.2 --mu 0.5 --box eta=0.5:1");
  ASSERT_EQ(r.code, 0) << r.err;
  j = json::parse(r.out);
  EXPECT_EQ(j["set_size"], 8);
  EXPECT_EQ(j["input"], "box");
  EXPECT_NE(j["note"].get<std::string>().find("vertices"), std::string::npos);
}

TEST(CliCertify, GateMemoryCertifiesWhatTheCommonWCannot) {
  // Two gates switched per token: one W for both proves only 1.013, W's that
  // depend on the last two rows prove 0.951 (tests/test_certify_memory.cpp).
  const auto d = scratch_dir("certify_memory");
  write(d / "pair.csv", "alpha,beta,mu,eta\n0.8644,0.1490,0.6140,0.4710\n0.5215,0.6985,0.8593,0.6396\n");
  const std::string csv = (d / "pair.csv").string();
  auto r = run_cli("--format json certify --csv " + csv);
  ASSERT_EQ(r.code, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["verdict"], "certified");
  EXPECT_EQ(j["gate_memory"], 4);  // automatic for two rows
  EXPECT_EQ(j["W_by_word"].size(), 16u);
  EXPECT_EQ(j["W_by_word"][0].size(), 3u);
  EXPECT_LT(j["upper_bound"].get<double>(), 0.952);
  EXPECT_GT(j["common_upper_bound"].get<double>(), 1.01);

  r = run_cli("--format json certify --gate-memory 0 --csv " + csv);
  ASSERT_EQ(r.code, 0) << r.err;
  j = json::parse(r.out);
  EXPECT_EQ(j["verdict"], "undecided");
  EXPECT_EQ(j["gate_memory"], 0);
  EXPECT_TRUE(j["W_by_word"].is_null());
  EXPECT_EQ(j["upper_bound"], j["common_upper_bound"]);

  r = run_cli("certify --gate-memory 2 --csv " + csv);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("one W per word of the last 2 gate rows (4 W's"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("common W"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("CERTIFIED"), std::string::npos) << r.out;

  expect_bad("certify --gate-memory -2 --csv " + csv, "gate-memory -2");
  expect_bad("certify --gate-memory 9 --csv " + csv, "more than 64");
}

TEST(CliCertify, EachRowOnItsOwnWritesOneResultPerRow) {
  const auto d = scratch_dir("certify_each");
  write(d / "g.csv", "log_alpha,beta,log_mu,eta\n-0.01,0.9,-0.01,1.9\n-0.1,0.5,-5,1\n-0.2,0.1,-0.3,0.2\n");
  auto r = run_cli("--format json certify --csv " + (d / "g.csv").string() + " --each --out " +
                   (d / "out.csv").string());
  ASSERT_EQ(r.code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["rows"], 3);
  EXPECT_EQ(j["refuted"], 1);
  EXPECT_EQ(j["certified"], 2);
  const std::string csv = slurp(d / "out.csv");
  EXPECT_EQ(count_lines(csv), 4);
  EXPECT_EQ(csv.rfind("row,alpha,beta,mu,eta,gamma,w11,w12,w22,lower_bound,verdict", 0), 0u);
  EXPECT_NE(csv.find(",refuted,"), std::string::npos);
}

TEST(CliSweep, CertificateMetricsAreConsistent) {
  const auto d = scratch_dir("sweep_cert");
  auto r = run_cli("sweep --axis alpha=0.5:1:6 --axis beta=0:1:5 --fix mu=0.99 --fix eta=1.9 "
                   "--metrics frozen_rho,gamma,lower_bound,verdict --out " + (d / "s.csv").string());
  ASSERT_EQ(r.code, 0) << r.err;
  std::ifstream f(d / "s.csv");
  std::string line;
  std::getline(f, line);
  EXPECT_EQ(line, "alpha,beta,mu,eta,frozen_rho,gamma,lower_bound,verdict");
  int rows = 0, refuted = 0;
  while (std::getline(f, line)) {
    double v[7];
    char verdict[32] = {};
    ASSERT_EQ(std::sscanf(line.c_str(), "%lf,%lf,%lf,%lf,%lf,%lf,%lf,%31s", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                          &v[6], verdict),
              8)
        << line;
    const std::string s(verdict);
    EXPECT_GE(v[5], v[4] * (1 - 1e-12)) << line;  // gamma >= frozen rho
    EXPECT_LE(v[6], v[5] * (1 + 1e-12)) << line;  // lower <= gamma
    // The rule of DESIGN.md section 4 with certify.hpp's rounding allowance 1e-13.
    EXPECT_EQ(s, v[5] < 1 - 1e-13 ? "certified" : (v[6] > 1 + 1e-13 ? "refuted" : "undecided")) << line;
    refuted += s == "refuted";
    ++rows;
  }
  EXPECT_EQ(rows, 30);
  EXPECT_GT(refuted, 0);
}

TEST(CliCertify, BadInputExitsTwoNamingTheValue) {
  const auto d = scratch_dir("certify_bad");
  write(d / "bad.csv", "alpha,beta,mu,eta\n0.5,0.5,0.5,1\n0.5,0.5,1.2,1\n");
  write(d / "empty.csv", "alpha,beta,mu,eta\n");
  write(d / "nocol.csv", "alpha,beta,eta\n0.5,0.5,1\n");
  expect_bad("certify --alpha 0.5 --beta 0.5 --mu 0.5", "eta");
  expect_bad("certify --alpha 1.5 --beta 0.5 --mu 0.5 --eta 1", "alpha");
  expect_bad("certify --csv " + (d / "bad.csv").string(), "row 2");
  expect_bad("certify --csv " + (d / "bad.csv").string(), "mu");
  expect_bad("certify --csv " + (d / "empty.csv").string(), "empty");
  expect_bad("certify --csv " + (d / "nocol.csv").string(), "mu");
  expect_bad("certify --csv " + (d / "missing.csv").string(), "missing.csv");
  expect_bad("certify --box alpha=0.5:1.5 --beta 0.5 --mu 0.5 --eta 1", "alpha");
  expect_bad("certify --box alpha=0.9:0.5 --beta 0.5 --mu 0.5 --eta 1", "alpha");
  expect_bad("certify --box alpha=0.5:0.9 --beta 0.5 --eta 1", "mu");
  expect_bad("certify --box zeta=0:1 --beta 0.5 --mu 0.5 --eta 1", "zeta");
  expect_bad("certify --each --alpha 0.5 --beta 0.5 --mu 0.5 --eta 1", "--each");
  expect_bad("certify --alpha 0.5 --beta 0.5 --mu 0.5 --eta 1 --rel-tol 0", "rel-tol");
  // A failing --each run leaves no output file.
  expect_bad("certify --csv " + (d / "bad.csv").string() + " --each --out " + (d / "o.csv").string(), "row 2");
  expect_bad("certify --csv " + (d / "empty.csv").string() + " --each --out " + (d / "nodir" / "o.csv").string(),
             "o.csv");
  EXPECT_FALSE(std::filesystem::exists(d / "o.csv"));
  EXPECT_EQ(count_entries(d), 3);
}

TEST(CliLyapunov, JsonKeysAndAPositiveExponentForTheDesignExample) {
  auto r = run_cli("--format json lyapunov --alpha 0.99 --beta 0.9 --mu 0.99 --eta 1.9 --dk 32 --steps 1000 "
                   "--seed 7");
  ASSERT_EQ(r.code, 0) << r.err;
  const json j = json::parse(r.out);
  for (const char* k : {"exponent", "stderr", "dk", "steps"}) EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_EQ(j["dk"], 32);
  EXPECT_EQ(j["steps"], 1000);
  EXPECT_GT(j["exponent"].get<double>(), 0.1);
  auto again = run_cli("--format json lyapunov --alpha 0.99 --beta 0.9 --mu 0.99 --eta 1.9 --dk 32 --steps 1000 "
                       "--seed 7 --threads 1");
  EXPECT_EQ(json::parse(again.out)["exponent"], j["exponent"]);
  r = run_cli("--format json lyapunov --alpha 0.99 --beta 0.9 --mu 0.99 --eta 1.9 --dk 2 --steps 20000 "
              "--keys rotating:0.868926");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NEAR(json::parse(r.out)["exponent"].get<double>(), std::log(1.6326781), 1e-3);
}

TEST(CliLyapunov, BadInputExitsTwo) {
  const std::string g = "lyapunov --alpha 0.5 --beta 0.5 --mu 0.5 --eta 1 ";
  expect_bad(g + "--dk 0 --steps 10", "dk");
  expect_bad(g + "--dk 4 --steps 0", "steps");
  expect_bad(g + "--dk 4", "steps");
  expect_bad(g + "--dk 4 --steps 10 --keys spiral", "spiral");
  expect_bad(g + "--dk 4 --steps 10 --keys rotating:abc", "abc");
  expect_bad(g + "--dk 1 --steps 10 --keys rotating:0.5", "dk");
  expect_bad(g + "--dk 4 --steps 10 --device gpu", "GPU");
  expect_bad(g + "--dk 4 --steps 10 --device tpu", "tpu");
  expect_bad("lyapunov --alpha 0.5 --beta 0.5 --mu 2 --eta 1 --dk 4 --steps 10", "mu");
}

}  // namespace
}  // namespace mdnstab::test
