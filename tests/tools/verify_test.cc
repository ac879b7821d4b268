// SPDX-License-Identifier: Apache-2.0
// clonectl verify on real files: a sound VM passes; each kind of damage (a flipped byte in
// a frozen layer's data, a damaged checksum header, a modified base, a missing inherited
// layer) is reported naming what is wrong, and the other checks still run.
#include "tools/lib/verify.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <filesystem>
#include <fstream>

#include "tests/tools/managed_vm_fixture.h"

namespace tools {
namespace {

namespace fs = std::filesystem;

class VerifyTest : public ManagedVmTest {
 protected:
  // vm: blocks 3-4 'a' frozen in s1, blocks 8-10 'b' in its top; c1, a clone of s1, with
  // block 0 'c' frozen in its own snapshot point c-s1 and block 1 'd' in its top.
  void SetUp() override {
    ManagedVmTest::SetUp();
    Write(Path("vm"), 3, 2, 'a');
    Snapshot(Path("vm"), "s1");
    Write(Path("vm"), 8, 3, 'b');
    Clone(Path("vm"), "c1", "s1");
    Write(Path("c1"), 0, 1, 'c');
    Snapshot(Path("c1"), "c-s1");
    Write(Path("c1"), 1, 1, 'd');
  }

  VerifyReport Verify(const std::string& vm, bool full) {
    VerifyOptions options;
    options.full = full;
    auto report = VerifyVm(storage_, vm, options);
    EXPECT_TRUE(report) << report.error().message();
    return report ? report.value() : VerifyReport{};
  }

  // The failed checks, as "what: detail".
  static std::vector<std::string> Failures(const VerifyReport& report) {
    std::vector<std::string> out;
    for (const VerifyCheck& c : report.checks) {
      if (!c.ok) out.push_back(c.what + ": " + c.detail);
    }
    return out;
  }

  // What was checked, in order, as "disk/what/origin".
  static std::vector<std::string> Kinds(const VerifyReport& report) {
    std::vector<std::string> out;
    for (const VerifyCheck& c : report.checks) {
      out.push_back(c.disk + "/" + c.what + (c.inherited ? "/inherited" : ""));
    }
    return out;
  }

