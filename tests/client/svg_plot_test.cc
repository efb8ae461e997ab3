#include "client/svg_plot.h"

#include <cmath>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace rnnserve::client {
namespace {

int Count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos;
       at = text.find(what, at + 1)) {
    ++n;
  }
  return n;
}

TEST(NiceTicksTest, RoundStepsCoveringTheRange) {
  EXPECT_EQ(NiceTicks(0, 10, 5), (std::vector<double>{0, 2, 4, 6, 8, 10}));
  EXPECT_EQ(NiceTicks(-1.05, 1.05, 6),
            (std::vector<double>{-1, -0.5, 0, 0.5, 1}));
  const std::vector<double> ticks = NiceTicks(0, 62.8, 8);
  ASSERT_FALSE(ticks.empty());
  EXPECT_DOUBLE_EQ(ticks[1] - ticks[0], 10);
  EXPECT_TRUE(NiceTicks(1, 1, 5).empty());
}

TEST(SvgPlotTest, DrawsEverySeriesWithAxesAndLegend) {
  PlotSeries a{"predicted", "blue", false, {}, {}};
  PlotSeries b{"true <cos>", "red", true, {}, {}};
  for (int i = 0; i < 50; ++i) {
    a.x.push_back(i * 0.1);
    a.y.push_back(std::sin(i * 0.1));
    b.x.push_back(i * 0.1);
    b.y.push_back(std::cos(i * 0.1));
  }
  a.y[3] = NAN;  // Skipped, not drawn as garbage.
  const std::string svg =
      RenderSvgPlot({.title = "t & t", .x_label = "t", .y_label = "y"}, {a, b});
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_EQ(Count(svg, "<polyline"), 2);
  EXPECT_EQ(Count(svg, " points=\""), 2);
  EXPECT_NE(svg.find("t &amp; t"), std::string::npos);
  EXPECT_NE(svg.find("true &lt;cos&gt;"), std::string::npos);
  EXPECT_NE(svg.find("stroke-dasharray"), std::string::npos);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  // Tick labels on both axes.
  EXPECT_NE(svg.find(">0.5</text>"), std::string::npos);
  EXPECT_NE(svg.find(">-0.5</text>"), std::string::npos);
  EXPECT_NE(svg.find(">4</text>"), std::string::npos);
}

TEST(SvgPlotTest, SurvivesDegenerateInput) {
  PlotSeries flat{"flat", "black", false, {1, 1}, {2, 2}};
  const std::string svg = RenderSvgPlot({}, {flat, PlotSeries{}});
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);
}

}  // namespace
}  // namespace rnnserve::client
