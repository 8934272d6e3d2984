#include "bench/trace_gen.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <queue>
#include <random>
#include <string>
#include <string_view>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/string_view_interop.h"

// Byte-identical output needs every floating-point operation rounded on its own: no fused
// multiply-adds. GCC already keeps them apart in ISO C++ mode (-std=c++20: -ffp-contract=off);
// clang contracts by default unless told not to.
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

namespace strata::bench {
namespace {

// ---- Portable arithmetic: only IEEE +, -, *, / and exact frexp/ldexp/floor, so every platform
// computes the same bits (libm's log/exp/pow may differ in the last place between libraries).

constexpr double kLn2 = 0.69314718055994530942;
constexpr double kSqrtHalf = 0.70710678118654752440;

// Natural log of a finite x > 0: log(m * 2^e) = e ln2 + 2 atanh((m-1)/(m+1)), m in [sqrt(1/2),
// sqrt(2)), where the series converges to double precision in 20 terms (|s| < 0.172).
double Log(double x) {
  int e = 0;
  double m = std::frexp(x, &e);
  if (m < kSqrtHalf) {
    m *= 2;
    --e;
  }
  const double s = (m - 1) / (m + 1);
  const double s2 = s * s;
  double term = s;
  double sum = 0;
  for (int k = 1; k < 40; k += 2) {
    sum += term / k;
    term *= s2;
  }
  return 2 * sum + e * kLn2;
}

// e^x for finite x: 2^k e^r with |r| <= ln2/2 and a 25-term Taylor series.
double Exp(double x) {
  if (x < -745) return 0;
  if (x > 709) return std::numeric_limits<double>::infinity();
  const double k = std::floor(x / kLn2 + 0.5);
  const double r = x - k * kLn2;
  double term = 1;
  double sum = 1;
  for (int n = 1; n <= 25; ++n) {
    term *= r / n;
    sum += term;
  }
  return std::ldexp(sum, static_cast<int>(k));
}

// The distributions the model needs, on top of mt19937_64 (whose output the standard fixes).
class Random {
 public:
  explicit Random(uint64_t seed) : engine_(seed) {}

  double Unit() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }            // [0, 1)
  double UnitOpen() { return static_cast<double>((engine_() >> 11) + 1) * 0x1.0p-53; }  // (0, 1]

  // Uniform in [0, n), n >= 1: Lemire's multiply-shift with rejection (no modulo bias).
  uint64_t Below(uint64_t n) {
    unsigned __int128 m = static_cast<unsigned __int128>(engine_()) * n;
    uint64_t low = static_cast<uint64_t>(m);
    if (low < n) {
      const uint64_t threshold = (0 - n) % n;
      while (low < threshold) {
        m = static_cast<unsigned __int128>(engine_()) * n;
        low = static_cast<uint64_t>(m);
      }
    }
    return static_cast<uint64_t>(m >> 64);
  }

  uint32_t In(TokenRange range) {
    return range.min +
           static_cast<uint32_t>(Below(static_cast<uint64_t>(range.max) - range.min + 1));
  }

  double Exponential(double mean) { return -Log(UnitOpen()) * mean; }

  // Geometric on {1, 2, ...} with the given mean (>= 1): inversion, 1 + floor(ln u / ln(1-p)).
  uint32_t Geometric(double mean) {
    if (mean <= 1) return 1;
    const double draws = std::floor(Log(UnitOpen()) / Log(1 - 1 / mean));
    return 1 + static_cast<uint32_t>(std::min(draws, 1e9));
  }

 private:
  std::mt19937_64 engine_;
};

// Zipf popularity over n items: item r has weight 1 / (r+1)^exponent.
class Zipf {
 public:
  Zipf(uint32_t n, double exponent) : cdf_(n) {
    double total = 0;
    for (uint32_t r = 0; r < n; ++r) {
      total += Exp(-exponent * Log(r + 1.0));
      cdf_[r] = total;
    }
  }
  uint32_t Draw(Random& random) const {
    const double u = random.Unit() * cdf_.back();
    const auto it = std::upper_bound(cdf_.begin(), cdf_.end(), u);
    return static_cast<uint32_t>(std::min<size_t>(it - cdf_.begin(), cdf_.size() - 1));
  }

