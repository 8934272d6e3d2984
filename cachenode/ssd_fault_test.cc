// Fault tests of the SSD tier and the store over it: a full disk, read errors and corrupt bytes
// from the file system, write errors, lost unsynced data (fault_fs.h), and fail points at the tier
// boundaries. Each checks the promise: cached data may be lost, wrong data is never returned, and
// the tier keeps serving (and recovers without a restart).
#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cachenode/fault_fs.h"
#include "cachenode/memory_tier.h"
#include "cachenode/node.h"
#include "cachenode/ssd_tier.h"
#include "cachenode/tiered_store.h"
#include "common/checksum.h"
#include "common/clock.h"
#include "common/fail_point.h"
#include "gtest/gtest.h"

namespace strata::cachenode {
namespace {

constexpr uint64_t kKiB = 1 << 10;
constexpr uint64_t kMiB = 1 << 20;
constexpr common::NamespaceId kNs = 9;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = "/tmp/ssd_fault_test.XXXXXX";
    path_ = mkdtemp(tmpl.data());
    EXPECT_FALSE(path_.empty());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

BlockKey Key(uint64_t n) {
  BlockKey k;
  k.namespace_id = kNs;
  for (size_t i = 0; i < 8; ++i) k.hash.bytes[i] = static_cast<uint8_t>(n >> (56 - 8 * i));
  k.hash.bytes[31] = 0x5f;
  return k;
}

std::vector<std::byte> Payload(size_t size, uint64_t seed) {
  std::vector<std::byte> out(size);
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i + 8 <= size; i += 8) {
    const uint64_t v = rng();
    std::memcpy(out.data() + i, &v, 8);
  }
  for (size_t i = size - size % 8; i < size; ++i) out[i] = static_cast<std::byte>(rng());
  return out;
}

BlockInfo Info(const BlockKey& key, std::span<const std::byte> payload) {
  return BlockInfo{key, payload.size(), common::Checksum(payload), 0};
}

// A block the test wrote, with what it must read back as.
struct Written {
  BlockKey key;
  std::vector<std::byte> payload;
};

Written Block(uint64_t n, size_t size) { return {Key(n), Payload(size, n)}; }

// The tier over a fault-injecting file system, buffered I/O (the file system sees plain appends)
// and a manual clock for resume_interval.
class SsdFaultTest : public ::testing::Test {
 protected:
  SsdTierOptions Options() {
    SsdTierOptions o;
    o.path = dir_.path() + "/ssd";
    o.capacity_bytes = 1ull << 30;
    o.use_direct_io = false;
    o.write_buffer_bytes = 1 * kMiB;
    o.blob_file_bytes = 4 * kMiB;
    o.file_system = fs_;
    o.clock = &clock_;
    o.resume_interval = absl::Seconds(1);
    return o;
  }
  std::unique_ptr<SsdTier> Open() {
    absl::StatusOr<std::unique_ptr<SsdTier>> tier = SsdTier::Open(Options());
    EXPECT_TRUE(tier.ok()) << tier.status();
    return tier.ok() ? std::move(*tier) : nullptr;
  }
  // OK and byte-exact, or a miss; never other bytes. Returns true for an exact hit.
  static bool ExactOrMiss(SsdTier& tier, const Written& w, absl::StatusCode* miss = nullptr) {
    absl::StatusOr<BlockHandle> h = tier.Read(w.key);
    if (!h.ok()) {
      if (miss != nullptr) *miss = h.status().code();
      return false;
    }
    // The tier does not verify (the store does): verify here as the store would, and fail the
    // test on bytes that are wrong yet pass as the block (size and checksum both matching).
    const bool matches = common::Checksum(h->data()) == h->info().checksum;
    const bool exact = h->data().size() == w.payload.size() &&
                       std::memcmp(h->data().data(), w.payload.data(), w.payload.size()) == 0;
    EXPECT_FALSE(matches && !exact) << "wrong bytes passed the checksum";
    if (miss != nullptr && !exact) *miss = absl::StatusCode::kDataLoss;
    return exact;
  }

