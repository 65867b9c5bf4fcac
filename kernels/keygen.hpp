// Counter-based random numbers and key/gate schedules shared by the GPU
// many-configuration kernel (kernels/many_config.cu) and its CPU reference
// (src/core/many_config_ref.cpp): plain C++ usable from host code and CUDA, no
// CUDA types. Philox4x32-10 (Salmon et al., SC'11) is checked against Random123's
// known answers and the schedules against closed forms in tests/test_keygen.cpp.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define MDNSTAB_HD __host__ __device__ __forceinline__
#else
#define MDNSTAB_HD inline
#endif

namespace mdnstab::keygen {

inline constexpr double kPi = 3.14159265358979323846;

struct U4 {
  std::uint32_t x, y, z, w;
};

// Philox4x32 with 10 rounds: a bijection of the 128-bit counter under a 64-bit key.
MDNSTAB_HD U4 philox4x32_10(U4 c, std::uint32_t k0, std::uint32_t k1) {
  constexpr std::uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;  // round multipliers
  constexpr std::uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;  // Weyl key increments
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int r = 0; r < 10; ++r) {
    const std::uint64_t p0 = std::uint64_t(kM0) * c.x, p1 = std::uint64_t(kM1) * c.z;
    const std::uint32_t hi0 = std::uint32_t(p0 >> 32), lo0 = std::uint32_t(p0);
    const std::uint32_t hi1 = std::uint32_t(p1 >> 32), lo1 = std::uint32_t(p1);
    c = U4{hi1 ^ c.y ^ k0, lo1, hi0 ^ c.w ^ k1, lo0};
    k0 += kW0;
    k1 += kW1;
  }
  return c;
}

// What a draw is for: independent streams for the same (seed, stream, step).
enum Domain : std::uint32_t {
  kKeyDomain = 0,     // the key components of a many-config head
  kGateDomain = 1,    // per-step gate draws (set index, box values)
  kValueDomain = 2,   // the value v_t of a many-config head (one column)
  kInitDomain = 3,    // the initial state (S column, M column)
  kInputKDomain = 4,  // full-recurrence inputs: k (and q = k) components
  kInputVDomain = 5,  // full-recurrence inputs: v components
};

// Four 32-bit words for (seed, stream, step, domain, block). Counter layout:
// x = step bits 0..31, y = step bits 32..47 | domain << 24 (steps < 2^40),
// z = stream bits 0..31, w = stream bits 32..47 | block << 16 (block < 2^16).
MDNSTAB_HD U4 draw(std::uint64_t seed, std::uint64_t stream, std::uint64_t step, std::uint32_t domain,
                   std::uint32_t block) {
  const U4 c{std::uint32_t(step), (std::uint32_t(step >> 32) & 0xFFFFu) | (domain << 24), std::uint32_t(stream),
             (std::uint32_t(stream >> 32) & 0xFFFFu) | (block << 16)};
  return philox4x32_10(c, std::uint32_t(seed), std::uint32_t(seed >> 32));
}

// A uniform in (0, 1) from the top 23 bits: (i + 1/2) 2^-23, exact in float and
// double alike, so both sides start Box-Muller from the same number.
MDNSTAB_HD float uniform_f(std::uint32_t x) { return (float(x >> 9) + 0.5f) * 1.1920928955078125e-7f; }
MDNSTAB_HD double uniform_d(std::uint32_t x) { return (double(x >> 9) + 0.5) * 1.1920928955078125e-7; }

// |z| <= sqrt(-2 ln 2^-24) for every Box-Muller normal below (the smallest uniform is 2^-24).
inline constexpr double kMaxNormal = 5.7681075464036;  // sqrt(48 ln 2), rounded up

