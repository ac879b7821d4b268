// SPDX-License-Identifier: Apache-2.0
#pragma once

// `clonectl verify VM [--full]` (docs/snapshots.md, "Verifying a VM"): checks every disk's
// chain the way a mount opens it, but reports every problem instead of stopping at the
// first: the base VMDK chain against its fingerprint; each frozen layer (inherited and
// own) against its clone.json record (header checksum, ids, generation) and its checksum
// file's header; the top layer's header. With `full`, every block of every frozen layer
// is re-read and compared with its checksum, and each block that differs is named.
//
// Only reads: no VM lock is taken, frozen layers never change, and the top layer is
// opened read-only, so a VM may be verified while it is mounted and running.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/storage.h"

namespace tools {

struct VerifyOptions {
  bool full = false;  // also scrub every frozen layer's blocks against their checksums
  // Called during the scrub with (bytes checked so far, bytes to check in all).
  std::function<void(uint64_t done_bytes, uint64_t total_bytes)> progress;
};

// One check and its outcome.
struct VerifyCheck {
  std::string disk;        // the disk's name; "" for a check of the whole VM
  std::string what;        // "base", "layer", "checksums", "scrub", "top", "snapshot"
  std::string subject;     // a layer's id, a snapshot point's name, the base VMDK's path
  std::string file;        // the file checked (absolute), "" when there is no single one
  bool inherited = false;  // a layer check: the layer is inherited from the parent VM
  bool ok = false;
  std::string detail;  // what was found: a summary when ok, else the cause (naming the file)
};

// A block of a frozen layer whose data no longer matches its checksum.
struct BadBlock {
  std::string disk;
  std::string file;                // the layer's data file, absolute
  uint64_t block = 0;              // 4 KiB block number
  uint64_t offset_bytes = 0;       // its offset in the disk
  uint64_t file_offset_bytes = 0;  // where it lies in the data file (packed: elsewhere)
};

struct VerifyReport {
  std::string vm;  // the VM's directory, absolute
  bool full = false;
  std::vector<VerifyCheck> checks;  // in the order run: per disk bottom to top, then VM-wide
  std::vector<BadBlock> bad_blocks;
  uint64_t scrubbed_bytes = 0;

  size_t failed() const;
  bool ok() const { return failed() == 0 && bad_blocks.empty(); }
};

// Verifies the VM at `vm_path` (its directory or .vmx). Problems found are in the report;
// an error is returned only when nothing can be checked: the VM is not managed, its
// clone.json is unreadable.
common::Result<VerifyReport> VerifyVm(common::Storage& storage, const std::string& vm_path,
                                      const VerifyOptions& options = {});

// {"vm", "full", "ok", "checks": [{"disk", "check", "subject", "file", "ok", "detail"}],
//  "bad_blocks": [{"disk", "file", "block", "offset_bytes", "file_offset_bytes"}],
//  "summary": {"checks", "failed", "bad_blocks", "scrubbed_bytes"}}
nlohmann::ordered_json VerifyReportJson(const VerifyReport& report);

// One line per check ("OK      disk base: layer 1f2e3d4c5b6a7988 (own): ..."), one per bad
// block, then a summary line.
std::string RenderVerifyText(const VerifyReport& report);

}  // namespace tools
