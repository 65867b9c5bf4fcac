// The fast frozen-spectrum kernel, written once over a lane type: `double` (one
// lane, src/core/spectrum_batch.cpp) or AVX2 / AVX-512 vectors (spectrum_batch_avx2.cpp,
// spectrum_batch_avx512.cpp, which include this after `#pragma GCC target`). Its
// reference is analyze_frozen() (src/core/spectrum.cpp): every arithmetic step below
// repeats the reference's operations in the same order, so results agree bit for bit
// except where a vector log/exp/atan2/hypot replaces libm's; tested in
// tests/test_spectrum_batch.cpp.
//
// Internal header: include it inside no namespace, after spectrum_batch_impl.hpp and
// after the lane type's operations (L::D, L::M, L::W, L::load, L::store, select, any,
// land, lor, lnot, count, same_bits, uniform, min_, max_, sqrt_, fma_, abs_, copysign_, log_,
// exp_, atan2_, hypot_), and after <memory> (included before any target pragma). Everything
// here has internal linkage, so each ISA's copy stays in its own translation unit.
#pragma once

namespace mdnstab::batch_kernel {
namespace {

using Args = KernelArgs;
// Same cap as the reference's transient_peak (src/core/spectrum.cpp).
constexpr long kMaxPeakSteps = 1L << 24;

template <class L>
struct Kernel {
  using D = typename L::D;
  using M = typename L::M;
  static constexpr int W = L::W;
  static constexpr double kInf = __builtin_inf();
  static constexpr double kNaN = __builtin_nan("");

  // Mat2::det(): ad - bc with Kahan's fma correction.
  static D det(D a, D b, D c, D d) {
    const D w = b * c;
    const D e = fma_(b, c, -w);
    return fma_(a, d, -w) - e;
  }
  // norm2_sq() of src/core/linearization.cpp given f = |P|_F^2 (same operation order).
  static D norm2_sq(D a, D b, D c, D d, D f) {
    const D p = a + d, q = b - c, r = a - d, s = b + c;
    const D g = sqrt_((r * r + s * s) * (p * p + q * q));
    return 0.5 * (f + g);
  }
  // The same for an upper-triangular P (c = +0): b - 0 is b, and b + 0 differs from b
  // only in the sign of a zero, which squaring drops: the value is bit-identical.
  static D norm2_sq_tri(D a, D b, D d, D f) {
    const D r = a - d, p = a + d, b2 = b * b;
    const D g = sqrt_((r * r + b2) * (p * p + b2));
    return 0.5 * (f + g);
  }

  // v, with libm's exp(x) in the lanes of m.
  static D libm_exp_where(M m, D x, D v) {
    double xs[W], vs[W], ms[W];
    L::store(xs, x);
    L::store(vs, v);
    L::store(ms, select(m, D(1.0), D(0.0)));
    for (int j = 0; j < W; ++j)
      if (ms[j] != 0.0) vs[j] = __builtin_exp(xs[j]);
    return L::load(vs);
  }

  struct Block {
    D a, b, c, d;          // the matrix
    D l1r, l1i, l2r, l2i;  // eigenvalues, ordered as eigenvalues() orders them
    D disc;                // trace^2/4 - det (double-double), where not triangular
    M cplx;
    D rho;
  };

