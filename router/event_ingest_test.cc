#include "router/event_ingest.h"

#include <gtest/gtest.h>

#include <vector>

namespace strata::router {
namespace {

using Result = IngestReply::Result;

IngestEvent Stored(Tier tier, std::vector<IndexKey> keys) {
  return IngestEvent{IngestEvent::Kind::kStored, tier, std::move(keys)};
}
IngestEvent Removed(Tier tier, std::vector<IndexKey> keys) {
  return IngestEvent{IngestEvent::Kind::kRemoved, tier, std::move(keys)};
}
IngestEvent Cleared() { return IngestEvent{IngestEvent::Kind::kCleared, Tier::kHbm, {}}; }

class EventIngestTest : public ::testing::Test {
 protected:
  // Registers `node` at `epoch` and completes an empty snapshot covering `sequence`.
  void Sync(NodeSlot node, uint64_t epoch, uint64_t sequence = 0) {
    ingest_.ResetNode(node, epoch);
    ASSERT_EQ(ingest_.ApplySnapshotChunk(node, epoch, sequence, 0, true, {}).result,
              Result::kApplied);
    ASSERT_TRUE(ingest_.Synced(node));
  }
  IngestReply Batch(NodeSlot node, uint64_t epoch, uint64_t sequence,
                    std::vector<IngestEvent> events) {
    return ingest_.ApplyBatch(node, epoch, sequence, events);
  }
  IngestReply Chunk(NodeSlot node, uint64_t epoch, uint64_t sequence, uint32_t index, bool last,
                    std::vector<IngestEvent> blocks) {
    return ingest_.ApplySnapshotChunk(node, epoch, sequence, index, last, blocks);
  }

