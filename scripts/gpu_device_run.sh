#!/usr/bin/env bash
# One device call (run from the repository root with the build folder carried):
#   the gpu tests, compute-sanitizer memcheck and racecheck on the small gpu tests, the
#   numbered kernel versions, the benchmark, Nsight Compute on one launch of each head
#   size, simulate on the GPU against the CPU reference and one 2M-token GPU run (and
#   the SASS with SASS=1, the official recurrent Triton kernel with REFERENCE=PATH of its
#   fused_recurrent.py). Logs under $OUT (8 files at most come back).
#   With --chunk-only: the chunkwise pass alone (its tests, compute-sanitizer on them,
#   its benchmark and Nsight Compute on its two kernels).
#   GPUBUILD=.gpubuild bash .gpubuild/gpu_device_run.sh [--no-sanitizer] [--no-ncu] [--chunk-only]
set -uo pipefail
G=${GPUBUILD:-.gpubuild}
OUT=${OUT:-/tmp/mdnstab_gpu_out}
mkdir -p "$OUT"
export LD_LIBRARY_PATH="$G/lib:${LD_LIBRARY_PATH:-}"
sanitizer=1 ncu=1 chunk_only=0
for a in "$@"; do
  case $a in
    --no-sanitizer) sanitizer=0 ;;
    --no-ncu) ncu=0 ;;
    --chunk-only) chunk_only=1 ;;
  esac
done
commit=$(cat "$G/COMMIT" 2>/dev/null || echo unknown)
cuda_bin=/usr/local/cuda/bin
tool() { command -v "$1" || echo "$cuda_bin/$1"; }
# compute-sanitizer memcheck and racecheck on the gpu tests that match $1.
sanitize() {
  local cs t
  cs=$(tool compute-sanitizer)
  for t in memcheck racecheck; do
    echo "== compute-sanitizer --tool $t ($1)"
    timeout 240 "$cs" --tool $t --error-exitcode 9 "$G/mdnstab_gpu_tests" --gtest_color=no --gtest_filter="$1" \
      >>"$OUT/sanitizer.log" 2>&1
    echo "$t rc=$?" | tee -a "$OUT/sanitizer.log"
    grep -E "ERROR SUMMARY|RACECHECK SUMMARY|Hazard|Error" "$OUT/sanitizer.log" | tail -3
  done
}

{
  date -u
  nvidia-smi
  nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,clocks.mem,power.draw,temperature.gpu --format=csv
} >"$OUT/device.txt" 2>&1

if [ $chunk_only = 1 ]; then
  echo "== chunkwise tests"
  "$G/mdnstab_gpu_tests" --gtest_color=no --gtest_filter='GpuChunk*' >"$OUT/tests.log" 2>&1
  echo "chunk tests rc=$?"
  grep -E "^\[  (PASSED|FAILED|SKIPPED) |^\[ chunk|tests ran|Failure|error" "$OUT/tests.log" | head -60
  [ $sanitizer = 1 ] && sanitize 'GpuChunk.RandomF32*:GpuChunk.PaddedKey*:GpuChunk.ShortSequences*:GpuChunk.NoTokens*'
  echo "== chunk benchmark"
  "$G/mdnstab_bench_chunk" >"$OUT/bench_chunk.log" 2>&1
  echo "bench rc=$?"
  "$G/mdnstab_dev_chunk_phases" >>"$OUT/bench_chunk.log" 2>&1
  echo "phases rc=$?"
  if [ $ncu = 1 ]; then
    timeout 180 "$(tool ncu)" --clock-control none -k regex:chunk_ --launch-skip 8 --launch-count 2 \
      --section SpeedOfLight --section ComputeWorkloadAnalysis --section WarpStateStats --section Occupancy \
      --section LaunchStats --section MemoryWorkloadAnalysis --section SourceCounters \
      "$G/mdnstab_bench_chunk" --quick --reps 3 >"$OUT/ncu_chunk.txt" 2>&1
    echo "ncu rc=$?"
    grep -E "chunk_(prep|scan)_kernel|Duration|Registers Per|Achieved Occupancy|Compute \(SM\) Throughput|Memory Throughput" "$OUT/ncu_chunk.txt" | head -30
  fi
  cat "$OUT/bench_chunk.log"
  exit 0
