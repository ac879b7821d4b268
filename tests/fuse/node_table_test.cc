// SPDX-License-Identifier: Apache-2.0
#include "fs/fuse/node_table.h"

#include <gtest/gtest.h>

namespace clonefs {
namespace {

TEST(NodeTableTest, RootIsAlwaysThere) {
  NodeTable table;
  auto root = table.Get(FUSE_ROOT_ID);
  ASSERT_TRUE(root);
  EXPECT_EQ(root->path, ".");
  table.Forget(FUSE_ROOT_ID, 100);
  EXPECT_TRUE(table.Get(FUSE_ROOT_ID));
}

TEST(NodeTableTest, OnePathOneInodeUntilForgotten) {
  NodeTable table;
  fuse_ino_t a = table.LookupPassthrough("a.vmx");
  EXPECT_EQ(table.LookupPassthrough("a.vmx"), a);
  EXPECT_NE(table.LookupPassthrough("b"), a);
  table.Forget(a, 1);
  EXPECT_TRUE(table.Get(a));  // one lookup left
  table.Forget(a, 1);
  EXPECT_FALSE(table.Get(a));
  EXPECT_NE(table.LookupPassthrough("a.vmx"), a);  // a new node
}

TEST(NodeTableTest, PresentedNodesAreNeverForgotten) {
  NodeTable table;
  fuse_ino_t flat = table.AddPresented(Node{NodeKind::kFlat, "", 0});
  table.Forget(flat, 5);
  auto node = table.Get(flat);
  ASSERT_TRUE(node);
  EXPECT_EQ(node->kind, NodeKind::kFlat);
}

TEST(NodeTableTest, RenameMovesADirectoryAndEverythingUnderIt) {
  NodeTable table;
  fuse_ino_t dir = table.LookupPassthrough("logs");
  fuse_ino_t file = table.LookupPassthrough("logs/vmware.log");
  fuse_ino_t other = table.LookupPassthrough("logs2");
  table.Rename("logs", "old");
  EXPECT_EQ(table.Get(dir)->path, "old");
  EXPECT_EQ(table.Get(file)->path, "old/vmware.log");
  EXPECT_EQ(table.Get(other)->path, "logs2");
  EXPECT_EQ(table.LookupPassthrough("old/vmware.log"), file);
  EXPECT_NE(table.LookupPassthrough("logs"), dir);
}

TEST(NodeTableTest, AFileCreatedWhereAnUnlinkedOneWasGetsANewInode) {
  NodeTable table;
  fuse_ino_t old = table.LookupPassthrough("notes.txt");
  table.Unlinked("notes.txt");
  EXPECT_TRUE(table.Get(old));  // still open somewhere, until forgotten
  fuse_ino_t fresh = table.LookupPassthrough("notes.txt");
  EXPECT_NE(fresh, old);
  table.Forget(old, 1);
  EXPECT_FALSE(table.Get(old));
  EXPECT_EQ(table.LookupPassthrough("notes.txt"), fresh);  // the old forget left it alone
}

TEST(NodeTableTest, JoinPathTreatsDotAsTheRoot) {
  EXPECT_EQ(JoinPath(".", "a"), "a");
  EXPECT_EQ(JoinPath("a/b", "c"), "a/b/c");
}

}  // namespace
}  // namespace clonefs