  // eigenvalues() of src/core/spectrum.cpp.
  template <bool kTri>
  static void eigen(Block& k) {
    const D a = k.a, b = k.b, c = k.c, d = k.d;
    // Triangular: the diagonal, larger modulus first.
    const M swap = abs_(a) < abs_(d);
    const D t1 = select(swap, d, a), t2 = select(swap, a, d);
    k.l1i = D(0.0);
    k.l2i = D(0.0);
    k.disc = D(0.0);
    if constexpr (kTri) {
      k.l1r = t1;
      k.l2r = t2;
      k.cplx = M(false);
      return;
    } else {
      const M tri = lor(c == 0.0, b == 0.0);
      const D half = 0.5 * (a + d);
      const D diff = a - d;
      const D z = diff - a;
      const D diff_lo = (a - (diff - z)) - (d + z);
      const D dd = 0.5 * diff, dd_lo = 0.5 * diff_lo;
      const D p = dd * dd, p_lo = fma_(dd, dd, -p);
      const D q = b * c, q_lo = fma_(b, c, -q);
      const D disc = (p + q) + ((p_lo + q_lo) + (2.0 * dd) * dd_lo);
      const M real = disc >= 0.0;
      k.disc = disc;
      k.cplx = land(lnot(tri), lnot(real));
      D l1r = half, l2r = half, l1i = D(0.0), l2i = D(0.0);
      // sqrt(-disc) of a complex pair and sqrt(disc) of a real one are both
      // sqrt(|disc|) (copysign below ignores the sign of sqrt(-0)): one square root.
      const D s = sqrt_(abs_(disc));
      if (any(k.cplx)) {
        l1i = select(k.cplx, s, D(0.0));
        l2i = select(k.cplx, -s, D(0.0));
      }
      const M real_nt = land(lnot(tri), real);
      if (any(real_nt)) {
        const D l1 = half + copysign_(s, half);
        const D l2 = select(l1 != 0.0, det(a, b, c, d) / l1, D(0.0));
        l1r = select(real_nt, l1, l1r);
        l2r = select(real_nt, l2, l2r);
      }
      k.l1r = select(tri, t1, l1r);
      k.l2r = select(tri, t2, l2r);
      k.l1i = l1i;
      k.l2i = l2i;
    }
  }

