// Certifying reachable gates: sampled parametrizations, gate dumps (per head as
// one set, and per token), checkpoints (per layer and head); summaries with
// counterexamples. Tested in tests/test_constraint.cpp.
#include "mdnstab/constraint.hpp"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <numeric>
#include <tuple>

#include <fmt/format.h>

namespace mdnstab {

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int thread_count(int requested) { return requested > 0 ? requested : omp_get_max_threads(); }

// The upper bound first (cheap); the witness search only where gamma >= 1.
void certify_one(const Gates& g, const CertifyOptions& opt, CheckedGate& out) {
  CertifyOptions upper = opt;
  upper.lower_bound = false;
  auto c = certify(std::span(&g, 1), upper);
  if (c.is_ok() && c.value.upper_bound >= 1.0 && opt.lower_bound) c = certify(std::span(&g, 1), opt);
  out.depth = gate_depth(g);
  if (!c.is_ok()) {
    out.status = c.status;
    return;
  }
  // Every W proves a bound, so the optimum can never exceed the one W = I
  // proves (the largest singular value of A_par and A_perp); nor can a witness
  // grow faster than gamma. A certificate breaking either beyond its accuracy
  // is a defect of the optimizer on this gate, reported as a failure rather
  // than trusted. Allowances: gamma is optimal only to rel_tol; a witness
  // growth is an eigenvalue of a 4x4 matrix, accurate to about sqrt(eps) ~ 1.5e-8
  // relative near a double eigenvalue (the saturated edge alpha = mu = 1).
  const std::array<double, 3> identity{1, 0, 1};
  auto plain = quadratic_bound(std::span(&g, 1), identity);
  if (plain.is_ok() && c.value.upper_bound > plain.value * (1 + 2 * opt.rel_tol) + 1e-300) {
    out.status = error(Code::kNumericalIssue,
                       fmt::format("certify returned gamma = {:.9g} above the bound {:.9g} that W = I proves",
                                   c.value.upper_bound, plain.value));
    return;
  }
  if (c.value.lower_bound > c.value.upper_bound * (1 + kWitnessRoundoff)) {
    out.status = error(Code::kNumericalIssue, fmt::format("certify returned a lower bound {:.12g} above gamma {:.12g}",
                                                          c.value.lower_bound, c.value.upper_bound));
    return;
  }
  out.cert = std::move(c.value);
}

void check_all(std::span<CheckedGate> items, const CertifyOptions& opt, int threads) {
#pragma omp parallel for schedule(dynamic, 64) num_threads(thread_count(threads))
  for (long i = 0; i < long(items.size()); ++i) certify_one(items[size_t(i)].sample.mapped.gates, opt, items[size_t(i)]);
}

void replay(CheckedGate& c) {
  if (!c.status.is_ok() || c.cert.witness.kind == Witness::Kind::kNone) return;
  const Gates& g = c.sample.mapped.gates;
  auto r = witness_growth(std::span(&g, 1), c.cert.witness);
  if (r.is_ok()) c.replayed_growth = r.value;
}

Status check_options(const ConstraintOptions& opt) {
  if (!(opt.margin > 0 && opt.margin < 1))
    return error(Code::kInvalidArgument, fmt::format("margin = {} must be in (0, 1)", opt.margin));
  if (opt.top < 0 || opt.top > 10000)
    return error(Code::kInvalidArgument, fmt::format("top = {} must be in [0, 10000]", opt.top));
  if (opt.threads < 0) return error(Code::kInvalidArgument, fmt::format("threads = {} must be >= 0", opt.threads));
  return Status::ok();
}

}  // namespace

double gate_depth(const Gates& g) { return -std::expm1(std::max(g.log_alpha, g.log_mu)); }

void GateSetRanges::add(const Gates& g) {
  ++n;
  alpha.add(g.alpha);
  beta.add(g.beta);
  mu.add(g.mu);
  eta.add(g.eta);
  beta_eta.add(g.beta * g.eta);
  alpha_plus_beta.add(g.alpha + g.beta);
  depth.add(gate_depth(g));
}

