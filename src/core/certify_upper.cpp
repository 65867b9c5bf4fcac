// The quadratic upper bound of DESIGN.md section 4: gamma = min over 2x2 W > 0
// of max_i |W^1/2 A_i W^-1/2|_2, with a dual lower bound on that optimum.
// Tested in tests/test_certify.cpp against an independent optimizer (grid +
// Nelder-Mead over another parametrization of W) and the dual bound.
//
// W = L^T L with L = [[1, x], [0, y]] (W is defined up to scale), u = y^2; then
// B = L A L^-1 = [[a + x c, P/y], [y c, d - x c]], P = b + x (d - a) - c x^2, and
//   t(x, u) = |B|_F^2 = (a + x c)^2 + (d - x c)^2 + c^2 u + P^2 / u,
//   |B|_2^2 = (t + sqrt(t^2 - 4 det(A)^2)) / 2, increasing in t.
// In the slice w11 = 1, (x, x^2 + u) = (w12, w22), every sublevel set of the
// max of the norms is convex (the LMI A^T W A <= g^2 W), so the function is
// quasi-convex there: min over u at fixed x is a 1-D quasi-convex problem, and
// its value G(x) (a partial minimum) is quasi-convex in x. Both levels are
// solved by bracketing searches that need no smoothness.
// Extreme gates: the caller scales the matrices (scale_gates, exact powers of
// two) so that their largest entry is near 1; a tiny c (alpha * eta, or eta)
// makes the outer bracket ~1/|c| wide and G flat on most of it, so the outer
// search starts from closed-form candidates and searches in a log-like
// variable (outer_min). Candidates and the returned gamma use an accurate
// 2x2 norm (norm2_accurate): the t-based one loses half its digits where the
// singular values meet.
#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>

#include "certify_impl.hpp"
#include "mdnstab/spectrum.hpp"

