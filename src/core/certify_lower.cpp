// Lower bounds on the worst-case growth (DESIGN.md section 4): explicit key
// schedules (witnesses) and their growth per step.
//  - rotation: keys k_t = R(t theta) e1. With D_t = I_2 (x) R(t theta) acting on
//    the (s, m) pairs, T(k_t) = D_t T(e1) D_t^T, so y_t = D_t^T x_t obeys
//    y_{t+1} = C y_t with C = (I_2 (x) R(theta))^T T(e1), ordered (s1, m1, s2, m2):
//    C = [[c A_par, s A_perp], [-s A_par, c A_perp]]. For one gate (det A_par =
//    det A_perp = delta) its characteristic polynomial is palindromic up to
//    delta: with z = lambda + delta / lambda,
//      z^2 - c T1 z + c^2 tr(A_par) tr(A_perp) + s^2 (tr(A_par A_perp) - 2 delta) = 0,
//    T1 = tr(A_par) + tr(A_perp); then lambda^2 - z lambda + delta = 0.
//  - switching: keys e1 / e2, so each key coordinate sees a word in A_par, A_perp.
//  - gate sets: cycles of gates under one rotation, and words mixing gates.
// Tested in tests/test_certify.cpp (Eigen on the 4x4 products, replays through
// the reference recurrence).
#include <algorithm>
#include <cmath>
#include <complex>
#include <numbers>

#include <Eigen/Eigenvalues>

#include "certify_impl.hpp"

namespace mdnstab {

namespace {

constexpr double kHalfPi = std::numbers::pi / 2;
constexpr double kInvPhi = 0.6180339887498949;

struct RotCoef {
  double trP, trQ, trPQ, delta;
};

RotCoef rot_coef(const Gates& g) {
  const Mat2 P = a_par(g), Q = a_perp(g);
  const Mat2 PQ = P * Q;
  return {P.trace(), Q.trace(), PQ.trace(), g.alpha * g.mu};
}

// max |lambda| with lambda^2 - z lambda + delta = 0.
inline double quad_rho(std::complex<double> z, double delta) {
  const std::complex<double> sq = std::sqrt(z * z - 4 * delta);
  return 0.5 * std::max(std::abs(z + sq), std::abs(z - sq));
}

// Spectral radius of the rotating-frame matrix at angle theta (cos c, sin^2 s2).
double rot_rho(const RotCoef& k, double c, double s2) {
  const double dt = k.trP - k.trQ;
  const double disc = c * c * dt * dt - 4 * s2 * (k.trPQ - 2 * k.delta);
  const double h = 0.5 * c * (k.trP + k.trQ);
  if (disc >= 0) {
    const double r = 0.5 * std::sqrt(disc);
    return std::max(quad_rho(h + r, k.delta), quad_rho(h - r, k.delta));
  }
  // Complex conjugate z: the two quadratics have conjugate roots.
  return quad_rho({h, 0.5 * std::sqrt(-disc)}, k.delta);
}

using Mat4 = Eigen::Matrix4d;

Mat4 to_eigen(const std::array<double, 16>& a) {
  Mat4 m;
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) m(i, j) = a[4 * i + j];
  return m;
}

double spectral_radius4(const Mat4& m) {
  Eigen::EigenSolver<Mat4> es(m, false);
  if (es.info() != Eigen::Success) return NAN;
  return es.eigenvalues().cwiseAbs().maxCoeff();
}

// I_2 (x) R(theta) on (s1, m1, s2, m2): pair 1 <- c pair1 - s pair2, pair 2 <- s pair1 + c pair2.
Mat4 frame_turn(double theta) {
  const double c = std::cos(theta), s = std::sin(theta);
  Mat4 R = Mat4::Zero();
  for (int j = 0; j < 2; ++j) {
    R(j, j) = c;
    R(j, 2 + j) = -s;
    R(2 + j, j) = s;
    R(2 + j, 2 + j) = c;
  }
  return R;
}

// The rotating-frame step C_g(theta) = (I_2 (x) R(theta))^T T_g(e1).
Mat4 rotating_step(const Gates& g, double theta) { return frame_turn(-theta) * to_eigen(transition4(g, 1.0, 0.0)); }

// Growth per step of a cycle of gates under one rotation angle.
double cycle_growth(std::span<const Gates> gates, std::span<const int> cycle, double theta) {
  Mat4 prod = Mat4::Identity();
  for (int gi : cycle) prod = rotating_step(gates[gi], theta) * prod;
  const double r = spectral_radius4(prod);
  return std::pow(r, 1.0 / double(cycle.size()));
}

// Maximizes f over [0, pi/2]: a scan, then golden-section refinement around
// the best few local maxima of the scan (f may have kinks).
template <class F>
double maximize_angle(F&& f, int scan, double& best_theta) {
  scan = std::max(scan, 8);
  std::vector<double> v(scan + 1);
  const double h = kHalfPi / scan;
  for (int i = 0; i <= scan; ++i) v[i] = f(i * h);
  std::vector<int> peaks;
  for (int i = 0; i <= scan; ++i) {
    const double l = i > 0 ? v[i - 1] : -1, r = i < scan ? v[i + 1] : -1;
    if (v[i] >= l && v[i] >= r) peaks.push_back(i);
  }
  std::sort(peaks.begin(), peaks.end(), [&](int a, int b) { return v[a] > v[b]; });
  if (peaks.size() > 3) peaks.resize(3);
  double best = -1;
  best_theta = 0;
  for (int i = 0; i <= scan; ++i)
    if (v[i] > best) best = v[i], best_theta = i * h;
  for (int p : peaks) {
    double lo = std::max(0.0, (p - 1) * h), hi = std::min(kHalfPi, (p + 1) * h);
    double x1 = hi - kInvPhi * (hi - lo), x2 = lo + kInvPhi * (hi - lo);
    double f1 = f(x1), f2 = f(x2);
    for (int it = 0; it < 48; ++it) {
      if (f1 >= f2) {
        hi = x2, x2 = x1, f2 = f1;
        x1 = hi - kInvPhi * (hi - lo);
        f1 = f(x1);
      } else {
        lo = x1, x1 = x2, f1 = f2;
        x2 = lo + kInvPhi * (hi - lo);
        f2 = f(x2);
      }
      if (f1 > best) best = f1, best_theta = x1;
      if (f2 > best) best = f2, best_theta = x2;
    }
  }
  return best;
}

// Switching words over letters (matrix, key, gate): depth-first with prefix products.
struct Letter {
  Mat2 A;
  int gate;
  bool par;
};

struct WordSearch {
  std::span<const Letter> letters;
  int max_len;
  double best = -1;
  std::vector<int> best_word, word;

