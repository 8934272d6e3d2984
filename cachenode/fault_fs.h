// FaultInjectionFileSystem: a RocksDB FileSystem that wraps another (the real one by default) and
// injects the storage faults Strata promises to survive, so tests can prove "it may lose cached
// data, it never returns wrong data, and it keeps serving" against the SSD tier:
//
//   - read errors: random and sequential reads return IOError, by probability, for the file kinds
//     chosen (SST, blob, WAL, MANIFEST, OPTIONS, other);
//   - silent corruption: a read succeeds but one byte of what it returns is flipped;
//   - write errors: Append/PositionedAppend fail (nothing written), Sync/Fsync fail (nothing
//     synced); short writes write only a prefix, then fail or, in the "torn" mode, report success
//     (the bytes are simply missing: checksums must catch it); deletes fail (the file stays);
//   - lost unsynced data: every file written through this file system remembers how much of it was
//     last synced (Sync/Fsync; a Close keeps whatever the last sync covered). DropUnsyncedData()
//     truncates each one to that length, as a power loss would. SetActive(false) first makes the
//     "crash" stick: every later write fails and changes nothing, so a closing DB cannot persist
//     what it still holds. File creation, rename and deletion count as durable at once (directory
//     fsyncs are not modelled);
//   - a byte quota: the sum of the sizes of the files written through this file system (files
//     that existed before it are not counted) may not exceed it; a write past it fails with
//     IOStatus::NoSpace() and writes nothing. Raising the quota or deleting files makes room;
//     GetFreeSpace reports the room left, so RocksDB sees a full disk everywhere;
//   - counters of every fault injected, for tests and tests/RELIABILITY.md figures.
//
// Faults draw from one seeded generator, so a test with a fixed seed and a fixed order of I/O
// injects at the same places (background flushes can still reorder I/O). Settings are read at
// each operation, not at open, so they apply to files already open too.
//
// Thread-safe: every method may be called from any thread while RocksDB runs on it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "rocksdb/file_system.h"

namespace strata::cachenode {

// What a RocksDB file is, by its name. Bits, so fault settings can name several.
enum FileKind : uint32_t {
  kSstFile = 1u << 0,       // *.sst: keys, blob references, small inline values
  kBlobFile = 1u << 1,      // *.blob: payloads (integrated BlobDB)
  kWalFile = 1u << 2,       // *.log: write-ahead log (Strata writes none, but RocksDB may open one)
  kManifestFile = 1u << 3,  // MANIFEST-*: the list of live files
  kOptionsFile = 1u << 4,   // OPTIONS-*
  kOtherFile = 1u << 5,     // CURRENT, IDENTITY, LOCK, LOG, temporaries
};
inline constexpr uint32_t kAllFileKinds = (1u << 6) - 1;

// The kind of the file at `path` (only its last component matters).
FileKind FileKindOf(std::string_view path);
// "sst", "blob", "wal", "manifest", "options", "other".
std::string_view FileKindName(FileKind kind);

struct ReadFaults {
  double error_probability = 0;    // a read returns IOError and no bytes
  double corrupt_probability = 0;  // a read succeeds with one byte flipped
  uint32_t kinds = kAllFileKinds;  // files affected (FileKind bits)
};

enum class ShortWriteMode {
  kFail,  // the prefix is written, the call returns IOError
  kTorn,  // the prefix is written, the call reports success: the rest is silently missing
};

struct WriteFaults {
  double error_probability = 0;        // Append/PositionedAppend fail, nothing written
  double sync_error_probability = 0;   // Sync/Fsync fail, nothing more counts as synced
  double short_write_probability = 0;  // only a prefix of an append is written (see mode)
  ShortWriteMode short_write_mode = ShortWriteMode::kFail;
  double delete_error_probability = 0;  // DeleteFile fails and the file stays
  uint32_t kinds = kAllFileKinds;  // files affected (FileKind bits)
};

// Faults injected since construction (or ResetCounters).
struct FaultCounters {
  uint64_t read_errors = 0;
  uint64_t corrupted_reads = 0;  // reads returned with a flipped byte
  uint64_t write_errors = 0;
  uint64_t sync_errors = 0;
  uint64_t short_writes = 0;  // both modes
  uint64_t torn_writes = 0;   // short writes that reported success
  uint64_t no_space_errors = 0;
  uint64_t delete_errors = 0;
  uint64_t inactive_errors = 0;  // operations refused while inactive (after a simulated crash)
  uint64_t dropped_bytes = 0;    // unsynced bytes removed by DropUnsyncedData
  // Per kind (index: bit position of the FileKind) of read faults, for reports.
  uint64_t read_faults_by_kind[6] = {};
};

class FaultInjectionFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  // Wraps `base` (null: rocksdb::FileSystem::Default()). No fault is armed and there is no quota.
  explicit FaultInjectionFileSystem(std::shared_ptr<rocksdb::FileSystem> base = nullptr,
                                    uint64_t seed = 1);
  ~FaultInjectionFileSystem() override;

  static const char* kClassName() { return "StrataFaultInjectionFileSystem"; }
  const char* Name() const override { return kClassName(); }

  // Fault settings; they apply from the next operation on, to open and future files alike.
  void SetReadFaults(const ReadFaults& faults);
  void SetWriteFaults(const WriteFaults& faults);
  void ClearFaults();  // read and write faults off (quota and activity unchanged)
  void Seed(uint64_t seed);

