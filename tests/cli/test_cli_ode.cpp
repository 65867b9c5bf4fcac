// End-to-end tests of `ode` and the continuous-time `sweep` metrics: outputs
// checked against independent arithmetic, and every bad input answered with
// exit code 2, one line naming the value, and no file left.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>
#include <nlohmann/json.hpp>

#include "run_cli.hpp"

namespace mdnstab::test {
namespace {

using nlohmann::json;

const std::string kTier2 = " --alpha 0.99 --beta 0.9 --mu 0.99 --eta 1.9";

std::vector<std::vector<std::string>> read_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> f;
    std::istringstream ls(line);
    for (std::string x; std::getline(ls, x, ',');) f.push_back(x);
    if (!line.empty() && line.back() == ',') f.emplace_back();
    rows.push_back(f);
  }
  return rows;
}

TEST(CliOde, JsonReportsAllThreeParts) {
  auto r = run_cli("--format json ode" + kTier2 + " --rel-tol 1e-12 --t-end 40 --omega 0:3:7");
  ASSERT_EQ(r.code, 0) << r.err;
  const json j = json::parse(r.out);
  for (const char* blk : {"parallel", "perpendicular"})
    for (const char* k : {"exists", "class", "log", "eigenvalues", "zeta", "w_n", "period", "decay_time", "q_factor",
                          "grows", "decays"})
      EXPECT_TRUE(j.at(blk).contains(k)) << blk << "." << k;
  EXPECT_EQ(j["parallel"]["class"], "underdamped");
  EXPECT_EQ(j["perpendicular"]["class"], "critically damped");  // alpha = mu: a Jordan block
  // |lambda| = sqrt(alpha mu) = 0.99, so zeta w_n = -ln 0.99.
  const double z = j["parallel"]["zeta"], w = j["parallel"]["w_n"];
  EXPECT_NEAR(z * w, -std::log(0.99), 1e-12);
  EXPECT_NEAR(j["parallel"]["q_factor"].get<double>(), 1 / (2 * z), 1e-9);
  const json& t = j["trajectory"];
  EXPECT_TRUE(t["available"].get<bool>());
  EXPECT_EQ(t["points"], 41);
  EXPECT_LE(t["max_rel_diff"].get<double>(), 1e-8);
  const json& rot = j["rotation"];
  ASSERT_TRUE(rot["available"].get<bool>());
  ASSERT_EQ(rot["omega"].size(), 7u);
  for (size_t i = 0; i < 7; ++i)
    EXPECT_NEAR(rot["rate"][i].get<double>(), rot["rate_closed_form"][i].get<double>(), 1e-6);
  EXPECT_NEAR(rot["rate"][0].get<double>(), std::log(0.99), 1e-9);  // omega = 0: the frozen decay rate
  EXPECT_GT(rot["peak"]["rate"].get<double>(), 0.0);
  EXPECT_TRUE(rot["peak"]["unstable"].get<bool>());
  EXPECT_GT(rot["discrete_peak"]["growth_per_step"].get<double>(), 1.0);
  // certify's rotating witness maximises over all angles: at least the grid's best.
  const json& c = j["certify"];
  EXPECT_EQ(c["verdict"], "refuted");
  EXPECT_EQ(c["witness_kind"], "rotation");
  EXPECT_GE(c["lower_bound"].get<double>() * (1 + 1e-9), rot["discrete_peak"]["growth_per_step"].get<double>());
  EXPECT_GE(c["upper_bound"].get<double>() * (1 + 1e-9), c["lower_bound"].get<double>());
  EXPECT_NEAR(c["continuous_rate_at_witness_angle"].get<double>(),
              c["continuous_rate_closed_form_at_witness_angle"].get<double>(), 1e-6);
}