namespace mdnstab::detail {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kInvPhi = 0.6180339887498949;  // 1 / golden ratio
// Golden-section steps on the outer variable: the bracket shrinks by
// 0.618^kOuterIters ~ 4e-14, far below what gamma to 1e-6 needs even at a kink
// (where the error in G is linear in the error in x).
constexpr int kOuterIters = 64;
// Bisection steps on v = log u: from a bracket of a few units to ~1e-12.
constexpr int kInnerIters = 48;
constexpr double kVCap = 600;  // |log u| <= 600 keeps c^2 u and P^2/u finite
// |x| <= kXCap: beyond it the normalized W = [1, x, x^2 + u] / (x^2 + u) has
// w11 < 1e-300, at the end of the double range. The matrices are scaled
// (scale_gates) so that their largest entry is near 1; a bracket reaching past
// the cap comes from a tiny c (= eta * rho_p), where G is flat over |x| << 1/|c|.
constexpr double kXCap = 1e150;
// Ties between outer candidates within this relative amount go to the better
// conditioned W: far below rel_tol and kVerdictRoundoff, so nothing visible is
// traded, but a flat G (tiny c) no longer ends at an ill-conditioned W.
constexpr double kTie = 1e-13;

struct Coef {
  double base, c2, q;  // t(u) = base + c2 u + q / u
  double cabs, pabs;   // |c|, |P|: c2 and q without squaring (no underflow)
};

inline Coef coef_at(const Mat2& A, double x) {
  const double b11 = A.a + x * A.c, b22 = A.d - x * A.c;
  const double p = A.b + x * A.d - x * b11;
  return {b11 * b11 + b22 * b22, A.c * A.c, p * p, std::abs(A.c), std::abs(p)};
}

// An objective value that overflowed (or 0 * inf) counts as no good.
inline double finite_or_inf(double v) { return v == v && v < kInf ? v : kInf; }

inline Mat2 transformed(const Mat2& A, double x, double y) {
  const double b11 = A.a + x * A.c;
  return {b11, (A.b + x * A.d - x * b11) / y, y * A.c, A.d - x * A.c};
}

// sigma_1^2 from t = sigma_1^2 + sigma_2^2 and |det| = sigma_1 sigma_2.
inline double sigma1_sq(double t, double absdet) {
  const double g = (t - 2 * absdet) * (t + 2 * absdet);
  return 0.5 * (t + std::sqrt(g > 0 ? g : 0.0));
}

// Golden-section search for the minimum of a quasi-convex f on [lo, hi];
// returns the best point evaluated (ties keep the earlier one).
template <class F>
double golden_min(F&& f, double lo, double hi, int iters, double& f_best) {
  double x1 = hi - kInvPhi * (hi - lo), x2 = lo + kInvPhi * (hi - lo);
  double f1 = f(x1), f2 = f(x2);
  double xb = f1 <= f2 ? x1 : x2;
  f_best = std::min(f1, f2);
  for (int it = 0; it < iters; ++it) {
    if (f1 <= f2) {
      hi = x2;
      x2 = x1;
      f2 = f1;
      x1 = hi - kInvPhi * (hi - lo);
      f1 = f(x1);
      if (f1 < f_best) f_best = f1, xb = x1;
    } else {
      lo = x1;
      x1 = x2;
      f1 = f2;
      x2 = lo + kInvPhi * (hi - lo);
      f2 = f(x2);
      if (f2 < f_best) f_best = f2, xb = x2;
    }
  }
  return xb;
}

// Two matrices of equal |det| (so minimizing max t is minimizing max norm),
// the first with c != 0, the second with c = 0 (A_perp). At fixed x,
// t_par(u) is convex with its minimum at u* = |P|/|c|; t_perp(u) = base + q/u
// is decreasing. The optimum is u* when t_par(u*) >= t_perp(u*), else the
// crossing u > u*, the larger root of c^2 u^2 + (base_par - base_perp) u +
// (q_par - q_perp) = 0.
inline double pair_inner(const Mat2& P, const Mat2& Q, double x, double& u_out) {
  const Coef p = coef_at(P, x), q = coef_at(Q, x);
  if (q.c2 != 0.0) {  // the callers route such pairs to upper_bound_set
    u_out = NAN;
    return NAN;
  }
  // u* = |P|/|c| and t_par(u*) = base + 2|c||P|, from the unsquared factors:
  // for a tiny c (tiny alpha or eta) c^2 and P^2 underflow while u* is O(1).
  const double us = p.pabs / p.cabs;
  const double tp = p.base + 2 * p.cabs * p.pabs;
  const double tq = us > 0 ? q.base + q.q / us : kInf;
  if (tp >= tq) {
    u_out = us;
    return finite_or_inf(tp);
  }
  const double D = p.base - q.base, K = p.q - q.q;
  const double disc = std::sqrt(std::max(0.0, D * D - 4 * p.c2 * K));
  double u = D >= 0 ? (D + disc > 0 ? -2 * K / (D + disc) : 0.0) : (-D + disc) / (2 * p.c2);
  if (!(u > 0)) {
    // Both P are zero here: t_par = base_par + c^2 u >= t_perp, least as u -> 0;
    // any u with c^2 u below the rounding of base_par is as good and keeps W
    // well conditioned (u = 1 where c^2 underflowed, e.g. a tiny eta).
    const double ucap = p.c2 > 0 ? 1e-17 * p.base / p.c2 : 1.0;
    u_out = ucap > 0 ? std::min(1.0, ucap) : std::numeric_limits<double>::min();
    return std::max(p.base + p.c2 * u_out, q.base);
  }
  if (!(u < kInf)) {
    // c^2 underflowed (c tiny) and base_par < base_perp: t_perp decreases to
    // base_perp as u grows, with t_par below it; the infimum is not attained.
    u_out = std::exp(kVCap);
    return finite_or_inf(std::max(p.base + p.c2 * u_out + p.q / u_out, q.base + q.q / u_out));
  }
  u_out = u;
  return finite_or_inf(std::max(p.base + p.c2 * u + p.q / u, q.base + q.q / u));
}

// log of the condition number of W = [[1, x], [x, x^2 + u]] (det u), up to a
// constant: the tie-break between outer points of equal value.
inline double log_cond_w(double x, double u) {
  if (!(u > 0) || !(u < kInf)) return kInf;
  return 2 * std::log1p(x * x + u) - std::log(u);
}

// Real roots of P(x) = b + x (d - a) - c x^2 (c != 0), where B = L A L^-1 is
// lower triangular (L maps an eigenvector of A^T to e1): natural outer
// candidates; the small root stays O(1) when c is tiny. Stable formulas.
inline int p_roots(const Mat2& A, double r[2]) {
  const double m = A.d - A.a;
  const double disc = m * m + 4 * A.b * A.c;
  if (!(A.c != 0.0) || !(disc >= 0)) return 0;
  const double q = 0.5 * (m + std::copysign(std::sqrt(disc), m));  // c x^2 - m x - b = 0
  int n = 0;
  if (q != 0) r[n++] = -A.b / q;
  r[n++] = q / A.c;
  return n;
}

// The outer minimization of a quasi-convex G(x) over [lo, hi], which holds a
// minimizer. `fast(x, u)` and `exact(x, u)` both return G at x with the inner
// optimum u; `exact` recomputes the norms at (x, u) accurately (norm2_accurate)
// and decides between points, `fast` drives the golden section.
// Candidates (closed-form points such as x0 and the roots above) are tried
// first; the best one (ties within kTie to the better conditioned W) is kept
// unless the search beats it. Where the bracket is huge next to the best
// candidate (a tiny c: width up to 1e150 around a minimizer at x ~ 1), the
// golden section runs in z, x = xc + sigma sinh(z): fine steps near xc,
// geometric ones far from it (a monotone change of variable keeps G
// quasi-convex); otherwise it runs on x as is. Returns (x, u).
template <class F, class E>
std::pair<double, double> outer_min(F&& fast, E&& exact, double lo, double hi, std::initializer_list<double> cands,
                                    bool search = true) {
  lo = std::clamp(lo, -kXCap, kXCap), hi = std::clamp(hi, -kXCap, kXCap);
  if (!(lo <= hi)) lo = hi = 0;  // NaN bracket (cannot happen with finite entries)
  double xc = 0, uc = 1, gc = kInf, cc = kInf;
  bool have = false;
  auto consider = [&](double x, double u, double g) {
    g = finite_or_inf(g);
    const double cond = log_cond_w(x, u);
    if (!have || g < gc * (1 - kTie) || (g <= gc * (1 + kTie) && cond < cc)) xc = x, uc = u, gc = g, cc = cond, have = true;
  };
  for (double x : cands) {
    if (!(x == x)) continue;
    x = std::clamp(x, lo, hi);
    double u;
    const double g = exact(x, u);
    consider(x, u, g);
  }
  if (!have) {
    double u;
    const double x = std::clamp(0.0, lo, hi);
    const double g = exact(x, u);
    consider(x, u, g);
  }
  const double reach = std::max(hi - xc, xc - lo);
  if (!search || !(reach > 0)) return {xc, uc};
  double u, gb, xb;
  const double scale = xc != 0 ? std::min(std::abs(xc), reach) : reach;
  if (reach <= 0x1p20 * scale) {
    xb = golden_min([&](double x) { return finite_or_inf(fast(x, u)); }, lo, hi, kOuterIters, gb);
  } else {
    const double sigma = scale / 64;
    const double zlo = -std::asinh((xc - lo) / sigma), zhi = std::asinh((hi - xc) / sigma);
    auto x_of = [&](double z) { return std::clamp(xc + sigma * std::sinh(z), lo, hi); };
    // Enough steps that the z bracket shrinks to ~1e-12 of a width-16 one.
    const double width = zhi - zlo;
    const int iters = kOuterIters + (width > 16 ? int(std::ceil(std::log(width / 16) / std::log(1 / kInvPhi))) : 0);
    xb = x_of(golden_min([&](double z) { return finite_or_inf(fast(x_of(z), u)); }, zlo, zhi, iters, gb));
  }
  const double g = exact(xb, u);
  consider(xb, u, g);
  return {xc, uc};
}

// Symmetric 2x2 as (s11, s12, s22).
using Sym = std::array<double, 3>;

// max{s >= 0 : M - s N >= 0} for PSD M, N; 0 where degenerate (a valid bound).
double pencil_min(const Sym& M, const Sym& N) {
  const double detM = M[0] * M[2] - M[1] * M[1];
  const double detN = N[0] * N[2] - N[1] * N[1];
  const double b = M[0] * N[2] + M[2] * N[0] - 2 * M[1] * N[1];
  if (!(M[0] >= 0 && M[2] >= 0 && detM >= 0)) return 0.0;
  if (!(b > 1e-300)) return 0.0;
  const double disc = std::max(0.0, b * b - 4 * detN * detM);
  const double s = 2 * detM / (b + std::sqrt(disc));
  if (!std::isfinite(s) || s < 0) return 0.0;
  // Guard rounding: step back until M - s N is PSD in floating point.
  double sg = s;
  for (int k = 0; k < 4; ++k) {
    const double m0 = M[0] - sg * N[0], m1 = M[1] - sg * N[1], m2 = M[2] - sg * N[2];
    if (m0 >= 0 && m2 >= 0 && m0 * m2 - m1 * m1 >= 0) return sg;
    sg *= 1 - 1e-15 * double(1 << (3 * k));
  }
  return sg;
}

struct DualCand {
  Sym M, N, G;  // M = B Z B^T, N = Z, G = M - gamma^2 N
  double sigma = 0;
};

// Lower bound on the optimal gamma by weak duality: if W > 0 had
// A_i^T W A_i <= g^2 W for all i, then for any Z_i >= 0,
// tr(W sum A_i Z_i A_i^T) <= g^2 tr(W sum Z_i); so sum A_i Z_i A_i^T >= s sum Z_i
// forces g^2 >= s. Computed in the coordinates of B_i = L A_i L^-1 (W = I),
// with Z_i = r r^T (r the top right singular vector of B_i) or Z_i = I, and
// weights from the min-norm point of the candidates' gradients G_i (the KKT
// condition of the primal is sum w_i G_i = 0 at the optimum).
double dual_bound(std::span<const Mat2> B, double gamma) {
  std::vector<DualCand> cand;
  const double g2 = gamma * gamma;
  const double keep = gamma * (1 - 1e-4);
  for (const Mat2& b : B) {
    const double s1 = norm2_accurate(b);
    if (!(s1 >= keep) || s1 == 0) continue;
    const double s2 = std::abs(b.det()) / s1;
    // Right singular vectors: eigenvectors of B^T B.
    const double p = b.a * b.a + b.c * b.c, q = b.a * b.b + b.c * b.d, r = b.b * b.b + b.d * b.d;
    const double phi = 0.5 * std::atan2(2 * q, p - r);
    const double c = std::cos(phi), s = std::sin(phi);
    const double u0 = (b.a * c + b.b * s) / s1, u1 = (b.c * c + b.d * s) / s1;
    DualCand k;
    k.sigma = s1;
    k.M = {s1 * s1 * u0 * u0, s1 * s1 * u0 * u1, s1 * s1 * u1 * u1};
    k.N = {c * c, c * s, s * s};
    cand.push_back(k);
    if (s2 >= keep) {  // near a scaled rotation: Z = I
      DualCand z;
      z.sigma = s2;
      z.M = {b.a * b.a + b.b * b.b, b.a * b.c + b.b * b.d, b.c * b.c + b.d * b.d};
      z.N = {1, 0, 1};
      cand.push_back(z);
    }
  }
  std::sort(cand.begin(), cand.end(), [](const DualCand& x, const DualCand& y) { return x.sigma > y.sigma; });
  if (cand.size() > 8) cand.resize(8);
  for (DualCand& k : cand)
    for (int j = 0; j < 3; ++j) k.G[j] = k.M[j] - g2 * k.N[j];
  // Frobenius inner product of symmetric matrices stored as (11, 12, 22).
  auto dot = [](const Sym& x, const Sym& y) { return x[0] * y[0] + 2 * x[1] * y[1] + x[2] * y[2]; };
  double best = 0;
  auto eval = [&](std::initializer_list<std::pair<int, double>> w) {
    Sym M{0, 0, 0}, N{0, 0, 0};
    for (auto [i, l] : w)
      for (int j = 0; j < 3; ++j) M[j] += l * cand[i].M[j], N[j] += l * cand[i].N[j];
    best = std::max(best, pencil_min(M, N));
  };
  const int n = int(cand.size());
  for (int i = 0; i < n; ++i) {
    eval({{i, 1.0}});
    for (int j = i + 1; j < n; ++j) {
      Sym d;
      for (int k = 0; k < 3; ++k) d[k] = cand[j].G[k] - cand[i].G[k];
      const double dd = dot(d, d);
      const double l = dd > 0 ? std::clamp(-dot(cand[i].G, d) / dd, 0.0, 1.0) : 0.5;
      eval({{i, 1 - l}, {j, l}});
      for (int m = j + 1; m < n; ++m) {
        Sym e;
        for (int k = 0; k < 3; ++k) e[k] = cand[m].G[k] - cand[i].G[k];
        // min |G_i + l1 d + l2 e| over the plane, kept if inside the triangle.
        const double a11 = dot(d, d), a12 = dot(d, e), a22 = dot(e, e);
        const double r1 = -dot(cand[i].G, d), r2 = -dot(cand[i].G, e);
        const double det = a11 * a22 - a12 * a12;
        if (!(det > 1e-14 * a11 * a22)) continue;
        const double l1 = (r1 * a22 - r2 * a12) / det, l2 = (a11 * r2 - a12 * r1) / det;
        if (l1 >= 0 && l2 >= 0 && l1 + l2 <= 1) eval({{i, 1 - l1 - l2}, {j, l1}, {m, l2}});
      }
    }
  }
  return std::sqrt(best);
}

UpperBound finish(std::span<const Mat2> mats, double x, double u) {
  if (!(u > 0) || !std::isfinite(u)) u = u > 0 ? 1e300 : std::numeric_limits<double>::min();
  const double y = std::sqrt(u);
  UpperBound ub;
  std::vector<Mat2> B(mats.size());
  for (size_t i = 0; i < mats.size(); ++i) {
    B[i] = transformed(mats[i], x, y);
    const double n = norm2_accurate(B[i]);
    if (!(n <= ub.gamma)) ub.gamma = n, ub.active = int(i);
  }
  // W = [[1, x], [x, x^2 + u]], scaled so that its larger diagonal entry is 1.
  const double w22 = x * x + u;
  const double s = std::max(1.0, w22);
  ub.W = {1 / s, x / s, w22 / s};
  ub.factor = {x, y};
  ub.gamma_dual = dual_bound(B, ub.gamma);
  return ub;
}

}  // namespace

