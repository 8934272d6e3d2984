// The service over a real gRPC server on loopback, driven through the raw stub so that malformed
// streams (which no well-behaved client sends) can be tested too.
#include "cachenode/cache_node_service.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/client_unary_call.h>
#include <grpcpp/support/byte_buffer.h>

#include <cstring>
#include <random>

#include "cachenode/memory_tier.h"
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

class CacheNodeServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StoreTiers tiers;
    tiers.dram = std::make_unique<MemoryTier>(
        MemoryTierOptions{}, std::move(*CreateHostMemory({32 * kMiB, true, false, "t"})));
    TieredStoreOptions so;
    so.max_block_bytes = 16 * kMiB;
    store_ = std::move(*TieredStore::Open(so, std::move(tiers)));
    namespaces_ = std::move(*NamespaceRegistry::Open("", {"test-ns"}));
    ns_ = common::NamespaceIdOf("test-ns");
    EngineLoadOptions eo;
    eo.ttl = absl::Seconds(3);
    eo.max_engines = 2;
    engines_ = std::make_unique<EngineLoadTable>(eo, &clock_);
    service_ = std::make_unique<CacheNodeService>(store_.get(), namespaces_.get(), engines_.get(),
                                                  CacheNodeServiceOptions{});
    auto server = StartNodeServer("127.0.0.1:0", service_.get());
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(kMaxMessageBytes);
    channel_ = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(server_.port),
                                         grpc::InsecureChannelCredentials(), args);
    stub_ = strata::v1::CacheNode::NewStub(channel_);
  }
  void TearDown() override { server_.server->Shutdown(); }

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

  std::vector<strata::v1::PutRequest> Block(int i, const std::string& payload) {
    std::vector<strata::v1::PutRequest> msgs = {Header(i, payload)};
    for (size_t off = 0; off < payload.size(); off += kMiB) {
      strata::v1::PutRequest c;
      c.set_chunk(payload.substr(off, kMiB));
      msgs.push_back(c);
    }
    return msgs;
  }

  // Reads blocks back; returns payload per index ("" for a miss).
  std::vector<std::string> GetChain(const std::vector<int>& ids, grpc::Status* status) {
    grpc::ClientContext ctx;
    strata::v1::GetRequest req;
    req.set_namespace_id(ns_);
    for (int i : ids) req.add_chain_hashes(Hash(i));
    auto reader = stub_->Get(&ctx, req);
    std::vector<std::string> out(ids.size());
    strata::v1::GetResponse msg;
    int cur = -1;
    while (reader->Read(&msg)) {
      if (msg.has_header()) {
        cur = msg.header().index();
      } else {
        out[cur] += msg.chunk();
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

}  // namespace
}  // namespace strata::cachenode