  // Quota on the bytes of files written through this file system; nullopt: none.
  void SetQuota(std::optional<uint64_t> bytes);
  // Bytes the quota counts now.
  uint64_t used_bytes() const;

  // false: every write, sync, create, rename and delete fails (IOError) and changes nothing, like
  // a machine that has lost power; reads still work. true again after DropUnsyncedData to
  // "reboot".
  void SetActive(bool active);
  // Truncates every file written through this file system to its last synced length (files never
  // synced become empty). Call it with no DB open on the files. IO errors of the truncation are
  // returned (Internal).
  absl::Status DropUnsyncedData();

  FaultCounters counters() const;
  // Sum of every injected fault in counters() (dropped bytes excluded).
  uint64_t total_faults() const;
  void ResetCounters();

  // rocksdb::FileSystem: the calls the faults act on; the rest forward to the wrapped system.
  rocksdb::IOStatus NewSequentialFile(const std::string& fname,
                                      const rocksdb::FileOptions& options,
                                      std::unique_ptr<rocksdb::FSSequentialFile>* result,
                                      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewRandomAccessFile(const std::string& fname,
                                        const rocksdb::FileOptions& options,
                                        std::unique_ptr<rocksdb::FSRandomAccessFile>* result,
                                        rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewWritableFile(const std::string& fname, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReopenWritableFile(const std::string& fname,
                                       const rocksdb::FileOptions& options,
                                       std::unique_ptr<rocksdb::FSWritableFile>* result,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReuseWritableFile(const std::string& fname, const std::string& old_fname,
                                      const rocksdb::FileOptions& options,
                                      std::unique_ptr<rocksdb::FSWritableFile>* result,
                                      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewRandomRWFile(const std::string& fname, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSRandomRWFile>* result,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus DeleteFile(const std::string& fname, const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus RenameFile(const std::string& src, const std::string& target,
                               const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus LinkFile(const std::string& src, const std::string& target,
                             const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus Truncate(const std::string& fname, size_t size,
                             const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus GetFreeSpace(const std::string& path, const rocksdb::IOOptions& options,
                                 uint64_t* diskfree, rocksdb::IODebugContext* dbg) override;

 private:
  class SequentialFile;
  class RandomAccessFile;
  class WritableFile;
  friend class SequentialFile;
  friend class RandomAccessFile;
  friend class WritableFile;

  // What this file system knows of one file written through it.
  struct FileState {
    uint64_t size = 0;    // bytes written (as counted by the quota)
    uint64_t synced = 0;  // bytes covered by the last successful Sync/Fsync
    bool live = true;     // still under its name (false once deleted or replaced)
  };
  enum class ReadFault { kNone, kError, kCorrupt };
  enum class WriteFault { kNone, kError, kShort, kTorn };

  // Decisions and bookkeeping used by the file wrappers.
  // kCorrupt comes with the offset of the byte to flip in *flip_at (< size).
  ReadFault DrawReadFault(FileKind kind, size_t size, size_t* flip_at);
  WriteFault DrawWriteFault(FileKind kind);
  bool DrawSyncFault(FileKind kind);
  bool DrawDeleteFault(FileKind kind);
  size_t DrawPrefix(size_t size);  // length of a short write's prefix, < size
  // Applies a drawn read fault to a read that returned `s` (both reader kinds use it).
  static rocksdb::IOStatus ApplyReadFault(FaultInjectionFileSystem* fs, FileKind kind,
                                          rocksdb::IOStatus s, rocksdb::Slice* result,
                                          char* scratch);
  // Reserves `bytes` more of the quota for `state` (NoSpace when over; IOError when inactive).
  rocksdb::IOStatus ReserveWrite(const std::shared_ptr<FileState>& state, uint64_t bytes);
  // The file grows to at least `end` (after a write of `reserved` reserved bytes); returns the
  // unused part of the reservation to the quota.
  void CommitWrite(const std::shared_ptr<FileState>& state, uint64_t end, uint64_t reserved);
  uint64_t SizeOf(const std::shared_ptr<FileState>& state) const;
  void MarkSynced(const std::shared_ptr<FileState>& state);
  void SetSize(const std::shared_ptr<FileState>& state, uint64_t size);
  rocksdb::IOStatus CheckActive();
  // Registers `fname` as a fresh file of `size` bytes (replacing any earlier state).
  std::shared_ptr<FileState> Track(const std::string& fname, uint64_t size);
  void Forget(const std::string& fname) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  rocksdb::IOStatus WrapWritable(const std::string& fname, const rocksdb::FileOptions& options,
                                 uint64_t initial_size,
                                 std::unique_ptr<rocksdb::FSWritableFile>* result);

  mutable absl::Mutex mu_;
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_);
  ReadFaults read_faults_ ABSL_GUARDED_BY(mu_);
  WriteFaults write_faults_ ABSL_GUARDED_BY(mu_);
  std::optional<uint64_t> quota_ ABSL_GUARDED_BY(mu_);
  uint64_t used_ ABSL_GUARDED_BY(mu_) = 0;  // sizes of live files plus write reservations
  bool active_ ABSL_GUARDED_BY(mu_) = true;
  FaultCounters counters_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::shared_ptr<FileState>> files_ ABSL_GUARDED_BY(mu_);
};

}  // namespace strata::cachenode
