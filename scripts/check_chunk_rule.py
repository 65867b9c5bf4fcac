#!/usr/bin/python3
"""The chunk-safety rule against the emulation (reports/bench/chunk-safety.md), in one run:

  maps:  144 maps of 41 x 41 (log_alpha, log_mu) points: boxes [-8, 0]^2 ("wide"),
         [-0.5, 0]^2 ("near1"), [-0.05, 0]^2 ("tiny"); beta 0.1, 0.9, 0.001; C = 4, 16,
         64, 256; fp32, tf32, fp64, bf16; T = max(512, 2C), DK = DV = 16, eta = 1.
         Counts, per precision: broken points, points the rule calls safe that broke
         (false safe), unbroken points it calls unsafe (false unsafe), misses by more
         than a decade (far).
  dumps: analysis/data/synthetic-mdn and six dumps made by scripts/make_synthetic_gates.py
         (T = 1024, 2048, 4096, other seeds, raw inputs scaled by 1, 3, 6), `--check` at
         C = 16, DK = DV = 32, fp32 and tf32: sequences broken, called unsafe, broken where
         the rule said safe, and the rule's and the emulation's largest power-of-two C.

Takes about 5 minutes per binary on 2 cores. With a second binary the two are shown side
by side (a change to the rule against the last one). Usage:
    scripts/check_chunk_rule.py [BINARY [OTHER_BINARY]] [--maps-only | --dumps-only]
"""
import importlib.util, itertools, json, os, subprocess, sys, tempfile

here = os.path.dirname(os.path.abspath(__file__))
args = [a for a in sys.argv[1:] if not a.startswith("--")]
binaries = args or [os.path.join(here, "..", "build", "release", "mdnstab")]
N = 41
BOXES = {"wide": -8, "near1": -0.5, "tiny": -0.05}
PRECS = ["fp32", "tf32", "fp64", "bf16"]


def run(binary, argv):
    r = subprocess.run([binary, "--format", "json", *argv], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{binary} {' '.join(argv)}: {r.stderr.strip()}")
    return json.loads(r.stdout)


def maps(binary):
    rows = []
    for (box, lo), beta, C, p in itertools.product(BOXES.items(), [0.1, 0.9, 0.001], [4, 16, 64, 256], PRECS):
        d = run(binary, ["chunk-safety", f"--axis=log_alpha={lo}:0:{N}", f"--axis=log_mu={lo}:0:{N}",
                         "--beta", str(beta), "--eta", "1", "--chunk", str(C), "--precision", p,
                         "--steps", str(max(512, 2 * C)), "--dk", "16", "--dv", "16"])
        rows.append(dict(box=box, beta=beta, C=C, p=p, judged=d["judged"], broken=d["broken"],
                         fs=d["rule_false_safe"], fu=d["rule_false_unsafe"], far=d["far_misses"]))
    return rows


def make_dumps(root):
    spec = importlib.util.spec_from_file_location("gen", os.path.join(here, "make_synthetic_gates.py"))
    paths = [os.path.join(here, "..", "analysis", "data", "synthetic-mdn", "gates.safetensors")]
    for i, (T, seed, scale) in enumerate([(1024, 1, 1), (2048, 2, 3), (4096, 3, 6), (1024, 4, 3), (2048, 5, 6),
                                          (4096, 6, 1)]):
        gen = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(gen)
        gen.T, gen.SEED = T, gen.SEED + seed
        out = os.path.join(root, f"T{T}_s{seed}_x{scale}")
        with open(os.devnull, "w") as null:
            stdout, sys.stdout = sys.stdout, null
            try:
                gen.main(out, x_scale=scale)
            finally:
                sys.stdout = stdout
        paths.append(os.path.join(out, "gates.safetensors"))
    return paths


def dumps(binary, paths):
    rows = []
    for path, p in itertools.product(paths, ["fp32", "tf32"]):
        d = run(binary, ["chunk-safety", "--param", path, "--check", "--precision", p, "--chunk", "16",
                         "--dk", "32", "--dv", "32"])
        c = d["checked"]
        rows.append(dict(dump=os.path.basename(os.path.dirname(path)), p=p, broken=c["broken"],
                         rule_unsafe=c["rule_unsafe"], false_safe=c["false_safe"], judged=c["judged"],
                         rule_pow2=d["largest_safe_pow2_chunks"], measured_pow2=c["largest_safe_pow2"]))
    return rows


def main():
    do_maps, do_dumps = "--dumps-only" not in sys.argv, "--maps-only" not in sys.argv
    names = [os.path.relpath(b) for b in binaries]
    if do_maps:
        res = [maps(b) for b in binaries]
        print(f"maps: 144 x {N} x {N} points; false safe / false unsafe / far misses (broken), per binary")
        for p in PRECS + ["all"]:
            cells = []
            for rows in res:
                rs = [r for r in rows if p in (r["p"], "all")]
                cells.append(f"{sum(r['fs'] for r in rs):6d} / {sum(r['fu'] for r in rs):6d} / "
                             f"{sum(r['far'] for r in rs):5d} ({sum(r['broken'] for r in rs)})")
            print(f"  {p:5s}  " + "   |   ".join(cells))
        print("  maps where the rule called broken points safe (box, beta, C, precision: count, far):")
        for i, rows in enumerate(res):
            bad = [f"{r['box']} {r['beta']} {r['C']} {r['p']}: {r['fs']}, {r['far']}" for r in rows if r["fs"]]
            print(f"    {names[i]}: " + ("; ".join(bad) if bad else "none"))
    if do_dumps:
        with tempfile.TemporaryDirectory(prefix="mdnstab_rule_") as root:
            paths = make_dumps(root)
            res = [dumps(b, paths) for b in binaries]
        print("dumps at C = 16: broken / rule unsafe / false safe of judged sequences; rule / measured largest pow2 C")
        for k, r0 in enumerate(res[0]):
            cells = [f"{r[k]['broken']} / {r[k]['rule_unsafe']} / {r[k]['false_safe']} of {r[k]['judged']}; "
                     f"{r[k]['rule_pow2']} / {r[k]['measured_pow2']}" for r in res]
            print(f"  {r0['dump']:14s} {r0['p']}  " + "   |   ".join(cells))
    print("binaries: " + " | ".join(names))


if __name__ == "__main__":
    main()
