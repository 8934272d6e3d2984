#include "router/vllm_events.h"

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

// ---- DecodeVllmBatch ------------------------------------------------------------------------

TEST(DecodeVllmBatchTest, DecodesBlockStoredFields) {
  const VllmBatch b = DecodeOrDie(Batch({Stored({.hashes = {0x0102030405060708, 9},
                                                 .parent = 7,
                                                 .tokens = Tokens(100, 8),
                                                 .lora_id = 3,
                                                 .medium = "CPU"})}));
  EXPECT_DOUBLE_EQ(b.ts, 1.5);
  EXPECT_EQ(b.data_parallel_rank, 0);
  ASSERT_EQ(b.events.size(), 1u);
  const auto* s = std::get_if<VllmBlockStored>(&b.events[0]);
  ASSERT_NE(s, nullptr);
  EXPECT_THAT(s->block_hashes, ElementsAre(std::string("\1\2\3\4\5\6\7\10", 8), Be8(9)));
  EXPECT_EQ(s->parent, Be8(7));
  EXPECT_EQ(s->token_ids, As32(Tokens(100, 8)));
  EXPECT_EQ(s->block_size, kBlock);
  EXPECT_EQ(s->lora_id, 3);
  EXPECT_EQ(s->medium, "CPU");
  EXPECT_EQ(s->lora_name, std::nullopt);
}

TEST(DecodeVllmBatchTest, DecodesRemovedAndClearedAndNilParent) {
  const VllmBatch b =
      DecodeOrDie(Batch({Stored({.hashes = {1}, .tokens = Tokens(0, 4), .medium = std::nullopt}),
                         Removed({1, 2}), Cleared()}));
  ASSERT_EQ(b.events.size(), 3u);
  const auto& s = std::get<VllmBlockStored>(b.events[0]);
  EXPECT_EQ(s.parent, std::nullopt);
  EXPECT_EQ(s.lora_id, std::nullopt);
  EXPECT_EQ(s.medium, std::nullopt);
  const auto& r = std::get<VllmBlockRemoved>(b.events[1]);
  EXPECT_THAT(r.block_hashes, ElementsAre(Be8(1), Be8(2)));
  EXPECT_EQ(r.medium, "GPU");
  EXPECT_TRUE(std::holds_alternative<VllmAllBlocksCleared>(b.events[2]));
}

TEST(DecodeVllmBatchTest, AcceptsBatchWithoutDataParallelRank) {
  Pack p;
  p.Array(2).Double(2.0).Array(1);
  Cleared()(p);
  const VllmBatch b = DecodeOrDie(p.Take());
  EXPECT_EQ(b.data_parallel_rank, std::nullopt);
  EXPECT_EQ(b.events.size(), 1u);
}

TEST(DecodeVllmBatchTest, BytesHashesAreKeptAsIs) {
  const std::string h0(32, '\xab'), h1 = "short-hash";
  Pack p;
  p.Array(3).Double(0).Array(1);
  p.Array(7).Str("BlockStored").Array(2).Bin(h0).Bin(h1).Bin("parent!");
  p.Uints(Tokens(0, 8)).Uint(kBlock).Nil().Str("GPU");
  p.Nil();
  const VllmBatch b = DecodeOrDie(p.Take());
  const auto& s = std::get<VllmBlockStored>(b.events.at(0));
  EXPECT_THAT(s.block_hashes, ElementsAre(h0, h1));
  EXPECT_EQ(s.parent, "parent!");
}

TEST(DecodeVllmBatchTest, NegativeIntHashIsTheUint64WithTheSameBits) {
  Pack p;
  p.Array(3).Double(0).Array(1);
  p.Array(3).Str("BlockRemoved").Array(3).Int(-1).Int(-2).Uint(~uint64_t{0}).Nil();
  p.Nil();
  const VllmBatch b = DecodeOrDie(p.Take());
  const auto& r = std::get<VllmBlockRemoved>(b.events.at(0));
  EXPECT_THAT(r.block_hashes, ElementsAre(Be8(~uint64_t{0}), Be8(~uint64_t{1}), Be8(~uint64_t{0})));
}