  std::string VmLayerFile(const std::string& field) {
    return Path("vm/.clonefs/") +
           (field == "delta"  ? Config(Path("vm")).disks[0].frozen[0].delta_file
            : field == "sums" ? Config(Path("vm")).disks[0].frozen[0].sums_file
                              : Config(Path("vm")).disks[0].frozen[0].map_file);
  }
};

TEST_F(VerifyTest, ASoundVmPassesEveryCheck) {
  for (bool full : {false, true}) {
    SCOPED_TRACE(full ? "--full" : "plain");
    VerifyReport report = Verify(Path("c1"), full);
    EXPECT_TRUE(report.ok()) << RenderVerifyText(report);
    EXPECT_EQ(report.vm, Path("c1"));
    std::vector<std::string> kinds = {"base/base", "base/layer/inherited",
                                      "base/checksums/inherited"};
    if (full) kinds.push_back("base/scrub/inherited");
    kinds.insert(kinds.end(), {"base/layer", "base/checksums"});
    if (full) kinds.push_back("base/scrub");
    kinds.insert(kinds.end(), {"base/top", "/snapshot"});
    EXPECT_EQ(Kinds(report), kinds);
    // Both frozen layers hold blocks: vm's s1 two, c1's c-s1 one.
    EXPECT_EQ(report.scrubbed_bytes, full ? 3 * engine::kBlockBytes : 0u);
  }
  const std::string text = RenderVerifyText(Verify(Path("vm"), true));
  EXPECT_NE(text.find(Path("vm") + ": all 6 checks passed, 8.0 KiB scrubbed\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("OK      disk base: base chain: " + Path("base.vmdk") +
                      ": fingerprint matches (2 files)\n"),
            std::string::npos)
      << text;
}

TEST_F(VerifyTest, AFlippedByteIsNamedByTheFullScrubOnly) {
  const std::string delta = VmLayerFile("delta");
  // s1 owns blocks 3 and 4, packed side by side: block 4 is the file's second block.
  FlipByte(delta, 1 * engine::kBlockBytes + 100);

  VerifyReport plain = Verify(Path("vm"), false);
  EXPECT_TRUE(plain.ok()) << RenderVerifyText(plain);

  VerifyReport full = Verify(Path("vm"), true);
  EXPECT_FALSE(full.ok());
  ASSERT_EQ(full.bad_blocks.size(), 1u) << RenderVerifyText(full);
  EXPECT_EQ(full.bad_blocks[0].disk, "base");
  EXPECT_EQ(full.bad_blocks[0].file, delta);
  EXPECT_EQ(full.bad_blocks[0].block, 4u);
  EXPECT_EQ(full.bad_blocks[0].offset_bytes, 4 * engine::kBlockBytes);
  EXPECT_EQ(full.bad_blocks[0].file_offset_bytes, 1 * engine::kBlockBytes);
  EXPECT_EQ(Failures(full), std::vector<std::string>{
                                "scrub: " + delta + ": 1 of 2 blocks differ from their checksums"});
  const std::string text = RenderVerifyText(full);
  EXPECT_NE(text.find("FAILED  disk base: bad block 4 (disk byte 16384) at byte 4096 of " + delta +
                      ": its data does not match its checksum\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(Path("vm") + ": 1 of 6 checks FAILED, 1 bad block, 8.0 KiB scrubbed\n"),
            std::string::npos)
      << text;
  // A clone inheriting the layer sees the same block as bad in it.
  VerifyReport clone = Verify(Path("c1"), true);
  ASSERT_EQ(clone.bad_blocks.size(), 1u);
  EXPECT_EQ(clone.bad_blocks[0].file, delta);

  nlohmann::ordered_json json = VerifyReportJson(full);
  EXPECT_FALSE(json["ok"].get<bool>());
  EXPECT_EQ(json["bad_blocks"][0]["block"], 4u);
  EXPECT_EQ(json["bad_blocks"][0]["offset_bytes"], 16384u);
  EXPECT_EQ(json["bad_blocks"][0]["file_offset_bytes"], 4096u);
  EXPECT_EQ(json["summary"]["failed"], 1u);
}

TEST_F(VerifyTest, ADamagedChecksumHeaderIsReported) {
  FlipByte(VmLayerFile("sums"), 30);  // inside the layer id
  VerifyReport report = Verify(Path("vm"), false);
  EXPECT_EQ(Failures(report),
            std::vector<std::string>{"checksums: " + VmLayerFile("sums") +
                                     ": checksum file header is damaged (checksum mismatch)"});
  // The scrub needs the header: it is not attempted, and the failure is reported once.
  report = Verify(Path("vm"), true);
  EXPECT_EQ(Failures(report).size(), 1u) << RenderVerifyText(report);
}

TEST_F(VerifyTest, AModifiedBaseIsReported) {
  const std::string flat = Path("base-flat.vmdk");
  fs::last_write_time(flat, fs::last_write_time(flat) + std::chrono::seconds(5));
  VerifyReport report = Verify(Path("c1"), false);
  EXPECT_EQ(Failures(report),
            std::vector<std::string>{"base: " + flat +
                                     ": modified since the clone was made (mtime changed) (the "
                                     "clone's parent was modified)"});

  fs::permissions(flat, fs::perms::owner_write, fs::perm_options::add);
  std::ofstream(flat, std::ios::app) << "more";
  report = Verify(Path("c1"), false);
  ASSERT_EQ(Failures(report).size(), 1u);
  EXPECT_NE(Failures(report)[0].find(flat + ": the clone's parent was modified: size changed"),
            std::string::npos)
      << Failures(report)[0];
}

TEST_F(VerifyTest, AMissingInheritedLayerIsReportedAndTheRestStillChecked) {
  const std::string map = VmLayerFile("map");
  fs::rename(map, map + ".moved");
  VerifyReport report = Verify(Path("c1"), true);
  EXPECT_EQ(Failures(report), std::vector<std::string>{
                                  "layer: " + map + ": a snapshot layer of the chain is missing"});
  // Its checksum file and scrub are skipped; c1's own layer is still scrubbed.
  EXPECT_EQ(report.scrubbed_bytes, engine::kBlockBytes);
  const std::string text = RenderVerifyText(report);
  EXPECT_NE(text.find("FAILED  disk base: layer " +
                      Config(Path("vm")).disks[0].frozen[0].layer_id.substr(0, 16) +
                      " (inherited): " + map + ": a snapshot layer of the chain is missing\n"),
            std::string::npos)
      << text;
}

TEST_F(VerifyTest, AMissingSnapshotVmxCopyOrLayerRecordIsReported) {
  engine::CloneConfig config = Config(Path("vm"));
  config.snapshots[0].vmx_file = "snapshots/gone.vmx";
  ASSERT_TRUE(engine::WriteFileAtomically(storage_, Path("vm/.clonefs/clone.json"),
                                          engine::SerializeCloneConfig(config))
                  .ok());
  VerifyReport report = Verify(Path("vm"), false);
  EXPECT_EQ(Failures(report),
            std::vector<std::string>{"snapshot: " + Path("vm/.clonefs/snapshots/gone.vmx") +
                                     ": the snapshot point's copy is missing"});
}

TEST_F(VerifyTest, SomethingElseIsAnError) {
  auto report = VerifyVm(storage_, Path("nothing"));
  ASSERT_FALSE(report);
  EXPECT_EQ(report.error().message(), Path("nothing") + ": no such VM directory");
  fs::create_directories(Path("plain"));
  report = VerifyVm(storage_, Path("plain"));
  ASSERT_FALSE(report);
  EXPECT_EQ(report.error().code(), ENOENT);
  EXPECT_NE(report.error().message().find("not managed by clonefs"), std::string::npos);
  std::ofstream(Path("vm/.clonefs/clone.json"), std::ios::trunc) << "{";
  report = VerifyVm(storage_, Path("vm"));
  ASSERT_FALSE(report);
  EXPECT_NE(report.error().message().find(Path("vm/.clonefs/clone.json")), std::string::npos)
      << report.error().message();
}

}  // namespace
}  // namespace tools
