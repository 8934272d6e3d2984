// ShmServer against the wire contract (strata/v1/local.proto), spoken by a minimal raw client so
// the tests can also do what a well-behaved client library never does (wrong checksums, vanishing
// without releasing, scribbling on the arena). Leases expire on a ManualClock.
#include "cachenode/shm_server.h"

#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <random>
#include <string>
#include <thread>

#include "cachenode/memory_tier.h"
#include "common/checksum.h"
#include "common/fd_message.h"
#include "gtest/gtest.h"

namespace strata::cachenode {
namespace {

namespace v1 = ::strata::v1;

constexpr uint64_t kMiB = 1ull << 20;
constexpr common::NamespaceId kNs = 42;

common::ChainHash HashOf(uint32_t id) {
  common::ChainHash h;
  std::memcpy(h.bytes.data(), &id, sizeof(id));
  h.bytes[31] = 0xab;
  return h;
}

std::string PayloadOf(uint32_t id, uint64_t size) {
  std::string s(size, '\0');
  std::mt19937_64 rng(id);
  for (size_t i = 0; i + 8 <= s.size(); i += 8) {
    const uint64_t v = rng();
    std::memcpy(&s[i], &v, 8);
  }
  return s;
}

std::span<const std::byte> Bytes(const std::string& s) { return std::as_bytes(std::span(s)); }

// Speaks the protocol directly: one request, one response; the arena mapped read-write.
class RawClient {
 public:
  explicit RawClient(const std::string& path) {
    fd_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    v1::LocalRequest hello;
    hello.mutable_hello()->set_protocol_version(1);
    int memfd = -1;
    hello_ = Call(hello, &memfd);
    if (memfd >= 0) {
      arena_bytes_ = hello_.hello().arena_bytes();
      void* base = mmap(nullptr, arena_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
      close(memfd);
      if (base != MAP_FAILED) arena_ = static_cast<std::byte*>(base);
    }
  }
  ~RawClient() {
    if (arena_ != nullptr) munmap(arena_, arena_bytes_);
    Disconnect();
  }
  void Disconnect() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  bool ok() const { return connected_ && arena_ != nullptr; }
  std::byte* arena() const { return arena_; }

  v1::LocalResponse Call(const v1::LocalRequest& request, int* memfd = nullptr) {
    const std::string bytes = request.SerializeAsString();
    v1::LocalResponse response;
    if (send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) < 0) {
      response.set_code(14);
      return response;
    }
    absl::StatusOr<std::string> raw = common::ReceiveFdMessage(fd_, kMaxLocalMessageBytes, memfd);
    if (!raw.ok()) {
      response.set_code(14);
      return response;
    }
    EXPECT_TRUE(response.ParseFromString(*raw));
    return response;
  }

  v1::LocalResponse Get(const std::vector<common::ChainHash>& chain, bool stop = true) {
    v1::LocalRequest r;
    r.mutable_get()->set_namespace_id(kNs);
    r.mutable_get()->set_stop_at_first_miss(stop);
    for (const auto& h : chain) r.mutable_get()->add_chain_hashes(std::string(h.view()));
    return Call(r);
  }
  v1::LocalResponse Release(uint64_t lease, std::vector<uint32_t> corrupt = {}) {
    v1::LocalRequest r;
    r.mutable_release()->set_lease_id(lease);
    for (uint32_t i : corrupt) r.mutable_release()->add_corrupt_indices(i);
    return Call(r);
  }
  v1::LocalResponse Reserve(uint32_t id, uint64_t size) {
    v1::LocalRequest r;
    r.mutable_reserve()->set_namespace_id(kNs);
    v1::LocalReserveBlock* b = r.mutable_reserve()->add_blocks();
    b->set_chain_hash(std::string(HashOf(id).view()));
    b->set_size_bytes(size);
    return Call(r);
  }
  v1::LocalResponse Commit(uint64_t reservation, uint64_t checksum) {
    v1::LocalRequest r;
    r.mutable_commit()->set_reservation_id(reservation);
    r.mutable_commit()->add_checksums(checksum);
    return Call(r);
  }
  // Reserve + write + commit of one block; the commit's response (code set when reserve failed).
  v1::LocalResponse Put(uint32_t id, const std::string& payload) {
    v1::LocalResponse reserved = Reserve(id, payload.size());
    if (reserved.code() != 0) return reserved;
    std::memcpy(arena_ + reserved.reserve().offsets(0), payload.data(), payload.size());
    return Commit(reserved.reserve().reservation_id(), common::Checksum(payload));
  }
  v1::LocalStatsResponse Stats(uint32_t wait_until_clients_at_most = 0) {
    v1::LocalRequest r;
    r.mutable_stats()->set_wait_until_clients_at_most(wait_until_clients_at_most);
    r.mutable_stats()->set_wait_timeout_ms(60'000);
    return Call(r).stats();
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  v1::LocalResponse hello_;
  std::byte* arena_ = nullptr;
  uint64_t arena_bytes_ = 0;
};

class ShmServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/strata-shm-test-XXXXXX";
    dir_ = mkdtemp(tmpl);
    socket_path_ = dir_ + "/sock";
  }
  void TearDown() override {
    server_.reset();
    store_.reset();
    rmdir(dir_.c_str());
  }

