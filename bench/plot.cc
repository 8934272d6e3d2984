#include "bench/plot.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"

extern char** environ;

namespace strata::bench {
namespace {

// A gnuplot single-quoted string: the only escape is '' for a quote, and gnuplot applies neither
// backslash escapes nor backquote command substitution inside it. Control characters (a newline
// would end the command) become spaces.
std::string Quote(const std::string& text) {
  std::string out = "'";
  for (const char c : text) {
    if (c == '\'') {
      out += "''";
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::string Num(double v) { return absl::StrFormat("%.6g", v); }

bool AllFinite(const std::vector<double>& values) {
  for (const double v : values) {
    if (!std::isfinite(v)) return false;
  }
  return true;
}

struct RunResult {
  int exit_code = -1;  // -1 when killed by a signal
  std::string output;  // stdout and stderr together
};

// Runs argv[0] (looked up on PATH) with stdin from /dev/null, collecting its output through a
// pipe; no shell is involved. NotFound when the program is not on PATH.
absl::StatusOr<RunResult> Run(const std::vector<std::string>& args) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return absl::ErrnoToStatus(errno, "pipe2");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    return absl::ErrnoToStatus(rc, absl::StrCat("cannot run ", args[0]));
  }
  RunResult result;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(fds[0], buf, sizeof buf);
    if (n > 0) {
      result.output.append(buf, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  close(fds[0]);
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(wstatus)) result.exit_code = WEXITSTATUS(wstatus);
  return result;
}

absl::Status WriteFile(const std::string& path, const std::string& text) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return absl::ErrnoToStatus(errno, absl::StrCat("cannot write ", path));
  const bool wrote = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (std::fclose(f) == 0 && wrote) return absl::OkStatus();
  const absl::Status status = absl::ErrnoToStatus(errno, absl::StrCat("cannot write ", path));
  unlink(path.c_str());
  return status;
}

}  // namespace

absl::Status PlotSpec::Validate() const {
  if (series.empty()) return absl::InvalidArgumentError("plot has no series");
  if (width_px <= 0 || height_px <= 0) {
    return absl::InvalidArgumentError("plot size must be positive");
  }
  if (kind == PlotKind::kBars && categories.empty()) {
    return absl::InvalidArgumentError("bar plot has no categories");
  }
  if (kind == PlotKind::kBars && log_x) {
    return absl::InvalidArgumentError("log_x applies to line plots only");
  }
  for (const PlotSeries& s : series) {
    const std::string what = absl::StrCat("series '", s.name, "'");
    if (s.y.empty()) return absl::InvalidArgumentError(absl::StrCat(what, " has no points"));
    if (kind == PlotKind::kBars && s.y.size() != categories.size()) {
      return absl::InvalidArgumentError(absl::StrCat(what, " has ", s.y.size(), " values for ",
                                                     categories.size(), " categories"));
    }
    if (kind == PlotKind::kLines && s.x.size() != s.y.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " has ", s.x.size(), " x values and ", s.y.size(), " y values"));
    }
    if (!AllFinite(s.y) || (kind == PlotKind::kLines && !AllFinite(s.x))) {
      return absl::InvalidArgumentError(absl::StrCat(what, " has a NaN or infinite value"));
    }
    for (const double x : s.x) {
      if (log_x && x <= 0) {
        return absl::InvalidArgumentError(absl::StrCat(what, " has x <= 0 on a log axis"));
      }
    }
  }
  bool finite = !y_min.has_value() || std::isfinite(*y_min);
  for (const auto& line : hlines) finite = finite && std::isfinite(line.second);
  if (!finite) return absl::InvalidArgumentError("y_min or a reference line is NaN or infinite");
  return absl::OkStatus();
}

