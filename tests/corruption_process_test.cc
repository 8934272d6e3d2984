// Corruption tests of a real strata-cachenode: bytes flipped in its RocksDB files between a clean
// stop and a restart, and bytes flipped in a block's DRAM arena slot while it runs. Every block
// must come back byte-exact or as a miss (NOT_FOUND / DATA_LOSS); wrong bytes are counted and must
// be 0, and the node must keep serving.
//
// Rounds: STRATA_CORRUPTION_ROUNDS (default 3) for the file test; STRATA_CORRUPTION_SEED (default
// 0) picks another deterministic series of flips, e.g.
//   STRATA_CORRUPTION_ROUNDS=50 STRATA_CORRUPTION_SEED=7 build/tests/corruption_process_test
#include <dirent.h>
#include <netinet/in.h>
#include <openssl/sha.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cachenode/resp_test_client.h"
#include "clients/cache_node_client.h"
#include "clients/local_client.h"
#include "common/checksum.h"
#include "common/namespace_id.h"
#include "gtest/gtest.h"
#include "tests/node_process.h"

namespace strata::tests {
namespace {

namespace v1 = ::strata::v1;
using clients::CacheNodeClient;
using clients::GetResult;
using clients::PutBlock;

constexpr size_t kKiB = 1 << 10;
constexpr size_t kMiB = 1 << 20;
const common::NamespaceId kDefaultNs = common::NamespaceIdOf("default");

common::ChainHash HashOf(uint64_t n) {
  common::ChainHash h;
  std::mt19937_64 rng(n);
  for (uint8_t& b : h.bytes) b = static_cast<uint8_t>(rng());
  return h;
}

std::string RandomBytes(size_t n, uint64_t seed) {
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
  clients::ClientOptions options;
  options.target = address;
  options.deadline = absl::Seconds(60);
  absl::StatusOr<std::unique_ptr<CacheNodeClient>> client = CacheNodeClient::Connect(options);
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? std::move(*client) : nullptr;
}

absl::Status PutOne(CacheNodeClient& client, const common::ChainHash& hash,
                    const std::string& payload) {
  const PutBlock block{hash, Bytes(payload), 0, false};
  absl::StatusOr<std::vector<clients::PutResult>> r = client.Put(kDefaultNs, {&block, 1});
  if (!r.ok()) return r.status();
  return r->front().status;
}

uint64_t ChecksumFailures(CacheNodeClient& client, v1::Tier tier) {
  absl::StatusOr<v1::StatsResponse> stats = client.Stats();
  EXPECT_TRUE(stats.ok()) << stats.status();
  if (!stats.ok()) return 0;
  for (const v1::TierStats& t : stats->tiers()) {
    if (t.tier() == tier) return t.checksum_failures();
  }
  return 0;
}

int Rounds() {
  int rounds = 3;
  if (const char* env = std::getenv("STRATA_CORRUPTION_ROUNDS"); env != nullptr) {
    EXPECT_TRUE(absl::SimpleAtoi(env, &rounds) && rounds > 0) << "bad STRATA_CORRUPTION_ROUNDS";
  }
  return rounds;
}

uint64_t SeedBase() {
  uint64_t seed = 0;
  if (const char* env = std::getenv("STRATA_CORRUPTION_SEED"); env != nullptr) {
    EXPECT_TRUE(absl::SimpleAtoi(env, &seed)) << "bad STRATA_CORRUPTION_SEED";
  }
  return seed;
}

// The kind of a RocksDB file for the report; empty for files the test leaves alone.
std::string KindOf(const std::string& name) {
  auto ends = [&](std::string_view s) {
    return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
  };
  if (ends(".sst")) return "sst";
  if (ends(".blob")) return "blob";
  if (ends(".log")) return "wal";
  if (name.rfind("MANIFEST-", 0) == 0) return "manifest";
  if (name.rfind("OPTIONS-", 0) == 0) return "options";
  return "";
}

struct Totals {
  int rounds = 0;
  uint64_t bytes_flipped = 0;
  uint64_t blocks_read = 0;
  uint64_t exact = 0;
  uint64_t misses = 0;
  uint64_t wrong = 0;
  std::map<std::string, int> kinds_hit;
};

// Flips `count` random bytes of `path` (XOR with a non-zero mask, so each is really changed).
uint64_t FlipBytes(const std::string& path, int count, std::mt19937_64& rng) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(0, std::ios::end);
  const uint64_t size = static_cast<uint64_t>(f.tellg());
  if (size == 0) return 0;
  uint64_t flipped = 0;
  for (int i = 0; i < count; ++i) {
    const uint64_t at = std::uniform_int_distribution<uint64_t>(0, size - 1)(rng);
    char c = 0;
    f.seekg(static_cast<std::streamoff>(at));
    f.read(&c, 1);
    c = static_cast<char>(c ^ static_cast<char>(1 + rng() % 255));
    f.seekp(static_cast<std::streamoff>(at));
    f.write(&c, 1);
    ++flipped;
  }
  return f.good() ? flipped : 0;
}

// One round: put blocks, stop cleanly, flip bytes in data files, restart, read back.
void RunRound(int round, Totals& totals) {
  SCOPED_TRACE(absl::StrCat("round ", round));
  std::mt19937_64 rng(0xC0FFEE + SeedBase() * 1000003 + round);
  TempDir dir;
  const std::string data_dir = dir.File("data");
  const std::vector<std::string> flags = {"--dram-bytes", "64MiB",      "--ssd-bytes",
                                          "1GiB",         "--data-dir", data_dir};
  constexpr int kBlocks = 24;
  std::vector<common::ChainHash> chain;
  std::vector<std::string> payloads;
  std::vector<uint64_t> checksums;
  {
    NodeProcess node;
    absl::StatusOr<std::string> address = node.Start(flags);
    ASSERT_TRUE(address.ok()) << address.status();
    auto client = ClientFor(*address);
    ASSERT_NE(client, nullptr);
    for (int i = 0; i < kBlocks; ++i) {
      const size_t size = std::uniform_int_distribution<size_t>(kKiB, kMiB)(rng);
      chain.push_back(HashOf(round * 1000 + i));
      payloads.push_back(RandomBytes(size, rng()));
      checksums.push_back(common::Checksum(Bytes(payloads.back())));
      const absl::Status put = PutOne(*client, chain.back(), payloads.back());
      ASSERT_TRUE(put.ok()) << put;
    }
    absl::StatusOr<int> code = node.Terminate();  // SIGTERM drains to SSD and flushes
    ASSERT_TRUE(code.ok()) << code.status();
    ASSERT_EQ(*code, 0) << node.stderr_text();
  }

  // Flip bytes in 1-3 of the data files; blobs (the payloads) twice as likely as the others.
  std::vector<std::string> candidates;
  for (const auto& entry : std::filesystem::directory_iterator(data_dir + "/ssd")) {
    const std::string name = entry.path().filename().string();
    const std::string kind = KindOf(name);
    if (kind.empty() || std::filesystem::file_size(entry.path()) == 0) continue;
    candidates.push_back(entry.path().string());
    if (kind == "blob") candidates.push_back(entry.path().string());
  }
  ASSERT_FALSE(candidates.empty());
  std::set<std::string> hit_kinds;
  const int files = std::uniform_int_distribution<int>(1, 3)(rng);
  for (int i = 0; i < files; ++i) {
    const std::string& path = candidates[rng() % candidates.size()];
    const uint64_t flipped = FlipBytes(path, std::uniform_int_distribution<int>(1, 8)(rng), rng);
    totals.bytes_flipped += flipped;
    if (flipped > 0) hit_kinds.insert(KindOf(std::filesystem::path(path).filename().string()));
  }
  for (const std::string& k : hit_kinds) ++totals.kinds_hit[k];

  NodeProcess node;
  absl::StatusOr<std::string> address = node.Start(flags);
  ASSERT_TRUE(address.ok()) << "the node must keep serving after corruption: " << address.status()
                            << "\n"
                            << node.stderr_text();
  const bool moved_aside = node.stderr_text().find("is corrupt; moved it to") != std::string::npos;
  auto client = ClientFor(*address);
  ASSERT_NE(client, nullptr);
  uint64_t exact = 0, misses = 0, data_loss = 0, wrong = 0;
  for (size_t i = 0; i < chain.size(); ++i) {
    absl::StatusOr<std::vector<GetResult>> got = client->Get(kDefaultNs, {&chain[i], 1}, false);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->size(), 1u);
    const GetResult& r = got->front();
    if (r.found) {
      if (r.payload == payloads[i] && common::Checksum(Bytes(r.payload)) == checksums[i]) {
        ++exact;
      } else {
        ++wrong;
      }
    } else {
      ++misses;
      EXPECT_TRUE(absl::IsNotFound(r.miss) || absl::IsDataLoss(r.miss)) << r.miss;
      data_loss += absl::IsDataLoss(r.miss);
    }
  }
  EXPECT_EQ(wrong, 0u) << "wrong bytes served";
  const uint64_t failures = ChecksumFailures(*client, v1::TIER_SSD);
  EXPECT_GE(failures, data_loss) << "every DATA_LOSS miss is a counted checksum failure";
  if (hit_kinds.count("blob") > 0 && !moved_aside) {
    // Payload bytes are most of a blob file: a flipped one must show as a counted failure.
    EXPECT_GT(failures, 0u) << "a blob file was corrupted but no checksum failure was counted";
  }
  // Still serving: a fresh put and get work.
  const std::string fresh = RandomBytes(64 * kKiB, round);
  const common::ChainHash fresh_hash = HashOf(999999);
  ASSERT_TRUE(PutOne(*client, fresh_hash, fresh).ok());
  absl::StatusOr<std::vector<GetResult>> again = client->Get(kDefaultNs, {&fresh_hash, 1}, false);
  ASSERT_TRUE(again.ok() && again->front().found && again->front().payload == fresh);