TEST(DecodeVllmBatchTest, AcceptsTrailingFieldsOfNewerVersions) {
  Pack p;
  p.Array(4).Double(0).Array(3);
  // lora_name, extra_keys, group_idx, kv_cache_spec_kind, kv_cache_spec_sliding_window, and one
  // field no version has yet.
  p.Array(13).Str("BlockStored").Uints({5}).Nil().Uints(Tokens(0, 4)).Uint(kBlock).Nil();
  p.Str("GPU").Str("my-adapter").Array(1).Nil().Uint(1).Str("full_attention").Nil().Str("x");
  p.Array(4).Str("BlockRemoved").Uints({5}).Str("GPU").Uint(1);
  p.Array(2).Str("AllBlocksCleared").Uint(7);
  p.Uint(2).Str("an extra batch field");
  const VllmBatch b = DecodeOrDie(p.Take());
  ASSERT_EQ(b.events.size(), 3u);
  EXPECT_EQ(std::get<VllmBlockStored>(b.events[0]).lora_name, "my-adapter");
  EXPECT_EQ(b.data_parallel_rank, 2);
}

TEST(DecodeVllmBatchTest, AcceptsOldBlockStoredWithoutMedium) {
  Pack p;
  p.Array(2).Double(0).Array(2);
  p.Array(6).Str("BlockStored").Uints({5}).Nil().Uints(Tokens(0, 4)).Uint(kBlock).Nil();
  p.Array(2).Str("BlockRemoved").Uints({5});
  const VllmBatch b = DecodeOrDie(p.Take());
  EXPECT_EQ(std::get<VllmBlockStored>(b.events.at(0)).medium, std::nullopt);
  EXPECT_EQ(std::get<VllmBlockRemoved>(b.events.at(1)).medium, std::nullopt);
}

// Later vLLM (PR 42892) encodes each event as a map tagged under "type"; key order is not part of
// the contract and unknown keys are ignored.
TEST(DecodeVllmBatchTest, DecodesMapEncodedEvents) {
  Pack p;
  p.Array(3).Double(0).Array(3);
  p.Map(8).Str("token_ids").Uints(Tokens(10, 4)).Str("type").Str("BlockStored");
  p.Str("block_size").Uint(kBlock).Str("parent_block_hash").Uint(3);
  p.Str("block_hashes").Uints({4}).Str("medium").Str("GPU").Str("group_idx").Uint(0);
  p.Str("lora_id").Nil();
  p.Map(2).Str("type").Str("BlockRemoved").Str("block_hashes").Uints({4});
  p.Map(1).Str("type").Str("AllBlocksCleared");
  p.Nil();
  const VllmBatch b = DecodeOrDie(p.Take());
  ASSERT_EQ(b.events.size(), 3u);
  const auto& s = std::get<VllmBlockStored>(b.events[0]);
  EXPECT_EQ(s.parent, Be8(3));
  EXPECT_EQ(s.token_ids, As32(Tokens(10, 4)));
  EXPECT_EQ(s.medium, "GPU");
  EXPECT_THAT(std::get<VllmBlockRemoved>(b.events[1]).block_hashes, ElementsAre(Be8(4)));
  EXPECT_TRUE(std::holds_alternative<VllmAllBlocksCleared>(b.events[2]));
}

