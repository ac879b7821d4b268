// SPDX-License-Identifier: Apache-2.0
#include "tools/lib/linked_clone.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>

#include "fs/engine/delta_layer.h"
#include "vmdk/disk.h"

namespace tools {
namespace {

namespace fs = std::filesystem;
using common::Error;
using common::Result;
using common::Status;

std::string Normal(const std::string& path) {
  fs::path p = fs::absolute(path).lexically_normal();
  std::string s = p.string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

std::string UtcNow() {
  auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

// Removes a directory tree built by this file (files and directories only).
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

// Every file of the chain becomes read-only: a parent must never change under its clones.
Status MakeChainReadOnly(common::Storage& storage, const vmdk::Disk& disk) {
  auto protect = [&](const std::string& path) -> Status {
    BOOST_OUTCOME_TRY(info, storage.Stat(path));
    if ((info.mode & 0222) == 0) return Status::Ok();
    return storage.SetMode(path, info.mode & 07555);
  };
  for (const auto& link : disk.links()) {
    BOOST_OUTCOME_TRYV(protect(link->path()));
    for (const vmdk::LinkExtent& extent : link->extents()) {
      if (!extent.path.empty() && extent.extent) {
        BOOST_OUTCOME_TRYV(protect(extent.path));
      }
    }
  }
  return Status::Ok();
}

// Builds the clone's metadata inside `dir` (which exists and is empty).
Result<engine::CloneConfig> BuildClone(common::Storage& storage, const std::string& dir,
                                       const LinkedCloneRequest& request,
                                       const std::string& source, const vmdk::Disk& disk,
                                       const engine::ParentFingerprint& fingerprint) {
  const std::string meta = dir + "/" + engine::kMetadataDirName;
  BOOST_OUTCOME_TRYV(storage.CreateDirectory(meta));

  engine::CloneDisk clone_disk;
  clone_disk.name = fs::path(source).stem().string();
  clone_disk.capacity_bytes = disk.capacity_bytes();
  clone_disk.parent_path = source;
  clone_disk.parent_fingerprint = fingerprint;
  clone_disk.delta_file = clone_disk.name + ".delta";
  clone_disk.map_file = clone_disk.name + ".map";

  engine::DeltaHeader header = engine::DeltaHeader::ForCapacity(disk.capacity_bytes());
  header.layer_id = engine::NewLayerId();
  header.parent_fingerprint = engine::Digest(fingerprint);
  clone_disk.layer_id = engine::ToHex(header.layer_id);
  const engine::DeltaPaths paths{meta + "/" + clone_disk.delta_file,
                                 meta + "/" + clone_disk.map_file};
  BOOST_OUTCOME_TRY(layer, engine::DeltaLayer::Create(storage, paths, header));
  BOOST_OUTCOME_TRYV(layer->Close());

  engine::CloneConfig config;
  config.display_name = request.display_name.empty()
                            ? fs::path(Normal(request.destination)).filename().string()
                            : request.display_name;
  config.created_utc = UtcNow();
  config.source = request.source;
  config.disks.push_back(std::move(clone_disk));
  BOOST_OUTCOME_TRYV(engine::WriteFileAtomically(
      storage, meta + "/" + engine::kCloneConfigName, engine::SerializeCloneConfig(config)));
  BOOST_OUTCOME_TRY(lock, storage.CreateExclusive(meta + "/lock"));
  BOOST_OUTCOME_TRYV(lock->Sync());
  BOOST_OUTCOME_TRYV(storage.SyncDirectory(meta));
  BOOST_OUTCOME_TRYV(storage.SyncDirectory(dir));
  return config;
}

}  // namespace

Result<engine::CloneConfig> CreateLinkedClone(common::Storage& storage,
                                              const LinkedCloneRequest& request) {
  const std::string dest = Normal(request.destination);
  const std::string source = Normal(request.source);
  if (storage.Stat(dest)) return Error(EEXIST, "{}: already exists", request.destination);
  const std::string dest_parent = fs::path(dest).parent_path().string();
  BOOST_OUTCOME_TRY(parent_info, storage.Stat(dest_parent));
  if (!parent_info.is_directory) return Error(ENOTDIR, "{}: not a directory", dest_parent);
  BOOST_OUTCOME_TRY(source_info, storage.Stat(source));
  if (source_info.is_directory || fs::path(source).extension() == ".vmx") {
    return Error(ENOTSUP, "{}: cloning a VM directory or .vmx is not supported yet; give the "
                 ".vmdk of its disk", request.source);
  }

  // The whole chain is opened and checked before anything is created.
  BOOST_OUTCOME_TRY(disk, vmdk::Disk::Open(storage, source));
  BOOST_OUTCOME_TRYV(MakeChainReadOnly(storage, *disk));
  BOOST_OUTCOME_TRY(fingerprint, engine::FingerprintChain(storage, *disk));

  const std::string temp = fmt::format("{}/.{}.clonefs-tmp-{}", dest_parent,
                                       fs::path(dest).filename().string(), ::getpid());
  RemoveTree(storage, temp);  // a leftover of an earlier crash of this same pid
  BOOST_OUTCOME_TRYV(storage.CreateDirectory(temp));
  auto config = BuildClone(storage, temp, request, source, *disk, fingerprint);
  if (!config) {
    RemoveTree(storage, temp);
    return config.error();
  }
  if (Status s = storage.Rename(temp, dest, /*no_replace=*/true); !s.ok()) {
    RemoveTree(storage, temp);
    return s.code() == EEXIST ? Error(EEXIST, "{}: already exists", request.destination) : s;
  }
  BOOST_OUTCOME_TRYV(storage.SyncDirectory(dest_parent));
  return config;
}

}  // namespace tools
