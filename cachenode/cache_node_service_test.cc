// The service over a real gRPC server on loopback, driven through the raw stub so that malformed
// streams (which no well-behaved client sends) can be tested too.
#include "cachenode/cache_node_service.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/client_unary_call.h>
#include <grpcpp/support/byte_buffer.h>

#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <random>

#include "cachenode/memory_tier.h"
#include "cachenode/ssd_tier.h"
#include "clients/cache_node_client.h"
#include "common/checksum.h"
#include "common/namespace_id.h"
#include "gtest/gtest.h"

namespace strata::cachenode {
namespace {

constexpr uint64_t kMiB = 1ull << 20;

std::string Hash(int i) {
  std::string h(32, '\0');
  h[0] = static_cast<char>(i);
  h[31] = 'h';
  return h;
}

std::string Payload(int seed, size_t size) {
  std::string s(size, '\0');
  std::mt19937 rng(seed);
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

// A DRAM tier that counts the pins its readers hold, so tests can wait for them all to be
// released. Forwards everything else to a MemoryTier.
class PinCountingTier final : public Tier {
 public:
  explicit PinCountingTier(uint64_t bytes)
      : inner_(MemoryTierOptions{}, std::move(*CreateHostMemory({bytes, true, false, "pins"}))) {}

  TierKind kind() const override { return inner_.kind(); }
  std::string name() const override { return inner_.name(); }
  TierUsage Usage() const override { return inner_.Usage(); }
  uint64_t ChargeFor(uint64_t size) const override { return inner_.ChargeFor(size); }
  absl::Status Put(const BlockInfo& info, std::span<const std::byte> payload) override {
    return inner_.Put(info, payload);
  }
  absl::Status Erase(const BlockKey& key) override { return inner_.Erase(key); }
  bool Contains(const BlockKey& key) const override { return inner_.Contains(key); }
  absl::StatusOr<BlockHandle> Read(const BlockKey& key) override {
    absl::StatusOr<BlockHandle> inner = inner_.Read(key);
    if (!inner.ok()) return inner;
    const BlockInfo info = inner->info();
    const std::span<const std::byte> data = inner->data();
    {
      absl::MutexLock lock(&mu_);
      ++pins_;
    }
    // The new handle's owner holds the inner pin and counts down when the last copy goes.
    auto held = std::make_shared<BlockHandle>(std::move(*inner));
    std::shared_ptr<const void> owner(held.get(), [this, held](const void*) mutable {
      held.reset();
      absl::MutexLock lock(&mu_);
      --pins_;
    });
    return BlockHandle(info, data, std::move(owner));
  }

  // True once no pin is held; false if that does not happen within `timeout` (a leak).
  bool AwaitNoPins(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto none = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return pins_ == 0; };
    return mu_.AwaitWithTimeout(absl::Condition(&none), timeout);
  }
  int pins() {
    absl::MutexLock lock(&mu_);
    return pins_;
  }

 private:
  MemoryTier inner_;
  absl::Mutex mu_;
  int pins_ ABSL_GUARDED_BY(mu_) = 0;
};

class CacheNodeServiceTest : public ::testing::Test {
 protected:
  // Tier sizes; a test fixture deriving from this one may change them before SetUp.
  uint64_t dram_bytes_ = 32 * kMiB;
  uint64_t max_block_bytes_ = 16 * kMiB;
  bool count_pins_ = false;  // DRAM is a PinCountingTier (pin_tier_) instead of a MemoryTier
  uint64_t ssd_bytes_ = 0;   // > 0: an SSD tier of this capacity in a fresh directory (ssd_dir_)
  CacheNodeServiceOptions service_options_;

