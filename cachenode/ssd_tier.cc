#include "cachenode/ssd_tier.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/fail_point.h"
#include "common/status_macros.h"
#include "common/work_pool.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/file_system.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/listener.h"
#include "rocksdb/options.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"

namespace strata::cachenode {
namespace {

constexpr char kMetaFamily[] = "meta";

// Meta record, version 1: version byte, size u64 LE, checksum u64 LE, chain_position u32 LE.
// A new layout gets a new version byte; records of an unknown version are skipped as malformed.
constexpr uint8_t kMetaVersion = 1;
constexpr size_t kMetaRecordBytes = 1 + 8 + 8 + 4;

// Values at least this large go to blob files. KV blocks are MiBs, so in practice every payload
// does; only tiny test payloads stay inline in SSTs.
constexpr uint64_t kMinBlobBytes = 4 << 10;
// Meta records are 21 bytes (61 with the key): a small memtable holds tens of thousands. With
// atomic flush it is flushed together with the payload memtable anyway.
constexpr uint64_t kMetaWriteBufferBytes = 4 << 20;
// Bytes a WriteBatch record adds around a key and value (type, column family, two varints, key).
constexpr uint64_t kBatchRecordOverhead = 64;

// The one place RocksDB statuses become absl::Status.
absl::Status FromRocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return absl::OkStatus();
  std::string msg = absl::StrCat("ssd tier: ", what, ": ", s.ToString());
  if (s.IsNoSpace()) return absl::ResourceExhaustedError(msg);
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsInvalidArgument()) return absl::InvalidArgumentError(msg);
  if (s.IsNotFound()) return absl::NotFoundError(msg);
  return absl::InternalError(msg);
}

void PutLittleEndian(uint64_t v, int bytes, std::string* out) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t GetLittleEndian(std::string_view in, size_t pos, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(in[pos + i]);
  return v;
}

std::string EncodeMeta(const BlockInfo& info) {
  std::string out;
  out.reserve(kMetaRecordBytes);
  out.push_back(static_cast<char>(kMetaVersion));
  PutLittleEndian(info.size, 8, &out);
  PutLittleEndian(info.checksum, 8, &out);
  PutLittleEndian(info.chain_position, 4, &out);
  return out;
}

std::optional<BlockInfo> DecodeMeta(std::string_view key, std::string_view value) {
  if (value.size() != kMetaRecordBytes || static_cast<uint8_t>(value[0]) != kMetaVersion) {
    return std::nullopt;
  }
  absl::StatusOr<BlockKey> decoded = BlockKey::Decode(key);
  if (!decoded.ok()) return std::nullopt;
  BlockInfo info;
  info.key = *decoded;
  info.size = GetLittleEndian(value, 1, 8);
  info.checksum = GetLittleEndian(value, 9, 8);
  info.chain_position = static_cast<uint32_t>(GetLittleEndian(value, 17, 4));
  return info;
}

// A failed read of a payload: the file system's I/O errors are Unavailable (a miss now; the block
// may read fine later, so the store keeps it), corruption RocksDB detects is DataLoss.
absl::Status FromRocksRead(const rocksdb::Status& s, const std::string& what) {
  if (s.IsIOError() && !s.IsNoSpace()) {
    return absl::UnavailableError(absl::StrCat("ssd tier: ", what, ": ", s.ToString()));
  }
  return FromRocks(s, what);
}

// RocksDB would otherwise recover from a full disk by itself, from a thread that polls free space
// on its own schedule; the tier resumes from its writes instead (Impl::MaybeResume), on the
// injected clock, so recovery is deterministic in tests and happens when there is work to write.
class NoAutoRecovery final : public rocksdb::EventListener {
 public:
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason /*reason*/,
                            rocksdb::Status /*bg_error*/, bool* auto_recovery) override {
    *auto_recovery = false;
  }
};