  std::string kinds;
  for (const std::string& k : hit_kinds) absl::StrAppend(&kinds, kinds.empty() ? "" : ",", k);
  std::printf(
      "corruption round %d: flipped bytes in [%s]%s; %zu blocks read: %llu exact, %llu "
      "misses (%llu DATA_LOSS), %llu wrong; ssd checksum failures %llu\n",
      round, kinds.c_str(), moved_aside ? " (store moved aside)" : "", chain.size(),
      static_cast<unsigned long long>(exact), static_cast<unsigned long long>(misses),
      static_cast<unsigned long long>(data_loss), static_cast<unsigned long long>(wrong),
      static_cast<unsigned long long>(failures));
  ++totals.rounds;
  totals.blocks_read += chain.size();
  totals.exact += exact;
  totals.misses += misses;
  totals.wrong += wrong;
}

TEST(CorruptionProcessTest, FlippedBytesInDataFilesAreMissesNeverWrongBytes) {
  Totals totals;
  const int rounds = Rounds();
  for (int round = 0; round < rounds; ++round) {
    RunRound(round, totals);
    if (HasFatalFailure()) break;
  }
  std::string kinds;
  for (const auto& [k, n] : totals.kinds_hit) {
    absl::StrAppend(&kinds, kinds.empty() ? "" : " ", k, "=", n);
  }
  std::printf(
      "corruption summary: %d rounds, %llu bytes flipped (files hit by kind: %s), %llu "
      "blocks read, %llu exact, %llu misses, %llu wrong bytes\n",
      totals.rounds, static_cast<unsigned long long>(totals.bytes_flipped), kinds.c_str(),
      static_cast<unsigned long long>(totals.blocks_read),
      static_cast<unsigned long long>(totals.exact), static_cast<unsigned long long>(totals.misses),
      static_cast<unsigned long long>(totals.wrong));
  EXPECT_EQ(totals.wrong, 0u);
  EXPECT_EQ(totals.rounds, rounds);
}

