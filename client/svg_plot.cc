#include "client/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace rnnserve::client {
namespace {

constexpr double kLeft = 70, kRight = 20, kTop = 56, kBottom = 55;

std::string Escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

double TickStep(double lo, double hi, int target) {
  const double raw = (hi - lo) / std::max(target, 1);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0}) {
    if (m * magnitude >= raw) return m * magnitude;
  }
  return 10 * magnitude;
}

// Enough decimals to tell ticks `step` apart, and no "-0".
std::string TickLabel(double value, double step) {
  if (std::abs(value) < step * 1e-9) value = 0;
  const int decimals =
      std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
  return absl::StrFormat("%.*f", decimals, value);
}

struct Range {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  void Add(double v) {
    if (!std::isfinite(v)) return;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  // An empty or one-point range would divide by zero when scaled.
  void Widen() {
    if (lo > hi) lo = 0, hi = 1;
    if (lo == hi) {
      const double pad = lo == 0 ? 1 : std::abs(lo) * 0.5;
      lo -= pad;
      hi += pad;
    }
  }
};

}  // namespace

std::vector<double> NiceTicks(double lo, double hi, int target) {
  std::vector<double> ticks;
  if (!(hi > lo) || !std::isfinite(lo) || !std::isfinite(hi)) return ticks;
  const double step = TickStep(lo, hi, target);
  for (double k = std::ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9;
       k += 1) {
    ticks.push_back(k * step);
  }
  return ticks;
}

std::string RenderSvgPlot(const PlotOptions& options,
                          const std::vector<PlotSeries>& series) {
  Range xr, yr;
  for (const PlotSeries& s : series) {
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      xr.Add(s.x[i]);
      yr.Add(s.y[i]);
    }
  }
  xr.Widen();
  yr.Widen();
  // A little air above and below the curves.
  const double y_pad = (yr.hi - yr.lo) * 0.05;
  yr.lo -= y_pad;
  yr.hi += y_pad;

  const double w = options.width, h = options.height;
  const double plot_w = w - kLeft - kRight, plot_h = h - kTop - kBottom;
  auto px = [&](double x) {
    return kLeft + (x - xr.lo) / (xr.hi - xr.lo) * plot_w;
  };
  auto py = [&](double y) {
    return kTop + (yr.hi - y) / (yr.hi - yr.lo) * plot_h;
  };

  std::string svg = absl::StrFormat(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" "
      "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
      options.width, options.height, options.width, options.height);
  absl::StrAppendFormat(&svg,
                        "<text x=\"%g\" y=\"22\" text-anchor=\"middle\" "
                        "font-size=\"16\">%s</text>\n",
                        w / 2, Escape(options.title));

  // Grid lines and tick labels.
  for (double t : NiceTicks(xr.lo, xr.hi, 8)) {
    const double x = px(t);
    absl::StrAppendFormat(
        &svg,
        "<line x1=\"%.2f\" y1=\"%g\" x2=\"%.2f\" y2=\"%g\" stroke=\"#ddd\"/>\n"
        "<text x=\"%.2f\" y=\"%g\" text-anchor=\"middle\">%s</text>\n",
        x, kTop, x, kTop + plot_h, x, kTop + plot_h + 18,
        TickLabel(t, TickStep(xr.lo, xr.hi, 8)));
  }
  for (double t : NiceTicks(yr.lo, yr.hi, 6)) {
    const double y = py(t);
    absl::StrAppendFormat(
        &svg,
        "<line x1=\"%g\" y1=\"%.2f\" x2=\"%g\" y2=\"%.2f\" stroke=\"#ddd\"/>\n"
        "<text x=\"%g\" y=\"%.2f\" text-anchor=\"end\">%s</text>\n",
        kLeft, y, kLeft + plot_w, y, kLeft - 6, y + 4,
        TickLabel(t, TickStep(yr.lo, yr.hi, 6)));
  }
  // The axes: a frame around the plotting area.
  absl::StrAppendFormat(&svg,
                        "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" "
                        "fill=\"none\" stroke=\"black\"/>\n",
                        kLeft, kTop, plot_w, plot_h);
  absl::StrAppendFormat(&svg,
                        "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">%s"
                        "</text>\n",
                        kLeft + plot_w / 2, h - 12, Escape(options.x_label));
  absl::StrAppendFormat(&svg,
                        "<text x=\"16\" y=\"%g\" text-anchor=\"middle\" "
                        "transform=\"rotate(-90 16 %g)\">%s</text>\n",
                        kTop + plot_h / 2, kTop + plot_h / 2,
                        Escape(options.y_label));

  for (const PlotSeries& s : series) {
    std::string points;
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      absl::StrAppendFormat(&points, "%s%.2f,%.2f", points.empty() ? "" : " ",
                            px(s.x[i]), py(s.y[i]));
    }
    absl::StrAppendFormat(&svg,
                          "<polyline fill=\"none\" stroke=\"%s\" "
                          "stroke-width=\"2\"%s points=\"%s\"/>\n",
                          Escape(s.color),
                          s.dashed ? " stroke-dasharray=\"6 4\"" : "", points);
  }

  // Legend: one row in the top margin, above the plotting area, where it
  // cannot hide a curve.
  double lx = kLeft;
  const double ly = kTop - 14;
  for (const PlotSeries& s : series) {
    absl::StrAppendFormat(
        &svg,
        "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"%s\" "
        "stroke-width=\"2\"%s/>\n<text x=\"%g\" y=\"%g\">%s</text>\n",
        lx, ly, lx + 30, ly, Escape(s.color),
        s.dashed ? " stroke-dasharray=\"6 4\"" : "", lx + 36, ly + 4,
        Escape(s.name));
    // About 7 pixels per character at font-size 12.
    lx += 60 + 7.0 * s.name.size();
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace rnnserve::client
