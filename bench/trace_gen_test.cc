#include "bench/trace_gen.h"

#include <algorithm>
#include <map>
#include <string>

#include "bench/trace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace strata::bench {
namespace {

using ::testing::HasSubstr;

// The first requests at default options (seed 1).
constexpr char kPinnedFirstThree[] =
    "{\"timestamp\": 0, \"input_length\": 2117, \"output_length\": 173,"
    " \"hash_ids\": [0, 1, 2, 3, 4]}\n"
    "{\"timestamp\": 499, \"input_length\": 8479, \"output_length\": 152,"
    " \"hash_ids\": [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21]}\n"
    "{\"timestamp\": 1563, \"input_length\": 8547, \"output_length\": 89,"
    " \"hash_ids\": [22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38]}\n";

std::vector<TraceRequest> Generate(const GenOptions& options) {
  auto requests = GenerateTrace(options);
  EXPECT_TRUE(requests.ok()) << requests.status();
  return requests.ok() ? *std::move(requests) : std::vector<TraceRequest>{};
}

GenOptions Small() {
  GenOptions options;
  options.requests = 300;
  return options;
}

TEST(TraceGenTest, SameOptionsGiveIdenticalBytes) {
  const std::string a = FormatTrace(Generate(Small()));
  const std::string b = FormatTrace(Generate(Small()));
  ASSERT_FALSE(a.empty());
  EXPECT_EQ(a, b);
}

TEST(TraceGenTest, DifferentSeedsGiveDifferentTraces) {
  GenOptions other = Small();
  other.seed = 2;
  EXPECT_NE(FormatTrace(Generate(Small())), FormatTrace(Generate(other)));
}

// Pins the generator's output, so a change to the model or to the arithmetic under it (a
// different standard library, a libm call sneaking back in) shows up as a failing test rather than
// as benchmark numbers that silently stop being comparable.
TEST(TraceGenTest, OutputIsPinnedForTheDefaultSeed) {
  GenOptions options;
  options.requests = 3;
  EXPECT_EQ(FormatTrace(Generate(options)), kPinnedFirstThree);
}

// The whole default trace, through its totals: every draw (geometric turns, think times, Zipf
// picks) feeds one of them. The defaults' documented figures (mean prompt about 7.5k tokens, ideal
// hit ratio about 0.77) come from here.
TEST(TraceGenTest, DefaultTraceTotalsArePinned) {
  const GenSummary summary = SummarizeTrace(Generate(GenOptions{}), 512);
  EXPECT_EQ(summary.requests, 2000u);
  EXPECT_EQ(summary.input_tokens, 15086922u);
  EXPECT_EQ(summary.output_tokens, 362863u);
  EXPECT_DOUBLE_EQ(summary.duration_s, 497.589);
  EXPECT_DOUBLE_EQ(summary.ideal_hit_ratio, 23525.0 / 30459.0);
}

TEST(TraceGenTest, GeneratedTraceParsesBackToTheSameRequests) {
  const std::vector<TraceRequest> requests = Generate(Small());
  ASSERT_EQ(requests.size(), 300u);
  const auto parsed = ParseTrace(FormatTrace(requests), "gen", TraceOptions{});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->requests.size(), requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    EXPECT_EQ(parsed->requests[i].index, requests[i].index);
    EXPECT_EQ(parsed->requests[i].line, requests[i].line);
    EXPECT_EQ(parsed->requests[i].arrival_ms, requests[i].arrival_ms);
    EXPECT_EQ(parsed->requests[i].input_tokens, requests[i].input_tokens);
    EXPECT_EQ(parsed->requests[i].output_tokens, requests[i].output_tokens);
    EXPECT_EQ(parsed->requests[i].hash_ids, requests[i].hash_ids);
  }
}

TEST(TraceGenTest, ArrivalsStartAtZeroAndNeverDecrease) {
  const std::vector<TraceRequest> requests = Generate(Small());
  ASSERT_FALSE(requests.empty());
  EXPECT_EQ(requests.front().arrival_ms, 0);
  for (size_t i = 1; i < requests.size(); ++i) {
    EXPECT_LE(requests[i - 1].arrival_ms, requests[i].arrival_ms) << i;
  }
}

TEST(TraceGenTest, ArrivalRateFollowsRatePerS) {
  GenOptions options;
  options.rate_per_s = 10;
  const GenSummary summary = SummarizeTrace(Generate(options), options.block_tokens);
  const double rate = static_cast<double>(summary.requests) / summary.duration_s;
  EXPECT_GT(rate, 7.0);
  EXPECT_LT(rate, 13.0);
}

TEST(TraceGenTest, SharedPromptsCreateReuse) {
  const std::vector<TraceRequest> requests = Generate(Small());
  const GenSummary summary = SummarizeTrace(requests, 512);
  EXPECT_EQ(summary.requests, 300u);
  EXPECT_GT(summary.ideal_hit_ratio, 0.3);
  EXPECT_LT(summary.ideal_hit_ratio, 1.0);
}

