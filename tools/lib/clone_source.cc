// SPDX-License-Identifier: Apache-2.0
#include "tools/lib/clone_source.h"

#include <fmt/ranges.h>

#include <cerrno>
#include <filesystem>
#include <set>
#include <string_view>

#include "fs/engine/clone_config.h"

namespace tools {
namespace {

namespace fs = std::filesystem;
using common::Error;
using common::Result;

constexpr std::string_view kVmdkSuffix = ".vmdk";
constexpr std::string_view kFileNameSuffix = ".fileName";
// The buses whose `<bus>N:M.fileName` can name a virtual disk.
constexpr std::string_view kDiskBuses[] = {"scsi", "sata", "ide", "nvme"};

bool EndsWithIgnoringCase(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() &&
         VmxFile::SameKey(text.substr(text.size() - suffix.size()), suffix);
}

bool IsFalse(const std::optional<std::string>& value) {
  return value && VmxFile::SameKey(*value, "FALSE");
}

std::string Lowered(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool IsNumber(std::string_view text) {
  // Controller and unit numbers are small (VMware has at most 4 SCSI controllers of 16
  // units); three digits is generous and keeps absurd keys out.
  if (text.empty() || text.size() > 3) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

struct DiskDevice {
  std::string device;      // "scsi0:1", lower case
  std::string controller;  // "scsi0"
};

// "scsi0:1.fileName" (any case) -> {"scsi0:1", "scsi0"}; nullopt for other keys.
std::optional<DiskDevice> DiskDeviceOf(std::string_view key) {
  if (key.size() <= kFileNameSuffix.size() || !EndsWithIgnoringCase(key, kFileNameSuffix)) {
    return std::nullopt;
  }
  const std::string_view device = key.substr(0, key.size() - kFileNameSuffix.size());
  for (std::string_view bus : kDiskBuses) {
    if (device.size() <= bus.size() || !VmxFile::SameKey(device.substr(0, bus.size()), bus)) {
      continue;
    }
    const std::string_view numbers = device.substr(bus.size());
    const size_t colon = numbers.find(':');
    if (colon == std::string_view::npos || !IsNumber(numbers.substr(0, colon)) ||
        !IsNumber(numbers.substr(colon + 1))) {
      return std::nullopt;
    }
    return DiskDevice{Lowered(device), Lowered(device.substr(0, bus.size() + colon))};
  }
  return std::nullopt;
}

// A file name from the .vmx, relative to the .vmx's directory unless absolute.
std::string ResolveAgainst(const std::string& dir, const std::string& name) {
  fs::path path(name);
  if (path.is_relative()) path = fs::path(dir) / path;
  return NormalPath(path.string());
}

// Two disks whose presented files would be the same file: equal names, or one named like
// the other's flat extent ("a" presents a-flat.vmdk; a disk "a-flat" presents a-flat.vmdk).
common::Status CheckNamesDoNotClash(const std::vector<CloneSourceDisk>& disks,
                                    const std::string& vmx_display) {
  for (size_t i = 0; i < disks.size(); ++i) {
    for (size_t j = i + 1; j < disks.size(); ++j) {
      const CloneSourceDisk& a = disks[i];
      const CloneSourceDisk& b = disks[j];
      if (a.name == b.name) {
        return Error(EINVAL,
                     "{}: {} and {} are both disks named '{}' ({} and {}); a clone presents "
                     "each disk as NAME.vmdk beside its .vmx, so disk names must differ",
                     vmx_display, a.file_key, b.file_key, a.name, a.vmdk_path, b.vmdk_path);
      }
      for (const auto& [disk, other] : {std::pair(&a, &b), std::pair(&b, &a)}) {
        if (other->name == disk->name + "-flat") {
          return Error(EINVAL,
                       "{}: {} ('{}') would be presented as {}.vmdk, the flat extent of {} "
                       "('{}'); rename one of the disks",
                       vmx_display, other->file_key, other->vmdk_path, other->name, disk->file_key,
                       disk->vmdk_path);
        }
      }
    }
  }
  return common::Status::Ok();
}

Result<VmxFile> ReadVmx(common::Storage& storage, const std::string& path,
                        const std::string& display, const common::FileInfo& info) {
  if (!info.is_regular) return Error(EINVAL, "{}: not a regular file", display);
  if (info.size_bytes > kMaxVmxBytes) {
    return Error(EINVAL, "{}: {} bytes is too large for a .vmx (at most {})", display,
                 info.size_bytes, kMaxVmxBytes);
  }
  BOOST_OUTCOME_TRY(file, storage.Open(path, common::OpenMode::kReadOnly));
  BOOST_OUTCOME_TRY(size, file->Size());
  if (size > kMaxVmxBytes) {
    return Error(EINVAL, "{}: {} bytes is too large for a .vmx (at most {})", display, size,
                 kMaxVmxBytes);
  }
  std::string text(size, '\0');
  BOOST_OUTCOME_TRYV(file->ReadExactAt(0, std::as_writable_bytes(std::span(text)), ".vmx"));
  return VmxFile::Parse(text, display);
}

}  // namespace

std::string NormalPath(const std::string& path) {
  std::string s = fs::absolute(path).lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

Result<std::vector<CloneSourceDisk>> ListVmxDisks(const VmxFile& vmx, const std::string& vmx_dir,
                                                  const std::string& vmx_display) {
  std::vector<CloneSourceDisk> disks;
  std::set<std::string> devices_seen;
  for (const VmxFile::Setting& setting : vmx.Settings()) {
    std::optional<DiskDevice> device = DiskDeviceOf(setting.key);
    if (!device || !devices_seen.insert(device->device).second) continue;
    const std::string value = vmx.Get(setting.key).value_or("");  // the last setting wins
    if (!EndsWithIgnoringCase(value, kVmdkSuffix)) continue;      // a CD image, a raw device
    if (IsFalse(vmx.Get(device->device + ".present")) ||
        IsFalse(vmx.Get(device->controller + ".present"))) {
      continue;
    }
    CloneSourceDisk disk;
    disk.device = device->device;
    disk.file_key = setting.key;
    disk.vmdk_path = ResolveAgainst(vmx_dir, value);
    const std::string file_name = fs::path(disk.vmdk_path).filename().string();
    disk.name = file_name.substr(0, file_name.size() - kVmdkSuffix.size());
    if (disk.name.empty()) {
      return Error(EINVAL, "{}: line {}: {} names '{}', which leaves the disk no name", vmx_display,
                   setting.line_number, setting.key, value);
    }
    disks.push_back(std::move(disk));
  }
  if (disks.empty()) {
    return Error(EINVAL,
                 "{}: no disks (no present scsi, sata, ide or nvme device whose fileName is a "
                 ".vmdk)",
                 vmx_display);
  }
  BOOST_OUTCOME_TRYV(CheckNamesDoNotClash(disks, vmx_display));
  return disks;
}

Result<CloneSource> ResolveCloneSource(common::Storage& storage, const std::string& source,
                                       const ResolveOptions& options) {
  const std::string path = NormalPath(source);
  BOOST_OUTCOME_TRY(info, storage.Stat(path));

  CloneSourceVm vm;
  common::FileInfo vmx_info;
  if (info.is_directory) {
    BOOST_OUTCOME_TRY(names, storage.ListDirectory(path));
    std::vector<std::string> vmx_names;
    for (const std::string& name : names) {
      if (!EndsWithIgnoringCase(name, ".vmx")) continue;  // not .vmxf, .vmx~ or .vmx.lck
      auto entry = storage.Stat(path + "/" + name);
      if (entry && entry.value().is_regular) vmx_names.push_back(name);
    }
    if (vmx_names.empty() && options.accept_linked_clones &&
        storage.Stat(path + "/" + engine::kMetadataDirName)) {
      CloneSource clone;  // a linked clone of a plain VMDK: no configuration
      clone.linked_clone_dir = path;
      return clone;
    }
    if (vmx_names.empty()) {
      return Error(ENOENT,
                   "{}: no .vmx file in this directory (give a VM directory, a .vmx or "
                   "a .vmdk)",
                   source);
    }
    if (vmx_names.size() > 1) {
      return Error(EINVAL, "{}: {} .vmx files ({}); give the path of the one to clone", source,
                   vmx_names.size(), fmt::join(vmx_names, ", "));
    }
    vm.vmx_path = path + "/" + vmx_names[0];
    vm.vmx_display = (fs::path(source) / vmx_names[0]).lexically_normal().string();
    BOOST_OUTCOME_TRY(entry, storage.Stat(vm.vmx_path));
    vmx_info = entry;
  } else if (EndsWithIgnoringCase(path, ".vmx")) {
    vm.vmx_path = path;
    vm.vmx_display = source;
    vmx_info = info;
  } else {
    CloneSource plain;
    plain.disks.push_back({"", "", path, fs::path(path).stem().string()});
    return plain;
  }

  const std::string vmx_dir = fs::path(vm.vmx_path).parent_path().string();
  std::optional<std::string> linked_clone_dir;
  if (storage.Stat(vmx_dir + "/" + engine::kMetadataDirName)) {
    if (options.accept_linked_clones) {
      linked_clone_dir = vmx_dir;
    } else {
      return Error(ENOTSUP,
                   "{}: belongs to a VM managed by clonefs; give its directory to clone "
                   "one of its snapshot points",
                   vm.vmx_display);
    }
  }
  BOOST_OUTCOME_TRY(vmx, ReadVmx(storage, vm.vmx_path, vm.vmx_display, vmx_info));
  vm.vmx_mode = vmx_info.mode & 07777;
  BOOST_OUTCOME_TRY(disks, ListVmxDisks(vmx, vmx_dir, vm.vmx_display));

  if (std::optional<std::string> nvram = vmx.Get("nvram"); nvram && !nvram->empty()) {
    const std::string nvram_path = ResolveAgainst(vmx_dir, *nvram);
    auto nvram_info = storage.Stat(nvram_path);
    if (nvram_info) {
      if (!nvram_info.value().is_regular) {
        return Error(EINVAL, "{}: nvram names {}, which is not a regular file", vm.vmx_display,
                     nvram_path);
      }
      vm.nvram_path = nvram_path;
    } else if (nvram_info.error().code() != ENOENT) {
      return nvram_info.error().WithContext(vm.vmx_display + ": nvram");
    }
  }
  vm.vmx = std::move(vmx);

  CloneSource result;
  result.vm = std::move(vm);
  result.disks = std::move(disks);
  result.linked_clone_dir = std::move(linked_clone_dir);
  return result;
}

}  // namespace tools
