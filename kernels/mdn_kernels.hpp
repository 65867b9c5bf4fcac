// Plain C++ host API of the MDN GPU kernels (DESIGN.md sections 2 and 9): no CUDA
// type crosses it, so src/ and the CLI include it without nvcc. The recurrent
// forward pass is checked against the CPU reference src/mdnstab/recurrent_ref.hpp
// in tests/gpu/test_gpu_recurrent.cpp; kernels/recurrent.cu implements it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

namespace mdnstab::kernels {

enum class Status {
  kOk = 0,
  kInvalidArgument,  // a shape, pointer or option is wrong; the message names it
  kUnsupported,      // valid but outside what the kernel handles (dk > 256)
  kNoDevice,         // no CUDA device at run time (or built without CUDA)
  kCudaError,        // a CUDA call failed; the message carries CUDA's text
  kNonFinite,        // run_host with probes: the state overflowed; the message says where
};

const char* to_string(Status s);

enum class DType { kF32, kBF16 };
enum class PScale { kAlpha, kOne };  // p_t = alpha_t k^_t, or p_t = k^_t

// One forward pass of the MDN recurrence (DESIGN.md section 2) over B sequences of
// T tokens (or num_seqs packed sequences when cu_seqlens is given), H heads each.
// Device pointers for run(), host pointers for run_host(). fp32 state throughout.
struct RecurrentParams {
  int64_t batch = 1, steps = 0, heads = 1, dk = 0, dv = 0;  // B, T, H, DK, DV
  DType in_dtype = DType::kF32;   // dtype of q, k, v
  DType out_dtype = DType::kF32;  // dtype of o
  const void* q = nullptr;            // [B,T,H,DK]
  const void* k = nullptr;            // [B,T,H,DK]
  const void* v = nullptr;            // [B,T,H,DV]
  const float* log_alpha = nullptr;   // [B,T,H], <= 0 (-inf allowed: alpha = 0)
  const float* log_mu = nullptr;      // [B,T,H], <= 0
  const float* beta = nullptr;        // [B,T,H], or [B,T,H,DV] when beta_per_channel
  const float* eta = nullptr;         // [B,T,H], or [B,T,H,DV] when eta_per_channel
  bool beta_per_channel = false;
  bool eta_per_channel = false;
  PScale p_scale = PScale::kAlpha;
  bool l2norm_qk = true;  // k^ = k / (|k| + 1e-6), likewise q, inside the kernel
  float scale = std::numeric_limits<float>::quiet_NaN();  // NaN: 1/sqrt(DK)
  // Packed variable-length sequences (batch must be 1): sequence n is tokens
  // [cu_seqlens[n], cu_seqlens[n+1]) of the T packed ones. max_seqlen (the longest
  // sequence) sizes the probe arrays; run() cannot read cu_seqlens from the host.
  const int64_t* cu_seqlens = nullptr;  // [num_seqs+1]
  int64_t num_seqs = 0;
  int64_t max_seqlen = 0;
  const float* s0 = nullptr;  // [N,H,DK,DV] initial S (N = batch or num_seqs); zero when null
  const float* m0 = nullptr;  // [N,H,DK,DV] initial M; zero when null
  void* o = nullptr;          // [B,T,H,DV], out_dtype
  float* s_final = nullptr;   // [N,H,DK,DV], optional
  float* m_final = nullptr;   // [N,H,DK,DV], optional
  // Probes (off when probe_interval == 0). Steps count t = 1..len per sequence.
  // Probe p records after step min((p+1)*N, len): the Frobenius norms of S and M
  // and the largest |o| over steps (p*N, (p+1)*N]; slots past a sequence's end are
  // NaN. first_nonfinite is the first step whose w, M, S or o holds a NaN or inf,
  // -1 if none. P = ceil(max length / N) (probe_count()).
  int64_t probe_interval = 0;
  double* probe_norm_s = nullptr;      // [N,H,P]
  double* probe_norm_m = nullptr;      // [N,H,P]
  float* probe_max_abs_o = nullptr;    // [N,H,P]
  int64_t* first_nonfinite = nullptr;  // [N,H]
  // Launch geometry: 0 picks the CTA width (warps) per shape; tests pin 1, 2 or 4.
  int warps_per_cta = 0;
};

// Sequences N (batch, or num_seqs with cu_seqlens) and probe slots P per sequence.
int64_t num_sequences(const RecurrentParams& p);
int64_t probe_count(const RecurrentParams& p);

// Host-side validation of shapes, pointers and options; `why` names the bad value.
Status check(const RecurrentParams& p, std::string* why = nullptr);

// Enqueues the forward pass on `stream` (a cudaStream_t, or null for the default
// stream). Asynchronous: read the outputs after synchronizing.
Status run(const RecurrentParams& p, void* stream = nullptr, std::string* why = nullptr);

// The launch run() would make for these shapes (for benchmarks and their latency model).
struct LaunchPlan {
  int lanes_per_group = 0;   // G: lanes sharing one value column group (16 or 32)
  int rows_per_lane = 0;     // key rows each lane holds
  int cols_per_lane = 0;     // value columns each lane holds
  int warps_per_cta = 0;
  int64_t ctas = 0;
  int ctas_per_sm = 0;       // occupancy limit
  int smem_bytes = 0;        // dynamic shared memory per CTA
  int registers = 0;         // per thread
  int local_bytes = 0;       // per thread (spills)
  int sms = 0;
  int chunk = 0;             // tokens staged per chunk
};
Status plan_launch(const RecurrentParams& p, LaunchPlan* out, std::string* why = nullptr);

// The chunkwise forward pass (DESIGN.md section 5; kernels/chunk_kernel.cuh) in exact
// algebra: inside a chunk of 64 tokens only products of gates <= 1 are formed, never
// the paper's ratios prod(mu) / prod(alpha), so no gate in the closed ranges overflows
// or cancels it. Matrix products in tf32 on tensor cores, the state and everything
// element-wise in fp32. Same parameters as run(), within check_chunk()'s limits:
// dk <= 128, scalar beta and eta, no cu_seqlens, no probes. References: recurrent_ref
// and chunk_plain_ref; tested in tests/gpu/test_gpu_chunk.cpp.
Status check_chunk(const RecurrentParams& p, std::string* why = nullptr);
// Device memory the chunkwise pass keeps between its two launches, in bytes.
size_t chunk_workspace_bytes(const RecurrentParams& p);
// As run(): enqueued on `stream`. `workspace` holds chunk_workspace_bytes(p) bytes of
// device memory, or is null: then it is allocated and freed on the stream.
Status run_chunk(const RecurrentParams& p, void* workspace = nullptr, void* stream = nullptr,
                 std::string* why = nullptr);

enum class Algorithm { kRecurrent, kChunk };

// Host-memory convenience for the CLI and tests: copies the inputs to the device,
// runs, copies the outputs back, synchronizes. With probes on, a run whose state
// went non-finite returns kNonFinite saying where (the outputs are still filled).
Status run_host(const RecurrentParams& host, std::string* why = nullptr, Algorithm alg = Algorithm::kRecurrent);

// Number of CUDA devices; 0 with the reason in `why` when none can be used.
int device_count(std::string* why = nullptr);
// "NVIDIA H100 80GB HBM3, 132 SMs" or the reason there is none.
std::string device_name();

}  // namespace mdnstab::kernels
