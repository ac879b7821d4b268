// SPDX-License-Identifier: Apache-2.0
#pragma once

// Builds a CowDisk over FakeLowerLayers and a fresh delta layer, for CowDisk tests.

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "common/storage.h"
#include "fs/engine/cow_disk.h"
#include "tests/engine/fake_lower_layers.h"

namespace engine::fakes {

struct TestDisk {
  std::unique_ptr<CowDisk> disk;
  FakeLowerLayers* lower = nullptr;  // owned by disk
};

// A CowDisk of capacity_bytes over FakeLowerLayers(capacity_bytes, holes) and a new delta
// layer at `paths`. Fails the current test (and returns an empty TestDisk) on error.
inline TestDisk MakeTestDisk(common::Storage& storage, const DeltaPaths& paths,
                             uint64_t capacity_bytes,
                             std::vector<FakeLowerLayers::Hole> holes = {}) {
  auto lower = std::make_unique<FakeLowerLayers>(capacity_bytes, std::move(holes));
  FakeLowerLayers* raw = lower.get();
  auto delta = DeltaLayer::Create(storage, paths, DeltaHeader::ForCapacity(capacity_bytes));
  if (!delta) {
    ADD_FAILURE() << delta.error().message();
    return {};
  }
  auto disk = CowDisk::Create(std::move(lower), std::move(delta).value());
  if (!disk) {
    ADD_FAILURE() << disk.error().message();
    return {};
  }
  return {std::move(disk).value(), raw};
}

// `length` bytes that depend on `seed` and on the index, for data a test writes.
inline std::vector<std::byte> Filled(uint64_t seed, size_t length) {
  std::vector<std::byte> out(length);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
  for (size_t i = 0; i < length; ++i) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x += i;
    out[i] = std::byte(static_cast<uint8_t>(x >> 56));
  }
  return out;
}

}  // namespace engine::fakes
