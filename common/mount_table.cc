// SPDX-License-Identifier: Apache-2.0
#include "common/mount_table.h"

#include <fstream>
#include <sstream>

namespace common {

std::string UnescapeMountField(const std::string& field) {
  std::string out;
  for (size_t i = 0; i < field.size(); ++i) {
    const bool octal_escape = field[i] == '\\' && i + 3 < field.size() &&
                              field.find_first_not_of("01234567", i + 1) >= i + 4;
    if (octal_escape) {
      out += static_cast<char>(std::stoi(field.substr(i + 1, 3), nullptr, 8));
      i += 3;
    } else {
      out += field[i];
    }
  }
  return out;
}

std::optional<std::string> MountedFileSystemType(const std::string& mountpoint) {
  std::ifstream mounts("/proc/self/mountinfo");
  std::optional<std::string> type;
  std::string line;
  // "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER"
  while (std::getline(mounts, line)) {
    std::istringstream fields(line);
    std::string field, point;
    for (int i = 0; i < 5 && fields >> field; ++i) point = field;
    if (UnescapeMountField(point) != mountpoint) continue;
    while (fields >> field && field != "-") {
    }
    if (fields >> field) type = field;  // later lines are mounted on top of earlier ones
  }
  return type;
}

}  // namespace common