TEST(TraceGenTest, NoReuseWithoutSharedPromptsOrFollowUps) {
  GenOptions options = Small();
  options.chat_share = 1;
  options.document_share = 0;
  options.agent_share = 0;
  options.system_prompt_tokens = 0;
  options.mean_turns = 1;
  EXPECT_EQ(SummarizeTrace(Generate(options), 512).ideal_hit_ratio, 0);
}

// Chat-only and many turns, so sessions interleave: each turn must still extend its own
// session's previous turn. A later turn's ids start with all full-block ids of the earlier turn.
TEST(TraceGenTest, ChatTurnsExtendThePreviousTurnsIds) {
  GenOptions options = Small();
  options.chat_share = 1;
  options.document_share = 0;
  options.agent_share = 0;
  options.mean_turns = 6;
  const std::vector<TraceRequest> requests = Generate(options);
  int extensions = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    const TraceRequest& earlier = requests[i];
    const size_t full = earlier.input_tokens / options.block_tokens;
    if (full <= options.system_prompt_tokens / options.block_tokens) continue;  // no history yet
    for (size_t j = i + 1; j < requests.size(); ++j) {
      const TraceRequest& later = requests[j];
      if (later.hash_ids.size() <= full ||
          later.hash_ids[options.system_prompt_tokens / options.block_tokens] !=
              earlier.hash_ids[options.system_prompt_tokens / options.block_tokens]) {
        continue;  // another session
      }
      EXPECT_TRUE(std::equal(earlier.hash_ids.begin(), earlier.hash_ids.begin() + full,
                             later.hash_ids.begin()))
          << "request " << j << " diverges from " << i;
      EXPECT_GT(later.input_tokens, earlier.input_tokens);
      ++extensions;
      break;  // the next turn of this session
    }
  }
  EXPECT_GT(extensions, 50);
}

TEST(TraceGenTest, IdsArePrefixUnique) {
  // Each id always follows the same parent, as in Mooncake's traces.
  std::map<uint64_t, int64_t> parent_of;
  for (const TraceRequest& r : Generate(Small())) {
    int64_t parent = -1;
    for (uint64_t id : r.hash_ids) {
      const auto [it, inserted] = parent_of.emplace(id, parent);
      EXPECT_EQ(it->second, parent) << "id " << id << " in request " << r.index;
      parent = static_cast<int64_t>(id);
    }
  }
}

TEST(TraceGenTest, ContextWindowEndsSessions) {
  GenOptions options = Small();
  options.agent_share = 1;
  options.chat_share = 0;
  options.document_share = 0;
  options.mean_agent_steps = 50;
  options.max_input_tokens = 16384;
  const std::vector<TraceRequest> requests = Generate(options);
  ASSERT_EQ(requests.size(), 300u);
  for (const TraceRequest& r : requests) EXPECT_LE(r.input_tokens, 16384u);
}

TEST(TraceGenTest, ValidateNamesTheBadField) {
  const auto error_of = [](void (*change)(GenOptions&)) {
    GenOptions options;
    change(options);
    const absl::Status status = options.Validate();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    return std::string(status.message());
  };
  EXPECT_TRUE(GenOptions{}.Validate().ok());
  EXPECT_THAT(error_of([](GenOptions& o) { o.requests = 0; }), HasSubstr("requests"));
  EXPECT_THAT(error_of([](GenOptions& o) { o.rate_per_s = 0; }), HasSubstr("rate_per_s"));
  EXPECT_THAT(error_of([](GenOptions& o) { o.document_share = -1; }), HasSubstr("document_share"));
  EXPECT_THAT(error_of([](GenOptions& o) { o.chat_share = o.document_share = o.agent_share = 0; }),
              HasSubstr("must be > 0"));
  EXPECT_THAT(error_of([](GenOptions& o) { o.documents = 0; }), HasSubstr("documents"));
  EXPECT_THAT(error_of([](GenOptions& o) { o.mean_turns = 0.5; }), HasSubstr("mean_turns"));
  EXPECT_THAT(error_of([](GenOptions& o) { o.user_tokens = {0, 10}; }), HasSubstr("user_tokens"));
  EXPECT_THAT(error_of([](GenOptions& o) { o.output_tokens.max = o.output_tokens.min - 1; }),
              HasSubstr("output_tokens max must be >= min"));
  EXPECT_THAT(error_of([](GenOptions& o) { o.think_time_s = -1; }), HasSubstr("think_time_s"));
  EXPECT_THAT(error_of([](GenOptions& o) { o.block_tokens = 0; }), HasSubstr("block_tokens"));
  EXPECT_THAT(error_of([](GenOptions& o) { o.max_input_tokens = 8192; }),
              HasSubstr("max_input_tokens"));
  GenOptions bad;
  bad.rate_per_s = -1;
  EXPECT_EQ(GenerateTrace(bad).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace strata::bench
