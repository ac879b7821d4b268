// SPDX-License-Identifier: Apache-2.0
// Writes small, valid images made by the tests' SparseImageBuilder into a corpus
// directory, as seeds for sparse_extent_fuzzer: every format and layout variant in a few
// KiB, so mutations reach deep structure quickly. Multi-file seeds join the files with
// the harness's "%%FILE%%" separator (the first is fuzz.vmdk, then fuzz-1.vmdk, ...).
// Usage: sparse_seed_writer <corpus-dir>

#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "tests/vmdk/sparse_image_builder.h"

namespace {

using vmdk_test::Bytes;
using vmdk_test::SparseImageBuilder;

Bytes Join(std::initializer_list<Bytes> files) {
  Bytes out;
  for (const Bytes& f : files) {
    if (!out.empty()) {
      Bytes sep = vmdk_test::ToBytes("%%FILE%%");
      out.insert(out.end(), sep.begin(), sep.end());
    }
    out.insert(out.end(), f.begin(), f.end());
  }
  return out;
}

// 64 sectors of 4 KiB grains, 4 entries per table: two tables.
SparseImageBuilder Small(uint32_t cid = 0x11111111) {
  SparseImageBuilder b(64, 8, 4);
  b.DescriptorSectors(1);
  vmdk_test::DescriptorFields f;
  f.cid = cid;
  b.Fields(f);
  b.SetGrain(3, vmdk_test::PatternBytes(4096, 3)).SetGrain(0, vmdk_test::FilledBytes(4096, 0x61));
  b.SetZeroed(6);
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus-dir>\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  auto write = [&](const std::string& name, const Bytes& bytes) {
    std::ofstream out(dir + "/builder-" + name, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    if (!out) {
      std::fprintf(stderr, "cannot write %s/builder-%s\n", dir.c_str(), name.c_str());
      std::exit(1);
    }
  };

  write("monolithic", Small().BuildMonolithic("fuzz.vmdk").bytes);
  write("monolithic-gd0", Small().SkipEmptyTables().BuildMonolithic("fuzz.vmdk").bytes);
  write("split-extent", Small().BuildSplitExtent().bytes);
  write("stream-footer",
        Small().BuildStream("fuzz.vmdk", {.gd_at_end = true, .footer = true}).bytes);
  write("stream-front",
        Small().BuildStream("fuzz.vmdk", {.gd_at_end = false, .footer = false}).bytes);
  SparseImageBuilder odd(60, 8, 4);  // capacity not a multiple of the grain
  odd.DescriptorSectors(1).SetGrain(7, vmdk_test::PatternBytes(4096, 7));
  write("stream-partial-grain", odd.BuildStream("fuzz.vmdk", {}).bytes);
  write("monolithic-partial-grain", odd.BuildMonolithic("fuzz.vmdk").bytes);

  SparseImageBuilder child = Small(0x22222222);
  vmdk_test::DescriptorFields cf;
  cf.cid = 0x22222222;
  cf.parent_cid = 0x11111111;
  cf.parent_hint = "fuzz-1.vmdk";
  child.Fields(cf).SetGrain(1, vmdk_test::FilledBytes(4096, 0x62));
  write("chain", Join({child.BuildMonolithic("fuzz.vmdk").bytes,
                       Small().BuildMonolithic("fuzz-1.vmdk").bytes}));

  SparseImageBuilder cowd(64, 1);
  cf.parent_hint = "fuzz-2.vmdk";
  cowd.Fields(cf).SetGrain(5, vmdk_test::PatternBytes(512, 5));
  write("cowd-chain", Join({vmdk_test::ToBytes(cowd.CowdDescriptor("fuzz-1.vmdk")),
                            cowd.BuildCowd().bytes, Small().BuildMonolithic("fuzz-2.vmdk").bytes}));

  std::string multi =
      vmdk_test::DescriptorText("twoGbMaxExtentSparse", {},
                                {"RW 64 SPARSE \"fuzz-1.vmdk\"", "RW 16 FLAT \"fuzz-2.vmdk\" 0",
                                 "RW 8 ZERO", "RDONLY 64 SPARSE \"fuzz-3.vmdk\""});
  write("multi-extent",
        Join({vmdk_test::ToBytes(multi), Small().BuildSplitExtent().bytes,
              vmdk_test::PatternBytes(16 * 512, 9), Small().BuildStream("fuzz-3.vmdk", {}).bytes}));
  return 0;
}
