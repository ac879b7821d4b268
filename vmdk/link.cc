// SPDX-License-Identifier: Apache-2.0
#include "vmdk/link.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include <boost/endian/conversion.hpp>

#include "vmdk/cowd_header.h"
#include "vmdk/flat_extent.h"
#include "vmdk/sparse_extent.h"

namespace vmdk {
namespace {

using common::Error;

// Extent file names are relative to the descriptor's directory unless absolute.
std::string ResolveExtentPath(const std::string& descriptor_path, const std::string& name) {
  std::filesystem::path p(name);
  if (p.is_absolute()) return name;
  return (std::filesystem::path(descriptor_path).parent_path() / p).string();
}

Result<std::unique_ptr<Extent>> OpenExtent(common::Storage& storage, const ExtentLine& line,
                                           const std::string& path) {
  const uint64_t size_bytes = line.size_sectors * kSectorBytes;
  if (line.type == ExtentType::kZero) return std::unique_ptr<Extent>(new ZeroExtent(size_bytes));
  BOOST_OUTCOME_TRY(file, storage.Open(path, common::OpenMode::kReadOnly));
  switch (line.type) {
    case ExtentType::kFlat:
    case ExtentType::kVmfs:
    case ExtentType::kVmfsRdm:
    case ExtentType::kVmfsRaw: {
      BOOST_OUTCOME_TRY(flat, FlatExtent::Open(std::move(file),
                                               line.offset_sectors.value_or(0) * kSectorBytes,
                                               size_bytes));
      return std::unique_ptr<Extent>(std::move(flat));
    }
    case ExtentType::kSparse:
    case ExtentType::kVmfsSparse:
    case ExtentType::kSeSparse: {
      // Dispatch on the file's magic, not the keyword (as QEMU does).
      BOOST_OUTCOME_TRY(sparse, SparseExtent::Open(std::move(file), size_bytes));
      return std::unique_ptr<Extent>(std::move(sparse));
    }
    case ExtentType::kZero:
      break;
  }
  return Error(ENOTSUP, "{}: unsupported extent type {}", path, ToString(line.type));
}

}  // namespace

Result<std::unique_ptr<Link>> Link::Open(common::Storage& storage, const std::string& path) {
  std::unique_ptr<Link> link(new Link());
  link->path_ = path;
  BOOST_OUTCOME_TRY(file, storage.Open(path, common::OpenMode::kReadOnly));
  BOOST_OUTCOME_TRY(file_size, file->Size());
  std::array<std::byte, 4> magic_bytes{};
  BOOST_OUTCOME_TRY(got, file->ReadAt(0, magic_bytes));
  uint32_t magic = 0;
  std::memcpy(&magic, magic_bytes.data(), 4);
  boost::endian::little_to_native_inplace(magic);

  std::unique_ptr<common::File> embedded_extent_file;
  if (got == 4 && magic == kSparseMagic) {
    // monolithicSparse / streamOptimized: the descriptor lives inside the extent file and
    // its extent line names the file itself (perhaps under an old name): use this file.
    BOOST_OUTCOME_TRY(header, ReadHostedHeader(*file, file_size));
    if (header.descriptor_offset_sectors == 0) {
      // A lone extent of a split set, or a headless sparse file: describe it as the
      // single extent it is. It has no parent.
      link->descriptor_ = Descriptor::CreateEmpty();
      link->descriptor_.Set("createType", "monolithicSparse");
      link->descriptor_.SetExtents({ExtentLine{ExtentAccess::kReadWrite, header.capacity_sectors,
                                               ExtentType::kSparse,
                                               std::filesystem::path(path).filename().string(),
                                               std::nullopt, {}}});
      link->warnings_.push_back(fmt::format("{}: no embedded descriptor (an extent of a split "
                                            "disk?); read as a lone sparse extent", path));
    } else {
      uint64_t at = header.descriptor_offset_sectors * kSectorBytes;
      uint64_t len = header.descriptor_size_sectors * kSectorBytes;
      if (len == 0 || len > kMaxDescriptorBytes || at > file_size || len > file_size - at) {
        return Error(EIO, "{}: embedded descriptor ({} sectors at sector {}) is empty, too "
                     "large or outside the file ({} bytes)", path, header.descriptor_size_sectors,
                     header.descriptor_offset_sectors, file_size);
      }
      std::string text(len, '\0');
      BOOST_OUTCOME_TRYV(file->ReadExactAt(
          at, std::as_writable_bytes(std::span(text)), "embedded descriptor"));
      text.resize(std::strlen(text.c_str()));  // NUL-padded to its reserved area
      auto parsed = Descriptor::Parse(text);
      if (!parsed) return parsed.error().WithContext(fmt::format("{}: embedded descriptor", path));
      link->descriptor_ = std::move(parsed).value();
      if (link->descriptor_.extents().size() != 1) {
        return Error(EIO, "{}: embedded descriptor lists {} extents; a file with an embedded "
                     "descriptor is exactly one extent", path, link->descriptor_.extents().size());
      }
    }
    embedded_extent_file = std::move(file);
  } else if (got == 4 && magic == kCowdMagic) {
    return Error(EINVAL, "{}: this is a COWD delta extent; open the descriptor that names it",
                 path);
  } else {
    if (file_size > kMaxDescriptorBytes) {
      return Error(EINVAL, "{}: not a VMDK: no sparse-extent magic, and {} bytes is too large "
                   "for a text descriptor", path, file_size);
    }
    std::string text(file_size, '\0');
    BOOST_OUTCOME_TRYV(file->ReadExactAt(0, std::as_writable_bytes(std::span(text)),
                                         "descriptor"));
    // The descriptor ends at its first NUL, as QEMU reads it. QEMU's CID update
    // (vmdk_write_cid) rewrites the descriptor from a buffer holding the old one: the new
    // text, its NUL, then whatever of the old text the new one did not cover, and NULs to
    // the end of the sector. qemu writes CIDs with "%x", so a new CID two or more digits
    // shorter than the old (about one update in 256) leaves old text after the NUL; so
    // does an update that drops a line between CID and parentCID. What follows the NUL
    // only words the error when there is no descriptor before it.
    bool data_after_nul = false;
    if (size_t nul = text.find('\0'); nul != std::string::npos) {
      data_after_nul = text.find_first_not_of('\0', nul) != std::string::npos;
      text.resize(nul);
    }
    auto parsed = Descriptor::Parse(text);
    if (!parsed && data_after_nul) {
      // No descriptor before the NUL and more after it: binary data, whose parse error
      // would only quote bytes of it.
      return Error(EINVAL, "{}: not a VMDK: binary data without a sparse-extent magic", path);
    }
    if (!parsed) return parsed.error().WithContext(fmt::format("{}: descriptor", path));
    link->descriptor_ = std::move(parsed).value();
  }

  uint64_t start = 0;
  for (const ExtentLine& line : link->descriptor_.extents()) {
    LinkExtent slot;
    slot.line = line;
    slot.start_bytes = start;
    if (line.size_sectors > kMaxCapacitySectors ||
        start + line.size_sectors * kSectorBytes > kMaxCapacitySectors * kSectorBytes) {
      return Error(EINVAL, "{}: extents add up to more than the {} TiB limit", path,
                   kMaxCapacitySectors * kSectorBytes >> 40);
    }
    if (embedded_extent_file) {
      slot.path = path;
      BOOST_OUTCOME_TRY(sparse, SparseExtent::Open(std::move(embedded_extent_file),
                                                   line.size_sectors * kSectorBytes));
      link->warnings_.insert(link->warnings_.end(), sparse->warnings().begin(),
                             sparse->warnings().end());
      slot.extent = std::move(sparse);
    } else if (line.type != ExtentType::kZero) {
      slot.path = ResolveExtentPath(path, line.file_name);
    }
    if (!slot.extent && line.access != ExtentAccess::kNoAccess) {
      BOOST_OUTCOME_TRY(extent, OpenExtent(storage, line, slot.path));
      if (auto* sparse = dynamic_cast<SparseExtent*>(extent.get())) {
        link->warnings_.insert(link->warnings_.end(), sparse->warnings().begin(),
                               sparse->warnings().end());
      }
      slot.extent = std::move(extent);
    }
    start += line.size_sectors * kSectorBytes;
    link->extents_.push_back(std::move(slot));
  }
  link->capacity_bytes_ = start;
  if (start == 0) return Error(EINVAL, "{}: the disk has no capacity (extents total 0)", path);
  return link;
}

size_t Link::ExtentIndexAt(uint64_t offset_bytes) const {
  auto it = std::upper_bound(extents_.begin(), extents_.end(), offset_bytes,
                             [](uint64_t off, const LinkExtent& e) { return off < e.start_bytes; });
  return static_cast<size_t>(it - extents_.begin()) - 1;
}

Result<Mapping> Link::Map(uint64_t offset_bytes, uint64_t max_length_bytes) const {
  if (offset_bytes >= capacity_bytes_ || max_length_bytes == 0) {
    return Error(EINVAL, "{}: map at byte {} outside the disk ({} bytes)", path_, offset_bytes,
                 capacity_bytes_);
  }
  const LinkExtent& slot = extents_[ExtentIndexAt(offset_bytes)];
  uint64_t in_extent = offset_bytes - slot.start_bytes;
  uint64_t length = std::min(max_length_bytes, slot.line.size_sectors * kSectorBytes - in_extent);
  if (!slot.extent) return Mapping{BlockState::kData, length};  // NOACCESS: reads will fail
  return slot.extent->Map(in_extent, length);
}

Status Link::Read(uint64_t offset_bytes, std::span<std::byte> dst) const {
  if (offset_bytes > capacity_bytes_ || dst.size() > capacity_bytes_ - offset_bytes) {
    return Error(EINVAL, "{}: read of {} bytes at byte {} outside the disk ({} bytes)", path_,
                 dst.size(), offset_bytes, capacity_bytes_);
  }
  size_t done = 0;
  while (done < dst.size()) {
    uint64_t pos = offset_bytes + done;
    const LinkExtent& slot = extents_[ExtentIndexAt(pos)];
    uint64_t in_extent = pos - slot.start_bytes;
    size_t n = std::min<uint64_t>(dst.size() - done,
                                  slot.line.size_sectors * kSectorBytes - in_extent);
    if (!slot.extent) {
      return Error(EACCES, "{}: byte {} lies in a NOACCESS extent", path_, pos);
    }
    BOOST_OUTCOME_TRYV(slot.extent->Read(in_extent, dst.subspan(done, n)));
    done += n;
  }
  return Status::Ok();
}

Result<Link::Usage> Link::CountAllocation() const {
  Usage usage;
  uint64_t pos = 0;
  while (pos < capacity_bytes_) {
    BOOST_OUTCOME_TRY(m, Map(pos, capacity_bytes_ - pos));
    if (m.state == BlockState::kData) usage.data_bytes += m.length_bytes;
    if (m.state == BlockState::kZero) usage.zero_bytes += m.length_bytes;
    pos += m.length_bytes;
  }
  return usage;
}

}  // namespace vmdk
