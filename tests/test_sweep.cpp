// The sweep engine against point-by-point evaluation: same gates at the same
// grid points, same summary; spec errors are refused before any work.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "mdnstab/atomic_file.hpp"
#include "mdnstab/sweep.hpp"

namespace mdnstab {
namespace {

TEST(Sweep, AxisParsing) {
  auto a = parse_axis("alpha=0:1:11");
  ASSERT_TRUE(a.is_ok());
  EXPECT_EQ(a.value.n, 11);
  EXPECT_EQ(a.value.at(0), 0.0);
  EXPECT_EQ(a.value.at(10), 1.0);
  EXPECT_DOUBLE_EQ(a.value.at(3), 0.3);
  EXPECT_TRUE(parse_axis("log_mu=-8:0:5").is_ok());
  EXPECT_TRUE(parse_axis("eta=1:1:1").is_ok());
  for (const char* bad : {"alpha=0:1", "alpha=0:1:x", "alpha=0:1:0", "alpha=0:1:2.5", "alpha=0:1.5:3",
                          "alpha=nan:1:3", "gamma=0:1:3", "alpha", "eta=0:1:1", "log_alpha=-1:0.5:3", "alpha=0:1:3:4"})
    EXPECT_FALSE(parse_axis(bad).is_ok()) << bad;
}

TEST(Sweep, SummaryMatchesPointwiseEvaluation) {
  SweepSpec spec;
  spec.axes = {parse_axis("alpha=0:1:21").value, parse_axis("beta=0:1:17").value, parse_axis("log_mu=-3:0:5").value};
  spec.fixed = {{"eta", 1.9}};
  SweepOptions opt;
  opt.threads = 2;
  auto r = run_sweep(spec, opt);
  ASSERT_TRUE(r.is_ok()) << r.status.message;
  long complex = 0, negative = 0;
  double max_rho = -1;
  for (long i = 0; i < 21; ++i)
    for (long j = 0; j < 17; ++j)
      for (long k = 0; k < 5; ++k) {
        const Gates g = Gates::from_log(std::log(spec.axes[0].at(i)), spec.axes[1].at(j), spec.axes[2].at(k), 1.9).value;
        const FrozenSpectrum f = analyze_frozen(g, {false});
        complex += f.parallel.regime == Regime::kComplex;
        negative += f.parallel.negative_eigenvalue || f.perpendicular.negative_eigenvalue;
        max_rho = std::max(max_rho, f.frozen_spectral_radius);
      }
  EXPECT_EQ(r.value.points, 21 * 17 * 5);
  EXPECT_DOUBLE_EQ(r.value.fraction_complex, double(complex) / (21 * 17 * 5));
  EXPECT_DOUBLE_EQ(r.value.fraction_negative, double(negative) / (21 * 17 * 5));
  EXPECT_DOUBLE_EQ(r.value.max_frozen_rho, max_rho);
  EXPECT_GT(complex, 0);
  EXPECT_GT(negative, 0);
}

TEST(Sweep, CsvRowsMatchPoint) {
  const auto dir = std::filesystem::temp_directory_path() / "mdnstab_test_sweep";
  std::filesystem::create_directories(dir);
  SweepSpec spec;
  spec.axes = {parse_axis("alpha=0.5:1:4").value, parse_axis("beta=0:1:3").value};
  spec.fixed = {{"mu", 0.7}, {"eta", 1.2}};
  spec.metrics = {"rho", "half_life"};
  // The portable engine is analyze_frozen itself: full precision round-trips exactly.
  // The fast one (the default) takes exp and log from libmvec (< 4 ulp): rho of a
  // complex pair and half-lives within 1e-15 relative (4 ulp + the reference's 1).
  for (const char* engine : {"portable", "fast"}) {
    SweepOptions opt;
    opt.out_path = (dir / "s.csv").string();
    opt.engine = parse_sweep_engine(engine).value;
    ASSERT_TRUE(run_sweep(spec, opt).is_ok());
    const double tol = std::string(engine) == "portable" ? 0.0 : 1e-15;
    auto near = [&](double got, double want) { return got == want || std::abs(got - want) <= tol * std::abs(want); };
    std::ifstream f(opt.out_path);
    std::string line;
    std::getline(f, line);
    EXPECT_EQ(line, "alpha,beta,mu,eta,rho_par,rho_perp,half_life_par,half_life_perp");
    int rows = 0;
    while (std::getline(f, line)) {
      std::stringstream ss(line);
      std::string cell;
      std::vector<double> v;
      while (std::getline(ss, cell, ',')) v.push_back(std::stod(cell));
      ASSERT_EQ(v.size(), 8u);
      const FrozenSpectrum p = analyze_frozen(Gates::from_linear(v[0], v[1], v[2], v[3]).value, {false});
      EXPECT_PRED2(near, v[4], p.parallel.spectral_radius) << engine;
      EXPECT_EQ(v[5], p.perpendicular.spectral_radius) << engine;  // a real pair: exact in both
      EXPECT_PRED2(near, v[7], p.perpendicular.half_life) << engine;
      ++rows;
    }
    EXPECT_EQ(rows, 12) << engine;
  }
  std::filesystem::remove_all(dir);
}

TEST(Sweep, SpecErrorsBeforeWork) {
  SweepSpec spec;
  SweepOptions opt;
  EXPECT_FALSE(check(spec, opt).is_ok());  // no axis
  spec.axes = {parse_axis("alpha=0:1:3").value};
  spec.fixed = {{"beta", 0.5}, {"mu", 0.5}};
  EXPECT_NE(check(spec, opt).message.find("eta"), std::string::npos);  // eta not covered
  spec.fixed.push_back({"eta", 1.0});
  EXPECT_TRUE(check(spec, opt).is_ok());
  spec.metrics = {"rho", "rho"};
  EXPECT_NE(check(spec, opt).message.find("twice"), std::string::npos);
  spec.metrics = {"nope"};
  EXPECT_NE(check(spec, opt).message.find("nope"), std::string::npos);
  spec.metrics = {};
  opt.out_path = "/nonexistent_dir_mdnstab/x.csv";
  EXPECT_EQ(check(spec, opt).code, Code::kIoError);
}

TEST(AtomicFile, AppearsWholeOrNotAtAll) {
  const auto dir = std::filesystem::temp_directory_path() / "mdnstab_test_atomic";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "f.txt").string();
  {
    AtomicFile f;
    ASSERT_TRUE(f.open(path).is_ok());
    ASSERT_TRUE(f.write("partial").is_ok());
    EXPECT_FALSE(std::filesystem::exists(path));  // not visible before commit
  }  // destroyed without commit: nothing left
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), {}), 0);
  AtomicFile g;
  ASSERT_TRUE(g.open(path).is_ok());
  ASSERT_TRUE(g.write("whole\n").is_ok());
  ASSERT_TRUE(g.commit().is_ok());
  std::ifstream in(path);
  std::string s;
  std::getline(in, s);
  EXPECT_EQ(s, "whole");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), {}), 1);
  EXPECT_FALSE(check_writable((dir / "missing" / "x").string()).is_ok());
  EXPECT_FALSE(check_writable(dir.string()).is_ok());  // a directory
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mdnstab
