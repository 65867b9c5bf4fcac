// Reachable-gate sampling: a counter-based random stream per sample (so the
// result does not depend on the thread count), uniform, edge and corner draws.
// Tested in tests/test_sampling.cpp.
#include "mdnstab/sampling.hpp"

#include <omp.h>

#include <atomic>
#include <cmath>

#include <fmt/format.h>

namespace mdnstab {

namespace {

uint64_t splitmix64(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// The stream of sample `index`: splitmix64 seeded from (seed, index).
struct Stream {
  uint64_t s;
  Stream(uint64_t seed, uint64_t index) {
    uint64_t t = seed ^ 0x6a09e667f3bcc909ULL;
    s = splitmix64(t) ^ (index * 0xd1b54a32d192ed03ULL);
    splitmix64(s);
  }
  // Uniform in the open interval (0, 1): 53 random bits, offset by half a step.
  double u() { return (double(splitmix64(s) >> 11) + 0.5) * 0x1.0p-53; }
  bool coin() { return (splitmix64(s) >> 63) != 0; }
};

// Distance from an end, as a fraction of the range: log-uniform in [1e-6, 1].
double edge_fraction(Stream& r) { return std::pow(10.0, -6.0 * r.u()); }

// One coordinate in [lo, hi]: uniform, or near a random end.
double coord(Stream& r, double lo, double hi, bool edge) {
  if (!edge) return lo + (hi - lo) * r.u();
  const double d = (hi - lo) * edge_fraction(r);
  return r.coin() ? lo + d : hi - d;
}

// A learned scale (exp(A_log) etc.) in (lo, hi], returned as its log.
double learned_log(Stream& r, double lo, double hi, bool log_uniform, bool edge) {
  if (log_uniform) return coord(r, std::log(lo), std::log(hi), edge);
  return std::log(coord(r, lo, hi, edge));  // coord never returns exactly lo = 0: u() > 0
}

double bias_from_dt(Stream& r, const SamplingBox& b, bool edge) {
  return inverse_softplus(std::exp(coord(r, std::log(b.dt_lo), std::log(b.dt_hi), edge)));
}

Status check_box(const SamplingBox& b) {
  auto bad = [](const char* what, double lo, double hi) {
    return error(Code::kInvalidArgument, fmt::format("sampling range {} = [{}, {}] is empty or invalid", what, lo, hi));
  };
  if (!(b.raw_abs > 0) || !std::isfinite(b.raw_abs)) return bad("raw_abs", -b.raw_abs, b.raw_abs);
  if (!(b.e_over_tau_abs > 0) || !std::isfinite(b.e_over_tau_abs))
    return bad("e/tau", -b.e_over_tau_abs, b.e_over_tau_abs);
  const double min_lo = b.log_uniform_learned ? 0.0 : -1.0;  // log-uniform needs lo > 0
  for (auto [what, lo, hi] : {std::tuple{"exp(A_log)", b.A_lo, b.A_hi}, {"exp(Mu_log)", b.Mu_lo, b.Mu_hi},
                              {"exp(log_factor)", b.factor_lo, b.factor_hi}})
    if (!(lo > min_lo && lo >= 0 && hi > lo && std::isfinite(hi))) return bad(what, lo, hi);
  if (!(b.dt_lo > 0 && b.dt_hi >= b.dt_lo && std::isfinite(b.dt_hi))) return bad("dt", b.dt_lo, b.dt_hi);
  return Status::ok();
}

}  // namespace

const char* to_string(SampleRange r) {
  switch (r) {
    case SampleRange::kInitial: return "initial";
    case SampleRange::kWide: return "wide";
    case SampleRange::kBoth: return "both";
  }
  return "?";
}

Result<SampleRange> parse_sample_range(std::string_view s) {
  if (s == "initial") return SampleRange::kInitial;
  if (s == "wide") return SampleRange::kWide;
  if (s == "both") return SampleRange::kBoth;
  return error(Code::kInvalidArgument, fmt::format("unknown sampling range '{}' (expected initial, wide or both)", s));
}

const char* to_string(SampleKind k) {
  switch (k) {
    case SampleKind::kUniform: return "uniform";
    case SampleKind::kEdge: return "edge";
    case SampleKind::kCorner: return "corner";
  }
  return "?";
}

SamplingBox sampling_box(SampleRange r) {
  SamplingBox b;
  if (r == SampleRange::kWide) {
    b.raw_abs = 40;
    b.e_over_tau_abs = 40;
    b.A_lo = b.Mu_lo = 1e-6;
    b.A_hi = b.Mu_hi = 1e3;
    b.factor_lo = 1e-4;
    b.factor_hi = 1e3;
    b.dt_lo = 1e-6;
    b.dt_hi = 10;
    b.log_uniform_learned = true;
  }
  return b;
}

std::string describe(const SamplingBox& b, const ParamConfig& c) {
  const char* law = b.log_uniform_learned ? "log-uniform" : "uniform";
  return fmt::format(
      "a, b, m in [{:g}, {:g}], e in [{:g}, {:g}] (e/tau in +-{:g}, tau = {:g}); exp(A_log) {} in ({:g}, {:g}], "
      "exp(Mu_log) {} in ({:g}, {:g}], exp(log_factor) {} in ({:g}, {:g}], dt_bias and mu_bias = "
      "inverse_softplus(dt), dt log-uniform in [{:g}, {:g}]",
      -b.raw_abs, b.raw_abs, -b.e_over_tau_abs * c.tau(), b.e_over_tau_abs * c.tau(), b.e_over_tau_abs, c.tau(), law,
      b.A_lo, b.A_hi, law, b.Mu_lo, b.Mu_hi, law, b.factor_lo, b.factor_hi, b.dt_lo, b.dt_hi);
}

HeadParams initial_head_params(uint64_t seed, uint64_t index) {
  const SamplingBox b = sampling_box(SampleRange::kInitial);
  Stream r(seed, index);
  HeadParams h;
  h.A_log = learned_log(r, b.A_lo, b.A_hi, false, false);
  h.Mu_log = learned_log(r, b.Mu_lo, b.Mu_hi, false, false);
  h.log_factor = learned_log(r, b.factor_lo, b.factor_hi, false, false);
  h.dt_bias = bias_from_dt(r, b, false);
  h.mu_bias = bias_from_dt(r, b, false);
  return h;
}

Result<std::vector<SampledGate>> sample_reachable_gates(Parametrization p, const ParamConfig& c,
                                                        const SamplingOptions& opt) {
  if (Status s = check(c); !s.is_ok()) return s;
  if (opt.samples < 1 || opt.samples > 1'000'000'000L)
    return error(Code::kInvalidArgument, fmt::format("samples = {} must be in [1, 1e9]", opt.samples));
  if (!(opt.edge_fraction >= 0 && opt.corner_fraction >= 0 && opt.edge_fraction + opt.corner_fraction <= 1))
    return error(Code::kInvalidArgument, fmt::format("edge fraction {} and corner fraction {} must be >= 0 with sum <= 1",
                                                     opt.edge_fraction, opt.corner_fraction));
  if (opt.threads < 0) return error(Code::kInvalidArgument, fmt::format("threads = {} must be >= 0", opt.threads));
  if (opt.box && opt.range == SampleRange::kBoth)
    return error(Code::kInvalidArgument, "a sampling box override needs range initial or wide, not both");
  const SamplingBox boxes[2] = {opt.box ? *opt.box : sampling_box(opt.range == SampleRange::kBoth ? SampleRange::kInitial : opt.range),
                                opt.box ? *opt.box : sampling_box(SampleRange::kWide)};
  for (const SamplingBox& b : boxes)
    if (Status s = check_box(b); !s.is_ok()) return s;
  if (opt.head) {
    const HeadParams& h = *opt.head;
    for (auto [name, v] : {std::pair{"A_log", h.A_log}, {"Mu_log", h.Mu_log}, {"dt_bias", h.dt_bias},
                           {"mu_bias", h.mu_bias}, {"log_factor", h.log_factor}})
      if (!std::isfinite(v)) return error(Code::kInvalidArgument, fmt::format("{} = {} is not finite", name, v));
  }

  std::vector<SampledGate> out;
  try {
    out.resize(size_t(opt.samples));
  } catch (const std::bad_alloc&) {
    return error(Code::kTooLarge, fmt::format("samples = {} do not fit in memory", opt.samples));
  }
  std::atomic<long> first_bad{-1};
  Status bad;
  const int threads = opt.threads > 0 ? opt.threads : omp_get_max_threads();
#pragma omp parallel for schedule(static) num_threads(threads)
  for (long i = 0; i < opt.samples; ++i) {
    Stream r(opt.seed, uint64_t(i));
    SampledGate& s = out[size_t(i)];
    const bool wide = opt.range == SampleRange::kWide || (opt.range == SampleRange::kBoth && i % 2 == 1);
    s.range = wide ? SampleRange::kWide : SampleRange::kInitial;
    const SamplingBox& box = boxes[opt.range == SampleRange::kBoth ? int(wide) : 0];
    const double R = box.raw_abs, E = box.e_over_tau_abs * c.tau();
    const double pick = r.u();
    s.kind = pick < opt.edge_fraction                          ? SampleKind::kEdge
             : pick < opt.edge_fraction + opt.corner_fraction ? SampleKind::kCorner
                                                               : SampleKind::kUniform;
    auto edge = [&] { return s.kind == SampleKind::kEdge && r.coin(); };
    if (opt.head) {
      s.head = *opt.head;
    } else {
      const bool lu = box.log_uniform_learned;
      s.head.A_log = learned_log(r, box.A_lo, box.A_hi, lu, edge());
      s.head.Mu_log = learned_log(r, box.Mu_lo, box.Mu_hi, lu, edge());
      s.head.log_factor = learned_log(r, box.factor_lo, box.factor_hi, lu, edge());
      s.head.dt_bias = bias_from_dt(r, box, edge());
      s.head.mu_bias = bias_from_dt(r, box, edge());
    }
    if (s.kind == SampleKind::kCorner) {
      // a, m low (alpha', mu -> 1), b, e high (beta' -> 1, eta -> 2).
      s.raw.a = -R + 2 * R * edge_fraction(r);
      s.raw.b = R - 2 * R * edge_fraction(r);
      s.raw.m = -R + 2 * R * edge_fraction(r);
      s.raw.e = E - 2 * E * edge_fraction(r);
    } else {
      s.raw.a = coord(r, -R, R, edge());
      s.raw.b = coord(r, -R, R, edge());
      s.raw.m = coord(r, -R, R, edge());
      s.raw.e = coord(r, -E, E, edge());
    }
    auto g = map_gates(p, c, s.head, s.raw, opt.p_scale);
    if (g.is_ok()) {
      s.mapped = g.value;
    } else {
      long expected = -1;
      if (first_bad.compare_exchange_strong(expected, i)) bad = g.status;
    }
  }
  if (first_bad.load() >= 0)
    return error(bad.code, fmt::format("sample {}: {}", first_bad.load(), bad.message));
  return out;
}

}  // namespace mdnstab
