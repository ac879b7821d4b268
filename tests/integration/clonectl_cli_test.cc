// SPDX-License-Identifier: Apache-2.0
// The clonectl command line: --help everywhere, one-line errors for bad usage, export's
// refusal to clobber or half-make its output, and the shape of inspect --json.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/integration/integration_util.h"
#include "tests/support/test_support.h"

namespace integration {
namespace {

namespace fs = std::filesystem;
using testing_support::TempDir;

constexpr uint64_t kCapacity = 16 * 1024 * 1024;

class ClonectlCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(
        RunsOk({"qemu-img", "create", "-q", "-f", "vmdk", image_, std::to_string(kCapacity)}));
    ASSERT_TRUE(QemuIo(image_, {"write -P 0x5a 0 64k"}));
  }

  std::vector<std::string> DirEntries() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir_.path())) {
      names.push_back(entry.path().filename());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  TempDir dir_;
  const std::string image_ = dir_ / "disk.vmdk";
};

TEST_F(ClonectlCliTest, HelpExitsZeroAndListsSubcommands) {
  CommandResult r = Clonectl({"--help"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("inspect"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("export"), std::string::npos) << r.out;
}

TEST_F(ClonectlCliTest, SubcommandHelpExitsZero) {
  for (const char* subcommand : {"inspect", "export"}) {
    SCOPED_TRACE(subcommand);
    CommandResult r = Clonectl({subcommand, "--help"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_FALSE(r.out.empty());
  }
}

TEST_F(ClonectlCliTest, UnknownSubcommandIsAOneLineError) {
  EXPECT_TRUE(IsOneLineError(Clonectl({"frobnicate"}), "frobnicate"));
}

TEST_F(ClonectlCliTest, MissingArgumentsAreOneLineErrors) {
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"inspect"},
      {"export"},
      {"export", image_},
  };
  for (const auto& args : cases) {
    SCOPED_TRACE(args.empty() ? "(no arguments)"
                              : args[0] + " with " + std::to_string(args.size() - 1) + " args");
    EXPECT_TRUE(IsOneLineError(Clonectl(args), ""));
  }
  EXPECT_EQ(DirEntries(), std::vector<std::string>{"disk.vmdk"});
}

TEST_F(ClonectlCliTest, ExtraArgumentIsAOneLineError) {
  EXPECT_TRUE(IsOneLineError(Clonectl({"inspect", image_, "surplus"}), "surplus"));
}

TEST_F(ClonectlCliTest, InspectOfMissingFileNamesIt) {
  EXPECT_TRUE(IsOneLineError(Clonectl({"inspect", dir_ / "absent.vmdk"}), "absent.vmdk"));
}

TEST_F(ClonectlCliTest, InspectOfNonVmdkFileNamesIt) {
  testing_support::WriteFileBytes(dir_ / "notes.txt",
                                  {std::byte{'h'}, std::byte{'i'}, std::byte{'\n'}});
  EXPECT_TRUE(IsOneLineError(Clonectl({"inspect", dir_ / "notes.txt"}), "notes.txt"));
  EXPECT_TRUE(
      IsOneLineError(Clonectl({"export", dir_ / "notes.txt", dir_ / "out.raw"}), "notes.txt"));
  EXPECT_FALSE(fs::exists(dir_ / "out.raw"));
}

TEST_F(ClonectlCliTest, InspectPrintsCreateType) {
  CommandResult r = Clonectl({"inspect", image_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("monolithicSparse"), std::string::npos) << r.out;
}

TEST_F(ClonectlCliTest, ExportRefusesToOverwriteExistingOutput) {
  const std::string out = dir_ / "out.raw";
  const std::vector<std::byte> precious = {std::byte{1}, std::byte{2}, std::byte{3}};
  testing_support::WriteFileBytes(out, precious);

  EXPECT_TRUE(IsOneLineError(Clonectl({"export", image_, out}), "out.raw"));
  EXPECT_EQ(testing_support::ReadFileBytes(out), precious);
  EXPECT_EQ(DirEntries(), (std::vector<std::string>{"disk.vmdk", "out.raw"}));
}

TEST_F(ClonectlCliTest, ExportIntoMissingDirectoryFailsAndCreatesNothing) {
  CommandResult r = Clonectl({"export", image_, dir_ / "no-such-dir/out.raw"});
  EXPECT_TRUE(IsOneLineError(r, "no-such-dir"));
  EXPECT_EQ(DirEntries(), std::vector<std::string>{"disk.vmdk"});
}

TEST_F(ClonectlCliTest, ExportFailingMidwayRemovesItsOutput) {
  // A stream whose only grain fails to inflate: the disk opens (headers and tables are
  // fine), so export gets as far as reading data before it fails.
  const std::string stream = dir_ / "stream.vmdk";
  ASSERT_TRUE(RunsOk({"qemu-img", "convert", "-q", "-f", "vmdk", "-O", "vmdk", "-o",
                      "subformat=streamOptimized", image_, stream}));
  std::string bytes = ReadText(stream);
  const size_t zlib_header = bytes.find("\x78\x9c", 512);
  ASSERT_NE(zlib_header, std::string::npos);
  bytes.replace(zlib_header + 2, 40, std::string(40, '\xff'));  // BTYPE 11: invalid
  WriteText(stream, bytes);

  CommandResult r = Clonectl({"export", stream, dir_ / "out.raw"});
  EXPECT_TRUE(IsOneLineError(r, "stream.vmdk"));
  EXPECT_EQ(DirEntries(), (std::vector<std::string>{"disk.vmdk", "stream.vmdk"}));
}

TEST_F(ClonectlCliTest, ExportWritesCapacitySizedFile) {
  const std::string out = dir_ / "out.raw";
  CommandResult r = Clonectl({"export", image_, out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(fs::file_size(out), kCapacity);
  EXPECT_EQ(DirEntries(), (std::vector<std::string>{"disk.vmdk", "out.raw"}));
}

TEST_F(ClonectlCliTest, InspectJsonHasDocumentedFields) {
  CommandResult r = Clonectl({"inspect", image_, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Valid for a strict parser too, not just nlohmann's.
  const std::string saved = dir_ / "inspect.json";
  testing_support::WriteFileBytes(
      saved,
      std::vector<std::byte>(reinterpret_cast<const std::byte*>(r.out.data()),
                             reinterpret_cast<const std::byte*>(r.out.data()) + r.out.size()));
  EXPECT_TRUE(RunsOk({"python3", "-c", "import json,sys; json.load(open(sys.argv[1]))", saved}));

  nlohmann::json json = ParseJson(r.out);
  ASSERT_TRUE(json.is_object()) << r.out;
  EXPECT_TRUE(json["file"].is_string());
  EXPECT_EQ(json["create_type"], "monolithicSparse");
  EXPECT_EQ(json["capacity_bytes"], kCapacity);
  EXPECT_EQ(CidOf(json["cid"]), QemuCid(image_));
  EXPECT_EQ(CidOf(json["parent_cid"]), 0xffffffffu);
  EXPECT_TRUE(json["allocated_bytes"].is_number_unsigned());

  ASSERT_TRUE(json["chain"].is_array());
  ASSERT_EQ(json["chain"].size(), 1u);
  nlohmann::json& link = json["chain"][0];
  EXPECT_TRUE(link["file"].is_string());
  EXPECT_TRUE(link["file"].get<std::string>().ends_with("disk.vmdk")) << link["file"];
  EXPECT_EQ(link["create_type"], "monolithicSparse");
  EXPECT_EQ(CidOf(link["cid"]), QemuCid(image_));
  EXPECT_EQ(CidOf(link["parent_cid"]), 0xffffffffu);
  EXPECT_EQ(link["data_bytes"], 64 * 1024u);
  EXPECT_EQ(link["zero_bytes"], 0u);
  EXPECT_TRUE(link["warnings"].is_array());

  ASSERT_TRUE(link["extents"].is_array());
  ASSERT_EQ(link["extents"].size(), 1u);
  nlohmann::json& extent = link["extents"][0];
  EXPECT_EQ(extent["access"], "RW");
  EXPECT_EQ(extent["type"], "SPARSE");
  EXPECT_TRUE(extent["file"].is_string());
  EXPECT_TRUE(extent["file"].get<std::string>().ends_with("disk.vmdk")) << extent["file"];
  EXPECT_EQ(extent["size_bytes"], kCapacity);
}

TEST_F(ClonectlCliTest, InspectJsonListsFlatExtentsInOrder) {
  const std::string flat = dir_ / "split.vmdk";
  ASSERT_TRUE(RunsOk({"qemu-img", "create", "-q", "-f", "vmdk", "-o",
                      "subformat=twoGbMaxExtentFlat", flat, "5G"}));
  nlohmann::json json = InspectJson(flat);
  ASSERT_TRUE(json.is_object());
  EXPECT_EQ(json["create_type"], "twoGbMaxExtentFlat");
  nlohmann::json& extents = json["chain"][0]["extents"];
  ASSERT_TRUE(extents.is_array());
  ASSERT_EQ(extents.size(), 3u);
  const uint64_t kGiB = uint64_t{1} << 30;
  const uint64_t sizes[] = {2 * kGiB, 2 * kGiB, 1 * kGiB};
  for (size_t i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(extents[i]["type"], "FLAT");
    EXPECT_EQ(extents[i]["access"], "RW");
    EXPECT_TRUE(extents[i]["file"].get<std::string>().ends_with("split-f00" +
                                                                std::to_string(i + 1) + ".vmdk"))
        << extents[i]["file"];
    EXPECT_EQ(extents[i]["size_bytes"], sizes[i]);
  }
}

}  // namespace
}  // namespace integration
