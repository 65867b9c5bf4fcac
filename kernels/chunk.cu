// Host side of the chunkwise MDN forward pass (kernels/mdn_kernels.hpp): validation,
// workspace and the two launches of kernels/chunk_kernel.cuh.
// References: src/mdnstab/recurrent_ref.hpp and chunk_plain_ref (src/mdnstab/chunk_ref.hpp);
// tested in tests/gpu/test_gpu_chunk.cpp.
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>

#include "chunk_kernel.cuh"
#include "mdn_kernels.hpp"
#include "pass_args.hpp"

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

int64_t chunks_of(const RecurrentParams& p) { return (p.steps + cd::kC - 1) / cd::kC; }

template <int DKP, class In>
Status launch(const cd::ChunkArgs& a, int64_t batch, cudaStream_t st, std::string* why) {
  constexpr int prep = cd::prep_smem_bytes<DKP>(), scan = cd::scan_smem_bytes<DKP>();
  auto* kp = &cd::chunk_prep_kernel<DKP, In>;
  auto* ks = &cd::chunk_scan_kernel<DKP, In>;
  if (cudaError_t e = cudaFuncSetAttribute(kp, cudaFuncAttributeMaxDynamicSharedMemorySize, prep); e != cudaSuccess)
    return cuda_fail(e, why, "cudaFuncSetAttribute (chunk prep)");
  if (cudaError_t e = cudaFuncSetAttribute(ks, cudaFuncAttributeMaxDynamicSharedMemorySize, scan); e != cudaSuccess)
    return cuda_fail(e, why, "cudaFuncSetAttribute (chunk scan)");
  const dim3 gp(static_cast<unsigned>(a.n_chunks), static_cast<unsigned>(a.H), static_cast<unsigned>(batch));
  kp<<<gp, cd::kThreads, prep, st>>>(a);
  if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return cuda_fail(e, why, "chunk prep launch");
  const dim3 gs(static_cast<unsigned>((a.DV + cd::kCols - 1) / cd::kCols), static_cast<unsigned>(a.H),
                static_cast<unsigned>(batch));
  ks<<<gs, cd::kThreads, scan, st>>>(a);
  if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return cuda_fail(e, why, "chunk scan launch");
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
  if (chunks_of(p) > (int64_t{1} << 31) - 1) return unsupported("too many chunks");
  return Status::kOk;
}

size_t chunk_workspace_bytes(const RecurrentParams& p) {
  return static_cast<size_t>(p.batch * p.heads * chunks_of(p)) * cd::kWsFloats * sizeof(float);
}

Status run_chunk(const RecurrentParams& p, void* workspace, void* stream, std::string* why) {
  if (Status s = check_chunk(p, why); s != Status::kOk) return s;
  if (device_count(why) <= 0) return Status::kNoDevice;
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  cd::ChunkArgs a;
  copy_pass_args(a, p);
  a.n_chunks = static_cast<int>(chunks_of(p));
  auto aligned = [](const void* x) { return reinterpret_cast<uintptr_t>(x) % 16 == 0; };
  a.o_vec4 = p.dv % 4 == 0 && aligned(p.o);
  a.kq_vec4 = p.dk % 4 == 0 && aligned(p.q) && aligned(p.k);
  a.v_vec4 = p.dv % 4 == 0 && aligned(p.v);
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
