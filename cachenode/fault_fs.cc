#include "cachenode/fault_fs.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace strata::cachenode {
namespace {

using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;
using rocksdb::Slice;

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

int KindIndex(FileKind kind) { return __builtin_ctz(static_cast<uint32_t>(kind)); }

}  // namespace

FileKind FileKindOf(std::string_view path) {
  const size_t slash = path.rfind('/');
  const std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  if (EndsWith(name, ".sst")) return kSstFile;
  if (EndsWith(name, ".blob")) return kBlobFile;
  if (EndsWith(name, ".log")) return kWalFile;
  if (name.rfind("MANIFEST-", 0) == 0) return kManifestFile;
  if (name.rfind("OPTIONS-", 0) == 0) return kOptionsFile;
  return kOtherFile;
}

std::string_view FileKindName(FileKind kind) {
  switch (kind) {
    case kSstFile:
      return "sst";
    case kBlobFile:
      return "blob";
    case kWalFile:
      return "wal";
    case kManifestFile:
      return "manifest";
    case kOptionsFile:
      return "options";
    case kOtherFile:
      return "other";
  }
  return "other";
}

class FaultInjectionFileSystem::SequentialFile final
    : public rocksdb::FSSequentialFileOwnerWrapper {
 public:
  SequentialFile(FaultInjectionFileSystem* fs, FileKind kind,
                 std::unique_ptr<rocksdb::FSSequentialFile> target)
      : FSSequentialFileOwnerWrapper(std::move(target)), fs_(fs), kind_(kind) {}

  IOStatus Read(size_t n, const IOOptions& options, Slice* result, char* scratch,
                IODebugContext* dbg) override {
    IOStatus s = target()->Read(n, options, result, scratch, dbg);
    return ApplyReadFault(fs_, kind_, std::move(s), result, scratch);
  }
  IOStatus PositionedRead(uint64_t offset, size_t n, const IOOptions& options, Slice* result,
                          char* scratch, IODebugContext* dbg) override {
    IOStatus s = target()->PositionedRead(offset, n, options, result, scratch, dbg);
    return ApplyReadFault(fs_, kind_, std::move(s), result, scratch);
  }

 private:
  FaultInjectionFileSystem* const fs_;
  const FileKind kind_;
};

class FaultInjectionFileSystem::RandomAccessFile final
    : public rocksdb::FSRandomAccessFileOwnerWrapper {
 public:
  RandomAccessFile(FaultInjectionFileSystem* fs, FileKind kind,
                   std::unique_ptr<rocksdb::FSRandomAccessFile> target)
      : FSRandomAccessFileOwnerWrapper(std::move(target)), fs_(fs), kind_(kind) {}

  IOStatus Read(uint64_t offset, size_t n, const IOOptions& options, Slice* result, char* scratch,
                IODebugContext* dbg) const override {
    IOStatus s = target()->Read(offset, n, options, result, scratch, dbg);
    return ApplyReadFault(fs_, kind_, std::move(s), result, scratch);
  }
  // One Read per request, so every request can fault on its own (the wrapped MultiRead would
  // bypass the injection).
  IOStatus MultiRead(rocksdb::FSReadRequest* reqs, size_t num_reqs, const IOOptions& options,
                     IODebugContext* dbg) override {
    for (size_t i = 0; i < num_reqs; ++i) {
      reqs[i].status = Read(reqs[i].offset, reqs[i].len, options, &reqs[i].result,
                            reqs[i].scratch, dbg);
    }
    return IOStatus::OK();
  }
  // Synchronous, through Read, for the same reason.
  IOStatus ReadAsync(rocksdb::FSReadRequest& req, const IOOptions& options,
                     std::function<void(const rocksdb::FSReadRequest&, void*)> cb, void* cb_arg,
                     void** /*io_handle*/, rocksdb::IOHandleDeleter* /*del_fn*/,
                     IODebugContext* dbg) override {
    req.status = Read(req.offset, req.len, options, &req.result, req.scratch, dbg);
    cb(req, cb_arg);
    return IOStatus::OK();
  }

 private:
  FaultInjectionFileSystem* const fs_;
  const FileKind kind_;
};

