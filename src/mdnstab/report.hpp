// `mdnstab report`: one study spec (study.hpp) to a folder a researcher can
// publish from: index.md and index.html (same content, no network resources),
// figures/ (SVG and PNG by gnuplot, with their scripts), data/ (every number
// behind every figure) and a provenance block. Built in DIR.tmp-XXXXXX and
// renamed into place, so an interrupted run leaves no half-written report.
// Tested in tests/test_report.cpp, tests/cli/test_cli_report.cpp, tests/report/.
#pragma once

#include <string>
#include <vector>

#include "mdnstab/status.hpp"
#include "mdnstab/study.hpp"

namespace mdnstab {

struct ReportOptions {
  std::string out_dir;
  bool quick = false;     // the coarse version (quick_version)
  bool force = false;     // replace an existing report at out_dir
  bool progress = false;  // progress lines on stderr
  std::string command;    // the exact command line, for the provenance block
};

struct ReportSummary {
  std::string out_dir;
  std::vector<std::string> sections;  // headings, in order
  std::vector<std::string> figures;   // names under figures/
  std::vector<std::string> highlights;
  double seconds = 0;
};

// Checks the output folder (exists without force, or is not a report) and
// that gnuplot runs, before any work.
Status check_report_output(const ReportOptions& opt);

Result<ReportSummary> run_report(const Study& study, const ReportOptions& opt);

// After run_report failed because of SIGINT/SIGTERM/SIGHUP: the signal (0 if none).
int report_interrupt_signal();

}  // namespace mdnstab
