// End-to-end tests of `chunk-safety` (grid mode) and of the chunk_safe metric of
// `sweep`: outputs, and every bad input answered with exit code 2, one line
// naming the value, and no file left.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "run_cli.hpp"

namespace mdnstab::test {
namespace {

using nlohmann::json;

// A small problem: fast, and still straddling the fp32 boundary at C = 16.
const std::string kSmall = " --steps 64 --dk 8 --dv 8 --chunk 16";

TEST(CliChunkSafety, GridWritesCsvAndJsonSummary) {
  const auto d = scratch_dir("chunk_ok");
  const auto out = d / "map.csv";
  auto r = run_cli("--format json chunk-safety --precision fp32 --axis log_alpha=-2.03:-0.01:9 "
                   "--axis log_mu=-2.03:-0.01:7" + kSmall + " --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string csv = slurp(out);
  EXPECT_EQ(count_lines(csv), 1 + 9 * 7);
  const std::string header = csv.substr(0, csv.find('\n'));
  for (const char* col : {"log_alpha", "log_mu", "rel_error", "finite", "broken", "predicted_error",
                          "log_cancellation", "max_exponent", "rule_safe", "rule_agrees"})
    EXPECT_NE(header.find(col), std::string::npos) << col;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["points"], 63);
  EXPECT_EQ(j["judged"], 63);
  EXPECT_EQ(j["chunk"], 16);
  EXPECT_EQ(j["precision"], "fp32");
  // alpha > mu by up to 2 per token over 16 tokens: a broken corner; alpha <= mu: fine.
  EXPECT_GT(j["broken"].get<int>(), 0);
  EXPECT_LT(j["broken"].get<int>(), 63);
  EXPECT_GE(j["rule_agreement"].get<double>(), 0.9);
  EXPECT_EQ(j["far_misses"], 0);
  EXPECT_TRUE(j["broken_region"].contains("log_alpha"));
  EXPECT_EQ(count_entries(d), 1);
  // The CSV rows agree with the summary.
  std::istringstream s(csv);
  std::string line;
  std::getline(s, line);
  int broken = 0;
  while (std::getline(s, line)) {
    int col = 0;
    size_t p = 0;
    for (; col < 10; ++col) p = line.find(',', p) + 1;
    broken += line[p] == '1';
  }
  EXPECT_EQ(broken, j["broken"].get<int>());
}

// A map where the rule's model fails (beta = 0.9, tf32, alpha ~ mu ~ 1: the recurrence
// grows under changing keys) says so in its table; a map where it holds does not.
TEST(CliChunkSafety, WarnsWhereTheRuleMissesByADecade) {
  // bf16 over a wide box: at log_alpha = -6, log_mu = -3 the rule predicts 0.36 (its
  // u sigma term) where the emulation errs by 8e-3, a miss by more than a decade.
  const std::string near = "chunk-safety --axis log_alpha=-8:0:9 --axis log_mu=-8:0:9 --beta 0.9 --chunk 4 "
                           "--precision bf16 --steps 512 --dk 16 --dv 16";
  auto j = run_cli("--format json " + near);
  ASSERT_EQ(j.code, 0) << j.err;
  ASSERT_GT(json::parse(j.out)["far_misses"].get<int>(), 0);
  auto t = run_cli(near);
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_NE(t.out.find("warning: the rule's model does not hold"), std::string::npos) << t.out;
  const std::string fine = "chunk-safety --axis log_alpha=-3:0:9 --axis log_mu=-3:0:7 --chunk 16 --steps 256 --dk 8 --dv 8";
  j = run_cli("--format json " + fine);
  ASSERT_EQ(json::parse(j.out)["far_misses"].get<int>(), 0);
  t = run_cli(fine);
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_EQ(t.out.find("warning"), std::string::npos) << t.out;
}

TEST(CliChunkSafety, TableShowsTheMeasuredCasesAndTheRule) {
  // DESIGN.md section 5's three cases on one axis (log_mu = -1 fixed, and -2).
  auto r = run_cli("chunk-safety --precision fp32 --axis log_alpha=-1:-0.5:2 --fix log_mu=-1 --steps 256 --chunk 64");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("broken (error > 0.01 or not finite): 1 of 2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rule agrees on 2 of 2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("time:"), std::string::npos);
  r = run_cli("--format json chunk-safety --precision fp32 --axis log_alpha=-0.01:-0.01:1 --fix log_mu=-2 "
              "--steps 256 --chunk 64");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["nonfinite"], 1);
}

TEST(CliChunkSafety, BetaAndEtaDefaultsAndAxes) {
  auto r = run_cli("--format json chunk-safety --axis beta=0.05:0.5:3 --fix log_alpha=-0.5 --fix log_mu=-1 --eta 1.5" +
                   kSmall);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["points"], 3);
  r = run_cli("chunk-safety --axis log_alpha=-1:0:3 --fix log_mu=-1 --precision bf16" + kSmall);
  EXPECT_EQ(r.code, 0) << r.err;
  r = run_cli("chunk-safety --axis alpha=0.5:1:3 --axis mu=0.5:1:3 --precision tf32 --p-scale one" + kSmall);
  EXPECT_EQ(r.code, 0) << r.err;
}

TEST(CliChunkSafety, BadInputExitsTwoAndLeavesNoFile) {
  const auto d = scratch_dir("chunk_bad");
  const std::string out = " --out " + (d / "x.csv").string();
  const std::string grid = " --axis log_alpha=-1:0:3 --axis log_mu=-1:0:3";
  expect_bad("chunk-safety" + grid + " --chunk 0 --steps 64" + out, "C = 0");
  expect_bad("chunk-safety" + grid + " --chunk 128 --steps 64" + out, "larger than the sequence");
  expect_bad("chunk-safety" + grid + " --precision fp16" + out, "fp16");
  expect_bad("chunk-safety --axis log_alpha=-1:0.5:3 --axis log_mu=-1:0:3" + out, "log_alpha");
  expect_bad("chunk-safety" + grid + " --beta 1.5" + out, "beta");
  expect_bad("chunk-safety" + grid + " --eta nan" + out, "eta");
  expect_bad("chunk-safety" + grid + " --beta x" + out, "beta");
  expect_bad("chunk-safety --axis log_alpha=-1:0:3 --axis log_mu=-1:0:3 --axis beta=0:1:2" + out, "axes");
  expect_bad("chunk-safety --axis log_alpha=-1:0:3 --axis alpha=0:1:3" + out, "alpha");
  expect_bad("chunk-safety --axis log_alpha=-1:0:3" + out, "mu");
  expect_bad("chunk-safety --axis log_alpha=-1:0:3 --fix mu=2" + out, "mu");
  expect_bad("chunk-safety" + grid + " --dk 0" + out, "--dk");
  expect_bad("chunk-safety" + grid + " --tolerance -1" + out, "--tolerance");
  expect_bad("chunk-safety" + grid + " --out /nonexistent/dir/x.csv", "/nonexistent");
  // Days of work and more memory than there is: refused up front, with the estimate.
  expect_bad("chunk-safety --axis log_alpha=-1:0:3000 --axis log_mu=-1:0:3000 --steps 8192" + out, "hours");
  expect_bad("chunk-safety" + grid + " --steps 16000000 --dk 4096 --dv 4096" + out, "GB");
  EXPECT_EQ(count_entries(d), 0);
}

TEST(CliSweep, ChunkSafeMetricIsTheRulesVerdict) {
  const auto d = scratch_dir("sweep_chunk");
  const auto out = d / "s.csv";
  auto r = run_cli("sweep --axis log_alpha=-1:-0.5:2 --fix log_mu=-1 --fix beta=0.1 --fix eta=1 --metrics chunk_safe "
                   "--chunk 64 --precision fp32 --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string csv = slurp(out);
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "alpha,beta,mu,eta,log_alpha,log_mu,chunk_safe,chunk_predicted_error");
  std::istringstream s(csv);
  std::string header, first, second;
  std::getline(s, header), std::getline(s, first), std::getline(s, second);
  auto safe_col = [](const std::string& l) {
    size_t p = 0;
    for (int i = 0; i < 6; ++i) p = l.find(',', p) + 1;
    return l[p];
  };
  EXPECT_EQ(safe_col(first), '1');   // (-1, -1): safe
  EXPECT_EQ(safe_col(second), '0');  // (-0.5, -1): broken
  // Smaller chunks make (-0.5, -1) safe: kappa = (C - 1) 0.5.
  r = run_cli("sweep --axis log_alpha=-0.5:-0.5:1 --fix log_mu=-1 --fix beta=0.1 --fix eta=1 --metrics chunk_safe "
              "--chunk 8 --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string small = slurp(out);
  EXPECT_EQ(safe_col(small.substr(small.find('\n') + 1)), '1');
  // The memory under random keys: log_alpha = log_mu = -0.1, beta = 0.9 grows in the mean
  // square by 1.053 per token with keys of 16 dimensions and contracts (0.937) with 4096:
  // in tf32 the rule calls the first unsafe at every C (the errors add up over the whole
  // sequence), the second safe; and the first safe again over 16 tokens.
  auto verdict = [&](const std::string& extra) {
    auto rr = run_cli("sweep --axis log_alpha=-0.1:-0.1:1 --fix log_mu=-0.1 --fix beta=0.9 --fix eta=1 "
                      "--metrics chunk_safe --chunk 4 --precision tf32 --out " + out.string() + extra);
    EXPECT_EQ(rr.code, 0) << rr.err;
    const std::string t = slurp(out);
    return safe_col(t.substr(t.find('\n') + 1));
  };
  EXPECT_EQ(verdict(" --chunk-dk 16"), '0');
  EXPECT_EQ(verdict(" --chunk-dk 4096"), '1');
  EXPECT_EQ(verdict(" --chunk-dk 16 --chunk-steps 16"), '1');
  EXPECT_EQ(verdict(""), '0');  // 64 dimensions, 4096 tokens
  expect_bad("sweep --axis log_alpha=-1:0:2 --fix log_mu=-1 --fix beta=0.1 --fix eta=1 --metrics chunk_safe "
             "--precision fp8",
             "fp8");
  expect_bad("sweep --axis log_alpha=-1:0:2 --fix log_mu=-1 --fix beta=0.1 --fix eta=1 --metrics chunk_safe "
             "--chunk-steps 0",
             "--chunk-steps");
  expect_bad("sweep --axis log_alpha=-1:0:2 --fix log_mu=-1 --fix beta=0.1 --fix eta=1 --metrics chunk_safe "
             "--chunk-dk 5000",
             "--chunk-dk");
  expect_bad("sweep --axis log_alpha=-1:0:2 --fix log_mu=-1 --fix beta=0.1 --fix eta=1 --metrics chunk_safe --chunk 0",
             "--chunk");
}

TEST(CliChunkSafetyParam, ParametrizationFractionsAndLargestChunk) {
  const auto d = scratch_dir("chunk_param");
  const auto out = d / "samples.csv";
  auto r = run_cli("--format json chunk-safety --param mdn --samples 2000 --chunk 64 --precision fp32 --out " +
                   out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["mode"], "parametrization");
  EXPECT_EQ(j["all"]["gates"], 2000);
  // min_log_mu = -2 at 400M: gates with alpha ~ 1 and mu = e^-2 are reachable and
  // overflow at C = 64 in fp32 (DESIGN.md section 5).
  EXPECT_GT(j["all"]["fraction_overflow"].get<double>(), 0.0);
  EXPECT_GT(j["all"]["fraction_unsafe"].get<double>(), j["all"]["fraction_overflow"].get<double>());
  EXPECT_LT(j["all"]["fraction_unsafe"].get<double>(), 1.0);
  double prev = 0;
  for (const json& c : j["all"]["by_chunk"]) {  // larger chunks are never safer
    EXPECT_GE(c["fraction_unsafe"].get<double>(), prev);
    prev = c["fraction_unsafe"].get<double>();
  }
  EXPECT_GE(j["all"]["largest_safe_chunk"].get<int>(), 1);
  EXPECT_LT(j["all"]["largest_safe_chunk"].get<int>(), 64);
  EXPECT_EQ(count_lines(slurp(out)), 1 + 2000);
  // At 1.3B min_log_mu = -1 keeps every exponent finite: 63 * 1 + log(beta) < 88.7.
  r = run_cli("--format json chunk-safety --param mdn --model 1.3B --samples 2000 --chunk 64");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["all"]["fraction_overflow"].get<double>(), 0.0);
  r = run_cli("chunk-safety --param mdn --samples 500 --chunk 32 --precision bf16");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("largest safe C"), std::string::npos);
}