  TempDir dir_;
  std::shared_ptr<FaultInjectionFileSystem> fs_ = std::make_shared<FaultInjectionFileSystem>();
  common::ManualClock clock_;
};

TEST_F(SsdFaultTest, DiskFullIsResourceExhaustedReadsGoOnAndPutsResumeWhenSpaceReturns) {
  std::unique_ptr<SsdTier> tier = Open();
  std::vector<Written> flushed;
  for (uint64_t i = 0; i < 8; ++i) {
    flushed.push_back(Block(i, 64 * kKiB));
    ASSERT_TRUE(tier->Put(Info(flushed.back().key, flushed.back().payload),
                          flushed.back().payload)
                    .ok());
  }
  ASSERT_TRUE(tier->Flush().ok());
  EXPECT_FALSE(tier->writes_stopped());
  EXPECT_EQ(tier->write_errors(), 0u);

  fs_->SetQuota(fs_->used_bytes());  // the disk is now full
  std::vector<Written> accepted;     // put OK while full: held in memory
  absl::Status flush = absl::OkStatus();
  for (uint64_t i = 100; i < 140; ++i) {
    Written w = Block(i, 64 * kKiB);
    const absl::Status put = tier->Put(Info(w.key, w.payload), w.payload);
    ASSERT_TRUE(put.ok() || absl::IsResourceExhausted(put)) << put;
    if (put.ok()) {
      accepted.push_back(std::move(w));
    } else {
      EXPECT_FALSE(tier->Contains(w.key));
    }
    if (i % 8 == 7) {
      flush = tier->Flush();
      ASSERT_TRUE(flush.ok() || absl::IsResourceExhausted(flush)) << flush;
    }
  }
  EXPECT_TRUE(absl::IsResourceExhausted(flush)) << flush;
  EXPECT_GE(fs_->counters().no_space_errors, 1u);
  // Now stopped: a put fails cleanly, the block stays absent.
  const Written refused = Block(999, 64 * kKiB);
  const absl::Status put = tier->Put(Info(refused.key, refused.payload), refused.payload);
  EXPECT_TRUE(absl::IsResourceExhausted(put)) << put;
  EXPECT_FALSE(tier->Contains(refused.key));
  EXPECT_TRUE(tier->writes_stopped());
  EXPECT_GE(tier->write_errors(), 2u);  // at least the flush and this put

  // Reads keep working: flushed blocks and the ones RocksDB still holds in memory.
  for (const Written& w : flushed) EXPECT_TRUE(ExactOrMiss(*tier, w));
  for (const Written& w : accepted) EXPECT_TRUE(ExactOrMiss(*tier, w));

  // Space returns; after resume_interval the next put resumes RocksDB and succeeds.
  fs_->SetQuota(std::nullopt);
  clock_.Advance(absl::Seconds(1));
  const Written later = Block(2000, 64 * kKiB);
  const absl::Status resumed = tier->Put(Info(later.key, later.payload), later.payload);
  ASSERT_TRUE(resumed.ok()) << resumed;
  EXPECT_GE(tier->resumes(), 1u);
  EXPECT_FALSE(tier->writes_stopped());
  ASSERT_TRUE(tier->Flush().ok());

  tier.reset();
  tier = Open();
  for (const Written& w : flushed) EXPECT_TRUE(ExactOrMiss(*tier, w));
  for (const Written& w : accepted) EXPECT_TRUE(ExactOrMiss(*tier, w));
  EXPECT_TRUE(ExactOrMiss(*tier, later));
  EXPECT_FALSE(tier->Contains(refused.key));
}

TEST_F(SsdFaultTest, ResumeIsTriedAtMostOncePerInterval) {
  std::unique_ptr<SsdTier> tier = Open();
  fs_->SetQuota(fs_->used_bytes());
  Written w = Block(1, 64 * kKiB);
  ASSERT_TRUE(tier->Put(Info(w.key, w.payload), w.payload).ok());  // memory only
  EXPECT_TRUE(absl::IsResourceExhausted(tier->Flush()));
  const uint64_t attempts = tier->resume_attempts();
  for (uint64_t i = 2; i < 10; ++i) {
    Written more = Block(i, 64 * kKiB);
    const absl::Status s = tier->Put(Info(more.key, more.payload), more.payload);
    EXPECT_TRUE(s.ok() || absl::IsResourceExhausted(s)) << s;
  }
  EXPECT_TRUE(absl::IsResourceExhausted(tier->Flush()));
  EXPECT_EQ(tier->resume_attempts(), attempts);  // the clock did not move
  clock_.Advance(absl::Seconds(1));
  EXPECT_TRUE(absl::IsResourceExhausted(tier->Flush()));  // still full: one more try, no luck
  EXPECT_EQ(tier->resume_attempts(), attempts + 1);
  fs_->SetQuota(std::nullopt);
  clock_.Advance(absl::Seconds(1));
  EXPECT_TRUE(tier->Flush().ok());
  EXPECT_TRUE(ExactOrMiss(*tier, w));
}

TEST_F(SsdFaultTest, ReadErrorsFromTheFileSystemAreUnavailableAndTheBlockStays) {
  std::unique_ptr<SsdTier> tier = Open();
  const Written w = Block(1, 256 * kKiB);
  ASSERT_TRUE(tier->Put(Info(w.key, w.payload), w.payload).ok());
  ASSERT_TRUE(tier->Flush().ok());
  fs_->SetReadFaults({.error_probability = 1.0, .kinds = kBlobFile});
  absl::StatusOr<BlockHandle> h = tier->Read(w.key);
  EXPECT_TRUE(absl::IsUnavailable(h.status())) << h.status();
  std::vector<absl::StatusOr<BlockHandle>> batch = tier->ReadBatch({&w.key, 1});
  EXPECT_TRUE(absl::IsUnavailable(batch[0].status())) << batch[0].status();
  EXPECT_TRUE(tier->Contains(w.key));
  EXPECT_GE(fs_->counters().read_errors, 2u);
  fs_->ClearFaults();
  EXPECT_TRUE(ExactOrMiss(*tier, w));
}

TEST_F(SsdFaultTest, WriteErrorsFailThePutsAndLeaveTheirBlocksAbsent) {
  std::unique_ptr<SsdTier> tier = Open();
  const Written before = Block(1, 64 * kKiB);
  ASSERT_TRUE(tier->Put(Info(before.key, before.payload), before.payload).ok());
  ASSERT_TRUE(tier->Flush().ok());
  // Without a WAL a put only reaches memory; the disk fails at the flush (of blob/SST files).
  fs_->SetWriteFaults({.error_probability = 1.0, .kinds = kBlobFile | kSstFile});
  const Written in_memory = Block(2, 64 * kKiB);
  ASSERT_TRUE(tier->Put(Info(in_memory.key, in_memory.payload), in_memory.payload).ok());
  EXPECT_FALSE(tier->writes_stopped());
  EXPECT_FALSE(tier->Flush().ok());
  EXPECT_GE(fs_->counters().write_errors, 1u);
  EXPECT_TRUE(tier->writes_stopped());
  const uint64_t errors = tier->write_errors();
  EXPECT_GE(errors, 1u);
  const Written refused = Block(3, 64 * kKiB);
  EXPECT_FALSE(tier->Put(Info(refused.key, refused.payload), refused.payload).ok());
  EXPECT_EQ(tier->write_errors(), errors + 1);
  EXPECT_FALSE(tier->Contains(refused.key));
  EXPECT_EQ(tier->Read(refused.key).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(ExactOrMiss(*tier, before));
  EXPECT_TRUE(ExactOrMiss(*tier, in_memory));

  // A flush that failed on a plain I/O error is fatal to RocksDB 7.8 (unlike a full disk): puts
  // fail until the tier is reopened, which then works, and the blocks flushed before are intact.
  fs_->ClearFaults();
  tier.reset();
  tier = Open();
  ASSERT_NE(tier, nullptr);
  EXPECT_FALSE(tier->writes_stopped());
  const Written after = Block(4, 64 * kKiB);
  ASSERT_TRUE(tier->Put(Info(after.key, after.payload), after.payload).ok());
  ASSERT_TRUE(tier->Flush().ok());
  EXPECT_TRUE(ExactOrMiss(*tier, before));
  EXPECT_TRUE(ExactOrMiss(*tier, after));
  EXPECT_FALSE(tier->Contains(refused.key));
  absl::StatusCode miss = absl::StatusCode::kOk;
  if (!ExactOrMiss(*tier, in_memory, &miss)) {
    EXPECT_EQ(miss, absl::StatusCode::kNotFound);  // its flush failed: lost, never wrong
  }
}

TEST_F(SsdFaultTest, FlushedBlocksSurviveLostUnsyncedDataAndLaterOnesAreExactOrAbsent) {
  std::mt19937_64 rng(17);
  std::vector<Written> flushed;
  std::vector<Written> later;
  {
    std::unique_ptr<SsdTier> tier = Open();
    for (uint64_t i = 0; i < 300; ++i) {
      flushed.push_back(Block(i, std::uniform_int_distribution<size_t>(1, 48)(rng) * kKiB));
      ASSERT_TRUE(tier->Put(Info(flushed.back().key, flushed.back().payload),
                            flushed.back().payload)
                      .ok());
      if (i == 150) {
        ASSERT_TRUE(tier->Flush().ok());  // a flush in the middle, too
      }
    }
    ASSERT_TRUE(tier->Flush().ok());
    // Written after the last flush: some reach files (memtables fill and flush on their own),
    // none is promised to survive. Halfway, syncs of data files start failing, so flushes leave
    // written but unsynced bytes behind for the crash to drop.
    for (uint64_t i = 1000; i < 1200; ++i) {
      if (i == 1100) {
        // Deletes fail too, so the failed flush's files stay behind, half written.
        fs_->SetWriteFaults({.sync_error_probability = 1.0,
                             .delete_error_probability = 1.0,
                             .kinds = kBlobFile | kSstFile});
      }
      Written w = Block(i, std::uniform_int_distribution<size_t>(1, 48)(rng) * kKiB);
      const absl::Status put = tier->Put(Info(w.key, w.payload), w.payload);
      if (i < 1100) {
        ASSERT_TRUE(put.ok()) << put;
      }
      if (put.ok()) later.push_back(std::move(w));  // a refused one is simply never written
    }
    fs_->SetActive(false);  // the crash: the closing DB cannot persist anything more
  }
  EXPECT_GE(fs_->counters().sync_errors, 1u);
  ASSERT_TRUE(fs_->DropUnsyncedData().ok());
  EXPECT_GT(fs_->counters().dropped_bytes, 0u);
  fs_->SetActive(true);
  fs_->ClearFaults();
  std::unique_ptr<SsdTier> tier = Open();
  ASSERT_NE(tier, nullptr);
  for (const Written& w : flushed) {
    EXPECT_TRUE(ExactOrMiss(*tier, w)) << "a flushed block was lost or changed";
  }
  size_t exact = 0, absent = 0;
  for (const Written& w : later) {
    absl::StatusCode miss = absl::StatusCode::kOk;
    if (ExactOrMiss(*tier, w, &miss)) {
      ++exact;
    } else {
      EXPECT_EQ(miss, absl::StatusCode::kNotFound) << "a later block is present but unreadable";
      ++absent;
    }
  }
  EXPECT_EQ(exact + absent, later.size());
  std::printf("lost unsynced data: %zu flushed blocks exact, later blocks %zu exact / %zu absent, "
              "%llu bytes dropped\n",
              flushed.size(), exact, absent,
              static_cast<unsigned long long>(fs_->counters().dropped_bytes));
}

// ---- The store over a faulty SSD ----

class StoreFaultTest : public SsdFaultTest {
 protected:
  std::unique_ptr<TieredStore> OpenStore(uint64_t dram_bytes) {
    StoreTiers tiers;
    if (dram_bytes > 0) {
      tiers.dram = std::make_unique<MemoryTier>(
          MemoryTierOptions{}, std::move(*CreateHostMemory({dram_bytes, false, false, "dram"})));
    }
    tiers.ssd = Open();
    absl::StatusOr<std::unique_ptr<TieredStore>> store =
        TieredStore::Open(TieredStoreOptions{}, std::move(tiers));
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(*store) : nullptr;
  }
  absl::StatusOr<TierKind> Put(TieredStore& store, const Written& w) {
    return store.Put(Info(w.key, w.payload), w.payload, false);
  }
  // Reads one block: exact bytes or a miss; wrong bytes fail the test.
  static BlockRead Get(TieredStore& store, const Written& w) {
    std::vector<BlockRead> r = store.GetChain(kNs, {&w.key.hash, 1}, false);
    EXPECT_EQ(r.size(), 1u);
    if (r[0].status.ok()) {
      EXPECT_EQ(r[0].handle.data().size(), w.payload.size());
      EXPECT_EQ(std::memcmp(r[0].handle.data().data(), w.payload.data(), w.payload.size()), 0)
          << "wrong bytes served";
    }
    return std::move(r[0]);
  }
  static uint64_t ChecksumFailures(const TieredStore& store, TierKind kind) {
    for (const StoreStats::PerTier& t : store.Stats().tiers) {
      if (t.kind == kind) return t.counters.checksum_failures;
    }
    return 0;
  }
  void TearDown() override { common::FailPoints::Global().DisarmAll(); }
};

TEST_F(StoreFaultTest, CorruptBytesFromTheFileSystemAreCaughtByTheChecksumAndCounted) {
  std::unique_ptr<TieredStore> store = OpenStore(0);
  std::vector<Written> blocks;
  for (uint64_t i = 0; i < 60; ++i) {
    blocks.push_back(Block(i, (16 + i) * kKiB));
    ASSERT_TRUE(Put(*store, blocks.back()).ok());
  }
  ASSERT_TRUE(store->Drain().ok());
  fs_->SetReadFaults({.corrupt_probability = 0.5, .kinds = kBlobFile});
  size_t exact = 0, data_loss = 0;
  for (const Written& w : blocks) {
    const BlockRead r = Get(*store, w);
    if (r.status.ok()) {
      ++exact;
    } else {
      EXPECT_TRUE(absl::IsDataLoss(r.status)) << r.status;
      ++data_loss;
    }
  }
  const FaultCounters c = fs_->counters();
  EXPECT_GT(c.corrupted_reads, 0u);
  EXPECT_GT(data_loss, 0u);
  EXPECT_EQ(ChecksumFailures(*store, TierKind::kSsd), data_loss);
  // A corrupt copy is dropped: the next read is an ordinary miss, the store keeps serving.
  fs_->ClearFaults();
  for (const Written& w : blocks) {
    const BlockRead r = Get(*store, w);
    EXPECT_TRUE(r.status.ok() || absl::IsNotFound(r.status)) << r.status;
  }
  std::printf("corrupt reads: %llu injected, %zu exact, %zu DATA_LOSS, 0 wrong\n",
              static_cast<unsigned long long>(c.corrupted_reads), exact, data_loss);
}

TEST_F(StoreFaultTest, ReadErrorsAreUnavailableMissesNotChecksumFailuresAndTheBlockStays) {
  std::unique_ptr<TieredStore> store = OpenStore(0);
  const Written w = Block(1, 128 * kKiB);
  ASSERT_TRUE(Put(*store, w).ok());
  ASSERT_TRUE(store->Drain().ok());
  fs_->SetReadFaults({.error_probability = 1.0, .kinds = kBlobFile});
  const BlockRead miss = Get(*store, w);
  EXPECT_TRUE(absl::IsUnavailable(miss.status)) << miss.status;
  EXPECT_EQ(ChecksumFailures(*store, TierKind::kSsd), 0u);
  EXPECT_EQ(store->Stats().misses, 1u);
  fs_->ClearFaults();
  EXPECT_TRUE(Get(*store, w).status.ok());
}

TEST_F(StoreFaultTest, DiskFullWriteBehindKeepsBlocksInDramAndPersistsThemWhenSpaceReturns) {
  std::unique_ptr<TieredStore> store = OpenStore(64 * kMiB);
  fs_->SetQuota(fs_->used_bytes());
  std::vector<Written> blocks;
  for (uint64_t i = 0; i < 4; ++i) {
    blocks.push_back(Block(i, 256 * kKiB));
    ASSERT_EQ(Put(*store, blocks.back()).value(), TierKind::kDram);
  }
  // The batch fits in memory, so the write itself may succeed; the flush cannot.
  store->FlushWriteBehind();
  EXPECT_TRUE(absl::IsResourceExhausted(store->Drain())) << "drain on a full disk";
  for (const Written& w : blocks) EXPECT_EQ(Get(*store, w).tier, TierKind::kDram);
  // Puts succeed (into DRAM), so the full disk shows in the SSD tier's state (a metric).
  const auto* ssd = dynamic_cast<const SsdTier*>(store->tier(TierKind::kSsd));
  ASSERT_NE(ssd, nullptr);
  EXPECT_TRUE(ssd->writes_stopped());
  fs_->SetQuota(std::nullopt);
  clock_.Advance(absl::Seconds(1));
  EXPECT_TRUE(store->Drain().ok());
  EXPECT_FALSE(ssd->writes_stopped());
  EXPECT_EQ(store->Stats().write_behind_pending, 0u);
  EXPECT_EQ(store->Stats().persisted_blocks, blocks.size());
}

// ---- Fail points at the tier boundaries ----

class FailPointStoreTest : public StoreFaultTest {
 protected:
  void SetUp() override {
    if (!common::kFailPointsCompiled) GTEST_SKIP() << "built without STRATA_FAIL_POINTS";
  }
};

TEST_F(FailPointStoreTest, WriteBehindToAFailingSsdKeepsTheBlockInDramRetriesAndPersistsLater) {
  std::unique_ptr<TieredStore> store = OpenStore(64 * kMiB);
  ASSERT_TRUE(common::FailPoints::Global().ArmFromString("ssd.put=error(INTERNAL)").ok());
  const Written w = Block(1, 512 * kKiB);
  ASSERT_EQ(Put(*store, w).value(), TierKind::kDram);
  EXPECT_EQ(store->FlushWriteBehind(), 0u);
  EXPECT_EQ(store->FlushWriteBehind(), 0u);  // retried, failed again
  EXPECT_EQ(common::FailPoints::Global().fired("ssd.put"), 2u);
  StoreStats stats = store->Stats();
  EXPECT_EQ(stats.write_behind_pending, 1u);
  EXPECT_EQ(stats.persisted_blocks, 0u);
  const BlockRead r = Get(*store, w);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.tier, TierKind::kDram);

  common::FailPoints::Global().Disarm("ssd.put");
  EXPECT_EQ(store->FlushWriteBehind(), 1u);
  stats = store->Stats();
  EXPECT_EQ(stats.write_behind_pending, 0u);
  EXPECT_EQ(stats.persisted_blocks, 1u);
  ASSERT_TRUE(store->Drain().ok());
}

TEST_F(FailPointStoreTest, FailingReadsAreMissesOrLowerCopiesNeverWrongBytes) {
  std::unique_ptr<TieredStore> store = OpenStore(64 * kMiB);
  const Written w = Block(1, 300 * kKiB);
  ASSERT_TRUE(Put(*store, w).ok());
  ASSERT_TRUE(store->Drain().ok());  // copies in DRAM and on SSD

  ASSERT_TRUE(common::FailPoints::Global().ArmFromString("dram.read=error").ok());
  BlockRead r = Get(*store, w);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.tier, TierKind::kSsd);  // the failing DRAM read fell back to the SSD copy

