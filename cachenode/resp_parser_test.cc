#include "cachenode/resp_parser.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace strata::cachenode {
namespace {

struct Parsed {
  std::vector<std::vector<std::string>> requests;
  std::vector<bool> too_large;
  bool error = false;
  std::string message;
};

// Feeds `input` through ReadSpans/Advance in reads of at most `chunk` bytes (as a socket would
// deliver it) and collects every request.
Parsed Feed(RespParser& parser, std::string_view input, size_t chunk = 1 << 30) {
  Parsed out;
  RespRequest request;
  auto drain = [&] {
    while (true) {
      const RespParser::Result r = parser.Next(request);
      if (r == RespParser::Result::kNeedMore) return true;
      if (r == RespParser::Result::kError) {
        out.error = true;
        out.message = parser.error();
        return false;
      }
      out.requests.emplace_back(request.args.begin(), request.args.end());
      out.too_large.push_back(request.too_large);
    }
  };
  size_t offset = 0;
  while (offset < input.size()) {
    std::array<std::span<char>, 2> spans;
    const size_t count = parser.ReadSpans(spans);
    size_t n = 0;
    for (size_t i = 0; i < count && offset < input.size(); ++i) {
      const size_t take = std::min({spans[i].size(), input.size() - offset, chunk - n});
      std::memcpy(spans[i].data(), input.data() + offset, take);
      offset += take;
      n += take;
      if (take < spans[i].size()) break;  // a read fills the spans in order
    }
    parser.Advance(n);
    if (!drain()) return out;
  }
  drain();
  return out;
}

std::string Command(const std::vector<std::string>& args) {
  std::string s = "*" + std::to_string(args.size()) + "\r\n";
  for (const std::string& a : args) s += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return s;
}

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  // Make sure the protocol's own delimiters and NUL appear inside the value.
  if (n >= 4) s.replace(n / 2, 4, std::string("\r\n\0$", 4));
  return s;
}

TEST(RespParserTest, ParsesPipelinedArraysInOrder) {
  RespParser parser(RespParserOptions{});
  const std::string input = Command({"SET", "k", "v"}) + Command({"GET", "k"}) + Command({"PING"});
  const Parsed p = Feed(parser, input);
  ASSERT_FALSE(p.error) << p.message;
  ASSERT_EQ(p.requests.size(), 3u);
  EXPECT_EQ(p.requests[0], (std::vector<std::string>{"SET", "k", "v"}));
  EXPECT_EQ(p.requests[1], (std::vector<std::string>{"GET", "k"}));
  EXPECT_EQ(p.requests[2], (std::vector<std::string>{"PING"}));
}

TEST(RespParserTest, ReassemblesRequestsSplitAtEveryByte) {
  const std::string value = RandomBytes(300, 1);
  const std::string input = Command({"SET", "key", value}) + Command({"GET", "key"});
  for (size_t chunk : {1u, 2u, 3u, 7u}) {
    RespParser parser(RespParserOptions{});
    const Parsed p = Feed(parser, input, chunk);
    ASSERT_FALSE(p.error) << p.message;
    ASSERT_EQ(p.requests.size(), 2u) << "chunk " << chunk;
    EXPECT_EQ(p.requests[0][2], value);
  }
}

TEST(RespParserTest, LargeBinaryBulksArriveByteExactThroughDirectReads) {
  BulkBufferPool pool(64 << 20);
  for (size_t size : {size_t{16} << 10, size_t{1} << 20, (size_t{2} << 20) + 3}) {
    RespParser parser(RespParserOptions{}, &pool);
    const std::string value = RandomBytes(size, static_cast<uint32_t>(size));
    const std::string input = Command({"SET", "k", value}) + Command({"SET", "k2", value});
    const Parsed p = Feed(parser, input, 100000);
    ASSERT_FALSE(p.error) << p.message;
    ASSERT_EQ(p.requests.size(), 2u);
    EXPECT_EQ(p.requests[0][2], value);
    EXPECT_EQ(p.requests[1][2], value);
  }
}

TEST(RespParserTest, OffersTheBulkBufferThenTheHeaderAreaForOneReadv) {
  RespParser parser(RespParserOptions{});
  const std::string header = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1048576\r\n";
  Parsed p = Feed(parser, header);
  ASSERT_FALSE(p.error);
  std::array<std::span<char>, 2> spans;
  ASSERT_EQ(parser.ReadSpans(spans), 2u);
  EXPECT_EQ(spans[0].size(), 1u << 20);  // exactly the bulk, no intermediate buffer
  EXPECT_GE(spans[1].size(), 2u);
}

TEST(RespParserTest, ParsesInlineCommands) {
  RespParser parser(RespParserOptions{});
  const Parsed p = Feed(parser, "PING\r\n\r\nset  k\tv\nEXISTS a b\r\n");
  ASSERT_FALSE(p.error) << p.message;
  ASSERT_EQ(p.requests.size(), 3u);
  EXPECT_EQ(p.requests[0], (std::vector<std::string>{"PING"}));
  EXPECT_EQ(p.requests[1], (std::vector<std::string>{"set", "k", "v"}));
  EXPECT_EQ(p.requests[2], (std::vector<std::string>{"EXISTS", "a", "b"}));
}