TEST(DecodeVllmBatchTest, MalformedPayloadsAreInvalidArgument) {
  auto batch_of = [](const std::function<void(Pack&)>& event) {
    Pack p;
    p.Array(3).Double(0).Array(1);
    event(p);
    p.Nil();
    return p.Take();
  };
  const std::string good = Batch({Cleared()});
  struct Case {
    std::string name;
    std::string payload;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"empty", "", "empty payload"},
      {"not msgpack", "\xc1", "not msgpack"},
      {"truncated", good.substr(0, good.size() - 1), "not msgpack"},
      {"trailing bytes", good + "x", "trailing bytes"},
      {"not an array", Pack().Uint(7).Take(), "expected array"},
      {"events not an array", Pack().Array(2).Double(0).Str("x").Take(), "batch.events"},
      {"ts a string", Pack().Array(2).Str("x").Array(0).Take(), "batch.ts"},
      {"no events field", Pack().Array(1).Double(0).Take(), "missing field events"},
      {"event not tagged", batch_of([](Pack& p) { p.Uint(3); }), "events[0]"},
      {"empty event", batch_of([](Pack& p) { p.Array(0); }), "no tag"},
      {"tag not a string", batch_of([](Pack& p) { p.Array(1).Uint(1); }), "str event tag"},
      {"unknown tag", batch_of([](Pack& p) { p.Array(1).Str("BlockMoved"); }), "BlockMoved"},
      {"map without type", batch_of([](Pack& p) { p.Map(1).Str("x").Nil(); }), "\"type\""},
      {"hash a string",
       batch_of([](Pack& p) { p.Array(2).Str("BlockRemoved").Array(1).Str("abc"); }),
       "block_hashes[0]"},
      {"empty bytes hash",
       batch_of([](Pack& p) { p.Array(2).Str("BlockRemoved").Array(1).Bin(""); }),
       "empty block hash"},
      {"hashes not a list", batch_of([](Pack& p) { p.Array(2).Str("BlockRemoved").Uint(1); }),
       "block_hashes"},
      {"missing block_size", batch_of([](Pack& p) {
         p.Array(4).Str("BlockStored").Uints({1}).Nil().Uints(Tokens(0, 4));
       }),
       "missing field block_size"},
      {"block_size zero", batch_of([](Pack& p) {
         p.Array(5).Str("BlockStored").Uints({1}).Nil().Uints(Tokens(0, 4)).Uint(0);
       }),
       "block_size"},
      {"negative token", batch_of([](Pack& p) {
         p.Array(5).Str("BlockStored").Uints({1}).Nil().Array(1).Int(-3).Uint(1);
       }),
       "token_ids[0]"},
      {"token over 32 bits", batch_of([](Pack& p) {
         p.Array(5).Str("BlockStored").Uints({1}).Nil().Uints({1ull << 32}).Uint(1);
       }),
       "token_ids[0]"},
      {"medium an int", batch_of([](Pack& p) {
         p.Array(7).Str("BlockStored").Uints({1}).Nil().Uints(Tokens(0, 4)).Uint(4).Nil().Uint(1);
       }),
       "medium"},
      // A header claiming 2^32-1 elements with no bytes behind it must fail, not allocate them.
      {"huge array header", std::string("\xdd\xff\xff\xff\xff", 5), "not msgpack"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<VllmBatch> b = DecodeVllmBatch(c.payload);
    EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_THAT(std::string(b.status().message()), HasSubstr(c.message)) << c.name;
  }
}