class FaultInjectionFileSystem::WritableFile final
    : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  WritableFile(FaultInjectionFileSystem* fs, FileKind kind, std::shared_ptr<FileState> state,
               std::unique_ptr<rocksdb::FSWritableFile> target)
      : FSWritableFileOwnerWrapper(std::move(target)),
        fs_(fs),
        kind_(kind),
        state_(std::move(state)) {}

  IOStatus Append(const Slice& data, const IOOptions& options, IODebugContext* dbg) override {
    return DoWrite(data, std::nullopt,
                   [&](const Slice& d) { return target()->Append(d, options, dbg); });
  }
  IOStatus Append(const Slice& data, const IOOptions& options,
                  const rocksdb::DataVerificationInfo& info, IODebugContext* dbg) override {
    return DoWrite(data, std::nullopt,
                   [&](const Slice& d) { return target()->Append(d, options, info, dbg); });
  }
  IOStatus PositionedAppend(const Slice& data, uint64_t offset, const IOOptions& options,
                            IODebugContext* dbg) override {
    return DoWrite(data, offset, [&](const Slice& d) {
      return target()->PositionedAppend(d, offset, options, dbg);
    });
  }
  IOStatus PositionedAppend(const Slice& data, uint64_t offset, const IOOptions& options,
                            const rocksdb::DataVerificationInfo& info,
                            IODebugContext* dbg) override {
    return DoWrite(data, offset, [&](const Slice& d) {
      return target()->PositionedAppend(d, offset, options, info, dbg);
    });
  }
  IOStatus Truncate(uint64_t size, const IOOptions& options, IODebugContext* dbg) override {
    if (IOStatus s = fs_->CheckActive(); !s.ok()) return s;
    IOStatus s = target()->Truncate(size, options, dbg);
    if (s.ok()) fs_->SetSize(state_, size);
    return s;
  }
  IOStatus Sync(const IOOptions& options, IODebugContext* dbg) override {
    return DoSync([&] { return target()->Sync(options, dbg); });
  }
  IOStatus Fsync(const IOOptions& options, IODebugContext* dbg) override {
    return DoSync([&] { return target()->Fsync(options, dbg); });
  }
  IOStatus Flush(const IOOptions& options, IODebugContext* dbg) override {
    if (IOStatus s = fs_->CheckActive(); !s.ok()) return s;
    return target()->Flush(options, dbg);
  }
  // A close persists nothing by itself: what the last sync covered stays the synced length.
  IOStatus Close(const IOOptions& options, IODebugContext* dbg) override {
    if (IOStatus s = fs_->CheckActive(); !s.ok()) return s;
    return target()->Close(options, dbg);
  }

 private:
  template <typename WriteFn>
  IOStatus DoWrite(const Slice& data, std::optional<uint64_t> offset, WriteFn write) {
    if (IOStatus s = fs_->CheckActive(); !s.ok()) return s;
    const WriteFault fault = fs_->DrawWriteFault(kind_);
    if (fault == WriteFault::kError) return IOStatus::IOError("injected write error");
    if (IOStatus s = fs_->ReserveWrite(state_, data.size()); !s.ok()) return s;
    size_t length = data.size();
    if (fault == WriteFault::kShort || fault == WriteFault::kTorn) {
      length = fs_->DrawPrefix(data.size());
      if (offset.has_value()) {
        // Direct I/O writes whole aligned blocks only.
        const size_t align = std::max<size_t>(1, target()->GetRequiredBufferAlignment());
        length -= length % align;
      }
    }
    IOStatus s = length > 0 ? write(Slice(data.data(), length)) : IOStatus::OK();
    const uint64_t start = offset.has_value() ? *offset : fs_->SizeOf(state_);
    fs_->CommitWrite(state_, s.ok() ? start + length : 0, data.size());
    if (!s.ok()) return s;
    if (fault == WriteFault::kShort) return IOStatus::IOError("injected short write");
    return IOStatus::OK();  // kTorn reports success for bytes that were never written
  }

  template <typename SyncFn>
  IOStatus DoSync(SyncFn sync) {
    if (IOStatus s = fs_->CheckActive(); !s.ok()) return s;
    if (fs_->DrawSyncFault(kind_)) return IOStatus::IOError("injected sync error");
    IOStatus s = sync();
    if (s.ok()) fs_->MarkSynced(state_);
    return s;
  }

  FaultInjectionFileSystem* const fs_;
  const FileKind kind_;
  const std::shared_ptr<FileState> state_;
};