// Box-Muller: two standard normals from two words; float on the device (accurate
// logf, sqrtf, sincospif: a few ulps), double on the host reference.
MDNSTAB_HD void normal_pair_f(std::uint32_t a, std::uint32_t b, float& z0, float& z1) {
  const float u = uniform_f(a), t = 2.0f * uniform_f(b);  // angle t * pi, t in (0, 2)
#if defined(__CUDA_ARCH__)
  const float r = sqrtf(-2.0f * logf(u));
  float s, c;
  sincospif(t, &s, &c);
#else
  const float r = std::sqrt(-2.0f * std::log(u));
  const float s = float(std::sin(double(t) * kPi)), c = float(std::cos(double(t) * kPi));
#endif
  z0 = r * c;
  z1 = r * s;
}
MDNSTAB_HD void normal_pair_d(std::uint32_t a, std::uint32_t b, double& z0, double& z1) {
  const double u = uniform_d(a), t = 2.0 * uniform_d(b);
#if defined(__CUDA_ARCH__)
  const double r = sqrt(-2.0 * log(u));
  double s, c;
  sincospi(t, &s, &c);
#else
  const double r = std::sqrt(-2.0 * std::log(u));
  const double s = std::sin(t * kPi), c = std::cos(t * kPi);
#endif
  z0 = r * c;
  z1 = r * s;
}

// Four normals of block `block` (components 4*block .. 4*block+3) of a draw.
template <class T>
MDNSTAB_HD void normal4(std::uint64_t seed, std::uint64_t stream, std::uint64_t step, std::uint32_t domain,
                        std::uint32_t block, T* z) {
  const U4 u = draw(seed, stream, step, domain, block);
  if constexpr (sizeof(T) == 4) {
    normal_pair_f(u.x, u.y, z[0], z[1]);
    normal_pair_f(u.z, u.w, z[2], z[3]);
  } else {
    normal_pair_d(u.x, u.y, z[0], z[1]);
    normal_pair_d(u.z, u.w, z[2], z[3]);
  }
}

// ---- schedules of a many-config head ----

// How a head's gates change per step (the gate table holds rows of (alpha, beta, mu, eta)).
enum GateMode : std::uint32_t {
  kGateConstant = 0,  // row `first` every step
  kGateCycle = 1,     // row first + (t mod count): a replayed witness's gate cycle
  kGateRandom = 2,    // row first + uniform draw in [0, count) per step
  kGateBox = 3,       // each gate uniform in [row first, row first + 1] per step (count = 2)
};
// How a head's keys are made.
enum KeyMode : std::uint32_t {
  kKeyRandom = 0,  // uniform on the unit sphere of R^DK (normalized Gaussian)
  kKeyPlane = 1,   // in the (e1, e2) plane: k_t = R(floor(t / P) * drift) keys[t mod P]
};

// Row index of the gate table used at step t (modes constant, cycle, random).
MDNSTAB_HD std::uint32_t gate_row(std::uint32_t mode, std::uint32_t first, std::uint32_t count, std::uint64_t seed,
                                  std::uint64_t stream, std::uint64_t step) {
  if (mode == kGateCycle) return first + std::uint32_t(step % count);
  if (mode == kGateRandom) {
    const U4 u = draw(seed, stream, step, kGateDomain, 0);
    return first + std::uint32_t((std::uint64_t(u.x) * count) >> 32);  // floor(u * count), u in [0, 1)
  }
  return first;
}

// Box mode: gate i (alpha, beta, mu, eta) = lo_i + u_i (hi_i - lo_i), u_i in (0, 1).
template <class T>
MDNSTAB_HD void gate_box(const T* lo, const T* hi, std::uint64_t seed, std::uint64_t stream, std::uint64_t step,
                         T* g) {
  const U4 u = draw(seed, stream, step, kGateDomain, 1);
  const std::uint32_t w[4] = {u.x, u.y, u.z, u.w};
  for (int i = 0; i < 4; ++i) {
    const T f = sizeof(T) == 4 ? T(uniform_f(w[i])) : T(uniform_d(w[i]));
    g[i] = lo[i] + f * (hi[i] - lo[i]);
  }
}

// Plane keys: the angle floor(t / P) * drift, reduced mod 2 pi in double (t up to
// 2^40 steps keeps it accurate to ~1e-16 * t * drift). Returns (cos, sin) of the
// rotation applied to keys[t mod P].
MDNSTAB_HD void plane_rotation(std::uint64_t step, std::uint32_t period, double drift, double& c, double& s) {
  const double turns = double(step / period) * drift;
  if (turns == 0.0) {
    c = 1.0;
    s = 0.0;
    return;
  }
#if defined(__CUDA_ARCH__)
  sincos(turns, &s, &c);
#else
  c = std::cos(turns);
  s = std::sin(turns);
#endif
}

}  // namespace mdnstab::keygen
