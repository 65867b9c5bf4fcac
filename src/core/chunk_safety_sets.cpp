// Chunk safety of gate sets: a parametrization's samples, a gate dump (per
// token and per actual chunk) and a checkpoint's heads (chunk_safety.hpp).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "mdnstab/chunk_safety.hpp"

namespace mdnstab {

namespace {

// K_t of every token of the dump (key_memory_along each row), in d.gates' order.
std::vector<double> token_memory(const GateDump& d, const ChunkRuleOptions& o, int threads) {
  std::vector<double> k(d.gates.size());
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int64_t row = 0; row < d.batch * d.heads; ++row) {
    const int64_t b = row / d.heads, h = row % d.heads;
    std::vector<double> r(size_t(d.time));
    for (int64_t t = 0; t < d.time; ++t) r[size_t(t)] = key_growth(d.at(b, t, h), o);
    const std::vector<double> kt = key_memory_along(r);
    for (int64_t t = 0; t < d.time; ++t) k[size_t((b * d.time + t) * d.heads + h)] = kt[size_t(t)];
  }
  return k;
}

// The rule's risk of the dump's chunk [t0, t0 + len) of row (b, h) (cut at the end),
// with the largest K_t of its tokens (memory: token_memory(d, o)).
ChunkRisk dump_chunk_risk(const GateDump& d, std::span<const double> memory, int64_t b, int64_t h, int64_t t0,
                          int64_t len, Precision p, const ChunkRuleOptions& o) {
  std::vector<double> la, lm, beta;
  double k = 0;
  for (int64_t t = t0; t < std::min<int64_t>(d.time, t0 + len); ++t) {
    const Gates& g = d.at(b, t, h);
    la.push_back(g.log_alpha), lm.push_back(g.log_mu), beta.push_back(g.beta);
    k = std::max(k, memory[size_t((b * d.time + t) * d.heads + h)]);
  }
  return chunk_risk(la, lm, beta, k, p, o);
}

int pow2_floor(int c) {
  int p = 0;
  for (int k = 1; k <= c && k > 0; k *= 2) p = k;
  return p;
}

}  // namespace

SafeVerdictCheck check_safe_verdicts(std::span<const Gates> gates, int C, Precision p, const ChunkRuleOptions& o,
                                     const ChunkInputs& in, long n, uint64_t seed, int threads) {
  SafeVerdictCheck r;
  r.chunk = C;
  std::vector<long> safe;
  for (long i = 0; i < long(gates.size()); ++i)
    if (chunk_safe(gates[size_t(i)], C, p, o)) safe.push_back(i);
  r.safe = long(safe.size());
  if (n < r.safe) {  // the first n of a seeded shuffle, back in index order
    std::mt19937_64 rng(seed);
    std::shuffle(safe.begin(), safe.end(), rng);
    safe.resize(size_t(std::max(n, 0L)));
    std::sort(safe.begin(), safe.end());
  }
  r.checked = long(safe.size());
  r.samples.resize(safe.size());
  const int nt = threads > 0 ? threads : omp_get_num_procs();
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
  for (long k = 0; k < long(safe.size()); ++k) {
    SafeVerdictCheck::Sample& x = r.samples[size_t(k)];
    x.index = safe[size_t(k)];
    const Gates& g = gates[size_t(x.index)];
    x.error = measure_chunk_error(g, in, C, p, o.beta_eps);
    if (!x.error.reference_finite || !x.error.broken(o.tol)) continue;
    x.left_out = C == 1 || measure_chunk_error(g, in, 1, p, o.beta_eps).broken(o.tol);
    x.broken = !x.left_out;
  }
  for (const SafeVerdictCheck::Sample& x : r.samples) {
    if (!x.error.reference_finite) continue;
    ++r.judged;
    r.left_out += x.left_out;
    if (x.left_out) continue;
    r.broken += x.broken;
    const double e = x.error.finite ? x.error.rel_rms : std::numeric_limits<double>::infinity();
    if (r.worst < 0 || e > r.max_error) r.max_error = e, r.worst = x.index;
  }
  return r;
}