IOStatus FaultInjectionFileSystem::ApplyReadFault(FaultInjectionFileSystem* fs, FileKind kind,
                                                  IOStatus s, Slice* result, char* scratch) {
  if (!s.ok()) return s;
  size_t flip_at = 0;
  switch (fs->DrawReadFault(kind, result->size(), &flip_at)) {
    case ReadFault::kNone:
      return s;
    case ReadFault::kError:
      *result = Slice();
      return IOStatus::IOError("injected read error");
    case ReadFault::kCorrupt:
      // The result may point into memory the file owns (mmap): flip a copy in scratch instead.
      if (result->data() != scratch) {
        std::memmove(scratch, result->data(), result->size());
        *result = Slice(scratch, result->size());
      }
      scratch[flip_at] = static_cast<char>(scratch[flip_at] ^ 0x5a);
      return s;
  }
  return s;
}

FaultInjectionFileSystem::FaultInjectionFileSystem(std::shared_ptr<rocksdb::FileSystem> base,
                                                   uint64_t seed)
    : rocksdb::FileSystemWrapper(base != nullptr ? std::move(base)
                                                 : rocksdb::FileSystem::Default()),
      rng_(seed) {}

FaultInjectionFileSystem::~FaultInjectionFileSystem() = default;

void FaultInjectionFileSystem::SetReadFaults(const ReadFaults& faults) {
  absl::MutexLock lock(&mu_);
  read_faults_ = faults;
}

void FaultInjectionFileSystem::SetWriteFaults(const WriteFaults& faults) {
  absl::MutexLock lock(&mu_);
  write_faults_ = faults;
}

void FaultInjectionFileSystem::ClearFaults() {
  absl::MutexLock lock(&mu_);
  read_faults_ = ReadFaults{};
  write_faults_ = WriteFaults{};
}

void FaultInjectionFileSystem::Seed(uint64_t seed) {
  absl::MutexLock lock(&mu_);
  rng_.seed(seed);
}

void FaultInjectionFileSystem::SetQuota(std::optional<uint64_t> bytes) {
  absl::MutexLock lock(&mu_);
  quota_ = bytes;
}

uint64_t FaultInjectionFileSystem::used_bytes() const {
  absl::MutexLock lock(&mu_);
  return used_;
}

void FaultInjectionFileSystem::SetActive(bool active) {
  absl::MutexLock lock(&mu_);
  active_ = active;
}

absl::Status FaultInjectionFileSystem::DropUnsyncedData() {
  absl::MutexLock lock(&mu_);
  for (auto& [name, state] : files_) {
    if (state->size <= state->synced) continue;
    IOStatus s = target_->Truncate(name, state->synced, IOOptions(), nullptr);
    if (s.IsNotSupported()) {
      // RocksDB's POSIX file system has no path-level truncate: local files are truncated here.
      s = ::truncate(name.c_str(), static_cast<off_t>(state->synced)) == 0
              ? IOStatus::OK()
              : IOStatus::IOError(std::strerror(errno));
    }
    if (!s.ok()) {
      return absl::InternalError(absl::StrCat("drop unsynced data of ", name, ": ", s.ToString()));
    }
    counters_.dropped_bytes += state->size - state->synced;
    used_ -= state->size - state->synced;
    state->size = state->synced;
  }
  return absl::OkStatus();
}

