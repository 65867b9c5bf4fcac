#!/usr/bin/python3
"""Sweep benchmark (issue 3): mdnstab's sweep engine and `sweep` command against numpy's
vectorized closed form, side by side in one run, on a 1001 x 1001 (alpha, beta) grid at
mu = 0.9, eta = 1.5 (p-scale alpha).

numpy computes only the spectral radius and regime of both blocks, in two variants:
  real: real arithmetic (sign of the discriminant, sqrt of |disc|), the fastest we know;
  cplx: the eigenvalues through a complex square root, then |l| and the regime.
numpy's elementwise operations run on one thread. numpy + savetxt writes alpha, beta and
rho, regime of both blocks with np.savetxt (%.17g). mdnstab runs on all cores:
  engine: `sweep` without --out (seconds_total of its JSON: every metric value is
          computed into memory, nothing formatted);
  sweep --out: the whole command (process wall time), CSV written to a file.
Every file-writing run (numpy's and ours) writes a new file: the previous one is
removed before the clock starts (see fresh()).
Every measurement is repeated --repeat times, interleaved (one of each per round) so that
load from other processes hits all alike; the best (and median) of each is reported, and
ratios are taken against the faster numpy variant. CPU time per point is printed too
(numpy's process time; mdnstab's seconds_cpu over the sweep, all threads, and its whole
process's): unlike wall time it barely depends on how many other processes share the
cores. Usage:
    scripts/bench_sweep.py [path/to/mdnstab] [--repeat N] [--grid N]
"""
import json, os, resource, statistics, subprocess, sys, tempfile, time

import numpy as np

def option(name, default):
    return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


N = option("--grid", 1001)  # the grid; larger ones amortize start-up on a loaded machine
MU, ETA = 0.9, 1.5
binary = next((a for i, a in enumerate(sys.argv[1:]) if not a.startswith("--") and not sys.argv[i].startswith("--")),
              "build/release/mdnstab")
repeat = option("--repeat", 5)
points = N * N
tmp = tempfile.mkdtemp(prefix="mdnstab_bench_")

a, b = np.meshgrid(np.linspace(0, 1, N), np.linspace(0, 1, N), indexing="ij")
a, b = a.ravel(), b.ravel()


def np_block_real(p, q, r, s):
    half = (p + s) / 2
    disc = ((p - s) / 2) ** 2 + q * r
    cplx = disc < 0
    rho = np.where(cplx, np.sqrt(np.abs(p * s - q * r)), np.abs(half) + np.sqrt(np.abs(disc)))
    return rho, cplx


def np_block_cplx(p, q, r, s):
    half = (p + s) / 2
    root = np.sqrt((((p - s) / 2) ** 2 + q * r).astype(np.complex128))
    rho = np.maximum(np.abs(half + root), np.abs(half - root))
    return rho, root.imag != 0


def np_blocks(block):
    par = block(a - b * ETA * a, -b * MU, ETA * a, np.full_like(a, MU))
    perp = block(a, -b * MU, np.zeros_like(a), np.full_like(a, MU))
    return par, perp


def fresh(path):
    # Each timed run writes a file that does not exist yet: replacing the previous
    # run's file would charge its deletion to the run (on this disk, mounted with
    # `discard`, deleting 279 MB waits ~33 ms), numpy's runs and ours alike.
    if os.path.exists(path):
        os.remove(path)


def np_savetxt():
    (r1, c1), (r2, c2) = np_blocks(np_block_real)
    np.savetxt(os.path.join(tmp, "numpy.csv"), np.column_stack([a, b, r1, c1, r2, c2]), delimiter=",", fmt="%.17g",
               header="alpha,beta,rho_par,complex_par,rho_perp,complex_perp")


cpu = {}  # label -> list of CPU seconds (all threads): robust to other processes' load


def timed(fn, label=None):
    t, c = time.perf_counter(), time.process_time()
    fn()
    if label:
        cpu.setdefault(label, []).append(time.process_time() - c)
    return time.perf_counter() - t


def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


SPECTRAL = "frozen_rho,frozen_stable,rho,regime,negative,eigenvalues,damping_ratio,natural_frequency,half_life"
METRICS = [("rho + regime", "rho,regime"), ("all spectral, no peak", SPECTRAL),
           ("all (default, + transient peak)", "")]


