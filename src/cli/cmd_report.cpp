// `mdnstab report STUDY.toml --out DIR [--quick] [--force]`: a thin layer over
// load_study and run_report (src/mdnstab/report.hpp). Tested in
// tests/cli/test_cli_report.cpp.
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <memory>

#include <fmt/format.h>

#include "app.hpp"
#include "mdnstab/report.hpp"

namespace mdnstab::cli {

namespace {

struct ReportCliOptions {
  std::string spec, out;
  bool quick = false, force = false;
};

// The exact command line, shell-quoted, read back from the kernel (the
// subcommand does not see argv).
std::string command_line() {
  std::ifstream f("/proc/self/cmdline", std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::string out;
  size_t start = 0;
  while (start < all.size()) {
    size_t end = all.find('\0', start);
    if (end == std::string::npos) end = all.size();
    const std::string arg = all.substr(start, end - start);
    const bool plain = !arg.empty() && arg.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                             "0123456789-_./=:,+@%") == std::string::npos;
    std::string quoted = "'";
    for (char ch : arg) quoted += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
    quoted += "'";
    out += (out.empty() ? "" : " ") + (plain ? arg : quoted);
    start = end + 1;
  }
  return out;
}

int run_report_cmd(const ReportCliOptions& o, const App& app) {
  // The spec is checked in full before anything else happens.
  const Study study = value_or_throw(load_study(o.spec));
  ReportOptions opt;
  opt.out_dir = o.out;
  opt.quick = o.quick;
  opt.force = o.force;
  opt.progress = isatty(STDERR_FILENO);
  opt.command = command_line();
  ok_or_throw(check_report_output(opt));
  auto r = run_report(study, opt);
  if (!r.is_ok()) {
    if (const int sig = report_interrupt_signal(); sig != 0) {
      fmt::print(stderr, "mdnstab: {}\n", r.status.message);
      // Die by the same signal, as an uninterrupted program would have.
      std::signal(sig, SIG_DFL);
      std::raise(sig);
    }
    ok_or_throw(r.status);
  }
  const ReportSummary& s = r.value;
  if (app.format() == Format::kJson) {
    print_json({{"out", s.out_dir},
                {"index_md", s.out_dir + "/index.md"},
                {"index_html", s.out_dir + "/index.html"},
                {"quick", o.quick},
                {"sections", s.sections},
                {"figures", s.figures},
                {"highlights", s.highlights},
                {"seconds", s.seconds}});
    return 0;
  }
  fmt::print("report: {}/index.html and index.md ({} sections, {} figures) in {:.1f} s{}\n", s.out_dir,
             s.sections.size(), s.figures.size(), s.seconds, o.quick ? " (quick)" : "");
  for (const std::string& h : s.highlights) fmt::print("  - {}\n", h);
  return 0;
}

}  // namespace

void setup_report(App& app) {
  auto o = std::make_shared<ReportCliOptions>();
  CLI::App* sub = app.add_subcommand(
      "report", "run a study spec (TOML) and write a report folder: index.md, index.html, figures/, data/");
  sub->add_option("study", o->spec, "the study spec, e.g. analysis/mdn-paper.toml")->required();
  sub->add_option("--out", o->out, "the report folder to create")->required();
  sub->add_flag("--quick", o->quick, "a coarse version in seconds (small grids and sample counts)");
  sub->add_flag("--force", o->force, "replace an existing report folder");
  app.add_command(sub, [o, &app] { return run_report_cmd(*o, app); });
}

}  // namespace mdnstab::cli
