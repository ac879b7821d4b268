// SPDX-License-Identifier: Apache-2.0
#pragma once

// Small helpers for tests that open images through vmdk::Disk on MemoryStorage.

#include <gtest/gtest.h>

#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "common/memory_storage.h"
#include "tests/vmdk/sparse_image_builder.h"
#include "vmdk/disk.h"

namespace vmdk_test {

// One run of Disk::Map, comparable in EXPECT_EQ.
struct MapRun {
  vmdk::BlockState state;
  uint64_t length_bytes;
  int link_index;
  bool operator==(const MapRun&) const = default;
};

inline std::ostream& operator<<(std::ostream& os, const MapRun& r) {
  return os << "{" << vmdk::ToString(r.state) << ", " << r.length_bytes << ", link " << r.link_index
            << "}";
}

constexpr auto kData = vmdk::BlockState::kData;
constexpr auto kZero = vmdk::BlockState::kZero;
constexpr auto kUnallocated = vmdk::BlockState::kUnallocated;

// Every run of the disk from byte 0 to its capacity.
inline std::vector<MapRun> MapAll(const vmdk::Disk& disk) {
  std::vector<MapRun> runs;
  uint64_t pos = 0;
  while (pos < disk.capacity_bytes()) {
    auto m = disk.Map(pos, disk.capacity_bytes() - pos);
    EXPECT_TRUE(m) << m.error().message();
    if (!m || m.value().length_bytes == 0) break;
    runs.push_back({m.value().state, m.value().length_bytes, m.value().link_index});
    pos += m.value().length_bytes;
  }
  return runs;
}

inline Bytes ReadRange(const vmdk::Disk& disk, uint64_t offset_bytes, size_t length) {
  Bytes out(length);
  common::Status st = disk.Read(offset_bytes, out);
  EXPECT_TRUE(st.ok()) << st.message();
  return out;
}

inline Bytes ReadAll(const vmdk::Disk& disk) { return ReadRange(disk, 0, disk.capacity_bytes()); }

inline Bytes Slice(const Bytes& bytes, uint64_t offset, uint64_t length) {
  return Bytes(bytes.begin() + offset, bytes.begin() + offset + length);
}

// Opens `path` and fails the test (returning null) when it does not open.
inline std::unique_ptr<vmdk::Disk> OpenOk(common::MemoryStorage& storage, const std::string& path) {
  auto disk = vmdk::Disk::Open(storage, path);
  EXPECT_TRUE(disk) << disk.error().message();
  return disk ? std::move(disk).value() : nullptr;
}

}  // namespace vmdk_test

namespace vmdk_test {

// The first failure of opening `path` as a disk and then mapping and reading all of it
// (some corruption is only found when a grain table is first loaded), or OK.
inline common::Status OpenMapAndRead(common::MemoryStorage& storage, const std::string& path) {
  auto disk = vmdk::Disk::Open(storage, path);
  if (!disk) return disk.error();
  const vmdk::Disk& d = *disk.value();
  for (uint64_t pos = 0; pos < d.capacity_bytes();) {
    auto m = d.Map(pos, d.capacity_bytes() - pos);
    if (!m) return m.error();
    pos += m.value().length_bytes;
  }
  Bytes all(d.capacity_bytes());
  return d.Read(0, all);
}

// Succeeds when `status` failed with `code` and its message contains every `needle`.
inline ::testing::AssertionResult FailsWith(const common::Status& status, int code,
                                            std::initializer_list<std::string_view> needles) {
  if (status.ok()) return ::testing::AssertionFailure() << "succeeded; expected errno " << code;
  if (status.code() != code) {
    return ::testing::AssertionFailure()
           << "errno " << status.code() << " (expected " << code << "): " << status.message();
  }
  for (std::string_view needle : needles) {
    if (status.message().find(needle) == std::string::npos) {
      return ::testing::AssertionFailure()
             << "message lacks '" << needle << "': " << status.message();
    }
  }
  return ::testing::AssertionSuccess() << status.message();
}

}  // namespace vmdk_test
