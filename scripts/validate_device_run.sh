#!/usr/bin/env bash
# One device call for issue 8 (run from the repository root with the build folder carried):
# the gpu tests of the many-config kernel, the benchmark, lyapunov --device gpu on the
# design example, the 1,000-gate-set validation at 10^6 steps, then compute-sanitizer
# memcheck and initcheck on a small validate run. Logs under $OUT (7 files).
#   GPUBUILD=.gpubuild-validate bash .gpubuild-validate/validate_device_run.sh [--no-sanitizer] [--no-1000]
set -uo pipefail
G=${GPUBUILD:-.gpubuild-validate}
OUT=${OUT:-/tmp/mdnstab_validate_out}
mkdir -p "$OUT"
export LD_LIBRARY_PATH="$G/lib:${LD_LIBRARY_PATH:-}"
sanitizer=1 big=1
for a in "$@"; do
  case $a in
    --no-sanitizer) sanitizer=0 ;;
    --no-1000) big=0 ;;
  esac
done
cuda_bin=/usr/local/cuda/bin
tool() { command -v "$1" || echo "$cuda_bin/$1"; }
{
  date -u
  echo "commit $(cat "$G/COMMIT" 2>/dev/null)"
  nvidia-smi
  nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,clocks.mem,power.draw,temperature.gpu --format=csv
  nproc
} >"$OUT/device.txt" 2>&1

echo "== gpu tests"
timeout 120 "$G/mdnstab_gpu_validate_tests" --gtest_color=no >"$OUT/tests.log" 2>&1
echo "gpu tests rc=$?"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |tests? ran|Failure" "$OUT/tests.log" | head -20

echo "== benchmark"
timeout 150 "$G/mdnstab_bench_many_config" --reps 5 --cpu-rate "$(cat "$G/cpu_rate.txt")" \
  --cpu-note "on the 2-core build machine ($(cat "$G/cpu_note.txt"))" >"$OUT/bench.log" 2>&1
echo "bench rc=$?"
echo "== lyapunov --device gpu (DESIGN.md example: +0.14 at DK 128, +0.18 at DK 2)" >>"$OUT/bench.log"
for dk in 128 2; do
  timeout 60 "$G/mdnstab" --format json lyapunov --alpha 0.99 --beta 0.9 --mu 0.99 --eta 1.9 --dk $dk --steps 100000 \
    --device gpu >>"$OUT/bench.log" 2>&1
  echo "lyapunov dk $dk rc=$?" >>"$OUT/bench.log"
done
nvidia-smi --query-gpu=clocks.sm,clocks.max.sm,power.draw,temperature.gpu --format=csv >>"$OUT/device.txt" 2>&1
cat "$OUT/bench.log"

if [ $big = 1 ]; then
  echo "== validate: 1,000 gate sets at 10^6 steps"
  t0=$(date +%s.%N)
  timeout 420 "$G/mdnstab" --config "$G/validate-1000.toml" validate --save "$OUT/validate-1000.json" \
    --csv "$OUT/validate-1000.csv" >"$OUT/validate-1000.txt" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  echo "validate rc=$rc wall $(awk "BEGIN {print $t1 - $t0}") s" | tee -a "$OUT/validate-1000.txt"
  tail -40 "$OUT/validate-1000.txt"
fi

if [ $sanitizer = 1 ]; then
  cs=$(tool compute-sanitizer)
  for t in memcheck initcheck; do
    echo "== compute-sanitizer --tool $t (small validate run)"
    timeout 90 "$cs" --tool $t --error-exitcode 9 "$G/mdnstab" validate --device gpu --dk 37 --steps 600 --heads 4 \
      --full-steps 300 --cpu-steps 400 --cpu-chains 4 --axis alpha=0.9:0.99:2 --fix beta=0.9 --fix mu=0.99 --fix eta=1.9 \
      >>"$OUT/sanitizer.log" 2>&1
    echo "$t rc=$?" | tee -a "$OUT/sanitizer.log"
    grep -E "ERROR SUMMARY|Uninitialized|Invalid" "$OUT/sanitizer.log" | tail -3
  done
fi
echo "== done"
