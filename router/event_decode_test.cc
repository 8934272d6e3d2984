#include "router/event_decode.h"

#include <gtest/gtest.h>

#include <string>

#include "common/block_key.h"

namespace strata::router {
namespace {

using strata::v1::BlockEvent;
using EventList = google::protobuf::RepeatedPtrField<BlockEvent>;

common::ChainHash HashOf(uint8_t seed) {
  common::ChainHash h;
  for (size_t i = 0; i < h.bytes.size(); ++i) h.bytes[i] = static_cast<uint8_t>(seed * 31 + i);
  return h;
}

BlockEvent* Add(EventList* events, BlockEvent::Kind kind, strata::v1::Tier tier,
                common::NamespaceId ns, std::initializer_list<uint8_t> seeds) {
  BlockEvent* e = events->Add();
  e->set_kind(kind);
  e->set_tier(tier);
  e->set_namespace_id(ns);
  std::string raw;
  for (uint8_t s : seeds) raw += HashOf(s).view();
  e->set_chain_hashes(raw);
  return e;
}

TEST(EventDecodeTest, DecodesKindsTiersAndKeysLikeIndexKeyOf) {
  EventList events;
  Add(&events, BlockEvent::STORED, strata::v1::TIER_HBM, 7, {1, 2, 3});
  Add(&events, BlockEvent::REMOVED, strata::v1::TIER_SSD, 9, {4});
  Add(&events, BlockEvent::STORED, strata::v1::TIER_DRAM, 7, {});
  Add(&events, BlockEvent::CLEARED, strata::v1::TIER_UNSPECIFIED, 0, {5});  // hashes ignored

  absl::StatusOr<std::vector<IngestEvent>> out = DecodeEvents(events);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->size(), 4u);
  EXPECT_EQ((*out)[0].kind, IngestEvent::Kind::kStored);
  EXPECT_EQ((*out)[0].tier, Tier::kHbm);
  ASSERT_EQ((*out)[0].keys.size(), 3u);
  for (uint8_t i = 0; i < 3; ++i) {
    EXPECT_EQ((*out)[0].keys[i], IndexKeyOf(7, HashOf(i + 1)));
  }
  EXPECT_EQ((*out)[1].kind, IngestEvent::Kind::kRemoved);
  EXPECT_EQ((*out)[1].tier, Tier::kSsd);
  ASSERT_EQ((*out)[1].keys.size(), 1u);
  EXPECT_EQ((*out)[1].keys[0], IndexKeyOf(9, HashOf(4)));
  EXPECT_NE((*out)[1].keys[0], IndexKeyOf(7, HashOf(4)));  // namespaces stay apart
  EXPECT_EQ((*out)[2].tier, Tier::kDram);
  EXPECT_TRUE((*out)[2].keys.empty());
  EXPECT_EQ((*out)[3].kind, IngestEvent::Kind::kCleared);
  EXPECT_TRUE((*out)[3].keys.empty());
}

TEST(EventDecodeTest, RejectsHashBytesNotAMultipleOf32) {
  EventList events;
  Add(&events, BlockEvent::STORED, strata::v1::TIER_HBM, 1, {1});
  BlockEvent* bad = Add(&events, BlockEvent::STORED, strata::v1::TIER_HBM, 1, {2});
  bad->mutable_chain_hashes()->push_back('x');
  absl::StatusOr<std::vector<IngestEvent>> out = DecodeEvents(events);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(out.status().message().find("event 1"), absl::string_view::npos)
      << out.status().message();
}

TEST(EventDecodeTest, RejectsUnknownKind) {
  EventList events;
  Add(&events, BlockEvent::KIND_UNSPECIFIED, strata::v1::TIER_HBM, 1, {1});
  EXPECT_EQ(DecodeEvents(events).status().code(), absl::StatusCode::kInvalidArgument);
  events.Clear();
  Add(&events, static_cast<BlockEvent::Kind>(42), strata::v1::TIER_HBM, 1, {1});
  EXPECT_EQ(DecodeEvents(events).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(EventDecodeTest, RejectsStoredOrRemovedWithoutATier) {
  EventList events;
  Add(&events, BlockEvent::STORED, strata::v1::TIER_UNSPECIFIED, 1, {1});
  EXPECT_EQ(DecodeEvents(events).status().code(), absl::StatusCode::kInvalidArgument);
  events.Clear();
  Add(&events, BlockEvent::REMOVED, static_cast<strata::v1::Tier>(9), 1, {1});
  EXPECT_EQ(DecodeEvents(events).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(EventDecodeTest, OversizedBatchesAreResourceExhausted) {
  EventList events;
  for (int i = 0; i < 3; ++i) Add(&events, BlockEvent::STORED, strata::v1::TIER_HBM, 1, {1, 2});
  EXPECT_TRUE(DecodeEvents(events, DecodeLimits{.max_events = 3, .max_keys = 6}).ok());
  EXPECT_EQ(DecodeEvents(events, DecodeLimits{.max_events = 2, .max_keys = 100}).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(DecodeEvents(events, DecodeLimits{.max_events = 100, .max_keys = 5}).status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(EventDecodeTest, EmptyBatchDecodesToNothing) {
  EventList events;
  absl::StatusOr<std::vector<IngestEvent>> out = DecodeEvents(events);
  ASSERT_TRUE(out.ok());
  EXPECT_TRUE(out->empty());
}

}  // namespace
}  // namespace strata::router
