// The gate-row CSV reader of src/mdnstab/gate_csv.hpp (tested in tests/test_gate_csv.cpp).
#include "mdnstab/gate_csv.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>

#include <fmt/format.h>

namespace mdnstab {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split(std::string_view line) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    const size_t c = line.find(',', start);
    out.push_back(trim(line.substr(start, c == std::string_view::npos ? std::string_view::npos : c - start)));
    if (c == std::string_view::npos) break;
    start = c + 1;
  }
  return out;
}

bool skip_line(std::string_view s) {
  s = trim(s);
  return s.empty() || s.front() == '#';
}

class Parser {
 public:
  Parser(PScale p, std::string source) : p_(p), source_(std::move(source)) {}

  // Feeds one line; returns a non-ok status at the first problem.
  Status line(std::string_view text) {
    ++line_no_;
    if (skip_line(text)) return Status::ok();
    const auto f = split(text);
    if (!have_header_) return header(f);
    ++row_;
    if (f.size() != ncols_)
      return bad(fmt::format("row {} (line {}) has {} fields, the header has {}", row_, line_no_, f.size(), ncols_));
    double v[4];
    for (int k = 0; k < 4; ++k) {
      const std::string field(f[col_[k]]);
      const char* name = names_[k];
      if (field.empty()) return bad(fmt::format("row {} (line {}), column '{}': empty value", row_, line_no_, name));
      errno = 0;
      char* end = nullptr;
      v[k] = std::strtod(field.c_str(), &end);
      if (end != field.c_str() + field.size())
        return bad(fmt::format("row {} (line {}), column '{}': '{}' is not a number", row_, line_no_, name, field));
      if (Status s = check_gate(name, v[k]); !s.is_ok())
        return bad(fmt::format("row {} (line {}), column '{}': {}", row_, line_no_, name, s.message));
    }
    // v = [alpha or log_alpha, beta, mu or log_mu, eta]
    const double la = log_alpha_ ? v[0] : std::log(v[0]);
    const double lm = log_mu_ ? v[2] : std::log(v[2]);
    auto g = Gates::from_log(la, v[1], lm, v[3], p_);
    if (!g.is_ok()) return bad(fmt::format("row {} (line {}): {}", row_, line_no_, g.status.message));
    if (!log_alpha_) g.value.alpha = v[0];  // keep the value as written
    if (!log_mu_) g.value.mu = v[2];
    rows_.push_back(g.value);
    return Status::ok();
  }

  Result<std::vector<Gates>> finish() {
    if (!have_header_) return bad("no header line (expected columns alpha,beta,mu,eta or log_alpha,beta,log_mu,eta)");
    if (rows_.empty()) return bad("no gate rows: the gate set is empty");
    return std::move(rows_);
  }

 private:
  Status header(const std::vector<std::string_view>& f) {
    have_header_ = true;
    ncols_ = f.size();
    int idx[6] = {-1, -1, -1, -1, -1, -1};  // alpha beta mu eta log_alpha log_mu
    static constexpr const char* kCols[6] = {"alpha", "beta", "mu", "eta", "log_alpha", "log_mu"};
    for (size_t i = 0; i < f.size(); ++i)
      for (int k = 0; k < 6; ++k)
        if (f[i] == kCols[k]) {
          if (idx[k] >= 0) return bad(fmt::format("column '{}' appears twice in the header", kCols[k]));
          idx[k] = int(i);
        }
    log_alpha_ = idx[4] >= 0;
    log_mu_ = idx[5] >= 0;
    if (idx[0] < 0 && idx[4] < 0) return bad("the header has no column 'alpha' (or 'log_alpha')");
    if (idx[1] < 0) return bad("the header has no column 'beta'");
    if (idx[2] < 0 && idx[5] < 0) return bad("the header has no column 'mu' (or 'log_mu')");
    if (idx[3] < 0) return bad("the header has no column 'eta'");
    col_[0] = log_alpha_ ? idx[4] : idx[0];
    col_[1] = idx[1];
    col_[2] = log_mu_ ? idx[5] : idx[2];
    col_[3] = idx[3];
    names_[0] = log_alpha_ ? "log_alpha" : "alpha";
    names_[1] = "beta";
    names_[2] = log_mu_ ? "log_mu" : "mu";
    names_[3] = "eta";
    return Status::ok();
  }

  Status bad(const std::string& what) const {
    return error(Code::kInvalidArgument, fmt::format("{}: {}", source_, what));
  }

  PScale p_;
  std::string source_;
  bool have_header_ = false, log_alpha_ = false, log_mu_ = false;
  size_t ncols_ = 0;
  int col_[4] = {};
  const char* names_[4] = {};
  long line_no_ = 0, row_ = 0;
  std::vector<Gates> rows_;
};

}  // namespace

Result<std::vector<Gates>> parse_gate_csv(const std::string& text, PScale p, const std::string& source) {
  Parser parser(p, source);
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (Status s = parser.line(line); !s.is_ok()) return s;
  return parser.finish();
}

Result<std::vector<Gates>> read_gate_csv(const std::string& path, PScale p) {
  std::ifstream in(path);
  if (!in)
    return error(Code::kIoError, fmt::format("cannot read gate CSV '{}': {}", path, std::strerror(errno)));
  Parser parser(p, path);
  std::string line;
  while (std::getline(in, line))
    if (Status s = parser.line(line); !s.is_ok()) return s;
  if (in.bad()) return error(Code::kIoError, fmt::format("error while reading gate CSV '{}'", path));
  return parser.finish();
}

}  // namespace mdnstab
