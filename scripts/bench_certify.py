#!/usr/bin/python3
"""Benchmark of `mdnstab certify` on single gate sets against what a researcher
would do today: an SDP of the same 2x2 LMI (A^T W A <= gamma^2 W for A_par and
A_perp, W >= I) with bisection on gamma, solved by Debian's python3-cvxopt.
Same random gate sets for both, measured in one run; prints rates, ratios and
the agreement of gamma. Targets (issue 4): >= 50,000 gate sets/s for the upper
bound to 1e-6, >= 5,000/s with the lower bound and its witness.

usage: scripts/bench_certify.py [--bin build/release/mdnstab] [--n 200000] [--sdp 20] [--seed 1]
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np


def gate_sets(n, seed):
    rng = np.random.default_rng(seed)
    a = rng.uniform(0, 1, n)
    b = rng.uniform(0, 1, n)
    m = rng.uniform(0, 1, n)
    e = rng.uniform(0, 2, n)
    return np.stack([a, b, m, e], axis=1)


def blocks(g):
    a, b, m, e = g
    rp = a  # p-scale "alpha"
    par = np.array([[a - b * e * rp, -b * m], [e * rp, m]])
    perp = np.array([[a, -b * m], [0.0, m]])
    return [par, perp]


def sdp_gamma(mats, tol=1e-6):
    """Bisection on gamma; each step maximizes s subject to W >= I,
    gamma^2 W - A^T W A >= s I, tr W <= 1e4 (so feasible iff s* >= 0)."""
    from cvxopt import matrix, solvers
    solvers.options["show_progress"] = False
    basis = [np.array([[1.0, 0], [0, 0]]), np.array([[0, 1.0], [1.0, 0]]), np.array([[0, 0], [0, 1.0]])]

    def feasible(gamma):
        c = matrix([0.0, 0.0, 0.0, -1.0])
        Gs, hs = [], []
        # W - I >= 0  <=>  -I - (-W) >= 0
        G = np.zeros((4, 4))
        for k, E in enumerate(basis):
            G[:, k] = -E.flatten(order="F")
        Gs.append(matrix(G))
        hs.append(matrix(-np.eye(2)))
        for A in mats:
            G = np.zeros((4, 4))
            for k, E in enumerate(basis):
                G[:, k] = -(gamma**2 * E - A.T @ E @ A).flatten(order="F")
            G[:, 3] = np.eye(2).flatten(order="F")
            Gs.append(matrix(G))
            hs.append(matrix(np.zeros((2, 2))))
        Gl = matrix(np.array([[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]))
        hl = matrix([1e4, 1e4])
        sol = solvers.sdp(c, Gl=Gl, hl=hl, Gs=Gs, hs=hs)
        if sol["status"] not in ("optimal", "unknown") or sol["x"] is None:
            return False
        return sol["x"][3] > 0

    rho = max(max(abs(np.linalg.eigvals(A))) for A in mats)
    lo, hi = rho, max(np.linalg.norm(A, 2) for A in mats) * 1.0001 + 1e-12
    while not feasible(hi):
        hi *= 2
    while hi - lo > tol * hi:
        mid = 0.5 * (lo + hi)
        if feasible(mid):
            hi = mid
        else:
            lo = mid
    return hi


def run_ours(binary, path, threads, lower, out=None):
    cmd = [binary, "--format", "json", "certify", "--csv", path, "--each", "--threads", str(threads)]
    if not lower:
        cmd.append("--no-lower-bound")
    if out:
        cmd += ["--out", out]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"mdnstab failed: {r.stderr.strip()}")
    return json.loads(r.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "build", "release", "mdnstab"))
    ap.add_argument("--n", type=int, default=200000, help="gate sets timed for mdnstab")
    ap.add_argument("--sdp", type=int, default=20, help="gate sets solved by the SDP (the first ones)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    gs = gate_sets(args.n, args.seed)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "gates.csv")
        with open(path, "w") as f:
            f.write("alpha,beta,mu,eta\n")
            for g in gs:
                f.write(",".join(repr(float(x)) for x in g) + "\n")
        res = {}
        for lower in (False, True):
            for threads in (1, 2):
                res[(lower, threads)] = run_ours(args.bin, path, threads, lower)
        out = os.path.join(d, "out.csv")
        run_ours(args.bin, path, 2, True, out)
        with open(out) as f:
            rows = list(csv.DictReader(f))
        # Without the witness, gamma_dual is the LMI dual bound alone (max'ed
        # with the frozen rho), a proof of gamma's optimality independent of the witness.
        run_ours(args.bin, path, 2, False, out)
        with open(out) as f:
            rows_upper = list(csv.DictReader(f))

    ours_gamma = np.array([float(r["gamma"]) for r in rows])
    ours_lower = np.array([float(r["lower_bound"]) for r in rows])
    ours_dual = np.array([float(r["gamma_dual"]) for r in rows_upper])
    assert np.allclose(ours_gamma, [float(r["gamma"]) for r in rows_upper], rtol=0, atol=0)

    t0 = time.perf_counter()
    sdp = [sdp_gamma(blocks(g)) for g in gs[: args.sdp]]
    t_sdp = (time.perf_counter() - t0) / args.sdp
    sdp_rate = 1.0 / t_sdp
    rel = np.abs(np.array(sdp) / ours_gamma[: args.sdp] - 1)

    print(f"gate sets: {args.n} random (alpha, beta, mu ~ U[0,1], eta ~ U[0,2], p-scale alpha), seed {args.seed}")
    print(f"{'method':<44}{'threads':>8}{'gate sets/s':>14}{'x SDP':>10}{'target':>10}")
    for lower in (False, True):
        for threads in (1, 2):
            r = res[(lower, threads)]
            name = "mdnstab upper bound (gamma, W, dual check)" if not lower else "mdnstab upper + lower bound + witness"
            target = 50000 if not lower else 5000
            print(f"{name:<44}{threads:>8}{r['rate']:>14.0f}{r['rate'] / sdp_rate:>10.0f}{target:>10}")
    print(f"{'SDP + bisection (cvxopt), tol 1e-6':<44}{1:>8}{sdp_rate:>14.2f}{1:>10}{'':>10}"
          f"   ({1000 * t_sdp:.0f} ms per gate set, {args.sdp} sets)")
    print(f"gamma: max |SDP / mdnstab - 1| = {rel.max():.2e} over {args.sdp} sets (SDP bisection tolerance 1e-6)")
    print(f"gamma / dual bound - 1 (LMI duality, no witness): max {np.max(ours_gamma / ours_dual - 1):.2e} "
          f"over {args.n} sets")
    print(f"gamma / lower bound - 1: max {np.max(ours_gamma / ours_lower - 1):.2e}, "
          f"median {np.median(ours_gamma / ours_lower - 1):.2e} over {args.n} sets")
    print(f"verdicts: certified {res[(True, 2)]['certified']}, refuted {res[(True, 2)]['refuted']}, "
          f"undecided {res[(True, 2)]['undecided']}")


if __name__ == "__main__":
    main()
