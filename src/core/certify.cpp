// The certificate of DESIGN.md section 4 (tier 3) for a set of gates: the
// quadratic upper bound gamma with its W, the witness lower bound, the
// verdict; plus gate boxes. Tested in tests/test_certify.cpp.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <string>

#include <fmt/format.h>
#include <omp.h>

#include "certify_impl.hpp"
#include "mdnstab/sweep.hpp"

namespace mdnstab {

const char* to_string(Verdict v) {
  switch (v) {
    case Verdict::kCertified: return "certified";
    case Verdict::kRefuted: return "refuted";
    default: return "undecided";
  }
}

const char* to_string(Witness::Kind k) {
  switch (k) {
    case Witness::Kind::kRotation: return "rotation";
    case Witness::Kind::kSwitching: return "switching";
    default: return "none";
  }
}

Verdict verdict_of(double upper_bound, double lower_bound) {
  if (upper_bound < 1.0 - kVerdictRoundoff) return Verdict::kCertified;
  if (lower_bound > 1.0 + kVerdictRoundoff) return Verdict::kRefuted;
  return Verdict::kUndecided;
}

namespace {

Status check_set(std::span<const Gates> gate_set) {
  if (gate_set.empty()) return error(Code::kInvalidArgument, "the gate set is empty: nothing to certify");
  for (size_t i = 0; i < gate_set.size(); ++i) {
    const Gates& g = gate_set[i];
    for (auto [name, v] : {std::pair{"alpha", g.alpha}, {"beta", g.beta}, {"mu", g.mu}, {"eta", g.eta}})
      if (Status s = check_gate(name, v); !s.is_ok()) {
        if (gate_set.size() > 1) s.message = fmt::format("gate row {}: {}", i, s.message);
        return s;
      }
  }
  return Status::ok();
}

}  // namespace

namespace detail {

ScaledGates scale_gates(std::span<const Gates> gate_set) {
  // The largest gate the entries are proportional to: |entries| <= 2 * m.
  double m = 0;
  for (const Gates& g : gate_set) {
    m = std::max({m, g.alpha, g.mu});
    if (g.p_scale == PScale::kOne) m = std::max(m, g.eta);
  }
  ScaledGates s;
  s.gates.assign(gate_set.begin(), gate_set.end());
  if (!(m > 0)) return s;  // every matrix is zero: nothing to scale
  s.shift = -std::ilogb(m);  // m * 2^shift in [1, 2)
  if (s.shift <= 0) return s;  // m >= 1 already (shift 0) or eta up to 2 (p-scale one): keep the gates bit for bit
  for (Gates& g : s.gates) {
    // ldexp is exact here: the results are normal doubles, at most 2.
    g.alpha = std::ldexp(g.alpha, s.shift);
    g.mu = std::ldexp(g.mu, s.shift);
    if (g.p_scale == PScale::kOne) g.eta = std::ldexp(g.eta, s.shift);
    g.log_alpha += s.shift * std::numbers::ln2;  // kept consistent, not used by the engine
    g.log_mu += s.shift * std::numbers::ln2;
  }
  return s;
}

double unscale(double v, int shift, bool round_up) {
  if (shift == 0 || !std::isfinite(v) || v == 0) return v;
  const double r = std::ldexp(v, -shift);
  if (std::ldexp(r, shift) == v) return r;  // exact
  return std::nextafter(r, round_up ? std::numeric_limits<double>::infinity() : 0.0);
}

}  // namespace detail

Result<double> quadratic_bound(std::span<const Gates> gate_set, const std::array<double, 3>& W) {
  if (Status s = check_set(gate_set); !s.is_ok()) return s;
  const double w11 = W[0], w12 = W[1], w22 = W[2];
  if (!(std::isfinite(w11) && std::isfinite(w12) && std::isfinite(w22)) || !(w11 > 0) ||
      !(w11 * w22 - w12 * w12 > 0))
    return error(Code::kInvalidArgument,
                 fmt::format("W = [{}, {}, {}] is not positive definite", w11, w12, w22));
  // W = L^T L with L = sqrt(w11) [[1, x], [0, y]].
  const double x = w12 / w11, y = std::sqrt(w22 / w11 - x * x);
  double gamma = 0;
  const detail::ScaledGates sg = detail::scale_gates(gate_set);
  for (const Gates& g : sg.gates)
    for (const Mat2& A : {a_par(g), a_perp(g)}) {
      const double b11 = A.a + x * A.c;
      const Mat2 B{b11, (A.b + x * A.d - x * b11) / y, y * A.c, A.d - x * A.c};
      gamma = std::max(gamma, detail::norm2_accurate(B));
    }
  if (!std::isfinite(gamma)) return error(Code::kNumericalIssue, "the norm at W is not finite");
  return detail::unscale(gamma, sg.shift, true);
}

int gate_memory_for(long n, int requested) {
  if (n <= 1 || requested == 0) return 0;
  if (requested > 0) return requested;
  int m = 0;
  while (m < kAutoGateMemory && detail::memory_nodes(n, m + 1) <= kAutoMemoryWords &&
         detail::memory_nodes(n, m + 2) <= kAutoMemoryEdges)
    ++m;
  return m > 0 ? m : 1;  // larger sets: memory 1 over clusters of rows
}

Result<Certificate> certify(std::span<const Gates> gate_set, const CertifyOptions& opt) {
  if (Status s = check_set(gate_set); !s.is_ok()) return s;
  if (!(opt.rel_tol > 0 && opt.rel_tol < 1))
    return error(Code::kInvalidArgument, fmt::format("rel_tol = {} must be in (0, 1)", opt.rel_tol));
  if (opt.gate_memory < -1)
    return error(Code::kInvalidArgument, fmt::format("gate memory {} must be >= 0 (or -1: automatic)", opt.gate_memory));
  if (const int m = gate_memory_for(long(gate_set.size()), opt.gate_memory); m > 0 && opt.gate_memory > 0) {
    // n^m words, computed without overflow (n^(m+1) edges: at most 64^2).
    const long n = long(gate_set.size());
    long words = 1;
    for (int i = 0; i < m && words <= kMaxMemoryWords; ++i) words *= n;
    if (words > kMaxMemoryWords)
      return error(Code::kInvalidArgument, fmt::format("gate memory {} over {} gate rows needs {}^{} W's, more than {}",
                                                       m, n, n, m, kMaxMemoryWords));

  }
  Certificate c;
  c.gates = int(gate_set.size());
  c.single_gate = gate_set.size() == 1;
  // Everything below runs on gates scaled by 2^shift (scale_gates); the
  // bounds are scaled back at the end, rounded outward.
  const detail::ScaledGates sg = detail::scale_gates(gate_set);
  const int shift = sg.shift;
  double frozen = 0;
  for (const Gates& g : sg.gates)
    frozen = std::max({frozen, detail::spectral_radius2(a_par(g)), detail::spectral_radius2(a_perp(g))});

  std::vector<Mat2> mats;
  mats.reserve(2 * gate_set.size());
  for (const Gates& g : sg.gates) {
    mats.push_back(a_par(g));
    mats.push_back(a_perp(g));
  }
  detail::UpperBound ub = c.single_gate ? detail::upper_bound_pair(mats[0], mats[1]) : detail::upper_bound_set(mats);
  if (c.single_gate && ub.gamma > std::max(ub.gamma_dual, frozen) * (1 + opt.rel_tol)) {
    // The dual does not prove the tolerance: try the general algorithm too and
    // keep the better bound (and the better dual; both are valid).
    const detail::UpperBound alt = detail::upper_bound_set(mats);
    const double dual = std::max(ub.gamma_dual, alt.gamma_dual);
    if (alt.gamma < ub.gamma) ub = alt;
    ub.gamma_dual = dual;
  }
  if (!std::isfinite(ub.gamma)) return error(Code::kNumericalIssue, "the quadratic bound is not finite");
  c.frozen_spectral_radius = detail::unscale(frozen, shift, false);
  c.common_upper_bound = detail::unscale(ub.gamma, shift, true);
  c.W = ub.W;
  c.W_factor = ub.factor;
  c.active_gate = ub.active >= 0 ? ub.active / 2 : -1;
  // Gate sets: W's that depend on the last gate rows can only do better; the
  // cycles of their extremal edges point the witness search at its sequences.
  double best = ub.gamma;
  std::vector<std::vector<int>> cycles;
  if (const int m = gate_memory_for(c.gates, opt.gate_memory); m >= 1 && !c.single_gate) {
    // Words of the rows themselves, or (automatic, above kAutoMemoryWords rows)
    // of kAutoMemoryWords clusters of rows.
    const long n = c.gates;
    const detail::MemoryGraph G = opt.gate_memory > 0 || n <= kAutoMemoryWords
                                      ? detail::de_bruijn(n, m)
                                      : detail::clustered(sg.gates, int(kAutoMemoryWords), m);
    const detail::MemoryBound mb = detail::upper_bound_memory(sg.gates, G, ub.W, frozen, ub.gamma, 0.1 * opt.rel_tol);
    int act = -1;
    const double g = detail::memory_bound_at(sg.gates, G, mb.W, &act);  // from the W's as reported
    if (g < best) {
      best = g;
      c.gate_memory = m;
      c.gate_label = G.label;
      c.W_by_word = mb.W;
      c.active_gate = act;
      if (opt.lower_bound) cycles = detail::active_cycles(sg.gates, G, mb.W, g, 8, 12);
    }
  }
  c.upper_bound = detail::unscale(best, shift, true);
  // Every lower bound on the JSR is one on the optimal common gamma too.
  double dual = std::max(ub.gamma_dual, frozen);

  double lower;
  if (opt.lower_bound) {
    const int hint[1] = {c.active_gate};
    c.witness = detail::search_witness(sg.gates, opt, hint, best, cycles);
    if (!std::isfinite(c.witness.growth)) return error(Code::kNumericalIssue, "the witness growth is not finite");
    lower = c.witness.growth;
    c.witness.growth = detail::unscale(lower, shift, false);
  } else {
    lower = frozen;  // the frozen keys are a witness too
  }
  // lower <= gamma in exact arithmetic; see Certificate::lower_bound.
  if (lower > best && lower <= best * (1 + kWitnessRoundoff)) lower = best;
  dual = std::max(dual, lower);
  c.lower_bound = detail::unscale(lower, shift, false);
  // The optimal common gamma is at least the JSR >= lower bound; rounding can
  // put the computed bounds in the wrong order by an ulp or so, never more.
  c.gamma_dual = std::min(detail::unscale(dual, shift, false), c.common_upper_bound);
  c.verdict = verdict_of(c.upper_bound, c.lower_bound);
  return c;
}

Result<std::vector<Certificate>> certify_each(std::span<const Gates> gates, const CertifyOptions& opt,
                                              int threads) {
  if (gates.empty()) return error(Code::kInvalidArgument, "the gate set is empty: nothing to certify");
  if (threads < 0) return error(Code::kInvalidArgument, fmt::format("threads = {} must be >= 0", threads));
  std::vector<Certificate> out(gates.size());
  std::vector<Status> bad(gates.size());
  const long n = long(gates.size());
  const int nt = threads > 0 ? threads : omp_get_num_procs();
#pragma omp parallel for schedule(dynamic, 256) num_threads(nt)
  for (long i = 0; i < n; ++i) {
    auto r = certify(gates.subspan(size_t(i), 1), opt);
    if (r.is_ok())
      out[size_t(i)] = std::move(r.value);
    else
      bad[size_t(i)] = r.status;
  }
  for (size_t i = 0; i < bad.size(); ++i)
    if (!bad[i].is_ok()) return error(bad[i].code, fmt::format("gate row {}: {}", i, bad[i].message));
  return out;
}

Result<GateRange> parse_gate_range(std::string_view spec) {
  const auto eq = spec.find('=');
  auto bad = [&](const std::string& why) {
    return error(Code::kInvalidArgument, fmt::format("bad box range '{}': {}", spec, why));
  };
  if (eq == std::string_view::npos) return bad("expected NAME=LO:HI or NAME=VALUE");
  GateRange r;
  r.name = std::string(spec.substr(0, eq));
  if (std::find(std::begin(kGateNames), std::end(kGateNames), r.name) == std::end(kGateNames))
    return bad(fmt::format("unknown gate '{}' (expected alpha, beta, mu, eta, log_alpha or log_mu)", r.name));
  const std::string rest(spec.substr(eq + 1));
  auto parse = [](const std::string& s, double& v) {
    try {
      size_t pos = 0;
      v = std::stod(s, &pos);
      return pos == s.size();
    } catch (...) {
      return false;
    }
  };
  const auto colon = rest.find(':');
  if (colon == std::string::npos) {
    if (!parse(rest, r.lo)) return bad(fmt::format("'{}' is not a number", rest));
    r.hi = r.lo;
  } else {
    const std::string a = rest.substr(0, colon), b = rest.substr(colon + 1);
    if (!parse(a, r.lo)) return bad(fmt::format("'{}' is not a number", a));
    if (!parse(b, r.hi)) return bad(fmt::format("'{}' is not a number", b));
  }
  for (double v : {r.lo, r.hi})
    if (Status s = check_gate(r.name, v); !s.is_ok()) return bad(s.message);
  if (r.lo > r.hi) return bad(fmt::format("{} = {} > {}", r.name, r.lo, r.hi));
  return r;
}

Result<std::vector<Gates>> box_vertices(std::span<const GateRange> ranges, PScale p) {
  const GateRange* by[6] = {};
  for (const GateRange& r : ranges) {
    const auto it = std::find(std::begin(kGateNames), std::end(kGateNames), r.name);
    if (it == std::end(kGateNames)) return error(Code::kInvalidArgument, fmt::format("unknown gate '{}'", r.name));
    const int i = int(it - std::begin(kGateNames));
    if (by[i]) return error(Code::kInvalidArgument, fmt::format("gate '{}' is given twice", r.name));
    by[i] = &r;
  }
  // alpha / log_alpha (0 / 4) and mu / log_mu (2 / 5) exclude each other.
  for (auto [lin, lg] : {std::pair{0, 4}, {2, 5}}) {
    if (by[lin] && by[lg])
      return error(Code::kInvalidArgument,
                   fmt::format("give {} or {}, not both", kGateNames[lin], kGateNames[lg]));
    if (!by[lin] && !by[lg])
      return error(Code::kInvalidArgument, fmt::format("the box needs {} (or {})", kGateNames[lin], kGateNames[lg]));
  }
  for (int i : {1, 3})
    if (!by[i]) return error(Code::kInvalidArgument, fmt::format("the box needs {}", kGateNames[i]));
  // Log-space ranges map to the interval of the linear gate (monotone).
  auto lin_range = [&](int lin, int lg) -> std::pair<double, double> {
    if (by[lin]) return {by[lin]->lo, by[lin]->hi};
    return {std::exp(by[lg]->lo), std::exp(by[lg]->hi)};
  };
  const std::pair<double, double> rb{by[1]->lo, by[1]->hi}, re{by[3]->lo, by[3]->hi};
  auto ends = [](std::pair<double, double> r) {
    return r.first == r.second ? std::vector<double>{r.first} : std::vector<double>{r.first, r.second};
  };
  auto logs = [&](int lin, int lg) {
    // Keep log values exact when they were given.
    std::vector<double> v;
    if (by[lg]) {
      v.push_back(by[lg]->lo);
      if (by[lg]->hi != by[lg]->lo) v.push_back(by[lg]->hi);
    } else {
      for (double x : ends(lin_range(lin, lg))) v.push_back(std::log(x));
    }
    return v;
  };
  std::vector<Gates> out;
  const auto la = logs(0, 4), lm = logs(2, 5);
  for (double a : la)
    for (double b : ends(rb))
      for (double m : lm)
        for (double e : ends(re)) {
          auto g = Gates::from_log(a, b, m, e, p);
          if (!g.is_ok()) return g.status;
          out.push_back(g.value);
        }
  return out;
}

}  // namespace mdnstab
