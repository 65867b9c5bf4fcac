// The report's document model (src/core/report_impl.hpp): Markdown and HTML
// say the same thing, escape what would be markup, and reference every
// figure's SVG, PNG, script and data files.
#include <gtest/gtest.h>

#include "core/report_impl.hpp"

namespace mdnstab::report_detail {
namespace {

Document sample_doc() {
  Document d;
  d.title = "A <b>title</b> & more";
  d.heading(1, "A <b>title</b> & more");
  d.paragraph("log_mu = -1 and `mdnstab sweep --axis alpha=0:1:3` with *stars* and [brackets]");
  d.list({"first 12.5%", "second"});
  d.table(Table{{"a|b", "c"}, {{"1", "x|y"}, {"2", "<z>"}}});
  d.figure("regime_map", "The regime map.", {"maps_panel1.csv", "maps_boundary_panel1.csv"});
  d.figure("tiers_map", "Tiers.", {"tiers_panel1.csv"});
  d.code("tool: mdnstab <1>\n");
  return d;
}

TEST(ReportDoc, MarkdownEscapesMarkupAndKeepsCode) {
  const std::string md = render_markdown(sample_doc());
  EXPECT_NE(md.find("# A \\<b\\>title\\</b\\> & more\n"), std::string::npos) << md;
  EXPECT_NE(md.find("log\\_mu = -1"), std::string::npos) << md;
  EXPECT_NE(md.find("`mdnstab sweep --axis alpha=0:1:3`"), std::string::npos) << md;  // code span untouched
  EXPECT_NE(md.find("\\*stars\\*"), std::string::npos);
  EXPECT_NE(md.find("| a\\|b | c |"), std::string::npos) << md;
  EXPECT_NE(md.find("![Figure 1](figures/regime_map.svg)"), std::string::npos);
  EXPECT_NE(md.find("![Figure 2](figures/tiers_map.svg)"), std::string::npos);
  EXPECT_NE(md.find("[maps_boundary_panel1.csv](data/maps_boundary_panel1.csv)"), std::string::npos);
  EXPECT_NE(md.find("figures/regime_map.png"), std::string::npos);
  EXPECT_NE(md.find("figures/regime_map.gp"), std::string::npos);
  EXPECT_NE(md.find("```\ntool: mdnstab <1>\n```"), std::string::npos) << md;  // code blocks verbatim
}

TEST(ReportDoc, HtmlIsOneSelfContainedPage) {
  const std::string html = render_html(sample_doc());
  EXPECT_TRUE(html.starts_with("<!DOCTYPE html>"));
  EXPECT_NE(html.find("<meta charset=\"utf-8\">"), std::string::npos);
  EXPECT_NE(html.find("<title>A &lt;b&gt;title&lt;/b&gt; &amp; more</title>"), std::string::npos) << html;
  EXPECT_NE(html.find("<code>mdnstab sweep --axis alpha=0:1:3</code>"), std::string::npos);
  EXPECT_NE(html.find("<img src=\"figures/regime_map.svg\" alt=\"Figure 1\">"), std::string::npos);
  EXPECT_NE(html.find("<td>&lt;z&gt;</td>"), std::string::npos);
  EXPECT_NE(html.find("<pre><code>tool: mdnstab &lt;1&gt;\n</code></pre>"), std::string::npos);
  // Nothing from the network, no scripts.
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
}

TEST(ReportDoc, BothRenderingsCarryTheSameText) {
  const Document d = sample_doc();
  const std::string md = render_markdown(d), html = render_html(d);
  for (const char* s : {"first 12.5%", "second", "The regime map.", "Tiers.", "maps_panel1.csv"}) {
    EXPECT_NE(md.find(s), std::string::npos) << s;
    EXPECT_NE(html.find(s), std::string::npos) << s;
  }
}

TEST(ReportUtil, NumbersAndCsv) {
  EXPECT_EQ(fmt_num(NAN), "nan");
  EXPECT_EQ(fmt_num(INFINITY), "inf");
  EXPECT_EQ(fmt_num(-0.0), "0");
  EXPECT_EQ(fmt_num(0.123456789), "0.123457");
  EXPECT_EQ(fmt_num(0.123456789, 3), "0.123");
  EXPECT_EQ(pct(0.1234), "12.3%");
  CsvWriter w({"a", "b"});
  w.num(1).num(NAN).end().str("x").num(2.5).end();
  EXPECT_EQ(w.text, "a,b\n1,nan\nx,2.5\n");
  EXPECT_EQ(gp_quote("it's"), "'it''s'");
}

TEST(ReportUtil, PanelsLineUp) {
  PanelLayout lay;
  lay.n = 3;
  lay.width = 1110;
  lay.height = 440;
  // Panels of equal width, left to right, inside the canvas.
  double prev_right = 0;
  for (int k = 0; k < 3; ++k) {
    const std::string m = lay.margins(k);
    double l = 0, r = 0, t = 0, b = 0;
    ASSERT_EQ(std::sscanf(m.c_str(), "set lmargin at screen %lf; set rmargin at screen %lf; set tmargin at screen %lf; "
                          "set bmargin at screen %lf", &l, &r, &t, &b), 4) << m;
    EXPECT_GT(l, prev_right);
    EXPECT_LT(r, 1.0);
    EXPECT_NEAR((r - l) * lay.width, double(lay.width - lay.left - lay.cb_room - 2 * lay.gap) / 3, 0.1);
    EXPECT_GT(t, b);
    prev_right = r;
  }
}

}  // namespace
}  // namespace mdnstab::report_detail
