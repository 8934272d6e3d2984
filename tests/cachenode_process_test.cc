// Process-level tests of strata-cachenode: a real node binary on loopback, driven through
// CacheNodeClient and, for malformed streams the client never sends, the raw generated stub.
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "clients/cache_node_client.h"
#include "common/checksum.h"
#include "common/grpc_status.h"
#include "common/namespace_id.h"
#include "gtest/gtest.h"
#include "tests/node_process.h"

namespace strata::tests {
namespace {

namespace v1 = ::strata::v1;
using clients::CacheNodeClient;
using clients::ClientOptions;
using clients::GetResult;
using clients::PutBlock;
using clients::PutResult;

constexpr size_t kMiB = 1 << 20;

common::ChainHash HashOf(uint32_t n) {
  common::ChainHash h;
  std::mt19937 rng(n);
  for (uint8_t& b : h.bytes) b = static_cast<uint8_t>(rng());
  return h;
}

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(n, '\0');
  for (size_t i = 0; i + 8 <= n; i += 8) {
    const uint64_t v = rng();
    std::memcpy(out.data() + i, &v, 8);
  }
  for (size_t i = n - n % 8; i < n; ++i) out[i] = static_cast<char>(rng());
  return out;
}

std::span<const std::byte> Bytes(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

std::unique_ptr<CacheNodeClient> ClientFor(const std::string& address) {
  ClientOptions options;
  options.target = address;
  options.deadline = absl::Seconds(60);
  absl::StatusOr<std::unique_ptr<CacheNodeClient>> client = CacheNodeClient::Connect(options);
  EXPECT_TRUE(client.ok()) << client.status();
  return std::move(client).value();
}

// Puts one block and returns its result, or the call's error.
PutResult PutOne(CacheNodeClient& client, common::NamespaceId ns, const common::ChainHash& hash,
                 const std::string& payload, bool from_gpu = false) {
  const PutBlock block{hash, Bytes(payload), 0, from_gpu};
  absl::StatusOr<std::vector<PutResult>> r = client.Put(ns, {&block, 1});
  if (!r.ok()) return PutResult{r.status(), v1::TIER_UNSPECIFIED};
  return r->front();
}

// Reads one block back (found or not); an error only when the call fails.
absl::StatusOr<GetResult> GetOne(CacheNodeClient& client, common::NamespaceId ns,
                                 const common::ChainHash& hash) {
  absl::StatusOr<std::vector<GetResult>> r = client.Get(ns, {&hash, 1}, false);
  if (!r.ok()) return r.status();
  if (r->size() != 1) return absl::InternalError("expected one result");
  return r->front();
}

const common::NamespaceId kDefaultNs = common::NamespaceIdOf("default");

TEST(CacheNodeProcessTest, PutGetIsByteExactThroughEveryTier) {
  TempDir dir;
  NodeProcess node;
  absl::StatusOr<std::string> address =
      node.Start({"--hbm-bytes", "24MiB", "--dram-bytes", "24MiB", "--ssd-bytes", "1GiB",
                  "--data-dir", dir.File("data")});
  ASSERT_TRUE(address.ok()) << address.status() << "\n" << node.stderr_text();
  auto client = ClientFor(*address);

  // Two blocks from the GPU land in HBM; eight more through DRAM (room for at most three 8 MiB
  // blocks) push the older ones down to SSD.
  constexpr int kGpuBlocks = 2;
  constexpr int kBlocks = 10;
  std::vector<std::string> payloads;
  std::vector<common::ChainHash> chain;
  for (int i = 0; i < kBlocks; ++i) {
    payloads.push_back(RandomBytes(8 * kMiB, 100 + i));
    chain.push_back(HashOf(100 + i));
    const PutResult r = PutOne(*client, kDefaultNs, chain.back(), payloads.back(), i < kGpuBlocks);
    ASSERT_TRUE(r.status.ok()) << "block " << i << ": " << r.status;
    EXPECT_EQ(r.tier, i < kGpuBlocks ? v1::TIER_HBM : v1::TIER_DRAM) << "block " << i;
  }

  absl::StatusOr<v1::LookupResponse> lookup = client->Lookup(kDefaultNs, chain);
  ASSERT_TRUE(lookup.ok()) << lookup.status();
  EXPECT_EQ(lookup->matched_blocks(), static_cast<uint32_t>(kBlocks));
  EXPECT_GT(lookup->hbm_blocks(), 0u);
  EXPECT_GT(lookup->dram_blocks(), 0u);
  EXPECT_GT(lookup->ssd_blocks(), 0u);

  absl::StatusOr<std::vector<GetResult>> got = client->Get(kDefaultNs, chain, false);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), static_cast<size_t>(kBlocks));
  std::set<v1::Tier> tiers;
  for (int i = 0; i < kBlocks; ++i) {
    const GetResult& r = (*got)[i];
    ASSERT_TRUE(r.found) << "block " << i << ": " << r.miss;
    EXPECT_EQ(r.index, static_cast<uint32_t>(i));
    EXPECT_TRUE(r.payload == payloads[i]) << "block " << i << " differs";
    tiers.insert(r.tier);
  }
  EXPECT_EQ(tiers, (std::set<v1::Tier>{v1::TIER_HBM, v1::TIER_DRAM, v1::TIER_SSD}));

