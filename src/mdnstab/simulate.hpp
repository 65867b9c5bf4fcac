// One long run of the exact MDN recurrence (DESIGN.md sections 2 and 4) on synthetic
// inputs: random q and v, random or rotating unit keys, fixed, jittered or dumped
// gates; probes give the norm trajectory of S and M, the growth rate fitted over the
// run and the first non-finite step per (batch, head). Runs in segments through a
// SegmentRunner: the CPU reference (recurrent_ref, fp32 like the kernel) or the GPU
// kernel (src/cli/cmd_simulate.cpp). Tested in tests/test_simulate.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "mdnstab/gate_dump.hpp"
#include "mdnstab/gates.hpp"
#include "mdnstab/status.hpp"

namespace mdnstab {

// One segment of tokens for a runner: fp32 inputs, state carried in and out, probes.
struct SimSegment {
  int batch = 1, heads = 1, dk = 0, dv = 0;
  int64_t steps = 0;                // tokens in this segment
  bool bf16 = false;                // inputs are bf16-representable; the GPU passes them as bf16
  PScale p_scale = PScale::kAlpha;
  const float* q = nullptr;         // [B,L,H,DK]
  const float* k = nullptr;         // [B,L,H,DK]
  const float* v = nullptr;         // [B,L,H,DV]
  const float* log_alpha = nullptr; // [B,L,H]
  const float* log_mu = nullptr;    // [B,L,H]
  const float* beta = nullptr;      // [B,L,H]
  const float* eta = nullptr;       // [B,L,H]
  float* s = nullptr;               // [B,H,DK,DV] in: S at the start; out: S at the end
  float* m = nullptr;               // [B,H,DK,DV] likewise M
  float* o = nullptr;               // [B,L,H,DV] scratch output
  int64_t probe_interval = 1;       // the segment starts on a probe boundary
  int64_t probe_count = 0;          // ceil(steps / interval)
  double* norm_s = nullptr;         // [B,H,P]
  double* norm_m = nullptr;         // [B,H,P]
  double* max_abs_o = nullptr;      // [B,H,P]
  int64_t* first_nonfinite = nullptr;  // [B,H], step within the segment (1-based) or -1
};
using SegmentRunner = std::function<Status(const SimSegment&)>;

// The CPU reference in fp32 (the kernel's state precision), probes included.
Status run_segment_cpu(const SimSegment& seg);

struct SimulateOptions {
  int batch = 1, heads = 1, dk = 0, dv = 0;
  int64_t steps = 0;
  uint64_t seed = 1;
  Gates gates;               // fixed gates (p_scale taken from here)
  double gate_jitter = 0;    // >0: per token and head, each gate uniform within +/- jitter x its
                             // range (1 for alpha, beta, mu; 2 for eta), clipped to the range
  const GateDump* dump = nullptr;  // per-token gates, cycled over [B,T,H] when smaller
  bool rotating_keys = false;      // keys cos(t a) u + sin(t a) w in a random plane per (b, h)
  double angle = 0;
  bool bf16 = false;               // round q, k, v to bf16
  int64_t probe_every = 0;         // 0: max(1, steps / 1000)
  int64_t segment = 0;             // tokens per runner call; 0: sized to ~64 M input floats
  double fit_skip = 0.1;           // fraction of the finite run left out of the growth fit (transient)
};

struct SimProbe {
  int batch = 0, head = 0;
  int64_t step = 0;  // 1-based step the probe was taken after
  double norm_s = 0, norm_m = 0, max_abs_o = 0;
};

struct SimHead {
  int batch = 0, head = 0;
  double growth_rate = 0;          // d ln|S|_F / d step, least squares; NaN when too few points
  int64_t fit_points = 0;
  int64_t first_nonfinite = -1;    // step, or -1
  double final_norm_s = 0, final_norm_m = 0;
};

struct SimulateResult {
  std::vector<SimProbe> probes;  // by (batch, head), then step
  std::vector<SimHead> heads;
  int64_t probe_every = 0, segment = 0;
  int64_t steps_run = 0;         // < steps when every head went non-finite and the run stopped
  double seconds = 0;
};

// Least-squares slope of ln(y) against x over the finite, positive y (NaN if < 2).
double fit_log_slope(const std::vector<double>& x, const std::vector<double>& y, int64_t* points = nullptr);

Result<SimulateResult> simulate(const SimulateOptions& opt, const SegmentRunner& runner);

}  // namespace mdnstab