GateSetChunkSafety analyze_chunk_safety(std::span<const Gates> gates, int C, Precision p, const ChunkRuleOptions& o,
                                        int threads) {
  GateSetChunkSafety r;
  r.gates = long(gates.size());
  r.at.chunk = C;
  std::vector<int> sizes(std::begin(kReportedChunks), std::end(kReportedChunks));
  const size_t ns = sizes.size();
  sizes.push_back(C);
  const int nt = threads > 0 ? threads : omp_get_num_procs();
  std::vector<long> unsafe(sizes.size(), 0), overflow(sizes.size(), 0);
  std::vector<double> worst_err(size_t(nt), -1);  // the largest Lambda seen per thread
  std::vector<long> worst_idx(size_t(nt), -1);
#pragma omp parallel num_threads(nt)
  {
    std::vector<long> u(sizes.size(), 0), ov(sizes.size(), 0);
    const int tid = omp_get_thread_num();
#pragma omp for schedule(dynamic, 256)
    for (long i = 0; i < long(gates.size()); ++i) {
      const double memory = key_memory(key_growth(gates[size_t(i)], o), o.steps);
      for (size_t k = 0; k < sizes.size(); ++k) {
        const ChunkRisk risk = chunk_risk(gates[size_t(i)], sizes[k], p, o, memory);
        if (!chunk_safe(risk, o.tol)) ++u[k];
        if (risk.overflow) ++ov[k];
        if (k == ns && risk.log_cancellation > worst_err[size_t(tid)]) {
          worst_err[size_t(tid)] = risk.log_cancellation;
          worst_idx[size_t(tid)] = i;
        }
      }
    }
#pragma omp critical(chunk_set_counts)
    for (size_t k = 0; k < sizes.size(); ++k) unsafe[k] += u[k], overflow[k] += ov[k];
  }
  for (size_t k = 0; k < ns; ++k) r.by_chunk.push_back({sizes[k], unsafe[k], overflow[k]});
  r.at = {C, unsafe[ns], overflow[ns]};
  for (int t = 0; t < nt; ++t)
    if (worst_idx[size_t(t)] >= 0 && (r.worst < 0 || worst_err[size_t(t)] > r.worst_risk.log_cancellation ||
                                      (worst_err[size_t(t)] == r.worst_risk.log_cancellation &&
                                       worst_idx[size_t(t)] < r.worst))) {
      r.worst = worst_idx[size_t(t)];
      r.worst_risk = chunk_risk(gates[size_t(r.worst)], C, p, o);
    }
  r.largest_safe_chunk = largest_safe_chunk(gates, p, o);
  r.largest_safe_pow2 = pow2_floor(r.largest_safe_chunk);
  return r;
}

Result<DumpChunkSafety> analyze_chunk_safety(const GateDump& d, int C, Precision p, const ChunkRuleOptions& o,
                                             int threads) {
  if (C < 1 || C > kMaxChunk)
    return error(Code::kInvalidArgument, fmt::format("chunk size C = {} must be in [1, {}]", C, kMaxChunk));
  if (d.gates.empty()) return error(Code::kInvalidArgument, "the gate dump is empty");
  DumpChunkSafety r;
  r.tokens = analyze_chunk_safety(d.gates, C, p, o, threads);
  const int nt = threads > 0 ? threads : omp_get_num_procs();
  const std::vector<double> memory = token_memory(d, o, nt);
  // The dump's own chunks at size c: counts, and the worst one.
  struct Scan {
    long chunks = 0, unsafe = 0, overflow = 0, tokens_unsafe = 0;
    double worst = -1;
    int64_t b = -1, t = -1, h = -1;
  };
  auto scan = [&](int c) {
    Scan total;
    const int64_t rows = d.batch * d.heads;
#pragma omp parallel num_threads(nt)
    {
      Scan s;
#pragma omp for schedule(dynamic, 1)
      for (int64_t row = 0; row < rows; ++row) {
        const int64_t b = row / d.heads, h = row % d.heads;
        for (int64_t t0 = 0; t0 < d.time; t0 += c) {
          const int64_t t1 = std::min<int64_t>(d.time, t0 + c);
          const ChunkRisk risk = dump_chunk_risk(d, memory, b, h, t0, c, p, o);
          ++s.chunks;
          if (!chunk_safe(risk, o.tol)) ++s.unsafe, s.tokens_unsafe += t1 - t0;
          if (risk.overflow) ++s.overflow;
          if (risk.predicted_error > s.worst) s.worst = risk.predicted_error, s.b = b, s.t = t0, s.h = h;
        }
      }
#pragma omp critical(chunk_dump_scan)
      {
        total.chunks += s.chunks, total.unsafe += s.unsafe, total.overflow += s.overflow;
        total.tokens_unsafe += s.tokens_unsafe;
        if (s.worst > total.worst) total.worst = s.worst, total.b = s.b, total.t = s.t, total.h = s.h;
      }
    }
    return total;
  };
  const Scan at = scan(C);
  r.chunks = at.chunks, r.unsafe_chunks = at.unsafe, r.overflow_chunks = at.overflow;
  r.tokens_in_unsafe_chunks = at.tokens_unsafe;
  r.worst_b = at.b, r.worst_t = at.t, r.worst_h = at.h;
  if (at.b >= 0) r.worst_risk = dump_chunk_risk(d, memory, at.b, at.h, at.t, C, p, o);
  // Powers of two up to the sequence: the risk of a chunk grows with its length.
  for (int c = 1; c <= std::min<int64_t>(d.time, kMaxChunk); c *= 2) {
    if (scan(c).unsafe > 0) break;
    r.largest_safe_pow2 = c;
  }
  return r;
}

