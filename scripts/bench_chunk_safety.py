#!/usr/bin/python3
"""Benchmark of `mdnstab chunk-safety` (issue 6): the 64 x 64 grid of
log_alpha x log_mu in [-8, 0] at C = 64, T = 1024, DK = DV = 64 in fp32 must
finish in under a minute on the 2-core development machine. Prints the measured
time next to the target, the machine and its load (other jobs share the cores).

Usage: scripts/bench_chunk_safety.py [--bin build/release/mdnstab] [--all] [--repeat N]
  --all also times the same grid in fp64, tf32 and bf16 (no target for those).
"""
import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

TARGET_S = 60.0


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def run(binary, precision):
    cmd = [binary, "--format", "json", "chunk-safety", "--chunk", "64", "--precision", precision,
           "--axis", "log_alpha=-8:0:64", "--axis", "log_mu=-8:0:64",
           "--steps", "1024", "--dk", "64", "--dv", "64", "--seed", "0"]
    load = os.getloadavg()[0]
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    if p.returncode != 0:
        sys.exit(f"bench_chunk_safety: {' '.join(cmd)} failed ({p.returncode}): {p.stderr.strip()}")
    j = json.loads(p.stdout)
    j["cpu_seconds"] = cpu
    return j, wall, load


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "build", "release", "mdnstab"))
    ap.add_argument("--all", action="store_true", help="also fp64, tf32 and bf16")
    ap.add_argument("--repeat", type=int, default=1, help="runs per precision (the median is reported)")
    a = ap.parse_args()
    if not os.access(a.bin, os.X_OK):
        sys.exit(f"bench_chunk_safety: no binary at {a.bin} (build with: cmake --build --preset release)")
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}")
    print(f"date:    {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    print("grid:    64 x 64 over log_alpha, log_mu in [-8, 0], C = 64, T = 1024, DK = DV = 64, beta = 0.1, eta = 1")
    print(f"{'precision':>9} {'seconds':>8} {'cpu s':>8} {'points/s':>9} {'threads':>7} {'load':>5} "
          f"{'broken':>7} {'agree':>7} {'target':>7} {'ratio':>6}")
    ok = True
    for precision in (["fp32", "fp64", "tf32", "bf16"] if a.all else ["fp32"]):
        runs = sorted((run(a.bin, precision) for _ in range(max(1, a.repeat))), key=lambda r: r[0]["seconds"])
        j, wall, load = runs[len(runs) // 2]
        target = TARGET_S if precision == "fp32" else None
        ratio = f"{j['seconds'] / target:6.2f}" if target else f"{'-':>6}"
        print(f"{precision:>9} {j['seconds']:8.2f} {j['cpu_seconds']:8.2f} {j['points'] / j['seconds']:9.1f} {j['threads']:7d} "
              f"{load:5.2f} {j['broken']:7d} {100 * j['rule_agreement']:6.1f}% "
              f"{(f'{target:.0f} s' if target else '-'):>7} {ratio}")
        if target and j["seconds"] > target:
            ok = False
    print("seconds: wall time of the grid (as the command prints it); cpu s: user + system time of the process")
    print("load: the 1-minute load average when the run started (2 cores; above 2 means shared)")
    print("PASS: under the target" if ok else "OVER the target")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
