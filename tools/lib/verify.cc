// SPDX-License-Identifier: Apache-2.0
#include "tools/lib/verify.h"

#include <algorithm>
#include <cerrno>
#include <memory>

#include <fmt/format.h>

#include "fs/engine/clone_config.h"
#include "fs/engine/delta_layer.h"
#include "fs/engine/disk_chain.h"
#include "fs/engine/layer_checksums.h"
#include "fs/engine/vm_lock.h"
#include "tools/lib/disk_layers.h"
#include "tools/lib/managed_vm.h"
#include "tools/lib/progress.h"

namespace tools {
namespace {

using common::Error;
using common::Result;
using Json = nlohmann::ordered_json;

// A frozen layer whose header and checksum header passed, to scrub once every layer has
// been checked. Not kept open meanwhile: a VM's chains can hold hundreds of layers, two
// descriptors each.
struct ScrubItem {
  size_t check_index;  // the placeholder check the scrub's outcome goes into
  std::string disk;
  engine::FrozenLayer record;
  std::string data_path;
  std::string sums_path;
  uint64_t owned_bytes = 0;
};

std::string ShortId(const std::string& id) { return id.substr(0, 16); }

uint64_t OwnedBytes(const engine::DeltaLayer& layer) {
  return std::min(layer.owned_blocks() * engine::kBlockBytes, layer.capacity_bytes());
}

VerifyCheck NewCheck(const std::string& disk, const std::string& what, const std::string& subject,
                     const std::string& file, bool inherited = false) {
  VerifyCheck check;
  check.disk = disk;
  check.what = what;
  check.subject = subject;
  check.file = file;
  check.inherited = inherited;
  return check;
}

class Verifier {
 public:
  Verifier(common::Storage& storage, std::string meta, const VerifyOptions& options,
           VerifyReport& report)
      : storage_(storage), meta_(std::move(meta)), options_(options), report_(report) {}

  void CheckDisk(const engine::CloneDisk& disk, bool mounted) {
    report_.checks.push_back(CheckBase(disk));
    for (const engine::FrozenLayer& layer : disk.inherited) CheckFrozen(disk, layer, true);
    for (const engine::FrozenLayer& layer : disk.frozen) CheckFrozen(disk, layer, false);
    report_.checks.push_back(CheckTop(disk, mounted));
  }

  void CheckSnapshot(const engine::CloneConfig& config, const engine::SnapshotPoint& snapshot) {
    report_.checks.push_back(SnapshotCheck(config, snapshot));
  }

  // Reads every queued layer's blocks against its checksums.
  void Scrub() {
    uint64_t total = 0;
    for (const ScrubItem& item : scrub_) total += item.owned_bytes;
    uint64_t before = 0;
    for (const ScrubItem& item : scrub_) {
      engine::ChecksumOptions sums_options;
      if (options_.progress) {
        sums_options.progress = [&](uint64_t done) {
          options_.progress(std::min(before + done, total), total);
        };
      }
      VerifyCheck& check = report_.checks[item.check_index];
      auto scrub = ScrubOne(item, sums_options);
      before += item.owned_bytes;
      if (!scrub) {
        check.detail = scrub.error().message();
        continue;
      }
      const engine::ScrubReport& found = scrub.value();
      report_.scrubbed_bytes += item.owned_bytes;
      for (size_t i = 0; i < found.bad_blocks.size(); ++i) {
        report_.bad_blocks.push_back({item.disk, item.data_path, found.bad_blocks[i],
                                      found.bad_blocks[i] * engine::kBlockBytes,
                                      found.bad_file_offsets[i]});
      }
      check.ok = found.bad_blocks.empty();
      if (!check.ok) {
        check.detail = fmt::format("{}: {} of {} blocks differ from their checksums",
                                   item.data_path, found.bad_blocks.size(), found.checked_blocks);
      } else if (found.checked_blocks == 0) {
        check.detail = fmt::format("{}: holds no blocks", item.data_path);
      } else {
        check.detail = fmt::format("{}: all {} blocks match their checksums", item.data_path,
                                   found.checked_blocks);
      }
    }
    if (options_.progress) options_.progress(total, total);
  }

 private:
  Result<engine::ScrubReport> ScrubOne(const ScrubItem& item,
                                       const engine::ChecksumOptions& sums_options) {
    BOOST_OUTCOME_TRY(layer, engine::OpenFrozenLayer(storage_, meta_, item.record));
    return engine::ScrubLayer(storage_, *layer, item.sums_path, sums_options);
  }

