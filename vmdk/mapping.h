// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string_view>

namespace vmdk {

inline constexpr uint64_t kSectorBytes = 512;

// What a range of a layer holds. "Not allocated" is a value, not an error.
enum class BlockState : uint8_t {
  kData,         // this layer stores data for the range
  kZero,         // this layer says the range reads as zeros (zeroed grain, ZERO extent);
                 // it masks any parent
  kUnallocated,  // this layer has nothing: read the parent, or zeros at the base
};

std::string_view ToString(BlockState state);

// A run of one state starting at the queried offset.
struct Mapping {
  BlockState state = BlockState::kUnallocated;
  uint64_t length_bytes = 0;
};

}  // namespace vmdk
