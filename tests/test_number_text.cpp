// write_shortest() against its reference, fmt::format("{}"): every class of double
// (random bit patterns, decimal-looking values, the edges of the fixed range,
// integers, subnormals, signed zeros, inf, NaN) must give the same text.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>

#include <fmt/format.h>

#include "mdnstab/number_text.hpp"

namespace mdnstab {
namespace {

std::string ours(double v) {
  char buf[kShortestRoom];
  return std::string(buf, write_shortest(buf, v));
}

// Returns the number of mismatches; the first few are reported.
int check(double v, int& shown) {
  const std::string want = fmt::format("{}", v), got = ours(v);
  EXPECT_LE(got.size(), size_t(kShortestMax));
  if (want == got) return 0;
  if (shown++ < 10) ADD_FAILURE() << "bits " << std::hex << std::bit_cast<std::uint64_t>(v) << ": fmt '" << want << "', ours '" << got << "'";
  return 1;
}

TEST(NumberText, SpecialValues) {
  int shown = 0, bad = 0;
  const double inf = std::numeric_limits<double>::infinity();
  for (double v : {0.0, -0.0, inf, -inf, std::numeric_limits<double>::quiet_NaN(), 1.0, -1.0, 0.5, 0.1, 0.3,
                   1.0 / 3, 2.0 / 3, 123.0, 1e15, 1e16, 1e17, 9999999999999998.0, 999999999999999.9, 1e-4, 1e-5,
                   0.00012345, 0.000012345, 1.5e300, 1e100, 1e-100, 5e-324, -5e-324, 2.2250738585072014e-308,
                   std::numeric_limits<double>::max(), std::numeric_limits<double>::min(),
                   std::numeric_limits<double>::epsilon(), 6.578813478960586, 0.9, 1.5})
    bad += check(v, shown);
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(ours(-std::numeric_limits<double>::quiet_NaN()), fmt::format("{}", -std::numeric_limits<double>::quiet_NaN()));
}

TEST(NumberText, PowersOfTenAndTheirNeighbours) {
  int shown = 0, bad = 0;
  for (int e = -325; e <= 308; ++e) {
    const double x = std::pow(10.0, e);
    for (double v : {x, std::nextafter(x, 0.0), std::nextafter(x, std::numeric_limits<double>::infinity()), 2 * x,
                     5 * x, 9.5 * x, 1.25 * x})
      if (std::isfinite(v)) bad += check(v, shown) + check(-v, shown);
  }
  EXPECT_EQ(bad, 0);
}

TEST(NumberText, RandomDoubles) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u01(0, 1);
  std::uniform_int_distribution<int> digits(1, 17), exps(-30, 30);
  int shown = 0, bad = 0;
  for (int i = 0; i < 300000; ++i) {
    // Any bit pattern (NaN payloads included) ...
    bad += check(std::bit_cast<double>(rng()), shown);
    // ... values of every scale that gates and metrics take ...
    bad += check(u01(rng) * std::pow(10.0, exps(rng)), shown);
    // ... and short decimals, whose shortest text has few digits.
    const double k = std::floor(u01(rng) * std::pow(10.0, digits(rng)));
    bad += check(k * std::pow(10.0, exps(rng)), shown);
    bad += check(double(std::int64_t(rng() >> digits(rng))), shown);
  }
  EXPECT_EQ(bad, 0);
}

}  // namespace
}  // namespace mdnstab
