// strata-crash-test: SIGKILLs a real strata-cachenode at random moments and checks that no read
// ever returns wrong bytes and that every block acknowledged by a Sync survives (crash_driver.h).
//
// Full run (the figures recorded in tests/RELIABILITY.md; about 1.5-3 s per cycle on 2 cores):
//
//   build/bin/strata-crash-test --cycles 200 --seed 1 --threads 4 --report crash-200.json
//
// (defaults: --max-block-bytes 256KiB --max-live-bytes 64MiB --dram-bytes 16MiB --max-load 1.5s
// --reput-percent 5). Re-puts of known blocks found the one durability bug this driver has caught
// so far: a put of the same bytes erased the SSD copy a Sync had made durable (fixed in
// TieredStore::RecordPutLocked).
//
// The ctest entry (tests/crash/crash_test.cc, label "process") runs 16 smaller cycles. A run exits
// 0 only when wrong bytes, corrupt transfers, durable blocks lost and failed restarts are all 0; it
// prints one line per cycle and a summary, and writes the JSON report with --report. Reproduce a
// failure with its --seed (the timing of kills still differs from run to run).
#include "tests/crash/crash_driver.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "clients/cache_node_client.h"
#include "common/byte_size.h"
#include "common/checksum.h"
#include "common/command_line.h"
#include "common/namespace_id.h"
#include "tests/node_process.h"

