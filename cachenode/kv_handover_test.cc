// KvHandover on the emulated path: the engine's KV cache lives in a memfd (as an engine without a
// GPU would hold it), is registered, offloaded into a real TieredStore and onloaded back, and the
// bytes are judged against the CPU reference gather/scatter (gpu/kv_reference.h).
#include "cachenode/kv_handover.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <vector>

#include "cachenode/block_events.h"
#include "cachenode/memory_tier.h"
#include "cachenode/shm_server.h"
#include "cachenode/gpu/kv_cuda.h"
#include "cachenode/gpu/kv_reference.h"
#include "clients/local_client.h"
#include "common/checksum.h"
#include "gtest/gtest.h"

namespace strata::cachenode {
namespace {

namespace v1 = ::strata::v1;

constexpr common::NamespaceId kNs = 7;
constexpr uint64_t kOwner = 1;

common::ChainHash HashOf(uint32_t i) {
  common::ChainHash h;
  std::memcpy(h.bytes.data(), &i, sizeof(i));
  h.bytes[31] = 0x4b;
  return h;
}

// 2 layers, 6 blocks, 4 tokens, 2 heads, head_dim 16, bf16: 256-byte pieces, 1 KiB payloads.
gpu::KvShape Shape() {
  return gpu::KvShape{.num_layers = 2, .num_blocks = 6, .block_tokens = 4, .kv_heads = 2,
                      .head_dim = 16, .dtype_bytes = 2};
}

// An engine's KV cache in a memfd, laid out per `kind`, filled with random bytes.
class EngineCache {
 public:
  EngineCache(gpu::EngineLayoutKind kind, uint64_t seed) {
    const uint64_t region = gpu::DenseRegionBytes(kind, Shape());
    const uint32_t regions = kind == gpu::EngineLayoutKind::kCrossLayer ? 1 : Shape().num_layers;
    bytes_ = region * regions + 4096;  // room before the first layer: offsets are not zero
    fd_ = memfd_create("engine-kv", MFD_CLOEXEC);
    EXPECT_EQ(ftruncate(fd_, static_cast<off_t>(bytes_)), 0);
    base_ = static_cast<std::byte*>(mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0));
    std::vector<uint64_t> offsets;
    for (uint32_t i = 0; i < regions; ++i) offsets.push_back(4096 + i * region);
    EXPECT_TRUE(gpu::MakeDenseLayout(kind, Shape(), offsets, &offsets_layout_).ok());
    std::vector<uint64_t> addresses;
    for (uint64_t o : offsets) addresses.push_back(reinterpret_cast<uintptr_t>(base_) + o);
    EXPECT_TRUE(gpu::MakeDenseLayout(kind, Shape(), addresses, &host_layout_).ok());
    std::mt19937_64 rng(seed);
    for (uint64_t i = 0; i < bytes_; ++i) base_[i] = static_cast<std::byte>(rng());
  }
  ~EngineCache() {
    munmap(base_, bytes_);
    close(fd_);
  }
  int fd() const { return fd_; }
  // Layer bases as offsets into the memfd: what goes to the node.
  const gpu::KvLayout& offsets_layout() const { return offsets_layout_; }
  std::vector<uint8_t> Payload(uint32_t block) const {
    std::vector<uint8_t> p(Shape().PayloadBytes());
    const uint64_t address = reinterpret_cast<uintptr_t>(p.data());
    EXPECT_TRUE(gpu::GatherReference(host_layout_, &block, &address, 1).ok());
    return p;
  }
  void Poison() { std::memset(base_, 0xA5, bytes_); }

