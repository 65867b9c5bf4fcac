#!/usr/bin/python3
"""Continuous-time benchmark (issue 5): mdnstab's closed-form real log, Odeint
trajectories and rotating-key scan against SciPy's general tools, side by side
in one run, with the agreement of the two.

  log:       `sweep --metrics zeta,w_n,q_factor,ct_class` (closed-form log of both
             blocks per grid point) vs scipy.linalg.logm per 2x2 block; L of a few
             gate sets from `ode --format json` compared with logm.
  trajectory: `ode --t-end T` (Odeint dopri5) vs scipy solve_ivp RK45 (also
             Dormand-Prince 5(4)) at the same tolerances, both against A^t x0.
  rotation:  `ode --omega` scan (Odeint monodromy + Eigen closed form per omega) vs
             numpy eigvals of the rotating-frame matrix, and solve_ivp monodromies.
Usage: scripts/bench_ode.py [path/to/mdnstab] [--repeat N]
"""
import json, math, subprocess, sys, time

import numpy as np
import scipy.linalg
from scipy.integrate import solve_ivp

binary = next((a for a in sys.argv[1:] if not a.startswith("--")), "build/release/mdnstab")
repeat = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 3
GATES = dict(alpha=0.99, beta=0.9, mu=0.99, eta=1.9)  # DESIGN.md tier-2 gates


def gate_args(g):
    return ["--alpha", str(g["alpha"]), "--beta", str(g["beta"]), "--mu", str(g["mu"]), "--eta", str(g["eta"])]


def a_par(g):
    a, b, m, e = g["alpha"], g["beta"], g["mu"], g["eta"]
    return np.array([[a - b * e * a, -b * m], [e * a, m]])


def a_perp(g):
    return np.array([[g["alpha"], -g["beta"] * g["mu"]], [0.0, g["mu"]]])


def run(args):
    t = time.perf_counter()
    out = subprocess.run([binary] + args, check=True, capture_output=True, text=True).stdout
    return time.perf_counter() - t, out


def best_of(fn):
    best, res = math.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        res = fn()
        best = min(best, time.perf_counter() - t)
    return best, res


print(f"mdnstab ode benchmark, binary {binary}, best of {repeat}")

# ---- 1. the real logarithm ----
N = 1001
args = ["--format", "json", "sweep", "--axis", f"alpha=0.05:0.99:{N}", "--axis", f"beta=0:1:{N}", "--fix", "mu=0.9",
        "--fix", "eta=1.5", "--threads", "1", "--metrics"]


def compute_seconds(metrics):  # the engine's own compute time, no CSV written
    return json.loads(run(args + [metrics])[1])["seconds_compute"]


t_ct = min(compute_seconds("zeta,w_n,q_factor,ct_class") for _ in range(repeat))
t_rho = min(compute_seconds("rho") for _ in range(repeat))
pts = N * N
rng = np.random.default_rng(0)
sample = [dict(alpha=rng.uniform(0.05, 0.99), beta=rng.uniform(0, 1), mu=0.9, eta=1.5) for _ in range(400)]
mats = [m for g in sample for m in (a_par(g), a_perp(g))]
t_logm, _ = best_of(lambda: [scipy.linalg.logm(m) for m in mats])
print("\n[log] closed-form log of both blocks (+ zeta, w_n, Q, class) vs scipy.linalg.logm, one thread")
print(f"  mdnstab sweep, 4 ct metrics : {pts / t_ct:12.4g} grid points/s ({pts} points, {t_ct:.3f} s, no CSV)")
print(f"  mdnstab sweep, rho only     : {pts / t_rho:12.4g} grid points/s (same grid: cost of the ct metrics "
      f"{(t_ct - t_rho) / pts * 1e9:.0f} ns/point)")
print(f"  scipy logm                  : {len(sample) / t_logm:12.4g} grid points/s (2 logm per point, {len(sample)} points)")
print(f"  ratio mdnstab/scipy         : {(pts / t_ct) / (len(sample) / t_logm):12.4g}x")
worst = 0.0
for g in [GATES, dict(alpha=0.9, beta=0.1, mu=0.5, eta=1.0), dict(alpha=0.9, beta=0.1, mu=0.1, eta=0.5),
          dict(alpha=0.9, beta=1.0, mu=0.8, eta=2.0), dict(alpha=0.95, beta=0.05, mu=0.9, eta=0.5)]:
    j = json.loads(run(["--format", "json", "ode"] + gate_args(g) + ["--omega", "0:0:1", "--t-end", "1"])[1])
    for blk, A in (("parallel", a_par(g)), ("perpendicular", a_perp(g))):
        L = np.array(j[blk]["log"])
        ref = np.real(scipy.linalg.logm(A))
        worst = max(worst, np.abs(L - ref).max() / max(1.0, np.abs(ref).max()))