TEST(RespParserTest, SkipsEmptyArrays) {
  RespParser parser(RespParserOptions{});
  const Parsed p = Feed(parser, "*0\r\n" + Command({"PING"}));
  ASSERT_FALSE(p.error) << p.message;
  ASSERT_EQ(p.requests.size(), 1u);
}

TEST(RespParserTest, DiscardsAnOversizedBulkAndKeepsParsing) {
  RespParserOptions options;
  options.max_bulk_bytes = 1000;
  options.max_discard_bytes = 1 << 20;
  RespParser parser(options);
  const std::string input = Command({"SET", "k", std::string(5000, 'x')}) + Command({"GET", "k"});
  const Parsed p = Feed(parser, input, 700);
  ASSERT_FALSE(p.error) << p.message;
  ASSERT_EQ(p.requests.size(), 2u);
  EXPECT_TRUE(p.too_large[0]);
  EXPECT_TRUE(p.requests[0].empty());
  EXPECT_FALSE(p.too_large[1]);
  EXPECT_EQ(p.requests[1], (std::vector<std::string>{"GET", "k"}));
}

struct BadInput {
  std::string name;
  std::string bytes;
  std::string error_part;
};

TEST(RespParserTest, RejectsMalformedInputWithAProtocolError) {
  RespParserOptions options;
  options.max_args = 100;
  options.max_inline_bytes = 1024;
  const std::vector<BadInput> cases = {
      {"huge bulk header", "*2\r\n$3\r\nGET\r\n$99999999999\r\n", "invalid bulk length"},
      {"negative count", "*-5\r\n", "invalid multibulk length"},
      {"negative bulk", "*1\r\n$-3\r\n", "invalid bulk length"},
      {"non-numeric count", "*x\r\n", "invalid multibulk length"},
      {"overflowing bulk", "*1\r\n$123456789012345678901234\r\n", "invalid bulk length"},
      {"endless header", "*1\r\n$" + std::string(64, '9'), "header line too long"},
      {"too many args", "*101\r\n", "invalid multibulk length"},
      {"missing $", "*1\r\n+PING\r\n", "expected '$'"},
      {"bulk longer than declared", "*1\r\n$2\r\nPING\r\n", "missing CRLF after a bulk"},
      {"LF without CR", "*1\n$4\r\nPING\r\n", "missing CRLF"},
      {"binary garbage",
       std::string("\x01\x02\xff\x00"
                   "garbage\r\n",
                   13),
       "invalid inline request"},
      {"unterminated inline", std::string(2000, 'a'), "too big inline request"},
  };
  for (const BadInput& c : cases) {
    RespParser parser(options);
    const Parsed p = Feed(parser, c.bytes);
    EXPECT_TRUE(p.error) << c.name;
    EXPECT_NE(p.message.find(c.error_part), std::string::npos) << c.name << ": " << p.message;
    RespRequest r;
    EXPECT_EQ(parser.Next(r), RespParser::Result::kError) << c.name << ": error is sticky";
  }
}

// A 64-byte header area fills, compacts and takes the rest of a pipeline many times over, and
// every bulk of 16 bytes or more is read directly into its own buffer: the requests come out
// exactly as through the default 64 KiB area and 16 KiB threshold, in one read or byte by byte.
TEST(RespParserTest, SmallHeaderAreaAndBigBulkThresholdParseAsTheDefaultsDo) {
  std::string input;
  for (int i = 0; i < 40; ++i) {
    input += Command({"SET", "key-" + std::to_string(i), RandomBytes(i * 7 % 50, i)});
    input += "GET  key-" + std::to_string(i) + "\r\n";
  }
  input += Command({"SET", "big", RandomBytes(20000, 99)});
  RespParser reference(RespParserOptions{});
  const Parsed expected = Feed(reference, input);
  ASSERT_FALSE(expected.error) << expected.message;
  ASSERT_EQ(expected.requests.size(), 81u);
  RespParserOptions small;
  small.min_header_bytes = 64;
  small.max_inline_bytes = 32;
  small.big_bulk_bytes = 16;
  ASSERT_TRUE(small.Validate().ok());
  for (size_t chunk : {size_t{1}, size_t{5}, size_t{1} << 30}) {
    RespParser parser(small);
    const Parsed p = Feed(parser, input, chunk);
    ASSERT_FALSE(p.error) << p.message;
    EXPECT_EQ(p.requests, expected.requests) << "chunk " << chunk;
  }
}

TEST(RespParserTest, NeverBuffersBeyondTheHeaderAreaWithoutAHeader) {
  RespParserOptions options;
  options.max_inline_bytes = 100;
  RespParser parser(options);
  // A header line that never ends is refused after a few bytes, not buffered.
  const Parsed p = Feed(parser, "*" + std::string(40, '1'));
  EXPECT_TRUE(p.error);
}

