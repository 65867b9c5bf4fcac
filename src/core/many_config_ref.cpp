// CPU reference of the many-configurations mode and of long random-input runs
// (src/mdnstab/many_config_ref.hpp): one head at a time in double, renormalized by
// exact powers of two on the GPU kernel's rule so flags mean the same thing.
#include "mdnstab/many_config_ref.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <fmt/format.h>
#include <omp.h>

#include "mdnstab/recurrent_ref.hpp"

namespace mdnstab {

namespace kn = mdnstab::kernels;

Status from_kernel_status(kn::Status s, const std::string& why) {
  switch (s) {
    case kn::Status::kOk: return Status::ok();
    case kn::Status::kInvalidArgument: return error(Code::kInvalidArgument, why);
    case kn::Status::kUnsupported: return error(Code::kTooLarge, why);
    case kn::Status::kNoDevice: return error(Code::kUnavailable, why);
    case kn::Status::kNonFinite: return error(Code::kNumericalIssue, why);
    default: return error(Code::kUnavailable, why);
  }
}

namespace {

constexpr double kLow = 0x1p-30, kHigh = 0x1p30, kUnderflow = 0x1p-100;  // the kernel's thresholds
constexpr double kLn2 = 0.69314718055994531;

void run_head(const kn::ManyConfigParams& p, std::int64_t h) {
  const kn::ManyHead& hd = p.head[h];
  const int n = p.dk;
  std::vector<double> S(size_t(n) + 3), M(size_t(n) + 3), g(size_t(n) + 3);  // [DK] (+3: whole blocks of 4)
  for (int i = 0; i < n; i += 4) {
    keygen::normal4(p.seed, hd.stream, 0, keygen::kInitDomain, std::uint32_t(i / 4), &S[size_t(i)]);
    keygen::normal4(p.seed, hd.stream, 1, keygen::kInitDomain, std::uint32_t(i / 4), &M[size_t(i)]);
  }
  long long E = 0;
  int flags = 0;
  double alpha = 0, beta = 0, mu = 0, eta = 0;
  auto set_gates = [&](const double* row) { alpha = row[0], beta = row[1], mu = row[2], eta = row[3]; };
  if (hd.gate_mode == keygen::kGateConstant) set_gates(p.gate_table + 4 * hd.gate_first);
  auto norm2 = [&] {
    double nn = 0;
    for (int i = 0; i < n; ++i) nn += S[size_t(i)] * S[size_t(i)] + M[size_t(i)] * M[size_t(i)];
    return nn;
  };
  auto renorm = [&](double nn) {
    if (nn >= kLow && nn <= kHigh) return;
    if (!std::isfinite(nn)) {
      flags |= kn::kFlagNonFinite;
      return;
    }
    if (nn == 0) {
      flags |= kn::kFlagZero;
      return;
    }
    if (nn < kUnderflow) flags |= kn::kFlagUnderflow;
    const int e = std::ilogb(nn) >> 1;
    for (int i = 0; i < n; ++i) S[size_t(i)] = std::ldexp(S[size_t(i)], -e), M[size_t(i)] = std::ldexp(M[size_t(i)], -e);
    E += e;
  };
  const int K = p.checkpoints;
  double* L = p.log_norm + h * (K + 1);
  std::int64_t t = 0;
  for (int j = 0; j <= K; ++j) {
    const std::int64_t t_end = kn::many_checkpoint_step(p, j);
    for (; t < t_end; ++t) {
      const auto ts = std::uint64_t(t);
      if (hd.gate_mode == keygen::kGateBox) {
        double row[4];
        keygen::gate_box(p.gate_table + 4 * hd.gate_first, p.gate_table + 4 * hd.gate_first + 4, p.seed, hd.stream,
                         ts, row);
        set_gates(row);
      } else if (hd.gate_mode != keygen::kGateConstant) {
        set_gates(p.gate_table + 4 * keygen::gate_row(hd.gate_mode, hd.gate_first, hd.gate_count, p.seed, hd.stream, ts));
      }
      if (hd.key_mode == keygen::kKeyRandom) {
        for (int i = 0; i < n; i += 4)
          keygen::normal4(p.seed, hd.stream, ts, keygen::kKeyDomain, std::uint32_t(i / 4), &g[size_t(i)]);
      } else {
        std::fill(g.begin(), g.end(), 0.0);
        double c, s;
        keygen::plane_rotation(ts, hd.key_period, hd.drift, c, s);
        const double* k = p.key_table + 2 * (hd.key_first + ts % hd.key_period);
        g[0] = c * k[0] - s * k[1];
        g[1] = s * k[0] + c * k[1];
      }
      renorm(norm2());
      double gg = 0, gs = 0;
      for (int i = 0; i < n; ++i) gg += g[size_t(i)] * g[size_t(i)], gs += g[size_t(i)] * S[size_t(i)];
      double v = 0;
      if (hd.v_std != 0) {
        double z[4];
        keygen::normal4(p.seed, hd.stream, ts, keygen::kValueDomain, 0, z);
        v = std::ldexp(hd.v_std * z[0], int(-std::clamp(E, -2000LL, 2000LL)));
      }
      const double inv = 1.0 / std::sqrt(gg);
      const double rp = p.p_alpha ? alpha : 1.0;
      const double w = rp * gs * inv - v;
      const double c = eta * w * inv;
      for (int i = 0; i < n; ++i) {
        M[size_t(i)] = mu * M[size_t(i)] + c * g[size_t(i)];
        S[size_t(i)] = alpha * S[size_t(i)] - beta * M[size_t(i)];
      }
    }
    const double nn = norm2();
    renorm(nn);
    const double nn2 = norm2();
    if (flags & kn::kFlagNonFinite)
      L[j] = std::numeric_limits<double>::quiet_NaN();
    else if (nn2 == 0)
      L[j] = -std::numeric_limits<double>::infinity();
    else
      L[j] = double(E) * kLn2 + 0.5 * std::log(nn2);
  }
  p.flags[h] = flags;
}

}  // namespace

Status many_config_ref(const kn::ManyConfigParams& p, int threads) {
  std::string why;
  if (kn::Status s = kn::check(p, &why); s != kn::Status::kOk) return from_kernel_status(s, why);
  if (threads < 0) return error(Code::kInvalidArgument, fmt::format("threads = {} must be >= 0", threads));
  const int nt = threads > 0 ? threads : omp_get_num_procs();
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
  for (std::int64_t h = 0; h < p.heads; ++h) run_head(p, h);
  return Status::ok();
}

Status long_recurrent_ref(const kn::LongRunParams& p, int threads) {
  auto bad = [](std::string m) { return error(Code::kInvalidArgument, std::move(m)); };
  if (p.batch < 1) return bad(fmt::format("batch = {} must be >= 1", p.batch));
  if (p.steps < 1 || p.steps > (std::int64_t{1} << 31) - 1) return bad(fmt::format("steps = {} must be in [1, 2^31)", p.steps));
  if (p.dk < 1 || p.dk > 4096) return bad(fmt::format("dk = {} must be in [1, 4096]", p.dk));
  if (p.dv < 1 || p.dv > 4096) return bad(fmt::format("dv = {} must be in [1, 4096]", p.dv));
  if (p.segment < 1 || p.probe_interval < 1) return bad("segment and probe_interval must be >= 1");
  if (!p.head || !p.gate_table || p.gate_rows < 1) return bad("head and gate_table must be given");
  if (!p.first_nonfinite || !p.max_norm || !p.final_norm) return bad("the outputs must be given");
  {
    std::vector<kn::ManyHead> heads(p.head, p.head + p.batch);
    for (auto& h : heads) h.key_mode = keygen::kKeyRandom;
    kn::ManyConfigParams m;
    m.heads = p.batch;
    m.dk = 2;
    m.steps = 1;
    m.head = heads.data();
    m.gate_table = p.gate_table;
    m.gate_rows = p.gate_rows;
    double ln = 0;
    std::int32_t fl = 0;
    m.log_norm = &ln;
    m.flags = &fl;
    std::string why;
    if (kn::Status s = kn::check(m, &why); s != kn::Status::kOk) return from_kernel_status(s, why);
  }
  if (threads < 0) return bad(fmt::format("threads = {} must be >= 0", threads));
  const int nt = threads > 0 ? threads : omp_get_num_procs();
  // Segments of whole probe intervals, as the GPU runner makes them.
  std::int64_t L = std::min(p.segment, p.steps);
  if (L >= p.probe_interval) L -= L % p.probe_interval;
  const std::int64_t PI = std::min(p.probe_interval, L);
  std::vector<Status> errs(size_t(p.batch));
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
  for (std::int64_t b = 0; b < p.batch; ++b) {
    const kn::ManyHead& hd = p.head[b];
    const int DK = p.dk, DV = p.dv;
    const auto nL = static_cast<size_t>(L);
    std::vector<float> k(nL * DK + 4), v(nL * DV + 4), la(nL), lm(nL), be(nL), et(nL),
        o(nL * DV);  // [T,DK], [T,DV], [T] x 4, [T,DV] of one segment
    std::vector<float> s(size_t(DK) * DV, 0.f), m(size_t(DK) * DV, 0.f), s1(s.size()), m1(m.size());  // [DK,DV]
    const std::int64_t P = (L + PI - 1) / PI;
    const auto nP = static_cast<size_t>(P);
    std::vector<double> ns(nP), nm(nP), mo(nP);
    p.first_nonfinite[b] = -1;
    p.max_norm[b] = 0;
    p.final_norm[b] = NAN;
    for (std::int64_t t0 = 0; t0 < p.steps; t0 += L) {
      const std::int64_t len = std::min(L, p.steps - t0);
      for (std::int64_t tt = 0; tt < len; ++tt) {
        const auto t = std::uint64_t(t0 + tt);
        kn::long_run_inputs<float>(p.seed, hd.stream, t, DK, DV, &k[size_t(tt * DK)], &v[size_t(tt * DV)]);
        double g[4];
        if (hd.gate_mode == keygen::kGateBox) {
          keygen::gate_box(p.gate_table + 4 * hd.gate_first, p.gate_table + 4 * hd.gate_first + 4, p.seed, hd.stream, t, g);
        } else {
          const double* row = p.gate_table + 4 * keygen::gate_row(hd.gate_mode, hd.gate_first, hd.gate_count, p.seed, hd.stream, t);
          std::copy(row, row + 4, g);
        }
        // The kernel's gates are floats: round first, then take logs in float as it does.
        la[size_t(tt)] = std::log(float(g[0]));
        be[size_t(tt)] = float(g[1]);
        lm[size_t(tt)] = std::log(float(g[2]));
        et[size_t(tt)] = float(g[3]);
      }
      RecurrentArgs<float> a;
      a.steps = int(len);
      a.dk = DK;
      a.dv = DV;
      a.q = k.data();
      a.k = k.data();
      a.v = v.data();
      a.log_alpha = la.data();
      a.log_mu = lm.data();
      a.beta = be.data();
      a.eta = et.data();
      a.p_scale = p.p_alpha ? PScale::kAlpha : PScale::kOne;
      a.s0 = s.data();
      a.m0 = m.data();
      a.s_final = s1.data();
      a.m_final = m1.data();
      a.o = o.data();
      std::int64_t fb = -1;
      RecurrentProbes pr;
      pr.interval = PI;
      pr.count = P;
      pr.norm_s = ns.data();
      pr.norm_m = nm.data();
      pr.max_abs_o = mo.data();
      pr.first_nonfinite = &fb;
      a.probes = &pr;
      if (Status st = recurrent_ref(a); !st.is_ok()) {
        errs[size_t(b)] = st;
        break;
      }
      s.swap(s1);
      m.swap(m1);
      if (fb >= 0 && p.first_nonfinite[b] < 0) p.first_nonfinite[b] = t0 + fb;
      const std::int64_t Pl = (len + PI - 1) / PI;
      for (std::int64_t j = 0; j < Pl; ++j) {
        const double nrm = std::hypot(ns[size_t(j)], nm[size_t(j)]);
        if (std::isfinite(nrm)) p.max_norm[b] = std::max(p.max_norm[b], nrm);
        p.final_norm[b] = p.first_nonfinite[b] >= 0 ? NAN : nrm;
      }
    }
  }
  for (const Status& s : errs)
    if (!s.is_ok()) return s;
  return Status::ok();
}

}  // namespace mdnstab
