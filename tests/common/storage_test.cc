// SPDX-License-Identifier: Apache-2.0
// The same behaviour from the real file system and the in-memory one.
#include "common/storage.h"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/memory_storage.h"
#include "tests/support/test_support.h"

namespace common {
namespace {

std::vector<std::byte> Bytes(size_t n, uint8_t value) {
  return std::vector<std::byte>(n, std::byte{value});
}

class StorageTest : public ::testing::TestWithParam<bool> {
 protected:
  Storage& storage() { return GetParam() ? PosixStorage() : static_cast<Storage&>(memory_); }
  std::string Path(const std::string& name) { return dir_ / name; }

  testing_support::TempDir dir_;
  MemoryStorage memory_;
};

TEST_P(StorageTest, CreateWriteReadAndShortReadAtEnd) {
  auto file = storage().CreateExclusive(Path("f"));
  ASSERT_TRUE(file) << file.error().message();
  ASSERT_TRUE(file.value()->WriteAt(10, Bytes(20, 7)).ok());
  EXPECT_EQ(file.value()->Size().value(), 30u);
  std::vector<std::byte> buf(40);
  EXPECT_EQ(file.value()->ReadAt(0, buf).value(), 30u);
  EXPECT_EQ(buf[9], std::byte{0});
  EXPECT_EQ(buf[10], std::byte{7});
  Status s = file.value()->ReadExactAt(0, buf, "thing");
  EXPECT_EQ(s.code(), EIO);
  EXPECT_NE(s.message().find("thing at byte 0: unexpected end of file"), std::string::npos);
}

TEST_P(StorageTest, CreateExclusiveRefusesExistingFile) {
  ASSERT_TRUE(storage().CreateExclusive(Path("f")));
  auto again = storage().CreateExclusive(Path("f"));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), EEXIST);
}

TEST_P(StorageTest, RenameNoReplaceRefusesToClobber) {
  ASSERT_TRUE(storage().CreateExclusive(Path("a")));
  ASSERT_TRUE(storage().CreateExclusive(Path("b")));
  EXPECT_EQ(storage().Rename(Path("a"), Path("b"), true).code(), EEXIST);
  EXPECT_TRUE(storage().Rename(Path("a"), Path("c"), true).ok());
  EXPECT_EQ(storage().Stat(Path("a")).error().code(), ENOENT);
}

TEST_P(StorageTest, StartWritebackIsAHintThatChangesNothing) {
  auto file = storage().CreateExclusive(Path("f")).value();
  ASSERT_TRUE(file->WriteAt(0, Bytes(3 * 4096, 0xcd)).ok());
  EXPECT_TRUE(file->StartWriteback(4096, 2 * 4096).ok());
  EXPECT_TRUE(file->StartWriteback(0, 1 << 20).ok());  // past the end too
  EXPECT_TRUE(file->Sync().ok());
  std::vector<std::byte> buf(3 * 4096);
  ASSERT_TRUE(file->ReadExactAt(0, buf, "all").ok());
  EXPECT_EQ(buf, Bytes(3 * 4096, 0xcd));
}

TEST_P(StorageTest, PunchHoleReadsAsZerosAndKeepsSize) {
  auto file = storage().CreateExclusive(Path("f")).value();
  ASSERT_TRUE(file->WriteAt(0, Bytes(3 * 4096, 0xab)).ok());
  ASSERT_TRUE(file->PunchHole(4096, 4096).ok());
  EXPECT_EQ(file->Size().value(), 3u * 4096);
  std::vector<std::byte> buf(3 * 4096);
  ASSERT_TRUE(file->ReadExactAt(0, buf, "all").ok());
  EXPECT_EQ(buf[4095], std::byte{0xab});
  EXPECT_EQ(buf[4096], std::byte{0});
  EXPECT_EQ(buf[8191], std::byte{0});
  EXPECT_EQ(buf[8192], std::byte{0xab});
}

TEST_P(StorageTest, MappedFileSharesBytesWithTheFile) {
  auto file = storage().CreateExclusive(Path("m")).value();
  ASSERT_TRUE(file->Truncate(8192).ok());
  auto mapped = storage().MapFile(Path("m"), OpenMode::kReadWrite);
  ASSERT_TRUE(mapped) << mapped.error().message();
  ASSERT_EQ(mapped.value()->bytes().size(), 8192u);
  std::memset(mapped.value()->bytes().data() + 5000, 0x5a, 10);
  ASSERT_TRUE(mapped.value()->Flush(4096, 4096).ok());
  std::vector<std::byte> buf(10);
  ASSERT_TRUE(file->ReadExactAt(5000, buf, "mapped").ok());
  EXPECT_EQ(buf, Bytes(10, 0x5a));
}

