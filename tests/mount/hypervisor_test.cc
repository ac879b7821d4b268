// SPDX-License-Identifier: Apache-2.0
// QEMU's system emulator (TCG, no KVM) opening a presented VMDK as a guest disk on a
// virtio-blk device: written through the hypervisor's block layer from its monitor, and
// booted by SeaBIOS as a guest's disk whose boot sector reads the parent's data and
// writes to the clone. qemu-system-x86_64 is a test dependency (scripts/install-deps.sh):
// missing, these tests fail rather than skip.
#include <fmt/format.h>

#include "tests/mount/host_mounts.h"

namespace mount_test {
namespace {

using integration::WriteText;

constexpr const char* kQemuSystem = "qemu-system-x86_64";

// A 512-byte boot sector (assembled from the 16-bit code below with GNU as, linked at
// 0x7c00). It reads LBA 1 with int 13h and prints it (a NUL-terminated string) on the
// first serial port, writes 512 bytes of 0xa5 to LBA 2, prints "guest wrote LBA 2", and
// ends QEMU through isa-debug-exit: exit status (0x10 << 1) | 1 = 33 on success, 65 if
// an int 13h call failed.
//
//   cli; xor ax,ax; mov ds,ax; mov es,ax; mov ss,ax; mov sp,0x7c00; sti; cld
//   mov [drive],dl
//   mov ax,0x0201; mov cx,0x0002; xor dh,dh; mov dl,[drive]; mov bx,0x8000; int 13h; jc fail
//   mov si,0x8000; call print
//   mov di,0x8200; mov cx,512; mov al,0xa5; rep stosb
//   mov ax,0x0301; mov cx,0x0003; xor dh,dh; mov dl,[drive]; mov bx,0x8200; int 13h; jc fail
//   mov si,ok_msg; call print; mov al,0x10; out 0xf4,al
//   hang: cli; hlt; jmp hang
//   fail: mov si,fail_msg; call print; mov al,0x20; out 0xf4,al; jmp hang
//   print: mov dx,0x3f8; .1: lodsb; test al,al; jz .2; out dx,al; jmp .1; .2: ret
//   drive: db 0; ok_msg: db "guest wrote LBA 2",10,0; fail_msg: db "guest int13 failed",10,0
//   times 510-($-$$) db 0; dw 0xaa55
constexpr unsigned char kBootCode[] = {
    0xfa, 0x31, 0xc0, 0x8e, 0xd8, 0x8e, 0xc0, 0x8e, 0xd0, 0xbc, 0x00, 0x7c, 0xfb, 0xfc, 0x88,
    0x16, 0x6e, 0x7c, 0xb8, 0x01, 0x02, 0xb9, 0x02, 0x00, 0x30, 0xf6, 0x8a, 0x16, 0x6e, 0x7c,
    0xbb, 0x00, 0x80, 0xcd, 0x13, 0x72, 0x31, 0xbe, 0x00, 0x80, 0xe8, 0x37, 0x00, 0xbf, 0x00,
    0x82, 0xb9, 0x00, 0x02, 0xb0, 0xa5, 0xf3, 0xaa, 0xb8, 0x01, 0x03, 0xb9, 0x03, 0x00, 0x30,
    0xf6, 0x8a, 0x16, 0x6e, 0x7c, 0xbb, 0x00, 0x82, 0xcd, 0x13, 0x72, 0x0e, 0xbe, 0x6f, 0x7c,
    0xe8, 0x14, 0x00, 0xb0, 0x10, 0xe6, 0xf4, 0xfa, 0xf4, 0xeb, 0xfc, 0xbe, 0x82, 0x7c, 0xe8,
    0x06, 0x00, 0xb0, 0x20, 0xe6, 0xf4, 0xeb, 0xf0, 0xba, 0xf8, 0x03, 0xac, 0x84, 0xc0, 0x74,
    0x03, 0xee, 0xeb, 0xf8, 0xc3, 0x00, 0x67, 0x75, 0x65, 0x73, 0x74, 0x20, 0x77, 0x72, 0x6f,
    0x74, 0x65, 0x20, 0x4c, 0x42, 0x41, 0x20, 0x32, 0x0a, 0x00, 0x67, 0x75, 0x65, 0x73, 0x74,
    0x20, 0x69, 0x6e, 0x74, 0x31, 0x33, 0x20, 0x66, 0x61, 0x69, 0x6c, 0x65, 0x64, 0x0a, 0x00};

std::string BootSector() {
  std::string sector(reinterpret_cast<const char*>(kBootCode), sizeof kBootCode);
  sector.resize(512, '\0');
  sector[510] = '\x55';
  sector[511] = '\xaa';
  return sector;
}

// The CID line of a VMDK descriptor ("CID=1a2b3c4d"), or "" if there is none.
std::string DescriptorCid(const std::string& descriptor) {
  const std::string text = ReadText(descriptor);
  const size_t at = text.find("\nCID=");
  if (at == std::string::npos) return "";
  return text.substr(at + 5, text.find('\n', at + 1) - at - 5);
}

class HypervisorTest : public MountTest {
 protected:
  void SetUp() override {
    CommandResult version = testing_support::Run({kQemuSystem, "--version"});
    ASSERT_EQ(version.exit_code, 0)
        << kQemuSystem
        << " is missing (scripts/install-deps.sh installs qemu-system-x86): " << version.err;
  }
};

TEST_F(HypervisorTest, QemuSystemWritesThroughItsBlockLayerAndRewritesTheCid) {
  const std::string parent = MakeParent("base.vmdk", "64M", {"write -P 0x11 0 1M"});
  const std::string parent_sha = testing_support::Sha256OfFile(parent);
  const std::string clone = Clone(parent, "c1");
  MountedClone m(clone, Path("m1"));
  ASSERT_MOUNTED(m);
  const std::string cid_before = DescriptorCid(m / "base.vmdk");
  ASSERT_FALSE(cid_before.empty()) << ReadText(m / "base.vmdk");

  // A stopped (-S) PC whose virtio-blk disk is the clone, opened O_DIRECT (cache=none),
  // driven over QMP: qemu-io runs inside the emulator on the guest disk's block backend.
  auto hmp = [](const std::string& command) {
    nlohmann::json request = {{"execute", "human-monitor-command"},
                              {"arguments", {{"command-line", command}}}};
    return request.dump() + "\n";
  };
  WriteText(Path("qmp.in"), std::string("{\"execute\": \"qmp_capabilities\"}\n") +
                                hmp("qemu-io d0 \"read -P 0x11 0 64k\"") +
                                hmp("qemu-io d0 \"write -P 0x5a 0 64k\"") +
                                hmp("qemu-io d0 \"write -P 0x5b 1000000 70000\"") +
                                hmp("qemu-io d0 \"read -P 0x5a 0 64k\"") +
                                hmp("qemu-io d0 \"flush\"") + "{\"execute\": \"quit\"}\n");
  CommandResult r = testing_support::RunShell(fmt::format(
      "timeout 60 {} -machine pc,accel=tcg -S -nodefaults -nographic -display none -qmp stdio"
      " -drive file='{}',format=vmdk,if=none,id=d0,cache=none -device virtio-blk-pci,drive=d0"
      " < '{}'",
      kQemuSystem, m / "base.vmdk", Path("qmp.in")));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  // Every QMP reply is a success; qemu-io inside prints its own lines on stdout between
  // them, and says what it did.
  std::string transcript;
  int replies = 0;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    nlohmann::json reply = nlohmann::json::parse(line, nullptr, false);
    if (reply.is_discarded()) {
      transcript += line + "\n";
      continue;
    }
    EXPECT_FALSE(reply.contains("error")) << line;
    if (reply.contains("return")) ++replies;
  }
  EXPECT_EQ(replies, 7) << r.out;  // qmp_capabilities, five commands, quit
  for (const char* line :
       {"read 65536/65536 bytes at offset 0\n", "wrote 65536/65536 bytes at offset 0\n",
        "wrote 70000/70000 bytes at offset 1000000\n"}) {
    EXPECT_NE(transcript.find(line), std::string::npos) << line << " not in:\n" << transcript;
  }
  EXPECT_EQ(transcript.find("failed"), std::string::npos) << transcript;

