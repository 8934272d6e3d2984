#include "common/command_line.h"

#include "absl/flags/flag.h"
#include "gtest/gtest.h"

ABSL_FLAG(std::string, test_data_dir, "", "a directory");
ABSL_FLAG(uint32_t, test_count, 1, "a count");
ABSL_FLAG(bool, test_switch, false, "a switch");
ABSL_FLAG(std::vector<std::string>, test_sources, {}, "a repeatable list");

namespace strata::common {
namespace {

CommandLineSpec Spec() {
  return {"prog",
          "prog: a test program",
          {"test_data_dir", "test_count", "test_switch", "test_sources"},
          {"test_sources"}};
}

std::vector<std::string> Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "prog");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  return ParseCommandLineOrExit(Spec(), static_cast<int>(argv.size()), argv.data());
}

TEST(CommandLineTest, AcceptsDashedNamesBothValueFormsAndBooleans) {
  auto rest = Parse({"--test-data-dir", "/tmp/x", "--test_count=7", "--test-switch", "pos"});
  EXPECT_EQ(absl::GetFlag(FLAGS_test_data_dir), "/tmp/x");
  EXPECT_EQ(absl::GetFlag(FLAGS_test_count), 7u);
  EXPECT_TRUE(absl::GetFlag(FLAGS_test_switch));
  EXPECT_EQ(rest, std::vector<std::string>{"pos"});
  Parse({"--notest-switch"});
  EXPECT_FALSE(absl::GetFlag(FLAGS_test_switch));
}

TEST(CommandLineTest, RepeatableFlagAccumulatesEveryOccurrence) {
  Parse({"--test-sources", "a", "--test-sources=b,c", "--test-data-dir", "/x", "--test-sources",
         "d"});
  EXPECT_EQ(absl::GetFlag(FLAGS_test_sources), (std::vector<std::string>{"a", "b", "c", "d"}));
  Parse({"--test-sources", "e"});  // a new command line starts afresh
  EXPECT_EQ(absl::GetFlag(FLAGS_test_sources), (std::vector<std::string>{"e"}));
}

TEST(CommandLineDeathTest, UnknownFlagExits2WithOneLine) {
  EXPECT_EXIT(Parse({"--no-such-flag=1"}), ::testing::ExitedWithCode(2),
              "unknown flag --no-such-flag");
}

TEST(CommandLineDeathTest, BadValueExits2) {
  EXPECT_EXIT(Parse({"--test-count", "many"}), ::testing::ExitedWithCode(2), "--test-count=many");
  EXPECT_EXIT(Parse({"--test-count"}), ::testing::ExitedWithCode(2), "needs a value");
}

TEST(CommandLineDeathTest, HelpListsTheFlagsWithDashesAndExits0) {
  EXPECT_EXIT(
      {
        std::cout.flush();
        Parse({"--help"});
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace strata::common
