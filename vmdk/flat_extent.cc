// SPDX-License-Identifier: Apache-2.0
#include "vmdk/flat_extent.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace vmdk {
namespace {

Status CheckRange(uint64_t extent_size, uint64_t offset_bytes, uint64_t length) {
  if (offset_bytes > extent_size || length > extent_size - offset_bytes) {
    return common::Error(EINVAL, "access of {} bytes at byte {} outside an extent of {} bytes",
                         length, offset_bytes, extent_size);
  }
  return Status::Ok();
}

Result<Mapping> WholeRun(BlockState state, uint64_t extent_size, uint64_t offset_bytes,
                         uint64_t max_length_bytes) {
  if (offset_bytes >= extent_size || max_length_bytes == 0) {
    return common::Error(EINVAL, "map at byte {} outside an extent of {} bytes", offset_bytes,
                         extent_size);
  }
  return Mapping{state, std::min(max_length_bytes, extent_size - offset_bytes)};
}

}  // namespace

Result<std::unique_ptr<FlatExtent>> FlatExtent::Open(std::unique_ptr<common::File> file,
                                                     uint64_t file_offset_bytes,
                                                     uint64_t extent_size_bytes) {
  BOOST_OUTCOME_TRY(file_size, file->Size());
  if (file_offset_bytes > file_size || extent_size_bytes > file_size - file_offset_bytes) {
    return common::Error(EIO, "{}: file is {} bytes, but the extent needs {} bytes from byte {}",
                         file->path(), file_size, extent_size_bytes, file_offset_bytes);
  }
  return std::unique_ptr<FlatExtent>(
      new FlatExtent(std::move(file), file_offset_bytes, extent_size_bytes));
}

Result<Mapping> FlatExtent::Map(uint64_t offset_bytes, uint64_t max_length_bytes) const {
  BOOST_OUTCOME_TRY(whole, WholeRun(BlockState::kData, size_bytes_, offset_bytes,
                                    max_length_bytes));
  // Holes of a host-sparse flat file (qemu-img and thin ESXi disks make them) read as
  // zeros; reporting them lets callers skip them instead of reading zeros.
  const uint64_t at = file_offset_bytes_ + offset_bytes;
  BOOST_OUTCOME_TRY(data, file_->NextData(at));
  if (data > at) return Mapping{BlockState::kZero, std::min(whole.length_bytes, data - at)};
  BOOST_OUTCOME_TRY(hole, file_->NextHole(at));
  if (hole <= at) return whole;  // a file system without hole reporting
  return Mapping{BlockState::kData, std::min(whole.length_bytes, hole - at)};
}

Status FlatExtent::Read(uint64_t offset_bytes, std::span<std::byte> dst) const {
  BOOST_OUTCOME_TRYV(CheckRange(size_bytes_, offset_bytes, dst.size()));
  return file_->ReadExactAt(file_offset_bytes_ + offset_bytes, dst, "flat extent data");
}

ExtentDetails FlatExtent::Details() const {
  return {{"format", "flat"}, {"file_offset_bytes", std::to_string(file_offset_bytes_)}};
}

Result<Mapping> ZeroExtent::Map(uint64_t offset_bytes, uint64_t max_length_bytes) const {
  return WholeRun(BlockState::kZero, size_bytes_, offset_bytes, max_length_bytes);
}

Status ZeroExtent::Read(uint64_t offset_bytes, std::span<std::byte> dst) const {
  BOOST_OUTCOME_TRYV(CheckRange(size_bytes_, offset_bytes, dst.size()));
  std::memset(dst.data(), 0, dst.size());
  return Status::Ok();
}

}  // namespace vmdk
