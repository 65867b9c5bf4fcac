// `mdnstab chunk-safety`: where the paper's reordered chunkwise algorithm breaks
// (DESIGN.md section 5). Grid mode: the emulated chunk output (chunk_ref) against
// the fp64 recurrence over a grid of gates, to CSV, with the broken region and the
// agreement of the predictive rule (chunk_safety.hpp). --param / --checkpoint: the
// rule over a parametrization's samples, a gate dump or a checkpoint's heads.
// Tested in tests/cli/test_cli_chunk_safety.cpp.
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>

#include <fmt/format.h>

#include "app.hpp"
#include "mdnstab/atomic_file.hpp"
#include "mdnstab/chunk_safety.hpp"
#include "mdnstab/gate_dump.hpp"
#include "mdnstab/parametrization.hpp"
#include "mdnstab/sampling.hpp"

namespace mdnstab::cli {

namespace {

struct ChunkSafetyOptions {
  int chunk = 64;
  std::string precision = "fp32";
  std::vector<std::string> axes, fixed;
  std::optional<double> beta, eta;
  std::string p_scale = "alpha";
  int dk = 64, dv = 64, steps = 1024;
  uint64_t seed = 0;
  double tol = kChunkTolerance;
  double beta_eps = 0;
  int threads = 0;
  double max_hours = 12;
  std::string out;
  // --param / --checkpoint mode
  std::string param, checkpoint, model = "400M", range = "both";
  std::optional<double> min_log_mu, tau_factor;
  std::optional<int> hidden_size;
  std::optional<long> samples;
  bool check = false;  // the rule's unsafe verdicts that decide the largest C, checked by emulation
};

nlohmann::json point_json(const ChunkMapPoint& p) {
  return {{"gates", gates_json(p.gates)},
          {"rel_error", number_or_null(p.error.rel_rms)},
          {"finite", p.error.finite},
          {"broken", p.broken},
          {"predicted_error", p.risk.predicted_error},
          {"log_cancellation", number_or_null(p.risk.log_cancellation)},
          {"max_exponent", number_or_null(p.risk.max_exponent)},
          {"rule_safe", !p.predicted}};
}

std::string gate_text(const ChunkMapSpec& spec, const Gates& g) {
  std::string s;
  for (const Axis& a : spec.axes) {
    double v = 0;
    if (a.name == "alpha") v = g.alpha;
    if (a.name == "log_alpha") v = g.log_alpha;
    if (a.name == "mu") v = g.mu;
    if (a.name == "log_mu") v = g.log_mu;
    if (a.name == "beta") v = g.beta;
    if (a.name == "eta") v = g.eta;
    s += fmt::format("{}{}={}", s.empty() ? "" : " ", a.name, num(v));
  }
  return s;
}

// One character per point: '.' fine, 'x' wrong, 'N' not finite, '-' no reference;
// '!' broken although the rule said safe, '~' fine although the rule said unsafe.
char map_char(const ChunkMapPoint& p) {
  if (!p.error.reference_finite) return '-';
  if (p.broken != p.predicted) return p.broken ? '!' : '~';
  if (!p.broken) return '.';
  return p.error.finite ? 'x' : 'N';
}

void print_map(const ChunkMapSpec& spec, const ChunkMapSummary& s) {
  const long n0 = spec.axes[0].n, n1 = spec.axes.size() > 1 ? spec.axes[1].n : 1;
  const long step0 = (n0 + 47) / 48, step1 = (n1 + 71) / 72;  // fit a terminal
  if (spec.axes.size() == 1) {
    fmt::print("  map over {} from {} to {}:\n    ", spec.axes[0].name, num(spec.axes[0].start),
               num(spec.axes[0].stop));
    for (long i = 0; i < n0; i += step0) fmt::print("{}", map_char(s.points_list[size_t(i)]));
    fmt::print("\n");
    return;
  }
  fmt::print("  map: rows {} from {} (top) to {}, columns {} from {} to {}{}:\n", spec.axes[0].name,
             num(spec.axes[0].start), num(spec.axes[0].stop), spec.axes[1].name, num(spec.axes[1].start),
             num(spec.axes[1].stop), step0 > 1 || step1 > 1 ? " (subsampled)" : "");
  for (long i = 0; i < n0; i += step0) {
    fmt::print("    ");
    for (long j = 0; j < n1; j += step1) fmt::print("{}", map_char(s.points_list[size_t(i * n1 + j)]));
    fmt::print("\n");
  }
  fmt::print("    . fine  x wrong  N not finite  ! broke where the rule said safe  ~ fine where it said unsafe\n");
}

// ---------- --param / --checkpoint ----------

nlohmann::json counts_json(const GateSetChunkSafety& s) {
  const double n = std::max<double>(double(s.gates), 1.0);
  nlohmann::json by = nlohmann::json::array();
  for (const ChunkCount& c : s.by_chunk)
    by.push_back({{"chunk", c.chunk}, {"fraction_unsafe", double(c.unsafe) / n}, {"fraction_overflow", double(c.overflow) / n}});
  return {{"gates", s.gates},
          {"unsafe", s.at.unsafe},
          {"overflow", s.at.overflow},
          {"fraction_unsafe", double(s.at.unsafe) / n},
          {"fraction_overflow", double(s.at.overflow) / n},
          {"by_chunk", by},
          {"largest_safe_chunk", s.largest_safe_chunk},
          {"largest_safe_pow2", s.largest_safe_pow2}};
}

nlohmann::json checked_json(const CheckedSafeChunk& c, const ChunkInputs& in) {
  return {{"largest_safe_chunk", c.judged ? nlohmann::json(c.largest) : nlohmann::json(nullptr)},
          {"judged", c.judged},
          {"left_out", c.unrepresentable},
          {"left_out_overflow", c.overflow},
          {"left_out_underflow", c.underflow},
          {"emulations", c.emulations},
          {"dk", in.dk},
          {"dv", in.dv},
          {"steps", in.steps}};
}

// Why the left-out gate sets (`total` of them) are broken even at C = 1.
std::string left_out_causes(long total, long overflow, long underflow, Precision p) {
  const long erred = total - overflow - underflow;
  std::string why;
  if (overflow) why += fmt::format(", {} with outputs not finite in {} (inf or NaN)", overflow, to_string(p));
  if (underflow) why += fmt::format(", {} with outputs below {}'s smallest normal value", underflow, to_string(p));
  if (erred) why += fmt::format(", {} with {}'s arithmetic off by more than the tolerance", erred, to_string(p));
  return why;
}
std::string left_out_causes(const CheckedSafeChunk& c, Precision p) {
  return left_out_causes(c.unrepresentable, c.overflow, c.underflow, p);
}

void print_dump_check(const DumpChunkCheck& c, const ChunkInputs& in, double tol, Precision p) {
  const long rows = long(c.sequences.size());
  fmt::print("  checked by emulation:   at C = {}, {} of {} sequences (batch x head) broken (error above {}), {} unsafe "
             "by the rule: they agree on {} of {}, {} broken where the rule said safe{}{}\n",
             c.chunk, c.broken, c.judged, num(tol), c.rule_unsafe, c.agree, c.judged, c.false_safe,
             c.judged > c.broken ? fmt::format("; largest error where unbroken {}", num(c.max_error_unbroken))
                                 : std::string(),
             c.judged < rows ? fmt::format(" ({} not judged: the fp64 recurrence itself overflows)", rows - c.judged)
                             : std::string());
  const std::string left =
      c.left_out ? fmt::format(" ({} left out: broken even at C = 1{})", c.left_out,
                               left_out_causes(c.left_out, c.overflow, c.underflow, p))
                 : std::string();
  fmt::print("                          largest power-of-two C with every sequence unbroken: {}{}; {} emulated passes "
             "on random q, k, v with DK = {}, DV = {}, T = {} (the dump's length)\n",
             c.judged > c.left_out ? std::to_string(c.largest_safe_pow2) : std::string("none judged"), left,
             c.emulations, in.dk, in.dv, in.steps);
}

nlohmann::json spot_json(const SafeVerdictCheck& s) {
  return {{"chunk", s.chunk},
          {"rule_safe", s.safe},
          {"checked", s.checked},
          {"judged", s.judged},
          {"left_out", s.left_out},
          {"broken", s.broken},
          {"max_error", s.worst >= 0 ? number_or_null(s.max_error) : nlohmann::json(nullptr)}};
}

std::string checked_text(const CheckedSafeChunk& c, const ChunkInputs& in, Precision p) {
  const std::string how = fmt::format("{} emulated passes on random q, k, v with DK = {}, DV = {}, T = {}",
                                      c.emulations, in.dk, in.dv, in.steps);
  if (!c.judged)
    return fmt::format("none judged: all {} gate sets are broken even at C = 1{} ({})", c.unrepresentable,
                       left_out_causes(c, p), how);
  return fmt::format("{} for the {} gate sets not left out ({} left out: broken even at C = 1{}); {}", c.largest,
                     c.judged, c.unrepresentable, left_out_causes(c, p), how);
}

nlohmann::json dump_check_json(const DumpChunkCheck& c, const ChunkInputs& in) {
  nlohmann::json rows = nlohmann::json::array();
  auto num_or_null = [](double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr); };
  for (const DumpSequenceCheck& q : c.sequences)
    rows.push_back({{"batch", q.batch}, {"head", q.head}, {"rel_error", num_or_null(q.error.rel_rms)},
                    {"finite", q.error.finite}, {"reference_finite", q.error.reference_finite},
                    {"rule_safe", q.rule_safe}, {"broken", q.broken}});
  const bool any = c.judged > c.left_out;
  return {{"chunk", c.chunk}, {"judged", c.judged}, {"broken", c.broken}, {"rule_unsafe", c.rule_unsafe},
          {"rule_agreement", c.judged ? nlohmann::json(double(c.agree) / double(c.judged)) : nlohmann::json(nullptr)},
          {"false_safe", c.false_safe},
          {"max_error_unbroken", c.judged > c.broken ? nlohmann::json(c.max_error_unbroken) : nlohmann::json(nullptr)},
          {"largest_safe_pow2", any ? nlohmann::json(c.largest_safe_pow2) : nlohmann::json(nullptr)},
          {"left_out", c.left_out}, {"left_out_overflow", c.overflow}, {"left_out_underflow", c.underflow},
          {"emulations", c.emulations}, {"dk", in.dk}, {"dv", in.dv}, {"steps", in.steps}, {"sequences", rows}};
}

std::string pct(long k, long n) { return fmt::format("{:.3g}%", 100.0 * double(k) / std::max<double>(double(n), 1.0)); }

void print_counts(const GateSetChunkSafety& s, const char* what, Precision p) {
  fmt::print("  unsafe at C = {}:       {} of {} {} ({}), {} with an overflowing exponent (inf/NaN)\n", s.at.chunk,
             s.at.unsafe, s.gates, what, pct(s.at.unsafe, s.gates), pct(s.at.overflow, s.gates));
  std::string by;
  for (const ChunkCount& c : s.by_chunk) by += fmt::format("  C={}: {}", c.chunk, pct(c.unsafe, s.gates));
  fmt::print("  unsafe by chunk size:  {}\n", by);
  if (s.largest_safe_chunk == 0)
    fmt::print("  largest safe C:         none: some gates are unsafe even at C = 1 in {}\n", to_string(p));
  else
    fmt::print("  largest safe C:         {} (power of two: {}) for every one of them, by the rule\n",
               s.largest_safe_chunk, s.largest_safe_pow2);
}

std::string gates_text(const Gates& g) {
  return fmt::format("log_alpha={} log_mu={} beta={} eta={}", num(g.log_alpha), num(g.log_mu), num(g.beta),
                     num(g.eta));
}

std::string spot_text(const SafeVerdictCheck& s, const std::vector<Gates>& gates) {
  std::string t = fmt::format("at C = {}, {} of the {} gate sets the rule calls safe emulated: {} broken", s.chunk,
                              s.checked, s.safe, s.broken);
  if (s.left_out) t += fmt::format(", {} left out (broken even at C = 1)", s.left_out);
  if (s.worst >= 0) t += fmt::format(", largest error {}", num(s.max_error));
  if (s.broken) t += fmt::format(" (at {}: the figure above is too large)", gates_text(gates[size_t(s.worst)]));
  return t;
}

ChunkRuleOptions rule_options(const ChunkSafetyOptions& o) {
  ChunkRuleOptions r;
  r.tol = o.tol;
  r.steps = o.steps;
  r.dk = o.dk;
  r.beta_eps = o.beta_eps;
  return r;
}

int run_param_mode(const ChunkSafetyOptions& o, const App& app) {
  const auto t0 = std::chrono::steady_clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  if (!o.axes.empty() || !o.fixed.empty())
    throw UsageError("give either --axis (a measured grid) or --param/--checkpoint (the rule over gate sets), not both");
  const Precision prec = value_or_throw(parse_precision(o.precision));
  const PScale ps = resolve_p_scale(o.p_scale);
  if (o.chunk < 1 || o.chunk > kMaxChunk)
    throw UsageError(fmt::format("chunk size C = {} must be in [1, {}]", o.chunk, kMaxChunk));
  if (!(o.tol > 0) || !std::isfinite(o.tol)) throw UsageError(fmt::format("--tolerance = {} must be > 0", o.tol));
  if (o.steps < 1) throw UsageError(fmt::format("--steps = {} must be >= 1", o.steps));
  if (o.samples && (*o.samples < 1 || *o.samples > 100'000'000))
    throw UsageError(fmt::format("--samples {} must be in [1, 1e8]", *o.samples));
  if (o.threads < 0) throw UsageError(fmt::format("--threads = {} must be >= 0", o.threads));
  if (!(o.max_hours > 0)) throw UsageError(fmt::format("--max-hours = {} must be > 0", o.max_hours));
  std::optional<Parametrization> named;
  if (!o.param.empty()) {
    auto pr = parse_parametrization(o.param);
    if (pr.is_ok()) named = pr.value;
  }
  std::error_code ec;
  if (!o.param.empty() && !named && !std::filesystem::is_regular_file(o.param, ec))
    throw UsageError(fmt::format("--param '{}' is neither a parametrization (mdn, mdn-unconstrained, gdn) nor a "
                                 "readable file",
                                 o.param));
  if (!o.checkpoint.empty() && !o.param.empty() && !named)
    throw UsageError(fmt::format("--param '{}': with --checkpoint, --param names the parametrization", o.param));
  if (o.check && named == Parametrization::kGdn)
    throw UsageError(
        "--check: GDN's mu = 0 has no log, and the reordered MDN algorithm that --check emulates needs it");
  if (o.check) ok_or_throw(check_chunk_inputs(o.dk, o.dv, o.steps));  // a dump's own length: below
  if (!o.out.empty()) ok_or_throw(check_writable(o.out));
  const ChunkRuleOptions ro = rule_options(o);
  // The random q, k, v on which --check emulates (as the grid mode's).
  // (A checkpoint's heads are MDN's where --param names none.)
  const bool sampled = named || !o.checkpoint.empty();
  const ChunkInputs inputs = o.check && sampled ? random_chunk_inputs(o.dk, o.dv, o.steps, o.seed) : ChunkInputs{};
  SamplingOptions so;
  so.seed = o.seed;
  so.range = value_or_throw(parse_sample_range(o.range));
  so.p_scale = ps;
  so.threads = o.threads;
  const bool json = app.format() == Format::kJson;
  const std::string head = fmt::format("C = {}, {}, tolerance {}", o.chunk, to_string(prec), num(o.tol));

  if (!o.checkpoint.empty()) {
    CheckpointOptions co;
    co.param = named.value_or(Parametrization::kMdn);
    co.min_log_mu = o.min_log_mu;
    co.hidden_size = o.hidden_size;
    co.tau_factor = o.tau_factor;
    co.base_config = o.model;
    const Checkpoint ck = value_or_throw(read_checkpoint(o.checkpoint, co));
    so.samples = o.samples.value_or(4000);
    const auto heads =
        value_or_throw(analyze_chunk_safety(ck, co.param, so, o.chunk, prec, ro, o.check ? &inputs : nullptr));
    long gates = 0, unsafe = 0, overflow = 0;
    int largest = kMaxChunk, largest_checked = kMaxChunk;
    CheckedSafeChunk all_heads;  // over the heads, with --check: judged and the left-out counts
    for (const HeadChunkSafety& h : heads) {
      gates += h.safety.gates, unsafe += h.safety.at.unsafe, overflow += h.safety.at.overflow;
      largest = std::min(largest, h.safety.largest_safe_chunk);
      if (h.checked && h.checked->judged) largest_checked = std::min(largest_checked, h.checked->largest);
      if (h.checked) {
        all_heads.judged += h.checked->judged;
        all_heads.unrepresentable += h.checked->unrepresentable;
        all_heads.overflow += h.checked->overflow;
        all_heads.underflow += h.checked->underflow;
      }
    }
    if (heads.empty()) largest = 0;
    // The checkpoint's figure spot-checked: kSafeSpotChecks of the safe verdicts at it,
    // drawn from every head's samples together.
    std::optional<SafeVerdictCheck> spot;
    std::vector<Gates> pooled;
    if (o.check && all_heads.judged) {
      for (const HeadChunkSafety& h : heads) pooled.insert(pooled.end(), h.gates.begin(), h.gates.end());
      spot = check_safe_verdicts(pooled, largest_checked, prec, ro, inputs, kSafeSpotChecks, o.seed, o.threads);
    }
    // A head whose gate sets are all left out has no checked figure ("-", empty, null).
    auto checked_cell = [](const HeadChunkSafety& h, const char* none) {
      return h.checked->judged ? std::to_string(h.checked->largest) : std::string(none);
    };
    if (!o.out.empty()) {
      AtomicFile f;
      ok_or_throw(f.open(o.out));
      std::string buf = "layer,head,A_log,Mu_log,dt_bias,mu_bias,log_factor,samples,fraction_unsafe,fraction_overflow,"
                        "largest_safe_chunk,largest_safe_pow2";
      buf += o.check ? ",checked_safe_chunk,judged,left_out,left_out_overflow,left_out_underflow,emulations\n" : "\n";
      for (const HeadChunkSafety& h : heads) {
        buf += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{}", h.layer, h.head, h.params.A_log, h.params.Mu_log,
                           h.params.dt_bias, h.params.mu_bias, h.params.log_factor, h.safety.gates,
                           double(h.safety.at.unsafe) / double(std::max(1L, h.safety.gates)),
                           double(h.safety.at.overflow) / double(std::max(1L, h.safety.gates)),
                           h.safety.largest_safe_chunk, h.safety.largest_safe_pow2);
        buf += h.checked ? fmt::format(",{},{},{},{},{},{}\n", checked_cell(h, ""), h.checked->judged,
                                       h.checked->unrepresentable, h.checked->overflow, h.checked->underflow,
                                       h.checked->emulations)
                         : "\n";
      }
      ok_or_throw(f.write(buf));
      ok_or_throw(f.commit());
    }
    if (json) {
      nlohmann::json hs = nlohmann::json::array();
      for (const HeadChunkSafety& h : heads) {
        nlohmann::json j = counts_json(h.safety);
        j["layer"] = h.layer;
        j["head"] = h.head;
        if (h.checked) j["checked"] = checked_json(*h.checked, inputs);
        hs.push_back(j);
      }
      nlohmann::json j = {{"mode", "checkpoint"}, {"checkpoint", o.checkpoint}, {"chunk", o.chunk},
                          {"precision", std::string(to_string(prec))}, {"tolerance", o.tol}, {"gates", gates},
                          {"fraction_unsafe", double(unsafe) / std::max(1.0, double(gates))},
                          {"fraction_overflow", double(overflow) / std::max(1.0, double(gates))},
                          {"largest_safe_chunk", largest}, {"heads", hs}, {"seconds", seconds()}};
      if (o.check) {
        j["checked_largest_safe_chunk"] =
            all_heads.judged ? nlohmann::json(largest_checked) : nlohmann::json(nullptr);
        j["checked_judged"] = all_heads.judged;
        j["checked_left_out"] = all_heads.unrepresentable;
        j["checked_left_out_overflow"] = all_heads.overflow;
        j["checked_left_out_underflow"] = all_heads.underflow;
        j["checked_safe_spot_check"] = spot ? spot_json(*spot) : nlohmann::json(nullptr);
      }
      print_json(j);
      return 0;
    }
    fmt::print("chunk-safety: checkpoint '{}' ({} layers x {} heads), {} samples of raw inputs per head (range {}), {}\n",
               o.checkpoint, ck.layers.size(), ck.layers.empty() ? 0 : ck.layers[0].size(), so.samples, o.range, head);
    fmt::print("  {:>5} {:>4} {:>12} {:>12} {:>10}{}\n", "layer", "head", "unsafe", "overflow", "largest C",
               o.check ? fmt::format(" {:>10}", "checked C") : "");
    for (const HeadChunkSafety& h : heads)
      fmt::print("  {:>5} {:>4} {:>12} {:>12} {:>10}{}\n", h.layer, h.head, pct(h.safety.at.unsafe, h.safety.gates),
                 pct(h.safety.at.overflow, h.safety.gates), h.safety.largest_safe_chunk,
                 h.checked ? fmt::format(" {:>10}", checked_cell(h, "-")) : "");
    fmt::print("  all heads: {} of gates unsafe at C = {}; largest safe C for every head: {} by the rule{}\n",
               pct(unsafe, gates), o.chunk, largest,
               !o.check ? std::string()
               : all_heads.judged
                   ? fmt::format(", {} checked by emulation (DK = {}, DV = {}, T = {}; {} gate sets left out: "
                                 "broken even at C = 1{})",
                                 largest_checked, o.dk, o.dv, o.steps, all_heads.unrepresentable,
                                 left_out_causes(all_heads, prec))
                   : fmt::format(", none judged by emulation: every gate set is broken even at C = 1{}",
                                 left_out_causes(all_heads, prec)));
    if (spot) fmt::print("  safe verdicts checked:  {} (the heads' samples together)\n", spot_text(*spot, pooled));
    fmt::print("  time: {:.3f} s\n", seconds());
    return 0;
  }

