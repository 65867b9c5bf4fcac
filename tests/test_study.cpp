// Study spec loading (src/mdnstab/study.hpp): the shipped specs load; every
// kind of bad spec fails naming file, line, column and key; quick_version caps.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <cstdio>

#include "mdnstab/safetensors.hpp"
#include "mdnstab/study.hpp"

namespace mdnstab {
namespace {

const std::filesystem::path kAnalysis = std::filesystem::path(__FILE__).parent_path().parent_path() / "analysis";

const char* kMinimal = R"([study]
name = "t"
title = "T"
)";

// Parses `body` appended to a minimal [study]; expects an error at `line` naming `key`.
void expect_error(const std::string& body, int line, const std::string& key, const std::string& why = "") {
  const std::string text = std::string(kMinimal) + body;
  auto r = parse_study(text, "spec.toml");
  ASSERT_FALSE(r.is_ok()) << body;
  const std::string& m = r.status.message;
  EXPECT_EQ(r.status.code, Code::kInvalidArgument) << m;
  int got_line = -1, got_col = -1, end = 0;  // "spec.toml:LINE:COL: "
  ASSERT_EQ(std::sscanf(m.c_str(), "spec.toml:%d:%d: %n", &got_line, &got_col, &end), 2) << m;
  ASSERT_GT(end, 0) << m;
  EXPECT_EQ(got_line, line) << m;
  EXPECT_NE(m.find("'" + key + "'"), std::string::npos) << "key " << key << " not named in: " << m;
  if (!why.empty()) {
    EXPECT_NE(m.find(why), std::string::npos) << m;
  }
  EXPECT_EQ(m.find('\n'), std::string::npos) << "one line: " << m;
}

TEST(Study, ShippedSpecsLoad) {
  for (const char* name : {"mdn-paper.toml", "unconstrained.toml", "gdn.toml"}) {
    auto r = load_study((kAnalysis / name).string());
    ASSERT_TRUE(r.is_ok()) << name << ": " << r.status.message;
    const Study& s = r.value;
    EXPECT_FALSE(s.title.empty());
    ASSERT_TRUE(s.parametrization) << name;
    EXPECT_TRUE(s.maps && s.tiers && s.counterexample && s.resonance && s.gpu_validation) << name;
  }
  const Study mdn = load_study((kAnalysis / "mdn-paper.toml").string()).value;
  EXPECT_EQ(mdn.parametrization->kind, Parametrization::kMdn);
  ASSERT_EQ(mdn.parametrization->configs.size(), 2u);
  EXPECT_EQ(mdn.parametrization->configs[0].min_log_mu, -2);  // 400M
  EXPECT_EQ(mdn.parametrization->configs[1].min_log_mu, -1);  // 1.3B
  EXPECT_EQ(load_study((kAnalysis / "unconstrained.toml").string()).value.parametrization->kind,
            Parametrization::kMdnUnconstrained);
  EXPECT_EQ(load_study((kAnalysis / "gdn.toml").string()).value.parametrization->kind, Parametrization::kGdn);
  // Relative result paths are anchored at the spec's folder.
  EXPECT_EQ(mdn.gpu_validation->results,
            (kAnalysis / "../reports/validate/validate-1000.csv").lexically_normal().string());
}

TEST(Study, SyntheticModelSpecLoadsItsData) {
  auto r = load_study((kAnalysis / "synthetic-model.toml").string());
  ASSERT_TRUE(r.is_ok()) << r.status.message;
  ASSERT_EQ(r.value.gate_dumps.size(), 1u);
  ASSERT_EQ(r.value.checkpoints.size(), 1u);
  // Labelled as what it is.
  EXPECT_NE(r.value.gate_dumps[0].note.find("SYNTHETIC"), std::string::npos);
  EXPECT_NE(r.value.checkpoints[0].note.find("SYNTHETIC"), std::string::npos);
  EXPECT_NE(r.value.summary.find("SYNTHETIC"), std::string::npos);
  const Study mdn = load_study((kAnalysis / "mdn-paper.toml").string()).value;
  EXPECT_TRUE(mdn.chunk_safety);
}

TEST(Study, ValuesAreRead) {
  const std::string text = std::string(kMinimal) + R"(seed = 7
[parametrization]
kind = "mdn"
configs = ["400M", { base = "1.3B", name = "big", min_log_mu = -1.5 }]
samples = 10
[[gate_set]]
name = "g"
log_alpha = -0.01
beta = 0.5
mu = 0.9
eta = 1
[maps]
alpha = [0.5, 1]
resolution = 11
panels = [{ log_mu = -0.1, eta = 1.5 }]
[resonance]
gate_sets = ["g", "worst"]
)";
  // seed belongs to [study]: the minimal header is followed directly by it.
  auto r = parse_study(text, "x.toml");
  ASSERT_TRUE(r.is_ok()) << r.status.message;
  const Study& s = r.value;
  EXPECT_EQ(s.seed, 7u);
  EXPECT_EQ(s.parametrization->configs[1].name, "big");
  EXPECT_EQ(s.parametrization->configs[1].min_log_mu, -1.5);
  EXPECT_EQ(s.parametrization->configs[1].head_dim, 256);  // from the 1.3B base
  EXPECT_EQ(s.parametrization->samples, 10);
  ASSERT_EQ(s.gate_sets.size(), 1u);
  EXPECT_EQ(s.gate_sets[0].gates.log_alpha, -0.01);  // kept exact
  EXPECT_NEAR(s.gate_sets[0].gates.alpha, std::exp(-0.01), 1e-16);
  EXPECT_EQ(s.maps->alpha_lo, 0.5);
  EXPECT_EQ(s.maps->beta_hi, 1.0);  // default
  EXPECT_EQ(s.maps->panels[0].log_mu, -0.1);
  EXPECT_NEAR(s.maps->panels[0].mu, std::exp(-0.1), 1e-16);
  EXPECT_EQ(s.resonance->gate_sets.size(), 2u);
}