TEST(CliChunkSafetyParam, GateDumpCsv) {
  const auto d = scratch_dir("chunk_dump");
  const auto csv = d / "gates.csv";
  {
    std::ofstream f(csv);
    f << "log_alpha,beta,log_mu,eta\n";
    for (int t = 0; t < 128; ++t) f << (t < 64 ? "-1,0.1,-1,1\n" : "-0.5,0.1,-1,1\n");
  }
  auto r = run_cli("--format json chunk-safety --param " + csv.string() + " --chunk 64 --precision fp32");
  ASSERT_EQ(r.code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["mode"], "dump");
  EXPECT_EQ(j["chunks"], 2);
  EXPECT_EQ(j["unsafe_chunks"], 1);  // the second chunk, alpha = e^-0.5 > mu = e^-1
  EXPECT_DOUBLE_EQ(j["fraction_tokens_in_unsafe_chunks"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(j["tokens"]["fraction_unsafe"].get<double>(), 0.5);
  EXPECT_GE(j["largest_safe_pow2_chunks"].get<int>(), 8);
  EXPECT_LE(j["largest_safe_pow2_chunks"].get<int>(), 32);
  expect_bad("chunk-safety --param " + csv.string() + " --chunk 256", "larger than the dump");
  // --check: the dump's own sequence (one: batch 1, head 1) emulated at C and at powers of two.
  const std::string check = "chunk-safety --param " + csv.string() + " --chunk 64 --check --dk 8 --dv 8";
  r = run_cli("--format json " + check + " --threads 1");
  ASSERT_EQ(r.code, 0) << r.err;
  const json c = json::parse(r.out)["checked"];
  EXPECT_EQ(c["chunk"], 64);
  EXPECT_EQ(c["steps"], 128);  // the dump's length, not --steps
  EXPECT_EQ(c["judged"], 1);
  EXPECT_EQ(c["rule_unsafe"], 1);  // as unsafe_chunks above
  ASSERT_EQ(c["sequences"].size(), 1u);
  const json& q = c["sequences"][0];
  EXPECT_EQ(q["broken"], q["rel_error"].get<double>() > 0.01);
  EXPECT_EQ(c["broken"], q["broken"].get<bool>() ? 1 : 0);
  EXPECT_DOUBLE_EQ(c["rule_agreement"].get<double>(), q["broken"].get<bool>() ? 1.0 : 0.0);
  EXPECT_EQ(c["false_safe"], 0);
  // Powers of two from 1 while unbroken: below 64 exactly when C = 64 broke it.
  const int pow2 = c["largest_safe_pow2"].get<int>();
  EXPECT_GE(pow2, 1);
  EXPECT_EQ(pow2 < 64, q["broken"].get<bool>());
  auto r2 = run_cli("--format json " + check + " --threads 2");
  ASSERT_EQ(r2.code, 0) << r2.err;
  EXPECT_EQ(json::parse(r2.out)["checked"], c);
  r = run_cli(check);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("by the rule\n  checked by emulation:   at C = 64, "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("largest power-of-two C with every sequence unbroken: " + std::to_string(pow2) + ";"),
            std::string::npos)
      << r.out;
  // mu = 0 (a GDN dump): the algorithm forms inf - inf even at C = 1; no figure, the cause named.
  const auto gdn = d / "gdn.csv";
  std::ofstream(gdn) << "alpha,beta,mu,eta\n0.5,0.1,0,1\n0.5,0.1,0,1\n";
  r = run_cli("--format json chunk-safety --param " + gdn.string() + " --chunk 2 --check --dk 4 --dv 4");
  ASSERT_EQ(r.code, 0) << r.err;
  const json g = json::parse(r.out)["checked"];
  EXPECT_EQ(g["left_out"], 1);
  EXPECT_EQ(g["left_out_overflow"], 1);
  EXPECT_TRUE(g["largest_safe_pow2"].is_null());
  EXPECT_TRUE(g["sequences"][0]["rel_error"].is_null());  // inf: no JSON number
  r = run_cli("chunk-safety --param " + gdn.string() + " --chunk 2 --check --dk 4 --dv 4");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("none judged (1 left out: broken even at C = 1, 1 with outputs not finite in fp32 (inf or NaN))"),
            std::string::npos)
      << r.out;
}

// A checkpoint file written by hand: F64 tensors [2] for one layer.
void write_checkpoint(const std::filesystem::path& path) {
  const char* names[] = {"A_log", "Mu_log", "dt_bias", "mu_bias", "log_factor"};
  const double values[5][2] = {{0.5, 2.0}, {1.0, 2.5}, {-4.0, -3.0}, {-4.5, -3.5}, {0.0, 1.0}};
  json h = json::object();
  std::vector<char> data;
  for (int i = 0; i < 5; ++i) {
    const size_t begin = data.size();
    data.resize(begin + 16);
    std::memcpy(&data[begin], values[i], 16);
    h[std::string("model.layers.0.attn.") + names[i]] = {
        {"dtype", "F64"}, {"shape", {2}}, {"data_offsets", {begin, begin + 16}}};
  }
  std::string header = h.dump();
  while (header.size() % 8) header += ' ';
  std::ofstream f(path, std::ios::binary);
  const uint64_t n = header.size();
  f.write(reinterpret_cast<const char*>(&n), 8);
  f << header;
  f.write(data.data(), std::streamsize(data.size()));
}

TEST(CliChunkSafetyParam, CheckpointPerHead) {
  const auto d = scratch_dir("chunk_ckpt");
  const auto st = d / "model.safetensors";
  write_checkpoint(st);
  const auto out = d / "heads.csv";
  auto r = run_cli("--format json chunk-safety --checkpoint " + st.string() + " --samples 300 --chunk 64 --out " +
                   out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["mode"], "checkpoint");
  ASSERT_EQ(j["heads"].size(), 2u);
  EXPECT_EQ(j["gates"], 600);
  EXPECT_EQ(count_lines(slurp(out)), 1 + 2);
  r = run_cli("chunk-safety --checkpoint " + st.string() + " --samples 100");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("all heads"), std::string::npos);
}