  // A store with a memfd DRAM tier of `dram` bytes (and an emulated HBM tier when `hbm` > 0),
  // served on the socket.
  void StartServer(uint64_t dram, uint64_t hbm = 0, ShmServerOptions options = {}) {
    StoreTiers tiers;
    tiers.dram = std::make_unique<MemoryTier>(
        MemoryTierOptions{}, std::move(*CreateHostMemory({dram, true, false, "dram"})));
    if (hbm > 0) {
      tiers.hbm =
          std::make_unique<MemoryTier>(MemoryTierOptions{TierKind::kHbm, "hbm(emulated)", true},
                                       std::move(*CreateHostMemory({hbm, false, false, "hbm"})));
    }
    TieredStoreOptions store_options;
    store_options.promote_after_hits = 0;
    auto store = TieredStore::Open(store_options, std::move(tiers));
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    options.socket_path = socket_path_;
    auto server = ShmServer::Start(options, store_.get(), nullptr, &clock_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }

  void StorePut(uint32_t id, uint64_t size, bool from_gpu = false) {
    const std::string p = PayloadOf(id, size);
    ASSERT_TRUE(store_->Put(BlockInfo{{kNs, HashOf(id)}, size, common::Checksum(p), 0}, Bytes(p),
                            from_gpu)
                    .ok());
  }

  // Where the store keeps block `id`'s DRAM copy now, as an arena offset (-1 when not in DRAM).
  int64_t DramOffsetOf(uint32_t id) {
    auto h = store_->tier(TierKind::kDram)->Read(BlockKey{kNs, HashOf(id)});
    if (!h.ok()) return -1;
    return h->data().data() - store_->dram_memory()->host_base();
  }

  uint64_t DramUsed() { return store_->tier(TierKind::kDram)->Usage().used_bytes; }

  std::string dir_;
  std::string socket_path_;
  common::ManualClock clock_;
  std::unique_ptr<TieredStore> store_;
  std::unique_ptr<ShmServer> server_;
};

TEST(ShmServerOptionsTest, ValidateNamesTheBadField) {
  ShmServerOptions o;
  EXPECT_TRUE(absl::IsInvalidArgument(o.Validate()));  // no socket path
  o.socket_path = "/tmp/x";
  EXPECT_TRUE(o.Validate().ok());
  o.socket_path = std::string(200, 'a');
  EXPECT_TRUE(absl::IsInvalidArgument(o.Validate()));
  o.socket_path = "/tmp/x";
  o.lease_ttl = absl::ZeroDuration();
  EXPECT_TRUE(absl::IsInvalidArgument(o.Validate()));
}

TEST_F(ShmServerTest, StartRefusesADramTierThatIsNotAMemfd) {
  StoreTiers tiers;
  tiers.dram = std::make_unique<MemoryTier>(
      MemoryTierOptions{}, std::move(*CreateHostMemory({8 * kMiB, false, false, "anon"})));
  auto store = TieredStore::Open({}, std::move(tiers));
  ASSERT_TRUE(store.ok());
  ShmServerOptions options;
  options.socket_path = socket_path_;
  auto server = ShmServer::Start(options, store->get(), nullptr, &clock_);
  EXPECT_TRUE(absl::IsFailedPrecondition(server.status())) << server.status();
}

TEST_F(ShmServerTest, GetHandsOutTheDramCopyInPlaceAndPinsItUntilRelease) {
  StartServer(16 * kMiB);
  StorePut(1, kMiB);
  RawClient c(socket_path_);
  ASSERT_TRUE(c.ok());
  v1::LocalResponse r = c.Get({HashOf(1)});
  ASSERT_EQ(r.code(), 0) << r.message();
  ASSERT_EQ(r.get().blocks_size(), 1);
  const v1::LocalBlockLocation& b = r.get().blocks(0);
  ASSERT_TRUE(b.found());
  EXPECT_EQ(b.tier(), v1::TIER_DRAM);
  EXPECT_EQ(static_cast<int64_t>(b.offset()), DramOffsetOf(1));  // no copy on the node
  const std::string want = PayloadOf(1, kMiB);
  EXPECT_EQ(std::memcmp(c.arena() + b.offset(), want.data(), want.size()), 0);
  EXPECT_EQ(b.checksum(), common::Checksum(want));
  EXPECT_EQ(server_->Stats().pinned_bytes, kMiB);
  EXPECT_EQ(server_->Stats().live_leases, 1u);
  ASSERT_EQ(c.Release(r.get().lease_id()).code(), 0);
  EXPECT_EQ(server_->Stats().pinned_bytes, 0u);
  EXPECT_EQ(server_->Stats().released_leases, 1u);
  // A second release of the same lease is a miss, not a double free.
  EXPECT_EQ(c.Release(r.get().lease_id()).code(), static_cast<int>(absl::StatusCode::kNotFound));
}

TEST_F(ShmServerTest, ChainReadStopsAtTheFirstMiss) {
  StartServer(16 * kMiB);
  StorePut(1, kMiB);
  StorePut(3, kMiB);
  RawClient c(socket_path_);
  v1::LocalResponse r = c.Get({HashOf(1), HashOf(2), HashOf(3)});
  ASSERT_EQ(r.code(), 0);
  ASSERT_EQ(r.get().blocks_size(), 2);
  EXPECT_TRUE(r.get().blocks(0).found());
  EXPECT_FALSE(r.get().blocks(1).found());
  EXPECT_EQ(r.get().blocks(1).miss_code(), static_cast<int>(absl::StatusCode::kNotFound));
  EXPECT_EQ(server_->Stats().pinned_bytes, kMiB);
}

TEST_F(ShmServerTest, ExpiredLeaseFreesItsPinSoTheSlotIsReused) {
  // One 4 MiB slab of four 1 MiB slots.
  StartServer(4 * kMiB);
  StorePut(1, kMiB);
  const int64_t pinned_offset = DramOffsetOf(1);
  RawClient c(socket_path_);
  v1::LocalResponse r = c.Get({HashOf(1)});
  ASSERT_TRUE(r.get().blocks(0).found());
  ASSERT_EQ(store_->Delete(kNs, std::vector{HashOf(1)}), 1u);
  // The deleted block's slot stays pinned: puts that keep evicting each other never land there.
  for (uint32_t id = 10; id < 20; ++id) {
    StorePut(id, kMiB);
    EXPECT_NE(DramOffsetOf(id), pinned_offset);
  }
  const std::string want = PayloadOf(1, kMiB);
  EXPECT_EQ(std::memcmp(c.arena() + pinned_offset, want.data(), want.size()), 0);

  clock_.Advance(absl::Seconds(29));
  EXPECT_EQ(server_->ExpireLeases(), 0u);
  clock_.Advance(absl::Seconds(2));
  EXPECT_EQ(server_->ExpireLeases(), 1u);
  EXPECT_EQ(server_->Stats().pinned_bytes, 0u);
  EXPECT_EQ(server_->Stats().expired_leases, 1u);
  StorePut(30, kMiB);
  EXPECT_EQ(DramOffsetOf(30), pinned_offset);  // the slot is free again
  // The expired lease cannot be released any more.
  EXPECT_EQ(c.Release(r.get().lease_id()).code(), static_cast<int>(absl::StatusCode::kNotFound));
}

TEST_F(ShmServerTest, DisconnectReleasesEveryLeaseAndReservationAtOnce) {
  StartServer(16 * kMiB);
  StorePut(1, kMiB);
  const uint64_t used_before = DramUsed();
  RawClient observer(socket_path_);
  {
    RawClient c(socket_path_);
    ASSERT_TRUE(c.Get({HashOf(1)}).get().blocks(0).found());
    ASSERT_EQ(c.Reserve(2, 2 * kMiB).code(), 0);
    const v1::LocalStatsResponse s = observer.Stats();
    EXPECT_EQ(s.clients(), 2u);
    EXPECT_EQ(s.pinned_bytes(), kMiB);
    EXPECT_EQ(s.reserved_bytes(), 2 * kMiB);
    c.Disconnect();  // no Release, no Abort: as if the process was killed
  }
  const v1::LocalStatsResponse s = observer.Stats(/*wait_until_clients_at_most=*/1);
  EXPECT_EQ(s.clients(), 1u);
  EXPECT_EQ(s.pinned_bytes(), 0u);
  EXPECT_EQ(s.reserved_bytes(), 0u);
  EXPECT_EQ(s.live_leases(), 0u);
  EXPECT_EQ(s.disconnect_released(), 2u);
  EXPECT_EQ(DramUsed(), used_before);  // the reserved slot went back to the arena
}

TEST_F(ShmServerTest, UncommittedReservationIsFreedOnAbortAndOnExpiry) {
  StartServer(16 * kMiB);
  RawClient c(socket_path_);
  v1::LocalResponse reserved = c.Reserve(1, kMiB);
  ASSERT_EQ(reserved.code(), 0) << reserved.message();
  EXPECT_EQ(DramUsed(), kMiB);
  v1::LocalRequest abort;
  abort.mutable_abort()->set_reservation_id(reserved.reserve().reservation_id());
  ASSERT_EQ(c.Call(abort).code(), 0);
  EXPECT_EQ(DramUsed(), 0u);

  reserved = c.Reserve(1, kMiB);
  ASSERT_EQ(reserved.code(), 0);
  clock_.Advance(absl::Seconds(31));
  EXPECT_EQ(server_->ExpireLeases(), 1u);
  EXPECT_EQ(DramUsed(), 0u);
  EXPECT_EQ(server_->Stats().expired_reservations, 1u);
  v1::LocalResponse late = c.Commit(reserved.reserve().reservation_id(), 0);
  EXPECT_EQ(late.code(), static_cast<int>(absl::StatusCode::kNotFound));
  EXPECT_EQ(store_->Lookup(kNs, std::vector{HashOf(1)}).matched_blocks, 0u);
}

TEST_F(ShmServerTest, CommitAdoptsTheClientsSlotWithoutACopy) {
  StartServer(16 * kMiB);
  RawClient c(socket_path_);
  const std::string p = PayloadOf(5, 3 * kMiB);
  v1::LocalResponse reserved = c.Reserve(5, p.size());
  ASSERT_EQ(reserved.code(), 0);
  const uint64_t offset = reserved.reserve().offsets(0);
  std::memcpy(c.arena() + offset, p.data(), p.size());
  v1::LocalResponse committed = c.Commit(reserved.reserve().reservation_id(), common::Checksum(p));
  ASSERT_EQ(committed.code(), 0);
  ASSERT_EQ(committed.commit().results(0).code(), 0) << committed.commit().results(0).message();
  EXPECT_EQ(committed.commit().results(0).tier(), v1::TIER_DRAM);
  EXPECT_EQ(DramOffsetOf(5), static_cast<int64_t>(offset));
  EXPECT_EQ(server_->Stats().committed_blocks, 1u);
  EXPECT_EQ(server_->Stats().reserved_bytes, 0u);
}

TEST_F(ShmServerTest, CommitWithAWrongChecksumFailsDataLossAndStoresNothing) {
  StartServer(16 * kMiB);
  RawClient c(socket_path_);
  const std::string p = PayloadOf(6, kMiB);
  v1::LocalResponse reserved = c.Reserve(6, p.size());
  ASSERT_EQ(reserved.code(), 0);
  std::memcpy(c.arena() + reserved.reserve().offsets(0), p.data(), p.size());
  v1::LocalResponse committed =
      c.Commit(reserved.reserve().reservation_id(), common::Checksum(p) + 1);
  ASSERT_EQ(committed.code(), 0);
  EXPECT_EQ(committed.commit().results(0).code(), static_cast<int>(absl::StatusCode::kDataLoss));
  EXPECT_EQ(store_->Lookup(kNs, std::vector{HashOf(6)}).matched_blocks, 0u);
  EXPECT_EQ(DramUsed(), 0u);
  EXPECT_EQ(server_->Stats().committed_blocks, 0u);
}

TEST_F(ShmServerTest, BlockOutsideDramIsCopiedIntoATemporarySlotHeldByTheLease) {
  StartServer(16 * kMiB, /*hbm=*/16 * kMiB);
  StorePut(7, kMiB, /*from_gpu=*/true);  // lands in hbm(emulated) only
  ASSERT_EQ(DramOffsetOf(7), -1);
  RawClient c(socket_path_);
  v1::LocalResponse r = c.Get({HashOf(7)});
  ASSERT_EQ(r.code(), 0);
  const v1::LocalBlockLocation& b = r.get().blocks(0);
  ASSERT_TRUE(b.found());
  EXPECT_EQ(b.tier(), v1::TIER_HBM);
  const std::string want = PayloadOf(7, kMiB);
  EXPECT_EQ(std::memcmp(c.arena() + b.offset(), want.data(), want.size()), 0);
  EXPECT_EQ(DramUsed(), kMiB);  // the temporary slot
  EXPECT_EQ(DramOffsetOf(7), -1);  // not a DRAM copy of the block
  ASSERT_EQ(c.Release(r.get().lease_id()).code(), 0);
  EXPECT_EQ(DramUsed(), 0u);
}

TEST_F(ShmServerTest, ReportedCorruptCopyIsDroppedAndCounted) {
  StartServer(16 * kMiB);
  StorePut(1, kMiB);
  StorePut(2, kMiB);
  RawClient c(socket_path_);
  v1::LocalResponse r = c.Get({HashOf(1), HashOf(2)});
  ASSERT_EQ(r.get().blocks_size(), 2);
  // Another client scribbles on block 1 through its writable mapping; block 2 stays good but is
  // falsely reported too: the node re-checks and keeps it.
  c.arena()[r.get().blocks(0).offset() + 10] ^= std::byte{0x40};
  v1::LocalResponse released = c.Release(r.get().lease_id(), {0, 1});
  ASSERT_EQ(released.code(), 0);
  EXPECT_EQ(released.release().dropped_copies(), 1u);
  EXPECT_EQ(store_->Lookup(kNs, std::vector{HashOf(1)}).matched_blocks, 0u);
  EXPECT_EQ(store_->Lookup(kNs, std::vector{HashOf(2)}).matched_blocks, 1u);
  EXPECT_EQ(server_->Stats().checksum_reports, 1u);
}

TEST_F(ShmServerTest, NodeVerifiedReadsTurnAScribbledCopyIntoADataLossMiss) {
  ShmServerOptions options;
  options.verify_dram_reads = true;
  StartServer(16 * kMiB, 0, options);
  StorePut(1, kMiB);
  RawClient c(socket_path_);
  c.arena()[DramOffsetOf(1) + 5] ^= std::byte{1};
  v1::LocalResponse r = c.Get({HashOf(1)});
  ASSERT_EQ(r.code(), 0);
  EXPECT_FALSE(r.get().blocks(0).found());
  EXPECT_EQ(r.get().blocks(0).miss_code(), static_cast<int>(absl::StatusCode::kDataLoss));
  EXPECT_EQ(r.get().lease_id(), 0u);
}

TEST_F(ShmServerTest, PerClientByteLimitRefusesAGetThatWouldPinTooMuch) {
  ShmServerOptions options;
  options.max_client_bytes = 2 * kMiB;
  StartServer(16 * kMiB, 0, options);
  StorePut(1, 2 * kMiB);
  StorePut(2, kMiB);
  RawClient c(socket_path_);
  v1::LocalResponse first = c.Get({HashOf(1)});
  ASSERT_EQ(first.code(), 0);
  EXPECT_EQ(c.Get({HashOf(2)}).code(), static_cast<int>(absl::StatusCode::kResourceExhausted));
  ASSERT_EQ(c.Release(first.get().lease_id()).code(), 0);
  EXPECT_EQ(c.Get({HashOf(2)}).code(), 0);
}

TEST_F(ShmServerTest, ClientsBeyondTheLimitAreRefused) {
  ShmServerOptions options;
  options.max_clients = 1;
  StartServer(8 * kMiB, 0, options);
  RawClient first(socket_path_);
  ASSERT_TRUE(first.ok());
  RawClient second(socket_path_);
  EXPECT_FALSE(second.ok());
}

TEST_F(ShmServerTest, StopIsIdempotentAndRemovesTheSocket) {
  StartServer(8 * kMiB);
  StorePut(1, kMiB);
  RawClient c(socket_path_);
  ASSERT_TRUE(c.Get({HashOf(1)}).get().blocks(0).found());
  server_->Stop();
  server_->Stop();
  EXPECT_NE(access(socket_path_.c_str(), F_OK), 0);
  EXPECT_EQ(server_->Stats().pinned_bytes, 0u);
}

// Readers Get + copy + verify in a loop while a writer keeps putting new blocks into a DRAM tier
// that holds only a few, so eviction runs all the time. Every read that succeeds must be exactly
// the bytes that were put under its key; misses are fine.
TEST_F(ShmServerTest, ConcurrentReadersNeverSeeWrongBytesWhileAWriterEvicts) {
  constexpr uint64_t kBlock = 256 << 10;
  StartServer(4 * kMiB);  // 16 blocks' worth
  constexpr int kReaders = 3;
  constexpr uint32_t kWrites = 400;
  std::atomic<uint32_t> written{0};  // ids below this were committed (or refused)
  std::atomic<bool> done{false};
  std::atomic<uint64_t> hits{0}, wrong{0}, mismatches{0};

  std::thread writer([&] {
    RawClient c(socket_path_);
    for (uint32_t id = 1; id <= kWrites; ++id) {
      const std::string p = PayloadOf(id, kBlock);
      c.Put(id, p);  // may be refused while readers pin everything: fine
      written.store(id + 1);
    }
    done.store(true);
  });
  std::vector<std::thread> readers;
  for (int r = 0; r < kReaders; ++r) {
    readers.emplace_back([&, r] {
      RawClient c(socket_path_);
      std::mt19937 rng(r);
      std::string copy(kBlock, '\0');
      while (!done.load()) {
        const uint32_t top = written.load();
        if (top < 2) continue;
        const uint32_t id = top - 1 - rng() % std::min<uint32_t>(top - 1, 8);
        v1::LocalResponse resp = c.Get({HashOf(id), HashOf(id + 1)}, /*stop=*/false);
        if (resp.code() != 0) continue;  // over the limit or the like: try again
        std::vector<uint32_t> corrupt;
        for (int i = 0; i < resp.get().blocks_size(); ++i) {
          const v1::LocalBlockLocation& b = resp.get().blocks(i);
          if (!b.found()) continue;
          std::memcpy(copy.data(), c.arena() + b.offset(), b.length());
          if (common::Checksum(std::string_view(copy.data(), b.length())) != b.checksum()) {
            // A client would report this as a miss; nobody scribbles here, so it would mean a
            // pinned slot was reused.
            corrupt.push_back(i);
            mismatches.fetch_add(1);
            continue;
          }
          if (copy != PayloadOf(id + i, kBlock)) wrong.fetch_add(1);
          hits.fetch_add(1);
        }
        if (resp.get().lease_id() != 0) c.Release(resp.get().lease_id(), corrupt);
      }
    });
  }
  writer.join();
  for (std::thread& t : readers) t.join();
  EXPECT_EQ(wrong.load(), 0u);
  EXPECT_EQ(mismatches.load(), 0u);
  EXPECT_GT(hits.load(), 0u);
  EXPECT_EQ(server_->Stats().pinned_bytes, 0u);
  EXPECT_GT(store_->Stats().tiers[0].counters.evictions, 0u);
}

}  // namespace
}  // namespace strata::cachenode
