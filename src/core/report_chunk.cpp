// Report section on the chunkwise algorithm's accuracy (DESIGN.md section 5, [chunk_safety]):
// the emulated error map from run_chunk_map, the predictive rule's boundary (chunk_safe on a
// finer grid, refined by bisection), and the rule over the parametrization's reachable samples
// (analyze_chunk_safety), as `mdnstab chunk-safety` computes them.
// Tested in tests/test_report_models.cpp and tests/report/check_numbers.py.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "mdnstab/chunk_safety.hpp"
#include "mdnstab/sampling.hpp"
#include "report_impl.hpp"

namespace mdnstab::report_detail {

namespace {

// Where the rule changes its verdict along log_alpha at fixed log_mu: the
// crossings of a fine scan, each refined by bisection to 1e-9 of the range.
struct Crossing {
  double log_mu, log_alpha;
  int branch;  // k-th crossing of its row, from low log_alpha
};

Result<std::vector<Crossing>> rule_boundary(const StudyChunkSafety& cs, PScale ps, const ChunkRuleOptions& ro) {
  constexpr int kRows = 241, kCols = 481;
  auto safe = [&](double la, double lm) -> Result<bool> {
    auto g = Gates::from_log(la, cs.beta, lm, cs.eta, ps);
    if (!g.is_ok()) return g.status;
    return chunk_safe(g.value, cs.chunk, cs.precision, ro);
  };
  std::vector<Crossing> out;
  for (int i = 0; i < kRows; ++i) {
    const double lm = cs.log_mu_lo + (cs.log_mu_hi - cs.log_mu_lo) * i / (kRows - 1);
    int branch = 0;
    double prev_x = cs.log_alpha_lo;
    auto prev = safe(prev_x, lm);
    if (!prev.is_ok()) return prev.status;
    for (int j = 1; j < kCols; ++j) {
      const double x = cs.log_alpha_lo + (cs.log_alpha_hi - cs.log_alpha_lo) * j / (kCols - 1);
      auto cur = safe(x, lm);
      if (!cur.is_ok()) return cur.status;
      if (cur.value != prev.value) {
        double lo = prev_x, hi = x;
        while (hi - lo > 1e-9 * (cs.log_alpha_hi - cs.log_alpha_lo)) {
          const double mid = 0.5 * (lo + hi);
          auto m = safe(mid, lm);
          if (!m.is_ok()) return m.status;
          (m.value == prev.value ? lo : hi) = mid;
        }
        out.push_back({lm, 0.5 * (lo + hi), branch++});
      }
      prev = cur;
      prev_x = x;
    }
  }
  return out;
}

}  // namespace

Status section_chunk_safety(Context& c, Shared&) {
  const Study& s = c.study;
  const StudyChunkSafety& cs = *s.chunk_safety;
  ChunkMapSpec spec = chunk_map_spec(cs, s.p_scale);
  spec.stop = &g_interrupt_signal;  // Ctrl-C stops the map between points, not after it
  const long N = cs.resolution;
  c.progress(fmt::format("chunk safety: {} x {} emulated chunkwise passes ({} tokens, DK {}, DV {}, C = {}, {})", N, N,
                         cs.steps, cs.dk, cs.dv, cs.chunk, to_string(cs.precision)));
  c.seeds["chunk_safety.inputs"] = spec.seed;
  c.seeds["chunk_safety.safe_spot_choice"] = spec.seed;
  auto run = run_chunk_map(spec);
  if (interrupted()) return interrupted_status();
  if (!run.is_ok()) return error(run.status.code, fmt::format("chunk safety map: {}", run.status.message));
  const ChunkMapSummary& m = run.value;
  ChunkRuleOptions ro;
  ro.tol = cs.tolerance;
  ro.steps = cs.steps;
  ro.dk = cs.dk;
  const std::string prec(to_string(cs.precision));

  c.doc.heading(2, "Chunkwise kernel safety", "chunk-safety");
  c.doc.paragraph(fmt::format(
      "The reordered chunkwise algorithm (DESIGN.md section 5) forms each chunk's weights as a large exponential "
      "times a small difference; in finite precision it loses Γ_tt, or overflows, once α decays much slower than μ "
      "within a chunk. The map runs the emulated chunkwise pass (chunk C = {}, {}) against the fp64 recurrence on "
      "the same random q, k, v ({} tokens, DK = {}, DV = {}, seed {}), with α and μ held constant at each point of a "
      "{} × {} grid over log α in [{}, {}] and log μ in [{}, {}] (β = {}, η = {}); a point is broken when the "
      "relative RMS output error exceeds {} or the output is not finite, as `mdnstab chunk-safety` does. The "
      "predictive rule (chunk_safety.hpp) calls a chunk unsafe when an exponent overflows or its predicted error "
      "exceeds the same tolerance.",
      cs.chunk, prec, cs.steps, cs.dk, cs.dv, spec.seed, N, N, fmt_num(cs.log_alpha_lo, 4), fmt_num(cs.log_alpha_hi, 4),
      fmt_num(cs.log_mu_lo, 4), fmt_num(cs.log_mu_hi, 4), fmt_num(cs.beta, 4), fmt_num(cs.eta, 4),
      fmt_num(cs.tolerance, 3)));

  // The map: every point with its measured error and the rule's verdict.
  CsvWriter csv({"log_alpha", "log_mu", "rel_error", "log10_error_shown", "finite", "reference_finite", "broken",
                 "predicted_error", "log_cancellation", "rule_safe"});
  for (const ChunkMapPoint& pt : m.points_list) {
    // Shown clamped to [-8, 1]; a non-finite output is drawn at the top.
    const double shown = !pt.error.finite ? 1.0 : std::clamp(std::log10(std::max(pt.error.rel_rms, 1e-300)), -8.0, 1.0);
    csv.num(pt.gates.log_alpha, 10).num(pt.gates.log_mu, 10).num(pt.error.rel_rms).num(shown).num(pt.error.finite)
        .num(pt.error.reference_finite).num(pt.broken).num(pt.risk.predicted_error)
        .num(pt.risk.log_cancellation).num(!pt.predicted).end();
  }
  const std::string mfile = "chunk_map.csv";
  if (Status e = write_text(c.data(mfile), csv.text); !e.is_ok()) return e;
  auto bnd = rule_boundary(cs, s.p_scale, ro);
  if (!bnd.is_ok()) return bnd.status;
  CsvWriter bcsv({"log_mu", "log_alpha", "branch"});
  int branches = 0;
  for (const Crossing& x : bnd.value) branches = std::max(branches, x.branch + 1);
  // One block per branch (a blank line between), so that gnuplot draws each as a curve.
  for (int k = 0; k < branches; ++k) {
    if (k > 0) bcsv.text += "\n\n";
    for (const Crossing& x : bnd.value)
      if (x.branch == k) bcsv.exact(x.log_mu).exact(x.log_alpha).num(k).end();
  }
  const std::string bfile = "chunk_rule_boundary.csv";
  if (Status e = write_text(c.data(bfile), bcsv.text); !e.is_ok()) return e;

  const double judged = double(std::max(m.judged, 1L));
  std::vector<std::string> findings;
  std::string s1 = fmt::format(
      "Measured: {} of the {} judged grid points are broken ({} with a non-finite output)",
      c.state("chunk_safety.fraction_broken", double(m.broken) / judged, pct(double(m.broken) / judged)), m.judged,
      m.nonfinite);
  if (m.reference_nonfinite)
    s1 += fmt::format("; {} points where the fp64 recurrence itself overflows are not judged", m.reference_nonfinite);
  if (m.broken)
    s1 += fmt::format("; the broken region spans log α in [{}, {}] and log μ in [{}, {}]", fmt_num(m.broken_min[0], 4),
                      fmt_num(m.broken_max[0], 4), fmt_num(m.broken_min[1], 4), fmt_num(m.broken_max[1], 4));
  s1 += fmt::format("; the largest error at an unbroken point is {}",
                    c.state("chunk_safety.max_error_not_broken", m.max_error_safe, fmt_num(m.max_error_safe, 3)));
  findings.push_back(s1 + ".");
  std::string s2 = fmt::format(
      "The rule agrees with the measurement on {} of the judged points: {} broke where it said safe, {} stayed "
      "accurate where it said unsafe",
      c.state("chunk_safety.rule_agreement", double(m.rule_agree) / judged, pct(double(m.rule_agree) / judged)),
      m.false_safe, m.false_unsafe);
  if (m.has_miss)
    s2 += fmt::format("; the worst miss (log α = {}, log μ = {}: error {}, predicted {}) lies {} decades from the "
                      "rule's boundary, and {} of the {} points more than a decade from it are missed",
                      fmt_num(m.worst_miss.gates.log_alpha, 4), fmt_num(m.worst_miss.gates.log_mu, 4),
                      fmt_num(m.worst_miss.error.rel_rms, 3), fmt_num(m.worst_miss.risk.predicted_error, 3),
                      fmt_num(m.worst_miss_margin, 3), m.far_misses, m.far_points);
  findings.push_back(s2 + ".");
  c.highlights.push_back(fmt::format(
      "Chunkwise kernel (C = {}, {}): {} of the (log α, log μ) map is broken; the predictive rule agrees with the "
      "emulation on {} of it.",
      cs.chunk, prec, pct(double(m.broken) / judged), pct(double(m.rule_agree) / judged)));

  // The parametrization's reachable samples under the rule, each held constant over a chunk.
  std::string rfile;
  long reach_thin = 1;  // draw about kDrawn reachable samples (the SVG holds one element per point)
  constexpr long kDrawn = 400;
  if (s.parametrization) {
    const StudyParametrization& p = *s.parametrization;
    if (p.kind == Parametrization::kGdn) {
      findings.push_back("The `gdn` parametrization has μ = 0, whose log the reordered MDN algorithm cannot take: "
                         "its reachable gates are not judged here.");
    } else {
      Table t;
      t.header = {"config", "samples"};
      for (int C : kReportedChunks) t.header.push_back(fmt::format("unsafe at C = {}", C));
      t.header.push_back("largest safe C");
      t.header.push_back("largest safe C, checked by emulation");
      // The map's random inputs: the rule's "unsafe" verdicts that decide the largest safe
      // chunk are checked on them.
      const ChunkInputs inputs = random_chunk_inputs(cs.dk, cs.dv, cs.steps, spec.seed);
      std::vector<std::string> head = {"log_alpha", "initial_box"};
      std::vector<int> initial_box;  // 1: drawn from the initialization box (the same for every config)
      std::vector<std::vector<Gates>> per_cfg;
      std::vector<GateSetChunkSafety> res, res_init;  // all samples; the initialization box's only
      for (const ParamConfig& cfg : p.configs) {
        if (interrupted()) return interrupted_status();
        SamplingOptions so;
        so.samples = p.samples;
        so.seed = s.seed;  // the reachable section's draws
        so.range = p.range;
        so.p_scale = s.p_scale;
        auto smp = sample_reachable_gates(p.kind, cfg, so);
        if (!smp.is_ok()) return error(smp.status.code, fmt::format("sampling {}: {}", cfg.name, smp.status.message));
        std::vector<Gates> gates;
        std::vector<Gates> init;
        for (const SampledGate& g : smp.value) {
          gates.push_back(g.mapped.gates);
          if (g.range == SampleRange::kInitial) init.push_back(g.mapped.gates);
          if (per_cfg.empty()) initial_box.push_back(g.range == SampleRange::kInitial);
        }
        res.push_back(analyze_chunk_safety(gates, cs.chunk, cs.precision, ro));
        res_init.push_back(analyze_chunk_safety(init, cs.chunk, cs.precision, ro));
        per_cfg.push_back(std::move(gates));
        head.push_back("log_mu_" + cfg.name);
        head.push_back("rule_safe_" + cfg.name);
      }
      std::vector<CheckedSafeChunk> checked;
      for (const auto& gates : per_cfg) checked.push_back(largest_safe_chunk_checked(gates, cs.precision, ro, inputs));
      // The rule's safe verdicts at the checked size, spot-checked by the same emulation.
      std::vector<SafeVerdictCheck> spots;
      CsvWriter sc({"config", "index", "rel_error", "finite", "reference_finite", "left_out", "broken"});
      for (size_t ci = 0; ci < per_cfg.size(); ++ci) {
        if (interrupted()) return interrupted_status();
        spots.push_back(checked[ci].judged ? check_safe_verdicts(per_cfg[ci], checked[ci].largest, cs.precision, ro,
                                                                 inputs, kSafeSpotChecks, spec.seed)
                                           : SafeVerdictCheck{});
        for (const SafeVerdictCheck::Sample& x : spots.back().samples)
          sc.str(p.configs[ci].name)
              .num(double(x.index))
              .exact(x.error.rel_rms)
              .num(x.error.finite)
              .num(x.error.reference_finite)
              .num(x.left_out)
              .num(x.broken)
              .end();
      }
      if (Status e = write_text(c.data("chunk_safe_spot.csv"), sc.text); !e.is_ok()) return e;
      CsvWriter rc(head);
      for (size_t i = 0; i < per_cfg[0].size(); ++i) {
        // Positions to 6 digits (the figure's dots); the verdicts are the data behind the fractions.
        rc.num(per_cfg[0][i].log_alpha).num(initial_box[i]);
        for (size_t ci = 0; ci < per_cfg.size(); ++ci)
          rc.num(per_cfg[ci][i].log_mu).num(chunk_safe(per_cfg[ci][i], cs.chunk, cs.precision, ro));
        rc.end();
      }
      rfile = "chunk_reachable.csv";
      reach_thin = std::max(1L, long(per_cfg[0].size()) / kDrawn);
      if (Status e = write_text(c.data(rfile), rc.text); !e.is_ok()) return e;
      auto largest_text = [](int size) { return size ? fmt::format("{}", size) : std::string("none"); };
      auto largest = [&](const GateSetChunkSafety& x) { return largest_text(x.largest_safe_chunk); };
      for (size_t ci = 0; ci < p.configs.size(); ++ci) {
        const GateSetChunkSafety& r = res[ci];
        const ParamConfig& cfg = p.configs[ci];
        const double n = double(std::max(r.gates, 1L));
        std::vector<std::string> row = {cfg.name, fmt::format("{}", r.gates)};
        for (const ChunkCount& cc : r.by_chunk) row.push_back(pct(double(cc.unsafe) / n));
        row.push_back(largest(r));
        const CheckedSafeChunk& chk = checked[ci];
        row.push_back(largest_text(chk.largest));
        t.rows.push_back(row);
        const std::string key = "chunk_safety." + cfg.name;
        std::string sent = fmt::format(
            "{} (min_log_mu = {}): at C = {} in {}, {} of the {} sampled reachable gates are unsafe ({} with an "
            "overflowing exponent) when held constant over a chunk",
            cfg.name, fmt_num(cfg.min_log_mu, 4), cs.chunk, prec,
            c.state(key + ".fraction_unsafe", double(r.at.unsafe) / n, pct(double(r.at.unsafe) / n)), r.gates,
            pct(double(r.at.overflow) / n));
        if (r.largest_safe_chunk == 0) {
          c.state(key + ".largest_safe_chunk", 0, "0");
          sent += fmt::format("; some are unsafe even at C = 1, so no chunk size is safe for every reachable gate");
        } else {
          sent += fmt::format("; the largest chunk size safe for every one of them is {} (largest power of two: {})",
                              c.state(key + ".largest_safe_chunk", r.largest_safe_chunk,
                                      fmt::format("{}", r.largest_safe_chunk)),
                              r.largest_safe_pow2);
        }
        const bool init_too = res_init[ci].gates > 0 && res_init[ci].gates < r.gates;
        // The wide box reaches gates no initialized layer produces; the initialization box alone, as
        // `chunk-safety --param` also reports it.
        if (init_too)
          sent += fmt::format(
              "; of the {} samples from the initialization box alone, {} are unsafe at C = {} and the largest safe "
              "chunk size is {}",
              res_init[ci].gates,
              c.state(key + ".initial.fraction_unsafe", double(res_init[ci].at.unsafe) / double(res_init[ci].gates),
                      pct(double(res_init[ci].at.unsafe) / double(res_init[ci].gates))),
              cs.chunk,
              c.state(key + ".initial.largest_safe_chunk", res_init[ci].largest_safe_chunk,
                      fmt::format("{}", res_init[ci].largest_safe_chunk)));
        sent += fmt::format(
            "; with the rule's unsafe verdicts checked by emulation on the map's inputs ({} emulated passes), the "
            "largest safe chunk size is {}",
            chk.emulations,
            c.state(key + ".checked_safe_chunk", chk.largest, largest_text(chk.largest)));
        if (chk.unrepresentable) {
          // Why no chunk size mends them: outputs out of range, or the precision's arithmetic.
          // One cause for all reads "all with ...", several give their counts.
          const long left = chk.unrepresentable, erred = left - chk.overflow - chk.underflow;
          const int causes = (chk.overflow > 0) + (chk.underflow > 0) + (erred > 0);
          auto count = [&](const std::string& k, long cnt) -> std::string {  // with a space after it
            if (causes > 1) return c.state(key + k, double(cnt), fmt::format("{}", cnt)) + " ";
            return left == 1 ? "" : "all ";  // = checked_left_out, stated below
          };
          std::vector<std::string> why;
          if (chk.overflow)
            why.push_back(fmt::format("{}with outputs not finite in {} (inf or NaN)", count(".checked_left_out_overflow",
                                                                              chk.overflow), prec));
          if (chk.underflow)
            why.push_back(fmt::format("{}with outputs below {}'s smallest normal value",
                                      count(".checked_left_out_underflow", chk.underflow), prec));
          if (erred)
            why.push_back(fmt::format("{}with {}'s arithmetic off by more than the tolerance {}",
                                      count(".checked_left_out_erred", erred), prec, fmt_num(cs.tolerance, 3)));
          sent += fmt::format(" ({} sample{} left out: the emulation breaks {} even at C = 1, {})",
                              c.state(key + ".checked_left_out", double(left), fmt::format("{}", left)), left == 1 ? "" : "s",
                              left == 1 ? "it" : "them", fmt::join(why, ", "));
        }
        if (const SafeVerdictCheck& sp = spots[ci]; sp.checked) {
          sent += fmt::format(
              "; {} of the {} samples the rule calls safe at C = {} (a seeded choice), emulated the same way: {} "
              "broke{}",
              c.state(key + ".safe_spot_checked", double(sp.checked), fmt::format("{}", sp.checked)), sp.safe,
              sp.chunk, c.state(key + ".safe_spot_broken", double(sp.broken), fmt::format("{}", sp.broken)),
              sp.left_out ? fmt::format(", not counting {} that break even at C = 1",
                                        c.state(key + ".safe_spot_left_out", double(sp.left_out),
                                                fmt::format("{}", sp.left_out)))
                          : std::string());
        }
        if (r.worst >= 0)
          sent += fmt::format("; the worst sample ({}) has Λ = {}", gates_text(per_cfg[ci][size_t(r.worst)]),
                              fmt_num(r.worst_risk.log_cancellation, 4));
        findings.push_back(sent + ".");
        // The wide box's extreme samples decide the rule's largest safe chunk (|log alpha| ~ 10^4,
        // where the rule is conservative): the headline gives the initialization box's figure and
        // the checked one too, so that one sample at the box's edge does not stand for all.
        c.highlights.push_back(fmt::format(
            "{}: {} of sampled reachable gates unsafe for the chunkwise kernel at C = {} ({}); largest safe chunk "
            "for all of them: {} ({}{} with the rule's unsafe verdicts checked by emulation).",
            cfg.name, pct(double(r.at.unsafe) / n), cs.chunk, prec, largest(r),
            init_too ? fmt::format("{} for the initialization box alone; ", largest(res_init[ci])) : std::string(),
            largest_text(chk.largest)));
      }
      c.doc.table(std::move(t));
    }
  }
  c.doc.list(findings);

  // Figure: log10 error heatmap, the rule's boundary, the rule's misses, reachable samples in range.
  const int W = 820, H = 640;
  std::string b = gp_viridis();
  b += "set lmargin at screen 0.11\nset rmargin at screen 0.78\nset tmargin at screen 0.84\nset bmargin at screen 0.11\n";
  b += fmt::format("set xrange [{}:{}]\nset yrange [{}:{}]\nset cbrange [-8:1]\n", cs.log_alpha_lo, cs.log_alpha_hi,
                   cs.log_mu_lo, cs.log_mu_hi);
  b += "set tics out nomirror\nset xlabel 'log α (per-step decay of S, natural log)'\n"
       "set ylabel 'log μ (per-step decay of the momentum M)'\nset cblabel 'log10 relative output error (top: not finite)'\n";
  b += "set colorbox user origin screen 0.81, screen 0.11 size screen 0.03, screen 0.73\n";
  b += "set key at screen 0.45, screen 0.985 center top horizontal maxrows 1 samplen 2 width -2\n";
  b += fmt::format("set title {}\n", gp_quote(fmt::format("C = {}, {}, β = {}, η = {}", cs.chunk, prec,
                                                          fmt_num(cs.beta, 3), fmt_num(cs.eta, 3))));
  b += fmt::format("plot '../data/{}' skip 1 using 1:2:4 with image notitle", mfile);
  if (rfile.size())
    b += fmt::format(", '../data/{}' skip 1 {}using 1:3 with points pt 6 ps 0.5 lc rgb '#ff66cc' title "
                     "'reachable ({})'",
                     rfile, reach_thin > 1 ? fmt::format("every {} ", reach_thin) : std::string(),
                     s.parametrization->configs[0].name);
  // Disagreement: the rule says safe (rule_safe = 1) where the point broke, or unsafe where it did not.
  b += fmt::format(", '../data/{0}' skip 1 using 1:((($10 == 1) == ($7 == 1)) && $6 == 1 ? $2 : NaN) with points "
                   "pt 2 ps 1.4 lw 3 lc rgb '#d62728' title 'rule ≠ measured'",
                   mfile);
  if (!bnd.value.empty())
    b += fmt::format(", '../data/{0}' skip 1 using 2:1 with lines lc rgb '#ffffff' lw 4.5 notitle, '../data/{0}' "
                     "skip 1 using 2:1 with lines lc rgb '#000000' lw 2 dt 2 title 'rule boundary'",
                     bfile);
  b += "\n";
  if (Status e = render(c, Plot{"chunk_safety_map", W, H, b}); !e.is_ok()) return e;
  std::vector<std::string> files = {mfile, bfile};
  if (rfile.size()) files.push_back(rfile);
  c.doc.figure("chunk_safety_map",
               "Relative RMS output error of the emulated chunkwise pass against the fp64 recurrence, log10 scale "
               "(dark: accurate, light: broken; the top of the scale also marks non-finite outputs). Dashed: the "
               "predictive rule's boundary between safe and unsafe (from the rule on a finer grid). Crosses: grid "
               "points where the rule and the measurement disagree." +
                   (rfile.size() ? fmt::format(" Circles: the sampled reachable gates of {} that fall in the map's "
                                               "range (at their own β and η; the map holds β and η fixed){}.",
                                               s.parametrization->configs[0].name,
                                               reach_thin > 1 ? fmt::format(", every {}th sample drawn", reach_thin)
                                                              : std::string())
                                 : std::string()),
               files);
  return Status::ok();
}

}  // namespace mdnstab::report_detail
