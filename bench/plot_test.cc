#include "bench/plot.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>

namespace strata::bench {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

PlotSpec LinesSpec() {
  PlotSpec spec;
  spec.title = "GET latency";
  spec.x_label = "block bytes";
  spec.y_label = "GB/s";
  spec.series = {{"dram_get", {4096, 65536, 1 << 20}, {1.5, 3.25, 7.125}},
                 {"ssd_get", {4096, 65536, 1 << 20}, {0.5, 1.0, 2.0}}};
  return spec;
}

PlotSpec BarsSpec() {
  PlotSpec spec;
  spec.title = "Time to first token";
  spec.kind = PlotKind::kBars;
  spec.categories = {"1k", "8k", "32k"};
  spec.series = {{"strata", {}, {10, 20, 40}}, {"lmcache", {}, {12, 25, 55}}};
  spec.y_min = 0;
  spec.hlines = {{"recompute", 60}};
  return spec;
}

// A fresh directory under the test's temporary directory, removed with its contents.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "plot_test.XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string File(const std::string& name) const { return (path_ / name).string(); }
  std::vector<std::string> Names() const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(path_)) {
      names.push_back(e.path().filename().string());
    }
    return names;
  }

 private:
  std::filesystem::path path_;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(PlotSpecTest, AcceptsValidLinesAndBars) {
  EXPECT_TRUE(LinesSpec().Validate().ok());
  EXPECT_TRUE(BarsSpec().Validate().ok());
}

TEST(PlotSpecTest, RejectsNoSeries) {
  PlotSpec spec = LinesSpec();
  spec.series.clear();
  EXPECT_TRUE(absl::IsInvalidArgument(spec.Validate()));
}

TEST(PlotSpecTest, RejectsSeriesWithoutPoints) {
  PlotSpec spec = LinesSpec();
  spec.series[1].x.clear();
  spec.series[1].y.clear();
  EXPECT_TRUE(absl::IsInvalidArgument(spec.Validate()));
}

TEST(PlotSpecTest, RejectsMismatchedXAndYSizes) {
  PlotSpec spec = LinesSpec();
  spec.series[1].y.pop_back();
  EXPECT_TRUE(absl::IsInvalidArgument(spec.Validate()));
}

TEST(PlotSpecTest, RejectsBarsWithoutCategories) {
  PlotSpec spec = BarsSpec();
  spec.categories.clear();
  EXPECT_TRUE(absl::IsInvalidArgument(spec.Validate()));
}

TEST(PlotSpecTest, RejectsBarSeriesWhoseSizeDiffersFromCategories) {
  PlotSpec spec = BarsSpec();
  spec.series[0].y.push_back(80);
  EXPECT_TRUE(absl::IsInvalidArgument(spec.Validate()));
}

TEST(PlotSpecTest, RejectsNanAndInfiniteValues) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  PlotSpec y_nan = LinesSpec();
  y_nan.series[0].y[1] = nan;
  PlotSpec x_inf = LinesSpec();
  x_inf.series[1].x[0] = inf;
  PlotSpec bar_inf = BarsSpec();
  bar_inf.series[1].y[2] = -inf;
  PlotSpec hline_nan = BarsSpec();
  hline_nan.hlines[0].second = nan;
  PlotSpec y_min_inf = LinesSpec();
  y_min_inf.y_min = inf;
  for (const PlotSpec* spec : {&y_nan, &x_inf, &bar_inf, &hline_nan, &y_min_inf}) {
    EXPECT_TRUE(absl::IsInvalidArgument(spec->Validate())) << spec->Validate();
  }
}

TEST(PlotSpecTest, RejectsNonPositiveXOnALogAxis) {
  PlotSpec spec = LinesSpec();
  spec.log_x = true;
  EXPECT_TRUE(spec.Validate().ok());
  spec.series[0].x[0] = 0;
  EXPECT_TRUE(absl::IsInvalidArgument(spec.Validate()));
}

TEST(PlotSpecTest, RejectsNonPositiveSize) {
  PlotSpec spec = LinesSpec();
  spec.height_px = 0;
  EXPECT_TRUE(absl::IsInvalidArgument(spec.Validate()));
}

TEST(GnuplotScriptTest, NamesEverySeriesAndWritesTheGivenPath) {
  const std::string script = GnuplotScript(LinesSpec(), "/out/a.png");
  EXPECT_THAT(script, HasSubstr("set terminal pngcairo"));
  EXPECT_THAT(script, HasSubstr("set output '/out/a.png'"));
  EXPECT_THAT(script, HasSubstr("title 'dram_get'"));
  EXPECT_THAT(script, HasSubstr("title 'ssd_get'"));
  EXPECT_THAT(script, HasSubstr("set title 'GET latency'"));
}

TEST(GnuplotScriptTest, InlinesDataRowsWithSixSignificantDigits) {
  PlotSpec spec = LinesSpec();
  spec.series[0].y[0] = 1.0 / 3;
  const std::string script = GnuplotScript(spec, "a.png");
  EXPECT_THAT(script, HasSubstr("$s0 << EOD\n4096 0.333333\n65536 3.25\n1.04858e+06 7.125\nEOD\n"));
  EXPECT_THAT(script, HasSubstr("$s1 << EOD\n4096 0.5\n"));
}

