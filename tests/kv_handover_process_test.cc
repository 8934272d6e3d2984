// The KV hand-over end to end on the emulated path: this test process plays an engine without a
// GPU, whose paged KV cache (vLLM's FlashAttention layout) lives in a memfd. It registers the cache
// with a real strata-cachenode over the local socket, offloads blocks, and onloads them back: first
// from the node's DRAM arena, then, after the node restarted on the same data dir, from its SSD
// tier. Bytes are judged against the CPU reference gather (cachenode/gpu/kv_reference.h). A second
// test does the same with the cache in GPU memory, handed over by CUDA IPC, where a GPU is usable.
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <random>

#include "cachenode/gpu/device_memory.h"
#include "cachenode/gpu/kv_cuda.h"
#include "cachenode/gpu/kv_layout.h"
#include "cachenode/gpu/kv_reference.h"
#include "clients/local_client.h"
#include "common/namespace_id.h"
#include "gtest/gtest.h"
#include "tests/node_process.h"

namespace strata::tests {
namespace {

using clients::LocalClient;

// Llama-3-8B's per-token KV shape with fewer layers: 4 layers x 8 heads x 128 dims x bf16 and
// vLLM's 16-token blocks make 256 KiB payloads.
gpu::KvShape Shape() {
  return gpu::KvShape{.num_layers = 4, .num_blocks = 32, .block_tokens = 16, .kv_heads = 8,
                      .head_dim = 128, .dtype_bytes = 2};
}

class Engine {
 public:
  explicit Engine(uint64_t seed) {
    const uint64_t region = gpu::DenseRegionBytes(gpu::EngineLayoutKind::kVllmFlashAttention, Shape());
    bytes_ = region * Shape().num_layers;
    fd_ = memfd_create("engine-kv", MFD_CLOEXEC);
    EXPECT_EQ(ftruncate(fd_, static_cast<off_t>(bytes_)), 0);
    base_ = static_cast<uint8_t*>(mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0));
    std::vector<uint64_t> offsets, addresses;
    for (uint32_t l = 0; l < Shape().num_layers; ++l) {
      offsets.push_back(l * region);
      addresses.push_back(reinterpret_cast<uintptr_t>(base_) + l * region);
    }
    EXPECT_TRUE(gpu::MakeDenseLayout(gpu::EngineLayoutKind::kVllmFlashAttention, Shape(), offsets,
                                     &offsets_).ok());
    EXPECT_TRUE(gpu::MakeDenseLayout(gpu::EngineLayoutKind::kVllmFlashAttention, Shape(),
                                     addresses, &host_).ok());
    std::mt19937_64 rng(seed);
    for (uint64_t i = 0; i + 8 <= bytes_; i += 8) {
      const uint64_t v = rng();
      std::memcpy(base_ + i, &v, 8);
    }
  }
  ~Engine() {
    munmap(base_, bytes_);
    close(fd_);
  }
  std::vector<uint8_t> Payload(uint32_t block) const {
    std::vector<uint8_t> p(Shape().PayloadBytes());
    const uint64_t address = reinterpret_cast<uintptr_t>(p.data());
    EXPECT_TRUE(gpu::GatherReference(host_, &block, &address, 1).ok());
    return p;
  }
  void Poison() { std::memset(base_, 0x5A, bytes_); }
  uint64_t Register(LocalClient& client) {
    auto r = client.RegisterKv(clients::HostKvRegistration("process-test", offsets_), fd_);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return 0;
    EXPECT_TRUE(r->emulated());
    return r->registration_id();
  }

