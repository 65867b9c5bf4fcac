// Checkpoint reading: folders with config.json, a file alone, sharded indexes,
// flag precedence, and every broken tensor or key named.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "mdnstab/checkpoint.hpp"
#include "mdnstab/safetensors.hpp"

namespace mdnstab {
namespace {

namespace fs = std::filesystem;

fs::path fresh_dir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("mdnstab_ck_" + std::to_string(getpid())) / name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::string fmt_name(int i, const char* k) { return "model.layers." + std::to_string(i) + ".attn." + k; }

const char* kKeys[] = {"A_log", "Mu_log", "dt_bias", "mu_bias", "log_factor"};

// Value of key k, layer i, head h: distinct and exactly representable in F32.
double value(int k, int i, int h) { return 0.25 * k + 0.5 * i - 0.125 * h; }

std::vector<TensorData> layers(int L, int H, const std::string& dtype = "F32") {
  std::vector<TensorData> t;
  for (int i = 0; i < L; ++i)
    for (int k = 0; k < 5; ++k) {
      TensorData d{fmt_name(i, kKeys[k]), dtype, {H}, {}};
      for (int h = 0; h < H; ++h) d.values.push_back(value(k, i, h));
      t.push_back(d);
    }
  // An unrelated large-ish weight the reader must skip.
  t.push_back(TensorData{"model.layers.0.attn.q_proj.weight", "F32", {64, 64}, std::vector<double>(4096, 0.01)});
  return t;
}

void write_json(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }

void expect_params(const Checkpoint& ck, int L, int H) {
  ASSERT_EQ(ck.layers.size(), size_t(L));
  for (int i = 0; i < L; ++i) {
    ASSERT_EQ(ck.layers[size_t(i)].size(), size_t(H));
    for (int h = 0; h < H; ++h) {
      const HeadParams& p = ck.layers[size_t(i)][size_t(h)];
      EXPECT_EQ(p.A_log, value(0, i, h));
      EXPECT_EQ(p.Mu_log, value(1, i, h));
      EXPECT_EQ(p.dt_bias, value(2, i, h));
      EXPECT_EQ(p.mu_bias, value(3, i, h));
      EXPECT_EQ(p.log_factor, value(4, i, h));
    }
  }
}

TEST(Checkpoint, FolderWithConfigJson) {
  const auto d = fresh_dir("folder");
  ASSERT_TRUE(write_safetensors((d / "model.safetensors").string(), layers(3, 4)).is_ok());
  write_json(d / "config.json", R"({"hidden_size": 2048, "tau_factor": 8, "min_log_mu": -1, "head_dim": 256})");
  auto ck = read_checkpoint(d.string());
  ASSERT_TRUE(ck.is_ok()) << ck.status.message;
  expect_params(ck.value, 3, 4);
  EXPECT_EQ(ck.value.config.min_log_mu, -1);
  EXPECT_EQ(ck.value.config.hidden_size, 2048);
  EXPECT_DOUBLE_EQ(ck.value.config.tau(), 16.0);
  EXPECT_EQ(ck.value.config.num_layers, 3);
  EXPECT_EQ(ck.value.config.num_heads, 4);
  EXPECT_EQ(ck.value.min_log_mu_source, "config.json");
  // Flags win over config.json.
  CheckpointOptions o;
  o.min_log_mu = -2;
  ck = read_checkpoint(d.string(), o);
  ASSERT_TRUE(ck.is_ok());
  EXPECT_EQ(ck.value.config.min_log_mu, -2);
  EXPECT_EQ(ck.value.min_log_mu_source, "flag");
  // The file path finds the config.json beside it too.
  ck = read_checkpoint((d / "model.safetensors").string());
  ASSERT_TRUE(ck.is_ok());
  EXPECT_EQ(ck.value.config.min_log_mu, -1);
  // min_log_mu null: the layer does not clamp.
  write_json(d / "config.json", R"({"min_log_mu": null})");
  ck = read_checkpoint(d.string());
  ASSERT_TRUE(ck.is_ok()) << ck.status.message;
  EXPECT_EQ(ck.value.config.min_log_mu, -INFINITY);
}

TEST(Checkpoint, FileAloneUsesDefaultsAndBf16) {
  const auto d = fresh_dir("alone");
  ASSERT_TRUE(write_safetensors((d / "m.safetensors").string(), layers(2, 6, "BF16")).is_ok());
  auto ck = read_checkpoint((d / "m.safetensors").string());
  ASSERT_TRUE(ck.is_ok()) << ck.status.message;
  expect_params(ck.value, 2, 6);  // the values are exact in bfloat16 too
  EXPECT_EQ(ck.value.config.min_log_mu, -2);
  EXPECT_EQ(ck.value.min_log_mu_source, "default 400M");
  EXPECT_TRUE(ck.value.config_json.empty());
}

TEST(Checkpoint, ShardedIndex) {
  const auto d = fresh_dir("sharded");
  auto t = layers(2, 3);
  std::vector<TensorData> a(t.begin(), t.begin() + 5), b(t.begin() + 5, t.end());
  ASSERT_TRUE(write_safetensors((d / "s1.safetensors").string(), a).is_ok());
  ASSERT_TRUE(write_safetensors((d / "s2.safetensors").string(), b).is_ok());
  std::string map = "{\"weight_map\": {";
  for (size_t i = 0; i < t.size(); ++i) {
    if (i) map += ",";
    map += "\"" + t[i].name + "\": \"" + (i < 5 ? std::string("s1") : std::string("s2")) + ".safetensors\"";
  }
  write_json(d / "model.safetensors.index.json", map + "}}");
  auto ck = read_checkpoint(d.string());
  ASSERT_TRUE(ck.is_ok()) << ck.status.message;
  expect_params(ck.value, 2, 3);
  EXPECT_EQ(ck.value.files.size(), 2u);
}

void expect_fails(const std::vector<TensorData>& t, const std::string& named, const std::string& config = "",
                  CheckpointOptions o = {}) {
  const auto d = fresh_dir("broken");
  ASSERT_TRUE(write_safetensors((d / "model.safetensors").string(), t).is_ok());
  if (!config.empty()) write_json(d / "config.json", config);
  auto ck = read_checkpoint(d.string(), o);
  ASSERT_FALSE(ck.is_ok()) << named;
  EXPECT_NE(ck.status.message.find(named), std::string::npos) << ck.status.message;
}

TEST(Checkpoint, BrokenCheckpointsNameTheTensorOrKey) {
  auto t = layers(3, 4);
  auto missing = t;
  missing.erase(missing.begin() + 6);  // layer 1, Mu_log
  expect_fails(missing, "tensor 'model.layers.1.attn.Mu_log' is missing");
  auto shape = t;
  shape[12].shape = {5};
  shape[12].values.push_back(0);
  expect_fails(shape, "tensor 'model.layers.2.attn.dt_bias' has shape [5] (expected [4])");
  auto nan = t;
  nan[4].values[2] = std::nan("");
  expect_fails(nan, "tensor 'model.layers.0.attn.log_factor' head 2 = nan");
  auto gap = t;
  gap.erase(gap.begin() + 5, gap.begin() + 10);  // no layer 1 at all
  expect_fails(gap, "model.layers.1.attn.A_log is missing");
  expect_fails({TensorData{"w", "F32", {1}, {1}}}, "no tensor model.layers.{i}.attn.A_log");
  expect_fails(t, "key 'tau_factor' = \"8\" is not a positive number", R"({"tau_factor": "8"})");
  expect_fails(t, "key 'min_log_mu' = 0.5", R"({"min_log_mu": 0.5})");
  expect_fails(t, "config.json' is not a JSON object", "{oops");
  CheckpointOptions o;
  o.min_log_mu = 1;
  expect_fails(t, "min_log_mu = 1", "", o);
  // gdn needs only A_log and dt_bias.
  o = CheckpointOptions{};
  o.param = Parametrization::kGdn;
  const auto d = fresh_dir("gdn");
  std::vector<TensorData> g = {TensorData{fmt_name(0, "A_log"), "F32", {2}, {0.5, 1}},
                               TensorData{fmt_name(0, "dt_bias"), "F32", {2}, {-3, -4}}};
  ASSERT_TRUE(write_safetensors((d / "model.safetensors").string(), g).is_ok());
  auto ck = read_checkpoint(d.string(), o);
  ASSERT_TRUE(ck.is_ok()) << ck.status.message;
  EXPECT_EQ(ck.value.layers[0][1].dt_bias, -4);
  EXPECT_FALSE(read_checkpoint(d.string()).is_ok());  // mdn needs Mu_log
  EXPECT_FALSE(read_checkpoint((d / "nothing").string()).is_ok());
}

TEST(Checkpoint, TruncatedFileNamesTheTensor) {
  const auto d = fresh_dir("trunc");
  const auto p = d / "model.safetensors";
  auto t = layers(2, 4);
  t.pop_back();  // the last tensor is layer 1's log_factor
  ASSERT_TRUE(write_safetensors(p.string(), t).is_ok());
  fs::resize_file(p, fs::file_size(p) - 3);
  auto ck = read_checkpoint(d.string());
  ASSERT_FALSE(ck.is_ok());
  EXPECT_NE(ck.status.message.find("model.layers.1.attn.log_factor' runs past the end"), std::string::npos)
      << ck.status.message;
}

}  // namespace
}  // namespace mdnstab
