// Predictions, measurements and checks of `validate` (src/mdnstab/validate.hpp).
// Every tolerance is stated where it is used; the measured growth rates come from
// the many-config mode (kernels/many_config.hpp), the bounded/overflow behaviour
// from long runs of the full recurrence with random q, k, v.
#include "mdnstab/validate.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include <fmt/format.h>
#include <omp.h>

#include "mdnstab/lyapunov.hpp"
#include "mdnstab/many_config_ref.hpp"

namespace mdnstab {

namespace kn = mdnstab::kernels;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kLogFloatMax = 88.72;  // ln(FLT_MAX): where an fp32 state overflows
// Below this log growth per step the fp32 state underflows between renormalizations
// (2^-70 per step, the kernel's flag): the rate is only known to be that small.
constexpr double kUnmeasurable = -40.0;

// The condition number of the 2x2 W > 0: |x| and |x|_W differ by at most sqrt(cond).
// From the factor W = c L^T L, L = [[1, x], [0, y]] (exact where W's entries round
// its small eigenvalue away): cond(W) = cond(L)^2 = (s + sqrt(s^2 - 4 y^2))^2 / (4 y^2)
// with s = 1 + x^2 + y^2 (the trace of L^T L; y^2 its determinant).
double cond_w(const Certificate& c) {
  if (c.gate_memory > 0) {
    // One W per word: |x|^2 min lambda_min <= V_w(x) <= max lambda_max |x|^2 over all words.
    if (c.W_by_word.empty()) return kInf;
    double hi = 0, lo = kInf;
    for (const auto& w : c.W_by_word) {
      const double h = 0.5 * (w[0] + w[2]) + std::hypot(0.5 * (w[0] - w[2]), w[1]);
      const double d = w[0] * w[2] - w[1] * w[1];
      if (!(h > 0) || !(d > 0)) return kInf;
      hi = std::max(hi, h);
      lo = std::min(lo, d / h);
    }
    return hi / lo;
  }
  const double x = c.W_factor[0], y = c.W_factor[1];
  if (!(y != 0) || !std::isfinite(x) || !std::isfinite(y)) return kInf;
  const double s = 1 + x * x + y * y, d = y * y;
  const double hi = (s + std::sqrt(std::max(0.0, s * s - 4 * d))) / 2;
  return hi * hi / d;  // hi / lo with lo = d / hi
}

class CpuBackend : public ValidateBackend {
 public:
  explicit CpuBackend(int threads) : threads_(threads) {}
  std::string device() const override {
    return fmt::format("cpu ({} threads)", threads_ > 0 ? threads_ : omp_get_num_procs());
  }
  bool gpu() const override { return false; }
  Status many_config(const kn::ManyConfigParams& p, double* seconds) override {
    const auto t0 = std::chrono::steady_clock::now();
    Status s = many_config_ref(p, threads_);
    if (seconds) *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return s;
  }
  Status long_run(const kn::LongRunParams& p) override { return long_recurrent_ref(p, threads_); }

