#!/usr/bin/env bash
# Builds the GPU binaries here for sm_90a (build/release, the release preset) and copies
# them, their non-system shared libraries and scripts/gpu_device_run.sh into an ignored
# folder that the device tool carries (default: /work/main/.gpubuild). Then, on the
# device, from the repository root: `bash .gpubuild/gpu_device_run.sh` (logs under $OUT).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-/work/main/.gpubuild}
command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ] || { echo "build_gpu.sh: nvcc not found" >&2; exit 2; }
cmake --preset release -S "$src" >/dev/null
cmake --build "$src/build/release" -j2 --target mdnstab mdnstab_gpu_tests mdnstab_bench_recurrent mdnstab_bench_chunk mdnstab_dev_recurrent mdnstab_dev_chunk_phases
mkdir -p "$dest/lib"
for b in mdnstab tests/gpu/mdnstab_gpu_tests kernels/mdnstab_bench_recurrent kernels/mdnstab_bench_chunk kernels/mdnstab_dev_recurrent kernels/mdnstab_dev_chunk_phases; do
  cp "$src/build/release/$b" "$dest/"
done
# Shared libraries the device image may lack (fmt, OpenMP runtime); glibc and libstdc++ there are newer.
for lib in $(ldd "$dest"/mdnstab* | awk '/=>/ {print $3}' | sort -u | grep -E 'libfmt|libgomp|libtomlplusplus'); do
  cp -L "$lib" "$dest/lib/"
done
cp "$src/scripts/gpu_device_run.sh" "$src/scripts/bench_reference_recurrent.py" "$dest/"
git -C "$src" rev-parse --short HEAD >"$dest/COMMIT"
git -C "$src" diff --quiet HEAD -- kernels src tests || echo "$(cat "$dest/COMMIT")+dirty" >"$dest/COMMIT"
echo "build_gpu.sh: $(ls "$dest" | tr '\n' ' ') -> $dest (commit $(cat "$dest/COMMIT"))"