  // The writes are in the clone, the parent is untouched, and QEMU's first write gave
  // the descriptor a new CID, which stays across a remount.
  EXPECT_TRUE(
      QemuIo(m / "base.vmdk", {"read -P 0x5a 0 64k", "read -P 0x11 64k 934464",
                               "read -P 0x5b 1000000 70000", "read -P 0 1070000 66038864"}));
  const std::string cid_after = DescriptorCid(m / "base.vmdk");
  EXPECT_NE(cid_after, cid_before);
  EXPECT_EQ(testing_support::Sha256OfFile(parent), parent_sha);
  ASSERT_TRUE(m.Unmount());
  MountedClone again(clone, Path("m1"));
  ASSERT_MOUNTED(again);
  EXPECT_EQ(DescriptorCid(again / "base.vmdk"), cid_after);
  EXPECT_TRUE(QemuIo(again / "base.vmdk", {"read -P 0x5a 0 64k", "read -P 0x5b 1000000 70000"}));
}

TEST_F(HypervisorTest, GuestBootsFromTheCloneReadsTheParentAndWritesTheClone) {
  // A golden disk: the boot sector, and in LBA 1 a message for the guest to print.
  const std::string raw = Path("golden.raw");
  std::string image = BootSector();
  image += "hello from the golden image\n";
  image.resize(16 << 20, '\0');
  WriteText(raw, image);
  const std::string parent = Path("golden.vmdk");
  ASSERT_TRUE(RunsOk({"qemu-img", "convert", "-f", "raw", "-O", "vmdk", raw, parent}));
  const std::string parent_sha = testing_support::Sha256OfFile(parent);
  const std::string clone = Clone(parent, "c1");
  MountedClone m(clone, Path("m1"));
  ASSERT_MOUNTED(m);
  const std::string cid_before = DescriptorCid(m / "golden.vmdk");

  const std::string serial = Path("serial.log");
  CommandResult r =
      testing_support::Run({"timeout", "60", kQemuSystem, "-machine", "pc,accel=tcg", "-nodefaults",
                            "-nographic", "-display", "none", "-no-reboot", "-serial",
                            "file:" + serial, "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
                            "-drive", "file=" + (m / "golden.vmdk") + ",format=vmdk,if=none,id=d0",
                            "-device", "virtio-blk-pci,drive=d0,bootindex=1"});
  const std::string console = ReadText(serial);
  EXPECT_EQ(r.exit_code, 33) << "guest did not finish (124 is a timeout); console:\n"
                             << console << "\nstderr: " << r.err;
  EXPECT_NE(console.find("hello from the golden image\n"), std::string::npos) << console;
  EXPECT_NE(console.find("guest wrote LBA 2\n"), std::string::npos) << console;

  EXPECT_NE(DescriptorCid(m / "golden.vmdk"), cid_before) << "QEMU wrote, so the CID changes";
  EXPECT_TRUE(QemuIo(m / "golden.vmdk", {"read -P 0xa5 1024 512", "read -P 0 1536 1M"}));
  EXPECT_EQ(testing_support::Sha256OfFile(parent), parent_sha);
  EXPECT_TRUE(RunsOk({"qemu-img", "compare", "-q", "-f", "vmdk", "-F", "raw", parent, raw}));
}

}  // namespace
}  // namespace mount_test
