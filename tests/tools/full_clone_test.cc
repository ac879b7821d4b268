// SPDX-License-Identifier: Apache-2.0
// Full clones: DEST holds, per disk, a monolithicSparse VMDK that reads as the source
// does now (a plain VMDK, a VM's disks, or a linked clone's merged disks), plus a VM's
// .vmx and nvram; never a .clonefs; and nothing at all when anything fails.

#include "tools/lib/full_clone.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "common/memory_storage.h"
#include "fs/engine/mounted_vm.h"
#include "tests/support/crash_point_storage.h"
#include "tests/support/test_support.h"
#include "tools/lib/linked_clone.h"
#include "vmdk/disk.h"

namespace tools {
namespace {

namespace fs = std::filesystem;
using common::MemoryStorage;
using Bytes = std::vector<std::byte>;

constexpr uint64_t kDiskBytes = 4 << 20;

Bytes Pattern(size_t n, uint8_t seed) {
  Bytes v(n);
  for (size_t i = 0; i < n; ++i) v[i] = std::byte(uint8_t(seed + i * 7 + i / 4096));
  return v;
}

// A flat disk of kDiskBytes: a pattern in the first MiB and the last 64 KiB, zeros
// between (stored as zeros: a flat extent has no holes).
Bytes FlatContents(uint8_t seed) {
  Bytes bytes(kDiskBytes);
  const Bytes head = Pattern(1 << 20, seed);
  const Bytes tail = Pattern(64 << 10, seed + 1);
  std::copy(head.begin(), head.end(), bytes.begin());
  std::copy(tail.begin(), tail.end(), bytes.end() - tail.size());
  return bytes;
}

std::string FlatDescriptor(const std::string& flat_name, const std::string& adapter) {
  return "# Disk DescriptorFile\nversion=1\nCID=1234abcd\nparentCID=ffffffff\n"
         "createType=\"monolithicFlat\"\n# Extent description\nRW " +
         std::to_string(kDiskBytes / 512) + " FLAT \"" + flat_name +
         "\" 0\n\n# The Disk Data Base\n#DDB\n\nddb.adapterType = \"" + adapter + "\"\n";
}

FullCloneRequest Request(const std::string& source, const std::string& destination,
                         const std::string& display_name = "") {
  FullCloneRequest request;
  request.source = source;
  request.destination = destination;
  request.display_name = display_name;
  return request;
}

// The whole disk at `path` as the project's reader sees it; empty when it does not open.
Bytes ReadDisk(common::Storage& storage, const std::string& path) {
  auto disk = vmdk::Disk::Open(storage, path);
  EXPECT_TRUE(disk) << disk.error().message();
  if (!disk) return {};
  Bytes bytes(disk.value()->capacity_bytes());
  EXPECT_TRUE(disk.value()->Read(0, bytes).ok());
  return bytes;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string DescriptorValue(common::Storage& storage, const std::string& path,
                            const std::string& key) {
  auto disk = vmdk::Disk::Open(storage, path);
  if (!disk) return "(" + disk.error().message() + ")";
  return disk.value()->links()[0]->descriptor().Get(key).value_or("(none)");
}

class FullCloneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* dir : {"/vm", "/vm/golden", "/vm/golden/data"}) {
      ASSERT_TRUE(storage_.CreateDirectory(dir).ok());
    }
    storage_.SetFile("/vm/base-flat.vmdk", FlatContents(1));
    storage_.SetFile("/vm/base.vmdk", FlatDescriptor("base-flat.vmdk", "buslogic"));
    storage_.SetFile("/vm/golden/golden-flat.vmdk", FlatContents(2));
    storage_.SetFile("/vm/golden/golden.vmdk", FlatDescriptor("golden-flat.vmdk", "lsilogic"));
    storage_.SetFile("/vm/golden/data/extra-flat.vmdk", FlatContents(3));
    storage_.SetFile("/vm/golden/data/extra.vmdk", FlatDescriptor("extra-flat.vmdk", "ide"));
    storage_.SetFile("/vm/golden/golden.vmx", kVmx);
    storage_.SetFile("/vm/golden/golden.nvram", "NVRAM");
  }

  std::vector<std::string> Listing(const std::string& dir = "/vm") {
    return storage_.ListDirectory(dir).value();
  }

  static constexpr const char* kVmx =
      "displayName = \"Golden\"\n"
      "scsi0:0.fileName = \"golden.vmdk\"\n"
      "sata0:1.fileName = \"data/extra.vmdk\"\n"
      "nvram = \"golden.nvram\"\n"
      "uuid.bios = \"56 4d 12 34 56 78 9a bc-de f0 12 34 56 78 9a bc\"\n"
      "memsize = \"2048\"\n";

