// Many-configurations mode (DESIGN.md section 4, tiers 2 and 3 measured): thousands
// to millions of independent heads of the MDN recurrence with one value column, each
// with its own gates and key schedule made inside the kernel (kernels/keygen.hpp),
// the state renormalized by exact powers of two so runs of 10^6 steps and more give
// growth rates. Plain C++ (no CUDA type): the GPU side is kernels/many_config.cu, the
// CPU reference src/core/many_config_ref.cpp; tests/gpu/test_gpu_many_config.cpp
// replays GPU heads on the CPU.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

#include "keygen.hpp"
#include "mdn_kernels.hpp"

namespace mdnstab::kernels {

// One head: which gate rows and keys it uses, its value input, its random stream.
// Its state is (S column, M column) in R^{2 DK}, started from a random normal
// vector (domain kInitDomain, step 0 for S and 1 for M).
struct ManyHead {
  std::uint32_t gate_mode = keygen::kGateConstant;  // keygen::GateMode
  std::uint32_t gate_first = 0;                     // first row of gate_table
  std::uint32_t gate_count = 1;                     // rows (cycle, random); 2 for box (lo, hi)
  std::uint32_t key_mode = keygen::kKeyRandom;      // keygen::KeyMode
  std::uint32_t key_first = 0;                      // plane keys: first row of key_table
  std::uint32_t key_period = 1;                     // plane keys: P rows, used in turn
  double drift = 0;                                 // plane keys: rotation (radians) per period
  double v_std = 0;                                 // v_t ~ N(0, v_std^2); 0: v = 0 (linear system)
  std::uint64_t stream = 0;                         // random stream (the head's global id)
};

// Flags per head.
enum ManyFlag : std::int32_t {
  kFlagZero = 1,       // the state became exactly zero: log norms after that are -inf
  kFlagUnderflow = 2,  // |x|^2 fell below 2^-100 between two renormalizations: rates are bounds
  kFlagNonFinite = 4,  // a NaN or inf in the state (bad gates or an overflowing v scale)
};

struct ManyConfigParams {
  std::int64_t heads = 0;    // H
  int dk = 0;                // DK, 1..256
  std::int64_t burn_in = 0;  // steps before the first checkpoint
  std::int64_t steps = 0;    // measured steps
  int checkpoints = 1;       // K >= 1: log norms after burn_in + floor(j * steps / K) steps, j = 0..K
  std::uint64_t seed = 0;
  bool p_alpha = true;       // p_t = alpha k^ (true) or k^ (DESIGN.md section 2)
  const ManyHead* head = nullptr;       // [H]
  const double* gate_table = nullptr;   // [gate_rows,4]: alpha, beta, mu, eta
  std::int64_t gate_rows = 0;
  const double* key_table = nullptr;    // [key_rows,2]: (cos, sin) of unit plane keys
  std::int64_t key_rows = 0;
  // Outputs (host memory).
  double* log_norm = nullptr;      // [H,K+1]: natural log of |(S, M)| at each checkpoint
  std::int32_t* flags = nullptr;   // [H]: ManyFlag bits
  int max_devices = 0;             // GPU: use at most this many devices (0: all visible)
};

// Growth rate per step of head h from its checkpoints: (L[K] - L[0]) / steps.
inline double many_rate(const ManyConfigParams& p, std::int64_t h) {
  const double* L = p.log_norm + h * (p.checkpoints + 1);
  return (L[p.checkpoints] - L[0]) / double(p.steps);
}

// Step index (0-based count of steps done) of checkpoint j.
inline std::int64_t many_checkpoint_step(const ManyConfigParams& p, int j) {
  return p.burn_in + p.steps / p.checkpoints * j + (p.steps % p.checkpoints) * j / p.checkpoints;
}

// Validation shared by the GPU entry and the CPU reference; `why` names the bad value.
inline Status check(const ManyConfigParams& p, std::string* why = nullptr) {
  auto bad = [why](const std::string& m) {
    if (why) *why = m;
    return Status::kInvalidArgument;
  };
  auto num = [](std::int64_t x) { return std::to_string(x); };
  if (p.heads < 1) return bad("heads = " + num(p.heads) + " must be >= 1");
  if (p.heads > (std::int64_t{1} << 40)) return bad("heads = " + num(p.heads) + " is above 2^40");
  if (p.dk < 1 || p.dk > 256) {
    if (why) *why = "dk = " + num(p.dk) + " must be in [1, 256]";
    return p.dk > 256 ? Status::kUnsupported : Status::kInvalidArgument;
  }
  if (p.steps < 1) return bad("steps = " + num(p.steps) + " must be >= 1");
  if (p.burn_in < 0) return bad("burn_in = " + num(p.burn_in) + " must be >= 0");
  if (p.burn_in + p.steps >= (std::int64_t{1} << 40)) return bad("burn_in + steps is above 2^40");
  if (p.checkpoints < 1 || p.checkpoints > 4096)
    return bad("checkpoints = " + num(p.checkpoints) + " must be in [1, 4096]");
  if (p.checkpoints > p.steps) return bad("checkpoints = " + num(p.checkpoints) + " exceeds steps = " + num(p.steps));
  if (!p.head) return bad("head (the per-head configurations) must be given");
  if (!p.log_norm || !p.flags) return bad("the outputs log_norm and flags must be given");
  if (p.gate_rows < 1 || !p.gate_table) return bad("gate_table must hold at least one row");
  for (std::int64_t r = 0; r < p.gate_rows; ++r) {
    const double* g = p.gate_table + 4 * r;
    static const char* names[4] = {"alpha", "beta", "mu", "eta"};
    for (int i = 0; i < 4; ++i) {
      const double hi = i == 3 ? 2.0 : 1.0;
      if (!(g[i] >= 0.0 && g[i] <= hi))  // NaN fails too
        return bad("gate row " + num(r) + ": " + names[i] + " = " + std::to_string(g[i]) + " is outside [0, " +
                   (i == 3 ? "2" : "1") + "]");
    }
  }
  for (std::int64_t r = 0; r < p.key_rows; ++r) {
    const double c = p.key_table[2 * r], s = p.key_table[2 * r + 1];
    if (!(std::abs(c * c + s * s - 1.0) < 1e-9))
      return bad("key row " + num(r) + " = (" + std::to_string(c) + ", " + std::to_string(s) + ") is not a unit vector");
  }
  for (std::int64_t h = 0; h < p.heads; ++h) {
    const ManyHead& m = p.head[h];
    const std::string at = "head " + num(h) + ": ";
    if (m.gate_mode > keygen::kGateBox) return bad(at + "gate_mode " + num(m.gate_mode) + " is unknown");
    if (m.gate_count < 1) return bad(at + "gate_count must be >= 1");
    if (m.gate_mode == keygen::kGateConstant && m.gate_count != 1) return bad(at + "a constant gate uses 1 row");
    if (m.gate_mode == keygen::kGateBox && m.gate_count != 2) return bad(at + "a gate box uses 2 rows (lo, hi)");
    if (std::int64_t(m.gate_first) + m.gate_count > p.gate_rows)
      return bad(at + "gate rows [" + num(m.gate_first) + ", " + num(std::int64_t(m.gate_first) + m.gate_count) +
                 ") exceed the table's " + num(p.gate_rows));
    if (m.gate_mode == keygen::kGateBox)
      for (int i = 0; i < 4; ++i)
        if (p.gate_table[4 * m.gate_first + i] > p.gate_table[4 * (m.gate_first + 1) + i])
          return bad(at + "gate box lo > hi in column " + num(i));
    if (m.key_mode > keygen::kKeyPlane) return bad(at + "key_mode " + num(m.key_mode) + " is unknown");
    if (m.key_mode == keygen::kKeyPlane) {
      if (p.dk < 2) return bad(at + "plane keys need dk >= 2");
      if (m.key_period < 1) return bad(at + "key_period must be >= 1");
      if (std::int64_t(m.key_first) + m.key_period > p.key_rows)
        return bad(at + "key rows exceed the table's " + num(p.key_rows));
      if (!std::isfinite(m.drift)) return bad(at + "drift " + std::to_string(m.drift) + " is not finite");
    }
    if (!(m.v_std >= 0.0 && m.v_std <= 1e6)) return bad(at + "v_std = " + std::to_string(m.v_std) + " must be in [0, 1e6]");
    if (m.stream >= (std::uint64_t{1} << 48)) return bad(at + "stream is above 2^48");
  }
  if (p.max_devices < 0) return bad("max_devices = " + num(p.max_devices) + " must be >= 0");
  return Status::kOk;
}

// What a GPU run used.
struct ManyConfigInfo {
  int devices = 0;          // GPUs the heads were split over
  std::string device_name;  // of device 0 ("NVIDIA H100 80GB HBM3, 132 SMs")
  double seconds = 0;       // wall time of the kernels (all devices, upload and download excluded)
  double head_steps = 0;    // heads * (burn_in + steps)
};

// Runs the heads on every visible GPU (at most max_devices), split into contiguous
// ranges; results do not depend on the split (each head has its own stream).
// Host memory in and out; synchronous. kNoDevice without a GPU.
Status run_many_config(const ManyConfigParams& p, ManyConfigInfo* info = nullptr, std::string* why = nullptr);

// ---- the full recurrent kernel (kernels/recurrent.cu) over long random inputs ----

// B sequences of T tokens, one head, DK keys, DV value columns: k (and q = k) and v
// standard normal from the counter generator (domains kInputK, kInputV, stream =
// sequence), gates per token from the sequence's ManyHead gate rule (key fields
// ignored). Run in segments of `segment` tokens, the state carried over. Per sequence:
// the first non-finite step (1-based, -1 if none) and the largest Frobenius norm of
// (S, M) over the probes (one probe per `probe_interval` steps).
struct LongRunParams {
  std::int64_t batch = 0, steps = 0;
  int dk = 0, dv = 8;
  std::uint64_t seed = 0;
  bool p_alpha = true;
  const ManyHead* head = nullptr;      // [B] gate rules (stream: the input stream)
  const double* gate_table = nullptr;  // [gate_rows,4]
  std::int64_t gate_rows = 0;
  std::int64_t segment = 4096;         // tokens per launch
  std::int64_t probe_interval = 256;
  // Outputs (host memory).
  std::int64_t* first_nonfinite = nullptr;  // [B]
  double* max_norm = nullptr;               // [B]: max over probes of sqrt(|S|_F^2 + |M|_F^2) (finite ones)
  double* final_norm = nullptr;             // [B]: at the last probe (NaN once non-finite)
};

// The inputs of a long run at (sequence b, token t): k[DK] and v[DV] (shared with the
// CPU reference so it can replay a sequence).
template <class T>
MDNSTAB_HD void long_run_inputs(std::uint64_t seed, std::uint64_t stream, std::uint64_t t, int dk, int dv, T* k, T* v) {
  T z[4];
  for (int i = 0; i < dk; i += 4) {
    keygen::normal4(seed, stream, t, keygen::kInputKDomain, std::uint32_t(i / 4), z);
    for (int j = 0; j < 4 && i + j < dk; ++j) k[i + j] = z[j];
  }
  for (int i = 0; i < dv; i += 4) {
    keygen::normal4(seed, stream, t, keygen::kInputVDomain, std::uint32_t(i / 4), z);
    for (int j = 0; j < 4 && i + j < dv; ++j) v[i + j] = z[j];
  }
}

Status run_long_recurrent(const LongRunParams& p, std::string* why = nullptr);

}  // namespace mdnstab::kernels