  absl::StatusOr<v1::StatsResponse> stats = client->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->blocks(), static_cast<uint64_t>(kBlocks));
  // DRAM made room for newer blocks (by demotion, or by dropping copies write-behind had
  // persisted).
  uint64_t dram_evictions = 0;
  for (const v1::TierStats& t : stats->tiers()) {
    if (t.tier() == v1::TIER_DRAM) dram_evictions = t.evictions();
  }
  EXPECT_GT(dram_evictions, 0u) << stats->DebugString();
}

// Fetches http://127.0.0.1:port/path with a plain HTTP/1.0 GET; the body, or an error.
TEST(CacheNodeProcessTest, MetricsEndpointServesTierFiguresInPrometheusFormat) {
  TempDir dir;
  NodeProcess node;
  absl::StatusOr<std::string> address =
      node.Start({"--hbm-bytes", "8MiB", "--dram-bytes", "16MiB", "--ssd-bytes", "64MiB",
                  "--data-dir", dir.File("data"), "--metrics-listen", "127.0.0.1:0"});
  ASSERT_TRUE(address.ok()) << address.status() << "\n" << node.stderr_text();
  // The node logs the bound metrics address before it reports serving.
  const std::string log = node.stderr_text();
  const std::string marker = "metrics on http://127.0.0.1:";
  const size_t at = log.find(marker);
  ASSERT_NE(at, std::string::npos) << log;
  const int port = std::stoi(log.substr(at + marker.size()));

  auto client = ClientFor(*address);
  const std::string payload = RandomBytes(kMiB, 7);
  ASSERT_TRUE(PutOne(*client, kDefaultNs, HashOf(1), payload).status.ok());
  ASSERT_TRUE(GetOne(*client, kDefaultNs, HashOf(1)).ok());
  ASSERT_TRUE(GetOne(*client, kDefaultNs, HashOf(2)).ok());  // a miss

  absl::StatusOr<std::string> text = HttpGet(port, "/metrics");
  ASSERT_TRUE(text.ok()) << text.status();
  for (const std::string& line : {
           std::string("strata_tier_capacity_bytes{tier=\"dram\"} 16777216"),
           std::string("strata_tier_capacity_bytes{tier=\"ssd\"} 67108864"),
           std::string("strata_hits_total{tier=\"dram\"} 1"),
           std::string("strata_misses_total 1"),
           std::string("\nstrata_ssd_writes_stopped 0"),
           std::string("\nstrata_ssd_write_errors_total 0"),
           std::string("strata_tier_blocks{tier=\"dram\"} 1"),
           std::string("strata_checksum_failures_total{tier=\"dram\"} 0"),
           std::string("# TYPE strata_rpc_duration_seconds histogram"),
       }) {
    EXPECT_NE(text->find(line), std::string::npos) << "missing: " << line << "\n" << *text;
  }
  EXPECT_NE(text->find("strata_rpc_duration_seconds_count{code=\"0\",method=\"Put\"} 1"),
            std::string::npos)
      << *text;
  // Without a GPU the HBM tier must say it is emulated, in metrics as everywhere.
  const bool emulated = text->find("tier=\"hbm(emulated)\"") != std::string::npos;
  const bool real = text->find("strata_tier_emulated{tier=\"hbm\"} 0") != std::string::npos;
  EXPECT_TRUE(emulated != real) << *text;
  if (emulated) {
    EXPECT_NE(text->find("strata_tier_emulated{tier=\"hbm(emulated)\"} 1"), std::string::npos);
  }
}