  void run() {
    // Words starting with letter 0..n-1; cyclic rotations share the spectral
    // radius, so a full enumeration up to max_len covers every cycle.
    for (size_t i = 0; i < letters.size(); ++i) {
      word = {int(i)};
      dfs(letters[i].A);
    }
  }
  void dfs(const Mat2& prod) {
    const int L = int(word.size());
    const double r = detail::spectral_radius2(prod);
    if (r > 0) {
      const double g = L == 1 ? r : std::pow(r, 1.0 / L);
      if (g > best) best = g, best_word = word;
    }
    if (L == max_len) return;
    for (size_t i = 0; i < letters.size(); ++i) {
      word.push_back(int(i));
      dfs(letters[i].A * prod);
      word.pop_back();
    }
  }
};

Witness switching_witness(std::span<const Letter> letters, const WordSearch& ws) {
  Witness w;
  w.kind = Witness::Kind::kSwitching;
  w.family = "switching";
  w.growth = ws.best;
  w.period = int(ws.best_word.size());
  for (int i : ws.best_word) {
    // Key coordinate 1 sees A_par when the key is e1, A_perp when it is e2.
    w.keys.push_back(letters[i].par ? std::array<double, 2>{1, 0} : std::array<double, 2>{0, 1});
    w.gate_index.push_back(letters[i].gate);
  }
  return w;
}

Witness rotation_witness(int gate, double theta, double growth) {
  Witness w;
  w.kind = Witness::Kind::kRotation;
  w.family = "rotation";
  w.angle = theta;
  w.growth = growth;
  w.period = theta == 0 ? 1 : (theta == kHalfPi ? 4 : 0);
  w.gate_index = {gate};
  return w;
}

// The best rotation of one gate.
Witness best_rotation(const Gates& g, int gate, int scan) {
  const RotCoef k = rot_coef(g);
  double theta;
  const double best = maximize_angle(
      [&](double th) {
        const double c = std::cos(th), s = std::sin(th);
        return rot_rho(k, c, s * s);
      },
      scan, theta);
  return rotation_witness(gate, theta, best);
}

// Keys turning by free increments: key angles phi_0 = 0, phi_{t+1} = phi_t +
// delta_{t+1}, gates g_0..g_{L-1}, both repeating with period L. In the frame
// turning with the key, one period is prod_t R(-delta_{t+1}) T_{g_t}(e1)
// (indices mod L), whose spectral radius^(1/L) is the growth per step. It
// contains uniform rotation (all delta equal) and periodic keys (sum = 0 mod pi).
double turning_growth(const std::vector<Mat4>& T, std::span<const int> cyc, std::span<const double> delta) {
  Mat4 prod = Mat4::Identity();
  const size_t L = cyc.size();
  for (size_t t = 0; t < L; ++t) prod = frame_turn(-delta[(t + 1) % L]) * T[size_t(cyc[t])] * prod;
  return std::pow(spectral_radius4(prod), 1.0 / double(L));
}

// Coordinate ascent over the increments (each in [0, pi): a turn by pi only
// flips the sign of the step), from a uniform start at `theta0`.
Witness best_turning_cycle(std::span<const Gates> gates, const std::vector<Mat4>& T, std::span<const int> cyc,
                           double theta0) {
  const size_t L = cyc.size();
  std::vector<double> d(L, theta0);
  double cur = turning_growth(T, cyc, d);
  for (int sweep = 0; sweep < 3; ++sweep) {
    const double before = cur;
    for (size_t j = 0; j < L; ++j) {
      auto f = [&](double x) {
        const double keep = d[j];
        d[j] = x;
        const double v = turning_growth(T, cyc, d);
        d[j] = keep;
        return v;
      };
      constexpr int kScan = 24;
      const double h = std::numbers::pi / kScan;
      double bx = d[j], bv = cur;
      for (int i = 0; i < kScan; ++i) {
        const double v = f(i * h);
        if (v > bv) bv = v, bx = i * h;
      }
      double lo = bx - h, hi = bx + h;
      double x1 = hi - kInvPhi * (hi - lo), x2 = lo + kInvPhi * (hi - lo);
      double f1 = f(x1), f2 = f(x2);
      for (int it = 0; it < 30; ++it) {
        if (f1 >= f2) {
          hi = x2, x2 = x1, f2 = f1;
          x1 = hi - kInvPhi * (hi - lo);
          f1 = f(x1);
        } else {
          lo = x1, x1 = x2, f1 = f2;
          x2 = lo + kInvPhi * (hi - lo);
          f2 = f(x2);
        }
        if (f1 > bv) bv = f1, bx = x1;
        if (f2 > bv) bv = f2, bx = x2;
      }
      d[j] = bx;
      cur = bv;
    }
    if (cur <= before * (1 + 1e-12)) break;
  }
  Witness w;
  w.kind = Witness::Kind::kSwitching;
  w.family = "turning-cycle";
  w.period = int(L);
  double phi = 0;
  for (size_t t = 0; t < L; ++t) {
    w.keys.push_back({std::cos(phi), std::sin(phi)});
    w.gate_index.push_back(cyc[t]);
    phi += d[(t + 1) % L];
  }
  w.drift = std::remainder(phi, 2 * std::numbers::pi);
  // The growth as the replay computes it (explicit keys, drift frame).
  auto r = witness_growth(gates, w);
  w.growth = r.is_ok() ? r.value : 0.0;
  return w;
}

}  // namespace

