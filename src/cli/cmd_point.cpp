// `mdnstab point`: the frozen-key spectra of one gate set (DESIGN.md section 7).
#include <cmath>
#include <complex>
#include <memory>

#include <fmt/format.h>

#include "app.hpp"
#include "mdnstab/spectrum.hpp"

namespace mdnstab::cli {

namespace {

struct PointOptions {
  GateOptions gates;
};

nlohmann::json block_json(const BlockSpectrum& b) {
  auto opt = [](const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
  return {{"eigenvalues", {{b.eig.l1.real(), b.eig.l1.imag()}, {b.eig.l2.real(), b.eig.l2.imag()}}},
          {"spectral_radius", b.spectral_radius},
          {"regime", to_string(b.regime)},
          {"negative_eigenvalue", b.negative_eigenvalue},
          {"damping_ratio", opt(b.damping_ratio)},
          {"natural_frequency", opt(b.natural_frequency)},
          {"half_life", number_or_null(b.half_life)},
          {"transient_peak", number_or_null(b.transient_peak)},
          {"decaying", b.spectral_radius < 1.0}};
}

std::string complex_text(std::complex<double> z) {
  if (z.imag() == 0) return num(z.real());
  return fmt::format("{} {} {}i", num(z.real()), z.imag() < 0 ? '-' : '+', num(std::abs(z.imag())));
}

int run_point(const PointOptions& o, const App& app) {
  const Gates g = resolve_gates(o.gates);
  const FrozenSpectrum f = analyze_frozen(g);
  if (app.format() == Format::kJson) {
    print_json({{"gates", gates_json(g)},
                {"parallel", block_json(f.parallel)},
                {"perpendicular", block_json(f.perpendicular)},
                {"frozen_spectral_radius", f.frozen_spectral_radius},
                {"frozen_stable", f.frozen_stable}});
    return 0;
  }
  const BlockSpectrum& a = f.parallel;
  const BlockSpectrum& b = f.perpendicular;
  auto opt = [](const std::optional<double>& v) { return v ? num(*v) : std::string("none"); };
  auto row = [](const char* name, const std::string& x, const std::string& y) {
    fmt::print("  {:<25}{:<28}{}\n", name, x, y);
  };
  fmt::print("gates: alpha={} beta={} mu={} eta={} p-scale={}\n", num(g.alpha), num(g.beta), num(g.mu), num(g.eta),
             to_string(g.p_scale));
  row("", "along k^ (A_par)", "orthogonal to k^ (A_perp)");
  row("eigenvalue 1", complex_text(a.eig.l1), complex_text(b.eig.l1));
  row("eigenvalue 2", complex_text(a.eig.l2), complex_text(b.eig.l2));
  row("spectral radius", num(a.spectral_radius), num(b.spectral_radius));
  row("regime", to_string(a.regime), to_string(b.regime));
  row("negative eigenvalue", a.negative_eigenvalue ? "yes" : "no", b.negative_eigenvalue ? "yes" : "no");
  row("damping ratio", opt(a.damping_ratio), opt(b.damping_ratio));
  row("natural freq (rad/step)", opt(a.natural_frequency), opt(b.natural_frequency));
  row("half-life (steps)", num(a.half_life), num(b.half_life));
  row("transient peak", num(a.transient_peak), num(b.transient_peak));
  fmt::print("frozen spectral radius {} -> {} for frozen keys\n", num(f.frozen_spectral_radius),
             f.frozen_stable ? "stable" : "NOT stable");
  return 0;
}

}  // namespace

void setup_point(App& app) {
  auto o = std::make_shared<PointOptions>();
  CLI::App* sub = app.add_subcommand("point", "frozen-key spectra of one gate set: eigenvalues, regime, damping");
  add_gate_options(sub, o->gates);
  app.add_command(sub, [o, &app] { return run_point(*o, app); });
}

}  // namespace mdnstab::cli