TEST(CacheNodeProcessTest, BlocksSurviveARestartOnSsd) {
  TempDir dir;
  const std::vector<std::string> flags = {"--dram-bytes", "64MiB",      "--ssd-bytes",
                                          "1GiB",         "--data-dir", dir.File("data")};
  std::vector<std::string> payloads;
  std::vector<common::ChainHash> chain;
  {
    NodeProcess node;
    absl::StatusOr<std::string> address = node.Start(flags);
    ASSERT_TRUE(address.ok()) << address.status();
    auto client = ClientFor(*address);
    for (int i = 0; i < 3; ++i) {
      payloads.push_back(RandomBytes(4 * kMiB + i, 200 + i));
      chain.push_back(HashOf(200 + i));
      const PutResult r = PutOne(*client, kDefaultNs, chain.back(), payloads.back());
      ASSERT_TRUE(r.status.ok()) << r.status;
    }
    // SIGTERM drains: the write-behind reaches SSD before the node exits 0.
    absl::StatusOr<int> code = node.Terminate();
    ASSERT_TRUE(code.ok()) << code.status();
    EXPECT_EQ(*code, 0) << node.stderr_text();
  }
  NodeProcess node;
  absl::StatusOr<std::string> address = node.Start(flags);
  ASSERT_TRUE(address.ok()) << address.status();
  auto client = ClientFor(*address);
  absl::StatusOr<std::vector<GetResult>> got = client->Get(kDefaultNs, chain, false);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), chain.size());
  for (size_t i = 0; i < chain.size(); ++i) {
    ASSERT_TRUE((*got)[i].found) << "block " << i << ": " << (*got)[i].miss;
    EXPECT_EQ((*got)[i].tier, v1::TIER_SSD) << "block " << i;
    EXPECT_TRUE((*got)[i].payload == payloads[i]) << "block " << i << " differs";
  }
}