void VerdictCounts::add(Verdict v) {
  switch (v) {
    case Verdict::kCertified: ++certified; break;
    case Verdict::kRefuted: ++refuted; break;
    case Verdict::kUndecided: ++undecided; break;
  }
}

Result<ConstraintReport> analyze_samples(std::vector<SampledGate> samples, const ConstraintOptions& opt,
                                         std::vector<CheckedGate>* keep) {
  if (Status s = check_options(opt); !s.is_ok()) return s;
  if (samples.empty()) return error(Code::kInvalidArgument, "no samples to analyze: the gate set is empty");
  const double t0 = now_seconds();
  std::vector<CheckedGate> items(samples.size());
  for (size_t i = 0; i < samples.size(); ++i) items[i].sample = std::move(samples[i]);
  check_all(items, opt.certify, opt.threads);

  ConstraintReport r;
  r.samples = long(items.size());
  r.margin = opt.margin;
  r.range = opt.sampling.range;
  long worst_frozen = -1, worst_gamma = -1, deepest = -1;
  std::vector<long> refuted, undecided;
  for (size_t i = 0; i < items.size(); ++i) {
    const CheckedGate& c = items[i];
    const Gates& g = c.sample.mapped.gates;
    r.reachable.add(g);
    const bool inside = c.depth >= opt.margin;
    const int ri = c.sample.range == SampleRange::kWide ? 1 : 0, ki = int(c.sample.kind);
    if (!c.status.is_ok()) {
      if (r.first_failure.empty())
        r.first_failure = fmt::format("sample {} (alpha={:.17g} beta={:.17g} mu={:.17g} eta={:.17g}): {}", i, g.alpha,
                                      g.beta, g.mu, g.eta, c.status.message);
      ++r.all.failed;
      ++r.by_range[ri].failed;
      ++r.by_kind[ki].failed;
      if (inside) ++r.inside_margin.failed;
      continue;
    }
    const Certificate& ce = c.cert;
    r.all.add(ce.verdict);
    r.by_range[ri].add(ce.verdict);
    r.by_kind[ki].add(ce.verdict);
    if (inside) {
      r.inside_margin.add(ce.verdict);
      r.worst_gamma_inside_margin = std::max(r.worst_gamma_inside_margin, ce.upper_bound);
    }
    if (worst_frozen < 0 || ce.frozen_spectral_radius > r.worst_frozen_rho) {
      r.worst_frozen_rho = ce.frozen_spectral_radius;
      worst_frozen = long(i);
    }
    if (worst_gamma < 0 || ce.upper_bound > r.worst_gamma) {
      r.worst_gamma = ce.upper_bound;
      worst_gamma = long(i);
    }
    if (ce.verdict == Verdict::kCertified) r.worst_certified_gamma = std::max(r.worst_certified_gamma, ce.upper_bound);
    if (ce.verdict == Verdict::kRefuted) {
      refuted.push_back(long(i));
      if (inside) r.refuted_region.add(g);
      for (int k = 0; k < 4; ++k) r.refuted_deeper_than[k] += c.depth >= kDepthThresholds[k];
      if (deepest < 0 || std::make_pair(c.depth, c.cert.lower_bound) >
                             std::make_pair(items[size_t(deepest)].depth, items[size_t(deepest)].cert.lower_bound))
        deepest = long(i);
    }
    if (ce.verdict == Verdict::kUndecided) undecided.push_back(long(i));
  }
  auto top = [&](std::vector<long>& idx, auto key) {
    const size_t k = std::min(idx.size(), size_t(opt.top));
    std::partial_sort(idx.begin(), idx.begin() + long(k), idx.end(), [&](long a, long b) {
      return std::make_tuple(key(items[size_t(a)]), -a) > std::make_tuple(key(items[size_t(b)]), -b);
    });
    idx.resize(k);
  };
  // Counterexamples inside the margin first (those at the saturated edge, alpha
  // or mu = 1 in double, are refuted by rounding-level growth), then by growth.
  top(refuted, [&](const CheckedGate& c) { return std::make_pair(c.depth >= opt.margin, c.cert.lower_bound); });
  top(undecided, [](const CheckedGate& c) { return c.cert.upper_bound; });
  for (long i : refuted) {
    r.counterexamples.push_back(items[size_t(i)]);
    replay(r.counterexamples.back());
  }
  for (long i : undecided) r.undecided.push_back(items[size_t(i)]);
  if (deepest >= 0) {
    r.deepest_refuted = items[size_t(deepest)];
    replay(r.deepest_refuted);
  }
  if (worst_frozen >= 0) r.worst_frozen = items[size_t(worst_frozen)];
  if (worst_gamma >= 0) r.worst_gamma_sample = items[size_t(worst_gamma)];
  r.seconds = now_seconds() - t0;
  if (keep) *keep = std::move(items);
  return r;
}