def ours_args(engine, metrics, out):
    args = [binary, "--format", "json", "sweep", "--axis", f"alpha=0:1:{N}", "--axis", f"beta=0:1:{N}",
            "--fix", f"mu={MU}", "--fix", f"eta={ETA}", "--engine", engine]
    if metrics:
        args += ["--metrics", metrics]
    if out:
        args += ["--out", os.path.join(tmp, "ours.csv")]
    return args


results = {}  # label -> list of seconds
info = {}


def record(label, seconds):
    results.setdefault(label, []).append(seconds)


def ours_engine(engine, metrics):
    c = child_cpu()
    j = json.loads(subprocess.run(ours_args(engine, metrics, False), check=True, capture_output=True, text=True).stdout)
    cpu.setdefault(f"process {engine} {metrics}", []).append(child_cpu() - c)
    cpu.setdefault(f"engine {engine} {metrics}", []).append(j["seconds_cpu"])
    info["threads"], info.setdefault("engine", {})[engine] = j["threads"], j["engine"]
    return j["seconds_total"]


def ours_e2e(engine, metrics):
    args = ours_args(engine, metrics, True)
    fresh(os.path.join(tmp, "ours.csv"))
    t = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True)
    t = time.perf_counter() - t
    info.setdefault("bytes", {})[metrics] = os.path.getsize(os.path.join(tmp, "ours.csv"))
    return t


for _ in range(repeat):
    record("np real", timed(lambda: np_blocks(np_block_real), "np real"))
    record("np cplx", timed(lambda: np_blocks(np_block_cplx), "np cplx"))
    fresh(os.path.join(tmp, "numpy.csv"))
    record("np savetxt", timed(np_savetxt))
    for engine in ("portable", "auto"):
        for label, metrics in METRICS:
            record(f"engine {engine} {label}", ours_engine(engine, metrics))
            record(f"e2e {engine} {label}", ours_e2e(engine, metrics))

best = {k: min(v) for k, v in results.items()}
med = {k: statistics.median(v) for k, v in results.items()}
rate = lambda s: points / s / 1e6
np_engine = min(best["np real"], best["np cplx"])
np_e2e = best["np savetxt"]

print(f"grid {N} x {N} = {points} points, mu = {MU}, eta = {ETA}; {os.cpu_count()} cores, mdnstab on "
      f"{info['threads']} threads (auto engine = {info['engine']['auto']}); best (median) of {repeat}, interleaved")
print(f"load average at the end: {' '.join(open('/proc/loadavg').read().split()[:3])}")
print(f"{'':58s} {'M points/s':>16s}  ratio")
ns = lambda key: min(cpu[key]) / points * 1e9
for key, label in [("np real", "numpy engine, real arithmetic (rho + regime)"),
                   ("np cplx", "numpy engine, complex sqrt (rho + regime)")]:
    print(f"{label:58s} {rate(best[key]):7.2f} ({rate(med[key]):6.2f})  CPU {ns(key):6.1f} ns/point")
print(f"{'numpy + np.savetxt (alpha, beta, rho + regime)':58s} {rate(np_e2e):7.2f} ({rate(med['np savetxt']):6.2f})"
      f"  ({os.path.getsize(os.path.join(tmp, 'numpy.csv')) / 1e6:.0f} MB)")
for engine in ("portable", "auto"):
    for label, metrics in METRICS:
        k = f"engine {engine} {label}"
        c, cp = ns(f"engine {engine} {metrics}"), ns(f"process {engine} {metrics}")
        print(f"{'mdnstab engine ' + engine + ', ' + label:58s} {rate(best[k]):7.2f} ({rate(med[k]):6.2f})"
              f"  {np_engine / best[k]:6.2f} x numpy engine; CPU {c:6.1f} ns/point all threads"
              f" ({cp:.1f} with process start-up): {min(ns('np real'), ns('np cplx')) / c:5.2f} x less than numpy")
    for label, metrics in METRICS:
        k = f"e2e {engine} {label}"
        print(f"{'mdnstab sweep --out ' + engine + ', ' + label:58s} {rate(best[k]):7.2f} ({rate(med[k]):6.2f})"
              f"  {np_e2e / best[k]:6.2f} x numpy + savetxt  ({info['bytes'][metrics] / 1e6:.0f} MB)")
print("targets (issue 3): engine with all spectral metrics >= 10 x numpy engine; "
      "sweep --out >= 10 x numpy + savetxt (ratios above use the faster numpy variant)")
