// The safetensors reader on files assembled byte by byte here (not by the
// library's writer), valid and broken; the 16-bit float codecs against a
// brute-force nearest search; the writer by round trip.
#include <gtest/gtest.h>
#include <unistd.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "mdnstab/safetensors.hpp"

namespace mdnstab {
namespace {

namespace fs = std::filesystem;

fs::path scratch(const std::string& name) {
  auto d = fs::temp_directory_path() / ("mdnstab_st_" + std::to_string(getpid()));
  fs::create_directories(d);
  return d / name;
}

void le(std::string& s, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) s.push_back(char((v >> (8 * i)) & 0xff));
}

// header (JSON text) + data bytes, with the 8-byte length in front.
std::string assemble(const std::string& header, const std::string& data) {
  std::string s;
  le(s, header.size(), 8);
  return s + header + data;
}

void put(const fs::path& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary);
  f.write(bytes.data(), std::streamsize(bytes.size()));
}

// Two tensors: "x" F32 [2, 3] = 0.5 * i - 1, "y" F64 [2] = {pi, -1e300}.
std::string two_tensors(std::string x_dtype = "F32", std::string x_shape = "[2,3]", std::string x_off = "[0,24]") {
  std::string data;
  for (int i = 0; i < 6; ++i) le(data, std::bit_cast<uint32_t>(float(0.5 * i - 1)), 4);
  le(data, std::bit_cast<uint64_t>(M_PI), 8);
  le(data, std::bit_cast<uint64_t>(-1e300), 8);
  const std::string header = "{\"__metadata__\":{\"format\":\"pt\"},\"x\":{\"dtype\":\"" + x_dtype +
                             "\",\"shape\":" + x_shape + ",\"data_offsets\":" + x_off +
                             "},\"y\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[24,40]}}";
  return assemble(header, data);
}

TEST(Safetensors, ReadsHandAssembledFile) {
  const auto p = scratch("ok.safetensors");
  put(p, two_tensors());
  auto r = SafetensorsReader::open(p.string());
  ASSERT_TRUE(r.is_ok()) << r.status.message;
  EXPECT_EQ(r.value.tensors().size(), 2u);
  EXPECT_EQ(r.value.metadata().at("format"), "pt");
  const int64_t shape[] = {2, 3};
  auto x = r.value.read("x", shape);
  ASSERT_TRUE(x.is_ok()) << x.status.message;
  for (int i = 0; i < 6; ++i) EXPECT_EQ(x.value[size_t(i)], 0.5 * i - 1);
  const int64_t any[] = {-1};
  auto y = r.value.read("y", any);
  ASSERT_TRUE(y.is_ok());
  EXPECT_EQ(y.value[0], M_PI);
  EXPECT_EQ(y.value[1], -1e300);
}

TEST(Safetensors, SixteenBitDtypes) {
  // F16: 1, -2, 65504 (max), 2^-24 (smallest subnormal); BF16: 1, -3.5, 2^-133.
  std::string data;
  for (uint16_t b : {0x3c00, 0xc000, 0x7bff, 0x0001}) le(data, b, 2);
  for (uint16_t b : {0x3f80, 0xc060, 0x0001}) le(data, b, 2);
  const std::string header =
      "{\"h\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]},"
      "\"b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[8,14]}}";
  const auto p = scratch("half.safetensors");
  put(p, assemble(header, data));
  auto r = SafetensorsReader::open(p.string());
  ASSERT_TRUE(r.is_ok()) << r.status.message;
  auto h = r.value.read("h").value;
  EXPECT_EQ(h, (std::vector<double>{1, -2, 65504, std::ldexp(1.0, -24)}));
  auto b = r.value.read("b").value;
  EXPECT_EQ(b, (std::vector<double>{1, -3.5, std::ldexp(1.0, -133)}));
}

