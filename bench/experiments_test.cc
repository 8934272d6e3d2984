#include "bench/experiments.h"

#include "gtest/gtest.h"

namespace strata::bench {
namespace {

const char kSection[] = "<!-- experiments:begin -->\nnew\n<!-- experiments:end -->\n";

TEST(ExperimentsTest, ReplacesOnlyTheMarkedSection) {
  const std::string doc =
      "# Results\n\nbefore\n<!-- experiments:begin -->\nold\n<!-- experiments:end -->\nafter\n";
  EXPECT_EQ(ReplaceSection(doc, kSection),
            "# Results\n\nbefore\n<!-- experiments:begin -->\nnew\n<!-- experiments:end -->\n"
            "after\n");
}

TEST(ExperimentsTest, AppendsTheSectionWhenThereIsNone) {
  EXPECT_EQ(ReplaceSection("# Results\ntext", kSection), std::string("# Results\ntext\n\n") + kSection);
  EXPECT_EQ(ReplaceSection("", kSection), std::string("\n") + kSection);
}

TEST(ExperimentsTest, OptionsAreValidated) {
  ExperimentsOptions o;
  EXPECT_FALSE(o.Validate().ok());  // no trace
  o.trace_path = "t";
  EXPECT_TRUE(o.Validate().ok());
  o.only = "ax";
  EXPECT_FALSE(o.Validate().ok());
  o.only = "a";
  o.saturated_time_scale = 0;
  EXPECT_FALSE(o.Validate().ok());
}

}  // namespace
}  // namespace strata::bench
