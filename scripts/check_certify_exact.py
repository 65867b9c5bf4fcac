#!/usr/bin/python3
"""Exact check of `mdnstab certify` gammas in rational arithmetic (DESIGN.md section 4).

For each gate row of a CSV with columns alpha,beta,mu,eta (e.g. the --out file
of `mdnstab constraint`), runs `mdnstab --format json certify --no-lower-bound`
and checks gamma^2 I - B^T B >= 0 exactly for B = L A L^-1, L = [[1, x], [0, y]]
from W_factor, A in {A_par, A_perp} (p-scale alpha) built from the gates as
exact rationals. Prints how much relative slack gamma needs to be exactly valid
(0: valid as printed; 1e-15: rounding of the matrix entries).
Usage: scripts/check_certify_exact.py MDNSTAB GATES.csv [MAX_ROWS]
"""
import collections
import csv
import json
import subprocess
import sys
from fractions import Fraction as F


def mats(a, b, m, e):
    return [(a - b * e * a, -b * m, e * a, m), (a, -b * m, F(0), m)]


def valid(gates, gamma, x, y):
    g2, x, y = F(gamma) ** 2, F(x), F(y)
    for (p, q, r, s) in mats(*gates):
        b11 = p + x * r
        b12 = (q + x * s - x * b11) / y
        b21 = y * r
        b22 = s - x * r
        m11 = g2 - (b11 * b11 + b21 * b21)
        m22 = g2 - (b12 * b12 + b22 * b22)
        m12 = -(b11 * b12 + b21 * b22)
        if m11 < 0 or m22 < 0 or m11 * m22 - m12 * m12 < 0:
            return False
    return True


def main():
    exe, path = sys.argv[1], sys.argv[2]
    limit = int(sys.argv[3]) if len(sys.argv) > 3 else None
    slacks, errors = collections.Counter(), 0
    for n, row in enumerate(csv.DictReader(open(path))):
        if limit is not None and n >= limit:
            break
        args = [exe, "--format", "json", "certify", "--no-lower-bound"]
        for k in ("alpha", "beta", "mu", "eta"):
            args += ["--" + k, row[k]]
        out = subprocess.run(args, capture_output=True, text=True)
        if out.returncode != 0:
            errors += 1
            continue
        j = json.loads(out.stdout)
        gates = [F(float(row[k])) for k in ("alpha", "beta", "mu", "eta")]
        need = "more than 1e-6"
        for k in ("0", "1e-15", "1e-14", "1e-13", "1e-12", "1e-11", "1e-10", "1e-9", "1e-8", "1e-7", "1e-6"):
            if valid(gates, F(j["upper_bound"]) * (1 + F(k)), *j["W_factor"]):
                need = k
                break
        slacks[need] += 1
    print(f"{path}: certify errors {errors}; relative slack gamma needs to be exactly valid:")
    for k, v in sorted(slacks.items(), key=lambda kv: float(kv[0]) if kv[0][0].isdigit() else 1.0):
        print(f"  {k:>14}: {v}")


if __name__ == "__main__":
    main()