std::array<double, 16> transition4(const Gates& g, double kc, double ks) {
  const double rp = g.rho_p();
  const double be = g.beta * g.eta * rp, e = g.eta * rp, bm = g.beta * g.mu;
  const double k11 = kc * kc, k12 = kc * ks, k22 = ks * ks;
  // (s1, m1, s2, m2): s' = alpha s - beta mu m - beta eta rho_p k k^T s,
  //                   m' = mu m + eta rho_p k k^T s.
  return {g.alpha - be * k11, -bm, -be * k12, 0,     //
          e * k11,            g.mu, e * k12,   0,     //
          -be * k12,          0,    g.alpha - be * k22, -bm,  //
          e * k12,            0,    e * k22,   g.mu};
}

double rotation_growth(const Gates& g, double angle) {
  const double c = std::cos(angle), s = std::sin(angle);
  const detail::ScaledGates sg = detail::scale_gates(std::span(&g, 1));  // tiny gates: no underflow
  return detail::unscale(rot_rho(rot_coef(sg.gates[0]), c, s * s), sg.shift, false);
}

Result<double> witness_growth(std::span<const Gates> gate_set, const Witness& w) {
  // On scaled gates (the growth is homogeneous in them), so that products of
  // tiny gates do not underflow.
  const detail::ScaledGates sg = detail::scale_gates(gate_set);
  const std::span<const Gates> gates = sg.gates;
  const int n = int(gates.size());
  for (int gi : w.gate_index)
    if (gi < 0 || gi >= n) return error(Code::kInvalidArgument, "witness gate index out of range");
  Mat4 prod = Mat4::Identity();
  int L = 0;
  if (w.kind == Witness::Kind::kRotation) {
    std::vector<int> cyc = w.gate_index;
    if (cyc.empty()) cyc = {0};
    if (n == 0) return error(Code::kInvalidArgument, "empty gate set");
    for (int gi : cyc) prod = rotating_step(gates[gi], w.angle) * prod;
    L = int(cyc.size());
  } else if (w.kind == Witness::Kind::kSwitching) {
    if (w.keys.empty() || w.keys.size() != w.gate_index.size())
      return error(Code::kInvalidArgument, "switching witness needs one key and one gate index per step");
    for (size_t t = 0; t < w.keys.size(); ++t) {
      const double nk = std::hypot(w.keys[t][0], w.keys[t][1]);
      if (!(nk > 0) || !std::isfinite(nk)) return error(Code::kInvalidArgument, "witness key is zero or not finite");
      prod = to_eigen(transition4(gates[w.gate_index[t]], w.keys[t][0] / nk, w.keys[t][1] / nk)) * prod;
    }
    L = int(w.keys.size());
    // With drift the n-th period is the first turned by n*drift: in the frame
    // turned with it, one period is D(drift)^T P (D = I_2 (x) R on (s, m) pairs).
    if (w.drift != 0) prod = frame_turn(-w.drift) * prod;
  } else {
    return error(Code::kInvalidArgument, "no witness");
  }
  const double r = spectral_radius4(prod);
  if (!std::isfinite(r)) return error(Code::kNumericalIssue, "witness product has no finite spectral radius");
  return detail::unscale(std::pow(r, 1.0 / L), sg.shift, false);
}

