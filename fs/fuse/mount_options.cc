// SPDX-License-Identifier: Apache-2.0
#include "fs/fuse/mount_options.h"

#include <array>
#include <cerrno>
#include <sstream>
#include <string_view>

namespace clonefs {
namespace {

// mount(8)'s generic options and fstab's: they concern the mount helper, not the file
// system, and FUSE mounts are always nosuid,nodev for their daemon's user anyway.
constexpr std::array<std::string_view, 20> kIgnored = {
    "rw", "defaults", "auto", "noauto", "user", "nouser", "users", "owner",
    "dev", "nodev", "suid", "nosuid", "exec", "noexec", "_netdev", "nofail",
    "atime", "noatime", "relatime", "async"};

bool Ignored(const std::string& option) {
  for (std::string_view ignored : kIgnored) {
    if (option == ignored) return true;
  }
  return option.starts_with("x-") || option.starts_with("comment=");
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
      } else if (option == "allow_other") {
        options.allow_other = true;
      } else if (option == "default_permissions") {
        options.default_permissions = true;
      } else {
        return common::Error(EINVAL, "-o {}: unknown option", option);
      }
    }
  }
  return options;
}

}  // namespace clonefs