  ASSERT_TRUE(common::FailPoints::Global().ArmFromString("ssd.read=error").ok());
  const uint64_t misses = store->Stats().misses;
  r = Get(*store, w);
  EXPECT_TRUE(absl::IsUnavailable(r.status)) << r.status;
  EXPECT_EQ(store->Stats().misses, misses + 1);
  EXPECT_EQ(ChecksumFailures(*store, TierKind::kDram), 0u);
  EXPECT_EQ(ChecksumFailures(*store, TierKind::kSsd), 0u);

  common::FailPoints::Global().DisarmAll();
  r = Get(*store, w);  // both copies were kept
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.tier, TierKind::kDram);
}

TEST_F(FailPointStoreTest, SlowReadIsASlowHitWithExactBytes) {
  std::unique_ptr<TieredStore> store = OpenStore(0);
  const Written w = Block(1, 200 * kKiB);
  ASSERT_TRUE(Put(*store, w).ok());
  ASSERT_TRUE(common::FailPoints::Global().ArmFromString("ssd.read=delay(5ms)").ok());
  const BlockRead r = Get(*store, w);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(common::FailPoints::Global().fired("ssd.read"), 1u);
}

TEST_F(FailPointStoreTest, CorruptDramSlotIsDroppedCountedAndServedFromTheSsdCopy) {
  std::unique_ptr<TieredStore> store = OpenStore(64 * kMiB);
  const Written w = Block(1, 100 * kKiB);
  ASSERT_TRUE(Put(*store, w).ok());
  ASSERT_TRUE(store->Drain().ok());
  ASSERT_TRUE(common::FailPoints::Global().ArmFromString("dram.corrupt_read=error,times=1").ok());
  const BlockRead r = Get(*store, w);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.tier, TierKind::kSsd);
  EXPECT_EQ(ChecksumFailures(*store, TierKind::kDram), 1u);
}