rocksdb::Slice ToSlice(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// Creates the directory and proves it writable with a real file: tests and the service run as root,
// for whom mode bits (and access(2)) say nothing, and a read-only mount only shows on create.
absl::Status PrepareDirectory(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec || !std::filesystem::is_directory(path, ec)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "ssd tier: cannot create directory '", path, "': ", ec ? ec.message() : "not a directory"));
  }
  const std::string probe = path + "/.strata-write-probe";
  int fd = ::open(probe.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("ssd tier: directory '", path, "' is not writable: ", std::strerror(errno)));
  }
  ::close(fd);
  ::unlink(probe.c_str());
  return absl::OkStatus();
}

// False when the filesystem under `path` refuses O_DIRECT (EINVAL on open, e.g. older tmpfs).
bool FilesystemAllowsDirectIo(const std::string& path) {
  const std::string probe = path + "/.strata-direct-probe";
  int fd = ::open(probe.c_str(), O_CREAT | O_WRONLY | O_DIRECT | O_CLOEXEC, 0600);
  if (fd < 0) return errno != EINVAL;
  ::close(fd);
  ::unlink(probe.c_str());
  return true;
}

// Owns one value read from RocksDB for as long as handles point into it.
struct ReadValue {
  rocksdb::PinnableSlice slice;
  std::string copy;  // small values copied out of RocksDB-owned memory (see MakeHandle)
};

struct IndexEntry {
  uint64_t size = 0;
  uint64_t checksum = 0;
  uint32_t chain_position = 0;
};

rocksdb::ColumnFamilyOptions FamilyOptions(const std::shared_ptr<rocksdb::TableFactory>& table,
                                           uint64_t write_buffer_bytes, int write_buffers) {
  rocksdb::ColumnFamilyOptions cf;
  cf.write_buffer_size = write_buffer_bytes;  // memtable memory and the unit written per flush
  cf.max_write_buffer_number = write_buffers;  // see SsdTierOptions::max_write_buffers
  cf.compression = rocksdb::kNoCompression;  // KV tensors barely compress; keys are hashes
  cf.table_factory = table;
  return cf;
}

}  // namespace

struct SsdTier::Impl {
  SsdTierOptions options;
  bool direct_io = false;
  // The Env over options.file_system (null: the default Env); outlives db (Close runs first).
  std::unique_ptr<rocksdb::Env> env;
  rocksdb::DB* db = nullptr;
  rocksdb::ColumnFamilyHandle* payload_cf = nullptr;  // "default"
  rocksdb::ColumnFamilyHandle* meta_cf = nullptr;     // "meta"
  rocksdb::WriteOptions write_options;
  rocksdb::ReadOptions read_options;

  // Serializes mutations, so RocksDB and the index apply them in the same order and a capacity
  // check and its commit are one step. Readers never take it. Lock order: write_mu, then mu.
  // Readers take metadata from the index, then the payload from RocksDB: a read racing a
  // replacement of the same key may pair new bytes with old metadata. Keys are content hashes, so
  // that is the same bytes; otherwise the store's checksum check turns it into a miss, never wrong
  // data.
  absl::Mutex write_mu;
  mutable absl::Mutex mu;
  absl::flat_hash_map<BlockKey, IndexEntry> index ABSL_GUARDED_BY(mu);
  uint64_t used_bytes ABSL_GUARDED_BY(mu) = 0;
  // Runs the groups of a ReadBatch in parallel (read_threads - 1 workers plus the caller).
  std::unique_ptr<common::WorkPool> readers;

  // Resume after a write error: at most once per options.resume_interval.
  absl::Mutex resume_mu;
  std::optional<absl::Time> last_resume ABSL_GUARDED_BY(resume_mu);
  uint64_t resume_attempts ABSL_GUARDED_BY(resume_mu) = 0;
  uint64_t resumes ABSL_GUARDED_BY(resume_mu) = 0;
  // What the last write or flush that reached RocksDB gave (SsdTier::writes_stopped).
  std::atomic<uint64_t> write_errors{0};
  std::atomic<bool> writes_stopped{false};

  // Records the final status of a write or flush (after any resume): an error RocksDB returned
  // stops writes until one succeeds. Misuse (InvalidArgument) says nothing about the disk.
  void NoteWrite(const rocksdb::Status& s) {
    if (s.ok()) {
      writes_stopped.store(false, std::memory_order_relaxed);
    } else if (!s.IsInvalidArgument() && !s.IsNotFound()) {
      write_errors.fetch_add(1, std::memory_order_relaxed);
      writes_stopped.store(true, std::memory_order_relaxed);
    }
  }

