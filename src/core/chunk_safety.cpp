// Chunk safety: the rule (chunk_risk, chunk_safe, largest_safe_chunk), the
// measurement (measure_chunk_error) and the map over a gate grid (run_chunk_map).
// See chunk_safety.hpp for the derivation of the rule.
#include "mdnstab/chunk_safety.hpp"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iterator>
#include <limits>
#include <random>
#include <stdexcept>

#include <fmt/format.h>

#include "mdnstab/atomic_file.hpp"
#include "mdnstab/lyapunov.hpp"

namespace mdnstab {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
// Elementwise stages whose rounding reaches the output (normalization, gate
// products, pseudo-values, inter and intra output, their sum): a count, not a fit.
constexpr double kRoundedStages = 8;
// Rounded matrix products a token's key update passes through on its way into S and M
// (the pseudo-values X V and Y S or Z M, and the state update K^T (.)): a count.
constexpr double kStateProducts = 4;

double log_add_exp(double a, double b) {
  if (a == -kInf) return b;
  if (b == -kInf) return a;
  const double m = std::max(a, b);
  return m + std::log1p(std::exp(-std::fabs(a - b)));
}

double rms_rel(const std::vector<double>& x, const std::vector<double>& ref, bool* finite) {
  double d = 0, n = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i])) *finite = false;
    d += (x[i] - ref[i]) * (x[i] - ref[i]);
    n += ref[i] * ref[i];
  }
  return n > 0 ? std::sqrt(d / n) : std::sqrt(d);
}

}  // namespace

ChunkRisk chunk_risk(std::span<const double> log_alpha, std::span<const double> log_mu, std::span<const double> beta,
                     double key_memory, Precision p, const ChunkRuleOptions& o) {
  const PrecisionTraits tr = traits(p);
  ChunkRisk r;
  const size_t L = log_alpha.size();
  double lA = 0, lM = 0, sd = 0, lC = -kInf;
  double sum_a2 = 0, sum_m2 = 0, sum_d2 = 0, max_lc = 0, max_decay = -kInf;
  double lse = -kInf;  // log sum_t exp(2 kappa_t) (1 + |log C_t|)^2
  double beta_max = 0;
  r.max_exponent = -kInf;
  for (size_t t = 0; t < L; ++t) {
    if (!std::isfinite(log_alpha[t]) || !std::isfinite(log_mu[t])) {
      // alpha = 0 or mu = 0: the algorithm takes log(0) and forms inf - inf.
      r.overflow = true;
      r.max_exponent = kInf;
      r.log_cancellation = kInf;
      r.predicted_error = 1;
      return r;
    }
    lA += log_alpha[t];
    lM += log_mu[t];
    sd += log_mu[t] - log_alpha[t];
    max_decay = std::max({max_decay, log_alpha[t], log_mu[t]});
    sum_a2 += lA * lA;
    sum_m2 += lM * lM;
    sum_d2 += sd * sd;
    beta_max = std::max(beta_max, beta[t]);
    const double lc = std::log(beta[t] + o.beta_eps) + sd;
    const double lC_prev = lC;
    lC = log_add_exp(lC, lc);
    if (lC == -kInf) continue;  // every beta so far is 0: nothing is formed yet
    max_lc = std::max(max_lc, std::fabs(lC));
    // With C_{t-1} = 0 the difference is 1 - exp(-inf) = 1, exact.
    if (lc > -kInf && lC_prev > -kInf) {
      const double kappa = lC - lc;
      r.log_cancellation = std::max(r.log_cancellation, kappa);
      lse = log_add_exp(lse, 2 * (kappa + std::log1p(std::fabs(lC))));
    }
    // The diagonal j = t has the largest exponent of row t (log_mu <= 0).
    r.max_exponent = std::max(r.max_exponent, lA + lC - lM);
  }
  r.log_magnitude = std::sqrt(sum_a2) + std::sqrt(sum_m2) + std::sqrt(sum_d2) + max_lc;
  r.overflow = r.max_exponent > tr.log_max;
  // The memory of the state in chunks: rounding errors of S and M add up over
  // the slower of the two decays (capped at the sequence), or over K where the state
  // remembers longer under random keys (below).
  const double horizon = std::min(double(o.steps), max_decay < 0 ? -1.0 / std::expm1(max_decay) : kInf);
  r.key_memory = std::isnan(key_memory) ? double(o.steps) : key_memory;
  const double cancel = L && lse > -kInf ? std::exp(0.5 * (lse - std::log(double(L)))) : 0.0;
  // Chunks the state remembers under random keys: each one's cancellation error adds up.
  const double Lc = std::max<double>(double(L), 1.0), remembered = std::max(1.0, r.key_memory / Lc);
  const double err = tr.unit_roundoff * (cancel * std::sqrt(remembered) + r.log_magnitude) +
                     tr.unit_roundoff * std::sqrt(kRoundedStages + std::max(horizon, r.key_memory) / Lc) +
                     tr.product_unit_roundoff * std::sqrt(1 + kStateProducts * beta_max * r.key_memory);
  r.predicted_error = r.overflow ? 1.0 : std::min(1.0, err);
  return r;
}

