// SPDX-License-Identifier: Apache-2.0
#pragma once

// The kernel's mount table (/proc/self/mountinfo), as the daemon and the VM lock need it.

#include <optional>
#include <string>

namespace common {

// The file system type of the topmost mount at exactly `mountpoint` (an absolute,
// normalised path), e.g. "fuse.clonefs"; nullopt when nothing is mounted there.
std::optional<std::string> MountedFileSystemType(const std::string& mountpoint);

// mountinfo's escaping undone: "\040" is a space, "\011" a tab, "\012" a newline,
// "\134" a backslash.
std::string UnescapeMountField(const std::string& field);

}  // namespace common