  void SetUp() override {
    StoreTiers tiers;
    if (ssd_bytes_ > 0) {
      ssd_dir_ = MakeTempDir();
      SsdTierOptions ssd;
      ssd.path = ssd_dir_;
      ssd.capacity_bytes = ssd_bytes_;
      auto tier = SsdTier::Open(ssd);
      ASSERT_TRUE(tier.ok()) << tier.status();
      tiers.ssd = std::move(*tier);
    }
    if (count_pins_) {
      auto tier = std::make_unique<PinCountingTier>(dram_bytes_);
      pin_tier_ = tier.get();
      tiers.dram = std::move(tier);
    } else {
      tiers.dram = std::make_unique<MemoryTier>(
          MemoryTierOptions{}, std::move(*CreateHostMemory({dram_bytes_, true, false, "t"})));
    }
    TieredStoreOptions so;
    so.max_block_bytes = max_block_bytes_;
    store_ = std::move(*TieredStore::Open(so, std::move(tiers)));
    namespaces_ = std::move(*NamespaceRegistry::Open("", {"test-ns"}));
    ns_ = common::NamespaceIdOf("test-ns");
    EngineLoadOptions eo;
    eo.ttl = absl::Seconds(3);
    eo.max_engines = 2;
    engines_ = std::make_unique<EngineLoadTable>(eo, &clock_);
    service_ = std::make_unique<CacheNodeService>(store_.get(), namespaces_.get(), engines_.get(),
                                                  service_options_);
    auto server = StartNodeServer("127.0.0.1:0", service_.get());
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(kMaxMessageBytes);
    channel_ = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(server_.port),
                                         grpc::InsecureChannelCredentials(), args);
    stub_ = strata::v1::CacheNode::NewStub(channel_);
  }
  void TearDown() override {
    if (server_.server != nullptr) server_.server->Shutdown();
    server_.server.reset();  // before the service it serves, then the store the service uses
    service_.reset();
    store_.reset();
    if (!ssd_dir_.empty()) std::filesystem::remove_all(ssd_dir_);
  }

  static std::string MakeTempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "strata-svc-XXXXXX").string();
    return mkdtemp(tmpl.data());
  }

  std::unique_ptr<clients::CacheNodeClient> Client() {
    clients::ClientOptions options;
    options.target = "127.0.0.1:" + std::to_string(server_.port);
    auto client = clients::CacheNodeClient::Connect(options);
    EXPECT_TRUE(client.ok()) << client.status();
    return std::move(client).value();
  }

  // What a SIGKILL of the node would leave: the SSD directory's files as they are on disk now,
  // copied while the store stays open, then opened as a fresh SSD tier. Returns each block's
  // payload by chain hash.
  std::map<std::string, std::string> BlocksAfterCrash() {
    const std::string copy = MakeTempDir();
    std::filesystem::copy(ssd_dir_, copy, std::filesystem::copy_options::recursive |
                                              std::filesystem::copy_options::overwrite_existing);
    std::map<std::string, std::string> blocks;
    {
      SsdTierOptions options;
      options.path = copy;
      options.capacity_bytes = ssd_bytes_;
      auto tier = SsdTier::Open(options);
      EXPECT_TRUE(tier.ok()) << tier.status();
      if (tier.ok()) {
        std::vector<BlockKey> keys;
        EXPECT_TRUE((*tier)->ForEachBlock([&](const BlockInfo& info) {
                              keys.push_back(info.key);
                            }).ok());
        for (const BlockKey& key : keys) {
          auto handle = (*tier)->Read(key);
          EXPECT_TRUE(handle.ok()) << handle.status();
          if (!handle.ok()) continue;
          blocks[std::string(key.hash.view())] =
              std::string(reinterpret_cast<const char*>(handle->data().data()),
                          handle->data().size());
        }
      }
    }
    std::filesystem::remove_all(copy);
    return blocks;
  }

  strata::v1::PutRequest Header(int i, const std::string& payload, uint64_t ns = 0) {
    strata::v1::PutRequest r;
    auto* h = r.mutable_header();
    h->mutable_key()->set_namespace_id(ns == 0 ? ns_ : ns);
    h->mutable_key()->set_chain_hash(Hash(i));
    h->set_size_bytes(payload.size());
    h->set_checksum(common::Checksum(payload));
    h->set_chain_position(i);
    return r;
  }

  // Sends the messages on one Put stream and returns the final status.
  grpc::Status PutStream(const std::vector<strata::v1::PutRequest>& msgs,
                         strata::v1::PutResponse* resp = nullptr) {
    grpc::ClientContext ctx;
    strata::v1::PutResponse local;
    auto writer = stub_->Put(&ctx, resp ? resp : &local);
    for (const auto& m : msgs) {
      if (!writer->Write(m)) break;
    }
    writer->WritesDone();
    return writer->Finish();
  }

  std::vector<strata::v1::PutRequest> Block(int i, const std::string& payload,
                                            size_t chunk = kMiB) {
    std::vector<strata::v1::PutRequest> msgs = {Header(i, payload)};
    for (size_t off = 0; off < payload.size(); off += chunk) {
      strata::v1::PutRequest c;
      c.set_chunk(payload.substr(off, chunk));
      msgs.push_back(c);
    }
    return msgs;
  }

  // Reads blocks back; returns payload per index ("" for a miss). `chunks` counts chunk messages.
  std::vector<std::string> GetChain(const std::vector<int>& ids, grpc::Status* status,
                                    uint32_t max_chunk_bytes = 0, int* chunks = nullptr) {
    grpc::ClientContext ctx;
    strata::v1::GetRequest req;
    req.set_namespace_id(ns_);
    for (int i : ids) req.add_chain_hashes(Hash(i));
    req.set_max_chunk_bytes(max_chunk_bytes);
    auto reader = stub_->Get(&ctx, req);
    std::vector<std::string> out(ids.size());
    strata::v1::GetResponse msg;
    int cur = -1;
    while (reader->Read(&msg)) {
      if (msg.has_header()) {
        cur = msg.header().index();
      } else {
        out[cur] += msg.chunk();
        if (chunks != nullptr) ++*chunks;
      }
    }
    *status = reader->Finish();
    return out;
  }

  bool Present(int i) {
    grpc::ClientContext ctx;
    strata::v1::LookupRequest req;
    req.set_namespace_id(ns_);
    req.add_chain_hashes(Hash(i));
    strata::v1::LookupResponse resp;
    EXPECT_TRUE(stub_->Lookup(&ctx, req, &resp).ok());
    return resp.matched_blocks() == 1;
  }

  std::unique_ptr<TieredStore> store_;
  std::unique_ptr<NamespaceRegistry> namespaces_;
  common::ManualClock clock_;
  std::unique_ptr<EngineLoadTable> engines_;
  common::NamespaceId ns_ = 0;
  PinCountingTier* pin_tier_ = nullptr;
  std::string ssd_dir_;
  std::unique_ptr<CacheNodeService> service_;
  NodeServer server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<strata::v1::CacheNode::Stub> stub_;
};

