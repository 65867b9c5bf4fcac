// `mdnstab validate` and `lyapunov --device gpu` end to end: without a GPU one line
// and exit code 2; the CPU path with its JSON/CSV files; a planted wrong prediction
// fed in through --predictions exits 1 and is listed; bad input exits 2 naming the
// value and leaves no file behind.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "run_cli.hpp"

namespace mdnstab::test {
namespace {

// Small enough for CI (well under a second each): DK 4, 1500 steps.
const std::string kSmall = "--device cpu --dk 4 --steps 1500 --heads 6 --full-steps 600 --cpu-steps 1500 --cpu-chains 6 --threads 2";

TEST(CliValidate, WithoutAGpuSaysSoInOneLineAndExits2) {
  const CliResult r = run_cli("validate --alpha 0.9 --beta 0.5 --mu 0.5 --eta 1.0 --steps 1000");
  if (r.code == 0 || r.code == 1) GTEST_SKIP() << "a GPU is present: " << r.out.substr(0, 200);
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("no GPU"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--device cpu"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty());
}

TEST(CliValidate, LyapunovOnTheGpuWithoutOneExits2) {
  const CliResult r = run_cli("lyapunov --alpha 0.9 --beta 0.5 --mu 0.5 --eta 1.0 --dk 8 --steps 1000 --device gpu");
  if (r.code == 0) GTEST_SKIP() << "a GPU is present";
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("no GPU"), std::string::npos) << r.err;
}

TEST(CliValidate, CpuPathPrintsSavesAndAgrees) {
  const auto dir = scratch_dir("validate_cpu");
  const auto save = dir / "v.json", csv = dir / "v.csv";
  const CliResult r = run_cli("--format json validate " + kSmall +
                              " --axis alpha=0.9:0.99:2 --fix beta=0.9 --fix mu=0.99 --axis eta=1.0:1.9:2 --save " +
                              save.string() + " --csv " + csv.string());
  ASSERT_EQ(r.code, 0) << r.err << r.out.substr(0, 2000);
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["rows"].size(), 4u);
  EXPECT_EQ(j["summary"]["disagree"], 0);
  EXPECT_EQ(j["options"]["dk"], 4);
  EXPECT_EQ(j["provenance"]["device"].get<std::string>().substr(0, 3), "cpu");
  EXPECT_EQ(nlohmann::json::parse(slurp(save)), j);
  EXPECT_EQ(count_lines(slurp(csv)), 5);  // header + 4 rows
  for (const auto& row : j["rows"]) {
    EXPECT_TRUE(row["agrees"].get<bool>());
    EXPECT_EQ(row["checks"].size(), 9u);
  }
  // The table names every row and ends with the summary.
  const CliResult t = run_cli("validate " + kSmall + " --alpha 0.99 --beta 0.9 --mu 0.99 --eta 1.9");
  EXPECT_EQ(t.code, 0) << t.err;
  EXPECT_NE(t.out.find("refuted"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("summary: 1 of 1 gate sets agree"), std::string::npos) << t.out;
}

TEST(CliValidate, PlantedWrongPredictionExits1AndIsListed) {
  const auto dir = scratch_dir("validate_plant");
  const auto pred = dir / "p.json";
  {
    std::ofstream g(dir / "g.csv");
    g << "alpha,beta,mu,eta\n0.9,0.5,0.5,1.0\n0.99,0.9,0.99,1.9\n";
  }
  const CliResult q = run_cli("validate " + kSmall + " --gates " + (dir / "g.csv").string() + " --predict-only --save " +
                              pred.string());
  ASSERT_EQ(q.code, 0) << q.err;
  // The unchanged predictions agree.
  const CliResult ok = run_cli("validate " + kSmall + " --predictions " + pred.string());
  EXPECT_EQ(ok.code, 0) << ok.out;
  // Plant: row 1's random-key exponent shifted by 0.5 per step.
  auto j = nlohmann::json::parse(slurp(pred));
  ASSERT_EQ(j["rows"].size(), 2u);
  j["rows"][1]["prediction"]["exponent"] = j["rows"][1]["prediction"]["exponent"].get<double>() + 0.5;
  const auto planted = dir / "planted.json";
  std::ofstream(planted) << j.dump();
  const CliResult bad = run_cli("validate " + kSmall + " --predictions " + planted.string());
  EXPECT_EQ(bad.code, 1) << bad.out;
  EXPECT_NE(bad.out.find("DISAGREE: random_exponent"), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("row 1 [0.99"), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("summary: 1 of 2 gate sets agree"), std::string::npos) << bad.out;
  const CliResult bj = run_cli("--format json validate " + kSmall + " --predictions " + planted.string());
  EXPECT_EQ(bj.code, 1);
  const auto out = nlohmann::json::parse(bj.out);
  ASSERT_EQ(out["disagreements"].size(), 1u);
  EXPECT_EQ(out["disagreements"][0]["row"], 1);
  EXPECT_EQ(out["disagreements"][0]["name"], "random_exponent");
}

TEST(CliValidate, GateMemoryCertificateOfASetRoundTrips) {
  // Two gates drawn per step: only W's that remember the last rows certify them
  // (tests/test_certify_memory.cpp). Saved and reloaded whole; a malformed word
  // W in the file is bad input.
  const auto dir = scratch_dir("validate_memory");
  const auto pred = dir / "p.json";
  std::ofstream(dir / "pair.csv") << "alpha,beta,mu,eta\n0.8644,0.1490,0.6140,0.4710\n0.5215,0.6985,0.8593,0.6396\n";
  const CliResult r = run_cli("--format json validate " + kSmall + " --gate-set " + (dir / "pair.csv").string() +
                              " --save " + pred.string());
  ASSERT_EQ(r.code, 0) << r.err << r.out.substr(0, 2000);
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["rows"].size(), 1u);
  const auto& p = j["rows"][0]["prediction"];
  EXPECT_EQ(p["verdict"], "certified");
  EXPECT_EQ(p["gate_memory"], 4);
  EXPECT_EQ(p["W_by_word"].size(), 16u);
  EXPECT_GT(p["common_upper_bound"].get<double>(), 1.0);
  EXPECT_LT(p["upper_bound"].get<double>(), 1.0);
  EXPECT_TRUE(j["rows"][0]["agrees"].get<bool>());
  const CliResult again = run_cli("--format json validate " + kSmall + " --predictions " + pred.string());
  ASSERT_EQ(again.code, 0) << again.out.substr(0, 2000);
  EXPECT_EQ(nlohmann::json::parse(again.out)["rows"][0]["prediction"], p);
  // A word W of two numbers.
  auto bad = nlohmann::json::parse(slurp(pred));
  bad["rows"][0]["prediction"]["W_by_word"][0] = {1.0, 2.0};
  std::ofstream(dir / "bad.json") << bad.dump();
  const CliResult b = run_cli("validate " + kSmall + " --predictions " + (dir / "bad.json").string());
  EXPECT_EQ(b.code, 2) << b.out;
  EXPECT_NE(b.err.find("W_by_word"), std::string::npos) << b.err;
}

TEST(CliValidate, StudyGateSetsAndTheReportReusesTheSavedResults) {
  const auto dir = scratch_dir("validate_study");
  {
    std::ofstream f(dir / "spec.toml");
    f << "[study]\nname = \"v\"\ntitle = \"V\"\n[[gate_set]]\nname = \"design\"\nalpha = 0.99\nbeta = 0.9\n"
         "mu = 0.99\neta = 1.9\n[[gate_set]]\nname = \"damped\"\nalpha = 0.9\nbeta = 0.1\nmu = 0.5\neta = 1.0\n"
         "[tiers]\nresolution = 5\npanels = [{ mu = 0.9, eta = 1.9 }]\n[counterexample]\nsteps = 50\ndk = 4\n"
         "random_keys = 1\n[gpu_validation]\nresults = \"saved.csv\"\n";
  }
  const CliResult r = run_cli("--format json validate " + kSmall + " --study " + (dir / "spec.toml").string() +
                              " --study-grid 2 --save " + (dir / "saved.json").string() +
                              " --csv " + (dir / "saved.csv").string());
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["rows"].size(), 6u);  // 2 gate sets + 2 x 2 points on the panel
  EXPECT_EQ(j["rows"][0]["label"], "design");
  EXPECT_EQ(j["rows"][5]["label"], "tiers mu=0.9 eta=1.9 alpha=0.75 beta=0.75");
  // The report's figure, recomputed here from the JSON: the worst relative difference of
  // the random-key growth per step exp(exponent), GPU (here the CPU backend) against CPU.
  double worst = 0;
  for (const auto& row : j["rows"]) {
    const double p = std::exp(row["prediction"]["exponent"].get<double>());
    const double m = std::exp(row["measurement"]["random_exponent"].get<double>());
    worst = std::max(worst, std::abs(m - p) / p);
  }
  EXPECT_GT(worst, 0.0);
  const auto out = dir / "report";
  const CliResult rep = run_cli("report " + (dir / "spec.toml").string() + " --quick --out " + out.string());
  ASSERT_EQ(rep.code, 0) << rep.err;
  const std::string md = slurp(out / "index.md");
  EXPECT_NE(md.find("reuses the saved results"), std::string::npos) << md;
  const auto f = nlohmann::json::parse(slurp(out / "data" / "findings.json"));
  // The report reads the CSV, whose exponents carry 17 significant digits: the growths
  // round-trip to ~1e-16 relative, so their relative difference to ~1e-15 absolute.
  EXPECT_NEAR(f["gpu_validation.worst_relative_error"]["value"].get<double>(), worst, 1e-12);
}