 private:
  int threads_;
};

// Growth of the coordinates outside the witness's plane (DK > 2): there every step
// acts by A_perp = [[alpha, -beta mu], [0, mu]], upper triangular, so a cycle of
// rows grows like the larger geometric mean of alpha and of mu over the cycle.
double perpendicular_log_growth(std::span<const Gates> set, const std::vector<int>& cycle) {
  double la = 0, lm = 0;
  const size_t n = cycle.empty() ? 1 : cycle.size();
  for (size_t i = 0; i < n; ++i) {
    const Gates& g = set[cycle.empty() ? 0 : size_t(cycle[i])];
    la += g.log_alpha;
    lm += g.log_mu;
  }
  return std::max(la, lm) / double(n);
}

double log_or_minus_inf(double x) { return x > 0 ? std::log(x) : -kInf; }

struct RowHeads {
  std::int64_t random_first = 0;   // random-key heads [first, first + n)
  std::int64_t witness = -1;       // the witness replay head
  std::vector<std::int64_t> rotation;  // one head per extra angle
};

// Appends the rows of `set` to the gate table; returns the first row.
std::uint32_t add_rows(std::vector<double>& table, std::span<const Gates> set) {
  const auto first = std::uint32_t(table.size() / 4);
  for (const Gates& g : set) table.insert(table.end(), {g.alpha, g.beta, g.mu, g.eta});
  return first;
}

// The gate rule of a random-key or full-run head for this set.
kn::ManyHead set_head(std::uint32_t first, size_t n) {
  kn::ManyHead h;
  h.gate_first = first;
  h.gate_count = std::uint32_t(n);
  h.gate_mode = n == 1 ? keygen::kGateConstant : keygen::kGateRandom;
  return h;
}

// A head replaying the witness: plane keys and, for a set, the cycle of gate rows.
kn::ManyHead witness_head(const Witness& w, std::span<const Gates> set, std::vector<double>& gates,
                          std::vector<double>& keys) {
  kn::ManyHead h;
  h.key_mode = keygen::kKeyPlane;
  h.key_first = std::uint32_t(keys.size() / 2);
  if (w.kind == Witness::Kind::kRotation) {
    keys.insert(keys.end(), {1.0, 0.0});
    h.key_period = 1;
    h.drift = w.angle;
  } else {
    for (const auto& k : w.keys) {
      const double n = std::hypot(k[0], k[1]);  // unit to rounding; the table check wants 1e-9
      keys.insert(keys.end(), {k[0] / n, k[1] / n});
    }
    h.key_period = std::uint32_t(w.keys.size());
    h.drift = w.drift;
  }
  if (w.gate_index.size() > 1) {
    h.gate_mode = keygen::kGateCycle;
    h.gate_first = std::uint32_t(gates.size() / 4);
    h.gate_count = std::uint32_t(w.gate_index.size());
    for (int gi : w.gate_index) {
      const Gates& g = set[size_t(gi)];
      gates.insert(gates.end(), {g.alpha, g.beta, g.mu, g.eta});
    }
  } else {
    h.gate_first = add_rows(gates, set.subspan(w.gate_index.empty() ? 0 : size_t(w.gate_index[0]), 1));
  }
  return h;
}

Check make_check(std::string name) {
  Check c;
  c.name = std::move(name);
  return c;
}

void pass_if(Check& c, bool ok) { c.state = ok ? Check::State::kPass : Check::State::kFail; }

}  // namespace

const char* to_string(Check::State s) {
  switch (s) {
    case Check::State::kPass: return "pass";
    case Check::State::kFail: return "FAIL";
    default: return "skip";
  }
}

bool RowResult::agrees() const {
  return std::none_of(checks.begin(), checks.end(), [](const Check& c) { return c.state == Check::State::kFail; });
}

long ValidationReport::disagreements() const {
  long n = 0;
  for (const RowResult& r : rows) n += r.agrees() ? 0 : 1;
  return n;
}

std::unique_ptr<ValidateBackend> cpu_backend(int threads) { return std::make_unique<CpuBackend>(threads); }

long burn_in_steps(const ValidateOptions& o) { return o.burn_in >= 0 ? o.burn_in : o.steps / 10; }
long full_run_steps(const ValidateOptions& o) { return o.full_steps >= 0 ? o.full_steps : o.steps; }

