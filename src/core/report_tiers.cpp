// Report sections on tier 3 (DESIGN.md section 4): the parametrization's
// sampled reachable gates certified one by one (fractions, worst frozen rho,
// worst counterexample), and the three-tier map over (alpha, beta) with the
// reachable slice overlaid. Tested in tests/test_report.cpp and tests/report/.
#include <algorithm>
#include <array>
#include <cmath>

#include <fmt/format.h>

#include "mdnstab/constraint.hpp"
#include "mdnstab/reachable_slice.hpp"
#include "mdnstab/sampling.hpp"
#include "mdnstab/spectrum.hpp"
#include "report_impl.hpp"

namespace mdnstab::report_detail {

namespace {

const std::vector<std::pair<std::string, std::string>> kTierColours = {
    {kVerdictNames[0], kVerdictColours[0]}, {kVerdictNames[1], kVerdictColours[1]},
    {kVerdictNames[2], kVerdictColours[2]}};

// Certifies every gate alone, on all cores; stops early on interrupt. A gate
// certify() fails on is kept with its status (`failed`), counted and named in
// the text rather than aborting the report or being counted as a verdict.
struct Certified {
  std::vector<Certificate> certs;
  std::vector<Status> failed;  // ok where certify succeeded
  long n_failed = 0;
  std::string first_failure;
};

Result<Certified> certify_all(const std::vector<Gates>& gates) {
  Certified r;
  r.certs.assign(gates.size(), Certificate{});
  r.failed.assign(gates.size(), Status{});
  const long n = long(gates.size());
#pragma omp parallel for schedule(dynamic, 32)
  for (long i = 0; i < n; ++i) {
    if (interrupted()) continue;
    auto c = certify(std::span<const Gates>(&gates[size_t(i)], 1));
    if (c.is_ok())
      r.certs[size_t(i)] = c.value;
    else
      r.failed[size_t(i)] = c.status;
  }
  if (interrupted()) return interrupted_status();
  for (size_t i = 0; i < gates.size(); ++i)
    if (!r.failed[i].is_ok()) {
      if (r.n_failed++ == 0)
        r.first_failure = fmt::format("{}: {}", gates_text(gates[i]), r.failed[i].message);
    }
  return r;
}

std::string failure_note(const Certified& c, size_t total) {
  return fmt::format("certify() failed on {} of {} gates (first: {}); they are left out of every fraction and "
                     "count as no verdict",
                     c.n_failed, total, c.first_failure);
}

std::string config_label(const ParamConfig& c) {
  return std::isinf(c.min_log_mu) ? fmt::format("{} (no μ clamp)", c.name)
                                  : fmt::format("{} (min_log_mu = {})", c.name, fmt_num(c.min_log_mu, 4));
}

// 1 - frozen rho without the rounding of rho itself (near the set's edge rho
// rounds to 1 in double). A_perp's radius is max(alpha, mu), exact from the
// logs; A_par's is sqrt(alpha mu) when complex. For a positive real pair,
// p(1) = (1 - l1)(1 - l2) with p(1) = 1 - tr + det = (1 - alpha)(1 - mu) +
// beta eta rho_p, formed without cancellation, so 1 - l1 = p(1) / (1 - l2).
double frozen_margin(const Gates& g) {
  const double oma = -std::expm1(g.log_alpha), omm = -std::expm1(g.log_mu);
  const double perp = std::min(oma, omm);
  const BlockSpectrum par = analyze_block(a_par(g), g.log_alpha + g.log_mu, SpectrumOptions{false});
  double par_margin = 1.0 - par.spectral_radius;
  if (par.regime == Regime::kComplex) {
    par_margin = -std::expm1(0.5 * (g.log_alpha + g.log_mu));
  } else if (!par.negative_eigenvalue) {
    const double p1 = oma * omm + g.beta * g.eta * g.rho_p();
    const double l2 = std::min(par.eig.l1.real(), par.eig.l2.real());
    if (1.0 - l2 > 0) par_margin = p1 / (1.0 - l2);
  }
  return std::min(perp, par_margin);
}


std::string witness_text(const Certificate& c) {
  if (c.witness.kind == Witness::Kind::kRotation)
    return fmt::format("keys rotating by {} rad per step in a plane", fmt_num(c.witness.angle, 4));
  return fmt::format("a switching key schedule of period {}", c.witness.period);
}

}  // namespace

Status section_reachable(Context& c, Shared& shared) {
  const Study& s = c.study;
  const StudyParametrization& p = *s.parametrization;
  c.progress(fmt::format("reachable gates: {} samples x {} configs, certified one by one", p.samples, p.configs.size()));
  c.doc.heading(2, "Reachable gates and their certificates", "reachable");
  c.doc.paragraph(fmt::format(
      "The `{}` parametrization maps raw per-token projections and learned per-head parameters to gates (DESIGN.md "
      "section 2). {} samples per model config are drawn from the `{}` box (uniform draws plus draws pushed to the "
      "saturating ends, where γ is decided), mapped to gates, and each gate is certified on its own (tier 3). A "
      "gate set reachable at its edges touches γ = 1 (μ or α → 1 with β → 0), so undecided gates are counted with "
      "their distance from that edge.",
      to_string(p.kind), p.samples, to_string(p.range)));

  std::vector<std::string> described;
  for (const ParamConfig& cfg : p.configs)
    described.push_back(fmt::format("{}: {}", config_label(cfg), describe_reachable_set(p.kind, cfg)));
  c.doc.list(described);
  Table t;
  t.header = {"config", "samples", "certified", "undecided", "refuted", "worst frozen ρ", "largest lower bound"};
  std::vector<std::string> findings, files;
  Counterexample best;
  double mapped_lower_0 = NAN;  // the first config's worst lower bound
  std::vector<std::vector<int>> verdicts(p.configs.size());  // per config, per sample (-1: no verdict)
  std::vector<std::vector<Gates>> mapped(p.configs.size());  // per config, per sample
  std::vector<long> worst_of(p.configs.size(), -1);          // per config: its worst counterexample's sample
  std::vector<bool> identical(p.configs.size(), false);      // same verdicts as the first config, said once
  std::vector<std::array<long, 3>> class_counts;              // per config: certified, undecided, refuted
  for (size_t ci = 0; ci < p.configs.size(); ++ci) {
    if (interrupted()) return interrupted_status();
    const ParamConfig& cfg = p.configs[ci];
    SamplingOptions so;
    so.samples = p.samples;
    so.seed = s.seed;  // the same raw draws for every config: they differ only in the map
    so.range = p.range;
    so.p_scale = s.p_scale;
    c.seeds["reachable." + cfg.name] = so.seed;
    auto smp = sample_reachable_gates(p.kind, cfg, so);
    if (!smp.is_ok()) return error(smp.status.code, fmt::format("sampling {}: {}", cfg.name, smp.status.message));
    std::vector<Gates> gates;
    gates.reserve(smp.value.size());
    for (const SampledGate& g : smp.value) gates.push_back(g.mapped.gates);
    auto certified = certify_all(gates);
    if (!certified.is_ok()) return certified.status;
    const std::vector<Certificate>& certs = certified.value.certs;
    const std::vector<Status>& failed = certified.value.failed;

    CsvWriter csv({"alpha", "beta", "mu", "eta", "one_minus_mu", "frozen_rho", "gamma", "lower_bound", "verdict",
                   "witness_angle", "sample_kind", "sample_box"});
    long n_cert = 0, n_und = 0, n_ref = 0, und_edge = 0, ref_inside = 0;
    double deepest_ref = -1;  // largest gate_depth() of a refuted sample (constraint.hpp)
    double worst_rho = 0, max_lower = 0, min_margin = INFINITY;
    long worst_i = -1;
    for (size_t i = 0; i < gates.size(); ++i) {
      const Gates& g = gates[i];
      const Certificate& ce = certs[i];
      verdicts[ci].push_back(failed[i].is_ok() ? verdict_code(ce.verdict) : -1);
      if (!failed[i].is_ok()) {
        csv.num(g.alpha).num(g.beta).num(g.mu).num(g.eta).num(-std::expm1(g.log_mu)).num(NAN).num(NAN).num(NAN)
            .num(NAN).num(NAN).num(double(smp.value[i].kind)).num(smp.value[i].range == SampleRange::kWide ? 1 : 0)
            .end();
        continue;
      }
      const int code = verdict_code(ce.verdict);
      n_cert += code == 0;
      n_und += code == 1;
      n_ref += code == 2;
      if (code == 2) {
        const double depth = gate_depth(g);
        deepest_ref = std::max(deepest_ref, depth);
        ref_inside += depth >= 1e-3;
      }
      // The edge of DESIGN.md section 4: alpha or mu within 1e-3 of 1.
      if (code == 1 && std::max(g.alpha, g.mu) > 1 - 1e-3) ++und_edge;
      worst_rho = std::max(worst_rho, ce.frozen_spectral_radius);
      min_margin = std::min(min_margin, frozen_margin(g));
      max_lower = std::max(max_lower, ce.lower_bound);
      if (code == 2 && (worst_i < 0 || ce.lower_bound > certs[size_t(worst_i)].lower_bound)) worst_i = long(i);
      // Gates with 10 digits; bounds exact: verdicts turn on their distance from 1,
      // which near the set's edge is below any fixed number of digits.
      csv.num(g.alpha, 10).num(g.beta, 10).num(g.mu, 10).num(g.eta, 10).num(-std::expm1(g.log_mu))
          .exact(ce.frozen_spectral_radius).exact(ce.upper_bound).exact(ce.lower_bound).num(code)
          .num(ce.witness.kind == Witness::Kind::kRotation ? ce.witness.angle : NAN)
          .num(double(smp.value[i].kind)).num(smp.value[i].range == SampleRange::kWide ? 1 : 0).end();
    }
    class_counts.push_back({n_cert, n_und, n_ref});
    worst_of[ci] = worst_i;
    mapped[ci] = gates;
    const std::string file = fmt::format("reachable_{}.csv", cfg.name);
    if (Status e = write_text(c.data(file), csv.text); !e.is_ok()) return e;
    files.push_back(file);
    // Fractions are of the gates that have a verdict.
    const double N = double(gates.size() - size_t(certified.value.n_failed));
    const std::string key = "reachable." + cfg.name;
    t.rows.push_back({config_label(cfg), fmt::format("{}", gates.size()), pct(n_cert / N), pct(n_und / N),
                      pct(n_ref / N), fmt_num(worst_rho, 6), fmt_num(max_lower, 6)});
    // A config whose samples get the same verdicts as the first config's, with
    // the same worst counterexample, is said to be identical once, with why.
    if (ci > 0 && verdicts[ci] == verdicts[0] && worst_i == worst_of[0] &&
        (worst_i < 0 || certs[size_t(worst_i)].lower_bound == mapped_lower_0)) {
      const ParamConfig& c0 = p.configs[0];
      long mu_differs = 0, other_differs = 0;
      long mu_differs_by_class[4] = {0, 0, 0, 0};  // certified, undecided, refuted, no verdict
      for (size_t i = 0; i < gates.size(); ++i) {
        const Gates& a = mapped[0][i];
        const Gates& g = gates[i];
        if (a.alpha != g.alpha || a.beta != g.beta || a.eta != g.eta) ++other_differs;
        if (a.mu != g.mu) {
          ++mu_differs;
          ++mu_differs_by_class[verdicts[ci][i] < 0 ? 3 : verdicts[ci][i]];
        }
      }
      // The fractions are the first config's; stated under this config's keys too.
      c.state(key + ".fraction_certified", n_cert / N, pct(n_cert / N));
      c.state(key + ".fraction_undecided", n_und / N, pct(n_und / N));
      c.state(key + ".fraction_refuted", n_ref / N, pct(n_ref / N));
      c.state(key + ".worst_frozen_rho", worst_rho, fmt_num(worst_rho, 6));
      if (worst_i >= 0) c.state(key + ".worst_lower_bound", certs[size_t(worst_i)].lower_bound,
                                fmt_num(certs[size_t(worst_i)].lower_bound, 6));
      const std::string why =
          other_differs == 0
              ? fmt::format("the two settings map the same {} raw draws to the same α, β and η and differ only in μ, "
                            "on the {} samples ({}) whose log μ falls below {} before the clamp",
                            gates.size(), mu_differs,
                            c.state(key + ".fraction_mu_differs", double(mu_differs) / double(gates.size()),
                                    pct(double(mu_differs) / double(gates.size()))),
                            fmt_num(std::max(cfg.min_log_mu, c0.min_log_mu), 4))
              : fmt::format("the two settings give different gates on {} of the {} raw draws (μ on {})",
                            std::max(other_differs, mu_differs), gates.size(), mu_differs);
      findings.push_back(fmt::format(
          "{}: identical to {} sample by sample ({} certified, {} undecided, {} refuted, the same worst "
          "counterexample), because {}; on every one of those the verdict is the same at both settings ({} "
          "certified, {} undecided, {} refuted, {} without a verdict at both){}.",
          config_label(cfg), c0.name, pct(n_cert / N), pct(n_und / N), pct(n_ref / N), why, mu_differs_by_class[0],
          mu_differs_by_class[1], mu_differs_by_class[2], mu_differs_by_class[3],
          worst_i >= 0 && gates[size_t(worst_i)].log_mu > std::max(cfg.min_log_mu, c0.min_log_mu)
              ? fmt::format("; the worst counterexample has 1 − μ = {}, clamped at neither setting",
                            fmt_num(-std::expm1(gates[size_t(worst_i)].log_mu), 3))
              : std::string()));
      c.highlights.push_back(fmt::format("{}: the same verdicts as {} on every sample; the clamp changes μ on {} of "
                                         "the {} samples, none of whose verdicts it changes.",
                                         config_label(cfg), c0.name, mu_differs, gates.size()));
      identical[ci] = true;
      continue;
    }
    if (ci == 0 && worst_i >= 0) mapped_lower_0 = certs[size_t(worst_i)].lower_bound;
    std::string sentence = fmt::format(
        "{}: of {} sampled reachable gates, {} are certified, {} undecided and {} refuted. The worst frozen ρ is {}{}",
        config_label(cfg), gates.size(), c.state(key + ".fraction_certified", n_cert / N, pct(n_cert / N)),
        c.state(key + ".fraction_undecided", n_und / N, pct(n_und / N)),
        c.state(key + ".fraction_refuted", n_ref / N, pct(n_ref / N)),
        c.state(key + ".worst_frozen_rho", worst_rho, fmt_num(worst_rho, 6)),
        min_margin > 0
            ? fmt::format(" (1 − ρ ≥ {} at every sample: every frozen-key system decays, if at the set's edge "
                          "only barely)",
                          c.state(key + ".min_frozen_margin", min_margin, fmt_num(min_margin, 3)))
            : " (a frozen-key system that does not decay)");
    if (n_und > 0)
      sentence += fmt::format("; {} of the {} undecided gates lie within 1e-3 of α = 1 or μ = 1", und_edge, n_und);
    if (certified.value.n_failed > 0) sentence += "; " + failure_note(certified.value, gates.size());
    if (n_ref > 0)
      sentence += fmt::format(
          "; {} refuted samples lie inside the margin max(α, μ) ≤ 1 − 1e-3, the deepest at 1 − max(α, μ) = {}",
          ref_inside, c.state(key + ".deepest_refuted_depth", deepest_ref, fmt_num(deepest_ref, 3)));
    if (worst_i >= 0) {
      const Certificate& wc = certs[size_t(worst_i)];
      const Gates& wg = gates[size_t(worst_i)];
      sentence += fmt::format(
          ". Worst counterexample: {} (1 − α − β = {}, 1 − μ = {}), {}, grows the state {}× per step",
          gates_text(wg), fmt_num(-std::expm1(wg.log_alpha) - wg.beta, 3), fmt_num(-std::expm1(wg.log_mu), 3),
          witness_text(wc),
          c.state(key + ".worst_lower_bound", wc.lower_bound, fmt_num(wc.lower_bound, 6)));
      if (!best.found || wc.lower_bound > best.cert.lower_bound) {
        best.found = true;
        best.source = fmt::format("reachable {} sample {}", cfg.name, worst_i);
        best.config = cfg.name;
        best.gates = wg;
        best.cert = wc;
        best.sample = smp.value[size_t(worst_i)];
      }
    } else {
      sentence += ". No sampled gate is refuted";
    }
    findings.push_back(sentence + ".");
    c.highlights.push_back(fmt::format("{}: {} of {} sampled reachable gates certified, {} refuted{}.",
                                       config_label(cfg), pct(n_cert / N), gates.size(), pct(n_ref / N),
                                       worst_i >= 0 ? fmt::format("; the worst counterexample grows {}× per step under {}",
                                                                  fmt_num(certs[size_t(worst_i)].lower_bound, 6),
                                                                  witness_text(certs[size_t(worst_i)]))
                                                    : std::string()));
  }
  // The configs share their raw draws (same seed): compare verdicts sample by sample.
  for (size_t ci = 1; ci < p.configs.size(); ++ci) {
    if (identical[ci]) continue;
    long differ = 0;
    for (size_t i = 0; i < verdicts[0].size(); ++i) differ += verdicts[ci][i] != verdicts[0][i];
    findings.push_back(fmt::format(
        "{} and {} map the same {} raw draws; their verdicts differ on {} of them ({}).", p.configs[0].name,
        p.configs[ci].name, verdicts[0].size(), differ,
        c.state(fmt::format("reachable.{}_vs_{}.fraction_differ", p.configs[ci].name, p.configs[0].name),
                double(differ) / double(verdicts[0].size()), pct(double(differ) / double(verdicts[0].size())))));
  }
  c.doc.table(std::move(t));
  c.doc.list(findings);
  if (best.found) {
    shared.worst = best;
    const SampledGate& sg = *best.sample;
    c.doc.paragraph(fmt::format(
        "The worst counterexample over all configs ({}) comes from raw inputs a = {}, b = {}, m = {}, e = {} and "
        "learned parameters A_log = {}, Mu_log = {}, dt_bias = {}, mu_bias = {}, log_factor = {} (θ = {} rad{}).",
        best.source, fmt_num(sg.raw.a, 4), fmt_num(sg.raw.b, 4), fmt_num(sg.raw.m, 4), fmt_num(sg.raw.e, 4),
        fmt_num(sg.head.A_log, 4), fmt_num(sg.head.Mu_log, 4), fmt_num(sg.head.dt_bias, 4),
        fmt_num(sg.head.mu_bias, 4), fmt_num(sg.head.log_factor, 4), fmt_num(sg.mapped.theta, 4),
        sg.mapped.mu_clamped ? ", μ clamped at min_log_mu" : ""));
  }

  // Scatter of the samples by verdict: (1 - mu, eta) shows where the momentum
  // gates refute; GDN has mu = 0, so (alpha, beta) instead.
  const bool gdn = p.kind == Parametrization::kGdn;
  const int n = int(p.configs.size());
  PanelLayout lay;
  lay.n = n;
  lay.colorbox = false;
  lay.width = std::max(620, 90 + 420 * n);
  lay.height = 470;
  lay.top = 70;
  std::string b = "set tics out nomirror\nset key at screen 0.5, screen 0.985 center top horizontal maxrows 1 samplen 1\n";
  b += gdn ? "set xrange [0:1]\nset yrange [0:1]\n" : "set logscale x\nset format x '1e%T'\nset yrange [0:2]\n";
  b += "set multiplot\n";
  const char* pts[3] = {"pt 7 ps 0.35", "pt 9 ps 0.7", "pt 5 ps 0.6"};
  // A verdict class with more than kDrawn samples in a panel is thinned to
  // about kDrawn points (every k-th row; all rows are in the data): the SVG
  // holds one element per point.
  constexpr long kDrawn = 150;
  bool thinned = false;
  for (int k = 0; k < n; ++k) {
    b += lay.margins(k);
    b += fmt::format("set title {}\n", gp_quote(config_label(p.configs[size_t(k)])));
    b += gdn ? "set xlabel 'α (decay per step)'\n" : "set xlabel '1 − μ (momentum decay per step, log scale)'\n";
    b += k == 0 ? (gdn ? "set ylabel 'β (step size)'\n" : "set ylabel 'η (momentum input scale)'\n")
                : "unset ylabel\n";
    if (k > 0) b += "set key off\n";
    b += "plot ";
    for (int v = 0; v < 3; ++v) {
      const std::string xy = gdn ? "1:(($9 == {0}) ? $2 : NaN)" : "5:(($9 == {0}) ? $4 : NaN)";
      const long thin = std::max(1L, class_counts[size_t(k)][size_t(v)] / kDrawn);
      thinned = thinned || thin > 1;
      b += fmt::format("{}'../data/{}' skip 1 using {}{} with points {} lc rgb '{}' title {}", v ? ", " : "",
                       files[size_t(k)], fmt::format(fmt::runtime(xy), v),
                       thin > 1 ? fmt::format(" every {}", thin) : std::string(), pts[v],
                       v == 0 ? kCertifiedPointColour : kTierColours[size_t(v)].second, gp_quote(kTierColours[size_t(v)].first));
    }
    b += "\n";
  }
  b += "unset multiplot\n";
  if (Status e = render(c, Plot{"reachable_gates", lay.width, lay.height, b}); !e.is_ok()) return e;
  const std::string thin_note =
      thinned ? fmt::format(" A verdict class with more than {} samples in a panel is drawn thinned to about {} "
                            "points; every sample is in the data.",
                            kDrawn, kDrawn)
              : std::string();
  c.doc.figure("reachable_gates",
               (gdn ? "Sampled reachable gates over (α, β), by verdict: certified (circles), undecided (triangles), "
                      "refuted (squares)."
                    : "Sampled reachable gates by verdict, over the momentum decay 1 − μ (log scale) and η: certified "
                      "(light circles), undecided (triangles), refuted (dark squares).") +
                   thin_note,
               files);
  return Status::ok();
}

Status section_tiers(Context& c, Shared&) {
  const Study& s = c.study;
  const StudyTiers& ti = *s.tiers;
  const int n = int(ti.panels.size());
  const long N = ti.resolution;
  c.progress(fmt::format("three-tier map: {} panels of {} x {} certificates", n, N, N));
  c.doc.heading(2, "Three tiers over (α, β)", "tiers");
  c.doc.paragraph(fmt::format(
      "Every gate of a {} × {} grid over (α, β) in [0, 1]² at each (μ, η), certified alone (DESIGN.md section 4): "
      "certified (γ < 1: stable for every key sequence), refuted (a key schedule grows the state), or undecided "
      "(γ ≥ 1 with no growing schedule found). With α, μ < 1 every one of these gates is frozen-stable (tier 1); "
      "the map shows where tier 3 fails anyway.{}",
      N, N,
      s.parametrization ? fmt::format(" The curves mark the upper edge of the `{}` parametrization's reachable "
                                      "region in each slice (from its gate map and the `{}` sampling box).",
                                      to_string(s.parametrization->kind), to_string(s.parametrization->range))
                        : std::string()));
  std::vector<std::string> findings, files, edge_files;
  for (int k = 0; k < n; ++k) {
    if (interrupted()) return interrupted_status();
    const StudyPanel& pan = ti.panels[size_t(k)];
    std::vector<Gates> gates;
    gates.reserve(size_t(N * N));
    for (long i = 0; i < N; ++i)
      for (long j = 0; j < N; ++j) {
        const double a = i == N - 1 ? 1.0 : double(i) / double(N - 1);
        const double bb = j == N - 1 ? 1.0 : double(j) / double(N - 1);
        auto g = Gates::from_log(std::log(a), bb, pan.mu > 0 ? pan.log_mu : -INFINITY, pan.eta, s.p_scale);
        if (!g.is_ok()) return g.status;
        gates.push_back(g.value);
      }
    auto certified = certify_all(gates);
    if (!certified.is_ok()) return certified.status;
    const std::vector<Certificate>& certs = certified.value.certs;
    const std::vector<Status>& failed = certified.value.failed;
    CsvWriter csv({"alpha", "beta", "verdict", "gamma", "lower_bound"});
    long cnt[3] = {0, 0, 0};
    for (size_t i = 0; i < gates.size(); ++i) {
      if (!failed[i].is_ok()) {
        csv.num(gates[i].alpha).num(gates[i].beta).num(NAN).num(NAN).num(NAN).end();
        continue;
      }
      const int code = verdict_code(certs[i].verdict);
      ++cnt[code];
      csv.num(gates[i].alpha).num(gates[i].beta).num(code).exact(certs[i].upper_bound).exact(certs[i].lower_bound).end();
    }
    const std::string file = fmt::format("tiers_panel{}.csv", k + 1);
    if (Status e = write_text(c.data(file), csv.text); !e.is_ok()) return e;
    files.push_back(file);
    const double tot = double(gates.size() - size_t(certified.value.n_failed));
    const std::string key = fmt::format("tiers.panel{}", k + 1);
    std::string sentence = fmt::format("{}: {} of the grid certified, {} undecided, {} refuted",
                                       panel_label(pan), c.state(key + ".fraction_certified", cnt[0] / tot, pct(cnt[0] / tot)),
                                       c.state(key + ".fraction_undecided", cnt[1] / tot, pct(cnt[1] / tot)),
                                       c.state(key + ".fraction_refuted", cnt[2] / tot, pct(cnt[2] / tot)));
    if (s.parametrization) {
      const StudyParametrization& p = *s.parametrization;
      std::vector<std::string> header = {"alpha"};
      std::vector<ReachableSlice> slices;
      for (const ParamConfig& cfg : p.configs) {
        header.push_back("beta_max_" + cfg.name);
        slices.push_back(reachable_slice(p.kind, cfg, p.range, pan.mu, pan.eta));
      }
      CsvWriter edge(header);
      const int ne = 200;
      for (int i = 0; i <= ne; ++i) {
        const double a = double(i) / ne;
        edge.num(a);
        for (const ReachableSlice& sl : slices) edge.num(reachable_beta_max(sl, a));
        edge.end();
      }
      const std::string efile = fmt::format("tiers_reachable_panel{}.csv", k + 1);
      if (Status e = write_text(c.data(efile), edge.text); !e.is_ok()) return e;
      edge_files.push_back(efile);
      for (size_t ci = 0; ci < p.configs.size(); ++ci) {
        const ParamConfig& cfg = p.configs[ci];
        if (!slices[ci].any()) {
          sentence += fmt::format("; {} does not reach this slice ({})", cfg.name,
                                  !slices[ci].mu_reachable ? fmt::format("μ = {} is below its exp(min_log_mu)", fmt_num(pan.mu, 4))
                                                           : fmt::format("η = {} is outside its range", fmt_num(pan.eta, 4)));
          continue;
        }
        long in = 0, in_ref = 0, in_cert = 0;
        for (size_t i = 0; i < gates.size(); ++i)
          if (failed[i].is_ok() && reachable(slices[ci], gates[i].alpha, gates[i].beta)) {
            ++in;
            in_ref += certs[i].verdict == Verdict::kRefuted;
            in_cert += certs[i].verdict == Verdict::kCertified;
          }
        const std::string rk = fmt::format("{}.reachable.{}", key, cfg.name);
        sentence += fmt::format("; of the {} grid points {} reaches, {} are certified and {} refuted", in, cfg.name,
                                c.state(rk + ".fraction_certified", in ? double(in_cert) / in : NAN,
                                        in ? pct(double(in_cert) / in) : "none"),
                                c.state(rk + ".fraction_refuted", in ? double(in_ref) / in : NAN,
                                        in ? pct(double(in_ref) / in) : "none"));
      }
    }
    if (certified.value.n_failed > 0) sentence += "; " + failure_note(certified.value, gates.size());
    findings.push_back(sentence + ".");
  }
  c.doc.list(findings);

  PanelLayout lay;
  lay.n = n;
  lay.width = std::max(560, 60 + 330 * n + 120);
  lay.height = 470;
  lay.top = 75;
  std::string b = gp_categories(kTierColours);
  b += "set xrange [0:1]\nset yrange [0:1]\nset tics out nomirror\n";
  b += "set key at screen 0.5, screen 0.985 center top horizontal maxrows 1 samplen 2.5\nset multiplot\n";
  const char* dash[4] = {"1", "2", "4", "5"};
  for (int k = 0; k < n; ++k) {
    b += lay.margins(k);
    b += fmt::format("set title {}\n", gp_quote(panel_label(ti.panels[size_t(k)])));
    b += "set xlabel 'α (decay per step)'\n";
    b += k == 0 ? "set ylabel 'β (step size)'\n" : "unset ylabel\n";
    b += k == n - 1 ? lay.colorbox_at() : "unset colorbox\n";
    if (k > 0) b += "set key off\n";
    b += fmt::format("plot '../data/{}' skip 1 using 1:2:($3 + 0.5) with image notitle", files[size_t(k)]);
    if (s.parametrization)
      for (size_t ci = 0; ci < s.parametrization->configs.size(); ++ci)
        b += fmt::format(", '../data/{0}' skip 1 using 1:{1} with lines lc rgb '#ffffff' lw 4.5 dt 1 notitle, "
                         "'../data/{0}' skip 1 using 1:{1} with lines lc rgb '#000000' lw 2 dt {2} title {3}",
                         edge_files[size_t(k)], ci + 2, dash[ci % 4],
                         gp_quote("reachable edge, " + s.parametrization->configs[ci].name));
    b += "\n";
  }
  b += "unset multiplot\n";
  if (Status e = render(c, Plot{"tiers_map", lay.width, lay.height, b}); !e.is_ok()) return e;
  std::vector<std::string> all = files;
  all.insert(all.end(), edge_files.begin(), edge_files.end());
  c.doc.figure("tiers_map",
               std::string("The three tiers over (α, β): certified (light), undecided (middle), refuted (dark).") +
                   (s.parametrization ? " Black curves: the upper edge of the reachable region per model config "
                                        "(everything below the curve is reachable; none drawn where the slice's μ or "
                                        "η is not reachable)."
                                      : ""),
               all);
  return Status::ok();
}

}  // namespace mdnstab::report_detail
