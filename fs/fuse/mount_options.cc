// SPDX-License-Identifier: Apache-2.0
#include "fs/fuse/mount_options.h"

#include <array>
#include <cerrno>
#include <sstream>

namespace clonefs {
namespace {

// Options that concern mount(8) and fstab, not the file system: mount.fuse3 strips some
// of them (user, users, auto, noauto, _netdev, nofail), libmount others (x-*, comment=),
// but clonefs can be run by hand with them, and `uhelper=` does get through.
constexpr std::array<std::string_view, 11> kMountCommandOptions = {
    "defaults", "auto",  "noauto", "user",    "nouser", "users",
    "nousers",  "owner", "group",  "_netdev", "nofail"};
constexpr std::array<std::string_view, 5> kMountCommandPrefixes = {"x-", "X-",
                                                                   "comment=", "user=", "uhelper="};

// Generic VFS options clonefs does not act on. mount.fuse3 always adds `dev` and `suid`
// (unless told nodev, nosuid), but a clone's directory is a VM's data: clonefs mounts
// nosuid,nodev whatever it is told. The atime options change nothing a hypervisor sees,
// and sync/dirsync nothing durable: writes are durable at each fsync and within the flush
// interval (docs/daemon.md).
constexpr std::array<std::string_view, 23> kIgnoredVfsOptions = {
    "dev",        "nodev",      "suid",        "nosuid",        "atime",    "noatime",
    "relatime",   "norelatime", "strictatime", "nostrictatime", "diratime", "nodiratime",
    "lazytime",   "nolazytime", "async",       "sync",          "dirsync",  "iversion",
    "noiversion", "mand",       "nomand",      "silent",        "loud"};

bool Ignored(std::string_view option) {
  for (std::string_view ignored : kMountCommandOptions) {
    if (option == ignored) return true;
  }
  for (std::string_view ignored : kIgnoredVfsOptions) {
    if (option == ignored) return true;
  }
  for (std::string_view prefix : kMountCommandPrefixes) {
    if (option.starts_with(prefix)) return true;
  }
  return false;
}

}  // namespace

common::Result<MountOptions> ParseMountOptions(const std::vector<std::string>& option_lists) {
  MountOptions options;
  for (const std::string& list : option_lists) {
    std::stringstream in(list);
    std::string option;
    while (std::getline(in, option, ',')) {
      if (option.empty() || Ignored(option)) continue;
      if (option == "ro") {
        options.read_only = true;
      } else if (option == "rw") {
        options.read_only = false;
      } else if (option == "noexec") {
        options.no_exec = true;
      } else if (option == "exec") {
        options.no_exec = false;
      } else if (option == "allow_other") {
        options.allow_other = true;
      } else if (option == "default_permissions") {
        options.default_permissions = true;
      } else if (option == "remount") {
        return common::Error(EINVAL,
                             "-o remount: a clonefs mount cannot be changed in place; "
                             "unmount it and mount it again");
      } else {
        return common::Error(EINVAL, "-o {}: unknown option", option);
      }
    }
  }
  return options;
}

bool IsFuseDescriptorMountpoint(std::string_view mountpoint) {
  constexpr std::string_view kPrefix = "/dev/fd/";
  if (!mountpoint.starts_with(kPrefix) || mountpoint.size() == kPrefix.size()) return false;
  return mountpoint.substr(kPrefix.size()).find_first_not_of("0123456789") ==
         std::string_view::npos;
}

}  // namespace clonefs
