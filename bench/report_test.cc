#include "bench/report.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace strata::bench {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

Row GrpcGet(double gbps, double tcp) {
  Row r;
  r.path = "grpc";
  r.op = "get_chain";
  r.block_bytes = 2 << 20;
  r.gbps = gbps;
  r.baseline = "tcp_loopback_1stream";
  r.baseline_gbps = tcp;
  r.target = Target{0.8, std::nullopt, std::nullopt};
  return r;
}

TEST(ReportTest, RatioIsThroughputOverBaseline) {
  EXPECT_DOUBLE_EQ(*RatioOf(GrpcGet(2.0, 2.5)), 0.8);
}

TEST(ReportTest, RatioIsAbsentWithoutABaseline) {
  Row r;
  r.path = "limit";
  r.gbps = 3;
  EXPECT_FALSE(RatioOf(r).has_value());
  r.baseline = "memcpy";  // named but not measured
  EXPECT_FALSE(RatioOf(r).has_value());
}

TEST(ReportTest, TargetIsMetAtTheBoundAndMissedBelowIt) {
  EXPECT_TRUE(*TargetMet(GrpcGet(2.0, 2.5)));
  EXPECT_FALSE(*TargetMet(GrpcGet(1.9, 2.5)));
  Row untargeted = GrpcGet(1, 1);
  untargeted.target.reset();
  EXPECT_FALSE(TargetMet(untargeted).has_value());
}

TEST(ReportTest, AmplificationTargetIsMissedWhenNotMeasured) {
  Row r = GrpcGet(1, 1);
  r.target = Target{std::nullopt, std::nullopt, 1.1};
  EXPECT_FALSE(*TargetMet(r));
  r.amplification = 1.05;
  EXPECT_TRUE(*TargetMet(r));
  r.amplification = 1.2;
  EXPECT_FALSE(*TargetMet(r));
}

TEST(ReportTest, ResidentRowUsesItsOwnRatioAndAnUpperBound) {
  Row r;
  r.path = "node";
  r.op = "rss_1gib_dram_full";
  r.rss_bytes = 1200ull << 20;
  r.baseline = "dram_tier_bytes";
  r.ratio_override = 1200.0 / 1024.0;
  r.target = Target{std::nullopt, 1.3, std::nullopt};
  EXPECT_TRUE(*TargetMet(r));
  r.ratio_override = 1.31;
  EXPECT_FALSE(*TargetMet(r));
}

TEST(ReportTest, TableAlignsColumnsAndMarksMisses) {
  std::vector<Row> rows = {GrpcGet(2.0, 2.5), GrpcGet(1.0, 2.5)};
  rows[1].path = "grpc-long-path-name";
  const std::string table = FormatTable(rows);
  EXPECT_THAT(table, HasSubstr("0.80x"));
  EXPECT_THAT(table, HasSubstr("0.40x"));
  EXPECT_THAT(table, HasSubstr("NO"));
  EXPECT_THAT(table, HasSubstr("2.00 MiB"));
  // Every line's second column starts at the same offset.
  std::vector<size_t> starts;
  size_t pos = 0;
  while (pos < table.size()) {
    const size_t end = table.find('\n', pos);
    const std::string line = table.substr(pos, end - pos);
    starts.push_back(
        line.find("  ", 0) == std::string::npos ? 0 : line.find_first_not_of(' ', line.find("  ")));
    pos = end + 1;
  }
  ASSERT_EQ(starts.size(), 3u);
  EXPECT_EQ(starts[0], starts[1]);
  EXPECT_EQ(starts[1], starts[2]);
  EXPECT_THAT(table, Not(HasSubstr(" \n")));
}

TEST(ReportTest, JsonLinesCarryEveryField) {
  Row r = GrpcGet(2.0, 2.5);
  r.amplification = 1.0025;
  r.note = "say \"hi\"";
  const std::string json = FormatJsonLines({r});
  EXPECT_EQ(json,
            "{\"path\":\"grpc\",\"op\":\"get_chain\",\"block_bytes\":2097152,\"gbps\":2.0000,"
            "\"baseline\":\"tcp_loopback_1stream\",\"baseline_gbps\":2.5000,\"ratio\":0.8000,"
            "\"amplification\":1.0025,\"target\":\"ratio>=0.80\",\"target_met\":true,"
            "\"note\":\"say \\\"hi\\\"\"}\n");
}

TEST(ReportTest, JsonUsesNullForAbsentBaseline) {
  Row r;
  r.path = "limit";
  r.op = "memcpy";
  r.gbps = 10;
  EXPECT_THAT(FormatJsonLines({r}),
              HasSubstr("\"baseline\":null,\"baseline_gbps\":null,\"ratio\":null}"));
}

TEST(ReportTest, JsonResidentRowHasNullRatesAndItsBytes) {
  Row r;
  r.path = "node";
  r.op = "rss_1gib_dram_full";
  r.rss_bytes = 1234;
  r.baseline = "dram_tier_bytes";
  r.ratio_override = 1.25;
  const std::string json = FormatJsonLines({r});
  EXPECT_THAT(json, HasSubstr("\"gbps\":null"));
  EXPECT_THAT(json, HasSubstr("\"baseline_gbps\":null,\"ratio\":1.2500"));
  EXPECT_THAT(json, HasSubstr("\"rss_bytes\":1234"));
}

}  // namespace
}  // namespace strata::bench