 private:
  int fd_ = -1;
  uint64_t bytes_ = 0;
  uint8_t* base_ = nullptr;
  gpu::KvLayout offsets_, host_;
};

common::ChainHash HashOf(uint8_t i) {
  common::ChainHash h;
  h.bytes.fill(static_cast<uint8_t>(0x80 | i));
  return h;
}

TEST(KvHandoverProcessTest, OffloadedBlocksOnloadFromDramAndFromSsdAfterARestart) {
  TempDir dir;
  const std::vector<std::string> flags = {"--dram-bytes", "64MiB", "--ssd-bytes", "256MiB",
                                          "--data-dir", dir.File("data"), "--local-socket",
                                          dir.File("sock")};
  const common::NamespaceId ns = common::NamespaceIdOf("default");
  std::vector<common::ChainHash> chain;
  for (uint8_t i = 0; i < 12; ++i) chain.push_back(HashOf(i));
  std::vector<uint32_t> source_blocks, target_blocks;
  for (uint32_t i = 0; i < 12; ++i) {
    source_blocks.push_back((i * 7 + 3) % Shape().num_blocks);  // scattered over the cache
    target_blocks.push_back(31 - i);
  }
  Engine engine(20261127);
  std::vector<std::vector<uint8_t>> expected;
  for (uint32_t b : source_blocks) expected.push_back(engine.Payload(b));

  NodeProcess node;
  std::vector<std::string> first_flags = flags;
  first_flags.insert(first_flags.end(), {"--metrics-listen", "127.0.0.1:0"});
  ASSERT_TRUE(node.Start(first_flags).ok()) << node.stderr_text();
  {
    auto client = LocalClient::Connect(dir.File("sock"));
    ASSERT_TRUE(client.ok()) << client.status();
    const uint64_t id = engine.Register(**client);
    auto off = (*client)->Offload(id, ns, chain, source_blocks);
    ASSERT_TRUE(off.ok()) << off.status();
    EXPECT_EQ(off->blocks_moved(), 12u);
    EXPECT_TRUE(off->emulated());
    engine.Poison();
    auto on = (*client)->Onload(id, ns, chain, target_blocks);
    ASSERT_TRUE(on.ok()) << on.status();
    EXPECT_EQ(on->blocks_moved(), 12u);
    for (size_t i = 0; i < chain.size(); ++i) {
      EXPECT_EQ(on->results(i).tier(), strata::v1::TIER_DRAM);
      EXPECT_EQ(engine.Payload(target_blocks[i]), expected[i]) << "block " << i;
    }
  }
  // The node says the hand-over ran emulated, in its log and in its metrics.
  const std::string log = node.stderr_text();
  EXPECT_NE(log.find("cpu reference on host memory (emulated"), std::string::npos) << log;
  const std::string marker = "metrics on http://127.0.0.1:";
  ASSERT_NE(log.find(marker), std::string::npos) << log;
  auto metrics = HttpGet(std::stoi(log.substr(log.find(marker) + marker.size())), "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  const uint64_t bytes = 12 * Shape().PayloadBytes();
  for (const std::string& line :
       {std::string("strata_kv_handover_blocks_total{direction=\"offload\",path=\"emulated\"} 12"),
        "strata_kv_handover_bytes_total{direction=\"onload\",path=\"emulated\"} " +
            std::to_string(bytes),
        std::string("strata_kv_handover_blocks_total{direction=\"offload\",path=\"gpu\"} 0")}) {
    EXPECT_NE(metrics->find(line), std::string::npos) << "missing: " << line << "\n" << *metrics;
  }
  auto code = node.Terminate();  // drains write-behind to the SSD tier
  ASSERT_TRUE(code.ok() && *code == 0) << node.stderr_text();

  // A new node process on the same data dir has the blocks on SSD only.
  NodeProcess restarted;
  ASSERT_TRUE(restarted.Start(flags).ok()) << restarted.stderr_text();
  auto client = LocalClient::Connect(dir.File("sock"));
  ASSERT_TRUE(client.ok()) << client.status();
  engine.Poison();
  const uint64_t id = engine.Register(**client);
  auto on = (*client)->Onload(id, ns, chain, target_blocks);
  ASSERT_TRUE(on.ok()) << on.status();
  EXPECT_EQ(on->blocks_moved(), 12u);
  for (size_t i = 0; i < chain.size(); ++i) {
    EXPECT_EQ(on->results(i).tier(), strata::v1::TIER_SSD);
    EXPECT_EQ(engine.Payload(target_blocks[i]), expected[i]) << "block " << i;
  }
  const std::vector<uint8_t> poison(Shape().PayloadBytes(), 0x5A);
  EXPECT_EQ(engine.Payload(0), poison);  // block 0 was not a target
}

// The GPU path: this process is an engine whose cache is device memory, handed to the node by
// CUDA IPC (a handle can only be opened by another process, so the node must be one). Skipped
// without a usable GPU; scripts/device-check.sh runs it where there is one.
TEST(KvHandoverProcessTest, GpuEngineOffloadsAndOnloadsThroughCudaIpc) {
  std::string why;
  if (!gpu::CudaUsable(&why)) GTEST_SKIP() << "no usable GPU: " << why;
  TempDir dir;
  NodeProcess node;
  ASSERT_TRUE(node.Start({"--dram-bytes", "64MiB", "--ssd-bytes", "0", "--data-dir",
                          dir.File("data"), "--local-socket", dir.File("sock")})
                  .ok())
      << node.stderr_text();
  const uint64_t region = gpu::DenseRegionBytes(gpu::EngineLayoutKind::kVllmFlashAttention, Shape());
  std::unique_ptr<gpu::DeviceBuffer> cache;
  ASSERT_TRUE(gpu::DeviceBuffer::Allocate(region * Shape().num_layers, &cache).ok());
  std::vector<uint8_t> host(region * Shape().num_layers);
  std::mt19937_64 rng(7);
  for (auto& b : host) b = static_cast<uint8_t>(rng());
  ASSERT_TRUE(gpu::CopyToDevice(cache->address(), host.data(), host.size()).ok());
  std::string handle;
  ASSERT_TRUE(gpu::ExportIpcHandle(cache->address(), &handle).ok());
  std::vector<uint64_t> offsets, addresses;
  for (uint32_t l = 0; l < Shape().num_layers; ++l) {
    offsets.push_back(l * region);
    addresses.push_back(reinterpret_cast<uintptr_t>(host.data()) + l * region);
  }
  gpu::KvLayout by_offset, on_host;
  ASSERT_TRUE(gpu::MakeDenseLayout(gpu::EngineLayoutKind::kVllmFlashAttention, Shape(), offsets,
                                   &by_offset).ok());
  ASSERT_TRUE(gpu::MakeDenseLayout(gpu::EngineLayoutKind::kVllmFlashAttention, Shape(), addresses,
                                   &on_host).ok());
  auto client = LocalClient::Connect(dir.File("sock"));
  ASSERT_TRUE(client.ok()) << client.status();
  auto reg = (*client)->RegisterKv(clients::CudaKvRegistration(
      "gpu-test", by_offset, std::vector<std::string>(Shape().num_layers, handle)));
  ASSERT_TRUE(reg.ok()) << reg.status() << "\n" << node.stderr_text();
  EXPECT_FALSE(reg->emulated());

  const common::NamespaceId ns = common::NamespaceIdOf("default");
  std::vector<common::ChainHash> chain;
  std::vector<uint32_t> from, to;
  for (uint8_t i = 0; i < 8; ++i) {
    chain.push_back(HashOf(i));
    from.push_back(i * 3 + 1);
    to.push_back(31 - i);
  }
  auto off = (*client)->Offload(reg->registration_id(), ns, chain, from);
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_EQ(off->blocks_moved(), 8u);
  auto on = (*client)->Onload(reg->registration_id(), ns, chain, to);
  ASSERT_TRUE(on.ok()) << on.status();
  EXPECT_EQ(on->blocks_moved(), 8u);
  // What the node stored is the reference gather of the source blocks; the targets now hold it.
  std::vector<uint8_t> after(host.size());
  ASSERT_TRUE(gpu::CopyToHost(after.data(), cache->address(), after.size()).ok());
  gpu::KvLayout after_layout = on_host;
  for (uint32_t l = 0; l < Shape().num_layers; ++l) {
    after_layout.layer_bases[l] = reinterpret_cast<uintptr_t>(after.data()) + l * region;
  }
  for (size_t i = 0; i < chain.size(); ++i) {
    std::vector<uint8_t> want(Shape().PayloadBytes()), got(Shape().PayloadBytes());
    const uint64_t want_at = reinterpret_cast<uintptr_t>(want.data());
    const uint64_t got_at = reinterpret_cast<uintptr_t>(got.data());
    ASSERT_TRUE(gpu::GatherReference(on_host, &from[i], &want_at, 1).ok());
    ASSERT_TRUE(gpu::GatherReference(after_layout, &to[i], &got_at, 1).ok());
    EXPECT_EQ(got, want) << "block " << i;
  }
}

}  // namespace
}  // namespace strata::tests
