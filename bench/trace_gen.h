// A synthetic Mooncake-format trace for `strata-bench gen`, so a machine without a real trace can
// still replay one (the README demo).
//
// Model. Sessions start as a Poisson process; the session rate is `rate_per_s` divided by the
// expected requests per session, so requests arrive at about `rate_per_s`. A session is one of
// three kinds, drawn by the `*_share` weights:
//   chat      one of `system_prompts` system prompts, then `mean_turns` turns (geometric). Turn k's
//             prompt is the system prompt + every earlier user message and answer + a new user
//             message, so each turn extends the previous turn's prompt.
//   document  one of `documents` documents + a question; `mean_questions` independent questions
//             per session, so questions share the document but not each other.
//   agent     one of `agents` tool prompts + a task, then `mean_agent_steps` steps; each step's
//             prompt adds the previous step's action and a new observation (long prompts, short
//             outputs).
// Shared prompts are chosen with Zipf popularity (`zipf_exponent`; item 0 is the most popular).
// Turns follow each other after an exponential think time. A session ends early when its next
// prompt would exceed `max_input_tokens` (a context window).
//
// Ids follow Mooncake's convention: one per `block_tokens` block, prefix-unique (block i's id names
// the whole prefix up to and including block i), numbered in order of first appearance. Two
// requests share ids exactly for their shared full blocks; a partial last block always gets a
// fresh id.
//
// Determinism: the same options give byte-identical output on every platform. Randomness comes
// from std::mt19937_64 (fully specified by the standard) through hand-written distributions and
// arithmetic-only log/exp, never std::*_distribution or libm, whose results differ between standard
// libraries. Timestamps are whole milliseconds, as in Mooncake's traces.
//
// Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bench/trace.h"

namespace strata::bench {

// An inclusive range of token counts; each draw is uniform over it.
struct TokenRange {
  uint32_t min = 0;
  uint32_t max = 0;
};

struct GenOptions {
  uint64_t seed = 1;  // same seed and options => same bytes
  // Requests in the trace. More gives steadier ratios and a longer replay.
  uint32_t requests = 2000;
  // Mean request arrival rate. Higher packs more concurrent sessions into the same cache window
  // (more load, and more reuse of shared prompts within a short interval).
  double rate_per_s = 4.0;

  // Relative weights of the session kinds (need not sum to 1; at least one > 0). Agent sessions
  // reuse the most (about 0.9 alone: each step re-sends the whole scratchpad), document sessions
  // the least (about 0.67: most documents are read by one session); these defaults give an ideal
  // hit ratio of 0.75-0.77 with mean prompts of about 7k tokens (the synthetic Mooncake trace:
  // 0.64 and 15.3k).
  double chat_share = 0.4;
  double document_share = 0.45;
  double agent_share = 0.15;

  // Popularity skew of shared prompts: weight of the item ranked r (0-based) is 1/(r+1)^s. 0 is
  // uniform (least reuse); larger concentrates traffic on a few prompts (more reuse).
  double zipf_exponent = 1.0;

  // Chat. Fewer, longer system prompts raise reuse; more turns raise it too (each turn re-sends
  // the conversation so far).
  uint32_t system_prompts = 16;
  uint32_t system_prompt_tokens = 2048;
  double mean_turns = 4;                 // turns per chat session (geometric, >= 1)
  TokenRange user_tokens = {50, 1000};   // a user message, also a question or an agent's task
  TokenRange output_tokens = {50, 400};  // a chat answer, also a document answer
  double think_time_s = 20;              // mean gap between a chat or document session's turns

  // Document QA. Documents dominate the prompt, so their count and length set most of its reuse:
  // a large pool under Zipf popularity is a few popular documents and a long tail read once.
  uint32_t documents = 10000;  // <= 1e6 (the popularity table is built up front)
  uint32_t document_tokens = 8192;
  double mean_questions = 2;  // questions per document session (geometric, >= 1)

  // Agents: long shared prompts and a scratchpad that grows each step.
  uint32_t agents = 8;
  uint32_t agent_prompt_tokens = 6144;
  double mean_agent_steps = 6;                  // steps per agent session (geometric, >= 1)
  TokenRange observation_tokens = {100, 1200};  // tool output appended each step
  TokenRange agent_output_tokens = {20, 150};   // an action
  double agent_think_time_s = 3;                // mean gap between steps (tool latency)

  // Context window: a session stops before a prompt longer than this. Bounds prompt growth.
  uint32_t max_input_tokens = 131072;
  uint32_t block_tokens = 512;  // tokens per hash id (Mooncake: 512)

  // InvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

// The trace: `options.requests` requests sorted by arrival (ties in generation order), `index`
// 0-based and `line` = index + 1, first arrival at 0. Passes ParseTrace(FormatTrace(...)) with
// `block_tokens`. InvalidArgument from Validate().
absl::StatusOr<std::vector<TraceRequest>> GenerateTrace(const GenOptions& options);

struct GenSummary {
  uint64_t requests = 0;
  uint64_t input_tokens = 0;   // sum over requests
  uint64_t output_tokens = 0;  // sum over requests
  double duration_s = 0;       // last arrival - first arrival
  double ideal_hit_ratio = 0;  // IdealHitRatio of the requests
};

// Totals of a trace (generated or parsed). Zeros for no requests.
GenSummary SummarizeTrace(const std::vector<TraceRequest>& requests, uint32_t block_tokens);

}  // namespace strata::bench