 private:
  std::vector<double> cdf_;
};

// Where a run of prompt tokens comes from. Shared sources (a system prompt, a document, an agent
// prompt) are tagged by kind and item; every user message, answer or observation is a fresh
// source, so it is shared only by the later turns of its own session.
constexpr uint64_t kSystemPromptSource = uint64_t{1} << 60;
constexpr uint64_t kDocumentSource = uint64_t{2} << 60;
constexpr uint64_t kAgentSource = uint64_t{3} << 60;
constexpr uint64_t kFreshSource = uint64_t{4} << 60;

struct Segment {
  uint64_t source = 0;
  uint32_t tokens = 0;
};

// A request before ids are given out (ids are numbered in arrival order, as Mooncake's are).
struct Draft {
  double arrival_ms = 0;
  uint32_t output_tokens = 0;
  std::vector<Segment> prompt;
};

uint64_t TokensOf(const std::vector<Segment>& prompt) {
  uint64_t total = 0;
  for (const Segment& s : prompt) total += s.tokens;
  return total;
}

class Generator {
 public:
  explicit Generator(const GenOptions& options)
      : options_(options),
        random_(options.seed),
        system_prompts_(options.system_prompts, options.zipf_exponent),
        documents_(options.documents, options.zipf_exponent),
        agents_(options.agents, options.zipf_exponent) {}

  std::vector<Draft> Run() {
    const double share_total = options_.chat_share + options_.document_share + options_.agent_share;
    const double requests_per_session = (options_.chat_share * options_.mean_turns +
                                         options_.document_share * options_.mean_questions +
                                         options_.agent_share * options_.mean_agent_steps) /
                                        share_total;
    const double mean_session_gap_s = requests_per_session / options_.rate_per_s;

    // Sessions are generated in start order until no later session can place a request among the
    // first `requests` arrivals: the next start is at or past the N-th earliest arrival so far
    // (`latest_kept` holds the N earliest arrivals, largest on top).
    std::priority_queue<double> latest_kept;
    double start_s = 0;
    while (true) {
      const size_t before = drafts_.size();
      // The fallbacks keep a zero-share kind out even when the product rounds up to the total.
      const double kind = random_.Unit() * share_total;
      if (kind < options_.chat_share) {
        Chat(start_s);
      } else if (kind - options_.chat_share < options_.document_share) {
        DocumentQa(start_s);
      } else if (options_.agent_share > 0) {
        Agent(start_s);
      } else if (options_.document_share > 0) {
        DocumentQa(start_s);
      } else {
        Chat(start_s);
      }
      for (size_t i = before; i < drafts_.size(); ++i) {
        latest_kept.push(drafts_[i].arrival_ms);
        if (latest_kept.size() > options_.requests) latest_kept.pop();
      }
      start_s += random_.Exponential(mean_session_gap_s);
      if (latest_kept.size() == options_.requests && Ms(start_s) >= latest_kept.top()) break;
    }
    std::stable_sort(drafts_.begin(), drafts_.end(),
                     [](const Draft& a, const Draft& b) { return a.arrival_ms < b.arrival_ms; });
    drafts_.resize(options_.requests);
    return std::move(drafts_);
  }

 private:
  static double Ms(double seconds) { return std::floor(seconds * 1000 + 0.5); }

  Segment Fresh(uint32_t tokens) { return Segment{kFreshSource + next_fresh_++, tokens}; }

  void Emit(double at_s, const std::vector<Segment>& prompt, uint32_t output_tokens) {
    drafts_.push_back(Draft{Ms(at_s), output_tokens, prompt});
  }

  // A conversation on a shared prefix: each turn's prompt is the previous prompt + its output +
  // a new input, so turn k+1 extends turn k.
  void Conversation(double start_s, Segment prefix, uint32_t turns, TokenRange first_input,
                    TokenRange next_input, TokenRange output, double think_time_s) {
    std::vector<Segment> prompt = {prefix};
    double at_s = start_s;
    uint32_t last_output = 0;
    for (uint32_t turn = 0; turn < turns; ++turn) {
      if (turn > 0) {
        at_s += random_.Exponential(think_time_s);
        prompt.push_back(Fresh(last_output));
      }
      prompt.push_back(Fresh(random_.In(turn == 0 ? first_input : next_input)));
      if (TokensOf(prompt) > options_.max_input_tokens) return;
      last_output = random_.In(output);
      Emit(at_s, prompt, last_output);
    }
  }

