// SPDX-License-Identifier: Apache-2.0
#include "tools/lib/clone_dir.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include <fmt/format.h>

#include "tools/lib/clone_vmx.h"

namespace tools {
namespace {

namespace fs = std::filesystem;
using common::Error;
using common::Result;
using common::Status;

}  // namespace

Result<CloneDestination> CheckDestination(common::Storage& storage,
                                          const std::string& destination) {
  CloneDestination dest;
  dest.given = destination;
  dest.path = NormalPath(destination);
  if (storage.Stat(dest.path)) return Error(EEXIST, "{}: already exists", destination);
  dest.parent = fs::path(dest.path).parent_path().string();
  BOOST_OUTCOME_TRY(parent_info, storage.Stat(dest.parent));
  if (!parent_info.is_directory) return Error(ENOTDIR, "{}: not a directory", dest.parent);
  dest.name = fs::path(dest.path).filename().string();
  dest.temp = fmt::format("{}/.{}.clonefs-tmp-{}", dest.parent, dest.name, ::getpid());
  return dest;
}

// Removes the temporary directories earlier clones of the same DEST left when their
// process was killed (".NAME.clonefs-tmp-PID" whose PID is no longer running); this
// pid's own is removed too, since nothing of it can be in use.
void RemoveLeftoversOfKilledClones(common::Storage& storage, const CloneDestination& dest) {
  const std::string prefix = "." + dest.name + ".clonefs-tmp-";
  auto names = storage.ListDirectory(dest.parent);
  if (!names) return;
  for (const std::string& name : names.value()) {
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string pid_text = name.substr(prefix.size());
    if (pid_text.empty() || pid_text.find_first_not_of("0123456789") != std::string::npos) continue;
    const long pid = std::stol(pid_text);
    if (pid != ::getpid() && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH)) {
      continue;  // still running: another clone of the same DEST in progress
    }
    RemoveTree(storage, dest.parent + "/" + name);
  }
}

Status BuildAndPublish(common::Storage& storage, const CloneDestination& dest,
                       const std::function<Status(const std::string& dir)>& build) {
  RemoveLeftoversOfKilledClones(storage, dest);
  BOOST_OUTCOME_TRYV(storage.CreateDirectory(dest.temp));
  if (Status s = build(dest.temp); !s.ok()) {
    RemoveTree(storage, dest.temp);
    return s;
  }
  if (Status s = storage.Rename(dest.temp, dest.path, /*no_replace=*/true); !s.ok()) {
    RemoveTree(storage, dest.temp);
    return s.code() == EEXIST ? Error(EEXIST, "{}: already exists", dest.given) : s;
  }
  return storage.SyncDirectory(dest.parent);
}

Result<std::string> WriteCloneVmConfig(common::Storage& storage, const std::string& dir,
                                       const std::string& name, const CloneSourceVm& vm,
                                       const std::string& display_name,
                                       const std::vector<CloneSourceDisk>& disks) {
  CloneVmxEdits edits{display_name, disks, name + ".nvram"};
  if (vm.nvram_path) {
    // NVRAM files are 8-512 KiB; a far larger one is not an nvram.
    BOOST_OUTCOME_TRYV(
        CopySmallFile(storage, *vm.nvram_path, dir + "/" + *edits.nvram_name, 16 << 20));
  }
  const std::string vmx_name = name + ".vmx";
  const std::string text = MakeCloneVmx(vm.vmx, edits).Text();
  // The parent's permissions, owner-writable: the hypervisor rewrites its .vmx.
  BOOST_OUTCOME_TRYV(WriteNewFile(storage, dir + "/" + vmx_name,
                                  std::as_bytes(std::span(text.data(), text.size())),
                                  (vm.vmx_mode & 0777) | 0600));
  return vmx_name;
}

}  // namespace tools