TEST(Safetensors, SixteenBitCodecs) {
  // bfloat16 is the top half of a float: decode independently via bit_cast.
  for (uint32_t bits = 0; bits < 65536; ++bits) {
    const double ref = double(std::bit_cast<float>(bits << 16));
    const double got = decode_bf16(uint16_t(bits));
    if (std::isnan(ref)) {
      EXPECT_TRUE(std::isnan(got));
      continue;
    }
    EXPECT_EQ(got, ref) << bits;
    EXPECT_EQ(encode_bf16(got), bits) << bits;  // exact values encode to themselves
    const double h = decode_f16(uint16_t(bits));
    if (!std::isnan(h)) {
      EXPECT_EQ(encode_f16(h), bits) << bits;
    }
  }
  // Rounding of arbitrary doubles: the nearest half by brute force over all
  // finite halves (ties to the even pattern), against the closed-form encoder.
  std::vector<double> halves;
  for (uint32_t bits = 0; bits < 0x7c00; ++bits) halves.push_back(decode_f16(uint16_t(bits)));
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> lg(-26, 16.1);
  for (int i = 0; i < 3000; ++i) {
    double x = std::exp2(lg(rng));
    if (i % 3 == 0) {  // exact ties between neighbours
      const size_t k = size_t(rng() % (halves.size() - 1));
      x = 0.5 * (halves[k] + halves[k + 1]);
    }
    const uint16_t got = encode_f16(x);
    if (x >= 65520) {  // past half of the last step above 65504: infinity
      EXPECT_EQ(got, 0x7c00);
      continue;
    }
    const auto it = std::lower_bound(halves.begin(), halves.end(), x);
    size_t best = size_t(it - halves.begin());
    if (best == halves.size() || (best > 0 && x - halves[best - 1] < halves[best] - x) ||
        (best > 0 && x - halves[best - 1] == halves[best] - x && (best - 1) % 2 == 0))
      best = best - 1;
    EXPECT_EQ(got, best) << x;
    EXPECT_EQ(encode_f16(-x), uint16_t(0x8000 | best)) << x;
  }
}

TEST(Safetensors, WriterRoundTrip) {
  const auto p = scratch("rt.safetensors");
  std::vector<TensorData> t = {{"a", "F64", {3}, {1.0 / 3, -2e-310, 7}},
                               {"b", "F32", {2, 1}, {0.1, -5}},
                               {"c", "BF16", {2}, {1.0, 0.1}},
                               {"d", "F16", {0}, {}}};
  ASSERT_TRUE(write_safetensors(p.string(), t, {{"k", "v"}}).is_ok());
  auto r = SafetensorsReader::open(p.string());
  ASSERT_TRUE(r.is_ok()) << r.status.message;
  EXPECT_EQ(r.value.read("a").value, t[0].values);
  EXPECT_EQ(r.value.read("b").value, (std::vector<double>{double(0.1f), -5}));
  EXPECT_EQ(r.value.read("c").value[1], decode_bf16(encode_bf16(0.1)));
  EXPECT_TRUE(r.value.read("d").value.empty());
  EXPECT_EQ(r.value.metadata().at("k"), "v");
  // The data section starts 8-byte aligned.
  EXPECT_EQ((fs::file_size(p) - 8 * 3 - 8 * 2 - 2 * 2) % 8, 0u);
  std::vector<TensorData> bad = {{"a", "F32", {2}, {1}}};
  EXPECT_FALSE(write_safetensors(scratch("bad.safetensors").string(), bad).is_ok());
  EXPECT_FALSE(fs::exists(scratch("bad.safetensors")));
}

void expect_open_fails(const std::string& bytes, const std::string& named) {
  const auto p = scratch("broken.safetensors");
  put(p, bytes);
  auto r = SafetensorsReader::open(p.string());
  ASSERT_FALSE(r.is_ok()) << named;
  EXPECT_NE(r.status.message.find(named), std::string::npos) << r.status.message;
}