TEST_F(FailPointStoreTest, FailingDramPutIsReportedAndStoresNothing) {
  std::unique_ptr<TieredStore> store = OpenStore(64 * kMiB);
  ASSERT_TRUE(common::FailPoints::Global().ArmFromString("dram.put=error(INTERNAL)").ok());
  const Written w = Block(1, 100 * kKiB);
  const absl::StatusOr<TierKind> put = Put(*store, w);
  EXPECT_TRUE(absl::IsInternal(put.status())) << put.status();
  EXPECT_TRUE(absl::IsNotFound(Get(*store, w).status));
}

TEST_F(FailPointStoreTest, FailingFlushMakesDrainFailAndALaterDrainPersists) {
  std::unique_ptr<TieredStore> store = OpenStore(64 * kMiB);
  const Written w = Block(1, 100 * kKiB);
  ASSERT_TRUE(Put(*store, w).ok());
  ASSERT_TRUE(common::FailPoints::Global().ArmFromString("ssd.flush=error(INTERNAL)").ok());
  EXPECT_TRUE(absl::IsInternal(store->Drain()));
  common::FailPoints::Global().DisarmAll();
  EXPECT_TRUE(store->Drain().ok());
  EXPECT_EQ(store->Stats().persisted_blocks, 1u);
}