 private:
  int fd_ = -1;
  uint64_t bytes_ = 0;
  std::byte* base_ = nullptr;
  gpu::KvLayout offsets_layout_;
  gpu::KvLayout host_layout_;
};

class RecordingSink final : public BlockEventSink {
 public:
  void OnBlockEvent(BlockEventKind kind, TierKind tier, const BlockKey& key) override {
    if (kind == BlockEventKind::kStored && tier == TierKind::kDram) ++stored_in_dram;
  }
  int stored_in_dram = 0;
};

class KvHandoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StoreTiers tiers;
    tiers.dram = std::make_unique<MemoryTier>(
        MemoryTierOptions{}, std::move(*CreateHostMemory({64ull << 20, true, false, "dram"})));
    TieredStoreOptions options;
    options.promote_after_hits = 0;
    store_ = std::move(*TieredStore::Open(options, std::move(tiers)));
    store_->SetEventSink(&sink_);
    handover_ = std::make_unique<KvHandover>(KvHandoverOptions{}, store_.get(), nullptr);
  }
  void TearDown() override {
    handover_.reset();
    store_->SetEventSink(nullptr);
  }

  uint64_t Register(const EngineCache& engine, uint64_t owner = kOwner) {
    auto r = handover_->Register(owner, clients::HostKvRegistration("test", engine.offsets_layout()),
                                 dup(engine.fd()));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->registration_id() : 0;
  }

  static v1::LocalKvTransferRequest Transfer(uint64_t id, const std::vector<uint32_t>& hashes,
                                             const std::vector<uint32_t>& blocks) {
    v1::LocalKvTransferRequest t;
    t.set_registration_id(id);
    t.set_namespace_id(kNs);
    for (uint32_t h : hashes) t.add_chain_hashes(std::string(HashOf(h).view()));
    for (uint32_t b : blocks) t.add_block_ids(b);
    return t;
  }

  std::vector<uint8_t> Stored(uint32_t hash) {
    const common::ChainHash h = HashOf(hash);
    std::vector<BlockRead> r = store_->GetChain(kNs, std::span(&h, 1), false);
    if (!r[0].status.ok()) return {};
    auto d = r[0].handle.data();
    return std::vector<uint8_t>(reinterpret_cast<const uint8_t*>(d.data()),
                                reinterpret_cast<const uint8_t*>(d.data()) + d.size());
  }

  RecordingSink sink_;
  std::unique_ptr<TieredStore> store_;
  std::unique_ptr<KvHandover> handover_;
};

TEST_F(KvHandoverTest, RegistrationOfHostMemorySaysItIsEmulated) {
  EngineCache engine(gpu::EngineLayoutKind::kVllmFlashAttention, 1);
  auto r = handover_->Register(kOwner, clients::HostKvRegistration("e", engine.offsets_layout()),
                               dup(engine.fd()));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->emulated());
  EXPECT_NE(r->mover().find("emulated"), std::string::npos);
  EXPECT_EQ(r->payload_bytes(), Shape().PayloadBytes());
  EXPECT_EQ(handover_->Stats().total_registrations(), 1u);
}

TEST_F(KvHandoverTest, OffloadStoresEachBlockInPayloadLayoutWithItsChecksumAndEvents) {
  EngineCache engine(gpu::EngineLayoutKind::kVllmFlashAttention, 2);
  const uint64_t id = Register(engine);
  auto r = handover_->Offload(kOwner, Transfer(id, {10, 11, 12}, {4, 0, 2}));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->results_size(), 3);
  EXPECT_EQ(r->blocks_moved(), 3u);
  EXPECT_EQ(r->bytes_moved(), 3 * Shape().PayloadBytes());
  EXPECT_TRUE(r->emulated());
  const uint32_t blocks[] = {4, 0, 2};
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(r->results(i).code(), 0) << r->results(i).message();
    EXPECT_EQ(r->results(i).tier(), v1::TIER_DRAM);
    EXPECT_EQ(Stored(10 + i), engine.Payload(blocks[i])) << "block " << i;
  }
  EXPECT_EQ(sink_.stored_in_dram, 3);  // the router hears of them like any put
  EXPECT_EQ(handover_->Stats().offloaded[static_cast<int>(KvPath::kEmulated)].blocks, 3u);
}

