#include "bench/trace.h"

#include <cstdlib>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#ifndef STRATA_SOURCE_DIR
#define STRATA_SOURCE_DIR "/work/main"
#endif

namespace strata::bench {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Four-token blocks keep hand-written lines short.
TraceOptions Small() {
  TraceOptions options;
  options.block_tokens = 4;
  return options;
}

std::string ErrorOf(std::string_view text, const TraceOptions& options = Small()) {
  auto trace = ParseTrace(text, "t.jsonl", options);
  if (trace.ok()) return "ok";
  EXPECT_EQ(trace.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(trace.status().message());
}

TEST(TraceTest, ParsesRecordsRelativeToTheFirstTimestamp) {
  const auto trace = ParseTrace(
      "{\"timestamp\": 100, \"input_length\": 8, \"output_length\": 3, \"hash_ids\": [0, 1]}\n"
      "{\"timestamp\": 100.5, \"input_length\": 9, \"output_length\": 0, \"hash_ids\": [0, 1, 2],"
      " \"extra\": \"ignored\"}\n"
      "{\"timestamp\": 250, \"input_length\": 1, \"output_length\": 7, \"hash_ids\": [5]}\n",
      "t.jsonl", Small());
  ASSERT_TRUE(trace.ok()) << trace.status();
  EXPECT_EQ(trace->source, "t.jsonl");
  EXPECT_EQ(trace->block_tokens, 4u);
  ASSERT_EQ(trace->requests.size(), 3u);
  const TraceRequest& second = trace->requests[1];
  EXPECT_EQ(second.index, 1u);
  EXPECT_EQ(second.line, 2u);
  EXPECT_DOUBLE_EQ(second.arrival_ms, 0.5);
  EXPECT_EQ(second.input_tokens, 9u);
  EXPECT_EQ(second.output_tokens, 0u);
  EXPECT_THAT(second.hash_ids, ElementsAre(0u, 1u, 2u));
  EXPECT_DOUBLE_EQ(trace->requests[0].arrival_ms, 0);
  EXPECT_DOUBLE_EQ(trace->requests[2].arrival_ms, 150);
  EXPECT_EQ(trace->requests[2].output_tokens, 7u);
}

TEST(TraceTest, SkipsBlankLinesButCountsThemInLineNumbers) {
  const auto trace = ParseTrace(
      "\n  \r\n{\"timestamp\": 0, \"input_length\": 4, \"hash_ids\": [1]}\r\n\n"
      "{\"timestamp\": 1, \"input_length\": 4, \"hash_ids\": [1]}",
      "t.jsonl", Small());
  ASSERT_TRUE(trace.ok()) << trace.status();
  ASSERT_EQ(trace->requests.size(), 2u);
  EXPECT_EQ(trace->requests[0].line, 3u);
  EXPECT_EQ(trace->requests[1].line, 5u);
  EXPECT_EQ(trace->requests[1].index, 1u);
}

TEST(TraceTest, RejectsBadJsonNamingTheLine) {
  EXPECT_THAT(ErrorOf("{\"timestamp\": 0, \"input_length\": 4, \"hash_ids\": [1]}\n"
                      "{\"timestamp\": 1, \"input_length\": 4,\n"),
              HasSubstr("t.jsonl:2: not a Mooncake record"));
}

TEST(TraceTest, RejectsALineThatIsNotAnObject) {
  EXPECT_THAT(ErrorOf("[1, 2, 3]\n"), HasSubstr("t.jsonl:1: not a Mooncake record"));
  EXPECT_THAT(ErrorOf("42\n"), HasSubstr("t.jsonl:1: not a Mooncake record"));
}

TEST(TraceTest, RejectsMissingHashIds) {
  EXPECT_EQ(ErrorOf("{\"timestamp\": 0, \"input_length\": 4}"),
            "t.jsonl:1: hash_ids is missing or empty");
}

TEST(TraceTest, RejectsAnIdCountThatDoesNotMatchTheBlocks) {
  EXPECT_EQ(ErrorOf("{\"timestamp\": 0, \"input_length\": 4, \"hash_ids\": [1]}\n"
                    "{\"timestamp\": 0, \"input_length\": 9, \"hash_ids\": [1, 2]}"),
            "t.jsonl:2: hash_ids has 2 ids but input_length 9 needs 3 (4-token blocks)");
  TraceOptions mooncake;  // 512-token blocks
  EXPECT_EQ(
      ErrorOf("{\"timestamp\": 0, \"input_length\": 2000, \"hash_ids\": [1, 2, 3]}", mooncake),
      "t.jsonl:1: hash_ids has 3 ids but input_length 2000 needs 4 (512-token blocks)");
}

TEST(TraceTest, RejectsNegativeAndOversizedLengths) {
  EXPECT_THAT(ErrorOf("{\"timestamp\": 0, \"input_length\": -4, \"hash_ids\": [1]}"),
              HasSubstr("t.jsonl:1: input_length -4 is not in [1, "));
  EXPECT_THAT(ErrorOf("{\"timestamp\": 0, \"input_length\": 4, \"output_length\": -1,"
                      " \"hash_ids\": [1]}"),
              HasSubstr("t.jsonl:1: output_length -1 is not in [0, "));
  EXPECT_THAT(ErrorOf("{\"timestamp\": 0, \"input_length\": 0, \"hash_ids\": [1]}"),
              HasSubstr("t.jsonl:1: input_length 0 is not in [1, "));
  EXPECT_THAT(ErrorOf("{\"timestamp\": 0, \"input_length\": 4, \"output_length\": 4294967296,"
                      " \"hash_ids\": [1]}"),
              HasSubstr("t.jsonl:1: output_length 4294967296 is not in [0, 4294967295]"));
}

TEST(TraceTest, RejectsNegativeAndNonIntegralIds) {
  EXPECT_EQ(ErrorOf("{\"timestamp\": 0, \"input_length\": 8, \"hash_ids\": [1, -2]}"),
            "t.jsonl:1: hash_ids[1] is -2; ids are >= 0");
  EXPECT_THAT(ErrorOf("{\"timestamp\": 0, \"input_length\": 8, \"hash_ids\": [1, 2.5]}"),
              HasSubstr("t.jsonl:1: not a Mooncake record"));
}

TEST(TraceTest, RejectsATimestampGoingBackwards) {
  EXPECT_EQ(ErrorOf("{\"timestamp\": 10, \"input_length\": 4, \"hash_ids\": [1]}\n"
                    "{\"timestamp\": 10, \"input_length\": 4, \"hash_ids\": [1]}\n"
                    "{\"timestamp\": 9.5, \"input_length\": 4, \"hash_ids\": [1]}"),
            "t.jsonl:3: timestamp 9.5 goes backwards (the previous request's is 10)");
}

TEST(TraceTest, RejectsNegativeOrNonFiniteTimestamps) {
  EXPECT_THAT(ErrorOf("{\"timestamp\": -1, \"input_length\": 4, \"hash_ids\": [1]}"),
              HasSubstr("t.jsonl:1: timestamp -1 is not a finite number >= 0"));
  EXPECT_THAT(ErrorOf("{\"timestamp\": \"Infinity\", \"input_length\": 4, \"hash_ids\": [1]}"),
              HasSubstr("t.jsonl:1: timestamp inf is not a finite number >= 0"));
}

TEST(TraceTest, RejectsALineLongerThanTheLimitNamingIt) {
  const std::string ok = "{\"timestamp\": 0, \"input_length\": 4, \"hash_ids\": [1]}";
  // Padding inside the line (JSON whitespace) to exactly the limit still parses.
  const std::string at_limit = ok.substr(0, ok.size() - 1) +
                               std::string(kMaxTraceLineBytes - ok.size(), ' ') + "}";
  ASSERT_EQ(at_limit.size(), kMaxTraceLineBytes);
  EXPECT_EQ(ErrorOf(at_limit + "\n"), "ok");
  EXPECT_EQ(ErrorOf(ok + "\n" + at_limit + " \n"),
            "t.jsonl:2: line of 1048577 bytes; at most 1048576 accepted");
}

TEST(TraceTest, RejectsArrivalsThatOverflowOnceScaled) {
  // Found writing the trace_parser fuzz target: a time_scale > 1 turned a finite timestamp into an
  // infinite arrival, which FormatTrace then wrote as "inf" (not JSON).
  TraceOptions options = Small();
  options.time_scale = 2;
  EXPECT_THAT(ErrorOf("{\"timestamp\": 0, \"input_length\": 4, \"hash_ids\": [1]}\n"
                      "{\"timestamp\": 1.7e308, \"input_length\": 4, \"hash_ids\": [1]}",
                      options),
              HasSubstr("t.jsonl:2: timestamp 1.7e+308 x time_scale 2 is not a finite number"));
}

TEST(TraceTest, RejectsAnEmptyTraceAndBadOptions) {
  EXPECT_EQ(ErrorOf("\n\n"), "t.jsonl: the trace has no requests");
  TraceOptions options = Small();
  options.time_scale = 0;
  EXPECT_THAT(ErrorOf("{\"timestamp\": 0, \"input_length\": 4, \"hash_ids\": [1]}", options),
              HasSubstr("time_scale"));
  options = Small();
  options.block_tokens = 0;
  EXPECT_THAT(ErrorOf("{\"timestamp\": 0, \"input_length\": 4, \"hash_ids\": [1]}", options),
              HasSubstr("block_tokens"));
}

TEST(TraceTest, MaxRequestsStopsReadingBeforeLaterLines) {
  TraceOptions options = Small();
  options.max_requests = 2;
  const auto trace = ParseTrace(
      "{\"timestamp\": 0, \"input_length\": 4, \"hash_ids\": [1]}\n"
      "\n"
      "{\"timestamp\": 1, \"input_length\": 4, \"hash_ids\": [2]}\n"
      "this line is never parsed\n",
      "t.jsonl", options);
  ASSERT_TRUE(trace.ok()) << trace.status();
  ASSERT_EQ(trace->requests.size(), 2u);
  EXPECT_THAT(trace->requests[1].hash_ids, ElementsAre(2u));
}

TEST(TraceTest, TimeScaleMultipliesArrivals) {
  TraceOptions options = Small();
  options.time_scale = 0.5;
  const auto trace = ParseTrace(
      "{\"timestamp\": 1000, \"input_length\": 4, \"hash_ids\": [1]}\n"
      "{\"timestamp\": 1300, \"input_length\": 4, \"hash_ids\": [1]}\n",
      "t.jsonl", options);
  ASSERT_TRUE(trace.ok()) << trace.status();
  EXPECT_DOUBLE_EQ(trace->requests[0].arrival_ms, 0);
  EXPECT_DOUBLE_EQ(trace->requests[1].arrival_ms, 150);
}

TraceRequest WithIds(std::vector<uint64_t> ids) {
  TraceRequest request;
  request.hash_ids = std::move(ids);
  request.input_tokens = static_cast<uint32_t>(request.hash_ids.size() * 4);
  return request;
}

TEST(TraceTest, ChainOfGivesEqualKeysForEqualPrefixes) {
  const auto a = ChainOf(WithIds({7, 8, 9}), 42);
  const auto b = ChainOf(WithIds({7, 8, 10}), 42);
  ASSERT_EQ(a.size(), 3u);
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(a[0], b[0]);
  EXPECT_EQ(a[1], b[1]);
  EXPECT_NE(a[2], b[2]);
}

TEST(TraceTest, ChainOfChangesEveryLaterKeyWhenTheFirstIdDiffers) {
  const auto a = ChainOf(WithIds({1, 2, 3}), 42);
  const auto b = ChainOf(WithIds({100, 2, 3}), 42);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NE(a[i], b[i]) << i;
}

TEST(TraceTest, ChainOfDependsOnTheNamespaceAndTheHighWordOfIds) {
  EXPECT_NE(ChainOf(WithIds({1}), 1)[0], ChainOf(WithIds({1}), 2)[0]);
  EXPECT_NE(ChainOf(WithIds({1}), 1)[0], ChainOf(WithIds({1 + (uint64_t{1} << 32)}), 1)[0]);
}

TEST(TraceTest, IdealHitRatioCountsBlocksSeenEarlier) {
  Trace trace;
  trace.requests = {WithIds({1, 2, 3}),      // 3 new
                    WithIds({1, 2, 4}),      // 2 hits, 1 new
                    WithIds({5, 2, 3}),      // same ids after a different first: all new
                    WithIds({1, 2, 3, 6})};  // 3 hits, 1 new
  EXPECT_DOUBLE_EQ(IdealHitRatio(trace), 5.0 / 13.0);
  EXPECT_DOUBLE_EQ(IdealHitRatio(Trace{}), 0.0);
}

TEST(TraceTest, FormatTraceRoundTripsThroughParseTrace) {
  std::vector<TraceRequest> requests(3);
  requests[0] = WithIds({0, 1});
  requests[0].output_tokens = 12;
  requests[1] = WithIds({0, 1, uint64_t{1} << 40});
  requests[1].input_tokens = 9;
  requests[1].arrival_ms = 0.1 + 0.2;  // not exactly 0.3: needs all 17 digits
  requests[2] = WithIds({3});
  requests[2].arrival_ms = 1500;
  for (uint32_t i = 0; i < 3; ++i) {
    requests[i].index = i;
    requests[i].line = i + 1;
  }
  const std::string text = FormatTrace(requests);
  EXPECT_THAT(text, HasSubstr("{\"timestamp\": 1500, \"input_length\": 4, \"output_length\": 0,"
                              " \"hash_ids\": [3]}\n"));
  const auto parsed = ParseTrace(text, "gen", Small());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->requests.size(), requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    const TraceRequest& got = parsed->requests[i];
    EXPECT_EQ(got.index, requests[i].index);
    EXPECT_EQ(got.line, requests[i].line);
    EXPECT_EQ(got.arrival_ms, requests[i].arrival_ms);  // exact, not approximately
    EXPECT_EQ(got.input_tokens, requests[i].input_tokens);
    EXPECT_EQ(got.output_tokens, requests[i].output_tokens);
    EXPECT_EQ(got.hash_ids, requests[i].hash_ids);
  }
}

TEST(TraceTest, LoadTraceNamesTheFileAndReportsAMissingOne) {
  const std::string path = ::testing::TempDir() + "/trace_test_load.jsonl";
  {
    std::ofstream out(path, std::ios::binary);
    out << "{\"timestamp\": 0, \"input_length\": 4, \"hash_ids\": [1]}\n"
           "{\"timestamp\": 1, \"input_length\": 4}\n";
  }
  const auto bad = LoadTrace(path, Small());
  EXPECT_EQ(bad.status().message(), "trace_test_load.jsonl:2: hash_ids is missing or empty");
  const auto missing = LoadTrace(path + ".absent", Small());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr(path + ".absent"));
}

// The synthetic Mooncake trace kept beside the repository (3993 requests). Its ids are
// prefix-unique, so chained keys give the same ratio as counting repeated ids: 77953 of 121877
// blocks (computed independently by counting ids in Python).
TEST(TraceTest, RealMooncakeTraceParsesWithItsKnownIdealHitRatio) {
  const char* env = std::getenv("STRATA_TRACE");
  const std::string path =
      env != nullptr && *env != '\0'
          ? std::string(env)
          : std::string(STRATA_SOURCE_DIR "/../shared/traces/mooncake_synthetic_trace.jsonl");
  if (!std::ifstream(path).good()) GTEST_SKIP() << "no trace at " << path;
  const auto trace = LoadTrace(path, TraceOptions{});
  ASSERT_TRUE(trace.ok()) << trace.status();
  EXPECT_EQ(trace->source, "mooncake_synthetic_trace.jsonl");
  EXPECT_EQ(trace->requests.size(), 3993u);
  EXPECT_NEAR(IdealHitRatio(*trace), 77953.0 / 121877.0, 1e-9);
}

}  // namespace
}  // namespace strata::bench
