// SPDX-License-Identifier: Apache-2.0
#pragma once

// Builds small sparse VMDK images in memory for the vmdk tests: hosted sparse (KDMV,
// monolithicSparse or a split-set extent without a descriptor), streamOptimized (zlib
// grains behind grain markers, GT/GD markers, footer, EOS) and ESXi COWD with its text
// descriptor (vmdk-format.md sections 5, 6 and 8).
//
// A builder holds the virtual contents (which grains hold which bytes, which are zeroed
// GTEs) and the geometry; each Build* call lays them out in one format and reports where
// every structure landed (ImageLayout), so corruption tests can overwrite a field at a
// known offset or truncate inside a chosen structure.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmdk_test {

using Bytes = std::vector<std::byte>;

// Deterministic bytes that do not compress (xorshift from `seed`), and a constant fill.
Bytes PatternBytes(size_t size, uint32_t seed);
Bytes FilledBytes(size_t size, uint8_t value);
Bytes ToBytes(std::string_view text);

// Little-endian stores into an image, for overwriting one field at a known offset.
void PutLe16(Bytes& image, size_t offset, uint16_t value);
void PutLe32(Bytes& image, size_t offset, uint32_t value);
void PutLe64(Bytes& image, size_t offset, uint64_t value);

// Where each structure of a built image starts (all in bytes from the start of the file).
struct ImageLayout {
  uint64_t descriptor_offset_bytes = 0;  // 0 when not embedded
  uint64_t descriptor_bytes = 0;         // reserved area
  uint64_t gd_offset_bytes = 0;
  uint64_t gd_entries = 0;
  std::map<uint64_t, uint64_t> gt_offset_bytes;     // GD index -> its grain table
  std::map<uint64_t, uint64_t> grain_offset_bytes;  // grain -> its data (or grain marker)
  uint64_t footer_offset_bytes = 0;  // stream: the footer copy of the header (0: none)
};

struct Image {
  Bytes bytes;
  ImageLayout layout;
};

// What goes into an embedded or standalone descriptor.
struct DescriptorFields {
  uint32_t cid = 0x12345678;
  uint32_t parent_cid = 0xffffffff;
  std::optional<std::string> parent_hint;  // parentFileNameHint
};

// A text descriptor in VMware's layout with the given extent lines (e.g.
// `RW 4096 SPARSE "a-s001.vmdk"`).
std::string DescriptorText(std::string_view create_type, const DescriptorFields& fields,
                           const std::vector<std::string>& extent_lines);

class SparseImageBuilder {
 public:
  // Grain size and entries per grain table follow the formats' defaults (128 sectors and
  // 512 GTEs for KDMV); COWD always has 4096 GTEs per table and ignores gtes_per_gt.
  explicit SparseImageBuilder(uint64_t capacity_sectors, uint64_t grain_sectors = 128,
                              uint32_t gtes_per_gt = 512);

  // Grain `grain` holds `data` (shorter data is zero-padded to the grain). Grains are laid
  // out in the order they are first set, so a test chooses the allocation order.
  SparseImageBuilder& SetGrain(uint64_t grain, Bytes data);
  // Grain `grain` is a zeroed-grain GTE (value 1): reads zeros, masks any parent.
  SparseImageBuilder& SetZeroed(uint64_t grain);
  // Stream images only: compress `payload` for this grain instead of its data (to make a
  // grain inflate to the wrong size).
  SparseImageBuilder& SetStreamPayload(uint64_t grain, Bytes payload);
  // Grain tables with no grain are not written and their GD entry is 0 (as ovftool
  // streams and some writers do); by default every table is allocated, as VMware does.
  SparseImageBuilder& SkipEmptyTables(bool skip = true);
  SparseImageBuilder& Fields(DescriptorFields fields);
  // Reserved descriptor area for monolithic images (VMware: 20 sectors).
  SparseImageBuilder& DescriptorSectors(uint64_t sectors);

  uint64_t capacity_sectors() const { return capacity_sectors_; }
  uint64_t capacity_bytes() const { return capacity_sectors_ * 512; }
  uint64_t grain_bytes() const { return grain_sectors_ * 512; }

  // monolithicSparse with its descriptor embedded (extent line naming `file_name`).
  Image BuildMonolithic(std::string_view file_name) const;
  // A hosted sparse extent with descriptorOffset 0, as in a twoGbMaxExtentSparse set.
  Image BuildSplitExtent() const;
  // streamOptimized: grains, then GT markers + GTs, GD marker + GD, then (footer) footer
  // marker + footer, then EOS. The header's gdOffset is GD_AT_END or the real offset.
  struct StreamOptions {
    bool gd_at_end = true;
    bool footer = true;
  };
  Image BuildStream(std::string_view file_name, StreamOptions options) const;
  // A COWD delta extent file; CowdDescriptor() is the vmfsSparse text naming it.
  Image BuildCowd() const;
  std::string CowdDescriptor(std::string_view delta_file_name) const;

  // The disk this image alone reads as (zeros where nothing is stored).
  Bytes Expected() const;
  // `below` (a parent's contents, capacity bytes) seen through this image: data and
  // zeroed grains replace it, unallocated grains let it through.
  Bytes Overlay(Bytes below) const;

 private:
  struct Grain {
    bool zeroed = false;
    Bytes data;  // exactly grain_bytes() when !zeroed
    std::optional<Bytes> stream_payload;
  };
  uint64_t GrainCount() const;
  uint64_t TableCount(uint32_t gtes_per_gt) const;
  bool TableUsed(uint64_t gd_index, uint32_t gtes_per_gt) const;
  // Bytes of `grain` below the capacity.
  uint64_t ValidBytes(uint64_t grain) const;
  Image BuildHosted(std::optional<std::string> descriptor) const;

  uint64_t capacity_sectors_;
  uint64_t grain_sectors_;
  uint32_t gtes_per_gt_;
  bool skip_empty_tables_ = false;
  uint64_t descriptor_sectors_ = 20;
  DescriptorFields fields_;
  std::map<uint64_t, Grain> grains_;
  std::vector<uint64_t> order_;  // allocation order
};

}  // namespace vmdk_test