// The delta layer flushes single 8-byte bitmap words anywhere in the map: msync needs a
// page-aligned start, which the storage must supply.
TEST_P(StorageTest, MappedFileFlushesRangesNotAlignedToPages) {
  auto file = storage().CreateExclusive(Path("m")).value();
  ASSERT_TRUE(file->Truncate(3 * 4096).ok());
  auto mapped = storage().MapFile(Path("m"), OpenMode::kReadWrite);
  ASSERT_TRUE(mapped) << mapped.error().message();
  for (uint64_t offset : {uint64_t{8}, uint64_t{4100}, uint64_t{3 * 4096 - 8}}) {
    std::memset(mapped.value()->bytes().data() + offset, 0x77, 8);
    Status flushed = mapped.value()->Flush(offset, 8);
    ASSERT_TRUE(flushed.ok()) << offset << ": " << flushed.message();
    std::vector<std::byte> buf(8);
    ASSERT_TRUE(file->ReadExactAt(offset, buf, "mapped").ok());
    EXPECT_EQ(buf, Bytes(8, 0x77));
  }
}

// Reserving pages of a mapping keeps the file's size and bytes; the real file system
// allocates exactly those pages and leaves the rest holes.
TEST_P(StorageTest, MappedFileReserveKeepsSizeAndBytes) {
  auto file = storage().CreateExclusive(Path("m")).value();
  ASSERT_TRUE(file->Truncate(64 * 4096).ok());
  ASSERT_TRUE(file->WriteAt(0, Bytes(16, 0x33)).ok());
  auto mapped = storage().MapFile(Path("m"), OpenMode::kReadWrite);
  ASSERT_TRUE(mapped) << mapped.error().message();
  Status reserved = mapped.value()->Reserve(8 * 4096 + 100, 8);
  ASSERT_TRUE(reserved.ok()) << reserved.message();
  ASSERT_TRUE(mapped.value()->Reserve(0, 64 * 4096 + 4096).ok()) << "clipped to the mapping";
  EXPECT_EQ(file->Size().value(), 64u * 4096);
  std::vector<std::byte> buf(16);
  ASSERT_TRUE(file->ReadExactAt(0, buf, "head").ok());
  EXPECT_EQ(buf, Bytes(16, 0x33));
}

TEST(PosixStorageTest, MappedFileReserveAllocatesOnlyTheGivenPages) {
  testing_support::TempDir dir;
  auto file = PosixStorage().CreateExclusive(dir / "m").value();
  ASSERT_TRUE(file->Truncate(256 * 4096).ok());
  auto mapped = PosixStorage().MapFile(dir / "m", OpenMode::kReadWrite);
  ASSERT_TRUE(mapped) << mapped.error().message();
  ASSERT_TRUE(mapped.value()->Reserve(100 * 4096 + 8, 8).ok());
  const uint64_t allocated = testing_support::AllocatedBytes(dir / "m");
  EXPECT_GE(allocated, 4096u);
  EXPECT_LT(allocated, 64u * 4096) << "the rest of the file must stay a hole";
}

// A frozen layer's map file is chmod a-w; a user who may only read it must still be able
// to map it (read-only), and the mapping refuses what would write.
TEST(PosixStorageTest, AReadOnlyFileMapsReadOnlyForAnUnprivilegedUser) {
  testing_support::TempDir dir;
  {
    auto file = PosixStorage().CreateExclusive(dir / "m").value();
    ASSERT_TRUE(file->WriteAt(0, Bytes(8192, 0x5a)).ok());
  }
  ASSERT_EQ(::chmod((dir / "m").c_str(), 0444), 0);
  ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Not root from here on: permissions apply (exit codes name the step that failed).
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(10);
    auto read_write = PosixStorage().MapFile(dir / "m", OpenMode::kReadWrite);
    if (read_write || read_write.error().code() != EACCES) ::_exit(11);
    auto read_only = PosixStorage().MapFile(dir / "m", OpenMode::kReadOnly);
    if (!read_only) ::_exit(12);
    if (read_only.value()->bytes()[8191] != std::byte{0x5a}) ::_exit(13);
    if (read_only.value()->Flush(0, 4096).code() != EROFS) ::_exit(14);
    if (read_only.value()->Reserve(0, 4096).code() != EROFS) ::_exit(15);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "see the exit codes in the test";
}