namespace strata::tests {
namespace {

using clients::CacheNodeClient;

constexpr size_t kMaxFailuresKept = 20;
constexpr size_t kMaxGetBatch = 8;               // blocks per Get while under load
constexpr size_t kMaxVerifyBatch = 64;           // blocks per Get when verifying
constexpr uint64_t kMaxVerifyBatchBytes = 16ull << 20;

// ---- Keys and contents: pure functions of (seed, id), so nothing but sizes and checksums is kept.

uint64_t Mix(uint64_t x) {  // splitmix64's finalizer
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

common::ChainHash HashOf(uint64_t seed, uint64_t id) {
  common::ChainHash h;
  for (int i = 0; i < 4; ++i) {
    const uint64_t word = Mix(Mix(seed) ^ Mix(id * 4 + static_cast<uint64_t>(i)));
    std::memcpy(h.bytes.data() + 8 * i, &word, 8);
  }
  return h;
}

// A quarter of the blocks are small (up to 4 KiB: tiny slabs, many per memtable), the rest are
// uniform in 1 B..max.
uint64_t SizeOf(uint64_t seed, uint64_t id, uint64_t max) {
  const uint64_t r = Mix(Mix(seed ^ 0x5151) ^ id);
  const uint64_t bound = (r & 3) == 0 ? std::min<uint64_t>(max, 4096) : max;
  return 1 + (r >> 8) % bound;
}

void FillContent(uint64_t seed, uint64_t id, std::span<std::byte> out) {
  uint64_t state = Mix(seed ^ Mix(id ^ 0xc0ffee));
  for (size_t off = 0; off < out.size(); off += 8) {
    const uint64_t word = Mix(state++);
    std::memcpy(out.data() + off, &word, std::min<size_t>(8, out.size() - off));
  }
}

// ---- The ledger: what the driver knows about every key it ever used.

struct KeyRecord {
  uint64_t size = 0;
  uint64_t checksum = 0;
  bool acked = false;           // some Put of it returned OK
  bool expect_present = false;  // the node must hold it now (unless deleted)
  bool durable = false;         // acked before an acked Sync, not deleted since
  bool deleted = false;         // a Delete was sent: from then on, exact bytes or a miss
  int64_t live_pos = -1;        // index in Ledger::live_, -1 when not there
  uint32_t acks = 0;            // Puts of it that returned OK (more than 1: re-put)
  uint32_t acks_when_durable = 0;  // acks when a Sync last made it durable
};

// What a reader knew about a key before its read went out.
struct ReadExpectation {
  bool must_be_present = false;
  bool durable = false;
};

// Thread-safe.
class Ledger {
 public:
  Ledger(uint64_t seed, uint64_t max_block_bytes) : seed_(seed), max_block_bytes_(max_block_bytes) {}

  // A fresh key with its size and checksum recorded; content from FillContent.
  uint64_t NewKey(std::vector<std::byte>& content) {
    uint64_t id;
    {
      absl::MutexLock lock(&mu_);
      id = next_id_++;
    }
    const uint64_t size = SizeOf(seed_, id, max_block_bytes_);
    content.resize(size);
    FillContent(seed_, id, content);
    const uint64_t checksum = common::Checksum(std::span<const std::byte>(content));
    absl::MutexLock lock(&mu_);
    KeyRecord& r = keys_[id];
    r.size = size;
    r.checksum = checksum;
    return id;
  }

  void OnPutAcked(uint64_t id) {
    absl::MutexLock lock(&mu_);
    KeyRecord& r = keys_.at(id);
    if (r.deleted) return;  // a put racing its own delete: no promise either way
    r.acked = true;
    r.expect_present = true;
    ++r.acks;
    if (r.live_pos < 0) {
      r.live_pos = static_cast<int64_t>(live_.size());
      live_.push_back(id);
      live_bytes_ += r.size;
    }
    ack_log_.push_back(id);
  }

  // Marks `id` deleted before its Delete is sent, so that a concurrent reader's miss is expected.
  void BeginDelete(uint64_t id) {
    absl::MutexLock lock(&mu_);
    KeyRecord& r = keys_.at(id);
    r.deleted = true;
    r.durable = false;
    r.expect_present = false;
    RemoveLiveLocked(r);
  }

  // Acknowledged puts so far; the Sync about to be sent covers exactly these.
  size_t SyncBegin() {
    absl::MutexLock lock(&mu_);
    return ack_log_.size();
  }
  void SyncAcked(size_t covered) {
    absl::MutexLock lock(&mu_);
    for (size_t i = synced_upto_; i < covered; ++i) {
      KeyRecord& r = keys_.at(ack_log_[i]);
      if (!r.deleted && !r.durable) {
        r.durable = true;
        r.acks_when_durable = r.acks;
      }
    }
    synced_upto_ = std::max(synced_upto_, covered);
  }

  // The node died: only durable keys must still be there; acknowledgements not yet covered by a
  // Sync can never be (no Sync of a later run says anything about them).
  void OnKill() {
    absl::MutexLock lock(&mu_);
    for (auto& [id, r] : keys_) {
      if (!r.durable) r.expect_present = false;
    }
    ack_log_.clear();
    synced_upto_ = 0;
  }

  // After a restart's read-back: what was found is held by the node again (and may be read,
  // re-put or deleted); a durable key that was not is reported once and no longer durable.
  void OnVerified(uint64_t id, bool found) {
    absl::MutexLock lock(&mu_);
    KeyRecord& r = keys_.at(id);
    if (r.deleted) return;
    if (found) {
      r.expect_present = true;
      if (r.live_pos < 0) {
        r.acked = true;
        r.live_pos = static_cast<int64_t>(live_.size());
        live_.push_back(id);
        live_bytes_ += r.size;
      }
    } else {
      r.expect_present = false;
      r.durable = false;
    }
  }

  // A live key at random (acked at some point, not deleted); nullopt when there is none.
  std::optional<uint64_t> PickLive(std::mt19937_64& rng) const {
    absl::MutexLock lock(&mu_);
    if (live_.empty()) return std::nullopt;
    return live_[rng() % live_.size()];
  }
  // Any key ever used (deleted, unacknowledged and lost ones included).
  std::optional<uint64_t> PickAny(std::mt19937_64& rng) const {
    absl::MutexLock lock(&mu_);
    if (keys_.empty()) return std::nullopt;
    auto it = keys_.find(rng() % next_id_);
    if (it == keys_.end()) return std::nullopt;
    return it->first;
  }

  ReadExpectation Expect(uint64_t id) const {
    absl::MutexLock lock(&mu_);
    const KeyRecord& r = keys_.at(id);
    return {r.expect_present && !r.deleted, r.durable && !r.deleted};
  }
  bool Deleted(uint64_t id) const {
    absl::MutexLock lock(&mu_);
    return keys_.at(id).deleted;
  }
  KeyRecord Get(uint64_t id) const {
    absl::MutexLock lock(&mu_);
    return keys_.at(id);
  }
  uint64_t live_bytes() const {
    absl::MutexLock lock(&mu_);
    return live_bytes_;
  }

  // Ids of durable keys, and of all the others (for sampling). Call with no load running.
  void Partition(std::vector<uint64_t>& durable, std::vector<uint64_t>& others) const {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, r] : keys_) {
      if (r.size == 0) continue;  // id handed out, never recorded (cannot happen once joined)
      (r.durable && !r.deleted ? durable : others).push_back(id);
    }
  }

  // Forgets every key: the node starts over on an empty directory.
  void Clear() {
    absl::MutexLock lock(&mu_);
    keys_.clear();
    live_.clear();
    live_bytes_ = 0;
    ack_log_.clear();
    synced_upto_ = 0;
  }

  uint64_t seed() const { return seed_; }

 private:
  void RemoveLiveLocked(KeyRecord& r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (r.live_pos < 0) return;
    const uint64_t last = live_.back();
    live_[static_cast<size_t>(r.live_pos)] = last;
    keys_.at(last).live_pos = r.live_pos;
    live_.pop_back();
    r.live_pos = -1;
    live_bytes_ -= r.size;
  }

