// Reading gate dumps: safetensors [B,T,H] tensors here, CSV through
// gate_csv.hpp; every value validated and named. Tested in tests/test_gate_dump.cpp.
#include "mdnstab/gate_dump.hpp"

#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "mdnstab/gate_csv.hpp"
#include "mdnstab/safetensors.hpp"

namespace mdnstab {

Result<GateDump> read_gate_safetensors(const std::string& path, PScale p) {
  auto r = SafetensorsReader::open(path);
  if (!r.is_ok()) return r.status;
  const SafetensorsReader& st = r.value;
  static constexpr const char* kNames[] = {"log_alpha", "beta", "log_mu", "eta"};
  const TensorInfo* first = st.find(kNames[0]);
  if (!first) return error(Code::kInvalidArgument, fmt::format("'{}': tensor 'log_alpha' is missing", path));
  if (first->shape.size() != 3)
    return error(Code::kInvalidArgument,
                 fmt::format("'{}': tensor 'log_alpha' has {} dimensions (expected [batch, time, heads])", path,
                             first->shape.size()));
  const std::vector<int64_t> shape = first->shape;
  std::vector<double> v[4];
  for (int k = 0; k < 4; ++k) {
    auto t = st.read(kNames[k], shape);
    if (!t.is_ok()) return t.status;
    v[k] = std::move(t.value);
  }
  GateDump d;
  d.batch = shape[0];
  d.time = shape[1];
  d.heads = shape[2];
  d.format = "safetensors";
  const size_t n = v[0].size();
  if (n == 0) return error(Code::kInvalidArgument, fmt::format("'{}': the gate tensors are empty (shape [{}, {}, {}])",
                                                               path, d.batch, d.time, d.heads));
  d.gates.resize(n);
  for (size_t i = 0; i < n; ++i) {
    auto g = Gates::from_log(v[0][i], v[1][i], v[2][i], v[3][i], p);
    if (!g.is_ok()) {
      // Name the tensor whose value was refused (the message starts with its name).
      const std::string& msg = g.status.message;
      const char* which = kNames[0];
      for (const char* nm : kNames)
        if (msg.rfind(std::string(nm) + " ", 0) == 0) which = nm;
      const int64_t h = int64_t(i) % d.heads, t = int64_t(i) / d.heads % d.time, b = int64_t(i) / d.heads / d.time;
      return error(g.status.code,
                   fmt::format("'{}': tensor '{}' at [{}, {}, {}]: {}", path, which, b, t, h, msg));
    }
    d.gates[i] = g.value;
  }
  return d;
}

Result<GateDump> read_gate_dump(const std::string& path, PScale p) {
  // safetensors starts with its header length (8 bytes, little-endian) then '{';
  // a CSV starts with text. Sniff rather than trust the extension.
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) return error(Code::kIoError, fmt::format("cannot read '{}': no such file or not readable", path));
  unsigned char head[9] = {};
  const size_t got = std::fread(head, 1, 9, f.get());
  f.reset();
  bool safetensors = got == 9 && head[8] == '{';
  for (int i = 5; i < 8 && safetensors; ++i) safetensors = head[i] == 0;  // a header length below 2^40
  // A file named .safetensors that does not look like one gets the safetensors
  // reader's own complaint (its header length, its size), not a CSV's.
  if (safetensors || path.ends_with(".safetensors")) return read_gate_safetensors(path, p);
  auto rows = read_gate_csv(path, p);
  if (!rows.is_ok()) return rows.status;
  if (rows.value.empty()) return error(Code::kInvalidArgument, fmt::format("'{}' holds no gate rows", path));
  GateDump d;
  d.batch = 1;
  d.time = int64_t(rows.value.size());
  d.heads = 1;
  d.gates = std::move(rows.value);
  d.format = "csv";
  return d;
}

}  // namespace mdnstab
