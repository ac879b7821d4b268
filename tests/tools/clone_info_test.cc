// SPDX-License-Identifier: Apache-2.0
// clonectl info on real files: each disk's whole chain with what every layer holds, the
// parent VM, snapshot points and dependents, and who holds the VM (a mount or a command).
#include "tools/lib/clone_info.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "fs/engine/vm_lock.h"
#include "tests/tools/managed_vm_fixture.h"

namespace tools {
namespace {

namespace fs = std::filesystem;
using engine::kBlockBytes;
using Json = nlohmann::ordered_json;

class CloneInfoTest : public ManagedVmTest {
 protected:
  Json Info(const std::string& vm) {
    auto info = CloneInfo(storage_, vm);
    EXPECT_TRUE(info) << info.error().message();
    return info ? info.value() : Json();
  }

  // "kind origin owned_bytes" per chain entry.
  static std::vector<std::string> Chain(const Json& disk) {
    std::vector<std::string> out;
    for (const Json& layer : disk["chain"]) {
      if (layer["kind"] == "base") {
        out.push_back("base " + std::string(layer["ok"].get<bool>() ? "ok" : "broken"));
      } else {
        out.push_back(layer["kind"].get<std::string>() + " " + layer["origin"].get<std::string>() +
                      " " + std::to_string(layer["owned_bytes"].get<uint64_t>()));
      }
    }
    return out;
  }
};

TEST_F(CloneInfoTest, ShowsEachDisksChainWithWhatEachLayerHolds) {
  Write(Path("vm"), 3, 2, 'a');
  Snapshot(Path("vm"), "s1");
  Write(Path("vm"), 8, 3, 'b');
  Snapshot(Path("vm"), "s2");
  Write(Path("vm"), 20, 1, 'e');
  Clone(Path("vm"), "c1", "s1");
  Write(Path("c1"), 0, 4, 'c');

  Json vm = Info(Path("vm"));
  ASSERT_EQ(vm["disks"].size(), 1u);
  const Json& disk = vm["disks"][0];
  EXPECT_EQ(Chain(disk), (std::vector<std::string>{"base ok", "frozen own 8192", "frozen own 12288",
                                                   "top own 4096"}));
  EXPECT_EQ(disk["chain"][1]["snapshot"], "s1");
  EXPECT_EQ(disk["chain"][2]["snapshot"], "s2");
  EXPECT_EQ(disk["chain"][3]["delta_file"],
            Path("vm/.clonefs/") + Config(Path("vm")).disks[0].delta_file);
  // The fields info always had: the top layer's share and space, the base's state.
  EXPECT_EQ(disk["owned_bytes"], 4096u);
  EXPECT_TRUE(disk["parent_ok"].get<bool>());
  EXPECT_EQ(disk["delta_used_bytes"], disk["chain"][3]["host_bytes"]);
  EXPECT_TRUE(disk["other_layers"].empty());
  EXPECT_GT(vm["space_used_bytes"].get<uint64_t>(), 6 * kBlockBytes);  // data, maps, sums
  EXPECT_EQ(vm["inherited_bytes"], 0u);
  EXPECT_TRUE(vm["parent"].is_null());
  ASSERT_EQ(vm["snapshots"].size(), 2u);
  EXPECT_FALSE(vm["snapshots"][0]["current"].get<bool>());
  EXPECT_TRUE(vm["snapshots"][1]["current"].get<bool>());
  EXPECT_EQ(vm["snapshots"][0]["dependents"], Json::array({Path("c1")}));
  ASSERT_EQ(vm["dependents"].size(), 1u);
  EXPECT_EQ(vm["dependents"][0]["path"], Path("c1"));
  EXPECT_EQ(vm["dependents"][0]["snapshot"], "s1");
  EXPECT_TRUE(vm["dependents"][0]["ok"].get<bool>());
  EXPECT_FALSE(vm["mounted"].get<bool>());

  Json c1 = Info(Path("c1"));
  const Json& cdisk = c1["disks"][0];
  EXPECT_EQ(Chain(cdisk),
            (std::vector<std::string>{"base ok", "frozen inherited 8192", "top own 16384"}));
  EXPECT_EQ(cdisk["chain"][1]["vm"], Path("vm"));
  EXPECT_EQ(cdisk["chain"][1]["map_file"],
            Path("vm/.clonefs/") + Config(Path("vm")).disks[0].frozen[0].map_file);
  EXPECT_EQ(c1["parent"]["path"], Path("vm"));
  EXPECT_EQ(c1["parent"]["snapshot"], "s1");
  EXPECT_TRUE(c1["parent"]["ok"].get<bool>());
  EXPECT_EQ(c1["inherited_bytes"], cdisk["chain"][1]["host_bytes"]);
  EXPECT_EQ(c1["space_used_bytes"], cdisk["chain"][2]["host_bytes"]);

  const std::string text = RenderCloneInfoText(c1);
  EXPECT_NE(text.find("parent:      " + Path("vm") + ", snapshot point 's1'\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find(Path("base.vmdk") + " (fingerprint matches)\n"), std::string::npos) << text;
  EXPECT_NE(text.find(cdisk["chain"][1]["layer_id"].get<std::string>().substr(0, 16) +
                      "   inherited           8.0 KiB"),
            std::string::npos)
      << text;
}

TEST_F(CloneInfoTest, ShowsBrokenLayersAndAMissingParentOrDependentWithoutFailing) {
  Write(Path("vm"), 3, 2, 'a');
  Snapshot(Path("vm"), "s1");
  Clone(Path("vm"), "c1", "s1");
  Clone(Path("vm"), "c2", "s1");
  const std::string map = Path("vm/.clonefs/") + Config(Path("vm")).disks[0].frozen[0].map_file;
  fs::rename(Path("c2"), Path("c2-moved"));
  fs::rename(map, map + ".moved");

  Json vm = Info(Path("vm"));
  const Json& layer = vm["disks"][0]["chain"][1];
  EXPECT_FALSE(layer["ok"].get<bool>());
  EXPECT_TRUE(layer["owned_bytes"].is_null());
  EXPECT_EQ(layer["problem"], map + ": a snapshot layer of the chain is missing");
  ASSERT_EQ(vm["dependents"].size(), 2u);
  EXPECT_TRUE(vm["dependents"][0]["ok"].get<bool>());
  EXPECT_EQ(vm["dependents"][1]["problem"], "missing: moved or deleted without clonectl");
  EXPECT_NE(RenderCloneInfoText(vm).find(map), std::string::npos);

  fs::rename(Path("vm"), Path("vm-moved"));
  Json c1 = Info(Path("c1"));
  EXPECT_FALSE(c1["parent"]["ok"].get<bool>());
  EXPECT_EQ(c1["parent"]["problem"], "missing: moved or deleted without clonectl");
  EXPECT_NE(RenderCloneInfoText(c1).find("(missing: moved or deleted without clonectl)"),
            std::string::npos);
}

// The lock is held by another process (fcntl locks are per process): a clonectl command
// shows as busy, a daemon as mounted.
TEST_F(CloneInfoTest, SaysWhoHoldsTheVm) {
  for (const engine::LockHolder& holder :
       {engine::LockHolder{0, "", "snapshot"}, engine::LockHolder{0, "/mnt/vm", ""}}) {
    int ready[2];
    int done[2];
    ASSERT_EQ(::pipe(ready), 0);
    ASSERT_EQ(::pipe(done), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      ::close(done[1]);  // else the read below never sees the parent's end close
      engine::LockHolder me = holder;
      me.pid = ::getpid();
      auto lock = engine::VmLock::Acquire(Path("vm/.clonefs"), me);
      char c = lock ? 'y' : 'n';
      (void)!::write(ready[1], &c, 1);
      (void)!::read(done[0], &c, 1);  // until the parent closes its end
      ::_exit(0);
    }
    ::close(ready[1]);
    ::close(done[0]);
    char c = 0;
    ASSERT_EQ(::read(ready[0], &c, 1), 1);
    ASSERT_EQ(c, 'y');
    Json info = Info(Path("vm"));
    ::close(done[1]);
    ::close(ready[0]);
    int status = 0;
    ::waitpid(child, &status, 0);
    if (holder.mountpoint.empty()) {
      EXPECT_FALSE(info["mounted"].get<bool>());
      EXPECT_EQ(info["busy"]["operation"], "snapshot");
      EXPECT_EQ(info["busy"]["pid"], child);
      EXPECT_NE(RenderCloneInfoText(info).find("busy (clonectl snapshot, pid " +
                                               std::to_string(child) + ")"),
                std::string::npos);
    } else {
      EXPECT_TRUE(info["mounted"].get<bool>());
      EXPECT_EQ(info["mount"]["mountpoint"], "/mnt/vm");
      EXPECT_EQ(info["mount"]["pid"], child);
      EXPECT_FALSE(info.contains("busy"));
    }
  }
}

TEST_F(CloneInfoTest, AcceptsTheVmPathWithATrailingSlash) {
  auto info = CloneInfo(storage_, Path("vm") + "/");
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info.value()["path"], Path("vm"));
}

}  // namespace
}  // namespace tools
