#!/usr/bin/env python3
"""Times the official MDN recurrent Triton kernel beside ours (reports/bench/recurrent-gpu.md).

The kernel is flash-linear-attention/fla/ops/momentum_delta_rule/fused_recurrent.py of
github:HuuYuLong/MomentumDeltaNet; nothing of it is in this repository: pass the path of
that one file. It is loaded alone, with stand-ins for the two fla helpers it imports
(the exponential and a contiguity decorator), checked on a small case against a float64
PyTorch loop of DESIGN.md section 2, then timed like kernels/bench/bench_recurrent.cu:
bf16 q, k, v, fp32 gates, median of CUDA-event times after warm-up, two input sets
rotated (each larger than L2). Needs a GPU with PyTorch and Triton (the device machine).

    python3 scripts/bench_reference_recurrent.py PATH/fused_recurrent.py [--reps N]
"""
import argparse
import importlib.util
import math
import statistics
import sys
import types


def load_reference(path):
    import torch
    import triton.language as tl

    def input_guard(fn):  # stand-in: contiguous tensor arguments, as fla's decorator does
        def wrapper(*args, **kwargs):
            args = [a.contiguous() if isinstance(a, torch.Tensor) else a for a in args]
            kwargs = {k: v.contiguous() if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
            return fn(*args, **kwargs)
        return wrapper

    for name in ("fla", "fla.ops", "fla.ops.utils", "fla.ops.utils.op", "fla.utils"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["fla.ops.utils.op"].exp = tl.exp
    sys.modules["fla.utils"].input_guard = input_guard
    spec = importlib.util.spec_from_file_location("mdn_reference_fused_recurrent", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.fused_recurrent_mode_rule


def recurrence_f64(q, k, v, la, lm, beta, eta):
    """DESIGN.md section 2 in float64, p-scale alpha, L2 norm of q and k: o [B,T,H,DV]."""
    import torch
    q, k, v = q.double(), k.double(), v.double()
    la, lm, beta, eta = la.double(), lm.double(), beta.double(), eta.double()
    B, T, H, DK = k.shape
    DV = v.shape[-1]
    scale = DK ** -0.5
    S = torch.zeros(B, H, DK, DV, dtype=torch.float64, device=q.device)
    M = torch.zeros_like(S)
    o = torch.empty(B, T, H, DV, dtype=torch.float64, device=q.device)
    for t in range(T):
        kh = k[:, t] / (k[:, t].norm(dim=-1, keepdim=True) + 1e-6)  # [B,H,DK]
        qh = q[:, t] / (q[:, t].norm(dim=-1, keepdim=True) + 1e-6)
        alpha, mu = la[:, t].exp()[..., None, None], lm[:, t].exp()[..., None, None]
        p = alpha[..., 0] * kh
        w = torch.einsum("bhkv,bhk->bhv", S, p) - v[:, t]
        M = mu * M + eta[:, t][..., None, None] * kh[..., None] * w[:, :, None, :]
        S = alpha * S - beta[:, t][..., None, None] * M
        o[:, t] = torch.einsum("bhkv,bhk->bhv", S, scale * qh)
    return o


def inputs(B, T, H, DK, DV, seed):
    import torch
    g = torch.Generator(device="cuda").manual_seed(seed)
    r = lambda *s: torch.rand(*s, device="cuda", generator=g)
    q = (2 * r(B, T, H, DK) - 1).bfloat16()
    k = (2 * r(B, T, H, DK) - 1).bfloat16()
    v = (2 * r(B, T, H, DV) - 1).bfloat16()
    la = -0.1 * r(B, T, H)  # the gate ranges of the C++ benchmark
    lm = -1.0 * r(B, T, H)
    beta = 0.05 + 0.45 * r(B, T, H)
    eta = 0.5 + r(B, T, H)
    return q, k, v, la, lm, beta, eta


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("reference", help="path of the reference fused_recurrent.py")
    ap.add_argument("--reps", type=int, default=20)
    a = ap.parse_args()
    import torch
    fn = load_reference(a.reference)
    run = lambda x: fn(*x[:5], beta=x[5], eta=x[6], use_qk_l2norm_in_kernel=True, use_p_times_alpha=True)[0]

    small = inputs(1, 64, 2, 100, 40, 1)
    got = run(small).double()
    ref = recurrence_f64(*small)
    rel = ((got - ref).norm() / ref.norm()).item()
    ok = math.isfinite(rel) and rel < 1e-2  # bf16 output: 2^-9 per element, far below 1e-2
    print(f"check: reference kernel vs float64 loop, B1 T64 H2 DK100 DV40: rel err {rel:.2e} -> {'PASS' if ok else 'FAIL'}")
    if not ok:
        print("check FAILED: no timings")
        return 1

    print(f"device: {torch.cuda.get_device_name()}")
    print(f"{'shape (B,T,H,DK,DV)':<24} {'median ms':>9} {'min ms':>8} {'us/token':>9}")
    for B, T, H, DK, DV in [(8, 4096, 6, 128, 256), (4, 8192, 6, 256, 512)]:
        sets = [inputs(B, T, H, DK, DV, 10 + i) for i in range(2)]
        for i in range(3):
            run(sets[i % 2])
        times = []
        for i in range(a.reps):
            e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            e0.record()
            run(sets[i % 2])
            e1.record()
            torch.cuda.synchronize()
            times.append(e0.elapsed_time(e1))
        med = statistics.median(times)
        print(f"{f'{B},{T},{H},{DK},{DV}':<24} {med:9.3f} {min(times):8.3f} {med * 1e3 / T:9.3f}")
        del sets
        torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