FaultCounters FaultInjectionFileSystem::counters() const {
  absl::MutexLock lock(&mu_);
  return counters_;
}

uint64_t FaultInjectionFileSystem::total_faults() const {
  const FaultCounters c = counters();
  return c.read_errors + c.corrupted_reads + c.write_errors + c.sync_errors + c.short_writes +
         c.no_space_errors + c.delete_errors + c.inactive_errors;
}

void FaultInjectionFileSystem::ResetCounters() {
  absl::MutexLock lock(&mu_);
  counters_ = FaultCounters{};
}

namespace {
bool Draw(std::mt19937_64& rng, double p) {
  if (p <= 0) return false;
  if (p >= 1) return true;
  return std::uniform_real_distribution<double>(0, 1)(rng) < p;
}
}  // namespace

FaultInjectionFileSystem::ReadFault FaultInjectionFileSystem::DrawReadFault(FileKind kind,
                                                                            size_t size,
                                                                            size_t* flip_at) {
  absl::MutexLock lock(&mu_);
  if ((read_faults_.kinds & kind) == 0) return ReadFault::kNone;
  if (Draw(rng_, read_faults_.error_probability)) {
    ++counters_.read_errors;
    ++counters_.read_faults_by_kind[KindIndex(kind)];
    return ReadFault::kError;
  }
  if (size > 0 && Draw(rng_, read_faults_.corrupt_probability)) {
    *flip_at = std::uniform_int_distribution<size_t>(0, size - 1)(rng_);
    ++counters_.corrupted_reads;
    ++counters_.read_faults_by_kind[KindIndex(kind)];
    return ReadFault::kCorrupt;
  }
  return ReadFault::kNone;
}

FaultInjectionFileSystem::WriteFault FaultInjectionFileSystem::DrawWriteFault(FileKind kind) {
  absl::MutexLock lock(&mu_);
  if ((write_faults_.kinds & kind) == 0) return WriteFault::kNone;
  if (Draw(rng_, write_faults_.error_probability)) {
    ++counters_.write_errors;
    return WriteFault::kError;
  }
  if (Draw(rng_, write_faults_.short_write_probability)) {
    ++counters_.short_writes;
    if (write_faults_.short_write_mode == ShortWriteMode::kTorn) {
      ++counters_.torn_writes;
      return WriteFault::kTorn;
    }
    return WriteFault::kShort;
  }
  return WriteFault::kNone;
}

bool FaultInjectionFileSystem::DrawSyncFault(FileKind kind) {
  absl::MutexLock lock(&mu_);
  if ((write_faults_.kinds & kind) == 0) return false;
  if (!Draw(rng_, write_faults_.sync_error_probability)) return false;
  ++counters_.sync_errors;
  return true;
}

bool FaultInjectionFileSystem::DrawDeleteFault(FileKind kind) {
  absl::MutexLock lock(&mu_);
  if ((write_faults_.kinds & kind) == 0) return false;
  if (!Draw(rng_, write_faults_.delete_error_probability)) return false;
  ++counters_.delete_errors;
  return true;
}

size_t FaultInjectionFileSystem::DrawPrefix(size_t size) {
  if (size == 0) return 0;
  absl::MutexLock lock(&mu_);
  return std::uniform_int_distribution<size_t>(0, size - 1)(rng_);
}

IOStatus FaultInjectionFileSystem::CheckActive() {
  absl::MutexLock lock(&mu_);
  if (active_) return IOStatus::OK();
  ++counters_.inactive_errors;
  return IOStatus::IOError("file system inactive (simulated crash)");
}

IOStatus FaultInjectionFileSystem::ReserveWrite(const std::shared_ptr<FileState>& state,
                                                uint64_t bytes) {
  absl::MutexLock lock(&mu_);
  if (quota_.has_value() && (used_ > *quota_ || bytes > *quota_ - used_)) {
    ++counters_.no_space_errors;
    return IOStatus::NoSpace(absl::StrCat("injected quota of ", *quota_, " bytes reached (",
                                          used_, " used, ", bytes, " more asked)"));
  }
  used_ += bytes;
  return IOStatus::OK();
}

