// Gate samples dumped from a real model (DESIGN.md section 7, `constraint
// --param FILE`): a CSV of gate rows (gate_csv.hpp) or a safetensors file with
// the tensors log_alpha, beta, log_mu, eta of shape [B,T,H] as the layer hands
// them to its kernel. Tested in tests/test_gate_dump.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mdnstab/gates.hpp"
#include "mdnstab/status.hpp"

namespace mdnstab {

struct GateDump {
  int64_t batch = 0, time = 0, heads = 0;  // a CSV is one batch of one head
  std::vector<Gates> gates;                // [B,T,H]
  std::string format;                      // "csv" or "safetensors"

  const Gates& at(int64_t b, int64_t t, int64_t h) const { return gates[size_t((b * time + t) * heads + h)]; }
};

// Dispatches on the content: a safetensors file (8-byte header length, then '{') or
// a path ending in .safetensors, otherwise CSV. Every value is checked; an error names
// the tensor and index (or CSV row and column). An empty dump is an error.
Result<GateDump> read_gate_dump(const std::string& path, PScale p = PScale::kAlpha);

// The safetensors form alone. Reads only the four tensors (any of F64, F32,
// F16, BF16); all must have the same shape [B,T,H].
Result<GateDump> read_gate_safetensors(const std::string& path, PScale p = PScale::kAlpha);

}  // namespace mdnstab
