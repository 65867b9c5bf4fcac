// Internals of `mdnstab report` shared by src/core/report*.cpp: the document
// model rendered to Markdown and HTML, the figure renderer (gnuplot), data
// writers, the interrupt flag and the sections. Tested through
// tests/test_report.cpp and tests/cli/test_cli_report.cpp.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mdnstab/certify.hpp"
#include "mdnstab/report.hpp"
#include "mdnstab/sampling.hpp"
#include "mdnstab/study.hpp"

namespace mdnstab::report_detail {

namespace fs = std::filesystem;

// ---- the document: one list of blocks, rendered twice ----

struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
};

struct Block {
  enum class Kind { kHeading, kParagraph, kList, kFigure, kTable, kCode };
  Kind kind = Kind::kParagraph;
  int level = 2;                     // kHeading
  std::string text;                  // heading, paragraph, code, figure caption
  std::vector<std::string> items;    // kList
  std::string figure;                // kFigure: the name under figures/ (no extension)
  std::vector<std::string> data;     // kFigure: data files under data/ behind it
  Table table;                       // kTable
  std::string anchor;                // kHeading: id for links
};

struct Document {
  std::string title;
  std::vector<Block> blocks;

  void heading(int level, std::string text, std::string anchor = {});
  void paragraph(std::string text);
  void list(std::vector<std::string> items);
  void table(Table t);
  void code(std::string text);
  void figure(std::string name, std::string caption, std::vector<std::string> data);
};

// Inline markup understood in text: `code` spans only; everything else is
// literal (escaped for HTML, and for Markdown where it would be read as markup).
std::string render_markdown(const Document& d);
std::string render_html(const Document& d);

// ---- interrupt and progress ----

// Set by the SIGINT/SIGTERM/SIGHUP handler that run_report installs.
extern std::atomic<int> g_interrupt_signal;
inline bool interrupted() { return g_interrupt_signal.load() != 0; }
Status interrupted_status();

// ---- the build context ----

struct Context {
  Study study;                 // after quick_version() when quick
  ReportOptions options;
  fs::path dir;                // the temporary folder being filled
  Document doc;
  nlohmann::json findings = nlohmann::json::object();  // every number the text states
  std::vector<std::string> highlights;                  // the "findings at a glance" list
  std::vector<std::string> sections;                    // level-2 headings, once assembled
  nlohmann::json seeds = nlohmann::json::object();
  int step = 0, steps = 0;     // progress: section k of n

  fs::path data(const std::string& name) const { return dir / "data" / name; }
  void progress(const std::string& what);
  // Records a number the text states; returns the text as stated.
  std::string state(const std::string& key, double value, const std::string& text);
};

// ---- files ----

// Writes a whole file (the folder is temporary as a whole, so no per-file rename).
Status write_text(const fs::path& p, const std::string& text);
// A CSV with a header row; numbers with 6 significant digits, NaN as "nan".
struct CsvWriter {
  std::string text;
  explicit CsvWriter(const std::vector<std::string>& header);
  CsvWriter& num(double v, int digits = 6);
  CsvWriter& exact(double v);  // shortest text that reads back as v (round trip)
  CsvWriter& str(const std::string& s);
  CsvWriter& end();

 private:
  bool first_ = true;
};
std::string fmt_num(double v, int digits = 6);  // "nan", "inf", "-inf" or %.{digits}g
std::string pct(double fraction);                // "12.3%" (one decimal)

// ---- figures ----

struct Plot {
  std::string name;      // figures/NAME.svg and .png
  int width = 900, height = 600;
  std::string body;      // gnuplot commands drawing the figure (data under ../data/)
};
// Writes figures/NAME.gp and runs gnuplot on it; fails naming the figure if
// gnuplot does, or if a file it should make is missing or empty.
Status render(Context& c, const Plot& p);
// Shared gnuplot settings: the greyscale-safe palettes and label style.
std::string gp_viridis();  // monotone-luminance palette (dark to light)
std::string gp_categories(const std::vector<std::pair<std::string, std::string>>& labels_and_colours);
std::string gp_quote(const std::string& s);  // a gnuplot string literal
// Verdict codes in the data files (0 certified, 1 undecided, 2 refuted), ordered
// light to dark in the figures; then "failed" (no verdict) for the bar charts.
inline int verdict_code(Verdict v) { return v == Verdict::kCertified ? 0 : (v == Verdict::kUndecided ? 1 : 2); }
inline constexpr const char* kVerdictNames[4] = {"certified", "undecided", "refuted", "failed"};
inline constexpr const char* kVerdictColours[4] = {"#e8f1d4", "#e0a526", "#5a1a32", "#9a9a9a"};
// Certified points: a darker green than the certified area, to show on white.
inline constexpr const char* kCertifiedPointColour = "#8fb35a";
// Panels in a row with fixed margins (so that they line up), leaving room at
// the right for one colour box; gp_colorbox places it beside the last panel.
struct PanelLayout {
  int n = 1, width = 900, height = 600;
  bool colorbox = true;
  bool colorbox_each = false;  // one colour box beside every panel (each its own range)
  int left = 80, right = 30, gap = 60, top = 48, bottom = 62, cb_room = 150;
  std::string margins(int k) const;         // set lmargin/rmargin/tmargin/bmargin at screen
  std::string colorbox_at(int k = -1) const;  // set colorbox user origin ... size ... (beside panel k)
};
// "α = 0.9, β = 0.1, μ = 1 − 2.3e-05, η = 2": alpha and mu within 1e-5 of 1
// are written as 1 minus their exact distance (from the logs).
std::string gates_text(const Gates& g);
// The (mu, eta) panel label, e.g. "μ = 0.99, η = 1.9".
std::string panel_label(const StudyPanel& p);

Result<std::string> gnuplot_version();
// Runs argv in `dir` and returns its output (stdout and stderr), trailing
// newlines removed; an error when it cannot start or exits non-zero.
Result<std::string> capture(const std::vector<std::string>& argv, const fs::path& dir);  // "gnuplot 5.4 patchlevel 4" or why none

// ---- sections (report_sections*.cpp) ----

// Results one section hands to later ones.
struct Counterexample {
  bool found = false;
  std::string source;     // "reachable 400M sample 123", "gate set design-example"
  std::string config;     // model config it was sampled for (empty for a gate set)
  Gates gates;
  Certificate cert;
  std::optional<SampledGate> sample;
};

struct Shared {
  Counterexample worst;   // the worst refuted gate found (largest lower bound)
};

Status section_gate_sets(Context& c, Shared& s);
Status section_maps(Context& c, Shared& s);
Status section_reachable(Context& c, Shared& s);
Status section_tiers(Context& c, Shared& s);
Status section_counterexample(Context& c, Shared& s);
Status section_resonance(Context& c, Shared& s);
Status section_gpu_validation(Context& c, Shared& s);
Status section_gate_dumps(Context& c, Shared& s);       // report_models.cpp
Status section_checkpoints(Context& c, Shared& s);      // report_models.cpp
Status section_chunk_safety(Context& c, Shared& s);     // report_chunk.cpp

// Provenance (report_provenance.cpp): the block at the end of every report.
nlohmann::json provenance(const Context& c);
void provenance_section(Context& c, const nlohmann::json& prov);

}  // namespace mdnstab::report_detail