  if (!named) {  // a gate dump
    const GateDump d = value_or_throw(read_gate_dump(o.param, ps));
    if (o.chunk > d.time)
      throw UsageError(fmt::format("chunk size C = {} is larger than the dump's sequence (time {})", o.chunk, d.time));
    ChunkRuleOptions rd = ro;  // the dump's sequences are its time long
    rd.steps = int(std::min<int64_t>(d.time, std::numeric_limits<int>::max()));
    const DumpChunkSafety r = value_or_throw(analyze_chunk_safety(d, o.chunk, prec, rd, o.threads));
    // --check: the dump's own sequences through the emulation, T = its time.
    std::optional<DumpChunkCheck> chk;
    ChunkInputs dump_inputs;
    if (o.check) {
      ok_or_throw(check_chunk_inputs(o.dk, o.dv, d.time));
      dump_inputs = random_chunk_inputs(o.dk, o.dv, int(d.time), o.seed);
      chk = value_or_throw(check_dump_chunks(d, o.chunk, prec, rd, dump_inputs, o.threads, o.max_hours * 3600));
    }
    if (!o.out.empty()) {
      AtomicFile f;
      ok_or_throw(f.open(o.out));
      std::string buf = "b,t,h,alpha,beta,mu,eta,log_alpha,log_mu,log_cancellation,max_exponent,predicted_error,safe\n";
      for (int64_t b = 0; b < d.batch; ++b)
        for (int64_t t = 0; t < d.time; ++t)
          for (int64_t h = 0; h < d.heads; ++h) {
            const Gates& g = d.at(b, t, h);
            const ChunkRisk k = chunk_risk(g, o.chunk, prec, rd);
            buf += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{}\n", b, t, h, g.alpha, g.beta, g.mu, g.eta,
                               g.log_alpha, g.log_mu, k.log_cancellation, k.max_exponent, k.predicted_error,
                               int(chunk_safe(k, o.tol)));
            if (buf.size() > (1u << 20)) ok_or_throw(f.write(buf)), buf.clear();
          }
      ok_or_throw(f.write(buf));
      ok_or_throw(f.commit());
    }
    const double nch = std::max(1.0, double(r.chunks)), ntok = std::max(1.0, double(d.gates.size()));
    if (json) {
      nlohmann::json j = {{"mode", "dump"}, {"file", o.param}, {"batch", d.batch}, {"time", d.time},
                          {"heads", d.heads}, {"chunk", o.chunk}, {"precision", std::string(to_string(prec))},
                          {"tolerance", o.tol}, {"tokens", counts_json(r.tokens)}, {"chunks", r.chunks},
                          {"unsafe_chunks", r.unsafe_chunks},
                          {"fraction_unsafe_chunks", double(r.unsafe_chunks) / nch},
                          {"fraction_overflow_chunks", double(r.overflow_chunks) / nch},
                          {"fraction_tokens_in_unsafe_chunks", double(r.tokens_in_unsafe_chunks) / ntok},
                          {"largest_safe_pow2_chunks", r.largest_safe_pow2}};
      if (chk) j["checked"] = dump_check_json(*chk, dump_inputs);
      j["seconds"] = seconds();
      print_json(j);
      return 0;
    }
    fmt::print("chunk-safety: gate dump '{}' ({}, batch {}, time {}, heads {}), {}\n", o.param, d.format, d.batch,
               d.time, d.heads, head);
    fmt::print("  each token's gates held constant over a chunk:\n");
    print_counts(r.tokens, "tokens", prec);
    fmt::print("  the dump's own chunks:  {} of {} unsafe ({}), {} overflow; {} of the tokens lie in unsafe chunks\n",
               r.unsafe_chunks, r.chunks, pct(r.unsafe_chunks, r.chunks), pct(r.overflow_chunks, r.chunks),
               pct(r.tokens_in_unsafe_chunks, long(d.gates.size())));
    fmt::print("  largest safe power-of-two C for every chunk of the dump: {}{}\n", r.largest_safe_pow2,
               chk ? " by the rule" : "");
    if (chk) print_dump_check(*chk, dump_inputs, o.tol, prec);
    if (r.worst_b >= 0)
      fmt::print("  worst chunk: batch {} head {} from token {}: Lambda = {}, predicted error {}\n", r.worst_b,
                 r.worst_h, r.worst_t, num(r.worst_risk.log_cancellation), num(r.worst_risk.predicted_error));
    fmt::print("  time: {:.3f} s\n", seconds());
    return 0;
  }

  ParamConfig c = value_or_throw(reference_config(o.model));
  if (o.min_log_mu) c.min_log_mu = *o.min_log_mu;
  if (o.hidden_size) c.hidden_size = *o.hidden_size;
  if (o.tau_factor) c.tau_factor = *o.tau_factor;
  ok_or_throw(check(c));
  so.samples = o.samples.value_or(20000);
  const auto samples = value_or_throw(sample_reachable_gates(*named, c, so));
  std::vector<Gates> gates;
  std::vector<Gates> initial;
  for (const SampledGate& s : samples) {
    gates.push_back(s.mapped.gates);
    if (s.range == SampleRange::kInitial) initial.push_back(s.mapped.gates);
  }
  const GateSetChunkSafety all = analyze_chunk_safety(gates, o.chunk, prec, ro, o.threads);
  const GateSetChunkSafety init = analyze_chunk_safety(initial, o.chunk, prec, ro, o.threads);
  std::optional<CheckedSafeChunk> checked_all, checked_init;
  std::optional<SafeVerdictCheck> spot_all, spot_init;
  if (o.check) {
    checked_all = largest_safe_chunk_checked(gates, prec, ro, inputs, kMaxChunk, o.threads);
    const bool same = initial.size() == gates.size();  // range "initial": the same samples
    checked_init = same ? checked_all : largest_safe_chunk_checked(initial, prec, ro, inputs, kMaxChunk, o.threads);
    if (checked_all->judged)
      spot_all = check_safe_verdicts(gates, checked_all->largest, prec, ro, inputs, kSafeSpotChecks, o.seed, o.threads);
    if (checked_init->judged)
      spot_init = same ? spot_all
                       : check_safe_verdicts(initial, checked_init->largest, prec, ro, inputs, kSafeSpotChecks, o.seed,
                                             o.threads);
  }
  if (!o.out.empty()) {
    AtomicFile f;
    ok_or_throw(f.open(o.out));
    std::string buf = "alpha,beta,mu,eta,log_alpha,log_mu,kind,range,log_cancellation,max_exponent,predicted_error,safe\n";
    for (const SampledGate& s : samples) {
      const Gates& g = s.mapped.gates;
      const ChunkRisk k = chunk_risk(g, o.chunk, prec, ro);
      buf += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{}\n", g.alpha, g.beta, g.mu, g.eta, g.log_alpha,
                         g.log_mu, to_string(s.kind), to_string(s.range), k.log_cancellation, k.max_exponent,
                         k.predicted_error, int(chunk_safe(k, o.tol)));
      if (buf.size() > (1u << 20)) ok_or_throw(f.write(buf)), buf.clear();
    }
    ok_or_throw(f.write(buf));
    ok_or_throw(f.commit());
  }
  if (json) {
    nlohmann::json j = {{"mode", "parametrization"}, {"param", to_string(*named)}, {"model", o.model},
                        {"min_log_mu", number_or_null(c.min_log_mu)}, {"samples", so.samples},
                        {"range", o.range}, {"chunk", o.chunk}, {"precision", std::string(to_string(prec))},
                        {"tolerance", o.tol}, {"all", counts_json(all)}, {"initial", counts_json(init)},
                        {"seconds", seconds()}};
    if (checked_all) {
      j["all"]["checked"] = checked_json(*checked_all, inputs);
      j["initial"]["checked"] = checked_json(*checked_init, inputs);
      j["all"]["checked"]["safe_spot_check"] = spot_all ? spot_json(*spot_all) : nlohmann::json(nullptr);
      j["initial"]["checked"]["safe_spot_check"] = spot_init ? spot_json(*spot_init) : nlohmann::json(nullptr);
    }
    if (all.worst >= 0)
      j["worst"] = {{"gates", gates_json(gates[size_t(all.worst)])},
                    {"log_cancellation", number_or_null(all.worst_risk.log_cancellation)},
                    {"max_exponent", number_or_null(all.worst_risk.max_exponent)},
                    {"predicted_error", all.worst_risk.predicted_error}};
    print_json(j);
    return 0;
  }
  fmt::print("chunk-safety: parametrization {} ({}, min_log_mu {}), {} samples (range {}), {}\n", to_string(*named),
             o.model, num(c.min_log_mu), so.samples, o.range, head);
  fmt::print(" all samples:\n");
  print_counts(all, "gates", prec);
  if (checked_all) fmt::print("  checked by emulation:   {}\n", checked_text(*checked_all, inputs, prec));
  if (spot_all) fmt::print("  safe verdicts checked:  {}\n", spot_text(*spot_all, gates));
  if (!initial.empty() && initial.size() != gates.size()) {
    fmt::print(" samples from the initialization ranges only:\n");
    print_counts(init, "gates", prec);
    if (checked_init) fmt::print("  checked by emulation:   {}\n", checked_text(*checked_init, inputs, prec));
    if (spot_init) fmt::print("  safe verdicts checked:  {}\n", spot_text(*spot_init, initial));
  }
  if (all.worst >= 0)
    fmt::print("  worst gate at C = {}: {} (Lambda = {}, largest exponent {})\n", o.chunk,
               gates_text(gates[size_t(all.worst)]), num(all.worst_risk.log_cancellation),
               num(all.worst_risk.max_exponent));
  if (*named == Parametrization::kGdn)
    fmt::print("  note: GDN has mu = 0, whose log the reordered MDN algorithm cannot take\n");
  fmt::print("  time: {:.3f} s\n", seconds());
  return 0;
}

