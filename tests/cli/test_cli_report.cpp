// End-to-end tests of `mdnstab report`: a --quick report has every file it
// names; a spec error names file, line and key and writes nothing; an
// existing folder is replaced only with --force (and only if it is a report);
// an interrupted run leaves neither the report nor its temporary folder.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "run_cli.hpp"

namespace mdnstab::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kRoot = fs::path(__FILE__).parent_path().parent_path().parent_path();
const fs::path kSpec = kRoot / "analysis" / "mdn-paper.toml";

// Leftovers of a report at `out`: the folder itself or any DIR.tmp-* / DIR.old-*.
std::vector<std::string> leftovers(const fs::path& out) {
  std::vector<std::string> found;
  for (const auto& e : fs::directory_iterator(out.parent_path())) {
    const std::string n = e.path().filename().string();
    if (n == out.filename().string() || n.starts_with(out.filename().string() + ".")) found.push_back(n);
  }
  return found;
}

void write(const fs::path& p, const std::string& s) {
  std::ofstream f(p);
  f << s;
}

// %.3g, as the report writes three significant digits.
std::string fmt_3g(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

// One quick report shared by the tests that only read it.
const fs::path& quick_report() {
  static const fs::path out = [] {
    const fs::path d = scratch_dir("report_quick") / "mdn-paper";
    auto r = run_cli("--format json report " + kSpec.string() + " --quick --out " + d.string());
    EXPECT_EQ(r.code, 0) << r.err;
    return d;
  }();
  return out;
}

TEST(CliReport, QuickReportHasEveryFileItNames) {
  const fs::path& d = quick_report();
  ASSERT_TRUE(fs::is_regular_file(d / "index.md"));
  ASSERT_TRUE(fs::is_regular_file(d / "index.html"));
  const std::string html = slurp(d / "index.html");
  const std::string md = slurp(d / "index.md");
  // Every local reference in either page exists and is not empty.
  std::set<std::string> refs;
  const std::regex href("(?:src|href)=\"([^\"#]+)\"");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), href); it != std::sregex_iterator(); ++it)
    refs.insert((*it)[1]);
  const std::regex mdlink("\\]\\(((?:figures|data)/[^)]+)\\)");
  for (auto it = std::sregex_iterator(md.begin(), md.end(), mdlink); it != std::sregex_iterator(); ++it)
    refs.insert((*it)[1]);
  ASSERT_GT(refs.size(), 20u);
  for (const std::string& r : refs) {
    EXPECT_FALSE(r.starts_with("http")) << r;
    ASSERT_TRUE(fs::is_regular_file(d / r)) << r;
    EXPECT_GT(fs::file_size(d / r), 0u) << r;
  }
  // The figures the issue asks for, each as SVG and PNG from a gnuplot script.
  for (const char* f : {"regime_map", "frozen_rho", "damping_ratio", "natural_frequency", "tiers_map",
                        "reachable_gates", "counterexample_growth", "resonance_scan", "chunk_safety_map"}) {
    for (const char* ext : {".svg", ".png", ".gp"})
      EXPECT_TRUE(fs::is_regular_file(d / "figures" / (std::string(f) + ext))) << f << ext;
    EXPECT_NE(html.find(std::string("figures/") + f + ".svg"), std::string::npos) << f;
  }
  // PNG signature and SVG root: real images, not placeholders.
  const std::string png = slurp(d / "figures" / "regime_map.png");
  EXPECT_EQ(png.substr(1, 3), "PNG");
  EXPECT_NE(slurp(d / "figures" / "regime_map.svg").find("<svg"), std::string::npos);
  // No temporary files left inside.
  for (const auto& e : fs::recursive_directory_iterator(d)) {
    const std::string n = e.path().filename().string();
    EXPECT_EQ(n.find(".tmp"), std::string::npos) << n;
    EXPECT_FALSE(n.starts_with(".")) << n;
  }
}

TEST(CliReport, ProvenanceAndHonestGpuSection) {
  const fs::path& d = quick_report();
  const json p = json::parse(slurp(d / "data" / "provenance.json"));
  for (const char* k : {"tool", "build_commit", "source_commit", "command", "seeds", "date", "cpu", "gpu", "gnuplot"})
    EXPECT_TRUE(p.contains(k)) << k;
  EXPECT_NE(p["command"].get<std::string>().find("report"), std::string::npos);
  EXPECT_NE(p["command"].get<std::string>().find("--quick"), std::string::npos);
  EXPECT_TRUE(p["seeds"].contains("reachable.400M"));
  const std::string md = slurp(d / "index.md");
  EXPECT_NE(md.find("## Provenance"), std::string::npos);
  EXPECT_NE(md.find(p["date"].get<std::string>()), std::string::npos);
  // The spec as run travels with the report.
  EXPECT_EQ(slurp(d / "data" / "study.toml"), slurp(kSpec));
  // No saved GPU results exist for this spec in the tree: the section says it was not run, with no numbers.
  const json f = json::parse(slurp(d / "data" / "findings.json"));
  if (!fs::exists(kRoot / "reports" / "validate" / "validate-1000.csv")) {
    EXPECT_EQ(f["gpu_validation.run"], false);
    EXPECT_NE(md.find("Not run:"), std::string::npos);
    EXPECT_FALSE(fs::exists(d / "figures" / "gpu_validation.svg"));
  }
}

