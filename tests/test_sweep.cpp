// The sweep engine against point-by-point evaluation: same gates at the same
// grid points, same summary; spec errors are refused before any work.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

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

std::vector<std::vector<std::string>> read_csv(const std::string& path) {
  std::vector<std::vector<std::string>> rows;
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    std::vector<std::string> cells;
    size_t p = 0;
    for (;;) {
      const size_t c = line.find(',', p);
      cells.push_back(line.substr(p, c == std::string::npos ? std::string::npos : c - p));
      if (c == std::string::npos) break;
      p = c + 1;
    }
    rows.push_back(std::move(cells));
  }
  return rows;
}

// Every field of the default columns, written by the portable engine, reads back as
// the bits the metric's own point evaluation gives: the writer's reuse of text (the
// last value of a column, frozen_rho for rho, l1 for l2, -l1_im for l2_im) must
// never show. The grid crosses real and complex pairs, negative eigenvalues
// (p-scale one) and rho >= 1 (alpha = 1), and values of both signs.
TEST(Sweep, CsvFieldsReadBackAsTheirValues) {
  const auto dir = std::filesystem::temp_directory_path() / "mdnstab_test_sweep_fields";
  std::filesystem::create_directories(dir);
  for (PScale ps : {PScale::kAlpha, PScale::kOne}) {
    SweepSpec spec;
    spec.axes = {parse_axis("alpha=0:1:23").value, parse_axis("beta=0:1:29").value, parse_axis("eta=0:2:5").value};
    spec.fixed = {{"mu", 0.8}};
    spec.p_scale = ps;
    SweepOptions opt;
    opt.out_path = (dir / "f.csv").string();
    opt.engine = parse_sweep_engine("portable").value;
    ASSERT_TRUE(run_sweep(spec, opt).is_ok());
    const auto csv = read_csv(opt.out_path);
    ASSERT_FALSE(csv.empty());
    const std::vector<std::string>& names = csv[0];
    // The default metrics in order, the gate columns before them.
    std::vector<const MetricDef*> defs;
    for (const MetricDef& m : sweep_metrics())
      if (m.default_on) defs.push_back(&m);
    size_t n_cols = 4;
    for (const MetricDef* m : defs) n_cols += m->columns.size();
    ASSERT_EQ(names.size(), n_cols);
    long rows = 0, negated_pairs = 0, complex_rows = 0;
    SweepChunkConfig chunk;
    for (size_t row = 1; row < csv.size(); ++row) {
      const std::vector<std::string>& cell = csv[row];
      ASSERT_EQ(cell.size(), n_cols) << "row " << row;
      const Gates g = Gates::from_linear(std::stod(cell[0]), std::stod(cell[1]), std::stod(cell[2]),
                                         std::stod(cell[3]), ps)
                          .value;
      const FrozenSpectrum fs = analyze_frozen(g, {true});
      const SweepPointContext ctx{g, &fs, &chunk};
      size_t k = 4;
      for (const MetricDef* m : defs) {
        std::vector<double> want(m->columns.size());
        m->eval(ctx, want.data());
        for (size_t j = 0; j < want.size(); ++j, ++k) {
          const std::string& text = cell[k];
          if (std::isnan(want[j])) {
            EXPECT_EQ(text, "") << names[k] << " in row " << row;
          } else if (!m->labels.empty()) {
            EXPECT_EQ(text, m->labels[size_t(want[j])]) << names[k] << " in row " << row;
          } else {
            const double got = std::stod(text);
            EXPECT_EQ(std::bit_cast<uint64_t>(got), std::bit_cast<uint64_t>(want[j]))
                << names[k] << " = '" << text << "', want " << want[j] << " in row " << row;
          }
        }
      }
      complex_rows += fs.parallel.regime == Regime::kComplex;
      negated_pairs += fs.parallel.regime == Regime::kComplex && fs.parallel.eig.l1.imag() != 0;
      ++rows;
    }
    EXPECT_EQ(rows, 23 * 29 * 5);
    EXPECT_GT(complex_rows, 100);  // the conjugate pairs' reuse was exercised
    EXPECT_GT(negated_pairs, 100);
  }
  std::filesystem::remove_all(dir);
}

TEST(Sweep, ThreadsSplitChunksAndKeepTheOrder) {
  // 101 x 247 points: 13 chunks of the sweep's 2048, written in order by whichever
  // thread finishes a chunk; one thread and two give the same bytes. A sweep of one
  // chunk runs on one thread whatever is asked.
  const auto dir = std::filesystem::temp_directory_path() / "mdnstab_test_sweep_threads";
  std::filesystem::create_directories(dir);
  SweepSpec spec;
  spec.axes = {parse_axis("alpha=0:1:101").value, parse_axis("beta=0:1:247").value};
  spec.fixed = {{"mu", 0.9}, {"eta", 1.5}};
  std::string text[2];
  for (int threads : {1, 2}) {
    SweepOptions opt;
    opt.threads = threads;
    opt.out_path = (dir / "t.csv").string();
    auto r = run_sweep(spec, opt);
    ASSERT_TRUE(r.is_ok()) << r.status.message;
    EXPECT_EQ(r.value.threads, threads);
    std::ifstream f(opt.out_path);
    std::stringstream ss;
    ss << f.rdbuf();
    text[threads - 1] = ss.str();
  }
  EXPECT_EQ(std::count(text[0].begin(), text[0].end(), '\n'), 101 * 247 + 1);
  EXPECT_TRUE(text[0] == text[1]);
  SweepSpec small = spec;
  small.axes[1] = parse_axis("beta=0:1:3").value;
  SweepOptions opt;
  opt.threads = 2;
  auto r = run_sweep(small, opt);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r.value.threads, 1);
  std::filesystem::remove_all(dir);
}