  MemoryStorage storage_;
};

TEST_F(FullCloneTest, CopiesAPlainVmdkIntoAMonolithicSparseFile) {
  auto clone = CreateFullClone(storage_, Request("/vm/base.vmdk", "/vm/c1"));
  ASSERT_TRUE(clone) << clone.error().message();
  EXPECT_EQ(clone.value().path, "/vm/c1");
  EXPECT_FALSE(clone.value().vmx);
  ASSERT_EQ(clone.value().disks.size(), 1u);
  const FullCloneDisk& disk = clone.value().disks[0];
  EXPECT_EQ(disk.name, "base");
  EXPECT_EQ(disk.source, "/vm/base.vmdk");
  EXPECT_EQ(disk.capacity_bytes, kDiskBytes);
  EXPECT_EQ(disk.data_bytes, (16 + 1) * (64u << 10));  // the zeros between are not copied
  EXPECT_EQ(Listing("/vm/c1"), std::vector<std::string>{"base.vmdk"});
  EXPECT_EQ(disk.file_bytes, storage_.GetFile("/vm/c1/base.vmdk")->size());

  EXPECT_TRUE(ReadDisk(storage_, "/vm/c1/base.vmdk") == FlatContents(1));
  EXPECT_EQ(DescriptorValue(storage_, "/vm/c1/base.vmdk", "createType"), "monolithicSparse");
  EXPECT_EQ(DescriptorValue(storage_, "/vm/c1/base.vmdk", "ddb.adapterType"), "buslogic");
  // The source is only read: not made read-only as a linked clone's parent is.
  EXPECT_EQ(storage_.Stat("/vm/base-flat.vmdk").value().mode & 0200, 0200u);
}

TEST_F(FullCloneTest, CopiesAVmWithItsVmxAndNvram) {
  auto clone = CreateFullClone(storage_, Request("/vm/golden", "/vm/c2", "Copy"));
  ASSERT_TRUE(clone) << clone.error().message();
  EXPECT_EQ(clone.value().vmx, "c2.vmx");
  ASSERT_EQ(clone.value().disks.size(), 2u);
  EXPECT_EQ(clone.value().disks[0].name, "golden");
  EXPECT_EQ(clone.value().disks[1].name, "extra");
  EXPECT_EQ(Listing("/vm/c2"),
            (std::vector<std::string>{"c2.nvram", "c2.vmx", "extra.vmdk", "golden.vmdk"}));
  EXPECT_TRUE(ReadDisk(storage_, "/vm/c2/golden.vmdk") == FlatContents(2));
  EXPECT_TRUE(ReadDisk(storage_, "/vm/c2/extra.vmdk") == FlatContents(3));
  auto vmx = storage_.GetFile("/vm/c2/c2.vmx").value();
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(vmx.data()), vmx.size()),
            "displayName = \"Copy\"\n"
            "scsi0:0.fileName = \"golden.vmdk\"\n"
            "sata0:1.fileName = \"extra.vmdk\"\n"
            "nvram = \"c2.nvram\"\n"
            "memsize = \"2048\"\n");
  auto nvram = storage_.GetFile("/vm/c2/c2.nvram").value();
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(nvram.data()), nvram.size()), "NVRAM");
}

TEST_F(FullCloneTest, ReportsProgressOverAllDisks) {
  std::vector<std::pair<uint64_t, uint64_t>> calls;
  FullCloneRequest request = Request("/vm/golden", "/vm/c3");
  request.progress = [&](uint64_t done, uint64_t total) { calls.emplace_back(done, total); };
  ASSERT_TRUE(CreateFullClone(storage_, request));
  ASSERT_FALSE(calls.empty());
  for (const auto& [done, total] : calls) EXPECT_EQ(total, 2 * kDiskBytes);
  EXPECT_TRUE(std::is_sorted(calls.begin(), calls.end()));
  EXPECT_EQ(calls.back().first, 2 * kDiskBytes);
}

TEST_F(FullCloneTest, RefusesAnExistingDestinationAndChangesNothing) {
  ASSERT_TRUE(storage_.CreateDirectory("/vm/c1").ok());
  const auto before = Listing();
  auto clone = CreateFullClone(storage_, Request("/vm/base.vmdk", "/vm/c1"));
  ASSERT_FALSE(clone);
  EXPECT_EQ(clone.error().code(), EEXIST);
  EXPECT_EQ(clone.error().message(), "/vm/c1: already exists");
  EXPECT_EQ(Listing(), before);
  EXPECT_TRUE(Listing("/vm/c1").empty());
}

