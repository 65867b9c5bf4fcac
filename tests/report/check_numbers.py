#!/usr/bin/python3
"""Checks that a report's text states the numbers its data files hold.

Usage: check_numbers.py REPORT_DIR

Three checks, each able to fail:
1. Every entry of data/findings.json appears, as written, in index.md and
   index.html, and its text is a rounding of its value.
2. The values are recomputed here from the data files (CSV) with independent
   code: fractions of grid points and samples per regime or verdict, extremes,
   the resonance peak, the counterexample's fitted growth; and the closed-form
   complex/real boundary is re-evaluated on the map grids.
3. Every percentage in "Findings at a glance" is one of the stated findings.
"""
import csv
import html
import json
import math
import os
import re
import sys

failures = []
_seen = {}


def fail(msg, kind=None):
    # At most 5 messages of one kind, then a count.
    kind = kind or msg
    _seen[kind] = _seen.get(kind, 0) + 1
    if _seen[kind] <= 5:
        failures.append(msg)
    elif _seen[kind] == 6:
        failures.append(f"... more of: {kind}")


def rows(path):
    with open(path, newline="") as f:
        return [{k: float(v) if v not in ("",) else math.nan for k, v in r.items()}
                for r in csv.DictReader(f) if True]


def rows_str(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def is_rounding(text, value):
    """True when `text` is `value` printed with some precision (%.Ng or N-decimal %)."""
    if value is None:
        return text in ("none", "nan")
    if text.endswith("%"):
        return f"{100 * value:.1f}%" == text
    for digits in range(1, 18):
        if f"{value:.{digits}g}" == text:
            return True
    return False


def close(a, b, rel=1e-9, abs_=1e-12):
    return abs(a - b) <= max(rel * max(abs(a), abs(b)), abs_)


def check_value(findings, key, recomputed, rel=1e-9):
    if key not in findings:
        fail(f"{key}: not in findings.json")
        return
    v = findings[key]["value"]
    if v is None or not close(v, recomputed, rel=rel):
        fail(f"{key}: findings.json says {v}, the data give {recomputed}")


def main(d):
    data = os.path.join(d, "data")
    with open(os.path.join(d, "index.md"), encoding="utf-8") as f:
        md = f.read()
    with open(os.path.join(d, "index.html"), encoding="utf-8") as f:
        page = html.unescape(re.sub(r"<[^>]+>", "", f.read()))
    with open(os.path.join(data, "findings.json"), encoding="utf-8") as f:
        findings = json.load(f)
    numeric = {k: v for k, v in findings.items() if isinstance(v, dict)}

    # 1. Stated as written, and a rounding of the value.
    md_plain = md.replace("\\", "")
    for k, v in numeric.items():
        t = v["text"]
        if t not in md_plain:
            fail(f"{k}: text {t!r} not in index.md")
        if t not in page:
            fail(f"{k}: text {t!r} not in index.html")
        if not is_rounding(t, v["value"]):
            fail(f"{k}: text {t!r} is not a rounding of {v['value']}")

    # 2. Recomputed from the data files.
    checked = 0
    maps_meta = os.path.join(data, "maps.json")
    if os.path.exists(maps_meta):
        with open(maps_meta) as f:
            meta = json.load(f)
        for i, p in enumerate(meta["panels"], 1):
            r = rows(os.path.join(data, p["data"]))
            n = len(r)
            key = f"maps.panel{i}"
            check_value(numeric, key + ".fraction_complex", sum(x["regime"] == 1 for x in r) / n)
            check_value(numeric, key + ".fraction_negative", sum(x["regime"] == 2 for x in r) / n)
            check_value(numeric, key + ".fraction_frozen_stable", sum(x["frozen_rho"] < 1 for x in r) / n)
            check_value(numeric, key + ".frozen_rho_max", max(x["frozen_rho"] for x in r), rel=1e-5)
            check_value(numeric, key + ".frozen_rho_min", min(x["frozen_rho"] for x in r), rel=1e-5)
            # The closed form, here in Python: complex iff (a(1 - b eta) + mu)^2 < 4 a mu
            # (p-scale alpha), negative iff b is past the upper root.
            mu, eta = p["mu"], p["eta"]
            pscale_one = "--p-scale one" in p["reproduce"]
            agree = 0
            for x in r:
                a, b = x["alpha"], x["beta"]
                rp = 1.0 if pscale_one else a
                tr = a + mu - b * eta * rp
                disc = tr * tr - 4 * a * mu
                code = 1 if disc < 0 else (2 if (tr < 0 and a * mu >= 0) else 0)
                if a * mu == 0 and tr < 0:
                    code = 2
                agree += code == x["regime"]
            recomputed = agree / n
            # Grid points exactly on the boundary may round either way: allow 1%.
            v = numeric.get(key + ".boundary_agreement", {}).get("value")
            if v is None or abs(v - recomputed) > 0.01:
                fail(f"{key}.boundary_agreement: findings {v}, Python closed form {recomputed}")
            if recomputed < 0.98:
                fail(f"{key}: the closed form agrees with the sweep on only {recomputed:.3f} of the grid")
            checked += 6
    i = 1
    while os.path.exists(os.path.join(data, f"tiers_panel{i}.csv")):
        r = [x for x in rows(os.path.join(data, f"tiers_panel{i}.csv")) if not math.isnan(x["verdict"])]
        n = len(r)
        for code, name in enumerate(["certified", "undecided", "refuted"]):
            check_value(numeric, f"tiers.panel{i}.fraction_{name}", sum(x["verdict"] == code for x in r) / n)
            checked += 1
        i += 1
    for name in os.listdir(data):
        m = re.fullmatch(r"reachable_(.+)\.csv", name)
        if not m:
            continue
        cfg = m.group(1)
        allr = rows(os.path.join(data, name))
        r = [x for x in allr if not math.isnan(x["verdict"])]
        n = len(r)
        for code, vname in enumerate(["certified", "undecided", "refuted"]):
            check_value(numeric, f"reachable.{cfg}.fraction_{vname}", sum(x["verdict"] == code for x in r) / n)
        check_value(numeric, f"reachable.{cfg}.worst_frozen_rho", max(x["frozen_rho"] for x in r), rel=1e-9)
        refuted = [x["lower_bound"] for x in r if x["verdict"] == 2]
        if refuted:
            check_value(numeric, f"reachable.{cfg}.worst_lower_bound", max(refuted), rel=1e-9)
        # Every refuted sample has a lower bound above 1, every certified one gamma below 1.
        for x in r:
            if x["verdict"] == 2 and not x["lower_bound"] > 1:
                fail(f"reachable.{cfg}: a refuted sample with lower bound {x['lower_bound']!r}", "refuted <= 1")
            if x["verdict"] == 0 and not x["gamma"] < 1:
                fail(f"reachable.{cfg}: a certified sample with gamma {x['gamma']!r}", "certified >= 1")
        checked += 5
    res = os.path.join(data, "resonance.csv")
    if os.path.exists(res):
        r = rows(res)
        for col in r[0]:
            if not col.startswith("growth_"):
                continue
            name = col[len("growth_"):]
            g = [x[col] for x in r]
            peak = max(range(len(g)), key=lambda i: g[i])
            check_value(numeric, f"resonance.{name}.peak_growth", g[peak], rel=1e-5)
            check_value(numeric, f"resonance.{name}.peak_angle", r[peak]["angle"], rel=1e-5)
            check_value(numeric, f"resonance.{name}.frozen_growth", g[0], rel=1e-5)
            checked += 3
    cx = os.path.join(data, "counterexample_norms.csv")
    if os.path.exists(cx):
        r = rows(cx)
        lg = [x["witness"] for x in r]
        i0 = len(lg) // 2
        ts = list(range(i0, len(lg)))
        ys = lg[i0:]
        mt, my = sum(ts) / len(ts), sum(ys) / len(ys)
        slope = sum((t - mt) * (y - my) for t, y in zip(ts, ys)) / sum((t - mt) ** 2 for t in ts)
        # The CSV holds log10 norms to 6 digits: the refit agrees to about 1e-5.
        check_value(numeric, "counterexample.measured_growth", 10 ** slope, rel=1e-4)
        # The witness grows as the certificate's lower bound predicts (the reason to simulate it).
        lb = numeric["counterexample.lower_bound"]["value"]
        if not close(10 ** slope, lb, rel=1e-3):
            fail(f"counterexample: simulated growth {10 ** slope} differs from the lower bound {lb}")
        checked += 2
    gv = os.path.join(data, "gpu_validation.csv")
    if os.path.exists(gv):
        r = rows_str(gv)
        def worst(p, m):
            v = [abs(float(x[m]) - float(x[p])) / abs(float(x[p])) for x in r
                 if math.isfinite(float(x[p])) and math.isfinite(float(x[m]))]
            return max(v) if v else 0.0
        check_value(numeric, "gpu_validation.worst_relative_error",
                    worst("predicted_random_growth", "measured_random_growth"), rel=1e-4)
        check_value(numeric, "gpu_validation.worst_witness_relative_error",
                    worst("predicted_witness_growth", "measured_witness_growth"), rel=1e-4)
        check_value(numeric, "gpu_validation.fraction_agree", sum(x["agrees"] == "1" for x in r) / len(r))
        checked += 3
    elif findings.get("gpu_validation.run") is True:
        fail("gpu_validation: the text says it ran, but data/gpu_validation.csv is missing")
    gs = os.path.join(data, "gate_sets.csv")
    if os.path.exists(gs):
        for x in rows_str(gs):
            for col, k in (("frozen_rho", "frozen_rho"), ("gamma", "gamma"), ("lower_bound", "lower_bound")):
                check_value(numeric, f"gate_set.{x['name']}.{k}", float(x[col]), rel=1e-5)
                checked += 1

    # Gate dumps and checkpoints (report_models.cpp).
    for name in sorted(os.listdir(data)):
        m = re.fullmatch(r"dump_(.+)_tokens\.csv", name)
        if m:
            key = f"dump.{m.group(1)}"
            r = rows(os.path.join(data, name))
            n = len(r)
            for code, vname in enumerate(["certified", "undecided", "refuted"]):
                check_value(numeric, f"{key}.fraction_{vname}", sum(x["verdict"] == code for x in r) / n)
            refuted = [x for x in r if x["verdict"] == 2]
            if refuted:
                w = max(refuted, key=lambda x: x["lower_bound"])
                check_value(numeric, f"{key}.worst_lower_bound", w["lower_bound"])
                check_value(numeric, f"{key}.worst_gamma", w["gamma"])
            for x in r:
                if x["verdict"] == 2 and not x["lower_bound"] > 1:
                    fail(f"{key}: a refuted token with lower bound {x['lower_bound']!r}", "dump refuted <= 1")
                if x["verdict"] == 0 and not x["gamma"] < 1:
                    fail(f"{key}: a certified token with gamma {x['gamma']!r}", "dump certified >= 1")
            checked += 4
        m = re.fullmatch(r"dump_(.+)_chunks\.csv", name)
        if m:
            # The dump's sequences through the chunkwise emulation: counts over the judged ones.
            key = f"dump.{m.group(1)}.chunk"
            r = [x for x in rows(os.path.join(data, name)) if x["reference_finite"] == 1]
            check_value(numeric, f"{key}.sequences_broken", sum(x["broken"] == 1 for x in r))
            check_value(numeric, f"{key}.sequences_agree", sum((x["broken"] == 1) == (x["rule_safe"] == 0) for x in r))
            check_value(numeric, f"{key}.sequences_false_safe",
                        sum(x["broken"] == 1 and x["rule_safe"] == 1 for x in r))
            for x in r:
                if (x["broken"] == 1) != (not x["rel_error"] <= 1e-2):
                    fail(f"{key}: sequence {x['b']}, {x['h']} broken = {x['broken']} with error {x['rel_error']}",
                         "dump chunk broken flag")
            checked += 3
        m = re.fullmatch(r"checkpoint_(.+)_heads\.csv", name)
        if m:
            key = f"checkpoint.{m.group(1)}"
            r = rows(os.path.join(data, name))
            n = len(r)
            layers = {}
            for x in r:
                layers[x["layer"]] = max(layers.get(x["layer"], 0), x["verdict"])
                # A head's verdict from its own fractions (margin_verdict).
                v = 2 if x["refuted"] > 0 else (1 if x["undecided"] > 0 or x["failed"] > 0 or x["samples"] == 0 else 0)
                if v != x["verdict"]:
                    fail(f"{key}: layer {x['layer']} head {x['head']} verdict {x['verdict']}, its fractions say {v}")
            for code, vname in enumerate(["certified", "undecided", "refuted"]):
                check_value(numeric, f"{key}.fraction_heads_{vname}", sum(x["verdict"] == code for x in r) / n)
                check_value(numeric, f"{key}.fraction_layers_{vname}",
                            sum(v == code for v in layers.values()) / len(layers))
            refuted = [x["worst_lower_bound"] for x in r if x["verdict"] == 2]
            if refuted:
                check_value(numeric, f"{key}.worst_lower_bound", max(refuted))
            checked += 6
    # Chunk safety (report_chunk.cpp).
    cm = os.path.join(data, "chunk_map.csv")
    if os.path.exists(cm):
        r = [x for x in rows(cm) if x["reference_finite"] == 1]
        n = len(r)
        check_value(numeric, "chunk_safety.fraction_broken", sum(x["broken"] == 1 for x in r) / n)
        check_value(numeric, "chunk_safety.rule_agreement",
                    sum((x["broken"] == 1) == (x["rule_safe"] == 0) for x in r) / n)
        ok = [x["rel_error"] for x in r if x["broken"] == 0]
        if ok:
            check_value(numeric, "chunk_safety.max_error_not_broken", max(ok), rel=1e-5)
        # A broken point is one whose error exceeds the tolerance or is not finite.
        for x in r:
            if (x["broken"] == 1) != (x["finite"] == 0 or not x["rel_error"] <= 1e-2):
                fail(f"chunk_safety: point {x['log_alpha']}, {x['log_mu']} broken = {x['broken']} "
                     f"with error {x['rel_error']}", "chunk broken flag")
        checked += 3
    cr = os.path.join(data, "chunk_reachable.csv")
    if os.path.exists(cr):
        r = rows_str(cr)
        for col in r[0]:
            if col.startswith("rule_safe_"):
                cfg = col[len("rule_safe_"):]
                check_value(numeric, f"chunk_safety.{cfg}.fraction_unsafe", sum(x[col] == "0" for x in r) / len(r))
                init = [x for x in r if x["initial_box"] == "1"]
                if init and len(init) < len(r):
                    check_value(numeric, f"chunk_safety.{cfg}.initial.fraction_unsafe",
                                sum(x[col] == "0" for x in init) / len(init))
                checked += 1
    sp = os.path.join(data, "chunk_safe_spot.csv")
    if os.path.exists(sp):
        # The rule's safe verdicts spot-checked by emulation: counts per config, and each
        # row's broken flag from its own error (left out: broken even at C = 1).
        by = {}
        for x in rows_str(sp):
            by.setdefault(x["config"], []).append(x)
        for cfg, r in by.items():
            key = f"chunk_safety.{cfg}"
            broken = left = 0
            for x in r:
                err, fin, ref, lo = float(x["rel_error"]), x["finite"] == "1", x["reference_finite"] == "1", x["left_out"] == "1"
                want = ref and not lo and (not fin or not err <= 1e-2)
                if (x["broken"] == "1") != want:
                    fail(f"{key}: spot-checked sample {x['index']} broken = {x['broken']} with error {err}",
                         "spot broken flag")
                broken += want
                left += ref and lo
            check_value(numeric, f"{key}.safe_spot_checked", len(r))
            check_value(numeric, f"{key}.safe_spot_broken", broken)
            if left:
                check_value(numeric, f"{key}.safe_spot_left_out", left)
            checked += 2
    # Configs said to be identical: the samples whose mu differs.
    reach = sorted(n for n in os.listdir(data) if re.fullmatch(r"reachable_(.+)\.csv", n))
    if len(reach) == 2:
        a, b = (rows_str(os.path.join(data, n)) for n in reach)
        differ = sum(x["mu"] != y["mu"] for x, y in zip(a, b)) / len(a)
        for n in reach:
            k = f"reachable.{n[len('reachable_'):-4]}.fraction_mu_differs"
            if k in numeric:
                check_value(numeric, k, differ)
                checked += 1

    # 3. The percentages of the summary list are stated findings.
    m = re.search(r"## Findings at a glance\n\n(.*?)\n\n", md, re.S)
    if m:
        texts = {v["text"] for v in numeric.values()}
        for p in re.findall(r"\d+\.\d%", m.group(1)):
            if p not in texts:
                fail(f"summary: {p} is not a stated finding")
    if checked == 0:
        fail("no data file was recognised: nothing was checked")
    if failures:
        for f in failures:
            print("FAIL:", f)
        print(f"0 passed, {sum(_seen.values())} failed")
        return 1
    print(f"check_numbers: {len(numeric)} stated numbers, {checked} recomputed from the data: all consistent")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