TEST(Study, UnknownKeysNameFileLineAndKey) {
  expect_error("[maps]\nresolutoin = 3\npanels = [{ mu = 0.5, eta = 1 }]\n", 5, "maps.resolutoin", "unknown key");
  expect_error("colour = 1\n", 4, "study.colour", "unknown key");
  expect_error("[mapz]\nresolution = 3\n", 4, "mapz", "unknown key");
  expect_error("[maps]\npanels = [{ mu = 0.5, eta = 1, zeta = 2 }]\n", 5, "maps.panels[0].zeta", "unknown key");
}

TEST(Study, WrongTypesNameTheKey) {
  expect_error("[maps]\nresolution = \"many\"\npanels = [{ mu = 0.5, eta = 1 }]\n", 5, "maps.resolution",
               "must be an integer");
  expect_error("[maps]\nresolution = 3.5\npanels = [{ mu = 0.5, eta = 1 }]\n", 5, "maps.resolution",
               "must be an integer");
  expect_error("[maps]\npanels = [{ mu = \"high\", eta = 1 }]\n", 5, "maps.panels[0].mu", "must be a number");
  expect_error("[parametrization]\nkind = \"mdn\"\nconfigs = \"400M\"\n", 6, "parametrization.configs",
               "must be an array");
  expect_error("[maps]\npanels = 3\n", 5, "maps.panels", "must be an array");
}