  const uint64_t seed_;
  const uint64_t max_block_bytes_;
  mutable absl::Mutex mu_;
  // Ids keep counting across Clear, so a key is never reused with other bytes.
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<uint64_t, KeyRecord> keys_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> live_ ABSL_GUARDED_BY(mu_);
  uint64_t live_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<uint64_t> ack_log_ ABSL_GUARDED_BY(mu_);  // acked puts of this node run, in order
  size_t synced_upto_ ABSL_GUARDED_BY(mu_) = 0;         // prefix of ack_log_ an acked Sync covered
};

// ---- Counters shared by the threads (the report's figures).

struct Counters {
  std::atomic<uint64_t> puts_acked{0}, reputs_acked{0}, deletes{0}, gets{0}, syncs_acked{0},
      syncs_failed{0}, durable_checked{0}, sample_checked{0}, bytes_verified{0}, wrong_bytes{0},
      corrupt_transfers{0}, durable_lost{0}, nondurable_lost{0}, lost_while_up{0};
  absl::Mutex mu;
  std::vector<std::string> failures ABSL_GUARDED_BY(mu);
  std::vector<std::string> sync_errors ABSL_GUARDED_BY(mu);  // distinct messages, first few

  void Fail(std::string what) {
    absl::MutexLock lock(&mu);
    if (failures.size() < kMaxFailuresKept) failures.push_back(std::move(what));
  }
};

// Compares a returned payload with the key's content; returns the bytes that differ (a size
// difference counts its length).
uint64_t WrongBytes(const Ledger& ledger, uint64_t id, std::string_view got,
                    std::vector<std::byte>& scratch) {
  const KeyRecord r = ledger.Get(id);
  if (got.size() == r.size && common::Checksum(got) == r.checksum) return 0;
  scratch.resize(r.size);
  FillContent(ledger.seed(), id, scratch);
  const size_t common_len = std::min<size_t>(got.size(), r.size);
  uint64_t wrong = std::max<size_t>(got.size(), r.size) - common_len;
  for (size_t i = 0; i < common_len; ++i) {
    if (got[i] != static_cast<char>(scratch[i])) ++wrong;
  }
  return wrong;
}

// ---- One client thread of the load phase.

class LoadThread {
 public:
  LoadThread(const CrashOptions& options, Ledger* ledger, Counters* counters,
             CacheNodeClient* client, uint64_t seed, const std::atomic<bool>* stop)
      : options_(options),
        ledger_(ledger),
        counters_(counters),
        client_(client),
        rng_(seed),
        stop_(stop),
        ns_(common::NamespaceIdOf("default")) {}

  void Run() {
    while (!stop_->load(std::memory_order_relaxed)) {
      const int op = static_cast<int>(rng_() % 100);
      int edge = options_.put_percent;
      if (op < edge) {
        if (ledger_->live_bytes() > options_.max_live_bytes) {
          Delete();
        } else {
          PutNew();
        }
      } else if (op < (edge += options_.reput_percent)) {
        Reput();
      } else if (op < (edge += options_.delete_percent)) {
        Delete();
      } else if (op < (edge += options_.sync_percent)) {
        Sync();
      } else {
        Read();
      }
    }
  }

 private:
  void PutNew() {
    const size_t n = 1 + rng_() % 4;
    std::vector<uint64_t> ids;
    contents_.resize(n);
    for (size_t i = 0; i < n; ++i) ids.push_back(ledger_->NewKey(contents_[i]));
    Put(ids, /*reput=*/false);
  }

  void Reput() {
    std::vector<uint64_t> ids;
    for (size_t i = 0, n = 1 + rng_() % 2; i < n; ++i) {
      if (auto id = ledger_->PickLive(rng_); id.has_value()) ids.push_back(*id);
    }
    if (ids.empty()) return;
    contents_.resize(ids.size());
    for (size_t i = 0; i < ids.size(); ++i) {
      contents_[i].resize(ledger_->Get(ids[i]).size);
      FillContent(ledger_->seed(), ids[i], contents_[i]);
    }
    Put(ids, /*reput=*/true);
  }

  void Put(const std::vector<uint64_t>& ids, bool reput) {
    std::vector<clients::PutBlock> blocks;
    for (size_t i = 0; i < ids.size(); ++i) {
      blocks.push_back({HashOf(ledger_->seed(), ids[i]), contents_[i],
                        static_cast<uint32_t>(i), false});
    }
    absl::StatusOr<std::vector<clients::PutResult>> r = client_->Put(ns_, blocks);
    if (!r.ok()) return;  // the kill, mostly; blocks committed before the error are not acked
    for (size_t i = 0; i < ids.size() && i < r->size(); ++i) {
      if (!(*r)[i].status.ok()) continue;
      ledger_->OnPutAcked(ids[i]);
      counters_->puts_acked.fetch_add(1, std::memory_order_relaxed);
      if (reput) counters_->reputs_acked.fetch_add(1, std::memory_order_relaxed);
    }
  }

  void Delete() {
    std::vector<uint64_t> ids;
    std::vector<common::ChainHash> hashes;
    for (size_t i = 0, n = 1 + rng_() % 3; i < n; ++i) {
      if (auto id = ledger_->PickLive(rng_); id.has_value()) {
        ledger_->BeginDelete(*id);
        hashes.push_back(HashOf(ledger_->seed(), *id));
      }
    }
    if (hashes.empty()) return;
    counters_->deletes.fetch_add(hashes.size(), std::memory_order_relaxed);
    (void)client_->Delete(ns_, hashes);  // deleted either way as far as the ledger goes
  }

