// The fast batch spectra (analyze_frozen_batch) against the portable reference
// (analyze_frozen_batch_ref = analyze_frozen per point) and against brute force for
// the transient peak, at every vector width this CPU runs: random gates and
// adversarial ones (the complex/real boundary, tiny and zero gates, alpha = mu,
// rho -> 1, beta*eta = 1, both p-scales), in grid order (the kernel's reuse of
// repeated inputs) and shuffled, with ragged lengths (the one-lane tail).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "mdnstab/spectrum_batch.hpp"

namespace mdnstab {
namespace {

// Gate sets as columns, for GateBatch.
struct GateSet {
  std::vector<double> alpha, beta, mu, eta, log_alpha, log_mu;
  void add(const Gates& g) {
    alpha.push_back(g.alpha);
    beta.push_back(g.beta);
    mu.push_back(g.mu);
    eta.push_back(g.eta);
    log_alpha.push_back(g.log_alpha);
    log_mu.push_back(g.log_mu);
  }
  void add(double a, double b, double m, double e) { add(Gates::from_linear(a, b, m, e).value); }
  long size() const { return long(alpha.size()); }
  GateBatch batch(PScale p) const {
    return {size(), alpha.data(), beta.data(), mu.data(), eta.data(), log_alpha.data(), log_mu.data(), p};
  }
};

// Random gates, a few grid-ordered runs (alpha, mu fixed while beta moves), and the
// adversarial cases; `shuffle` breaks the runs up. With `peak`, rho stays below
// 1 - 1e-3: closer to 1 the transient peak takes up to 2^24 powers in both paths.
GateSet test_gates(PScale p, bool shuffle, unsigned seed, bool peak) {
  const int k_max = peak ? 3 : 15;
  const double near_one = peak ? 1 - 1e-3 : 1 - 1e-12;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u01(0, 1);
  GateSet s;
  for (int i = 0; i < 3000; ++i) s.add(u01(rng), u01(rng), u01(rng), 2 * u01(rng));
  for (int run = 0; run < 40; ++run) {  // grid order
    const double a = u01(rng), m = run % 4 == 0 ? a : u01(rng), e = 2 * u01(rng);
    for (int j = 0; j < 37; ++j) s.add(a, j / 36.0, m, e);
  }
  // Log-space gates near 1 (rho -> 1), where log_alpha is not log(exp(log_alpha)).
  for (int k = 1; k <= k_max; ++k)
    for (double b : {0.0, 0.3, 1.0}) {
      s.add(Gates::from_log(-std::pow(10.0, -k), b, -2 * std::pow(10.0, -k), 1.7).value);
      s.add(Gates::from_log(-std::pow(10.0, -k), b, -0.1, 1.0).value);
      s.add(1 - std::pow(10.0, -k), b, 1 - std::pow(10.0, -k), 1.9);
    }
  // The complex/real boundary of A_par: beta*eta solved for a zero discriminant,
  // then nudged by a few ulps either way.
  for (int i = 0; i < 300; ++i) {
    const double a = 0.01 + 0.99 * u01(rng), m = 0.01 + 0.99 * u01(rng), e = 0.5 + 1.5 * u01(rng);
    const double r = std::sqrt(a * m);
    // p-scale alpha: a(1 - b) + m = 2 sqrt(a m); "one": a - b + m = 2 sqrt(a m).
    const double b = p == PScale::kAlpha ? 1 - (2 * r - m) / a : a + m - 2 * r;
    for (int k = -3; k <= 3; ++k) {
      const double beta = b / e + k * 1e-16;
      if (beta >= 0 && beta <= 1) s.add(a, beta, m, e);
    }
  }
  // Edge values of every gate, all combinations.
  const double edge[] = {0.0, 5e-324, 1e-300, 1e-12, 0.25, 0.5, near_one, 1.0};
  for (double a : edge)
    for (double m : edge)
      for (double b : {0.0, 1e-12, 0.5, 1.0})
        for (double e : {0.0, 1.0, 2.0}) s.add(a, b, m, e);
  // beta*eta = 1 and alpha = mu.
  for (int i = 0; i < 50; ++i) {
    const double a = u01(rng), e = 1 + u01(rng);
    s.add(a, 1 / e, a, e);
    s.add(a, 1 / e, u01(rng), e);
  }
  s.add(0.5, 0.5, 0.5, 1.0);  // odd length: a ragged tail at every width
  if (peak) {  // drop what puts rho of either block in (1 - 1e-3, 1), e.g. p-scale "one" at alpha = 0
    GateSet t;
    for (long i = 0; i < s.size(); ++i) {
      const FrozenSpectrum f = analyze_frozen(s.batch(p).at(i), {false});
      const double r1 = f.parallel.spectral_radius, r2 = f.perpendicular.spectral_radius;
      if ((r1 >= 1 || r1 <= 1 - 1e-3) && (r2 >= 1 || r2 <= 1 - 1e-3)) t.add(s.batch(p).at(i));
    }
    s = t;
    s.add(0.5, 0.5, 0.5, 1.0);
  }
  if (shuffle) {
    std::vector<long> order(size_t(s.size()));
    for (long i = 0; i < s.size(); ++i) order[size_t(i)] = i;
    std::shuffle(order.begin(), order.end(), rng);
    GateSet t;
    for (long i : order) t.add(s.batch(p).at(i));
    return t;
  }
  return s;
}

std::vector<SimdLevel> vector_levels() {
  std::vector<SimdLevel> v;
  for (SimdLevel l : {SimdLevel::kAvx2, SimdLevel::kAvx512})
    if (simd_supported(l)) v.push_back(l);
  return v;
}

const double* col(const BlockColumns& b, int k) {
  const double* c[] = {b.l1_re, b.l1_im, b.l2_re, b.l2_im, b.rho, b.complex_pair, b.negative,
                       b.damping_ratio, b.natural_frequency, b.half_life, b.transient_peak};
  return c[k];
}
const char* kColNames[] = {"l1_re", "l1_im", "l2_re", "l2_im", "rho", "complex_pair", "negative",
                           "damping_ratio", "natural_frequency", "half_life", "transient_peak"};

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

TEST(SpectrumBatch, OneLaneIsTheReferenceBitForBit) {
  // At one lane the fast path calls libm as the reference does: every column must
  // match bit for bit, the transient peak included (same powers, same maximum; only
  // the stopping bounds differ, and they are rigorous).
  for (PScale p : {PScale::kAlpha, PScale::kOne})
    for (bool shuffle : {false, true})
      for (bool peak : {true, false}) {
        const GateSet s = test_gates(p, shuffle, 17, peak);
        const GateBatch g = s.batch(p);
        SpectrumBatch ref(g.n), fast(g.n);
        analyze_frozen_batch_ref(g, {peak}, ref);
        analyze_frozen_batch(g, {peak}, SimdLevel::kNone, fast);
        for (int blk = 0; blk < 2; ++blk)
          for (int k = 0; k < 11; ++k) {
            const double *r = col(blk ? ref.perp : ref.par, k), *f = col(blk ? fast.perp : fast.par, k);
            long bad = 0;
            for (long i = 0; i < g.n; ++i)
              if (!same_bits(r[i], f[i]) && bad++ < 3)
                ADD_FAILURE() << (blk ? "perp " : "par ") << kColNames[k] << " at " << i << ": " << f[i] << " vs "
                              << r[i];
            EXPECT_EQ(bad, 0);
          }
        for (long i = 0; i < g.n; ++i) ASSERT_TRUE(same_bits(ref.frozen_rho[i], fast.frozen_rho[i])) << i;
        EXPECT_EQ(fast.n_complex, ref.n_complex);
        EXPECT_EQ(fast.n_negative, ref.n_negative);
        EXPECT_EQ(fast.max_frozen_rho, ref.max_frozen_rho);
      }
}

// Relative tolerance of a value derived through libmvec: 1e-14 (libmvec's log, exp,
// atan2 are within 4 ulp, the reference's libm within 1; a few roundings follow)
// times the conditioning of the formula. For a positive real pair, s2 = log_det -
// log(l1) cancels: an absolute error of a few ulp of |log l1| becomes relative to
// |s2|, and natural_frequency = sqrt(s1 s2), damping_ratio = -(s1 + s2)/(2 w_n)
// inherit it.
double tolerance(const BlockColumns& ref, long i, double log_det, int k) {
  double cond = 1;
  const double l1 = ref.l1_re[i], l2 = ref.l2_re[i];
  if ((k == 7 || k == 8) && ref.complex_pair[i] == 0 && l1 > 0 && l2 > 0) {
    const double s1 = std::log(l1), s2 = log_det - s1;
    cond = std::max(1.0, (std::abs(s1) + std::abs(log_det)) / std::abs(s2));
  }
  return 1e-14 * cond;
}

TEST(SpectrumBatch, VectorLevelsAgreeWithTheReference) {
  const auto levels = vector_levels();
  if (levels.empty()) GTEST_SKIP() << "no AVX2 or AVX-512 (or no libmvec): only the one-lane path runs here";
  for (SimdLevel level : levels)
    for (PScale p : {PScale::kAlpha, PScale::kOne})
      for (bool shuffle : {false, true}) {
        // The peak on the gates it can finish quickly, the rest with rho -> 1.
        const bool peak = !shuffle;
        const GateSet s = test_gates(p, shuffle, 23, peak);
        const GateBatch g = s.batch(p);
        SpectrumBatch ref(g.n), fast(g.n);
        analyze_frozen_batch_ref(g, {peak}, ref);
        analyze_frozen_batch(g, {peak}, level, fast);
        const std::string where = std::string(to_string(level)) + (p == PScale::kOne ? " one" : " alpha");
        long bad = 0;
        for (int blk = 0; blk < 2; ++blk) {
          const BlockColumns &r = blk ? ref.perp : ref.par, &f = blk ? fast.perp : fast.par;
          for (long i = 0; i < g.n; ++i) {
            const double log_det = g.log_alpha[i] + g.log_mu[i];
            for (int k = 0; k < 11; ++k) {
              const double a = col(f, k)[i], b = col(r, k)[i];
              // Pure arithmetic (eigenvalues, flags, the peak, rho of a real pair): bit for bit.
              const bool exact = k <= 3 || k == 5 || k == 6 || k == 10 || (k == 4 && r.complex_pair[i] == 0);
              const bool ok = exact ? same_bits(a, b)
                                    : (std::isnan(a) && std::isnan(b)) || a == b ||
                                          std::abs(a - b) <= tolerance(r, i, log_det, k) * std::abs(b);
              if (!ok && bad++ < 5)
                ADD_FAILURE() << where << (blk ? " perp " : " par ") << kColNames[k] << " at alpha=" << g.alpha[i]
                              << " beta=" << g.beta[i] << " mu=" << g.mu[i] << " eta=" << g.eta[i] << ": " << a
                              << " vs " << b;
            }
          }
        }
        EXPECT_EQ(bad, 0) << where;
        // frozen_stable never flips (libm's exp where rho is within 1e-12 of 1).
        for (long i = 0; i < g.n; ++i) {
          ASSERT_EQ(fast.frozen_rho[i] < 1, ref.frozen_rho[i] < 1) << where << " at " << i;
          ASSERT_NEAR(fast.frozen_rho[i], ref.frozen_rho[i], 1e-15 * ref.frozen_rho[i]) << where << " at " << i;
        }
        EXPECT_EQ(fast.n_complex, ref.n_complex) << where;
        EXPECT_EQ(fast.n_negative, ref.n_negative) << where;
        EXPECT_NEAR(fast.max_frozen_rho, ref.max_frozen_rho, 1e-15) << where;
      }
}

TEST(SpectrumBatch, WithoutDynamicsTheOtherColumnsAreUnchanged) {
  // dynamics = false skips the damping ratio, natural frequency and half-life (NaN);
  // every other column must be what the full computation gives, bit for bit, in the
  // reference and at every vector width. Without the transient peak: it reads only
  // the eigenvalues and rho checked here (and near rho = 1 it is slow under ASan).
  std::vector<SimdLevel> levels = vector_levels();
  levels.push_back(SimdLevel::kNone);
  for (PScale p : {PScale::kAlpha, PScale::kOne}) {
    const bool peak = false;
    const GateSet s = test_gates(p, true, 29, peak);
      const GateBatch g = s.batch(p);
      for (int path = -1; path < int(levels.size()); ++path) {
        SpectrumBatch full(g.n), part(g.n);
        const SpectrumOptions with{peak, true}, without{peak, false};
        if (path < 0) {
          analyze_frozen_batch_ref(g, with, full);
          analyze_frozen_batch_ref(g, without, part);
        } else {
          analyze_frozen_batch(g, with, levels[size_t(path)], full);
          analyze_frozen_batch(g, without, levels[size_t(path)], part);
        }
        const std::string where = path < 0 ? "reference" : std::string(to_string(levels[size_t(path)]));
        long bad = 0;
        for (int blk = 0; blk < 2; ++blk)
          for (int k = 0; k < 11; ++k) {
            const double *a = col(blk ? part.perp : part.par, k), *b = col(blk ? full.perp : full.par, k);
            const bool dyn = k >= 7 && k <= 9;
            for (long i = 0; i < g.n; ++i)
              if (!(dyn ? std::isnan(a[i]) : same_bits(a[i], b[i])) && bad++ < 3)
                ADD_FAILURE() << where << (blk ? " perp " : " par ") << kColNames[k] << " at " << i << ": " << a[i]
                              << " vs " << b[i];
          }
        EXPECT_EQ(bad, 0) << where;
        for (long i = 0; i < g.n; ++i) ASSERT_TRUE(same_bits(part.frozen_rho[i], full.frozen_rho[i])) << where;
        EXPECT_EQ(part.n_complex, full.n_complex) << where;
        EXPECT_EQ(part.n_negative, full.n_negative) << where;
      }
    }
}

TEST(SpectrumBatch, FrozenStableAtRhoOneBySomeUlps) {
  // Complex pairs with alpha * mu within a few ulps of 1: libmvec's exp could round
  // rho across 1; the fast path must say what the reference says.
  GateSet s;
  for (int k = 0; k < 64; ++k) {
    const double la = -k * 1e-17, lm = -(k % 5) * 1e-17;
    s.add(Gates::from_log(la, 0.5, lm, 1.5).value);
    s.add(Gates::from_log(la, 0.9, lm, 1.9, PScale::kAlpha).value);
  }
  for (SimdLevel level : {SimdLevel::kNone, SimdLevel::kAvx2, SimdLevel::kAvx512}) {
    if (!simd_supported(level)) continue;
    const GateBatch g = s.batch(PScale::kAlpha);
    SpectrumBatch ref(g.n), fast(g.n);
    analyze_frozen_batch_ref(g, {false}, ref);
    analyze_frozen_batch(g, {false}, level, fast);
    long complex = 0;
    for (long i = 0; i < g.n; ++i) {
      complex += ref.par.complex_pair[i] != 0;
      EXPECT_TRUE(same_bits(fast.par.rho[i], ref.par.rho[i])) << to_string(level) << " at " << i;
    }
    EXPECT_GT(complex, 60);
  }
}

// max_t |A^t|_2 by brute force: every power up to a horizon far past any peak.
double brute_peak(const Mat2& m, int horizon) {
  double best = 1;
  Mat2 p = m;
  for (int t = 1; t <= horizon; ++t, p = p * m) best = std::max(best, norm2(p));
  return best;
}

TEST(SpectrumBatch, TransientPeakMatchesBruteForce) {
  // Random gates with rho <= 0.98 (horizon 4000) or 0.999 (horizon 40000), and the
  // hard cases for the stopping bounds: a Jordan block (alpha = mu in A_perp), nearly
  // equal real eigenvalues, complex pairs barely off the real axis (the envelope
  // bound is reached only after many steps), strongly non-normal blocks.
  std::mt19937_64 rng(9);
  std::uniform_real_distribution<double> u01(0, 1);
  GateSet s;
  std::vector<int> horizon;
  for (int i = 0; i < 2000; ++i) {
    const double r = i % 10 == 0 ? 0.999 : 0.98;
    s.add(r * u01(rng), u01(rng), r * u01(rng), 2 * u01(rng));
    horizon.push_back(r > 0.99 ? 40000 : 4000);
  }
  for (double a : {0.5, 0.9, 0.99, 0.995}) {
    s.add(a, 1.0, a, 1.0);  // A_perp a Jordan block
    s.add(a, 1.0, a * (1 - 1e-9), 1.0);
    s.add(a, 1.0, a * (1 - 1e-5), 2.0);
    for (int i = 0; i < 5; i++) horizon.push_back(40000);
    s.add(a, 0.5, 0.999 * a, 1.5);
    s.add(a, 0.001, a, 0.5);
    horizon.push_back(40000);
    horizon.push_back(40000);
  }
  for (int i = 0; i < 100; ++i) {  // just inside the complex region, slow rotation
    const double a = 0.9 + 0.099 * u01(rng), m = 0.9 + 0.099 * u01(rng), e = 1.0;
    const double b = 1 - (2 * std::sqrt(a * m) - m) / a;
    if (b > 0 && b < 1) {
      s.add(a, b * (1 + 1e-6 * (1 + i)), m, e);
      horizon.push_back(40000);
    }
  }
  for (PScale p : {PScale::kAlpha, PScale::kOne}) {
    const GateBatch g = s.batch(p);
    std::vector<double> want_par(size_t(g.n)), want_perp(size_t(g.n));
    for (long i = 0; i < g.n; ++i) {
      const Gates x = g.at(i);
      const FrozenSpectrum f = analyze_frozen(x, {false});
      const int h = horizon[size_t(i)];
      want_par[size_t(i)] = f.parallel.spectral_radius < 1 ? brute_peak(a_par(x), h) : INFINITY;
      want_perp[size_t(i)] = f.perpendicular.spectral_radius < 1 ? brute_peak(a_perp(x), h) : INFINITY;
    }
    for (SimdLevel level : {SimdLevel::kNone, SimdLevel::kAvx2, SimdLevel::kAvx512}) {
      if (!simd_supported(level)) continue;
      SpectrumBatch out(g.n);
      analyze_frozen_batch(g, {true}, level, out);
      long bad = 0;
      for (long i = 0; i < g.n; ++i)
        for (int blk = 0; blk < 2; ++blk) {
          const double got = (blk ? out.perp : out.par).transient_peak[i];
          const double want = (blk ? want_perp : want_par)[size_t(i)];
          // The powers accumulate rounding like t * eps: 1e-12 relative over 40000 steps.
          if (!(got == want || std::abs(got - want) <= 1e-12 * want) && bad++ < 5)
            ADD_FAILURE() << to_string(level) << (blk ? " perp" : " par") << " alpha=" << g.alpha[i]
                          << " beta=" << g.beta[i] << " mu=" << g.mu[i] << " eta=" << g.eta[i] << ": " << got
                          << " vs brute force " << want;
        }
      EXPECT_EQ(bad, 0) << to_string(level);
    }
  }
}

TEST(SpectrumBatch, GridRowsShareAPerpPowersExactly) {
  // Rows of a grid (alpha, mu fixed, beta moving): the kernel reads A_perp's a^t,
  // c(t), d^t from a table shared by the row. Long rows near rho = 1, where the peak
  // comes late (c(t) peaks at t ~ 1000 for alpha = mu = 0.999) or beyond the table
  // (alpha = mu = 0.9995: the lane-by-lane path), rows one lane long, and eta = 0
  // (A_par triangular too, formed as A_perp): bit for bit against the reference and
  // within the powers' rounding of brute force.
  GateSet s;
  std::vector<int> horizon;
  for (double a : {0.3, 0.9, 0.99, 0.999, 0.9995})
    for (double m : {0.0, 0.5, 0.9, 0.999, 0.9995}) {
      if (m > 0.99 && a < 0.99) continue;
      const int n = a > 0.99 && m > 0.99 ? 23 : 203;  // ragged: rows start mid-vector
      for (int j = 0; j < n; ++j) {
        s.add(a, j / double(n - 1), m, j % 7 == 0 ? 0.0 : 1.5);
        horizon.push_back(a > 0.99 || m > 0.99 ? 40000 : 4000);
      }
    }
  for (int j = 0; j < 9; ++j) {  // one-point rows
    s.add(0.5 + j * 0.05, 0.7, 0.6, 1.0);
    horizon.push_back(4000);
  }
  for (PScale p : {PScale::kAlpha, PScale::kOne}) {
    const GateBatch g = s.batch(p);
    SpectrumBatch ref(g.n);
    analyze_frozen_batch_ref(g, {true}, ref);
    long checked = 0;
    for (long i = 0; i < g.n; ++i) {
      const Gates x = g.at(i);
      for (int blk = 0; blk < 2; ++blk) {
        const BlockColumns& c = blk ? ref.perp : ref.par;
        if (!(c.rho[i] < 1) || i % 3 != 0) continue;  // brute force on a third: the slow part
        const double want = brute_peak(blk ? a_perp(x) : a_par(x), horizon[size_t(i)]);
        EXPECT_NEAR(c.transient_peak[i], want, 1e-11 * want) << (blk ? "perp" : "par") << " at " << i;
        ++checked;
      }
      if (x.eta == 0 && ref.perp.rho[i] < 1) {  // A_par = A_perp
        EXPECT_TRUE(same_bits(ref.par.transient_peak[i], ref.perp.transient_peak[i])) << i;
      }
    }
    EXPECT_GT(checked, 2 * 800);
    for (SimdLevel level : {SimdLevel::kNone, SimdLevel::kAvx2, SimdLevel::kAvx512}) {
      if (!simd_supported(level)) continue;
      SpectrumBatch fast(g.n);
      analyze_frozen_batch(g, {true}, level, fast);
      long bad = 0;
      for (long i = 0; i < g.n; ++i)
        for (int blk = 0; blk < 2; ++blk) {
          const double got = (blk ? fast.perp : fast.par).transient_peak[i];
          const double want = (blk ? ref.perp : ref.par).transient_peak[i];
          if (!same_bits(got, want) && bad++ < 5)
            ADD_FAILURE() << to_string(level) << (blk ? " perp" : " par") << " alpha=" << g.alpha[i]
                          << " beta=" << g.beta[i] << " mu=" << g.mu[i] << ": " << got << " vs " << want;
        }
      EXPECT_EQ(bad, 0) << to_string(level);
    }
  }
}

TEST(SpectrumBatch, NilpotentBlocksGoToTheReference) {
  // alpha = mu = 0: both blocks have rho = 0; the kernel hands these points over.
  GateSet s;
  for (int i = 0; i < 20; ++i) s.add(0.0, i / 19.0, 0.0, 1.0);
  for (SimdLevel level : {SimdLevel::kNone, SimdLevel::kAvx2, SimdLevel::kAvx512}) {
    if (!simd_supported(level)) continue;
    const GateBatch g = s.batch(PScale::kAlpha);
    SpectrumBatch ref(g.n), fast(g.n);
    analyze_frozen_batch_ref(g, {true}, ref);
    EXPECT_EQ(analyze_frozen_batch(g, {true}, level, fast), g.n) << to_string(level);
    for (long i = 0; i < g.n; ++i) {
      EXPECT_TRUE(same_bits(fast.par.transient_peak[i], ref.par.transient_peak[i]));
      EXPECT_TRUE(same_bits(fast.perp.half_life[i], ref.perp.half_life[i]));
    }
  }
}

TEST(SpectrumBatch, PointAccessorsRoundTrip) {
  SpectrumBatch b(3);
  const FrozenSpectrum f = analyze_frozen(Gates::from_linear(0.9, 0.5, 0.8, 1.5).value);
  b.set(1, f);
  const FrozenSpectrum g = b.at(1);
  EXPECT_EQ(g.parallel.eig.l1, f.parallel.eig.l1);
  EXPECT_EQ(g.parallel.regime, f.parallel.regime);
  EXPECT_EQ(g.parallel.damping_ratio, f.parallel.damping_ratio);
  EXPECT_EQ(g.perpendicular.natural_frequency, f.perpendicular.natural_frequency);
  EXPECT_EQ(g.parallel.transient_peak, f.parallel.transient_peak);
  EXPECT_EQ(g.frozen_stable, f.frozen_stable);
  EXPECT_TRUE(simd_supported(SimdLevel::kNone));
  EXPECT_TRUE(simd_supported(best_simd_level()));
}

}  // namespace
}  // namespace mdnstab