TEST_F(KvHandoverTest, OnloadScattersStoredBlocksIntoTheNamedEngineBlocksOnly) {
  EngineCache source(gpu::EngineLayoutKind::kVllmFlashAttention, 3);
  const uint64_t from = Register(source);
  ASSERT_TRUE(handover_->Offload(kOwner, Transfer(from, {20, 21}, {1, 5})).ok());
  // A second engine with the FlashInfer layout receives them into blocks 3 and 0.
  EngineCache target(gpu::EngineLayoutKind::kFlashInfer, 4);
  target.Poison();
  const uint64_t to = Register(target);
  auto r = handover_->Onload(kOwner, Transfer(to, {20, 21}, {3, 0}));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->blocks_moved(), 2u);
  EXPECT_EQ(target.Payload(3), source.Payload(1));
  EXPECT_EQ(target.Payload(0), source.Payload(5));
  const std::vector<uint8_t> poison(Shape().PayloadBytes(), 0xA5);
  for (uint32_t b : {1u, 2u, 4u, 5u}) EXPECT_EQ(target.Payload(b), poison) << "block " << b;
}

TEST_F(KvHandoverTest, LongCallsMoveInSeveralLaunchesWithTheSameResult) {
  // batch_bytes of one and a half payloads: one block per launch.
  KvHandoverOptions options;
  options.batch_bytes = Shape().PayloadBytes() * 3 / 2;
  handover_ = std::make_unique<KvHandover>(options, store_.get(), nullptr);
  EngineCache engine(gpu::EngineLayoutKind::kFlashInfer, 11);
  const uint64_t id = Register(engine);
  auto off = handover_->Offload(kOwner, Transfer(id, {50, 51, 52, 53}, {5, 4, 3, 2}));
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_EQ(off->blocks_moved(), 4u);
  const std::vector<uint8_t> p5 = engine.Payload(5), p2 = engine.Payload(2);
  auto on = handover_->Onload(kOwner, Transfer(id, {50, 53, 52}, {0, 1, 2}));
  ASSERT_TRUE(on.ok()) << on.status();
  EXPECT_EQ(on->blocks_moved(), 3u);
  EXPECT_EQ(engine.Payload(0), p5);
  EXPECT_EQ(engine.Payload(1), p2);
  EXPECT_EQ(Stored(52), engine.Payload(2));  // block 3's payload, onloaded into block 2
}

TEST_F(KvHandoverTest, OffloadLargerThanDramReportsTheBlocksThatFoundNoRoom) {
  // A DRAM tier of three 4 KiB slabs (the smallest slot; a 1 KiB payload takes one), and no other
  // tier: the fourth block has nowhere to go while the first three are reserved for the launch.
  StoreTiers tiers;
  MemoryTierOptions small_slabs;
  small_slabs.slab_bytes = 4096;
  tiers.dram = std::make_unique<MemoryTier>(
      small_slabs, std::move(*CreateHostMemory({3 * 4096, true, false, "dram"})));
  auto small = std::move(*TieredStore::Open(TieredStoreOptions{}, std::move(tiers)));
  KvHandover handover(KvHandoverOptions{}, small.get(), nullptr);
  EngineCache engine(gpu::EngineLayoutKind::kVllmFlashAttention, 12);
  auto reg = handover.Register(kOwner, clients::HostKvRegistration("e", engine.offsets_layout()),
                               dup(engine.fd()));
  ASSERT_TRUE(reg.ok()) << reg.status();
  auto off = handover.Offload(kOwner, Transfer(reg->registration_id(), {1, 2, 3, 4}, {0, 1, 2, 3}));
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_EQ(off->blocks_moved(), 3u);
  EXPECT_EQ(off->results(3).code(), static_cast<int>(absl::StatusCode::kResourceExhausted))
      << off->results(3).message();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(off->results(i).code(), 0) << off->results(i).message();
}

