// Renormalized products of the MDN transition (src/mdnstab/lyapunov.hpp). Each
// chain has its own counter-seeded generator (xoshiro256** seeded by splitmix64
// of (seed, chain)), so results repeat for a seed whatever the thread count.
#include "mdnstab/lyapunov.hpp"

#include <chrono>
#include <cmath>
#include <limits>
#include <string>

#include <Eigen/Dense>
#include <fmt/format.h>
#include <omp.h>

#include "mdnstab/linearization.hpp"

namespace mdnstab {

namespace {

std::uint64_t splitmix64(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

class Rng {
 public:
  Rng(std::uint64_t seed, std::uint64_t stream) {
    std::uint64_t x = seed ^ (0xd1b54a32d192ed03ULL * (stream + 1));
    for (auto& w : s_) w = splitmix64(x);
  }
  std::uint64_t next() {
    const std::uint64_t r = rotl(s_[1] * 5, 7) * 9, t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return r;
  }
  // Uniform in (-1, 1).
  double sym() { return double(std::int64_t(next()) >> 11) * 0x1.0p-52; }
  // Standard normals in pairs (Marsaglia's polar method).
  void normal2(double& a, double& b) {
    double u, v, s;
    do {
      u = sym();
      v = sym();
      s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    const double f = std::sqrt(-2.0 * std::log(s) / s);
    a = u * f;
    b = v * f;
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4];
};

void random_unit(Rng& rng, double* k, int n) {
  double nn = 0;
  do {
    for (int i = 0; i < n; i += 2) {
      double a, b;
      rng.normal2(a, b);
      k[i] = a;
      if (i + 1 < n) k[i + 1] = b;
    }
    nn = 0;
    for (int i = 0; i < n; ++i) nn += k[i] * k[i];
  } while (nn == 0.0);
  const double inv = 1.0 / std::sqrt(nn);
  for (int i = 0; i < n; ++i) k[i] *= inv;
}

}  // namespace

Status parse_keys(const std::string& spec, LyapunovOptions& opt) {
  if (spec == "random") {
    opt.keys = LyapunovOptions::Keys::kRandom;
    return Status::ok();
  }
  const std::string pre = "rotating:";
  if (spec.rfind(pre, 0) == 0) {
    const std::string a = spec.substr(pre.size());
    try {
      size_t pos = 0;
      const double v = std::stod(a, &pos);
      if (pos == a.size() && std::isfinite(v)) {
        opt.keys = LyapunovOptions::Keys::kRotating;
        opt.angle = v;
        return Status::ok();
      }
    } catch (...) {
    }
    return error(Code::kInvalidArgument, fmt::format("--keys {}: '{}' is not a finite angle in radians", spec, a));
  }
  return error(Code::kInvalidArgument, fmt::format("--keys '{}' (expected random or rotating:RADIANS)", spec));
}

double mean_square_growth(const Gates& g, int dk) {
  if (dk < 1) return std::numeric_limits<double>::quiet_NaN();
  auto kron = [](const Mat2& m, double w) {
    const double e[2][2] = {{m.a, m.b}, {m.c, m.d}};
    Eigen::Matrix4d k;
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 4; ++j) k(i, j) = w * e[i / 2][j / 2] * e[i % 2][j % 2];
    return k;
  };
  const Eigen::Matrix4d M = kron(a_par(g), 1.0 / dk) + kron(a_perp(g), 1.0 - 1.0 / dk);
  return std::sqrt(M.eigenvalues().cwiseAbs().maxCoeff());
}

Result<LyapunovResult> lyapunov(const Gates& g, const LyapunovOptions& opt) {
  auto bad = [](std::string m) { return error(Code::kInvalidArgument, std::move(m)); };
  for (auto [name, v] : {std::pair{"alpha", g.alpha}, {"beta", g.beta}, {"mu", g.mu}, {"eta", g.eta}})
    if (Status s = check_gate(name, v); !s.is_ok()) return s;
  if (opt.dk < 1) return bad(fmt::format("--dk {} must be >= 1", opt.dk));
  if (opt.dk > (1 << 20)) return error(Code::kTooLarge, fmt::format("--dk {} is too large (max 1048576)", opt.dk));
  if (opt.keys == LyapunovOptions::Keys::kRotating && opt.dk < 2)
    return bad(fmt::format("--dk {}: rotating keys need dk >= 2", opt.dk));
  if (!std::isfinite(opt.angle)) return bad(fmt::format("angle {} is not finite", opt.angle));
  if (opt.steps < 1) return bad(fmt::format("--steps {} must be >= 1", opt.steps));
  if (opt.chains < 1) return bad(fmt::format("chains = {} must be >= 1", opt.chains));
  if (opt.batches < 1) return bad(fmt::format("batches = {} must be >= 1", opt.batches));
  if (opt.steps < opt.batches) return bad(fmt::format("--steps {} must be >= batches = {}", opt.steps, opt.batches));
  if (opt.threads < 0) return bad(fmt::format("--threads {} must be >= 0", opt.threads));
  const long burn = opt.burn_in >= 0 ? opt.burn_in : opt.steps / 10;
  const int n = opt.dk, nc = opt.chains, nb = opt.batches;
  const double alpha = g.alpha, mu = g.mu, beta = g.beta, eta = g.eta, rp = g.rho_p();

  const auto t0 = std::chrono::steady_clock::now();
  std::vector<double> batch_exp(size_t(nc) * nb);  // [chain, batch]
  const int threads = opt.threads > 0 ? opt.threads : omp_get_num_procs();
  bool died = false;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) reduction(|| : died)
  for (int c = 0; c < nc; ++c) {
    Rng rng(opt.seed, std::uint64_t(c));
    std::vector<double> S(n), M(n), k(n);  // [DK] each: the state (S column, M column) and the key
    for (int i = 0; i < n; i += 2) {
      double a, b;
      rng.normal2(a, b);
      S[i] = a;
      M[i] = b;
      if (i + 1 < n) {
        rng.normal2(a, b);
        S[i + 1] = a;
        M[i + 1] = b;
      }
    }
    double log_norm = 0;  // log of the norm removed so far (measured part)
    auto renorm = [&]() {
      double nn = 0;
      for (int i = 0; i < n; ++i) nn += S[i] * S[i] + M[i] * M[i];
      if (nn == 0.0 || !std::isfinite(nn)) return nn == 0.0 ? -std::numeric_limits<double>::infinity() : NAN;
      const double r = std::sqrt(nn), inv = 1.0 / r;
      for (int i = 0; i < n; ++i) S[i] *= inv, M[i] *= inv;
      return std::log(r);
    };
    renorm();
    const long total = burn + opt.steps;
    long b_end = burn + opt.steps / nb, b_start = burn;
    int b = 0;
    for (long t = 0; t < total; ++t) {
      if (opt.keys == LyapunovOptions::Keys::kRandom) {
        random_unit(rng, k.data(), n);
        // w = rho_p k.S;  M = mu M + eta k w;  S = alpha S - beta M
        double w = 0;
        for (int i = 0; i < n; ++i) w += k[i] * S[i];
        w *= rp;
        const double ew = eta * w;
        for (int i = 0; i < n; ++i) {
          M[i] = mu * M[i] + ew * k[i];
          S[i] = alpha * S[i] - beta * M[i];
        }
      } else {
        const double th = double(t) * opt.angle;
        const double k0 = std::cos(th), k1 = std::sin(th);
        const double ew = eta * rp * (k0 * S[0] + k1 * S[1]);
        for (int i = 0; i < n; ++i) {
          const double ki = i == 0 ? k0 : (i == 1 ? k1 : 0.0);
          M[i] = mu * M[i] + ew * ki;
          S[i] = alpha * S[i] - beta * M[i];
        }
      }
      const double l = renorm();
      if (t >= burn) log_norm += l;
      if (!std::isfinite(l)) {
        died = died || l < 0;  // exactly zero state: exponent -inf
        for (int j = b; j < nb; ++j) batch_exp[size_t(c) * nb + j] = l;
        break;
      }
      if (t + 1 == b_end) {
        batch_exp[size_t(c) * nb + b] = log_norm / double(b_end - b_start);
        log_norm = 0;
        ++b;
        b_start = b_end;
        b_end = b + 1 == nb ? total : burn + opt.steps * (b + 1) / nb;
      }
    }
  }
  LyapunovResult r;
  r.threads = threads;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (double v : batch_exp)
    if (std::isnan(v)) return error(Code::kNumericalIssue, "the state norm became NaN or inf during the products");
  if (died) {
    r.exponent = -std::numeric_limits<double>::infinity();
    r.stderr_ = 0;
    r.chain_exponents.assign(nc, r.exponent);
    return r;
  }
  // Each chain's exponent is the length-weighted mean of its batches.
  r.chain_exponents.assign(nc, 0.0);
  double sum = 0;
  for (int c = 0; c < nc; ++c) {
    double acc = 0;
    for (int j = 0; j < nb; ++j) {
      const long lo = opt.steps * j / nb, hi = opt.steps * (j + 1) / nb;
      acc += batch_exp[size_t(c) * nb + j] * double(hi - lo);
    }
    r.chain_exponents[c] = acc / double(opt.steps);
    sum += acc;
  }
  r.exponent = sum / (double(opt.steps) * nc);
  const int m = nc * nb;
  if (m > 1) {
    double mean = 0, ss = 0;
    for (double v : batch_exp) mean += v;
    mean /= m;
    for (double v : batch_exp) ss += (v - mean) * (v - mean);
    r.stderr_ = std::sqrt(ss / (m - 1) / m);
  } else {
    r.stderr_ = NAN;
  }
  return r;
}

}  // namespace mdnstab
