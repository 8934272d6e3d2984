#include "clients/cache_node_client.h"

#include <random>

#include "absl/synchronization/mutex.h"
#include "clients/fake_cache_node.h"
#include "common/checksum.h"
#include "common/grpc_server.h"
#include "common/namespace_id.h"
#include "gtest/gtest.h"

namespace strata::clients {
namespace {

namespace v1 = ::strata::v1;

common::ChainHash HashOf(uint8_t seed) {
  common::ChainHash h;
  for (size_t i = 0; i < h.bytes.size(); ++i) h.bytes[i] = static_cast<uint8_t>(seed * 31 + i);
  return h;
}

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng());
  return out;
}

std::span<const std::byte> Bytes(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

class CacheNodeClientTest : public ::testing::Test {
 protected:
  void SetUp() override { client_ = MakeClient(ClientOptions{}); }

  std::unique_ptr<CacheNodeClient> MakeClient(ClientOptions options) {
    options.target = node_.address();
    absl::StatusOr<std::unique_ptr<CacheNodeClient>> client = CacheNodeClient::Connect(options);
    EXPECT_TRUE(client.ok()) << client.status();
    return std::move(client).value();
  }

  const common::NamespaceId ns_ = common::NamespaceIdOf("default");
  FakeCacheNode node_;
  std::unique_ptr<CacheNodeClient> client_;
};

TEST(ClientOptionsTest, ValidateNamesTheBadField) {
  ClientOptions options;
  EXPECT_TRUE(absl::IsInvalidArgument(options.Validate()));  // no target
  options.target = "127.0.0.1:1";
  EXPECT_TRUE(options.Validate().ok());
  ClientOptions bad = options;
  bad.deadline = absl::ZeroDuration();
  EXPECT_NE(bad.Validate().message().find("deadline"), std::string_view::npos);
  bad = options;
  bad.max_attempts = 0;
  EXPECT_NE(bad.Validate().message().find("max_attempts"), std::string_view::npos);
  bad = options;
  bad.chunk_bytes = (4 << 20) + 1;
  EXPECT_NE(bad.Validate().message().find("chunk_bytes"), std::string_view::npos);
  bad = options;
  bad.max_message_bytes = bad.chunk_bytes;  // no room for framing
  EXPECT_NE(bad.Validate().message().find("max_message_bytes"), std::string_view::npos);
}

TEST_F(CacheNodeClientTest, PutThenGetReturnsTheSameBytesAcrossChunks) {
  ClientOptions options;
  options.chunk_bytes = 64 << 10;
  auto client = MakeClient(options);
  const std::string a = RandomBytes((64 << 10) * 2 + 100, 1);  // three chunks
  const std::string b = RandomBytes(10, 2);
  const PutBlock blocks[] = {{HashOf(1), Bytes(a), 0, true}, {HashOf(2), Bytes(b), 1, false}};
  absl::StatusOr<std::vector<PutResult>> put = client->Put(ns_, blocks);
  ASSERT_TRUE(put.ok()) << put.status();
  ASSERT_EQ(put->size(), 2u);
  EXPECT_TRUE((*put)[0].status.ok());
  EXPECT_EQ((*put)[0].tier, v1::TIER_HBM);
  EXPECT_EQ((*put)[1].tier, v1::TIER_DRAM);
  EXPECT_EQ(node_.put_chunk_messages(), 4);

  const common::ChainHash chain[] = {HashOf(1), HashOf(2)};
  absl::StatusOr<std::vector<GetResult>> got = client->Get(ns_, chain, false);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 2u);
  EXPECT_TRUE((*got)[0].found);
  EXPECT_EQ((*got)[0].payload, a);
  EXPECT_EQ((*got)[1].index, 1u);
  EXPECT_EQ((*got)[1].payload, b);
  EXPECT_EQ(node_.max_get_chunk_seen(), 64 << 10);
}