// ---- The node's open policy ----

// Directories named ssd.corrupt-* under `dir`.
std::vector<std::string> CorruptDirs(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("ssd.corrupt-", 0) == 0) out.push_back(name);
  }
  return out;
}

// Overwrites every MANIFEST of the store at `path` with garbage: RocksDB then calls it corrupt.
void CorruptManifest(const std::string& path) {
  int corrupted = 0;
  for (const auto& e : std::filesystem::directory_iterator(path)) {
    if (e.path().filename().string().rfind("MANIFEST-", 0) != 0) continue;
    std::ofstream(e.path(), std::ios::binary | std::ios::trunc) << std::string(300, '\x5a');
    ++corrupted;
  }
  ASSERT_GT(corrupted, 0);
}

NodeOptions SmallNode(const std::string& data_dir) {
  NodeOptions o;
  o.data_dir = data_dir;
  o.dram_bytes = 16 * kMiB;
  o.ssd.capacity_bytes = 64 * kMiB;
  o.ssd.use_direct_io = false;
  return o;
}

TEST(NodeSsdOpenTest, CorruptStoreIsMovedAsideAndTheNodeStartsWithAnEmptySsdTier) {
  TempDir dir;
  const std::string data = dir.path() + "/data";
  const Written w = Block(1, 64 * kKiB);
  {
    absl::StatusOr<std::unique_ptr<Node>> node = Node::Create(SmallNode(data));
    ASSERT_TRUE(node.ok()) << node.status();
    ASSERT_TRUE((*node)->store()->Put(Info(w.key, w.payload), w.payload, false).ok());
    ASSERT_TRUE((*node)->Shutdown().ok());  // persists the block
  }
  CorruptManifest(data + "/ssd");
  {
    absl::StatusOr<std::unique_ptr<Node>> node = Node::Create(SmallNode(data));
    ASSERT_TRUE(node.ok()) << "a corrupt cache must not stop the node: " << node.status();
    EXPECT_EQ((*node)->store()->Stats().blocks, 0u);
    // It serves: a put lands and persists in the fresh SSD tier.
    ASSERT_TRUE((*node)->store()->Put(Info(w.key, w.payload), w.payload, false).ok());
    ASSERT_TRUE((*node)->Shutdown().ok());
  }
  EXPECT_EQ(CorruptDirs(data).size(), 1u);
  // Corrupt again: still exactly one directory moved aside (the newest), never a pile of them.
  CorruptManifest(data + "/ssd");
  absl::StatusOr<std::unique_ptr<Node>> node = Node::Create(SmallNode(data));
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_EQ(CorruptDirs(data).size(), 1u);
}

TEST(NodeSsdOpenTest, OtherOpenErrorsStayFatal) {
  TempDir dir;
  const std::string data = dir.path() + "/data";
  std::filesystem::create_directories(data);
  std::ofstream(data + "/ssd") << "a regular file where the store should be";
  absl::StatusOr<std::unique_ptr<Node>> node = Node::Create(SmallNode(data));
  EXPECT_FALSE(node.ok());
  EXPECT_FALSE(absl::IsDataLoss(node.status())) << node.status();
  EXPECT_TRUE(CorruptDirs(data).empty());
}

}  // namespace
}  // namespace strata::cachenode
