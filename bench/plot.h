// PNG plots for bench/RESULTS.md, drawn by gnuplot (Debian package gnuplot-nox).
//
// A PlotSpec is plain data: line series over numeric x, or clustered bars over named categories,
// with optional labelled horizontal reference lines (a baseline the bars are judged against).
// GnuplotScript() renders a spec into one self-contained gnuplot script (the data inline), so the
// script alone reproduces the plot; it is pure. WritePlot() runs gnuplot on that script and writes
// the PNG atomically. All functions are thread-safe; concurrent WritePlot() calls need distinct
// paths.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace strata::bench {

struct PlotSeries {
  std::string name;       // legend entry
  std::vector<double> x;  // kLines: one x per point; kBars: ignored
  std::vector<double> y;  // kLines: one y per x; kBars: one y per category
};

enum class PlotKind {
  kLines,  // lines with points over numeric x
  kBars,   // clustered bars: one cluster per category, one bar per series
};

struct PlotSpec {
  std::string title, x_label, y_label;
  PlotKind kind = PlotKind::kLines;
  bool log_x = false;                   // kLines only; every x must then be > 0
  std::vector<std::string> categories;  // kBars: the label under each cluster, in order
  std::vector<PlotSeries> series;
  std::optional<double> y_min;  // lower end of the y axis (e.g. 0); autoscaled when absent
  std::vector<std::pair<std::string, double>> hlines;  // labelled horizontal lines at y
  int width_px = 800, height_px = 480;

  // InvalidArgument when there are no series, a series has no points, x and y sizes differ
  // (kLines), bars have no categories or a series' y count differs from the category count, a
  // value is NaN or infinite, log_x has x <= 0 or is asked of bars, or the size is not positive.
  absl::Status Validate() const;
};

// The gnuplot script that draws `spec` (which should be valid) into `png_path` with the pngcairo
// terminal, its data inline in `$name << EOD` blocks. Text is emitted as single-quoted gnuplot
// strings, so quotes, backslashes and backquotes in titles reach the image literally (gnuplot runs
// backquoted text inside double-quoted strings as a shell command); control characters become
// spaces. Numbers are printed %.6g.
std::string GnuplotScript(const PlotSpec& spec, const std::string& png_path);

// Validates `spec`, then runs gnuplot on its script (written to `png_path`.gp.tmp, passed as an
// argument; no shell) and renames the image from `png_path`.tmp to `png_path`, so a failed run
// leaves no partial file. Errors: the Validate() error; Unavailable (with an install hint) when
// gnuplot is not on PATH; the errno status when the temporary files cannot be written (e.g.
// NotFound for a missing directory); Internal with gnuplot's stderr when gnuplot fails.
absl::Status WritePlot(const PlotSpec& spec, const std::string& png_path);

// True when `gnuplot --version` runs and succeeds (gnuplot is on PATH and starts).
bool GnuplotAvailable();

}  // namespace strata::bench
