// End-to-end tests of `simulate` on the CPU reference: JSON keys, the trajectory
// CSV, gates from a CSV dump, the GPU request without a GPU, and every bad input
// answered with exit code 2, one line naming the value and no file left.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "run_cli.hpp"

namespace mdnstab::test {
namespace {

using nlohmann::json;

const std::string kGates = " --alpha 0.99 --beta 0.9 --mu 0.99 --eta 1.9";

TEST(CliSimulate, JsonSummaryAndTrajectoryCsv) {
  const auto d = scratch_dir("simulate_csv");
  const auto csv = (d / "traj.csv").string();
  auto r = run_cli("--format json simulate --device cpu --dk 2 --dv 4 --heads 2 --steps 1500 --probe-every 10 --out " +
                   csv + kGates);
  ASSERT_EQ(r.code, 0) << r.err;
  const json j = json::parse(r.out);
  for (const char* k : {"device", "growth_rate", "growth_per_step", "first_nonfinite_step", "heads_detail",
                        "probe_every", "steps_run", "gates"})
    EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_EQ(j["device"], "cpu");
  // DESIGN.md section 4: these gates grow about e^0.18 per step under random keys at
  // DK = 2, so the fp32 state overflows inside the run and the run says where.
  EXPECT_NEAR(j["growth_rate"].get<double>(), 0.18, 0.05);
  ASSERT_TRUE(j["first_nonfinite_step"].is_number());
  const int64_t first = j["first_nonfinite_step"];
  EXPECT_GT(first, 100);
  EXPECT_EQ(j["heads_detail"].size(), 2u);
  const std::string text = slurp(csv);
  EXPECT_EQ(text.rfind("batch,head,step,norm_s,norm_m,max_abs_o\n", 0), 0u);
  const int64_t run = j["steps_run"];
  EXPECT_EQ(count_lines(text), 1 + 2 * ((run + 9) / 10));  // one row per probe and head
  EXPECT_EQ(count_entries(d), 1);
}

TEST(CliSimulate, TableAndGateCsvDump) {
  const auto d = scratch_dir("simulate_dump");
  const auto gates = (d / "gates.csv").string();
  std::ofstream(gates) << "alpha,beta,mu,eta\n0.9,0.2,0.5,1.0\n0.8,0.3,0.4,0.5\n";
  auto r = run_cli("simulate --device cpu --dk 16 --dv 8 --steps 300 --keys rotating:0.3 --gates " + gates);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("growth rate"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("first non-finite step: none"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("gates.csv"), std::string::npos) << r.out;
}

TEST(CliSimulate, GpuWithoutAGpuIsOneLineExitTwo) {
  auto r = run_cli("--format json simulate --device gpu --dk 8 --dv 8 --steps 64" + kGates);
  if (r.code == 0) {  // a machine with a GPU: the kernel ran
    EXPECT_EQ(json::parse(r.out)["device"], "gpu");
    return;
  }
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("--device gpu"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty());
}

TEST(CliSimulate, AutoFallsBackToTheCpuAndSaysSo) {
  auto r = run_cli("--format json simulate --dk 8 --dv 8 --steps 64" + kGates);
  ASSERT_EQ(r.code, 0) << r.err;
  if (json::parse(r.out)["device"] == "cpu") EXPECT_NE(r.err.find("no GPU"), std::string::npos) << r.err;
}

// expect_bad with an --out that must not appear.
void expect_bad_no_file(const std::string& args, const std::string& named) {
  const auto d = scratch_dir("simulate_bad");
  expect_bad(args + " --out " + (d / "x.csv").string(), named);
  EXPECT_EQ(count_entries(d), 0) << args;
}

TEST(CliSimulate, BadInputExitsTwo) {
  const std::string base = "simulate --device cpu --dv 4 --steps 10";
  expect_bad_no_file(base + " --dk 0" + kGates, "dk = 0");
  expect_bad_no_file(base + " --dk 4 --alpha 1.5 --beta 0.5 --mu 0.5 --eta 1", "alpha");
  expect_bad_no_file(base + " --dk 4 --keys spin" + kGates, "spin");
  expect_bad_no_file(base + " --dk 4 --keys rotating:x" + kGates, "rotating:x");
  expect_bad_no_file(base + " --dk 4 --gate-jitter 3" + kGates, "jitter = 3");
  expect_bad_no_file(base + " --dk 4 --dtype fp8" + kGates, "fp8");
  expect_bad_no_file("simulate --device tpu --dk 4 --dv 4 --steps 10" + kGates, "tpu");
  expect_bad_no_file(base + " --dk 4 --alpha 0.9 --beta 0.5 --mu 0.5", "--eta");
  expect_bad_no_file(base + " --dk 4 --gates /nonexistent/gates.csv", "/nonexistent/gates.csv");
  expect_bad_no_file(base + " --dk 4 --gates x.csv" + kGates, "--gates FILE replaces");
  expect_bad_no_file("simulate --device gpu --dk 300 --dv 4 --steps 10" + kGates, "--dk 300");
  auto r = run_cli(base + " --dk 4 --out /nonexistent/dir/t.csv" + kGates);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("/nonexistent/dir/t.csv"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace mdnstab::test
