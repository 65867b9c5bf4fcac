// Where the chunkwise scan's time goes (reports/bench/chunk-gpu.md): runs the two
// chunkwise kernels of kernels/chunk_kernel.cuh on benchmark inputs with the scan's
// phase clocks on, and prints each phase's cycles per chunk (mean over the scan's CTAs)
// beside the kernels' times. Development only; CI compiles this file.
//   mdnstab_dev_chunk_phases [--shape B,T,H,DK,DV]   (default 8,4096,6,128,256)
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "bench/bench_inputs.cuh"
#include "chunk_kernel.cuh"

namespace cd = mdnstab::kernels::chunk_detail;

namespace {

template <int DKP>
void run(const mdnstab::bench::Dims& s) {
  const mdnstab::bench::InputSet in = mdnstab::bench::make_set(s, 5);
  mdnstab::kernels::RecurrentParams rp;
  rp.batch = s.B; rp.steps = s.T; rp.heads = s.H; rp.dk = s.DK; rp.dv = s.DV;
  rp.in_dtype = rp.out_dtype = mdnstab::kernels::DType::kBF16;
  rp.q = in.q; rp.k = in.k; rp.v = in.v;
  rp.log_alpha = in.la; rp.log_mu = in.lm; rp.beta = in.beta; rp.eta = in.eta;
  CUDA_OK(cudaMalloc(&rp.o, size_t(s.B * s.T * s.H * s.DV) * 2));
  cd::ChunkArgs a = cd::make_args(rp);
  const size_t ctas = size_t((a.DV + cd::kCols - 1) / cd::kCols) * a.H * s.B;
  CUDA_OK(cudaMalloc(&a.ws, mdnstab::kernels::chunk_workspace_bytes(rp)));
  CUDA_OK(cudaMalloc(&a.phase_clocks, ctas * cd::kScanPhases * sizeof(long long)));
  cudaEvent_t e0, e1, e2;
  CUDA_OK(cudaEventCreate(&e0));
  CUDA_OK(cudaEventCreate(&e1));
  CUDA_OK(cudaEventCreate(&e2));
  float prep_ms = 0, scan_ms = 0;
  for (int rep = 0; rep < 3; ++rep) {  // the last repetition is reported
    CUDA_OK(cudaEventRecord(e0));
    CUDA_OK((cd::launch_prep<DKP, __nv_bfloat16>(a, s.B, nullptr)));
    CUDA_OK(cudaEventRecord(e1));
    CUDA_OK((cd::launch_scan<DKP, __nv_bfloat16>(a, s.B, nullptr)));
    CUDA_OK(cudaEventRecord(e2));
    CUDA_OK(cudaEventSynchronize(e2));
    CUDA_OK(cudaEventElapsedTime(&prep_ms, e0, e1));
    CUDA_OK(cudaEventElapsedTime(&scan_ms, e1, e2));
  }
  std::vector<long long> clk(ctas * cd::kScanPhases);
  CUDA_OK(cudaMemcpy(clk.data(), a.phase_clocks, clk.size() * sizeof(long long), cudaMemcpyDeviceToHost));
  static const char* names[cd::kScanPhases] = {"state update (S, M += k^T U)", "wait for the vectors",
                                               "issue v, T, weights loads",    "thread 0's k, q loads",
                                               "  and the barrier after",      "k^S, k^M, q^S, q^M",
                                               "right-hand side",              "U = T (.)",
                                               "o = A q^S - b q^M + (.) U",    "o out, U's weights"};
  double total = 0, per[cd::kScanPhases] = {};
  for (int p = 0; p < cd::kScanPhases; ++p) {
    for (size_t c = 0; c < ctas; ++c) per[p] += double(clk[c * cd::kScanPhases + p]);
    per[p] /= double(ctas) * a.n_chunks;
    total += per[p];
  }
  std::printf("shape %ld,%ld,%ld,%ld,%ld: prep %.3f ms, scan %.3f ms (%zu CTAs, %d chunks each)\n", long(s.B),
              long(s.T),
              long(s.H), long(s.DK), long(s.DV), prep_ms, scan_ms, ctas, a.n_chunks);
  std::printf("scan phases, cycles per chunk (mean over CTAs; SM clock ~1.98 GHz):\n");
  for (int p = 0; p < cd::kScanPhases; ++p)
    std::printf("  %-30s %8.0f  %5.1f %%\n", names[p], per[p], 100 * per[p] / total);
  std::printf("  %-30s %8.0f = %.2f us per chunk at 1.98 GHz\n", "total", total, total / 1980.0);
  mdnstab::bench::InputSet copy = in;
  mdnstab::bench::free_set(copy);
  cudaFree(a.ws);
  cudaFree(a.o);
  cudaFree(a.phase_clocks);
}

}  // namespace

int main(int argc, char** argv) {
  mdnstab::bench::Dims s{8, 4096, 6, 128, 256};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    long v[5];
    if (a == "--shape" && i + 1 < argc &&
        std::sscanf(argv[++i], "%ld,%ld,%ld,%ld,%ld", &v[0], &v[1], &v[2], &v[3], &v[4]) == 5) {
      s = {v[0], v[1], v[2], v[3], v[4]};
    } else {
      std::fprintf(stderr, "usage: %s [--shape B,T,H,DK,DV]\n", argv[0]);
      return 2;
    }
  }
  if (s.DK > 128) {
    std::fprintf(stderr, "mdnstab_dev_chunk_phases: dk = %ld is above the chunkwise kernel's limit of 128\n",
                 long(s.DK));
    return 2;
  }
  if (s.DK <= 64) run<64>(s);
  else run<128>(s);
  return 0;
}
