#include "bench/process_stats.h"

#include <gtest/gtest.h>

namespace strata::bench {
namespace {

TEST(ProcessStatsTest, ParsesReadAndWriteBytesNotCharCounters) {
  const char* text =
      "rchar: 100\nwchar: 200\nsyscr: 3\nsyscw: 4\nread_bytes: 4096\nwrite_bytes: 8192\n"
      "cancelled_write_bytes: 0\n";
  absl::StatusOr<IoCounters> io = ParseProcIo(text);
  ASSERT_TRUE(io.ok()) << io.status();
  EXPECT_EQ(io->read_bytes, 4096u);
  EXPECT_EQ(io->write_bytes, 8192u);
}

TEST(ProcessStatsTest, MissingIoFieldIsAnError) {
  EXPECT_FALSE(ParseProcIo("rchar: 1\nread_bytes: 5\n").ok());
  EXPECT_FALSE(ParseProcIo("read_bytes: x\nwrite_bytes: 1\n").ok());
}

TEST(ProcessStatsTest, ParsesResidentAndPeakInBytes) {
  absl::StatusOr<MemoryCounters> m = ParseProcStatus(
      "Name:\tx\nVmPeak:\t  999 kB\nVmHWM:\t    2048 kB\nVmRSS:\t    1024 kB\n"
      "RssAnon:\t     700 kB\nRssFile:\t 24 kB\nRssShmem:\t     300 kB\n");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->rss_bytes, 1024u << 10);
  EXPECT_EQ(m->peak_rss_bytes, 2048u << 10);
  EXPECT_EQ(m->rss_anon_bytes, 700u << 10);
  EXPECT_EQ(m->rss_shmem_bytes, 300u << 10);
}

TEST(ProcessStatsTest, MissingRssIsAnError) { EXPECT_FALSE(ParseProcStatus("VmHWM: 1 kB\n").ok()); }

TEST(ProcessStatsTest, ReadsThisProcess) {
  absl::StatusOr<MemoryCounters> m = ReadMemoryCounters();
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_GT(m->rss_bytes, 0u);
  EXPECT_GE(m->peak_rss_bytes, m->rss_bytes);
}

TEST(ProcessStatsTest, AmplificationIsDeltaOverPayload) {
  EXPECT_DOUBLE_EQ(Amplification(100, 2200, 2000), 1.05);
  EXPECT_DOUBLE_EQ(Amplification(0, 10, 0), 0);
}

TEST(ProcessStatsTest, NoBlockLayerBytesMeansUnknownNotPerfect) {
  const absl::StatusOr<IoCounters> before = IoCounters{100, 200};
  EXPECT_FALSE(MeasuredAmplification(before, IoCounters{100, 200}, true, 4096).has_value());
  EXPECT_DOUBLE_EQ(*MeasuredAmplification(before, IoCounters{4196, 200}, true, 4096), 1.0);
  EXPECT_DOUBLE_EQ(*MeasuredAmplification(before, IoCounters{100, 8392}, false, 4096), 2.0);
  EXPECT_FALSE(
      MeasuredAmplification(absl::UnavailableError("x"), IoCounters{1, 1}, true, 4096).has_value());
}

}  // namespace
}  // namespace strata::bench