TEST_P(StorageTest, MapFileOfMissingFileNamesIt) {
  auto mapped = storage().MapFile(Path("missing"), OpenMode::kReadWrite);
  ASSERT_FALSE(mapped);
  EXPECT_NE(mapped.error().message().find("missing"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(PosixAndMemory, StorageTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Posix" : "Memory"; });

TEST(PosixStorageTest, ReadCachedAtReadsOnlyWhatThePageCacheHolds) {
  testing_support::TempDir dir;
  auto file = PosixStorage().CreateExclusive(dir / "f").value();
  ASSERT_TRUE(file->WriteAt(0, Bytes(1 << 20, 0x42)).ok());
  std::vector<std::byte> got(8192);
  EXPECT_TRUE(file->ReadCachedAt(4096, got));  // just written: cached
  EXPECT_EQ(got, Bytes(8192, 0x42));
  // Written back and dropped from the cache: a miss, reported as such.
  ASSERT_TRUE(file->Sync().ok());
  auto reader = PosixStorage().Open(dir / "f", OpenMode::kReadOnly).value();
  testing_support::DropFromPageCache(dir / "f");
  EXPECT_FALSE(reader->ReadCachedAt(512 << 10, got));
  EXPECT_FALSE(reader->ReadCachedAt(2 << 20, got));  // past the end: not a full read
  MemoryStorage memory;
  auto in_memory = memory.CreateExclusive("/m").value();
  ASSERT_TRUE(in_memory->WriteAt(0, Bytes(8192, 1)).ok());
  EXPECT_FALSE(in_memory->ReadCachedAt(0, got));  // no page cache to ask
}

TEST(PosixStorageTest, NextDataAndNextHoleFollowHostHoles) {
  testing_support::TempDir dir;
  auto file = PosixStorage().CreateExclusive(dir / "sparse").value();
  ASSERT_TRUE(file->Truncate(16 << 20).ok());
  ASSERT_TRUE(file->WriteAt(8 << 20, Bytes(1 << 20, 1)).ok());
  EXPECT_EQ(file->NextData(0).value(), uint64_t{8} << 20);
  EXPECT_EQ(file->NextHole(8 << 20).value(), uint64_t{9} << 20);
  EXPECT_EQ(file->NextData(9 << 20).value(), uint64_t{16} << 20);  // none left: the size
}


// A frozen layer's file, once all in the page cache, is read by copies from its mapping:
// the first answer (not resident) is asked again after a while, and the bytes are the
// file's whichever way they come. (Pages once mapped stay: fadvise cannot drop them, so
// the way back is not tested here.) Files open for writing, and other storages' files,
// are never resident.
TEST(FrozenLayerStorageTest, AFileAllInThePageCacheIsResidentAndReadsTheSameBytes) {
  testing_support::TempDir dir;
  const std::string path = dir / "layer.packed";
  std::vector<std::byte> contents(3 * 4096 + 512);
  for (size_t i = 0; i < contents.size(); ++i) contents[i] = static_cast<std::byte>(i * 13 % 251);
  testing_support::WriteFileBytes(path, contents);
  ASSERT_TRUE(PosixStorage().Open(path, OpenMode::kReadOnly).value()->Sync().ok());
  testing_support::DropFromPageCache(path);
  auto file = FrozenLayerStorage().Open(path, OpenMode::kReadOnly).value();
  EXPECT_FALSE(file->Resident());

  std::vector<std::byte> all(contents.size());
  ASSERT_EQ(file->ReadAt(0, all).value(), contents.size());  // now cached
  ASSERT_TRUE(testing_support::Eventually([&] { return file->Resident(); }));
  std::vector<std::byte> got(5000);
  ASSERT_TRUE(file->ReadCachedAt(1000, got));
  EXPECT_TRUE(std::equal(got.begin(), got.end(), contents.begin() + 1000));
  std::vector<std::byte> tail(512);
  ASSERT_TRUE(file->ReadCachedAt(3 * 4096, tail));
  EXPECT_TRUE(std::equal(tail.begin(), tail.end(), contents.begin() + 3 * 4096));
  EXPECT_FALSE(file->ReadCachedAt(3 * 4096, got));  // past the end: not a full read


  EXPECT_FALSE(FrozenLayerStorage().Open(path, OpenMode::kReadWrite).value()->Resident());
  std::vector<std::byte> read_back(contents.size());
  auto plain = PosixStorage().Open(path, OpenMode::kReadOnly).value();
  ASSERT_EQ(plain->ReadAt(0, read_back).value(), contents.size());
  EXPECT_FALSE(plain->Resident());
  ASSERT_TRUE(FrozenLayerStorage().CreateExclusive(dir / "empty"));
  EXPECT_FALSE(FrozenLayerStorage().Open(dir / "empty", OpenMode::kReadOnly).value()->Resident());
}


// A frozen file cut short under a reader that copies from its mapping (nothing clonefs
// does, but a user or a failing device can): that read fails, the process goes on, and
// reading through the file then reports the end of file as usual.
TEST(FrozenLayerStorageTest, AFileCutShortUnderItsMappingFailsTheReadNotTheProcess) {
  testing_support::TempDir dir;
  const std::string path = dir / "layer.packed";
  testing_support::WriteFileBytes(path, std::vector<std::byte>(4 * 4096, std::byte{3}));
  auto file = FrozenLayerStorage().Open(path, OpenMode::kReadOnly).value();
  std::vector<std::byte> got(4096);
  // Just written: all cached.
  ASSERT_TRUE(testing_support::Eventually([&] { return file->Resident(); }));
  ASSERT_TRUE(file->ReadCachedAt(2 * 4096, got));
  ASSERT_EQ(::truncate(path.c_str(), 4096), 0);
  EXPECT_FALSE(file->ReadCachedAt(2 * 4096, got));
  auto read = file->ReadAt(2 * 4096, got);
  ASSERT_TRUE(read) << read.error().message();
  EXPECT_EQ(read.value(), 0u);
}

}  // namespace
}  // namespace common

namespace common {
namespace {

// The shared-parent read policy changes how bytes are fetched, never which: every read,
// cached or not, large or small, aligned or not, up to and across the end of the file,
// returns what PosixStorage returns.
TEST(SharedParentStorageTest, ReadsTheSameBytesWhateverTheCacheAndAlignment) {
  testing_support::TempDir dir;
  const std::string path = dir / "parent";
  const size_t size = 3 * 1024 * 1024 + 1000;  // not a whole number of pages
  std::vector<std::byte> contents(size);
  for (size_t i = 0; i < size; ++i) contents[i] = static_cast<std::byte>((i * 7 + i / 4096) & 0xff);
  testing_support::WriteFileBytes(path, contents);
  // Drop the file's pages so the first reads miss the cache (needs no privileges).
  {
    auto f = PosixStorage().Open(path, OpenMode::kReadOnly).value();
    ASSERT_TRUE(f->Sync().ok());
  }
  testing_support::DropFromPageCache(path);
  for (OpenMode mode : {OpenMode::kReadOnly, OpenMode::kReadWrite}) {
    SCOPED_TRACE(mode == OpenMode::kReadOnly ? "read-only" : "read-write");
    auto file = SharedParentStorage().Open(path, mode);
    ASSERT_TRUE(file) << file.error().message();
    struct Case {
      uint64_t offset;
      size_t length;
    };
    const std::vector<Case> cases = {{0, 1 << 20},
                                     {1 << 20, 256 << 10},
                                     {4096, 4096},
                                     {100, 5000},
                                     {2 << 20, 1 << 20},
                                     {3 << 20, 8192},
                                     {(3 << 20) - 4096, 1 << 20},
                                     {0, 1 << 20},
                                     {size - 10, 100}};
    for (const Case& c : cases) {
      auto buf = static_cast<std::byte*>(std::aligned_alloc(4096, (c.length + 4095) / 4096 * 4096));
      std::span<std::byte> dst(buf, c.length);
      auto got = file.value()->ReadAt(c.offset, dst);
      ASSERT_TRUE(got) << got.error().message();
      const size_t expected = std::min<size_t>(c.length, size - std::min<size_t>(c.offset, size));
      EXPECT_EQ(got.value(), expected) << c.offset << "+" << c.length;
      EXPECT_EQ(std::memcmp(buf, contents.data() + c.offset, expected), 0)
          << c.offset << "+" << c.length;
      std::free(buf);
    }
  }
}

}  // namespace
}  // namespace common