TEST_F(CacheNodeClientTest, PutReportsPerBlockRefusals) {
  node_.SetMaxBlockBytes(100);
  const std::string small = RandomBytes(100, 3);
  const std::string big = RandomBytes(101, 4);
  const PutBlock blocks[] = {{HashOf(1), Bytes(small)}, {HashOf(2), Bytes(big)}};
  absl::StatusOr<std::vector<PutResult>> put = client_->Put(ns_, blocks);
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_TRUE((*put)[0].status.ok());
  EXPECT_TRUE(absl::IsResourceExhausted((*put)[1].status)) << (*put)[1].status;
}

TEST_F(CacheNodeClientTest, PutToUnknownNamespaceIsFailedPrecondition) {
  const std::string payload = "x";
  const PutBlock block{HashOf(1), Bytes(payload)};
  absl::StatusOr<std::vector<PutResult>> put =
      client_->Put(common::NamespaceIdOf("nope"), {&block, 1});
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_TRUE(absl::IsFailedPrecondition((*put)[0].status));
}

TEST_F(CacheNodeClientTest, GetReportsMissesAndStopsAtTheFirstWhenAsked) {
  const std::string payload = RandomBytes(1000, 5);
  const PutBlock block{HashOf(1), Bytes(payload)};
  ASSERT_TRUE(client_->Put(ns_, {&block, 1}).ok());
  const common::ChainHash chain[] = {HashOf(9), HashOf(1)};

  absl::StatusOr<std::vector<GetResult>> all = client_->Get(ns_, chain, false);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 2u);
  EXPECT_FALSE((*all)[0].found);
  EXPECT_TRUE(absl::IsNotFound((*all)[0].miss));
  EXPECT_TRUE((*all)[1].found);

  absl::StatusOr<std::vector<GetResult>> stopped = client_->Get(ns_, chain, true);
  ASSERT_TRUE(stopped.ok());
  EXPECT_EQ(stopped->size(), 1u);
}

TEST_F(CacheNodeClientTest, GetTurnsCorruptPayloadIntoDataLoss) {
  const std::string payload = RandomBytes(200 << 10, 6);
  const PutBlock block{HashOf(1), Bytes(payload)};
  ASSERT_TRUE(client_->Put(ns_, {&block, 1}).ok());
  node_.CorruptPayloads(true);
  const common::ChainHash chain[] = {HashOf(1)};
  absl::StatusOr<std::vector<GetResult>> got = client_->Get(ns_, chain, false);
  EXPECT_TRUE(absl::IsDataLoss(got.status())) << got.status();
  absl::Status into = client_->GetInto(ns_, chain, false, nullptr, nullptr);
  EXPECT_TRUE(absl::IsDataLoss(into)) << into;
}

TEST_F(CacheNodeClientTest, GetTurnsShortPayloadIntoDataLoss) {
  const std::string payload = RandomBytes(1000, 7);
  const PutBlock block{HashOf(1), Bytes(payload)};
  ASSERT_TRUE(client_->Put(ns_, {&block, 1}).ok());
  node_.TruncatePayloads(true);
  const common::ChainHash chain[] = {HashOf(1), HashOf(2)};
  absl::StatusOr<std::vector<GetResult>> got = client_->Get(ns_, chain, false);
  EXPECT_TRUE(absl::IsDataLoss(got.status())) << got.status();
  EXPECT_NE(got.status().message().find("999 of 1000"), std::string_view::npos) << got.status();
}

TEST_F(CacheNodeClientTest, GetIntoDeliversHeadersAndChunksInOrder) {
  const std::string payload = RandomBytes(300 << 10, 8);
  const PutBlock block{HashOf(1), Bytes(payload)};
  ASSERT_TRUE(client_->Put(ns_, {&block, 1}).ok());
  const common::ChainHash chain[] = {HashOf(1), HashOf(2)};
  std::vector<v1::GetBlockHeader> headers;
  std::string received;
  absl::Status status = client_->GetInto(
      ns_, chain, false, [&](const v1::GetBlockHeader& h) { headers.push_back(h); },
      [&](uint32_t index, std::string_view chunk) {
        EXPECT_EQ(index, 0u);
        received.append(chunk);
      });
  ASSERT_TRUE(status.ok()) << status;
  ASSERT_EQ(headers.size(), 2u);
  EXPECT_TRUE(headers[0].found());
  EXPECT_EQ(headers[0].checksum(), common::Checksum(payload));
  EXPECT_FALSE(headers[1].found());
  EXPECT_EQ(received, payload);
}

