#!/usr/bin/python3
"""Sweep benchmark (issue 3): mdnstab's sweep engine and `sweep` command against numpy's
vectorized closed form, side by side in one run, on a 1001 x 1001 (alpha, beta) grid.

numpy computes only the spectral radius and regime of both blocks (generic 2x2 closed form,
one thread: numpy's elementwise ops do not thread); mdnstab computes what its columns say.
Prints rates (grid points per second) and ratios. Usage:
    scripts/bench_sweep.py [path/to/mdnstab] [--repeat N]
"""
import json, os, subprocess, sys, tempfile, time

import numpy as np

N = 1001
MU, ETA = 0.9, 1.5
binary = next((a for a in sys.argv[1:] if not a.startswith("--")), "build/release/mdnstab")
repeat = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 3


def numpy_blocks(a, b):
    def block(p, q, r, s):
        half = (p + s) / 2
        disc = ((p - s) / 2) ** 2 + q * r
        cplx = disc < 0
        rho = np.where(cplx, np.sqrt(np.abs(p * s - q * r)), np.abs(half) + np.sqrt(np.abs(disc)))
        return rho, cplx
    par = block(a - b * ETA * a, -b * MU, ETA * a, np.full_like(a, MU))
    perp = block(a, -b * MU, np.zeros_like(a), np.full_like(a, MU))
    return par, perp


def best_of(fn):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


a, b = np.meshgrid(np.linspace(0, 1, N), np.linspace(0, 1, N), indexing="ij")
a, b = a.ravel(), b.ravel()
points = N * N
tmp = tempfile.mkdtemp(prefix="mdnstab_bench_")

np_engine = best_of(lambda: numpy_blocks(a, b))


def np_e2e():
    (r1, c1), (r2, c2) = numpy_blocks(a, b)
    np.savetxt(os.path.join(tmp, "numpy.csv"), np.column_stack([a, b, r1, c1, r2, c2]),
               delimiter=",", fmt="%.17g", header="alpha,beta,rho_par,complex_par,rho_perp,complex_perp")


np_total = best_of(np_e2e)


def ours(metrics, out):
    args = [binary, "--format", "json", "sweep", "--axis", f"alpha=0:1:{N}", "--axis", f"beta=0:1:{N}",
            "--fix", f"mu={MU}", "--fix", f"eta={ETA}"]
    if metrics:
        args += ["--metrics", metrics]
    if out:
        args += ["--out", os.path.join(tmp, "ours.csv")]

    def run():
        subprocess.run(args, check=True, capture_output=True)
    wall = best_of(run)
    engine = json.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout)
    return wall, engine


spectral = "frozen_rho,frozen_stable,rho,regime,negative,eigenvalues,damping_ratio,natural_frequency,half_life"
rows = []
print(f"grid {N} x {N} = {points} points, mu = {MU}, eta = {ETA}; {os.cpu_count()} cores; best of {repeat}")
print(f"numpy engine  (rho + regime, both blocks):           {points / np_engine / 1e6:8.2f} M points/s")
print(f"numpy + np.savetxt (rho + regime, both blocks):      {points / np_total / 1e6:8.2f} M points/s")
for label, metrics in [("all spectral metrics + transient peak", ""), ("all spectral metrics, no peak", spectral),
                       ("rho + regime only", "rho,regime")]:
    _, eng = ours(metrics, False)
    wall, _ = ours(metrics, True)
    r_eng = points / eng["seconds_total"]
    r_e2e = points / wall
    print(f"mdnstab engine, {label:38s} {r_eng / 1e6:8.2f} M points/s  = {r_eng * np_engine / points:6.2f} x numpy engine")
    print(f"mdnstab sweep --out, {label:33s} {r_e2e / 1e6:8.2f} M points/s  = {r_e2e * np_total / points:6.2f} x numpy + savetxt"
          f"  ({os.path.getsize(os.path.join(tmp, 'ours.csv')) / 1e6:.0f} MB CSV)")
print("targets (issue 3): engine with all spectral metrics >= 10 x numpy engine; sweep --out >= 10 x numpy + savetxt")