  // max_{t >= 0} |A^t|_2 as the reference's transient_peak(): the same powers formed
  // in the same order, the same skip test and the running maximum of |A^t|_2^2 with
  // one square root at the end (sqrt is monotone and correctly rounded: the same
  // value), but stopped by the smallest of three bounds on every later norm, each
  // rigorous and nonincreasing in s:
  //  - complex pair r e^{+-i theta}: A^s = r^s S R(s theta) S^-1, and the sup over
  //    the phase of |S R S^-1|_2 is K = h(2 + e), h(F) = sqrt((F + sqrt(F^2 - 4))/2),
  //    e = ((a-d)^2 + (b+c)^2) / (-disc): |A^s| <= K r^s (the exact envelope);
  //  - distinct real l1, l2: A^s = l1^s P1 + l2^s P2 with |P1|_2 = |P2|_2 =
  //    |A - l2 I|_F / |l1 - l2|: |A^s| <= |P1| (|l1|^s + |l2|^s);
  //  - any: A = hI + E (h = trace/2, E^2 = disc I) gives A^s = c_e(s) I + c1(s) E with
  //    |c_e| <= r^s, |c1| <= s r^(s-1): |A^s| <= r^s + |E|_F s r^(s-1), nonincreasing
  //    once s >= 1/(1 - r) >= 1/ln(1/r).
  // The bounds are compared squared with the squared maximum (no square root or
  // division in the loop, few before it). They use r and |l|'s raised by 2e-15
  // relative and squared constants by 2e-12 (2e-9 for the projector, used only where
  // |l1 - l2| > 1e-6 (|a|+|b|+|c|+|d|)), which covers the rounding of the constants,
  // of the iterated r^s and of the squares. A_perp (upper triangular) has a fourth,
  // nearly exact one: see the loop.
  template <bool kTri>
  static D peak(const Block& k, M active) {
    const D a = k.a, b = k.b, c = k.c, d = k.d;
    const D up = D(1.0 + 2e-15);
    const D r_env = (kTri ? k.rho : select(k.cplx, max_(k.rho, sqrt_(max_(det(a, b, c, d), D(0.0)))), k.rho)) * up;
    const D one_minus_r = 1.0 - r_env;  // s >= 1/(1 - r) <=> s (1 - r) >= 1, tested with a margin
    const D ad = a - d;
    const D ef = sqrt_(0.5 * (ad * ad) + b * b + c * c) * (1.0 + 1e-12);  // |A - hI|_F
    // Complex envelope constant, squared.
    D kc2 = D(0.0);
    if (!kTri && any(k.cplx)) {
      const D bc = b + c;
      const D e = (ad * ad + bc * bc) / (-k.disc);
      kc2 = 0.5 * (2.0 + e + sqrt_(e * (4.0 + e))) * (1.0 + 2e-12);
    }
    // Projector constant for resolved distinct real eigenvalues, squared.
    const D gap = abs_(k.l1r - k.l2r);
    const D scale = abs_(a) + abs_(b) + abs_(c) + abs_(d);
    const M resolved = land(lnot(k.cplx), gap > 1e-6 * scale);
    D kp2 = D(0.0);
    if (any(resolved)) {
      const D x = a - k.l2r, y = d - k.l2r;
      kp2 = (x * x + b * b + c * c + y * y) / (gap * gap) * (1.0 + 2e-9);
    }
    const D r1 = abs_(k.l1r) * up, r2 = abs_(k.l2r) * up;
    const D skip = D(1.0 + 1e-15), close = D(1.0 + 1e-15);

    D best_sq = D(1.0);
    // Triangular: the powers as the reference forms them, A^t = [[a^t, b c(t)], [0, d^t]].
    D pa = a, pb = b, pc = kTri ? D(1.0) : c, pd = d;
    D es1 = r_env, es = r_env * r_env;   // r^(s-1), r^s for s = t + 1
    D e1 = r1 * r1, e2 = r2 * r2;        // |l1|^s, |l2|^s
    for (long t = 1;; ++t) {
      const D f = kTri ? (pa * pa + pb * pb) + pd * pd : ((pa * pa + pb * pb) + pc * pc) + pd * pd;
      const M upd = land(active, f * skip > best_sq);
      if (any(upd)) {
        const D u = kTri ? norm2_sq_tri(pa, pb, pd, f) : norm2_sq(pa, pb, pc, pd, f);
        best_sq = select(land(upd, best_sq < u), u, best_sq);
      }
      const double s = double(t + 1);
      // Each bound only where it holds. min_(bound2, x) keeps bound2 where x is NaN
      // (an infinite constant times a power squared to zero): bound2 is never NaN.
      D bound2 = D(kInf);
      if (!kTri) bound2 = select(k.cplx, min_(bound2, kc2 * (es * es)), bound2);
      const D ep = e1 + e2;
      bound2 = select(resolved, min_(bound2, kp2 * (ep * ep)), bound2);
      const D any_b = es + ef * (s * es1);
      bound2 = select(D(s) * one_minus_r >= 1.0 + 1e-12, min_(bound2, any_b * any_b), bound2);
      M done = bound2 * close <= best_sq;
      if constexpr (kTri) {
        // A^t = [[a^t, b c(t)], [0, d^t]], c(t+1) - c(t) = a^t - (1 - d) c(t), and
        // a^t / c(t) decreases, so c rises, then falls for good. Once it falls
        // (a^t <= (1 - d) c(t)), every entry of every later power is at most this
        // one's: |A^s|_2 <= |A^t|_F. The reference's rule, lane by lane.
        const M falling = pa <= (1.0 - d) * pc * (1.0 - 1e-12);
        done = lor(done, land(falling, f * (1.0 + 1e-10) <= best_sq));
      }
      active = land(active, lnot(done));
      if (!any(active) || t == kMaxPeakSteps) break;
      if constexpr (kTri) {
        pc = pa + pc * d;  // pc holds c(t) here, b c(t) is the entry
        pa = pa * a;
        pd = pd * d;
        pb = b * pc;
      } else {
        const D na = pa * a + pb * c, nb = pa * b + pb * d, nc = pc * a + pd * c, nd = pc * b + pd * d;
        pa = na;
        pb = nb;
        pc = nc;
        pd = nd;
      }
      es1 = es;
      es = es * r_env;
      e1 = e1 * r1;
      e2 = e2 * r2;
    }
    return sqrt_(best_sq);
  }

  // A_perp's powers for one (alpha, mu), shared by every point of a grid row: a^t,
  // c(t) and d^t do not depend on beta (see peak()). A vector whose lanes all share
  // the table's alpha and mu reads them here; only b c(t) and the norm are formed
  // lane by lane, with the same operations as peak<true>() and the reference, so the
  // values are the same bit for bit. Kept per thread across calls (a row outlives
  // a block of the sweep); built up to where c(t) starts to fall, extended on demand.
  static constexpr int kTab = 1024;
  struct PerpTable {
    double alpha = kNaN, mu = kNaN;  // the key (compared bit for bit)
    int n = 0;      // rows 1 .. n are filled
    int nb = 0;     // rows 1 .. nb have their bounds
    int fall = 0;   // the first t with a^t <= (1 - mu) c(t) (0: none up to kTab)
    double pa = 0, pd = 0, c = 0;  // a^t, d^t, c(t) of row n + 1
    double pa_t[kTab + 2], pd_t[kTab + 2], cc[kTab + 2];
    double a2[kTab + 2], d2[kTab + 2], amd2[kTab + 2], apd2[kTab + 2];  // a^2t, d^2t, (a^t -+ d^t)^2
    // Bounds on every later power s > t (row t needs row t + 1): entries a^s <= a^(t+1),
    // d^s <= d^(t+1), c(s) <= cs[t] = max over s > t (c(s) of the rows up to fall, and
    // c falls after fall).
    double sb[kTab + 2], cs[kTab + 2], cs2[kTab + 2], ms[kTab + 2];