  ~Impl() { Close(); }

  // Called after a write or flush failed with `s`. RocksDB stops taking writes after a background
  // error (a flush that found the disk full); once per resume_interval this asks it to resume
  // (re-flushing what it holds). True when it did, so the caller retries once.
  bool MaybeResume(const rocksdb::Status& s) {
    if (s.ok() || s.IsInvalidArgument() || s.IsNotFound()) return false;
    const absl::Time now = options.clock->Now();
    {
      absl::MutexLock lock(&resume_mu);
      if (last_resume.has_value() && now - *last_resume < options.resume_interval) return false;
      last_resume = now;
      ++resume_attempts;
    }
    const rocksdb::Status resumed = db->Resume();
    if (!resumed.ok()) {
      // At most once per resume_interval, so a full disk logs a line a second at worst.
      std::fprintf(stderr, "ssd tier: %s: writes stay stopped: %s\n", options.path.c_str(),
                   resumed.ToString().c_str());
      return false;
    }
    absl::MutexLock lock(&resume_mu);
    ++resumes;
    return true;
  }

  rocksdb::Status OpenDb(bool direct) {
    rocksdb::DBOptions db_options;
    db_options.create_if_missing = true;
    db_options.create_missing_column_families = true;
    // Payloads are read once per hit and far larger than the page cache should hold.
    db_options.use_direct_reads = direct;
    db_options.use_direct_io_for_flush_and_compaction = direct;
    // Without a WAL only a flush persists data: flush both families as one unit, so a crash never
    // leaves a meta record whose payload was not flushed (or the reverse).
    db_options.atomic_flush = true;
    // A clean close persists memtables (the destructor also flushes explicitly).
    db_options.avoid_flush_during_shutdown = false;
    db_options.keep_log_file_num = 5;  // a new LOG per Open; do not keep a thousand of them
    db_options.max_background_flushes = options.flush_threads;
    // Compaction only moves keys and blob references (values live in blob files), so one thread
    // keeps up; blob garbage collection rides on it.
    db_options.max_background_compactions = 1;
    db_options.writable_file_max_buffer_size = options.write_io_bytes;
    if (env != nullptr) db_options.env = env.get();
    db_options.listeners.push_back(std::make_shared<NoAutoRecovery>());

    rocksdb::BlockBasedTableOptions table_options;
    // Bloom filters answer most misses without touching disk; 10 bits/key is ~1% false positives.
    table_options.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    if (options.block_cache_bytes == 0) {
      table_options.no_block_cache = true;
    } else {
      // Only key/index/filter blocks are cached: blob payloads never enter it, so it stays small.
      table_options.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
    }
    std::shared_ptr<rocksdb::TableFactory> table(rocksdb::NewBlockBasedTableFactory(table_options));

    rocksdb::ColumnFamilyOptions payload =
        FamilyOptions(table, options.write_buffer_bytes, options.max_write_buffers);
    payload.enable_blob_files =
        true;  // keys in SSTs, values in blob files: compaction moves keys only
    payload.min_blob_size = kMinBlobBytes;
    payload.blob_file_size =
        options.blob_file_bytes;  // large files: fewer files, sequential writes
    payload.blob_compression_type = rocksdb::kNoCompression;  // same reason as SSTs
    payload.enable_blob_garbage_collection = true;  // reclaim space of erased/replaced payloads
    rocksdb::ColumnFamilyOptions meta =
        FamilyOptions(table, kMetaWriteBufferBytes, options.max_write_buffers);

    std::vector<rocksdb::ColumnFamilyDescriptor> families = {
        {rocksdb::kDefaultColumnFamilyName, payload}, {kMetaFamily, meta}};
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::Status s = rocksdb::DB::Open(db_options, options.path, families, &handles, &db);
    if (!s.ok()) return s;
    payload_cf = handles[0];
    meta_cf = handles[1];
    direct_io = direct;
    return s;
  }