Result<DumpChunkCheck> check_dump_chunks(const GateDump& d, int C, Precision p, const ChunkRuleOptions& o,
                                         const ChunkInputs& in, int threads, double max_seconds) {
  const int64_t c_top = std::min<int64_t>(d.time, kMaxChunk);
  if (C < 1 || C > c_top)
    return error(Code::kInvalidArgument, fmt::format("chunk size C = {} must be in [1, {}]", C, c_top));
  if (in.steps != d.time)
    return error(Code::kInvalidArgument,
                 fmt::format("the emulation's inputs have {} tokens, the dump's sequences {}", in.steps, d.time));
  if (d.gates.empty()) return error(Code::kInvalidArgument, "the gate dump is empty");
  const int nt = threads > 0 ? threads : omp_get_num_procs();
  const int64_t rows = d.batch * d.heads;
  if (Status s = check_memory(emulation_bytes(d.time, in.dk, in.dv, int(c_top), nt), "--dk or --dv"); !s.is_ok())
    return s;
  {  // the worst case: C and every power of two up to c_top, each row once
    ChunkMapSpec one;
    one.steps = int(d.time), one.dk = in.dk, one.dv = in.dv, one.precision = p;
    double secs = 0;
    for (int64_t c = 1; c <= c_top; c *= 2) one.chunk = int(c), secs += estimate_seconds(one, nt);
    one.chunk = C;
    secs = double(rows) * (secs + estimate_seconds(one, nt));
    if (secs > max_seconds)
      return error(Code::kTooLarge,
                   fmt::format("--check of the dump's {} sequences of {} tokens could take up to about {:.3g} hours on "
                               "{} threads, over the {:.3g} hour limit (lower --dk or --dv, or raise --max-hours)",
                               rows, d.time, secs / 3600, nt, max_seconds / 3600));
  }
  DumpChunkCheck r;
  r.chunk = C;
  r.sequences.resize(size_t(rows));
  const std::vector<double> memory = token_memory(d, o, nt);
  auto measure = [&](int64_t row, int c) {
    const int64_t b = row / d.heads, h = row % d.heads;
    std::vector<double> la, lm, beta, eta;
    for (int64_t t = 0; t < d.time; ++t) {
      const Gates& g = d.at(b, t, h);
      la.push_back(g.log_alpha), lm.push_back(g.log_mu), beta.push_back(g.beta), eta.push_back(g.eta);
    }
    return measure_chunk_error(std::move(la), std::move(lm), std::move(beta), std::move(eta), d.at(b, 0, h).p_scale,
                               in, c, p, o.beta_eps);
  };
  auto judged_broken = [&](const ChunkError& e) { return e.reference_finite && e.broken(o.tol); };
  // At C: the measured verdict and the rule's (any of the row's chunks unsafe).
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
  for (int64_t row = 0; row < rows; ++row) {
    DumpSequenceCheck& q = r.sequences[size_t(row)];
    q.batch = row / d.heads, q.head = row % d.heads;
    q.error = measure(row, C);
    q.broken = judged_broken(q.error);
    for (int64_t t0 = 0; t0 < d.time && q.rule_safe; t0 += C)
      q.rule_safe = chunk_safe(dump_chunk_risk(d, memory, q.batch, q.head, t0, C, p, o), o.tol);
  }
  r.emulations = rows;
  std::vector<int64_t> scan;  // the judged rows the power-of-two scan follows
  for (const DumpSequenceCheck& q : r.sequences) {
    if (!q.error.reference_finite) continue;
    ++r.judged;
    r.broken += q.broken;
    r.rule_unsafe += !q.rule_safe;
    r.agree += q.broken == !q.rule_safe;
    r.false_safe += q.broken && q.rule_safe;
    if (!q.broken) r.max_error_unbroken = std::max(r.max_error_unbroken, q.error.rel_rms);
    scan.push_back(q.batch * d.heads + q.head);
  }
  // Powers of two upward while every row scanned is unbroken (safety falls with C); at
  // C = 1 the rows broken are left out, by cause. A pass at C reuses the verdicts above.
  std::vector<char> ok(static_cast<size_t>(rows));
  std::vector<BrokenCause> why(static_cast<size_t>(rows), BrokenCause::kErred);
  for (int64_t c = 1; c <= c_top && !scan.empty(); c *= 2) {
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (size_t i = 0; i < scan.size(); ++i) {
      const int64_t row = scan[i];
      const ChunkError e = c == C ? r.sequences[size_t(row)].error : measure(row, int(c));
      ok[size_t(row)] = !judged_broken(e);
      if (c == 1 && !ok[size_t(row)]) why[size_t(row)] = broken_cause(e, p);
    }
    if (c != C) r.emulations += long(scan.size());
    if (c == 1) {
      std::vector<int64_t> kept;
      for (int64_t row : scan) {
        if (ok[size_t(row)]) {
          kept.push_back(row);
          continue;
        }
        ++r.left_out;
        r.overflow += why[size_t(row)] == BrokenCause::kOverflow;
        r.underflow += why[size_t(row)] == BrokenCause::kUnderflow;
      }
      scan = kept;
      if (scan.empty()) break;
    } else if (std::any_of(scan.begin(), scan.end(), [&](int64_t row) { return !ok[size_t(row)]; })) {
      break;
    }
    r.largest_safe_pow2 = int(c);
  }
  return r;
}

