#!/usr/bin/python3
"""Gate sets switched per token: how much the gate-memory certificate decides and
what it costs, against the common W and against an SDP of the same LMIs.

Seeded random sets of 2 to 4 gates (alpha, mu ~ U[0.3, 1], beta ~ U[0, 1],
eta ~ U[0, 2], p-scale alpha), each certified by `mdnstab certify --csv` twice:
`--gate-memory 0` (one W for the whole set) and the automatic memory. Prints the
verdicts, the gap gamma / lower - 1, and the wall time per set of each. Then, for
the first --sdp sets, solves the memory bound's LMIs with cvxopt
(scripts/ref_gate_memory.py: bisection over SDPs) and prints its time and the
agreement of gamma, side by side.

usage: scripts/bench_certify_sets.py [--bin build/release/mdnstab] [--n 300] [--sdp 3] [--seed 5]
"""
import argparse
import importlib.util
import json
import os
import subprocess
import tempfile
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/release/mdnstab")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--sdp", type=int, default=3)
    ap.add_argument("--seed", type=int, default=5)
    a = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location("ref", os.path.join(here, "ref_gate_memory.py"))
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)

    rng = np.random.default_rng(a.seed)
    sets = []
    for i in range(a.n):
        k = 2 + i % 3
        sets.append(np.column_stack([rng.uniform(0.3, 1, k), rng.uniform(0, 1, k), rng.uniform(0.3, 1, k),
                                     rng.uniform(0, 2, k)]).round(4))
    results = {"common": [], "memory": []}
    seconds = {"common": 0.0, "memory": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "set.csv")
        for g in sets:
            with open(path, "w") as f:
                f.write("alpha,beta,mu,eta\n" + "".join(",".join(f"{x:.4f}" for x in r) + "\n" for r in g))
            for name, extra in (("common", ["--gate-memory", "0"]), ("memory", [])):
                t0 = time.perf_counter()
                out = subprocess.run([a.bin, "--format", "json", "certify", "--csv", path] + extra,
                                     capture_output=True, text=True, check=True).stdout
                seconds[name] += time.perf_counter() - t0
                results[name].append(json.loads(out))
    print(f"{a.n} random gate sets of 2 to 4 gates (seed {a.seed}), `certify --csv`, one process per set")
    print(f"{'certificate':34s} {'certified':>9s} {'refuted':>8s} {'undecided':>9s} {'gap median':>11s} "
          f"{'gap max':>8s} {'ms per set':>10s}")
    for name, label in (("common", "one common W (--gate-memory 0)"), ("memory", "gate memory (automatic)")):
        r = results[name]
        v = [j["verdict"] for j in r]
        gaps = [j["upper_bound"] / j["lower_bound"] - 1 for j in r]
        print(f"{label:34s} {v.count('certified'):9d} {v.count('refuted'):8d} {v.count('undecided'):9d} "
              f"{np.median(gaps):11.3g} {max(gaps):8.3g} {1e3 * seconds[name] / a.n:10.1f}")
    mem = [j["gate_memory"] for j in results["memory"]]
    print("memory used: " + ", ".join(f"{m}: {mem.count(m)} sets" for m in sorted(set(mem))))

    if a.sdp > 0:
        print(f"\nthe same bound by SDP (cvxopt, bisection to 1e-10), first {a.sdp} sets:")
        for i in range(min(a.sdp, a.n)):
            j = results["memory"][i]
            gates = [tuple(r) for r in sets[i]]
            t0 = time.perf_counter()
            g = ref.gamma(gates, j["gate_memory"])
            t = time.perf_counter() - t0
            print(f"  set {i} ({len(gates)} gates, memory {j['gate_memory']}): cvxopt {g:.10f} in {t:.2f} s; "
                  f"mdnstab {j['upper_bound']:.10f} (relative {j['upper_bound'] / g - 1:+.1e})")


if __name__ == "__main__":
    main()
