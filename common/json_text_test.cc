#include "common/json_text.h"

#include "gtest/gtest.h"

namespace strata::common {
namespace {

TEST(JsonTextTest, QuoteEscapesQuotesBackslashesAndControls) {
  EXPECT_EQ(JsonQuote("a\"b\\c\nd\x01\te\r"), "\"a\\\"b\\\\c\\nd\\u0001\\te\\r\"");
  EXPECT_EQ(JsonQuote("hbm(emulated)"), "\"hbm(emulated)\"");
  EXPECT_EQ(JsonQuote(""), "\"\"");
}

}  // namespace
}  // namespace strata::common
