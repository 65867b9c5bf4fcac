// Gate validation: every out-of-range or non-finite value is refused, named.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "mdnstab/gates.hpp"

namespace mdnstab {
namespace {

TEST(Gates, AcceptsClosedRanges) {
  for (double a : {0.0, 0.5, 1.0})
    for (double e : {0.0, 1.0, 2.0}) EXPECT_TRUE(Gates::from_linear(a, 1.0, a, e).is_ok());
  auto g = Gates::from_linear(0.0, 0.0, 0.0, 0.0);
  ASSERT_TRUE(g.is_ok());
  EXPECT_EQ(g.value.log_alpha, -std::numeric_limits<double>::infinity());
}

TEST(Gates, RefusesOutOfRangeAndNonFinite) {
  const double nan = std::nan(""), inf = std::numeric_limits<double>::infinity();
  struct Case {
    double a, b, m, e;
    const char* name;
  } cases[] = {{1.5, .5, .5, 1, "alpha"}, {.5, -0.1, .5, 1, "beta"}, {.5, .5, 1.01, 1, "mu"},
               {.5, .5, .5, 2.5, "eta"},  {nan, .5, .5, 1, "alpha"}, {.5, .5, .5, inf, "eta"},
               {.5, .5, -inf, 1, "mu"}};
  for (const Case& c : cases) {
    auto g = Gates::from_linear(c.a, c.b, c.m, c.e);
    ASSERT_FALSE(g.is_ok()) << c.name;
    EXPECT_EQ(g.status.code, Code::kGateOutOfRange);
    EXPECT_NE(g.status.message.find(c.name), std::string::npos) << g.status.message;
  }
}

TEST(Gates, LogSpaceKeepsLogsExact) {
  auto g = Gates::from_log(-1e-12, 0.5, -3.0, 1.0);
  ASSERT_TRUE(g.is_ok());
  EXPECT_EQ(g.value.log_alpha, -1e-12);
  EXPECT_EQ(g.value.log_mu, -3.0);
  EXPECT_DOUBLE_EQ(g.value.mu, std::exp(-3.0));
  EXPECT_FALSE(Gates::from_log(0.1, 0.5, -1, 1).is_ok());
  EXPECT_FALSE(Gates::from_log(std::nan(""), 0.5, -1, 1).is_ok());
  EXPECT_TRUE(Gates::from_log(-std::numeric_limits<double>::infinity(), 0.5, -1, 1).is_ok());
}

TEST(Gates, PScale) {
  auto g = Gates::from_linear(0.3, 0.5, 0.5, 1.0, PScale::kOne);
  EXPECT_EQ(g.value.rho_p(), 1.0);
  g = Gates::from_linear(0.3, 0.5, 0.5, 1.0);
  EXPECT_EQ(g.value.rho_p(), 0.3);
  EXPECT_FALSE(parse_p_scale("two").is_ok());
  EXPECT_EQ(parse_p_scale("one").value, PScale::kOne);
}

}  // namespace
}  // namespace mdnstab