// FakeCacheNode is a generated-code server: chunks it encodes with protobuf arrive in whatever
// slices the socket gave, and the caller still gets them in pieces of at most 64 KiB (so each is
// hashed while in cache), in order, adding up to the block.
TEST_F(CacheNodeClientTest, GetIntoHandsOutPiecesOfAtMost64KiBFromAGeneratedServer) {
  const std::string payload = RandomBytes((1 << 20) + 7, 9);  // two chunks of the default 1 MiB
  const PutBlock block{HashOf(1), Bytes(payload)};
  ASSERT_TRUE(client_->Put(ns_, {&block, 1}).ok());
  const common::ChainHash chain[] = {HashOf(1)};
  std::string received;
  size_t pieces = 0;
  size_t largest = 0;
  absl::Status status =
      client_->GetInto(ns_, chain, false, nullptr, [&](uint32_t, std::string_view piece) {
        ++pieces;
        largest = std::max(largest, piece.size());
        received.append(piece);
      });
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_TRUE(received == payload);
  EXPECT_LE(largest, 64u << 10);
  EXPECT_GE(pieces, payload.size() / (64 << 10));
}

TEST_F(CacheNodeClientTest, RetriesUnavailableUntilItSucceeds) {
  node_.FailNextCalls(2, grpc::Status(grpc::UNAVAILABLE, "try again"));
  absl::StatusOr<v1::StatsResponse> stats = client_->Stats();
  EXPECT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(node_.calls(), 3);
}

TEST_F(CacheNodeClientTest, GivesUpAfterMaxAttempts) {
  node_.FailNextCalls(5, grpc::Status(grpc::UNAVAILABLE, "down"));
  absl::StatusOr<v1::ListNamespacesResponse> r = client_->ListNamespaces();
  EXPECT_TRUE(absl::IsUnavailable(r.status())) << r.status();
  EXPECT_EQ(node_.calls(), 3);
}

TEST_F(CacheNodeClientTest, DoesNotRetryOtherCodes) {
  node_.FailNextCalls(1, grpc::Status(grpc::FAILED_PRECONDITION, "no"));
  const common::ChainHash chain[] = {HashOf(1)};
  absl::StatusOr<v1::LookupResponse> r = client_->Lookup(ns_, chain);
  EXPECT_TRUE(absl::IsFailedPrecondition(r.status())) << r.status();
  EXPECT_EQ(r.status().message(), "no");
  EXPECT_EQ(node_.calls(), 1);
}

// A node that serves only Sync: UNAVAILABLE for the first `unavailable` calls (as a node that is
// restarting), then fixed counts.
class SyncOnlyNode final : public v1::CacheNode::Service {
 public:
  explicit SyncOnlyNode(int unavailable) : unavailable_(unavailable) {}
  grpc::Status Sync(grpc::ServerContext*, const v1::SyncRequest*,
                    v1::SyncResponse* response) override {
    absl::MutexLock lock(&mu_);
    if (++calls_ <= unavailable_) return grpc::Status(grpc::UNAVAILABLE, "restarting");
    response->set_persisted_blocks(2);
    response->set_durable_blocks(5);
    return grpc::Status::OK;
  }
  int calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }

 private:
  const int unavailable_;
  absl::Mutex mu_;
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
};