Status check(const ValidateOptions& o) {
  auto bad = [](std::string m) { return error(Code::kInvalidArgument, std::move(m)); };
  if (o.dk < 2 || o.dk > 256) return bad(fmt::format("--dk {} must be in [2, 256]", o.dk));
  if (o.steps < 100) return bad(fmt::format("--steps {} must be >= 100", o.steps));
  if (o.steps > (1L << 38)) return bad(fmt::format("--steps {} is above 2^38", o.steps));
  if (o.burn_in < -1) return bad(fmt::format("--burn-in {} must be >= 0", o.burn_in));
  if (o.random_heads < 2 || o.random_heads > 65536)
    return bad(fmt::format("--heads {} must be in [2, 65536]", o.random_heads));
  if (o.full_steps < -1) return bad(fmt::format("--full-steps {} must be >= 0", o.full_steps));
  if (full_run_steps(o) > (1L << 31) - 1) return bad(fmt::format("--full-steps {} is above 2^31 - 1", full_run_steps(o)));
  if (o.full_dv < 1 || o.full_dv > 256) return bad(fmt::format("--full-dv {} must be in [1, 256]", o.full_dv));
  if (o.cpu_steps < 100) return bad(fmt::format("--cpu-steps {} must be >= 100", o.cpu_steps));
  if (o.cpu_chains < 2) return bad(fmt::format("--cpu-chains {} must be >= 2", o.cpu_chains));
  if (!(o.z > 0) || !std::isfinite(o.z)) return bad(fmt::format("--z {} must be a positive number", o.z));
  if (!(o.tol_round >= 0) || !std::isfinite(o.tol_round))
    return bad(fmt::format("--tol {} must be a number >= 0", o.tol_round));
  if (o.threads < 0) return bad(fmt::format("--threads {} must be >= 0", o.threads));
  for (double a : o.rotation_angles)
    if (!std::isfinite(a)) return bad(fmt::format("rotation angle {} is not finite", a));
  return Status::ok();
}

Result<std::vector<Prediction>> predict(std::span<const ValidateRow> rows, const ValidateOptions& opt) {
  if (Status s = check(opt); !s.is_ok()) return s;
  if (rows.empty()) return error(Code::kInvalidArgument, "no gate set to validate");
  const long n = long(rows.size());
  std::vector<Prediction> out(rows.size());
  std::vector<Status> errs(rows.size());
  const int nt = opt.threads > 0 ? opt.threads : omp_get_num_procs();
  // One row per thread: the estimators' results do not depend on thread counts.
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
  for (long i = 0; i < n; ++i) {
    const ValidateRow& row = rows[size_t(i)];
    Prediction& p = out[size_t(i)];
    auto c = certify(row.gates, opt.certify);
    if (!c.is_ok()) {
      errs[size_t(i)] = c.status;
      continue;
    }
    p.cert = c.value;
    p.exponent_dk = opt.dk;
    p.exponent_steps = opt.cpu_steps;
    p.exponent_chains = opt.cpu_chains;
    p.exponent_seed = opt.seed + 1000003;  // not the measurement's seed
    if (row.gates.size() == 1) {
      // An independent estimator: its own generator and code (src/core/lyapunov.cpp).
      LyapunovOptions lo;
      lo.dk = opt.dk;
      lo.steps = opt.cpu_steps;
      lo.seed = p.exponent_seed;
      lo.chains = opt.cpu_chains;
      lo.threads = 1;
      auto r = lyapunov(row.gates[0], lo);
      if (!r.is_ok()) {
        errs[size_t(i)] = r.status;
        continue;
      }
      p.exponent = r.value.exponent;
      p.exponent_se = r.value.stderr_;
      p.exponent_method = "lyapunov";
    } else {
      // Gates drawn per step from the set: the many-config CPU reference, other seed.
      std::vector<double> table;
      add_rows(table, row.gates);
      std::vector<kn::ManyHead> heads(size_t(opt.cpu_chains), set_head(0, row.gates.size()));
      for (size_t h = 0; h < heads.size(); ++h) heads[h].stream = h;
      std::vector<double> ln(heads.size() * 5);
      std::vector<std::int32_t> fl(heads.size());
      kn::ManyConfigParams m;
      m.heads = std::int64_t(heads.size());
      m.dk = opt.dk;
      m.burn_in = opt.cpu_steps / 10;
      m.steps = opt.cpu_steps;
      m.checkpoints = 4;
      m.seed = p.exponent_seed;
      m.p_alpha = row.gates[0].p_scale == PScale::kAlpha;
      m.head = heads.data();
      m.gate_table = table.data();
      m.gate_rows = std::int64_t(row.gates.size());
      m.log_norm = ln.data();
      m.flags = fl.data();
      if (Status s = many_config_ref(m, 1); !s.is_ok()) {
        errs[size_t(i)] = s;
        continue;
      }
      // Batch means over heads x checkpoint intervals, as the CPU estimator does.
      double sum = 0, ss = 0;
      const int nb = int(heads.size()) * 4;
      std::vector<double> b;
      for (size_t h = 0; h < heads.size(); ++h)
        for (int j = 0; j < 4; ++j) {
          const double len = double(kn::many_checkpoint_step(m, j + 1) - kn::many_checkpoint_step(m, j));
          b.push_back((ln[h * 5 + size_t(j) + 1] - ln[h * 5 + size_t(j)]) / len);
        }
      for (double x : b) sum += x;
      const double mean = sum / nb;
      for (double x : b) ss += (x - mean) * (x - mean);
      p.exponent = 0;
      for (size_t h = 0; h < heads.size(); ++h) p.exponent += kn::many_rate(m, std::int64_t(h)) / double(heads.size());
      p.exponent_se = std::sqrt(ss / (nb - 1) / nb);
      p.exponent_method = "many-config-ref";
    }
  }
  for (long i = 0; i < n; ++i)
    if (!errs[size_t(i)].is_ok())
      return error(errs[size_t(i)].code, fmt::format("gate set {}: {}", i, errs[size_t(i)].message));
  return out;
}

