// SPDX-License-Identifier: Apache-2.0
#include "fs/engine/clone_config.h"

#include <gtest/gtest.h>

#include <string>

namespace engine {
namespace {

const char* kFormat1 = R"({
  "format": 1, "display_name": "c1", "created_utc": "2026-11-29T07:50:00Z",
  "source": "golden/base.vmdk", "vmx": null,
  "disks": [{"name": "base", "capacity_bytes": 1073741824,
             "parent_path": "/golden/base.vmdk",
             "parent_fingerprint": [{"path": "/golden/base.vmdk", "size_bytes": 65536,
                                     "mtime_ns": 1, "inode": 2, "cid": "9bb02be3",
                                     "head_xxh3": "0123456789abcdef"}],
             "layer_id": "000102030405060708090a0b0c0d0e0f",
             "delta_file": "base.delta", "map_file": "base.map"}]})";

FrozenLayer Layer(const std::string& id, const std::string& parent) {
  return {id, parent, id + ".delta", id + ".map", id + ".sums", 3};
}

CloneConfig ThreeSnapshots() {
  CloneConfig c = ParseCloneConfig(kFormat1).value();
  CloneDisk& d = c.disks[0];
  d.inherited = {Layer(std::string(32, 'a'), ""), Layer(std::string(32, 'b'), std::string(32, 'a'))};
  // Own layers: c over the inherited top, then two branches d and e over c.
  d.frozen = {Layer(std::string(32, 'c'), std::string(32, 'b')),
              Layer(std::string(32, 'd'), std::string(32, 'c')),
              Layer(std::string(32, 'e'), std::string(32, 'c'))};
  d.parent_layer_id = std::string(32, 'e');
  c.parent = ParentVm{"/vms/golden", std::string(32, '9'), "base-image"};
  c.snapshots = {{"one", "2026-11-29T08:00:00Z", "snapshots/one.vmx", std::nullopt,
                  {std::string(32, 'c')}},
                 {"two", "2026-11-29T09:00:00Z", std::nullopt, std::nullopt,
                  {std::string(32, 'd')}}};
  return c;
}

TEST(CloneConfigTest, Format1IsReadAsFormat2WithOneLayer) {
  auto c = ParseCloneConfig(kFormat1);
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c.value().format, kCloneConfigFormat);
  EXPECT_EQ(c.value().vm_id, "000102030405060708090a0b0c0d0e0f");
  EXPECT_TRUE(c.value().disks[0].inherited.empty());
  EXPECT_TRUE(c.value().disks[0].frozen.empty());
  EXPECT_EQ(c.value().disks[0].parent_layer_id, "");
  EXPECT_FALSE(c.value().parent);
  EXPECT_TRUE(c.value().snapshots.empty());
}

TEST(CloneConfigTest, Format2RoundTripsLayersSnapshotsAndParent) {
  const CloneConfig c = ThreeSnapshots();
  auto parsed = ParseCloneConfig(SerializeCloneConfig(c));
  ASSERT_TRUE(parsed) << parsed.error().message();
  EXPECT_EQ(parsed.value(), c);
}

TEST(CloneConfigTest, ChainBelowFollowsTheTreeDownToTheBase) {
  const CloneConfig c = ThreeSnapshots();
  auto chain = c.disks[0].ChainBelow(c.disks[0].parent_layer_id);
  ASSERT_TRUE(chain) << chain.error().message();
  std::string order;
  for (const FrozenLayer& l : chain.value()) order += l.layer_id[0];
  EXPECT_EQ(order, "abce");  // d is another branch
  EXPECT_EQ(c.disks[0].ChainBelow(std::string(32, 'b')).value().size(), 2u);
}

TEST(CloneConfigTest, ABrokenChainOrSnapshotIsRefusedNamingTheLayer) {
  CloneConfig c = ThreeSnapshots();
  c.disks[0].frozen.erase(c.disks[0].frozen.begin());  // c is gone: e hangs in the air
  auto broken = ParseCloneConfig(SerializeCloneConfig(c));
  ASSERT_FALSE(broken);
  EXPECT_NE(broken.error().message().find("layer " + std::string(32, 'c') + " is not in its chain"),
            std::string::npos)
      << broken.error().message();

  c = ThreeSnapshots();
  c.snapshots[1].layer_ids = {std::string(32, 'f')};
  auto snapshot = ParseCloneConfig(SerializeCloneConfig(c));
  ASSERT_FALSE(snapshot);
  EXPECT_NE(snapshot.error().message().find("snapshot 1 (two)"), std::string::npos);
}

TEST(CloneConfigTest, AnotherFormatIsNotSupported) {
  auto c = ParseCloneConfig(R"({"format": 3})");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code(), ENOTSUP);
}

TEST(CloneConfigTest, LayerFilePathsAreRelativeToTheMetadataDirectoryUnlessAbsolute) {
  EXPECT_EQ(LayerFilePath("/vm/.clonefs", "base.delta"), "/vm/.clonefs/base.delta");
  EXPECT_EQ(LayerFilePath("/vm/.clonefs", "/golden/.clonefs/x.delta"), "/golden/.clonefs/x.delta");
}

}  // namespace
}  // namespace engine