double key_growth(const Gates& g, const ChunkRuleOptions& o) { return mean_square_growth(g, o.dk); }

double key_memory(double r, long steps) {
  const double T = double(std::max(steps, 1L));
  if (std::isnan(r)) return T;
  // q^(a-1) over a = 1..T, q = r^2; for q > 1 the same sum taken from the other end
  // (weights p^(b-1), p = 1/q, over b = T + 1 - a), so that no power overflows.
  const double q = r * r;
  auto mean_age = [T](double lq) {  // lq = log q < 0: 1/(1-q) - T q^T / (1 - q^T)
    return -1 / std::expm1(lq) - T / std::expm1(-T * lq);
  };
  const double lq = std::log(q);
  if (!(std::fabs(lq) > 1e-12)) return (T + 1) / 2;  // q ~ 1 (or r = 0: lq = -inf, below)
  if (lq == -kInf) return 1;
  return lq < 0 ? mean_age(lq) : T + 1 - mean_age(-lq);
}

std::vector<double> key_memory_along(std::span<const double> r) {
  std::vector<double> k(r.size());
  double w = 0, age = 0;  // the weight of what the state holds, and its mean age
  for (size_t t = 0; t < r.size(); ++t) {
    if (std::isnan(r[t])) {  // unknown: as growing
      w = kInf;
    } else if (r[t] == 0) {  // the token wipes the state (and inf * 0 is no weight)
      w = 0;
    } else {
      w = (w * r[t]) * r[t];  // (0 stays 0 where r^2 overflows)
    }
    const double old = w == kInf ? 1.0 : w / (w + 1);  // share of the earlier content
    age = old * (age + 1) + (1 - old);
    w = w == kInf ? kInf : w + 1;
    k[t] = age;
  }
  return k;
}

ChunkRisk chunk_risk(const Gates& g, int C, Precision p, const ChunkRuleOptions& o,
                     std::optional<double> key_memory) {
  const size_t n = size_t(std::max(C, 1));
  const std::vector<double> la(n, g.log_alpha), lm(n, g.log_mu), b(n, g.beta);
  return chunk_risk(la, lm, b, key_memory ? *key_memory : mdnstab::key_memory(key_growth(g, o), o.steps), p, o);
}

bool chunk_safe(const ChunkRisk& r, double tol) { return !r.overflow && r.predicted_error <= tol; }

bool chunk_safe(const Gates& g, int C, Precision p, const ChunkRuleOptions& o) {
  return chunk_safe(chunk_risk(g, C, p, o), o.tol);
}

