// SPDX-License-Identifier: Apache-2.0
#pragma once

// Which clones depend on a VM's snapshot points (docs/snapshots.md, "Dependents"). Each
// linked clone of a managed VM is recorded twice: the clone's clone.json names its parent
// VM and snapshot point, and the parent's `.clonefs/dependents/<clone's vm_id>.json`
// names the clone's path. Deleting a snapshot or VM reads the parent's records; each is
// checked against the clone it names, so a clone moved or deleted without clonectl is
// reported as such and its record can be removed.
//
// Records change under the parent's dependents lock (`.clonefs/dependents.lock`, an
// exclusive fcntl lock held for milliseconds), taken by clone creation and by deletion:
// a clone cannot register against a snapshot point that a deletion is removing. It is
// separate from the VM lock so that a running (mounted) VM's snapshot points can be
// cloned.

#include <memory>
#include <string>
#include <vector>

#include <boost/interprocess/sync/file_lock.hpp>

#include "common/storage.h"

namespace tools {

inline constexpr const char* kDependentsDirName = "dependents";

struct DependentRecord {
  std::string path;      // the clone's directory, absolute
  std::string vm_id;     // the clone's vm_id
  std::string snapshot;  // the parent's snapshot point it is based on
  std::string created_utc;
};

struct Dependent {
  DependentRecord record;
  // "" when the clone is where the record says; else what is wrong ("missing: moved or
  // deleted without clonectl", "is another VM now").
  std::string problem;
};

class DependentsLock {
 public:
  // Blocks until the lock on `meta`/dependents.lock is held.
  static common::Result<std::unique_ptr<DependentsLock>> Acquire(common::Storage& storage,
                                                                 const std::string& meta);

 private:
  explicit DependentsLock(boost::interprocess::file_lock lock) : lock_(std::move(lock)) {}
  boost::interprocess::file_lock lock_;
};

// Adds or removes the record of one dependent (atomically, durably). Call with the lock.
common::Status AddDependent(common::Storage& storage, const std::string& meta,
                            const DependentRecord& record);
common::Status RemoveDependent(common::Storage& storage, const std::string& meta,
                               const std::string& vm_id);

// Every recorded dependent of the VM whose metadata directory is `meta` and whose id is
// `vm_id`, each checked against the clone it names; ordered by path.
common::Result<std::vector<Dependent>> ListDependents(common::Storage& storage,
                                                      const std::string& meta,
                                                      const std::string& vm_id);

}  // namespace tools