TEST(DecodeVllmBatchTest, BatchesBeyondTheLimitsAreResourceExhaustedAndAtTheLimitsDecode) {
  VllmDecodeLimits limits;
  limits.max_events = 2;
  limits.max_hashes_per_event = 3;
  limits.max_tokens_per_event = 12;
  const std::string at_limits = Batch(
      {Stored({.hashes = {1, 2, 3}, .tokens = Tokens(0, 12)}), Removed({1, 2, 3})});
  ASSERT_TRUE(DecodeVllmBatch(at_limits, limits).ok());
  struct Case {
    std::string name;
    std::string payload;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"events", Batch({Cleared(), Cleared(), Cleared()}), "batch.events has 3"},
      {"stored hashes", Batch({Stored({.hashes = {1, 2, 3, 4}, .tokens = Tokens(0, 12)})}),
       "events[0].block_hashes has 4"},
      {"removed hashes", Batch({Removed({1, 2, 3, 4})}), "events[0].block_hashes has 4"},
      {"tokens", Batch({Stored({.hashes = {1}, .tokens = Tokens(0, 13)})}),
       "events[0].token_ids has 13"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<VllmBatch> b = DecodeVllmBatch(c.payload, limits);
    EXPECT_EQ(b.status().code(), absl::StatusCode::kResourceExhausted) << c.name;
    EXPECT_THAT(std::string(b.status().message()), HasSubstr(c.message)) << c.name;
  }
  limits.max_payload_bytes = at_limits.size() - 1;
  EXPECT_EQ(DecodeVllmBatch(at_limits, limits).status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(DecodeVllmBatchTest, AcceptsAWholeTimestampPackedAsAnIntOfEitherSign) {
  // Regression (vllm_event_decode fuzzer, fuzz/corpus/vllm_event_decode/regress-negative-int-ts):
  // msgpack-c packs a whole double as an int, so a re-encoded batch with ts -258048.0 came back
  // as a negative int that the decoder rejected while it took a positive one.
  for (double ts : {-258048.0, 0.0, 1700000000.0}) {
    msgpack::sbuffer buf;
    msgpack::packer<msgpack::sbuffer> pk(buf);
    pk.pack_array(2);
    pk.pack_double(ts);
    pk.pack_array(0);
    const absl::StatusOr<VllmBatch> b = DecodeVllmBatch(std::string(buf.data(), buf.size()));
    ASSERT_TRUE(b.ok()) << ts << ": " << b.status();
    EXPECT_EQ(b->ts, ts);
  }
}

TEST(DecodeVllmSequenceTest, ReadsEightBytesBigEndianAndRejectsOtherLengths) {
  EXPECT_EQ(*DecodeVllmSequence(Be8(0x0102030405060708)), 0x0102030405060708u);
  EXPECT_EQ(DecodeVllmSequence("1234567").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeVllmSequence("").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(VllmMediumTierTest, MapsVllmMediaToTiers) {
  EXPECT_EQ(VllmMediumTier(std::nullopt), Tier::kHbm);
  EXPECT_EQ(VllmMediumTier("GPU"), Tier::kHbm);
  EXPECT_EQ(VllmMediumTier("cpu"), Tier::kDram);
  EXPECT_EQ(VllmMediumTier("DISK"), Tier::kSsd);
  EXPECT_EQ(VllmMediumTier("REMOTE"), std::nullopt);
}

// ---- VllmKeyMapper ------------------------------------------------------------------------

std::vector<VllmIndexEvent> ApplyPayload(VllmKeyMapper& m, const std::string& payload) {
  return m.Apply(DecodeOrDie(payload));
}

TEST(VllmKeyMapperTest, ParentlessChainMapsToHashChainOfItsTokens) {
  VllmKeyMapper m(Ns());
  const std::vector<uint64_t> tokens = Tokens(500, 4 * kBlock);
  const auto events =
      ApplyPayload(m, Batch({Stored({.hashes = {11, 12, 13, 14}, .tokens = tokens})}));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, VllmIndexEvent::kStored);
  EXPECT_EQ(events[0].tier, Tier::kHbm);
  EXPECT_EQ(events[0].keys, StrataKeys(tokens));  // in chain order
  EXPECT_EQ(m.stats().blocks_stored, 4u);
  EXPECT_EQ(m.stats().live_engine_blocks, 4u);
  EXPECT_EQ(m.stats().batches, 1u);
}

TEST(VllmKeyMapperTest, ParentResolvesAcrossEventsAndBatches) {
  VllmKeyMapper m(Ns());
  const std::vector<uint64_t> tokens = Tokens(0, 4 * kBlock);
  const std::vector<uint64_t> head(tokens.begin(), tokens.begin() + 2 * kBlock);
  const std::vector<uint64_t> tail(tokens.begin() + 2 * kBlock, tokens.end());
  ApplyPayload(m, Batch({Stored({.hashes = {1, 2}, .tokens = head})}));
  const auto events =
      ApplyPayload(m, Batch({Stored({.hashes = {3, 4}, .parent = 2, .tokens = tail})}));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].keys, Slice(StrataKeys(tokens), 2, 4));
  EXPECT_EQ(m.stats().unresolved_parent_blocks, 0u);
}

TEST(VllmKeyMapperTest, UnknownParentSkipsTheEventsBlocksAndCountsThem) {
  VllmKeyMapper m(Ns());
  const auto events = ApplyPayload(
      m, Batch({Stored({.hashes = {3, 4}, .parent = 99, .tokens = Tokens(0, 2 * kBlock)})}));
  EXPECT_THAT(events, IsEmpty());
  EXPECT_EQ(m.stats().unresolved_parent_blocks, 2u);
  EXPECT_EQ(m.stats().blocks_stored, 0u);
  EXPECT_EQ(m.stats().live_engine_blocks, 0u);
}

TEST(VllmKeyMapperTest, RemovedParentIsUnresolved) {
  VllmKeyMapper m(Ns());
  ApplyPayload(m,
               Batch({Stored({.hashes = {1, 2}, .tokens = Tokens(0, 2 * kBlock)}), Removed({2})}));
  const auto events =
      ApplyPayload(m, Batch({Stored({.hashes = {3}, .parent = 2, .tokens = Tokens(8, kBlock)})}));
  EXPECT_THAT(events, IsEmpty());
  EXPECT_EQ(m.stats().unresolved_parent_blocks, 1u);
}

TEST(VllmKeyMapperTest, RemovalReportsKeysAndForgetsEngineHashes) {
  VllmKeyMapper m(Ns());
  const std::vector<uint64_t> tokens = Tokens(0, 3 * kBlock);
  ApplyPayload(m, Batch({Stored({.hashes = {1, 2, 3}, .tokens = tokens})}));
  const auto events = ApplyPayload(m, Batch({Removed({3, 2})}));
  const std::vector<IndexKey> keys = StrataKeys(tokens);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_THAT(events[0], IndexEventIs(VllmIndexEvent::kRemoved, Tier::kHbm,
                                      std::vector<IndexKey>{keys[2], keys[1]}));
  EXPECT_EQ(m.stats().blocks_removed, 2u);
  EXPECT_EQ(m.stats().live_engine_blocks, 1u);

  EXPECT_THAT(ApplyPayload(m, Batch({Removed({2, 77})})), IsEmpty());
  EXPECT_EQ(m.stats().unknown_removals, 2u);
  // Removal in a medium the block was never stored in is unknown too, and changes nothing.
  EXPECT_THAT(ApplyPayload(m, Batch({Removed({1}, "CPU")})), IsEmpty());
  EXPECT_EQ(m.stats().unknown_removals, 3u);
  EXPECT_EQ(m.stats().live_engine_blocks, 1u);
}

TEST(VllmKeyMapperTest, ClearReportsEveryLiveKeyPerTierAndForgetsAll) {
  VllmKeyMapper m(Ns());
  const std::vector<uint64_t> gpu = Tokens(0, 2 * kBlock), cpu = Tokens(100, kBlock);
  ApplyPayload(m, Batch({Stored({.hashes = {1, 2}, .tokens = gpu}),
                         Stored({.hashes = {5}, .tokens = cpu, .medium = "CPU"})}));
  const auto events = ApplyPayload(m, Batch({Cleared()}));
  EXPECT_THAT(events, UnorderedElementsAreArray(
                          {IndexEventIs(VllmIndexEvent::kCleared, Tier::kHbm, StrataKeys(gpu)),
                           IndexEventIs(VllmIndexEvent::kCleared, Tier::kDram, StrataKeys(cpu))}));
  EXPECT_EQ(m.stats().live_engine_blocks, 0u);
  EXPECT_EQ(m.stats().clears, 1u);
  // Nothing from before the clear can be a parent any more.
  EXPECT_THAT(
      ApplyPayload(m, Batch({Stored({.hashes = {3}, .parent = 2, .tokens = Tokens(8, 4)})})),
      IsEmpty());
  EXPECT_EQ(m.stats().unresolved_parent_blocks, 1u);
}

TEST(VllmKeyMapperTest, LoraIdChangesTheKeys) {
  VllmKeyMapper m(Ns());
  const std::vector<uint64_t> tokens = Tokens(0, 2 * kBlock);
  const auto events =
      ApplyPayload(m, Batch({Stored({.hashes = {1, 2}, .tokens = tokens, .lora_id = 7})}));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].keys, StrataKeys(tokens, "lora:7"));
  EXPECT_NE(events[0].keys, StrataKeys(tokens));
}

