// A small safetensors reader and writer: an 8-byte little-endian header length,
// a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {...}},
// then the raw little-endian tensor bytes. The reader parses the header once
// and reads only the tensors asked for, with seek + read (never the whole
// file). Tested with hand-assembled valid and broken files in tests/test_safetensors.cpp.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mdnstab/status.hpp"

namespace mdnstab {

struct TensorInfo {
  std::string name;
  std::string dtype;            // "F64", "F32", "F16", "BF16", "I64", ...
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte offsets into the data section
  int64_t numel() const;
};

// Bytes per element of a safetensors dtype; 0 for an unknown one.
int dtype_size(std::string_view dtype);

class SafetensorsReader {
 public:
  // Reads and validates the header: its length against the file size (and a
  // 100 MB cap), the JSON, and every entry (known dtype, non-negative shape,
  // data_offsets [begin, end] with end - begin = numel * dtype size). Errors
  // name the file and, for an entry, the tensor.
  static Result<SafetensorsReader> open(const std::string& path);

  const std::string& path() const { return path_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // sorted by name
  const TensorInfo* find(std::string_view name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // Reads one tensor, converted to double. Fails, naming the tensor, when it is
  // missing, its dtype is not F64, F32, F16 or BF16, its shape differs from
  // `expected_shape` (when given; -1 matches any extent), or its bytes run
  // past the end of the file (a truncated body).
  Result<std::vector<double>> read(std::string_view name, std::span<const int64_t> expected_shape = {}) const;

 private:
  std::string path_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
  uint64_t data_start_ = 0;  // 8 + header length
  uint64_t file_size_ = 0;
};

// A tensor to write: values are rounded to `dtype` (F64, F32, F16 or BF16,
// round to nearest even).
struct TensorData {
  std::string name;
  std::string dtype = "F32";
  std::vector<int64_t> shape;
  std::vector<double> values;
};

// Writes a safetensors file through AtomicFile (nothing partial on failure).
Status write_safetensors(const std::string& path, std::span<const TensorData> tensors,
                         const std::map<std::string, std::string>& metadata = {});

// The 16-bit float encodings (IEEE binary16 and bfloat16), round to nearest even.
double decode_f16(uint16_t bits);
double decode_bf16(uint16_t bits);
uint16_t encode_f16(double x);
uint16_t encode_bf16(double x);

}  // namespace mdnstab
