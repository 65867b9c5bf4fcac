// End-to-end tests of `sweep --engine` and MDNSTAB_SWEEP_ENGINE: the engine that
// ran is reported, the flag overrides the variable, the portable and one-lane fast
// engines write the same file, and bad names exit with code 2 naming the value.
#include <gtest/gtest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "run_cli.hpp"

namespace mdnstab::test {
namespace {

using nlohmann::json;

const std::string kGrid = "sweep --axis alpha=0:1:21 --axis beta=0:1:13 --fix mu=0.9 --fix eta=1.5";

// Sets an environment variable for the commands run in one scope.
struct ScopedEnv {
  explicit ScopedEnv(const char* value) { setenv("MDNSTAB_SWEEP_ENGINE", value, 1); }
  ~ScopedEnv() { unsetenv("MDNSTAB_SWEEP_ENGINE"); }
};

std::string engine_of(const std::string& args) {
  auto r = run_cli("--format json " + args);
  EXPECT_EQ(r.code, 0) << args << "\n" << r.err;
  return r.code == 0 ? json::parse(r.out).at("engine").get<std::string>() : "";
}

TEST(CliSweepEngine, FlagAndVariableChooseTheEngine) {
  EXPECT_EQ(engine_of(kGrid + " --engine portable"), "portable");
  EXPECT_EQ(engine_of(kGrid + " --engine fast-scalar"), "fast-scalar");
  const std::string dflt = engine_of(kGrid);
  EXPECT_TRUE(dflt == "portable" || dflt == "fast-avx2" || dflt == "fast-avx512") << dflt;
  {
    ScopedEnv env("portable");
    EXPECT_EQ(engine_of(kGrid), "portable");
    EXPECT_EQ(engine_of(kGrid + " --engine fast-scalar"), "fast-scalar");  // the flag wins
  }
  auto r = run_cli(kGrid + " --engine portable");
  EXPECT_NE(r.out.find("engine portable"), std::string::npos) << r.out;
}

TEST(CliSweepEngine, PortableAndOneLaneFastWriteTheSameFile) {
  const auto d = scratch_dir("sweep_engines");
  for (const char* e : {"portable", "fast-scalar"}) {
    auto r = run_cli(kGrid + " --engine " + e + " --out " + (d / (std::string(e) + ".csv")).string());
    ASSERT_EQ(r.code, 0) << r.err;
  }
  const std::string a = slurp(d / "portable.csv"), b = slurp(d / "fast-scalar.csv");
  EXPECT_EQ(count_lines(a), 1 + 21 * 13);
  EXPECT_EQ(a, b);
}

TEST(CliSweepEngine, BadNamesExitTwo) {
  const auto d = scratch_dir("sweep_engine_bad");
  const std::string out = " --out " + (d / "x.csv").string();
  auto r = run_cli(kGrid + " --engine turbo" + out);
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("turbo"), std::string::npos) << r.err;
  {
    ScopedEnv env("warp");
    r = run_cli(kGrid + out);
    EXPECT_EQ(r.code, 2);
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find("MDNSTAB_SWEEP_ENGINE"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("warp"), std::string::npos) << r.err;
  }
  EXPECT_EQ(count_entries(d), 0);
}

}  // namespace
}  // namespace mdnstab::test
