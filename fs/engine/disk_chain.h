// SPDX-License-Identifier: Apache-2.0
#pragma once

// Opening one disk of a managed VM from its clone.json record, checked layer by layer
// (docs/snapshots.md): the base VMDK chain against its fingerprint, each frozen layer's
// header against its record (id, the layer below, generation), the top layer's header
// against the disk. Shared by the daemon (MountedVm) and clonectl's commands, so every
// path that reads a VM's disks refuses the same broken chains with the same messages.

#include <memory>
#include <string>

#include "common/storage.h"
#include "fs/engine/clone_config.h"
#include "fs/engine/cow_disk.h"
#include "fs/engine/delta_layer.h"
#include "fs/engine/layer_stack.h"
#include "vmdk/disk.h"

namespace engine {

// The base chain, after checking each recorded file (missing, resized, replaced) and
// then the whole fingerprint (ENOENT / ESTALE naming the file and the change).
common::Result<std::unique_ptr<vmdk::Disk>> OpenBaseChain(common::Storage& storage,
                                                           const CloneDisk& disk);

// One frozen layer, read-only, whose header must match its record. `meta` resolves
// the layer's relative file names.
common::Result<std::unique_ptr<DeltaLayer>> OpenFrozenLayer(common::Storage& storage,
                                                            const std::string& meta,
                                                            const FrozenLayer& record);

// The base and the frozen layers below a layer whose parent is `parent_id`.
common::Result<std::unique_ptr<LayerStack>> OpenLowerChain(common::Storage& storage,
                                                           const std::string& meta,
                                                           const CloneDisk& disk,
                                                           const std::string& parent_id);

// The top (writable) layer's paths.
DeltaPaths TopLayerPaths(const std::string& meta, const CloneDisk& disk);

// The top layer, opened as `writable` says, checked against the disk's record.
common::Result<std::unique_ptr<DeltaLayer>> OpenTopLayer(common::Storage& storage,
                                                         const std::string& meta,
                                                         const CloneDisk& disk, bool writable);

// The disk as the VM sees it now: its top layer over its chain.
common::Result<std::unique_ptr<CowDisk>> OpenCloneDisk(common::Storage& storage,
                                                       const std::string& meta,
                                                       const CloneDisk& disk, bool writable);

// The layer id in clone.json's form ("" for the all-zero id that stands for the base).
std::string LayerIdText(const LayerId& id);

}  // namespace engine
