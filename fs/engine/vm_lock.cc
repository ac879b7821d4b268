// SPDX-License-Identifier: Apache-2.0
#include "fs/engine/vm_lock.h"

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include <boost/interprocess/exceptions.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/mount_table.h"

namespace engine {
namespace {

using common::Error;

std::string LockPath(const std::string& metadata_dir) { return metadata_dir + "/lock"; }
std::string OwnerPath(const std::string& metadata_dir) { return metadata_dir + "/lock.owner"; }

LockHolder ReadOwner(const std::string& owner_path) {
  LockHolder holder;
  std::ifstream in(owner_path);
  std::stringstream text;
  text << in.rdbuf();
  auto json = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (json.is_object()) {
    holder.pid = json.value("pid", 0L);
    holder.mountpoint = json.value("mountpoint", std::string("?"));
    holder.operation = json.value("operation", std::string());
  } else {
    holder.mountpoint = "?";
  }
  return holder;
}

// Best effort, not durable: the record is advice for error messages and `clonectl info`;
// the lock itself is the truth, and a stale record is overwritten by the next holder.
void WriteOwner(const std::string& owner_path, const LockHolder& me) {
  const std::string temp = owner_path + ".tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    nlohmann::json record{{"pid", me.pid}, {"mountpoint", me.mountpoint}};
    if (!me.operation.empty()) record["operation"] = me.operation;
    out << record.dump() << "\n";
  }
  std::rename(temp.c_str(), owner_path.c_str());
}

}  // namespace

std::string DescribeHolder(const LockHolder& holder) {
  if (holder.mountpoint.empty() && !holder.operation.empty()) {
    return fmt::format("VM is busy (clonectl {}, pid {})", holder.operation, holder.pid);
  }
  return fmt::format("VM is running (mounted at {}, pid {})", holder.mountpoint, holder.pid);
}

common::Result<std::unique_ptr<VmLock>> VmLock::Acquire(
    const std::string& metadata_dir, const LockHolder& me,
    std::chrono::milliseconds wait_for_exiting) {
  const std::string lock_path = LockPath(metadata_dir);
  try {
    boost::interprocess::file_lock lock(lock_path.c_str());
    const auto deadline = std::chrono::steady_clock::now() + wait_for_exiting;
    while (!lock.try_lock()) {
      LockHolder holder = ReadOwner(OwnerPath(metadata_dir));
      if (common::MountedFileSystemType(holder.mountpoint) || std::chrono::steady_clock::now() >= deadline) {
        return Error(EBUSY, "{}", DescribeHolder(holder));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    WriteOwner(OwnerPath(metadata_dir), me);
    return std::unique_ptr<VmLock>(new VmLock(std::move(lock), OwnerPath(metadata_dir)));
  } catch (const boost::interprocess::interprocess_exception& e) {
    int code = e.get_native_error() != 0 ? e.get_native_error() : EIO;
    return Error(code, "{}: cannot lock: {}", lock_path, e.what());
  }
}

std::optional<LockHolder> VmLock::Holder(const std::string& metadata_dir) {
  try {
    boost::interprocess::file_lock lock(LockPath(metadata_dir).c_str());
    if (lock.try_lock()) {
      lock.unlock();
      return std::nullopt;
    }
    return ReadOwner(OwnerPath(metadata_dir));
  } catch (const boost::interprocess::interprocess_exception&) {
    return std::nullopt;  // no lock file: nothing can hold it
  }
}

VmLock::~VmLock() {
  std::remove(owner_path_.c_str());
  lock_.unlock();
}

}  // namespace engine