TEST_F(FullCloneTest, ABrokenDiskIsRefusedBeforeAnythingIsMade) {
  storage_.SetFile("/vm/golden/data/extra-flat.vmdk", Bytes(1000));  // shorter than needed
  const auto before = Listing();
  auto clone = CreateFullClone(storage_, Request("/vm/golden", "/vm/c1"));
  ASSERT_FALSE(clone);
  EXPECT_NE(clone.error().message().find("/vm/golden/golden.vmx: sata0:1.fileName"),
            std::string::npos)
      << clone.error().message();
  EXPECT_EQ(Listing(), before);
}

TEST_F(FullCloneTest, CancellingLeavesNothing) {
  const auto before = Listing();
  std::atomic<bool> cancel{true};
  FullCloneRequest request = Request("/vm/golden", "/vm/c1");
  request.cancel = &cancel;
  auto clone = CreateFullClone(storage_, request);
  ASSERT_FALSE(clone);
  EXPECT_EQ(clone.error().code(), ECANCELED);
  EXPECT_EQ(clone.error().message(), "/vm/c1: interrupted; nothing was created");
  EXPECT_EQ(Listing(), before);
}

TEST_F(FullCloneTest, FailureAtAnyStepLeavesNoCloneAndNoTemporaryDirectory) {
  const auto before = Listing();
  // Fail the k-th mutating operation, for every k until the clone succeeds.
  for (int fail_at = 0;; ++fail_at) {
    int calls = 0;
    storage_.SetFaultHook([&](MemoryStorage::Op, const std::string& path) {
      return calls++ == fail_at ? common::Status::FromErrno(ENOSPC, path) : common::Status::Ok();
    });
    FullCloneRequest request = Request("/vm/golden", "/vm/c1");
    request.threads = 1;
    auto clone = CreateFullClone(storage_, request);
    storage_.SetFaultHook(nullptr);
    if (clone) {
      auto after = before;
      after.push_back("c1");
      std::sort(after.begin(), after.end());
      EXPECT_EQ(Listing(), after);
      EXPECT_GT(fail_at, 10) << "the clone should make many durable writes";
      break;
    }
    EXPECT_EQ(clone.error().code(), ENOSPC) << "failing operation " << fail_at;
    EXPECT_EQ(Listing(), before) << "failing operation " << fail_at;
    ASSERT_LT(fail_at, 200);
  }
}

// Linked clones are opened through the engine, whose VM lock is a real fcntl lock: these
// run on the real file system.
class FullCloneOfLinkedCloneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir_ / "golden");
    Write(dir_ / "base-flat.vmdk", FlatContents(4));
    Write(dir_ / "base.vmdk", FlatDescriptor("base-flat.vmdk", "buslogic"));
    Write(dir_ / "golden/golden-flat.vmdk", FlatContents(5));
    Write(dir_ / "golden/golden.vmdk", FlatDescriptor("golden-flat.vmdk", "lsilogic"));
    Write(dir_ / "golden/golden.vmx",
          "displayName = \"Golden\"\nscsi0:0.fileName = \"golden.vmdk\"\n"
          "nvram = \"golden.nvram\"\nuuid.bios = \"56 4d 00\"\n");
    Write(dir_ / "golden/golden.nvram", "NVRAM of golden");
  }

  static void Write(const std::string& path, const Bytes& bytes) {
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
  static void Write(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
  }

  // Writes `bytes` at `offset` into disk 0 of the clone, as a mount would, and closes it.
  static void WriteThroughEngine(const std::string& clone, uint64_t offset, const Bytes& bytes) {
    auto vm = engine::MountedVm::Open(common::PosixStorage(), {clone, "/nowhere", false});
    ASSERT_TRUE(vm) << vm.error().message();
    ASSERT_TRUE(vm.value()->disks()[0].disk->Write(offset, bytes).ok());
    ASSERT_TRUE(vm.value()->Close().ok());
  }

  common::Storage& storage_ = common::PosixStorage();
  testing_support::TempDir dir_;
};

