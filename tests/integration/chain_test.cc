// SPDX-License-Identifier: Apache-2.0
// clonectl on qemu-made parent chains: the merged view equals what qemu reads, zeroed
// grains in a child mask its parent, and broken chains (a parent modified after the
// child was made, a missing parent, a loop) fail naming the file at fault.

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/integration/integration_util.h"
#include "tests/support/test_support.h"

namespace integration {
namespace {

namespace fs = std::filesystem;
using testing_support::TempDir;

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;
// Past one 32 MiB grain table, and one sector past a grain multiple.
constexpr uint64_t kCapacity = 40 * kMiB + 512;

std::string Hex8(uint32_t value) {
  char text[9];
  std::snprintf(text, sizeof text, "%08x", value);
  return text;
}

class ChainTest : public ::testing::Test {
 protected:
  // A base image dir_/name; `options` go to -o (e.g. "subformat=monolithicFlat").
  ::testing::AssertionResult CreateBase(const std::string& name, const std::string& options = "") {
    std::vector<std::string> argv = {"qemu-img", "create", "-q", "-f", "vmdk"};
    if (!options.empty()) argv.insert(argv.end(), {"-o", options});
    argv.insert(argv.end(), {dir_ / name, std::to_string(kCapacity)});
    return RunsOk(argv);
  }

  // A child dir_/name whose parentFileNameHint is `parent_hint` as given (a relative
  // hint resolves against the child's directory).
  ::testing::AssertionResult CreateChild(const std::string& name, const std::string& parent_hint,
                                         bool zeroed_grain = false) {
    std::vector<std::string> argv = {"qemu-img", "create",    "-q", "-f",  "vmdk",
                                     "-b",       parent_hint, "-F", "vmdk"};
    if (zeroed_grain) argv.insert(argv.end(), {"-o", "zeroed_grain=on"});
    argv.push_back(dir_ / name);
    return RunsOk(argv);
  }

  // Checks inspect --json of `top` lists `files` (top first) linked by CIDs.
  void ExpectInspectedChain(const std::string& top, const std::vector<std::string>& files) {
    nlohmann::json json = InspectJson(top);
    ASSERT_TRUE(json.is_object());
    nlohmann::json& chain = json["chain"];
    ASSERT_TRUE(chain.is_array());
    ASSERT_EQ(chain.size(), files.size());
    EXPECT_EQ(CidOf(json["cid"]), CidOf(chain[0]["cid"]));
    EXPECT_EQ(CidOf(json["parent_cid"]), CidOf(chain[0]["parent_cid"]));
    for (size_t i = 0; i < files.size(); ++i) {
      SCOPED_TRACE("chain[" + std::to_string(i) + "]");
      ASSERT_TRUE(chain[i]["file"].is_string());
      EXPECT_TRUE(chain[i]["file"].get<std::string>().ends_with(files[i])) << chain[i]["file"];
      EXPECT_EQ(CidOf(chain[i]["cid"]), QemuCid(dir_ / files[i]));
      if (i + 1 < files.size()) {
        EXPECT_EQ(CidOf(chain[i]["parent_cid"]), CidOf(chain[i + 1]["cid"]));
      } else {
        EXPECT_EQ(CidOf(chain[i]["parent_cid"]), 0xffffffffu);
      }
    }
  }

