#!/usr/bin/python3
"""Writes a SYNTHETIC gate dump and checkpoint for analysis/synthetic-model.toml.

Usage: scripts/make_synthetic_gates.py [OUT_DIR]   (default: analysis/data/synthetic-mdn)

No trained model is involved. A stand-in for one MDN model at initialization:
  - learned per-head gate parameters drawn from the initialization ranges of
    DESIGN.md section 2 (exp(A_log), exp(Mu_log) ~ U(0, 16), exp(log_factor) ~
    U(0, 4), dt_bias and mu_bias = inverse softplus of dt log-uniform in
    [1e-3, 0.1]) for LAYERS layers of HEADS heads (400M settings: hidden_size
    1024, tau_factor 1, so tau = 32; min_log_mu = -2);
  - raw per-token projections a, b, m, e = x W with x ~ N(0, 1) of width D and
    random projection weights W ~ N(0, SCALE^2 / D) per head, so that each raw
    input is about N(0, SCALE^2);
  - the gates of layer 0 mapped by the MDN parametrization (the formulas of
    DESIGN.md section 2), written as log_alpha, beta, log_mu, eta of shape
    [B, T, H] (F32) to OUT_DIR/gates.safetensors, with the raw inputs beside
    them (raw_a, raw_b, raw_m, raw_e, F64);
  - every layer's parameters as OUT_DIR/checkpoint/model.safetensors with a
    config.json, in the layout `mdnstab constraint --checkpoint` reads.
Everything is seeded (SEED below): the files are reproducible bit for bit.
"""
import json
import os
import struct
import sys

import numpy as np

SEED = 20261124
LAYERS, HEADS = 3, 4
B, T, D = 2, 128, 64
SCALE = 3.0           # raw inputs about N(0, 9): the softplus and sigmoid reach both ends
HIDDEN_SIZE, TAU_FACTOR, MIN_LOG_MU = 1024, 1.0, -2.0


def softplus(x):
    return np.where(x > 0, x + np.log1p(np.exp(-np.abs(x))), np.log1p(np.exp(np.minimum(x, 0))))


def inverse_softplus(y):
    return y + np.log(-np.expm1(-y))


def head_params(rng):
    dt = np.exp(rng.uniform(np.log(1e-3), np.log(0.1), size=HEADS))
    dm = np.exp(rng.uniform(np.log(1e-3), np.log(0.1), size=HEADS))
    p = {
        "A_log": np.log(rng.uniform(0, 16, size=HEADS)),
        "Mu_log": np.log(rng.uniform(0, 16, size=HEADS)),
        "dt_bias": inverse_softplus(dt),
        "mu_bias": inverse_softplus(dm),
        "log_factor": np.log(rng.uniform(0, 4, size=HEADS)),
    }
    # Rounded to F32 as the checkpoint stores them, so that the gates follow
    # from exactly the stored parameters (tests/test_report_models.cpp checks).
    return {k: v.astype(np.float32).astype(np.float64) for k, v in p.items()}


def mdn_gates(p, a, b, m, e):
    """DESIGN.md section 2; a, b, m, e are [B, T, H], p holds [H] parameters."""
    tau = np.sqrt(HIDDEN_SIZE / TAU_FACTOR)
    log_alpha_p = -np.exp(p["A_log"]) * softplus(a + p["dt_bias"])
    log_mu = np.maximum(-np.exp(p["Mu_log"]) * softplus(m + p["mu_bias"]), MIN_LOG_MU)
    eta = np.tanh(e / tau) + 1
    beta_p = 1 / (1 + np.exp(-b))
    r2 = (eta * np.exp(p["log_factor"])) ** 2          # tan^2(theta)
    beta = r2 / (1 + r2) * beta_p                       # sin^2(theta) beta'
    log_alpha = -np.log1p(r2) + log_alpha_p             # log cos^2(theta) + log alpha'
    return log_alpha, beta, log_mu, eta


def write_safetensors(path, tensors, metadata):
    """tensors: (name, array) in F32, or (name, array, "F64")."""
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, arr, *dtype in tensors:
        f64 = dtype == ["F64"]
        raw = np.ascontiguousarray(arr, dtype="<f8" if f64 else "<f4").tobytes()
        header[name] = {"dtype": "F64" if f64 else "F32", "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    os.replace(tmp, path)


def main(out, x_scale=1.0):
    """x_scale multiplies the raw inputs (scripts/check_chunk_rule.py's other dumps)."""
    rng = np.random.default_rng(SEED)
    layers = [head_params(rng) for _ in range(LAYERS)]
    x = x_scale * rng.standard_normal((B, T, D))
    w = {k: rng.standard_normal((D, HEADS)) * SCALE / np.sqrt(D) for k in "abme"}
    a, b, m, e = (x @ w[k] for k in "abme")           # [B, T, H]
    log_alpha, beta, log_mu, eta = mdn_gates(layers[0], a, b, m, e)
    os.makedirs(os.path.join(out, "checkpoint"), exist_ok=True)
    note = ("SYNTHETIC: initialization-range MDN gate parameters and random projections "
            f"(scripts/make_synthetic_gates.py, seed {SEED}); not a trained model")
    # The raw inputs travel along (F64; the gate dump reader ignores them) so
    # that the dump can be re-derived from the checkpoint's layer 0.
    write_safetensors(os.path.join(out, "gates.safetensors"),
                      [("log_alpha", log_alpha), ("beta", beta), ("log_mu", log_mu), ("eta", eta),
                       ("raw_a", a, "F64"), ("raw_b", b, "F64"), ("raw_m", m, "F64"), ("raw_e", e, "F64")],
                      {"source": note, "layer": "0"})
    tensors = []
    for i, p in enumerate(layers):
        for k in ("A_log", "Mu_log", "dt_bias", "mu_bias", "log_factor"):
            tensors.append((f"model.layers.{i}.attn.{k}", p[k]))
    write_safetensors(os.path.join(out, "checkpoint", "model.safetensors"), tensors, {"source": note})
    with open(os.path.join(out, "checkpoint", "config.json"), "w") as f:
        json.dump({"_comment": note, "hidden_size": HIDDEN_SIZE, "tau_factor": TAU_FACTOR,
                   "min_log_mu": MIN_LOG_MU, "num_heads": HEADS, "head_dim": 128,
                   "num_hidden_layers": LAYERS}, f, indent=1)
        f.write("\n")
    print(f"wrote {out}/gates.safetensors ([{B}, {T}, {HEADS}]) and {out}/checkpoint ({LAYERS} layers x {HEADS} heads)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else os.path.normpath(
                  os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "analysis", "data", "synthetic-mdn"))))