  void Sync() {
    const size_t covered = ledger_->SyncBegin();
    absl::StatusOr<strata::v1::SyncResponse> r = client_->Sync();
    if (r.ok()) {
      ledger_->SyncAcked(covered);
      counters_->syncs_acked.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    counters_->syncs_failed.fetch_add(1, std::memory_order_relaxed);
    // The kill makes Syncs fail with UNAVAILABLE or CANCELLED; anything else is worth a line.
    if (!absl::IsUnavailable(r.status()) && !absl::IsCancelled(r.status()) &&
        !stop_->load(std::memory_order_relaxed)) {
      absl::MutexLock lock(&counters_->mu);
      if (counters_->sync_errors.size() < 5) counters_->sync_errors.push_back(r.status().ToString());
    }
  }

  void Read() {
    std::vector<uint64_t> ids;
    std::vector<ReadExpectation> expect;
    std::vector<common::ChainHash> chain;
    for (size_t i = 0, n = 1 + rng_() % kMaxGetBatch; i < n; ++i) {
      // Mostly live keys; some of every kind (deleted, lost, never acknowledged).
      std::optional<uint64_t> id = rng_() % 5 == 0 ? ledger_->PickAny(rng_) : ledger_->PickLive(rng_);
      if (!id.has_value() || ledger_->Get(*id).size == 0) continue;
      ids.push_back(*id);
      expect.push_back(ledger_->Expect(*id));
      chain.push_back(HashOf(ledger_->seed(), *id));
    }
    if (ids.empty()) return;
    absl::StatusOr<std::vector<clients::GetResult>> r = client_->Get(ns_, chain, false);
    if (!r.ok()) {
      if (absl::IsDataLoss(r.status()) && !stop_->load(std::memory_order_relaxed)) {
        counters_->corrupt_transfers.fetch_add(1, std::memory_order_relaxed);
        counters_->Fail(absl::StrCat("read under load refused by the client: ", r.status().ToString()));
      }
      return;
    }
    counters_->gets.fetch_add(r->size(), std::memory_order_relaxed);
    for (const clients::GetResult& g : *r) {
      if (g.index >= ids.size()) continue;
      const uint64_t id = ids[g.index];
      if (g.found) {
        const uint64_t wrong = WrongBytes(*ledger_, id, g.payload, scratch_);
        counters_->bytes_verified.fetch_add(g.payload.size() - std::min(wrong, g.payload.size()),
                                            std::memory_order_relaxed);
        if (wrong > 0) {
          counters_->wrong_bytes.fetch_add(wrong, std::memory_order_relaxed);
          counters_->Fail(absl::StrFormat("read under load of key %d (%d B) returned %d wrong bytes",
                                          id, ledger_->Get(id).size, wrong));
        }
        continue;
      }
      if (!expect[g.index].must_be_present || ledger_->Deleted(id)) continue;
      counters_->lost_while_up.fetch_add(1, std::memory_order_relaxed);
      if (expect[g.index].durable) {
        counters_->durable_lost.fetch_add(1, std::memory_order_relaxed);
        counters_->Fail(absl::StrFormat("durable key %d (%d B) missing while the node was up (%s)",
                                        id, ledger_->Get(id).size, g.miss.ToString()));
      }
    }
  }

  const CrashOptions& options_;
  Ledger* const ledger_;
  Counters* const counters_;
  CacheNodeClient* const client_;
  std::mt19937_64 rng_;
  const std::atomic<bool>* const stop_;
  const common::NamespaceId ns_;
  std::vector<std::vector<std::byte>> contents_;
  std::vector<std::byte> scratch_;
};

// ---- The node.

// Starts the node binary with `flags` (plus a loopback port and plaintext), waits `delay`, then
// SIGKILLs it and reaps it: a kill at a random point of start-up and recovery. Its output is
// discarded. False if it could not be started.
bool KillDuringStartup(const std::string& binary, const std::vector<std::string>& flags,
                       absl::Duration delay) {
  std::vector<std::string> argv = {binary, "--listen", "127.0.0.1:0", "--plaintext"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  std::vector<char*> c_argv;
  for (std::string& a : argv) c_argv.push_back(a.data());
  c_argv.push_back(nullptr);
  const int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull < 0) return false;
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    close(devnull);
    return false;
  }
  if (pid == 0) {  // only async-signal-safe calls until exec
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    dup2(devnull, 0);
    dup2(devnull, 1);
    dup2(devnull, 2);
    execv(c_argv[0], c_argv.data());
    _exit(127);
  }
  close(devnull);
  absl::SleepFor(delay);
  kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return true;
}

class Driver {
 public:
  Driver(const CrashOptions& options, std::ostream& progress)
      : options_(options),
        progress_(progress),
        ledger_(options.seed, options.max_block_bytes),
        rng_(options.seed),
        node_(options.node_binary) {}

