#include "common/checksum.h"

#include <string>

#include "gtest/gtest.h"

namespace strata::common {
namespace {

TEST(ChecksumTest, StreamingEqualsOneShotAndDetectsAFlippedBit) {
  std::string data(1 << 20, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 131 + 7);
  const uint64_t whole = Checksum(data);
  StreamingChecksum s;
  for (size_t off = 0; off < data.size(); off += 100000) {
    const size_t n = std::min<size_t>(100000, data.size() - off);
    s.Update(std::as_bytes(std::span(data.data() + off, n)));
  }
  EXPECT_EQ(s.Digest(), whole);
  data[12345] ^= 0x01;
  EXPECT_NE(Checksum(data), whole);
}

TEST(ChecksumTest, KnownValueOfEmptyInput) {
  // XXH3_64bits("") with seed 0, from the xxHash reference.
  EXPECT_EQ(Checksum(std::string_view()), 0x2D06800538D394C2ull);
}

}  // namespace
}  // namespace strata::common