  void Chat(double start_s) {
    const Segment system{kSystemPromptSource + system_prompts_.Draw(random_),
                         options_.system_prompt_tokens};
    const uint32_t turns = random_.Geometric(options_.mean_turns);
    Conversation(start_s, system, turns, options_.user_tokens, options_.user_tokens,
                 options_.output_tokens, options_.think_time_s);
  }

  void Agent(double start_s) {
    const Segment tools{kAgentSource + agents_.Draw(random_), options_.agent_prompt_tokens};
    const uint32_t steps = random_.Geometric(options_.mean_agent_steps);
    Conversation(start_s, tools, steps, options_.user_tokens, options_.observation_tokens,
                 options_.agent_output_tokens, options_.agent_think_time_s);
  }

  void DocumentQa(double start_s) {
    const Segment document{kDocumentSource + documents_.Draw(random_), options_.document_tokens};
    const uint32_t questions = random_.Geometric(options_.mean_questions);
    double at_s = start_s;
    for (uint32_t q = 0; q < questions; ++q) {
      if (q > 0) at_s += random_.Exponential(options_.think_time_s);
      const std::vector<Segment> prompt = {document, Fresh(random_.In(options_.user_tokens))};
      Emit(at_s, prompt, random_.In(options_.output_tokens));
    }
  }

  const GenOptions& options_;
  Random random_;
  Zipf system_prompts_;
  Zipf documents_;
  Zipf agents_;
  uint64_t next_fresh_ = 0;
  std::vector<Draft> drafts_;
};

void AppendU64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}

// Gives out prefix-unique ids: a full block's id is looked up by (parent id, the exact pieces of
// sources it holds), so equal prefixes get equal ids and nothing else does; new ids count up.
class IdAssigner {
 public:
  explicit IdAssigner(uint32_t block_tokens) : block_tokens_(block_tokens) {}

  std::vector<uint64_t> IdsOf(const std::vector<Segment>& prompt) {
    const uint64_t tokens = TokensOf(prompt);
    const uint64_t full_blocks = tokens / block_tokens_;
    std::vector<uint64_t> ids;
    ids.reserve(full_blocks + 1);
    size_t segment = 0;
    uint32_t offset = 0;  // into prompt[segment]
    std::string key;
    for (uint64_t b = 0; b < full_blocks; ++b) {
      key.clear();
      AppendU64(key, b == 0 ? std::numeric_limits<uint64_t>::max() : ids.back());
      uint32_t need = block_tokens_;
      while (need > 0) {
        const Segment& s = prompt[segment];
        const uint32_t take = std::min(need, s.tokens - offset);
        if (take > 0) {
          AppendU64(key, s.source);
          AppendU64(key, (uint64_t{offset} << 32) | (offset + take));
        }
        offset += take;
        need -= take;
        if (offset == s.tokens) {
          ++segment;
          offset = 0;
        }
      }
      const auto [it, inserted] = ids_.try_emplace(key, next_id_);
      if (inserted) ++next_id_;
      ids.push_back(it->second);
    }
    if (tokens % block_tokens_ != 0) ids.push_back(next_id_++);  // partial tail: never shared
    return ids;
  }

 private:
  const uint32_t block_tokens_;
  absl::flat_hash_map<std::string, uint64_t> ids_;
  uint64_t next_id_ = 0;
};

absl::Status Bad(std::string_view field, std::string_view what) {
  return absl::InvalidArgumentError(common::Concat("gen options: ", field, " ", what));
}

bool FiniteAtLeast(double v, double min) { return std::isfinite(v) && v >= min; }

absl::Status CheckRange(std::string_view field, TokenRange range, uint32_t min) {
  if (range.min < min) return Bad(field, absl::StrCat("min must be >= ", min));
  if (range.max < range.min) return Bad(field, "max must be >= min");
  return absl::OkStatus();
}

}  // namespace