  absl::StatusOr<CrashReport> Run() {
    if (options_.dir.empty()) {
      temp_.emplace();
      base_ = temp_->path();
    } else {
      base_ = options_.dir;
      std::filesystem::create_directories(base_);
    }
    NewDataDir();
    if (absl::Status s = StartNode(); !s.ok()) return s;
    for (int cycle = 1; cycle <= options_.cycles; ++cycle) {
      if (!Cycle(cycle)) break;  // the node did not come back: nothing more to learn
      ++report_.cycles;
      if (options_.fresh_dir_every > 0 && cycle % options_.fresh_dir_every == 0 &&
          cycle < options_.cycles) {
        (void)node_.Kill();
        std::filesystem::remove_all(data_dir_);
        ledger_.Clear();
        NewDataDir();
        if (absl::Status s = StartNode(); !s.ok()) {
          ++report_.restart_failures;
          counters_.Fail(absl::StrCat("node did not start on a fresh directory: ", s.ToString()));
          break;
        }
      }
    }
    if (node_.running()) (void)node_.Kill();
    if (!options_.dir.empty()) std::filesystem::remove_all(data_dir_);
    Collect();
    return report_;
  }

 private:
  std::vector<std::string> NodeFlags() const {
    return {"--data-dir", data_dir_,
            "--dram-bytes", absl::StrCat(options_.dram_bytes),
            "--ssd-bytes", absl::StrCat(options_.ssd_bytes),
            "--max-block-bytes", absl::StrCat(options_.max_block_bytes)};
  }

  void NewDataDir() { data_dir_ = absl::StrCat(base_, "/node-", dir_generation_++); }

  absl::Status StartNode() {
    const absl::Time start = absl::Now();
    absl::StatusOr<std::string> address = node_.Start(NodeFlags());
    if (!address.ok()) return address.status();
    startup_ = absl::Now() - start;
    address_ = *address;
    return absl::OkStatus();
  }

  // One cycle: load, kill, (kill during start-up), restart, verify. False when the node could not
  // be restarted.
  bool Cycle(int cycle) {
    const CrashReport before = Snapshot();
    // Load, then SIGKILL at a random moment of it.
    const absl::Duration load = options_.max_load * (static_cast<double>(rng_() % 1000) / 1000.0);
    {
      clients::ClientOptions copt;
      copt.target = address_;
      copt.deadline = absl::Seconds(20);
      copt.max_attempts = 1;  // a retry must never reach the restarted node
      std::unique_ptr<CacheNodeClient> client = std::move(CacheNodeClient::Connect(copt)).value();
      std::atomic<bool> stop{false};
      std::vector<std::unique_ptr<LoadThread>> loads;
      std::vector<std::thread> threads;
      for (int t = 0; t < options_.threads; ++t) {
        loads.push_back(std::make_unique<LoadThread>(options_, &ledger_, &counters_, client.get(),
                                                     rng_(), &stop));
        threads.emplace_back([l = loads.back().get()] { l->Run(); });
      }
      absl::SleepFor(load);
      if (absl::StatusOr<strata::v1::StatsResponse> stats = client->Stats(); stats.ok()) {
        for (const strata::v1::TierStats& t : stats->tiers()) {
          if (t.tier() == strata::v1::TIER_SSD) report_.ssd_evictions += t.evictions();
        }
      }
      (void)node_.Kill();
      stop.store(true);
      for (std::thread& t : threads) t.join();
    }
    ++report_.kills;
    ledger_.OnKill();
    // Sometimes also kill the restarting node, at a random point of its start-up and recovery.
    std::string extra;
    if (static_cast<int>(rng_() % 100) < options_.startup_kill_percent) {
      const absl::Duration delay = startup_ * (1.2 * static_cast<double>(rng_() % 1000) / 1000.0);
      if (KillDuringStartup(options_.node_binary, NodeFlags(), delay)) {
        ++report_.kills;
        ++report_.startup_kills;
        extra = absl::StrCat(" +1 in start-up at ", absl::FormatDuration(absl::Trunc(delay, absl::Milliseconds(1))));
      }
    }
    if (absl::Status s = StartNode(); !s.ok()) {
      ++report_.restart_failures;
      counters_.Fail(absl::StrCat("cycle ", cycle, ": node did not restart: ", s.ToString(),
                                  "; stderr: ", node_.stderr_text()));
      progress_ << "cycle " << cycle << ": node did not restart: " << s << std::endl;
      return false;
    }
    Verify(cycle);
    const CrashReport after = Snapshot();
    progress_ << absl::StrFormat(
                     "cycle %d/%d: killed %dms into load%s; puts acked %d, syncs acked %d; "
                     "durable checked %d, sample %d (lost %d); wrong bytes %d, durable lost %d",
                     cycle, options_.cycles, absl::ToInt64Milliseconds(load), extra,
                     after.puts_acked - before.puts_acked, after.syncs_acked - before.syncs_acked,
                     after.durable_checked - before.durable_checked,
                     after.sample_checked - before.sample_checked,
                     after.nondurable_lost - before.nondurable_lost, after.wrong_bytes,
                     after.durable_lost)
              << std::endl;
    return true;
  }

