// SPDX-License-Identifier: Apache-2.0
#include "vmdk/mapping.h"

namespace vmdk {

std::string_view ToString(BlockState state) {
  switch (state) {
    case BlockState::kData:
      return "data";
    case BlockState::kZero:
      return "zero";
    case BlockState::kUnallocated:
      return "unallocated";
  }
  return "?";
}

}  // namespace vmdk