Result<ConstraintReport> analyze_parametrization(Parametrization p, const ParamConfig& c,
                                                 const ConstraintOptions& opt, std::vector<CheckedGate>* keep) {
  if (Status s = check_options(opt); !s.is_ok()) return s;
  const double t0 = now_seconds();
  SamplingOptions so = opt.sampling;
  if (so.threads == 0) so.threads = opt.threads;
  auto samples = sample_reachable_gates(p, c, so);
  if (!samples.is_ok()) return samples.status;
  auto r = analyze_samples(std::move(samples.value), opt, keep);
  if (!r.is_ok()) return r;
  r.value.param = p;
  r.value.config = c;
  r.value.seconds = now_seconds() - t0;
  return r;
}

Result<DumpReport> analyze_dump(const GateDump& d, const ConstraintOptions& opt, std::vector<TokenCheck>* tokens) {
  if (Status s = check_options(opt); !s.is_ok()) return s;
  if (d.gates.empty() || d.heads <= 0) return error(Code::kInvalidArgument, "the gate dump is empty: nothing to certify");
  const double t0 = now_seconds();
  const size_t n = d.gates.size();
  // Tokens with equal gates are certified once: order by value, keep the distinct ones.
  auto key = [](const Gates& g) { return std::make_tuple(g.log_alpha, g.beta, g.log_mu, g.eta); };
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t(0));
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return key(d.gates[a]) < key(d.gates[b]); });
  std::vector<CheckedGate> distinct;
  std::vector<size_t> which(n);  // token -> index into distinct
  for (size_t k = 0; k < n; ++k) {
    const Gates& g = d.gates[order[k]];
    if (distinct.empty() || key(distinct.back().sample.mapped.gates) != key(g)) {
      distinct.emplace_back();
      distinct.back().sample.mapped.gates = g;
    }
    which[order[k]] = distinct.size() - 1;
  }
  check_all(distinct, opt.certify, opt.threads);

  DumpReport r;
  r.batch = d.batch;
  r.time = d.time;
  r.heads = d.heads;
  r.format = d.format;
  r.heads_report.resize(size_t(d.heads));
  // Per head: its distinct gates as one time-varying set, and its tokens' verdicts.
