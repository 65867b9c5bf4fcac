#!/usr/bin/env bash
# Builds the validate GPU binaries here for sm_90a (build/release) and copies them, their
# non-system shared libraries, the study files, scripts/validate_device_run.sh and the CPU
# reference's rate measured on this machine into an ignored folder the device tool carries
# (default /work/main/.gpubuild-validate). On the device, from the repository root:
#   bash .gpubuild-validate/validate_device_run.sh     (logs under $OUT)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-/work/main/.gpubuild-validate}
command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ] || { echo "build_validate_gpu.sh: nvcc not found" >&2; exit 2; }
cmake --preset release -S "$src" >/dev/null
cmake --build "$src/build/release" -j2 --target mdnstab mdnstab_gpu_validate_tests mdnstab_bench_many_config
rm -rf "$dest" && mkdir -p "$dest/lib"
for b in mdnstab tests/gpu/mdnstab_gpu_validate_tests kernels/mdnstab_bench_many_config; do
  cp "$src/build/release/$b" "$dest/"
done
for lib in $(ldd "$dest"/mdnstab* | awk '/=>/ {print $3}' | sort -u | grep -E 'libfmt|libgomp|libtomlplusplus'); do
  cp -L "$lib" "$dest/lib/"
done
cp "$src/scripts/validate_device_run.sh" "$src/analysis/validate-1000.toml" "$dest/"
git -C "$src" rev-parse --short HEAD >"$dest/COMMIT"
git -C "$src" diff --quiet HEAD -- kernels src tests || echo "$(cat "$dest/COMMIT")+dirty" >"$dest/COMMIT"
# The CPU reference's rate on this machine, today, to print beside the GPU's.
"$src/build/release/kernels/mdnstab_bench_many_config" --cpu-only | tee "$dest/cpu_rate.log"
awk '/DK 128/ {print $(NF-1)}' "$dest/cpu_rate.log" >"$dest/cpu_rate.txt"
echo "$(date -u +%Y-%m-%d) $(hostname) $(nproc) cores" >"$dest/cpu_note.txt"
echo "build_validate_gpu.sh: $(ls "$dest" | tr '\n' ' ') -> $dest (commit $(cat "$dest/COMMIT"))"
