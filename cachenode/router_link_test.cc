#include "cachenode/router_link.h"

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cachenode/fake_router.h"
#include "cachenode/memory_tier.h"
#include "cachenode/node.h"
#include "common/checksum.h"
#include "common/fail_point.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace strata::cachenode {
namespace {

using strata::v1::BlockEvent;
using strata::v1::PublishRequest;
using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

constexpr uint64_t kMiB = 1ull << 20;
constexpr common::NamespaceId kNs = 42;
// Generous: these waits end as soon as the condition holds; the bound only stops a broken test.
constexpr absl::Duration kWait = absl::Seconds(30);

// Every block an event names, in the FakeRouter's spelling ("+dram 3").
std::vector<std::string> Describe(const BlockEvent& e) { return DescribeBlocks(e); }

// Waits (kWait at most) until the fake router has received what `pred` wants.
bool WaitFor(FakeRouter& router, const std::function<bool(const Received&)>& pred) {
  return router.WaitUntil(pred, kWait);
}

std::function<bool(const Received&)> Snapshots(int n) {
  return [n](const Received& r) { return r.complete_snapshots() == n; };
}
// The stream as "snapshot S chunk/last" and "batch N" lines, for order checks.
std::vector<std::string> StreamShape(const Received& r) {
  std::vector<std::string> out;
  for (const PublishRequest& p : r.published) {
    if (p.has_batch()) {
      out.push_back(absl::StrCat("batch ", p.batch().sequence()));
    } else {
      out.push_back(absl::StrCat("snapshot ", p.snapshot().sequence(), " chunk ",
                                 p.snapshot().chunk_index(), p.snapshot().last() ? " last" : ""));
    }
  }
  return out;
}

// Blocks announced by the complete snapshot that ends at published[last_index].
std::vector<std::string> SnapshotBlocks(const Received& r, size_t last_index) {
  std::vector<std::string> out;
  size_t first = last_index;
  while (first > 0 && r.published[first].snapshot().chunk_index() != 0) --first;
  for (size_t i = first; i <= last_index; ++i) {
    for (const BlockEvent& e : r.published[i].snapshot().blocks()) {
      EXPECT_EQ(e.kind(), BlockEvent::STORED);
      EXPECT_EQ(e.namespace_id(), kNs);
      for (std::string& d : Describe(e)) out.push_back(std::move(d));
    }
  }
  return out;
}

// Index of the n-th (0-based) complete snapshot's last chunk, or -1.
int NthSnapshotEnd(const Received& r, int n) {
  for (size_t i = 0; i < r.published.size(); ++i) {
    if (r.published[i].has_snapshot() && r.published[i].snapshot().last() && n-- == 0) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

class RouterLinkTest : public ::testing::Test {
 protected:
  RouterLinkTest() {
    char tmpl[] = "/tmp/strata-link-test-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  ~RouterLinkTest() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<TieredStore> OpenStore(uint64_t hbm, uint64_t dram, uint64_t ssd) {
    StoreTiers tiers;
    if (hbm > 0) {
      tiers.hbm =
          std::make_unique<MemoryTier>(MemoryTierOptions{TierKind::kHbm, "hbm(emulated)", true},
                                       std::move(*CreateHostMemory({hbm, false, false, "hbm"})));
    }
    if (dram > 0) {
      tiers.dram = std::make_unique<MemoryTier>(
          MemoryTierOptions{}, std::move(*CreateHostMemory({dram, false, false, "dram"})));
    }
    if (ssd > 0) {
      SsdTierOptions o;
      o.path = dir_ + "/ssd";
      o.capacity_bytes = ssd;
      tiers.ssd = std::move(*SsdTier::Open(o));
    }
    auto store = TieredStore::Open(TieredStoreOptions{}, std::move(tiers));
    EXPECT_TRUE(store.ok()) << store.status();
    return std::move(*store);
  }

  static void Put(TieredStore& store, int id, bool from_gpu = false) {
    std::string payload(kMiB, static_cast<char>(id));
    BlockInfo info{
        {kNs, {}}, payload.size(), common::Checksum(std::as_bytes(std::span(payload))), 0};
    info.key.hash.bytes[0] = static_cast<uint8_t>(id);
    ASSERT_TRUE(store.Put(info, std::as_bytes(std::span(payload)), from_gpu).ok());
  }

  static RouterLinkOptions Options(const std::string& router) {
    RouterLinkOptions o;
    o.router = router;
    o.node_id = "node-a";
    o.advertise = "10.0.0.1:7070";
    o.epoch = 42;
    o.heartbeat_interval = absl::Milliseconds(20);
    o.batch_interval = absl::Milliseconds(5);
    o.retry_initial = absl::Milliseconds(10);
    o.retry_max = absl::Milliseconds(40);
    return o;
  }

  static std::unique_ptr<RouterLink> MakeLink(const RouterLinkOptions& o, TieredStore* store,
                                              common::Clock* clock = common::Clock::Real(),
                                              const EngineLoadTable* engines = nullptr) {
    auto link = RouterLink::Create(
        o, store, [] { return 7u; }, engines, clock);
    EXPECT_TRUE(link.ok()) << link.status();
    return std::move(*link);
  }

  std::string dir_;
};

TEST_F(RouterLinkTest, RegistersThenSendsASnapshotThenBatchesWithConsecutiveSequences) {
  FakeRouterServer fake;
  ASSERT_TRUE(fake.ok());
  auto store = OpenStore(0, 16 * kMiB, 0);
  Put(*store, 1);
  Put(*store, 2);
  auto link = MakeLink(Options(fake.address()), store.get());
  link->Start();
  FakeRouter& router = fake.router();
  ASSERT_TRUE(WaitFor(router, Snapshots(1)));
  for (int id = 3; id <= 5; ++id) Put(*store, id);
  ASSERT_TRUE(WaitFor(router, [](const Received& r) { return r.batch_events().size() == 3; }));
  ASSERT_TRUE(WaitFor(router, [](const Received& r) { return !r.heartbeats.empty(); }));
  const Received r = router.received();

  ASSERT_EQ(r.registrations.size(), 1u);
  EXPECT_EQ(r.registrations[0].node_id(), "node-a");
  EXPECT_EQ(r.registrations[0].endpoint(), "10.0.0.1:7070");
  EXPECT_EQ(r.registrations[0].epoch(), 42u);
  EXPECT_EQ(r.heartbeats[0].epoch(), 42u);
  // The stream opens with the snapshot (sequence 0: nothing sent before it), then batches 1, 2...
  ASSERT_TRUE(r.published[0].has_snapshot());
  EXPECT_EQ(r.published[0].snapshot().sequence(), 0u);
  EXPECT_EQ(r.published[0].snapshot().node_id(), "node-a");
  EXPECT_EQ(r.published[0].snapshot().epoch(), 42u);
  EXPECT_THAT(SnapshotBlocks(r, 0), UnorderedElementsAre("+dram 1", "+dram 2"));
  for (size_t i = 1; i < r.published.size(); ++i) {
    ASSERT_TRUE(r.published[i].has_batch()) << i;
    EXPECT_EQ(r.published[i].batch().sequence(), i) << "batches must be consecutive";
    EXPECT_EQ(r.published[i].batch().epoch(), 42u);
  }
  EXPECT_THAT(r.batch_events(), ElementsAre("+dram 3", "+dram 4", "+dram 5"));
}

TEST_F(RouterLinkTest, SnapshotCoversEventsUpToItsSequenceAndBatchesContinueAfterIt) {
  FakeRouterServer fake;
  auto store = OpenStore(0, 16 * kMiB, 0);
  RouterLinkOptions o = Options(fake.address());
  o.max_buffered_events = 3;  // the fourth pending event overflows: a snapshot replaces them
  auto link = MakeLink(o, store.get());
  EXPECT_TRUE(link->SessionStep());  // registers, opens the stream, sends the snapshot
  Put(*store, 1);
  EXPECT_TRUE(link->SessionStep());  // batch 1
  for (int id = 2; id <= 5; ++id) Put(*store, id);
  EXPECT_TRUE(link->SessionStep());  // overflowed: snapshot covering batch 1 and blocks 2-5
  Put(*store, 6);
  EXPECT_TRUE(link->SessionStep());   // batch 2: only what came after the snapshot
  EXPECT_FALSE(link->SessionStep());  // nothing left
  FakeRouter& router = fake.router();
  ASSERT_TRUE(WaitFor(router, [](const Received& r) { return r.published.size() == 4; }));
  const Received r = router.received();
  EXPECT_THAT(StreamShape(r), ElementsAre("snapshot 0 chunk 0 last", "batch 1",
                                          "snapshot 1 chunk 0 last", "batch 2"));
  EXPECT_THAT(SnapshotBlocks(r, 2),
              UnorderedElementsAre("+dram 1", "+dram 2", "+dram 3", "+dram 4", "+dram 5"));
  EXPECT_THAT(r.batch_events(), ElementsAre("+dram 1", "+dram 6"));
  EXPECT_EQ(link->Stats().events_dropped, 4u);
}

TEST_F(RouterLinkTest, SplitsASnapshotIntoChunksOfTheSameSequence) {
  FakeRouterServer fake;
  auto store = OpenStore(4 * kMiB, 16 * kMiB, 0);
  Put(*store, 1, /*from_gpu=*/true);
  for (int id = 2; id <= 5; ++id) Put(*store, id);
  RouterLinkOptions o = Options(fake.address());
  o.snapshot_chunk_hashes = 2;
  auto link = MakeLink(o, store.get());
  EXPECT_TRUE(link->SessionStep());
  FakeRouter& router = fake.router();
  ASSERT_TRUE(WaitFor(router, Snapshots(1)));
  const Received r = router.received();
  EXPECT_THAT(StreamShape(r),
              ElementsAre("snapshot 0 chunk 0", "snapshot 0 chunk 1", "snapshot 0 chunk 2 last"));
  for (const PublishRequest& p : r.published) {
    size_t hashes = 0;
    for (const BlockEvent& e : p.snapshot().blocks()) hashes += e.chain_hashes().size() / 32;
    EXPECT_LE(hashes, 2u);
  }
  EXPECT_THAT(SnapshotBlocks(r, 2),
              UnorderedElementsAre("+hbm 1", "+dram 2", "+dram 3", "+dram 4", "+dram 5"));
}

TEST_F(RouterLinkTest, ResendsASnapshotWhenTheRouterAsksForOne) {
  FakeRouterServer fake;
  FakeRouter& router = fake.router();
  auto store = OpenStore(0, 16 * kMiB, 0);
  auto link = MakeLink(Options(fake.address()), store.get());
  link->Start();
  ASSERT_TRUE(WaitFor(router, Snapshots(1)));
  router.RequireSnapshotOnNextBatch();
  Put(*store, 1);
  ASSERT_TRUE(WaitFor(router, Snapshots(2)));
  Put(*store, 2);
  ASSERT_TRUE(WaitFor(router, [](const Received& r) {
    const int end = NthSnapshotEnd(r, 1);
    return end >= 0 && static_cast<size_t>(end) + 1 < r.published.size();
  }));
  const Received r = router.received();
  const int end = NthSnapshotEnd(r, 1);
  const uint64_t s = r.published[end].snapshot().sequence();
  EXPECT_GE(s, 1u);  // covers the batch the router refused
  EXPECT_THAT(SnapshotBlocks(r, end), ElementsAre("+dram 1"));
  ASSERT_TRUE(r.published[end + 1].has_batch());
  EXPECT_EQ(r.published[end + 1].batch().sequence(), s + 1);
  EXPECT_THAT(Describe(r.published[end + 1].batch().events(0)), ElementsAre("+dram 2"));
}

TEST_F(RouterLinkTest, RegistersAgainAndResnapshotsWhenAHeartbeatIsNotFound) {
  FakeRouterServer fake;
  FakeRouter& router = fake.router();
  auto store = OpenStore(0, 16 * kMiB, 0);
  Put(*store, 1);
  auto link = MakeLink(Options(fake.address()), store.get());
  link->Start();
  ASSERT_TRUE(WaitFor(router, Snapshots(1)));
  router.Forget();
  ASSERT_TRUE(WaitFor(router, [](const Received& r) {
    return r.registrations.size() == 2 && r.complete_snapshots() == 2;
  }));
  const Received r = router.received();
  EXPECT_EQ(r.registrations[1].epoch(), 42u);  // the same life: same epoch
  EXPECT_THAT(SnapshotBlocks(r, NthSnapshotEnd(r, 1)), ElementsAre("+dram 1"));
  EXPECT_GE(link->Stats().streams_opened, 2u);
}

TEST_F(RouterLinkTest, ReconnectsAndResnapshotsAfterTheRouterRestarts) {
  auto first = std::make_unique<FakeRouterServer>();
  const int port = first->port();
  auto store = OpenStore(0, 16 * kMiB, 0);
  Put(*store, 1);
  auto link = MakeLink(Options(first->address()), store.get());
  link->Start();
  ASSERT_TRUE(WaitFor(first->router(), Snapshots(1)));
  first.reset();  // the router goes away, stream and all
  Put(*store, 2);
  FakeRouterServer second(port);
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(WaitFor(second.router(), Snapshots(1)));
  const Received r = second.router().received();
  ASSERT_EQ(r.registrations.size(), 1u);
  EXPECT_EQ(r.registrations[0].epoch(), 42u);
  EXPECT_THAT(SnapshotBlocks(r, NthSnapshotEnd(r, 0)), UnorderedElementsAre("+dram 1", "+dram 2"));
}

TEST_F(RouterLinkTest, BacksOffBetweenRegistrationAttemptsWhileTheRouterIsUnreachable) {
  int port;
  {
    FakeRouterServer reserve;  // a port with nothing listening once this is gone
    port = reserve.port();
  }
  common::ManualClock clock(absl::FromUnixSeconds(1000));
  auto store = OpenStore(0, 16 * kMiB, 0);
  auto link = MakeLink(Options(absl::StrCat("127.0.0.1:", port)), store.get(), &clock);
  EXPECT_FALSE(link->SessionStep());
  EXPECT_EQ(link->Stats().register_failures, 1u);
  EXPECT_FALSE(link->SessionStep());  // within the 10 ms backoff: no attempt
  EXPECT_EQ(link->Stats().register_failures, 1u);
  clock.Advance(absl::Milliseconds(10));
  EXPECT_FALSE(link->SessionStep());
  EXPECT_EQ(link->Stats().register_failures, 2u);
  clock.Advance(absl::Milliseconds(10));  // the backoff doubled to 20 ms
  EXPECT_FALSE(link->SessionStep());
  EXPECT_EQ(link->Stats().register_failures, 2u);
  clock.Advance(absl::Milliseconds(10));
  EXPECT_FALSE(link->SessionStep());
  EXPECT_EQ(link->Stats().register_failures, 3u);
  EXPECT_FALSE(link->Stats().registered);
}

TEST_F(RouterLinkTest, BacksOffWhenTheRouterTakesTheRegistrationButRefusesTheStream) {
  FakeRouterServer fake;
  fake.router().RefuseStreams();
  common::ManualClock clock(absl::FromUnixSeconds(1000));
  auto store = OpenStore(0, 16 * kMiB, 0);
  auto link = MakeLink(Options(fake.address()), store.get(), &clock);
  link->SessionStep();                // registers, opens the stream, writes (or fails to)
  EXPECT_FALSE(link->ReplyStep());    // the router ended the stream
  EXPECT_FALSE(link->SessionStep());  // tears it down; registering again waits for the backoff
  EXPECT_EQ(link->Stats().registrations, 1u);
  EXPECT_FALSE(link->Stats().registered);
  clock.Advance(absl::Milliseconds(10));
  link->SessionStep();
  EXPECT_EQ(link->Stats().registrations, 2u);
  EXPECT_EQ(fake.router().received().registrations.size(), 2u);
}

TEST_F(RouterLinkTest, RegistersOnceTheRouterComesUp) {
  int port;
  {
    FakeRouterServer reserve;
    port = reserve.port();
  }
  auto store = OpenStore(0, 16 * kMiB, 0);
  Put(*store, 1);
  auto link = MakeLink(Options(absl::StrCat("127.0.0.1:", port)), store.get());
  EXPECT_FALSE(link->SessionStep());  // nobody there yet
  link->Start();
  FakeRouterServer fake(port);
  ASSERT_TRUE(fake.ok());
  ASSERT_TRUE(WaitFor(fake.router(), Snapshots(1)));
  EXPECT_GE(link->Stats().register_failures, 1u);
  EXPECT_THAT(SnapshotBlocks(fake.router().received(), 0), ElementsAre("+dram 1"));
}

TEST_F(RouterLinkTest, HeartbeatCarriesRunningRequestsAndFreeHbmBlocks) {
  FakeRouterServer fake;
  auto store = OpenStore(8 * kMiB, 16 * kMiB, 0);
  Put(*store, 1, /*from_gpu=*/true);  // 1 MiB of 8 in HBM: room for 7 more such blocks
  auto link = MakeLink(Options(fake.address()), store.get());
  EXPECT_FALSE(link->HeartbeatStep());  // not registered yet: nothing sent
  EXPECT_TRUE(link->SessionStep());
  EXPECT_FALSE(link->HeartbeatStep());
  const Received r = fake.router().received();  // unary: done when HeartbeatStep returns
  ASSERT_EQ(r.heartbeats.size(), 1u);
  const strata::v1::HeartbeatRequest& h = r.heartbeats[0];
  EXPECT_EQ(h.node_id(), "node-a");
  EXPECT_EQ(h.epoch(), 42u);
  EXPECT_EQ(h.load().running_requests(), 7u);
  EXPECT_EQ(h.load().free_hbm_blocks(), 7u);
  EXPECT_EQ(h.load().queued_requests(), 0u);
  EXPECT_FALSE(h.load().draining());
  EXPECT_EQ(link->Stats().heartbeats_sent, 1u);
}

TEST_F(RouterLinkTest, HeartbeatCarriesTheNodesLoadMergedWithFreshEngineReports) {
  FakeRouterServer fake;
  auto store = OpenStore(8 * kMiB, 16 * kMiB, 0);
  Put(*store, 1, /*from_gpu=*/true);  // the node's own figure: 7 free HBM blocks
  common::ManualClock engine_clock;
  EngineLoadOptions eo;
  eo.ttl = absl::Seconds(3);
  EngineLoadTable engines(eo, &engine_clock);
  auto link = MakeLink(Options(fake.address()), store.get(), common::Clock::Real(), &engines);
  EXPECT_TRUE(link->SessionStep());
  auto load_of_next_heartbeat = [&] {
    EXPECT_FALSE(link->HeartbeatStep());
    const Received r = fake.router().received();  // unary: done when HeartbeatStep returns
    return r.heartbeats.empty() ? strata::v1::NodeLoad() : r.heartbeats.back().load();
  };

  LoadFigures gpu0;
  gpu0.queued_requests = 3;
  gpu0.running_requests = 8;
  gpu0.prefill_tokens_in_flight = 4096;
  gpu0.free_hbm_blocks = 100;
  ASSERT_TRUE(engines.Report("gpu0", gpu0).ok());
  engine_clock.Advance(absl::Seconds(2));
  LoadFigures gpu1 = gpu0;
  gpu1.free_hbm_blocks = 20;
  ASSERT_TRUE(engines.Report("gpu1", gpu1).ok());
  strata::v1::NodeLoad load = load_of_next_heartbeat();
  EXPECT_EQ(load.queued_requests(), 6u);
  EXPECT_EQ(load.running_requests(), 7u + 16u);  // the node's RPCs plus the engines' requests
  EXPECT_EQ(load.prefill_tokens_in_flight(), 8192u);
  EXPECT_EQ(load.free_hbm_blocks(), 120u);  // the engines' HBM replaces the node's estimate
  EXPECT_FALSE(load.draining());

  engine_clock.Advance(absl::Seconds(2));  // gpu0's report is 4 s old: past the TTL
  load = load_of_next_heartbeat();
  EXPECT_EQ(load.queued_requests(), 3u);
  EXPECT_EQ(load.running_requests(), 7u + 8u);
  EXPECT_EQ(load.free_hbm_blocks(), 20u);

  engine_clock.Advance(absl::Seconds(2));  // every report stale: the node's own figures again
  load = load_of_next_heartbeat();
  EXPECT_EQ(load.queued_requests(), 0u);
  EXPECT_EQ(load.prefill_tokens_in_flight(), 0u);
  EXPECT_EQ(load.running_requests(), 7u);
  EXPECT_EQ(load.free_hbm_blocks(), 7u);
  EXPECT_EQ(link->Stats().heartbeats_sent, 3u);
}

TEST_F(RouterLinkTest, SendsADrainingHeartbeatOnShutdown) {
  FakeRouterServer fake;
  auto store = OpenStore(0, 16 * kMiB, 0);
  auto link = MakeLink(Options(fake.address()), store.get());
  link->Start();
  ASSERT_TRUE(WaitFor(fake.router(), Snapshots(1)));
  link->Shutdown();  // returns although the stream is open: it is cancelled
  const Received r = fake.router().received();
  ASSERT_FALSE(r.heartbeats.empty());
  EXPECT_TRUE(r.heartbeats.back().load().draining());
  const size_t heartbeats = r.heartbeats.size();
  Put(*store, 1);  // events after Stop go nowhere, and nothing is sent any more
  EXPECT_FALSE(link->SessionStep());
  EXPECT_FALSE(link->HeartbeatStep());
  EXPECT_EQ(fake.router().received().heartbeats.size(), heartbeats);
}

TEST_F(RouterLinkTest, StopsPromptlyWhileTheRouterIsUnreachable) {
  int port;
  {
    FakeRouterServer reserve;
    port = reserve.port();
  }
  auto store = OpenStore(0, 16 * kMiB, 0);
  auto link = MakeLink(Options(absl::StrCat("127.0.0.1:", port)), store.get());
  link->Start();
  link->Shutdown();  // not registered: no draining heartbeat to send, nothing to wait for
  EXPECT_FALSE(link->Stats().registered);
}

TEST_F(RouterLinkTest, FirstSnapshotAfterARestartAnnouncesSsdBlocksUnderTheNewEpoch) {
  FakeRouterServer fake;
  {
    auto store = OpenStore(0, 16 * kMiB, 64 * kMiB);
    for (int id = 1; id <= 3; ++id) Put(*store, id);
    ASSERT_TRUE(store->Drain().ok());
  }
  auto store = OpenStore(0, 16 * kMiB, 64 * kMiB);  // the new process: index rebuilt from SSD
  RouterLinkOptions o = Options(fake.address());
  o.epoch = 43;
  auto link = MakeLink(o, store.get());
  EXPECT_TRUE(link->SessionStep());
  ASSERT_TRUE(WaitFor(fake.router(), Snapshots(1)));
  const Received r = fake.router().received();
  EXPECT_EQ(r.registrations[0].epoch(), 43u);
  EXPECT_EQ(r.published[0].snapshot().epoch(), 43u);
  EXPECT_THAT(SnapshotBlocks(r, 0), UnorderedElementsAre("+ssd 1", "+ssd 2", "+ssd 3"));
}

TEST_F(RouterLinkTest, NodeWithoutARouterRunsNoLink) {
  NodeOptions o;
  o.listen = "127.0.0.1:0";
  o.data_dir = dir_;
  o.dram_bytes = 8 * kMiB;
  auto node = Node::Create(o);
  ASSERT_TRUE(node.ok()) << node.status();
  ASSERT_TRUE((*node)->Serve().ok());
  EXPECT_EQ((*node)->router_link(), nullptr);
  EXPECT_TRUE((*node)->Shutdown(absl::Seconds(1)).ok());
}

TEST_F(RouterLinkTest, NodeDefaultsTheEngineLoadTtlToThreeHeartbeatIntervals) {
  NodeOptions o;
  o.listen = "127.0.0.1:0";
  o.data_dir = dir_;
  o.dram_bytes = 8 * kMiB;
  o.router = Options("127.0.0.1:1");
  o.router.heartbeat_interval = absl::Milliseconds(100);
  auto node = Node::Create(o);
  ASSERT_TRUE(node.ok()) << node.status();
  ASSERT_NE((*node)->engine_loads(), nullptr);
  EXPECT_EQ((*node)->engine_loads()->options().ttl, absl::Milliseconds(300));
  o.engines.ttl = -absl::Seconds(1);
  EXPECT_EQ(o.Validate().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(RouterLinkTest, NodeOnAWildcardAddressNeedsAnAdvertisedEndpoint) {
  NodeOptions o;
  o.listen = "0.0.0.0:0";
  o.data_dir = dir_;
  o.router = Options("127.0.0.1:1");
  o.router.advertise.clear();
  EXPECT_EQ(o.Validate().code(), absl::StatusCode::kInvalidArgument);
  o.router.advertise = "node-a.example:7070";
  EXPECT_TRUE(o.Validate().ok());
}

TEST_F(RouterLinkTest, NodeAdvertisesItsBoundAddressAndDrainsOnShutdown) {
  FakeRouterServer fake;
  NodeOptions o;
  o.listen = "127.0.0.1:0";
  o.data_dir = dir_;
  o.dram_bytes = 8 * kMiB;
  o.router = Options(fake.address());
  o.router.advertise.clear();
  auto node = Node::Create(o);
  ASSERT_TRUE(node.ok()) << node.status();
  ASSERT_TRUE((*node)->Serve().ok());
  ASSERT_NE((*node)->router_link(), nullptr);
  FakeRouter& router = fake.router();
  ASSERT_TRUE(WaitFor(router, Snapshots(1)));
  Put(*(*node)->store(), 9);
  ASSERT_TRUE(WaitFor(router, [](const Received& r) { return !r.batch_events().empty(); }));
  EXPECT_TRUE((*node)->Shutdown(absl::Seconds(1)).ok());
  const Received r = router.received();
  EXPECT_EQ(r.registrations[0].endpoint(), (*node)->address());
  EXPECT_THAT(r.batch_events(), ElementsAre("+dram 9"));
  ASSERT_FALSE(r.heartbeats.empty());
  EXPECT_TRUE(r.heartbeats.back().load().draining());
}

TEST_F(RouterLinkTest, LinksSharingAFanoutEachGetEveryEventWithTheirOwnSequences) {
  FakeRouterServer fake_a, fake_b;
  auto store = OpenStore(0, 16 * kMiB, 0);
  Put(*store, 1);
  BlockEventFanout fanout;
  store->SetEventSink(&fanout);
  auto a = RouterLink::Create(Options(fake_a.address()), store.get(), nullptr, nullptr,
                              common::Clock::Real(), &fanout);
  auto b = RouterLink::Create(Options(fake_b.address()), store.get(), nullptr, nullptr,
                              common::Clock::Real(), &fanout);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE((*a)->SessionStep());  // a: snapshot
  Put(*store, 2);
  EXPECT_TRUE((*a)->SessionStep());  // a: batch 1 (block 2)
  EXPECT_TRUE((*b)->SessionStep());  // b: snapshot (blocks 1, 2); its buffer's copy of 2 is cut
  Put(*store, 3);
  EXPECT_TRUE((*a)->SessionStep());  // a: batch 2
  EXPECT_TRUE((*b)->SessionStep());  // b: batch 1
  EXPECT_FALSE((*a)->SessionStep());
  EXPECT_FALSE((*b)->SessionStep());
  ASSERT_TRUE(WaitFor(fake_a.router(), [](const Received& r) { return r.published.size() == 3; }));
  ASSERT_TRUE(WaitFor(fake_b.router(), [](const Received& r) { return r.published.size() == 2; }));
  const Received ra = fake_a.router().received(), rb = fake_b.router().received();
  EXPECT_THAT(StreamShape(ra), ElementsAre("snapshot 0 chunk 0 last", "batch 1", "batch 2"));
  EXPECT_THAT(ra.batch_events(), ElementsAre("+dram 2", "+dram 3"));
  EXPECT_THAT(StreamShape(rb), ElementsAre("snapshot 0 chunk 0 last", "batch 1"));
  EXPECT_THAT(SnapshotBlocks(rb, 0), UnorderedElementsAre("+dram 1", "+dram 2"));
  EXPECT_THAT(rb.batch_events(), ElementsAre("+dram 3"));
  // A link leaving the fanout leaves the other one fed.
  b->reset();
  Put(*store, 4);
  EXPECT_TRUE((*a)->SessionStep());
  ASSERT_TRUE(WaitFor(fake_a.router(), [](const Received& r) { return r.published.size() == 4; }));
  EXPECT_THAT(fake_a.router().received().batch_events(),
              ElementsAre("+dram 2", "+dram 3", "+dram 4"));
  a->reset();
  store->SetEventSink(nullptr);
}

TEST_F(RouterLinkTest, DroppedBatchSpendsItsSequenceSoTheRouterSeesAGap) {
  if (!common::kFailPointsCompiled) GTEST_SKIP() << "needs -DSTRATA_FAIL_POINTS=ON";
  FakeRouterServer fake;
  auto store = OpenStore(0, 16 * kMiB, 0);
  auto link = MakeLink(Options(fake.address()), store.get());
  EXPECT_TRUE(link->SessionStep());  // snapshot
  ASSERT_TRUE(
      common::FailPoints::Global().ArmFromString("router_link.drop_batch=error,times=1").ok());
  Put(*store, 1);
  EXPECT_TRUE(link->SessionStep());  // batch 1: dropped in transit
  common::FailPoints::Global().Disarm("router_link.drop_batch");
  Put(*store, 2);
  EXPECT_TRUE(link->SessionStep());  // batch 2
  ASSERT_TRUE(WaitFor(fake.router(), [](const Received& r) { return r.published.size() == 2; }));
  EXPECT_THAT(StreamShape(fake.router().received()),
              ElementsAre("snapshot 0 chunk 0 last", "batch 2"));
  EXPECT_EQ(link->Stats().batches_dropped, 1u);
  EXPECT_EQ(link->Stats().batches_sent, 1u);
}

TEST_F(RouterLinkTest, NodeRegistersWithEveryRouterReplicaUnderOneEpoch) {
  FakeRouterServer fake_a, fake_b;
  NodeOptions o;
  o.listen = "127.0.0.1:0";
  o.data_dir = dir_;
  o.dram_bytes = 8 * kMiB;
  o.router = Options(absl::StrCat(fake_a.address(), ",", fake_b.address()));
  o.router.epoch = 0;  // the node picks one, the same for both
  auto node = Node::Create(o);
  ASSERT_TRUE(node.ok()) << node.status();
  ASSERT_TRUE((*node)->Serve().ok());
  ASSERT_EQ((*node)->router_links().size(), 2u);
  ASSERT_TRUE(WaitFor(fake_a.router(), Snapshots(1)));
  ASSERT_TRUE(WaitFor(fake_b.router(), Snapshots(1)));
  Put(*(*node)->store(), 9);
  for (FakeRouterServer* f : {&fake_a, &fake_b}) {
    ASSERT_TRUE(WaitFor(f->router(), [](const Received& r) { return !r.batch_events().empty(); }));
  }
  EXPECT_TRUE((*node)->Shutdown(absl::Seconds(1)).ok());
  const Received ra = fake_a.router().received(), rb = fake_b.router().received();
  EXPECT_EQ(ra.registrations[0].epoch(), rb.registrations[0].epoch());
  EXPECT_NE(ra.registrations[0].epoch(), 0u);
  EXPECT_THAT(ra.batch_events(), ElementsAre("+dram 9"));
  EXPECT_THAT(rb.batch_events(), ElementsAre("+dram 9"));
  ASSERT_FALSE(rb.heartbeats.empty());
  EXPECT_TRUE(rb.heartbeats.back().load().draining());
}

TEST_F(RouterLinkTest, NodeRefusesARouterListWithABadOrRepeatedReplica) {
  NodeOptions o;
  o.listen = "127.0.0.1:0";
  o.data_dir = dir_;
  o.router = Options("127.0.0.1:1,127.0.0.1:1");
  EXPECT_TRUE(absl::IsInvalidArgument(o.Validate()));
  o.router = Options("127.0.0.1:1,nohostport");
  EXPECT_TRUE(absl::IsInvalidArgument(o.Validate()));
  o.router = Options("127.0.0.1:1, 127.0.0.1:2");
  EXPECT_TRUE(o.Validate().ok());
}

}  // namespace
}  // namespace strata::cachenode
