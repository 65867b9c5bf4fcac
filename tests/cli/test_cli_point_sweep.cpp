// End-to-end tests of `point` and `sweep`: outputs, and every bad input
// answered with exit code 2, one line naming the value, and no file left.
#include <gtest/gtest.h>

#include <cmath>
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
  expect_bad("sweep --axis alpha=0:1:3 --axis beta=0:1:3 --fix mu=nan --fix eta=1" + out, "mu");
  expect_bad("sweep --axis alpha=0:1:3 --axis beta=0:1:3 --fix eta=1" + out, "mu");
  expect_bad("sweep --axis alpha=0:1:3 --axis beta=0:1:3" + fix + " --out /nonexistent/dir/x.csv", "/nonexistent");
  expect_bad("sweep --axis alpha=0:1:100000 --axis beta=0:1:100000 --axis mu=0:1:100" + std::string(" --fix eta=1") +
                 out,
             "refused");
  expect_bad("sweep --axis alpha=0:1:100000 --axis beta=0:1:10000 --fix mu=0.5 --fix eta=1 --max-output-gb 1" + out,
             "GB");
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

}  // namespace
}  // namespace mdnstab::test
