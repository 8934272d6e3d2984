#include "cachenode/fault_fs.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

#include "gtest/gtest.h"

namespace strata::cachenode {
namespace {

using rocksdb::FileOptions;
using rocksdb::IOOptions;
using rocksdb::IOStatus;
using rocksdb::Slice;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = "/tmp/fault_fs_test.XXXXXX";
    path_ = mkdtemp(tmpl.data());
    EXPECT_FALSE(path_.empty());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string Pattern(size_t n, char seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + i * 7);
  return s;
}

// Writes `data` through the file system (one Append), optionally syncing and closing.
IOStatus WriteFile(rocksdb::FileSystem& fs, const std::string& path, const std::string& data,
                   bool sync = true) {
  std::unique_ptr<rocksdb::FSWritableFile> file;
  IOStatus s = fs.NewWritableFile(path, FileOptions(), &file, nullptr);
  if (!s.ok()) return s;
  s = file->Append(data, IOOptions(), nullptr);
  if (s.ok() && sync) s = file->Sync(IOOptions(), nullptr);
  IOStatus closed = file->Close(IOOptions(), nullptr);
  return s.ok() ? closed : s;
}

// Reads `path` whole through the file system's random-access reader.
IOStatus ReadFile(rocksdb::FileSystem& fs, const std::string& path, std::string* out) {
  std::unique_ptr<rocksdb::FSRandomAccessFile> file;
  IOStatus s = fs.NewRandomAccessFile(path, FileOptions(), &file, nullptr);
  if (!s.ok()) return s;
  uint64_t size = 0;
  s = fs.GetFileSize(path, IOOptions(), &size, nullptr);
  if (!s.ok()) return s;
  std::string scratch(size, '\0');
  Slice result;
  s = file->Read(0, size, IOOptions(), &result, scratch.data(), nullptr);
  if (s.ok()) out->assign(result.data(), result.size());
  return s;
}

TEST(FileKindTest, NamesRocksDbFilesByTheirNames) {
  EXPECT_EQ(FileKindOf("/d/000012.sst"), kSstFile);
  EXPECT_EQ(FileKindOf("/d/000013.blob"), kBlobFile);
  EXPECT_EQ(FileKindOf("/d/000004.log"), kWalFile);
  EXPECT_EQ(FileKindOf("/d/MANIFEST-000005"), kManifestFile);
  EXPECT_EQ(FileKindOf("/d/OPTIONS-000007"), kOptionsFile);
  EXPECT_EQ(FileKindOf("/d/CURRENT"), kOtherFile);
  EXPECT_EQ(FileKindOf("/d/LOG"), kOtherFile);
  EXPECT_EQ(FileKindName(kBlobFile), "blob");
}

TEST(FaultInjectionFileSystemTest, WithoutFaultsReadsAndWritesPassThroughUnchanged) {
  TempDir dir;
  FaultInjectionFileSystem fs;
  const std::string data = Pattern(10000, 3);
  ASSERT_TRUE(WriteFile(fs, dir.File("a.sst"), data).ok());
  std::string back;
  ASSERT_TRUE(ReadFile(fs, dir.File("a.sst"), &back).ok());
  EXPECT_EQ(back, data);
  EXPECT_EQ(fs.total_faults(), 0u);
  EXPECT_EQ(fs.used_bytes(), data.size());
}

TEST(FaultInjectionFileSystemTest, ReadErrorsHitOnlyTheChosenFileKinds) {
  TempDir dir;
  FaultInjectionFileSystem fs;
  ASSERT_TRUE(WriteFile(fs, dir.File("a.sst"), Pattern(4096, 1)).ok());
  ASSERT_TRUE(WriteFile(fs, dir.File("b.blob"), Pattern(4096, 2)).ok());
  fs.SetReadFaults({.error_probability = 1.0, .kinds = kBlobFile});
  std::string out;
  EXPECT_TRUE(ReadFile(fs, dir.File("a.sst"), &out).ok());
  const IOStatus blob = ReadFile(fs, dir.File("b.blob"), &out);
  EXPECT_TRUE(blob.IsIOError()) << blob.ToString();
  const FaultCounters c = fs.counters();
  EXPECT_EQ(c.read_errors, 1u);
  EXPECT_EQ(c.read_faults_by_kind[1], 1u);  // blob
  EXPECT_EQ(c.read_faults_by_kind[0], 0u);  // sst
}

TEST(FaultInjectionFileSystemTest, SequentialReadsFaultToo) {
  TempDir dir;
  FaultInjectionFileSystem fs;
  ASSERT_TRUE(WriteFile(fs, dir.File("MANIFEST-000001"), Pattern(512, 5)).ok());
  fs.SetReadFaults({.error_probability = 1.0, .kinds = kManifestFile});
  std::unique_ptr<rocksdb::FSSequentialFile> file;
  ASSERT_TRUE(
      fs.NewSequentialFile(dir.File("MANIFEST-000001"), FileOptions(), &file, nullptr).ok());
  std::string scratch(512, '\0');
  Slice result;
  EXPECT_TRUE(file->Read(512, IOOptions(), &result, scratch.data(), nullptr).IsIOError());
  EXPECT_EQ(fs.counters().read_errors, 1u);
}

TEST(FaultInjectionFileSystemTest, CorruptReadFlipsExactlyOneByteAndLeavesTheFileIntact) {
  TempDir dir;
  FaultInjectionFileSystem fs(nullptr, /*seed=*/11);
  const std::string data = Pattern(8192, 9);
  ASSERT_TRUE(WriteFile(fs, dir.File("c.blob"), data).ok());
  fs.SetReadFaults({.corrupt_probability = 1.0});
  std::string back;
  ASSERT_TRUE(ReadFile(fs, dir.File("c.blob"), &back).ok());
  ASSERT_EQ(back.size(), data.size());
  int differing = 0;
  for (size_t i = 0; i < data.size(); ++i) differing += back[i] != data[i];
  EXPECT_EQ(differing, 1);
  EXPECT_EQ(fs.counters().corrupted_reads, 1u);
  EXPECT_EQ(ReadWhole(dir.File("c.blob")), data);  // the flip is in the read, not on disk
}

TEST(FaultInjectionFileSystemTest, MultiReadFaultsEachRequestOnItsOwn) {
  TempDir dir;
  FaultInjectionFileSystem fs;
  ASSERT_TRUE(WriteFile(fs, dir.File("d.blob"), Pattern(8192, 4)).ok());
  std::unique_ptr<rocksdb::FSRandomAccessFile> file;
  ASSERT_TRUE(fs.NewRandomAccessFile(dir.File("d.blob"), FileOptions(), &file, nullptr).ok());
  fs.SetReadFaults({.error_probability = 1.0});
  std::string scratch(2 * 4096, '\0');
  rocksdb::FSReadRequest reqs[2];
  for (int i = 0; i < 2; ++i) {
    reqs[i].offset = 4096 * i;
    reqs[i].len = 4096;
    reqs[i].scratch = scratch.data() + 4096 * i;
  }
  ASSERT_TRUE(file->MultiRead(reqs, 2, IOOptions(), nullptr).ok());
  EXPECT_TRUE(reqs[0].status.IsIOError());
  EXPECT_TRUE(reqs[1].status.IsIOError());
  EXPECT_EQ(fs.counters().read_errors, 2u);
}

TEST(FaultInjectionFileSystemTest, WriteErrorWritesNothing) {
  TempDir dir;
  FaultInjectionFileSystem fs;
  fs.SetWriteFaults({.error_probability = 1.0});
  EXPECT_TRUE(WriteFile(fs, dir.File("e.sst"), Pattern(1000, 1)).IsIOError());
  EXPECT_EQ(ReadWhole(dir.File("e.sst")), "");
  EXPECT_EQ(fs.counters().write_errors, 1u);
}

TEST(FaultInjectionFileSystemTest, SyncErrorLeavesTheDataUnsynced) {
  TempDir dir;
  FaultInjectionFileSystem fs;
  fs.SetWriteFaults({.sync_error_probability = 1.0});
  EXPECT_TRUE(WriteFile(fs, dir.File("f.blob"), Pattern(1000, 1)).IsIOError());
  EXPECT_EQ(fs.counters().sync_errors, 1u);
  fs.ClearFaults();
  ASSERT_TRUE(fs.DropUnsyncedData().ok());
  EXPECT_EQ(ReadWhole(dir.File("f.blob")), "");
}

TEST(FaultInjectionFileSystemTest, ShortWriteWritesAPrefixAndFails) {
  TempDir dir;
  FaultInjectionFileSystem fs(nullptr, 3);
  const std::string data = Pattern(5000, 2);
  fs.SetWriteFaults({.short_write_probability = 1.0, .short_write_mode = ShortWriteMode::kFail});
  EXPECT_TRUE(WriteFile(fs, dir.File("g.blob"), data, /*sync=*/false).IsIOError());
  const std::string on_disk = ReadWhole(dir.File("g.blob"));
  EXPECT_LT(on_disk.size(), data.size());
  EXPECT_EQ(on_disk, data.substr(0, on_disk.size()));
  EXPECT_EQ(fs.counters().short_writes, 1u);
  EXPECT_EQ(fs.counters().torn_writes, 0u);
}

TEST(FaultInjectionFileSystemTest, TornWriteReportsSuccessForBytesNeverWritten) {
  TempDir dir;
  FaultInjectionFileSystem fs(nullptr, 5);
  const std::string data = Pattern(5000, 8);
  fs.SetWriteFaults({.short_write_probability = 1.0, .short_write_mode = ShortWriteMode::kTorn});
  EXPECT_TRUE(WriteFile(fs, dir.File("h.blob"), data).ok());
  const std::string on_disk = ReadWhole(dir.File("h.blob"));
  EXPECT_LT(on_disk.size(), data.size());
  EXPECT_EQ(on_disk, data.substr(0, on_disk.size()));
  EXPECT_EQ(fs.counters().torn_writes, 1u);
}

TEST(FaultInjectionFileSystemTest, DropUnsyncedDataTruncatesEveryFileToItsLastSync) {
  TempDir dir;
  FaultInjectionFileSystem fs;
  const std::string synced = Pattern(3000, 1);
  const std::string unsynced = Pattern(2000, 2);
  {
    std::unique_ptr<rocksdb::FSWritableFile> file;
    ASSERT_TRUE(fs.NewWritableFile(dir.File("i.blob"), FileOptions(), &file, nullptr).ok());
    ASSERT_TRUE(file->Append(synced, IOOptions(), nullptr).ok());
    ASSERT_TRUE(file->Sync(IOOptions(), nullptr).ok());
    ASSERT_TRUE(file->Append(unsynced, IOOptions(), nullptr).ok());
    ASSERT_TRUE(file->Close(IOOptions(), nullptr).ok());  // a close is not a sync
  }
  ASSERT_TRUE(WriteFile(fs, dir.File("never-synced.sst"), Pattern(100, 3), /*sync=*/false).ok());
  ASSERT_TRUE(WriteFile(fs, dir.File("all-synced.sst"), Pattern(100, 4), /*sync=*/true).ok());
  EXPECT_EQ(ReadWhole(dir.File("i.blob")), synced + unsynced);

  fs.SetActive(false);  // the crash: nothing more reaches the disk
  EXPECT_TRUE(WriteFile(fs, dir.File("late.sst"), "x").IsIOError());
  ASSERT_TRUE(fs.DropUnsyncedData().ok());
  fs.SetActive(true);
  EXPECT_EQ(ReadWhole(dir.File("i.blob")), synced);
  EXPECT_EQ(ReadWhole(dir.File("never-synced.sst")), "");
  EXPECT_EQ(ReadWhole(dir.File("all-synced.sst")), Pattern(100, 4));
  EXPECT_FALSE(std::filesystem::exists(dir.File("late.sst")));
  EXPECT_EQ(fs.counters().dropped_bytes, unsynced.size() + 100);
  EXPECT_GE(fs.counters().inactive_errors, 1u);
}

TEST(FaultInjectionFileSystemTest, RenameCarriesTheSyncStateAlong) {
  TempDir dir;
  FaultInjectionFileSystem fs;
  ASSERT_TRUE(WriteFile(fs, dir.File("tmp"), Pattern(64, 1), /*sync=*/true).ok());
  ASSERT_TRUE(fs.RenameFile(dir.File("tmp"), dir.File("CURRENT"), IOOptions(), nullptr).ok());
  ASSERT_TRUE(fs.DropUnsyncedData().ok());
  EXPECT_EQ(ReadWhole(dir.File("CURRENT")), Pattern(64, 1));
  EXPECT_EQ(fs.used_bytes(), 64u);
}

TEST(FaultInjectionFileSystemTest, QuotaRefusesWritesPastItWithNoSpaceUntilRoomIsMade) {
  TempDir dir;
  FaultInjectionFileSystem fs;
  fs.SetQuota(10000);
  ASSERT_TRUE(WriteFile(fs, dir.File("a.blob"), Pattern(6000, 1)).ok());
  const IOStatus full = WriteFile(fs, dir.File("b.blob"), Pattern(6000, 2));
  EXPECT_TRUE(full.IsNoSpace()) << full.ToString();
  EXPECT_EQ(fs.counters().no_space_errors, 1u);
  uint64_t free_bytes = 0;
  ASSERT_TRUE(fs.GetFreeSpace(dir.File(""), IOOptions(), &free_bytes, nullptr).ok());
  EXPECT_EQ(free_bytes, 4000u);

  // Deleting a file makes room.
  ASSERT_TRUE(fs.DeleteFile(dir.File("a.blob"), IOOptions(), nullptr).ok());
  EXPECT_TRUE(WriteFile(fs, dir.File("b.blob"), Pattern(6000, 2)).ok());
  // So does raising the quota.
  EXPECT_TRUE(WriteFile(fs, dir.File("c.blob"), Pattern(6000, 3)).IsNoSpace());
  fs.SetQuota(20000);
  EXPECT_TRUE(WriteFile(fs, dir.File("c.blob"), Pattern(6000, 3)).ok());
  EXPECT_EQ(fs.used_bytes(), 12000u);
}

TEST(FaultInjectionFileSystemTest, ProbabilisticFaultsFollowTheSeed) {
  TempDir dir;
  ASSERT_TRUE(
      WriteFile(*rocksdb::FileSystem::Default(), dir.File("p.blob"), Pattern(4096, 1)).ok());
  auto run = [&](uint64_t seed) {
    FaultInjectionFileSystem fs(nullptr, seed);
    fs.SetReadFaults({.error_probability = 0.3});
    std::string pattern;
    for (int i = 0; i < 64; ++i) {
      std::string out;
      pattern.push_back(ReadFile(fs, dir.File("p.blob"), &out).ok() ? '.' : 'x');
    }
    return pattern;
  };
  const std::string a = run(42);
  EXPECT_EQ(a, run(42));
  EXPECT_NE(a.find('x'), std::string::npos);
  EXPECT_NE(a.find('.'), std::string::npos);
}

}  // namespace
}  // namespace strata::cachenode
