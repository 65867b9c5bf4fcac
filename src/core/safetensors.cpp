// safetensors reading (header once, then seek + read per tensor) and writing,
// with byte-order-independent little-endian decoding. Tested in
// tests/test_safetensors.cpp with hand-assembled files.
#include "mdnstab/safetensors.hpp"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "mdnstab/atomic_file.hpp"

namespace mdnstab {

namespace {

constexpr uint64_t kMaxHeader = 100'000'000;   // the format's own cap
constexpr int64_t kMaxRead = int64_t(1) << 31;  // elements per tensor read

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

uint64_t load_u64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// A float of `eb` exponent and `mb` mantissa bits (binary16: 5, 10; bfloat16: 8, 7).
double decode_small(uint16_t bits, int eb, int mb) {
  const int emax = (1 << eb) - 1, bias = (1 << (eb - 1)) - 1;
  const int e = (bits >> mb) & emax;
  const int f = bits & ((1 << mb) - 1);
  const double sign = (bits >> 15) ? -1.0 : 1.0;
  if (e == emax) return f ? std::numeric_limits<double>::quiet_NaN() : sign * INFINITY;
  if (e == 0) return sign * std::ldexp(double(f), 1 - bias - mb);
  return sign * std::ldexp(double((1 << mb) + f), e - bias - mb);
}

uint16_t encode_small(double x, int eb, int mb) {
  const int emax = (1 << eb) - 1, bias = (1 << (eb - 1)) - 1;
  const uint16_t sign = std::signbit(x) ? 0x8000 : 0;
  if (std::isnan(x)) return uint16_t(0x7fff);
  const double a = std::fabs(x);
  const int min_exp = 1 - bias;  // exponent of the smallest normal
  if (a < std::ldexp(1.0, min_exp)) {
    // Subnormal: a multiple of 2^(min_exp - mb); rounding up to 2^mb gives the
    // smallest normal, whose bit pattern is the same integer.
    return uint16_t(sign | uint16_t(std::nearbyint(std::ldexp(a, mb - min_exp))));
  }
  if (std::isinf(a)) return uint16_t(sign | (emax << mb));
  int e = std::ilogb(a);
  double f = std::nearbyint((std::ldexp(a, -e) - 1.0) * double(1 << mb));  // exact product, then round-to-even
  if (f == double(1 << mb)) {
    f = 0;
    ++e;
  }
  if (e + bias >= emax) return uint16_t(sign | (emax << mb));  // overflow to inf
  return uint16_t(sign | ((e + bias) << mb) | int(f));
}

// Little-endian element -> double.
double decode_element(const unsigned char* p, std::string_view dtype) {
  if (dtype == "F64") return std::bit_cast<double>(load_u64(p));
  if (dtype == "F32") {
    const uint32_t v = uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
    return double(std::bit_cast<float>(v));
  }
  const uint16_t v = uint16_t(p[0] | p[1] << 8);
  return dtype == "F16" ? decode_f16(v) : decode_bf16(v);
}

void store_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(char((v >> (8 * i)) & 0xff));
}

bool is_float_dtype(std::string_view d) { return d == "F64" || d == "F32" || d == "F16" || d == "BF16"; }

std::string shape_text(const std::vector<int64_t>& s) {
  std::string t = "[";
  for (size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
  return t + "]";
}

}  // namespace

double decode_f16(uint16_t bits) { return decode_small(bits, 5, 10); }
double decode_bf16(uint16_t bits) { return decode_small(bits, 8, 7); }
uint16_t encode_f16(double x) { return encode_small(x, 5, 10); }
uint16_t encode_bf16(double x) { return encode_small(x, 8, 7); }

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

int dtype_size(std::string_view d) {
  if (d == "F64" || d == "I64" || d == "U64") return 8;
  if (d == "F32" || d == "I32" || d == "U32") return 4;
  if (d == "F16" || d == "BF16" || d == "I16" || d == "U16") return 2;
  if (d == "I8" || d == "U8" || d == "BOOL" || d == "F8_E4M3" || d == "F8_E5M2") return 1;
  return 0;
}

Result<SafetensorsReader> SafetensorsReader::open(const std::string& path) {
  File f(std::fopen(path.c_str(), "rb"));
  if (!f) return error(Code::kIoError, fmt::format("cannot read '{}': {}", path, std::strerror(errno)));
  if (std::fseek(f.get(), 0, SEEK_END) != 0)
    return error(Code::kIoError, fmt::format("cannot read '{}': not a seekable file", path));
  const long size = std::ftell(f.get());
  if (size < 0) return error(Code::kIoError, fmt::format("cannot read '{}': not a seekable file", path));
  std::rewind(f.get());
  SafetensorsReader r;
  r.path_ = path;
  r.file_size_ = uint64_t(size);
  unsigned char len_bytes[8];
  if (r.file_size_ < 8 || std::fread(len_bytes, 1, 8, f.get()) != 8)
    return error(Code::kInvalidArgument, fmt::format("'{}' is not a safetensors file: shorter than 8 bytes", path));
  const uint64_t n = load_u64(len_bytes);
  if (n > kMaxHeader || n > r.file_size_ - 8)
    return error(Code::kInvalidArgument,
                 fmt::format("'{}' is not a valid safetensors file: header length {} exceeds the file ({} bytes)",
                             path, n, r.file_size_));
  std::string header(n, '\0');
  if (n > 0 && std::fread(header.data(), 1, n, f.get()) != n)
    return error(Code::kIoError, fmt::format("cannot read the header of '{}'", path));
  r.data_start_ = 8 + n;

  nlohmann::json j = nlohmann::json::parse(header, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return error(Code::kInvalidArgument,
                 fmt::format("'{}' is not a valid safetensors file: the header is not a JSON object", path));
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object())
        return error(Code::kInvalidArgument, fmt::format("'{}': __metadata__ is not an object", path));
      for (auto m = v.begin(); m != v.end(); ++m)
        if (m.value().is_string()) r.metadata_[m.key()] = m.value().get<std::string>();
      continue;
    }
    auto bad = [&](const std::string& why) {
      return error(Code::kInvalidArgument, fmt::format("'{}': tensor '{}' {}", path, name, why));
    };
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
      return bad("lacks dtype, shape or data_offsets in the header");
    TensorInfo t;
    t.name = name;
    if (!v["dtype"].is_string()) return bad("has a dtype that is not a string");
    t.dtype = v["dtype"].get<std::string>();
    if (dtype_size(t.dtype) == 0) return bad(fmt::format("has unknown dtype '{}'", t.dtype));
    if (!v["shape"].is_array()) return bad("has a shape that is not an array");
    int64_t numel = 1;
    for (const auto& d : v["shape"]) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0) return bad(fmt::format("has a bad shape entry {}", d.dump()));
      const int64_t e = d.get<int64_t>();
      if (e > 0 && numel > std::numeric_limits<int64_t>::max() / 16 / e) return bad("has a shape too large");
      numel *= e;
      t.shape.push_back(e);
    }
    const auto& off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      return bad("has data_offsets that are not two non-negative integers");
    t.begin = off[0].get<uint64_t>();
    t.end = off[1].get<uint64_t>();
    if (t.end < t.begin) return bad(fmt::format("has data_offsets [{}, {}] with end < begin", t.begin, t.end));
    if (t.end - t.begin != uint64_t(numel) * uint64_t(dtype_size(t.dtype)))
      return bad(fmt::format("has {} data bytes for shape {} of {} ({} expected)", t.end - t.begin,
                             shape_text(t.shape), t.dtype, uint64_t(numel) * uint64_t(dtype_size(t.dtype))));
    r.tensors_.push_back(std::move(t));
  }
  std::sort(r.tensors_.begin(), r.tensors_.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return r;
}

