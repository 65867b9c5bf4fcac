// One long probed run of the MDN recurrence on synthetic inputs (simulate.hpp).
// Inputs come from a counter-based generator indexed by (stream, batch, token, head,
// element), so a run does not depend on its segment size or thread count.
#include "mdnstab/simulate.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>

#include <fmt/format.h>

#include "mdnstab/recurrent_ref.hpp"

namespace mdnstab {

namespace {

constexpr double kTwoPi = 6.283185307179586;

uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Uniform in (0, 1) and standard normal, as functions of (seed, stream, index).
double uniform(uint64_t seed, uint64_t stream, uint64_t i) {
  const uint64_t x = mix(mix(seed ^ (stream * 0xd1b54a32d192ed03ull)) + i);
  return (double(x >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}
double normal(uint64_t seed, uint64_t stream, uint64_t i) {
  const double u1 = uniform(seed, stream, 2 * i), u2 = uniform(seed, stream, 2 * i + 1);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(kTwoPi * u2);
}

enum Stream : uint64_t { kQ = 1, kK, kV, kAlpha, kBeta, kMu, kEta, kPlane };

float round_bf16(float x) {  // round to nearest even in bf16, kept as a float
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return x;
  u += 0x7fffu + ((u >> 16) & 1u);
  u &= 0xffff0000u;
  std::memcpy(&x, &u, 4);
  return x;
}

Status check_options(const SimulateOptions& o) {
  auto bad = [](std::string m) { return error(Code::kInvalidArgument, std::move(m)); };
  if (o.batch < 1) return bad(fmt::format("batch = {} must be >= 1", o.batch));
  if (o.heads < 1) return bad(fmt::format("heads = {} must be >= 1", o.heads));
  if (o.dk < 1) return bad(fmt::format("dk = {} must be >= 1", o.dk));
  if (o.dv < 1) return bad(fmt::format("dv = {} must be >= 1", o.dv));
  if (o.steps < 1) return bad(fmt::format("steps = {} must be >= 1", o.steps));
  if (o.steps >= (int64_t{1} << 31) - 16) return bad(fmt::format("steps = {} must be below 2^31 - 16", o.steps));
  if (!(o.gate_jitter >= 0 && o.gate_jitter <= 1))
    return bad(fmt::format("gate jitter = {} must be in [0, 1]", o.gate_jitter));
  if (o.probe_every < 0) return bad(fmt::format("probe interval = {} must be >= 1", o.probe_every));
  if (o.segment < 0) return bad(fmt::format("segment = {} must be >= 1", o.segment));
  if (o.rotating_keys && o.dk < 2) return bad(fmt::format("rotating keys need dk >= 2 (dk = {})", o.dk));
  if (o.rotating_keys && !std::isfinite(o.angle)) return bad(fmt::format("angle = {} is not finite", o.angle));
  if (!(o.fit_skip >= 0 && o.fit_skip < 1)) return bad(fmt::format("fit skip = {} must be in [0, 1)", o.fit_skip));
  if (o.dump && o.dump->gates.empty()) return bad("the gate dump is empty");
  return Status::ok();
}

double clamp_gate(double x, double hi) { return std::min(hi, std::max(0.0, x)); }

}  // namespace

Status run_segment_cpu(const SimSegment& seg) {
  RecurrentArgs<float> a;
  a.batch = seg.batch;
  a.heads = seg.heads;
  a.steps = static_cast<int>(seg.steps);
  a.dk = seg.dk;
  a.dv = seg.dv;
  a.q = seg.q;
  a.k = seg.k;
  a.v = seg.v;
  a.log_alpha = seg.log_alpha;
  a.log_mu = seg.log_mu;
  a.beta = seg.beta;
  a.eta = seg.eta;
  a.p_scale = seg.p_scale;
  a.s0 = seg.s;
  a.m0 = seg.m;
  a.o = seg.o;
  // The reference reads s0/m0 before writing the finals of the same (b, h), so they may alias.
  a.s_final = seg.s;
  a.m_final = seg.m;
  RecurrentProbes pr;
  pr.interval = seg.probe_interval;
  pr.count = seg.probe_count;
  pr.norm_s = seg.norm_s;
  pr.norm_m = seg.norm_m;
  pr.max_abs_o = seg.max_abs_o;
  pr.first_nonfinite = seg.first_nonfinite;
  a.probes = &pr;
  return recurrent_ref(a);
}

double fit_log_slope(const std::vector<double>& x, const std::vector<double>& y, int64_t* points) {
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  int64_t n = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (!(y[i] > 0) || !std::isfinite(y[i])) continue;
    const double ly = std::log(y[i]);
    sx += x[i];
    sy += ly;
    sxx += x[i] * x[i];
    sxy += x[i] * ly;
    ++n;
  }
  if (points) *points = n;
  if (n < 2) return std::numeric_limits<double>::quiet_NaN();
  const double den = n * sxx - sx * sx;
  if (den <= 0) return std::numeric_limits<double>::quiet_NaN();
  return (n * sxy - sx * sy) / den;
}

Result<SimulateResult> simulate(const SimulateOptions& opt, const SegmentRunner& runner) {
  if (Status s = check_options(opt); !s.is_ok()) return s;
  const auto t_start = std::chrono::steady_clock::now();
  const int B = opt.batch, H = opt.heads, DK = opt.dk, DV = opt.dv;
  const int64_t N = opt.probe_every > 0 ? opt.probe_every : std::max<int64_t>(1, opt.steps / 1000);
  int64_t L = opt.segment;
  if (L == 0) L = std::max<int64_t>(1, (int64_t{64} << 20) / (int64_t(B) * H * (2 * DK + DV + 8)));
  L = std::max<int64_t>(N, L / N * N);  // segments start on probe boundaries
  L = std::min<int64_t>(L, (opt.steps + N - 1) / N * N);

  // Rotating keys: an orthonormal pair (u, w) per (b, h), from Gaussian vectors.
  std::vector<double> plane_u, plane_w;  // [B,H,DK]
  if (opt.rotating_keys) {
    plane_u.resize(size_t(B) * H * DK);
    plane_w.resize(size_t(B) * H * DK);
    for (int bh = 0; bh < B * H; ++bh) {
      double* u = &plane_u[size_t(bh) * DK];
      double* w = &plane_w[size_t(bh) * DK];
      double nu = 0, dot = 0, nw = 0;
      for (int i = 0; i < DK; ++i) {
        u[i] = normal(opt.seed, kPlane, uint64_t(bh) * 2 * DK + i);
        nu += u[i] * u[i];
      }
      for (int i = 0; i < DK; ++i) u[i] /= std::sqrt(nu);
      for (int i = 0; i < DK; ++i) {
        w[i] = normal(opt.seed, kPlane, uint64_t(bh) * 2 * DK + DK + i);
        dot += w[i] * u[i];
      }
      for (int i = 0; i < DK; ++i) {
        w[i] -= dot * u[i];
        nw += w[i] * w[i];
      }
      for (int i = 0; i < DK; ++i) w[i] /= std::sqrt(nw);
    }
  }

  const size_t state = size_t(B) * H * DK * DV;
  std::vector<float> S(state, 0.f), M(state, 0.f);
  std::vector<float> q, k, v, la, lm, beta, eta, o;
  SimulateResult res;
  res.probe_every = N;
  res.segment = L;
  std::vector<std::vector<double>> xs(size_t(B) * H), ys(size_t(B) * H);
  res.heads.resize(size_t(B) * H);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h) {
      res.heads[size_t(b) * H + h].batch = b;
      res.heads[size_t(b) * H + h].head = h;
    }
  std::vector<SimProbe> probes;  // in run order; sorted by head at the end

