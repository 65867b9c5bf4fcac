#!/usr/bin/python3
"""Reference values for the gate-memory certificate (tests/test_certify_memory.cpp).

Solves the same optimum as src/core/certify_memory.cpp with a different algorithm:
an SDP of the LMIs  A^T W_w' A <= gamma^2 W_w  (A = A_par, A_perp of the edge's gate,
w -> w' the De Bruijn graph on words of `memory` gate rows), W_w >= I, tr W_w <= 1e4,
maximizing the margin s at each gamma of a bisection, in Debian's python3-cvxopt.
Prints gamma for each case; the test holds the C++ solver to these within 1e-6.

    /usr/bin/python3 scripts/ref_gate_memory.py
"""
import itertools

import numpy as np
from cvxopt import matrix, solvers

solvers.options["show_progress"] = False


def a_par(g):
    a, b, m, e = g
    return np.array([[a - b * e * a, -b * m], [e * a, m]])


def a_perp(g):
    a, b, m, e = g
    return np.array([[a, -b * m], [0.0, m]])


def feasible(gates, gamma, memory):
    n = len(gates)
    words = list(itertools.product(range(n), repeat=memory))
    index = {w: i for i, w in enumerate(words)}
    nv = 3 * len(words) + 1  # (w11, w12, w22) per word, then the margin s
    basis = [np.array([[1.0, 0], [0, 0]]), np.array([[0, 1.0], [1, 0]]), np.array([[0, 0], [0, 1.0]])]
    Gs, hs = [], []
    for w in words:
        for g in range(n):
            w2 = (w + (g,))[1:] if memory else ()
            for A in (a_par(gates[g]), a_perp(gates[g])):
                # s I - (gamma^2 W_w - A^T W_w' A) <= 0
                cols = [np.zeros(4) for _ in range(nv)]
                for j, B in enumerate(basis):
                    cols[3 * index[w] + j] = cols[3 * index[w] + j] - gamma**2 * B.flatten()
                    cols[3 * index[w2] + j] = cols[3 * index[w2] + j] + (A.T @ B @ A).flatten()
                cols[-1] = np.eye(2).flatten()
                Gs.append(matrix(np.array(cols).T))
                hs.append(matrix(np.zeros((2, 2))))
    for w in words:  # W_w >= I
        cols = [np.zeros(4) for _ in range(nv)]
        for j, B in enumerate(basis):
            cols[3 * index[w] + j] = -B.flatten()
        Gs.append(matrix(np.array(cols).T))
        hs.append(matrix(-np.eye(2)))
    Gl, hl = [], []
    for w in words:  # tr W_w <= 1e4
        row = np.zeros(nv)
        row[3 * index[w]] = row[3 * index[w] + 2] = 1
        Gl.append(row)
        hl.append(1e4)
    row = np.zeros(nv)
    row[-1] = 1  # s <= 1
    Gl.append(row)
    hl.append(1.0)
    c = np.zeros(nv)
    c[-1] = -1
    sol = solvers.sdp(matrix(c), Gl=matrix(np.array(Gl)), hl=matrix(np.array(hl)), Gs=Gs, hs=hs)
    return sol["x"] is not None and sol["status"] in ("optimal", "unknown") and sol["x"][-1] > 1e-10


def gamma(gates, memory):
    lo, hi = 0.0, 3.0
    while hi - lo > 1e-10 * hi:
        mid = 0.5 * (lo + hi)
        if feasible(gates, mid, memory):
            hi = mid
        else:
            lo = mid
    return hi


def box(ranges):
    return [g for g in itertools.product(*ranges)]


CASES = {
    "three": [(0.9, 0.5, 0.9, 1.5), (0.5, 0.9, 0.99, 1.0), (0.99, 0.1, 0.5, 1.9)],
    "pair": [(0.8644, 0.1490, 0.6140, 0.4710), (0.5215, 0.6985, 0.8593, 0.6396)],
    "box": box([(0.5, 0.95), (0.1, 0.5), (0.3, 0.9), (0.5, 1.5)]),
}

if __name__ == "__main__":
    for name, gates in CASES.items():
        for memory in (0, 1, 2):
            if len(gates) ** (memory + 1) > 256:
                continue
            print(f"{name:6s} memory {memory}: gamma = {gamma(gates, memory):.10f}", flush=True)