const TensorInfo* SafetensorsReader::find(std::string_view name) const {
  auto it = std::lower_bound(tensors_.begin(), tensors_.end(), name,
                             [](const TensorInfo& t, std::string_view n) { return t.name < n; });
  return it != tensors_.end() && it->name == name ? &*it : nullptr;
}

Result<std::vector<double>> SafetensorsReader::read(std::string_view name,
                                                     std::span<const int64_t> expected_shape) const {
  const TensorInfo* t = find(name);
  if (!t) return error(Code::kInvalidArgument, fmt::format("'{}': tensor '{}' is missing", path_, name));
  if (!is_float_dtype(t->dtype))
    return error(Code::kInvalidArgument, fmt::format("'{}': tensor '{}' has dtype {} (expected F64, F32, F16 or BF16)",
                                                     path_, name, t->dtype));
  if (!expected_shape.empty()) {
    bool same = expected_shape.size() == t->shape.size();
    for (size_t i = 0; same && i < expected_shape.size(); ++i)
      same = expected_shape[i] < 0 || expected_shape[i] == t->shape[i];
    if (!same) {
      std::string want = "[";
      for (size_t i = 0; i < expected_shape.size(); ++i)
        want += (i ? ", " : "") + (expected_shape[i] < 0 ? std::string("*") : std::to_string(expected_shape[i]));
      return error(Code::kInvalidArgument, fmt::format("'{}': tensor '{}' has shape {} (expected {})", path_, name,
                                                       shape_text(t->shape), want + "]"));
    }
  }
  const uint64_t body = file_size_ - data_start_;
  if (t->end > body)
    return error(Code::kInvalidArgument,
                 fmt::format("'{}': tensor '{}' runs past the end of the file (data bytes [{}, {}), the file holds "
                             "{}): truncated?",
                             path_, name, t->begin, t->end, body));
  const int64_t n = t->numel();
  if (n > kMaxRead) return error(Code::kTooLarge, fmt::format("'{}': tensor '{}' has {} elements, too many", path_, name, n));
  File f(std::fopen(path_.c_str(), "rb"));
  if (!f) return error(Code::kIoError, fmt::format("cannot read '{}': {}", path_, std::strerror(errno)));
  if (std::fseek(f.get(), long(data_start_ + t->begin), SEEK_SET) != 0)
    return error(Code::kIoError, fmt::format("'{}': cannot seek to tensor '{}'", path_, name));
  std::vector<unsigned char> bytes(t->end - t->begin);
  if (!bytes.empty() && std::fread(bytes.data(), 1, bytes.size(), f.get()) != bytes.size())
    return error(Code::kIoError, fmt::format("'{}': reading tensor '{}' failed (file truncated?)", path_, name));
  const int es = dtype_size(t->dtype);
  std::vector<double> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[size_t(i)] = decode_element(bytes.data() + i * es, t->dtype);
  return out;
}

