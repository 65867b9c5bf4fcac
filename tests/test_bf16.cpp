// bf16 and tf32 rounding (src/mdnstab/bf16.hpp) against an independent
// reference: the two neighbouring representable values found by truncation and
// compared in exact double arithmetic.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include "mdnstab/bf16.hpp"

namespace mdnstab {
namespace {

// The nearest multiple of the spacing of a `bits`-significant-bit format at |x|
// (exponent range of float), in exact double arithmetic: x / spacing is exact,
// nearbyint ties to even, round ties away from zero.
double reference_round(double x, int bits, bool tie_even) {
  if (x == 0) return x;
  const int e = std::max(std::ilogb(std::fabs(x)), -126);
  const double spacing = std::ldexp(1.0, e - (bits - 1));
  const double q = x / spacing;
  return (tie_even ? std::nearbyint(q) : std::round(q)) * spacing;
}

TEST(Bf16, KnownValuesAndTiesToEven) {
  EXPECT_EQ(round_bf16(1.0f), 1.0f);
  EXPECT_EQ(round_bf16(1.0f + 0x1p-8f), 1.0f);                // tie between 1 and 1 + 2^-7: even is 1
  EXPECT_EQ(round_bf16(1.0f + 3 * 0x1p-8f), 1.0f + 0x1p-6f);  // tie: even is 1 + 2^-6
  EXPECT_EQ(round_bf16(1.0f + 0x1p-8f + 0x1p-20f), 1.0f + 0x1p-7f);
  EXPECT_EQ(round_bf16(-1.0f - 0x1p-8f - 0x1p-20f), -1.0f - 0x1p-7f);
  EXPECT_EQ(round_bf16(0.1f), 0.10009765625f);
  EXPECT_TRUE(std::signbit(round_bf16(-0.0f)));
}

TEST(Bf16, SpecialValuesAndOverflow) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(round_bf16(inf), inf);
  EXPECT_EQ(round_bf16(-inf), -inf);
  EXPECT_TRUE(std::isnan(round_bf16(std::numeric_limits<float>::quiet_NaN())));
  // A signalling NaN whose payload sits in the dropped bits stays a NaN.
  EXPECT_TRUE(std::isnan(round_bf16(std::bit_cast<float>(0x7f800001u))));
  const float bf16_max = std::bit_cast<float>(0x7f7f0000u);  // 3.3895e38
  EXPECT_EQ(round_bf16(bf16_max), bf16_max);
  EXPECT_EQ(round_bf16(FLT_MAX), inf);  // above the midpoint to 2^128
  EXPECT_EQ(round_bf16(-FLT_MAX), -inf);
  const float tiny = std::bit_cast<float>(0x00000001u);  // smallest subnormal float
  EXPECT_EQ(round_bf16(tiny), 0.0f);
}

TEST(Bf16, MatchesTheReferenceOnRandomFloats) {
  std::mt19937 rng(7);
  for (int i = 0; i < 200000; ++i) {
    const float x = std::bit_cast<float>(static_cast<uint32_t>(rng()));
    if (!std::isfinite(x) || std::fabs(x) > 3.38e38f) continue;
    ASSERT_EQ(double(round_bf16(x)), reference_round(x, 8, true)) << x;
  }
}

TEST(Bf16, DoubleInputIsRoundedOnce) {
  // float(x) would land on the bf16 midpoint and then round to even (1); x is above it.
  const double x = 1.0 + 0x1p-8 + 0x1p-40;
  EXPECT_EQ(static_cast<float>(x), 1.0f + 0x1p-8f);
  EXPECT_EQ(round_bf16(x), 1.0f + 0x1p-7f);
  EXPECT_EQ(round_bf16(-x), -1.0f - 0x1p-7f);
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> u(-10, 10);
  for (int i = 0; i < 200000; ++i) {
    const double d = u(rng);
    ASSERT_EQ(double(round_bf16(d)), reference_round(d, 8, true)) << d;
  }
}

TEST(Bf16, ArithmeticRoundsEveryResult) {
  const Bf16 one(1.0f), small(0x1p-9f);
  EXPECT_EQ((one + small).value(), 1.0f);  // 1 + 2^-9 is below the midpoint
  const Bf16 a(1.5f), b(1.0f + 0x1p-7f);
  EXPECT_EQ((a * b).value(), round_bf16(1.5f * (1.0f + 0x1p-7f)));
  EXPECT_EQ((a / Bf16(3.0f)).value(), round_bf16(0.5f));
  EXPECT_EQ(exp(Bf16(1.0f)).value(), round_bf16(std::exp(1.0f)));
  EXPECT_EQ(log(Bf16(10.0f)).value(), round_bf16(std::log(10.0f)));
  EXPECT_EQ((-a).value(), -1.5f);
  EXPECT_TRUE(Bf16(2.0f) > Bf16(1.0f));
  // Every constructed value is representable: rounding it again changes nothing.
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-100, 100);
  for (int i = 0; i < 10000; ++i) {
    const Bf16 x(u(rng)), y(u(rng));
    for (Bf16 r : {x + y, x - y, x * y, x / y}) ASSERT_EQ(round_bf16(r.value()), r.value());
  }
}

TEST(Tf32, RoundsToNearestTiesAwayFromZero) {
  EXPECT_EQ(round_tf32(1.0f + 0x1p-11f), 1.0f + 0x1p-10f);  // tie: away from zero
  EXPECT_EQ(round_tf32(-1.0f - 0x1p-11f), -1.0f - 0x1p-10f);
  EXPECT_EQ(round_tf32(1.0f + 0x1p-12f), 1.0f);
  std::mt19937 rng(5);
  for (int i = 0; i < 200000; ++i) {
    const float x = std::bit_cast<float>(static_cast<uint32_t>(rng()));
    if (!std::isfinite(x) || std::fabs(x) > 3e38f) continue;
    ASSERT_EQ(double(round_tf32(x)), reference_round(x, 11, false)) << x;
  }
}

}  // namespace
}  // namespace mdnstab