  VerifyCheck CheckBase(const engine::CloneDisk& disk) {
    VerifyCheck check = NewCheck(disk.name, "base", disk.parent_path, disk.parent_path);
    auto chain = engine::OpenBaseChain(storage_, disk);
    check.ok = chain.has_value();
    const size_t files = disk.parent_fingerprint.files.size();
    check.detail = check.ok ? fmt::format("{}: fingerprint matches ({} file{})", disk.parent_path,
                                          files, files == 1 ? "" : "s")
                            : chain.error().message();
    return check;
  }

  // The layer's own check, then (when it opened) its checksum file's header, then (with
  // --full) a placeholder for its scrub, which runs once every layer has been opened.
  void CheckFrozen(const engine::CloneDisk& disk, const engine::FrozenLayer& record,
                   bool inherited) {
    const std::string map_path = engine::LayerFilePath(meta_, record.map_file);
    VerifyCheck check = NewCheck(disk.name, "layer", record.layer_id, map_path, inherited);
    auto layer = OpenFrozen(disk, record, inherited);
    if (!layer) {
      check.detail = layer.error().message();
      report_.checks.push_back(std::move(check));
      return;
    }
    check.ok = true;
    check.detail = fmt::format("{}: header, ids and generation {} match clone.json", map_path,
                               record.generation);
    report_.checks.push_back(std::move(check));

    const std::string sums_path = engine::LayerFilePath(meta_, record.sums_file);
    VerifyCheck sums = NewCheck(disk.name, "checksums", record.layer_id, sums_path, inherited);
    common::Status header = engine::CheckChecksumHeader(storage_, *layer.value(), sums_path);
    sums.ok = header.ok();
    sums.detail =
        sums.ok ? fmt::format("{}: header matches the layer", sums_path) : header.message();
    report_.checks.push_back(std::move(sums));
    if (!header.ok() || !options_.full) return;
    const std::string data_path = engine::LayerFilePath(meta_, record.delta_file);
    report_.checks.push_back(NewCheck(disk.name, "scrub", record.layer_id, data_path, inherited));
    scrub_.push_back({report_.checks.size() - 1, disk.name, record, data_path, sums_path,
                      OwnedBytes(*layer.value())});
  }

  Result<std::unique_ptr<engine::DeltaLayer>> OpenFrozen(const engine::CloneDisk& disk,
                                                         const engine::FrozenLayer& record,
                                                         bool inherited) {
    if (!inherited) {
      // Own layers form a tree rooted at the top inherited layer (or the base).
      BOOST_OUTCOME_TRYV(disk.ChainBelow(record.layer_id));
    }
    BOOST_OUTCOME_TRY(layer, engine::OpenFrozenLayer(storage_, meta_, record));
    if (layer->capacity_bytes() != disk.capacity_bytes) {
      return Error(EINVAL, "{}: capacity {} bytes does not match clone.json ({} bytes)",
                   engine::LayerFilePath(meta_, record.map_file), layer->capacity_bytes(),
                   disk.capacity_bytes);
    }
    return layer;
  }

  VerifyCheck CheckTop(const engine::CloneDisk& disk, bool mounted) {
    const engine::DeltaPaths paths = engine::TopLayerPaths(meta_, disk);
    VerifyCheck check = NewCheck(disk.name, "top", disk.layer_id, paths.map);
    auto top = OpenTopLayerToRead(storage_, meta_, disk, mounted);
    check.ok = top.has_value();
    check.detail = check.ok ? fmt::format("{}: header and ids match clone.json", paths.map)
                            : top.error().message();
    return check;
  }

  VerifyCheck SnapshotCheck(const engine::CloneConfig& config,
                            const engine::SnapshotPoint& snapshot) {
    VerifyCheck check = NewCheck("", "snapshot", snapshot.name, "");
    for (size_t i = 0; i < config.disks.size(); ++i) {
      const std::string& id = snapshot.layer_ids[i];
      if (!id.empty() && config.disks[i].FindLayer(id) == nullptr) {
        check.detail =
            fmt::format("disk {}: its layer {} is not in clone.json", config.disks[i].name, id);
        return check;
      }
    }
    for (const auto& file : {snapshot.vmx_file, snapshot.nvram_file}) {
      if (!file) continue;
      const std::string path = engine::LayerFilePath(meta_, *file);
      if (auto info = storage_.Stat(path); !info) {
        check.file = path;
        check.detail = info.error().code() == ENOENT
                           ? fmt::format("{}: the snapshot point's copy is missing", path)
                           : info.error().message();
        return check;
      }
    }
    check.ok = true;
    check.detail = snapshot.vmx_file ? "every disk's layer recorded, .vmx copy present"
                                     : "every disk's layer recorded";
    return check;
  }