TEST(Study, ImpossibleRangesNameTheKey) {
  expect_error("[maps]\nresolution = 1\npanels = [{ mu = 0.5, eta = 1 }]\n", 5, "maps.resolution", "outside");
  expect_error("[maps]\npanels = [{ mu = 1.5, eta = 1 }]\n", 5, "maps.panels[0].mu", "outside [0, 1]");
  expect_error("[maps]\npanels = [{ mu = 0.5, eta = 2.5 }]\n", 5, "maps.panels[0].eta", "outside [0, 2]");
  expect_error("[maps]\nalpha = [0.8, 0.2]\npanels = [{ mu = 0.5, eta = 1 }]\n", 5, "maps.alpha", "empty");
  expect_error("[maps]\npanels = []\n", 5, "maps.panels", "at least one");
  expect_error("[parametrization]\nkind = \"mdn\"\nconfigs = [\"400M\"]\nsamples = 0\n", 7, "parametrization.samples",
               "outside");
  expect_error("[parametrization]\nkind = \"mdn\"\nconfigs = [\"7B\"]\n", 6, "parametrization.configs[0]",
               "unknown model config");
  expect_error("[parametrization]\nkind = \"rwkv\"\nconfigs = [\"400M\"]\n", 5, "parametrization.kind");
  expect_error("[[gate_set]]\nname = \"g\"\nalpha = 0.5\nbeta = -0.1\nmu = 0.5\neta = 1\n", 7, "gate_set[0].beta",
               "outside");
  expect_error("[counterexample]\nsteps = 5\n", 5, "counterexample.steps", "outside");
  expect_error("seed = -1\n", 4, "study.seed", "outside");
  expect_error("[maps]\npanels = [{ mu = nan, eta = 1 }]\n", 5, "maps.panels[0].mu", "finite");
}

TEST(Study, MissingAndInconsistentKeys) {
  auto r = parse_study("[study]\nname = \"t\"\n", "spec.toml");
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status.message.find("'study.title'"), std::string::npos) << r.status.message;
  expect_error("[maps]\npanels = [{ mu = 0.5, log_mu = -1, eta = 1 }]\n", 5, "maps.panels[0].log_mu", "not both");
  expect_error("[resonance]\ngate_sets = [\"nope\"]\n", 5, "resonance.gate_sets[0]", "no [[gate_set]]");
  expect_error("[resonance]\ngate_sets = [\"worst\"]\n", 5, "resonance.gate_sets[0]", "[parametrization]");
  expect_error(
      "[[gate_set]]\nname = \"g\"\nalpha = 0.5\nbeta = 0.1\nmu = 0.5\neta = 1\n"
      "[[gate_set]]\nname = \"g\"\nalpha = 0.5\nbeta = 0.1\nmu = 0.5\neta = 1\n",
      11, "gate_set[1].name", "twice");
  expect_error("[study2]\n", 4, "study2");
}

TEST(Study, SyntaxErrorsGiveThePosition) {
  auto r = parse_study("[study]\nname = \"t\"\ntitle = \n", "bad.toml");
  ASSERT_FALSE(r.is_ok());
  EXPECT_TRUE(r.status.message.starts_with("bad.toml:3:")) << r.status.message;
  EXPECT_NE(r.status.message.find("TOML syntax error"), std::string::npos);
}

TEST(Study, MissingFileIsAnIoError) {
  auto r = load_study("/nonexistent/spec.toml");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status.code, Code::kIoError);
  EXPECT_NE(r.status.message.find("/nonexistent/spec.toml"), std::string::npos);
}

TEST(Study, QuickVersionCapsEverySize) {
  const Study s = load_study((kAnalysis / "mdn-paper.toml").string()).value;
  const Study q = quick_version(s);
  EXPECT_LE(q.maps->resolution, 25);
  EXPECT_LE(q.tiers->resolution, 25);
  EXPECT_LE(q.parametrization->samples, 400);
  EXPECT_LE(q.counterexample->steps, 120);
  EXPECT_LE(q.resonance->angles, 61);
  // The same sections and panels, only coarser.
  EXPECT_EQ(q.maps->panels.size(), s.maps->panels.size());
  EXPECT_EQ(q.gate_sets.size(), s.gate_sets.size());
}

// ---- [[gate_dump]], [[checkpoint]], [chunk_safety] ----

namespace fs = std::filesystem;

