#include "cachenode/ssd_tier.h"

#include <stdlib.h>

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/checksum.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"

namespace strata::cachenode {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr uint64_t kMiB = 1 << 20;

// A fresh directory under /tmp, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = "/tmp/ssd_tier_test.XXXXXX";
    path_ = mkdtemp(tmpl.data());
    EXPECT_FALSE(path_.empty());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

BlockKey Key(uint64_t n, common::NamespaceId ns = 7) {
  BlockKey k;
  k.namespace_id = ns;
  for (size_t i = 0; i < 8; ++i) k.hash.bytes[i] = static_cast<uint8_t>(n >> (56 - 8 * i));
  k.hash.bytes[31] = 0xab;
  return k;
}

std::vector<std::byte> Payload(size_t size, uint64_t seed) {
  std::vector<std::byte> out(size);
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  for (size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out[i] = static_cast<std::byte>(x);
  }
  return out;
}

BlockInfo Info(const BlockKey& key, std::span<const std::byte> payload, uint32_t position = 0) {
  return BlockInfo{key, payload.size(), common::Checksum(payload), position};
}

SsdTierOptions Options(const std::string& path, uint64_t capacity = 256 * kMiB) {
  SsdTierOptions o;
  o.path = path;
  o.capacity_bytes = capacity;
  o.write_buffer_bytes = 16 * kMiB;
  o.blob_file_bytes = 32 * kMiB;
  return o;
}

std::unique_ptr<SsdTier> OpenOrDie(const SsdTierOptions& options) {
  absl::StatusOr<std::unique_ptr<SsdTier>> tier = SsdTier::Open(options);
  EXPECT_TRUE(tier.ok()) << tier.status();
  return tier.ok() ? std::move(*tier) : nullptr;
}

bool SameBytes(const BlockHandle& h, const std::vector<std::byte>& expected) {
  return std::equal(h.data().begin(), h.data().end(), expected.begin(), expected.end());
}

// The tier's RocksDB opened directly (the tier must be closed): plants damage and inspects records.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    std::vector<rocksdb::ColumnFamilyDescriptor> families = {
        {rocksdb::kDefaultColumnFamilyName, {}}, {"meta", {}}};
    rocksdb::Status s = rocksdb::DB::Open(rocksdb::DBOptions(), path, families, &handles_, &db_);
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  ~RawDb() {
    if (db_ == nullptr) return;
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
    EXPECT_TRUE(db_->Close().ok());
    delete db_;
  }
  bool ok() const { return db_ != nullptr; }
  void Put(int family, const std::string& key, const std::string& value) {
    ASSERT_TRUE(db_->Put({}, handles_[family], key, value).ok());
  }
  bool Has(int family, const std::string& key) {
    std::string value;
    return db_->Get({}, handles_[family], key, &value).ok();
  }

 private:
  rocksdb::DB* db_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
};
constexpr int kPayloadFamily = 0;
constexpr int kMetaFamily = 1;

TEST(SsdTierTest, PutThenReadIsByteExactForLargeAndSmallPayloads) {
  TempDir dir;
  auto tier = OpenOrDie(Options(dir.path()));
  ASSERT_NE(tier, nullptr);
  const auto big = Payload(8 * kMiB, 1);
  const auto small = Payload(100, 2);
  const auto empty = Payload(0, 3);
  ASSERT_TRUE(tier->Put(Info(Key(1), big, 4), big).ok());
  ASSERT_TRUE(tier->Put(Info(Key(2), small), small).ok());
  ASSERT_TRUE(tier->Put(Info(Key(3), empty), empty).ok());

  absl::StatusOr<BlockHandle> h = tier->Read(Key(1));
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_TRUE(SameBytes(*h, big));
  EXPECT_EQ(h->info().key, Key(1));
  EXPECT_EQ(h->info().size, big.size());
  EXPECT_EQ(h->info().checksum, common::Checksum(big));
  EXPECT_EQ(h->info().chain_position, 4u);
  h = tier->Read(Key(2));
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_TRUE(SameBytes(*h, small));
  h = tier->Read(Key(3));
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->data().size(), 0u);
  EXPECT_TRUE(h->valid());

  EXPECT_TRUE(tier->Contains(Key(1)));
  EXPECT_FALSE(tier->Contains(Key(4)));
  TierUsage usage = tier->Usage();
  EXPECT_EQ(usage.used_bytes, big.size() + small.size());
  EXPECT_EQ(usage.blocks, 3u);
  EXPECT_EQ(tier->kind(), TierKind::kSsd);
  EXPECT_EQ(tier->name(), "ssd");
}

