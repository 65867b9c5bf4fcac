// The counter generator shared by the GPU and CPU many-config paths
// (kernels/keygen.hpp): Philox4x32-10 against Random123's published known answers,
// uniforms exact and inside (0, 1), Box-Muller moments and the float/double pair
// agreeing, gate draws and plane rotations against their definitions.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "keygen.hpp"

namespace mdnstab {
namespace {

using keygen::U4;

void expect_u4(U4 got, U4 want) {
  EXPECT_EQ(got.x, want.x);
  EXPECT_EQ(got.y, want.y);
  EXPECT_EQ(got.z, want.z);
  EXPECT_EQ(got.w, want.w);
}

TEST(Keygen, PhiloxKnownAnswers) {
  // Random123 kat_vectors for philox4x32_10 (counter words, then key words).
  expect_u4(keygen::philox4x32_10({0, 0, 0, 0}, 0, 0), {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u});
  expect_u4(keygen::philox4x32_10({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, 0xffffffffu, 0xffffffffu),
            {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu});
  expect_u4(keygen::philox4x32_10({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, 0xa4093822u, 0x299f31d0u),
            {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u});
}

TEST(Keygen, DrawSeparatesEveryCounterField) {
  // Changing any of seed, stream, step, domain or block changes the words.
  std::set<std::uint32_t> seen;
  const U4 base = keygen::draw(7, 11, 13, 2, 5);
  for (const U4 u : {base, keygen::draw(8, 11, 13, 2, 5), keygen::draw(7, 12, 13, 2, 5), keygen::draw(7, 11, 14, 2, 5),
                     keygen::draw(7, 11, 13, 3, 5), keygen::draw(7, 11, 13, 2, 6),
                     keygen::draw(7, 11 + (std::uint64_t{1} << 32), 13, 2, 5),
                     keygen::draw(7, 11, 13 + (std::uint64_t{1} << 32), 2, 5),
                     keygen::draw(7 + (std::uint64_t{1} << 32), 11, 13, 2, 5)})
    seen.insert(u.x);
  EXPECT_EQ(seen.size(), 9u);
}

TEST(Keygen, UniformsAreExactAndOpen) {
  for (std::uint32_t x : {0u, 1u, 511u, 512u, 0x7fffffffu, 0xfffffe00u, 0xffffffffu}) {
    const float f = keygen::uniform_f(x);
    const double d = keygen::uniform_d(x);
    EXPECT_EQ(double(f), d) << x;  // exactly representable in float
    EXPECT_GT(d, 0.0);
    EXPECT_LT(d, 1.0);
  }
  EXPECT_EQ(keygen::uniform_d(0), std::ldexp(1.0, -24));
  // The largest normal magnitude comes from the smallest uniform.
  double z0, z1;
  keygen::normal_pair_d(0, 0, z0, z1);
  EXPECT_NEAR(std::hypot(z0, z1), keygen::kMaxNormal, 1e-12);
  EXPECT_LE(std::hypot(z0, z1), keygen::kMaxNormal);
}

TEST(Keygen, NormalMoments) {
  // 2^18 normals: mean within 5 standard errors (5 / 512), variance within
  // 5 * sqrt(2 / n) of 1, fourth moment within 5 * sqrt(96 / n) of 3.
  const int n = 1 << 18;
  double s1 = 0, s2 = 0, s4 = 0, maxabs = 0;
  for (int i = 0; i < n / 4; ++i) {
    double z[4];
    keygen::normal4(42, 3, std::uint64_t(i), keygen::kKeyDomain, 0, z);
    for (double x : z) {
      s1 += x, s2 += x * x, s4 += x * x * x * x;
      maxabs = std::max(maxabs, std::abs(x));
    }
  }
  EXPECT_NEAR(s1 / n, 0.0, 5.0 / std::sqrt(double(n)));
  EXPECT_NEAR(s2 / n, 1.0, 5.0 * std::sqrt(2.0 / n));
  EXPECT_NEAR(s4 / n, 3.0, 5.0 * std::sqrt(96.0 / n));
  EXPECT_LE(maxabs, keygen::kMaxNormal);
}

TEST(Keygen, FloatAndDoublePairsAgree) {
  // Same uniforms; float log/sqrt/sin/cos are within a few ulps: relative 1e-6.
  for (int i = 0; i < 10000; ++i) {
    float f[4];
    double d[4];
    keygen::normal4(1, 2, std::uint64_t(i), keygen::kInputKDomain, 3, f);
    keygen::normal4(1, 2, std::uint64_t(i), keygen::kInputKDomain, 3, d);
    for (int j = 0; j < 4; ++j) EXPECT_NEAR(f[j], d[j], 1e-6 * (1 + std::abs(d[j])));
  }
}

TEST(Keygen, GateRowsFollowTheirMode) {
  EXPECT_EQ(keygen::gate_row(keygen::kGateConstant, 5, 1, 0, 0, 123), 5u);
  for (std::uint64_t t = 0; t < 20; ++t) EXPECT_EQ(keygen::gate_row(keygen::kGateCycle, 3, 7, 0, 0, t), 3 + t % 7);
  // Random rows: inside [first, first + count), each of 4 rows about 1/4 of the time
  // (2^14 draws: counts within 5 standard deviations, sqrt(n p (1 - p)) = 55).
  int count[4] = {0, 0, 0, 0};
  for (std::uint64_t t = 0; t < (1u << 14); ++t) {
    const std::uint32_t r = keygen::gate_row(keygen::kGateRandom, 10, 4, 9, 1, t);
    ASSERT_GE(r, 10u);
    ASSERT_LT(r, 14u);
    ++count[r - 10];
  }
  for (int c : count) EXPECT_NEAR(c, 4096, 5 * 55.5);
  const double lo[4] = {0.1, 0.2, 0.3, 0.4}, hi[4] = {0.1, 0.5, 0.9, 1.9};
  for (std::uint64_t t = 0; t < 100; ++t) {
    double g[4];
    keygen::gate_box(lo, hi, 3, 4, t, g);
    for (int i = 0; i < 4; ++i) {
      EXPECT_GE(g[i], lo[i]);
      EXPECT_LE(g[i], hi[i]);
    }
    EXPECT_EQ(g[0], 0.1);
  }
}

TEST(Keygen, PlaneRotationTurnsOncePerPeriod) {
  double c, s;
  keygen::plane_rotation(0, 3, 0.7, c, s);
  EXPECT_EQ(c, 1.0);
  EXPECT_EQ(s, 0.0);
  keygen::plane_rotation(8, 3, 0.7, c, s);  // floor(8 / 3) = 2 turns
  EXPECT_NEAR(c, std::cos(1.4), 1e-15);
  EXPECT_NEAR(s, std::sin(1.4), 1e-15);
  keygen::plane_rotation(1000000, 1, 0.1, c, s);
  EXPECT_NEAR(c, std::cos(100000.0), 1e-10);
}

}  // namespace
}  // namespace mdnstab