TEST(CliOde, TrajectoryCsvHoldsBothSolutions) {
  const auto d = scratch_dir("ode_csv");
  const auto out = d / "traj.csv", scan = d / "scan.csv";
  auto r = run_cli("ode --alpha 0.9 --beta 0.1 --mu 0.1 --eta 0.5 --x0 2,-1 --t-end 10.5 --rel-tol 1e-12 --out " +
                   out.string() + " --omega 0:1:5 --scan-out " + scan.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("overdamped"), std::string::npos) << r.out;
  const auto rows = read_csv(slurp(out));
  ASSERT_EQ(rows.size(), 1u + 12u);  // t = 0..10 and 10.5
  EXPECT_EQ(rows[0], (std::vector<std::string>{"t", "ode_s", "ode_m", "discrete_s", "discrete_m", "diff", "rel_diff"}));
  // The discrete columns are A_par^t x0, recomputed here.
  const double alpha = 0.9, beta = 0.1, mu = 0.1, eta = 0.5;
  const double A[2][2] = {{alpha - beta * eta * alpha, -beta * mu}, {eta * alpha, mu}};
  double x[2] = {2, -1};
  for (int t = 0; t <= 10; ++t) {
    const auto& row = rows[size_t(t) + 1];
    ASSERT_EQ(row.size(), 7u);
    EXPECT_EQ(std::stod(row[0]), t);
    EXPECT_NEAR(std::stod(row[3]), x[0], 1e-15 * (1 + std::abs(x[0])));
    EXPECT_NEAR(std::stod(row[4]), x[1], 1e-15 * (1 + std::abs(x[1])));
    EXPECT_NEAR(std::stod(row[1]), x[0], 1e-8 * std::hypot(x[0], x[1]));
    EXPECT_NEAR(std::stod(row[2]), x[1], 1e-8 * std::hypot(x[0], x[1]));
    const double y0 = A[0][0] * x[0] + A[0][1] * x[1], y1 = A[1][0] * x[0] + A[1][1] * x[1];
    x[0] = y0;
    x[1] = y1;
  }
  EXPECT_EQ(rows.back()[0], "10.5");
  EXPECT_TRUE(rows.back()[3].empty());  // no discrete state between steps
  const auto srows = read_csv(slurp(scan));
  ASSERT_EQ(srows.size(), 6u);
  EXPECT_EQ(srows[0][0], "omega");
  EXPECT_EQ(count_entries(d), 2);  // no temporaries left
}

