// SPDX-License-Identifier: Apache-2.0
#include "tools/lib/small_files.h"

#include <cerrno>
#include <vector>

namespace tools {

using common::Error;
using common::Status;

Status WriteNewFile(common::Storage& storage, const std::string& path,
                    std::span<const std::byte> contents, uint32_t mode) {
  BOOST_OUTCOME_TRY(file, storage.CreateExclusive(path));
  BOOST_OUTCOME_TRYV(file->WriteAt(0, contents));
  BOOST_OUTCOME_TRYV(file->Sync());
  return storage.SetMode(path, mode);
}

Status CopySmallFile(common::Storage& storage, const std::string& from, const std::string& to,
                     uint64_t max_bytes) {
  BOOST_OUTCOME_TRY(info, storage.Stat(from));
  BOOST_OUTCOME_TRY(source, storage.Open(from, common::OpenMode::kReadOnly));
  BOOST_OUTCOME_TRY(size, source->Size());
  if (size > max_bytes) {
    return Error(EINVAL, "{}: {} bytes is too large (at most {} expected)", from, size, max_bytes);
  }
  std::vector<std::byte> bytes(size);
  BOOST_OUTCOME_TRYV(source->ReadExactAt(0, bytes, "contents"));
  return WriteNewFile(storage, to, bytes, (info.mode & 0777) | 0600);
}

void RemoveTree(common::Storage& storage, const std::string& dir) {
  auto names = storage.ListDirectory(dir);
  if (names) {
    for (const std::string& name : names.value()) {
      std::string path = dir + "/" + name;
      auto info = storage.Stat(path);
      if (info && info.value().is_directory) {
        RemoveTree(storage, path);
      } else {
        (void)storage.Remove(path);
      }
    }
  }
  (void)storage.RemoveDirectory(dir);
}

}  // namespace tools
