// SPDX-License-Identifier: Apache-2.0
#pragma once

// The exclusive lock a mounting daemon holds on a VM's `.clonefs/lock` (DESIGN.md,
// "Processes and locking"): a Boost.Interprocess file_lock, i.e. a POSIX fcntl lock, so
// it also works on NFS and dies with the process (kill -9 included).
//
// Who holds it is written beside it, in `.clonefs/lock.owner` ({"pid", "mountpoint"}):
// fcntl locks are dropped when the process closes *any* descriptor of the locked file,
// so the holder must never open the lock file a second time to write into it.

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <boost/interprocess/sync/file_lock.hpp>

#include "common/status.h"

namespace engine {

struct LockHolder {
  long pid = 0;
  std::string mountpoint;  // the daemon's; "" for a clonectl command
  std::string operation;   // the clonectl command holding it ("snapshot"), or ""
};

class VmLock {
 public:
  // Takes the lock for this process and records `me` as its holder. When another process
  // holds it: EBUSY "VM is running (mounted at M, pid P)". A holder whose mountpoint is no
  // longer mounted is shutting down (unmounted, flushing): wait for it up to
  // `wait_for_exiting` before refusing.
  static common::Result<std::unique_ptr<VmLock>> Acquire(
      const std::string& metadata_dir, const LockHolder& me,
      std::chrono::milliseconds wait_for_exiting = std::chrono::seconds(10));

  // Whether some process holds the lock, and who (as recorded; nullopt when not held).
  static std::optional<LockHolder> Holder(const std::string& metadata_dir);

  ~VmLock();

 private:
  VmLock(boost::interprocess::file_lock lock, std::string owner_path)
      : lock_(std::move(lock)), owner_path_(std::move(owner_path)) {}

  boost::interprocess::file_lock lock_;
  std::string owner_path_;
};

// "VM is running (mounted at M, pid P)", or for a clonectl command
// "VM is busy (clonectl snapshot, pid P)".
std::string DescribeHolder(const LockHolder& holder);

}  // namespace engine