double spectral_radius2(const Mat2& m) {
  const Eigenvalues2 e = eigenvalues(m);
  return std::abs(e.l1);
}

UpperBound upper_bound_pair(const Mat2& P, const Mat2& Q) {
  const Mat2 pq[2] = {P, Q};
  if (P.c == 0.0 || Q.c != 0.0) return upper_bound_set(pq);
  const double x0 = std::clamp((P.d - P.a) / (2 * P.c), -kXCap, kXCap);
  const double m0 = 0.5 * (P.a + P.d) * (P.a + P.d);
  double u0;
  const double g0 = pair_inner(P, Q, x0, u0);
  // G(x) >= t_par(x, u) >= base_par(x) = m0 + 2 c^2 (x - x0)^2: the optimum
  // lies where that is <= G(x0). For a tiny c the bracket is huge (clamped to
  // kXCap) and G nearly flat on it; outer_min searches it from the candidates.
  const double r = std::sqrt(std::max(0.0, g0 - m0) / 2) / std::abs(P.c) * (1 + 1e-9) + 1e-300;
  double roots[2];
  const int nr = p_roots(P, roots);
  // Q's own shear (B_perp diagonal) when A_perp is not a multiple of I.
  const double xq = Q.a != Q.d ? Q.b / (Q.a - Q.d) : x0;
  // Points are compared by the accurate max |B|_2^2 at (x, u*(x)), not by t:
  // near a double singular value sigma_1 moves like sqrt(t - 2|det|), so t's
  // rounding would pick points whose norm it underestimates.
  const double ad = std::abs(P.det());
  auto fast = [&](double xx, double& uu) { return sigma1_sq(pair_inner(P, Q, xx, uu), ad); };
  auto exact = [&](double xx, double& uu) {
    const double t = pair_inner(P, Q, xx, uu);
    if (!(t < kInf) || !(uu > 0) || !(uu < kInf)) return kInf;
    const double y = std::sqrt(uu);
    const double n = std::max(norm2_accurate(transformed(P, xx, y)), norm2_accurate(transformed(Q, xx, y)));
    return n * n;
  };
  const auto [x, u] = outer_min(fast, exact, x0 - r, x0 + r,
                                {x0, nr > 0 ? roots[0] : x0, nr > 1 ? roots[1] : x0, xq});
  return finish(pq, x, u);
}