TEST(VllmKeyMapperTest, LoraNameIsUsedWhenThereIsNoLoraId) {
  VllmBlockStored s;
  s.lora_name = "sql-adapter";
  EXPECT_EQ(VllmBlockExtra(s), "lora-name:sql-adapter");
  s.lora_id = 4;
  EXPECT_EQ(VllmBlockExtra(s), "lora:4");
  EXPECT_EQ(VllmBlockExtra(VllmBlockStored{}), "");
}

TEST(VllmKeyMapperTest, MediumSelectsTierAndUnknownMediaAreTrackedButNotIndexed) {
  VllmKeyMapper m(Ns());
  const std::vector<uint64_t> tokens = Tokens(0, 2 * kBlock);
  const std::vector<uint64_t> head(tokens.begin(), tokens.begin() + kBlock);
  const std::vector<uint64_t> tail(tokens.begin() + kBlock, tokens.end());
  EXPECT_THAT(ApplyPayload(m, Batch({Stored({.hashes = {1}, .tokens = head, .medium = "REMOTE"})})),
              IsEmpty());
  // The untracked block still resolves its child's parent.
  const auto events = ApplyPayload(
      m, Batch({Stored({.hashes = {2}, .parent = 1, .tokens = tail, .medium = "CPU"})}));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_THAT(events[0],
              IndexEventIs(VllmIndexEvent::kStored, Tier::kDram, Slice(StrataKeys(tokens), 1, 2)));
}

