#!/usr/bin/python3
"""Summary of a `mdnstab validate --save` results file (plain or .gz): provenance, options,
totals, per-check pass/fail/skip counts and the tightest margin of each check, and every
disagreement. Stdlib only; for reports on machines without a GPU.

    scripts/validate_summary.py reports/validate/validate-1000.json.gz [--out SUMMARY.json]

Margins: for the two-sided checks (random_exponent, witness_rate, rotation_rate)
|measured - expected| / tolerance; for the bounds (random_bound, rotating_bound)
(measured - expected) / tolerance (<= 1 passes); for full_bounded measured / expected.
"""
import argparse
import gzip
import json
import math
import sys

TWO_SIDED = {"random_exponent", "witness_rate", "rotation_rate"}
BOUNDS = {"random_bound", "rotating_bound"}


def number(v):
    if isinstance(v, (int, float)):
        return float(v)
    return {"inf": math.inf, "-inf": -math.inf}.get(v, math.nan)


def load(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        return json.load(f)


def summarize(d):
    counts, worst = {}, {}
    for row in d["rows"]:
        for c in row["checks"]:
            name = c["name"]
            counts.setdefault(name, {"pass": 0, "fail": 0, "skip": 0})[c["state"]] += 1
            if c["state"] == "skip":
                continue
            m, e, t = number(c["measured"]), number(c["expected"]), number(c["tolerance"])
            if name in TWO_SIDED and t > 0 and math.isfinite(m - e):
                margin = abs(m - e) / t
            elif name in BOUNDS and t > 0 and math.isfinite(m - e):
                margin = (m - e) / t
            elif name == "full_bounded" and e > 0 and math.isfinite(m):
                margin = m / e
            else:
                continue
            if name not in worst or margin > worst[name]["margin"]:
                worst[name] = {"margin": margin, "row": row["index"], "measured": m, "expected": e,
                               "tolerance": t, "gates": row["gates"]}
    return {
        "schema": "mdnstab-validate-summary/1",
        "source_schema": d.get("schema"),
        "provenance": d["provenance"],
        "options": d["options"],
        "summary": d["summary"],
        "check_counts": counts,
        "tightest": worst,
        "disagreements": d.get("disagreements", []),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results")
    ap.add_argument("--out")
    a = ap.parse_args()
    s = summarize(load(a.results))
    text = json.dumps(s, indent=1, sort_keys=True) + "\n"
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