  TempDir dir_;
  const std::string out_ = dir_ / "disk.raw";
};

TEST_F(ChainTest, DepthTwoExportEqualsQemu) {
  ASSERT_TRUE(CreateBase("base.vmdk"));
  ASSERT_TRUE(QemuIo(dir_ / "base.vmdk", {
                                             "write -P 0xa0 0 256k",
                                             "write -P 0xa1 33488896 131072",  // 32M-64k: GT edge
                                             "write -P 0xa2 41943040 512",     // last sector
                                         }));
  // An absolute hint here; DepthEight uses relative ones.
  ASSERT_TRUE(CreateChild("child.vmdk", dir_ / "base.vmdk"));
  ASSERT_TRUE(QemuIo(dir_ / "child.vmdk", {
                                              "write -P 0xb0 64k 64k",      // whole grain over data
                                              "write -P 0xb1 130560 1024",  // across grains, COW
                                              "write -P 0xb2 1M 4k",        // over nothing
                                              "write -P 0xb3 33554432 512",  // next GT, over data
                                          }));
  EXPECT_TRUE(ExportMatchesQemu(dir_ / "child.vmdk", out_));
  ExpectInspectedChain(dir_ / "child.vmdk", {"child.vmdk", "base.vmdk"});
}

TEST_F(ChainTest, DepthEightExportEqualsQemuAtEveryLayer) {
  constexpr int kDepth = 8;
  std::vector<std::string> files;  // base first
  for (int i = 0; i < kDepth; ++i) {
    const std::string name = "layer" + std::to_string(i) + ".vmdk";
    ASSERT_TRUE(i == 0 ? CreateBase(name) : CreateChild(name, files.back()));
    files.push_back(name);
    const uint64_t shift = static_cast<uint64_t>(i) * 96 * kKiB;  // half-grain steps
    char pattern[8];
    std::snprintf(pattern, sizeof pattern, "0x%02x", 0x10 + i);
    std::vector<std::string> writes = {
        // Overlaps the previous layer's range by 32 KiB, starting mid-grain.
        "write -P " + std::string(pattern) + " " + std::to_string(shift) + " 128k",
        "write -P " + std::string(pattern) + " " + std::to_string(i * 5 * kMiB + i * 512) + " 512",
    };
    if (i == 5) writes.push_back("write -z 100k 200k");  // zeros over layers 1..4
    ASSERT_TRUE(QemuIo(dir_ / name, writes));
  }
  for (int i = 0; i < kDepth; ++i) {
    SCOPED_TRACE(files[i]);
    EXPECT_TRUE(ExportMatchesQemu(dir_ / files[i], out_));
  }
  const std::vector<std::string> top_first(files.rbegin(), files.rend());
  ExpectInspectedChain(dir_ / files.back(), top_first);
}

TEST_F(ChainTest, ZeroedGrainInChildMasksParentData) {
  ASSERT_TRUE(CreateBase("base.vmdk"));
  ASSERT_TRUE(QemuIo(dir_ / "base.vmdk", {"write -P 0xcc 0 1M"}));
  ASSERT_TRUE(CreateChild("child.vmdk", "base.vmdk", /*zeroed_grain=*/true));
  ASSERT_TRUE(QemuIo(dir_ / "child.vmdk", {
                                              "write -z 0 64k",         // one whole grain
                                              "write -z 256k 128k",     // two whole grains
                                              "write -z 600000 10000",  // partial grains
                                          }));
  ASSERT_TRUE(ExportMatchesQemu(dir_ / "child.vmdk", out_));

  const auto bytes = testing_support::ReadFileBytes(out_);
  ASSERT_GE(bytes.size(), 1 * kMiB);
  EXPECT_EQ(bytes[0], std::byte{0});
  EXPECT_EQ(bytes[64 * kKiB - 1], std::byte{0});
  EXPECT_EQ(bytes[64 * kKiB], std::byte{0xcc});
  EXPECT_EQ(bytes[300 * kKiB], std::byte{0});
  EXPECT_EQ(bytes[600000 + 9999], std::byte{0});
  EXPECT_EQ(bytes[610000], std::byte{0xcc});

  nlohmann::json json = InspectJson(dir_ / "child.vmdk");
  ASSERT_TRUE(json.is_object());
  EXPECT_GE(json["chain"][0]["zero_bytes"].get<uint64_t>(), 3 * 64 * kKiB)
      << "the three whole grains written with -z should be zeroed grains";
}

TEST_F(ChainTest, ExportFailsWhenParentWasModifiedAfterChildCreation) {
  ASSERT_TRUE(CreateBase("base.vmdk"));
  ASSERT_TRUE(CreateChild("child.vmdk", "base.vmdk"));
  const auto cid_before = QemuCid(dir_ / "base.vmdk");
  ASSERT_TRUE(QemuIo(dir_ / "base.vmdk", {"write -P 0x01 0 512"}));  // qemu rewrites the CID
  ASSERT_NE(QemuCid(dir_ / "base.vmdk"), cid_before) << "qemu-io did not change the CID";

  CommandResult r = Clonectl({"export", dir_ / "child.vmdk", out_});
  EXPECT_TRUE(IsOneLineError(r, "base.vmdk"));
  EXPECT_TRUE(IsOneLineError(r, "CID"));
  EXPECT_FALSE(fs::exists(out_));
}

TEST_F(ChainTest, ExportFailsNamingMissingParent) {
  ASSERT_TRUE(CreateBase("base.vmdk"));
  ASSERT_TRUE(CreateChild("middle.vmdk", "base.vmdk"));
  ASSERT_TRUE(CreateChild("top.vmdk", "middle.vmdk"));
  fs::remove(dir_ / "middle.vmdk");

  CommandResult r = Clonectl({"export", dir_ / "top.vmdk", out_});
  EXPECT_TRUE(IsOneLineError(r, "middle.vmdk"));
  EXPECT_FALSE(fs::exists(out_));
}

TEST_F(ChainTest, ExportFailsOnTwoLinkLoop) {
  // A monolithicFlat base has a plain-text descriptor we can edit: point it back at its
  // child with matching CIDs, so only the loop is wrong.
  ASSERT_TRUE(CreateBase("base.vmdk", "subformat=monolithicFlat"));
  ASSERT_TRUE(CreateChild("child.vmdk", "base.vmdk"));
  const auto child_cid = QemuCid(dir_ / "child.vmdk");
  ASSERT_TRUE(child_cid.has_value());
  std::string text = ReadText(dir_ / "base.vmdk");
  const size_t at = text.find("parentCID=ffffffff\n");
  ASSERT_NE(at, std::string::npos) << text;
  text.replace(at, 19, "parentCID=" + Hex8(*child_cid) + "\nparentFileNameHint=\"child.vmdk\"\n");
  WriteText(dir_ / "base.vmdk", text);

  CommandResult r = Clonectl({"export", dir_ / "child.vmdk", out_});
  EXPECT_TRUE(IsOneLineError(r, "loop"));
  EXPECT_FALSE(fs::exists(out_));
}

TEST_F(ChainTest, ExportFailsOnDescriptorThatIsItsOwnParent) {
  WriteText(dir_ / "self.vmdk",
            "# Disk DescriptorFile\n"
            "version=1\n"
            "CID=1234abcd\n"
            "parentCID=1234abcd\n"
            "createType=\"monolithicFlat\"\n"
            "parentFileNameHint=\"self.vmdk\"\n"
            "\n"
            "RW 2048 FLAT \"self-flat.vmdk\" 0\n");
  { std::ofstream create(dir_ / "self-flat.vmdk"); }
  fs::resize_file(dir_ / "self-flat.vmdk", 2048 * 512);

  CommandResult r = Clonectl({"export", dir_ / "self.vmdk", out_});
  EXPECT_TRUE(IsOneLineError(r, "loop"));
  EXPECT_FALSE(fs::exists(out_));
}

}  // namespace
}  // namespace integration
