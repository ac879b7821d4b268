// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for Descriptor::Parse. Beyond "never crash", it checks the round-trip
// contract of vmdk/descriptor.h and aborts on any violation:
//  - ToString() of an unmodified descriptor is the input, byte for byte;
//  - that text parses again to the same extents and entries;
//  - after Set and SetExtents, the text parses again to what was set.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "vmdk/descriptor.h"

namespace {

[[noreturn]] void Fail(const char* what, std::string_view text) {
  std::fprintf(stderr, "descriptor_fuzzer: %s\n--- text ---\n%.*s\n--- end ---\n", what,
               static_cast<int>(text.size()), text.data());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  auto parsed = vmdk::Descriptor::Parse(input);
  if (!parsed) {
    if (parsed.error().code() == 0 || parsed.error().message().empty()) {
      Fail("failure without errno or message", input);
    }
    return 0;
  }
  const vmdk::Descriptor& d = parsed.value();
  const std::string text = d.ToString();
  if (text != input) Fail("ToString() of an unmodified descriptor differs from its input", input);
  auto again = vmdk::Descriptor::Parse(text);
  if (!again) Fail("ToString() output does not parse", text);
  if (again.value().extents() != d.extents()) Fail("extents differ after a round trip", text);
  if (again.value().Entries() != d.Entries()) Fail("entries differ after a round trip", text);

  // Edit it as a writer would (new CID, a DDB key, one extent one sector larger).
  vmdk::Descriptor edited = d;
  edited.Set("CID", "0123abcd");
  edited.Set("ddb.fuzzKey", "a value");
  std::vector<vmdk::ExtentLine> extents = d.extents();
  if (!extents.empty() && d.capacity_sectors() < UINT64_MAX) {
    extents[0].size_sectors += 1;
  }
  edited.SetExtents(extents);
  const std::string edited_text = edited.ToString();
  if (edited_text.size() > vmdk::kMaxDescriptorBytes) return 0;  // the edit made it too long
  auto reparsed = vmdk::Descriptor::Parse(edited_text);
  if (!reparsed) {
    std::fprintf(stderr, "error: %s\n", reparsed.error().message().c_str());
    Fail("an edited descriptor does not parse", edited_text);
  }
  const vmdk::Descriptor& r = reparsed.value();
  if (r.cid() != 0x0123abcdu || r.Get("CID") != "0123abcd") Fail("CID lost after Set", edited_text);
  if (r.Get("ddb.fuzzKey") != "a value") Fail("DDB key lost after Set", edited_text);
  if (r.extents() != edited.extents()) Fail("extents differ after SetExtents", edited_text);
  if (r.Entries() != edited.Entries()) Fail("entries differ after Set", edited_text);
  return 0;
}
