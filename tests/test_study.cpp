// Study spec loading (src/mdnstab/study.hpp): the shipped specs load; every
// kind of bad spec fails naming file, line, column and key; quick_version caps.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <regex>

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
  const std::regex pos("^spec\\.toml:([0-9]+):([0-9]+): ");
  std::smatch mt;
  ASSERT_TRUE(std::regex_search(m, mt, pos)) << m;
  EXPECT_EQ(std::stoi(mt[1]), line) << m;
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

}  // namespace
}  // namespace mdnstab
