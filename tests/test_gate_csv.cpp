// The gate-row CSV reader (src/mdnstab/gate_csv.hpp): both column schemas,
// extra columns, comments, and every malformed input named by row and column.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "mdnstab/gate_csv.hpp"

namespace mdnstab {
namespace {

TEST(GateCsv, ReadsLinearAndLogColumns) {
  auto r = parse_gate_csv("alpha,beta,mu,eta\n0.9,0.5,0.8,1.5\n\n# comment\n1,0,0,2\n", PScale::kAlpha);
  ASSERT_TRUE(r.is_ok()) << r.status.message;
  ASSERT_EQ(r.value.size(), 2u);
  EXPECT_EQ(r.value[0].alpha, 0.9);
  EXPECT_EQ(r.value[0].eta, 1.5);
  EXPECT_EQ(r.value[1].mu, 0.0);
  EXPECT_EQ(r.value[1].log_mu, -INFINITY);

  auto l = parse_gate_csv("eta, log_mu ,beta,log_alpha,note\n1, -0.5, 0.25, -0.01, x\n", PScale::kOne);
  ASSERT_TRUE(l.is_ok()) << l.status.message;
  EXPECT_EQ(l.value[0].log_alpha, -0.01);
  EXPECT_EQ(l.value[0].log_mu, -0.5);
  EXPECT_DOUBLE_EQ(l.value[0].alpha, std::exp(-0.01));
  EXPECT_EQ(l.value[0].p_scale, PScale::kOne);
}

void expect_error(const std::string& text, std::initializer_list<const char*> named) {
  auto r = parse_gate_csv(text, PScale::kAlpha, "g.csv");
  ASSERT_FALSE(r.is_ok()) << text;
  for (const char* n : named) EXPECT_NE(r.status.message.find(n), std::string::npos) << r.status.message;
  EXPECT_EQ(r.status.message.find('\n'), std::string::npos);
}

TEST(GateCsv, NamesTheBadRowAndColumn) {
  expect_error("alpha,beta,mu,eta\n0.5,0.5,0.5,1\n0.5,1.5,0.5,1\n", {"row 2", "line 3", "beta"});
  expect_error("alpha,beta,mu,eta\n0.5,x,0.5,1\n", {"row 1", "beta", "'x'"});
  expect_error("alpha,beta,mu,eta\n0.5,0.5,nan,1\n", {"row 1", "mu"});
  expect_error("alpha,beta,mu,eta\n0.5,0.5,0.5,\n", {"row 1", "eta", "empty"});
  expect_error("alpha,beta,mu,eta\n0.5,0.5,0.5\n", {"row 1", "3 fields"});
  expect_error("log_alpha,beta,log_mu,eta\n0.1,0.5,-1,1\n", {"row 1", "log_alpha"});
  expect_error("alpha,beta,eta\n0.5,0.5,1\n", {"mu"});
  expect_error("alpha,alpha,beta,mu,eta\n", {"twice"});
  expect_error("alpha,beta,mu,eta\n", {"empty"});
  expect_error("", {"header"});
  expect_error("# only a comment\n\n", {"header"});
}

TEST(GateCsv, ReadsFilesAndReportsMissingOnes) {
  const auto path = std::filesystem::temp_directory_path() / "mdnstab_gate_csv_test.csv";
  {
    std::ofstream f(path);
    f << "alpha,beta,mu,eta\r\n0.9,0.5,0.8,1.5\r\n";  // CRLF line ends
  }
  auto r = read_gate_csv(path.string(), PScale::kAlpha);
  ASSERT_TRUE(r.is_ok()) << r.status.message;
  EXPECT_EQ(r.value.size(), 1u);
  EXPECT_EQ(r.value[0].eta, 1.5);
  std::filesystem::remove(path);
  auto m = read_gate_csv(path.string(), PScale::kAlpha);
  ASSERT_FALSE(m.is_ok());
  EXPECT_EQ(m.status.code, Code::kIoError);
  EXPECT_NE(m.status.message.find(path.string()), std::string::npos);
}

}  // namespace
}  // namespace mdnstab