  for (int64_t t0 = 0; t0 < opt.steps; t0 += L) {
    const int64_t len = std::min(L, opt.steps - t0);
    const size_t tok = size_t(B) * len * H;
    q.resize(tok * DK);
    k.resize(tok * DK);
    v.resize(tok * DV);
    la.resize(tok);
    lm.resize(tok);
    beta.resize(tok);
    eta.resize(tok);
    o.resize(tok * DV);
#pragma omp parallel for schedule(static)
    for (int64_t x = 0; x < int64_t(tok); ++x) {
      const int h = int(x % H);
      const int64_t tl = (x / H) % len;
      const int b = int(x / (int64_t(H) * len));
      const int64_t t = t0 + tl;                                    // global step - 1
      const uint64_t gi = (uint64_t(b) * opt.steps + t) * H + h;  // global token index
      for (int i = 0; i < DK; ++i) {
        float qi = float(normal(opt.seed, kQ, gi * DK + i));
        float ki;
        if (opt.rotating_keys) {
          const size_t bh = (size_t(b) * H + h) * DK;
          ki = float(std::cos(double(t) * opt.angle) * plane_u[bh + i] + std::sin(double(t) * opt.angle) * plane_w[bh + i]);
        } else {
          ki = float(normal(opt.seed, kK, gi * DK + i));
        }
        if (opt.bf16) {
          qi = round_bf16(qi);
          ki = round_bf16(ki);
        }
        q[size_t(x) * DK + i] = qi;
        k[size_t(x) * DK + i] = ki;
      }
      for (int j = 0; j < DV; ++j) {
        const float vj = float(normal(opt.seed, kV, gi * DV + j));
        v[size_t(x) * DV + j] = opt.bf16 ? round_bf16(vj) : vj;
      }
      if (opt.dump) {
        const GateDump& d = *opt.dump;
        const Gates& g = d.at(b % d.batch, t % d.time, h % d.heads);
        la[x] = float(g.log_alpha);
        lm[x] = float(g.log_mu);
        beta[x] = float(g.beta);
        eta[x] = float(g.eta);
      } else if (opt.gate_jitter > 0) {
        const double j = opt.gate_jitter;
        const Gates& g = opt.gates;
        const double al = clamp_gate(g.alpha + j * (2 * uniform(opt.seed, kAlpha, gi) - 1), 1.0);
        const double mu = clamp_gate(g.mu + j * (2 * uniform(opt.seed, kMu, gi) - 1), 1.0);
        la[x] = float(std::log(al));
        lm[x] = float(std::log(mu));
        beta[x] = float(clamp_gate(g.beta + j * (2 * uniform(opt.seed, kBeta, gi) - 1), 1.0));
        eta[x] = float(clamp_gate(g.eta + 2 * j * (2 * uniform(opt.seed, kEta, gi) - 1), 2.0));
      } else {
        la[x] = float(opt.gates.log_alpha);
        lm[x] = float(opt.gates.log_mu);
        beta[x] = float(opt.gates.beta);
        eta[x] = float(opt.gates.eta);
      }
    }

    const int64_t P = (len + N - 1) / N;
    std::vector<double> ns(size_t(B) * H * P), nm(size_t(B) * H * P), mo(size_t(B) * H * P);
    std::vector<int64_t> fb(size_t(B) * H, -1);
    SimSegment seg;
    seg.batch = B;
    seg.heads = H;
    seg.dk = DK;
    seg.dv = DV;
    seg.steps = len;
    seg.bf16 = opt.bf16;
    seg.p_scale = opt.gates.p_scale;
    seg.q = q.data();
    seg.k = k.data();
    seg.v = v.data();
    seg.log_alpha = la.data();
    seg.log_mu = lm.data();
    seg.beta = beta.data();
    seg.eta = eta.data();
    seg.s = S.data();
    seg.m = M.data();
    seg.o = o.data();
    seg.probe_interval = N;
    seg.probe_count = P;
    seg.norm_s = ns.data();
    seg.norm_m = nm.data();
    seg.max_abs_o = mo.data();
    seg.first_nonfinite = fb.data();
    if (Status s = runner(seg); !s.is_ok()) return s;

    bool all_bad = true;
    for (int bh = 0; bh < B * H; ++bh) {
      SimHead& hd = res.heads[size_t(bh)];
      for (int64_t p = 0; p < P; ++p) {
        const size_t i = size_t(bh) * P + size_t(p);
        SimProbe pr;
        pr.batch = hd.batch;
        pr.head = hd.head;
        pr.step = t0 + std::min((p + 1) * N, len);
        pr.norm_s = ns[i];
        pr.norm_m = nm[i];
        pr.max_abs_o = mo[i];
        probes.push_back(pr);
      }
      if (hd.first_nonfinite < 0 && fb[size_t(bh)] >= 0) hd.first_nonfinite = t0 + fb[size_t(bh)];
      all_bad = all_bad && hd.first_nonfinite >= 0;
    }
    res.steps_run = t0 + len;
    if (all_bad) break;  // nothing finite is left to follow
  }

  std::stable_sort(probes.begin(), probes.end(), [](const SimProbe& a, const SimProbe& b) {
    return a.batch != b.batch ? a.batch < b.batch : a.head != b.head ? a.head < b.head : a.step < b.step;
  });
  for (const SimProbe& p : probes) {
    const size_t bh = size_t(p.batch) * H + p.head;
    SimHead& hd = res.heads[bh];
    hd.final_norm_s = p.norm_s;
    hd.final_norm_m = p.norm_m;
    // The fit leaves out the first fit_skip of the finite part of the run (the transient).
    const int64_t horizon = hd.first_nonfinite >= 0 ? hd.first_nonfinite : res.steps_run;
    if (double(p.step) < opt.fit_skip * double(horizon)) continue;
    if (hd.first_nonfinite >= 0 && p.step >= hd.first_nonfinite) continue;
    xs[bh].push_back(double(p.step));
    ys[bh].push_back(p.norm_s);
  }
  for (size_t bh = 0; bh < res.heads.size(); ++bh)
    res.heads[bh].growth_rate = fit_log_slope(xs[bh], ys[bh], &res.heads[bh].fit_points);
  res.probes = std::move(probes);
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  return res;
}

}  // namespace mdnstab