    void fill(int want) {  // rows up to min(want, kTab)
      for (; n < want && n < kTab; ++n) {
        const int t = n + 1;
        pa_t[t] = pa;
        pd_t[t] = pd;
        cc[t] = c;
        a2[t] = pa * pa;
        d2[t] = pd * pd;
        amd2[t] = (pa - pd) * (pa - pd);
        apd2[t] = (pa + pd) * (pa + pd);
        if (fall == 0 && pa <= (1.0 - mu) * c * (1.0 - 1e-12)) fall = t;
        c = pa + c * mu;
        pa = pa * alpha;
        pd = pd * mu;
      }
    }
    // Rows 1 .. want with their bounds (want <= kTab - 1); false where c has not
    // started to fall within the table.
    bool reach(int want) {
      if (want <= nb) return true;
      fill(want + 1);
      if (fall == 0) fill(kTab);
      if (fall == 0 || n < want + 1) return false;
      if (fall + 1 > n) fill(fall + 1);
      // Bounds for rows nb + 1 .. n - 1 (each needs its successor). The first time
      // nb = 0 and n > fall: every row's cs sees the whole rise of c.
      const int lo = nb + 1;
      double run = 0.0;  // max of cc over (t, fall]
      for (int t = n - 1; t >= lo; --t) {
        if (t + 1 <= fall) run = run < cc[t + 1] ? cc[t + 1] : run;
        const double ct = t >= fall ? cc[t + 1] : run;
        // With the bounds' margins: 1e-10 on the Frobenius bound, 1e-7 on the square
        // of the triangle bound (5.1e-8 on each term), each covering the fma's rounding.
        cs[t] = ct * (1.0 + 5.1e-8);
        cs2[t] = ct * ct * (1.0 + 1e-10);
        sb[t] = (a2[t + 1] + d2[t + 1]) * (1.0 + 1e-10);
        ms[t] = (pa_t[t + 1] < pd_t[t + 1] ? pd_t[t + 1] : pa_t[t + 1]) * (1.0 + 5.1e-8);
      }
      nb = n - 1;
      return nb >= want;
    }
    void reset(double a, double m) {
      alpha = a;
      mu = m;
      n = 0;
      nb = 0;
      fall = 0;
      pa = a;
      pd = m;
      c = 1.0;
    }
  };

  // peak<true>() for lanes that share the table's alpha and mu: the same powers and
  // skip test, stopped by two bounds on every later power s > t instead, both
  // rigorous and nonincreasing in t:
  //  - Frobenius: |A^s|_2^2 <= f(s) <= sb[t] + b^2 cs2[t] (margin 1e-10: f(s) and the
  //    rounding of c after it falls, as the falling rule);
  //  - triangle: |A^s|_2 <= max(a^s, d^s) + |b| c(s) <= ms[t] + |b| cs[t], squared
  //    with a margin of 1e-7: set for an earlier closed form of norm2_sq that lost up
  //    to ~4e-8 where the singular values meet; the present one is within a few ulps,
  //    so the margin is now only generous (the stop comes at most a round later).
  // Returns false, leaving best alone, where the table cannot reach the stop.
  static bool peak_table(PerpTable& tab, D b, M active, D& best) {
    const D z = abs_(b), z2 = b * b;
    const D skip = D(1.0 + 1e-15);
    // (The squared triangle bound rounds twice more, the fma once: inside the margins.)
    D best_sq = D(1.0);
    // Two powers per round, the stop tested after the second: fewer exits to
    // mispredict, each waiting on the chain through the square root.
    auto eval = [&](int t) {
      const D pb = b * D(tab.cc[t]);
      const D f = (D(tab.a2[t]) + pb * pb) + D(tab.d2[t]);
      const M upd = land(active, f * skip > best_sq);
      const D pb2 = pb * pb;
      const D g = sqrt_((D(tab.amd2[t]) + pb2) * (D(tab.apd2[t]) + pb2));
      const D u = 0.5 * (f + g);
      best_sq = select(land(upd, best_sq < u), u, best_sq);
    };
    for (int t = 1;; t += 2) {
      if (t + 1 > tab.nb) {
        if (t + 1 > kTab - 1) return false;
        const int want = t < 32 ? 64 : 2 * t;
        if (!tab.reach(want < kTab - 1 ? want : kTab - 1)) return false;
      }
      eval(t);
      eval(t + 1);
      // The margins are in the table's constants (see reach()).
      const D frob = fma_(z2, D(tab.cs2[t + 1]), D(tab.sb[t + 1]));
      const D tri = fma_(z, D(tab.cs[t + 1]), D(tab.ms[t + 1]));
      const D bound2 = min_(frob, tri * tri);
      active = land(active, lnot(bound2 <= best_sq));
      if (!any(active)) break;
    }
    best = sqrt_(best_sq);
    return true;
  }