  // Reads back every durable block and a sample of the others from the restarted node.
  void Verify(int cycle) {
    std::vector<uint64_t> durable, others;
    ledger_.Partition(durable, others);
    std::shuffle(others.begin(), others.end(), rng_);
    if (others.size() > static_cast<size_t>(options_.sample)) others.resize(options_.sample);
    clients::ClientOptions copt;
    copt.target = address_;
    copt.deadline = absl::Seconds(60);
    std::unique_ptr<CacheNodeClient> client = std::move(CacheNodeClient::Connect(copt)).value();
    const common::NamespaceId ns = common::NamespaceIdOf("default");
    std::vector<std::byte> scratch;
    auto check = [&](const std::vector<uint64_t>& ids, bool durable_set) {
      size_t begin = 0;
      while (begin < ids.size()) {
        size_t end = begin;
        uint64_t bytes = 0;
        std::vector<common::ChainHash> chain;
        while (end < ids.size() && chain.size() < kMaxVerifyBatch &&
               (chain.empty() || bytes + ledger_.Get(ids[end]).size <= kMaxVerifyBatchBytes)) {
          bytes += ledger_.Get(ids[end]).size;
          chain.push_back(HashOf(options_.seed, ids[end++]));
        }
        absl::StatusOr<std::vector<clients::GetResult>> r = client->Get(ns, chain, false);
        if (!r.ok()) {
          if (absl::IsDataLoss(r.status())) counters_.corrupt_transfers.fetch_add(1);
          // A restarted node that cannot serve its blocks loses them all, as far as we can tell.
          for (size_t i = begin; i < end; ++i) Checked(cycle, ids[i], durable_set, nullptr, scratch);
          counters_.Fail(absl::StrCat("cycle ", cycle, ": read-back failed: ", r.status().ToString()));
        } else {
          std::vector<const clients::GetResult*> by_index(chain.size(), nullptr);
          for (const clients::GetResult& g : *r) {
            if (g.index < chain.size()) by_index[g.index] = &g;
          }
          for (size_t i = 0; i < chain.size(); ++i) {
            Checked(cycle, ids[begin + i], durable_set, by_index[i], scratch);
          }
        }
        begin = end;
      }
    };
    check(durable, true);
    check(others, false);
  }

  // One read-back result (null: the read failed).
  void Checked(int cycle, uint64_t id, bool durable, const clients::GetResult* g,
               std::vector<std::byte>& scratch) {
    const KeyRecord before = ledger_.Get(id);
    (durable ? counters_.durable_checked : counters_.sample_checked).fetch_add(1);
    const bool found = g != nullptr && g->found;
    if (found) {
      const uint64_t wrong = WrongBytes(ledger_, id, g->payload, scratch);
      counters_.bytes_verified.fetch_add(g->payload.size() - std::min(wrong, g->payload.size()));
      if (wrong > 0) {
        counters_.wrong_bytes.fetch_add(wrong);
        counters_.Fail(absl::StrFormat("cycle %d: key %d (%d B) read back with %d wrong bytes",
                                       cycle, id, before.size, wrong));
        ledger_.OnVerified(id, false);  // not its bytes: do not count on it again
        return;
      }
    } else if (durable) {
      counters_.durable_lost.fetch_add(1);
      counters_.Fail(absl::StrFormat(
          "cycle %d: durable key %d (%d B; put %d times, %d of them after it became durable) "
          "lost after the restart (%s)",
          cycle, id, before.size, before.acks, before.acks - before.acks_when_durable,
          g == nullptr ? "read failed" : g->miss.ToString()));
    } else if (before.acked && !before.deleted) {
      counters_.nondurable_lost.fetch_add(1);
    }
    ledger_.OnVerified(id, found);
  }

  CrashReport Snapshot() {
    CrashReport r = report_;
    r.puts_acked = counters_.puts_acked;
    r.reputs_acked = counters_.reputs_acked;
    r.deletes = counters_.deletes;
    r.gets = counters_.gets;
    r.syncs_acked = counters_.syncs_acked;
    r.syncs_failed = counters_.syncs_failed;
    r.durable_checked = counters_.durable_checked;
    r.sample_checked = counters_.sample_checked;
    r.bytes_verified = counters_.bytes_verified;
    r.wrong_bytes = counters_.wrong_bytes;
    r.corrupt_transfers = counters_.corrupt_transfers;
    r.durable_lost = counters_.durable_lost;
    r.nondurable_lost = counters_.nondurable_lost;
    r.lost_while_up = counters_.lost_while_up;
    return r;
  }

  void Collect() {
    report_ = Snapshot();
    absl::MutexLock lock(&counters_.mu);
    report_.failures = counters_.failures;
    for (const std::string& e : counters_.sync_errors) {
      report_.failures.push_back(absl::StrCat("unexpected Sync error: ", e));
    }
  }

  const CrashOptions& options_;
  std::ostream& progress_;
  Ledger ledger_;
  Counters counters_;
  std::mt19937_64 rng_;
  NodeProcess node_;
  std::optional<TempDir> temp_;
  std::string base_;
  std::string data_dir_;
  int dir_generation_ = 0;
  std::string address_;
  absl::Duration startup_ = absl::Milliseconds(200);
  CrashReport report_;
};

}  // namespace

