// The SSD tier: blocks in RocksDB on a local directory, tuned for multi-MB values.
//
// Layout: column family "meta" maps the 40-byte encoded BlockKey to a small fixed record (size,
// checksum, chain position); the default column family maps the same key to the raw payload, which
// integrated BlobDB stores in blob files (keys and blob references stay in small SSTs). Both are
// written in one WriteBatch, so a block is either wholly present or absent. On Open the tier
// rebuilds its in-memory index (key -> size) by scanning "meta" only, never payloads.
//
// Capacity is a hard bound on the sum of payload bytes held; Put returns ResourceExhausted rather
// than exceed it. Durability: writes skip the WAL (payloads would be written twice); Flush() makes
// every block written before it durable against a process crash (memtable flushed to blob/SST
// files). Blocks not yet flushed may be lost on a crash; they are never returned corrupted.
//
// Faults. A full disk makes puts and Flush() return ResourceExhausted (never Internal or DataLoss)
// while reads go on. RocksDB then stops taking writes (a background error); the tier does not let
// RocksDB's own polling recover, but asks it to resume from the next failing write or flush, at
// most once per resume_interval of the injected clock, so service comes back without a restart
// once space returns and tests step it deterministically. A read that the file system fails is
// Unavailable (a miss; the block stays indexed), a record RocksDB finds corrupt is DataLoss; bytes
// that arrive wrong are caught by the store's xxh3 check. Fail points (test builds): "ssd.put",
// "ssd.read", "ssd.flush".
//
// Thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cachenode/tier.h"
#include "common/clock.h"

namespace rocksdb {
class FileSystem;
}  // namespace rocksdb

namespace strata::cachenode {

struct SsdTierOptions {
  std::string path;             // RocksDB directory; created when missing
  uint64_t capacity_bytes = 0;  // hard bound on payload bytes held; 0 disables the tier
  // Direct I/O for reads, flush and compaction: KV blocks are read once per hit and are far larger
  // than the page cache should hold. Falls back to buffered I/O (logged) where the filesystem
  // refuses O_DIRECT (tmpfs).
  bool use_direct_io = true;
  uint64_t write_buffer_bytes = 32ull << 20;  // memtable size; bounds memory and batch size to disk
  uint64_t blob_file_bytes = 256ull << 20;    // large blob files: fewer files, sequential writes
  uint64_t block_cache_bytes = 8ull << 20;    // caches SST (key) blocks only; payloads bypass it
  // Memtables of the payload family: one fills while the others flush. More lets puts go on during
  // a slow flush but each costs write_buffer_bytes of resident memory.
  int max_write_buffers = 2;
  // Threads flushing memtables to blob files. Debian's portable RocksDB computes each blob's CRC32c
  // in software (about 1 GB/s), so a flush is CPU-bound. Measured on 2 cores (bench/RESULTS.md):
  // 2 threads with 3 buffers and 4 MiB writes put 0.32-0.38x of direct writes against 0.31-0.33x
  // for these defaults, within the noise and for 32 MiB more memory, so the defaults stay.
  int flush_threads = 1;
  // Size of each direct write of a blob or SST file (RocksDB's writable_file_max_buffer_size).
  uint64_t write_io_bytes = 1ull << 20;
  // Reads a ReadBatch (a chain's SSD blocks) keeps in flight: a disk serves several random reads at
  // once faster than one after another, and without io_uring in Debian's RocksDB a thread per read
  // is how to get there. 1: MultiGet on the caller's thread only.
  int read_threads = 4;
  // The file system RocksDB runs on; null: the local one. Tests pass a FaultInjectionFileSystem
  // (fault_fs.h) to inject I/O errors, corruption, lost writes and a full disk.
  std::shared_ptr<rocksdb::FileSystem> file_system;
  // After RocksDB stopped on a write error (disk full), the next failing write or flush asks it to
  // resume at most this often: each try re-flushes the memtables, so trying on every put of a full
  // disk would only burn I/O. Shorter brings service back sooner once space returns.
  absl::Duration resume_interval = absl::Seconds(1);
  // Clock of resume_interval; null: the real clock. Must outlive the tier.
  common::Clock* clock = nullptr;

  // InvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

class SsdTier final : public Tier {
 public:
  // Opens (or creates) the store at options.path and rebuilds the index.
  // FailedPrecondition when the directory cannot be created or written; RocksDB errors map to
  // DataLoss (corruption), ResourceExhausted (no space), InvalidArgument or Internal.
  static absl::StatusOr<std::unique_ptr<SsdTier>> Open(const SsdTierOptions& options);
  ~SsdTier() override;

  TierKind kind() const override { return TierKind::kSsd; }
  std::string name() const override { return "ssd"; }
  TierUsage Usage() const override;
  uint64_t ChargeFor(uint64_t size) const override;
  absl::Status Put(const BlockInfo& info, std::span<const std::byte> payload) override;
  std::vector<absl::Status> PutBatch(std::span<const BlockInfo> infos,
                                     std::span<const std::span<const std::byte>> payloads) override;
  absl::StatusOr<BlockHandle> Read(const BlockKey& key) override;
  // One MultiGet per group of keys, up to read_threads groups in parallel.
  std::vector<absl::StatusOr<BlockHandle>> ReadBatch(std::span<const BlockKey> keys) override;
  absl::Status Erase(const BlockKey& key) override;
  bool Contains(const BlockKey& key) const override;

  // Calls fn for every block held (metadata only, no payload), in key order. Used on start to
  // rebuild the node's index.
  absl::Status ForEachBlock(const std::function<void(const BlockInfo&)>& fn) const;

  // Makes every block written so far durable against a process crash. ResourceExhausted when the
  // disk is full; the blocks stay readable (from memory) and are flushed by a later Flush.
  absl::Status Flush();

  // Times RocksDB was asked to resume after a write error, and how often that worked.
  uint64_t resume_attempts() const;
  uint64_t resumes() const;

  // Writes and flushes RocksDB refused (disk full, I/O errors; not the tier's own capacity
  // check), and whether the last one that reached RocksDB failed: true from such a failure until a
  // write or flush succeeds. While it is true the tier takes no blocks: a full disk clears it once
  // space returns (see Faults above); a plain I/O error in a flush is fatal to RocksDB 7.8 and
  // clears only when the node is restarted.
  uint64_t write_errors() const;
  bool writes_stopped() const;

  // True when direct I/O is in effect (false after a fallback).
  bool direct_io() const;

 private:
  struct Impl;
  explicit SsdTier(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata::cachenode
