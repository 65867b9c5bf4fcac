// Report plumbing: data writers, number formats, gnuplot runs (with the child
// killed on interrupt), palettes that survive greyscale printing, progress.
// Tested through tests/test_report.cpp and tests/cli/test_cli_report.cpp.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "report_impl.hpp"

extern char** environ;

namespace mdnstab::report_detail {

std::atomic<int> g_interrupt_signal{0};
// The gnuplot child, killed by the signal handler (report.cpp) on interrupt.
std::atomic<pid_t> g_child{0};

Status interrupted_status() {
  return error(Code::kIoError, fmt::format("interrupted by signal {} ({}); no report written",
                                           g_interrupt_signal.load(), strsignal(g_interrupt_signal.load())));
}

void Context::progress(const std::string& what) {
  ++step;
  if (options.progress) fmt::print(stderr, "report: [{}/{}] {}\n", step, steps, what);
}

std::string Context::state(const std::string& key, double value, const std::string& text) {
  findings[key] = {{"value", std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr)},
                   {"text", text}};
  return text;
}

Status write_text(const fs::path& p, const std::string& text) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  if (!f) return error(Code::kIoError, fmt::format("cannot write '{}': {}", p.string(), std::strerror(errno)));
  f.write(text.data(), std::streamsize(text.size()));
  f.close();
  if (!f) return error(Code::kIoError, fmt::format("writing '{}' failed", p.string()));
  return Status::ok();
}

std::string fmt_num(double v, int digits) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (v == 0) return "0";  // no "-0"
  return fmt::format("{:.{}g}", v, digits);
}

std::string pct(double fraction) { return fmt::format("{:.1f}%", 100.0 * fraction); }

CsvWriter::CsvWriter(const std::vector<std::string>& header) {
  for (size_t i = 0; i < header.size(); ++i) text += (i ? "," : "") + header[i];
  text += '\n';
}

CsvWriter& CsvWriter::num(double v, int digits) {
  if (!first_) text += ',';
  first_ = false;
  text += fmt_num(v, digits);
  return *this;
}

CsvWriter& CsvWriter::exact(double v) {
  if (!first_) text += ',';
  first_ = false;
  text += std::isfinite(v) ? fmt::format("{}", v) : fmt_num(v);
  return *this;
}

CsvWriter& CsvWriter::str(const std::string& s) {
  if (!first_) text += ',';
  first_ = false;
  text += s;
  return *this;
}

CsvWriter& CsvWriter::end() {
  text += '\n';
  first_ = true;
  return *this;
}

std::string gp_quote(const std::string& s) {
  std::string out = "'";
  for (char ch : s) out += ch == '\'' ? std::string("''") : std::string(1, ch);
  return out + "'";
}

std::string gp_viridis() {
  // Viridis sampled at nine points: luminance rises monotonically from dark
  // violet to light yellow, so the scale reads the same in greyscale.
  return "set palette defined (0 '#440154', 1 '#472c7a', 2 '#3b518b', 3 '#2c718e', 4 '#21908d', "
         "5 '#27ad81', 6 '#5cc863', 7 '#aadc32', 8 '#fde725')\n";
}

std::string gp_categories(const std::vector<std::pair<std::string, std::string>>& cats) {
  // Step palette: category k occupies [k, k+1) of the colour range and is
  // plotted at k + 0.5. The colours are chosen with distinct luminance.
  std::string pal = "set palette defined (";
  std::string tics = "set cbtics (";
  for (size_t k = 0; k < cats.size(); ++k) {
    pal += fmt::format("{}{} '{}', {} '{}'", k ? ", " : "", k, cats[k].second, k + 1, cats[k].second);
    tics += fmt::format("{}{} {}", k ? ", " : "", gp_quote(cats[k].first), double(k) + 0.5);
  }
  return pal + ")\n" + tics + ") scale 0\n" + fmt::format("set cbrange [0:{}]\n", cats.size());
}

namespace {
// Panel k's left edge and width in pixels.
std::pair<double, double> panel_span(const PanelLayout& p, int k) {
  if (p.colorbox_each) {
    const double w = double(p.width - p.left - p.n * p.cb_room - (p.n - 1) * p.gap) / p.n;
    return {p.left + k * (w + p.cb_room + p.gap), w};
  }
  const int room = p.colorbox ? p.cb_room : p.right;
  const double w = double(p.width - p.left - room - (p.n - 1) * p.gap) / p.n;
  return {p.left + k * (w + p.gap), w};
}
}  // namespace

std::string PanelLayout::margins(int k) const {
  const auto [l, w] = panel_span(*this, k);
  return fmt::format("set lmargin at screen {:.5f}; set rmargin at screen {:.5f}; set tmargin at screen {:.5f}; "
                     "set bmargin at screen {:.5f}\n",
                     l / width, (l + w) / width, 1.0 - double(top) / height, double(bottom) / height);
}

std::string PanelLayout::colorbox_at(int k) const {
  double x = double(width - cb_room + 18);
  if (colorbox_each && k >= 0) {
    const auto [l, w] = panel_span(*this, k);
    x = l + w + 14;
  }
  return fmt::format("set colorbox user origin screen {:.5f}, screen {:.5f} size screen {:.5f}, screen {:.5f}\n",
                     x / width, double(bottom) / height, 18.0 / width, double(height - top - bottom) / height);
}

