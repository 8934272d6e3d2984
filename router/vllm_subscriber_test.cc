#include "router/vllm_subscriber.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <msgpack.hpp>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/block_hash.h"
#include "common/namespace_id.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "router/vllm_subscriber.h"
#include "router/vllm_test_payloads.h"

namespace strata::router {
namespace {

using namespace vllm_testing;  // NOLINT: test payload builders

// ---- VllmSubscriber::HandleMessage (no socket) --------------------------------------------

VllmSubscriberOptions TestOptions(std::string endpoint = "tcp://127.0.0.1:1") {
  VllmSubscriberOptions o;
  o.endpoint = std::move(endpoint);
  o.node_id = "engine-a";
  o.namespace_name = kNamespace;
  return o;
}

std::optional<VllmSubscriberUpdate> Handle(VllmSubscriber& s, uint64_t seq,
                                           const std::string& payload) {
  const std::string seq_frame = Be8(seq);
  const std::vector<std::string_view> frames = {"kv-events", seq_frame, payload};
  return s.HandleMessage(frames);
}

TEST(VllmSubscriberTest, HandleMessageDeliversMappedEventsWithTheSequence) {
  VllmSubscriber s(TestOptions());
  const std::vector<uint64_t> tokens = Tokens(0, 2 * kBlock);
  auto u = Handle(s, 41, Batch({Stored({.hashes = {1, 2}, .tokens = tokens})}));
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->node_id, "engine-a");
  EXPECT_EQ(u->sequence, 41u);
  ASSERT_EQ(u->events.size(), 1u);
  EXPECT_EQ(u->events[0].keys, StrataKeys(tokens));
  EXPECT_EQ(s.stats().last_sequence, 41u);
  EXPECT_EQ(s.stats().mapper.blocks_stored, 2u);
}

TEST(VllmSubscriberTest, CountsASequenceGapAndKeepsGoing) {
  VllmSubscriber s(TestOptions());
  const std::string nothing = Batch({});
  ASSERT_TRUE(Handle(s, 5, nothing).has_value());
  ASSERT_TRUE(Handle(s, 6, nothing).has_value());
  EXPECT_EQ(s.stats().sequence_gaps, 0u);
  ASSERT_TRUE(Handle(s, 9, nothing).has_value());
  ASSERT_TRUE(Handle(s, 10, nothing).has_value());
  const VllmSubscriberStats st = s.stats();
  EXPECT_EQ(st.sequence_gaps, 1u);
  EXPECT_EQ(st.batches_lost, 2u);
  EXPECT_EQ(st.messages, 4u);
  EXPECT_EQ(st.last_sequence, 10u);
}

TEST(VllmSubscriberTest, SequenceGoingBackClearsWhatTheEngineHad) {
  VllmSubscriber s(TestOptions());
  const std::vector<uint64_t> tokens = Tokens(0, kBlock);
  ASSERT_TRUE(Handle(s, 7, Batch({Stored({.hashes = {1}, .tokens = tokens})})).has_value());
  auto u = Handle(s, 0, Batch({}));
  ASSERT_TRUE(u.has_value());
  ASSERT_EQ(u->events.size(), 1u);
  EXPECT_THAT(u->events[0], IndexEventIs(VllmIndexEvent::kCleared, Tier::kHbm, StrataKeys(tokens)));
  EXPECT_EQ(s.stats().restarts, 1u);
  EXPECT_EQ(s.stats().sequence_gaps, 0u);
  EXPECT_EQ(s.stats().mapper.live_engine_blocks, 0u);
}

TEST(VllmSubscriberTest, MalformedMessagesAreCountedAndNotFatal) {
  VllmSubscriber s(TestOptions());
  const std::string good = Batch({});
  const std::vector<std::string_view> two_frames = {"t", good};
  EXPECT_FALSE(s.HandleMessage(two_frames).has_value());
  const std::vector<std::string_view> short_seq = {"t", "1234567", good};
  EXPECT_FALSE(s.HandleMessage(short_seq).has_value());
  EXPECT_FALSE(Handle(s, 3, "not msgpack \xc1").has_value());
  // The bad payload at 3 still advanced the sequence: 4 is no gap.
  EXPECT_TRUE(Handle(s, 4, good).has_value());
  const VllmSubscriberStats st = s.stats();
  EXPECT_EQ(st.malformed, 3u);
  EXPECT_EQ(st.sequence_gaps, 0u);
  EXPECT_EQ(st.messages, 4u);
  EXPECT_EQ(st.mapper.batches, 1u);
}

TEST(VllmSubscriberTest, OptionsValidateNamesTheBadField) {
  EXPECT_TRUE(TestOptions().Validate().ok());
  VllmSubscriberOptions o = TestOptions("127.0.0.1:5557");
  EXPECT_THAT(std::string(o.Validate().message()), HasSubstr("endpoint"));
  o = TestOptions();
  o.node_id = "";
  EXPECT_THAT(std::string(o.Validate().message()), HasSubstr("node id"));
  o = TestOptions();
  o.namespace_name = "bad name!";
  EXPECT_THAT(std::string(o.Validate().message()), HasSubstr("namespace"));
  VllmSubscriber s(TestOptions("nope"));
  EXPECT_EQ(s.Start([](const VllmSubscriberUpdate&) {}).code(), absl::StatusCode::kInvalidArgument);
}

// ---- End to end: tests/vllm_publisher.py -> ZMQ -> VllmSubscriber -------------------------

// The publisher script beside this file's folder. __FILE__ may be relative to the build
// directory (ccache's base_dir), so it is tried against the working directory's and the test
// binary's ancestors; STRATA_VLLM_PUBLISHER overrides.
std::filesystem::path PublisherScript() {
  namespace fs = std::filesystem;
  if (const char* env = std::getenv("STRATA_VLLM_PUBLISHER")) return env;
  const fs::path file(__FILE__);
  std::vector<fs::path> bases = {fs::path()};
  std::error_code ec;
  for (fs::path start : {fs::current_path(ec), fs::read_symlink("/proc/self/exe", ec)}) {
    for (fs::path p = start; !p.empty(); p = p.parent_path()) {
      bases.push_back(p);
      if (p == p.root_path()) break;
    }
  }
  for (const fs::path& base : bases) {
    const fs::path source = file.is_absolute() ? file : base / file;
    const fs::path script = source.parent_path().parent_path() / "tests" / "vllm_publisher.py";
    if (fs::exists(script, ec)) return script;
  }
  return {};
}

// What the publisher printed before publishing.
struct PublisherPlan {
  std::string endpoint;
  std::string extra;
  std::string medium;
  uint32_t block_size = 0;
  std::vector<std::pair<size_t, std::vector<uint64_t>>> chains;  // live blocks, token ids
  uint64_t first_sequence = 0, last_sequence = 0;
  uint64_t gap_lost = 0;
};

class PublisherProcess {
 public:
  // Starts the script and reads its plan. Empty endpoint on failure.
  explicit PublisherProcess(const std::string& args) {
    const std::filesystem::path script = PublisherScript();
    if (script.empty()) return;
    // Debian's interpreter carries python3-zmq and python3-msgpack; another python3 may not.
    const std::string python =
        std::filesystem::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
    pipe_ = popen((python + " " + script.string() + " " + args).c_str(), "r");
    if (pipe_ == nullptr) return;
    char line[1 << 16];
    while (fgets(line, sizeof(line), pipe_) != nullptr) {
      std::istringstream in(line);
      std::string key;
      in >> key;
      if (key == "end") break;
      if (key == "endpoint") in >> plan_.endpoint;
      if (key == "extra") in >> plan_.extra;
      if (key == "medium") in >> plan_.medium;
      if (key == "block_size") in >> plan_.block_size;
      if (key == "sequences") in >> plan_.first_sequence >> plan_.last_sequence;
      if (key == "gap") {
        uint64_t expected, got;
        in >> expected >> got >> plan_.gap_lost;
      }
      if (key == "chain") {
        size_t index, live;
        in >> index >> live;
        std::vector<uint64_t> tokens;
        for (uint64_t t; in >> t;) tokens.push_back(t);
        plan_.chains.emplace_back(live, std::move(tokens));
      }
    }
  }
  ~PublisherProcess() {
    if (pipe_ != nullptr) pclose(pipe_);
  }
  // Waits for the script to exit; its exit status (-1 if it did not start).
  int Wait() {
    if (pipe_ == nullptr) return -1;
    const int status = pclose(pipe_);
    pipe_ = nullptr;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  const PublisherPlan& plan() const { return plan_; }

 private:
  FILE* pipe_ = nullptr;
  PublisherPlan plan_;
};

// The index as the router would hold it for one node: (tier, key) pairs.
class IndexModel {
 public:
  void Apply(const VllmSubscriberUpdate& u) {
    absl::MutexLock lock(&mu_);
    for (const VllmIndexEvent& e : u.events) {
      for (IndexKey k : e.keys) {
        if (e.kind == VllmIndexEvent::kStored) {
          held_.insert({e.tier, k});
        } else {
          held_.erase({e.tier, k});
        }
      }
    }
    last_sequence_ = u.sequence;
    ++updates_;
  }
  // Waits (generously; no timing is asserted) until the update with `sequence` arrived.
  bool AwaitSequence(uint64_t sequence) {
    absl::MutexLock lock(&mu_);
    auto seen = [&] { return last_sequence_ == sequence; };
    return mu_.AwaitWithTimeout(absl::Condition(&seen), absl::Seconds(60));
  }
  bool Holds(Tier tier, IndexKey key) {
    absl::MutexLock lock(&mu_);
    return held_.count({tier, key}) > 0;
  }
  size_t size() {
    absl::MutexLock lock(&mu_);
    return held_.size();
  }