TEST(GnuplotScriptTest, InlinesBarsOneRowPerCategoryAndLabelsTheClusters) {
  const std::string script = GnuplotScript(BarsSpec(), "b.png");
  EXPECT_THAT(script, HasSubstr("$bars << EOD\n10 12\n20 25\n40 55\nEOD\n"));
  EXPECT_THAT(script, HasSubstr("set xtics ('1k' 0, '8k' 1, '32k' 2)"));
  EXPECT_THAT(script, HasSubstr("set style histogram clustered"));
  EXPECT_THAT(script, HasSubstr("60 with lines dt 2 lw 2 title 'recompute'"));
  EXPECT_THAT(script, HasSubstr("set yrange [0:*]"));
}

TEST(GnuplotScriptTest, QuotesTextSoQuotesBackslashesAndBackquotesStayLiteral) {
  PlotSpec spec = LinesSpec();
  spec.title = R"(it's "q" a\b `rm x`)";
  spec.series[0].name = "line\nbreak";
  const std::string script = GnuplotScript(spec, "o'k.png");
  // Single-quoted gnuplot strings: '' is a quote; backslashes and backquotes are not interpreted.
  EXPECT_THAT(script, HasSubstr(R"(set title 'it''s "q" a\b `rm x`')"));
  EXPECT_THAT(script, HasSubstr("title 'line break'"));
  EXPECT_THAT(script, HasSubstr("set output 'o''k.png'"));
}

TEST(GnuplotScriptTest, SetsLogScaleOnlyWhenAsked) {
  PlotSpec spec = LinesSpec();
  EXPECT_THAT(GnuplotScript(spec, "a.png"), Not(HasSubstr("logscale")));
  spec.log_x = true;
  EXPECT_THAT(GnuplotScript(spec, "a.png"), HasSubstr("set logscale x\n"));
}

class WritePlotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!GnuplotAvailable()) GTEST_SKIP() << "gnuplot not on PATH (install gnuplot-nox)";
  }
  TempDir dir_;
};

TEST_F(WritePlotTest, WritesAPngForALinesPlot) {
  PlotSpec spec = LinesSpec();
  spec.log_x = true;
  spec.hlines = {{"limit", 8}};
  const std::string path = dir_.File("lines.png");
  ASSERT_TRUE(WritePlot(spec, path).ok());
  EXPECT_EQ(ReadAll(path).substr(0, 8), "\x89PNG\r\n\x1a\n");
  EXPECT_THAT(dir_.Names(), ::testing::ElementsAre("lines.png"));  // no temporaries left
}

TEST_F(WritePlotTest, WritesAPngForABarsPlot) {
  const std::string path = dir_.File("bars.png");
  ASSERT_TRUE(WritePlot(BarsSpec(), path).ok());
  EXPECT_EQ(ReadAll(path).substr(0, 8), "\x89PNG\r\n\x1a\n");
  EXPECT_THAT(dir_.Names(), ::testing::ElementsAre("bars.png"));
}

TEST_F(WritePlotTest, TextWithBackquotesIsNotRunAsACommand) {
  const std::string marker = dir_.File("ran");
  PlotSpec spec = LinesSpec();
  spec.title = "`touch " + marker + "`";
  spec.series[0].name = "\"`touch " + marker + "`\"";
  ASSERT_TRUE(WritePlot(spec, dir_.File("a.png")).ok());
  EXPECT_FALSE(std::filesystem::exists(marker));
}

TEST_F(WritePlotTest, FailsIntoAMissingDirectoryAndLeavesNoFile) {
  const std::string path = dir_.File("missing/plot.png");
  const absl::Status status = WritePlot(LinesSpec(), path);
  EXPECT_FALSE(status.ok());
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_TRUE(dir_.Names().empty());
}

TEST_F(WritePlotTest, ReportsGnuplotsErrorAsInternalAndLeavesNoImage) {
  const std::string path = dir_.File("a.png");
  // gnuplot cannot open its output when the temporary image path is a directory.
  ASSERT_TRUE(std::filesystem::create_directory(path + ".tmp"));
  const absl::Status status = WritePlot(LinesSpec(), path);
  EXPECT_TRUE(absl::IsInternal(status)) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("a.png.tmp"));  // gnuplot's own message
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_THAT(dir_.Names(), ::testing::ElementsAre("a.png.tmp"));  // the script is removed
}

TEST_F(WritePlotTest, RejectsAnInvalidSpecWithoutWriting) {
  PlotSpec spec = LinesSpec();
  spec.series.clear();
  EXPECT_TRUE(absl::IsInvalidArgument(WritePlot(spec, dir_.File("a.png"))));
  EXPECT_TRUE(dir_.Names().empty());
}

TEST(WritePlotWithoutGnuplotTest, IsUnavailableWithAnInstallHint) {
  const char* old_path = std::getenv("PATH");
  const std::string saved = old_path == nullptr ? "" : old_path;
  TempDir dir;
  setenv("PATH", dir.File("").c_str(), 1);  // an empty directory: no gnuplot there
  const absl::Status status = WritePlot(LinesSpec(), dir.File("a.png"));
  setenv("PATH", saved.c_str(), 1);
  EXPECT_TRUE(absl::IsUnavailable(status)) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("gnuplot-nox"));
  EXPECT_TRUE(dir.Names().empty());
}

}  // namespace
}  // namespace strata::bench