namespace {

// Inner problem of the general set at fixed x: min over v = log u of
// max_i sigma_1^2(B_i). Bisection on the sign of the active term's slope
// (a convex c^2 u + q/u in u, so its sign says which side the minimum is on).
struct SetInner {
  std::span<const Mat2> mats;
  std::vector<double> absdet;
  mutable std::vector<Coef> co;

  // Value and slope sign of the active term at v.
  double value(double v, int* slope) const {
    const double u = std::exp(v);
    double best = -1, sl = 0;
    for (const Coef& k : co) {
      const double t = k.base + k.c2 * u + k.q / u;
      const double s = sigma1_sq(t, absdet[&k - co.data()]);
      if (s > best) best = s, sl = k.c2 * u - k.q / u;
    }
    if (slope) *slope = sl > 0 ? 1 : (sl < 0 ? -1 : 0);
    return best;
  }

  double solve(double x, double& v_out) const {
    for (size_t i = 0; i < mats.size(); ++i) co[i] = coef_at(mats[i], x);
    // Start at the mean of the c != 0 terms' own minimizers.
    double v0 = 0;
    int n0 = 0;
    for (const Coef& k : co)
      if (k.cabs > 0 && k.pabs > 0) v0 += std::log(k.pabs) - std::log(k.cabs), ++n0;  // log(|P|/|c|), no underflow
    v0 = n0 ? std::clamp(v0 / n0, -kVCap, kVCap) : 0.0;
    double fbest = kInf, vbest = v0;
    auto f = [&](double v, int* sl) {
      const double val = value(v, sl);
      if (val < fbest) fbest = val, vbest = v;
      return val;
    };
    int sl;
    double lo = v0 - 1, hi = v0 + 1, step = 2;
    f(lo, &sl);
    while (sl > 0 && lo > -kVCap) {
      lo = std::max(-kVCap, lo - step), step *= 2;
      f(lo, &sl);
    }
    step = 2;
    f(hi, &sl);
    while (sl < 0 && hi < kVCap) {
      hi = std::min(kVCap, hi + step), step *= 2;
      f(hi, &sl);
    }
    for (int it = 0; it < kInnerIters && hi - lo > 1e-13 * (1 + std::abs(lo)); ++it) {
      const double mid = 0.5 * (lo + hi);
      f(mid, &sl);
      if (sl > 0)
        hi = mid;
      else if (sl < 0)
        lo = mid;
      else
        break;
    }
    v_out = vbest;
    return fbest;
  }
};

}  // namespace

