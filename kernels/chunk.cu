// Host side of the chunkwise MDN forward pass (kernels/mdn_kernels.hpp): validation,
// workspace and the two launches of kernels/chunk_kernel.cuh.
// References: src/mdnstab/recurrent_ref.hpp and chunk_plain_ref (src/mdnstab/chunk_ref.hpp);
// tested in tests/gpu/test_gpu_chunk.cpp.
#include <cmath>
#include <string>
#include <utility>

#include "chunk_kernel.cuh"
#include "mdn_kernels.hpp"

namespace mdnstab::kernels {

namespace {

namespace cd = chunk_detail;

Status fail(Status s, std::string* why, const std::string& msg) {
  if (why) *why = msg;
  return s;
}

Status cuda_fail(cudaError_t e, std::string* why, const char* what) {
  return fail(Status::kCudaError, why, std::string(what) + ": " + cudaGetErrorString(e));
}

template <int DKP, class In>
Status launch(const cd::ChunkArgs& a, int64_t batch, cudaStream_t st, std::string* why) {
  if (cudaError_t e = cd::launch_prep<DKP, In>(a, batch, st); e != cudaSuccess)
    return cuda_fail(e, why, "chunk prep launch");
  if (cudaError_t e = cd::launch_scan<DKP, In>(a, batch, st); e != cudaSuccess)
    return cuda_fail(e, why, "chunk scan launch");
  return Status::kOk;
}

}  // namespace

Status check_chunk(const RecurrentParams& p, std::string* why) {
  if (Status s = check(p, why); s != Status::kOk) return s;
  auto unsupported = [why](const std::string& m) { return fail(Status::kUnsupported, why, m); };
  if (p.dk > 128) return unsupported("dk = " + std::to_string(p.dk) + " is above the chunkwise kernel's limit of 128");
  if (p.beta_per_channel || p.eta_per_channel)
    return unsupported("the chunkwise kernel takes one beta and one eta per head and token, not per value channel");
  if (p.cu_seqlens) return unsupported("the chunkwise kernel does not take packed sequences (cu_seqlens)");
  if (p.probe_interval > 0) return unsupported("the chunkwise kernel has no probes (probe_interval must be 0)");
  if (p.batch > 65535 || p.heads > 65535)
    return unsupported("batch and heads must be at most 65535 for the chunkwise kernel");
  if (cd::chunks_of(p.steps) > (int64_t{1} << 31) - 1) return unsupported("too many chunks");
  return Status::kOk;
}

size_t chunk_workspace_bytes(const RecurrentParams& p) {
  return static_cast<size_t>(p.batch * p.heads * cd::chunks_of(p.steps)) * cd::kWsFloats * sizeof(float);
}

Status run_chunk(const RecurrentParams& p, void* workspace, void* stream, std::string* why) {
  if (Status s = check_chunk(p, why); s != Status::kOk) return s;
  if (device_count(why) <= 0) return Status::kNoDevice;
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  cd::ChunkArgs a = cd::make_args(p);
  if (p.steps == 0) {  // no token: the final state is the initial one
    const size_t bytes = static_cast<size_t>(p.batch * p.heads * p.dk * p.dv) * sizeof(float);
    for (auto [dst, src] : {std::pair{p.s_final, p.s0}, std::pair{p.m_final, p.m0}}) {
      if (!dst) continue;
      const cudaError_t e =
          src ? cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, st) : cudaMemsetAsync(dst, 0, bytes, st);
      if (e != cudaSuccess) return cuda_fail(e, why, "copy of the initial state");
    }
    return Status::kOk;
  }
  void* owned = nullptr;
  if (!workspace) {
    if (cudaError_t e = cudaMallocAsync(&owned, chunk_workspace_bytes(p), st); e != cudaSuccess)
      return cuda_fail(e, why, "chunk workspace allocation");
    workspace = owned;
  }
  a.ws = static_cast<float*>(workspace);
  Status s;
  const bool bf16 = p.in_dtype == DType::kBF16;
  if (p.dk <= 64)
    s = bf16 ? launch<64, __nv_bfloat16>(a, p.batch, st, why) : launch<64, float>(a, p.batch, st, why);
  else
    s = bf16 ? launch<128, __nv_bfloat16>(a, p.batch, st, why) : launch<128, float>(a, p.batch, st, why);
  if (owned) {
    if (cudaError_t e = cudaFreeAsync(owned, st); e != cudaSuccess && s == Status::kOk)
      return cuda_fail(e, why, "chunk workspace release");
  }
  return s;
}

}  // namespace mdnstab::kernels