  // The kernel runs in phases over sub-blocks of kSub points: (1) matrices and
  // eigenvalues; (2) the vector log / exp / atan2 calls, each in its own loop with
  // nothing else live (the vector call ABI clobbers every vector register, so calls
  // amid the arithmetic would spill it all); (3) the metrics; (4) the transient peak.
  // Phase temporaries stay in L1. Elementwise results are reused where a vector's
  // inputs repeat the last computed one bit for bit (A_perp's metrics and A_par's
  // exp(log_det / 2) depend on alpha and mu only: along a beta or eta axis every
  // vector repeats them).
  static constexpr long kSub = 256;
  static constexpr long kSubVec = kSub / W;
  // Each array padded by a cache line, so that equal indices of different arrays
  // fall in different cache sets.
  static constexpr long kPad = kSub + 8;
  struct Temps {
    alignas(64) double ld[kPad];     // log_det (A_par's, after the det fallback)
    alignas(64) double a1[kPad];     // |l1| of A_par
    alignas(64) double a1p[kPad];    // |l1| of A_perp
    alignas(64) double disc[kPad];   // A_par's discriminant
    alignas(64) double theta[kPad];  // atan2(Im l1, Re l1) of A_par
    alignas(64) double s1[kPad];     // log |l1| of A_par
    alignas(64) double s1p[kPad];    // log |l1| of A_perp
    alignas(64) double rc[kPad];     // exp(log_det / 2)
    bool cplx[kSubVec], real[kSubVec];
    long perp_src[kSubVec];  // a vector with the same A_perp inputs (computed earlier), or -1
    long n_complex = 0, n_negative = 0;
    D top = D(-kInf);
  };
  // State carried across sub-blocks.
  struct Memo {
    bool perp = false, rc = false;
    long perp_i = -1;
    D alpha = D(0.0), mu = D(0.0), la = D(0.0), lm = D(0.0);  // inputs of vector perp_i
    D ld = D(0.0), rcv = D(0.0);                               // the last exp(log_det / 2) computed
  };

  static M load_flag(const double* p) { return L::load(p) != 0.0; }