// Hybrid models store one block per KV-cache group under the same engine hash; the key stays
// indexed until the last of them is removed.
TEST(VllmKeyMapperTest, RepeatedStoreOfOneEngineBlockIsReferenceCounted) {
  VllmKeyMapper m(Ns());
  const std::vector<uint64_t> tokens = Tokens(0, kBlock);
  EXPECT_EQ(ApplyPayload(m, Batch({Stored({.hashes = {1}, .tokens = tokens})})).size(), 1u);
  EXPECT_THAT(ApplyPayload(m, Batch({Stored({.hashes = {1}, .tokens = tokens})})), IsEmpty());
  EXPECT_THAT(ApplyPayload(m, Batch({Removed({1})})), IsEmpty());
  const auto events = ApplyPayload(m, Batch({Removed({1})}));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_THAT(events[0], IndexEventIs(VllmIndexEvent::kRemoved, Tier::kHbm, StrataKeys(tokens)));
  EXPECT_EQ(m.stats().live_engine_blocks, 0u);
}

// Two engine blocks whose difference Strata cannot see (e.g. a cache_salt in vLLM's extra_keys)
// share one Strata key: it is removed with the last of them.
TEST(VllmKeyMapperTest, EngineBlocksSharingAStrataKeyAreReferenceCounted) {
  VllmKeyMapper m(Ns());
  const std::vector<uint64_t> tokens = Tokens(0, kBlock);
  EXPECT_EQ(ApplyPayload(m, Batch({Stored({.hashes = {1}, .tokens = tokens}),
                                   Stored({.hashes = {2}, .tokens = tokens})}))
                .size(),
            1u);
  EXPECT_THAT(ApplyPayload(m, Batch({Removed({1})})), IsEmpty());
  EXPECT_EQ(ApplyPayload(m, Batch({Removed({2})})).size(), 1u);
}

TEST(VllmKeyMapperTest, BlocksThatCannotBeHashedAreSkippedAndCounted) {
  VllmKeyMapper m(Ns(), /*expected_block_size=*/kBlock);
  EXPECT_THAT(ApplyPayload(
                  m, Batch({Stored({.hashes = {1, 2}, .tokens = Tokens(0, 16), .block_size = 8})})),
              IsEmpty());
  EXPECT_EQ(m.stats().block_size_mismatches, 2u);
  EXPECT_THAT(
      ApplyPayload(m, Batch({Stored({.hashes = {1, 2}, .tokens = Tokens(0, 2 * kBlock - 1)})})),
      IsEmpty());
  EXPECT_EQ(m.stats().malformed_blocks, 2u);
  EXPECT_EQ(m.stats().live_engine_blocks, 0u);
}

TEST(VllmKeyMapperTest, NamespacesGiveDifferentKeys) {
  VllmKeyMapper a(Ns()), b(common::NamespaceIdOf("other/ns"));
  const std::string payload = Batch({Stored({.hashes = {1}, .tokens = Tokens(0, kBlock)})});
  EXPECT_NE(ApplyPayload(a, payload).at(0).keys, ApplyPayload(b, payload).at(0).keys);
}

}  // namespace
}  // namespace strata::router