int run_chunk_safety(const ChunkSafetyOptions& o, const App& app) {
  if (!o.param.empty() || !o.checkpoint.empty()) return run_param_mode(o, app);
  if (o.check) throw UsageError("--check takes --param NAME or --checkpoint: a grid is measured by emulation already");
  ChunkMapSpec spec;
  spec.precision = value_or_throw(parse_precision(o.precision));
  spec.p_scale = resolve_p_scale(o.p_scale);
  for (const auto& a : o.axes) spec.axes.push_back(value_or_throw(parse_axis(a)));
  for (const auto& f : o.fixed) spec.fixed.push_back(value_or_throw(parse_fixed(f)));
  auto covered = [&](const char* gate) {
    for (const Axis& a : spec.axes)
      if (a.name == gate) return true;
    for (const FixedGate& f : spec.fixed)
      if (f.name == gate) return true;
    return false;
  };
  // --beta and --eta, or the measured cases' defaults (DESIGN.md section 5) when no axis sets them.
  if (o.beta || !covered("beta")) spec.fixed.push_back({"beta", o.beta.value_or(0.1)});
  if (o.eta || !covered("eta")) spec.fixed.push_back({"eta", o.eta.value_or(1.0)});
  spec.chunk = o.chunk;
  spec.dk = o.dk;
  spec.dv = o.dv;
  spec.steps = o.steps;
  spec.seed = o.seed;
  spec.tol = o.tol;
  spec.beta_eps = o.beta_eps;
  spec.threads = o.threads;
  spec.out_path = o.out;
  if (!(o.max_hours > 0)) throw UsageError(fmt::format("--max-hours = {} must be > 0", o.max_hours));
  spec.max_seconds = o.max_hours * 3600;
  ok_or_throw(check(spec));
  const int threads = spec.threads > 0 ? spec.threads : omp_get_num_procs();
  const double estimate = estimate_seconds(spec, threads);
  spec.progress = isatty(STDERR_FILENO) && estimate > 5;
  const ChunkMapSummary s = value_or_throw(run_chunk_map(spec));

  std::string axes;
  for (const Axis& a : spec.axes) axes += (axes.empty() ? "" : " x ") + a.name;
  const double judged = std::max<double>(double(s.judged), 1.0);
  auto range = [&](size_t a) {
    return s.broken ? nlohmann::json{s.broken_min[a], s.broken_max[a]} : nlohmann::json(nullptr);
  };
  if (app.format() == Format::kJson) {
    nlohmann::json region = nlohmann::json::object();
    for (size_t a = 0; a < spec.axes.size(); ++a) region[spec.axes[a].name] = range(a);
    print_json({{"points", s.points},
                {"axes", axes},
                {"chunk", spec.chunk},
                {"precision", std::string(to_string(spec.precision))},
                {"steps", spec.steps},
                {"dk", spec.dk},
                {"dv", spec.dv},
                {"seed", spec.seed},
                {"tolerance", spec.tol},
                {"out", o.out.empty() ? nlohmann::json(nullptr) : nlohmann::json(o.out)},
                {"judged", s.judged},
                {"reference_nonfinite", s.reference_nonfinite},
                {"broken", s.broken},
                {"nonfinite", s.nonfinite},
                {"fraction_broken", double(s.broken) / judged},
                {"broken_region", region},
                {"lambda_broken_min", number_or_null(s.lambda_broken_min)},
                {"lambda_safe_max", number_or_null(s.lambda_safe_max)},
                {"max_error_not_broken", s.max_error_safe},
                {"rule_agree", s.rule_agree},
                {"rule_agreement", double(s.rule_agree) / judged},
                {"rule_false_safe", s.false_safe},
                {"rule_false_unsafe", s.false_unsafe},
                {"worst_miss", s.has_miss ? point_json(s.worst_miss) : nlohmann::json(nullptr)},
                {"worst_miss_decades", s.has_miss ? number_or_null(s.worst_miss_margin) : nlohmann::json(nullptr)},
                {"far_points", s.far_points},
                {"far_misses", s.far_misses},
                {"threads", s.threads},
                {"seconds", s.seconds},
                {"estimated_seconds", estimate}});
    return 0;
  }
  std::string fixed_text;
  for (const FixedGate& f : spec.fixed) fixed_text += fmt::format(", {} = {}", f.name, num(f.value));
  fmt::print("chunk-safety: {} points over {}, C = {}, {}, T = {}, DK = {}, DV = {}{}{}\n", s.points, axes, spec.chunk,
             to_string(spec.precision), spec.steps, spec.dk, spec.dv, fixed_text,
             o.out.empty() ? " (no output file)" : " -> " + o.out);
  fmt::print("  broken (error > {} or not finite): {} of {} ({:.1f}%), {} not finite\n", num(spec.tol), s.broken,
             s.judged, 100.0 * double(s.broken) / judged, s.nonfinite);
  if (s.reference_nonfinite)
    fmt::print("  not judged: {} points where the fp64 recurrence itself overflows\n", s.reference_nonfinite);
  if (s.broken) {
    std::string reg;
    for (size_t a = 0; a < spec.axes.size(); ++a)
      reg += fmt::format("{}{} in [{}, {}]", a ? ", " : "", spec.axes[a].name, num(s.broken_min[a]),
                         num(s.broken_max[a]));
    fmt::print("  broken region:          {}\n", reg);
    fmt::print("  rule's Lambda there:    broken from {} on, fine up to {} (Lambda = max_t log(C_t/c_t))\n",
               num(s.lambda_broken_min), num(s.lambda_safe_max));
  }
  fmt::print("  largest error elsewhere: {}\n", num(s.max_error_safe));
  const PrecisionTraits tr = traits(spec.precision);
  fmt::print("  rule: unsafe when Lambda + log(beta) > {:.1f} (exp overflows) or the predicted error u e^Lambda + ... "
             "> {} (u = {:.3g}: Lambda past about {:.1f}); Lambda ~ (C-1)(log_alpha - log_mu) when alpha > mu\n",
             tr.log_max, num(spec.tol), tr.unit_roundoff, std::log(spec.tol / tr.unit_roundoff));
  fmt::print("  rule agrees on {} of {} points ({:.1f}%): {} broke where it said safe, {} fine where it said unsafe\n",
             s.rule_agree, s.judged, 100.0 * double(s.rule_agree) / judged, s.false_safe, s.false_unsafe);
  if (s.has_miss)
    fmt::print("  worst miss:             {}: error {}, predicted {} ({:.2f} decades from the rule's boundary)\n",
               gate_text(spec, s.worst_miss.gates), num(s.worst_miss.error.rel_rms),
               num(s.worst_miss.risk.predicted_error), s.worst_miss_margin);
  fmt::print("  far from the boundary (> 1 decade): {} points, {} misses\n", s.far_points, s.far_misses);
  if (s.far_misses > 0)
    fmt::print("  warning: the rule's model does not hold on this map (a miss by more than a decade); trust the\n"
               "           measured map here, not the rule (reports/bench/chunk-safety.md lists where it misses)\n");
  print_map(spec, s);
  fmt::print("  time:                   {:.2f} s on {} threads ({:.3g} points/s; estimated {:.3g} s)\n", s.seconds,
             s.threads, double(s.points) / s.seconds, estimate);
  return 0;
}

}  // namespace

