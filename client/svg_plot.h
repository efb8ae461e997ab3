// A line plot written as a standalone SVG file: axes with tick labels, grid,
// one polyline per series and a legend. No plotting library; the output is
// plain SVG 1.1 that any browser shows.
#ifndef RNNSERVE_CLIENT_SVG_PLOT_H_
#define RNNSERVE_CLIENT_SVG_PLOT_H_

#include <string>
#include <vector>

namespace rnnserve::client {

struct PlotSeries {
  std::string name;             // Shown in the legend.
  std::string color = "black";  // Any SVG colour.
  bool dashed = false;
  std::vector<double> x;  // Same length as y.
  std::vector<double> y;
};

struct PlotOptions {
  std::string title;
  std::string x_label;
  std::string y_label;
  int width = 900;  // Pixels.
  int height = 480;
};

// The SVG document. Series with no points are listed in the legend only;
// non-finite points are skipped.
std::string RenderSvgPlot(const PlotOptions& options,
                          const std::vector<PlotSeries>& series);

// Round tick positions covering [lo, hi]: multiples of 1, 2 or 5 times a
// power of ten, about `target` of them. Exposed for tests.
std::vector<double> NiceTicks(double lo, double hi, int target);

}  // namespace rnnserve::client

#endif  // RNNSERVE_CLIENT_SVG_PLOT_H_