absl::Status CrashOptions::Validate() const {
  auto bad = [](std::string_view what) { return absl::InvalidArgumentError(std::string(what)); };
  if (cycles < 1) return bad("--cycles must be at least 1");
  if (threads < 1 || threads > 64) return bad("--threads must be 1-64");
  if (max_block_bytes < 1 || max_block_bytes > (64ull << 20)) {
    return bad("--max-block-bytes must be 1 B-64 MiB");
  }
  if (node_binary.empty()) return bad("--node must name the strata-cachenode binary");
  if (max_live_bytes < max_block_bytes) return bad("--max-live-bytes must be >= --max-block-bytes");
  if (dram_bytes < 2 * max_block_bytes) return bad("--dram-bytes must hold two largest blocks");
  if (ssd_bytes < 4 * max_live_bytes) {
    return bad("--ssd-bytes must be at least 4x --max-live-bytes (nothing durable may be evicted)");
  }
  if (max_load <= absl::ZeroDuration()) return bad("--max-load must be positive");
  if (startup_kill_percent < 0 || startup_kill_percent > 100) {
    return bad("--startup-kill-percent must be 0-100");
  }
  if (sample < 0) return bad("--sample must be >= 0");
  if (fresh_dir_every < 0) return bad("--fresh-dir-every must be >= 0");
  if (put_percent < 0 || reput_percent < 0 || delete_percent < 0 || sync_percent < 0 ||
      put_percent + reput_percent + delete_percent + sync_percent > 100) {
    return bad("operation percentages must be >= 0 and sum to at most 100");
  }
  return absl::OkStatus();
}

std::string CrashReport::ToJson() const {
  std::vector<std::string> quoted;
  for (const std::string& f : failures) {
    std::string q = "\"";
    for (char c : f) {
      if (c == '"' || c == '\\') {
        q += '\\';
        q += c;
      } else if (static_cast<unsigned char>(c) < 0x20) {
        q += ' ';
      } else {
        q += c;
      }
    }
    quoted.push_back(q + "\"");
  }
  return absl::StrFormat(
      "{\"ok\":%s,\"cycles\":%d,\"kills\":%d,\"startup_kills\":%d,\"puts_acked\":%d,"
      "\"reputs_acked\":%d,\"deletes\":%d,\"gets\":%d,\"syncs_acked\":%d,\"syncs_failed\":%d,"
      "\"durable_checked\":%d,\"sample_checked\":%d,\"bytes_verified\":%d,\"wrong_bytes\":%d,"
      "\"corrupt_transfers\":%d,\"durable_lost\":%d,\"nondurable_lost\":%d,\"lost_while_up\":%d,"
      "\"ssd_evictions\":%d,\"restart_failures\":%d,\"failures\":[%s]}\n",
      ok() ? "true" : "false", cycles, kills, startup_kills, puts_acked, reputs_acked, deletes,
      gets, syncs_acked, syncs_failed, durable_checked, sample_checked, bytes_verified,
      wrong_bytes, corrupt_transfers, durable_lost, nondurable_lost, lost_while_up, ssd_evictions,
      restart_failures, absl::StrJoin(quoted, ","));
}

std::string CrashReport::Summary() const {
  std::string out = absl::StrFormat(
      "crash test %s: %d cycles, %d kills (%d during start-up)\n"
      "  puts acked %d (%d re-puts), deletes %d, blocks read under load %d, syncs acked %d "
      "(failed %d)\n"
      "  durable blocks checked %d, sampled others %d, bytes verified %s\n"
      "  wrong bytes %d, corrupt transfers %d, durable lost %d, restart failures %d\n"
      "  non-durable lost %d (informational), acked blocks missing while up %d, SSD evictions %d\n",
      ok() ? "PASSED" : "FAILED", cycles, kills, startup_kills, puts_acked, reputs_acked, deletes,
      gets, syncs_acked, syncs_failed, durable_checked, sample_checked,
      common::FormatByteSize(bytes_verified), wrong_bytes, corrupt_transfers, durable_lost,
      restart_failures, nondurable_lost, lost_while_up, ssd_evictions);
  for (const std::string& f : failures) absl::StrAppend(&out, "  ! ", f, "\n");
  return out;
}

absl::StatusOr<CrashReport> RunCrashTest(const CrashOptions& options, std::ostream& progress) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  Driver driver(options, progress);
  return driver.Run();
}

}  // namespace strata::tests

ABSL_FLAG(int, cycles, 20, "Kill-restart-verify cycles");
ABSL_FLAG(uint64_t, seed, 1, "Seed of keys, sizes, contents and every random choice");
ABSL_FLAG(std::string, dir, "", "Directory for the node's data; empty: a temporary directory");
ABSL_FLAG(int, threads, 4, "Client threads during the load phase");
ABSL_FLAG(std::string, max_block_bytes, "256KiB", "Block sizes are 1 B..this");
ABSL_FLAG(std::string, node, "", "strata-cachenode binary; empty: the one of this build");
ABSL_FLAG(std::string, report, "", "Write the JSON summary to this file; empty: none");
ABSL_FLAG(std::string, max_live_bytes, "64MiB",
          "Live block bytes above which threads delete instead of put (bounds the working set)");
