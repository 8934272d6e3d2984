#include "cachenode/resp_server.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "cachenode/memory_backend.h"
#include "cachenode/memory_tier.h"
#include "cachenode/resp_test_client.h"
#include "common/namespace_id.h"

namespace strata::cachenode {
namespace {

constexpr uint64_t kMiB = 1ull << 20;

std::string RandomValue(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  if (n >= 8) s.replace(n / 3, 8, std::string("\r\n\0\r\n$*\0", 8));
  return s;
}

class RespServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StoreTiers tiers;
    tiers.hbm =
        std::make_unique<MemoryTier>(MemoryTierOptions{TierKind::kHbm, "hbm(emulated)", true},
                                     std::move(*CreateHostMemory({8 * kMiB, false, false, "hbm"})));
    tiers.dram = std::make_unique<MemoryTier>(
        MemoryTierOptions{}, std::move(*CreateHostMemory({64 * kMiB, true, false, "dram"})));
    TieredStoreOptions options;
    options.max_block_bytes = 8 * kMiB;
    auto store = TieredStore::Open(options, std::move(tiers));
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  void StartServer(RespServerOptions options = {}) {
    options.listen = "127.0.0.1:0";
    auto server = RespServer::Start(options, store_.get(), ns_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    ASSERT_GT(server_->port(), 0);
  }

  // A SET then GET on a fresh connection: the server still serves.
  void ExpectServes(const std::string& key) {
    RespTestClient c(server_->port());
    ASSERT_TRUE(c.connected());
    EXPECT_EQ(c.Call({"SET", key, "still-here"}).text, "OK");
    EXPECT_EQ(c.Call({"GET", key}).text, "still-here");
  }

  const common::NamespaceId ns_ = common::NamespaceIdOf("default");
  std::unique_ptr<TieredStore> store_;
  std::unique_ptr<RespServer> server_;
};

TEST_F(RespServerTest, SetThenGetRoundTripsBinaryValuesByteExact) {
  StartServer();
  RespTestClient c(server_->port());
  ASSERT_TRUE(c.connected());
  const std::vector<size_t> sizes = {1, 8, 100, 16383, 16384, 100000, 2 * kMiB + 7};
  for (size_t size : sizes) {
    const std::string key = std::string("key\r\n\0-", 7) + std::to_string(size);
    const std::string value = RandomValue(size, static_cast<uint32_t>(size));
    const RespReply set = c.Call({"SET", key, value});
    ASSERT_EQ(set.type, '+') << size << ": " << set.text;
    const RespReply get = c.Call({"GET", key});
    ASSERT_EQ(get.type, '$') << size;
    EXPECT_TRUE(get.text == value) << "value of " << size << " bytes differs";
  }
}

TEST_F(RespServerTest, KeysMapToTheirHashInTheNamespaceAtChainPositionZero) {
  StartServer();
  RespTestClient c(server_->port());
  ASSERT_EQ(c.Call({"SET", "lmcache-key", "payload"}).text, "OK");
  const common::BlockKey key = RespKey(ns_, "lmcache-key");
  EXPECT_NE(key.hash, RespKey(ns_, "lmcache-key2").hash);
  std::vector<BlockRead> r = store_->GetChain(ns_, std::span(&key.hash, 1), false);
  ASSERT_TRUE(r[0].status.ok());
  EXPECT_EQ(r[0].handle.info().chain_position, 0u);
  const auto data = r[0].handle.data();
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(data.data()), data.size()), "payload");
}

TEST_F(RespServerTest, GetOfAMissingKeyIsNil) {
  StartServer();
  RespTestClient c(server_->port());
  const RespReply r = c.Call({"GET", "absent"});
  EXPECT_EQ(r.type, '$');
  EXPECT_TRUE(r.nil);
}

TEST_F(RespServerTest, ExistsDelAndMgetCountEveryKey) {
  StartServer();
  RespTestClient c(server_->port());
  ASSERT_EQ(c.Call({"SET", "a", "1"}).text, "OK");
  ASSERT_EQ(c.Call({"SET", "b", "22"}).text, "OK");
  EXPECT_EQ(c.Call({"EXISTS", "a", "b", "c", "a"}).integer, 3);
  const RespReply m = c.Call({"MGET", "a", "c", "b"});
  ASSERT_EQ(m.type, '*');
  ASSERT_EQ(m.elements.size(), 3u);
  EXPECT_EQ(m.elements[0].text, "1");
  EXPECT_TRUE(m.elements[1].nil);
  EXPECT_EQ(m.elements[2].text, "22");
  EXPECT_EQ(c.Call({"DEL", "a", "c", "b"}).integer, 2);
  EXPECT_EQ(c.Call({"EXISTS", "a", "b"}).integer, 0);
}

