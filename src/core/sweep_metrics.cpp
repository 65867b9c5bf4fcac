// The metric table of `sweep`: one entry per named metric, columns per block
// (_par for A_par, _perp for A_perp). Later analyses add their entries here.
#include <cmath>
#include <optional>

#include "mdnstab/sweep.hpp"

namespace mdnstab {

namespace {

double or_none(const std::optional<double>& v) { return v ? *v : NAN; }

// `col` is the same quantity in the engine's block columns (src/mdnstab/spectrum_batch.hpp).
MetricDef per_block(std::string name, std::string help, double (*get)(const BlockSpectrum&),
                    double* BlockColumns::*col, bool needs_peak = false) {
  MetricDef m;
  m.columns = {name + "_par", name + "_perp"};
  m.name = std::move(name);
  m.help = std::move(help);
  m.needs_transient_peak = needs_peak;
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

std::vector<MetricDef> make_metrics() {
  std::vector<MetricDef> v;
  {
    MetricDef m;
    m.name = "frozen_rho";
    m.help = "max(rho(A_par), rho(A_perp))";
    m.columns = {"frozen_rho"};
    m.eval = [](const SweepPointContext& c, double* out) { out[0] = c.spectrum->frozen_spectral_radius; };
    m.eval_block = [](const SweepBlockContext& c, const double** out) { out[0] = c.spectrum->frozen_rho; };
    v.push_back(std::move(m));
  }
  {
    MetricDef m;
    m.name = "frozen_stable";
    m.help = "1 when frozen_rho < 1";
    m.columns = {"frozen_stable"};
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
                        &BlockColumns::damping_ratio));
  v.push_back(per_block("natural_frequency", "w_n in rad/step (empty: none)",
                        [](const BlockSpectrum& b) { return or_none(b.natural_frequency); },
                        &BlockColumns::natural_frequency));
  v.push_back(per_block("half_life", "steps to halve at rate rho (inf: rho >= 1)",
                        [](const BlockSpectrum& b) { return b.half_life; }, &BlockColumns::half_life));
  v.push_back(per_block("transient_peak", "max_t |A^t|_2 (inf: rho >= 1)",
                        [](const BlockSpectrum& b) { return b.transient_peak; }, &BlockColumns::transient_peak,
                        true));
  return v;
}

}  // namespace

const std::vector<MetricDef>& sweep_metrics() {
  static const std::vector<MetricDef> metrics = make_metrics();
  return metrics;
}

}  // namespace mdnstab