  GlobalIndex index_;
  EventIngest ingest_{&index_};
};

TEST_F(EventIngestTest, AppliesConsecutiveBatchesInOrder) {
  Sync(1, 5);
  EXPECT_EQ(Batch(1, 5, 1, {Stored(Tier::kHbm, {10, 11, 12})}).result, Result::kApplied);
  EXPECT_EQ(Batch(1, 5, 2, {Removed(Tier::kHbm, {11}), Stored(Tier::kSsd, {13})}).result,
            Result::kApplied);
  EXPECT_EQ(index_.Get(10, 1), TierBit(Tier::kHbm));
  EXPECT_EQ(index_.Get(11, 1), 0);
  EXPECT_EQ(index_.Get(13, 1), TierBit(Tier::kSsd));
  const IngestCounters c = ingest_.Counters();
  EXPECT_EQ(c.batches_applied, 2u);
  EXPECT_EQ(c.events_applied, 5u);
  EXPECT_EQ(c.snapshots_applied, 1u);
}

TEST_F(EventIngestTest, FirstBatchFollowsTheSnapshotSequence) {
  Sync(1, 5, /*sequence=*/41);
  EXPECT_EQ(Batch(1, 5, 42, {Stored(Tier::kHbm, {1})}).result, Result::kApplied);
}

TEST_F(EventIngestTest, BatchesBeforeTheSnapshotNeedOne) {
  ingest_.ResetNode(1, 5);
  EXPECT_FALSE(ingest_.Synced(1));
  EXPECT_EQ(Batch(1, 5, 1, {Stored(Tier::kHbm, {1})}).result, Result::kSnapshotRequired);
  EXPECT_EQ(index_.NodeEntries(1), 0u);
}

TEST_F(EventIngestTest, GapRequiresSnapshotAndAppliesNothingUntilItComes) {
  Sync(1, 5);
  ASSERT_EQ(Batch(1, 5, 1, {Stored(Tier::kHbm, {1})}).result, Result::kApplied);
  const IngestReply gap = Batch(1, 5, 3, {Stored(Tier::kHbm, {3})});
  EXPECT_EQ(gap.result, Result::kSnapshotRequired);
  EXPECT_NE(gap.message.find("expected 2"), std::string::npos) << gap.message;
  EXPECT_FALSE(ingest_.Synced(1));
  EXPECT_EQ(index_.Get(3, 1), 0);
  // Even the batch that would have filled the gap now waits for the snapshot.
  EXPECT_EQ(Batch(1, 5, 2, {Stored(Tier::kHbm, {2})}).result, Result::kSnapshotRequired);
  EXPECT_EQ(index_.Get(2, 1), 0);
  EXPECT_EQ(ingest_.Counters().gaps_detected, 1u);

  // The snapshot covers up to 7 and replaces the stale entries; batches resume at 8.
  ASSERT_EQ(Chunk(1, 5, 7, 0, true, {Stored(Tier::kDram, {2, 3})}).result, Result::kApplied);
  EXPECT_TRUE(ingest_.Synced(1));
  EXPECT_EQ(index_.Get(1, 1), 0);
  EXPECT_EQ(index_.Get(3, 1), TierBit(Tier::kDram));
  EXPECT_EQ(Batch(1, 5, 8, {Stored(Tier::kHbm, {4})}).result, Result::kApplied);
}

TEST_F(EventIngestTest, SequenceGoingBackwardsIsRejectedAndChangesNothing) {
  Sync(1, 5);
  ASSERT_EQ(Batch(1, 5, 1, {Stored(Tier::kHbm, {1})}).result, Result::kApplied);
  ASSERT_EQ(Batch(1, 5, 2, {Stored(Tier::kHbm, {2})}).result, Result::kApplied);
  const IngestReply back = Batch(1, 5, 1, {Removed(Tier::kHbm, {1, 2})});
  EXPECT_EQ(back.result, Result::kRejected);
  EXPECT_EQ(back.message, "sequence went backwards: got 1, expected 3");
  EXPECT_EQ(index_.NodeEntries(1), 2u);
  EXPECT_TRUE(ingest_.Synced(1));
  EXPECT_EQ(Batch(1, 5, 3, {}).result, Result::kApplied);
  EXPECT_EQ(ingest_.Counters().rejected_batches, 1u);
}

TEST_F(EventIngestTest, StaleEpochBatchIsRejected) {
  Sync(1, 5);
  ASSERT_EQ(Batch(1, 5, 1, {Stored(Tier::kHbm, {1})}).result, Result::kApplied);
  const IngestReply stale = Batch(1, 4, 2, {Removed(Tier::kHbm, {1})});
  EXPECT_EQ(stale.result, Result::kRejected);
  EXPECT_NE(stale.message.find("stale epoch"), std::string::npos) << stale.message;
  EXPECT_EQ(index_.Get(1, 1), TierBit(Tier::kHbm));
  EXPECT_TRUE(ingest_.Synced(1));
  EXPECT_EQ(Batch(1, 5, 2, {}).result, Result::kApplied);
}

TEST_F(EventIngestTest, NewerEpochBatchAsksForSnapshot) {
  Sync(1, 5);
  EXPECT_EQ(Batch(1, 6, 1, {Stored(Tier::kHbm, {1})}).result, Result::kSnapshotRequired);
  EXPECT_EQ(index_.NodeEntries(1), 0u);
  // The snapshot of the new epoch is accepted and adopts it; the old epoch is then stale.
  ASSERT_EQ(Chunk(1, 6, 0, 0, true, {Stored(Tier::kHbm, {9})}).result, Result::kApplied);
  EXPECT_EQ(Batch(1, 6, 1, {}).result, Result::kApplied);
  EXPECT_EQ(Batch(1, 5, 2, {}).result, Result::kRejected);
}

TEST_F(EventIngestTest, SnapshotReplacesStateAcrossChunks) {
  Sync(1, 5);
  ASSERT_EQ(Batch(1, 5, 1, {Stored(Tier::kHbm, {1, 2, 3})}).result, Result::kApplied);
  ASSERT_EQ(Chunk(1, 5, 10, 0, false, {Stored(Tier::kSsd, {3, 4})}).result, Result::kApplied);
  EXPECT_FALSE(ingest_.Synced(1));  // collecting
  EXPECT_EQ(index_.Get(1, 1), 0);   // chunk 0 cleared the old state
  EXPECT_EQ(Batch(1, 5, 2, {}).result, Result::kSnapshotRequired);
  ASSERT_EQ(Chunk(1, 5, 10, 1, false, {Stored(Tier::kHbm, {5})}).result, Result::kApplied);
  ASSERT_EQ(Chunk(1, 5, 10, 2, true, {}).result, Result::kApplied);
  EXPECT_TRUE(ingest_.Synced(1));
  EXPECT_EQ(index_.NodeEntries(1), 3u);
  EXPECT_EQ(index_.Get(3, 1), TierBit(Tier::kSsd));
  EXPECT_EQ(Batch(1, 5, 11, {}).result, Result::kApplied);
  EXPECT_EQ(ingest_.Counters().snapshot_chunks_applied, 4u);  // Sync's one included
}

TEST_F(EventIngestTest, StaleSnapshotNeverOverwritesNewerState) {
  Sync(1, 5);
  ASSERT_EQ(Batch(1, 5, 1, {Stored(Tier::kHbm, {1})}).result, Result::kApplied);
  const IngestReply stale = Chunk(1, 4, 99, 0, true, {Stored(Tier::kSsd, {7})});
  EXPECT_EQ(stale.result, Result::kRejected);
  EXPECT_EQ(index_.Get(1, 1), TierBit(Tier::kHbm));
  EXPECT_EQ(index_.Get(7, 1), 0);
  EXPECT_TRUE(ingest_.Synced(1));
  EXPECT_EQ(Batch(1, 5, 2, {}).result, Result::kApplied);
  EXPECT_EQ(ingest_.Counters().stale_snapshots, 1u);
}

TEST_F(EventIngestTest, OutOfOrderChunkAbortsTheSnapshot) {
  ingest_.ResetNode(1, 5);
  ASSERT_EQ(Chunk(1, 5, 3, 0, false, {Stored(Tier::kHbm, {1})}).result, Result::kApplied);
  EXPECT_EQ(Chunk(1, 5, 3, 2, true, {Stored(Tier::kHbm, {2})}).result, Result::kRejected);
  EXPECT_FALSE(ingest_.Synced(1));
  EXPECT_EQ(index_.Get(2, 1), 0);
  // A late chunk 1 cannot complete the aborted snapshot either.
  EXPECT_EQ(Chunk(1, 5, 3, 1, true, {}).result, Result::kRejected);
  EXPECT_FALSE(ingest_.Synced(1));
  // A chunk that continues a different epoch is out of order too.
  ASSERT_EQ(Chunk(1, 6, 3, 0, false, {}).result, Result::kApplied);
  EXPECT_EQ(Chunk(1, 7, 3, 1, true, {}).result, Result::kRejected);
  EXPECT_FALSE(ingest_.Synced(1));
}

TEST_F(EventIngestTest, SnapshotWithNonStoredEventIsRejected) {
  ingest_.ResetNode(1, 5);
  EXPECT_EQ(Chunk(1, 5, 0, 0, true, {Stored(Tier::kHbm, {1}), Removed(Tier::kHbm, {1})}).result,
            Result::kRejected);
  EXPECT_FALSE(ingest_.Synced(1));
  EXPECT_EQ(index_.NodeEntries(1), 0u);
}

TEST_F(EventIngestTest, BatchWithInvalidTierIsRejectedWhole) {
  Sync(1, 5);
  const IngestReply bad =
      Batch(1, 5, 1, {Stored(Tier::kHbm, {1}), Stored(static_cast<Tier>(7), {2})});
  EXPECT_EQ(bad.result, Result::kRejected);
  EXPECT_EQ(index_.NodeEntries(1), 0u);  // not even the valid first event
  EXPECT_EQ(Batch(1, 5, 1, {Stored(Tier::kHbm, {1})}).result, Result::kApplied);
}

TEST_F(EventIngestTest, ClearedEventDropsTheNodesEntries) {
  Sync(1, 5);
  ASSERT_EQ(Batch(1, 5, 1, {Stored(Tier::kHbm, {1, 2})}).result, Result::kApplied);
  ASSERT_EQ(Batch(1, 5, 2, {Cleared(), Stored(Tier::kDram, {3})}).result, Result::kApplied);
  EXPECT_EQ(index_.NodeEntries(1), 1u);
  EXPECT_EQ(index_.Get(3, 1), TierBit(Tier::kDram));
}

TEST_F(EventIngestTest, UnknownOrForgottenNodeIsRejected) {
  EXPECT_EQ(Batch(9, 1, 1, {Stored(Tier::kHbm, {1})}).result, Result::kRejected);
  EXPECT_EQ(Chunk(9, 1, 0, 0, true, {Stored(Tier::kHbm, {1})}).result, Result::kRejected);
  EXPECT_FALSE(ingest_.Synced(9));
  EXPECT_EQ(index_.NodeEntries(9), 0u);

  Sync(1, 5);
  ASSERT_EQ(Batch(1, 5, 1, {Stored(Tier::kHbm, {1})}).result, Result::kApplied);
  ingest_.ForgetNode(1);
  EXPECT_EQ(index_.NodeEntries(1), 0u);
  EXPECT_FALSE(ingest_.Synced(1));
  EXPECT_EQ(Batch(1, 5, 2, {Stored(Tier::kHbm, {2})}).result, Result::kRejected);
  EXPECT_EQ(Chunk(1, 5, 0, 0, true, {}).result, Result::kRejected);
  // A reused slot starts over after ResetNode.
  Sync(1, 8);
  EXPECT_EQ(Batch(1, 8, 1, {Stored(Tier::kHbm, {2})}).result, Result::kApplied);
}

TEST_F(EventIngestTest, ResetNodeDropsEntriesAndAwaitsSnapshot) {
  Sync(1, 5);
  ASSERT_EQ(Batch(1, 5, 1, {Stored(Tier::kHbm, {1, 2})}).result, Result::kApplied);
  ingest_.ResetNode(1, 6);
  EXPECT_EQ(index_.NodeEntries(1), 0u);
  EXPECT_FALSE(ingest_.Synced(1));
  EXPECT_EQ(Batch(1, 6, 2, {}).result, Result::kSnapshotRequired);
  EXPECT_EQ(Batch(1, 5, 2, {}).result, Result::kRejected);  // the old epoch is stale now
}

TEST_F(EventIngestTest, BadBatchesOfOneNodeLeaveOtherNodesAlone) {
  Sync(1, 5);
  Sync(2, 5);
  ASSERT_EQ(Batch(1, 5, 1, {Stored(Tier::kHbm, {1, 2})}).result, Result::kApplied);
  ASSERT_EQ(Batch(2, 5, 1, {Stored(Tier::kHbm, {1, 2})}).result, Result::kApplied);

  // Node 2: a gap, a stale snapshot, a bad snapshot, then a fresh snapshot.
  EXPECT_EQ(Batch(2, 5, 5, {Cleared()}).result, Result::kSnapshotRequired);
  EXPECT_EQ(Chunk(2, 4, 0, 0, true, {}).result, Result::kRejected);
  EXPECT_EQ(Chunk(2, 5, 0, 3, true, {}).result, Result::kRejected);
  ASSERT_EQ(Chunk(2, 5, 9, 0, true, {Stored(Tier::kSsd, {2})}).result, Result::kApplied);

  // Node 1 is untouched: its entries, its sync and its sequence.
  EXPECT_EQ(index_.NodeEntries(1), 2u);
  EXPECT_EQ(index_.Get(1, 1), TierBit(Tier::kHbm));
  EXPECT_TRUE(ingest_.Synced(1));
  EXPECT_EQ(Batch(1, 5, 2, {}).result, Result::kApplied);
  EXPECT_EQ(index_.NodeEntries(2), 1u);
}

}  // namespace
}  // namespace strata::router
