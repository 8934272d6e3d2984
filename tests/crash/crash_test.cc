// The crash test as a ctest entry (label "process"): runs strata-crash-test for a bounded number
// of kill-restart-verify cycles against this build's strata-cachenode and checks its JSON report.
// The full run (>= 200 cycles) is documented at the top of crash_driver.cc.
#include <fstream>
#include <regex>
#include <sstream>

#include "gtest/gtest.h"
#include "tests/node_process.h"

namespace strata::tests {
namespace {

// The number under "key" in the driver's flat JSON report; -1 when absent.
int64_t Field(const std::string& json, const std::string& key) {
  std::smatch m;
  if (!std::regex_search(json, m, std::regex("\"" + key + "\":(-?[0-9]+)"))) return -1;
  return std::stoll(m[1].str());
}

TEST(CrashTest, SyncedBlocksSurviveSigkillAndNoReadReturnsWrongBytes) {
  TempDir dir;
  constexpr int kCycles = 16;
  // Smaller than the full run's working set so that 16 cycles stay well under two minutes on two
  // busy cores; every kind of kill and operation still happens, puts of known blocks included.
  absl::StatusOr<ProcessResult> run = RunProcess(
      {STRATA_CRASH_TEST_BIN, "--cycles", std::to_string(kCycles), "--seed", "7", "--threads", "3",
       "--max-block-bytes", "128KiB", "--max-live-bytes", "32MiB", "--dram-bytes", "8MiB",
       "--max-load", "1s", "--sample", "100", "--dir", dir.File("data"),
       "--report", dir.File("report.json")},
      absl::Minutes(4));
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->exit_code, 0) << run->stdout_text << run->stderr_text;
  std::ifstream in(dir.File("report.json"));
  std::stringstream text;
  text << in.rdbuf();
  const std::string json = text.str();
  ASSERT_FALSE(json.empty()) << run->stdout_text << run->stderr_text;
  EXPECT_EQ(Field(json, "cycles"), kCycles) << json;
  EXPECT_GE(Field(json, "kills"), kCycles) << json;
  EXPECT_EQ(Field(json, "wrong_bytes"), 0) << json;
  EXPECT_EQ(Field(json, "corrupt_transfers"), 0) << json;
  EXPECT_EQ(Field(json, "durable_lost"), 0) << json;
  EXPECT_EQ(Field(json, "restart_failures"), 0) << json;
  // The run did something worth checking: syncs were acknowledged and their blocks read back.
  EXPECT_GT(Field(json, "syncs_acked"), 0) << json;
  EXPECT_GT(Field(json, "durable_checked"), 0) << json;
  EXPECT_GT(Field(json, "bytes_verified"), 0) << json;
}

}  // namespace
}  // namespace strata::tests