// One node per test with a small block limit and a block A stored first; every test feeds it one
// kind of bad input, checks the code, then checks that the node still serves A intact.
class BadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::string> address =
        node_.Start({"--dram-bytes", "64MiB", "--ssd-bytes", "256MiB", "--max-block-bytes", "16MiB",
                     "--namespaces", "default,tests", "--data-dir", dir_.File("data")});
    ASSERT_TRUE(address.ok()) << address.status();
    client_ = ClientFor(*address);
    stub_ =
        v1::CacheNode::NewStub(grpc::CreateChannel(*address, grpc::InsecureChannelCredentials()));
    const PutResult r = PutOne(*client_, kDefaultNs, hash_a_, payload_a_);
    ASSERT_TRUE(r.status.ok()) << r.status;
  }

  void TearDown() override {
    if (!node_.running()) return;
    absl::StatusOr<GetResult> a = GetOne(*client_, kDefaultNs, hash_a_);
    ASSERT_TRUE(a.ok()) << "node stopped serving: " << a.status();
    ASSERT_TRUE(a->found) << a->miss;
    EXPECT_TRUE(a->payload == payload_a_) << "block A changed";
  }

  bool Present(common::NamespaceId ns, const common::ChainHash& hash) {
    absl::StatusOr<v1::LookupResponse> r = client_->Lookup(ns, {&hash, 1});
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() && r->matched_blocks() == 1;
  }

  // Streams a header and `payload` in 1 MiB chunks through the raw stub, stopping after
  // `send_chunks` chunks (all when negative) and cancelling instead of closing when asked. Returns
  // the first failure of the call or of its block.
  absl::Status RawPut(const v1::PutBlockHeader& header, const std::string& payload,
                      int send_chunks = -1, bool cancel = false) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    v1::PutResponse response;
    auto writer = stub_->Put(&context, &response);
    v1::PutRequest request;
    *request.mutable_header() = header;
    bool ok = writer->Write(request);
    int sent = 0;
    for (size_t off = 0; ok && off < payload.size() && sent != send_chunks; off += kMiB, ++sent) {
      request.set_chunk(payload.substr(off, kMiB));
      ok = writer->Write(request);
    }
    if (cancel) {
      context.TryCancel();
    } else if (ok) {
      writer->WritesDone();
    }
    absl::Status status = common::FromGrpcStatus(writer->Finish());
    if (!status.ok()) return status;
    if (response.results_size() != 1) {
      return absl::InternalError(absl::StrCat("expected 1 result, got ", response.results_size()));
    }
    return common::StatusFromCode(response.results(0).code(), response.results(0).message());
  }

  v1::PutBlockHeader HeaderFor(common::NamespaceId ns, std::string hash_bytes,
                               const std::string& payload) {
    v1::PutBlockHeader header;
    header.mutable_key()->set_namespace_id(ns);
    header.mutable_key()->set_chain_hash(std::move(hash_bytes));
    header.set_size_bytes(payload.size());
    header.set_checksum(common::Checksum(payload));
    return header;
  }

  TempDir dir_;
  NodeProcess node_;
  std::unique_ptr<CacheNodeClient> client_;
  std::unique_ptr<v1::CacheNode::Stub> stub_;
  const common::ChainHash hash_a_ = HashOf(1);
  const std::string payload_a_ = RandomBytes(3 * kMiB + 17, 1);
  const common::ChainHash hash_b_ = HashOf(2);
  const std::string payload_b_ = RandomBytes(4 * kMiB, 2);
};

TEST_F(BadInputTest, WrongLengthHashIsInvalidArgument) {
  const std::string short_hash(31, 'x');
  v1::LookupRequest lookup;
  lookup.set_namespace_id(kDefaultNs);
  lookup.add_chain_hashes(short_hash);
  v1::LookupResponse lookup_response;
  grpc::ClientContext lookup_context;
  EXPECT_EQ(stub_->Lookup(&lookup_context, lookup, &lookup_response).error_code(),
            grpc::INVALID_ARGUMENT);

  v1::GetRequest get;
  get.set_namespace_id(kDefaultNs);
  get.add_chain_hashes(std::string(33, 'y'));
  grpc::ClientContext get_context;
  auto reader = stub_->Get(&get_context, get);
  v1::GetResponse get_response;
  while (reader->Read(&get_response)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::INVALID_ARGUMENT);

  const absl::Status put = RawPut(HeaderFor(kDefaultNs, short_hash, payload_b_), payload_b_);
  EXPECT_TRUE(absl::IsInvalidArgument(put)) << put;
}

TEST_F(BadInputTest, NamespaceIdZeroIsInvalidArgument) {
  EXPECT_TRUE(absl::IsInvalidArgument(client_->Lookup(0, {&hash_a_, 1}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(client_->Get(0, {&hash_a_, 1}, false).status()));
  const absl::Status put = PutOne(*client_, 0, hash_b_, payload_b_).status;
  EXPECT_TRUE(absl::IsInvalidArgument(put)) << put;
}

TEST_F(BadInputTest, UnknownNamespaceIsFailedPrecondition) {
  const common::NamespaceId unknown = common::NamespaceIdOf("never-registered");
  const absl::Status lookup = client_->Lookup(unknown, {&hash_a_, 1}).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(lookup)) << lookup;
  const absl::Status get = client_->Get(unknown, {&hash_a_, 1}, false).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(get)) << get;
  const absl::Status put = PutOne(*client_, unknown, hash_b_, payload_b_).status;
  EXPECT_TRUE(absl::IsFailedPrecondition(put)) << put;
  // A namespace from --namespaces is accepted.
  EXPECT_TRUE(PutOne(*client_, common::NamespaceIdOf("tests"), hash_b_, payload_b_).status.ok());
}