TEST_F(KvHandoverTest, OnloadMissLeavesItsEngineBlockUntouched) {
  EngineCache engine(gpu::EngineLayoutKind::kCrossLayer, 5);
  const uint64_t id = Register(engine);
  ASSERT_TRUE(handover_->Offload(kOwner, Transfer(id, {30}, {2})).ok());
  const std::vector<uint8_t> before = engine.Payload(4);
  auto r = handover_->Onload(kOwner, Transfer(id, {30, 31}, {3, 4}));  // 31 was never stored
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->results(0).code(), 0);
  EXPECT_EQ(r->results(1).code(), static_cast<int>(absl::StatusCode::kNotFound));
  EXPECT_EQ(r->blocks_moved(), 1u);
  EXPECT_EQ(engine.Payload(3), engine.Payload(2));
  EXPECT_EQ(engine.Payload(4), before);
}

TEST_F(KvHandoverTest, CorruptStoredCopyIsNeverScatteredIntoTheEngine) {
  EngineCache engine(gpu::EngineLayoutKind::kVllmFlashAttention, 6);
  const uint64_t id = Register(engine);
  ASSERT_TRUE(handover_->Offload(kOwner, Transfer(id, {40}, {0})).ok());
  // Flip one byte of the block's DRAM copy in the arena.
  auto handle = store_->tier(TierKind::kDram)->Read(BlockKey{kNs, HashOf(40)});
  ASSERT_TRUE(handle.ok());
  auto* byte = const_cast<std::byte*>(handle->data().data() + 100);
  *byte = static_cast<std::byte>(static_cast<uint8_t>(*byte) ^ 0x01);
  handle = absl::NotFoundError("released");
  const std::vector<uint8_t> before = engine.Payload(1);
  auto r = handover_->Onload(kOwner, Transfer(id, {40}, {1}));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NE(r->results(0).code(), 0);
  EXPECT_EQ(r->blocks_moved(), 0u);
  EXPECT_EQ(engine.Payload(1), before);
  EXPECT_GE(store_->Stats().tiers[0].counters.checksum_failures, 1u);
}

TEST_F(KvHandoverTest, RejectsLayoutsOutsideTheMemfdOrWithOverlappingStrides) {
  EngineCache engine(gpu::EngineLayoutKind::kVllmFlashAttention, 7);
  gpu::KvLayout past = engine.offsets_layout();
  past.layer_bases[1] += 1 << 20;  // beyond the memfd's end
  auto r = handover_->Register(kOwner, clients::HostKvRegistration("e", past), dup(engine.fd()));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  gpu::KvLayout overlap = engine.offsets_layout();
  overlap.token_stride = 8;  // rows of 32 bytes overlap
  r = handover_->Register(kOwner, clients::HostKvRegistration("e", overlap), dup(engine.fd()));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  r = handover_->Register(kOwner, clients::HostKvRegistration("e", engine.offsets_layout()), -1);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);  // no memfd came
  EXPECT_EQ(handover_->Stats().total_registrations(), 0u);
}

TEST_F(KvHandoverTest, CudaIpcWithoutAGpuIsRefusedWithTheReason) {
  EngineCache engine(gpu::EngineLayoutKind::kVllmFlashAttention, 8);
  std::string why;
  if (gpu::CudaUsable(&why)) GTEST_SKIP() << "a GPU is usable here";
  auto r = handover_->Register(
      kOwner, clients::CudaKvRegistration("e", engine.offsets_layout(),
                                          {std::string(64, 'x'), std::string(64, 'x')}),
      -1);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("KV_MEMORY_HOST_MEMFD"), std::string::npos);
}