TEST_F(RespServerTest, PipelinedRequestsAreAnsweredInOrder) {
  StartServer();
  RespTestClient c(server_->port());
  std::string batch;
  for (int i = 0; i < 200; ++i) {
    batch += RespTestClient::Encode({"SET", "k" + std::to_string(i), RandomValue(100 + i, i)});
    batch += RespTestClient::Encode({"GET", "k" + std::to_string(i)});
  }
  c.Send(batch);
  for (int i = 0; i < 200; ++i) {
    ASSERT_EQ(c.Read().text, "OK") << i;
    ASSERT_EQ(c.Read().text, RandomValue(100 + i, i)) << i;
  }
  EXPECT_EQ(server_->Stats().commands, 400u);
}

TEST_F(RespServerTest, PipelinedLargeGetsAllArriveUnderBackPressure) {
  RespServerOptions options;
  options.max_pending_reply_bytes = 1 * kMiB;  // a few replies at a time
  StartServer(options);
  RespTestClient c(server_->port());
  const std::string value = RandomValue(512 << 10, 7);
  ASSERT_EQ(c.Call({"SET", "big", value}).text, "OK");
  std::string batch;
  for (int i = 0; i < 48; ++i) batch += RespTestClient::Encode({"GET", "big"});
  c.Send(batch);  // 24 MiB of replies pending while the client is not reading
  for (int i = 0; i < 48; ++i) ASSERT_TRUE(c.Read().text == value) << i;
  ExpectServes("after-backpressure");
}

TEST_F(RespServerTest, InlineCommandsWork) {
  StartServer();
  RespTestClient c(server_->port());
  c.Send("PING\r\nSET inline-key hello\r\nGET inline-key\n");
  EXPECT_EQ(c.Read().text, "PONG");
  EXPECT_EQ(c.Read().text, "OK");
  EXPECT_EQ(c.Read().text, "hello");
}

TEST_F(RespServerTest, SetOptionsAreRefusedNotIgnored) {
  StartServer();
  RespTestClient c(server_->port());
  const RespReply r = c.Call({"SET", "k", "v", "EX", "10"});
  EXPECT_EQ(r.type, '-');
  EXPECT_NE(r.text.find("EX"), std::string::npos) << r.text;
  EXPECT_TRUE(c.Call({"GET", "k"}).nil);
  EXPECT_EQ(c.Call({"SET", "k", ""}).type, '-');  // the store keeps no empty blocks
}

TEST_F(RespServerTest, TooLargeValueIsRefusedAndTheConnectionStaysUsable) {
  RespServerOptions options;
  options.max_bulk_bytes = 1 * kMiB;
  StartServer(options);
  RespTestClient c(server_->port());
  const RespReply r = c.Call({"SET", "k", std::string(3 * kMiB, 'x')});
  EXPECT_EQ(r.type, '-');
  EXPECT_EQ(r.text, "ERR value too large (max 1048576 bytes)");
  EXPECT_EQ(c.Call({"PING"}).text, "PONG");
  EXPECT_EQ(c.Call({"SET", "k", "small"}).text, "OK");
  EXPECT_EQ(server_->Stats().protocol_errors, 0u);
}

TEST_F(RespServerTest, ValueLargerThanTheStoreTakesIsRefusedByDefault) {
  StartServer();  // max bulk: the store's largest block (8 MiB here)
  RespTestClient c(server_->port());
  const RespReply r = c.Call({"SET", "k", std::string(9 * kMiB, 'x')});
  EXPECT_EQ(r.text, "ERR value too large (max " + std::to_string(8 * kMiB) + " bytes)");
  EXPECT_EQ(c.Call({"PING"}).text, "PONG");
}

struct Malformed {
  const char* name;
  std::string bytes;
};