absl::Status GenOptions::Validate() const {
  if (requests < 1) return Bad("requests", "must be >= 1");
  if (!(std::isfinite(rate_per_s) && rate_per_s > 0)) {
    return Bad("rate_per_s", "must be a finite number > 0");
  }
  if (!FiniteAtLeast(chat_share, 0)) return Bad("chat_share", "must be a finite number >= 0");
  if (!FiniteAtLeast(document_share, 0)) {
    return Bad("document_share", "must be a finite number >= 0");
  }
  if (!FiniteAtLeast(agent_share, 0)) return Bad("agent_share", "must be a finite number >= 0");
  if (chat_share + document_share + agent_share <= 0) {
    return Bad("chat_share", "+ document_share + agent_share must be > 0");
  }
  if (!FiniteAtLeast(zipf_exponent, 0)) {
    return Bad("zipf_exponent", "must be a finite number >= 0");
  }
  // Each pool's popularity table is built up front (8 bytes an item).
  constexpr uint32_t kMaxPool = 1'000'000;
  if (system_prompts < 1 || system_prompts > kMaxPool) {
    return Bad("system_prompts", "must be in [1, 1e6]");
  }
  if (documents < 1 || documents > kMaxPool) return Bad("documents", "must be in [1, 1e6]");
  if (agents < 1 || agents > kMaxPool) return Bad("agents", "must be in [1, 1e6]");
  // Means past a million turns would only run into max_input_tokens.
  if (!FiniteAtLeast(mean_turns, 1) || mean_turns > 1e6) {
    return Bad("mean_turns", "must be in [1, 1e6]");
  }
  if (!FiniteAtLeast(mean_questions, 1) || mean_questions > 1e6) {
    return Bad("mean_questions", "must be in [1, 1e6]");
  }
  if (!FiniteAtLeast(mean_agent_steps, 1) || mean_agent_steps > 1e6) {
    return Bad("mean_agent_steps", "must be in [1, 1e6]");
  }
  // Every prompt ends in a user message (or question, or task), so it is never empty.
  if (absl::Status s = CheckRange("user_tokens", user_tokens, 1); !s.ok()) return s;
  if (absl::Status s = CheckRange("output_tokens", output_tokens, 0); !s.ok()) return s;
  if (absl::Status s = CheckRange("observation_tokens", observation_tokens, 0); !s.ok()) return s;
  if (absl::Status s = CheckRange("agent_output_tokens", agent_output_tokens, 0); !s.ok()) {
    return s;
  }
  if (!FiniteAtLeast(think_time_s, 0)) return Bad("think_time_s", "must be a finite number >= 0");
  if (!FiniteAtLeast(agent_think_time_s, 0)) {
    return Bad("agent_think_time_s", "must be a finite number >= 0");
  }
  if (block_tokens < 1) return Bad("block_tokens", "must be >= 1");
  // Every session's first request must fit, or a session could produce nothing.
  const uint64_t longest_prefix =
      std::max({system_prompt_tokens, document_tokens, agent_prompt_tokens});
  if (longest_prefix + user_tokens.max > max_input_tokens) {
    return Bad("max_input_tokens",
               absl::StrCat("must hold the longest shared prompt (", longest_prefix,
                            " tokens) + user_tokens.max (", user_tokens.max, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<TraceRequest>> GenerateTrace(const GenOptions& options) {
  if (absl::Status valid = options.Validate(); !valid.ok()) return valid;
  std::vector<Draft> drafts = Generator(options).Run();
  IdAssigner assigner(options.block_tokens);
  std::vector<TraceRequest> requests(drafts.size());
  const double first_ms = drafts.front().arrival_ms;
  for (size_t i = 0; i < drafts.size(); ++i) {
    TraceRequest& r = requests[i];
    r.index = static_cast<uint32_t>(i);
    r.line = static_cast<uint32_t>(i + 1);
    r.arrival_ms = drafts[i].arrival_ms - first_ms;
    r.input_tokens = static_cast<uint32_t>(TokensOf(drafts[i].prompt));
    r.output_tokens = drafts[i].output_tokens;
    r.hash_ids = assigner.IdsOf(drafts[i].prompt);
  }
  return requests;
}

GenSummary SummarizeTrace(const std::vector<TraceRequest>& requests, uint32_t block_tokens) {
  GenSummary summary;
  if (requests.empty()) return summary;
  summary.requests = requests.size();
  for (const TraceRequest& r : requests) {
    summary.input_tokens += r.input_tokens;
    summary.output_tokens += r.output_tokens;
  }
  summary.duration_s = (requests.back().arrival_ms - requests.front().arrival_ms) / 1000;
  Trace trace;
  trace.block_tokens = block_tokens;
  trace.requests = requests;
  summary.ideal_hit_ratio = IdealHitRatio(trace);
  return summary;
}

}  // namespace strata::bench