 private:
  absl::Mutex mu_;
  std::set<std::pair<Tier, IndexKey>> held_ ABSL_GUARDED_BY(mu_);
  std::optional<uint64_t> last_sequence_ ABSL_GUARDED_BY(mu_);
  uint64_t updates_ ABSL_GUARDED_BY(mu_) = 0;
};

// Runs the publisher with `args`, subscribes, and checks that exactly the live prefix of each of
// its chains ends up indexed, and that the gap it made was counted.
void RunEndToEnd(const std::string& args, Tier tier) {
  PublisherProcess publisher("--bind 'tcp://127.0.0.1:*' --namespace " + std::string(kNamespace) +
                             " " + args);
  const PublisherPlan& plan = publisher.plan();
  ASSERT_FALSE(plan.endpoint.empty())
      << "tests/vllm_publisher.py did not start (script: " << PublisherScript() << ")";
  ASSERT_EQ(plan.block_size, kBlock);

  VllmSubscriberOptions options = TestOptions(plan.endpoint);
  options.topic = "kv-";  // a prefix of the publisher's default topic
  options.block_size = kBlock;
  VllmSubscriber subscriber(options);
  IndexModel index;
  ASSERT_TRUE(subscriber.Start([&index](const VllmSubscriberUpdate& u) { index.Apply(u); }).ok());
  const bool complete = index.AwaitSequence(plan.last_sequence);
  subscriber.Stop();
  EXPECT_EQ(publisher.Wait(), 0);
  ASSERT_TRUE(complete) << "last sequence " << plan.last_sequence << " never arrived";

  const VllmSubscriberStats st = subscriber.stats();
  EXPECT_EQ(st.malformed, 0u);
  EXPECT_EQ(st.sequence_gaps, plan.gap_lost > 0 ? 1u : 0u);
  EXPECT_EQ(st.batches_lost, plan.gap_lost);
  EXPECT_EQ(st.mapper.unresolved_parent_blocks, 0u);
  EXPECT_EQ(st.mapper.unknown_removals, 0u);
  size_t live_keys = 0;
  std::set<IndexKey> distinct;
  for (const auto& [live, tokens] : plan.chains) {
    const std::vector<IndexKey> keys = StrataKeys(tokens, plan.extra);
    for (size_t b = 0; b < keys.size(); ++b) {
      EXPECT_EQ(index.Holds(tier, keys[b]), b < live) << "block " << b << " of a chain";
      if (b < live) distinct.insert(keys[b]);
    }
    live_keys += live;
  }
  EXPECT_GT(live_keys, 0u);  // the run indexed something, so the checks above can fail
  EXPECT_EQ(index.size(), distinct.size());
}

TEST(VllmSubscriberEndToEndTest, IndexesPublishedChainsAndCountsTheGap) {
  RunEndToEnd(
      "--block-size 4 --chains 4 --blocks-per-chain 5 --shared-prefix-blocks 2 "
      "--events-per-chain 2 --remove-chains 1 --gap-after 3 --gap-size 4 --hash-format negint",
      Tier::kHbm);
}

TEST(VllmSubscriberEndToEndTest, MapEncodedBytesHashesWithLoraAndClear) {
  RunEndToEnd(
      "--block-size 4 --chains 4 --blocks-per-chain 3 --shared-prefix-blocks 1 --clear-after 2 "
      "--hash-format bytes --event-format map --lora-id 9 --medium CPU --start-sequence 100",
      Tier::kDram);
}

}  // namespace
}  // namespace strata::router
