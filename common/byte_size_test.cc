#include "common/byte_size.h"

#include "gtest/gtest.h"

namespace strata::common {
namespace {

TEST(ByteSizeTest, ParsesPlainBinaryAndDecimalSuffixes) {
  EXPECT_EQ(*ParseByteSize("1048576"), 1048576u);
  EXPECT_EQ(*ParseByteSize("64MiB"), 64ull << 20);
  EXPECT_EQ(*ParseByteSize("2GiB"), 2ull << 30);
  EXPECT_EQ(*ParseByteSize("512k"), 512ull << 10);
  EXPECT_EQ(*ParseByteSize("1.5GiB"), 3ull << 29);
  EXPECT_EQ(*ParseByteSize("1GB"), 1000000000u);
  EXPECT_EQ(*ParseByteSize(" 8 MiB "), 8ull << 20);
  EXPECT_EQ(*ParseByteSize("0"), 0u);
}

TEST(ByteSizeTest, RejectsWhatDoesNotParse) {
  for (const char* bad : {"", "MiB", "12XB", "-5", "1.5", "abc", "99999999999TiB", "1e9"}) {
    EXPECT_EQ(ParseByteSize(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(ByteSizeTest, FormatsHumanReadably) {
  EXPECT_EQ(FormatByteSize(512), "512 B");
  EXPECT_EQ(FormatByteSize(64ull << 20), "64.0 MiB");
  EXPECT_EQ(FormatByteSize(2ull << 30), "2.00 GiB");
}

}  // namespace
}  // namespace strata::common