  // Phase 1: matrices, eigenvalues (stored), what phase 2 needs.
  static void phase1(Args& g, long i0, long nv, Temps& t, Memo& m) {
    double* const* par = g.out;
    double* const* perp = g.out + kPerBlock;
    for (long v = 0; v < nv; ++v) {
      const long i = i0 + v * W, j = v * W;
      const D alpha = L::load(g.alpha + i), beta = L::load(g.beta + i), mu = L::load(g.mu + i),
              eta = L::load(g.eta + i), la = L::load(g.log_alpha + i), lm = L::load(g.log_mu + i);
      D log_det = la + lm;
      const D rp = g.p_one ? D(1.0) : alpha;
      // a_par() of src/core/linearization.cpp (member by member: value-initializing
      // the rest would zero them first).
      Block k;
      k.a = alpha - beta * eta * rp;
      k.b = -beta * mu;
      k.c = eta * rp;
      k.d = mu;
      eigen<false>(k);
      L::store(par[kL1Re] + i, k.l1r);
      L::store(par[kL1Im] + i, k.l1i);
      L::store(par[kL2Re] + i, k.l2r);
      L::store(par[kL2Im] + i, k.l2i);
      L::store(par[kComplex] + i, select(k.cplx, D(1.0), D(0.0)));
      // log_det = -inf (alpha or mu = 0): the reference falls back to log(det A),
      // which is -inf unless det A > 0 (possible through rounding with p-scale "one").
      // A_perp's det is then alpha * mu = 0 exactly: no fallback.
      const M no_ld = log_det == -kInf;
      if (any(no_ld)) {
        const D dt = det(k.a, k.b, k.c, k.d);
        log_det = select(land(no_ld, dt > 0.0), log_(dt), log_det);
      }
      L::store(t.ld + j, log_det);
      L::store(t.disc + j, k.disc);
      L::store(t.a1 + j, abs_(k.l1r));
      t.cplx[v] = any(k.cplx);
      t.real[v] = any(lnot(k.cplx));
      // A_perp: its eigenvalues, unless an earlier vector had the same inputs.
      if (m.perp && same_bits(alpha, m.alpha) && same_bits(mu, m.mu) && same_bits(la, m.la) &&
          same_bits(lm, m.lm)) {
        t.perp_src[v] = m.perp_i;
        continue;
      }
      t.perp_src[v] = -1;
      m.perp = true;
      m.perp_i = i;
      m.alpha = alpha;
      m.mu = mu;
      m.la = la;
      m.lm = lm;
      Block q;
      q.a = alpha;
      q.b = -beta * mu;
      q.c = D(0.0);
      q.d = mu;
      eigen<true>(q);
      L::store(perp[kL1Re] + i, q.l1r);
      L::store(perp[kL1Im] + i, q.l1i);
      L::store(perp[kL2Re] + i, q.l2r);
      L::store(perp[kL2Im] + i, q.l2i);
      L::store(perp[kComplex] + i, D(0.0));
      L::store(t.a1p + j, abs_(q.l1r));
    }
  }

  // Phase 2: the transcendental functions, one loop each.
  static void phase2(Args& g, long i0, long nv, Temps& t, Memo& m) {
    double* const* par = g.out;
    if (g.dynamics)
      for (long v = 0; v < nv; ++v)
        if (t.cplx[v]) {
          const long i = i0 + v * W;
          L::store(t.theta + v * W, atan2_(L::load(par[kL1Im] + i), L::load(par[kL1Re] + i)));
        }
    for (long v = 0; v < nv; ++v)
      if (t.cplx[v]) {
        // |lambda| = sqrt(det) exactly: rho = exp(log_det / 2).
        const D ld = L::load(t.ld + v * W);
        if (!(m.rc && same_bits(ld, m.ld))) {
          const D lnr = 0.5 * ld;
          D rc = exp_(lnr);
          // Within ~1e-12 of 1 a few ulps could move rho across 1 and flip
          // frozen_stable: there libm's exp, as the reference.
          const M near1 = lnr > -1e-12;
          if (any(near1)) rc = libm_exp_where(near1, lnr, rc);
          m.rc = true;
          m.ld = ld;
          m.rcv = rc;
        }
        L::store(t.rc + v * W, m.rcv);
      }
    if (!g.dynamics) return;
    // s1 = log(l1) where l1 > 0 is the same call as log |l1|.
    for (long v = 0; v < nv; ++v)
      if (t.real[v]) L::store(t.s1 + v * W, log_(L::load(t.a1 + v * W)));
    for (long v = 0; v < nv; ++v)
      if (t.perp_src[v] < 0) L::store(t.s1p + v * W, log_(L::load(t.a1p + v * W)));
  }