Status write_safetensors(const std::string& path, std::span<const TensorData> tensors,
                         const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string data;
  for (const TensorData& t : tensors) {
    if (!is_float_dtype(t.dtype))
      return error(Code::kInvalidArgument, fmt::format("tensor '{}': cannot write dtype '{}'", t.name, t.dtype));
    int64_t n = 1;
    for (int64_t d : t.shape) {
      if (d < 0) return error(Code::kInvalidArgument, fmt::format("tensor '{}': negative extent {}", t.name, d));
      n *= d;
    }
    if (n != int64_t(t.values.size()))
      return error(Code::kInvalidArgument, fmt::format("tensor '{}': {} values for shape {} ({} elements)", t.name,
                                                       t.values.size(), shape_text(t.shape), n));
    if (t.name == "__metadata__" || header.contains(t.name))
      return error(Code::kInvalidArgument, fmt::format("tensor name '{}' is reserved or repeated", t.name));
    const uint64_t begin = data.size();
    for (double v : t.values) {
      if (t.dtype == "F64") store_le(data, std::bit_cast<uint64_t>(v), 8);
      else if (t.dtype == "F32") store_le(data, std::bit_cast<uint32_t>(float(v)), 4);
      else if (t.dtype == "F16") store_le(data, encode_f16(v), 2);
      else store_le(data, encode_bf16(v), 2);
    }
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {begin, uint64_t(data.size())}}};
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');  // keep the data 8-byte aligned, as the format recommends
  std::string prefix;
  store_le(prefix, h.size(), 8);
  AtomicFile f;
  if (Status s = f.open(path); !s.is_ok()) return s;
  for (std::string_view part : {std::string_view(prefix), std::string_view(h), std::string_view(data)})
    if (Status s = f.write(part); !s.is_ok()) return s;
  return f.commit();
}

}  // namespace mdnstab
