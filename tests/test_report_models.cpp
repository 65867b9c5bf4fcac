// The report's gate-dump, checkpoint and chunk-safety sections (report_models.cpp,
// report_chunk.cpp): their stated numbers against the constraint and
// chunk-safety libraries run here on the same fixtures, the rule boundary
// against chunk_safe on either side of it, and every named data file present.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "mdnstab/checkpoint.hpp"
#include "mdnstab/chunk_safety.hpp"
#include "mdnstab/constraint.hpp"
#include "mdnstab/gate_dump.hpp"
#include "mdnstab/parametrization.hpp"
#include "mdnstab/report.hpp"
#include "mdnstab/safetensors.hpp"
#include "mdnstab/sampling.hpp"
#include "mdnstab/study.hpp"

namespace mdnstab {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path fresh(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("mdnstab_repmodels_" + std::to_string(getpid())) / name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

double value(const json& findings, const std::string& key) {
  EXPECT_TRUE(findings.contains(key)) << key;
  if (!findings.contains(key) || findings[key]["value"].is_null()) return NAN;
  return findings[key]["value"].get<double>();
}

// Builds the report of `spec_body` (after a [study] header) in a fresh folder.
fs::path report(const std::string& name, const std::string& spec_body, json& findings) {
  const fs::path d = fresh(name);
  const fs::path spec = d / "spec.toml";
  std::ofstream(spec) << "[study]\nname = \"t\"\ntitle = \"T\"\nseed = 3\n" << spec_body;
  auto st = load_study(spec.string());
  EXPECT_TRUE(st.is_ok()) << st.status.message;
  ReportOptions o;
  o.out_dir = (d / "out").string();
  auto r = run_report(st.value, o);
  EXPECT_TRUE(r.is_ok()) << r.status.message;
  findings = json::parse(slurp(d / "out" / "data" / "findings.json"));
  return d / "out";
}

TEST(ReportModels, DumpAndCheckpointNumbersMatchTheConstraintLibrary) {
  const fs::path d = fresh("fixtures");
  // A dump of 2 batches x 3 tokens x 2 heads: the DESIGN.md example (refuted),
  // damped gates (certified), and gates whose mix varies by head and token.
  const double gates[6][4] = {{0.99, 0.9, 0.99, 1.9}, {0.9, 0.1, 0.5, 1.0}, {0.95, 0.5, 0.9, 1.5},
                              {0.5, 0.9, 0.3, 1.9},   {0.99, 0.9, 0.99, 1.9}, {0.2, 0.2, 0.2, 0.2}};
  std::vector<TensorData> t(4);
  const char* names[4] = {"log_alpha", "beta", "log_mu", "eta"};
  for (int k = 0; k < 4; ++k) {
    t[size_t(k)] = TensorData{names[k], "F64", {2, 3, 2}, {}};
    for (int i = 0; i < 12; ++i) {
      const double* g = gates[(i * 5 + i / 4) % 6];
      t[size_t(k)].values.push_back(k == 0 ? std::log(g[0]) : k == 2 ? std::log(g[2]) : g[k]);
    }
  }
  ASSERT_TRUE(write_safetensors((d / "dump.safetensors").string(), t).is_ok());
  fs::create_directories(d / "ck");
  std::vector<TensorData> ck;
  for (int i = 0; i < 2; ++i) {
    const double v[5][2] = {{std::log(2.0), std::log(12.0)}, {std::log(0.5), std::log(8.0)}, {-3, 1},
                            {-4, 0.5}, {std::log(0.5), std::log(3.0)}};
    const char* keys[5] = {"A_log", "Mu_log", "dt_bias", "mu_bias", "log_factor"};
    for (int k = 0; k < 5; ++k)
      ck.push_back({"model.layers." + std::to_string(i) + ".attn." + keys[k], "F64", {2},
                    {v[k][0] + 0.1 * i, v[k][1] - 0.1 * i}});
  }
  ASSERT_TRUE(write_safetensors((d / "ck" / "model.safetensors").string(), ck).is_ok());

  json f;
  const std::string body = "[[gate_dump]]\nname = \"toy\"\npath = \"" + (d / "dump.safetensors").string() +
                           "\"\n[[checkpoint]]\nname = \"ck\"\npath = \"" + (d / "ck").string() +
                           "\"\nsamples = 80\n";
  const fs::path out = report("dump_ck", body, f);

  // The dump, certified here through the library the constraint subcommand uses.
  const GateDump dump = read_gate_dump((d / "dump.safetensors").string()).value;
  std::vector<TokenCheck> tokens;
  auto dr = analyze_dump(dump, ConstraintOptions{}, &tokens);
  ASSERT_TRUE(dr.is_ok()) << dr.status.message;
  const VerdictCounts& v = dr.value.token_verdicts;
  ASSERT_EQ(v.total(), 12);
  EXPECT_GT(v.refuted, 0);
  EXPECT_GT(v.certified, 0);
  EXPECT_DOUBLE_EQ(value(f, "dump.toy.fraction_certified"), double(v.certified) / 12);
  EXPECT_DOUBLE_EQ(value(f, "dump.toy.fraction_undecided"), double(v.undecided) / 12);
  EXPECT_DOUBLE_EQ(value(f, "dump.toy.fraction_refuted"), double(v.refuted) / 12);
  double worst = 0, worst_gamma = 0;
  for (const TokenCheck& tk : tokens)
    if (tk.check.cert.verdict == Verdict::kRefuted && tk.check.cert.lower_bound > worst) {
      worst = tk.check.cert.lower_bound;
      worst_gamma = tk.check.cert.upper_bound;
    }
  EXPECT_EQ(value(f, "dump.toy.worst_lower_bound"), worst);
  EXPECT_EQ(value(f, "dump.toy.worst_gamma"), worst_gamma);
  // The DESIGN.md example's gamma, 1.63268 (tests/test_certify.cpp pins it), bounds every token.
  EXPECT_NEAR(worst, 1.63268, 1e-5);

  // The checkpoint: each head's samples (seed 3, 80 per head) certified here.
  const Checkpoint k = read_checkpoint((d / "ck").string()).value;
  ConstraintOptions co;
  co.sampling.seed = 3;
  co.sampling.samples = 80;
  auto hr = analyze_checkpoint(k, Parametrization::kMdn, co);
  ASSERT_TRUE(hr.is_ok()) << hr.status.message;
  ASSERT_EQ(hr.value.size(), 4u);
  long n[3] = {0, 0, 0};
  long layer_refuted[2] = {0, 0};
  double ck_worst = 0;
  for (const HeadConstraint& h : hr.value) {
    const VerdictCounts& in = h.report.inside_margin;
    const int code = in.refuted > 0 ? 2 : (in.undecided > 0 || in.failed > 0 || in.total() == 0) ? 1 : 0;
    ++n[code];
    layer_refuted[h.layer] += code == 2;
    if (code == 2) ck_worst = std::max(ck_worst, h.report.counterexamples[0].cert.lower_bound);
  }
  EXPECT_DOUBLE_EQ(value(f, "checkpoint.ck.fraction_heads_certified"), n[0] / 4.0);
  EXPECT_DOUBLE_EQ(value(f, "checkpoint.ck.fraction_heads_undecided"), n[1] / 4.0);
  EXPECT_DOUBLE_EQ(value(f, "checkpoint.ck.fraction_heads_refuted"), n[2] / 4.0);
  EXPECT_DOUBLE_EQ(value(f, "checkpoint.ck.fraction_layers_refuted"),
                   ((layer_refuted[0] > 0) + (layer_refuted[1] > 0)) / 2.0);
  if (n[2] > 0) {
    EXPECT_EQ(value(f, "checkpoint.ck.worst_lower_bound"), ck_worst);
  }

  // The dump's sequences through the chunkwise kernel, here through the chunk library: no
  // [chunk_safety] table, so its defaults (C = 64, cut to the dump's 3 tokens; fp32; DK =
  // DV = 64) on inputs from the study's seed.
  {
    ChunkRuleOptions ro;
    const auto rule = analyze_chunk_safety(dump, 3, Precision::kFp32, ro);
    ASSERT_TRUE(rule.is_ok());
    const auto chk = check_dump_chunks(dump, 3, Precision::kFp32, ro, random_chunk_inputs(64, 64, 3, 3));
    ASSERT_TRUE(chk.is_ok()) << chk.status.message;
    EXPECT_EQ(value(f, "dump.toy.chunk.rule_unsafe_chunks"), double(rule.value.unsafe_chunks));
    EXPECT_EQ(value(f, "dump.toy.chunk.rule_largest_safe_pow2"), double(rule.value.largest_safe_pow2));
    EXPECT_EQ(value(f, "dump.toy.chunk.sequences_broken"), double(chk.value.broken));
    EXPECT_EQ(value(f, "dump.toy.chunk.sequences_agree"), double(chk.value.agree));
    EXPECT_EQ(value(f, "dump.toy.chunk.sequences_false_safe"), double(chk.value.false_safe));
    EXPECT_EQ(chk.value.sequences.size(), 4u);  // 2 batches x 2 heads
  }

  // Every stated text is in the page; the data and figures exist.
  const std::string md = slurp(out / "index.md");
  EXPECT_NE(md.find("## Gate dump `toy`"), std::string::npos);
  EXPECT_NE(md.find("Chunkwise kernel (C = 3, fp32"), std::string::npos);
  EXPECT_NE(md.find("## Checkpoint `ck`"), std::string::npos);
  for (const char* file : {"data/dump_toy_tokens.csv", "data/dump_toy_heads.csv", "data/dump_toy_chunks.csv",
                           "data/checkpoint_ck_heads.csv",
                           "figures/dump_toy.svg", "figures/dump_toy.png", "figures/checkpoint_ck.svg"})
    EXPECT_TRUE(fs::is_regular_file(out / file)) << file;
  // One row per token, plus the header.
  std::ifstream tok(out / "data" / "dump_toy_tokens.csv");
  long lines = 0;
  for (std::string l; std::getline(tok, l);) ++lines;
  EXPECT_EQ(lines, 13);
}

TEST(ReportModels, ChunkSafetyNumbersMatchTheChunkLibrary) {
  json f;
  const std::string body =
      "[parametrization]\nkind = \"mdn\"\nconfigs = [\"400M\"]\nsamples = 150\n"
      "[chunk_safety]\nchunk = 16\nprecision = \"fp32\"\nresolution = 7\nlog_alpha = [-4, 0]\nlog_mu = [-4, 0]\n"
      "steps = 64\ndk = 8\ndv = 8\n";
  const fs::path out = report("chunk", body, f);
  StudyChunkSafety cs;
  cs.chunk = 16;
  cs.resolution = 7;
  cs.log_alpha_lo = cs.log_mu_lo = -4;
  cs.steps = 64;
  cs.dk = cs.dv = 8;
  auto m = run_chunk_map(chunk_map_spec(cs, PScale::kAlpha));
  ASSERT_TRUE(m.is_ok()) << m.status.message;
  ASSERT_EQ(m.value.judged, 49);
  EXPECT_GT(m.value.broken, 0);  // the map reaches the broken region (alpha well above mu)
  EXPECT_LT(m.value.broken, 49);
  EXPECT_DOUBLE_EQ(value(f, "chunk_safety.fraction_broken"), double(m.value.broken) / 49);
  EXPECT_DOUBLE_EQ(value(f, "chunk_safety.rule_agreement"), double(m.value.rule_agree) / 49);

  SamplingOptions so;
  so.samples = 150;
  so.seed = 3;
  const auto smp = sample_reachable_gates(Parametrization::kMdn, reference_config("400M").value, so).value;
  std::vector<Gates> g;
  long unsafe = 0;
  ChunkRuleOptions ro;  // as the report's: the study's sequence and key dimension
  ro.steps = 64;
  ro.dk = 8;
  for (const SampledGate& s : smp) {
    g.push_back(s.mapped.gates);
    unsafe += !chunk_safe(s.mapped.gates, 16, Precision::kFp32, ro);
  }
  EXPECT_DOUBLE_EQ(value(f, "chunk_safety.400M.fraction_unsafe"), double(unsafe) / 150);
  const int largest = largest_safe_chunk(g, Precision::kFp32, ro);
  EXPECT_EQ(value(f, "chunk_safety.400M.largest_safe_chunk"), largest);
  // Independently: every sample is safe at that size and one is not at the next.
  if (largest > 0 && largest < kMaxChunk) {
    bool all_safe = true, all_safe_next = true;
    for (const Gates& x : g) {
      all_safe = all_safe && chunk_safe(x, largest, Precision::kFp32, ro);
      all_safe_next = all_safe_next && chunk_safe(x, largest + 1, Precision::kFp32, ro);
    }
    EXPECT_TRUE(all_safe);
    EXPECT_FALSE(all_safe_next);
  }

  // The drawn boundary: the rule's verdict flips across each point.
  std::ifstream b(out / "data" / "chunk_rule_boundary.csv");
  std::string line;
  std::getline(b, line);
  EXPECT_EQ(line, "log_mu,log_alpha,branch");
  long points = 0;
  while (std::getline(b, line)) {
    if (line.empty()) continue;
    double lm = 0, la = 0;
    ASSERT_EQ(std::sscanf(line.c_str(), "%lf,%lf", &lm, &la), 2) << line;
    auto at = [&](double x) { return chunk_safe(Gates::from_log(x, 0.1, lm, 1.0).value, 16, Precision::kFp32, ro); };
    EXPECT_NE(at(la - 1e-6), at(la + 1e-6)) << "no flip at log_mu " << lm << ", log_alpha " << la;
    ++points;
  }
  EXPECT_GT(points, 100);  // a curve, not a handful of points
  EXPECT_TRUE(fs::is_regular_file(out / "figures" / "chunk_safety_map.svg"));
  EXPECT_TRUE(fs::is_regular_file(out / "data" / "chunk_reachable.csv"));

  // The rule's safe verdicts at the checked size, spot-checked: each row a sample the rule
  // calls safe there, its error the emulation's on the map's inputs.
  const int checked_c = int(value(f, "chunk_safety.400M.checked_safe_chunk"));
  ASSERT_GE(checked_c, 1);
  const ChunkInputs inputs = random_chunk_inputs(8, 8, 64, chunk_map_spec(cs, PScale::kAlpha).seed);
  long rule_safe = 0;
  for (const Gates& x : g) rule_safe += chunk_safe(x, checked_c, Precision::kFp32, ro);
  std::ifstream sp(out / "data" / "chunk_safe_spot.csv");
  std::getline(sp, line);
  EXPECT_EQ(line, "config,index,rel_error,finite,reference_finite,left_out,broken");
  long rows = 0, broken = 0;
  while (std::getline(sp, line)) {
    char cfg[16] = {};
    long index = -1;
    double err = 0;
    int finite = 0, ref = 0, left = 0, brk = 0;
    ASSERT_EQ(std::sscanf(line.c_str(), "%15[^,],%ld,%lf,%d,%d,%d,%d", cfg, &index, &err, &finite, &ref, &left, &brk), 7)
        << line;
    ASSERT_GE(index, 0);
    ASSERT_LT(index, long(g.size()));
    EXPECT_STREQ(cfg, "400M");
    EXPECT_TRUE(chunk_safe(g[size_t(index)], checked_c, Precision::kFp32, ro)) << index;
    EXPECT_EQ(err, measure_chunk_error(g[size_t(index)], inputs, checked_c, Precision::kFp32).rel_rms) << index;
    ++rows;
    broken += brk;
  }
  EXPECT_EQ(rows, std::min(kSafeSpotChecks, rule_safe));
  EXPECT_EQ(value(f, "chunk_safety.400M.safe_spot_checked"), rows);
  EXPECT_EQ(value(f, "chunk_safety.400M.safe_spot_broken"), broken);
}

// The synthetic example of analysis/synthetic-model.toml is what its spec says:
// the MDN map (here: map_gates, independent of the Python script that wrote
// it) of the checkpoint's layer-0 parameters and the stored raw inputs.
TEST(ReportModels, SyntheticDumpIsTheMdnMapOfItsCheckpointLayer0) {
  const fs::path dir = fs::path(__FILE__).parent_path().parent_path() / "analysis" / "data" / "synthetic-mdn";
  auto dump = read_gate_dump((dir / "gates.safetensors").string());
  ASSERT_TRUE(dump.is_ok()) << dump.status.message;
  auto ck = read_checkpoint((dir / "checkpoint").string());
  ASSERT_TRUE(ck.is_ok()) << ck.status.message;
  EXPECT_EQ(ck.value.config.min_log_mu, -2);
  EXPECT_EQ(ck.value.config.tau(), 32);
  const GateDump& d = dump.value;
  ASSERT_EQ(int64_t(ck.value.layers[0].size()), d.heads);
  auto sr = SafetensorsReader::open((dir / "gates.safetensors").string());
  ASSERT_TRUE(sr.is_ok()) << sr.status.message;
  std::vector<double> raw[4];
  const char* names[4] = {"raw_a", "raw_b", "raw_m", "raw_e"};
  for (int k = 0; k < 4; ++k) {
    auto t = sr.value.read(names[k]);
    ASSERT_TRUE(t.is_ok()) << t.status.message;
    raw[k] = t.value;
    ASSERT_EQ(raw[k].size(), d.gates.size());
  }
  // The dump holds F32: agreement to its rounding (2^-24 relative, 2^-149 absolute), with room for
  // the double-precision formulas' own rounding.
  auto near = [](double x, double ref) { return std::abs(x - ref) <= 1.2e-7 * std::abs(ref) + 1e-44; };
  long clamped = 0;
  for (int64_t b = 0; b < d.batch; ++b)
    for (int64_t t = 0; t < d.time; ++t)
      for (int64_t h = 0; h < d.heads; ++h) {
        const size_t i = size_t((b * d.time + t) * d.heads + h);
        const RawInputs x{raw[0][i], raw[1][i], raw[2][i], raw[3][i]};
        auto m = map_gates(Parametrization::kMdn, ck.value.config, ck.value.layers[0][size_t(h)], x);
        ASSERT_TRUE(m.is_ok()) << m.status.message;
        const Gates& g = d.at(b, t, h);
        const Gates& r = m.value.gates;
        EXPECT_PRED2(near, g.log_alpha, r.log_alpha) << b << " " << t << " " << h;
        EXPECT_PRED2(near, g.beta, r.beta) << b << " " << t << " " << h;
        EXPECT_PRED2(near, g.log_mu, r.log_mu) << b << " " << t << " " << h;
        EXPECT_PRED2(near, g.eta, r.eta) << b << " " << t << " " << h;
        clamped += m.value.mu_clamped;
      }
  EXPECT_GT(clamped, 0);  // the clamp at min_log_mu = -2 is exercised
}

}  // namespace
}  // namespace mdnstab