TEST(CliChunkSafetyParam, CheckByEmulation) {
  const std::string args = " chunk-safety --param mdn --samples 1500 --range wide --check --dk 8 --dv 8 --steps 128";
  auto r1 = run_cli("--format json" + args + " --threads 1");
  ASSERT_EQ(r1.code, 0) << r1.err;
  auto r2 = run_cli("--format json" + args + " --threads 2");
  ASSERT_EQ(r2.code, 0) << r2.err;
  const json j = json::parse(r1.out), j2 = json::parse(r2.out);
  const json& c = j["all"]["checked"];
  EXPECT_EQ(c, j2["all"]["checked"]);  // the same figure and counts on any number of threads
  EXPECT_EQ(c["dk"], 8);
  EXPECT_EQ(c["dv"], 8);
  EXPECT_EQ(c["steps"], 128);
  // The rule calls a few of the wide box's gates unsafe even at small C; the check can
  // only raise the figure, by emulating those verdicts.
  const int rule = j["all"]["largest_safe_chunk"].get<int>();
  ASSERT_LT(rule, 64);
  EXPECT_GE(c["largest_safe_chunk"].get<int>(), rule);
  EXPECT_GE(c["emulations"].get<long>(), 1);
  EXPECT_GE(c["left_out"].get<long>(), 0);
  EXPECT_EQ(c["judged"].get<long>() + c["left_out"].get<long>(), j["all"]["gates"].get<long>());
  // The wide box's left-out samples (beta ~ 1e-38, eta ~ 1e-17) have outputs ~1e-55: below
  // fp32's range, not above it.
  const long left = c["left_out"].get<long>(), under = c["left_out_underflow"].get<long>();
  EXPECT_GE(under, 1);
  EXPECT_EQ(c["left_out_overflow"], 0);
  EXPECT_LE(under, left);
  // The rule's safe verdicts at the checked figure, spot-checked (256 of them).
  const json& spot = c["safe_spot_check"];
  EXPECT_EQ(spot["chunk"], c["largest_safe_chunk"]);
  EXPECT_EQ(spot["checked"], std::min<long>(256, spot["rule_safe"].get<long>()));
  EXPECT_GE(spot["rule_safe"].get<long>(), 1000);
  EXPECT_LE(spot["judged"].get<long>(), spot["checked"].get<long>());
  EXPECT_LE(spot["broken"].get<long>() + spot["left_out"].get<long>(), spot["judged"].get<long>());
  EXPECT_EQ(spot, j2["all"]["checked"]["safe_spot_check"]);  // the same choice on any number of threads
  EXPECT_TRUE(j["initial"]["checked"]["safe_spot_check"].is_null());
  // --range wide has no sample from the initialization box: nothing to emulate there.
  EXPECT_EQ(j["initial"]["gates"], 0);
  EXPECT_EQ(j["initial"]["checked"]["emulations"], 0);
  EXPECT_EQ(j["initial"]["checked"]["judged"], 0);
  EXPECT_TRUE(j["initial"]["checked"]["largest_safe_chunk"].is_null());  // no gate set: no figure
  // Without --check there is no checked figure.
  auto r = run_cli("--format json chunk-safety --param mdn --samples 300");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(json::parse(r.out)["all"].contains("checked"));
  r = run_cli(args.substr(1));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("by the rule"), std::string::npos);
  EXPECT_NE(r.out.find("checked by emulation:   " + std::to_string(c["largest_safe_chunk"].get<int>()) + " for the " +
                       std::to_string(c["judged"].get<long>()) + " gate sets not left out (" + std::to_string(left) +
                       " left out: broken even at C = 1, " + std::to_string(under) +
                       " with outputs below fp32's smallest normal value"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("safe verdicts checked:  at C = " + std::to_string(spot["chunk"].get<int>()) + ", " +
                       std::to_string(spot["checked"].get<long>()) + " of the " +
                       std::to_string(spot["rule_safe"].get<long>()) + " gate sets the rule calls safe emulated: " +
                       std::to_string(spot["broken"].get<long>()) + " broken"),
            std::string::npos)
      << r.out;
}

