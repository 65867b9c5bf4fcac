// Report sections on a model's own gates: a gate dump ([[gate_dump]], every
// token certified as `constraint --param FILE` does, through analyze_dump) and
// a checkpoint ([[checkpoint]], each head's raw inputs sampled and certified as
// `constraint --checkpoint` does, through analyze_checkpoint). Tested in
// tests/test_report_models.cpp and tests/report/check_numbers.py.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

#include <fmt/format.h>

#include "mdnstab/checkpoint.hpp"
#include "mdnstab/chunk_safety.hpp"
#include "mdnstab/constraint.hpp"
#include "mdnstab/gate_dump.hpp"
#include "report_impl.hpp"

namespace mdnstab::report_detail {

namespace {

std::string witness_words(const Certificate& c) {
  if (c.witness.kind == Witness::Kind::kRotation)
    return fmt::format("keys rotating by {} rad per step in a plane", fmt_num(c.witness.angle, 4));
  if (c.witness.kind == Witness::Kind::kSwitching)
    return fmt::format("a switching key schedule of period {}", c.witness.period);
  return "no witness schedule";
}

// The witness angle for the data files (NaN when the witness is not a rotation).
double witness_angle(const Certificate& c) {
  return c.witness.kind == Witness::Kind::kRotation ? c.witness.angle : NAN;
}

std::string source_sentence(const std::string& note) {
  return note.empty() ? std::string() : fmt::format(" Source: {}", note);
}

ConstraintOptions constraint_options(const Study& s) {
  // The constraint subcommand's defaults (margin 1e-3, rel_tol 1e-6), the study's seed and p-scale.
  ConstraintOptions o;
  o.sampling.seed = s.seed;
  o.sampling.p_scale = s.p_scale;
  o.sampling.range = s.parametrization ? s.parametrization->range : SampleRange::kBoth;
  return o;
}

// A stacked bar per row of `file` (columns `cols` hold the certified,
// undecided, refuted and failed fractions; `label` is the xtic column expression).
std::string stacked_bars(const std::string& file, const std::string& label, const int cols[4]) {
  std::string b =
      "set style data histograms\nset style histogram rowstacked\nset style fill solid 1.0 border lc rgb '#333333'\n"
      "set boxwidth 0.75\nset yrange [0:100]\nset tics out nomirror\n";
  b += "plot ";
  for (int v = 0; v < 4; ++v)
    b += fmt::format("{}'../data/{}' skip 1 using (100 * ${}){} lc rgb '{}' title {}", v ? ", " : "", file, cols[v],
                     v == 0 ? ":xtic(" + label + ")" : std::string(), kVerdictColours[v], gp_quote(kVerdictNames[v]));
  return b + "\n";
}

// The chunkwise kernel on the dump's own gates, as `chunk-safety --param FILE --check`:
// the rule over the dump's chunks, and each (batch, head) sequence emulated with its
// own per-token gates. The [chunk_safety] table's settings, else its defaults.
Status dump_chunks(Context& c, const StudyGateDump& sd, const GateDump& d) {
  const StudyChunkSafety cs = c.study.chunk_safety.value_or(StudyChunkSafety{});
  const int C = int(std::min<int64_t>(cs.chunk, std::min<int64_t>(d.time, kMaxChunk)));
  ChunkRuleOptions ro;
  ro.tol = cs.tolerance;
  ro.steps = int(std::min<int64_t>(d.time, std::numeric_limits<int>::max()));  // the dump's sequences, as emulated below
  ro.dk = cs.dk;
  c.progress(fmt::format("gate dump {}: its sequences through the chunkwise algorithm", sd.name));
  auto rule = analyze_chunk_safety(d, C, cs.precision, ro);
  if (!rule.is_ok()) return error(rule.status.code, fmt::format("gate dump '{}': {}", sd.name, rule.status.message));
  const ChunkInputs in = random_chunk_inputs(cs.dk, cs.dv, int(d.time), c.study.seed);
  auto chk = check_dump_chunks(d, C, cs.precision, ro, in);
  if (!chk.is_ok()) return error(chk.status.code, fmt::format("gate dump '{}': {}", sd.name, chk.status.message));
  const DumpChunkCheck& k = chk.value;
  CsvWriter csv({"b", "h", "rel_error", "reference_finite", "rule_safe", "broken"});
  for (const DumpSequenceCheck& q : k.sequences)
    csv.num(double(q.batch)).num(double(q.head)).exact(q.error.rel_rms).num(q.error.reference_finite)
        .num(q.rule_safe).num(q.broken).end();
  const std::string file = fmt::format("dump_{}_chunks.csv", sd.name);
  if (Status e = write_text(c.data(file), csv.text); !e.is_ok()) return e;
  const std::string key = "dump." + sd.name + ".chunk";
  const DumpChunkSafety& r = rule.value;
  const std::string prec(to_string(cs.precision));
  std::string text = fmt::format(
      "Chunkwise kernel (C = {}, {}, tolerance {}): by the rule, {} of the dump's {} chunks are unsafe and the largest "
      "power-of-two chunk size safe for all of them is {}. Emulated on the dump's own sequences (each token with its "
      "own gates; random q, k, v with DK = {}, DV = {}, T = {}; data/{}), {} of the {} sequences (batch × head) break "
      "at C = {}, the rule and the emulation agree on {} of them, {} broke where the rule said safe",
      C, prec, fmt_num(cs.tolerance, 3), c.state(key + ".rule_unsafe_chunks", double(r.unsafe_chunks),
                                                  fmt::format("{}", r.unsafe_chunks)),
      r.chunks, c.state(key + ".rule_largest_safe_pow2", r.largest_safe_pow2, fmt::format("{}", r.largest_safe_pow2)),
      cs.dk, cs.dv, d.time, file, c.state(key + ".sequences_broken", double(k.broken), fmt::format("{}", k.broken)),
      k.judged, C, c.state(key + ".sequences_agree", double(k.agree), fmt::format("{}", k.agree)),
      c.state(key + ".sequences_false_safe", double(k.false_safe), fmt::format("{}", k.false_safe)));
  if (k.judged > k.left_out)
    text += fmt::format(", and every sequence stays unbroken up to C = {}",
                        c.state(key + ".measured_largest_safe_pow2", k.largest_safe_pow2,
                                fmt::format("{}", k.largest_safe_pow2)));
  if (k.left_out)
    text += fmt::format(" ({} broken even at C = 1: {} with outputs not finite in {} (inf or NaN), {} below its smallest "
                        "normal value, {} erring in its arithmetic)",
                        k.left_out, k.overflow, prec, k.underflow, k.left_out - k.overflow - k.underflow);
  if (long(k.sequences.size()) > k.judged)
    text += fmt::format("; {} sequences not judged: the fp64 recurrence itself overflows",
                        long(k.sequences.size()) - k.judged);
  c.doc.paragraph(text + ".");
  return Status::ok();
}

}  // namespace

Status section_gate_dumps(Context& c, Shared&) {
  const Study& s = c.study;
  for (const StudyGateDump& sd : s.gate_dumps) {
    if (interrupted()) return interrupted_status();
    auto dump = read_gate_dump(sd.path, s.p_scale);
    if (!dump.is_ok()) return error(dump.status.code, fmt::format("gate dump '{}': {}", sd.name, dump.status.message));
    const GateDump& d = dump.value;
    c.progress(fmt::format("gate dump {}: {} tokens certified one by one", sd.name, d.gates.size()));
    std::vector<TokenCheck> tokens;
    auto rep = analyze_dump(d, constraint_options(s), &tokens);
    if (!rep.is_ok()) return error(rep.status.code, fmt::format("gate dump '{}': {}", sd.name, rep.status.message));
    if (interrupted()) return interrupted_status();
    const DumpReport& r = rep.value;

    c.doc.heading(2, fmt::format("Gate dump `{}`", sd.name), "dump-" + sd.name);
    c.doc.paragraph(fmt::format(
        "The per-token gates of `{}` ({}, batch {}, time {}, heads {}: {} tokens), each token's gate set certified on "
        "its own (tier 3) and each head's tokens together as one time-varying set, as `mdnstab constraint --param "
        "FILE` does.{}",
        std::filesystem::path(sd.path).filename().string(), d.format, d.batch, d.time, d.heads, d.gates.size(),
        source_sentence(sd.note)));

    // Every token, [B,T,H] order.
    CsvWriter tcsv({"b", "t", "h", "alpha", "beta", "mu", "eta", "one_minus_mu", "gamma", "lower_bound", "verdict",
                    "witness_angle"});
    long best = -1;
    bool any_mu = false;
    for (size_t i = 0; i < tokens.size(); ++i) {
      const TokenCheck& tk = tokens[i];
      const Gates& g = tk.check.sample.mapped.gates;
      any_mu = any_mu || g.mu > 0;
      tcsv.num(double(tk.b)).num(double(tk.t)).num(double(tk.h)).num(g.alpha, 10).num(g.beta, 10).num(g.mu, 10)
          .num(g.eta, 10).num(-std::expm1(g.log_mu));
      if (!tk.check.status.is_ok()) {
        tcsv.num(NAN).num(NAN).num(NAN).num(NAN).end();
        continue;
      }
      const Certificate& ce = tk.check.cert;
      tcsv.exact(ce.upper_bound).exact(ce.lower_bound).num(verdict_code(ce.verdict)).num(witness_angle(ce)).end();
      if (ce.verdict == Verdict::kRefuted &&
          (best < 0 || ce.lower_bound > tokens[size_t(best)].check.cert.lower_bound))
        best = long(i);
    }
    const std::string tfile = fmt::format("dump_{}_tokens.csv", sd.name);
    if (Status e = write_text(c.data(tfile), tcsv.text); !e.is_ok()) return e;

    // Per head: token fractions and the head's set certificate.
    CsvWriter hcsv({"head", "tokens", "distinct", "certified", "undecided", "refuted", "failed", "set_gamma",
                    "set_lower_bound", "set_verdict"});
    Table t;
    t.header = {"head", "tokens", "distinct gate sets", "certified", "undecided", "refuted", "set γ", "set verdict"};
    for (const DumpHeadReport& h : r.heads_report) {
      const VerdictCounts& v = h.token_verdicts;
      hcsv.num(double(h.head)).num(double(h.tokens)).num(double(h.distinct)).num(v.fraction(v.certified))
          .num(v.fraction(v.undecided)).num(v.fraction(v.refuted)).num(v.fraction(v.failed));
      if (h.set_status.is_ok())
        hcsv.exact(h.set_cert.upper_bound).exact(h.set_cert.lower_bound).num(verdict_code(h.set_cert.verdict)).end();
      else
        hcsv.num(NAN).num(NAN).num(NAN).end();
      t.rows.push_back({fmt::format("{}", h.head), fmt::format("{}", h.tokens), fmt::format("{}", h.distinct),
                        pct(v.fraction(v.certified)), pct(v.fraction(v.undecided)), pct(v.fraction(v.refuted)),
                        h.set_status.is_ok() ? fmt_num(h.set_cert.upper_bound, 6) : "failed",
                        h.set_status.is_ok() ? to_string(h.set_cert.verdict) : h.set_status.message});
    }
    const std::string hfile = fmt::format("dump_{}_heads.csv", sd.name);
    if (Status e = write_text(c.data(hfile), hcsv.text); !e.is_ok()) return e;

    const VerdictCounts& v = r.token_verdicts;
    const std::string key = "dump." + sd.name;
    std::string sentence = fmt::format(
        "Of the {} tokens, {} are certified, {} undecided and {} refuted", v.total(),
        c.state(key + ".fraction_certified", v.fraction(v.certified), pct(v.fraction(v.certified))),
        c.state(key + ".fraction_undecided", v.fraction(v.undecided), pct(v.fraction(v.undecided))),
        c.state(key + ".fraction_refuted", v.fraction(v.refuted), pct(v.fraction(v.refuted))));
    if (v.failed > 0) sentence += fmt::format(" (certify() failed on {} tokens, counted as no verdict)", v.failed);
    long heads_set_certified = 0;
    for (const DumpHeadReport& h : r.heads_report)
      heads_set_certified += h.set_status.is_ok() && h.set_cert.verdict == Verdict::kCertified;
    sentence += fmt::format("; taken together, the tokens of {} of the {} heads form a certified set", heads_set_certified,
                            r.heads);
    std::string highlight = fmt::format("Gate dump `{}`: {} of {} tokens certified, {} refuted", sd.name,
                                        pct(v.fraction(v.certified)), v.total(), pct(v.fraction(v.refuted)));
    if (best >= 0) {
      const TokenCheck& w = tokens[size_t(best)];
      const Certificate& ce = w.check.cert;
      sentence += fmt::format(
          ". Worst counterexample: token (b = {}, t = {}, head {}) with {}: γ = {}, and {} grow the state {}× per "
          "step",
          w.b, w.t, w.h, gates_text(w.check.sample.mapped.gates), c.state(key + ".worst_gamma", ce.upper_bound, fmt_num(ce.upper_bound, 6)),
          witness_words(ce), c.state(key + ".worst_lower_bound", ce.lower_bound, fmt_num(ce.lower_bound, 6)));
      if (ce.witness.kind == Witness::Kind::kRotation)
        c.state(key + ".worst_witness_angle", ce.witness.angle, fmt_num(ce.witness.angle, 4));
      highlight += fmt::format("; the worst token grows {}× per step under {}", fmt_num(ce.lower_bound, 6),
                               witness_words(ce));
    } else {
      sentence += ". No token is refuted";
    }
    c.doc.table(std::move(t));
    c.doc.paragraph(sentence + ".");
    c.highlights.push_back(highlight + ".");
    if (Status e = dump_chunks(c, sd, d); !e.is_ok()) return e;

    // Figure: tokens by verdict (left), per-head verdict bars (right).
    PanelLayout lay;
    lay.n = 2;
    lay.colorbox = false;
    lay.width = 980;
    lay.height = 470;
    lay.top = 80;
    lay.gap = 120;
    std::string b = "set key at screen 0.5, screen 0.985 center top horizontal samplen 1 width -2\nset multiplot\n";
    b += lay.margins(0);
    b += "set tics out nomirror\n";
    b += any_mu ? "set logscale x\nset format x '1e%T'\nset yrange [0:2]\n"
                  "set xlabel '1 − μ (momentum decay per step, log scale)'\nset ylabel 'η (momentum input scale)'\n"
                : "set xrange [0:1]\nset yrange [0:1]\nset xlabel 'α (decay per step)'\nset ylabel 'β (step size)'\n";
    b += "set title 'tokens by verdict'\nplot ";
    constexpr long kDrawn = 300;  // per verdict class; every token is in the data
    long per_class[3] = {v.certified, v.undecided, v.refuted};
    const char* pts[3] = {"pt 7 ps 0.35", "pt 9 ps 0.7", "pt 5 ps 0.6"};
    bool thinned = false;
    for (int k = 0; k < 3; ++k) {
      const long thin = std::max(1L, per_class[k] / kDrawn);
      thinned = thinned || thin > 1;
      b += fmt::format("{}'../data/{}' skip 1 using {}:(($11 == {}) ? ${} : NaN){} with points {} lc rgb '{}' notitle",
                       k ? ", " : "", tfile, any_mu ? 8 : 4, k, any_mu ? 7 : 5,
                       thin > 1 ? fmt::format(" every {}", thin) : std::string(), pts[k],
                       k == 0 ? kCertifiedPointColour : kVerdictColours[k]);
    }
    b += "\nunset logscale x\nset format x '%g'\nset autoscale x\n";
    b += lay.margins(1);
    b += "set title 'tokens per head'\nset xlabel 'head'\nset ylabel 'tokens (%)'\n";
    const int cols[4] = {4, 5, 6, 7};
    b += stacked_bars(hfile, "1", cols);
    b += "unset multiplot\n";
    const std::string fig = fmt::format("dump_{}", sd.name);
    if (Status e = render(c, Plot{fig, lay.width, lay.height, b}); !e.is_ok()) return e;
    c.doc.figure(fig,
                 std::string("Left: every token of the dump by verdict, ") +
                     (any_mu ? "over the momentum decay 1 − μ (log scale) and η" : "over (α, β)") +
                     ": certified (light circles), undecided (triangles), refuted (dark squares)" +
                     (thinned ? fmt::format(", each class thinned to about {} drawn points", kDrawn) : std::string()) +
                     ". Right: the share of each head's tokens per verdict (grey: certify() failed, no verdict).",
                 {tfile, hfile});
  }
  return Status::ok();
}

Status section_checkpoints(Context& c, Shared&) {
  const Study& s = c.study;
  for (const StudyCheckpoint& sc : s.checkpoints) {
    if (interrupted()) return interrupted_status();
    CheckpointOptions co;
    co.param = sc.param;
    co.base_config = sc.model;
    auto ck = read_checkpoint(sc.path, co);
    if (!ck.is_ok()) return error(ck.status.code, fmt::format("checkpoint '{}': {}", sc.name, ck.status.message));
    const Checkpoint& k = ck.value;
    size_t n_heads = 0;
    for (const auto& l : k.layers) n_heads += l.size();
    c.progress(fmt::format("checkpoint {}: {} heads x {} samples certified", sc.name, n_heads, sc.samples));
    ConstraintOptions opt = constraint_options(s);
    opt.sampling.samples = sc.samples;
    c.seeds["checkpoint." + sc.name] = opt.sampling.seed;
    auto rep = analyze_checkpoint(k, sc.param, opt);
    if (!rep.is_ok()) return error(rep.status.code, fmt::format("checkpoint '{}': {}", sc.name, rep.status.message));
    if (interrupted()) return interrupted_status();
    const std::vector<HeadConstraint>& heads = rep.value;

    c.doc.heading(2, fmt::format("Checkpoint `{}`", sc.name), "checkpoint-" + sc.name);
    c.doc.paragraph(fmt::format(
        "The learned gate parameters of `{}` ({} layers × {} heads; min_log_mu {} from {}, τ = {} from hidden_size "
        "{} ({}) and tau_factor {} ({})). For each head, with its learned parameters fixed, {} raw-input samples "
        "are drawn from the `{}` box (seed {}), mapped through the `{}` parametrization and certified one by one, as "
        "`mdnstab constraint --checkpoint` does. A head is refuted when a sample with max(α, μ) ≤ 1 − {} is refuted, "
        "undecided when such a sample is undecided, certified otherwise; a layer is refuted when one of its heads "
        "is, certified when all are.{}",
        std::filesystem::path(sc.path).filename().string(), k.layers.size(), k.config.num_heads,
        fmt_num(k.config.min_log_mu, 4), k.min_log_mu_source, fmt_num(k.config.tau(), 4), k.config.hidden_size,
        k.hidden_size_source, fmt_num(k.config.tau_factor, 4), k.tau_factor_source, sc.samples,
        to_string(opt.sampling.range), opt.sampling.seed, to_string(sc.param), fmt_num(opt.margin, 3),
        source_sentence(sc.note)));

    CsvWriter csv({"layer", "head", "A_log", "Mu_log", "dt_bias", "mu_bias", "log_factor", "samples", "certified",
                   "undecided", "refuted", "failed", "verdict", "worst_gamma", "worst_lower_bound",
                   "worst_witness_angle"});
    long head_counts[3] = {0, 0, 0};
    std::vector<int> layer_code(k.layers.size(), 0);
    const HeadConstraint* worst = nullptr;
    for (const HeadConstraint& h : heads) {
      const ConstraintReport& r = h.report;
      const VerdictCounts& in = r.inside_margin;
      const int code = verdict_code(margin_verdict(r));
      ++head_counts[code];
      layer_code[size_t(h.layer)] = std::max(layer_code[size_t(h.layer)], code);
      const CheckedGate* cx = r.counterexamples.empty() ? nullptr : &r.counterexamples[0];
      csv.num(h.layer).num(h.head).exact(h.params.A_log).exact(h.params.Mu_log).exact(h.params.dt_bias)
          .exact(h.params.mu_bias).exact(h.params.log_factor).num(double(in.total()))
          .num(in.fraction(in.certified)).num(in.fraction(in.undecided)).num(in.fraction(in.refuted))
          .num(in.fraction(in.failed)).num(code).exact(r.worst_gamma_inside_margin)
          .exact(cx ? cx->cert.lower_bound : NAN).num(cx ? witness_angle(cx->cert) : NAN).end();
      if (cx && in.refuted > 0 &&
          (!worst || cx->cert.lower_bound > worst->report.counterexamples[0].cert.lower_bound))
        worst = &h;
    }
    const std::string file = fmt::format("checkpoint_{}_heads.csv", sc.name);
    if (Status e = write_text(c.data(file), csv.text); !e.is_ok()) return e;
    long layer_counts[3] = {0, 0, 0};
    for (int code : layer_code) ++layer_counts[code];

    const double nh = double(std::max<size_t>(heads.size(), 1)), nl = double(std::max<size_t>(k.layers.size(), 1));
    const std::string key = "checkpoint." + sc.name;
    std::string sentence = fmt::format(
        "Of the {} heads, {} are certified, {} undecided and {} refuted; of the {} layers, {} are certified, {} "
        "undecided and {} refuted",
        heads.size(), c.state(key + ".fraction_heads_certified", head_counts[0] / nh, pct(head_counts[0] / nh)),
        c.state(key + ".fraction_heads_undecided", head_counts[1] / nh, pct(head_counts[1] / nh)),
        c.state(key + ".fraction_heads_refuted", head_counts[2] / nh, pct(head_counts[2] / nh)), k.layers.size(),
        c.state(key + ".fraction_layers_certified", layer_counts[0] / nl, pct(layer_counts[0] / nl)),
        c.state(key + ".fraction_layers_undecided", layer_counts[1] / nl, pct(layer_counts[1] / nl)),
        c.state(key + ".fraction_layers_refuted", layer_counts[2] / nl, pct(layer_counts[2] / nl)));
    long heads_failed = 0, samples_failed = 0, samples_inside = 0;
    for (const HeadConstraint& h : heads) {
      heads_failed += h.report.inside_margin.failed > 0;
      samples_failed += h.report.inside_margin.failed;
      samples_inside += h.report.inside_margin.total();
    }
    if (heads_failed > 0)
      sentence += fmt::format(" (certify() failed on {} of the {} samples inside the margin, in {} heads, first: {}; a "
                              "head with such a sample and no refuted one counts as undecided)",
                              samples_failed, samples_inside, heads_failed,
                              std::find_if(heads.begin(), heads.end(), [](const HeadConstraint& h) {
                                return !h.report.first_failure.empty();
                              })->report.first_failure);
    std::string highlight = fmt::format("Checkpoint `{}`: {} of {} heads certified, {} refuted", sc.name,
                                        pct(head_counts[0] / nh), heads.size(), pct(head_counts[2] / nh));
    if (worst) {
      const CheckedGate& w = worst->report.counterexamples[0];
      sentence += fmt::format(
          ". Worst counterexample: layer {} head {}, {}: γ = {}, and {} grow the state {}× per step", worst->layer,
          worst->head, gates_text(w.sample.mapped.gates),
          c.state(key + ".worst_gamma", w.cert.upper_bound, fmt_num(w.cert.upper_bound, 6)), witness_words(w.cert),
          c.state(key + ".worst_lower_bound", w.cert.lower_bound, fmt_num(w.cert.lower_bound, 6)));
      if (w.cert.witness.kind == Witness::Kind::kRotation)
        c.state(key + ".worst_witness_angle", w.cert.witness.angle, fmt_num(w.cert.witness.angle, 4));
      highlight += fmt::format("; the worst head's counterexample grows {}× per step", fmt_num(w.cert.lower_bound, 6));
    } else {
      sentence += ". No sample inside the margin is refuted";
    }
    c.doc.paragraph(sentence + ".");
    c.highlights.push_back(highlight + ".");

    const int w = std::max(760, 120 + 34 * int(heads.size()));
    std::string b = "set key at screen 0.5, screen 0.985 center top horizontal samplen 1 width -1\n";
    b += "set tmargin at screen 0.84\nset bmargin at screen 0.2\nset lmargin at screen " +
         fmt::format("{:.4f}", 80.0 / w) + "\n";
    b += "set xlabel 'layer:head'\nset ylabel 'samples inside the margin (%)'\nset xtics rotate by -60\n";
    const int cols[4] = {9, 10, 11, 12};
    b += stacked_bars(file, "(sprintf('%d:%d', $1, $2))", cols);
    const std::string fig = fmt::format("checkpoint_{}", sc.name);
    if (Status e = render(c, Plot{fig, w, 460, b}); !e.is_ok()) return e;
    c.doc.figure(fig,
                 fmt::format("The verdicts of each head's {} samples with max(α, μ) ≤ 1 − {}, one bar per layer:head "
                             "(grey: certify() failed, no verdict).",
                             sc.samples, fmt_num(opt.margin, 3)),
                 {file});
  }
  return Status::ok();
}

}  // namespace mdnstab::report_detail