TEST_F(FullCloneOfLinkedCloneTest, CopiesTheMergedDisk) {
  const std::string c1 = dir_ / "c1";
  ASSERT_TRUE(CreateLinkedClone(storage_, {dir_ / "base.vmdk", c1, "", ""}));
  WriteThroughEngine(c1, 2 << 20, Pattern(100 << 10, 9));  // over zeros of the parent
  WriteThroughEngine(c1, 4096, Bytes(8192));               // zeros over parent data
  Bytes expected = FlatContents(4);
  const Bytes written = Pattern(100 << 10, 9);
  std::copy(written.begin(), written.end(), expected.begin() + (2 << 20));
  std::fill(expected.begin() + 4096, expected.begin() + 4096 + 8192, std::byte{0});

  const std::string full = dir_ / "full";
  auto clone = CreateFullClone(storage_, Request(c1, full));
  ASSERT_TRUE(clone) << clone.error().message();
  ASSERT_EQ(clone.value().disks.size(), 1u);
  EXPECT_EQ(clone.value().disks[0].source, c1 + " (disk base)");
  EXPECT_FALSE(clone.value().vmx);
  EXPECT_TRUE(ReadDisk(storage_, full + "/base.vmdk") == expected);
  EXPECT_EQ(DescriptorValue(storage_, full + "/base.vmdk", "ddb.adapterType"), "buslogic");
  EXPECT_FALSE(fs::exists(full + "/.clonefs"));
  // The lock is released: nothing says the clone is held.
  EXPECT_FALSE(fs::exists(c1 + "/.clonefs/lock.owner"));
}

TEST_F(FullCloneOfLinkedCloneTest, CopiesALinkedCloneOfAVmWithItsVmx) {
  const std::string c1 = dir_ / "c1";
  ASSERT_TRUE(CreateLinkedClone(storage_, {dir_ / "golden", c1, "Linked", ""}));
  WriteThroughEngine(c1, 0, Pattern(4096, 33));
  Bytes expected = FlatContents(5);
  const Bytes written = Pattern(4096, 33);
  std::copy(written.begin(), written.end(), expected.begin());

  for (const std::string& given : {c1, c1 + "/c1.vmx"}) {
    SCOPED_TRACE(given);
    const std::string full = dir_ / "full";
    auto clone = CreateFullClone(storage_, Request(given, full));
    ASSERT_TRUE(clone) << clone.error().message();
    EXPECT_EQ(clone.value().vmx, "full.vmx");
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(full)) names.push_back(entry.path().filename());
    std::sort(names.begin(), names.end());
    EXPECT_EQ(names, (std::vector<std::string>{"full.nvram", "full.vmx", "golden.vmdk"}));
    EXPECT_TRUE(ReadDisk(storage_, full + "/golden.vmdk") == expected);
    EXPECT_EQ(ReadText(full + "/full.vmx"),
              "displayName = \"full\"\nscsi0:0.fileName = \"golden.vmdk\"\n"
              "nvram = \"full.nvram\"\n");
    EXPECT_EQ(ReadText(full + "/full.nvram"), "NVRAM of golden");
    fs::remove_all(full);
  }
}

}  // namespace
// A kill at every step of a full clone of a linked clone (CrashPointStorage: _exit before
// the Nth mutating operation): DEST is absent or complete, and the next clone removes
// what the killed one left beside it.
TEST_F(FullCloneOfLinkedCloneTest, AKillAtAnyStepLeavesNoCloneOrAWholeOne) {
  const std::string c1 = dir_ / "c1";
  ASSERT_TRUE(CreateLinkedClone(storage_, {dir_ / "base.vmdk", c1, "", ""}));
  WriteThroughEngine(c1, 1 << 20, Pattern(64 << 10, 7));
  Bytes expected = FlatContents(4);
  const Bytes written = Pattern(64 << 10, 7);
  std::copy(written.begin(), written.end(), expected.begin() + (1 << 20));
  const std::string full = dir_ / "full";
  int kills = 0;
  for (long step = 1;; ++step) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      testing_support::CrashPointStorage cut(common::PosixStorage(), step);
      FullCloneRequest request = Request(c1, full);
      request.threads = 1;
      ::_exit(CreateFullClone(cut, request) ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    const int code = WEXITSTATUS(status);
    ASSERT_TRUE(code == 0 || code == testing_support::kCrashExitCode) << "step " << step;
    if (code == 0) {
      EXPECT_TRUE(ReadDisk(storage_, full + "/base.vmdk") == expected);
      break;
    }
    ++kills;
    // Either no DEST, or (killed after the rename, while syncing) a whole one.
    if (fs::exists(full)) {
      EXPECT_TRUE(ReadDisk(storage_, full + "/base.vmdk") == expected) << "step " << step;
      fs::remove_all(full);
    }
    // The killed child's lock on c1 died with it: the linked clone opens again.
    ASSERT_TRUE(engine::MountedVm::Open(storage_, {c1, "/nowhere", true})) << "step " << step;
  }
  EXPECT_GE(kills, 10);
  // What the killed runs left beside DEST went with the successful run.
  for (const auto& e : fs::directory_iterator(dir_.path())) {
    EXPECT_EQ(e.path().filename().string().find(".full.clonefs-tmp-"), std::string::npos)
        << e.path();
  }
}

}  // namespace tools