std::string GnuplotScript(const PlotSpec& spec, const std::string& png_path) {
  // noenhanced: names such as "dram_full" would otherwise print "full" as a subscript.
  std::string out = absl::StrCat(
      "# Generated by strata-bench (bench/plot.cc); \"gnuplot FILE\" redraws the plot.\n",
      "set terminal pngcairo noenhanced size ", spec.width_px, ",", spec.height_px, "\n",
      "set output ", Quote(png_path), "\n", "set encoding utf8\n", "set title ", Quote(spec.title),
      "\n", "set xlabel ", Quote(spec.x_label), "\n", "set ylabel ", Quote(spec.y_label), "\n",
      "set key outside right top\n", "set grid ytics\n",
      // Autoscaled ends get a margin so points and reference lines do not sit on the border.
      "set autoscale xfix\n", "set offsets graph 0.03, graph 0.03, graph 0.08, 0\n");
  if (spec.log_x) out += "set logscale x\n";
  if (spec.y_min.has_value()) absl::StrAppend(&out, "set yrange [", Num(*spec.y_min), ":*]\n");

  std::vector<std::string> plots;
  if (spec.kind == PlotKind::kLines) {
    for (size_t i = 0; i < spec.series.size(); ++i) {
      const PlotSeries& s = spec.series[i];
      absl::StrAppend(&out, "$s", i, " << EOD\n");
      for (size_t j = 0; j < s.x.size() && j < s.y.size(); ++j) {
        absl::StrAppend(&out, Num(s.x[j]), " ", Num(s.y[j]), "\n");
      }
      out += "EOD\n";
      plots.push_back(
          absl::StrCat("$s", i, " using 1:2 with linespoints lw 2 title ", Quote(s.name)));
    }
  } else {
    // One row per category, one column per series: gnuplot's clustered histogram layout, which
    // puts cluster k at x = k (hence the tic positions).
    out += "$bars << EOD\n";
    for (size_t k = 0; k < spec.categories.size(); ++k) {
      std::vector<std::string> row;
      for (const PlotSeries& s : spec.series) row.push_back(k < s.y.size() ? Num(s.y[k]) : "NaN");
      absl::StrAppend(&out, absl::StrJoin(row, " "), "\n");
    }
    out += "EOD\n";
    std::vector<std::string> tics;
    for (size_t k = 0; k < spec.categories.size(); ++k) {
      tics.push_back(absl::StrCat(Quote(spec.categories[k]), " ", k));
    }
    absl::StrAppend(&out, "set xtics (", absl::StrJoin(tics, ", "), ")\n",
                    "set style data histograms\n", "set style histogram clustered gap 1\n",
                    "set style fill solid 0.8 border -1\n",
                    "set xrange [-0.5:", spec.categories.size() - 0.5, "]\n");
    for (size_t i = 0; i < spec.series.size(); ++i) {
      plots.push_back(absl::StrCat("$bars using ", i + 1, " title ", Quote(spec.series[i].name)));
    }
  }
  for (const auto& [label, y] : spec.hlines) {
    plots.push_back(absl::StrCat(Num(y), " with lines dt 2 lw 2 title ", Quote(label)));
  }
  absl::StrAppend(&out, "plot ", absl::StrJoin(plots, ", \\\n     "), "\n", "unset output\n");
  return out;
}

absl::Status WritePlot(const PlotSpec& spec, const std::string& png_path) {
  STRATA_RETURN_IF_ERROR(spec.Validate());
  const std::string tmp_png = png_path + ".tmp";
  const std::string script_path = png_path + ".gp.tmp";
  STRATA_RETURN_IF_ERROR(WriteFile(script_path, GnuplotScript(spec, tmp_png)));
  absl::StatusOr<RunResult> run = Run({"gnuplot", script_path});
  unlink(script_path.c_str());
  if (!run.ok()) {
    if (absl::IsNotFound(run.status())) {
      return absl::UnavailableError(
          "gnuplot is not on PATH; install gnuplot-nox (scripts/install-deps.sh)");
    }
    return run.status();
  }
  if (run->exit_code != 0 || access(tmp_png.c_str(), F_OK) != 0) {
    unlink(tmp_png.c_str());
    return absl::InternalError(absl::StrCat("gnuplot failed (exit ", run->exit_code, ") drawing ",
                                            png_path, ": ",
                                            absl::StripAsciiWhitespace(run->output)));
  }
  if (std::rename(tmp_png.c_str(), png_path.c_str()) != 0) {
    const int rename_errno = errno;
    unlink(tmp_png.c_str());
    return absl::ErrnoToStatus(rename_errno, absl::StrCat("cannot rename to ", png_path));
  }
  return absl::OkStatus();
}

bool GnuplotAvailable() {
  const absl::StatusOr<RunResult> run = Run({"gnuplot", "--version"});
  return run.ok() && run->exit_code == 0;
}

}  // namespace strata::bench
