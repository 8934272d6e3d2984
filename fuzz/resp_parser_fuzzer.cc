// Fuzzes cachenode::RespParser (the RESP2 request parser behind the Redis-compatible port).
//
// Input: byte 0 picks the parser limits (small ones, with a small header area and a small direct
// read threshold, so every limit, the header area's fill-compact-refill cycle and direct reads are
// reachable with inputs under 1 KiB; or the server's defaults) and byte 1 the read sizes; the rest
// is the byte stream a client sends. Checks, beyond ASan/UBSan:
//   - bytes handed to the parser never exceed the input and what it buffers never exceeds that;
//   - a parsed request holds at most max_args arguments, none larger than max_bulk_bytes, and
//     at most max_bulk_bytes + max_inline_bytes in all (the memory bound the header promises);
//   - the same stream split into different reads gives the same requests and the same error;
//   - the requests, re-encoded as RESP arrays and pipelined into a fresh parser, come back as the
//     same requests, no more and no fewer (an inline request's words survive as bulk strings).
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cachenode/resp_parser.h"
#include "fuzz/fuzz_check.h"

namespace {

using strata::cachenode::RespParser;
using strata::cachenode::RespParserOptions;
using strata::cachenode::RespRequest;

struct Outcome {
  std::vector<std::vector<std::string>> requests;
  std::vector<bool> too_large;
  bool error = false;
  std::string message;
};

RespParserOptions OptionsFor(uint8_t profile) {
  RespParserOptions o;
  switch (profile % 3) {
    case 0:  // tiny: every limit, a full header area and direct reads within a few hundred bytes
      o.max_bulk_bytes = 64;
      o.max_discard_bytes = 512;
      o.max_args = 8;
      o.max_inline_bytes = 32;
      o.min_header_bytes = 64;
      o.big_bulk_bytes = 16;
      break;
    case 1:  // small: a 256 B header area, direct reads from 128 B, bulks up to 512 B
      o.max_bulk_bytes = 512;
      o.max_discard_bytes = 768;
      o.max_args = 16;
      o.max_inline_bytes = 128;
      o.min_header_bytes = 256;
      o.big_bulk_bytes = 128;
      break;
    default:  // the server's defaults
      break;
  }
  return o;
}

// Feeds `input` to `parser` in reads of sizes drawn from `seed` (0: as large as the spans allow).
Outcome Feed(const RespParserOptions& options, std::string_view input, uint32_t seed) {
  RespParser parser(options);
  Outcome out;
  RespRequest request;
  size_t handed = 0;
  auto drain = [&] {
    while (true) {
      const RespParser::Result r = parser.Next(request);
      if (r == RespParser::Result::kNeedMore) return true;
      if (r == RespParser::Result::kError) {
        out.error = true;
        out.message = parser.error();
        FUZZ_CHECK(!out.message.empty());
        // Sticky: the parser stays in error.
        FUZZ_CHECK(parser.Next(request) == RespParser::Result::kError);
        return false;
      }
      uint64_t total = 0;
      if (request.too_large) {
        FUZZ_CHECK(request.args.empty());
      } else {
        FUZZ_CHECK(!request.args.empty());
        FUZZ_CHECK(request.args.size() <= options.max_args);
        for (std::string_view a : request.args) {
          FUZZ_CHECK(a.size() <= options.max_bulk_bytes || request.inline_command);
          total += a.size();
        }
        FUZZ_CHECK(total <= options.max_bulk_bytes + options.max_inline_bytes);
      }
      out.requests.emplace_back(request.args.begin(), request.args.end());
      out.too_large.push_back(request.too_large);
    }
  };
  uint32_t rng = seed;
  size_t offset = 0;
  while (offset < input.size()) {
    std::array<std::span<char>, 2> spans;
    const size_t count = parser.ReadSpans(spans);
    FUZZ_CHECK(count >= 1 && count <= 2);
    size_t room = 0;
    for (size_t i = 0; i < count; ++i) room += spans[i].size();
    FUZZ_CHECK(room > 0);  // "never empty once the previous request was taken"
    size_t want = input.size() - offset;
    if (seed != 0) {
      rng = rng * 1103515245u + 12345u;
      want = std::min<size_t>(want, 1 + (rng >> 16) % 97);
    }
    size_t n = 0;
    for (size_t i = 0; i < count && n < want; ++i) {
      const size_t take = std::min(spans[i].size(), want - n);
      std::memcpy(spans[i].data(), input.data() + offset + n, take);
      n += take;
      if (take < spans[i].size()) break;  // a read fills the spans in order
    }
    parser.Advance(n);
    offset += n;
    handed += n;
    FUZZ_CHECK(handed <= input.size());
    FUZZ_CHECK(parser.buffered_bytes() <= handed);
    if (!drain()) return out;
  }
  drain();
  return out;
}

std::string Encode(const std::vector<std::string>& args) {
  std::string s = "*" + std::to_string(args.size()) + "\r\n";
  for (const std::string& a : args) s += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const RespParserOptions options = OptionsFor(data[0]);
  FUZZ_CHECK(options.Validate().ok());
  const uint32_t seed = data[1];
  const std::string_view input(reinterpret_cast<const char*>(data) + 2, size - 2);

  const Outcome whole = Feed(options, input, 0);
  const Outcome split = Feed(options, input, seed | 1);
  FUZZ_CHECK(whole.requests == split.requests);
  FUZZ_CHECK(whole.too_large == split.too_large);
  FUZZ_CHECK(whole.error == split.error);
  FUZZ_CHECK(whole.message == split.message);

  // Every request re-encoded, all of them pipelined into one fresh parser (one parser, not one
  // per request: a parser's header area is a large allocation, and a short input can hold
  // thousands of inline requests).
  std::string encoded;
  std::vector<std::vector<std::string>> expected;
  for (size_t i = 0; i < whole.requests.size(); ++i) {
    if (whole.too_large[i]) continue;
    encoded += Encode(whole.requests[i]);
    expected.push_back(whole.requests[i]);
  }
  if (!expected.empty()) {
    const Outcome again = Feed(options, encoded, 0);
    FUZZ_CHECK(!again.error);
    FUZZ_CHECK(again.requests == expected);
    for (bool too_large : again.too_large) FUZZ_CHECK(!too_large);
  }
  return 0;
}
