#!/usr/bin/python3
"""Benchmark of `mdnstab constraint` (issue 4, second half): throughput of
(1) sampling a parametrization and certifying every sample (upper bound, and
the witness where gamma >= 1), (2) a [B,T,H] gate dump (each token on its own
and each head as one set), (3) a checkpoint (every layer and head), next to
what a researcher would do today on the same MDN samples in the same run: numpy,
mapping the raw values to gates and scanning the rotating-key growth of each
gate over a grid of angles (np.linalg.eigvals on stacked 4x4 matrices; a lower
bound only, no certificate).

usage: scripts/bench_constraint.py [--bin build/release/mdnstab] [--samples 100000] [--numpy 20000] [--angles 64]
"""
import argparse
import json
import os
import struct
import subprocess
import tempfile
import time

import numpy as np


def run(bin_, args):
    t0 = time.perf_counter()
    out = subprocess.run([bin_, "--format", "json", "constraint"] + args, check=True, capture_output=True, text=True)
    return json.loads(out.stdout), time.perf_counter() - t0


def write_safetensors(path, tensors):
    header, data = {}, b""
    for name, arr in tensors:
        b = np.ascontiguousarray(arr, dtype=np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [len(data), len(data) + len(b)]}
        data += b
    h = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def sp(x):
    return np.logaddexp(0.0, x)


def mdn_samples(n, rng):
    # The initial box of `constraint --range initial`, uniform draws.
    A = rng.uniform(0, 16, n)
    Mu = rng.uniform(0, 16, n)
    F = rng.uniform(0, 4, n)
    dt = np.exp(rng.uniform(np.log(1e-3), np.log(0.1), n))
    bias = dt + np.log(-np.expm1(-dt))
    a, b, m = (rng.uniform(-4, 4, n) for _ in range(3))
    e = rng.uniform(-4, 4, n) * 32
    la = -A * sp(a + bias)
    lm = np.maximum(-Mu * sp(m + bias), -2)
    eta = np.tanh(e / 32) + 1
    th = np.arctan(eta * F)
    beta = np.sin(th) ** 2 / (1 + np.exp(-b))
    alpha = np.cos(th) ** 2 * np.exp(la)
    return alpha, beta, np.exp(lm), eta


def numpy_rotation_scan(alpha, beta, mu, eta, angles):
    # Rotating frame: y -> step_e1(Q(-angle) y) on (S1, S2, M1, M2); max over the grid of its spectral radius.
    n = len(alpha)
    best = np.zeros(n)
    for th in np.linspace(0, np.pi, angles, endpoint=False):
        c, s = np.cos(th), np.sin(th)
        Q = np.array([[c, s, 0, 0], [-s, c, 0, 0], [0, 0, c, s], [0, 0, -s, c]])
        T = np.zeros((n, 4, 4))
        T[:, 0, 0] = alpha - beta * eta * alpha
        T[:, 0, 2] = -beta * mu
        T[:, 1, 1] = alpha
        T[:, 1, 3] = -beta * mu
        T[:, 2, 0] = eta * alpha
        T[:, 2, 2] = mu
        T[:, 3, 3] = mu
        rho = np.abs(np.linalg.eigvals(T @ Q)).max(axis=1)
        best = np.maximum(best, rho)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/release/mdnstab")
    ap.add_argument("--samples", type=int, default=100000)
    ap.add_argument("--numpy", type=int, default=20000)
    ap.add_argument("--angles", type=int, default=64)
    o = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores; mdnstab: {subprocess.run([o.bin, '--version'], capture_output=True, text=True).stdout.strip()}")

    rows = []
    for param, rng_ in [("mdn", "initial"), ("mdn", "both"), ("gdn", "both"), ("mdn-unconstrained", "both")]:
        j, wall = run(o.bin, ["--param", param, "--range", rng_, "--samples", str(o.samples)])
        rows.append((f"constraint --param {param} --range {rng_}", o.samples, j["seconds"], wall,
                     f"refuted inside margin {j['inside_margin']['counts']['refuted']}"))

    # The same kind of MDN samples in numpy: map + rotation scan (lower bound only).
    rng = np.random.default_rng(1)
    t0 = time.perf_counter()
    alpha, beta, mu, eta = mdn_samples(o.numpy, rng)
    g = numpy_rotation_scan(alpha, beta, mu, eta, o.angles)
    t_np = time.perf_counter() - t0
    rows.append((f"numpy: map + {o.angles}-angle rotation scan (mdn, initial)", o.numpy, t_np, t_np,
                 f"refuted {int((g > 1).sum())}"))

    with tempfile.TemporaryDirectory() as d:
        B, T, H = 8, 4096, 6
        alpha, beta, mu, eta = mdn_samples(B * T * H, np.random.default_rng(2))
        dump = os.path.join(d, "gates.safetensors")
        shape = (B, T, H)
        write_safetensors(dump, [("log_alpha", np.log(alpha).reshape(shape)), ("beta", beta.reshape(shape)),
                                 ("log_mu", np.log(mu).reshape(shape)), ("eta", eta.reshape(shape))])
        j, wall = run(o.bin, ["--param", dump])
        rows.append((f"constraint --param dump [{B},{T},{H}] f32", B * T * H, j["seconds"], wall,
                     f"tokens refuted {j['token_counts']['refuted']}"))

        L, Hh = 21, 6
        r2 = np.random.default_rng(3)
        tensors = []
        for i in range(L):
            dt = np.exp(r2.uniform(np.log(1e-3), np.log(0.1), Hh))
            inv = dt + np.log(-np.expm1(-dt))
            tensors += [(f"model.layers.{i}.attn.A_log", np.log(r2.uniform(0, 16, Hh))),
                        (f"model.layers.{i}.attn.Mu_log", np.log(r2.uniform(0, 16, Hh))),
                        (f"model.layers.{i}.attn.dt_bias", inv),
                        (f"model.layers.{i}.attn.mu_bias", inv),
                        (f"model.layers.{i}.attn.log_factor", np.log(r2.uniform(0, 4, Hh)))]
        ck = os.path.join(d, "model.safetensors")
        write_safetensors(ck, tensors)
        j, wall = run(o.bin, ["--checkpoint", ck, "--samples", "4000"])
        rows.append((f"constraint --checkpoint ({L} layers x {Hh} heads, 4000 samples/head)", L * Hh * 4000,
                     j["seconds"], wall, f"heads with refuted gates {j['heads_refuted']}"))

    print(f"{'what':<66} {'items':>9} {'compute s':>10} {'wall s':>8} {'items/s':>10}  result")
    for what, n, secs, wall, res in rows:
        print(f"{what:<66} {n:>9} {secs:>10.3f} {wall:>8.3f} {n / secs:>10.0f}  {res}")
    mdn = rows[0]
    npr = [r for r in rows if r[0].startswith("numpy")][0]
    print(f"ratio: mdnstab (bounds, verdict, witness) / numpy (lower bound on a {o.angles}-angle grid) in samples/s: "
          f"{(mdn[1] / mdn[2]) / (npr[1] / npr[2]):.1f}x")


if __name__ == "__main__":
    main()