TEST(CliReport, JsonSummary) {
  const fs::path d = scratch_dir("report_json") / "r";
  auto r = run_cli("--format json report " + kSpec.string() + " --quick --out " + d.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["out"], d.string());
  EXPECT_EQ(j["quick"], true);
  EXPECT_GE(j["figures"].size(), 8u);
  EXPECT_GE(j["sections"].size(), 7u);
  EXPECT_FALSE(j["highlights"].empty());
  EXPECT_LT(j["seconds"].get<double>(), 60.0);
}

// A spec with one small section: a report in well under a second.
fs::path tiny_spec(const fs::path& dir) {
  const fs::path p = dir / "tiny.toml";
  write(p, "[study]\nname = \"tiny\"\ntitle = \"Tiny\"\n[maps]\nresolution = 5\npanels = [{ mu = 0.9, eta = 1.5 }]\n");
  return p;
}

TEST(CliReport, NeverOverwritesWithoutForce) {
  const fs::path base = scratch_dir("report_force");
  const fs::path spec = tiny_spec(base);
  const fs::path d = base / "r";
  fs::create_directories(d);
  write(d / "keep.txt", "mine");
  auto r = run_cli("report " + spec.string() + " --quick --out " + d.string());
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find(d.string()), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--force"), std::string::npos) << r.err;
  EXPECT_EQ(slurp(d / "keep.txt"), "mine");
  // --force does not replace a folder that is not a report either.
  r = run_cli("report " + spec.string() + " --quick --force --out " + d.string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("not an mdnstab report"), std::string::npos) << r.err;
  EXPECT_EQ(slurp(d / "keep.txt"), "mine");
  EXPECT_EQ(leftovers(d), std::vector<std::string>{"r"});
  // A previous report is replaced with --force, and only then.
  const fs::path rep = base / "rep";
  ASSERT_EQ(run_cli("report " + spec.string() + " --quick --out " + rep.string()).code, 0);
  write(rep / "data" / "marker", "old");
  r = run_cli("report " + spec.string() + " --quick --out " + rep.string());
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(fs::exists(rep / "data" / "marker"));
  r = run_cli("report " + spec.string() + " --quick --force --out " + rep.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(fs::exists(rep / "data" / "marker"));
  EXPECT_TRUE(fs::exists(rep / "index.html"));
  EXPECT_EQ(leftovers(rep), std::vector<std::string>{"rep"});
}

TEST(CliReport, SavedGpuResultsAreReusedAndSaidSo) {
  const fs::path base = scratch_dir("report_gpu");
  // The format of `mdnstab validate --csv` (the columns the report reads, among others) and its summary.
  write(base / "saved.csv",
        "row,label,gates,alpha,beta,mu,eta,verdict,cpu_exponent,gpu_exponent,witness_rate,witness_expected,agrees\n"
        "0,,1,0.99,0.9,0.99,1.9,refuted,0.14,0.15,0.49,0.49,1\n"
        "1,,1,0.9,0.1,0.5,1,certified,-0.105,-0.105,-0.1053605,-0.1053605,1\n");
  write(base / "saved.summary.json",
        R"J({"provenance": {"device": "NVIDIA H100 80GB HBM3, 132 SMs (x1)", "date": "2026-11-24", "git_commit": "abc"}})J");
  write(base / "spec.toml",
        "[study]\nname = \"g\"\ntitle = \"G\"\n[[gate_set]]\nname = \"x\"\nalpha = 0.99\nbeta = 0.9\n"
        "mu = 0.99\neta = 1.9\n[counterexample]\nsteps = 50\ndk = 4\nrandom_keys = 1\n"
        "[gpu_validation]\nresults = \"saved.csv\"\n");
  const fs::path out = base / "r";
  auto r = run_cli("report " + (base / "spec.toml").string() + " --quick --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string md = slurp(out / "index.md");
  EXPECT_NE(md.find("reuses the saved results of `mdnstab validate` from"), std::string::npos) << md;
  EXPECT_NE(md.find("NVIDIA H100 80GB HBM3"), std::string::npos);
  EXPECT_TRUE(fs::exists(out / "figures" / "gpu_validation.svg"));
  // The worst relative difference of the random-key growth, stated in the text: e^0.15 / e^0.14 - 1.
  const json f = json::parse(slurp(out / "data" / "findings.json"));
  const double expected = std::exp(0.15 - 0.14) - 1;
  EXPECT_NEAR(f["gpu_validation.worst_relative_error"]["value"].get<double>(), expected, 1e-12);
  EXPECT_NE(md.find(fmt_3g(expected)), std::string::npos);
  EXPECT_EQ(f["gpu_validation.fraction_agree"]["value"].get<double>(), 1.0);
  // Without a parametrization the counterexample is the refuted gate set.
  EXPECT_NE(md.find("gate set x"), std::string::npos);
  // A broken results file is bad input: exit 2 naming it, nothing written.
  write(base / "saved.csv", "row,alpha\n0,0.5\n");
  r = run_cli("report " + (base / "spec.toml").string() + " --quick --out " + (base / "r2").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("saved.csv"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("cpu_exponent"), std::string::npos) << r.err;
  EXPECT_TRUE(leftovers(base / "r2").empty());
}

TEST(CliReport, SpecErrorsNameFileLineKeyAndWriteNothing) {
  const fs::path base = scratch_dir("report_bad");
  struct Bad {
    std::string body;
    int line;
    std::string key;
  };
  const std::string head = "[study]\nname = \"t\"\ntitle = \"T\"\n";
  for (const Bad& b : {Bad{"[maps]\nresolutoin = 5\npanels = [{ mu = 0.5, eta = 1 }]\n", 5, "maps.resolutoin"},
                       Bad{"[maps]\nresolution = \"fine\"\npanels = [{ mu = 0.5, eta = 1 }]\n", 5, "maps.resolution"},
                       Bad{"[tiers]\npanels = [{ mu = 0.5, eta = 7 }]\n", 5, "tiers.panels[0].eta"}}) {
    const fs::path spec = base / "bad.toml";
    write(spec, head + b.body);
    const fs::path out = base / "out";
    auto r = run_cli("report " + spec.string() + " --out " + out.string());
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find(spec.string() + ":" + std::to_string(b.line) + ":"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("'" + b.key + "'"), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty());
    EXPECT_TRUE(leftovers(out).empty()) << "left " << leftovers(out).size();
  }
  auto r = run_cli("report " + (base / "missing.toml").string() + " --out " + (base / "o").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("missing.toml"), std::string::npos);
  r = run_cli("report " + kSpec.string());
  EXPECT_EQ(r.code, 2) << "--out is required";
}

TEST(CliReport, ModelGatesAndChunkSafetySections) {
  // The synthetic example: a gate dump and a checkpoint, labelled as synthetic in the report.
  const fs::path d = scratch_dir("report_models") / "synthetic";
  auto r = run_cli("--format json report " + (kRoot / "analysis" / "synthetic-model.toml").string() + " --quick --out " +
                   d.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const json j = json::parse(r.out);
  std::set<std::string> sections;
  for (const auto& s : j["sections"]) sections.insert(s.get<std::string>());
  EXPECT_TRUE(sections.count("Gate dump `layer0`")) << r.out;
  EXPECT_TRUE(sections.count("Checkpoint `init`")) << r.out;
  const std::string md = slurp(d / "index.md");
  EXPECT_NE(md.find("SYNTHETIC"), std::string::npos);
  for (const char* f : {"data/dump_layer0_tokens.csv", "data/dump_layer0_heads.csv", "data/checkpoint_init_heads.csv",
                        "figures/dump_layer0.svg", "figures/checkpoint_init.png"})
    EXPECT_TRUE(fs::is_regular_file(d / f)) << f;
  const json f = json::parse(slurp(d / "data" / "findings.json"));
  // Fractions of the 2 x 128 x 4 tokens add up to one (none failed).
  const double sum = f["dump.layer0.fraction_certified"]["value"].get<double>() +
                     f["dump.layer0.fraction_undecided"]["value"].get<double>() +
                     f["dump.layer0.fraction_refuted"]["value"].get<double>();
  EXPECT_NEAR(sum, 1.0, 1e-12);
  // The default study's quick report carries the chunk-safety section.
  const std::string q = slurp(quick_report() / "index.md");
  EXPECT_NE(q.find("## Chunkwise kernel safety"), std::string::npos);
  EXPECT_TRUE(fs::is_regular_file(quick_report() / "data" / "chunk_map.csv"));
}

// 400M and 1.3B differ only in the mu clamp: where their samples get the same
// verdicts, the report says so once, with the count of samples whose mu differs.
TEST(CliReport, IdenticalConfigsAreSaidOnceWithTheMuCount) {
  const fs::path& d = quick_report();
  auto column = [](const fs::path& p, const std::string& name) {
    std::ifstream f(p);
    std::string line;
    std::getline(f, line);
    std::vector<std::string> head;
    std::stringstream hs(line);
    for (std::string c; std::getline(hs, c, ',');) head.push_back(c);
    const size_t k = size_t(std::find(head.begin(), head.end(), name) - head.begin());
    std::vector<std::string> out;
    while (std::getline(f, line)) {
      std::stringstream ls(line);
      std::string c;
      for (size_t i = 0; i <= k; ++i) std::getline(ls, c, ',');
      out.push_back(c);
    }
    return out;
  };
  const auto mu4 = column(d / "data" / "reachable_400M.csv", "mu");
  const auto mu13 = column(d / "data" / "reachable_1.3B.csv", "mu");
  const auto v4 = column(d / "data" / "reachable_400M.csv", "verdict");
  const auto v13 = column(d / "data" / "reachable_1.3B.csv", "verdict");
  ASSERT_EQ(mu4.size(), mu13.size());
  ASSERT_GT(mu4.size(), 0u);
  long differ = 0;
  for (size_t i = 0; i < mu4.size(); ++i) differ += mu4[i] != mu13[i];
  EXPECT_GT(differ, 0);  // the clamp does change mu: the configs are not the same gates
  const std::string md = slurp(d / "index.md");
  const json f = json::parse(slurp(d / "data" / "findings.json"));
  if (v4 == v13) {
    EXPECT_DOUBLE_EQ(f["reachable.1.3B.fraction_mu_differs"]["value"].get<double>(), double(differ) / mu4.size());
    EXPECT_NE(md.find("the " + std::to_string(differ) + " samples ("), std::string::npos) << differ;
    // Said once: no second full sentence for 1.3B.
    auto count = [&](const std::string& s) {
      long n = 0;
      for (size_t p = md.find(s); p != std::string::npos; p = md.find(s, p + 1)) ++n;
      return n;
    };
    EXPECT_EQ(count("identical to 400M"), 1);
    EXPECT_EQ(count("-1): of "), 0);
  } else {
    EXPECT_FALSE(f.contains("reachable.1.3B.fraction_mu_differs"));
  }
}

TEST(CliReport, BadGateDumpPathNamesFileLineKeyAndWritesNothing) {
  const fs::path base = scratch_dir("report_bad_dump");
  const fs::path spec = base / "dump.toml";
  write(spec, "[study]\nname = \"t\"\ntitle = \"T\"\n[[gate_dump]]\nname = \"d\"\npath = \"no/such.csv\"\n");
  const fs::path out = base / "out";
  auto r = run_cli("report " + spec.string() + " --out " + out.string());
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find(spec.string() + ":6:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("'gate_dump[0].path'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("no/such.csv"), std::string::npos) << r.err;
  EXPECT_TRUE(leftovers(out).empty());
  write(spec, "[study]\nname = \"t\"\ntitle = \"T\"\n[chunk_safety]\nprecision = \"fp16\"\n");
  r = run_cli("report " + spec.string() + " --out " + out.string());
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find(spec.string() + ":5:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("'chunk_safety.precision'"), std::string::npos) << r.err;
  EXPECT_TRUE(leftovers(out).empty());
}

TEST(CliReport, InterruptedRunLeavesNothing) {
  const fs::path base = scratch_dir("report_interrupt");
  const fs::path out = base / "r";
  // The full (not --quick) study runs for several seconds: interrupt it midway.
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    dup2(devnull, 2);
    execl(MDNSTAB_BIN, MDNSTAB_BIN, "report", kSpec.c_str(), "--out", out.c_str(), nullptr);
    _exit(127);
  }
  // Wait until the temporary folder exists (the work has started), then interrupt.
  bool started = false;
  for (int i = 0; i < 400 && !started; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    for (const std::string& n : leftovers(out)) started = started || n.starts_with("r.tmp-");
  }
  ASSERT_TRUE(started) << "no temporary folder appeared";
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  kill(pid, SIGINT);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  // It died of the signal (it had not finished), and left nothing behind.
  ASSERT_TRUE(WIFSIGNALED(status)) << "exit status " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), SIGINT);
  EXPECT_TRUE(leftovers(out).empty()) << leftovers(out).front();
}

}  // namespace
}  // namespace mdnstab::test