  // analyze_block() of src/core/spectrum.cpp given the eigenvalues and the logs.
  // Returns rho.
  template <bool kTri>
  static D metrics(const Args& g, double* const* o, long i, bool any_cplx, bool any_real, D log_det, D a1,
                   const double* theta, const double* rc, const double* s1) {
    const D l1r = L::load(o[kL1Re] + i), l2r = L::load(o[kL2Re] + i);
    const M cplx = kTri ? M(false) : load_flag(o[kComplex] + i);
    const D a2 = abs_(l2r);
    D rho = select(a1 < a2, a2, a1);  // std::max(a1, a2)
    if (!kTri && any_cplx) rho = select(cplx, L::load(rc), rho);
    const M real = lnot(cplx);
    L::store(o[kRho] + i, rho);
    L::store(o[kNegative] + i, select(land(real, lor(l1r < 0.0, l2r < 0.0)), D(1.0), D(0.0)));
    D ln_rho = D(0.0), damping = D(kNaN), natural = D(kNaN), half_life = D(kNaN);
    if (g.dynamics) {
      if (!kTri && any_cplx) {
        // ln|lambda| = log_det / 2.
        const D lnr = 0.5 * log_det;
        const D wn = hypot_(lnr, L::load(theta));
        ln_rho = select(cplx, lnr, ln_rho);
        natural = select(cplx, wn, natural);
        damping = select(cplx, -lnr / wn, damping);
      }
      if (any_real) {
        const D ls1 = L::load(s1);
        ln_rho = select(real, select(a1 > 0.0, ls1, D(-kInf)), ln_rho);
        const M pos = land(real, land(l1r > 0.0, l2r > 0.0));
        if (any(pos)) {
          // The reference takes log(l2) where log_det is not finite; that never
          // happens here: l2 > 0 implies det > 0, so log_det is finite.
          const D s2 = log_det - ls1;
          const D pr = ls1 * s2;
          const M has = land(pos, pr > 0.0);
          const D wn = sqrt_(pr);
          natural = select(has, wn, natural);
          damping = select(has, -(ls1 + s2) / (2.0 * wn), damping);
        }
      }
      half_life = select(rho >= 1.0, D(kInf), select(rho == 0.0, D(0.0), g.log_half / ln_rho));
    }
    L::store(o[kDamping] + i, damping);
    L::store(o[kNatural] + i, natural);
    L::store(o[kHalfLife] + i, half_life);
    return rho;
  }

  // Phase 3: the metrics of both blocks, frozen_rho.
  static void phase3(Args& g, long i0, long nv, Temps& t) {
    double* const* par = g.out;
    double* const* perp = g.out + kPerBlock;
    // A_perp's columns of the last vector computed, kept to store again where the
    // inputs repeat.
    long held = -1;
    D pv[kHalfLife + 1] = {};
    for (long v = 0; v < nv; ++v) {
      const long i = i0 + v * W, j = v * W;
      const D rho_par = metrics<false>(g, par, i, t.cplx[v], t.real[v], L::load(t.ld + j), L::load(t.a1 + j),
                                       t.theta + j, t.rc + j, t.s1 + j);
      const long src = t.perp_src[v];
      if (src < 0) {
        const D log_det = L::load(g.log_alpha + i) + L::load(g.log_mu + i);
        metrics<true>(g, perp, i, false, true, log_det, L::load(t.a1p + j), nullptr, nullptr, t.s1p + j);
      }
      if (src < 0 || src != held) {
        held = src < 0 ? i : src;
        for (int c = kL1Re; c <= kHalfLife; ++c) pv[c] = L::load(perp[c] + held);
      }
      if (src >= 0)
        for (int c = kL1Re; c <= kHalfLife; ++c) L::store(perp[c] + i, pv[c]);
      const D rho_perp = pv[kRho];
      // frozen_rho = std::max(rho_par, rho_perp).
      const D frozen = select(rho_par < rho_perp, rho_perp, rho_par);
      L::store(g.out[kFrozenRho] + i, frozen);
      // The summary: counts and the largest frozen_rho (patched lanes are recounted
      // by the caller).
      t.top = select(t.top < frozen, frozen, t.top);
      if (t.cplx[v]) t.n_complex += count(load_flag(par[kComplex] + i));
      t.n_negative += count(lor(load_flag(par[kNegative] + i), load_flag(perp[kNegative] + i)));
    }
  }