void setup_chunk_safety(App& app) {
  auto o = std::make_shared<ChunkSafetyOptions>();
  CLI::App* sub = app.add_subcommand(
      "chunk-safety", "where the reordered chunkwise algorithm breaks: emulated map and predictive rule");
  sub->add_option("--chunk", o->chunk, "chunk size C")->capture_default_str();
  sub->add_option("--precision", o->precision, "fp64, fp32, tf32 (fp32 with tf32 products) or bf16")
      ->capture_default_str();
  sub->add_option("--axis", o->axes, "NAME=START:STOP:N over log_alpha, log_mu, alpha, mu, beta, eta (1 or 2)");
  sub->add_option("--fix", o->fixed, "NAME=VALUE for a gate no axis covers");
  sub->add_option("--beta", o->beta, "beta for every token (default 0.1)");
  sub->add_option("--eta", o->eta, "eta for every token (default 1)");
  sub->add_option("--p-scale", o->p_scale, "p_t = alpha k^ (alpha) or k^ (one)")
      ->check(CLI::IsMember({"alpha", "one"}))
      ->capture_default_str();
  sub->add_option("--dk", o->dk, "key dimension")->capture_default_str();
  sub->add_option("--dv", o->dv, "value dimension")->capture_default_str();
  sub->add_option("--steps", o->steps,
                  "sequence length T (with --param: the length the rule assumes and --check emulates; a gate dump's "
                  "--check emulates the dump's own length)")
      ->capture_default_str();
  sub->add_option("--seed", o->seed, "seed of the random q, k, v (or of the samples)")->capture_default_str();
  sub->add_option("--tolerance", o->tol, "relative error above which a point is broken")->capture_default_str();
  sub->add_option("--beta-eps", o->beta_eps, "weights from log(beta + EPS) (the reference kernel: 1e-6)")
      ->capture_default_str();
  sub->add_option("--threads", o->threads, "threads (0: all cores)")->capture_default_str();
  sub->add_option("--max-hours", o->max_hours, "refuse grids (or a gate dump's --check) estimated to take longer")
      ->capture_default_str();
  sub->add_option("--out", o->out,
                  "CSV: one row per grid point (grid), sample (--param NAME), token (--param FILE) or head "
                  "(--checkpoint)");
  sub->add_option("--param", o->param,
                  "instead of a grid: mdn, mdn-unconstrained or gdn (sample the parametrization), or a gate dump FILE "
                  "(CSV or safetensors [batch, time, heads])");
  sub->add_option("--checkpoint", o->checkpoint, "instead of a grid: a trained MDN model (folder or .safetensors)");
  sub->add_option("--model", o->model, "reference config for --param/--checkpoint: 400M or 1.3B")
      ->check(CLI::IsMember({"400M", "1.3B"}))
      ->capture_default_str();
  sub->add_option("--min-log-mu", o->min_log_mu, "lower clamp of log_mu (default: the model's)");
  sub->add_option("--hidden-size", o->hidden_size, "hidden size (tau = sqrt(hidden_size / tau_factor))");
  sub->add_option("--tau-factor", o->tau_factor, "tau factor");
  sub->add_option("--samples", o->samples, "samples (20000 for a parametrization, 4000 per head for a checkpoint)");
  sub->add_flag("--check", o->check,
                "with --param NAME or --checkpoint: check the rule's unsafe verdicts that decide the largest safe C "
                "by emulation on random q, k, v (--dk, --dv, --steps, --seed); with a gate dump FILE: emulate the "
                "dump's own sequences at C and at powers of two (T = the dump's time)");
  sub->add_option("--range", o->range, "sampling range: initial, wide or both")
      ->check(CLI::IsMember({"initial", "wide", "both"}))
      ->capture_default_str();
  app.add_command(sub, [o, &app] { return run_chunk_safety(*o, app); });
}

}  // namespace mdnstab::cli