  common::Storage& storage_;
  const std::string meta_;
  const VerifyOptions& options_;
  VerifyReport& report_;
  std::vector<ScrubItem> scrub_;
};

}  // namespace

size_t VerifyReport::failed() const {
  return std::count_if(checks.begin(), checks.end(), [](const VerifyCheck& c) { return !c.ok; });
}

Result<VerifyReport> VerifyVm(common::Storage& storage, const std::string& vm_path,
                              const VerifyOptions& options) {
  BOOST_OUTCOME_TRY(dir, ManagedVmDirectory(storage, vm_path));
  BOOST_OUTCOME_TRY(config, engine::LoadCloneConfig(storage, dir));
  const std::string meta = dir + "/" + engine::kMetadataDirName;
  VerifyReport report;
  report.vm = dir;
  report.full = options.full;
  Verifier verifier(storage, meta, options, report);
  const bool mounted = engine::VmLock::Holder(meta).has_value();
  for (const engine::CloneDisk& disk : config.disks) verifier.CheckDisk(disk, mounted);
  for (const engine::SnapshotPoint& snapshot : config.snapshots) {
    verifier.CheckSnapshot(config, snapshot);
  }
  if (options.full) verifier.Scrub();
  return report;
}

Json VerifyReportJson(const VerifyReport& report) {
  Json out;
  out["vm"] = report.vm;
  out["full"] = report.full;
  out["ok"] = report.ok();
  Json checks = Json::array();
  for (const VerifyCheck& c : report.checks) {
    Json j;
    j["disk"] = c.disk.empty() ? Json(nullptr) : Json(c.disk);
    j["check"] = c.what;
    j["subject"] = c.subject;
    if (c.what == "layer" || c.what == "checksums" || c.what == "scrub") {
      j["inherited"] = c.inherited;
    }
    j["file"] = c.file.empty() ? Json(nullptr) : Json(c.file);
    j["ok"] = c.ok;
    j["detail"] = c.detail;
    checks.push_back(std::move(j));
  }
  out["checks"] = std::move(checks);
  Json bad = Json::array();
  for (const BadBlock& b : report.bad_blocks) {
    bad.push_back(
        {{"disk", b.disk}, {"file", b.file}, {"block", b.block}, {"offset_bytes", b.offset_bytes},
         {"file_offset_bytes", b.file_offset_bytes}});
  }
  out["bad_blocks"] = std::move(bad);
  out["summary"] = {{"checks", report.checks.size()},
                    {"failed", report.failed()},
                    {"bad_blocks", report.bad_blocks.size()},
                    {"scrubbed_bytes", report.scrubbed_bytes}};
  return out;
}

std::string RenderVerifyText(const VerifyReport& report) {
  auto label = [](const VerifyCheck& c) -> std::string {
    const char* origin = c.inherited ? "inherited" : "own";
    if (c.what == "base") return "base chain";
    if (c.what == "layer") return fmt::format("layer {} ({})", ShortId(c.subject), origin);
    if (c.what == "checksums") return fmt::format("checksums of layer {}", ShortId(c.subject));
    if (c.what == "scrub") return fmt::format("scrub of layer {}", ShortId(c.subject));
    if (c.what == "top") return fmt::format("top layer {}", ShortId(c.subject));
    return fmt::format("snapshot point '{}'", c.subject);
  };
  std::string out;
  for (const VerifyCheck& c : report.checks) {
    const std::string scope = c.disk.empty() ? "vm" : "disk " + c.disk;
    out += fmt::format("{:<7} {}: {}: {}\n", c.ok ? "OK" : "FAILED", scope, label(c), c.detail);
    if (c.what != "scrub") continue;
    for (const BadBlock& b : report.bad_blocks) {
      if (b.disk != c.disk || b.file != c.file) continue;
      out += fmt::format(
          "{:<7} disk {}: bad block {} (disk byte {}) at byte {} of {}: its data does not "
          "match its checksum\n",
          "FAILED", b.disk, b.block, b.offset_bytes, b.file_offset_bytes, b.file);
    }
  }
  const size_t failed = report.failed();
  std::string scrubbed =
      report.full ? fmt::format(", {} scrubbed", HumanBytes(report.scrubbed_bytes)) : "";
  if (report.ok()) {
    out += fmt::format("{}: all {} checks passed{}\n", report.vm, report.checks.size(), scrubbed);
  } else {
    const size_t bad = report.bad_blocks.size();
    std::string blocks =
        report.full ? fmt::format(", {} bad block{}", bad, bad == 1 ? "" : "s") : "";
    out += fmt::format("{}: {} of {} checks FAILED{}{}\n", report.vm, failed, report.checks.size(),
                       blocks, scrubbed);
  }
  if (!report.full) {
    out += "(block data not read; clonectl verify --full scrubs every frozen layer)\n";
  }
  return out;
}

}  // namespace tools