Result<std::vector<HeadChunkSafety>> analyze_chunk_safety(const Checkpoint& ck, Parametrization param,
                                                          const SamplingOptions& sampling, int C, Precision p,
                                                          const ChunkRuleOptions& o, const ChunkInputs* check) {
  std::vector<HeadChunkSafety> out;
  for (size_t l = 0; l < ck.layers.size(); ++l)
    for (size_t h = 0; h < ck.layers[l].size(); ++h) out.push_back({int(l), int(h), ck.layers[l][h], {}, {}, {}});
  // Each head on one thread where there are heads enough to share the cores (a head's
  // emulations come in small batches that leave cores idle); else each head on all.
  // Every result is the same on any number of threads either way.
  const int nt = sampling.threads > 0 ? sampling.threads : omp_get_num_procs();
  const bool per_head = long(out.size()) >= 2L * nt;
  const int inner = per_head ? 1 : sampling.threads;
  std::vector<Status> status(out.size());
#pragma omp parallel for num_threads(per_head ? nt : 1) schedule(dynamic, 1)
  for (long i = 0; i < long(out.size()); ++i) {
    HeadChunkSafety& r = out[size_t(i)];
    SamplingOptions so = sampling;
    so.head = r.params;
    so.threads = inner;
    auto samples = sample_reachable_gates(param, ck.config, so);
    if (!samples.is_ok()) {
      status[size_t(i)] = error(samples.status.code,
                                fmt::format("layer {} head {}: {}", r.layer, r.head, samples.status.message));
      continue;
    }
    std::vector<Gates> g;
    g.reserve(samples.value.size());
    for (const SampledGate& s : samples.value) g.push_back(s.mapped.gates);
    r.safety = analyze_chunk_safety(g, C, p, o, inner);
    if (check) {
      r.checked = largest_safe_chunk_checked(g, p, o, *check, kMaxChunk, inner);
      r.gates = std::move(g);
    }
  }
  for (const Status& st : status)  // the first failing head, in order
    if (!st.is_ok()) return st;
  return out;
}

}  // namespace mdnstab