TEST(Safetensors, BrokenHeadersAreNamed) {
  expect_open_fails("abc", "shorter than 8 bytes");
  std::string huge;
  le(huge, 1'000'000, 8);
  expect_open_fails(huge + "{}", "header length 1000000");
  expect_open_fails(assemble("{not json", ""), "not a JSON object");
  expect_open_fails(assemble("[1,2]", ""), "not a JSON object");
  expect_open_fails(two_tensors("Q7"), "tensor 'x' has unknown dtype 'Q7'");
  expect_open_fails(two_tensors("F32", "[2,-3]"), "tensor 'x' has a bad shape entry -3");
  expect_open_fails(two_tensors("F32", "[2,3]", "[0,20]"), "tensor 'x' has 20 data bytes");
  expect_open_fails(two_tensors("F32", "[2,3]", "[24,0]"), "tensor 'x' has data_offsets [24, 0]");
  expect_open_fails(two_tensors("F32", "[2,3]", "[0]"), "tensor 'x' has data_offsets that are not");
  expect_open_fails(assemble("{\"z\":{\"dtype\":\"F32\"}}", ""), "tensor 'z' lacks");
  auto r = SafetensorsReader::open("/nonexistent/file.safetensors");
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status.message.find("/nonexistent/file.safetensors"), std::string::npos);
}

TEST(Safetensors, BadReadsNameTheTensor) {
  const auto p = scratch("reads.safetensors");
  put(p, two_tensors());
  auto r = SafetensorsReader::open(p.string()).value;
  auto missing = r.read("w");
  ASSERT_FALSE(missing.is_ok());
  EXPECT_NE(missing.status.message.find("tensor 'w' is missing"), std::string::npos);
  const int64_t want[] = {3, 2};
  auto shape = r.read("x", want);
  ASSERT_FALSE(shape.is_ok());
  EXPECT_NE(shape.status.message.find("tensor 'x' has shape [2, 3] (expected [3, 2])"), std::string::npos)
      << shape.status.message;
  const int64_t rank[] = {6};
  EXPECT_FALSE(r.read("x", rank).is_ok());
  // An integer dtype is refused where gate values are expected.
  put(p, two_tensors("I32"));
  auto ints = SafetensorsReader::open(p.string()).value.read("x");
  ASSERT_FALSE(ints.is_ok());
  EXPECT_NE(ints.status.message.find("tensor 'x' has dtype I32"), std::string::npos);
}

TEST(Safetensors, TruncatedBodyNamesTheTensorAndKeepsTheRest) {
  const auto p = scratch("trunc.safetensors");
  std::string bytes = two_tensors();
  put(p, bytes.substr(0, bytes.size() - 4));  // cut inside "y"
  auto r = SafetensorsReader::open(p.string());
  ASSERT_TRUE(r.is_ok()) << r.status.message;
  EXPECT_TRUE(r.value.read("x").is_ok());  // "x" lies wholly before the cut
  auto y = r.value.read("y");
  ASSERT_FALSE(y.is_ok());
  EXPECT_NE(y.status.message.find("tensor 'y' runs past the end of the file"), std::string::npos) << y.status.message;
}

TEST(Safetensors, ReadsOneTensorOfALargeSparseFile) {
  // 512 MiB of a declared tensor that is never read (a hole in a sparse file),
  // then a small one: reading the small one touches only its bytes.
  const auto p = scratch("sparse.safetensors");
  const uint64_t big = uint64_t(1) << 29;
  const std::string header = "{\"big\":{\"dtype\":\"F32\",\"shape\":[" + std::to_string(big / 4) +
                             "],\"data_offsets\":[0," + std::to_string(big) +
                             "]},\"small\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[" + std::to_string(big) +
                             "," + std::to_string(big + 8) + "]}}";
  std::string head = assemble(header, "");
  put(p, head);
  fs::resize_file(p, head.size() + big);
  std::string tail;
  le(tail, std::bit_cast<uint64_t>(42.5), 8);
  std::ofstream(p, std::ios::binary | std::ios::app).write(tail.data(), 8);
  auto r = SafetensorsReader::open(p.string());
  ASSERT_TRUE(r.is_ok()) << r.status.message;
  auto s = r.value.read("small");
  ASSERT_TRUE(s.is_ok()) << s.status.message;
  EXPECT_EQ(s.value[0], 42.5);
  fs::remove(p);
}

}  // namespace
}  // namespace mdnstab
