// Gate dumps in safetensors form: [B,T,H] indexing, every float dtype, and
// each broken input named by tensor and index. (The CSV form: gate_csv tests.)
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "mdnstab/gate_dump.hpp"
#include "mdnstab/safetensors.hpp"

namespace mdnstab {
namespace {

namespace fs = std::filesystem;

fs::path scratch(const std::string& name) {
  auto d = fs::temp_directory_path() / ("mdnstab_dump_" + std::to_string(getpid()));
  fs::create_directories(d);
  return d / name;
}

// Gate values that identify their index: beta = (b*100 + t*10 + h) / 1000.
std::vector<TensorData> dump_tensors(int B, int T, int H, const std::string& dtype) {
  std::vector<TensorData> v(4);
  const char* names[] = {"log_alpha", "beta", "log_mu", "eta"};
  for (int k = 0; k < 4; ++k) {
    v[size_t(k)].name = names[k];
    v[size_t(k)].dtype = dtype;
    v[size_t(k)].shape = {B, T, H};
  }
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < T; ++t)
      for (int h = 0; h < H; ++h) {
        const double id = (b * 100 + t * 10 + h) / 1000.0;
        v[0].values.push_back(-0.5 - id);
        v[1].values.push_back(id);
        v[2].values.push_back(-1.0 - id);
        v[3].values.push_back(2 * id);
      }
  return v;
}

TEST(GateDump, ReadsEveryFloatDtypeWithBthIndexing) {
  for (const char* dtype : {"F64", "F32", "F16", "BF16"}) {
    const auto p = scratch(std::string("ok_") + dtype + ".safetensors");
    const auto t = dump_tensors(2, 5, 3, dtype);
    ASSERT_TRUE(write_safetensors(p.string(), t).is_ok());
    auto d = read_gate_safetensors(p.string());
    ASSERT_TRUE(d.is_ok()) << d.status.message;
    EXPECT_EQ(d.value.batch, 2);
    EXPECT_EQ(d.value.time, 5);
    EXPECT_EQ(d.value.heads, 3);
    EXPECT_EQ(d.value.gates.size(), 30u);
    // Rounding to the dtype: relative 2^-8 for bfloat16, 2^-11 for binary16.
    const double tol = std::string(dtype) == "BF16" ? 4e-3 : std::string(dtype) == "F16" ? 5e-4 : 1e-7;
    for (int b = 0; b < 2; ++b)
      for (int tt = 0; tt < 5; ++tt)
        for (int h = 0; h < 3; ++h) {
          const double id = (b * 100 + tt * 10 + h) / 1000.0;
          const Gates& g = d.value.at(b, tt, h);
          EXPECT_NEAR(g.beta, id, tol * id + 1e-12) << dtype;
          EXPECT_NEAR(g.log_mu, -1.0 - id, tol * (1 + id)) << dtype;
          EXPECT_NEAR(g.eta, 2 * id, 2 * tol * id + 1e-12) << dtype;
          EXPECT_DOUBLE_EQ(g.alpha, std::exp(g.log_alpha));
        }
  }
}

void expect_fails(const std::vector<TensorData>& t, const std::string& named) {
  const auto p = scratch("bad.safetensors");
  ASSERT_TRUE(write_safetensors(p.string(), t).is_ok());
  auto d = read_gate_safetensors(p.string());
  ASSERT_FALSE(d.is_ok()) << named;
  EXPECT_NE(d.status.message.find(named), std::string::npos) << d.status.message;
}

TEST(GateDump, BrokenDumpsNameTheTensor) {
  auto t = dump_tensors(2, 5, 3, "F32");
  auto missing = t;
  missing.erase(missing.begin() + 1);
  expect_fails(missing, "tensor 'beta' is missing");
  auto shape = t;
  shape[3].shape = {2, 15, 1};
  expect_fails(shape, "tensor 'eta' has shape [2, 15, 1] (expected [2, 5, 3])");
  auto range = t;
  range[1].values[size_t((1 * 5 + 2) * 3 + 0)] = 1.5;
  expect_fails(range, "tensor 'beta' at [1, 2, 0]: beta = 1.5 is out of range");
  auto positive = t;
  positive[0].values[4] = 0.25;
  expect_fails(positive, "tensor 'log_alpha' at [0, 1, 1]: log_alpha = 0.25");
  auto nan = t;
  nan[2].values[29] = std::nan("");
  expect_fails(nan, "tensor 'log_mu' at [1, 4, 2]");
  auto eta = t;
  eta[3].values[0] = 2.5;
  expect_fails(eta, "tensor 'eta' at [0, 0, 0]: eta = 2.5");
  expect_fails(dump_tensors(2, 0, 3, "F32"), "empty");
  auto flat = t;
  for (auto& x : flat) x.shape = {30};
  expect_fails(flat, "tensor 'log_alpha' has 1 dimensions");
}

// A file named .safetensors that is none is named as such, not read as a CSV.
TEST(GateDump, ABrokenSafetensorsNameIsNotReadAsCsv) {
  const fs::path empty = scratch("empty.safetensors");
  { std::ofstream(empty.string()); }
  auto r = read_gate_dump(empty.string());
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status.message.find("not a safetensors file"), std::string::npos) << r.status.message;
  const fs::path truncated = scratch("truncated.safetensors");
  std::ofstream(truncated.string(), std::ios::binary) << std::string("\xff\xff\xff\xff\xff\xff\xff\x7f{}", 10);
  r = read_gate_dump(truncated.string());
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status.message.find("exceeds the file"), std::string::npos) << r.status.message;
  // The same bytes under another name are sniffed as a CSV, as before.
  const fs::path other = scratch("gates.txt");
  fs::copy_file(empty, other, fs::copy_options::overwrite_existing);
  r = read_gate_dump(other.string());
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status.message.find("no header line"), std::string::npos) << r.status.message;
}

}  // namespace
}  // namespace mdnstab