print(f"  agreement with logm on 5 gate sets x 2 blocks: max |L - logm| / max(1, |logm|) = {worst:.2e}")

# ---- 2. trajectories ----
T, RT = 10000, 1e-10
g = dict(alpha=0.999, beta=0.05, mu=0.99, eta=1.0)  # slow decay: |x_T| stays representable
A, x0 = a_par(g), np.array([1.0, 0.0])
t_mdn, out = best_of(lambda: run(["--format", "json", "ode"] + gate_args(g) +
                                 ["--t-end", str(T), "--rel-tol", str(RT), "--omega", "0:0:1"])[1])
jt = json.loads(out)["trajectory"]
L = np.array(json.loads(out)["parallel"]["log"])
disc = np.empty((T + 1, 2))
disc[0] = x0
for t in range(T):
    disc[t + 1] = A @ disc[t]


def scipy_traj():
    return solve_ivp(lambda t, x: L @ x, (0, T), x0, method="RK45", rtol=RT, atol=1e-30,
                     t_eval=np.arange(T + 1.0))


t_sp, sol = best_of(scipy_traj)
rel_sp = (np.linalg.norm(sol.y.T - disc, axis=1) / np.linalg.norm(disc, axis=1)).max()
print(f"\n[trajectory] x' = L_par x, t = 0..{T} at integers, rel-tol {RT}, alpha .999 beta .05 mu .99 eta 1")
print(f"  mdnstab ode (Odeint dopri5) : {t_mdn:8.3f} s incl. process start, {jt['steps']} steps, "
      f"max rel diff to A^t x0 {jt['max_rel_diff']:.2e}")
print(f"  scipy solve_ivp RK45        : {t_sp:8.3f} s, {sol.nfev} rhs evaluations, max rel diff {rel_sp:.2e}")
print(f"  ratio scipy/mdnstab time    : {t_sp / t_mdn:8.3g}x")

# ---- 3. rotating-key scan ----
W = 257
omegas = np.linspace(0.05, 3.0, W)
t_scan, out = best_of(lambda: run(["--format", "json", "ode"] + gate_args(GATES) +
                                  ["--omega", f"0.05:3:{W}", "--t-end", "1"])[1])
jr = json.loads(out)["rotation"]
Lp, Lq = (np.array(json.loads(out)[b]["log"]) for b in ("parallel", "perpendicular"))
J = np.array([[0.0, -1.0], [1.0, 0.0]])
G0 = np.block([[Lp, np.zeros((2, 2))], [np.zeros((2, 2)), Lq]])  # key k0 = e1


def numpy_closed_form():
    return np.array([np.linalg.eigvals(G0 - w * np.kron(J, np.eye(2))).real.max() for w in omegas])


t_np, cf = best_of(numpy_closed_form)


def G(t, w):
    k = np.array([math.cos(w * t), math.sin(w * t)])
    P = np.outer(k, k)
    return np.kron(P, Lp) + np.kron(np.eye(2) - P, Lq)


def scipy_monodromy(w):
    Tp = math.pi / w
    sol = solve_ivp(lambda t, x: (G(t, w) @ x.reshape(4, 4)).ravel(), (0, Tp), np.eye(4).ravel(), method="RK45",
                    rtol=RT, atol=1e-30)
    return math.log(max(abs(np.linalg.eigvals(sol.y[:, -1].reshape(4, 4))))) / Tp


sub = omegas[::32]
t_spm, spm = best_of(lambda: [scipy_monodromy(w) for w in sub])
print(f"\n[rotation] tier-2 gates, DK = 2, {W} omegas in [0.05, 3]")
print(f"  mdnstab ode scan (Odeint monodromy + Eigen closed form + discrete): {t_scan:.3f} s, "
      f"{t_scan / W * 1e3:.3f} ms/omega, Odeint vs its closed form {jr['max_abs_disagreement']:.2e}")
print(f"  numpy eigvals closed form   : {t_np / W * 1e3:.3f} ms/omega, max |mdnstab rate - numpy| "
      f"{np.abs(np.array(jr['rate']) - cf).max():.2e}")
print(f"  scipy RK45 monodromy        : {t_spm / len(sub) * 1e3:.3f} ms/omega ({len(sub)} omegas), max |diff| to "
      f"numpy {np.abs(np.array(spm) - cf[::32]).max():.2e}")
print(f"  ratio scipy monodromy/mdnstab per omega: {(t_spm / len(sub)) / (t_scan / W):.3g}x")
print(f"  peak: omega = {jr['peak']['omega']:.4f}, rate {jr['peak']['rate']:.6f} per step "
      f"(x{jr['peak']['growth_per_step']:.4f}); discrete peak x{jr['discrete_peak']['growth_per_step']:.4f} "
      f"at theta = {jr['discrete_peak']['theta']:.4f}")
