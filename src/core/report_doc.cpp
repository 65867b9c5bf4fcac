// The report's document model and its two renderings (Markdown, HTML): one
// list of blocks, so index.md and index.html say the same thing. The HTML is
// one page with its style inline and no scripts or network resources; images
// are the report's own files. Tested in tests/test_report.cpp.
#include <fmt/format.h>

#include "report_impl.hpp"

namespace mdnstab::report_detail {

void Document::heading(int level, std::string text, std::string anchor) {
  Block b;
  b.kind = Block::Kind::kHeading;
  b.level = level;
  b.text = std::move(text);
  b.anchor = std::move(anchor);
  blocks.push_back(std::move(b));
}

void Document::paragraph(std::string text) {
  Block b;
  b.kind = Block::Kind::kParagraph;
  b.text = std::move(text);
  blocks.push_back(std::move(b));
}

void Document::list(std::vector<std::string> items) {
  Block b;
  b.kind = Block::Kind::kList;
  b.items = std::move(items);
  blocks.push_back(std::move(b));
}

void Document::table(Table t) {
  Block b;
  b.kind = Block::Kind::kTable;
  b.table = std::move(t);
  blocks.push_back(std::move(b));
}

void Document::code(std::string text) {
  Block b;
  b.kind = Block::Kind::kCode;
  b.text = std::move(text);
  blocks.push_back(std::move(b));
}

void Document::figure(std::string name, std::string caption, std::vector<std::string> data) {
  Block b;
  b.kind = Block::Kind::kFigure;
  b.figure = std::move(name);
  b.text = std::move(caption);
  b.data = std::move(data);
  blocks.push_back(std::move(b));
}

namespace {

// Splits text into (literal, code) runs at backticks.
template <class Lit, class Code>
void inline_runs(const std::string& s, Lit lit, Code code) {
  size_t i = 0;
  while (i < s.size()) {
    const size_t a = s.find('`', i);
    if (a == std::string::npos) {
      lit(s.substr(i));
      return;
    }
    const size_t b = s.find('`', a + 1);
    if (b == std::string::npos) {
      lit(s.substr(i));
      return;
    }
    lit(s.substr(i, a - i));
    code(s.substr(a + 1, b - a - 1));
    i = b + 1;
  }
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    switch (ch) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += ch;
    }
  }
  return out;
}

std::string html_inline(const std::string& s) {
  std::string out;
  inline_runs(s, [&](const std::string& t) { out += html_escape(t); },
              [&](const std::string& t) { out += "<code>" + html_escape(t) + "</code>"; });
  return out;
}

// Markdown: escape the characters that would start markup in running text.
std::string md_escape(const std::string& s, bool in_table) {
  std::string out;
  for (char ch : s) {
    if (ch == '*' || ch == '_' || ch == '[' || ch == ']' || ch == '<' || ch == '>' || ch == '\\' ||
        (in_table && ch == '|'))
      out += '\\';
    out += ch;
  }
  return out;
}

std::string md_inline(const std::string& s, bool in_table = false) {
  std::string out;
  inline_runs(s, [&](const std::string& t) { out += md_escape(t, in_table); },
              [&](const std::string& t) { out += "`" + t + "`"; });
  return out;
}

// Figures are numbered in order of appearance.
int figure_number(const Document& d, const Block& b) {
  int n = 0;
  for (const Block& x : d.blocks) {
    if (x.kind == Block::Kind::kFigure) ++n;
    if (&x == &b) return n;
  }
  return n;
}

constexpr const char* kStyle = R"(
body { font-family: "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; color: #111; background: #fff;
       max-width: 980px; margin: 2em auto; padding: 0 1em; line-height: 1.45; }