TEST_F(KvHandoverTest, BadBlockIdsAndForeignRegistrationsAreRejected) {
  EngineCache engine(gpu::EngineLayoutKind::kVllmFlashAttention, 9);
  const uint64_t id = Register(engine);
  EXPECT_EQ(handover_->Offload(kOwner, Transfer(id, {1}, {6})).status().code(),
            absl::StatusCode::kInvalidArgument);  // the cache has blocks 0-5
  EXPECT_EQ(handover_->Onload(kOwner, Transfer(id, {1, 2}, {3, 3})).status().code(),
            absl::StatusCode::kInvalidArgument);  // one engine block named twice
  EXPECT_EQ(handover_->Offload(kOwner, Transfer(id, {1, 2}, {3})).status().code(),
            absl::StatusCode::kInvalidArgument);  // hashes and ids disagree
  EXPECT_EQ(handover_->Offload(kOwner + 1, Transfer(id, {1}, {0})).status().code(),
            absl::StatusCode::kNotFound);  // another client's registration
  handover_->DropOwner(kOwner);
  EXPECT_EQ(handover_->Offload(kOwner, Transfer(id, {1}, {0})).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(handover_->Stats().total_registrations(), 0u);
}

// The whole path over the socket: the memfd travels by SCM_RIGHTS, requests by local.proto.
TEST(KvHandoverShmTest, EngineOffloadsAndOnloadsThroughTheLocalSocket) {
  char tmpl[] = "/tmp/strata-kv-test-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  StoreTiers tiers;
  tiers.dram = std::make_unique<MemoryTier>(
      MemoryTierOptions{}, std::move(*CreateHostMemory({64ull << 20, true, false, "dram"})));
  auto store = std::move(*TieredStore::Open(TieredStoreOptions{}, std::move(tiers)));
  common::ManualClock clock;
  ShmServerOptions options;
  options.socket_path = dir + "/sock";
  auto server = ShmServer::Start(options, store.get(), nullptr, &clock);
  ASSERT_TRUE(server.ok()) << server.status();
  {
    auto client = clients::LocalClient::Connect(options.socket_path);
    ASSERT_TRUE(client.ok()) << client.status();
    EngineCache engine(gpu::EngineLayoutKind::kVllmFlashAttention, 10);
    auto reg = (*client)->RegisterKv(clients::HostKvRegistration("e", engine.offsets_layout()),
                                     engine.fd());
    ASSERT_TRUE(reg.ok()) << reg.status();
    EXPECT_TRUE(reg->emulated());
    const std::vector<common::ChainHash> chain = {HashOf(1), HashOf(2)};
    const std::vector<uint32_t> from = {5, 3}, to = {0, 1};
    auto off = (*client)->Offload(reg->registration_id(), kNs, chain, from);
    ASSERT_TRUE(off.ok()) << off.status();
    EXPECT_EQ(off->blocks_moved(), 2u);
    const std::vector<uint8_t> p5 = engine.Payload(5), p3 = engine.Payload(3);
    // Another reader of the node sees the offloaded payloads byte for byte.
    std::vector<std::byte> copy(Shape().PayloadBytes());
    std::vector<std::span<std::byte>> dest = {copy};
    auto got = (*client)->GetInto(kNs, std::span(chain.data(), 1), dest);
    ASSERT_TRUE(got.ok() && (*got)[0].status.ok());
    EXPECT_EQ(std::memcmp(copy.data(), p5.data(), copy.size()), 0);
    engine.Poison();
    auto on = (*client)->Onload(reg->registration_id(), kNs, chain, to);
    ASSERT_TRUE(on.ok()) << on.status();
    EXPECT_EQ(on->blocks_moved(), 2u);
    EXPECT_EQ(engine.Payload(0), p5);
    EXPECT_EQ(engine.Payload(1), p3);
    auto stats = (*client)->Stats();
    ASSERT_TRUE(stats.ok());
    EXPECT_EQ(stats->kv_registrations(), 1u);
    EXPECT_EQ(stats->offloaded_bytes(), 2 * Shape().PayloadBytes());
    EXPECT_EQ(stats->onloaded_blocks(), 2u);
  }
  // The client went away: its registration went with it.
  auto other = clients::LocalClient::Connect(options.socket_path);
  ASSERT_TRUE(other.ok());
  auto stats = (*other)->Stats(/*wait_until_clients_at_most=*/1, 10'000);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->kv_registrations(), 0u);
  other->reset();
  server->reset();
  store.reset();
  rmdir(dir.c_str());
}

}  // namespace
}  // namespace strata::cachenode