namespace {

// The optimal (x, u) for a (small) set of matrices.
std::pair<double, double> solve_set(std::span<const Mat2> mats) {
  SetInner in{mats, std::vector<double>(mats.size()), std::vector<Coef>(mats.size())};
  for (size_t i = 0; i < mats.size(); ++i) in.absdet[i] = std::abs(mats[i].det());
  // The term with the largest |c| bounds the outer bracket (as in the pair case).
  int istar = -1;
  for (size_t i = 0; i < mats.size(); ++i)
    if (mats[i].c != 0.0 && (istar < 0 || std::abs(mats[i].c) > std::abs(mats[istar].c))) istar = int(i);
  auto eval = [&](double x, double& u) {
    double v;
    const double g = in.solve(x, v);
    u = std::exp(v);
    return g;
  };
  auto exact = [&](double x, double& u) {
    eval(x, u);
    if (!(u > 0) || !(u < kInf)) return kInf;
    double n = 0;
    for (const Mat2& A : mats) n = std::max(n, norm2_accurate(transformed(A, x, std::sqrt(u))));
    return n * n;
  };
  if (istar < 0) {
    // Every matrix upper triangular: the infimum max |diagonal| is approached as
    // the m coordinate is weighted ever more (u -> infinity), at any x; where
    // one shear x = b / (a - d) zeroes every B's corner (e.g. alpha = 0: A_par =
    // A_perp), any u attains it: try those x too, keeping the better conditioned W.
    double xs[3] = {0.0, 0.0, 0.0};
    int k = 0;
    for (size_t i = 0; i < mats.size() && k < 2; ++i)
      if (mats[i].a != mats[i].d) xs[++k] = mats[i].b / (mats[i].a - mats[i].d);
    // G is the same at every x (the infimum is max |diagonal|): candidates only.
    return outer_min(eval, exact, -kXCap, kXCap, {xs[0], xs[1], xs[2]}, false);
  }
  const Mat2& P = mats[istar];
  const double x0 = std::clamp((P.d - P.a) / (2 * P.c), -kXCap, kXCap);
  const double m0 = 0.5 * (P.a + P.d) * (P.a + P.d);
  double u0;
  const double g0 = eval(x0, u0);
  const double ad = in.absdet[istar];
  const double tmax = g0 > 0 ? g0 + ad * ad / g0 : 0.0;  // t of term istar when its sigma_1^2 = g0
  // |c| outside the square root: c^2 underflows for a tiny c (huge bracket, clamped).
  const double r = std::sqrt(std::max(0.0, tmax - m0) / 2) / std::abs(P.c) * (1 + 1e-9) + 1e-300;
  double roots[2];
  const int nr = p_roots(P, roots);
  return outer_min(eval, exact, x0 - r, x0 + r, {x0, nr > 0 ? roots[0] : x0, nr > 1 ? roots[1] : x0});
}

double norm_at(const Mat2& A, double x, double u) { return norm2_accurate(transformed(A, x, std::sqrt(u))); }

}  // namespace

