#!/usr/bin/env bash
# The main job: install what is missing, build, and analyse the MDN gate space
# (one gate set with `point`, a small `sweep` with its summary), then regenerate
# the default study's report, reports/mdn-paper/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc)" --target mdnstab
bin=build/release/mdnstab
out=${MDNSTAB_OUT:-build/main}
mkdir -p "$out"
echo
echo "== mdnstab point: the DESIGN.md section 4 example (frozen rho 0.99) =="
"$bin" point --alpha 0.99 --beta 0.9 --mu 0.99 --eta 1.9
echo
echo "== mdnstab sweep: alpha x beta at mu = 0.99, eta = 1.9 -> $out/sweep.csv =="
"$bin" sweep --axis alpha=0:1:201 --axis beta=0:1:201 --fix mu=0.99 --fix eta=1.9 --out "$out/sweep.csv"
echo
report=${MDNSTAB_REPORT_OUT:-reports/mdn-paper}
echo "== mdnstab report: analysis/mdn-paper.toml -> $report/index.html =="
"$bin" report analysis/mdn-paper.toml --out "$report" --force