// A folder with a spec's data: dump.csv (3 tokens), bad.csv (alpha = 2),
// ck/ (a 2-layer x 2-head checkpoint) and broken.safetensors (not one).
const fs::path& model_fixtures() {
  static const fs::path d = [] {
    const fs::path dir = fs::temp_directory_path() / ("mdnstab_study_" + std::to_string(getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir / "data" / "ck");
    std::ofstream(dir / "data" / "dump.csv") << "alpha,beta,mu,eta\n0.9,0.1,0.5,1\n0.99,0.9,0.99,1.9\n0.5,0.5,0.5,0.5\n";
    std::ofstream(dir / "data" / "bad.csv") << "alpha,beta,mu,eta\n2,0.1,0.5,1\n";
    std::ofstream(dir / "data" / "broken.safetensors") << "not a safetensors file";
    std::vector<TensorData> t;
    for (int i = 0; i < 2; ++i)
      for (const char* k : {"A_log", "Mu_log", "dt_bias", "mu_bias", "log_factor"})
        t.push_back({"model.layers." + std::to_string(i) + ".attn." + k, "F32", {2}, {0.5, -0.25}});
    EXPECT_TRUE(write_safetensors((dir / "data" / "ck" / "model.safetensors").string(), t).is_ok());
    return dir;
  }();
  return d;
}

Result<Study> parse_here(const std::string& body) {
  return parse_study(std::string(kMinimal) + body, (model_fixtures() / "spec.toml").string());
}

// As expect_error, for a spec that lives in the fixture folder.
void expect_model_error(const std::string& body, int line, const std::string& key, const std::string& why) {
  auto r = parse_here(body);
  ASSERT_FALSE(r.is_ok()) << body;
  const std::string& m = r.status.message;
  const std::string prefix = (model_fixtures() / "spec.toml").string() + ":" + std::to_string(line) + ":";
  EXPECT_TRUE(m.starts_with(prefix)) << "expected " << prefix << " in: " << m;
  EXPECT_NE(m.find("'" + key + "'"), std::string::npos) << "key " << key << " not named in: " << m;
  EXPECT_NE(m.find(why), std::string::npos) << m;
  EXPECT_EQ(m.find('\n'), std::string::npos) << "one line: " << m;
}

TEST(Study, GateDumpsAndCheckpointsAreRead) {
  auto r = parse_here(R"([[gate_dump]]
name = "d"
path = "data/dump.csv"
note = "synthetic"
[[checkpoint]]
name = "c"
path = "data/ck"
model = "1.3B"
samples = 50
[chunk_safety]
chunk = 16
precision = "bf16"
resolution = 5
log_alpha = [-4, 0]
steps = 64
dk = 8
dv = 8
)");
  ASSERT_TRUE(r.is_ok()) << r.status.message;
  const Study& s = r.value;
  ASSERT_EQ(s.gate_dumps.size(), 1u);
  EXPECT_EQ(s.gate_dumps[0].name, "d");
  // Relative to the spec's folder, like the GPU results.
  EXPECT_EQ(s.gate_dumps[0].path, (model_fixtures() / "data" / "dump.csv").string());
  EXPECT_EQ(s.gate_dumps[0].note, "synthetic");
  ASSERT_EQ(s.checkpoints.size(), 1u);
  EXPECT_EQ(s.checkpoints[0].path, (model_fixtures() / "data" / "ck").string());
  EXPECT_EQ(s.checkpoints[0].model, "1.3B");
  EXPECT_EQ(s.checkpoints[0].samples, 50);
  EXPECT_EQ(s.checkpoints[0].param, Parametrization::kMdn);
  ASSERT_TRUE(s.chunk_safety);
  EXPECT_EQ(s.chunk_safety->chunk, 16);
  EXPECT_EQ(s.chunk_safety->precision, Precision::kBf16);
  EXPECT_EQ(s.chunk_safety->log_alpha_lo, -4);
  EXPECT_EQ(s.chunk_safety->log_mu_lo, -8);  // default
  const ChunkMapSpec m = chunk_map_spec(*s.chunk_safety, s.p_scale);
  ASSERT_EQ(m.axes.size(), 2u);
  EXPECT_EQ(m.axes[0].name, "log_alpha");
  EXPECT_EQ(m.axes[1].n, 5);
  EXPECT_EQ(m.steps, 64);
  const Study q = quick_version(s);
  EXPECT_LE(q.checkpoints[0].samples, 200);
  EXPECT_LE(q.chunk_safety->resolution, 13);
  EXPECT_GE(q.chunk_safety->steps, q.chunk_safety->chunk);
}

TEST(Study, BadGateDumpsAndCheckpointsNameTheKey) {
  const std::string dump = "[[gate_dump]]\nname = \"d\"\n";
  expect_model_error(dump + "path = \"data/nope.csv\"\n", 6, "gate_dump[0].path", "does not exist");
  expect_model_error(dump + "path = \"data/bad.csv\"\n", 6, "gate_dump[0].path", "alpha");
  expect_model_error(dump + "path = \"data/broken.safetensors\"\n", 6, "gate_dump[0].path", "broken.safetensors");
  expect_model_error(dump + "path = 3\n", 6, "gate_dump[0].path", "must be a string");
  expect_model_error(dump + "path = \"data/dump.csv\"\ncolour = 1\n", 7, "gate_dump[0].colour", "unknown key");
  expect_model_error("[[gate_dump]]\npath = \"data/dump.csv\"\n", 4, "gate_dump[0].name", "is required");
  expect_model_error(dump + "path = \"data/dump.csv\"\n[[checkpoint]]\nname = \"d\"\npath = \"data/ck\"\n", 8,
                     "checkpoint[0].name", "names another");
  const std::string ck = "[[checkpoint]]\nname = \"c\"\n";
  expect_model_error(ck + "path = \"data/missing\"\n", 6, "checkpoint[0].path", "does not exist");
  expect_model_error(ck + "path = \"data/dump.csv\"\n", 6, "checkpoint[0].path", "dump.csv");
  expect_model_error(ck + "path = \"data/ck\"\nmodel = \"7B\"\n", 7, "checkpoint[0].model", "7B");
  expect_model_error(ck + "path = \"data/ck\"\nsamples = 0\n", 7, "checkpoint[0].samples", "outside");
  expect_model_error(ck + "path = \"data/ck\"\nparam = \"rwkv\"\n", 7, "checkpoint[0].param", "rwkv");
  expect_model_error("[checkpoint]\nname = \"c\"\n", 4, "checkpoint", "must be an array");
}

TEST(Study, BadChunkSafetyNamesTheKey) {
  expect_error("[chunk_safety]\nprecision = \"fp8\"\n", 5, "chunk_safety.precision", "fp8");
  expect_error("[chunk_safety]\nchunk = 0\n", 5, "chunk_safety.chunk", "outside");
  expect_error("[chunk_safety]\nchunk = \"big\"\n", 5, "chunk_safety.chunk", "must be an integer");
  expect_error("[chunk_safety]\nchunk = 128\nsteps = 64\n", 5, "chunk_safety.chunk", "larger than the sequence");
  expect_error("[chunk_safety]\nresolution = 1\n", 5, "chunk_safety.resolution", "outside");
  expect_error("[chunk_safety]\nlog_mu = [-1, -2]\n", 5, "chunk_safety.log_mu", "empty");
  expect_error("[chunk_safety]\nlog_alpha = [-1000, 0]\n", 5, "chunk_safety.log_alpha[0]", "-700");
  expect_error("[chunk_safety]\nbeta = 1.5\n", 5, "chunk_safety.beta", "outside");
  expect_error("[chunk_safety]\ntolerance = 0\n", 5, "chunk_safety.tolerance", "> 0");
  expect_error("[chunk_safety]\nprecsion = \"fp32\"\n", 5, "chunk_safety.precsion", "unknown key");
  // Estimated far past the hour a report may spend on it.
  expect_error("[chunk_safety]\nresolution = 201\nsteps = 20000\ndk = 256\ndv = 256\n", 4, "chunk_safety", "hour");
}

}  // namespace
}  // namespace mdnstab