  void Close() {
    if (db == nullptr) return;
    // A clean close must not lose blocks: without a WAL the memtables exist nowhere else.
    rocksdb::FlushOptions flush_options;
    flush_options.wait = true;
    rocksdb::Status s = db->Flush(flush_options, {payload_cf, meta_cf});
    if (!s.ok())
      std::fprintf(stderr, "ssd tier: flush on close failed: %s\n", s.ToString().c_str());
    db->DestroyColumnFamilyHandle(payload_cf);
    db->DestroyColumnFamilyHandle(meta_cf);
    s = db->Close();
    if (!s.ok()) std::fprintf(stderr, "ssd tier: close failed: %s\n", s.ToString().c_str());
    delete db;
    db = nullptr;
  }

  // Calls fn for every well-formed meta record in key order; skips the others (collecting their
  // keys in `malformed` when given). Open drops them, so later scans find none.
  absl::Status ScanMeta(const std::function<void(const BlockInfo&)>& fn,
                        std::vector<std::string>* malformed) const {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), meta_cf));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      std::optional<BlockInfo> info =
          DecodeMeta(it->key().ToStringView(), it->value().ToStringView());
      if (info.has_value()) {
        fn(*info);
      } else if (malformed != nullptr) {
        malformed->push_back(it->key().ToString());
      }
    }
    return FromRocks(it->status(), "scan meta");
  }

  absl::Status RebuildIndex() {
    std::vector<std::string> malformed;
    absl::MutexLock lock(&mu);
    STRATA_RETURN_IF_ERROR(ScanMeta(
        [&](const BlockInfo& info) ABSL_NO_THREAD_SAFETY_ANALYSIS {
          index[info.key] = {info.size, info.checksum, info.chain_position};
          used_bytes += info.size;
        },
        &malformed));
    if (malformed.empty()) return absl::OkStatus();
    // An unreadable record's payload would hold disk space outside the capacity bound: drop both.
    std::fprintf(stderr, "ssd tier: %s: dropping %zu malformed meta records\n",
                 options.path.c_str(), malformed.size());
    rocksdb::WriteBatch batch;
    for (const std::string& key : malformed) {
      batch.Delete(payload_cf, key);
      batch.Delete(meta_cf, key);
    }
    return FromRocks(db->Write(write_options, &batch), "drop malformed records");
  }

  std::optional<IndexEntry> Lookup(const BlockKey& key) const {
    absl::ReaderMutexLock lock(&mu);
    auto it = index.find(key);
    if (it == index.end()) return std::nullopt;
    return it->second;
  }

  // Turns one Get/MultiGet result into a handle that owns `value`. A handle may outlive the tier,
  // so it must not pin memory that dies with the DB. Values below kMinBlobBytes live inline in SSTs
  // and may come pinned in the block cache: those few bytes are copied. Larger ones come from blob
  // files into a heap buffer of their own (no blob cache is configured), so that pin is kept: no
  // copy of MiBs. The ASan test HandleStaysValidAfterEraseOfItsKeyAndAfterTheTierCloses guards both
  // cases.
  static absl::StatusOr<BlockHandle> MakeHandle(const BlockKey& key, const IndexEntry& entry,
                                                const rocksdb::Status& s,
                                                std::shared_ptr<ReadValue> value) {
    // NotFound here means the block was erased after the index lookup: an ordinary miss.
    if (!s.ok()) return FromRocksRead(s, absl::StrCat("read ", key.DebugString()));
    rocksdb::PinnableSlice& slice = value->slice;
    if (slice.size() != entry.size) {
      return absl::DataLossError(absl::StrCat("ssd tier: ", key.DebugString(), " holds ",
                                              slice.size(), " bytes, index says ", entry.size));
    }
    std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(slice.data()),
                                     slice.size());
    if (slice.IsPinned() && slice.size() < kMinBlobBytes) {
      value->copy.assign(slice.data(), slice.size());
      slice.Reset();
      bytes = {reinterpret_cast<const std::byte*>(value->copy.data()), value->copy.size()};
    }
    BlockInfo info{key, entry.size, entry.checksum, entry.chain_position};
    return BlockHandle(std::move(info), bytes, std::move(value));
  }
};