Result<ValidationReport> validate(std::span<const ValidateRow> rows, std::span<const Prediction> predictions,
                                  const ValidateOptions& opt, ValidateBackend& backend) {
  if (Status s = check(opt); !s.is_ok()) return s;
  if (rows.empty()) return error(Code::kInvalidArgument, "no gate set to validate");
  if (predictions.size() != rows.size())
    return error(Code::kInvalidArgument,
                 fmt::format("{} predictions for {} gate sets", predictions.size(), rows.size()));
  const PScale ps = rows[0].gates.at(0).p_scale;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i].gates.empty()) return error(Code::kInvalidArgument, fmt::format("gate set {} is empty", i));
    for (const Gates& g : rows[i].gates)
      if (g.p_scale != ps)
        return error(Code::kInvalidArgument, fmt::format("gate set {}: every set must use p-scale {}", i, to_string(ps)));
  }
  const auto t0 = std::chrono::steady_clock::now();
  ValidationReport rep;
  rep.device = backend.device();
  rep.devices = backend.devices();

  // ---- one many-config run for every head of every row ----
  std::vector<double> gates, keys;
  std::vector<kn::ManyHead> heads;
  std::vector<RowHeads> at(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    const ValidateRow& row = rows[i];
    const Certificate& c = predictions[i].cert;
    const std::uint32_t first = add_rows(gates, row.gates);
    at[i].random_first = std::int64_t(heads.size());
    for (int h = 0; h < opt.random_heads; ++h) heads.push_back(set_head(first, row.gates.size()));
    const bool witness_ok = c.witness.kind != Witness::Kind::kNone &&
                            (c.witness.kind == Witness::Kind::kRotation || !c.witness.keys.empty()) &&
                            std::all_of(c.witness.gate_index.begin(), c.witness.gate_index.end(),
                                        [&](int g) { return g >= 0 && size_t(g) < row.gates.size(); });
    if (witness_ok) {
      at[i].witness = std::int64_t(heads.size());
      heads.push_back(witness_head(c.witness, row.gates, gates, keys));
    }
    for (double th : opt.rotation_angles) {
      at[i].rotation.push_back(std::int64_t(heads.size()));
      kn::ManyHead h = set_head(first, row.gates.size());
      h.key_mode = keygen::kKeyPlane;
      h.key_first = std::uint32_t(keys.size() / 2);
      h.drift = th;
      keys.insert(keys.end(), {1.0, 0.0});
      heads.push_back(h);
    }
  }
  for (size_t h = 0; h < heads.size(); ++h) heads[h].stream = h;
  const int K = 4;
  std::vector<double> log_norm(heads.size() * (K + 1), NAN);  // [heads,K+1], NaN-poisoned
  std::vector<std::int32_t> flags(heads.size(), -1);
  kn::ManyConfigParams m;
  m.heads = std::int64_t(heads.size());
  m.dk = opt.dk;
  m.burn_in = burn_in_steps(opt);
  m.steps = opt.steps;
  m.checkpoints = K;
  m.seed = opt.seed;
  m.p_alpha = ps == PScale::kAlpha;
  m.head = heads.data();
  m.gate_table = gates.data();
  m.gate_rows = std::int64_t(gates.size() / 4);
  m.key_table = keys.empty() ? nullptr : keys.data();
  m.key_rows = std::int64_t(keys.size() / 2);
  m.log_norm = log_norm.data();
  m.flags = flags.data();
  if (Status s = backend.many_config(m, &rep.many_config_seconds); !s.is_ok()) return s;
  rep.head_steps = double(m.heads) * double(m.burn_in + m.steps);
  for (size_t h = 0; h < heads.size(); ++h)
    if (flags[h] < 0)
      return error(Code::kNumericalIssue, fmt::format("the many-config run left head {} unwritten", h));

  // ---- the full recurrent kernel over long random inputs, one sequence per row ----
  const long T_full = full_run_steps(opt);
  std::vector<std::int64_t> first_bad(rows.size(), -1);
  std::vector<double> max_norm(rows.size(), NAN), final_norm(rows.size(), NAN);
  if (T_full > 0) {
    std::vector<double> fg;
    std::vector<kn::ManyHead> fh;
    for (size_t i = 0; i < rows.size(); ++i) {
      fh.push_back(set_head(add_rows(fg, rows[i].gates), rows[i].gates.size()));
      fh.back().stream = i;
    }
    kn::LongRunParams lr;
    lr.batch = std::int64_t(rows.size());
    lr.steps = T_full;
    lr.dk = opt.dk;
    lr.dv = opt.full_dv;
    lr.seed = opt.seed + 2;
    lr.p_alpha = ps == PScale::kAlpha;
    lr.head = fh.data();
    lr.gate_table = fg.data();
    lr.gate_rows = std::int64_t(fg.size() / 4);
    lr.segment = 4096;
    lr.probe_interval = 256;
    lr.first_nonfinite = first_bad.data();
    lr.max_norm = max_norm.data();
    lr.final_norm = final_norm.data();
    if (Status s = backend.long_run(lr); !s.is_ok()) return s;
  }
  rep.seconds_measure = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // ---- the checks ----
  const double steps = double(opt.steps);
  for (size_t i = 0; i < rows.size(); ++i) {
    RowResult rr;
    rr.row = rows[i];
    rr.prediction = predictions[i];
    const Prediction& p = predictions[i];
    const Certificate& c = p.cert;
    Measurement& ms = rr.measured;
    auto rate = [&](std::int64_t h) { return kn::many_rate(m, h); };
    const double log_gamma = log_or_minus_inf(c.upper_bound);
    const double cw = cond_w(c);
    // Any key sequence: |x_T|_W <= gamma^T |x_0|_W, so a rate over T steps is at most
    // log gamma + log(cond W) / (2 T); tol_round covers fp32 rounding per step.
    const double tol_bound = 0.5 * std::log(cw) / steps + opt.tol_round;
    // A deterministic schedule's rate over T steps after burn-in is its asymptotic rate
    // up to O(1)/T: oscillation of a complex dominant pair and log(T) of a Jordan block
    // (both bounded by ~20 for the conditioning met), plus the W-norm slack.
    const double tol_rate = (20 + 0.5 * std::log(cw)) / steps + opt.tol_round;
    // Can these heads' rates be measured at all (see kUnmeasurable)?
    auto measurable = [&](std::int64_t h) { return (flags[size_t(h)] & (kn::kFlagUnderflow | kn::kFlagZero)) == 0; };

    // Random keys.
    std::vector<double> rr_rates;
    for (int h = 0; h < opt.random_heads; ++h) {
      const std::int64_t id = at[i].random_first + h;
      if (flags[size_t(id)] & kn::kFlagNonFinite) ++ms.nonfinite;
      if (flags[size_t(id)] != 0) ++ms.flagged;
      rr_rates.push_back(rate(id));
    }
    ms.heads = opt.random_heads;
    {
      double sum = 0, ss = 0, mx = -kInf;
      for (double r : rr_rates) sum += r, mx = std::max(mx, r);
      const double mean = sum / double(rr_rates.size());
      for (double r : rr_rates) ss += std::isfinite(r) ? (r - mean) * (r - mean) : 0.0;
      ms.exponent = mean;
      ms.max_rate = mx;
      ms.exponent_se = std::isfinite(mean) ? std::sqrt(ss / double(rr_rates.size() - 1) / double(rr_rates.size())) : 0.0;
      ms.sigma2 = std::isfinite(mean) ? steps * ss / double(rr_rates.size() - 1) : NAN;
    }

    {  // The prediction itself must hang together (a fed-in one may not).
      Check ck = make_check("prediction");
      const Verdict v = verdict_of(c.upper_bound, c.lower_bound);
      const bool ordered = c.lower_bound <= c.upper_bound * (1 + 1e-9) && c.frozen_spectral_radius <= c.upper_bound * (1 + 1e-9);
      pass_if(ck, v == c.verdict && ordered && std::isfinite(c.upper_bound));
      ck.measured = c.lower_bound;
      ck.expected = c.upper_bound;
      ck.detail = fmt::format("verdict {} from gamma {:.9g} and lower bound {:.9g} (frozen rho {:.9g}){}",
                              to_string(c.verdict), c.upper_bound, c.lower_bound, c.frozen_spectral_radius,
                              v == c.verdict ? "" : fmt::format(": the bounds say {}", to_string(v)));
      rr.checks.push_back(ck);
    }
    {
      Check ck = make_check("finite");
      int bad = ms.nonfinite;
      if (at[i].witness >= 0 && (flags[size_t(at[i].witness)] & kn::kFlagNonFinite)) ++bad;
      for (std::int64_t h : at[i].rotation)
        if (flags[size_t(h)] & kn::kFlagNonFinite) ++bad;
      pass_if(ck, bad == 0);
      ck.measured = bad;
      ck.expected = 0;
      ck.detail = fmt::format("{} many-config heads with a non-finite state", bad);
      rr.checks.push_back(ck);
    }
    {
      Check ck = make_check("random_bound");
      ck.measured = ms.max_rate;
      ck.expected = log_gamma;
      ck.tolerance = tol_bound;
      pass_if(ck, !(ms.max_rate > log_gamma + tol_bound));
      ck.detail = fmt::format("largest random-key rate of {} heads <= log gamma + log(cond W)/(2T) + tol", ms.heads);
      rr.checks.push_back(ck);
    }
    // Witness and rotations.
    double rot_max = -kInf;
    if (at[i].witness >= 0) {
      const std::int64_t h = at[i].witness;
      ms.witness_rate = rate(h);
      rot_max = std::max(rot_max, ms.witness_rate);
      const double perp = opt.dk > 2 ? perpendicular_log_growth(rr.row.gates, c.witness.gate_index) : -kInf;
      ms.witness_expected = std::max(log_or_minus_inf(c.lower_bound), perp);
      Check ck = make_check("witness_rate");
      ck.measured = ms.witness_rate;
      ck.expected = ms.witness_expected;
      ck.tolerance = tol_rate;
      if (!measurable(h) || ms.witness_expected < kUnmeasurable) {
        ck.state = Check::State::kSkip;
        ck.detail = "contraction too strong for an fp32 rate (underflow)";
      } else {
        pass_if(ck, std::abs(ms.witness_rate - ms.witness_expected) <= tol_rate);
        ck.detail = fmt::format("{} witness ({}) replayed at DK = {} grows at log max(lower bound, perpendicular){}",
                                to_string(c.witness.kind), c.witness.family, opt.dk,
                                c.verdict == Verdict::kRefuted ? ": the refutation holds" : "");
      }
      rr.checks.push_back(ck);
    } else {
      Check ck = make_check("witness_rate");
      ck.detail = "no witness in the prediction";
      rr.checks.push_back(ck);
    }
    {
      Check ck = make_check("rotation_rate");
      double worst = 0;
      bool any = false, skip = false;
      for (size_t j = 0; j < at[i].rotation.size(); ++j) {
        const std::int64_t h = at[i].rotation[j];
        const double th = opt.rotation_angles[j];
        const double r = rate(h);
        rot_max = std::max(rot_max, r);
        double expect = NAN;
        if (rr.row.gates.size() == 1) {
          const Gates& g = rr.row.gates[0];
          expect = std::max(log_or_minus_inf(rotation_growth(g, th)), opt.dk > 2 ? std::max(g.log_alpha, g.log_mu) : -kInf);
        }
        ms.rotation_angle.push_back(th);
        ms.rotation_rate.push_back(r);
        ms.rotation_expected.push_back(expect);
        if (std::isnan(expect)) continue;
        if (!measurable(h) || expect < kUnmeasurable) {
          skip = true;
          continue;
        }
        any = true;
        if (std::abs(r - expect) >= std::abs(worst)) {
          worst = r - expect;
          ck.measured = r;
          ck.expected = expect;
        }
      }
      ck.tolerance = tol_rate;
      if (!any) {
        ck.state = Check::State::kSkip;
        ck.detail = skip ? "contraction too strong for an fp32 rate (underflow)"
                         : (at[i].rotation.empty() ? "no rotation angles" : "no closed form for a gate set drawn per step");
      } else {
        pass_if(ck, std::abs(worst) <= tol_rate);
        ck.detail = fmt::format("rotating keys at {} angles grow at the rotating-frame spectral radius", at[i].rotation.size());
      }
      rr.checks.push_back(ck);
    }
    {
      Check ck = make_check("rotating_bound");
      ck.measured = rot_max;
      ck.expected = log_gamma;
      ck.tolerance = tol_bound;
      if (at[i].witness < 0 && at[i].rotation.empty()) {
        ck.detail = "no rotating heads";
      } else {
        pass_if(ck, !(rot_max > log_gamma + tol_bound));
        ck.detail = "largest rotating-key (witness and extra angles) rate <= log gamma + log(cond W)/(2T) + tol";
      }
      rr.checks.push_back(ck);
    }
    {
      Check ck = make_check("random_exponent");
      ck.measured = ms.exponent;
      ck.expected = p.exponent;
      bool unmeasurable = false;
      for (int h = 0; h < opt.random_heads; ++h) unmeasurable = unmeasurable || !measurable(at[i].random_first + h);
      if (std::isnan(p.exponent)) {
        ck.detail = "no CPU estimate in the prediction";
      } else if (std::isinf(p.exponent) && std::isinf(ms.exponent) && p.exponent < 0 && ms.exponent < 0) {
        ck.state = Check::State::kPass;
        ck.detail = "the state reaches exactly zero on both";
      } else if (unmeasurable || p.exponent < kUnmeasurable) {
        ck.detail = "contraction too strong for an fp32 rate (underflow)";
      } else {
        // Two estimates of one exponent: z combined standard errors, plus fp32 rounding,
        // plus O(1)/T start and end effects of each (3 / steps each).
        ck.tolerance = opt.z * std::hypot(ms.exponent_se, p.exponent_se) + opt.tol_round + 3.0 / steps +
                       3.0 / double(std::max(1L, p.exponent_steps));
        pass_if(ck, std::abs(ms.exponent - p.exponent) <= ck.tolerance);
        ck.detail = fmt::format("random-key exponent {:.6g} +/- {:.2g} ({} heads x {} steps) against the CPU's {:.6g} +/- {:.2g} ({})",
                                ms.exponent, ms.exponent_se, ms.heads, opt.steps, p.exponent, p.exponent_se, p.exponent_method);
      }
      rr.checks.push_back(ck);
    }
    // The full recurrent kernel.
    ms.full_steps = T_full;
    ms.first_nonfinite = first_bad[i];
    ms.full_max_norm = max_norm[i];
    {
      // Certified: per value column |x_c|_W <= sup_t |b_t|_W / (1 - gamma) from x_0 = 0, with
      // |b_t| = eta sqrt(1 + beta^2) |v_tc| and |v_tc| <= kMaxNormal; 1e-3 for fp32 rounding.
      double drive = 0;
      for (const Gates& g : rr.row.gates) drive = std::max(drive, g.eta * std::sqrt(1 + g.beta * g.beta));
      ms.full_bound = c.upper_bound < 1 ? std::sqrt(double(opt.full_dv) * cw) * drive * keygen::kMaxNormal /
                                              (1 - c.upper_bound) * (1 + 1e-3)
                                        : kInf;
      Check ck = make_check("full_bounded");
      ck.measured = ms.full_max_norm;
      ck.expected = ms.full_bound;
      if (T_full == 0) {
        ck.detail = "full run off";
      } else if (c.verdict == Verdict::kCertified) {
        pass_if(ck, ms.first_nonfinite < 0 && !(ms.full_max_norm > ms.full_bound));
        ck.detail = ms.first_nonfinite < 0
                        ? fmt::format("certified: |(S, M)|_F <= {:.4g} over {} steps of random q, k, v", ms.full_bound, T_full)
                        : fmt::format("certified, yet the state went non-finite at step {}", ms.first_nonfinite);
      } else {
        ck.detail = ms.first_nonfinite >= 0 ? fmt::format("{}: first non-finite step {}", to_string(c.verdict), ms.first_nonfinite)
                                            : fmt::format("{}: finite through {} steps", to_string(c.verdict), T_full);
      }
      rr.checks.push_back(ck);
    }
    {
      // Random q, k, v drive the state like random keys: with exponent lambda > 0 it
      // passes exp(88.7) (fp32) after about 88.7 / lambda steps (expected overflow if 4x
      // that fits); with lambda < 0 it stays finite unless the log-norm's excursions
      // (variance sigma^2 per step, drift lambda: maxima ~ sigma^2 ln(T) / (2 |lambda|))
      // reach half of 88.7. Otherwise the outcome is not predicted.
      Check ck = make_check("full_vs_exponent");
      ck.measured = double(ms.first_nonfinite);
      const double lam_lo = p.exponent - opt.z * p.exponent_se, lam_hi = p.exponent + opt.z * p.exponent_se;
      const double excursion = std::isfinite(ms.sigma2) && lam_hi < 0
                                   ? ms.sigma2 * std::log(double(std::max(2L, T_full))) / (2 * -lam_hi)
                                   : kInf;
      if (T_full == 0 || std::isnan(p.exponent)) {
        ck.detail = "full run off or no CPU exponent";
      } else if (lam_lo > 0 && 4 * kLogFloatMax / lam_lo <= double(T_full)) {
        ck.expected = kLogFloatMax / p.exponent;
        pass_if(ck, ms.first_nonfinite >= 0);
        ck.detail = ms.first_nonfinite >= 0
                        ? fmt::format("exponent {:.4g} > 0: overflow expected near step {:.0f}, seen at {}", p.exponent,
                                      ck.expected, ms.first_nonfinite)
                        : fmt::format("exponent {:.4g} > 0 predicts overflow near step {:.0f}, yet finite through {}",
                                      p.exponent, ck.expected, T_full);
      } else if (lam_hi < 0 && excursion < kLogFloatMax / 2) {
        ck.expected = -1;
        pass_if(ck, ms.first_nonfinite < 0);
        ck.detail = ms.first_nonfinite < 0
                        ? fmt::format("exponent {:.4g} < 0: finite through {} steps as expected", p.exponent, T_full)
                        : fmt::format("exponent {:.4g} < 0 predicts a finite run, yet non-finite at step {}", p.exponent,
                                      ms.first_nonfinite);
      } else {
        ck.detail = fmt::format("exponent {:.4g} +/- {:.2g}: no prediction (first non-finite step {})", p.exponent,
                                p.exponent_se, ms.first_nonfinite);
      }
      rr.checks.push_back(ck);
    }
    rep.rows.push_back(std::move(rr));
  }
  return rep;
}

}  // namespace mdnstab
