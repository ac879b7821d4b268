// SPDX-License-Identifier: Apache-2.0
#include "tests/vmdk/sparse_image_builder.h"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "vmdk/cowd_header.h"
#include "vmdk/sparse_header.h"

namespace vmdk_test {
namespace {

constexpr uint64_t kSector = 512;

uint64_t CeilDiv(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

// Appends bytes and pads the image to the next sector boundary.
void AppendPadded(Bytes& image, std::span<const std::byte> data) {
  image.insert(image.end(), data.begin(), data.end());
  image.resize(CeilDiv(image.size(), kSector) * kSector);
}

void AppendZeroSectors(Bytes& image, uint64_t sectors) {
  image.resize(image.size() + sectors * kSector);
}

// The table as on disk: `entries` little-endian u32, padded to whole sectors.
Bytes EncodeU32Table(const std::vector<uint32_t>& entries) {
  Bytes out(CeilDiv(entries.size() * 4, kSector) * kSector);
  for (size_t i = 0; i < entries.size(); ++i) PutLe32(out, i * 4, entries[i]);
  return out;
}

uint32_t SectorOf(uint64_t offset_bytes) {
  if (offset_bytes % kSector != 0 || offset_bytes / kSector > UINT32_MAX) {
    throw std::logic_error("image too large for 32-bit sector pointers");
  }
  return static_cast<uint32_t>(offset_bytes / kSector);
}

}  // namespace

Bytes PatternBytes(size_t size, uint32_t seed) {
  Bytes out(size);
  uint64_t x = 0x9e3779b97f4a7c15ULL ^ (uint64_t{seed} * 0x100000001b3ULL + 1);
  for (auto& b : out) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b = static_cast<std::byte>(x >> 24);
  }
  return out;
}

Bytes FilledBytes(size_t size, uint8_t value) { return Bytes(size, std::byte{value}); }

Bytes ToBytes(std::string_view text) {
  Bytes out(text.size());
  std::memcpy(out.data(), text.data(), text.size());
  return out;
}

void PutLe16(Bytes& image, size_t offset, uint16_t value) {
  for (int i = 0; i < 2; ++i) image.at(offset + i) = std::byte(value >> (8 * i));
}
void PutLe32(Bytes& image, size_t offset, uint32_t value) {
  for (int i = 0; i < 4; ++i) image.at(offset + i) = std::byte(value >> (8 * i));
}
void PutLe64(Bytes& image, size_t offset, uint64_t value) {
  for (int i = 0; i < 8; ++i) image.at(offset + i) = std::byte(value >> (8 * i));
}

std::string DescriptorText(std::string_view create_type, const DescriptorFields& fields,
                           const std::vector<std::string>& extent_lines) {
  std::string text = fmt::format(
      "# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\nCID={:08x}\nparentCID={:08x}\n"
      "createType=\"{}\"\n",
      fields.cid, fields.parent_cid, create_type);
  if (fields.parent_hint) text += fmt::format("parentFileNameHint=\"{}\"\n", *fields.parent_hint);
  text += "\n# Extent description\n";
  for (const auto& line : extent_lines) text += line + "\n";
  text +=
      "\n# The Disk Data Base\n#DDB\n\nddb.adapterType = \"lsilogic\"\n"
      "ddb.virtualHWVersion = \"4\"\n";
  return text;
}

SparseImageBuilder::SparseImageBuilder(uint64_t capacity_sectors, uint64_t grain_sectors,
                                       uint32_t gtes_per_gt)
    : capacity_sectors_(capacity_sectors),
      grain_sectors_(grain_sectors),
      gtes_per_gt_(gtes_per_gt) {}

SparseImageBuilder& SparseImageBuilder::SetGrain(uint64_t grain, Bytes data) {
  if (data.size() > grain_bytes()) throw std::logic_error("grain data larger than a grain");
  if (grain >= GrainCount()) throw std::logic_error("grain past the capacity");
  data.resize(grain_bytes());
  if (!grains_.count(grain)) order_.push_back(grain);
  grains_[grain] = Grain{false, std::move(data), std::nullopt};
  return *this;
}

SparseImageBuilder& SparseImageBuilder::SetZeroed(uint64_t grain) {
  if (grain >= GrainCount()) throw std::logic_error("grain past the capacity");
  if (!grains_.count(grain)) order_.push_back(grain);
  grains_[grain] = Grain{true, {}, std::nullopt};
  return *this;
}

SparseImageBuilder& SparseImageBuilder::SetStreamPayload(uint64_t grain, Bytes payload) {
  grains_.at(grain).stream_payload = std::move(payload);
  return *this;
}

SparseImageBuilder& SparseImageBuilder::SkipEmptyTables(bool skip) {
  skip_empty_tables_ = skip;
  return *this;
}

SparseImageBuilder& SparseImageBuilder::Fields(DescriptorFields fields) {
  fields_ = std::move(fields);
  return *this;
}

SparseImageBuilder& SparseImageBuilder::DescriptorSectors(uint64_t sectors) {
  descriptor_sectors_ = sectors;
  return *this;
}

uint64_t SparseImageBuilder::GrainCount() const {
  return CeilDiv(capacity_sectors_, grain_sectors_);
}

uint64_t SparseImageBuilder::TableCount(uint32_t gtes_per_gt) const {
  return CeilDiv(GrainCount(), gtes_per_gt);
}

bool SparseImageBuilder::TableUsed(uint64_t gd_index, uint32_t gtes_per_gt) const {
  auto it = grains_.lower_bound(gd_index * gtes_per_gt);
  return it != grains_.end() && it->first < (gd_index + 1) * gtes_per_gt;
}

uint64_t SparseImageBuilder::ValidBytes(uint64_t grain) const {
  uint64_t start = grain * grain_bytes();
  return start >= capacity_bytes() ? 0 : std::min(grain_bytes(), capacity_bytes() - start);
}

Image SparseImageBuilder::BuildHosted(std::optional<std::string> descriptor) const {
  Image image;
  ImageLayout& layout = image.layout;
  AppendZeroSectors(image.bytes, 1);  // header, written last
  vmdk::SparseHeader h;
  h.version = 1;
  h.flags = vmdk::kFlagValidNewlineDetection;
  if (std::any_of(grains_.begin(), grains_.end(), [](auto& g) { return g.second.zeroed; })) {
    h.version = 2;
    h.flags |= vmdk::kFlagZeroedGrainGte;
  }
  h.capacity_sectors = capacity_sectors_;
  h.grain_sectors = grain_sectors_;
  h.num_gtes_per_gt = gtes_per_gt_;
  if (descriptor) {
    uint64_t sectors = std::max(descriptor_sectors_, CeilDiv(descriptor->size(), kSector));
    layout.descriptor_offset_bytes = image.bytes.size();
    layout.descriptor_bytes = sectors * kSector;
    Bytes text = ToBytes(*descriptor);
    image.bytes.insert(image.bytes.end(), text.begin(), text.end());
    image.bytes.resize(layout.descriptor_offset_bytes + sectors * kSector);
    h.descriptor_offset_sectors = 1;
    h.descriptor_size_sectors = sectors;
  }
  layout.gd_entries = TableCount(gtes_per_gt_);
  layout.gd_offset_bytes = image.bytes.size();
  AppendZeroSectors(image.bytes, CeilDiv(layout.gd_entries * 4, kSector));
  const uint64_t gt_bytes = CeilDiv(uint64_t{gtes_per_gt_} * 4, kSector) * kSector;
  for (uint64_t t = 0; t < layout.gd_entries; ++t) {
    if (skip_empty_tables_ && !TableUsed(t, gtes_per_gt_)) continue;
    layout.gt_offset_bytes[t] = image.bytes.size();
    AppendZeroSectors(image.bytes, gt_bytes / kSector);
  }
  // Grains start at a grain-aligned overhead, as VMware lays them out.
  image.bytes.resize(CeilDiv(image.bytes.size(), grain_bytes()) * grain_bytes());
  h.overhead_sectors = image.bytes.size() / kSector;
  for (uint64_t grain : order_) {
    const Grain& g = grains_.at(grain);
    if (g.zeroed) continue;
    layout.grain_offset_bytes[grain] = image.bytes.size();
    AppendPadded(image.bytes, g.data);
  }
  for (const auto& [t, at] : layout.gt_offset_bytes) {
    PutLe32(image.bytes, layout.gd_offset_bytes + t * 4, SectorOf(at));
  }
  for (const auto& [grain, g] : grains_) {
    uint64_t t = grain / gtes_per_gt_;
    uint64_t entry = layout.gt_offset_bytes.at(t) + (grain % gtes_per_gt_) * 4;
    PutLe32(image.bytes, entry, g.zeroed ? 1 : SectorOf(layout.grain_offset_bytes.at(grain)));
  }
  h.gd_offset_sectors = layout.gd_offset_bytes / kSector;
  auto header = vmdk::EncodeSparseHeader(h);
  std::copy(header.begin(), header.end(), image.bytes.begin());
  return image;
}

Image SparseImageBuilder::BuildMonolithic(std::string_view file_name) const {
  return BuildHosted(
      DescriptorText("monolithicSparse", fields_,
                     {fmt::format("RW {} SPARSE \"{}\"", capacity_sectors_, file_name)}));
}

Image SparseImageBuilder::BuildSplitExtent() const { return BuildHosted(std::nullopt); }

Image SparseImageBuilder::BuildStream(std::string_view file_name, StreamOptions options) const {
  Image image;
  ImageLayout& layout = image.layout;
  AppendZeroSectors(image.bytes, 1);  // header, written last
  vmdk::SparseHeader h;
  h.version = 3;
  h.flags = vmdk::kFlagValidNewlineDetection | vmdk::kFlagCompressed | vmdk::kFlagMarkers;
  if (std::any_of(grains_.begin(), grains_.end(), [](auto& g) { return g.second.zeroed; })) {
    h.flags |= vmdk::kFlagZeroedGrainGte;
  }
  h.compress_algorithm = vmdk::kCompressionDeflate;
  h.capacity_sectors = capacity_sectors_;
  h.grain_sectors = grain_sectors_;
  h.num_gtes_per_gt = gtes_per_gt_;
  std::string descriptor =
      DescriptorText("streamOptimized", fields_,
                     {fmt::format("RDONLY {} SPARSE \"{}\"", capacity_sectors_, file_name)});
  layout.descriptor_offset_bytes = image.bytes.size();
  AppendPadded(image.bytes, ToBytes(descriptor));
  layout.descriptor_bytes = image.bytes.size() - layout.descriptor_offset_bytes;
  h.descriptor_offset_sectors = 1;
  h.descriptor_size_sectors = layout.descriptor_bytes / kSector;
  h.overhead_sectors = image.bytes.size() / kSector;

  for (uint64_t grain : order_) {
    const Grain& g = grains_.at(grain);
    if (g.zeroed) continue;
    Bytes payload = g.stream_payload ? *g.stream_payload
                                     : Bytes(g.data.begin(), g.data.begin() + ValidBytes(grain));
    uLongf packed_len = compressBound(payload.size());
    Bytes packed(packed_len);
    if (compress2(reinterpret_cast<Bytef*>(packed.data()), &packed_len,
                  reinterpret_cast<const Bytef*>(payload.data()), payload.size(),
                  Z_DEFAULT_COMPRESSION) != Z_OK) {
      throw std::runtime_error("compress2 failed");
    }
    packed.resize(packed_len);
    Bytes marker(vmdk::kGrainMarkerHeaderBytes);
    PutLe64(marker, 0, grain * grain_sectors_);
    PutLe32(marker, 8, static_cast<uint32_t>(packed.size()));
    marker.insert(marker.end(), packed.begin(), packed.end());
    layout.grain_offset_bytes[grain] = image.bytes.size();
    AppendPadded(image.bytes, marker);
  }

  layout.gd_entries = TableCount(gtes_per_gt_);
  std::vector<uint32_t> directory(layout.gd_entries, 0);
  for (uint64_t t = 0; t < layout.gd_entries; ++t) {
    if (skip_empty_tables_ && !TableUsed(t, gtes_per_gt_)) continue;
    std::vector<uint32_t> table(gtes_per_gt_, 0);
    for (auto it = grains_.lower_bound(t * gtes_per_gt_);
         it != grains_.end() && it->first < (t + 1) * gtes_per_gt_; ++it) {
      table[it->first % gtes_per_gt_] =
          it->second.zeroed ? 1 : SectorOf(layout.grain_offset_bytes.at(it->first));
    }
    Bytes encoded = EncodeU32Table(table);
    AppendPadded(image.bytes,
                 vmdk::EncodeMarker(encoded.size() / kSector, vmdk::MarkerType::kGrainTable));
    layout.gt_offset_bytes[t] = image.bytes.size();
    directory[t] = SectorOf(image.bytes.size());
    AppendPadded(image.bytes, encoded);
  }
  Bytes encoded_gd = EncodeU32Table(directory);
  AppendPadded(image.bytes,
               vmdk::EncodeMarker(encoded_gd.size() / kSector, vmdk::MarkerType::kGrainDirectory));
  layout.gd_offset_bytes = image.bytes.size();
  AppendPadded(image.bytes, encoded_gd);
  h.gd_offset_sectors = layout.gd_offset_bytes / kSector;
  if (options.footer) {
    AppendPadded(image.bytes, vmdk::EncodeMarker(1, vmdk::MarkerType::kFooter));
    layout.footer_offset_bytes = image.bytes.size();
    AppendPadded(image.bytes, vmdk::EncodeSparseHeader(h));
  }
  AppendPadded(image.bytes, vmdk::EncodeMarker(0, vmdk::MarkerType::kEndOfStream));
  if (options.gd_at_end) h.gd_offset_sectors = vmdk::kGdAtEnd;
  auto header = vmdk::EncodeSparseHeader(h);
  std::copy(header.begin(), header.end(), image.bytes.begin());
  return image;
}

Image SparseImageBuilder::BuildCowd() const {
  Image image;
  ImageLayout& layout = image.layout;
  AppendZeroSectors(image.bytes, vmdk::kCowdHeaderBytes / kSector);
  vmdk::CowdHeader h;
  h.capacity_sectors = static_cast<uint32_t>(capacity_sectors_);
  h.grain_sectors = static_cast<uint32_t>(grain_sectors_);
  h.gd_offset_sectors = SectorOf(image.bytes.size());
  h.gd_entries = static_cast<uint32_t>(h.required_gd_entries());
  layout.gd_entries = h.gd_entries;
  layout.gd_offset_bytes = image.bytes.size();
  AppendZeroSectors(image.bytes, CeilDiv(layout.gd_entries * 4, kSector));
  for (uint64_t t = 0; t < layout.gd_entries; ++t) {
    if (skip_empty_tables_ && !TableUsed(t, vmdk::kCowdGtesPerGt)) continue;
    layout.gt_offset_bytes[t] = image.bytes.size();
    AppendZeroSectors(image.bytes, vmdk::kCowdGtesPerGt * 4 / kSector);
  }
  for (uint64_t grain : order_) {
    const Grain& g = grains_.at(grain);
    if (g.zeroed) continue;
    layout.grain_offset_bytes[grain] = image.bytes.size();
    AppendPadded(image.bytes, g.data);
  }
  for (const auto& [t, at] : layout.gt_offset_bytes) {
    PutLe32(image.bytes, layout.gd_offset_bytes + t * 4, SectorOf(at));
  }
  for (const auto& [grain, g] : grains_) {
    uint64_t entry = layout.gt_offset_bytes.at(grain / vmdk::kCowdGtesPerGt) +
                     (grain % vmdk::kCowdGtesPerGt) * 4;
    // COWD has no zeroed-grain GTE: a zeroed grain is written as 1 to test that it is
    // refused.
    PutLe32(image.bytes, entry, g.zeroed ? 1 : SectorOf(layout.grain_offset_bytes.at(grain)));
  }
  h.free_sector = SectorOf(image.bytes.size());
  auto header = vmdk::EncodeCowdHeader(h);
  std::copy(header.begin(), header.end(), image.bytes.begin());
  return image;
}

std::string SparseImageBuilder::CowdDescriptor(std::string_view delta_file_name) const {
  return DescriptorText(
      "vmfsSparse", fields_,
      {fmt::format("RW {} VMFSSPARSE \"{}\"", capacity_sectors_, delta_file_name)});
}

Bytes SparseImageBuilder::Expected() const { return Overlay(Bytes(capacity_bytes())); }

Bytes SparseImageBuilder::Overlay(Bytes below) const {
  below.resize(capacity_bytes());
  for (const auto& [grain, g] : grains_) {
    uint64_t valid = ValidBytes(grain);
    if (valid == 0) continue;
    auto dst = below.begin() + grain * grain_bytes();
    if (g.zeroed) {
      std::fill(dst, dst + valid, std::byte{0});
    } else {
      std::copy(g.data.begin(), g.data.begin() + valid, dst);
    }
  }
  return below;
}

}  // namespace vmdk_test
