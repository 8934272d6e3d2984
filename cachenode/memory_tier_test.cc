#include "cachenode/memory_tier.h"

#include <cstring>
#include <string>

#include "common/checksum.h"
#include "gtest/gtest.h"

namespace strata::cachenode {
namespace {

constexpr uint64_t kMiB = 1ull << 20;

BlockInfo InfoFor(uint8_t id, const std::string& payload) {
  common::ChainHash h;
  h.bytes[0] = id;
  return BlockInfo{{7, h}, payload.size(), common::Checksum(payload), id};
}

std::span<const std::byte> Bytes(const std::string& s) { return std::as_bytes(std::span(s)); }

std::unique_ptr<MemoryTier> MakeTier(uint64_t bytes, bool memfd = true) {
  auto mem = CreateHostMemory({bytes, memfd, /*pin_for_gpu=*/false, "test"});
  EXPECT_TRUE(mem.ok());
  return std::make_unique<MemoryTier>(MemoryTierOptions{}, std::move(*mem));
}

TEST(MemoryTierTest, StoresAndReadsBackByteExact) {
  auto tier = MakeTier(16 * kMiB);
  std::string payload(3 * kMiB, 'x');
  for (size_t i = 0; i < payload.size(); i += 4096) payload[i] = static_cast<char>(i / 4096);
  const BlockInfo info = InfoFor(1, payload);
  ASSERT_TRUE(tier->Put(info, Bytes(payload)).ok());
  auto h = tier->Read(info.key);
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(h->data().size(), payload.size());
  EXPECT_EQ(std::memcmp(h->data().data(), payload.data(), payload.size()), 0);
  EXPECT_EQ(h->info().checksum, info.checksum);
  EXPECT_TRUE(tier->Contains(info.key));
  EXPECT_EQ(tier->Usage().blocks, 1u);
}

TEST(MemoryTierTest, FullTierRefusesWithResourceExhaustedAndNeverExceedsCapacity) {
  auto tier = MakeTier(8 * kMiB);
  const std::string payload(2 * kMiB, 'a');
  int stored = 0;
  for (uint8_t i = 0; i < 10; ++i) {
    absl::Status s = tier->Put(InfoFor(i, payload), Bytes(payload));
    if (s.ok()) {
      ++stored;
    } else {
      EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
    }
    EXPECT_LE(tier->Usage().used_bytes, tier->Usage().capacity_bytes);
  }
  EXPECT_EQ(stored, 4);
}

TEST(MemoryTierTest, PinnedBytesSurviveEraseUntilTheHandleGoes) {
  auto tier = MakeTier(4 * kMiB);
  const std::string a(4 * kMiB, 'a'), b(4 * kMiB, 'b');
  ASSERT_TRUE(tier->Put(InfoFor(1, a), Bytes(a)).ok());
  auto h = tier->Read(InfoFor(1, a).key);
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(tier->Erase(InfoFor(1, a).key).ok());
  EXPECT_FALSE(tier->Contains(InfoFor(1, a).key));
  // The slot is still pinned: a new block cannot take it, and the old bytes are intact.
  EXPECT_EQ(tier->Put(InfoFor(2, b), Bytes(b)).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(static_cast<char>(h->data()[12345]), 'a');
  *h = BlockHandle();  // release the pin
  EXPECT_TRUE(tier->Put(InfoFor(2, b), Bytes(b)).ok());
}

TEST(MemoryTierTest, ReplacingAKeyKeepsOneCopyAndFreesTheOldSlot) {
  auto tier = MakeTier(4 * kMiB, /*memfd=*/false);
  const std::string a(2 * kMiB, 'a'), b(2 * kMiB, 'b');
  BlockInfo info = InfoFor(1, a);
  ASSERT_TRUE(tier->Put(info, Bytes(a)).ok());
  info.checksum = common::Checksum(b);
  ASSERT_TRUE(tier->Put(info, Bytes(b)).ok());
  EXPECT_EQ(tier->Usage().blocks, 1u);
  EXPECT_EQ(tier->Usage().used_bytes, 2 * kMiB);
  EXPECT_EQ(static_cast<char>(tier->Read(info.key)->data()[0]), 'b');
}

TEST(MemoryTierTest, MissAndEraseOfAbsentKeyAreNotFound) {
  auto tier = MakeTier(4 * kMiB);
  const BlockInfo info = InfoFor(9, "abc");
  EXPECT_EQ(tier->Read(info.key).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(tier->Erase(info.key).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(tier->Put(info, Bytes("abcd")).code(), absl::StatusCode::kInvalidArgument);
}

TEST(MemoryTierTest, MemfdRegionExposesItsFdAndAnonymousDoesNot) {
  auto shared = MakeTier(4 * kMiB, /*memfd=*/true);
  auto anonymous = MakeTier(4 * kMiB, /*memfd=*/false);
  EXPECT_GE(shared->shared_fd(), 0);
  EXPECT_EQ(anonymous->shared_fd(), -1);
  EXPECT_NE(shared->host_base(), nullptr);
  EXPECT_EQ(shared->region_bytes(), 4 * kMiB);
}

TEST(MemoryTierTest, AdoptedSlotBecomesTheBlockWithoutACopy) {
  auto tier = MakeTier(8 * kMiB);
  std::string payload(kMiB, 'a');
  payload[5] = 'b';
  const BlockInfo info = InfoFor(3, payload);
  auto slot = tier->Reserve(payload.size());
  ASSERT_TRUE(slot.ok()) << slot.status();
  EXPECT_FALSE(tier->Contains(info.key));
  std::memcpy(slot->data().data(), payload.data(), payload.size());
  const std::byte* where = slot->data().data();
  ASSERT_TRUE(tier->Adopt(info, std::move(*slot)).ok());
  auto h = tier->Read(info.key);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->data().data(), where);  // the very bytes written into the slot
  EXPECT_EQ(std::memcmp(h->data().data(), payload.data(), payload.size()), 0);
}

TEST(MemoryTierTest, ReservedSlotIsNotReusedUntilDestroyed) {
  auto tier = MakeTier(4 * kMiB);  // one 4 MiB slab: one 4 MiB slot
  auto slot = tier->Reserve(4 * kMiB);
  ASSERT_TRUE(slot.ok());
  const std::string payload(4 * kMiB, 'z');
  EXPECT_TRUE(absl::IsResourceExhausted(tier->Put(InfoFor(1, payload), Bytes(payload))));
  EXPECT_EQ(tier->Usage().used_bytes, 4 * kMiB);
  *slot = ReservedSlot();  // dropped without Adopt: freed
  EXPECT_EQ(tier->Usage().used_bytes, 0u);
  EXPECT_TRUE(tier->Put(InfoFor(1, payload), Bytes(payload)).ok());
}

TEST(MemoryTierTest, AdoptRejectsASizeOtherThanReserved) {
  auto tier = MakeTier(8 * kMiB);
  auto slot = tier->Reserve(kMiB);
  ASSERT_TRUE(slot.ok());
  const std::string payload(kMiB + 1, 'q');
  EXPECT_TRUE(absl::IsInvalidArgument(tier->Adopt(InfoFor(1, payload), std::move(*slot))));
}

}  // namespace
}  // namespace strata::cachenode
