// LocalClient against a scripted in-test node: a memfd arena and a SOCK_SEQPACKET socket speaking
// strata/v1/local.proto, so the client's side of the contract (mapping, verification, release,
// puts through reserved slots) is checked without a cache node. The real node is covered by
// cachenode/shm_server_test.cc and tests/shm_process_test.cc.
#include "clients/local_client.h"

#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <poll.h>

#include <cstring>
#include <map>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "common/checksum.h"
#include "common/fd_message.h"
#include "gtest/gtest.h"

namespace strata::clients {
namespace {

namespace v1 = ::strata::v1;

constexpr uint64_t kArena = 1 << 20;
constexpr common::NamespaceId kNs = 9;

common::ChainHash HashOf(uint8_t id) {
  common::ChainHash h;
  h.bytes[0] = id;
  return h;
}

// Serves one connection at a time from a thread; blocks are placed in the arena by the test.
class FakeNode {
 public:
  struct Block {
    uint64_t offset, length, checksum;
  };

  FakeNode() {
    char tmpl[] = "/tmp/strata-local-client-test-XXXXXX";
    dir_ = mkdtemp(tmpl);
    path_ = dir_ + "/sock";
    memfd_ = memfd_create("fake-arena", MFD_CLOEXEC);
    EXPECT_EQ(ftruncate(memfd_, kArena), 0);
    arena_ = static_cast<std::byte*>(
        mmap(nullptr, kArena, PROT_READ | PROT_WRITE, MAP_SHARED, memfd_, 0));
    listen_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path_.data(), path_.size());
    EXPECT_EQ(bind(listen_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(listen(listen_, 4), 0);
    EXPECT_EQ(pipe(wake_), 0);
    thread_ = std::thread([this] { Run(); });
  }
  ~FakeNode() {
    (void)!write(wake_[1], "x", 1);
    thread_.join();
    close(wake_[0]);
    close(wake_[1]);
    close(listen_);
    munmap(arena_, kArena);
    close(memfd_);
    unlink(path_.c_str());
    rmdir(dir_.c_str());
  }

  const std::string& path() const { return path_; }
  std::byte* arena() { return arena_; }
  // Places `payload` at `offset` under `id`, announcing `checksum`.
  void Place(uint8_t id, uint64_t offset, const std::string& payload, uint64_t checksum) {
    std::memcpy(arena_ + offset, payload.data(), payload.size());
    absl::MutexLock lock(&mu_);
    blocks_[id] = Block{offset, payload.size(), checksum};
  }
  std::vector<uint64_t> released() {
    absl::MutexLock lock(&mu_);
    return released_;
  }
  std::vector<uint32_t> reported() {
    absl::MutexLock lock(&mu_);
    return reported_;
  }
  std::vector<uint64_t> committed_checksums() {
    absl::MutexLock lock(&mu_);
    return committed_;
  }

 private:
  void Run() {
    for (;;) {
      pollfd fds[2] = {{listen_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
      if (poll(fds, 2, -1) < 0 || fds[1].revents != 0) return;  // shut down
      const int fd = accept(listen_, nullptr, nullptr);
      if (fd < 0) return;
      Serve(fd);
      close(fd);
    }
  }
  void Serve(int fd) {
    std::string buffer(1 << 17, '\0');
    for (;;) {
      const ssize_t n = recv(fd, buffer.data(), buffer.size(), 0);
      if (n <= 0) return;
      v1::LocalRequest req;
      EXPECT_TRUE(req.ParseFromArray(buffer.data(), static_cast<int>(n)));
      v1::LocalResponse resp;
      int send_fd = -1;
      absl::MutexLock lock(&mu_);
      if (req.has_hello()) {
        resp.mutable_hello()->set_arena_bytes(kArena);
        resp.mutable_hello()->set_max_blocks_per_request(16);
        resp.mutable_hello()->set_max_client_bytes(kArena);
        send_fd = memfd_;
      } else if (req.has_get()) {
        resp.mutable_get()->set_lease_id(++next_lease_);
        for (const std::string& h : req.get().chain_hashes()) {
          v1::LocalBlockLocation* loc = resp.mutable_get()->add_blocks();
          auto it = blocks_.find(static_cast<uint8_t>(h[0]));
          if (it == blocks_.end()) {
            loc->set_miss_code(5);
            if (req.get().stop_at_first_miss()) break;
            continue;
          }
          loc->set_found(true);
          loc->set_tier(v1::TIER_DRAM);
          loc->set_offset(it->second.offset);
          loc->set_length(it->second.length);
          loc->set_checksum(it->second.checksum);
        }
      } else if (req.has_release()) {
        released_.push_back(req.release().lease_id());
        for (uint32_t i : req.release().corrupt_indices()) reported_.push_back(i);
        resp.mutable_release();
      } else if (req.has_reserve()) {
        resp.mutable_reserve()->set_reservation_id(77);
        uint64_t offset = 0;
        for (const v1::LocalReserveBlock& b : req.reserve().blocks()) {
          resp.mutable_reserve()->add_offsets(offset);
          reserved_.push_back({offset, b.size_bytes(), 0});
          offset += b.size_bytes();
        }
      } else if (req.has_commit()) {
        for (int i = 0; i < req.commit().checksums_size(); ++i) {
          const uint64_t sum = req.commit().checksums(i);
          committed_.push_back(sum);
          const Block& b = reserved_[i];
          const bool ok =
              common::Checksum(std::span<const std::byte>(arena_ + b.offset, b.length)) == sum;
          resp.mutable_commit()->add_results()->set_code(ok ? 0 : 15);
        }
      } else {
        resp.set_code(12);  // UNIMPLEMENTED
      }
      if (!common::SendFdMessage(fd, resp.SerializeAsString(), send_fd).ok()) return;
    }
  }

  std::string dir_, path_;
  int memfd_ = -1, listen_ = -1;
  int wake_[2] = {-1, -1};
  std::byte* arena_ = nullptr;
  std::thread thread_;
  absl::Mutex mu_;
  std::map<uint8_t, Block> blocks_ ABSL_GUARDED_BY(mu_);
  std::vector<Block> reserved_ ABSL_GUARDED_BY(mu_);
  uint64_t next_lease_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<uint64_t> released_ ABSL_GUARDED_BY(mu_);
  std::vector<uint32_t> reported_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> committed_ ABSL_GUARDED_BY(mu_);
};

std::string Pattern(size_t n, char seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + i * 31 + (i >> 9));
  return s;
}

std::span<std::byte> Writable(std::string& s) {
  return std::as_writable_bytes(std::span(s.data(), s.size()));
}

TEST(LocalClientTest, ConnectToASocketNobodyServesIsUnavailable) {
  auto client = LocalClient::Connect("/tmp/strata-no-such-socket-for-sure");
  EXPECT_TRUE(absl::IsUnavailable(client.status())) << client.status();
}

TEST(LocalClientTest, GetIntoCopiesByteExactAndReleasesTheLease) {
  FakeNode node;
  const std::string a = Pattern(200000, 'a'), b = Pattern(70000, 'b');
  node.Place(1, 0, a, common::Checksum(a));
  node.Place(2, 262144, b, common::Checksum(b));
  auto client = LocalClient::Connect(node.path());
  ASSERT_TRUE(client.ok()) << client.status();
  std::string out_a(a.size(), '\0'), out_b(b.size(), '\0');
  const std::vector<common::ChainHash> chain = {HashOf(1), HashOf(2)};
  const std::vector<std::span<std::byte>> dest = {Writable(out_a), Writable(out_b)};
  auto results = (*client)->GetInto(kNs, chain, dest);
  ASSERT_TRUE(results.ok()) << results.status();
  ASSERT_TRUE((*results)[0].status.ok());
  ASSERT_TRUE((*results)[1].status.ok());
  EXPECT_EQ((*results)[1].size, b.size());
  EXPECT_EQ(out_a, a);
  EXPECT_EQ(out_b, b);
  EXPECT_EQ(node.released().size(), 1u);
  EXPECT_TRUE(node.reported().empty());
}

TEST(LocalClientTest, BytesThatDisagreeWithTheirChecksumAreDataLossAndReported) {
  FakeNode node;
  const std::string good = Pattern(4096, 'g');
  std::string bad = Pattern(100000, 'x');
  node.Place(1, 0, good, common::Checksum(good));
  const uint64_t announced = common::Checksum(bad);
  bad[5000] ^= 1;  // what sits in the arena is not what the checksum says
  node.Place(2, 8192, bad, announced);
  auto client = LocalClient::Connect(node.path());
  ASSERT_TRUE(client.ok());
  std::string out1(good.size(), '\0'), out2(bad.size(), '\0');
  const std::vector<common::ChainHash> chain = {HashOf(1), HashOf(2)};
  const std::vector<std::span<std::byte>> dest = {Writable(out1), Writable(out2)};
  auto results = (*client)->GetInto(kNs, chain, dest);
  ASSERT_TRUE(results.ok());
  EXPECT_TRUE((*results)[0].status.ok());
  EXPECT_TRUE(absl::IsDataLoss((*results)[1].status)) << (*results)[1].status;
  EXPECT_EQ(node.reported(), std::vector<uint32_t>{1});

  // Get with in-place verification reports the same block as a miss.
  auto read = (*client)->Get(kNs, chain, /*stop_at_first_miss=*/true, /*verify=*/true);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->found_prefix(), 1u);
  EXPECT_TRUE(absl::IsDataLoss(read->block(1).status));
}

TEST(LocalClientTest, LocalReadReleasesItsLeaseExactlyOnceAcrossMoves) {
  FakeNode node;
  const std::string a = Pattern(1000, 'q');
  node.Place(1, 0, a, common::Checksum(a));
  auto client = LocalClient::Connect(node.path());
  ASSERT_TRUE(client.ok());
  {
    auto read = (*client)->Get(kNs, std::vector{HashOf(1)});
    ASSERT_TRUE(read.ok());
    ASSERT_EQ(read->size(), 1u);
    EXPECT_EQ(std::memcmp(read->block(0).data.data(), a.data(), a.size()), 0);
    LocalRead moved = std::move(*read);
    LocalRead again;
    again = std::move(moved);
    EXPECT_TRUE(node.released().empty());
  }
  EXPECT_EQ(node.released().size(), 1u);
}

TEST(LocalClientTest, PutWritesEachPayloadIntoItsSlotAndCommitsItsChecksum) {
  FakeNode node;
  auto client = LocalClient::Connect(node.path());
  ASSERT_TRUE(client.ok());
  const std::string a = Pattern(300000, 'p'), b = Pattern(5000, 'r');
  const std::vector<LocalPutBlock> blocks = {
      {HashOf(1), std::as_bytes(std::span(a.data(), a.size())), 0},
      {HashOf(2), std::as_bytes(std::span(b.data(), b.size())), 1}};
  auto results = (*client)->Put(kNs, blocks);
  ASSERT_TRUE(results.ok()) << results.status();
  ASSERT_EQ(results->size(), 2u);
  EXPECT_TRUE((*results)[0].status.ok());
  EXPECT_TRUE((*results)[1].status.ok());
  EXPECT_EQ(node.committed_checksums(),
            (std::vector<uint64_t>{common::Checksum(a), common::Checksum(b)}));
  EXPECT_EQ(std::memcmp(node.arena(), a.data(), a.size()), 0);
  EXPECT_EQ(std::memcmp(node.arena() + a.size(), b.data(), b.size()), 0);
}

TEST(LocalClientTest, CopyAndVerifyCatchesOneFlippedByteInAnyChunk) {
  std::string src = Pattern(3 * 65536 + 17, 'c');
  const uint64_t sum = common::Checksum(src);
  std::string dest(src.size(), '\0');
  EXPECT_TRUE(CopyAndVerify(std::as_bytes(std::span(src.data(), src.size())), Writable(dest), sum)
                  .ok());
  EXPECT_EQ(dest, src);
  src[2 * 65536 + 3] ^= 0x10;
  EXPECT_TRUE(absl::IsDataLoss(
      CopyAndVerify(std::as_bytes(std::span(src.data(), src.size())), Writable(dest), sum)));
  std::string small(10, '\0');
  EXPECT_TRUE(absl::IsInvalidArgument(
      CopyAndVerify(std::as_bytes(std::span(src.data(), src.size())), Writable(small), sum)));
}

}  // namespace
}  // namespace strata::clients
