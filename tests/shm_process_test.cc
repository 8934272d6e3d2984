// Process-level tests of the same-node shared-memory data plane: a real strata-cachenode with
// --local-socket, LocalClient in this process and in forked client processes, and the strata CLI
// with --local. A client killed with SIGKILL must not leave pins behind; clients in different
// processes share blocks through the node's arena.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <random>

#include "clients/local_client.h"
#include "common/namespace_id.h"
#include "gtest/gtest.h"
#include "tests/node_process.h"

namespace strata::tests {
namespace {

using clients::LocalClient;
namespace v1 = ::strata::v1;

constexpr uint64_t kBlock = (1 << 20) + 4321;

common::ChainHash HashOf(uint8_t id) {
  common::ChainHash h;
  h.bytes.fill(id);
  return h;
}

std::string PayloadOf(uint8_t id, size_t size = kBlock) {
  std::string s(size, '\0');
  std::mt19937 rng(id);
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

std::span<const std::byte> Bytes(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Puts blocks `ids` as one chain; true when every block was stored.
bool PutChain(LocalClient& client, const std::vector<uint8_t>& ids) {
  std::vector<std::string> payloads;
  for (uint8_t id : ids) payloads.push_back(PayloadOf(id));
  std::vector<clients::LocalPutBlock> blocks;
  for (size_t i = 0; i < ids.size(); ++i) {
    blocks.push_back({HashOf(ids[i]), Bytes(payloads[i]), static_cast<uint32_t>(i)});
  }
  auto results = client.Put(common::NamespaceIdOf("default"), blocks);
  if (!results.ok()) return false;
  for (const auto& r : *results) {
    if (!r.status.ok()) return false;
  }
  return true;
}

class ShmProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    socket_ = dir_.File("sock");
    auto address = node_.Start({"--dram-bytes", "64MiB", "--ssd-bytes", "0", "--data-dir",
                                dir_.File("data"), "--local-socket", socket_});
    ASSERT_TRUE(address.ok()) << address.status() << "\n" << node_.stderr_text();
  }

  std::unique_ptr<LocalClient> Connect() {
    auto client = LocalClient::Connect(socket_);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? std::move(*client) : nullptr;
  }

  TempDir dir_;
  NodeProcess node_;
  std::string socket_;
  const common::NamespaceId ns_ = common::NamespaceIdOf("default");
};

TEST_F(ShmProcessTest, ClientKilledWhileHoldingALeaseLeavesNoPinnedBytes) {
  std::unique_ptr<LocalClient> observer = Connect();
  ASSERT_NE(observer, nullptr);
  ASSERT_TRUE(PutChain(*observer, {1, 2}));
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child: take a lease on both blocks, say so, then hang until killed.
    close(ready[0]);
    auto client = LocalClient::Connect(socket_);
    if (!client.ok()) _exit(1);
    auto read = (*client)->Get(common::NamespaceIdOf("default"), std::vector{HashOf(1), HashOf(2)});
    const char ok = read.ok() && read->found_prefix() == 2 ? 'y' : 'n';
    (void)!write(ready[1], &ok, 1);
    for (;;) pause();
  }
  close(ready[1]);
  char got = 0;
  ASSERT_EQ(read(ready[0], &got, 1), 1);
  close(ready[0]);
  ASSERT_EQ(got, 'y');
  auto before = observer->Stats();
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_EQ(before->clients(), 2u);
  EXPECT_EQ(before->pinned_bytes(), 2 * kBlock);

