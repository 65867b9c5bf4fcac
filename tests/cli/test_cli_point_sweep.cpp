// End-to-end tests of `point` and `sweep`: outputs, and every bad input
// answered with exit code 2, one line naming the value, and no file left.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "run_cli.hpp"

namespace mdnstab::test {
namespace {

using nlohmann::json;

TEST(CliPoint, JsonHasTheContractKeys) {
  auto r = run_cli("--format json point --alpha 0.99 --beta 0.9 --mu 0.99 --eta 1.9");
  ASSERT_EQ(r.code, 0) << r.err;
  const json j = json::parse(r.out);
  for (const char* blk : {"parallel", "perpendicular"}) {
    const json& b = j.at(blk);
    for (const char* k : {"eigenvalues", "spectral_radius", "regime", "negative_eigenvalue", "damping_ratio",
                          "natural_frequency", "half_life"})
      EXPECT_TRUE(b.contains(k)) << blk << "." << k;
    EXPECT_EQ(b.at("eigenvalues").size(), 2u);
  }
  // A_par is complex here with |lambda| = sqrt(alpha mu) = 0.99.
  EXPECT_EQ(j["parallel"]["regime"], "complex");
  EXPECT_NEAR(j["parallel"]["spectral_radius"].get<double>(), 0.99, 1e-12);
  EXPECT_NEAR(j["frozen_spectral_radius"].get<double>(), 0.99, 1e-12);
  EXPECT_TRUE(j["frozen_stable"].get<bool>());
  EXPECT_EQ(j["perpendicular"]["regime"], "real");
}

TEST(CliPoint, NullWhereNoContinuousTimeEquivalent) {
  // beta*eta > 1 + mu/alpha gives a negative eigenvalue of A_par (p-scale alpha).
  auto r = run_cli("--format json point --alpha 0.9 --beta 1 --mu 0.01 --eta 2");
  ASSERT_EQ(r.code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_TRUE(j["parallel"]["negative_eigenvalue"].get<bool>());
  EXPECT_TRUE(j["parallel"]["damping_ratio"].is_null());
  EXPECT_TRUE(j["parallel"]["natural_frequency"].is_null());
}

TEST(CliPoint, TableIsReadable) {
  auto r = run_cli("point --log-alpha -0.01 --beta 0.5 --log-mu -0.1 --eta 1");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("spectral radius"), std::string::npos);
  EXPECT_NE(r.out.find("frozen spectral radius"), std::string::npos);
}

TEST(CliPoint, BadGatesExitTwo) {
  expect_bad("point --alpha 1.5 --beta 0.5 --mu 0.5 --eta 1", "alpha");
  expect_bad("point --alpha 0.5 --beta -0.1 --mu 0.5 --eta 1", "beta");
  expect_bad("point --alpha 0.5 --beta 0.5 --mu 0.5 --eta 2.5", "eta");
  expect_bad("point --alpha nan --beta 0.5 --mu 0.5 --eta 1", "alpha");
  expect_bad("point --alpha 0.5 --beta 0.5 --mu inf --eta 1", "mu");
  expect_bad("point --alpha 0.5 --beta 0.5 --mu 0.5", "eta");
  expect_bad("point --alpha x --beta 0.5 --mu 0.5 --eta 1", "alpha");
  expect_bad("point --alpha 0.5 --log-alpha -1 --beta 0.5 --mu 0.5 --eta 1", "alpha");
  expect_bad("point --log-alpha 0.5 --beta 0.5 --mu 0.5 --eta 1", "log_alpha");
  expect_bad("point --alpha 0.5 --beta 0.5 --mu 0.5 --eta 1 --p-scale two", "p-scale");
  expect_bad("--format xml point --alpha 0.5 --beta 0.5 --mu 0.5 --eta 1", "format");
}

TEST(CliSweep, WritesOneRowPerPointWithNamedColumns) {
  const auto d = scratch_dir("sweep_ok");
  const auto out = d / "grid.csv";
  auto r = run_cli("--format json sweep --axis alpha=0:1:11 --axis beta=0:1:5 --fix mu=0.9 --fix eta=1.5 --out " +
                   out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string csv = slurp(out);
  EXPECT_EQ(count_lines(csv), 1 + 11 * 5);
  const std::string header = csv.substr(0, csv.find('\n'));
  for (const char* col : {"alpha", "beta", "mu", "eta", "frozen_rho", "rho_par", "rho_perp", "regime_par",
                          "damping_ratio_par", "half_life_perp", "transient_peak_par", "l1_re_par"})
    EXPECT_NE(header.find(col), std::string::npos) << col;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["points"], 55);
  EXPECT_GE(j["fraction_complex"].get<double>(), 0.0);
  EXPECT_LE(j["max_frozen_rho"].get<double>(), 1.0);
  // The maximum of frozen rho over alpha in [0, 1] with mu = 0.9 is 1, at alpha = 1.
  EXPECT_DOUBLE_EQ(j["max_frozen_rho"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(j["argmax"]["alpha"].get<double>(), 1.0);
  EXPECT_EQ(count_entries(d), 1);  // no temporary left beside it
}

TEST(CliSweep, FullPrecisionAndMetricsSelection) {
  const auto d = scratch_dir("sweep_metrics");
  const auto out = d / "g.csv";
  auto r = run_cli("sweep --axis log_alpha=-1:0:3 --fix beta=0.3 --fix log_mu=-0.5 --fix eta=1 --metrics rho,regime "
                   "--out " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string csv = slurp(out);
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "alpha,beta,mu,eta,log_alpha,log_mu,rho_par,rho_perp,regime_par,regime_perp");
  // exp(-0.5) printed to full precision round-trips.
  const auto second = csv.substr(csv.find('\n') + 1);
  const double mu = std::stod(second.substr(second.find(',', second.find(',') + 1) + 1));
  EXPECT_EQ(mu, std::exp(-0.5));
  EXPECT_NE(r.out.find("complex pair"), std::string::npos);
}

TEST(CliSweep, BadInputExitsTwoAndLeavesNoFile) {
  const auto d = scratch_dir("sweep_bad");
  const std::string out = " --out " + (d / "x.csv").string();
  const std::string fix = " --fix mu=0.5 --fix eta=1";
  expect_bad("sweep --axis alpha=0:1 --axis beta=0:1:3" + fix + out, "alpha=0:1");
  expect_bad("sweep --axis alpha=0:1:x --axis beta=0:1:3" + fix + out, "x");
  expect_bad("sweep --axis alpha=0:1:0 --axis beta=0:1:3" + fix + out, "N = 0");
  expect_bad("sweep --axis alpha=0:1.5:3 --axis beta=0:1:3" + fix + out, "alpha");
  expect_bad("sweep --axis gamma=0:1:3 --axis beta=0:1:3" + fix + out, "gamma");
  expect_bad("sweep --axis alpha=0:1:3 --axis alpha=0:1:3 --fix beta=0.5" + fix + out, "alpha");
  expect_bad("sweep --axis alpha=0:1:3 --axis log_alpha=-1:0:3 --fix beta=0.5" + fix + out, "alpha");
  expect_bad("sweep --axis alpha=0:1:3 --axis beta=0:1:3" + fix + " --metrics rho,bogus" + out, "bogus");
  // Empty names, which CLI11's own splitting would drop.
  expect_bad("sweep --axis alpha=0:1:3 --axis beta=0:1:3" + fix + " --metrics rho," + out, "empty metric name");
  expect_bad("sweep --axis alpha=0:1:3 --axis beta=0:1:3" + fix + " --metrics rho,,regime" + out, "rho,,regime");
  expect_bad("sweep --axis alpha=0:1:3 --axis beta=0:1:3" + fix + " --metrics ,rho" + out, "empty metric name");
  expect_bad("sweep --axis alpha=0:1:3 --axis beta=0:1:3 --fix mu=nan --fix eta=1" + out, "mu");
  expect_bad("sweep --axis alpha=0:1:3 --axis beta=0:1:3 --fix eta=1" + out, "mu");
  expect_bad("sweep --axis alpha=0:1:3 --axis beta=0:1:3" + fix + " --out /nonexistent/dir/x.csv", "/nonexistent");
  // /proc reports no blocks: "cannot write" (root passes access(W_OK) there), not "0 GB free".
  expect_bad("sweep --axis alpha=0:1:3 --axis beta=0:1:3" + fix + " --out /proc/mdnstab_x.csv", "cannot write");
  expect_bad("sweep --axis alpha=0:1:100000 --axis beta=0:1:100000 --axis mu=0:1:100" + std::string(" --fix eta=1") +
                 out,
             "refused");
  expect_bad("sweep --axis alpha=0:1:100000 --axis beta=0:1:10000 --fix mu=0.5 --fix eta=1 --max-output-gb 1" + out,
             "GB");
  // The limit itself, checked with or without an output file.
  for (const std::string gb : {"-1", "0", "nan"}) {
    expect_bad("sweep --axis alpha=0:1:3 --fix beta=0.5" + fix + " --max-output-gb " + gb + out, "--max-output-gb");
    expect_bad("sweep --axis alpha=0:1:3 --fix beta=0.5" + fix + " --max-output-gb " + gb, "--max-output-gb");
  }
  EXPECT_EQ(count_entries(d), 0);
}

TEST(Cli, UnknownSubcommandAndVersion) {
  auto r = run_cli("frobnicate");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(count_lines(r.err), 1);
  r = run_cli("--version");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("mdnstab"), std::string::npos);
}

// --print-config writes what --config reads back: the same run.
TEST(CliConfig, PrintConfigReadsBack) {
  const auto d = scratch_dir("config_round_trip");
  const std::string point = "point --alpha 0.5 --log-mu -0.1 --beta 0.25 --eta 1.5 --p-scale one";
  auto r = run_cli("--format json " + point + " --print-config");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.find("print-config"), std::string::npos) << r.out;  // or it would only print again
  EXPECT_EQ(r.out.find("=\"\""), std::string::npos) << r.out;        // no empty values
  std::ofstream(d / "point.toml") << r.out;
  const auto direct = run_cli("--format json " + point);
  const auto read = run_cli("--config " + (d / "point.toml").string() + " point");
  ASSERT_EQ(read.code, 0) << read.err;
  EXPECT_EQ(json::parse(read.out), json::parse(direct.out));
  // A flag on the command line wins over the file.
  const auto over = run_cli("--config " + (d / "point.toml").string() + " point --beta 0.75");
  ASSERT_EQ(over.code, 0) << over.err;
  EXPECT_EQ(json::parse(over.out)["gates"]["beta"], 0.75);
  EXPECT_EQ(json::parse(over.out)["gates"]["alpha"], 0.5);

  // Several values per option (two axes, two --fix, a metric list): the same CSV.
  const std::string sweep = "sweep --axis alpha=0:1:4 --axis log_mu=-2:0:3 --fix beta=0.5 --fix eta=1 --metrics rho,regime";
  r = run_cli(sweep + " --print-config");
  ASSERT_EQ(r.code, 0) << r.err;
  std::ofstream(d / "sweep.toml") << r.out;
  ASSERT_EQ(run_cli(sweep + " --out " + (d / "direct.csv").string()).code, 0);
  ASSERT_EQ(run_cli("--config " + (d / "sweep.toml").string() + " sweep --out " + (d / "read.csv").string()).code, 0);
  EXPECT_EQ(count_lines(slurp(d / "read.csv")), 13);
  EXPECT_EQ(slurp(d / "read.csv"), slurp(d / "direct.csv"));
}

// A key of the file that no option takes is an error, not a default silently kept.
TEST(CliConfig, UnknownKeysAndBadValuesExitTwo) {
  const auto d = scratch_dir("config_bad");
  auto put = [&](const std::string& name, const std::string& text) {
    std::ofstream(d / name) << text;
    return "--config " + (d / name).string() + " point --alpha 0.5 --mu 0.9 --eta 1";
  };
  expect_bad(put("typo.toml", "[point]\nbta = 0.5\n"), "point.bta");
  expect_bad(put("top.toml", "betta = 0.5\n"), "betta");
  expect_bad(put("other.toml", "[point]\nbeta = 0.5\n[sweep]\nmetric = [\"rho\"]\n"), "sweep.metric");
  expect_bad(put("garbage.toml", "this is not toml ][\n"), "this is not toml");
  expect_bad(put("value.toml", "[point]\nbeta = \"half\"\n"), "half");
  expect_bad(put("range.toml", "[point]\nbeta = 1.5\n"), "beta");
  expect_bad("--config " + (d / "missing.toml").string() + " point --alpha 0.5 --beta 0.5 --mu 0.9 --eta 1",
             "missing.toml");
  // The good file works: the check is not what fails above.
  const auto ok = run_cli(put("good.toml", "[point]\nbeta = 0.5\n"));
  EXPECT_EQ(ok.code, 0) << ok.err;
}

}  // namespace
}  // namespace mdnstab::test