fi

echo "== gpu tests"
"$G/mdnstab_gpu_tests" --gtest_color=no >"$OUT/tests.log" 2>&1
echo "gpu tests rc=$?"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |tests ran" "$OUT/tests.log"

if [ $sanitizer = 1 ]; then
  sanitize 'GpuRecurrent.RandomBF16*:GpuRecurrent.Varlen*:GpuRecurrent.OddSizes*:GpuRecurrent.SmallHead*:GpuRecurrent.LargestHead*:GpuRecurrent.PerChannel*'
fi

echo "== numbered versions"
"$G/mdnstab_dev_recurrent" >"$OUT/bench.log" 2>&1  # versions first, then the benchmark
echo "dev rc=$?"

echo "== benchmark"
"$G/mdnstab_bench_recurrent" --csv "$OUT/recurrent.csv" --commit "$commit" >>"$OUT/bench.log" 2>&1
echo "bench rc=$?"
"$G/mdnstab_bench_chunk" >>"$OUT/bench.log" 2>&1
echo "chunk bench rc=$?"
nvidia-smi --query-gpu=clocks.sm,clocks.max.sm,power.draw,temperature.gpu --format=csv >>"$OUT/device.txt" 2>&1

if [ $ncu = 1 ]; then
  echo "== ncu"
  n=$(tool ncu)
  for shape in 8,512,6,128,256 4,256,6,256,512; do
    timeout 120 "$n" --clock-control none -k regex:recurrent_fwd --launch-skip 4 --launch-count 1 \
      --section SpeedOfLight --section ComputeWorkloadAnalysis --section WarpStateStats --section InstructionStats \
      --section Occupancy --section LaunchStats \
      --metrics 'regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio' \
      "$G/mdnstab_dev_recurrent" 3 --shape $shape >>"$OUT/ncu.txt" 2>&1
    echo "ncu $shape rc=$?"
  done
fi
echo "== simulate: GPU kernel against the CPU reference, and one long GPU run"
{
  gates="--alpha 0.99 --beta 0.9 --mu 0.99 --eta 1.9"
  for dev in gpu cpu; do  # exploding gates, rotating keys: the same first non-finite step
    "$G/mdnstab" --format json simulate --device $dev --heads 2 --dk 128 --dv 64 --steps 2000 --keys rotating:0.8 \
      --probe-every 20 $gates
  done
  for dev in gpu cpu; do  # stable jittered gates: the same growth rate
    "$G/mdnstab" --format json simulate --device $dev --heads 2 --dk 128 --dv 64 --steps 20000 --gate-jitter 0.05 \
      --alpha 0.97 --beta 0.3 --mu 0.9 --eta 1.2 --probe-every 200
  done
  "$G/mdnstab" simulate --device gpu --dtype bf16 --dk 64 --dv 64 --steps 2000000 --probe-every 20000 \
    --alpha 0.999 --beta 0.2 --mu 0.5 --eta 0.5 --out "$OUT/long_run.csv"
} >"$OUT/simulate.log" 2>&1
echo "simulate rc=$?"; cut -c1-400 "$OUT/simulate.log"
[ "${SASS:-0}" = 1 ] && "$(tool cuobjdump)" --dump-sass "$G/mdnstab_bench_recurrent" >"$OUT/sass.txt" 2>&1
if [ -n "${REFERENCE:-}" ]; then  # the official recurrent Triton kernel, timed beside ours
  echo "== reference recurrent kernel ($REFERENCE)"
  PYTHONUNBUFFERED=1 timeout 300 python3 "$G/bench_reference_recurrent.py" "$REFERENCE" >"$OUT/reference.log" 2>&1
  echo "reference rc=$?"; tail -5 "$OUT/reference.log"
fi
echo "== summary"
cat "$OUT/bench.log"