TEST(CliValidate, BadInputExits2NamingTheValueAndLeavesNoFile) {
  const auto dir = scratch_dir("validate_bad");
  const std::string save = " --save " + (dir / "out.json").string();
  const std::string gates = " --alpha 0.9 --beta 0.5 --mu 0.5 --eta 1.0";
  struct Case {
    std::string args, names;
  };
  const std::string dev = " --device cpu --threads 2";
  for (const Case& c : {Case{dev + gates + " --dk 300", "--dk 300"}, Case{kSmall + " --alpha 1.5 --beta 0.5 --mu 0.5 --eta 1", "alpha"},
                        Case{kSmall + " --axis alpha=0.1:0.5:3 --fix mu=0.5 --fix eta=1", "beta"},
                        Case{kSmall + gates + " --gates x.csv", "only one"}, Case{kSmall + gates + " --angles 0.5,foo", "foo"},
                        Case{kSmall + " --predictions " + (dir / "missing.json").string(), "missing.json"},
                        Case{"--device tpu" + gates, "tpu"}, Case{kSmall, "no gate sets"},
                        Case{dev + gates + " --steps 10", "--steps 10"}, Case{dev + gates + " --heads 1", "--heads 1"},
                        Case{dev + gates + " --study-grid 3", "--study-grid needs --study"},
                        Case{dev + " --study " + (dir / "none.toml").string(), "none.toml"}}) {
    const CliResult r = run_cli("validate " + c.args + save);
    EXPECT_EQ(r.code, 2) << c.args;
    EXPECT_EQ(count_lines(r.err), 1) << c.args << ": " << r.err;
    EXPECT_NE(r.err.find(c.names), std::string::npos) << c.args << ": " << r.err;
    EXPECT_EQ(count_entries(dir), 0) << c.args;
  }
}

}  // namespace
}  // namespace mdnstab::test