h1 { font-size: 1.7em; border-bottom: 2px solid #333; padding-bottom: .2em; }
h2 { font-size: 1.35em; border-bottom: 1px solid #999; margin-top: 1.8em; }
h3 { font-size: 1.1em; margin-top: 1.4em; }
figure { margin: 1.2em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #ccc; }
figcaption { font-size: .92em; color: #333; margin-top: .3em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .9em; }
th, td { border: 1px solid #aaa; padding: .25em .55em; text-align: left; vertical-align: top; }
th { background: #eee; }
code { font-family: "DejaVu Sans Mono", monospace; font-size: .92em; background: #f3f3f3; padding: 0 .2em; }
pre { background: #f3f3f3; padding: .7em; overflow-x: auto; font-size: .85em; }
pre code { background: none; padding: 0; }
)";

}  // namespace

std::string render_markdown(const Document& d) {
  std::string out;
  for (const Block& b : d.blocks) {
    switch (b.kind) {
      case Block::Kind::kHeading:
        out += std::string(size_t(b.level), '#') + " " + md_inline(b.text) + "\n\n";
        break;
      case Block::Kind::kParagraph:
        out += md_inline(b.text) + "\n\n";
        break;
      case Block::Kind::kList:
        for (const std::string& it : b.items) out += "- " + md_inline(it) + "\n";
        out += "\n";
        break;
      case Block::Kind::kFigure: {
        const int n = figure_number(d, b);
        out += fmt::format("![Figure {}](figures/{}.svg)\n\n", n, b.figure);
        std::string data;
        for (const std::string& f : b.data) data += (data.empty() ? "" : ", ") + fmt::format("[{}](data/{})", f, f);
        out += fmt::format("*Figure {}.* {} (PNG: [{}.png](figures/{}.png); gnuplot script: [{}.gp](figures/{}.gp); "
                           "data: {})\n\n",
                           n, md_inline(b.text), b.figure, b.figure, b.figure, b.figure, data);
        break;
      }
      case Block::Kind::kTable: {
        const Table& t = b.table;
        std::string sep;
        out += "|";
        for (const std::string& h : t.header) {
          // Appended piecewise: " " + string trips GCC 12's -Wrestrict false positive.
          out += ' ';
          out += md_inline(h, true);
          out += " |";
          sep += "---|";
        }
        out += "\n|" + sep + "\n";
        for (const auto& row : t.rows) {
          out += "|";
          for (const std::string& cell : row) {
            out += ' ';
            out += md_inline(cell, true);
            out += " |";
          }
          out += "\n";
        }
        out += "\n";
        break;
      }
      case Block::Kind::kCode:
        out += "```\n" + b.text + (b.text.ends_with('\n') ? "" : "\n") + "```\n\n";
        break;
    }
  }
  return out;
}

std::string render_html(const Document& d) {
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  out += "<title>" + html_escape(d.title) + "</title>\n<style>" + kStyle + "</style>\n</head>\n<body>\n<main>\n";
  for (const Block& b : d.blocks) {
    switch (b.kind) {
      case Block::Kind::kHeading: {
        const std::string id = b.anchor.empty() ? "" : " id=\"" + html_escape(b.anchor) + "\"";
        out += fmt::format("<h{}{}>{}</h{}>\n", b.level, id, html_inline(b.text), b.level);
        break;
      }
      case Block::Kind::kParagraph:
        out += "<p>" + html_inline(b.text) + "</p>\n";
        break;
      case Block::Kind::kList:
        out += "<ul>\n";
        for (const std::string& it : b.items) out += "<li>" + html_inline(it) + "</li>\n";
        out += "</ul>\n";
        break;
      case Block::Kind::kFigure: {
        const int n = figure_number(d, b);
        std::string data;
        for (const std::string& f : b.data)
          data += (data.empty() ? "" : ", ") +
                  fmt::format("<a href=\"data/{}\">{}</a>", html_escape(f), html_escape(f));
        out += fmt::format(
            "<figure id=\"fig-{0}\">\n<img src=\"figures/{0}.svg\" alt=\"Figure {1}\">\n"
            "<figcaption><b>Figure {1}.</b> {2} (PNG: <a href=\"figures/{0}.png\">{0}.png</a>; gnuplot script: "
            "<a href=\"figures/{0}.gp\">{0}.gp</a>; data: {3})</figcaption>\n</figure>\n",
            html_escape(b.figure), n, html_inline(b.text), data);
        break;
      }
      case Block::Kind::kTable: {
        out += "<table>\n<thead><tr>";
        for (const std::string& h : b.table.header) out += "<th>" + html_inline(h) + "</th>";
        out += "</tr></thead>\n<tbody>\n";
        for (const auto& row : b.table.rows) {
          out += "<tr>";
          for (const std::string& cell : row) out += "<td>" + html_inline(cell) + "</td>";
          out += "</tr>\n";
        }
        out += "</tbody>\n</table>\n";
        break;
      }
      case Block::Kind::kCode:
        out += "<pre><code>" + html_escape(b.text) + "</code></pre>\n";
        break;
    }
  }
  out += "</main>\n</body>\n</html>\n";
  return out;
}

}  // namespace mdnstab::report_detail