TEST(CliChunkSafetyParam, CheckpointCheckedPerHead) {
  const auto d = scratch_dir("chunk_ckpt_check");
  const auto st = d / "model.safetensors";
  write_checkpoint(st);
  const auto out = d / "heads.csv";
  auto r = run_cli("--format json chunk-safety --checkpoint " + st.string() +
                   " --samples 300 --check --dk 8 --dv 8 --steps 128 --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const json j = json::parse(r.out);
  ASSERT_EQ(j["heads"].size(), 2u);
  int least = 1 << 30;
  for (const json& h : j["heads"]) {
    ASSERT_TRUE(h.contains("checked"));
    EXPECT_GE(h["checked"]["largest_safe_chunk"].get<int>(), h["largest_safe_chunk"].get<int>());
    // Emulated on real inputs (a checkpoint without --param once got none, and every
    // emulation compared zeros: 4096 for every head), within the emulated sequence.
    EXPECT_LE(h["checked"]["largest_safe_chunk"].get<int>(), 128);
    EXPECT_GT(h["checked"]["emulations"].get<long>(), 0);
    least = std::min(least, h["checked"]["largest_safe_chunk"].get<int>());
  }
  EXPECT_EQ(j["checked_largest_safe_chunk"].get<int>(), least);
  // The figure's safe verdicts spot-checked, from both heads' 300 samples together.
  const json& spot = j["checked_safe_spot_check"];
  EXPECT_EQ(spot["chunk"].get<int>(), least);
  EXPECT_GE(spot["rule_safe"].get<long>(), 1);
  EXPECT_LE(spot["rule_safe"].get<long>(), 600);
  EXPECT_EQ(spot["checked"].get<long>(), std::min(256L, spot["rule_safe"].get<long>()));
  EXPECT_EQ(spot["broken"].get<long>(), 0);
  EXPECT_GT(spot["max_error"].get<double>(), 0.0);
  const std::string csv = slurp(out);
  EXPECT_EQ(count_lines(csv), 1 + 2);
  EXPECT_NE(csv.find(",checked_safe_chunk,judged,left_out,left_out_overflow,left_out_underflow,emulations\n"),
            std::string::npos);
  // The totals over the heads: each count the sum of the heads' own.
  for (const char* k : {"left_out", "left_out_overflow", "left_out_underflow"}) {
    long sum = 0;
    for (const json& h : j["heads"]) sum += h["checked"][k].get<long>();
    EXPECT_EQ(j[std::string("checked_") + k].get<long>(), sum) << k;
  }
  // Two heads: on one thread each head runs whole (heads in parallel), on two each head's
  // work is shared: the same figures and counts.
  for (const char* threads : {"1", "2"}) {
    auto rt = run_cli("--format json chunk-safety --checkpoint " + st.string() +
                      " --samples 300 --check --dk 8 --dv 8 --steps 128 --threads " + threads);
    ASSERT_EQ(rt.code, 0) << rt.err;
    json jt = json::parse(rt.out), j0 = j;
    jt.erase("seconds");
    j0.erase("seconds");
    EXPECT_EQ(jt, j0) << threads;
  }
  r = run_cli("chunk-safety --checkpoint " + st.string() + " --samples 100 --check --dk 8 --dv 8 --steps 128");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("checked by emulation (DK = 8, DV = 8, T = 128;"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("safe verdicts checked:  at C = "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(the heads' samples together)"), std::string::npos) << r.out;
}

TEST(CliChunkSafetyParam, BadInput) {
  const auto d = scratch_dir("chunk_param_bad");
  const std::string out = " --out " + (d / "x.csv").string();
  expect_bad("chunk-safety --param bogus" + out, "bogus");
  expect_bad("chunk-safety --param mdn --axis log_alpha=-1:0:3" + out, "not both");
  expect_bad("chunk-safety --param mdn --samples 0" + out, "--samples");
  expect_bad("chunk-safety --param mdn --chunk 0" + out, "C = 0");
  expect_bad("chunk-safety --param mdn --precision e4m3" + out, "e4m3");
  expect_bad("chunk-safety --param mdn --model 7B" + out, "model");
  expect_bad("chunk-safety --checkpoint " + (d / "missing").string() + out, "missing");
  expect_bad("chunk-safety --param mdn --check --dk 0" + out, "--dk 0");
  expect_bad("chunk-safety --param mdn --check --dv 5000" + out, "--dv 5000");
  expect_bad("chunk-safety --axis log_alpha=-1:0:3 --check" + out, "--check");
  expect_bad("chunk-safety --param gdn --check" + out, "GDN");
  {
    const auto csv = d / "gates.csv";
    std::ofstream(csv) << "log_alpha,beta,log_mu,eta\n-1,0.1,-1,1\n";
    expect_bad("chunk-safety --param " + csv.string() + " --check" + out, "larger than the dump");
    expect_bad("chunk-safety --param " + csv.string() + " --chunk 1 --check --dk 0" + out, "--dk 0");
    expect_bad("chunk-safety --param " + csv.string() + " --chunk 1 --check --max-hours 1e-12" + out, "hour limit");
    expect_bad("chunk-safety --param " + csv.string() + " --max-hours -1" + out, "--max-hours");
    std::filesystem::remove(csv);
  }
  EXPECT_EQ(count_entries(d), 0);
}

}  // namespace
}  // namespace mdnstab::test
