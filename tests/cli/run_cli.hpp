// Runs the built mdnstab binary and captures stdout, stderr and the exit code.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace mdnstab::test {

struct CliResult {
  int code = -1;
  std::string out, err;
};

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// A fresh, empty directory for one test.
inline std::filesystem::path scratch_dir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / ("mdnstab_cli_" + name + "_" + std::to_string(getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

// `args` is appended to the binary's path verbatim (shell syntax).
inline CliResult run_cli(const std::string& args) {
  static const auto dir = scratch_dir("io");
  const auto out = dir / "stdout", err = dir / "stderr";
  const std::string cmd = std::string(MDNSTAB_BIN) + " " + args + " >" + out.string() + " 2>" + err.string();
  const int rc = std::system(cmd.c_str());
  CliResult r;
  r.code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

inline int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

// Entries in a directory (to check that nothing partial was left behind).
inline int count_entries(const std::filesystem::path& d) {
  int n = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(d)) ++n;
  return n;
}

// Bad input: exit code 2, one line on stderr naming `named`, nothing on stdout.
inline void expect_bad(const std::string& args, const std::string& named) {
  auto r = run_cli(args);
  EXPECT_EQ(r.code, 2) << args << "\n" << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << args << "\n" << r.err;
  EXPECT_NE(r.err.find(named), std::string::npos) << args << "\n" << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

}  // namespace mdnstab::test