namespace {

// The largest C in [1, hi) at which safe(g, C) holds, given that it fails at hi (0: it
// fails at C = 1 too), by bisection: safety falls with C.
template <class Safe>
int bisect_below(const Gates& g, int hi, Safe&& safe) {
  int lo = 0;  // safe at lo (0: vacuous), unsafe at hi
  while (hi - lo > 1) {
    const int mid = lo + (hi - lo) / 2;
    if (safe(g, mid))
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

}  // namespace

int largest_safe_chunk(std::span<const Gates> gates, Precision p, const ChunkRuleOptions& o, int c_max) {
  auto safe = [&](const Gates& g, int C) { return chunk_safe(g, C, p, o); };
  int hi = c_max;
  for (size_t i = 0; i < gates.size() && hi > 0; ++i)
    if (!safe(gates[i], hi)) hi = bisect_below(gates[i], hi, safe);
  return hi;
}

CheckedSafeChunk largest_safe_chunk_checked(std::span<const Gates> gates, Precision p, const ChunkRuleOptions& o,
                                            const ChunkInputs& in, int c_max, int threads) {
  // Past the emulated sequence a chunk is the whole sequence: the emulation says no more.
  c_max = std::min(c_max, std::max(in.steps, 1));
  CheckedSafeChunk r;
  const int nt = threads > 0 ? threads : omp_get_num_procs();
  auto judge = [&](const ChunkError& e) { return e.reference_finite && !e.broken(o.tol); };
  auto measured_safe = [&](const Gates& g, int C) { return judge(measure_chunk_error(g, in, C, p, o.beta_eps)); };
  auto serial_safe = [&](const Gates& g, int C) {
    if (chunk_safe(g, C, p, o)) return true;
    ++r.emulations;
    return measured_safe(g, C);
  };
  std::vector<std::pair<size_t, BrokenCause>> left;  // left out where visited, and why
  // A scan from `cap` down: each gate set in order at the running bound hi, safe by the
  // rule or else by emulation; one that fails there is left out if the emulation breaks
  // it at C = 1, else bisected below hi. The emulations at hi, which are most of them,
  // run ahead in parallel batches; a batch's verdicts stand until hi falls, and then the
  // scan resumes after the gate set that lowered it: the counts are those of a serial
  // scan on any number of threads.
  auto scan = [&](int cap) {
    const size_t batch = size_t(4 * nt);
    std::vector<size_t> cand;
    std::vector<char> pass;
    std::vector<BrokenCause> why;
    int hi = cap;
    size_t i = 0;
    left.clear();
    while (i < gates.size() && hi > 0) {
      cand.clear();
      for (; i < gates.size() && cand.size() < batch; ++i)
        if (!chunk_safe(gates[i], hi, p, o)) cand.push_back(i);
      // pass: 1 safe at hi; else 2 when safe at C = 1 (the same emulation when hi = 1),
      // else 0 and why it broke there.
      pass.assign(cand.size(), 0);
      why.assign(cand.size(), BrokenCause::kErred);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
      for (long k = 0; k < long(cand.size()); ++k) {
        const Gates& g = gates[cand[size_t(k)]];
        ChunkError e = measure_chunk_error(g, in, hi, p, o.beta_eps);
        if (judge(e)) {
          pass[size_t(k)] = 1;
          continue;
        }
        if (hi > 1) e = measure_chunk_error(g, in, 1, p, o.beta_eps);
        pass[size_t(k)] = judge(e) ? 2 : 0;
        if (!pass[size_t(k)]) why[size_t(k)] = broken_cause(e, p);
      }
      for (size_t k = 0; k < cand.size(); ++k) {
        ++r.emulations;
        if (pass[k] & 1) continue;
        if (hi > 1) ++r.emulations;  // at hi = 1 the emulation above was the one at C = 1
        if (!(pass[k] & 2)) {  // broken even at C = 1, which no chunk size mends: hi stands
          left.emplace_back(cand[k], why[k]);
          continue;
        }
        hi = bisect_below(gates[cand[k]], hi, serial_safe);
        i = cand[k] + 1;  // the batch's later verdicts were at the old hi
        break;
      }
    }
    return hi;
  };
  // Emulations cost C^2 per chunk, and gate sets whose rule is overcautious would be
  // bisected from c_max down. Safety falls with C, so a scan capped at kProbe that ends
  // below it has the figure; only where it does not is the whole range scanned.
  constexpr int kProbe = 64;
  r.largest = scan(std::min(kProbe, c_max));
  if (r.largest == kProbe && c_max > kProbe) r.largest = scan(c_max);
  // Left out: broken by emulation at C = 1 where the rule calls them unsafe at the figure
  // (at the visit's larger bound the rule may have called unsafe what it calls safe here).
  for (const auto& [i, cause] : left)
    if (!chunk_safe(gates[i], std::max(r.largest, 1), p, o)) {
      ++r.unrepresentable;
      r.overflow += cause == BrokenCause::kOverflow;
      r.underflow += cause == BrokenCause::kUnderflow;
    }
  r.judged = long(gates.size()) - r.unrepresentable;
  return r;
}

ChunkInputs random_chunk_inputs(int dk, int dv, int steps, uint64_t seed) {
  ChunkInputs in;
  in.dk = dk, in.dv = dv, in.steps = steps;
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nd;
  in.q.resize(size_t(steps) * dk);
  in.k.resize(size_t(steps) * dk);
  in.v.resize(size_t(steps) * dv);
  for (auto* x : {&in.q, &in.k, &in.v})
    for (double& e : *x) e = nd(rng);
  return in;
}

BrokenCause broken_cause(const ChunkError& e, Precision p) {
  if (!(e.finite && e.reference_finite)) return BrokenCause::kOverflow;
  return e.reference_max_abs < traits(p).min_normal ? BrokenCause::kUnderflow : BrokenCause::kErred;
}

ChunkError measure_chunk_error(const Gates& g, const ChunkInputs& in, int C, Precision p, double beta_eps) {
  const size_t T = size_t(in.steps);
  return measure_chunk_error(std::vector<double>(T, g.log_alpha), std::vector<double>(T, g.log_mu),
                             std::vector<double>(T, g.beta), std::vector<double>(T, g.eta), g.p_scale, in, C, p,
                             beta_eps);
}

ChunkError measure_chunk_error(std::vector<double> la, std::vector<double> lm, std::vector<double> beta,
                               std::vector<double> eta, PScale p_scale, const ChunkInputs& in, int C, Precision p,
                               double beta_eps) {
  const size_t state = size_t(in.dk) * in.dv, T = size_t(std::max(in.steps, 0));
  // Inputs or gates of another length are the caller's bug: fail loudly, never measure
  // zeros against zeros or read past the ends.
  if (in.q.size() != T * size_t(in.dk) || in.k.size() != T * size_t(in.dk) || in.v.size() != T * size_t(in.dv) ||
      la.size() != T || lm.size() != T || beta.size() != T || eta.size() != T)
    throw std::logic_error(fmt::format("measure_chunk_error: inputs for {} tokens ({} q values, DK = {}) and {} gates",
                                       in.steps, in.q.size(), in.dk, la.size()));
  std::vector<double> q = in.q, k = in.k, v = in.v;
  for (auto* x : {&q, &k, &v, &la, &lm, &beta, &eta}) round_to(p, *x);
  std::vector<double> o(T * in.dv), o_ref(T * in.dv), s(state), m(state), s_ref(state), m_ref(state);
  RecurrentArgs<double> a;
  a.steps = in.steps, a.dk = in.dk, a.dv = in.dv;
  a.q = q.data(), a.k = k.data(), a.v = v.data();
  a.log_alpha = la.data(), a.log_mu = lm.data(), a.beta = beta.data(), a.eta = eta.data();
  a.p_scale = p_scale;
  a.o = o_ref.data(), a.s_final = s_ref.data(), a.m_final = m_ref.data();
  ChunkError e;
  if (Status st = recurrent_ref(a); !st.is_ok()) throw std::logic_error("measure_chunk_error: " + st.message);
  bool ref_finite = true;
  for (const auto* x : {&o_ref, &s_ref, &m_ref})
    for (double y : *x) ref_finite = ref_finite && std::isfinite(y);
  a.o = o.data(), a.s_final = s.data(), a.m_final = m.data();
  ChunkOptions c;
  c.chunk = C;
  c.beta_eps = beta_eps;
  if (Status st = chunk_ref(p, a, c); !st.is_ok()) throw std::logic_error("measure_chunk_error: " + st.message);
  e.reference_finite = ref_finite;
  e.rel_rms = rms_rel(o, o_ref, &e.finite);
  for (size_t i = 0; i < o.size(); ++i) {
    e.max_abs = std::max(e.max_abs, std::fabs(o[i] - o_ref[i]));
    e.reference_max_abs = std::max(e.reference_max_abs, std::fabs(o_ref[i]));
  }
  std::vector<double> sm = s, sm_ref = s_ref;
  sm.insert(sm.end(), m.begin(), m.end());
  sm_ref.insert(sm_ref.end(), m_ref.begin(), m_ref.end());
  e.state_rel = rms_rel(sm, sm_ref, &e.finite);
  if (!e.finite) {
    e.rel_rms = kInf;
    e.max_abs = kInf;
    e.state_rel = kInf;
  }
  if (!ref_finite) e.rel_rms = e.max_abs = e.state_rel = NAN;
  return e;
}

}  // namespace mdnstab

namespace mdnstab {

namespace {


int slot_of(std::string_view name) {
  if (name == "alpha" || name == "log_alpha") return 0;
  if (name == "beta") return 1;
  if (name == "mu" || name == "log_mu") return 2;
  return 3;
}
constexpr const char* kSlotNames[] = {"alpha", "beta", "mu", "eta"};

struct MapSlots {
  int axis[4] = {-1, -1, -1, -1};
  bool log[4] = {false, false, false, false};
  double fixed[4] = {0, 0, 0, 0};
  long points = 1;
};

Result<MapSlots> resolve_slots(const ChunkMapSpec& spec) {
  MapSlots r;
  if (spec.axes.empty() || spec.axes.size() > 2)
    return error(Code::kInvalidArgument, fmt::format("chunk-safety needs 1 or 2 axes, got {}", spec.axes.size()));
  std::string seen[4];
  auto claim = [&](const std::string& name) -> Status {
    const int k = slot_of(name);
    if (!seen[k].empty())
      return error(Code::kInvalidArgument, seen[k] == name ? fmt::format("'{}' is given twice", name)
                                                           : fmt::format("'{}' is given twice (as {} and {})",
                                                                         kSlotNames[k], seen[k], name));
    seen[k] = name;
    return Status::ok();
  };
  double points = 1;
  for (size_t i = 0; i < spec.axes.size(); ++i) {
    const Axis& a = spec.axes[i];
    if (std::find(std::begin(kGateNames), std::end(kGateNames), a.name) == std::end(kGateNames))
      return error(Code::kInvalidArgument, fmt::format("unknown axis '{}'", a.name));
    if (Status s = claim(a.name); !s.is_ok()) return s;
    if (a.n < 1) return error(Code::kInvalidArgument, fmt::format("axis {}: N = {} must be >= 1", a.name, a.n));
    for (double v : {a.start, a.stop})
      if (Status s = check_gate(a.name, v); !s.is_ok()) return error(s.code, "axis " + s.message);
    const int k = slot_of(a.name);
    r.axis[k] = int(i);
    r.log[k] = a.name.starts_with("log_");
    points *= double(a.n);
  }
  for (const FixedGate& f : spec.fixed) {
    if (std::find(std::begin(kGateNames), std::end(kGateNames), f.name) == std::end(kGateNames))
      return error(Code::kInvalidArgument, fmt::format("unknown gate '{}'", f.name));
    if (Status s = claim(f.name); !s.is_ok()) return s;
    if (Status s = check_gate(f.name, f.value); !s.is_ok()) return s;
    const int k = slot_of(f.name);
    r.fixed[k] = f.value;
    r.log[k] = f.name.starts_with("log_");
  }
  for (int k = 0; k < 4; ++k)
    if (seen[k].empty())
      return error(Code::kInvalidArgument, fmt::format("gate '{}' is neither an axis nor fixed", kSlotNames[k]));
  if (points > 1e9) return error(Code::kTooLarge, fmt::format("a grid of {:.3g} points is refused", points));
  r.points = long(points);
  return r;
}

Gates point_gates(const ChunkMapSpec& spec, const MapSlots& r, long p) {
  long idx[2] = {0, 0};
  for (size_t i = spec.axes.size(); i-- > 0;) {  // last axis varies fastest
    idx[i] = p % spec.axes[i].n;
    p /= spec.axes[i].n;
  }
  double v[4];
  for (int k = 0; k < 4; ++k) v[k] = r.axis[k] >= 0 ? spec.axes[size_t(r.axis[k])].at(idx[r.axis[k]]) : r.fixed[k];
  const double la = r.log[0] ? v[0] : std::log(v[0]);
  const double lm = r.log[2] ? v[2] : std::log(v[2]);
  Gates g = Gates::from_log(la, v[1], lm, v[3], spec.p_scale).value;
  // Keep the linear values given exactly (exp(log(x)) may differ in the last bit).
  if (!r.log[0]) g.alpha = v[0];
  if (!r.log[2]) g.mu = v[2];
  return g;
}

// Multiply-adds of one measured point: the fp64 recurrence and the emulation.
void point_cost(const ChunkMapSpec& s, double* rec_macs, double* chunk_macs, double* exps) {
  const double T = s.steps, DK = s.dk, DV = s.dv, L = std::min(s.chunk, s.steps);
  const double nch = std::ceil(T / L);
  *rec_macs = 4 * T * DK * DV;
  *chunk_macs = nch * (4 * L * L * DK + L * L * L / 6 + 2 * L * L * DV + 8 * L * DK * DV);
  *exps = nch * 1.5 * L * L;
}

double point_rate(Precision p) {  // emulation multiply-adds per second and thread (measured, rounded down)
  switch (p) {
    case Precision::kFp64: return 1.5e9;
    case Precision::kFp32: return 2.5e9;
    case Precision::kTf32: return 2e9;
    case Precision::kBf16: return 1e9;
  }
  return 1e9;
}

double margin_of(const ChunkRisk& r, double tol) {
  return r.overflow ? kInf : std::fabs(std::log10(std::max(r.predicted_error, 1e-300) / tol));
}

}  // namespace

double emulation_bytes(long steps, int dk, int dv, int chunk, int threads) {
  // The inputs, per thread their rounded and typed copies, per-token gates, outputs and
  // states, the C x C work space.
  const double T = double(steps), row = 2.0 * dk + dv, state = double(dk) * dv;
  const double per_thread = 8 * T * (2 * row + 4 * dv + 8) + 4 * T * row + 8 * 8 * state + 16 * double(chunk) * chunk * 8;
  return 8 * T * row + threads * per_thread;
}

Status check_memory(double bytes, std::string_view lower) {
  const double phys = double(sysconf(_SC_PHYS_PAGES)) * double(sysconf(_SC_PAGE_SIZE));
  if (phys > 0 && bytes > 0.8 * phys)
    return error(Code::kTooLarge, fmt::format("chunk-safety would need about {:.3g} GB of memory, more than the {:.3g} "
                                              "GB here allow (lower {})",
                                              bytes / 1e9, 0.8 * phys / 1e9, lower));
  return Status::ok();
}

double estimate_seconds(const ChunkMapSpec& spec, int threads) {
  auto r = resolve_slots(spec);
  const double points = r.is_ok() ? double(r.value.points) : 1.0;
  double rec = 0, chunk = 0, exps = 0;
  point_cost(spec, &rec, &chunk, &exps);
  const double per_point = rec / 2e9 + chunk / point_rate(spec.precision) + exps / 5e7;
  return points * per_point / std::max(threads, 1);
}

Status check_chunk_inputs(int dk, int dv, long steps) {
  auto bad = [](std::string m) { return error(Code::kInvalidArgument, std::move(m)); };
  if (dk < 1 || dk > kMaxChunkDim) return bad(fmt::format("--dk {} must be in [1, {}]", dk, kMaxChunkDim));
  if (dv < 1 || dv > kMaxChunkDim) return bad(fmt::format("--dv {} must be in [1, {}]", dv, kMaxChunkDim));
  if (steps < 1 || steps > kMaxChunkSteps)
    return bad(fmt::format("--steps {} must be in [1, {}]", steps, kMaxChunkSteps));
  return Status::ok();
}

Status check(const ChunkMapSpec& spec) {
  auto r = resolve_slots(spec);
  if (!r.is_ok()) return r.status;
  auto bad = [](std::string m) { return error(Code::kInvalidArgument, std::move(m)); };
  if (Status s = check_chunk_inputs(spec.dk, spec.dv, spec.steps); !s.is_ok()) return s;
  if (spec.chunk < 1) return bad(fmt::format("chunk size C = {} must be >= 1", spec.chunk));
  if (spec.chunk > spec.steps)
    return bad(fmt::format("chunk size C = {} is larger than the sequence (--steps {})", spec.chunk, spec.steps));
  if (spec.chunk > kMaxChunk) return bad(fmt::format("chunk size C = {} must be <= {}", spec.chunk, kMaxChunk));
  if (!(spec.tol > 0) || !std::isfinite(spec.tol)) return bad(fmt::format("--tolerance = {} must be > 0", spec.tol));
  if (!std::isfinite(spec.beta_eps) || spec.beta_eps < 0)
    return bad(fmt::format("--beta-eps = {} must be finite and >= 0", spec.beta_eps));
  if (spec.threads < 0) return bad(fmt::format("--threads = {} must be >= 0", spec.threads));
  const int threads = spec.threads > 0 ? spec.threads : omp_get_num_procs();
  const double bytes = emulation_bytes(spec.steps, spec.dk, spec.dv, spec.chunk, threads) +
                       double(r.value.points) * sizeof(ChunkMapPoint);
  if (Status s = check_memory(bytes, "--steps, --dk, --dv or the grid"); !s.is_ok()) return s;
  const double secs = estimate_seconds(spec, threads);
  if (secs > spec.max_seconds)
    return error(Code::kTooLarge,
                 fmt::format("chunk-safety grid of {} points would take about {:.3g} hours on {} threads, over the {:.3g} "
                             "hour limit (lower --steps, --dk, --dv or the grid, or raise --max-hours)",
                             r.value.points, secs / 3600, threads, spec.max_seconds / 3600));
  if (!spec.out_path.empty())
    if (Status s = check_writable(spec.out_path); !s.is_ok()) return s;
  return Status::ok();
}

Result<ChunkMapSummary> run_chunk_map(const ChunkMapSpec& spec) {
  const auto t_start = std::chrono::steady_clock::now();
  if (Status s = check(spec); !s.is_ok()) return s;
  const MapSlots slots = resolve_slots(spec).value;
  const int threads = spec.threads > 0 ? spec.threads : omp_get_num_procs();
  const ChunkInputs in = random_chunk_inputs(spec.dk, spec.dv, spec.steps, spec.seed);
  ChunkRuleOptions ro;
  ro.tol = spec.tol;
  ro.steps = spec.steps;
  ro.dk = spec.dk;
  ro.beta_eps = spec.beta_eps;

  ChunkMapSummary sum;
  sum.points = slots.points;
  sum.threads = threads;
  sum.points_list.resize(size_t(slots.points));
  long done = 0;
  auto last = t_start;
  const bool progress = spec.progress && slots.points > 1;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (long i = 0; i < slots.points; ++i) {
    if (spec.stop && spec.stop->load(std::memory_order_relaxed) != 0) continue;
    ChunkMapPoint& pt = sum.points_list[size_t(i)];
    pt.gates = point_gates(spec, slots, i);
    pt.error = measure_chunk_error(pt.gates, in, spec.chunk, spec.precision, spec.beta_eps);
    pt.risk = chunk_risk(pt.gates, spec.chunk, spec.precision, ro);
    pt.broken = pt.error.broken(spec.tol);
    pt.predicted = !chunk_safe(pt.risk, spec.tol);
    if (progress) {
#pragma omp critical(chunk_map_progress)
      {
        ++done;
        const auto now = std::chrono::steady_clock::now();
        if (now - last > std::chrono::milliseconds(500) || done == slots.points) {
          last = now;
          fmt::print(stderr, "\rchunk-safety: {:5.1f}% ({} of {} points)", 100.0 * double(done) / double(slots.points),
                     done, slots.points);
          if (done == slots.points) fmt::print(stderr, "\n");
        }
      }
    }
  }

  if (spec.stop && spec.stop->load() != 0)
    return error(Code::kIoError, "chunk-safety map stopped before its end (interrupted)");
  const size_t naxes = spec.axes.size();
  sum.broken_min.assign(naxes, kInf);
  sum.broken_max.assign(naxes, -kInf);
  sum.lambda_broken_min = kInf;
  sum.lambda_safe_max = -kInf;
  for (long i = 0; i < slots.points; ++i) {
    const ChunkMapPoint& pt = sum.points_list[size_t(i)];
    if (!pt.error.reference_finite) {
      ++sum.reference_nonfinite;
      continue;  // no ground truth here: counted apart, not judged
    }
    ++sum.judged;
    if (!pt.error.finite) ++sum.nonfinite;
    const double margin = margin_of(pt.risk, spec.tol);
    const bool far = margin > 1;
    sum.far_points += far;
    if (pt.broken) {
      ++sum.broken;
      long rem = i;
      for (size_t a = naxes; a-- > 0;) {
        const double x = spec.axes[a].at(rem % spec.axes[a].n);
        rem /= spec.axes[a].n;
        sum.broken_min[a] = std::min(sum.broken_min[a], x);
        sum.broken_max[a] = std::max(sum.broken_max[a], x);
      }
      sum.lambda_broken_min = std::min(sum.lambda_broken_min, pt.risk.log_cancellation);
    } else {
      sum.max_error_safe = std::max(sum.max_error_safe, pt.error.rel_rms);
      sum.lambda_safe_max = std::max(sum.lambda_safe_max, pt.risk.log_cancellation);
    }
    if (pt.broken == pt.predicted) {
      ++sum.rule_agree;
      continue;
    }
    (pt.predicted ? sum.false_unsafe : sum.false_safe) += 1;
    sum.far_misses += far;
    if (!sum.has_miss || margin > sum.worst_miss_margin) {
      sum.has_miss = true;
      sum.worst_miss = pt;
      sum.worst_miss_margin = margin;
    }
  }

  if (!spec.out_path.empty()) {
    AtomicFile f;
    if (Status s = f.open(spec.out_path); !s.is_ok()) return s;
    std::string buf =
        "alpha,beta,mu,eta,log_alpha,log_mu,rel_error,max_abs_error,state_rel_error,finite,broken,"
        "predicted_error,log_cancellation,max_exponent,log_magnitude,rule_safe,rule_agrees\n";
    auto num = [&](double x) {
      if (!std::isnan(x)) fmt::format_to(std::back_inserter(buf), "{}", x);
      buf += ',';
    };
    for (const ChunkMapPoint& pt : sum.points_list) {
      const Gates& g = pt.gates;
      for (double x : {g.alpha, g.beta, g.mu, g.eta, g.log_alpha, g.log_mu, pt.error.rel_rms, pt.error.max_abs,
                       pt.error.state_rel})
        num(x);
      fmt::format_to(std::back_inserter(buf), "{},{},", int(pt.error.finite), int(pt.broken));
      for (double x : {pt.risk.predicted_error, pt.risk.log_cancellation, pt.risk.max_exponent,
                       pt.risk.log_magnitude})
        num(x);
      fmt::format_to(std::back_inserter(buf), "{},{}\n", int(!pt.predicted),
                     pt.error.reference_finite ? std::to_string(int(pt.broken == pt.predicted)) : std::string());
      if (buf.size() > (1u << 20)) {
        if (Status s = f.write(buf); !s.is_ok()) return s;
        buf.clear();
      }
    }
    if (Status s = f.write(buf); !s.is_ok()) return s;
    if (Status s = f.commit(); !s.is_ok()) return s;
  }
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  return sum;
}

}  // namespace mdnstab
