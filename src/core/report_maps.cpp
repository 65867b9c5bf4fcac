// Report sections on frozen-key spectra: the named gate sets (point analysis
// and certificate) and the (alpha, beta) maps from the sweep engine (regime
// with the closed-form complex/real boundary, frozen rho, damping ratio,
// natural frequency). Tested in tests/test_report.cpp and tests/report/.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <numbers>
#include <sstream>

#include <fmt/format.h>

#include "mdnstab/lyapunov.hpp"
#include "mdnstab/spectrum.hpp"
#include "mdnstab/sweep.hpp"
#include "report_impl.hpp"

namespace mdnstab::report_detail {

namespace {

// A sweep CSV read back by column name (empty field: NaN; categorical labels: their index).
struct Columns {
  std::vector<std::string> names;
  std::vector<std::vector<double>> cols;
  const std::vector<double>& operator[](const std::string& n) const {
    const auto it = std::find(names.begin(), names.end(), n);
    return cols[size_t(it - names.begin())];
  }
  bool has(const std::string& n) const { return std::find(names.begin(), names.end(), n) != names.end(); }
  size_t rows() const { return cols.empty() ? 0 : cols[0].size(); }
};

Result<Columns> read_sweep_csv(const fs::path& p) {
  std::ifstream f(p);
  if (!f) return error(Code::kIoError, fmt::format("cannot read sweep output '{}'", p.string()));
  Columns c;
  std::string line;
  if (!std::getline(f, line)) return error(Code::kIoError, fmt::format("sweep output '{}' is empty", p.string()));
  {
    std::stringstream ss(line);
    std::string name;
    while (std::getline(ss, name, ',')) c.names.push_back(name);
  }
  c.cols.resize(c.names.size());
  while (std::getline(f, line)) {
    size_t start = 0;
    for (size_t k = 0; k < c.names.size(); ++k) {
      const size_t end = std::min(line.find(',', start), line.size());
      const std::string field = line.substr(start, end - start);
      double v = NAN;
      if (field == "complex") v = 0;  // regime labels (sweep_metrics.cpp)
      else if (field == "real") v = 1;
      else if (!field.empty()) v = std::strtod(field.c_str(), nullptr);
      c.cols[k].push_back(v);
      start = end + 1;
    }
  }
  return c;
}

std::string verdict_sentence(const Certificate& cert) {
  switch (cert.verdict) {
    case Verdict::kCertified:
      return fmt::format("certified for every key sequence: |x_t|_W ≤ γ^t |x_0|_W with γ = {}", fmt_num(cert.upper_bound, 6));
    case Verdict::kRefuted:
      if (cert.witness.kind == Witness::Kind::kRotation)
        return fmt::format("refuted: keys rotating by {} rad per step grow the state {}× per step (γ = {})",
                           fmt_num(cert.witness.angle, 4), fmt_num(cert.lower_bound, 6), fmt_num(cert.upper_bound, 6));
      return fmt::format("refuted: a switching key schedule of period {} grows the state {}× per step (γ = {})",
                         cert.witness.period, fmt_num(cert.lower_bound, 6), fmt_num(cert.upper_bound, 6));
    default:
      return fmt::format("undecided: γ = {} ≥ 1, while the strongest key schedule found grows the state {}× per step",
                         fmt_num(cert.upper_bound, 6), fmt_num(cert.lower_bound, 6));
  }
}

// Both branches of the complex/real boundary of A_par at fixed (mu, eta):
// (alpha (1 - beta eta) + mu)^2 = 4 alpha mu for p-scale alpha, i.e.
// beta = (sqrt(alpha) -+ sqrt(mu))^2 / (alpha eta); p-scale one drops the alpha.
std::pair<double, double> boundary_betas(double alpha, double mu, double eta, PScale p) {
  if (!(eta > 0) || !(alpha > 0)) return {NAN, NAN};
  const double rho_p = p == PScale::kAlpha ? alpha : 1.0;
  const double sa = std::sqrt(alpha), sm = std::sqrt(mu);
  return {(sa - sm) * (sa - sm) / (rho_p * eta), (sa + sm) * (sa + sm) / (rho_p * eta)};
}

}  // namespace

Status section_gate_sets(Context& c, Shared& shared) {
  c.progress("gate sets: frozen spectra and certificates");
  const Study& s = c.study;
  c.doc.heading(2, "Gate sets", "gate-sets");
  // Tier 2 at the key width of the study's model (the counterexample's DK).
  LyapunovOptions lo;
  lo.dk = s.counterexample ? s.counterexample->dk : 128;
  lo.steps = c.options.quick ? 400 : 3000;
  lo.seed = s.seed;
  c.seeds["gate_sets.lyapunov"] = lo.seed;
  c.doc.paragraph(fmt::format(
      "Each named gate set of the study, analysed at the three tiers of DESIGN.md section 4: the frozen-key "
      "spectrum (tier 1); random keys, uniform on the sphere in DK = {} dimensions, through the top Lyapunov "
      "exponent λ of the exact recurrence ({} chains of {} steps; growth e^λ per step) (tier 2); and the "
      "certificate over all key sequences (tier 3): an upper bound γ from the best 2×2 quadratic Lyapunov function "
      "and a lower bound from an explicit key schedule, the witness. Growth is per step of the state norm.",
      lo.dk, lo.chains, lo.steps));
  Table t;
  t.header = {"gate set", "α", "β", "μ", "η", "frozen ρ", "A_par regime", "ζ", "ωₙ (rad/step)", "half-life (steps)",
              "random keys e^λ", "γ (upper)", "lower bound", "verdict"};
  CsvWriter csv({"name", "alpha", "beta", "mu", "eta", "frozen_rho", "regime_par", "damping_ratio_par",
                 "natural_frequency_par", "half_life", "lyapunov_exponent", "lyapunov_stderr", "lyapunov_dk",
                 "gamma", "gamma_dual", "lower_bound", "verdict", "witness_kind", "witness_angle", "witness_period"});
  std::vector<std::string> sentences;
  for (const StudyGateSet& gs : s.gate_sets) {
    const FrozenSpectrum fs = analyze_frozen(gs.gates);
    auto cert = certify(std::span<const Gates>(&gs.gates, 1));
    if (!cert.is_ok()) return error(cert.status.code, fmt::format("gate set '{}': {}", gs.name, cert.status.message));
    const Certificate& ce = cert.value;
    if (interrupted()) return interrupted_status();
    auto ly = lyapunov(gs.gates, lo);
    if (!ly.is_ok()) return error(ly.status.code, fmt::format("gate set '{}': {}", gs.name, ly.status.message));
    const double lam = ly.value.exponent, lam_se = ly.value.stderr_;
    const double half_life = std::log(0.5) / std::log(fs.frozen_spectral_radius);
    const auto& par = fs.parallel;
    const std::string regime = par.negative_eigenvalue ? "negative" : to_string(par.regime);
    const double zeta = par.damping_ratio ? *par.damping_ratio : NAN;
    const double wn = par.natural_frequency ? *par.natural_frequency : NAN;
    t.rows.push_back({gs.name, fmt_num(gs.gates.alpha, 6), fmt_num(gs.gates.beta, 6), fmt_num(gs.gates.mu, 6),
                      fmt_num(gs.gates.eta, 6), fmt_num(fs.frozen_spectral_radius, 6), regime,
                      std::isnan(zeta) ? "none" : fmt_num(zeta, 4), std::isnan(wn) ? "none" : fmt_num(wn, 4),
                      fmt_num(half_life, 4), fmt_num(std::exp(lam), 4), fmt_num(ce.upper_bound, 6),
                      fmt_num(ce.lower_bound, 6), to_string(ce.verdict)});
    csv.str(gs.name).num(gs.gates.alpha).num(gs.gates.beta).num(gs.gates.mu).num(gs.gates.eta)
        .exact(fs.frozen_spectral_radius).str(regime).num(zeta).num(wn).num(half_life).num(lam).num(lam_se).num(lo.dk).exact(ce.upper_bound)
        .exact(ce.gamma_dual).exact(ce.lower_bound).str(to_string(ce.verdict)).str(to_string(ce.witness.kind))
        .num(ce.witness.angle).num(ce.witness.period).end();
    const std::string key = "gate_set." + gs.name;
    c.state(key + ".frozen_rho", fs.frozen_spectral_radius, fmt_num(fs.frozen_spectral_radius, 6));
    c.state(key + ".gamma", ce.upper_bound, fmt_num(ce.upper_bound, 6));
    c.state(key + ".lower_bound", ce.lower_bound, fmt_num(ce.lower_bound, 6));
    c.state(key + ".lyapunov_exponent", lam, fmt_num(lam, 3));
    sentences.push_back(fmt::format(
        "`{}`: frozen ρ = {} ({}); under random keys λ = {} ± {} per step ({}); {}.", gs.name,
        fmt_num(fs.frozen_spectral_radius, 6),
        fs.frozen_stable ? "every frozen-key system decays" : "a frozen-key system does not decay", fmt_num(lam, 3),
        fmt_num(lam_se, 1), lam > 0 ? fmt::format("the state grows {}× per step", fmt_num(std::exp(lam), 4))
                                    : fmt::format("the state decays, {}× per step", fmt_num(std::exp(lam), 4)),
        verdict_sentence(ce)));
    if (ce.verdict == Verdict::kRefuted && !s.parametrization &&
        (!shared.worst.found || ce.lower_bound > shared.worst.cert.lower_bound)) {
      shared.worst.found = true;
      shared.worst.source = "gate set " + gs.name;
      shared.worst.gates = gs.gates;
      shared.worst.cert = ce;
    }
    if (ce.verdict == Verdict::kRefuted && fs.frozen_stable)
      c.highlights.push_back(fmt::format(
          "Gate set `{}` is stable for every frozen key (ρ = {}), {} under random keys (λ = {} per step at DK = {}), "
          "and is {}.",
          gs.name, fmt_num(fs.frozen_spectral_radius, 6), lam > 0 ? "grows" : "decays", fmt_num(lam, 3), lo.dk,
          verdict_sentence(ce)));
  }
  c.doc.table(std::move(t));
  c.doc.list(std::move(sentences));
  return write_text(c.data("gate_sets.csv"), csv.text);
}

Status section_maps(Context& c, Shared&) {
  const Study& s = c.study;
  const StudyMaps& m = *s.maps;
  const int n = int(m.panels.size());
  c.progress(fmt::format("maps: {} sweeps of {} x {} points", n, m.resolution, m.resolution));
  std::error_code ec;
  fs::create_directories(c.dir / ".work", ec);

  c.doc.heading(2, "Frozen-key maps over (α, β)", "maps");
  c.doc.paragraph(fmt::format(
      "With gates and key frozen, each key coordinate evolves by A_par (along the key) or A_perp (DESIGN.md section "
      "3). The maps below sweep α over [{}, {}] and β over [{}, {}] on a {} × {} grid at {} fixed (μ, η) "
      "(p-scale {}), through the same engine as `mdnstab sweep`; the commands that reproduce each grid are in "
      "`data/maps.json`.",
      fmt_num(m.alpha_lo), fmt_num(m.alpha_hi), fmt_num(m.beta_lo), fmt_num(m.beta_hi), m.resolution, m.resolution,
      n, to_string(s.p_scale)));

  nlohmann::json meta;
  meta["regime_codes"] = {{"0", "real, positive eigenvalues"}, {"1", "complex pair"}, {"2", "negative eigenvalue"}};
  meta["columns"] = {{"alpha", "decay α"}, {"beta", "step size β"},
                     {"regime", "regime of A_par (codes above)"}, {"frozen_rho", "max(ρ(A_par), ρ(A_perp))"},
                     {"damping_ratio", "ζ of A_par's continuous-time equivalent (nan: none)"},
                     {"natural_frequency", "ωₙ of A_par in rad/step (nan: none)"}};
  std::vector<std::string> findings, data_files, boundary_files;
  double wn_max = 0;
  std::vector<std::pair<double, double>> panel_rho;  // frozen rho range per panel
  for (int k = 0; k < n; ++k) {
    if (interrupted()) return interrupted_status();
    const StudyPanel& pan = m.panels[size_t(k)];
    SweepSpec spec;
    spec.p_scale = s.p_scale;
    spec.axes = {Axis{"alpha", m.alpha_lo, m.alpha_hi, m.resolution}, Axis{"beta", m.beta_lo, m.beta_hi, m.resolution}};
    spec.fixed = {pan.mu > 0 ? FixedGate{"log_mu", pan.log_mu} : FixedGate{"mu", 0.0}, FixedGate{"eta", pan.eta}};
    spec.metrics = {"frozen_rho", "regime", "negative", "damping_ratio", "natural_frequency"};
    SweepOptions opt;
    opt.out_path = (c.dir / ".work" / fmt::format("maps_{}.csv", k + 1)).string();
    auto sum = run_sweep(spec, opt);
    if (!sum.is_ok()) return error(sum.status.code, fmt::format("maps panel {}: {}", k + 1, sum.status.message));
    auto cols = read_sweep_csv(opt.out_path);
    if (!cols.is_ok()) return cols.status;
    const Columns& col = cols.value;
    const auto& A = col["alpha"];
    const auto& B = col["beta"];
    const auto& reg = col["regime_par"];
    const auto& neg = col["negative_par"];
    const auto& rho = col["frozen_rho"];
    const auto& zeta = col["damping_ratio_par"];
    const auto& wn = col["natural_frequency_par"];
    CsvWriter out({"alpha", "beta", "regime", "frozen_rho", "damping_ratio", "natural_frequency"});
    long n_complex = 0, n_negative = 0, n_stable = 0, agree = 0;
    double pmin = INFINITY, pmax = -INFINITY, amax = 0, bmax = 0, zmin = INFINITY, zmax = -INFINITY;
    for (size_t i = 0; i < col.rows(); ++i) {
      const int code = neg[i] == 1 ? 2 : (reg[i] == 0 ? 1 : 0);
      n_complex += code == 1;
      n_negative += code == 2;
      n_stable += rho[i] < 1;
      if (rho[i] > pmax) {
        pmax = rho[i];
        amax = A[i];
        bmax = B[i];
      }
      pmin = std::min(pmin, rho[i]);
      if (code == 1 && std::isfinite(zeta[i])) {
        zmin = std::min(zmin, zeta[i]);
        zmax = std::max(zmax, zeta[i]);
      }
      if (std::isfinite(wn[i])) wn_max = std::max(wn_max, wn[i]);
      // The closed form, evaluated independently of the sweep's eigenvalues.
      const auto [b_lo, b_hi] = boundary_betas(A[i], pan.mu, pan.eta, s.p_scale);
      const int closed = std::isnan(b_lo) ? 0 : (B[i] > b_hi ? 2 : (B[i] > b_lo ? 1 : 0));
      agree += closed == code;
      out.num(A[i]).num(B[i]).num(code).num(rho[i]).num(zeta[i]).num(wn[i]).end();
    }
    panel_rho.push_back({pmin, pmax});
    const double N = double(col.rows());
    const std::string file = fmt::format("maps_panel{}.csv", k + 1);
    if (Status e = write_text(c.data(file), out.text); !e.is_ok()) return e;
    data_files.push_back(file);

    // The boundary curves, finely sampled in alpha, NaN outside the plotted beta range.
    CsvWriter bnd({"alpha", "beta_lower", "beta_upper"});
    const int nb = 240;
    for (int i = 0; i <= nb; ++i) {
      const double a = m.alpha_lo + (m.alpha_hi - m.alpha_lo) * i / nb;
      auto [b_lo, b_hi] = boundary_betas(a, pan.mu, pan.eta, s.p_scale);
      auto clip = [&](double b) { return b >= m.beta_lo && b <= m.beta_hi ? b : NAN; };
      bnd.num(a).num(clip(b_lo)).num(clip(b_hi)).end();
    }
    const std::string bfile = fmt::format("maps_boundary_panel{}.csv", k + 1);
    if (Status e = write_text(c.data(bfile), bnd.text); !e.is_ok()) return e;
    boundary_files.push_back(bfile);

    const std::string key = fmt::format("maps.panel{}", k + 1);
    const double fc = n_complex / N, fn = n_negative / N, fs_ = n_stable / N;
    std::string sentence = fmt::format(
        "{}: A_par has a complex pair on {} of the grid and a negative eigenvalue on {}; frozen ρ runs from {} to {} "
        "(largest at α = {}, β = {}), below 1 on {} of the grid",
        panel_label(pan), c.state(key + ".fraction_complex", fc, pct(fc)), c.state(key + ".fraction_negative", fn, pct(fn)),
        c.state(key + ".frozen_rho_min", pmin, fmt_num(pmin, 4)), c.state(key + ".frozen_rho_max", pmax, fmt_num(pmax, 6)),
        fmt_num(amax, 4), fmt_num(bmax, 4), c.state(key + ".fraction_frozen_stable", fs_, pct(fs_)));
    if (std::isfinite(zmin))
      sentence += fmt::format("; where complex, ζ lies between {} and {}", c.state(key + ".zeta_min", zmin, fmt_num(zmin, 3)),
                              c.state(key + ".zeta_max", zmax, fmt_num(zmax, 3)));
    sentence += fmt::format(". The closed-form boundary classifies {} of the {} grid points as the sweep's eigenvalues do.",
                            c.state(key + ".boundary_agreement", agree / N, pct(agree / N)), col.rows());
    findings.push_back(sentence);

    nlohmann::json pj;
    pj["mu"] = pan.mu;
    pj["log_mu"] = std::isfinite(pan.log_mu) ? nlohmann::json(pan.log_mu) : nlohmann::json(nullptr);
    pj["eta"] = pan.eta;
    pj["data"] = file;
    pj["boundary"] = bfile;
    pj["reproduce"] = fmt::format(
        "mdnstab sweep --axis alpha={}:{}:{} --axis beta={}:{}:{} --fix {} --fix eta={} --p-scale {} "
        "--metrics frozen_rho,regime,negative,damping_ratio,natural_frequency --out grid.csv",
        m.alpha_lo, m.alpha_hi, m.resolution, m.beta_lo, m.beta_hi, m.resolution,
        pan.mu > 0 ? fmt::format("log_mu={}", pan.log_mu) : std::string("mu=0"), pan.eta, to_string(s.p_scale));
    meta["panels"].push_back(pj);
  }
  if (Status e = write_text(c.data("maps.json"), meta.dump(1) + "\n"); !e.is_ok()) return e;
  c.doc.list(findings);

  // ---- figures ----
  PanelLayout lay;
  lay.n = n;
  lay.width = std::max(560, 60 + 330 * n + 120);
  lay.height = 440;
  const std::string ranges = fmt::format("set xrange [{}:{}]\nset yrange [{}:{}]\nset tics out nomirror\n",
                                         m.alpha_lo, m.alpha_hi, m.beta_lo, m.beta_hi);
  PanelLayout lay_each = lay;
  lay_each.colorbox_each = true;
  lay_each.cb_room = 110;
  lay_each.gap = 50;
  // per_panel: each panel has its own colour box and range (a string of gnuplot
  // commands per panel), otherwise one box beside the last panel.
  auto panels = [&](const std::string& setup, const std::string& using_expr, bool boundary,
                    const std::vector<std::string>& per_panel = {}) {
    const PanelLayout& L = per_panel.empty() ? lay : lay_each;
    std::string b = setup + ranges + "set multiplot\n";
    for (int k = 0; k < n; ++k) {
      b += L.margins(k);
      b += fmt::format("set title {}\n", gp_quote(panel_label(m.panels[size_t(k)])));
      b += "set xlabel 'α (decay per step)'\n";
      b += k == 0 ? "set ylabel 'β (step size)'\n" : "unset ylabel\n";
      if (!per_panel.empty())
        b += per_panel[size_t(k)] + L.colorbox_at(k);
      else
        b += k == n - 1 ? L.colorbox_at() : "unset colorbox\n";
      b += fmt::format("plot '../data/{}' skip 1 using 1:2:({}) with image notitle", data_files[size_t(k)], using_expr);
      if (boundary)
        for (int col = 2; col <= 3; ++col)
          b += fmt::format(", '../data/{0}' skip 1 using 1:{1} with lines lc rgb '#ffffff' lw 4 notitle, "
                           "'../data/{0}' skip 1 using 1:{1} with lines lc rgb '#000000' lw 1.5 notitle",
                           boundary_files[size_t(k)], col);
      b += "\n";
    }
    return b + "unset multiplot\n";
  };
  std::vector<std::string> all_files = data_files;
  std::vector<std::string> with_boundary = data_files;
  with_boundary.insert(with_boundary.end(), boundary_files.begin(), boundary_files.end());

  Plot regime{"regime_map", lay.width, lay.height,
              panels(gp_categories({{"real", "#f7f4b8"}, {"complex", "#5e9cc2"}, {"negative", "#1b1b3a"}}),
                     "$3 + 0.5", true)};
  if (Status e = render(c, regime); !e.is_ok()) return e;
  c.doc.figure("regime_map",
               "Regime of A_par over (α, β) for each (μ, η): real positive eigenvalues (light), a complex-conjugate "
               "pair (middle), a negative real eigenvalue (dark). The black-on-white curves are the closed-form "
               "complex/real boundary (α(1 − βη) + μ)² = 4αμ (p-scale α; without the first α for p-scale one).",
               with_boundary);

  std::vector<std::string> rho_ranges;
  for (int k = 0; k < n; ++k) {
    const double lo = panel_rho[size_t(k)].first, hi = panel_rho[size_t(k)].second;
    rho_ranges.push_back(fmt::format("set cbrange [{}:{}]\nset format cb '%.4g'\n", lo, hi > lo ? hi : lo + 1e-9));
  }
  Plot rho{"frozen_rho", lay.width, lay.height, panels(gp_viridis(), "$4", false, rho_ranges)};
  if (Status e = render(c, rho); !e.is_ok()) return e;
  c.doc.figure("frozen_rho",
               "Frozen spectral radius max(ρ(A_par), ρ(A_perp)) over (α, β), each panel with its own colour "
               "scale (dark: fastest decay in the panel, light: slowest).",
               all_files);

  Plot zeta{"damping_ratio", lay.width, lay.height,
            panels(gp_viridis() + "set cbrange [0:2]\nset cblabel 'damping ratio ζ (dimensionless)'\n"
                       "set object 1 rectangle from graph 0,0 to graph 1,1 behind fillcolor rgb '#ffffff' "
                       "fillstyle pattern 4 border lc rgb '#999999'\n",
                   "$5 > 2 ? 2 : $5", true)};
  if (Status e = render(c, zeta); !e.is_ok()) return e;
  c.doc.figure("damping_ratio",
               "Damping ratio ζ of A_par's continuous-time equivalent x'' + 2ζωₙx' + ωₙ²x = 0 (ζ < 1: underdamped, "
               "inside the boundary curves; values above 2 drawn as 2). Hatched: no real continuous-time equivalent "
               "(a negative eigenvalue).",
               with_boundary);

  Plot freq{"natural_frequency", lay.width, lay.height,
            panels(gp_viridis() + fmt::format("set cbrange [0:{}]\nset cblabel 'natural frequency ωₙ (rad/step)'\n"
                                              "set object 1 rectangle from graph 0,0 to graph 1,1 behind fillcolor "
                                              "rgb '#ffffff' fillstyle pattern 4 border lc rgb '#999999'\n",
                                              wn_max > 0 ? wn_max : 1.0),
                   "$6", true)};
  if (Status e = render(c, freq); !e.is_ok()) return e;
  c.doc.figure("natural_frequency",
               "Natural frequency ωₙ of A_par's continuous-time equivalent, in radians per step. Hatched: none "
               "(a negative eigenvalue).",
               with_boundary);
  return Status::ok();
}

}  // namespace mdnstab::report_detail