// Reserves slots in a real DRAM MemoryTier and remembers them, so a test can see where a value
// was read to. `fail` makes every reservation fail (the parser must fall back to a buffer).
class TierSlots final : public SlotSource {
 public:
  TierSlots()
      : tier_(MemoryTierOptions{},
              std::move(*CreateHostMemory({64ull << 20, true, false, "resp-parser-test"}))) {}
  absl::StatusOr<ReservedSlot> Reserve(uint64_t size) override {
    ++calls;
    if (fail) return absl::ResourceExhaustedError("no room");
    return tier_.Reserve(size);
  }
  MemoryTier& tier() { return tier_; }
  int calls = 0;
  bool fail = false;

 private:
  MemoryTier tier_;
};

TEST(RespParserTest, LargeSetValueIsReadStraightIntoAReservedSlot) {
  TierSlots slots;
  RespParser parser(RespParserOptions{}, nullptr, &slots);
  std::string value(2 << 20, '\0');
  std::mt19937_64 rng(5);
  for (char& c : value) c = static_cast<char>(rng());
  // Split reads, as a socket delivers a 2 MiB value.
  const std::string input = Command({"set", "k", value}) + Command({"GET", "k"});
  RespRequest request;
  std::vector<std::string> got_names;
  size_t offset = 0;
  bool saw_set = false;
  while (offset < input.size()) {
    std::array<std::span<char>, 2> spans;
    const size_t count = parser.ReadSpans(spans);
    size_t n = 0;
    for (size_t i = 0; i < count && offset < input.size(); ++i) {
      const size_t take = std::min({spans[i].size(), input.size() - offset, size_t{300000} - n});
      std::memcpy(spans[i].data(), input.data() + offset, take);
      offset += take;
      n += take;
      if (take < spans[i].size()) break;
    }
    parser.Advance(n);
    while (parser.Next(request) == RespParser::Result::kRequest) {
      got_names.emplace_back(request.args[0]);
      if (request.args[0] == "set") {
        saw_set = true;
        ASSERT_TRUE(request.value_slot.valid());
        EXPECT_EQ(request.value_slot.size(), value.size());
        // args[2] views the slot's bytes, and they are the value, byte for byte.
        EXPECT_EQ(static_cast<const void*>(request.args[2].data()),
                  static_cast<const void*>(request.value_slot.data().data()));
        EXPECT_EQ(request.args[2], value);
      } else {
        EXPECT_FALSE(request.value_slot.valid());  // a GET carries no slot
      }
    }
  }
  EXPECT_TRUE(saw_set);
  EXPECT_EQ(got_names, (std::vector<std::string>{"set", "GET"}));
  EXPECT_EQ(slots.calls, 1);
  // Nobody committed the slot: it was freed with the request, so the tier holds nothing.
  EXPECT_EQ(slots.tier().Usage().used_bytes, 0u);
}

TEST(RespParserTest, OnlyAPlainSetWithALargeValueAsksForASlot) {
  TierSlots slots;
  RespParser parser(RespParserOptions{}, nullptr, &slots);
  const std::string big(64 << 10, 'v');
  Parsed p = Feed(parser, Command({"SET", "k", "small"}) + Command({"SET", "k", big, "EX", "1"}) +
                              Command({"ECHO", "k", big}) + Command({"SETX", "k", big}));
  ASSERT_FALSE(p.error) << p.message;
  EXPECT_EQ(p.requests.size(), 4u);
  EXPECT_EQ(slots.calls, 0);
  // A failing slot source falls back to an ordinary buffer: the value still arrives intact.
  slots.fail = true;
  p = Feed(parser, Command({"SET", "k", big}));
  ASSERT_EQ(p.requests.size(), 1u);
  EXPECT_EQ(p.requests[0][2], big);
  EXPECT_EQ(slots.calls, 1);
}

TEST(RespParserOptionsTest, ValidateRejectsInconsistentBounds) {
  RespParserOptions o;
  EXPECT_TRUE(o.Validate().ok());
  o.max_discard_bytes = o.max_bulk_bytes - 1;
  EXPECT_FALSE(o.Validate().ok());
  o = RespParserOptions{};
  o.max_args = 0;
  EXPECT_FALSE(o.Validate().ok());
  o = RespParserOptions{};
  o.min_header_bytes = 63;
  EXPECT_FALSE(o.Validate().ok());
  o = RespParserOptions{};
  o.big_bulk_bytes = 0;
  EXPECT_FALSE(o.Validate().ok());
}

TEST(BulkBufferPoolTest, ReusesAFittingBufferAndBoundsWhatItKeeps) {
  BulkBufferPool pool(3 << 20);
  BulkBuffer a = pool.Take(2 << 20);
  char* const first = a.data.get();
  pool.Give(std::move(a));
  EXPECT_EQ(pool.cached_bytes(), 2u << 20);
  BulkBuffer b = pool.Take((2 << 20) - 100);
  EXPECT_EQ(b.data.get(), first);
  BulkBuffer c = pool.Take(2 << 20);
  pool.Give(std::move(b));
  pool.Give(std::move(c));  // over the bound: freed
  EXPECT_EQ(pool.cached_bytes(), 2u << 20);
}

}  // namespace
}  // namespace strata::cachenode