TEST_F(RespServerTest, MalformedInputClosesOnlyThatConnection) {
  StartServer();
  const std::vector<Malformed> cases = {
      {"huge bulk header", "*2\r\n$3\r\nGET\r\n$99999999999\r\n"},
      {"negative count", "*-5\r\n"},
      {"bulk longer than declared", "*2\r\n$3\r\nGET\r\n$2\r\nabcdef\r\n"},
      {"non-numeric bulk length", "*1\r\n$abc\r\n"},
      {"binary garbage", std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n", 13)},
      {"unterminated line beyond the inline bound", std::string(70000, 'A')},
  };
  uint64_t errors = 0;
  for (const Malformed& m : cases) {
    RespTestClient other(server_->port());  // connected before and kept open during the bad input
    ASSERT_TRUE(other.connected());
    ASSERT_EQ(other.Call({"PING"}).text, "PONG");
    RespTestClient bad(server_->port());
    bad.Send(m.bytes);
    const RespReply r = bad.Read();
    EXPECT_EQ(r.type, '-') << m.name;
    EXPECT_EQ(r.text.rfind("ERR Protocol error: ", 0), 0u) << m.name << ": " << r.text;
    EXPECT_TRUE(bad.AtEof()) << m.name << ": the connection is closed";
    EXPECT_EQ(server_->Stats().protocol_errors, ++errors) << m.name;
    EXPECT_EQ(other.Call({"SET", "other", m.name}).text, "OK") << m.name;
    EXPECT_EQ(other.Call({"GET", "other"}).text, m.name) << m.name;
  }
}

TEST_F(RespServerTest, ChecksumFailureIsANilReplyAndCounted) {
  StartServer();
  RespTestClient c(server_->port());
  ASSERT_EQ(c.Call({"SET", "k", std::string(4096, 'v')}).text, "OK");
  const common::BlockKey key = RespKey(ns_, "k");
  {
    std::vector<BlockRead> r = store_->GetChain(ns_, std::span(&key.hash, 1), false);
    ASSERT_TRUE(r[0].status.ok());
    // Corrupt the tier's own slot, as a bad DIMM would.
    const_cast<std::byte*>(r[0].handle.data().data())[100] ^= std::byte{1};
  }
  EXPECT_TRUE(c.Call({"GET", "k"}).nil);
  EXPECT_EQ(server_->Stats().data_loss_reads, 1u);
}

TEST_F(RespServerTest, InfoHasRedisSectionsAndOneSectionPerTier) {
  StartServer();
  RespTestClient c(server_->port());
  ASSERT_EQ(c.Call({"SET", "k", "v"}).text, "OK");
  const RespReply info = c.Call({"INFO"});
  ASSERT_EQ(info.type, '$');
  for (const char* part :
       {"# Server\r\n", "# Clients\r\n", "# Stats\r\n", "# Keyspace\r\n", "db0:keys=1",
        "# Strata\r\n", "# Strata hbm(emulated)\r\n", "tier_hbm_name:hbm(emulated)\r\n",
        "# Strata dram\r\n", "tier_dram_capacity_bytes:", "tcp_port:"}) {
    EXPECT_NE(info.text.find(part), std::string::npos) << part << " missing in:\n" << info.text;
  }
  const RespReply stats = c.Call({"INFO", "stats"});
  EXPECT_NE(stats.text.find("total_commands_processed:"), std::string::npos);
  EXPECT_EQ(stats.text.find("# Server"), std::string::npos);
}

TEST_F(RespServerTest, AnswersWhatStockToolsSend) {
  StartServer();
  RespTestClient c(server_->port());
  EXPECT_EQ(c.Call({"PING", "hi"}).text, "hi");
  EXPECT_EQ(c.Call({"COMMAND", "DOCS"}).type, '*');
  const RespReply save = c.Call({"CONFIG", "GET", "save"});
  ASSERT_EQ(save.elements.size(), 2u);
  EXPECT_EQ(save.elements[0].text, "save");
  const RespReply aof = c.Call({"CONFIG", "GET", "appendonly"});
  ASSERT_EQ(aof.elements.size(), 2u);
  EXPECT_EQ(aof.elements[1].text, "no");
  EXPECT_EQ(c.Call({"SELECT", "0"}).text, "OK");
  EXPECT_EQ(c.Call({"SELECT", "1"}).type, '-');
  EXPECT_EQ(c.Call({"CLIENT", "SETNAME", "me"}).text, "OK");
  EXPECT_EQ(c.Call({"CLIENT", "GETNAME"}).text, "me");
  EXPECT_EQ(c.Call({"HELLO", "3"}).type, '-');
  const RespReply unknown = c.Call({"KEYS", "*"});
  EXPECT_EQ(unknown.text, "ERR unknown command 'KEYS'");
  EXPECT_EQ(c.Call({"QUIT"}).text, "OK");
  EXPECT_TRUE(c.AtEof());
}

TEST_F(RespServerTest, ClientsBeyondTheLimitAreTurnedAway) {
  RespServerOptions options;
  options.max_clients = 1;
  StartServer(options);
  RespTestClient first(server_->port());
  ASSERT_EQ(first.Call({"PING"}).text, "PONG");
  RespTestClient second(server_->port());
  const RespReply r = second.Read();
  EXPECT_EQ(r.text, "ERR max number of clients reached");
  EXPECT_EQ(server_->Stats().connections_rejected, 1u);
  EXPECT_EQ(first.Call({"PING"}).text, "PONG");
}

TEST_F(RespServerTest, StopClosesClientsAndIsIdempotent) {
  StartServer();
  RespTestClient c(server_->port());
  ASSERT_EQ(c.Call({"PING"}).text, "PONG");
  server_->Stop();
  EXPECT_TRUE(c.AtEof());
  server_->Stop();
  EXPECT_EQ(server_->Stats().connections_open, 0u);
}

TEST(RespServerOptionsTest, ValidateRejectsBadFields) {
  RespServerOptions o;
  EXPECT_TRUE(o.Validate().ok());
  o.io_threads = 0;
  EXPECT_FALSE(o.Validate().ok());
  o = RespServerOptions{};
  o.listen = "";
  EXPECT_FALSE(o.Validate().ok());
  o = RespServerOptions{};
  o.max_args = 0;
  EXPECT_FALSE(o.Validate().ok());
}

}  // namespace
}  // namespace strata::cachenode