absl::Status SsdTierOptions::Validate() const {
  if (path.empty()) return absl::InvalidArgumentError("ssd tier: empty path");
  if (write_buffer_bytes < (1ull << 20))
    return absl::InvalidArgumentError("ssd tier: write_buffer_bytes must be at least 1 MiB");
  if (max_write_buffers < 2)
    return absl::InvalidArgumentError("ssd tier: max_write_buffers must be at least 2");
  if (flush_threads < 1 || flush_threads > 16)
    return absl::InvalidArgumentError("ssd tier: flush_threads must be 1-16");
  if (write_io_bytes < 4096 || write_io_bytes % 4096 != 0)
    return absl::InvalidArgumentError("ssd tier: write_io_bytes must be a multiple of 4 KiB");
  if (read_threads < 1 || read_threads > 64)
    return absl::InvalidArgumentError("ssd tier: read_threads must be 1-64");
  if (resume_interval < absl::ZeroDuration())
    return absl::InvalidArgumentError("ssd tier: resume_interval must be >= 0");
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<SsdTier>> SsdTier::Open(const SsdTierOptions& options) {
  STRATA_RETURN_IF_ERROR(options.Validate());
  STRATA_RETURN_IF_ERROR(PrepareDirectory(options.path));
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  if (impl->options.clock == nullptr) impl->options.clock = common::Clock::Real();
  if (options.file_system != nullptr) impl->env = rocksdb::NewCompositeEnv(options.file_system);
  impl->readers = std::make_unique<common::WorkPool>(static_cast<size_t>(options.read_threads - 1));
  impl->write_options.disableWAL = true;  // payloads would be written twice; Flush() is durability
  impl->read_options.readahead_size = 0;  // random multi-MB reads: readahead would only waste I/O
  impl->read_options.adaptive_readahead = false;
  // Payload reads skip RocksDB's CRC32c: the store verifies every payload's xxh3 anyway (a mismatch
  // is a miss, never data), and Debian's portable RocksDB build computes CRC32c in software at
  // about 1 GB/s, which measured as the largest cost of an SSD hit (bench/RESULTS.md). Metadata
  // scans keep their checksums (they use default ReadOptions).
  impl->read_options.verify_checksums = false;

  rocksdb::Status s = impl->OpenDb(options.use_direct_io);
  if (!s.ok() && options.use_direct_io && !FilesystemAllowsDirectIo(options.path)) {
    std::fprintf(stderr, "ssd tier: %s refuses O_DIRECT; falling back to buffered I/O\n",
                 options.path.c_str());
    s = impl->OpenDb(false);
  }
  STRATA_RETURN_IF_ERROR(FromRocks(s, absl::StrCat("open ", options.path)));
  STRATA_RETURN_IF_ERROR(impl->RebuildIndex());
  return std::unique_ptr<SsdTier>(new SsdTier(std::move(impl)));
}

SsdTier::SsdTier(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SsdTier::~SsdTier() = default;

TierUsage SsdTier::Usage() const {
  absl::ReaderMutexLock lock(&impl_->mu);
  return {impl_->options.capacity_bytes, impl_->used_bytes, impl_->index.size()};
}

uint64_t SsdTier::ChargeFor(uint64_t size) const {
  return size <= impl_->options.capacity_bytes ? size : 0;
}

absl::Status SsdTier::Put(const BlockInfo& info, std::span<const std::byte> payload) {
  return PutBatch({&info, 1}, {&payload, 1})[0];
}

std::vector<absl::Status> SsdTier::PutBatch(std::span<const BlockInfo> infos,
                                            std::span<const std::span<const std::byte>> payloads) {
  std::vector<absl::Status> out(infos.size());
  if (payloads.size() != infos.size()) {
    for (absl::Status& s : out) s = absl::InvalidArgumentError("ssd tier: infos/payloads mismatch");
    return out;
  }
  if (absl::Status injected = STRATA_FAIL_POINT("ssd.put"); !injected.ok()) {
    for (absl::Status& s : out) s = injected;
    return out;
  }
  const uint64_t capacity = impl_->options.capacity_bytes;
  absl::MutexLock write_lock(&impl_->write_mu);
  // What this batch does to the index, applied only once RocksDB has taken the batch. A key
  // repeated in the batch: the last one wins, as in the batch itself.
  absl::flat_hash_map<BlockKey, IndexEntry> staged;
  std::vector<size_t> accepted;
  // Sized up front: a batch grows by doubling otherwise, copying (and faulting in) every payload
  // once more per doubling.
  uint64_t reserve = 64;
  for (const auto& p : payloads) reserve += p.size() + 2 * kBatchRecordOverhead;
  rocksdb::WriteBatch batch(static_cast<size_t>(reserve));
  {
    absl::ReaderMutexLock lock(&impl_->mu);
    uint64_t used = impl_->used_bytes;
    for (size_t i = 0; i < infos.size(); ++i) {
      const BlockInfo& info = infos[i];
      if (payloads[i].size() != info.size) {
        out[i] = absl::InvalidArgumentError(absl::StrCat(
            "ssd tier: payload of ", payloads[i].size(), " bytes, info says ", info.size));
        continue;
      }
      uint64_t replaced = 0;  // bytes freed by replacing a block with the same key
      if (auto it = staged.find(info.key); it != staged.end()) {
        replaced = it->second.size;
      } else if (auto jt = impl_->index.find(info.key); jt != impl_->index.end()) {
        replaced = jt->second.size;
      }
      // used - replaced + size <= capacity, written so nothing overflows.
      if (capacity == 0 || info.size > capacity || used - replaced > capacity - info.size) {
        out[i] = absl::ResourceExhaustedError(absl::StrCat(
            "ssd tier: no room for ", info.size, " bytes (", used, " of ", capacity, " used)"));
        continue;
      }
      used = used - replaced + info.size;
      staged[info.key] = {info.size, info.checksum, info.chain_position};
      const std::string key = info.key.Encode();
      batch.Put(impl_->payload_cf, key, ToSlice(payloads[i]));
      batch.Put(impl_->meta_cf, key, EncodeMeta(info));
      accepted.push_back(i);
    }
  }
  if (accepted.empty()) return out;
  rocksdb::Status write = impl_->db->Write(impl_->write_options, &batch);
  if (impl_->MaybeResume(write)) write = impl_->db->Write(impl_->write_options, &batch);
  impl_->NoteWrite(write);
  absl::Status written = FromRocks(write, "write");
  if (!written.ok()) {
    for (size_t i : accepted) out[i] = written;
    return out;
  }
  absl::MutexLock lock(&impl_->mu);
  for (const auto& [key, entry] : staged) {
    auto [it, inserted] = impl_->index.try_emplace(key, entry);
    if (!inserted) {
      impl_->used_bytes -= it->second.size;
      it->second = entry;
    }
    impl_->used_bytes += entry.size;
  }
  return out;
}

absl::StatusOr<BlockHandle> SsdTier::Read(const BlockKey& key) {
  std::optional<IndexEntry> entry = impl_->Lookup(key);
  if (!entry.has_value()) return absl::NotFoundError(absl::StrCat("ssd tier: ", key.DebugString()));
  STRATA_RETURN_IF_ERROR(STRATA_FAIL_POINT("ssd.read"));
  auto value = std::make_shared<ReadValue>();
  rocksdb::Status s =
      impl_->db->Get(impl_->read_options, impl_->payload_cf, key.Encode(), &value->slice);
  return Impl::MakeHandle(key, *entry, s, std::move(value));
}

std::vector<absl::StatusOr<BlockHandle>> SsdTier::ReadBatch(std::span<const BlockKey> keys) {
  // Misses are answered by the index; the hits go to RocksDB in one MultiGet.
  std::vector<std::optional<IndexEntry>> entries(keys.size());
  {
    absl::ReaderMutexLock lock(&impl_->mu);
    for (size_t i = 0; i < keys.size(); ++i) {
      if (auto it = impl_->index.find(keys[i]); it != impl_->index.end()) entries[i] = it->second;
    }
  }
  std::vector<std::string> encoded;
  std::vector<rocksdb::Slice> slices;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (entries[i].has_value()) encoded.push_back(keys[i].Encode());
  }
  for (const std::string& k : encoded) slices.emplace_back(k);
  std::vector<rocksdb::PinnableSlice> values(encoded.size());
  std::vector<rocksdb::Status> statuses(encoded.size());
  // MultiGet reads its blobs one after another, so the hits are cut into up to read_threads
  // contiguous groups, each one MultiGet, run in parallel.
  const size_t groups =
      std::min<size_t>(encoded.size(), static_cast<size_t>(impl_->options.read_threads));
  impl_->readers->ParallelFor(groups, [&](size_t g) {
    const size_t begin = encoded.size() * g / groups;
    const size_t end = encoded.size() * (g + 1) / groups;
    impl_->db->MultiGet(impl_->read_options, impl_->payload_cf, end - begin, slices.data() + begin,
                        values.data() + begin, statuses.data() + begin);
  });
  std::vector<absl::StatusOr<BlockHandle>> out;
  out.reserve(keys.size());
  size_t hit = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (!entries[i].has_value()) {
      out.push_back(absl::NotFoundError(absl::StrCat("ssd tier: ", keys[i].DebugString())));
      continue;
    }
    // Moving a PinnableSlice moves its pin or its string buffer, never the bytes.
    auto value = std::make_shared<ReadValue>();
    value->slice = std::move(values[hit]);
    ++hit;
    if (absl::Status injected = STRATA_FAIL_POINT("ssd.read"); !injected.ok()) {
      out.push_back(injected);
      continue;
    }
    out.push_back(Impl::MakeHandle(keys[i], *entries[i], statuses[hit - 1], std::move(value)));
  }
  return out;
}