  // Phase 4: the transient peaks; points left to the reference go to g.patch.
  static void phase4(Args& g, long i0, long nv, const Temps& t, PerpTable& tab) {
    for (long v = 0; v < nv; ++v) {
      const long i = i0 + v * W;
      const D alpha = L::load(g.alpha + i), beta = L::load(g.beta + i), mu = L::load(g.mu + i),
              eta = L::load(g.eta + i);
      const D rp = g.p_one ? D(1.0) : alpha;
      M patch = M(false);
      for (int blk = 0; blk < 2; ++blk) {
        double* const* o = g.out + blk * kPerBlock;
        Block k;
        k.a = blk == 0 ? alpha - beta * eta * rp : alpha;
        k.b = -beta * mu;
        k.c = blk == 0 ? eta * rp : D(0.0);
        k.d = mu;
        k.l1r = L::load(o[kL1Re] + i);
        k.l1i = L::load(o[kL1Im] + i);
        k.l2r = L::load(o[kL2Re] + i);
        k.l2i = L::load(o[kL2Im] + i);
        k.disc = blk == 0 ? L::load(t.disc + v * W) : D(0.0);
        k.cplx = load_flag(o[kComplex] + i);
        k.rho = L::load(o[kRho] + i);
        // rho = 0 (a nilpotent block) and denormal rho: the reference's own branches.
        const M tiny = land(k.rho < 1.0, k.rho < 1e-300);
        patch = lor(patch, tiny);
        const M active = land(k.rho < 1.0, lnot(patch));
        D best = D(1.0);
        if (any(active)) {
          if (blk == 1) {
            bool done = false;
            if (uniform(alpha) && uniform(mu)) {
              // A new (alpha, mu) gets a table only where the next vector shares it:
              // a row, not a lone point (shuffled gates, the one-lane path).
              const bool same = __builtin_memcmp(g.alpha + i, &tab.alpha, sizeof(double)) == 0 &&
                                __builtin_memcmp(g.mu + i, &tab.mu, sizeof(double)) == 0;
              const bool row = v + 1 < nv && __builtin_memcmp(g.alpha + i + W, g.alpha + i, sizeof(double)) == 0 &&
                               __builtin_memcmp(g.mu + i + W, g.mu + i, sizeof(double)) == 0;
              if (!same && row) tab.reset(g.alpha[i], g.mu[i]);
              if (same || row) done = peak_table(tab, k.b, active, best);
            }
            if (!done) best = peak<true>(k, active);
          } else {
            // A_par is upper triangular where eta rho_p = 0: the reference forms its
            // powers as A_perp's.
            const M tri = k.c == 0.0;
            if (any(land(active, tri))) {
              const D bt = peak<true>(k, land(active, tri));
              const M gen = land(active, lnot(tri));
              best = any(gen) ? select(tri, bt, peak<false>(k, gen)) : bt;
            } else {
              best = peak<false>(k, active);
            }
          }
        }
        L::store(o[kPeak] + i, select(k.rho < 1.0, best, D(kInf)));
      }
      if (any(patch)) {
        double lanes[W];
        L::store(lanes, select(patch, D(1.0), D(0.0)));
        for (int j = 0; j < W; ++j)
          if (lanes[j] != 0.0) g.patch[g.n_patch++] = i + j;
      }
    }
  }

  // On the heap, made on first use: a 100 KB thread_local would sit in every thread's
  // static TLS, cleared at each thread's start in every part of the program.
  static PerpTable& perp_table() {
    static thread_local std::unique_ptr<PerpTable> tab;
    if (!tab) tab = std::make_unique<PerpTable>();
    return *tab;
  }

  static void run(Args& g, long begin, long end) {
    Temps t;
    Memo m;
    struct Fold {  // the summary into g, however run returns
      Args& g;
      Temps& t;
      ~Fold() {
        g.n_complex += t.n_complex;
        g.n_negative += t.n_negative;
        double lanes[W];
        L::store(lanes, t.top);
        for (double x : lanes) g.max_frozen_rho = g.max_frozen_rho < x ? x : g.max_frozen_rho;
      }
    } fold{g, t};
    for (long i0 = begin; i0 < end; i0 += kSub) {
      const long nv = (end - i0 < kSub ? end - i0 : kSub) / W;
      phase1(g, i0, nv, t, m);
      phase2(g, i0, nv, t, m);
      phase3(g, i0, nv, t);
      if (g.peak) {
        phase4(g, i0, nv, t, perp_table());
      } else {
        for (long i = i0; i < i0 + nv * W; ++i) g.out[kPeak][i] = g.out[kPerBlock + kPeak][i] = kNaN;
      }
    }
  }
};

}  // namespace
}  // namespace mdnstab::batch_kernel
