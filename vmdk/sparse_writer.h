// SPDX-License-Identifier: Apache-2.0
#pragma once

// Writes a whole virtual disk as a new monolithicSparse VMDK: one hosted sparse extent
// (KDMV, vmdk-format.md section 5) with its descriptor embedded, which QEMU, VMware and
// VirtualBox open on their own. `clonectl clone --full` writes each disk with it.
//
// Layout of the file (all offsets in 512-byte sectors, as QEMU and VMware lay it out):
//
//   0                  header: version 1, flags 0x3 (newline check bytes valid,
//                      redundant grain directory), grainSize 128 (64 KiB),
//                      numGTEsPerGT 512 (one grain table maps 32 MiB), no compression
//   1                  embedded descriptor, 20 sectors reserved (VMware's size)
//   21                 redundant grain directory (RGD), ceil(tables * 4 / 512) sectors
//   RGD + its size     redundant grain tables, 4 sectors (2 KiB) each, one per 32 MiB
//   gdOffset           grain directory (GD), then the grain tables, laid out the same
//   overHead           grain data, 128 sectors a grain, in the order grains were written
//
// Every grain table has its place reserved and the GD and RGD point at all of them, as
// VMware and QEMU lay files out, so a hypervisor writing into the copy later never has to
// allocate one. Holes stay holes: a grain that the source does not map, or that reads as
// all zeros, is not written and its entry stays 0 (reads as zeros; the disk has no
// parent); a grain table with no grain is not written either, so its reserved place is a
// hole in the host file too. overHead is rounded up to a whole grain.
//
// Durability: the file is built under a temporary name beside `out_path`, made durable
// (fdatasync), and renamed to `out_path` without replacing anything; the directory is
// then synced. On any failure or cancellation the temporary file is removed: there is
// either a complete file at out_path or none. While the copy runs, a thread of its own
// asks the device to start writing back each batch of grains as it is written
// (File::StartWriteback), so that the final fdatasync has little left to do.
//
// GTEs and GDEs are 32-bit sector numbers, so grain data must end below 2^32 sectors
// (2 TiB of file): a disk with more data than fits fails with EFBIG and leaves nothing.

#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "common/storage.h"
#include "vmdk/disk_ddb.h"

namespace vmdk {

using common::Result;
using common::Status;

// A virtual disk to copy: what WriteMonolithicSparse reads.
class DiskSource {
 public:
  virtual ~DiskSource() = default;
  // A multiple of 512.
  virtual uint64_t capacity_bytes() const = 0;
  // Reads [offset_bytes, offset_bytes + dst.size()), which lies within capacity. Called
  // from several threads at once.
  virtual Status Read(uint64_t offset_bytes, std::span<std::byte> dst) const = 0;
  // The first offset >= offset_bytes that may hold data, and the first offset >=
  // offset_bytes that reads as zeros without holding data (a hole); capacity_bytes() when
  // there is none. Ranges reported as data may still read as zeros. The writer calls
  // these from one thread at a time (not always the same one), with offsets that only
  // increase, so a source may scan its allocation map from where it was asked last.
  virtual Result<uint64_t> NextData(uint64_t offset_bytes) const = 0;
  virtual Result<uint64_t> NextHole(uint64_t offset_bytes) const = 0;
};

// Fixed parameters of the files written (see the layout above).
inline constexpr uint64_t kWriterGrainSectors = 128;
inline constexpr uint32_t kWriterGtesPerGt = 512;
inline constexpr uint64_t kWriterDescriptorSectors = 20;

struct SparseWriteOptions {
  // The file name in the descriptor's extent line (VMware writes the file's own name);
  // default: out_path's file name.
  std::string extent_file_name;
  // Carried into the embedded descriptor (see disk_ddb.h).
  DiskDdb ddb;
  // Worker threads reading the source and writing grains in parallel (plus the writeback
  // thread). The copy mostly waits for the device: more workers than cores keep more
  // reads in flight.
  unsigned threads = 2;
  // Each worker reads up to this much at a time (rounded to whole grains).
  uint64_t read_bytes = 4 << 20;
  // Called from the calling thread about every 100 ms with the virtual bytes done.
  std::function<void(uint64_t done_bytes)> progress;
  // Set (e.g. from a signal handler) to stop early; the write then fails with ECANCELED.
  const std::atomic<bool>* cancel = nullptr;
};

struct SparseWriteStats {
  uint64_t capacity_bytes = 0;
  uint64_t grains_written = 0;  // grains holding data (64 KiB each)
  uint64_t file_bytes = 0;      // size of the file written
  uint32_t cid = 0;             // the new disk's content ID
};

// Writes `source` to a new file `out_path` (EEXIST if anything is there). Errors name
// the file: the source's read errors as they come, EINVAL for a capacity of 0 or not a
// multiple of 512, EFBIG when the data does not fit the format (above), ECANCELED when
// cancelled.
Result<SparseWriteStats> WriteMonolithicSparse(const DiskSource& source, common::Storage& storage,
                                               const std::string& out_path,
                                               const SparseWriteOptions& options);

// The embedded descriptor WriteMonolithicSparse writes (exposed for tests): createType
// monolithicSparse, one `RW <sectors> SPARSE "<extent_file_name>"` line, no parent.
std::string MakeSparseDescriptor(const std::string& extent_file_name, uint64_t capacity_sectors,
                                 const DiskDdb& ddb, uint32_t cid);

}  // namespace vmdk