std::string gates_text(const Gates& g) {
  auto near_one = [](double v, double log_v) {
    return v > 1 - 1e-5 ? fmt::format("1 − {}", fmt_num(-std::expm1(log_v), 3)) : fmt_num(v, 6);
  };
  return fmt::format("α = {}, β = {}, μ = {}, η = {}", near_one(g.alpha, g.log_alpha), fmt_num(g.beta, 6),
                     near_one(g.mu, g.log_mu), fmt_num(g.eta, 6));
}

std::string panel_label(const StudyPanel& p) { return fmt::format("μ = {}, η = {}", fmt_num(p.mu, 4), fmt_num(p.eta, 4)); }

namespace {

// Runs argv with cwd `dir`, stdout and stderr to `log`; returns the exit status.
Result<int> run_child(const std::vector<std::string>& argv, const fs::path& dir, const fs::path& log) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  // posix_spawn_file_actions_addchdir_np: glibc >= 2.29 (Debian 12 has 2.36).
  posix_spawn_file_actions_addchdir_np(&fa, dir.c_str());
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return error(Code::kUnavailable, fmt::format("cannot run {}: {}", argv[0], std::strerror(rc)));
  g_child.store(pid);
  if (interrupted()) kill(pid, SIGTERM);  // the signal came between spawn and store
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      g_child.store(0);
      return error(Code::kIoError, fmt::format("waiting for {} failed: {}", argv[0], std::strerror(errno)));
    }
  }
  g_child.store(0);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

std::string first_lines(const std::string& s, int n) {
  std::string out;
  std::istringstream in(s);
  std::string line;
  while (n-- > 0 && std::getline(in, line)) {
    if (line.find_first_not_of(" \t^") == std::string::npos) {
      ++n;
      continue;
    }
    out += (out.empty() ? "" : " | ") + line;
  }
  return out;
}

}  // namespace

Result<std::string> capture(const std::vector<std::string>& argv, const fs::path& dir) {
  char tmpl[] = "/tmp/mdnstab-capture-XXXXXX";
  const int fd = mkstemp(tmpl);
  if (fd < 0) return error(Code::kIoError, fmt::format("cannot create a temporary file: {}", std::strerror(errno)));
  close(fd);
  auto rc = run_child(argv, dir, tmpl);
  std::string out = slurp(tmpl);
  unlink(tmpl);
  if (!rc.is_ok()) return rc.status;
  if (rc.value != 0) return error(Code::kUnavailable, fmt::format("{} exited with {}", argv[0], rc.value));
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

Result<std::string> gnuplot_version() {
  auto out = capture({"gnuplot", "--version"}, fs::temp_directory_path());
  if (!out.is_ok())
    return error(Code::kUnavailable,
                 "gnuplot is needed for the report's figures and was not found on PATH "
                 "(install Debian's gnuplot-nox, e.g. with scripts/setup.sh)");
  return out.value.substr(0, out.value.find('\n'));
}

Status render(Context& c, const Plot& p) {
  if (interrupted()) return interrupted_status();
  const fs::path figs = c.dir / "figures";
  const std::string script = fmt::format(
      "# {0}: generated by mdnstab report; run `gnuplot {0}.gp` in this folder to redraw\n"
      "# {0}.svg and {0}.png from the data files in ../data/.\n"
      "set encoding utf8\n"
      "set datafile separator comma\n"
      "do for [out = 1:2] {{\n"
      "if (out == 1) {{\n"
      "  set terminal svg size {1},{2} fixed noenhanced font 'DejaVu Sans,13' background '#ffffff'\n"
      "  set output '{0}.svg'\n"
      "}} else {{\n"
      "  set terminal pngcairo size {1},{2} noenhanced font 'DejaVu Sans,12' background '#ffffff'\n"
      "  set output '{0}.png'\n"
      "}}\n"
      "reset\n"
      "set datafile separator comma\n"
      "{3}\n"
      "unset output\n"
      "}}\n",
      p.name, p.width, p.height, p.body);
  if (Status s = write_text(figs / (p.name + ".gp"), script); !s.is_ok()) return s;
  const fs::path log = c.dir / (".gnuplot-" + p.name + ".log");
  auto rc = run_child({"gnuplot", p.name + ".gp"}, figs, log);
  const std::string out = slurp(log);
  std::error_code ec;
  fs::remove(log, ec);
  if (interrupted()) return interrupted_status();
  if (!rc.is_ok()) return rc.status;
  if (rc.value != 0)
    return error(Code::kIoError, fmt::format("gnuplot failed on figure '{}' (exit {}): {}", p.name, rc.value,
                                             first_lines(out, 3)));
  for (const char* ext : {".svg", ".png"}) {
    const fs::path f = figs / (p.name + ext);
    if (!fs::exists(f, ec) || fs::file_size(f, ec) == 0)
      return error(Code::kIoError, fmt::format("gnuplot made no {} for figure '{}': {}", ext, p.name,
                                               first_lines(out, 3)));
  }
  // Grid maps are embedded in the SVG as small bitmaps, one pixel per grid
  // point; viewers smooth them across the cells (and across category borders)
  // unless told not to.
  std::string svg = slurp(figs / (p.name + ".svg"));
  size_t pos = 0;
  bool changed = false;
  while ((pos = svg.find("<image ", pos)) != std::string::npos) {
    svg.insert(pos + 7, "style='image-rendering:pixelated' ");
    pos += 7;
    changed = true;
  }
  if (changed) return write_text(figs / (p.name + ".svg"), svg);
  return Status::ok();
}

}  // namespace mdnstab::report_detail
