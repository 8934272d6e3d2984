#include "common/checksum.h"

#include <xxhash.h>

#include <span>
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

TEST(ChecksumTest, EqualsThePortableXxh3AtEverySizeClass) {
  // The run-time dispatched code (AVX2 where present) must give the portable code's values:
  // checksums are stored on disk and sent over the wire.
  std::string data(3 * 1024 * 1024 + 17, '\0');
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (char& c : data) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x);
  }
  for (size_t size : {size_t{1}, size_t{16}, size_t{129}, size_t{240}, size_t{241}, size_t{1024},
                      size_t{65536} + 3, data.size()}) {
    const std::string_view part(data.data(), size);
    EXPECT_EQ(Checksum(part), XXH3_64bits(part.data(), part.size())) << size;
    StreamingChecksum s;
    s.Update(std::as_bytes(std::span(part.data(), size / 2)));
    s.Update(std::as_bytes(std::span(part.data() + size / 2, size - size / 2)));
    EXPECT_EQ(s.Digest(), XXH3_64bits(part.data(), part.size())) << size;
  }
}

TEST(ChecksumTest, KnownValueOfEmptyInput) {
  // XXH3_64bits("") with seed 0, from the xxHash reference.
  EXPECT_EQ(Checksum(std::string_view()), 0x2D06800538D394C2ull);
}

}  // namespace
}  // namespace strata::common
