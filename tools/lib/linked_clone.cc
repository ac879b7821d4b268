// SPDX-License-Identifier: Apache-2.0
#include "tools/lib/linked_clone.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>

#include "fs/engine/delta_layer.h"
#include "tools/lib/clone_source.h"
#include "tools/lib/clone_vmx.h"
#include "vmdk/disk.h"
#include "vmdk/flat_descriptor.h"

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

struct ParentChain {
  std::unique_ptr<vmdk::Disk> disk;
  engine::ParentFingerprint fingerprint;
};

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

// A new file at `path` holding `contents`, durable, with permission bits `mode`.
Status WriteNewFile(common::Storage& storage, const std::string& path,
                    std::span<const std::byte> contents, uint32_t mode) {
  BOOST_OUTCOME_TRY(file, storage.CreateExclusive(path));
  BOOST_OUTCOME_TRYV(file->WriteAt(0, contents));
  BOOST_OUTCOME_TRYV(file->Sync());
  return storage.SetMode(path, mode);
}

// Copies an nvram file into a new file with the same permissions, owner-writable (the
// hypervisor rewrites it).
Status CopyNvram(common::Storage& storage, const std::string& from, const std::string& to) {
  // NVRAM files are 8-512 KiB; a far larger one is not an nvram, and it is read whole.
  constexpr uint64_t kMaxNvramBytes = 16 << 20;
  BOOST_OUTCOME_TRY(info, storage.Stat(from));
  BOOST_OUTCOME_TRY(source, storage.Open(from, common::OpenMode::kReadOnly));
  BOOST_OUTCOME_TRY(size, source->Size());
  if (size > kMaxNvramBytes) {
    return Error(EINVAL, "{}: {} bytes is too large for an nvram file", from, size);
  }
  std::vector<std::byte> bytes(size);
  BOOST_OUTCOME_TRYV(source->ReadExactAt(0, bytes, "nvram"));
  return WriteNewFile(storage, to, bytes, (info.mode & 0666) | 0600);
}

// One disk's empty delta layer in `meta`, and its clone.json record.
Result<engine::CloneDisk> BuildDisk(common::Storage& storage, const std::string& meta,
                                    const CloneSourceDisk& source, const ParentChain& parent) {
  engine::CloneDisk clone_disk;
  clone_disk.name = source.name;
  clone_disk.capacity_bytes = parent.disk->capacity_bytes();
  clone_disk.parent_path = source.vmdk_path;
  clone_disk.parent_fingerprint = parent.fingerprint;
  clone_disk.delta_file = clone_disk.name + ".delta";
  clone_disk.map_file = clone_disk.name + ".map";

  engine::DeltaHeader header = engine::DeltaHeader::ForCapacity(clone_disk.capacity_bytes);
  header.layer_id = engine::NewLayerId();
  header.parent_fingerprint = engine::Digest(parent.fingerprint);
  clone_disk.layer_id = engine::ToHex(header.layer_id);
  const engine::DeltaPaths paths{meta + "/" + clone_disk.delta_file,
                                 meta + "/" + clone_disk.map_file};
  BOOST_OUTCOME_TRY(layer, engine::DeltaLayer::Create(storage, paths, header));
  BOOST_OUTCOME_TRYV(layer->Close());
  // The descriptor a mount presents as D.vmdk (docs/daemon.md), with a CID of its own.
  BOOST_OUTCOME_TRYV(engine::WriteFileAtomically(
      storage, meta + "/" + clone_disk.name + ".vmdk",
      vmdk::MakeFlatDescriptor(*parent.disk, clone_disk.name + "-flat.vmdk", vmdk::NewCid())));
  return clone_disk;
}

// Builds the clone inside `dir` (which exists and is empty): metadata, one delta layer per
// disk, and for a VM its .vmx and nvram.
Result<engine::CloneConfig> BuildClone(common::Storage& storage, const std::string& dir,
                                       const LinkedCloneRequest& request,
                                       const std::string& dest_name, const CloneSource& source,
                                       const std::vector<ParentChain>& parents) {
  const std::string meta = dir + "/" + engine::kMetadataDirName;
  BOOST_OUTCOME_TRYV(storage.CreateDirectory(meta));

  engine::CloneConfig config;
  config.display_name = request.display_name.empty() ? dest_name : request.display_name;
  config.created_utc = UtcNow();
  config.source = request.source;
  for (size_t i = 0; i < source.disks.size(); ++i) {
    BOOST_OUTCOME_TRY(disk, BuildDisk(storage, meta, source.disks[i], parents[i]));
    config.disks.push_back(std::move(disk));
  }

  if (source.vm) {
    const CloneSourceVm& vm = *source.vm;
    CloneVmxEdits edits{config.display_name, source.disks, dest_name + ".nvram"};
    if (vm.nvram_path) {
      BOOST_OUTCOME_TRYV(CopyNvram(storage, *vm.nvram_path, dir + "/" + *edits.nvram_name));
    }
    const std::string vmx_name = dest_name + ".vmx";
    const std::string text = MakeCloneVmx(vm.vmx, edits).Text();
    // The parent's permissions, owner-writable: the hypervisor rewrites its .vmx.
    BOOST_OUTCOME_TRYV(WriteNewFile(storage, dir + "/" + vmx_name,
                                    std::as_bytes(std::span(text.data(), text.size())),
                                    (vm.vmx_mode & 0777) | 0600));
    config.vmx = vmx_name;
  }

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
  if (storage.Stat(dest)) return Error(EEXIST, "{}: already exists", request.destination);
  const std::string dest_parent = fs::path(dest).parent_path().string();
  BOOST_OUTCOME_TRY(parent_info, storage.Stat(dest_parent));
  if (!parent_info.is_directory) return Error(ENOTDIR, "{}: not a directory", dest_parent);
  BOOST_OUTCOME_TRY(source, ResolveCloneSource(storage, request.source));

  // Every chain is opened and checked before anything is changed or created.
  std::vector<ParentChain> parents;
  for (const CloneSourceDisk& disk : source.disks) {
    auto chain = vmdk::Disk::Open(storage, disk.vmdk_path);
    if (!chain) {
      if (!source.vm) return chain.error();
      return chain.error().WithContext(fmt::format("{}: {}", source.vm->vmx_display,
                                                   disk.file_key));
    }
    parents.push_back({std::move(chain).value(), {}});
  }
  for (const ParentChain& parent : parents) {
    BOOST_OUTCOME_TRYV(MakeChainReadOnly(storage, *parent.disk));
  }
  for (ParentChain& parent : parents) {
    BOOST_OUTCOME_TRY(fingerprint, engine::FingerprintChain(storage, *parent.disk));
    parent.fingerprint = std::move(fingerprint);
  }

  const std::string dest_name = fs::path(dest).filename().string();
  const std::string temp = fmt::format("{}/.{}.clonefs-tmp-{}", dest_parent, dest_name, ::getpid());
  RemoveTree(storage, temp);  // a leftover of an earlier crash of this same pid
  BOOST_OUTCOME_TRYV(storage.CreateDirectory(temp));
  auto config = BuildClone(storage, temp, request, dest_name, source, parents);
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
