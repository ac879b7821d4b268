// SPDX-License-Identifier: Apache-2.0
#include "fs/engine/parent_fingerprint.h"

#include <xxhash.h>

#include <cerrno>
#include <charconv>

#include "vmdk/mapping.h"

namespace engine {
namespace {

using common::Error;
using common::Result;

Result<FingerprintedFile> FingerprintFile(common::Storage& storage, const std::string& path,
                                      std::string cid) {
  BOOST_OUTCOME_TRY(info, storage.Stat(path));
  BOOST_OUTCOME_TRY(file, storage.Open(path, common::OpenMode::kReadOnly));
  std::array<std::byte, vmdk::kSectorBytes> head{};
  BOOST_OUTCOME_TRY(got, file->ReadAt(0, head));
  FingerprintedFile f;
  f.path = path;
  f.size_bytes = info.size_bytes;
  f.mtime_ns = info.mtime_ns;
  f.inode = info.inode;
  f.cid = std::move(cid);
  f.head_hash = XXH3_64bits(head.data(), got);
  return f;
}

}  // namespace

Result<ParentFingerprint> FingerprintChain(common::Storage& storage, const vmdk::Disk& disk) {
  ParentFingerprint fp;
  for (const auto& link : disk.links()) {
    auto cid = link->descriptor().cid();
    BOOST_OUTCOME_TRY(top, FingerprintFile(storage, link->path(),
                                       cid ? fmt::format("{:08x}", *cid) : std::string("none")));
    fp.files.push_back(std::move(top));
    for (const vmdk::LinkExtent& extent : link->extents()) {
      if (extent.path.empty() || extent.path == link->path() || !extent.extent) continue;
      BOOST_OUTCOME_TRY(f, FingerprintFile(storage, extent.path, ""));
      fp.files.push_back(std::move(f));
    }
  }
  return fp;
}

std::string DescribeChange(const ParentFingerprint& recorded, const ParentFingerprint& current) {
  for (size_t i = 0; i < recorded.files.size(); ++i) {
    const FingerprintedFile& was = recorded.files[i];
    if (i >= current.files.size() || current.files[i].path != was.path) {
      return fmt::format("{}: no longer part of the parent chain", was.path);
    }
    const FingerprintedFile& now = current.files[i];
    if (now.cid != was.cid) {
      return fmt::format("{}: CID changed from {} to {} (the parent was written to)", was.path,
                         was.cid, now.cid);
    }
    if (now.size_bytes != was.size_bytes) {
      return fmt::format("{}: size changed from {} to {} bytes", was.path, was.size_bytes,
                         now.size_bytes);
    }
    if (now.inode != was.inode) {
      return fmt::format("{}: replaced by another file (inode {} is now {})", was.path, was.inode,
                         now.inode);
    }
    if (now.head_hash != was.head_hash) {
      return fmt::format("{}: header changed", was.path);
    }
    if (now.mtime_ns != was.mtime_ns) {
      return fmt::format("{}: modified since the clone was made (mtime changed)", was.path);
    }
  }
  if (current.files.size() > recorded.files.size()) {
    return fmt::format("{}: the parent chain gained a link", current.files.back().path);
  }
  return "";
}

nlohmann::ordered_json ToJson(const ParentFingerprint& fingerprint) {
  nlohmann::ordered_json files = nlohmann::ordered_json::array();
  for (const auto& f : fingerprint.files) {
    files.push_back({{"path", f.path},
                     {"size_bytes", f.size_bytes},
                     {"mtime_ns", f.mtime_ns},
                     {"inode", f.inode},
                     {"cid", f.cid},
                     {"head_xxh3", fmt::format("{:016x}", f.head_hash)}});
  }
  return files;
}

Fingerprint Digest(const ParentFingerprint& fingerprint) {
  std::string text = ToJson(fingerprint).dump();
  XXH128_hash_t h = XXH3_128bits(text.data(), text.size());
  Fingerprint out;
  for (int i = 0; i < 8; ++i) {
    out[i] = uint8_t(h.high64 >> (56 - 8 * i));
    out[8 + i] = uint8_t(h.low64 >> (56 - 8 * i));
  }
  return out;
}

Result<ParentFingerprint> FingerprintFromJson(const nlohmann::ordered_json& json) {
  if (!json.is_array()) return Error(EINVAL, "parent fingerprint is not a list");
  ParentFingerprint fp;
  for (const auto& j : json) {
    FingerprintedFile f;
    if (!j.is_object() || !j.contains("path") || !j["path"].is_string() ||
        !j.contains("size_bytes") || !j["size_bytes"].is_number_unsigned() ||
        !j.contains("mtime_ns") || !j["mtime_ns"].is_number_integer() || !j.contains("inode") ||
        !j["inode"].is_number_unsigned() || !j.contains("cid") || !j["cid"].is_string() ||
        !j.contains("head_xxh3") || !j["head_xxh3"].is_string()) {
      return Error(EINVAL, "parent fingerprint entry {} is malformed", fp.files.size());
    }
    f.path = j["path"].get<std::string>();
    f.size_bytes = j["size_bytes"].get<uint64_t>();
    f.mtime_ns = j["mtime_ns"].get<int64_t>();
    f.inode = j["inode"].get<uint64_t>();
    f.cid = j["cid"].get<std::string>();
    std::string hash = j["head_xxh3"].get<std::string>();
    auto [end, ec] = std::from_chars(hash.data(), hash.data() + hash.size(), f.head_hash, 16);
    if (ec != std::errc() || end != hash.data() + hash.size()) {
      return Error(EINVAL, "parent fingerprint entry {}: bad head_xxh3 '{}'", fp.files.size(),
                   hash);
    }
    fp.files.push_back(std::move(f));
  }
  return fp;
}

}  // namespace engine
