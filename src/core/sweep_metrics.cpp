// The metric table of `sweep`: one entry per named metric, columns per block
// (_par for A_par, _perp for A_perp). Later analyses add their entries here.
#include <cmath>
#include <optional>

#include "mdnstab/certify.hpp"
#include "mdnstab/chunk_safety.hpp"
#include "mdnstab/continuous_time.hpp"
#include "mdnstab/sweep.hpp"

namespace mdnstab {

namespace {

double or_none(const std::optional<double>& v) { return v ? *v : NAN; }

// The certificate of one grid point (DESIGN.md section 4, tier 3), computed once
// per point and thread however many of gamma / lower_bound / verdict are asked.
const Certificate* point_certificate(const Gates& g, bool lower) {
  thread_local Gates last;
  thread_local bool have = false, last_lower = false;
  thread_local Certificate cert;
  thread_local bool ok = false;
  const bool same = have && last.alpha == g.alpha && last.beta == g.beta && last.mu == g.mu && last.eta == g.eta &&
                    last.p_scale == g.p_scale && (last_lower || !lower);
  if (!same) {
    CertifyOptions opt;
    opt.lower_bound = lower;
    auto r = certify(std::span<const Gates>(&g, 1), opt);
    ok = r.is_ok();
    if (ok) cert = std::move(r.value);
    last = g;
    last_lower = lower;
    have = true;
  }
  return ok ? &cert : nullptr;
}

// `col` is the same quantity in the engine's block columns (src/mdnstab/spectrum_batch.hpp).
MetricDef per_block(std::string name, std::string help, double (*get)(const BlockSpectrum&),
                    double* BlockColumns::*col, bool needs_peak = false, bool needs_dynamics = false) {
  MetricDef m;
  m.columns = {name + "_par", name + "_perp"};
  m.name = std::move(name);
  m.help = std::move(help);
  m.needs_transient_peak = needs_peak;
  m.needs_dynamics = needs_dynamics;
  m.eval = [get](const SweepPointContext& c, double* out) {
    out[0] = get(c.spectrum->parallel);
    out[1] = get(c.spectrum->perpendicular);
  };
  m.eval_block = [col](const SweepBlockContext& c, const double** out) {
    out[0] = c.spectrum->par.*col;
    out[1] = c.spectrum->perp.*col;
  };
  return m;
}

// A continuous-time figure of both blocks (src/core/continuous_time.cpp),
// built on the spectrum the sweep already computed.
MetricDef per_block_ct(std::string name, std::string help, double (*get)(const ContinuousTime&)) {
  MetricDef m;
  m.columns = {name + "_par", name + "_perp"};
  m.name = std::move(name);
  m.help = std::move(help);
  m.default_on = false;  // zeta and w_n repeat damping_ratio and natural_frequency but at the edges
  m.eval = [get](const SweepPointContext& c, double* out) {
    // The four ct metrics of one point share one evaluation: each thread keeps
    // the last point's result (the engine evaluates a point's metrics in a row).
    thread_local Gates last{NAN, NAN, NAN, NAN, NAN, NAN};
    thread_local FrozenContinuousTime ct;
    const Gates& g = c.gates;
    if (g.alpha != last.alpha || g.beta != last.beta || g.mu != last.mu || g.eta != last.eta ||
        g.log_alpha != last.log_alpha || g.log_mu != last.log_mu || g.p_scale != last.p_scale) {
      const double log_det = g.log_alpha + g.log_mu;
      ct.parallel = continuous_time(a_par(g), c.spectrum->parallel, log_det);
      ct.perpendicular = continuous_time(a_perp(g), c.spectrum->perpendicular, log_det);
      last = g;
    }
    out[0] = get(ct.parallel);
    out[1] = get(ct.perpendicular);
  };
  return m;
}

std::vector<MetricDef> make_metrics() {
  std::vector<MetricDef> v;
  {
    MetricDef m;
    m.name = "frozen_rho";
    m.help = "max(rho(A_par), rho(A_perp))";
    m.columns = {"frozen_rho"};
    m.needs_dynamics = false;
    m.eval = [](const SweepPointContext& c, double* out) { out[0] = c.spectrum->frozen_spectral_radius; };
    m.eval_block = [](const SweepBlockContext& c, const double** out) { out[0] = c.spectrum->frozen_rho; };
    v.push_back(std::move(m));
  }
  {
    MetricDef m;
    m.name = "frozen_stable";
    m.help = "1 when frozen_rho < 1";
    m.columns = {"frozen_stable"};
    m.needs_dynamics = false;
    m.eval = [](const SweepPointContext& c, double* out) { out[0] = c.spectrum->frozen_stable ? 1 : 0; };
    m.eval_block = [](const SweepBlockContext& c, const double** out) {
      double* o = const_cast<double*>(out[0]);  // the scratch column
      for (long i = 0; i < c.n; ++i) o[i] = c.spectrum->frozen_rho[i] < 1.0 ? 1 : 0;
    };
    v.push_back(std::move(m));
  }
  v.push_back(per_block("rho", "spectral radius", [](const BlockSpectrum& b) { return b.spectral_radius; },
                        &BlockColumns::rho));
  {
    // Label index 1 for a complex pair: the engine's complex_pair column as it is.
    MetricDef m = per_block("regime", "complex or real eigenvalue pair",
                            [](const BlockSpectrum& b) { return b.regime == Regime::kComplex ? 1.0 : 0.0; },
                            &BlockColumns::complex_pair);
    m.labels = {"real", "complex"};
    v.push_back(std::move(m));
  }
  v.push_back(per_block("negative", "1 when a real eigenvalue is negative",
                        [](const BlockSpectrum& b) { return b.negative_eigenvalue ? 1.0 : 0.0; },
                        &BlockColumns::negative));
  {
    MetricDef m;
    m.name = "eigenvalues";
    m.help = "both eigenvalues of both blocks, |l1| >= |l2|";
    m.needs_dynamics = false;
    for (const char* blk : {"par", "perp"})
      for (const char* part : {"l1_re", "l1_im", "l2_re", "l2_im"}) m.columns.push_back(std::string(part) + "_" + blk);
    m.eval = [](const SweepPointContext& c, double* out) {
      int i = 0;
      for (const BlockSpectrum* b : {&c.spectrum->parallel, &c.spectrum->perpendicular}) {
        out[i++] = b->eig.l1.real();
        out[i++] = b->eig.l1.imag();
        out[i++] = b->eig.l2.real();
        out[i++] = b->eig.l2.imag();
      }
    };
    m.eval_block = [](const SweepBlockContext& c, const double** out) {
      int k = 0;
      for (const BlockColumns* b : {&c.spectrum->par, &c.spectrum->perp})
        for (const double* col : {b->l1_re, b->l1_im, b->l2_re, b->l2_im}) out[k++] = col;
    };
    v.push_back(std::move(m));
  }
  v.push_back(per_block("damping_ratio", "zeta of the continuous-time equivalent (empty: none)",
                        [](const BlockSpectrum& b) { return or_none(b.damping_ratio); },
                        &BlockColumns::damping_ratio, false, true));
  v.push_back(per_block("natural_frequency", "w_n in rad/step (empty: none)",
                        [](const BlockSpectrum& b) { return or_none(b.natural_frequency); },
                        &BlockColumns::natural_frequency, false, true));
  v.push_back(per_block("half_life", "steps to halve at rate rho (inf: rho >= 1)",
                        [](const BlockSpectrum& b) { return b.half_life; }, &BlockColumns::half_life, false, true));
  v.push_back(per_block("transient_peak", "max_t |A^t|_2 (inf: rho >= 1)",
                        [](const BlockSpectrum& b) { return b.transient_peak; }, &BlockColumns::transient_peak,
                        true));
  {
    MetricDef m;
    m.name = "gamma";
    m.help = "quadratic upper bound on the growth per step over all key sequences (certify)";
    m.columns = {"gamma"};
    m.needs_spectrum = false;
    m.default_on = false;
    m.eval = [](const SweepPointContext& c, double* out) {
      const Certificate* k = point_certificate(c.gates, false);
      out[0] = k ? k->upper_bound : NAN;
    };
    v.push_back(std::move(m));
  }
  {
    MetricDef m;
    m.name = "lower_bound";
    m.help = "growth per step of the worst key schedule found (certify's witness)";
    m.columns = {"lower_bound"};
    m.needs_spectrum = false;
    m.default_on = false;
    m.eval = [](const SweepPointContext& c, double* out) {
      const Certificate* k = point_certificate(c.gates, true);
      out[0] = k ? k->lower_bound : NAN;
    };
    v.push_back(std::move(m));
  }
  {
    MetricDef m;
    m.name = "verdict";
    m.help = "certified (gamma < 1), refuted (lower_bound > 1) or undecided, over all key sequences";
    m.columns = {"verdict"};
    m.labels = {"certified", "refuted", "undecided"};
    m.needs_spectrum = false;
    m.default_on = false;
    m.eval = [](const SweepPointContext& c, double* out) {
      const Certificate* k = point_certificate(c.gates, true);
      out[0] = k ? double(int(k->verdict)) : NAN;
    };
    v.push_back(std::move(m));
  }
  {
    MetricDef m;
    m.name = "chunk_safe";
    m.help = "1 when the chunk-safety rule calls the reordered chunkwise algorithm safe at --chunk and "
             "--precision (--chunk-steps tokens, random keys of --chunk-dk dimensions); and its predicted "
             "relative error";
    m.columns = {"chunk_safe", "chunk_predicted_error"};
    m.needs_spectrum = false;
    m.default_on = false;
    m.eval = [](const SweepPointContext& c, double* out) {
      const SweepChunkConfig cfg = c.chunk ? *c.chunk : SweepChunkConfig{};
      ChunkRuleOptions o;
      o.tol = cfg.tol;
      o.steps = cfg.steps;
      o.dk = cfg.dk;
      const ChunkRisk r = chunk_risk(c.gates, cfg.chunk, cfg.precision, o);
      out[0] = chunk_safe(r, cfg.tol) ? 1 : 0;
      out[1] = r.predicted_error;
    };
    v.push_back(std::move(m));
  }
  v.push_back(per_block_ct("zeta", "damping ratio of the real log(A) (inf at a unit eigenvalue; empty: none)",
                           [](const ContinuousTime& c) { return or_none(c.zeta); }));
  v.push_back(per_block_ct("w_n", "natural frequency of log(A) in rad/step (0 at a unit eigenvalue; empty: none)",
                           [](const ContinuousTime& c) { return or_none(c.w_n); }));
  v.push_back(per_block_ct("q_factor", "quality factor 1/(2 zeta) (empty: none)",
                           [](const ContinuousTime& c) { return or_none(c.q_factor); }));
  {
    MetricDef m = per_block_ct("ct_class", "continuous-time class of log(A)",
                               [](const ContinuousTime& c) { return double(int(c.cls)); });
    // In CtClass order; labels are CSV fields, so no spaces.
    static_assert(int(CtClass::kNoRealEquivalent) == 4, "ct_class labels follow CtClass");
    m.labels = {"underdamped", "critically_damped", "overdamped", "saddle", "no_real_equivalent"};
    v.push_back(std::move(m));
  }
  return v;
}

}  // namespace

const std::vector<MetricDef>& sweep_metrics() {
  static const std::vector<MetricDef> metrics = make_metrics();
  return metrics;
}

}  // namespace mdnstab
