// The report's provenance block: tool version and build commit, the source
// tree's commit (and whether it had local changes), the exact command, the
// seeds, the date, CPU, GPU and gnuplot. Tested in tests/cli/test_cli_report.cpp.
#include <sys/utsname.h>

#include <ctime>
#include <fstream>
#include <thread>

#include <fmt/format.h>

#include "report_impl.hpp"

namespace mdnstab::report_detail {

namespace {

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.starts_with("model name")) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) {
        std::string m = line.substr(colon + 1);
        m.erase(0, m.find_first_not_of(' '));
        return m;
      }
    }
  return "unknown";
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

nlohmann::json provenance(const Context& c) {
  nlohmann::json p;
  p["tool"] = fmt::format("mdnstab {}", MDNSTAB_VERSION);
  p["build_commit"] = MDNSTAB_GIT_COMMIT;
  // The commit of the tree the spec lives in (usually this repository), read
  // now: the build commit is fixed at configure time and can be older.
  fs::path spec_dir = fs::path(c.study.path).parent_path();
  if (spec_dir.empty()) spec_dir = ".";
  auto head = capture({"git", "rev-parse", "--short=12", "HEAD"}, spec_dir);
  if (head.is_ok()) {
    auto dirty = capture({"git", "status", "--porcelain", "--untracked-files=no"}, spec_dir);
    p["source_commit"] = head.value + (dirty.is_ok() && !dirty.value.empty() ? " (with local changes)" : "");
  } else {
    p["source_commit"] = "unknown (the spec's folder is not in a git checkout)";
  }
  p["command"] = c.options.command.empty() ? std::string("(called as a library)") : c.options.command;
  p["spec"] = c.study.path;
  p["quick"] = c.options.quick;
  p["seeds"] = c.seeds;
  p["date"] = utc_now();
  p["cpu"] = fmt::format("{} ({} hardware threads)", cpu_model(), std::thread::hardware_concurrency());
  utsname u{};
  if (uname(&u) == 0) p["os"] = fmt::format("{} {} {}", u.sysname, u.release, u.machine);
  auto gpu = capture({"nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"}, ".");
  p["gpu"] = gpu.is_ok() && !gpu.value.empty() ? gpu.value : std::string("none detected (no working nvidia-smi)");
  auto gp = gnuplot_version();
  p["gnuplot"] = gp.is_ok() ? gp.value : std::string("unknown");
  return p;
}

void provenance_section(Context& c, const nlohmann::json& p) {
  c.doc.heading(2, "Provenance", "provenance");
  c.doc.paragraph(
      "How this report was made. To regenerate it, run the command below from the same folder with the same build; "
      "the spec as run is in `data/study.toml` and these fields in `data/provenance.json`.");
  std::string text;
  for (const char* k : {"tool", "build_commit", "source_commit", "command", "spec", "quick", "date", "cpu", "os",
                        "gpu", "gnuplot"}) {
    if (!p.contains(k)) continue;
    const auto& v = p[k];
    text += fmt::format("{:<16}{}\n", std::string(k) + ":", v.is_string() ? v.get<std::string>() : v.dump());
  }
  text += fmt::format("{:<16}{}\n", "seeds:", p["seeds"].dump());
  c.doc.code(text);
}

}  // namespace mdnstab::report_detail