  ASSERT_EQ(kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  // Waits (bounded) until the node has seen the socket close: no polling, no sleep.
  auto after = observer->Stats(/*wait_until_clients_at_most=*/1, /*wait_ms=*/30'000);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->clients(), 1u);
  EXPECT_EQ(after->pinned_bytes(), 0u);
  EXPECT_EQ(after->live_leases(), 0u);
  EXPECT_GE(after->disconnect_released(), 1u);
}

TEST_F(ShmProcessTest, BlocksPutByOneClientProcessAreReadByteExactByAnother) {
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto client = LocalClient::Connect(socket_);
    _exit(client.ok() && PutChain(**client, {10, 11, 12}) ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "putting child failed";

  std::unique_ptr<LocalClient> reader = Connect();
  ASSERT_NE(reader, nullptr);
  std::vector<std::string> out(3, std::string(kBlock, '\0'));
  std::vector<std::span<std::byte>> dest;
  for (std::string& s : out) dest.push_back(std::as_writable_bytes(std::span(s.data(), s.size())));
  auto results = reader->GetInto(ns_, std::vector{HashOf(10), HashOf(11), HashOf(12)}, dest);
  ASSERT_TRUE(results.ok()) << results.status();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE((*results)[i].status.ok()) << (*results)[i].status;
    EXPECT_EQ((*results)[i].tier, v1::TIER_DRAM);
    EXPECT_TRUE(out[i] == PayloadOf(static_cast<uint8_t>(10 + i))) << "block " << i;
  }
}

TEST_F(ShmProcessTest, ClientThatReconnectsFindsTheBlocksItPut) {
  {
    std::unique_ptr<LocalClient> first = Connect();
    ASSERT_NE(first, nullptr);
    ASSERT_TRUE(PutChain(*first, {20}));
  }
  std::unique_ptr<LocalClient> second = Connect();
  ASSERT_NE(second, nullptr);
  auto read = second->Get(ns_, std::vector{HashOf(20)});
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->found_prefix(), 1u);
  const std::string want = PayloadOf(20);
  std::string copy(want.size(), '\0');
  ASSERT_TRUE(read->CopyTo(0, std::as_writable_bytes(std::span(copy.data(), copy.size()))).ok());
  EXPECT_TRUE(copy == want);
  auto lookup = second->Lookup(ns_, std::vector{HashOf(20), HashOf(21)});
  ASSERT_TRUE(lookup.ok());
  EXPECT_EQ(lookup->matched_blocks(), 1u);
}

TEST_F(ShmProcessTest, CliLocalPutThenGetRoundTripsByteExact) {
  const std::string payload = PayloadOf(30, 3 * 1024 * 1024 + 7);
  std::ofstream(dir_.File("in.bin"), std::ios::binary) << payload;
  const std::string hash = HashOf(30).Hex();
  auto put = RunCli({"--local", socket_, "put", "--namespace", "default", "--hash", hash, "--file",
                     dir_.File("in.bin")});
  ASSERT_TRUE(put.ok()) << put.status();
  ASSERT_EQ(put->exit_code, 0) << put->stderr_text;
  EXPECT_NE(put->stdout_text.find("dram"), std::string::npos) << put->stdout_text;

  auto get = RunCli({"--local", socket_, "get", "--namespace", "default", "--hash", hash, "--out",
                     dir_.File("out.bin")});
  ASSERT_TRUE(get.ok());
  ASSERT_EQ(get->exit_code, 0) << get->stderr_text;
  EXPECT_TRUE(ReadFile(dir_.File("out.bin")) == payload);

  auto miss = RunCli({"--local", socket_, "get", "--namespace", "default", "--hash",
                      HashOf(31).Hex(), "--out", dir_.File("miss.bin")});
  ASSERT_TRUE(miss.ok());
  EXPECT_EQ(miss->exit_code, 3) << miss->stderr_text;

  auto lookup = RunCli({"--local", socket_, "--output", "json", "lookup", "--namespace", "default",
                        "--hashes", hash + "," + HashOf(31).Hex()});
  ASSERT_TRUE(lookup.ok());
  ASSERT_EQ(lookup->exit_code, 0) << lookup->stderr_text;
  EXPECT_NE(lookup->stdout_text.find("\"matched_blocks\":1"), std::string::npos)
      << lookup->stdout_text;
}

TEST(ShmProcessStartTest, NodeWithoutADramTierRefusesTheLocalSocket) {
  TempDir dir;
  NodeProcess node;
  auto address = node.Start({"--dram-bytes", "0", "--ssd-bytes", "64MiB", "--data-dir",
                             dir.File("data"), "--local-socket", dir.File("sock")});
  ASSERT_FALSE(address.ok());
  EXPECT_EQ(node.exit_code(), 2);
  EXPECT_NE(node.stderr_text().find("DRAM tier"), std::string::npos) << node.stderr_text();
}

}  // namespace
}  // namespace strata::tests
