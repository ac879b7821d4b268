// SPDX-License-Identifier: Apache-2.0
// clonectl tree on real VMs made with the real commands: snapshot points nest as their
// layers do, clones hang under the snapshot point they were made from and show their own
// snapshot points and clones, the current state is marked, and moved clones and records
// forming a cycle are shown, never followed.
#include "tools/lib/vm_tree.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "tests/tools/managed_vm_fixture.h"
#include "tools/lib/dependents.h"

namespace tools {
namespace {

namespace fs = std::filesystem;

class VmTreeTest : public ManagedVmTest {
 protected:
  // vm: snapshot s1, clone c1 from s1, snapshot s2, clone c2 from s2; c1a, a clone of
  // c1's current state (which takes snapshot point for-c1a in c1 first).
  void SetUp() override {
    ManagedVmTest::SetUp();
    Write(Path("vm"), 0, 1, 'a');
    Snapshot(Path("vm"), "s1");
    Clone(Path("vm"), "c1", "s1");
    Write(Path("vm"), 1, 1, 'b');
    Snapshot(Path("vm"), "s2");
    Clone(Path("vm"), "c2", "s2");
    Write(Path("c1"), 2, 1, 'c');
    Clone(Path("c1"), "c1a", "");
  }

  std::string Tree(const std::string& vm, bool ascii = false) {
    auto tree = BuildVmTree(storage_, vm);
    EXPECT_TRUE(tree) << tree.error().message();
    return tree ? RenderVmTree(tree.value(), ascii) : "";
  }

  // `text` with DIR standing for the test's directory and <VM NAME> for the time of
  // snapshot point NAME of VM.
  std::string Expected(std::string text) {
    for (size_t at = 0; (at = text.find("DIR", at)) != std::string::npos;) {
      text.replace(at, 3, dir_.path());
      at += dir_.path().size();
    }
    for (size_t at = 0; (at = text.find('<', at)) != std::string::npos;) {
      const size_t end = text.find('>', at);
      const std::string key = text.substr(at + 1, end - at - 1);
      const size_t space = key.find(' ');
      const engine::CloneConfig config = Config(Path(key.substr(0, space)));
      const engine::SnapshotPoint* snapshot = config.FindSnapshot(key.substr(space + 1));
      text.replace(at, end - at + 1, snapshot ? snapshot->created_utc : "?");
    }
    return text;
  }
};

TEST_F(VmTreeTest, NestsSnapshotPointsAndClonesAndMarksTheCurrentState) {
  EXPECT_EQ(Tree(Path("vm")), Expected(R"(base: DIR/base.vmdk
DIR/vm
└── snapshot s1 (<vm s1>)
    ├── clone DIR/c1
    │   └── snapshot for-c1a (<c1 for-c1a>)
    │       ├── clone DIR/c1a
    │       └── (current state)
    └── snapshot s2 (<vm s2>)
        ├── clone DIR/c2
        └── (you are here)
)"));
  EXPECT_EQ(Tree(Path("vm"), /*ascii=*/true), Expected(R"(base: DIR/base.vmdk
DIR/vm
`-- snapshot s1 (<vm s1>)
    |-- clone DIR/c1
    |   `-- snapshot for-c1a (<c1 for-c1a>)
    |       |-- clone DIR/c1a
    |       `-- (current state)
    `-- snapshot s2 (<vm s2>)
        |-- clone DIR/c2
        `-- (you are here)
)"));
}

TEST_F(VmTreeTest, AClonesTreeNamesItsParentsNearestFirst) {
  EXPECT_EQ(Tree(Path("c1a")), Expected(R"(parent: DIR/c1 (snapshot for-c1a)
parent: DIR/vm (snapshot s1)
base: DIR/base.vmdk
DIR/c1a
└── (you are here)
)"));
  EXPECT_EQ(Tree(Path("c1")), Expected(R"(parent: DIR/vm (snapshot s1)
base: DIR/base.vmdk
DIR/c1
└── snapshot for-c1a (<c1 for-c1a>)
    ├── clone DIR/c1a
    └── (you are here)
)"));
}

TEST_F(VmTreeTest, AMovedCloneOrParentIsShownWithItsProblem) {
  fs::rename(Path("c2"), Path("c2-moved"));
  const std::string tree = Tree(Path("vm"));
  EXPECT_NE(tree.find(Expected(R"(
        ├── clone DIR/c2 (missing: moved or deleted without clonectl)
        └── (you are here)
)")),
            std::string::npos)
      << tree;
  fs::rename(Path("vm"), Path("vm-moved"));
  EXPECT_EQ(Tree(Path("c1a")), Expected(R"(parent: DIR/c1 (snapshot for-c1a)
parent: DIR/vm (snapshot s1): missing: moved or deleted without clonectl
base: DIR/base.vmdk
DIR/c1a
└── (you are here)
)"));
}

// Records edited by hand so that vm is also a clone of c1: each VM is shown once.
TEST_F(VmTreeTest, RecordsFormingACycleAreNotFollowed) {
  engine::CloneConfig vm = Config(Path("vm"));
  const engine::CloneConfig c1 = Config(Path("c1"));
  vm.parent = engine::ParentVm{Path("c1"), c1.vm_id, "for-c1a"};
  ASSERT_TRUE(engine::WriteFileAtomically(storage_, Path("vm/.clonefs/clone.json"),
                                          engine::SerializeCloneConfig(vm))
                  .ok());
  ASSERT_TRUE(AddDependent(storage_, Path("c1/.clonefs"),
                           {Path("vm"), vm.vm_id, "for-c1a", "2026-01-01T00:00:00Z"})
                  .ok());
  const std::string tree = Tree(Path("vm"));
  EXPECT_EQ(tree.substr(0, tree.find('\n', tree.find('\n') + 1) + 1),
            Expected(R"(parent: DIR/c1 (snapshot for-c1a)
parent: DIR/vm (snapshot s1): already shown (the parent records form a cycle)
)")) << tree;
  EXPECT_NE(tree.find(Expected(R"(
    │   └── snapshot for-c1a (<c1 for-c1a>)
    │       ├── clone DIR/c1a
    │       ├── clone DIR/vm (already shown above: its records form a cycle)
    │       └── (current state)
)")),
            std::string::npos)
      << tree;
}

TEST_F(VmTreeTest, SomethingElseIsAnError) {
  fs::create_directories(Path("plain"));
  auto tree = BuildVmTree(storage_, Path("plain"));
  ASSERT_FALSE(tree);
  EXPECT_NE(tree.error().message().find("not managed by clonefs"), std::string::npos);
}

}  // namespace
}  // namespace tools