// ---- Arena memory ----

// The store key's hash of a RESP key, as resp_commands.h defines it (a pure, documented formula:
// SHA-256 of "strata.resp-key.v1" NUL key).
common::ChainHash RespHash(const std::string& key) {
  std::string input = "strata.resp-key.v1";
  input.push_back('\0');
  input += key;
  common::ChainHash h;
  SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(), h.bytes.data());
  return h;
}

// Flips one byte of the block's DRAM slot through the shared-memory plane's (writable) arena
// mapping; the read used to find it does not verify, so nothing is reported to the node.
void FlipSlotByte(clients::LocalClient& local, const common::ChainHash& hash) {
  absl::StatusOr<clients::LocalRead> read =
      local.Get(kDefaultNs, {&hash, 1}, /*stop_at_first_miss=*/true, /*verify=*/false);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), 1u);
  ASSERT_TRUE(read->block(0).status.ok()) << read->block(0).status;
  ASSERT_EQ(read->block(0).tier, v1::TIER_DRAM);
  std::span<const std::byte> slot = read->block(0).data;
  ASSERT_FALSE(slot.empty());
  auto* writable = const_cast<std::byte*>(slot.data());
  writable[slot.size() / 3] ^= std::byte{0x20};
  read->Release();
}

TEST(CorruptionProcessTest, CorruptArenaSlotIsAMissOverGrpcRespAndShmAndAPutRestoresIt) {
  TempDir dir;
  NodeProcess node;
  const std::string socket = dir.File("local.sock");
  // No SSD tier: a bad DRAM copy has nothing to fall back to, so each read must be a miss.
  absl::StatusOr<std::string> address =
      node.Start({"--dram-bytes", "64MiB", "--ssd-bytes", "0", "--data-dir", dir.File("data"),
                  "--local-socket", socket, "--resp-listen", "127.0.0.1:0"});
  ASSERT_TRUE(address.ok()) << address.status() << "\n" << node.stderr_text();
  const int resp_port = RespPortOf(node);
  ASSERT_GT(resp_port, 0) << "no RESP port found";
  auto client = ClientFor(*address);
  ASSERT_NE(client, nullptr);
  absl::StatusOr<std::unique_ptr<clients::LocalClient>> local =
      clients::LocalClient::Connect(socket);
  ASSERT_TRUE(local.ok()) << local.status();
  cachenode::RespTestClient resp(resp_port);
  ASSERT_TRUE(resp.connected());

  const common::ChainHash grpc_hash = HashOf(1);
  const common::ChainHash shm_hash = HashOf(2);
  const std::string resp_key = "corrupt-me";
  const common::ChainHash resp_hash = RespHash(resp_key);
  const std::string grpc_payload = RandomBytes(300 * kKiB, 1);
  const std::string shm_payload = RandomBytes(200 * kKiB, 2);
  const std::string resp_payload = RandomBytes(100 * kKiB, 3);
  ASSERT_TRUE(PutOne(*client, grpc_hash, grpc_payload).ok());
  ASSERT_TRUE(PutOne(*client, shm_hash, shm_payload).ok());
  ASSERT_EQ(resp.Call({"SET", resp_key, resp_payload}).text, "OK");

  for (const common::ChainHash& h : {grpc_hash, shm_hash, resp_hash}) {
    FlipSlotByte(**local, h);
    if (HasFatalFailure()) return;
  }
  const uint64_t before = ChecksumFailures(*client, v1::TIER_DRAM);

  // gRPC: a DATA_LOSS miss.
  absl::StatusOr<std::vector<GetResult>> got = client->Get(kDefaultNs, {&grpc_hash, 1}, false);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_FALSE(got->front().found);
  EXPECT_TRUE(absl::IsDataLoss(got->front().miss)) << got->front().miss;
  // RESP: nil, never the value.
  EXPECT_TRUE(resp.Call({"GET", resp_key}).nil);
  // shm: the client's verification makes it DATA_LOSS; the release reports it to the node.
  std::string dest(shm_payload.size(), '\0');
  std::span<std::byte> dest_span(reinterpret_cast<std::byte*>(dest.data()), dest.size());
  absl::StatusOr<std::vector<clients::LocalCopyResult>> copied =
      (*local)->GetInto(kDefaultNs, {&shm_hash, 1}, {&dest_span, 1});
  ASSERT_TRUE(copied.ok()) << copied.status();
  EXPECT_TRUE(absl::IsDataLoss(copied->front().status)) << copied->front().status;

  EXPECT_EQ(ChecksumFailures(*client, v1::TIER_DRAM), before + 3);
  // Each bad copy was dropped: the next read of each is an ordinary miss.
  got = client->Get(kDefaultNs, {&shm_hash, 1}, false);
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(absl::IsNotFound(got->front().miss)) << got->front().miss;

  // The next put of each key stores it again, byte-exact on every plane.
  ASSERT_TRUE(PutOne(*client, grpc_hash, grpc_payload).ok());
  got = client->Get(kDefaultNs, {&grpc_hash, 1}, false);
  ASSERT_TRUE(got.ok() && got->front().found);
  EXPECT_TRUE(got->front().payload == grpc_payload);
  ASSERT_EQ(resp.Call({"SET", resp_key, resp_payload}).text, "OK");
  const cachenode::RespReply restored = resp.Call({"GET", resp_key});
  EXPECT_EQ(restored.type, '$');
  EXPECT_TRUE(restored.text == resp_payload) << "GET after the re-put is not byte-exact";
  const clients::LocalPutBlock block{shm_hash, Bytes(shm_payload), 0};
  absl::StatusOr<std::vector<clients::LocalPutResult>> put = (*local)->Put(kDefaultNs, {&block, 1});
  ASSERT_TRUE(put.ok() && put->front().status.ok());
  copied = (*local)->GetInto(kDefaultNs, {&shm_hash, 1}, {&dest_span, 1});
  ASSERT_TRUE(copied.ok() && copied->front().status.ok());
  EXPECT_TRUE(dest == shm_payload);
  std::printf(
      "arena corruption: 3 slots flipped (gRPC, RESP, shm), 3 misses, 0 wrong bytes, dram "
      "checksum failures +%llu\n",
      static_cast<unsigned long long>(ChecksumFailures(*client, v1::TIER_DRAM) - before));
}

}  // namespace
}  // namespace strata::tests