TEST_F(BadInputTest, OversizedBlockIsResourceExhaustedAndNotStored) {
  const std::string big = RandomBytes(16 * kMiB + 1, 3);
  const absl::Status put = PutOne(*client_, kDefaultNs, hash_b_, big).status;
  EXPECT_TRUE(absl::IsResourceExhausted(put)) << put;
  EXPECT_FALSE(Present(kDefaultNs, hash_b_));
}

TEST_F(BadInputTest, TruncatedPutStreamDoesNotCommitTheBlock) {
  const absl::Status put = RawPut(HeaderFor(kDefaultNs, std::string(hash_b_.view()), payload_b_),
                                  payload_b_, /*send_chunks=*/2);
  EXPECT_FALSE(put.ok());
  EXPECT_FALSE(Present(kDefaultNs, hash_b_));
}

TEST_F(BadInputTest, CancelledPutStreamDoesNotCommitTheBlock) {
  const absl::Status put = RawPut(HeaderFor(kDefaultNs, std::string(hash_b_.view()), payload_b_),
                                  payload_b_, /*send_chunks=*/2, /*cancel=*/true);
  EXPECT_TRUE(absl::IsCancelled(put)) << put;
  EXPECT_FALSE(Present(kDefaultNs, hash_b_));
}

TEST_F(BadInputTest, ChecksumMismatchIsDataLossAndNotStored) {
  v1::PutBlockHeader header = HeaderFor(kDefaultNs, std::string(hash_b_.view()), payload_b_);
  header.set_checksum(header.checksum() ^ 1);
  const absl::Status put = RawPut(header, payload_b_);
  EXPECT_TRUE(absl::IsDataLoss(put)) << put;
  EXPECT_FALSE(Present(kDefaultNs, hash_b_));
}

// The node refuses to start on bad configuration: exit code 2 and exactly one line on stderr.
TEST(CacheNodeStartupTest, UnparsableSizeFlagExits2WithOneLine) {
  TempDir dir;
  NodeProcess node;
  absl::StatusOr<std::string> address =
      node.Start({"--dram-bytes", "12XB", "--data-dir", dir.File("data")});
  ASSERT_FALSE(address.ok()) << "node served at " << *address;
  ASSERT_TRUE(node.exit_code().has_value()) << address.status();
  EXPECT_EQ(*node.exit_code(), 2);
  const std::vector<std::string> lines = Lines(node.stderr_text());
  ASSERT_EQ(lines.size(), 1u) << node.stderr_text();
  EXPECT_NE(lines[0].find("dram-bytes"), std::string::npos) << lines[0];
}

TEST(CacheNodeStartupTest, UnwritableDataDirExits2WithOneLine) {
  TempDir dir;
  std::ofstream(dir.File("regular-file")) << "not a directory";
  const std::string data_dir = dir.File("regular-file") + "/data";
  NodeProcess node;
  absl::StatusOr<std::string> address =
      node.Start({"--dram-bytes", "16MiB", "--data-dir", data_dir});
  ASSERT_FALSE(address.ok()) << "node served at " << *address;
  ASSERT_TRUE(node.exit_code().has_value()) << address.status();
  EXPECT_EQ(*node.exit_code(), 2);
  const std::vector<std::string> lines = Lines(node.stderr_text());
  ASSERT_EQ(lines.size(), 1u) << node.stderr_text();
  EXPECT_NE(lines[0].find(data_dir), std::string::npos) << lines[0];
}

}  // namespace
}  // namespace strata::tests