TEST(CliOde, TableIsReadable) {
  auto r = run_cli("ode" + kTier2 + " --omega 0:3:4 --dk 3");
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* s : {"damping ratio zeta", "quality factor Q", "period", "largest |x_ode(t) - A^t x0|", "peak",
                        "DK = 3", "UNSTABLE"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
}

TEST(CliOde, NoRealEquivalentIsReportedNotFailed) {
  // beta*eta = 2 > 1 + mu/alpha: A_par has a negative real eigenvalue.
  auto r = run_cli("--format json ode --alpha 0.9 --beta 1 --mu 0.01 --eta 2");
  ASSERT_EQ(r.code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_FALSE(j["parallel"]["exists"].get<bool>());
  EXPECT_EQ(j["parallel"]["class"], "no real equivalent");
  EXPECT_NE(j["parallel"]["reason"].get<std::string>().find("< 0"), std::string::npos);
  EXPECT_TRUE(j["parallel"]["log"].is_null());
  EXPECT_TRUE(j["perpendicular"]["exists"].get<bool>());
  EXPECT_FALSE(j["trajectory"]["available"].get<bool>());
  EXPECT_FALSE(j["rotation"]["available"].get<bool>());
  // The perpendicular block's trajectory still works.
  r = run_cli("--format json ode --alpha 0.9 --beta 1 --mu 0.01 --eta 2 --block perp");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(json::parse(r.out)["trajectory"]["available"].get<bool>());
  // A complex pair with a negative real part does have one.
  r = run_cli("--format json ode --alpha 0.9 --beta 1 --mu 0.8 --eta 2 --omega 0:0:1");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(json::parse(r.out)["parallel"]["exists"].get<bool>());
}

TEST(CliOde, BadInputExitsTwoAndLeavesNoFile) {
  const auto d = scratch_dir("ode_bad");
  const std::string out = " --out " + (d / "t.csv").string() + " --scan-out " + (d / "s.csv").string();
  expect_bad("ode --alpha 1.5 --beta 0.5 --mu 0.5 --eta 1" + out, "alpha");
  expect_bad("ode --alpha 0.5 --beta 0.5 --mu nan --eta 1" + out, "mu");
  expect_bad("ode" + kTier2 + " --rel-tol 0" + out, "--rel-tol = 0");
  expect_bad("ode" + kTier2 + " --abs-tol -1e-9" + out, "--abs-tol = -1e-09");
  expect_bad("ode" + kTier2 + " --abs-tol nan" + out, "--abs-tol");
  expect_bad("ode" + kTier2 + " --t-end 0" + out, "--t-end = 0");
  expect_bad("ode" + kTier2 + " --t-end -3" + out, "--t-end = -3");
  expect_bad("ode" + kTier2 + " --t-end inf" + out, "--t-end");
  expect_bad("ode" + kTier2 + " --t-end 1e12" + out, "1e+12");
  expect_bad("ode" + kTier2 + " --omega 1:0:5" + out, "1:0:5");
  expect_bad("ode" + kTier2 + " --omega 0:1:0" + out, "0:1:0");
  expect_bad("ode" + kTier2 + " --omega 0:inf:3" + out, "0:inf:3");
  expect_bad("ode" + kTier2 + " --omega nan:1:3" + out, "nan:1:3");
  expect_bad("ode" + kTier2 + " --omega 0:1" + out, "0:1");
  expect_bad("ode" + kTier2 + " --omega 0:1:1000000" + out, "1000000");
  expect_bad("ode" + kTier2 + " --omega 0:1e-7:3" + out, "omega = 5e-08");
  expect_bad("ode" + kTier2 + " --x0 nan,0" + out, "--x0 s = nan");
  expect_bad("ode" + kTier2 + " --x0 1" + out, "x0");
  expect_bad("ode" + kTier2 + " --dk 4" + out, "dk");
  expect_bad("ode" + kTier2 + " --tilt 0.5" + out, "--tilt");
  expect_bad("ode" + kTier2 + " --block sideways" + out, "block");
  expect_bad("ode" + kTier2 + " --out /nonexistent/dir/t.csv", "/nonexistent");
  // A trajectory file for a block without a real logarithm cannot be written.
  expect_bad("ode --alpha 0.9 --beta 1 --mu 0.01 --eta 2" + out, "no real");
  EXPECT_EQ(count_entries(d), 0);
}

TEST(CliSweep, ContinuousTimeMetrics) {
  const auto d = scratch_dir("sweep_ct");
  const auto out = d / "ct.csv";
  // beta from 0 to 1 at alpha 0.9, mu 0.01, eta 2: overdamped at beta = 0 (A_par
  // triangular), a negative eigenvalue once beta*eta > 1 + mu/alpha.
  auto r = run_cli("sweep --axis beta=0:1:5 --fix alpha=0.9 --fix mu=0.01 --fix eta=2 "
                   "--metrics damping_ratio,zeta,w_n,q_factor,ct_class --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const auto rows = read_csv(slurp(out));
  ASSERT_EQ(rows.size(), 6u);
  const auto& h = rows[0];
  auto col = [&](const std::string& name) {
    const auto it = std::find(h.begin(), h.end(), name);
    EXPECT_NE(it, h.end()) << name;
    return size_t(it - h.begin());
  };
  for (const char* c : {"zeta_par", "zeta_perp", "w_n_par", "w_n_perp", "q_factor_par", "q_factor_perp",
                        "ct_class_par", "ct_class_perp"})
    col(c);
  EXPECT_EQ(rows[1][col("ct_class_par")], "overdamped");
  EXPECT_EQ(rows[5][col("ct_class_par")], "no_real_equivalent");
  EXPECT_TRUE(rows[5][col("zeta_par")].empty());
  for (size_t i = 1; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i][col("ct_class_perp")], "overdamped");
    // zeta agrees with the spectrum's damping ratio wherever both exist.
    const std::string& a = rows[i][col("damping_ratio_par")];
    const std::string& b = rows[i][col("zeta_par")];
    EXPECT_EQ(a.empty(), b.empty()) << i;
    if (!a.empty()) {
      EXPECT_EQ(std::stod(a), std::stod(b));
      EXPECT_NEAR(std::stod(rows[i][col("q_factor_par")]), 1 / (2 * std::stod(b)), 1e-12);
    }
  }
}

}  // namespace
}  // namespace mdnstab::test