TEST(CacheNodeClientSyncTest, ReturnsTheNodesCountsAndNeverRetriesUnavailable) {
  SyncOnlyNode node(1);
  absl::StatusOr<common::GrpcServer> server =
      common::StartGrpcServer("127.0.0.1:0", {&node}, 4 << 20);
  ASSERT_TRUE(server.ok()) << server.status();
  ClientOptions options;
  options.target = "127.0.0.1:" + std::to_string(server->port);
  options.max_attempts = 3;  // retries other calls; Sync must still not be retried
  auto client = CacheNodeClient::Connect(options);
  ASSERT_TRUE(client.ok()) << client.status();

  // A retry could reach a restarted node whose OK would not cover the first run's puts.
  absl::StatusOr<v1::SyncResponse> first = (*client)->Sync();
  EXPECT_TRUE(absl::IsUnavailable(first.status())) << first.status();
  EXPECT_EQ(node.calls(), 1);

  absl::StatusOr<v1::SyncResponse> second = (*client)->Sync();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->persisted_blocks(), 2u);
  EXPECT_EQ(second->durable_blocks(), 5u);
  EXPECT_EQ(node.calls(), 2);
  server->server->Shutdown();
}

TEST_F(CacheNodeClientTest, UnreachableNodeIsUnavailable) {
  // Port 1 on loopback has no listener: connection refused, retried, then reported.
  ClientOptions options;
  options.target = "127.0.0.1:1";
  options.deadline = absl::Seconds(10);
  auto client = CacheNodeClient::Connect(options);
  ASSERT_TRUE(client.ok());
  absl::StatusOr<v1::StatsResponse> stats = (*client)->Stats();
  EXPECT_TRUE(absl::IsUnavailable(stats.status())) << stats.status();
}

TEST_F(CacheNodeClientTest, LookupDeleteAndNamespaces) {
  const std::string payload = "abc";
  const PutBlock blocks[] = {{HashOf(1), Bytes(payload)}, {HashOf(2), Bytes(payload)}};
  ASSERT_TRUE(client_->Put(ns_, blocks).ok());
  const common::ChainHash chain[] = {HashOf(1), HashOf(2), HashOf(3)};
  absl::StatusOr<v1::LookupResponse> lookup = client_->Lookup(ns_, chain);
  ASSERT_TRUE(lookup.ok());
  EXPECT_EQ(lookup->matched_blocks(), 2u);
  absl::StatusOr<uint32_t> deleted = client_->Delete(ns_, chain);
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(*deleted, 2u);

  EXPECT_TRUE(absl::IsInvalidArgument(client_->RegisterNamespace("bad name!").status()));
  EXPECT_EQ(node_.calls(), 3);  // the bad name never left the client
  absl::StatusOr<v1::RegisterNamespaceResponse> reg = client_->RegisterNamespace("llama/b16");
  ASSERT_TRUE(reg.ok());
  EXPECT_TRUE(reg->created());
  EXPECT_EQ(reg->namespace_id(), common::NamespaceIdOf("llama/b16"));
  absl::StatusOr<v1::ListNamespacesResponse> list = client_->ListNamespaces();
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->namespaces_size(), 2);
}

TEST_F(CacheNodeClientTest, ReportEngineLoadSendsEveryFigureAndReturnsTheTtl) {
  const EngineLoadReport report{.engine_id = "vllm-0",
                                .queued_requests = 3,
                                .running_requests = 8,
                                .prefill_tokens_in_flight = 1ull << 40,
                                .free_hbm_blocks = 123};
  absl::StatusOr<absl::Duration> ttl = client_->ReportEngineLoad(report);
  ASSERT_TRUE(ttl.ok()) << ttl.status();
  EXPECT_EQ(*ttl, absl::Seconds(3));
  const v1::ReportEngineLoadRequest sent = node_.last_engine_load();
  EXPECT_EQ(sent.engine_id(), "vllm-0");
  EXPECT_EQ(sent.queued_requests(), 3u);
  EXPECT_EQ(sent.running_requests(), 8u);
  EXPECT_EQ(sent.prefill_tokens_in_flight(), 1ull << 40);
  EXPECT_EQ(sent.free_hbm_blocks(), 123u);

  EXPECT_TRUE(absl::IsInvalidArgument(client_->ReportEngineLoad({}).status()));
  EXPECT_EQ(node_.calls(), 1);  // the empty id never left the client
}

}  // namespace
}  // namespace strata::clients