void FaultInjectionFileSystem::CommitWrite(const std::shared_ptr<FileState>& state, uint64_t end,
                                           uint64_t reserved) {
  absl::MutexLock lock(&mu_);
  used_ -= reserved;
  if (!state->live || end <= state->size) return;
  used_ += end - state->size;
  state->size = end;
}

uint64_t FaultInjectionFileSystem::SizeOf(const std::shared_ptr<FileState>& state) const {
  absl::MutexLock lock(&mu_);
  return state->size;
}

void FaultInjectionFileSystem::MarkSynced(const std::shared_ptr<FileState>& state) {
  absl::MutexLock lock(&mu_);
  state->synced = state->size;
}

void FaultInjectionFileSystem::SetSize(const std::shared_ptr<FileState>& state, uint64_t size) {
  absl::MutexLock lock(&mu_);
  if (state->live) used_ = used_ - state->size + size;
  state->size = size;
  state->synced = std::min(state->synced, size);
}

std::shared_ptr<FaultInjectionFileSystem::FileState> FaultInjectionFileSystem::Track(
    const std::string& fname, uint64_t size) {
  absl::MutexLock lock(&mu_);
  Forget(fname);
  auto state = std::make_shared<FileState>();
  state->size = size;
  state->synced = size;  // what is there already counts as durable
  used_ += size;
  files_[fname] = state;
  return state;
}

void FaultInjectionFileSystem::Forget(const std::string& fname) {
  auto it = files_.find(fname);
  if (it == files_.end()) return;
  it->second->live = false;
  used_ -= it->second->size;
  files_.erase(it);
}

IOStatus FaultInjectionFileSystem::WrapWritable(const std::string& fname,
                                                const rocksdb::FileOptions& options,
                                                uint64_t initial_size,
                                                std::unique_ptr<rocksdb::FSWritableFile>* result) {
  std::shared_ptr<FileState> state;
  {
    absl::MutexLock lock(&mu_);
    auto it = files_.find(fname);
    if (it != files_.end() && it->second->size == initial_size) state = it->second;
  }
  if (state == nullptr) state = Track(fname, initial_size);
  *result = std::make_unique<WritableFile>(this, FileKindOf(fname), std::move(state),
                                           std::move(*result));
  return IOStatus::OK();
}

IOStatus FaultInjectionFileSystem::NewSequentialFile(
    const std::string& fname, const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSSequentialFile>* result, IODebugContext* dbg) {
  IOStatus s = target_->NewSequentialFile(fname, options, result, dbg);
  if (s.ok()) {
    *result = std::make_unique<SequentialFile>(this, FileKindOf(fname), std::move(*result));
  }
  return s;
}

IOStatus FaultInjectionFileSystem::NewRandomAccessFile(
    const std::string& fname, const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSRandomAccessFile>* result, IODebugContext* dbg) {
  IOStatus s = target_->NewRandomAccessFile(fname, options, result, dbg);
  if (s.ok()) {
    *result = std::make_unique<RandomAccessFile>(this, FileKindOf(fname), std::move(*result));
  }
  return s;
}

IOStatus FaultInjectionFileSystem::NewWritableFile(
    const std::string& fname, const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSWritableFile>* result, IODebugContext* dbg) {
  if (IOStatus s = CheckActive(); !s.ok()) return s;
  IOStatus s = target_->NewWritableFile(fname, options, result, dbg);
  if (!s.ok()) return s;
  {
    absl::MutexLock lock(&mu_);
    Forget(fname);  // a new file replaces any old one under the name
  }
  return WrapWritable(fname, options, 0, result);
}