TEST(SsdTierTest, PayloadSizeDifferentFromInfoIsInvalidArgument) {
  TempDir dir;
  auto tier = OpenOrDie(Options(dir.path()));
  ASSERT_NE(tier, nullptr);
  const auto payload = Payload(1000, 1);
  BlockInfo info = Info(Key(1), payload);
  info.size = 999;
  EXPECT_EQ(tier->Put(info, payload).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(tier->Contains(Key(1)));
  std::vector<BlockInfo> infos = {Info(Key(1), payload), Info(Key(2), payload)};
  std::vector<std::span<const std::byte>> one_payload = {payload};
  for (const absl::Status& s : tier->PutBatch(infos, one_payload)) {
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(tier->Usage().blocks, 0u);
}

TEST(SsdTierTest, BlocksSurviveReopenAfterFlushAndIndexIsRebuilt) {
  TempDir dir;
  const auto a = Payload(8 * kMiB, 1);
  const auto b = Payload(3 * kMiB + 17, 2);
  {
    auto tier = OpenOrDie(Options(dir.path()));
    ASSERT_NE(tier, nullptr);
    ASSERT_TRUE(tier->Put(Info(Key(1), a, 0), a).ok());
    ASSERT_TRUE(tier->Put(Info(Key(2), b, 1), b).ok());
    ASSERT_TRUE(tier->Flush().ok());
  }
  auto tier = OpenOrDie(Options(dir.path()));
  ASSERT_NE(tier, nullptr);
  EXPECT_EQ(tier->Usage().used_bytes, a.size() + b.size());
  EXPECT_EQ(tier->Usage().blocks, 2u);
  absl::StatusOr<BlockHandle> h = tier->Read(Key(2));
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_TRUE(SameBytes(*h, b));
  EXPECT_EQ(h->info().checksum, common::Checksum(b));
  EXPECT_EQ(h->info().chain_position, 1u);
  h = tier->Read(Key(1));
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_TRUE(SameBytes(*h, a));
}

TEST(SsdTierTest, CleanCloseWithoutFlushPersistsBlocks) {
  TempDir dir;
  const auto a = Payload(8 * kMiB, 5);
  const auto b = Payload(10, 6);
  {
    auto tier = OpenOrDie(Options(dir.path()));
    ASSERT_NE(tier, nullptr);
    ASSERT_TRUE(tier->Put(Info(Key(1), a), a).ok());
    ASSERT_TRUE(tier->Put(Info(Key(2), b), b).ok());
    ASSERT_TRUE(tier->Erase(Key(2)).ok());
  }
  auto tier = OpenOrDie(Options(dir.path()));
  ASSERT_NE(tier, nullptr);
  EXPECT_EQ(tier->Usage().used_bytes, a.size());
  EXPECT_FALSE(tier->Contains(Key(2)));
  absl::StatusOr<BlockHandle> h = tier->Read(Key(1));
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_TRUE(SameBytes(*h, a));
}

TEST(SsdTierTest, PutBeyondCapacityIsResourceExhaustedAndUsedNeverExceedsCapacity) {
  TempDir dir;
  auto tier = OpenOrDie(Options(dir.path(), 10 * kMiB));
  ASSERT_NE(tier, nullptr);
  const auto four = Payload(4 * kMiB, 1);
  ASSERT_TRUE(tier->Put(Info(Key(1), four), four).ok());
  ASSERT_TRUE(tier->Put(Info(Key(2), four), four).ok());
  absl::Status s = tier->Put(Info(Key(3), four), four);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_FALSE(tier->Contains(Key(3)));
  EXPECT_EQ(tier->Usage().used_bytes, 8 * kMiB);
  EXPECT_LE(tier->Usage().used_bytes, tier->Usage().capacity_bytes);

  // Exactly filling the tier is allowed.
  const auto two = Payload(2 * kMiB, 2);
  EXPECT_TRUE(tier->Put(Info(Key(4), two), two).ok());
  EXPECT_EQ(tier->Usage().used_bytes, 10 * kMiB);
  const auto one = Payload(1, 3);
  EXPECT_EQ(tier->Put(Info(Key(5), one), one).code(), absl::StatusCode::kResourceExhausted);

  EXPECT_EQ(tier->ChargeFor(10 * kMiB), 10 * kMiB);
  EXPECT_EQ(tier->ChargeFor(10 * kMiB + 1), 0u);
}

TEST(SsdTierTest, ReplacingABlockChargesOnlyTheDifference) {
  TempDir dir;
  auto tier = OpenOrDie(Options(dir.path(), 10 * kMiB));
  ASSERT_NE(tier, nullptr);
  const auto five = Payload(5 * kMiB, 1);
  const auto other_five = Payload(5 * kMiB, 2);
  ASSERT_TRUE(tier->Put(Info(Key(1), five), five).ok());
  ASSERT_TRUE(tier->Put(Info(Key(2), five), five).ok());
  // Full; replacing a block with one of the same size fits.
  ASSERT_TRUE(tier->Put(Info(Key(1), other_five), other_five).ok());
  EXPECT_EQ(tier->Usage().used_bytes, 10 * kMiB);
  EXPECT_EQ(tier->Usage().blocks, 2u);
  absl::StatusOr<BlockHandle> h = tier->Read(Key(1));
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_TRUE(SameBytes(*h, other_five));

  // Shrinking frees the difference.
  const auto three = Payload(3 * kMiB, 3);
  ASSERT_TRUE(tier->Put(Info(Key(1), three), three).ok());
  EXPECT_EQ(tier->Usage().used_bytes, 8 * kMiB);

  // Growing past capacity fails and leaves the old block in place.
  const auto six = Payload(6 * kMiB, 4);
  EXPECT_EQ(tier->Put(Info(Key(1), six), six).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(tier->Usage().used_bytes, 8 * kMiB);
  h = tier->Read(Key(1));
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_TRUE(SameBytes(*h, three));
}

TEST(SsdTierTest, ZeroCapacityRejectsEveryPut) {
  TempDir dir;
  auto tier = OpenOrDie(Options(dir.path(), 0));
  ASSERT_NE(tier, nullptr);
  const auto one = Payload(1, 1);
  const auto none = Payload(0, 1);
  EXPECT_EQ(tier->Put(Info(Key(1), one), one).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(tier->Put(Info(Key(2), none), none).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(tier->ChargeFor(1), 0u);
  EXPECT_EQ(tier->Usage().blocks, 0u);
}

TEST(SsdTierTest, EraseRemovesTheBlockAndFreesItsBytes) {
  TempDir dir;
  auto tier = OpenOrDie(Options(dir.path()));
  ASSERT_NE(tier, nullptr);
  const auto p = Payload(kMiB, 1);
  ASSERT_TRUE(tier->Put(Info(Key(1), p), p).ok());
  ASSERT_TRUE(tier->Erase(Key(1)).ok());
  EXPECT_FALSE(tier->Contains(Key(1)));
  EXPECT_EQ(tier->Usage().used_bytes, 0u);
  EXPECT_EQ(tier->Usage().blocks, 0u);
  EXPECT_EQ(tier->Read(Key(1)).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(tier->Erase(Key(1)).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(tier->Erase(Key(99)).code(), absl::StatusCode::kNotFound);
}

// Handles must not point into RocksDB-owned memory (block cache, blob buffers) that dies with the
// DB; run under ASan this catches it. Both I/O modes: they read blobs through different buffers.
TEST(SsdTierTest, HandleStaysValidAfterEraseOfItsKeyAndAfterTheTierCloses) {
  for (bool direct : {true, false}) {
    SCOPED_TRACE(direct ? "direct I/O" : "buffered I/O");
    TempDir dir;
    SsdTierOptions options = Options(dir.path());
    options.use_direct_io = direct;
    auto tier = OpenOrDie(options);
    ASSERT_NE(tier, nullptr);
    const auto big = Payload(2 * kMiB, 1);
    const auto small = Payload(64, 2);  // inline in an SST: may come pinned in the block cache
    ASSERT_TRUE(tier->Put(Info(Key(1), big), big).ok());
    ASSERT_TRUE(tier->Put(Info(Key(2), small), small).ok());
    ASSERT_TRUE(tier->Flush().ok());
    absl::StatusOr<BlockHandle> big_read = tier->Read(Key(1));
    absl::StatusOr<BlockHandle> small_read = tier->Read(Key(2));
    std::vector<absl::StatusOr<BlockHandle>> batch =
        tier->ReadBatch(std::vector<BlockKey>{Key(1), Key(2)});
    ASSERT_TRUE(big_read.ok()) << big_read.status();
    ASSERT_TRUE(small_read.ok()) << small_read.status();
    ASSERT_TRUE(batch[0].ok() && batch[1].ok());
    ASSERT_TRUE(tier->Erase(Key(1)).ok());
    ASSERT_TRUE(tier->Erase(Key(2)).ok());
    const auto replacement = Payload(2 * kMiB, 3);
    ASSERT_TRUE(tier->Put(Info(Key(1), replacement), replacement).ok());
    ASSERT_TRUE(tier->Flush().ok());
    EXPECT_TRUE(SameBytes(*big_read, big));
    tier.reset();
    EXPECT_TRUE(big_read->valid());
    EXPECT_TRUE(SameBytes(*big_read, big));
    EXPECT_TRUE(SameBytes(*small_read, small));
    EXPECT_TRUE(SameBytes(*batch[0], big));
    EXPECT_TRUE(SameBytes(*batch[1], small));
  }
}

TEST(SsdTierTest, ReadBatchReturnsHitsAndMissesInKeyOrder) {
  TempDir dir;
  auto tier = OpenOrDie(Options(dir.path()));
  ASSERT_NE(tier, nullptr);
  const auto a = Payload(2 * kMiB, 1);
  const auto b = Payload(50, 2);
  const auto c = Payload(kMiB, 3);
  ASSERT_TRUE(tier->Put(Info(Key(1), a), a).ok());
  ASSERT_TRUE(tier->Put(Info(Key(2), b), b).ok());
  ASSERT_TRUE(tier->Flush().ok());
  ASSERT_TRUE(tier->Put(Info(Key(3), c, 2), c).ok());  // still in the memtable

  std::vector<BlockKey> keys = {Key(3), Key(9), Key(1), Key(8), Key(2), Key(1)};
  std::vector<absl::StatusOr<BlockHandle>> got = tier->ReadBatch(keys);
  ASSERT_EQ(got.size(), keys.size());
  std::vector<absl::StatusCode> codes;
  for (const auto& r : got) codes.push_back(r.status().code());
  using absl::StatusCode;
  EXPECT_THAT(codes, ElementsAre(StatusCode::kOk, StatusCode::kNotFound, StatusCode::kOk,
                                 StatusCode::kNotFound, StatusCode::kOk, StatusCode::kOk));
  EXPECT_TRUE(SameBytes(*got[0], c));
  EXPECT_EQ(got[0]->info().chain_position, 2u);
  EXPECT_TRUE(SameBytes(*got[2], a));
  EXPECT_TRUE(SameBytes(*got[4], b));
  EXPECT_TRUE(SameBytes(*got[5], a));
  for (size_t i : {0, 2, 4, 5}) EXPECT_EQ(got[i]->info().key, keys[i]);
  EXPECT_TRUE(tier->ReadBatch({}).empty());
}

TEST(SsdTierTest, ReadBatchSplitIntoParallelGroupsKeepsEveryResultInItsPlace) {
  TempDir dir;
  SsdTierOptions options = Options(dir.path());
  options.read_threads = 3;  // 3 MultiGet groups over the hits, 2 of them on pool threads
  auto tier = OpenOrDie(options);
  ASSERT_NE(tier, nullptr);
  std::vector<std::vector<std::byte>> payloads;
  for (uint64_t i = 0; i < 11; ++i) {
    payloads.push_back(Payload(64 * 1024 + i * 4097, 100 + i));
    ASSERT_TRUE(tier->Put(Info(Key(i), payloads.back()), payloads.back()).ok());
  }
  ASSERT_TRUE(tier->Flush().ok());
  // Hits in scrambled order with misses between them, so group boundaries fall among misses.
  std::vector<BlockKey> keys;
  for (uint64_t i : {7, 50, 2, 10, 0, 51, 52, 5, 9, 1, 3, 53, 8, 4, 6}) keys.push_back(Key(i));
  for (int round = 0; round < 3; ++round) {
    std::vector<absl::StatusOr<BlockHandle>> got = tier->ReadBatch(keys);
    ASSERT_EQ(got.size(), keys.size());
    for (size_t k = 0; k < keys.size(); ++k) {
      uint64_t n = 0;
      for (size_t i = 0; i < 8; ++i) n = (n << 8) | keys[k].hash.bytes[i];
      if (n >= 50) {
        EXPECT_TRUE(absl::IsNotFound(got[k].status())) << k;
        continue;
      }
      ASSERT_TRUE(got[k].ok()) << k << ": " << got[k].status();
      EXPECT_EQ(got[k]->info().key, keys[k]);
      EXPECT_TRUE(SameBytes(*got[k], payloads[n])) << "key " << n;
    }
  }
}

TEST(SsdTierTest, OptionsOutOfRangeAreInvalidArgument) {
  TempDir dir;
  const auto bad = [&](auto mutate) {
    SsdTierOptions o = Options(dir.path());
    mutate(o);
    return absl::IsInvalidArgument(SsdTier::Open(o).status());
  };
  EXPECT_TRUE(bad([](SsdTierOptions& o) { o.path.clear(); }));
  EXPECT_TRUE(bad([](SsdTierOptions& o) { o.read_threads = 0; }));
  EXPECT_TRUE(bad([](SsdTierOptions& o) { o.flush_threads = 0; }));
  EXPECT_TRUE(bad([](SsdTierOptions& o) { o.max_write_buffers = 1; }));
  EXPECT_TRUE(bad([](SsdTierOptions& o) { o.write_io_bytes = 5000; }));
  EXPECT_TRUE(bad([](SsdTierOptions& o) { o.write_buffer_bytes = 4096; }));
}

TEST(SsdTierTest, PutBatchWritesBlocksThatFitAndRejectsTheOthers) {
  TempDir dir;
  auto tier = OpenOrDie(Options(dir.path(), 10 * kMiB));
  ASSERT_NE(tier, nullptr);
  const auto four = Payload(4 * kMiB, 1);
  const auto five = Payload(5 * kMiB, 2);
  const auto two = Payload(2 * kMiB, 3);
  const auto one = Payload(kMiB, 4);
  std::vector<BlockInfo> infos = {Info(Key(1), four), Info(Key(2), five), Info(Key(3), two),
                                  Info(Key(4), one)};
  infos[3].size = 7;  // mismatch
  std::vector<std::span<const std::byte>> payloads = {four, five, two, one};
  std::vector<absl::Status> statuses = tier->PutBatch(infos, payloads);
  ASSERT_EQ(statuses.size(), 4u);
  EXPECT_TRUE(statuses[0].ok()) << statuses[0];
  EXPECT_TRUE(statuses[1].ok()) << statuses[1];
  EXPECT_EQ(statuses[2].code(), absl::StatusCode::kResourceExhausted);  // 4 + 5 + 2 > 10
  EXPECT_EQ(statuses[3].code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(tier->Contains(Key(1)));
  EXPECT_TRUE(tier->Contains(Key(2)));
  EXPECT_FALSE(tier->Contains(Key(3)));
  EXPECT_FALSE(tier->Contains(Key(4)));
  EXPECT_EQ(tier->Usage().used_bytes, 9 * kMiB);
  absl::StatusOr<BlockHandle> h = tier->Read(Key(2));
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_TRUE(SameBytes(*h, five));

  // A key repeated within one batch is charged once, for its last payload.
  std::vector<BlockInfo> again = {Info(Key(1), one), Info(Key(1), two)};
  std::vector<std::span<const std::byte>> again_payloads = {one, two};
  statuses = tier->PutBatch(again, again_payloads);
  EXPECT_TRUE(statuses[0].ok() && statuses[1].ok());
  EXPECT_EQ(tier->Usage().used_bytes, 7 * kMiB);
  h = tier->Read(Key(1));
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_TRUE(SameBytes(*h, two));
}

TEST(SsdTierTest, ForEachBlockReportsMetadataInKeyOrder) {
  TempDir dir;
  auto tier = OpenOrDie(Options(dir.path()));
  ASSERT_NE(tier, nullptr);
  const auto a = Payload(kMiB, 1);
  const auto b = Payload(300, 2);
  ASSERT_TRUE(tier->Put(Info(Key(2, 1), b, 1), b).ok());
  ASSERT_TRUE(tier->Put(Info(Key(1, 9), a, 0), a).ok());
  ASSERT_TRUE(tier->Put(Info(Key(1, 1), a, 0), a).ok());
  ASSERT_TRUE(tier->Erase(Key(1, 1)).ok());

  std::vector<BlockInfo> seen;
  ASSERT_TRUE(tier->ForEachBlock([&](const BlockInfo& i) { seen.push_back(i); }).ok());
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].key, Key(2, 1));  // namespace 1 sorts before namespace 9
  EXPECT_EQ(seen[0].size, b.size());
  EXPECT_EQ(seen[0].checksum, common::Checksum(b));
  EXPECT_EQ(seen[0].chain_position, 1u);
  EXPECT_EQ(seen[1].key, Key(1, 9));
  EXPECT_EQ(seen[1].size, a.size());
}

TEST(SsdTierTest, MalformedMetaRecordsAreSkippedAndDroppedOnReopen) {
  TempDir dir;
  const auto a = Payload(kMiB, 1);
  {
    auto tier = OpenOrDie(Options(dir.path()));
    ASSERT_NE(tier, nullptr);
    ASSERT_TRUE(tier->Put(Info(Key(1), a), a).ok());
  }
  {
    RawDb raw(dir.path());
    ASSERT_TRUE(raw.ok());
    raw.Put(kMetaFamily, Key(2).Encode(), "\x02too-new-version");
    raw.Put(kPayloadFamily, Key(2).Encode(), "orphaned payload");
    raw.Put(kMetaFamily, "short-key", std::string(21, '\x01'));
  }
  {
    auto tier = OpenOrDie(Options(dir.path()));
    ASSERT_NE(tier, nullptr);
    EXPECT_EQ(tier->Usage().blocks, 1u);
    EXPECT_FALSE(tier->Contains(Key(2)));
    int calls = 0;
    ASSERT_TRUE(tier->ForEachBlock([&](const BlockInfo&) { ++calls; }).ok());
    EXPECT_EQ(calls, 1);
    absl::StatusOr<BlockHandle> h = tier->Read(Key(1));
    ASSERT_TRUE(h.ok()) << h.status();
    EXPECT_TRUE(SameBytes(*h, a));
  }
  // Dropped from disk, payload included, so they hold no space outside the capacity bound.
  RawDb raw(dir.path());
  ASSERT_TRUE(raw.ok());
  EXPECT_FALSE(raw.Has(kMetaFamily, Key(2).Encode()));
  EXPECT_FALSE(raw.Has(kPayloadFamily, Key(2).Encode()));
  EXPECT_FALSE(raw.Has(kMetaFamily, "short-key"));
  EXPECT_TRUE(raw.Has(kMetaFamily, Key(1).Encode()));
}

TEST(SsdTierTest, PayloadOfWrongLengthOnDiskIsDataLoss) {
  TempDir dir;
  const auto a = Payload(kMiB, 1);
  {
    auto tier = OpenOrDie(Options(dir.path()));
    ASSERT_NE(tier, nullptr);
    ASSERT_TRUE(tier->Put(Info(Key(1), a), a).ok());
  }
  {
    RawDb raw(dir.path());
    ASSERT_TRUE(raw.ok());
    raw.Put(kPayloadFamily, Key(1).Encode(), "truncated");
  }
  auto tier = OpenOrDie(Options(dir.path()));
  ASSERT_NE(tier, nullptr);
  EXPECT_EQ(tier->Read(Key(1)).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(tier->ReadBatch(std::vector<BlockKey>{Key(1)})[0].status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(SsdTierTest, OpenUnderARegularFileIsFailedPrecondition) {
  TempDir dir;
  const std::string file = dir.path() + "/plain-file";
  std::ofstream(file) << "x";
  absl::StatusOr<std::unique_ptr<SsdTier>> tier = SsdTier::Open(Options(file + "/db"));
  EXPECT_EQ(tier.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(tier.status().message()), HasSubstr(file + "/db"));
  tier = SsdTier::Open(Options(file));
  EXPECT_EQ(tier.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(SsdTierTest, BufferedIoWhenDirectIoIsDisabled) {
  TempDir dir;
  SsdTierOptions options = Options(dir.path());
  options.use_direct_io = false;
  auto tier = OpenOrDie(options);
  ASSERT_NE(tier, nullptr);
  EXPECT_FALSE(tier->direct_io());
}

// tmpfs refuses O_DIRECT on older kernels: the tier must fall back and still work there.
TEST(SsdTierTest, ServesFromTmpfsWithOrWithoutDirectIo) {
  if (!std::filesystem::is_directory("/dev/shm")) GTEST_SKIP() << "no /dev/shm";
  std::string tmpl = "/dev/shm/ssd_tier_test.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
  const std::string path = tmpl;
  const auto a = Payload(2 * kMiB, 1);
  {
    auto tier = OpenOrDie(Options(path));
    ASSERT_NE(tier, nullptr);
    ASSERT_TRUE(tier->Put(Info(Key(1), a), a).ok());
    ASSERT_TRUE(tier->Flush().ok());
    absl::StatusOr<BlockHandle> h = tier->Read(Key(1));
    ASSERT_TRUE(h.ok()) << h.status();
    EXPECT_TRUE(SameBytes(*h, a));
  }
  std::filesystem::remove_all(path);
}

TEST(SsdTierTest, ConcurrentWritersNeverExceedCapacityAndIndexMatchesDisk) {
  TempDir dir;
  constexpr uint64_t kCapacity = 6 * kMiB;
  auto tier = OpenOrDie(Options(dir.path(), kCapacity));
  ASSERT_NE(tier, nullptr);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 40; ++i) {
        const uint64_t n = (t * 7 + i) % 12;
        const auto p = Payload(256 * 1024 * (1 + n % 3), n);
        if (i % 5 == 4) {
          (void)tier->Erase(Key(n));
        } else if (i % 5 == 3) {
          absl::StatusOr<BlockHandle> h = tier->Read(Key(n));
          if (h.ok()) {
            EXPECT_EQ(h->info().checksum, common::Checksum(h->data()));
          }
        } else {
          absl::Status s = tier->Put(Info(Key(n), p), p);
          EXPECT_TRUE(s.ok() || s.code() == absl::StatusCode::kResourceExhausted) << s;
        }
        EXPECT_LE(tier->Usage().used_bytes, kCapacity);
      }
    });
  }
  for (auto& th : threads) th.join();
  uint64_t on_disk = 0, blocks = 0;
  ASSERT_TRUE(tier->ForEachBlock([&](const BlockInfo& i) { on_disk += i.size, ++blocks; }).ok());
  EXPECT_EQ(tier->Usage().used_bytes, on_disk);
  EXPECT_EQ(tier->Usage().blocks, blocks);
}

}  // namespace
}  // namespace strata::cachenode