TEST(Sweep, EnginesWriteTheSameCsv) {
  // Every metric (the transient peak included) over log-space axes for both p-scales:
  // the one-lane fast path writes the portable engine's file byte for byte; the
  // vector paths the same text but in the columns that pass through libmvec
  // (rho of a complex pair, damping ratio, natural frequency, half-life), where
  // values agree to 1e-14 relative times the conditioning of s2 = log_det - log(l1)
  // for a positive real pair (see tests/test_spectrum_batch.cpp).
  const auto dir = std::filesystem::temp_directory_path() / "mdnstab_test_sweep_engines";
  std::filesystem::create_directories(dir);
  for (PScale p : {PScale::kAlpha, PScale::kOne}) {
    SweepSpec spec;
    spec.axes = {parse_axis("log_alpha=-3:-0.01:23").value, parse_axis("log_mu=-4:-0.01:9").value,
                 parse_axis("beta=0:1:37").value};
    spec.fixed = {{"eta", 1.9}};
    spec.p_scale = p;
    SweepOptions opt;
    opt.threads = 2;
    opt.out_path = (dir / "portable.csv").string();
    opt.engine = parse_sweep_engine("portable").value;
    auto ref = run_sweep(spec, opt);
    ASSERT_TRUE(ref.is_ok()) << ref.status.message;
    EXPECT_EQ(ref.value.engine, "portable");
    const auto want = read_csv(opt.out_path);
    ASSERT_EQ(want.size(), size_t(23 * 9 * 37 + 1));
    const auto& head = want[0];
    auto column = [&](const std::string& name) {
      return size_t(std::find(head.begin(), head.end(), name) - head.begin());
    };
    for (const char* engine : {"fast-scalar", "fast-avx2", "fast-avx512"}) {
      opt.engine = parse_sweep_engine(engine).value;
      if (!simd_supported(*opt.engine.simd)) continue;
      opt.out_path = (dir / (std::string(engine) + ".csv")).string();
      auto r = run_sweep(spec, opt);
      ASSERT_TRUE(r.is_ok()) << r.status.message;
      EXPECT_EQ(r.value.engine, engine);
      EXPECT_EQ(r.value.fraction_complex, ref.value.fraction_complex) << engine;
      EXPECT_EQ(r.value.fraction_negative, ref.value.fraction_negative) << engine;
      EXPECT_NEAR(r.value.max_frozen_rho, ref.value.max_frozen_rho, 1e-15) << engine;
      const auto got = read_csv(opt.out_path);
      ASSERT_EQ(got.size(), want.size()) << engine;
      ASSERT_EQ(got[0], head) << engine;
      long differ = 0;
      for (size_t i = 1; i < want.size(); ++i)
        for (size_t j = 0; j < head.size(); ++j) {
          if (got[i][j] == want[i][j]) continue;
          ++differ;
          const std::string& h = head[j];
          const bool libmvec = h.starts_with("rho_par") || h == "frozen_rho" || h.starts_with("damping_ratio") ||
                               h.starts_with("natural_frequency") || h.starts_with("half_life");
          ASSERT_TRUE(libmvec && std::string(engine) != "fast-scalar")
              << engine << " row " << i << " " << h << ": " << got[i][j] << " vs " << want[i][j];
          const std::string blk = h.ends_with("_perp") ? "_perp" : "_par";
          const double l1 = std::stod(want[i][column("l1_re" + blk)]), l2 = std::stod(want[i][column("l2_re" + blk)]);
          const double log_det = std::stod(want[i][column("log_alpha")]) + std::stod(want[i][column("log_mu")]);
          double cond = 1;
          if (want[i][column("regime" + blk)] == "real" && l1 > 0 && l2 > 0 && !h.starts_with("half_life")) {
            const double s1 = std::log(l1), s2 = log_det - s1;
            cond = std::max(1.0, (std::abs(s1) + std::abs(log_det)) / std::abs(s2));
          }
          const double a = std::stod(got[i][j]), b = std::stod(want[i][j]);
          ASSERT_LE(std::abs(a - b), 1e-14 * cond * std::abs(b)) << engine << " row " << i << " " << h;
        }
      if (std::string(engine) != "fast-scalar") {
        EXPECT_GT(differ, 0) << "expected some last-digit differences";
      }
    }
  }
  std::filesystem::remove_all(dir);
}

TEST(Sweep, EngineChoice) {
  for (const char* ok : {"auto", "portable", "fast", "fast-avx512", "fast-avx2", "fast-scalar"})
    EXPECT_TRUE(parse_sweep_engine(ok).is_ok()) << ok;
  auto bad = parse_sweep_engine("turbo");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status.message.find("'turbo'"), std::string::npos);
  EXPECT_EQ(parse_sweep_engine("fast-scalar").value.simd, SimdLevel::kNone);
  // The default is the fast path where the CPU has vectors, else the portable one.
  SweepSpec spec;
  spec.axes = {parse_axis("alpha=0:1:5").value};
  spec.fixed = {{"beta", 0.5}, {"mu", 0.5}, {"eta", 1.0}};
  auto r = run_sweep(spec, {});
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r.value.engine, best_simd_level() == SimdLevel::kNone
                                ? std::string("portable")
                                : "fast-" + std::string(to_string(best_simd_level())));
  // A width this CPU lacks is refused up front, naming it.
  for (SimdLevel l : {SimdLevel::kAvx2, SimdLevel::kAvx512}) {
    if (simd_supported(l)) continue;
    SweepOptions opt;
    opt.engine = {SweepEngine::kFast, l};
    EXPECT_NE(check(spec, opt).message.find(std::string(to_string(l))), std::string::npos);
  }
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

}  // namespace
}  // namespace mdnstab