namespace detail {

Witness search_witness(std::span<const Gates> gates, const CertifyOptions& opt, std::span<const int> hint,
                       double ceiling, std::span<const std::vector<int>> cycles_first) {
  // The bounds meet: no family can do better (up to rounding).
  auto met = [&](const Witness& w) { return w.growth >= ceiling * (1 - 1e-13); };
  const int n = int(gates.size());
  // 1. The best rotation of every gate.
  std::vector<Witness> per_gate(n);
  // Large sets (CSV dumps) get a coarser scan per gate; the cycles below refine.
  const int scan = n <= 64 ? opt.rotation_scan : std::min(opt.rotation_scan, 64);
  for (int i = 0; i < n; ++i) per_gate[i] = best_rotation(gates[i], i, scan);
  int ib = 0;
  for (int i = 1; i < n; ++i)
    if (per_gate[i].growth > per_gate[ib].growth) ib = i;
  Witness best = per_gate[ib];
  if (met(best)) return best;

  // 2. Switching words over {A_par, A_perp} of a few gates: the strongest by
  //    rotation growth plus the hinted ones (active at W).
  std::vector<int> pick;
  {
    std::vector<int> order(n);
    for (int i = 0; i < n; ++i) order[i] = i;
    const int top = std::min(n, 3);
    std::partial_sort(order.begin(), order.begin() + top, order.end(),
                      [&](int a, int b) { return per_gate[a].growth > per_gate[b].growth; });
    pick.assign(order.begin(), order.begin() + top);
    for (int h : hint)
      if (h >= 0 && h < n && std::find(pick.begin(), pick.end(), h) == pick.end() && pick.size() < 5)
        pick.push_back(h);
  }
  std::vector<Letter> letters;
  for (int gi : pick) {
    letters.push_back({a_par(gates[gi]), gi, true});
    letters.push_back({a_perp(gates[gi]), gi, false});
  }
  // Word length so that the enumeration stays near 2^max_word_length products.
  int len = opt.max_word_length;
  if (letters.size() > 2) {
    len = 1;
    double count = double(letters.size());
    while (len < opt.max_word_length && count * double(letters.size()) <= std::pow(2.0, opt.max_word_length + 2))
      count *= double(letters.size()), ++len;
  }
  if (len >= 1) {
    WordSearch ws{letters, len, -1, {}, {}};
    ws.run();
    if (ws.best > best.growth) best = switching_witness(letters, ws);
    if (met(best)) return best;
  }

  // 3. Gate sets: cycles of two or three gates under one rotation angle.
  if (pick.size() >= 2) {
    std::vector<std::vector<int>> cycles;
    for (size_t a = 0; a < pick.size(); ++a)
      for (size_t b = 0; b < pick.size(); ++b)
        if (a != b) {
          if (a < b) cycles.push_back({pick[a], pick[b]});
          for (size_t c = 0; c < pick.size(); ++c)
            if (c != a && c != b && a < b && a < c) cycles.push_back({pick[a], pick[b], pick[c]});
        }
    for (const auto& cyc : cycles) {
      double theta;
      const double g = maximize_angle([&](double th) { return cycle_growth(gates, cyc, th); }, 32, theta);
      if (g > best.growth) {
        best = rotation_witness(cyc[0], theta, g);
        best.gate_index = cyc;
        best.family = "rotation-cycle";
        best.period = 0;
        if (met(best)) return best;
      }
    }
  }
  // 4. Gate sets: keys turning by free increments over cycles of 2 gates of
  //    the pick (a gate may repeat) and of 3 of the strongest.
  if (n > 1) {
    std::vector<Mat4> T(size_t(n), Mat4::Zero());
    for (int gi : pick) T[size_t(gi)] = to_eigen(transition4(gates[gi], 1.0, 0.0));
    // The given cycles first (constant ones are the rotations of step 1).
    for (const auto& cyc : cycles_first) {
      if (cyc.empty() || std::all_of(cyc.begin(), cyc.end(), [&](int g) { return g == cyc[0]; })) continue;
      if (std::any_of(cyc.begin(), cyc.end(), [&](int g) { return g < 0 || g >= n; })) continue;
      for (int gi : cyc) T[size_t(gi)] = to_eigen(transition4(gates[gi], 1.0, 0.0));
      const Witness w = best_turning_cycle(gates, T, cyc, per_gate[size_t(cyc[0])].angle);
      if (w.growth > best.growth) best = w;
      if (met(best)) return best;
    }
    std::vector<std::vector<int>> cycles;
    for (size_t a = 0; a < pick.size(); ++a)
      for (size_t b = a; b < pick.size(); ++b) cycles.push_back({pick[a], pick[b]});
    // Cycles of 3 and 4 over the 3 strongest (up to 6 over 2), one per
    // necklace (a cycle's rotations share its growth), constant ones left to
    // the rotations.
    const int top = int(std::min<size_t>(pick.size(), 3));
    for (int clen = 3; clen <= (top == 2 ? 6 : 4); ++clen) {
      std::vector<int> w(size_t(clen), 0);
      for (;;) {
        bool canonical = true, constant = true;
        for (int r = 1; r < clen && canonical; ++r) {
          std::vector<int> rot(w.begin() + r, w.end());
          rot.insert(rot.end(), w.begin(), w.begin() + r);
          if (rot < w) canonical = false;
        }
        for (int x : w) constant = constant && x == w[0];
        if (canonical && !constant) {
          std::vector<int> cyc;
          for (int x : w) cyc.push_back(pick[size_t(x)]);
          cycles.push_back(cyc);
        }
        int k = clen - 1;
        while (k >= 0 && w[size_t(k)] == top - 1) w[size_t(k--)] = 0;
        if (k < 0) break;
        ++w[size_t(k)];
      }
    }
    for (const auto& cyc : cycles) {
      const Witness w = best_turning_cycle(gates, T, cyc, per_gate[size_t(cyc[0])].angle);
      if (w.growth > best.growth) best = w;
      if (met(best)) return best;
    }
  }
  return best;
}

}  // namespace detail

}  // namespace mdnstab