absl::Status SsdTier::Erase(const BlockKey& key) {
  absl::MutexLock write_lock(&impl_->write_mu);
  if (!impl_->Lookup(key).has_value()) {
    return absl::NotFoundError(absl::StrCat("ssd tier: ", key.DebugString()));
  }
  const std::string encoded = key.Encode();
  rocksdb::WriteBatch batch;
  batch.Delete(impl_->payload_cf, encoded);
  batch.Delete(impl_->meta_cf, encoded);
  const rocksdb::Status erased = impl_->db->Write(impl_->write_options, &batch);
  impl_->NoteWrite(erased);
  STRATA_RETURN_IF_ERROR(FromRocks(erased, "erase"));
  absl::MutexLock lock(&impl_->mu);
  auto it = impl_->index.find(key);
  impl_->used_bytes -= it->second.size;
  impl_->index.erase(it);
  return absl::OkStatus();
}

bool SsdTier::Contains(const BlockKey& key) const { return impl_->Lookup(key).has_value(); }

absl::Status SsdTier::ForEachBlock(const std::function<void(const BlockInfo&)>& fn) const {
  return impl_->ScanMeta(fn, nullptr);
}

absl::Status SsdTier::Flush() {
  // The durability point: with the WAL off, data is safe from a crash only once the memtables are
  // in blob/SST files and the MANIFEST names them. Atomic flush writes both families as one unit.
  STRATA_RETURN_IF_ERROR(STRATA_FAIL_POINT("ssd.flush"));
  rocksdb::FlushOptions flush_options;
  flush_options.wait = true;
  const std::vector<rocksdb::ColumnFamilyHandle*> families = {impl_->payload_cf, impl_->meta_cf};
  rocksdb::Status s = impl_->db->Flush(flush_options, families);
  if (impl_->MaybeResume(s)) s = impl_->db->Flush(flush_options, families);
  impl_->NoteWrite(s);
  return FromRocks(s, "flush");
}

bool SsdTier::direct_io() const { return impl_->direct_io; }

uint64_t SsdTier::write_errors() const {
  return impl_->write_errors.load(std::memory_order_relaxed);
}

bool SsdTier::writes_stopped() const {
  return impl_->writes_stopped.load(std::memory_order_relaxed);
}

uint64_t SsdTier::resume_attempts() const {
  absl::MutexLock lock(&impl_->resume_mu);
  return impl_->resume_attempts;
}

uint64_t SsdTier::resumes() const {
  absl::MutexLock lock(&impl_->resume_mu);
  return impl_->resumes;
}

}  // namespace strata::cachenode