UpperBound upper_bound_set(std::span<const Mat2> mats) {
  constexpr size_t kDirect = 48, kAdd = 16;
  if (mats.size() <= kDirect) {
    const auto [x, u] = solve_set(mats);
    return finish(mats, x, u);
  }
  // Active set: solve on a subset, add the matrices the subset's W does not
  // bound, repeat. The final gamma is the max over all matrices at W, so the
  // bound is exact for the whole set whatever the subset was.
  const size_t n = mats.size();
  std::vector<char> in(n, 0);
  std::vector<size_t> subset_idx;
  std::vector<double> score(n);
  std::vector<size_t> order(n);
  auto add_top = [&](size_t k) {
    for (size_t i = 0; i < n; ++i) order[i] = i;
    const size_t m = std::min(n, k + subset_idx.size());
    std::partial_sort(order.begin(), order.begin() + long(m), order.end(),
                      [&](size_t a, size_t b) { return score[a] > score[b]; });
    size_t added = 0;
    for (size_t j = 0; j < m && added < k; ++j)
      if (!in[order[j]]) in[order[j]] = 1, subset_idx.push_back(order[j]), ++added;
    return added;
  };
  for (size_t i = 0; i < n; ++i) score[i] = spectral_radius2(mats[i]);
  add_top(kAdd);
  for (size_t i = 0; i < n; ++i) score[i] = norm2_accurate(mats[i]);
  add_top(kAdd);
  double x = 0, u = 1;
  for (int round = 0; round < 64; ++round) {
    std::vector<Mat2> sub;
    for (size_t i : subset_idx) sub.push_back(mats[i]);
    std::tie(x, u) = solve_set(sub);
    double g_sub = 0, g_all = 0;
    for (size_t i = 0; i < n; ++i) {
      score[i] = norm_at(mats[i], x, u);
      g_all = std::max(g_all, score[i]);
      if (in[i]) g_sub = std::max(g_sub, score[i]);
    }
    if (!(g_all > g_sub * (1 + 1e-12))) break;
    for (size_t i = 0; i < n; ++i)
      if (in[i] || score[i] <= g_sub) score[i] = -1;  // only violators
    if (add_top(kAdd) == 0) break;
  }
  return finish(mats, x, u);
}

}  // namespace mdnstab::detail