#pragma omp parallel for schedule(dynamic, 1) num_threads(thread_count(opt.threads))
  for (int64_t h = 0; h < d.heads; ++h) {
    DumpHeadReport& hr = r.heads_report[size_t(h)];
    hr.head = h;
    std::vector<size_t> ids;
    std::vector<TokenCheck> flagged_ref, flagged_und;
    for (int64_t b = 0; b < d.batch; ++b)
      for (int64_t t = 0; t < d.time; ++t) {
        const size_t i = size_t((b * d.time + t) * d.heads + h);
        const CheckedGate& c = distinct[which[i]];
        ++hr.tokens;
        hr.ranges.add(d.gates[i]);
        ids.push_back(which[i]);
        if (!c.status.is_ok()) {
          ++hr.token_verdicts.failed;
          continue;
        }
        hr.token_verdicts.add(c.cert.verdict);
        hr.worst_token_gamma = std::max(hr.worst_token_gamma, c.cert.upper_bound);
        if (c.cert.verdict == Verdict::kRefuted) flagged_ref.push_back({b, t, h, c});
        if (c.cert.verdict == Verdict::kUndecided) flagged_und.push_back({b, t, h, c});
      }
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    hr.distinct = long(ids.size());
    std::vector<Gates> set;
    set.reserve(ids.size());
    for (size_t id : ids) set.push_back(distinct[id].sample.mapped.gates);
    auto sc = certify(set, opt.certify);
    if (sc.is_ok()) hr.set_cert = std::move(sc.value);
    else hr.set_status = sc.status;
    // Refuted tokens by witness growth, then undecided ones by gamma; ties by position.
    std::stable_sort(flagged_ref.begin(), flagged_ref.end(), [](const TokenCheck& a, const TokenCheck& b) {
      return a.check.cert.lower_bound > b.check.cert.lower_bound;
    });
    std::stable_sort(flagged_und.begin(), flagged_und.end(), [](const TokenCheck& a, const TokenCheck& b) {
      return a.check.cert.upper_bound > b.check.cert.upper_bound;
    });
    for (auto* list : {&flagged_ref, &flagged_und})
      for (TokenCheck& tc : *list)
        if (hr.flagged.size() < size_t(opt.top)) hr.flagged.push_back(std::move(tc));
    for (TokenCheck& tc : hr.flagged) replay(tc.check);
  }
  for (const DumpHeadReport& hr : r.heads_report) {
    r.token_verdicts.certified += hr.token_verdicts.certified;
    r.token_verdicts.refuted += hr.token_verdicts.refuted;
    r.token_verdicts.undecided += hr.token_verdicts.undecided;
    r.token_verdicts.failed += hr.token_verdicts.failed;
  }
  if (tokens) {
    tokens->clear();
    tokens->reserve(n);
    for (size_t i = 0; i < n; ++i) {
      const int64_t h = int64_t(i) % d.heads, t = int64_t(i) / d.heads % d.time, b = int64_t(i) / d.heads / d.time;
      tokens->push_back({b, t, h, distinct[which[i]]});
    }
  }
  r.seconds = now_seconds() - t0;
  return r;
}

Result<std::vector<HeadConstraint>> analyze_checkpoint(const Checkpoint& ck, Parametrization p,
                                                       const ConstraintOptions& opt) {
  if (Status s = check_options(opt); !s.is_ok()) return s;
  std::vector<HeadConstraint> out;
  for (size_t i = 0; i < ck.layers.size(); ++i)
    for (size_t h = 0; h < ck.layers[i].size(); ++h) {
      ConstraintOptions o = opt;
      o.sampling.head = ck.layers[i][h];
      auto r = analyze_parametrization(p, ck.config, o);
      if (!r.is_ok()) return error(r.status.code, fmt::format("layer {} head {}: {}", i, h, r.status.message));
      out.push_back({int(i), int(h), ck.layers[i][h], std::move(r.value)});
    }
  return out;
}

Verdict margin_verdict(const ConstraintReport& r) {
  const VerdictCounts& in = r.inside_margin;
  if (in.refuted > 0) return Verdict::kRefuted;
  if (in.undecided > 0 || in.failed > 0 || in.total() == 0) return Verdict::kUndecided;
  return Verdict::kCertified;
}

std::string describe_reachable_set(Parametrization p, const ParamConfig& c) {
  const std::string mu = std::isinf(c.min_log_mu)
                             ? std::string("mu in (0, 1) (no min_log_mu clamp)")
                             : fmt::format("mu in [exp({:g}), 1) = [{:.4g}, 1)", c.min_log_mu, std::exp(c.min_log_mu));
  switch (p) {
    case Parametrization::kMdn:
      return "alpha = cos^2(theta) alpha', beta = sin^2(theta) beta' with tan(theta) = eta exp(log_factor) and "
             "alpha', beta' in (0, 1), so alpha <= 1/(1 + (eta exp(log_factor))^2), beta <= 1 - that, alpha + beta < 1; " +
             mu + "; eta in (0, 2)";
    case Parametrization::kMdnUnconstrained:
      return "alpha, beta in (0, 1) independently (alpha + beta up to 2); " + mu + "; eta in (0, 2)";
    case Parametrization::kGdn:
      return "alpha in (0, 1), beta in (0, 1), mu = 0, eta = 1 (beta*eta = beta is the delta-rule step)";
  }
  return "";
}

}  // namespace mdnstab
