// SPDX-License-Identifier: Apache-2.0
#include "tools/lib/vmx_file.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <string>

namespace tools {
namespace {

VmxFile ParseOk(std::string_view text) {
  auto vmx = VmxFile::Parse(text, "vm.vmx");
  EXPECT_TRUE(vmx) << vmx.error().message();
  return vmx ? std::move(vmx).value() : VmxFile();
}

void ExpectRefused(std::string_view text, const std::string& message) {
  auto vmx = VmxFile::Parse(text, "vm.vmx");
  ASSERT_FALSE(vmx) << text;
  EXPECT_EQ(vmx.error().code(), EINVAL);
  EXPECT_EQ(vmx.error().message(), message);
}

TEST(VmxFileTest, UneditedTextComesBackByteForByte) {
  const std::string texts[] = {
      "",
      "\n\n",
      "#!/usr/bin/vmware\n.encoding = \"UTF-8\"\nconfig.version = \"8\"\n",
      "a = \"1\"\r\nb = \"2\"\r\n# comment\r\n\r\n",
      "mixed = \"lf\"\ncrlf = \"x\"\r\nlast = \"no newline\"",
      "\xEF\xBB\xBF"
      "displayName = \"bom\"\n",
      "  \t# indented comment\n\tmemsize\t=\t1024   \nodd=\"x\"  trailing junk kept\n",
      "guestinfo.a = \"x = y # not a comment\"\n",
  };
  for (const std::string& text : texts) {
    EXPECT_EQ(ParseOk(text).Text(), text);
  }
}

TEST(VmxFileTest, KeysIgnoreCaseAndTheLastSettingWins) {
  VmxFile vmx = ParseOk("scsi0:0.fileName = \"a.vmdk\"\nSCSI0:0.FILENAME = \"b.vmdk\"\n");
  EXPECT_EQ(vmx.Get("scsi0:0.filename"), "b.vmdk");
  EXPECT_EQ(vmx.Get("absent"), std::nullopt);
  ASSERT_EQ(vmx.Settings().size(), 2u);
  EXPECT_EQ(vmx.Settings()[1].key, "SCSI0:0.FILENAME");
  EXPECT_EQ(vmx.Settings()[1].line_number, 2u);
}

TEST(VmxFileTest, ReadsQuotedUnquotedAndEmptyValues) {
  VmxFile vmx =
      ParseOk("a = \"with spaces \"\nb=unquoted value  \nc = \"\"\nd =\ne = \"x\" # note\n");
  EXPECT_EQ(vmx.Get("a"), "with spaces ");
  EXPECT_EQ(vmx.Get("b"), "unquoted value");
  EXPECT_EQ(vmx.Get("c"), "");
  EXPECT_EQ(vmx.Get("d"), "");
  EXPECT_EQ(vmx.Get("e"), "x");
}

TEST(VmxFileTest, DecodesAndEncodesPipeHexEscapes) {
  VmxFile vmx = ParseOk("displayName = \"say |22hi|22 |7C pipe|0A |zz |2\"\n");
  EXPECT_EQ(vmx.Get("displayName"), "say \"hi\" | pipe\n |zz |2");
  EXPECT_EQ(VmxFile::Encode("a\"b|c\td"), "a|22b|7Cc|09d");
  EXPECT_EQ(VmxFile::Decode(VmxFile::Encode("x\"|\x7f\x01 y")), "x\"|\x7f\x01 y");
}

TEST(VmxFileTest, SetReplacesOnlyTheValueKeepingTheRestOfTheLine) {
  VmxFile vmx = ParseOk(
      "# disks\r\nscsi0:0.fileName\t=   \"old.vmdk\"  # first\r\nscsi0:0.present = \"TRUE\"\r\n"
      "SCSI0:0.filename=bare.vmdk\r\n");
  vmx.Set("scsi0:0.fileName", "new \"one\".vmdk");
  EXPECT_EQ(vmx.Text(),
            "# disks\r\nscsi0:0.fileName\t=   \"new |22one|22.vmdk\"  # first\r\n"
            "scsi0:0.present = \"TRUE\"\r\nSCSI0:0.filename=\"new |22one|22.vmdk\"\r\n");
  EXPECT_EQ(vmx.Get("scsi0:0.filename"), "new \"one\".vmdk");
}

TEST(VmxFileTest, SetAppendsAMissingKeyWithTheFilesLineEnding) {
  VmxFile crlf = ParseOk("a = \"1\"\r\nb = \"2\"");  // no final line ending
  crlf.Set("displayName", "c1");
  EXPECT_EQ(crlf.Text(), "a = \"1\"\r\nb = \"2\"\r\ndisplayName = \"c1\"\r\n");

  VmxFile empty = ParseOk("");
  empty.Set("displayName", "c1");
  EXPECT_EQ(empty.Text(), "displayName = \"c1\"\n");
  EXPECT_EQ(empty.Get("DISPLAYNAME"), "c1");
}

TEST(VmxFileTest, RemoveDropsEveryLineSettingTheKey) {
  VmxFile vmx =
      ParseOk("uuid.bios = \"1\"\nkeep = \"x\"\nUUID.BIOS = \"2\"\n# uuid.bios = \"3\"\n");
  EXPECT_EQ(vmx.Remove("uuid.bios"), 2u);
  EXPECT_EQ(vmx.Remove("uuid.bios"), 0u);
  EXPECT_EQ(vmx.Text(), "keep = \"x\"\n# uuid.bios = \"3\"\n");
}

TEST(VmxFileTest, RejectsALineWithoutEqualsNamingTheLine) {
  ExpectRefused("a = \"1\"\n# fine\n\njust some words\n",
                "vm.vmx: line 4: no '=' (expected key = \"value\")");
  ExpectRefused("a = \"1\"\r\nnoequals", "vm.vmx: line 2: no '=' (expected key = \"value\")");
}

TEST(VmxFileTest, RejectsAnEmptyKey) {
  ExpectRefused("  = \"1\"\n", "vm.vmx: line 1: no key before '='");
}

TEST(VmxFileTest, RejectsAQuotedValueWithoutItsClosingQuote) {
  ExpectRefused("a = \"1\"\nnumvcpus = \"2\n",
                "vm.vmx: line 2: the value of numvcpus has no closing '\"'");
}

TEST(VmxFileTest, RejectsBinaryAndOversizedInput) {
  ExpectRefused(std::string("a = \"1\"\nb = \"\0\"\n", 16),
                "vm.vmx: line 2: NUL byte (not a text file)");
  auto big = VmxFile::Parse(std::string(kMaxVmxBytes + 1, '#'), "vm.vmx");
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code(), EINVAL);
  EXPECT_NE(big.error().message().find("too large"), std::string::npos);
}

}  // namespace
}  // namespace tools
