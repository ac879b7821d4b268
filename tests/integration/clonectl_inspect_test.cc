// SPDX-License-Identifier: Apache-2.0
// The clonectl binary's verify, info and tree: --help, exit statuses (verify: 0 when all
// is well, 1 when it found a problem, with the report on stdout and nothing on stderr),
// and the one-line error when there is no VM to look at.

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/integration/integration_util.h"
#include "tests/support/test_support.h"

namespace integration {
namespace {

namespace fs = std::filesystem;
using testing_support::TempDir;

class ClonectlInspectTest : public ::testing::Test {
 protected:
  // vm, a clone of a qemu-made disk, with snapshot point s1; c1, a clone of s1.
  void SetUp() override {
    ASSERT_TRUE(RunsOk({"qemu-img", "create", "-q", "-f", "vmdk", dir_ / "disk.vmdk", "16M"}));
    ASSERT_TRUE(QemuIo(dir_ / "disk.vmdk", {"write -P 0x5a 0 64k"}));
    ASSERT_TRUE(RunsOk({testing_support::ClonectlPath(), "clone", dir_ / "disk.vmdk", vm_}));
    ASSERT_TRUE(RunsOk({testing_support::ClonectlPath(), "snapshot", vm_, "s1"}));
    ASSERT_TRUE(RunsOk({testing_support::ClonectlPath(), "clone", vm_, c1_, "--snapshot", "s1"}));
  }

  // The checksum file of vm's frozen layer (the one s1 froze).
  std::string SumsFile() {
    nlohmann::json config = ParseJson(ReadText(vm_ + "/.clonefs/clone.json"));
    return vm_ + "/.clonefs/" + config["disks"][0]["frozen"][0]["sums_file"].get<std::string>();
  }

  TempDir dir_;
  const std::string vm_ = dir_ / "vm";
  const std::string c1_ = dir_ / "c1";
};

TEST_F(ClonectlInspectTest, EachCommandHasHelp) {
  for (const char* command : {"verify", "info", "tree"}) {
    SCOPED_TRACE(command);
    CommandResult r = Clonectl({command, "--help"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("VM"), std::string::npos) << r.out;
  }
  CommandResult r = Clonectl({"--help"});
  for (const char* command : {"verify", "info", "tree"}) {
    EXPECT_NE(r.out.find(command), std::string::npos) << r.out;
  }
}

TEST_F(ClonectlInspectTest, VerifyExitsZeroWhenAllIsWellAndOneWhenItFindsAProblem) {
  for (const std::vector<std::string>& args : {std::vector<std::string>{"verify", vm_},
                                               {"verify", c1_, "--full"},
                                               {"verify", vm_ + "/"}}) {
    CommandResult r = Clonectl(args);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_EQ(r.err, "");
    EXPECT_NE(r.out.find("checks passed"), std::string::npos) << r.out;
  }

  const std::string sums = SumsFile();
  fs::permissions(sums, fs::perms::owner_write, fs::perm_options::add);
  std::string bytes = ReadText(sums);
  bytes[30] ^= 0x5a;
  WriteText(sums, bytes);
  CommandResult r = Clonectl({"verify", c1_});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_NE(r.out.find("FAILED  disk disk: checksums of layer "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(sums + ": checksum file header is damaged"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(c1_ + ": 1 of 4 checks FAILED\n"), std::string::npos) << r.out;

  r = Clonectl({"verify", c1_, "--full", "--json"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  nlohmann::json json = ParseJson(r.out);
  ASSERT_TRUE(json.is_object()) << r.out;
  EXPECT_FALSE(json["ok"].get<bool>());
  EXPECT_EQ(json["summary"]["failed"], 1);
}

TEST_F(ClonectlInspectTest, NoVmToLookAtIsAOneLineError) {
  fs::create_directories(dir_ / "plain");
  for (const char* command : {"verify", "info", "tree"}) {
    SCOPED_TRACE(command);
    EXPECT_TRUE(IsOneLineError(Clonectl({command, dir_ / "absent"}), dir_ / "absent"));
    EXPECT_TRUE(IsOneLineError(Clonectl({command, dir_ / "plain"}), dir_ / "plain"));
    EXPECT_TRUE(IsOneLineError(Clonectl({command}), "VM"));
  }
  WriteText(c1_ + "/.clonefs/clone.json", "{\"format\": 2");
  for (const char* command : {"verify", "info", "tree"}) {
    SCOPED_TRACE(command);
    EXPECT_TRUE(IsOneLineError(Clonectl({command, c1_}), c1_ + "/.clonefs/clone.json"));
  }
}

TEST_F(ClonectlInspectTest, InfoAndTreeShowTheChainAndTheTree) {
  CommandResult r = Clonectl({"info", c1_, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json info = ParseJson(r.out);
  ASSERT_TRUE(info.is_object()) << r.out;
  EXPECT_EQ(info["parent"]["path"], vm_);
  const auto& chain = info["disks"][0]["chain"];
  ASSERT_EQ(chain.size(), 3u) << r.out;
  EXPECT_EQ(chain[0]["kind"], "base");
  EXPECT_EQ(chain[1]["origin"], "inherited");
  EXPECT_EQ(chain[2]["kind"], "top");
  r = Clonectl({"info", vm_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(c1_ + " (snapshot point 's1'): ok"), std::string::npos) << r.out;

  r = Clonectl({"tree", vm_, "--ascii"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("`-- snapshot s1 ("), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("    |-- clone " + c1_ + "\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("    `-- (you are here)\n"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace integration