std::string BytesOf(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(buffer.Dump(&slices).ok());
  std::string out;
  for (const grpc::Slice& s : slices) {
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

grpc::ByteBuffer BufferOf(const std::string& bytes) {
  grpc::Slice slice(bytes.data(), bytes.size());
  return grpc::ByteBuffer(&slice, 1);
}

// The standard services, called as any generic gRPC client would (no generated stubs for them ship
// with Debian's gRPC), with their messages written out by hand in protobuf wire format.
TEST_F(CacheNodeServiceTest, ServesStandardHealthAndReflectionServices) {
  grpc::ClientContext health_ctx;
  grpc::ByteBuffer health_response;
  const grpc::Status health = grpc::internal::BlockingUnaryCall(
      channel_.get(),
      grpc::internal::RpcMethod("/grpc.health.v1.Health/Check",
                                grpc::internal::RpcMethod::NORMAL_RPC),
      &health_ctx, BufferOf(""), &health_response);
  ASSERT_TRUE(health.ok()) << health.error_message();
  EXPECT_EQ(BytesOf(health_response), std::string("\x08\x01", 2));  // status: SERVING

  grpc::ClientContext reflection_ctx;
  std::unique_ptr<grpc::ClientReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>> stream(
      grpc::internal::ClientReaderWriterFactory<grpc::ByteBuffer, grpc::ByteBuffer>::Create(
          channel_.get(),
          grpc::internal::RpcMethod(
              "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
              grpc::internal::RpcMethod::BIDI_STREAMING),
          &reflection_ctx));
  ASSERT_TRUE(stream->Write(BufferOf(std::string("\x3a\x00", 2))));  // list_services: ""
  stream->WritesDone();
  grpc::ByteBuffer reply;
  ASSERT_TRUE(stream->Read(&reply));
  EXPECT_NE(BytesOf(reply).find("strata.v1.CacheNode"), std::string::npos);
  while (stream->Read(&reply)) {
  }
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(CacheNodeServiceTest, BatchedPutThenChainGetIsByteExact) {
  const std::string a = Payload(1, 3 * kMiB + 17), b = Payload(2, 8 * kMiB);
  auto msgs = Block(1, a);
  auto more = Block(2, b);
  msgs.insert(msgs.end(), more.begin(), more.end());
  strata::v1::PutResponse resp;
  ASSERT_TRUE(PutStream(msgs, &resp).ok());
  ASSERT_EQ(resp.results_size(), 2);
  EXPECT_EQ(resp.results(1).tier(), strata::v1::TIER_DRAM);
  grpc::Status st;
  auto got = GetChain({1, 2, 3}, &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(got[0], a);
  EXPECT_EQ(got[1], b);
  EXPECT_EQ(got[2], "");
}

TEST_F(CacheNodeServiceTest, TruncatedStreamCommitsNothingOfTheOpenBlockAndKeepsEarlierOnes) {
  const std::string a = Payload(1, kMiB), b = Payload(2, 4 * kMiB);
  auto msgs = Block(1, a);
  auto partial = Block(2, b);
  partial.resize(3);  // header + 2 of 4 chunks
  msgs.insert(msgs.end(), partial.begin(), partial.end());
  const grpc::Status st = PutStream(msgs);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("not committed"), std::string::npos);
  EXPECT_TRUE(Present(1));
  EXPECT_FALSE(Present(2));
}

TEST_F(CacheNodeServiceTest, BadInputGetsTheRightCodeAndTheNodeKeepsServing) {
  const std::string good = Payload(7, kMiB);
  ASSERT_TRUE(PutStream(Block(7, good)).ok());
  const std::string p = Payload(1, 4096);

  auto bad_hash = Header(1, p);
  bad_hash.mutable_header()->mutable_key()->set_chain_hash("short");
  EXPECT_EQ(PutStream({bad_hash}).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  auto no_ns = Header(1, p);
  no_ns.mutable_header()->mutable_key()->set_namespace_id(0);
  EXPECT_EQ(PutStream({no_ns}).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  auto unknown_ns = Header(1, p, common::NamespaceIdOf("nobody"));
  EXPECT_EQ(PutStream({unknown_ns}).error_code(), grpc::StatusCode::FAILED_PRECONDITION);

  auto huge = Header(1, p);
  huge.mutable_header()->set_size_bytes(17 * kMiB);
  EXPECT_EQ(PutStream({huge}).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);

  auto wrong_sum = Block(1, p);
  wrong_sum[0].mutable_header()->set_checksum(12345);
  EXPECT_EQ(PutStream(wrong_sum).error_code(), grpc::StatusCode::DATA_LOSS);
  EXPECT_FALSE(Present(1));

  strata::v1::PutRequest orphan;
  orphan.set_chunk("abc");
  EXPECT_EQ(PutStream({orphan}).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  auto overflow = Block(1, p);
  overflow[1].set_chunk(p + "extra");
  EXPECT_EQ(PutStream(overflow).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  grpc::ClientContext ctx;
  strata::v1::GetRequest get;
  get.set_namespace_id(ns_);
  get.add_chain_hashes("not-32-bytes");
  auto reader = stub_->Get(&ctx, get);
  strata::v1::GetResponse ignored;
  while (reader->Read(&ignored)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  grpc::Status st;
  EXPECT_EQ(GetChain({7}, &st)[0], good);  // the earlier block is intact
  EXPECT_TRUE(st.ok());
}

// The node's raw Put and Get handlers speak plain protobuf: a generated stub, sending chunks the
// way any protobuf encoder does, round-trips blocks byte-exactly, cut where the node cuts them.
TEST_F(CacheNodeServiceTest, GeneratedStubRoundTripsBlocksAroundChunkBoundaries) {
  constexpr size_t kChunk = 64 << 10;  // the smallest chunk a client may ask for
  const std::vector<size_t> sizes = {1, kChunk - 1, kChunk, kChunk + 1, 5 * kChunk + 3};
  std::vector<strata::v1::PutRequest> msgs;
  std::vector<std::string> payloads;
  for (size_t i = 0; i < sizes.size(); ++i) {
    payloads.push_back(Payload(static_cast<int>(i) + 10, sizes[i]));
    // Put chunks of another size than Get's, so neither side relies on the other's cuts.
    auto block = Block(static_cast<int>(i) + 1, payloads.back(), 100'000);
    msgs.insert(msgs.end(), block.begin(), block.end());
  }
  strata::v1::PutResponse resp;
  ASSERT_TRUE(PutStream(msgs, &resp).ok());
  ASSERT_EQ(resp.results_size(), static_cast<int>(sizes.size()));
  grpc::Status st;
  int chunks = 0;
  const auto got = GetChain({1, 2, 3, 4, 5}, &st, kChunk, &chunks);
  ASSERT_TRUE(st.ok()) << st.error_message();
  int expected_chunks = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_EQ(got[i], payloads[i]) << "block of " << sizes[i] << " bytes";
    expected_chunks += static_cast<int>((sizes[i] + kChunk - 1) / kChunk);
  }
  EXPECT_EQ(chunks, expected_chunks);
}

TEST_F(CacheNodeServiceTest, ChunkThatDoesNotMatchTheChecksumIsDataLossAndNotStored) {
  std::string payload = Payload(3, 200'000);
  auto msgs = Block(1, payload, 64 << 10);
  std::string corrupt = msgs[2].chunk();
  corrupt[100] ^= 0x01;
  msgs[2].set_chunk(corrupt);
  EXPECT_EQ(PutStream(msgs).error_code(), grpc::StatusCode::DATA_LOSS);
  EXPECT_FALSE(Present(1));
}

class CacheNodeServiceClientTest : public CacheNodeServiceTest {
 protected:
  CacheNodeServiceClientTest() {
    dram_bytes_ = 128 * kMiB;
    max_block_bytes_ = 48 * kMiB;
  }

  std::unique_ptr<clients::CacheNodeClient> Connect(size_t chunk_bytes) {
    clients::ClientOptions options;
    options.target = "127.0.0.1:" + std::to_string(server_.port);
    options.chunk_bytes = chunk_bytes;
    auto client = clients::CacheNodeClient::Connect(options);
    EXPECT_TRUE(client.ok()) << client.status();
    return std::move(client).value();
  }

  // Puts one chain of `sizes` through `client`, reads it back with Get and GetInto and checks
  // every byte; also that GetInto hands out pieces of at most 64 KiB.
  void RoundTrip(clients::CacheNodeClient& client, const std::vector<size_t>& sizes, int salt) {
    std::vector<std::string> payloads;
    std::vector<clients::PutBlock> blocks;
    std::vector<common::ChainHash> chain;
    for (size_t i = 0; i < sizes.size(); ++i) {
      payloads.push_back(Payload(salt + static_cast<int>(i), sizes[i]));
      chain.push_back(*common::ChainHash::FromBytes(Hash(salt + static_cast<int>(i))));
    }
    for (size_t i = 0; i < sizes.size(); ++i) {
      blocks.push_back({chain[i], std::as_bytes(std::span(payloads[i])),
                        static_cast<uint32_t>(i), false});
    }
    auto put = client.Put(ns_, blocks);
    ASSERT_TRUE(put.ok()) << put.status();
    for (const clients::PutResult& r : *put) ASSERT_TRUE(r.status.ok()) << r.status;

    auto got = client.Get(ns_, chain, true);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->size(), sizes.size());
    for (size_t i = 0; i < sizes.size(); ++i) {
      EXPECT_TRUE((*got)[i].found);
      EXPECT_TRUE((*got)[i].payload == payloads[i]) << "Get of a block of " << sizes[i] << " bytes";
    }

    std::vector<std::string> into(sizes.size());
    size_t largest_piece = 0;
    ASSERT_TRUE(client
                    .GetInto(ns_, chain, true, nullptr,
                             [&](uint32_t index, std::string_view piece) {
                               largest_piece = std::max(largest_piece, piece.size());
                               into[index].append(piece);
                             })
                    .ok());
    for (size_t i = 0; i < sizes.size(); ++i) {
      EXPECT_TRUE(into[i] == payloads[i]) << "GetInto of a block of " << sizes[i] << " bytes";
    }
    EXPECT_LE(largest_piece, 64u << 10);
  }
};

TEST_F(CacheNodeServiceClientTest, ClientAndNodeRoundTripBlocksAroundChunkBoundariesByteExact) {
  constexpr size_t kSmall = 64 << 10;
  auto small = Connect(kSmall);
  RoundTrip(*small, {1, kSmall - 1, kSmall, kSmall + 1, 7 * kSmall + 5}, 1);
  auto large = Connect(kMiB);  // the client's default chunk
  RoundTrip(*large, {kMiB - 1, kMiB, kMiB + 1, 32 * kMiB}, 20);
}

class CacheNodeServicePinTest : public CacheNodeServiceTest {
 protected:
  CacheNodeServicePinTest() { count_pins_ = true; }
};

TEST_F(CacheNodeServicePinTest, FinishedGetReleasesItsPins) {
  const std::string payload = Payload(1, 3 * kMiB + 5);
  ASSERT_TRUE(PutStream(Block(1, payload)).ok());
  grpc::Status st;
  EXPECT_EQ(GetChain({1}, &st, 64 << 10)[0], payload);
  ASSERT_TRUE(st.ok());
  // Chunks on the wire hold the pin; gRPC drops them once written, after the RPC at the latest.
  EXPECT_TRUE(pin_tier_->AwaitNoPins(absl::Seconds(60))) << pin_tier_->pins() << " pins held";
}

TEST_F(CacheNodeServicePinTest, CancelledGetReleasesItsPinsAndTheBlockCanBeEvicted) {
  ASSERT_TRUE(PutStream(Block(1, Payload(1, 8 * kMiB))).ok());
  {
    grpc::ClientContext ctx;
    strata::v1::GetRequest req;
    req.set_namespace_id(ns_);
    req.add_chain_hashes(Hash(1));
    req.set_max_chunk_bytes(64 << 10);  // 128 chunks: far more than flow control lets through
    auto reader = stub_->Get(&ctx, req);
    strata::v1::GetResponse msg;
    ASSERT_TRUE(reader->Read(&msg));  // the header
    ASSERT_TRUE(reader->Read(&msg));  // the first chunk: the node is mid-block now
    ASSERT_TRUE(msg.has_chunk());
    ctx.TryCancel();
    while (reader->Read(&msg)) {
    }
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  EXPECT_TRUE(pin_tier_->AwaitNoPins(absl::Seconds(60))) << pin_tier_->pins() << " pins held";
  // Four more blocks of 8 MiB fill the 32 MiB tier: the first block's slot must really be free.
  for (int i = 2; i <= 5; ++i) {
    ASSERT_TRUE(PutStream(Block(i, Payload(i, 8 * kMiB))).ok()) << "block " << i;
  }
  EXPECT_FALSE(Present(1));
  EXPECT_TRUE(Present(5));
}

TEST_F(CacheNodeServiceTest, ExpiredDeadlineEndsAGetWithoutHurtingTheNode) {
  ASSERT_TRUE(PutStream(Block(1, Payload(1, 8 * kMiB))).ok());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() - std::chrono::seconds(1));
  strata::v1::GetRequest req;
  req.set_namespace_id(ns_);
  req.add_chain_hashes(Hash(1));
  auto reader = stub_->Get(&ctx, req);
  strata::v1::GetResponse msg;
  while (reader->Read(&msg)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_TRUE(Present(1));
}

TEST_F(CacheNodeServiceTest, StatsReportTiersAndRegisteredNamespaces) {
  grpc::ClientContext rctx;
  strata::v1::RegisterNamespaceRequest reg;
  reg.set_name("llama3-8b/bf16/b16");
  strata::v1::RegisterNamespaceResponse rresp;
  ASSERT_TRUE(stub_->RegisterNamespace(&rctx, reg, &rresp).ok());
  EXPECT_TRUE(rresp.created());
  EXPECT_EQ(rresp.namespace_id(), common::NamespaceIdOf("llama3-8b/bf16/b16"));

  ASSERT_TRUE(PutStream(Block(1, Payload(1, kMiB))).ok());
  grpc::ClientContext ctx;
  strata::v1::StatsResponse stats;
  ASSERT_TRUE(stub_->Stats(&ctx, strata::v1::StatsRequest(), &stats).ok());
  ASSERT_EQ(stats.tiers_size(), 1);
  EXPECT_EQ(stats.tiers(0).name(), "dram");
  EXPECT_EQ(stats.tiers(0).blocks(), 1u);
  EXPECT_EQ(stats.namespaces_size(), 2);
  EXPECT_EQ(stats.max_block_bytes(), 16 * kMiB);

  grpc::ClientContext bctx;
  reg.set_name("bad name");
  EXPECT_EQ(stub_->RegisterNamespace(&bctx, reg, &rresp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(CacheNodeServiceTest, ReportEngineLoadRecordsEachEnginesLatestReport) {
  auto report = [&](const std::string& id, uint32_t queued,
                    strata::v1::ReportEngineLoadResponse* resp) {
    strata::v1::ReportEngineLoadRequest req;
    req.set_engine_id(id);
    req.set_queued_requests(queued);
    req.set_running_requests(2);
    req.set_prefill_tokens_in_flight(1000);
    req.set_free_hbm_blocks(50);
    grpc::ClientContext ctx;
    return stub_->ReportEngineLoad(&ctx, req, resp).error_code();
  };
  strata::v1::ReportEngineLoadResponse resp;
  ASSERT_EQ(report("vllm-0", 4, &resp), grpc::StatusCode::OK);
  EXPECT_EQ(resp.ttl_ms(), 3000u);  // engines learn how often they must report
  ASSERT_EQ(report("vllm-1", 1, &resp), grpc::StatusCode::OK);
  ASSERT_EQ(report("vllm-0", 6, &resp), grpc::StatusCode::OK);
  EngineLoadSum sum = engines_->Sum();
  EXPECT_EQ(sum.engines, 2u);
  EXPECT_EQ(sum.total.queued_requests, 7u);
  EXPECT_EQ(sum.total.running_requests, 4u);
  EXPECT_EQ(sum.total.prefill_tokens_in_flight, 2000u);
  EXPECT_EQ(sum.total.free_hbm_blocks, 100u);

  EXPECT_EQ(report("", 1, &resp), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(report("vllm-2", 1, &resp), grpc::StatusCode::RESOURCE_EXHAUSTED);  // at most 2
  clock_.Advance(absl::Seconds(4));  // both went quiet: a new engine takes a slot
  EXPECT_EQ(report("vllm-2", 1, &resp), grpc::StatusCode::OK);
  EXPECT_EQ(engines_->Sum().engines, 1u);
}

TEST_F(CacheNodeServiceTest, SyncWithoutAnSsdTierIsFailedPrecondition) {
  ASSERT_TRUE(PutStream(Block(1, Payload(1, 1000))).ok());
  auto sync = Client()->Sync();
  EXPECT_TRUE(absl::IsFailedPrecondition(sync.status())) << sync.status();
  EXPECT_TRUE(Present(1));  // nothing else changed
}

class CacheNodeServiceSyncTest : public CacheNodeServiceTest {
 protected:
  CacheNodeServiceSyncTest() { ssd_bytes_ = 256 * kMiB; }

  // Puts block i (payload Payload(i, size)) through the client.
  void PutBlock(clients::CacheNodeClient& client, int i, size_t size) {
    const std::string payload = Payload(i, size);
    const clients::PutBlock block{*common::ChainHash::FromBytes(Hash(i)),
                                  std::as_bytes(std::span(payload)), 0, false};
    auto put = client.Put(ns_, std::span(&block, 1));
    ASSERT_TRUE(put.ok()) << put.status();
    ASSERT_TRUE(put->front().status.ok()) << put->front().status;
  }
};

// No background write-behind runs here (the node binary runs it): blocks stay in DRAM until a
// test writes them, so each step's durability is known.
TEST_F(CacheNodeServiceSyncTest, OnlySyncMakesCommittedBlocksSurviveACrash) {
  auto client = Client();
  for (int i = 1; i <= 3; ++i) PutBlock(*client, i, 100'000 + i);
  EXPECT_EQ(store_->Stats().write_behind_pending, 3u);
  ASSERT_EQ(store_->FlushWriteBehind(), 3u);  // on the SSD tier, in its memtable only
  EXPECT_TRUE(BlocksAfterCrash().empty()) << "a put or a write-behind alone is not durable";

  PutBlock(*client, 4, 3 * kMiB + 1);  // still in DRAM only: Sync must write it itself
  auto sync = client->Sync();
  ASSERT_TRUE(sync.ok()) << sync.status();
  EXPECT_EQ(sync->persisted_blocks(), 1u);
  EXPECT_EQ(sync->durable_blocks(), 4u);
  EXPECT_EQ(store_->Stats().write_behind_pending, 0u);

  const std::map<std::string, std::string> after = BlocksAfterCrash();
  ASSERT_EQ(after.size(), 4u);
  for (int i = 1; i <= 4; ++i) {
    ASSERT_TRUE(after.contains(Hash(i))) << "block " << i;
    EXPECT_TRUE(after.at(Hash(i)) == Payload(i, i == 4 ? 3 * kMiB + 1 : 100'000 + i))
        << "block " << i << " is not byte-exact after the crash";
  }

  // A second Sync with nothing new writes nothing and still reports what is durable.
  auto again = client->Sync();
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->persisted_blocks(), 0u);
  EXPECT_EQ(again->durable_blocks(), 4u);
}

TEST_F(CacheNodeServiceSyncTest, DeletedBlocksDoNotHoldUpASync) {
  auto client = Client();
  PutBlock(*client, 1, 5000);
  PutBlock(*client, 2, 5000);
  ASSERT_TRUE(client->Delete(ns_, std::vector{*common::ChainHash::FromBytes(Hash(1))}).ok());
  auto sync = client->Sync();
  ASSERT_TRUE(sync.ok()) << sync.status();
  EXPECT_EQ(sync->persisted_blocks(), 1u);
  const std::map<std::string, std::string> after = BlocksAfterCrash();
  EXPECT_EQ(after.size(), 1u);
  EXPECT_TRUE(after.contains(Hash(2)));
}

// A put of the same bytes (a retry, or a second engine) must not erase the SSD copy a Sync made
// durable: a flush before its write-behind (another client's Sync, a full memtable) would make the
// erase durable and a crash would lose the block. strata-crash-test found this (--reput-percent).
TEST_F(CacheNodeServiceSyncTest, PutAgainOfADurableBlockKeepsItDurable) {
  auto client = Client();
  PutBlock(*client, 1, 70'000);
  ASSERT_TRUE(client->Sync().ok());
  PutBlock(*client, 1, 70'000);  // the same bytes again: a retry, or a second engine
  auto* ssd = dynamic_cast<SsdTier*>(store_->tier(TierKind::kSsd));
  ASSERT_NE(ssd, nullptr);
  ASSERT_TRUE(ssd->Flush().ok());  // as another client's Sync or a full memtable would
  EXPECT_TRUE(BlocksAfterCrash().contains(Hash(1)));
}

class CacheNodeServiceTinySsdTest : public CacheNodeServiceTest {
 protected:
  CacheNodeServiceTinySsdTest() {
    ssd_bytes_ = kMiB;
    service_options_.sync_stall_timeout = absl::ZeroDuration();  // give up at the first stall
  }
};

TEST_F(CacheNodeServiceTinySsdTest, SyncIsResourceExhaustedWhenTheSsdTierCannotTakeTheBlocks) {
  ASSERT_TRUE(PutStream(Block(1, Payload(1, 2 * kMiB))).ok());  // fits DRAM, not the SSD tier
  auto sync = Client()->Sync();
  EXPECT_TRUE(absl::IsResourceExhausted(sync.status())) << sync.status();
  EXPECT_NE(sync.status().message().find("1 of 1 blocks"), absl::string_view::npos)
      << sync.status();
  EXPECT_TRUE(Present(1));  // still served from DRAM
}

// ---- The handlers' pure validation (also what fuzz/grpc_requests_fuzzer.cc drives) -----------

TEST(ValidatePutHeaderTest, AcceptsABlockWithinTheLimitsAndReturnsItsInfo) {
  strata::v1::PutBlockHeader h;
  h.mutable_key()->set_namespace_id(common::NamespaceIdOf("default"));
  h.mutable_key()->set_chain_hash(std::string(32, 'h'));
  h.set_size_bytes(4096);
  h.set_checksum(99);
  h.set_chain_position(3);
  const absl::StatusOr<BlockInfo> info = ValidatePutHeader(h, nullptr, 4096);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->key.namespace_id, common::NamespaceIdOf("default"));
  EXPECT_EQ(info->key.hash.view(), std::string(32, 'h'));
  EXPECT_EQ(info->size, 4096u);
  EXPECT_EQ(info->checksum, 99u);
  EXPECT_EQ(info->chain_position, 3u);
}

TEST(ValidatePutHeaderTest, RejectsEmptyOversizedShortHashAndUnknownNamespace) {
  auto registry = NamespaceRegistry::Open("", {"default"});
  ASSERT_TRUE(registry.ok()) << registry.status();
  strata::v1::PutBlockHeader good;
  good.mutable_key()->set_namespace_id(common::NamespaceIdOf("default"));
  good.mutable_key()->set_chain_hash(std::string(32, 'h'));
  good.set_size_bytes(100);
  ASSERT_TRUE(ValidatePutHeader(good, registry->get(), 100).ok());
  strata::v1::PutBlockHeader h = good;
  h.set_size_bytes(0);
  EXPECT_EQ(ValidatePutHeader(h, registry->get(), 100).status().code(),
            absl::StatusCode::kInvalidArgument);
  h = good;
  h.set_size_bytes(101);
  EXPECT_EQ(ValidatePutHeader(h, registry->get(), 100).status().code(),
            absl::StatusCode::kResourceExhausted);
  h = good;
  h.mutable_key()->set_chain_hash(std::string(31, 'h'));
  EXPECT_EQ(ValidatePutHeader(h, registry->get(), 100).status().code(),
            absl::StatusCode::kInvalidArgument);
  h = good;
  h.mutable_key()->set_namespace_id(common::NamespaceIdOf("other"));
  EXPECT_EQ(ValidatePutHeader(h, registry->get(), 100).status().code(),
            absl::StatusCode::kFailedPrecondition);
  h.mutable_key()->set_namespace_id(0);
  EXPECT_EQ(ValidatePutHeader(h, nullptr, 100).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ValidateGetRequestTest, BoundsTheBlockCountAndClampsTheChunkSize) {
  CacheNodeServiceOptions options;
  options.max_blocks_per_request = 2;
  strata::v1::GetRequest req;
  req.set_namespace_id(common::NamespaceIdOf("default"));
  req.add_chain_hashes(std::string(32, 'a'));
  req.add_chain_hashes(std::string(32, 'b'));
  req.set_max_chunk_bytes(1);
  absl::StatusOr<ValidGet> valid = ValidateGetRequest(req, nullptr, options);
  ASSERT_TRUE(valid.ok()) << valid.status();
  EXPECT_EQ(valid->chain.size(), 2u);
  EXPECT_EQ(valid->chunk_bytes, 64u << 10);
  req.set_max_chunk_bytes(UINT32_MAX);
  EXPECT_EQ(ValidateGetRequest(req, nullptr, options)->chunk_bytes, kMaxChunkBytes);
  req.set_max_chunk_bytes(0);
  EXPECT_EQ(ValidateGetRequest(req, nullptr, options)->chunk_bytes, options.default_chunk_bytes);
  req.add_chain_hashes(std::string(32, 'c'));
  EXPECT_EQ(ValidateGetRequest(req, nullptr, options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace strata::cachenode