IOStatus FaultInjectionFileSystem::ReopenWritableFile(
    const std::string& fname, const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSWritableFile>* result, IODebugContext* dbg) {
  if (IOStatus s = CheckActive(); !s.ok()) return s;
  IOStatus s = target_->ReopenWritableFile(fname, options, result, dbg);
  if (!s.ok()) return s;
  uint64_t size = 0;
  if (!target_->GetFileSize(fname, IOOptions(), &size, dbg).ok()) size = 0;
  return WrapWritable(fname, options, size, result);
}

IOStatus FaultInjectionFileSystem::ReuseWritableFile(
    const std::string& fname, const std::string& old_fname, const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSWritableFile>* result, IODebugContext* dbg) {
  if (IOStatus s = CheckActive(); !s.ok()) return s;
  IOStatus s = target_->ReuseWritableFile(fname, old_fname, options, result, dbg);
  if (!s.ok()) return s;
  {
    absl::MutexLock lock(&mu_);
    Forget(old_fname);
    Forget(fname);
  }
  return WrapWritable(fname, options, 0, result);
}

IOStatus FaultInjectionFileSystem::NewRandomRWFile(
    const std::string& fname, const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSRandomRWFile>* result, IODebugContext* dbg) {
  // Not used by the SSD tier's RocksDB configuration; refused after a crash, otherwise unfaulted.
  if (IOStatus s = CheckActive(); !s.ok()) return s;
  return target_->NewRandomRWFile(fname, options, result, dbg);
}

IOStatus FaultInjectionFileSystem::DeleteFile(const std::string& fname, const IOOptions& options,
                                              IODebugContext* dbg) {
  if (IOStatus s = CheckActive(); !s.ok()) return s;
  if (DrawDeleteFault(FileKindOf(fname))) return IOStatus::IOError("injected delete error");
  IOStatus s = target_->DeleteFile(fname, options, dbg);
  if (s.ok()) {
    absl::MutexLock lock(&mu_);
    Forget(fname);
  }
  return s;
}

IOStatus FaultInjectionFileSystem::RenameFile(const std::string& src, const std::string& target,
                                              const IOOptions& options, IODebugContext* dbg) {
  if (IOStatus s = CheckActive(); !s.ok()) return s;
  IOStatus s = target_->RenameFile(src, target, options, dbg);
  if (!s.ok()) return s;
  absl::MutexLock lock(&mu_);
  Forget(target);
  auto it = files_.find(src);
  if (it != files_.end()) {
    std::shared_ptr<FileState> state = std::move(it->second);
    files_.erase(it);
    files_[target] = std::move(state);
  }
  return s;
}

IOStatus FaultInjectionFileSystem::LinkFile(const std::string& src, const std::string& target,
                                            const IOOptions& options, IODebugContext* dbg) {
  if (IOStatus s = CheckActive(); !s.ok()) return s;
  return target_->LinkFile(src, target, options, dbg);
}

IOStatus FaultInjectionFileSystem::Truncate(const std::string& fname, size_t size,
                                            const IOOptions& options, IODebugContext* dbg) {
  if (IOStatus s = CheckActive(); !s.ok()) return s;
  IOStatus s = target_->Truncate(fname, size, options, dbg);
  if (!s.ok()) return s;
  std::shared_ptr<FileState> state;
  {
    absl::MutexLock lock(&mu_);
    auto it = files_.find(fname);
    if (it != files_.end()) state = it->second;
  }
  if (state != nullptr) SetSize(state, size);
  return s;
}

IOStatus FaultInjectionFileSystem::GetFreeSpace(const std::string& path, const IOOptions& options,
                                                uint64_t* diskfree, IODebugContext* dbg) {
  IOStatus s = target_->GetFreeSpace(path, options, diskfree, dbg);
  if (!s.ok()) return s;
  absl::MutexLock lock(&mu_);
  if (quota_.has_value()) *diskfree = std::min(*diskfree, *quota_ > used_ ? *quota_ - used_ : 0);
  return s;
}

}  // namespace strata::cachenode