ABSL_FLAG(std::string, dram_bytes, "16MiB", "The node's DRAM tier (small: DRAM evicts to SSD)");
ABSL_FLAG(std::string, ssd_bytes, "8GiB",
          "The node's SSD capacity (far above the working set: nothing durable is evicted)");
ABSL_FLAG(absl::Duration, max_load, absl::Milliseconds(1500),
          "The kill comes at a random moment 0..this into each load phase");
ABSL_FLAG(int, startup_kill_percent, 25, "Cycles that also kill the node during its start-up");
ABSL_FLAG(int, sample, 200, "Non-durable blocks read back after each restart");
ABSL_FLAG(int, fresh_dir_every, 20, "Start over on an empty data directory every N cycles; 0: never");
ABSL_FLAG(int, reput_percent, 5,
          "Operations that put a known block again (same bytes, as a retry or a second engine)");
ABSL_FLAG(int, sync_percent, 4, "Operations that are a Sync");

int main(int argc, char** argv) {
  strata::common::CommandLineSpec spec;
  spec.program = "strata-crash-test";
  spec.usage =
      "strata-crash-test: SIGKILLs a real strata-cachenode at random moments (mostly under load,\n"
      "sometimes during start-up and recovery), restarts it, and checks that no read ever returns\n"
      "wrong bytes and that every block acknowledged by a Sync comes back byte-exact. Prints one\n"
      "line per cycle and a summary; exit 0 only when nothing was wrong or lost, 1 otherwise,\n"
      "2 for bad flags or a node that does not start at all.\n\n"
      "  strata-crash-test --cycles 200 --seed 1 --threads 4 --report crash.json";
  spec.flags = {"cycles",       "seed",       "dir",       "threads",  "max_block_bytes",
                "node",         "report",     "max_live_bytes", "dram_bytes", "ssd_bytes",
                "max_load",     "startup_kill_percent", "sample", "fresh_dir_every",
                "reput_percent", "sync_percent"};
  const std::vector<std::string> rest = strata::common::ParseCommandLineOrExit(spec, argc, argv);
  if (!rest.empty()) {
    std::cerr << "strata-crash-test: unexpected argument '" << rest[0] << "'\n";
    return 2;
  }
  strata::tests::CrashOptions options;
  options.cycles = absl::GetFlag(FLAGS_cycles);
  options.seed = absl::GetFlag(FLAGS_seed);
  options.dir = absl::GetFlag(FLAGS_dir);
  options.threads = absl::GetFlag(FLAGS_threads);
  options.node_binary = absl::GetFlag(FLAGS_node);
  if (options.node_binary.empty()) options.node_binary = strata::tests::CacheNodeBinary();
  options.report = absl::GetFlag(FLAGS_report);
  options.max_load = absl::GetFlag(FLAGS_max_load);
  options.startup_kill_percent = absl::GetFlag(FLAGS_startup_kill_percent);
  options.sample = absl::GetFlag(FLAGS_sample);
  options.fresh_dir_every = absl::GetFlag(FLAGS_fresh_dir_every);
  options.reput_percent = absl::GetFlag(FLAGS_reput_percent);
  options.sync_percent = absl::GetFlag(FLAGS_sync_percent);
  struct Size {
    const char* flag;
    std::string text;
    uint64_t* out;
  };
  for (const Size& size : {Size{"max-block-bytes", absl::GetFlag(FLAGS_max_block_bytes),
                                &options.max_block_bytes},
                           Size{"max-live-bytes", absl::GetFlag(FLAGS_max_live_bytes),
                                &options.max_live_bytes},
                           Size{"dram-bytes", absl::GetFlag(FLAGS_dram_bytes), &options.dram_bytes},
                           Size{"ssd-bytes", absl::GetFlag(FLAGS_ssd_bytes), &options.ssd_bytes}}) {
    absl::StatusOr<uint64_t> v = strata::common::ParseByteSize(size.text);
    if (!v.ok()) {
      std::cerr << "strata-crash-test: --" << size.flag << ": " << v.status().message() << "\n";
      return 2;
    }
    *size.out = *v;
  }
  // A node killed mid-write is expected to leave its clients' calls failing; the driver never
  // writes to a dead socket, but gRPC may: do not die of SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  absl::StatusOr<strata::tests::CrashReport> report =
      strata::tests::RunCrashTest(options, std::cout);
  if (!report.ok()) {
    std::cerr << "strata-crash-test: " << report.status() << "\n";
    return 2;
  }
  std::cout << report->Summary();
  if (!options.report.empty()) {
    std::ofstream out(options.report);
    out << report->ToJson();
    if (!out) {
      std::cerr << "strata-crash-test: cannot write " << options.report << "\n";
      return 2;
    }
  }
  return report->ok() ? 0 : 1;
}
