// SPDX-License-Identifier: Apache-2.0
#include "tools/lib/linked_clone.h"

#include <cerrno>
#include <chrono>

#include "fs/engine/delta_layer.h"
#include "tools/lib/clone_dir.h"
#include "tools/lib/clone_source.h"
#include "vmdk/disk.h"
#include "vmdk/flat_descriptor.h"

namespace tools {
namespace {

using common::Error;
using common::Result;
using common::Status;

std::string UtcNow() {
  auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
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
    BOOST_OUTCOME_TRY(vmx_name, WriteCloneVmConfig(storage, dir, dest_name, *source.vm,
                                                   config.display_name, source.disks));
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
  BOOST_OUTCOME_TRY(dest, CheckDestination(storage, request.destination));
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

  engine::CloneConfig config;
  BOOST_OUTCOME_TRYV(BuildAndPublish(storage, dest, [&](const std::string& dir) -> Status {
    BOOST_OUTCOME_TRY(built, BuildClone(storage, dir, request, dest.name, source, parents));
    config = std::move(built);
    return Status::Ok();
  }));
  return config;
}

}  // namespace tools
