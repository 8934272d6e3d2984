#include "common/fail_point.h"

#include <algorithm>
#include <cstdlib>

#include "gtest/gtest.h"

namespace strata::common {
namespace {

class FailPointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!kFailPointsCompiled) GTEST_SKIP() << "built without STRATA_FAIL_POINTS";
    FailPoints::Global().DisarmAll();
  }
  void TearDown() override { FailPoints::Global().DisarmAll(); }
};

TEST_F(FailPointTest, UnarmedPointNeverFires) {
  EXPECT_TRUE(STRATA_FAIL_POINT("test.unarmed").ok());
  EXPECT_FALSE(STRATA_FAIL_POINT_FIRES("test.unarmed"));
}

TEST_F(FailPointTest, ArmedErrorReturnsItsCodeAndCountsFires) {
  ASSERT_TRUE(FailPoints::Global().ArmFromString("test.a=error(DATA_LOSS)").ok());
  absl::Status s = STRATA_FAIL_POINT("test.a");
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("test.a"), std::string_view::npos);
  EXPECT_TRUE(STRATA_FAIL_POINT("test.other").ok());
  EXPECT_EQ(FailPoints::Global().fired("test.a"), 1u);
  FailPoints::Global().Disarm("test.a");
  EXPECT_TRUE(STRATA_FAIL_POINT("test.a").ok());
}

TEST_F(FailPointTest, TimesAndSkipBoundWhichEvaluationsFire) {
  ASSERT_TRUE(FailPoints::Global().ArmFromString("test.b=error,skip=2,times=3").ok());
  std::string pattern;
  for (int i = 0; i < 7; ++i) pattern += STRATA_FAIL_POINT_FIRES("test.b") ? 'x' : '.';
  EXPECT_EQ(pattern, "..xxx..");
  EXPECT_EQ(FailPoints::Global().evaluations("test.b"), 7u);
}

TEST_F(FailPointTest, ProbabilityIsReproducibleForOneSeed) {
  auto run = [] {
    EXPECT_TRUE(FailPoints::Global().ArmFromString("seed=42;test.p=error,p=0.3").ok());
    std::string pattern;
    for (int i = 0; i < 200; ++i) pattern += STRATA_FAIL_POINT_FIRES("test.p") ? 'x' : '.';
    return pattern;
  };
  const std::string first = run();
  EXPECT_EQ(first, run());
  const auto fires = std::count(first.begin(), first.end(), 'x');
  EXPECT_GT(fires, 20);  // 60 expected; far from both 0 and 200
  EXPECT_LT(fires, 120);
}

TEST_F(FailPointTest, DelayReturnsOkAndRunsCallback) {
  int calls = 0;
  FailPoints::Global().SetCallback("test.d", [&] { ++calls; });
  ASSERT_TRUE(FailPoints::Global().ArmFromString("test.d=delay(1ms)").ok());
  EXPECT_TRUE(STRATA_FAIL_POINT("test.d").ok());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(FailPoints::Global().fired("test.d"), 1u);
  FailPoints::Global().SetCallback("test.d", nullptr);
}

TEST_F(FailPointTest, BadSpecIsRejectedWholeAndArmsNothing) {
  absl::Status s = FailPoints::Global().ArmFromString("test.ok=error;test.bad=explode");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("explode"), std::string_view::npos);
  EXPECT_TRUE(STRATA_FAIL_POINT("test.ok").ok());
  for (const char* bad : {"x=error,p=2", "x=error(NOPE)", "x=delay(fast)", "x", "x=error,times=a"}) {
    EXPECT_FALSE(FailPoints::Global().ArmFromString(bad).ok()) << bad;
  }
}

TEST_F(FailPointTest, OffDisarmsAndEnvironmentArms) {
  ASSERT_TRUE(FailPoints::Global().ArmFromString("test.e=error").ok());
  ASSERT_TRUE(FailPoints::Global().ArmFromString("test.e=off").ok());
  EXPECT_TRUE(STRATA_FAIL_POINT("test.e").ok());
  setenv("STRATA_FAIL_POINTS", "test.env=error(INTERNAL)", 1);
  ASSERT_TRUE(FailPoints::Global().ArmFromEnvironment().ok());
  unsetenv("STRATA_FAIL_POINTS");
  EXPECT_EQ(STRATA_FAIL_POINT("test.env").code(), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace strata::common
