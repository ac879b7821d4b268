// SPDX-License-Identifier: Apache-2.0
#pragma once

// One delta layer (docs/delta-format.md): a data file and a memory-mapped header +
// allocation bitmap. A writable (top) layer's data file is sparse, addressed by virtual
// offset; a frozen layer's may be packed: its owned blocks side by side in ascending
// order, so that reading ahead in it fetches the layer's next blocks, not holes
// (packed_layer.h writes them). Callers address both by virtual offset. This class owns
// the files and the ownership bits; the copy-on-write logic over the layers below is
// CowDisk's.
//
// Thread safety: every method may be called from any thread. Ownership bits live in an
// in-memory bitmap that reads consult without locks; they reach the mapped bitmap only in
// Flush, after the data they point at is durable (the write ordering of the format).

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "common/storage.h"
#include "fs/engine/block_rank.h"
#include "fs/engine/delta_header.h"
#include "fs/engine/ownership_bits.h"

namespace engine {

struct DeltaPaths {
  std::string data;  // D.delta
  std::string map;   // D.map
};

class DeltaLayer {
 public:
  // Creates both files (failing with EEXIST if either exists) for an empty layer over a
  // disk of capacity_bytes, and fdatasyncs them; making their directory entries durable
  // is the caller's (it builds a clone in a temporary directory it fsyncs). The layer is
  // open for writing.
  static Result<std::unique_ptr<DeltaLayer>> Create(common::Storage& storage,
                                                    const DeltaPaths& paths,
                                                    DeltaHeader header);
  // Opens an existing layer. For writing, the clean-shutdown flag is cleared durably
  // before this returns; was_unclean() tells whether it was already clear (a crash).
  // A packed layer opens read-only only (EROFS for writing).
  static Result<std::unique_ptr<DeltaLayer>> Open(common::Storage& storage,
                                                  const DeltaPaths& paths, bool writable);
  // Only the header of a layer's map file (checked as Open checks it).
  static Result<DeltaHeader> ReadHeader(common::Storage& storage, const std::string& map_path);
  ~DeltaLayer();

  // A copy: Flush and Close change the generation and clean flag under their lock.
  DeltaHeader header() const;
  // Geometry never changes after Open, so these read it without the lock.
  uint64_t capacity_bytes() const { return header_.capacity_bytes; }
  uint64_t block_count() const { return header_.block_count; }
  bool writable() const { return writable_.load(); }
  bool packed() const { return header_.packed; }
  bool was_unclean() const { return was_unclean_; }
  // Bytes of block `block` inside the capacity (the last block may be short).
  uint64_t BlockLength(uint64_t block) const;

  bool IsOwned(uint64_t block) const;
  // The number of blocks from `first` (at most max_blocks) whose ownership is the same as
  // `first`'s, and in *owned that ownership. Blocks can become owned at any moment, so
  // callers use *owned rather than asking IsOwned again: the two could disagree.
  uint64_t RunLength(uint64_t first, uint64_t max_blocks, bool* owned = nullptr) const;
  // Marks blocks owned, in memory; Flush persists the marks. Call only after the blocks'
  // data has been written to the data file.
  void MarkOwned(uint64_t first_block, uint64_t count);
  // How many blocks the layer owns (marked, flushed or not): its share of the disk.
  uint64_t owned_blocks() const { return owned_blocks_.load(std::memory_order_relaxed); }
  // Blocks marked but not yet persisted by Flush.
  bool HasUnflushedMarks() const;

  // Reads the data the layer holds at a virtual offset. In a packed layer the range must
  // lie within one run of owned blocks (EINVAL otherwise): that is what callers read, the
  // index having told them this layer serves the run.
  Status ReadData(uint64_t offset_bytes, std::span<std::byte> dst) const;
  // ReadData if the page cache holds all of it (common::File::ReadCachedAt): true when
  // done, false when the caller must ReadData.
  bool ReadCachedData(uint64_t offset_bytes, std::span<std::byte> dst) const;
  Status WriteData(uint64_t offset_bytes, std::span<const std::byte> src);
  Status PunchData(uint64_t offset_bytes, uint64_t length_bytes);
  // Where the data file holds data / a hole (SEEK_DATA / SEEK_HOLE) at or after a virtual
  // offset, within capacity: a hole under an owned block reads as zeros. In a packed
  // layer the answer is exact up to the end of the run of owned blocks holding
  // offset_bytes, which must be owned; past that end it is only "not before the end".
  Result<uint64_t> NextData(uint64_t offset_bytes) const;
  Result<uint64_t> NextHole(uint64_t offset_bytes) const;

  // Makes every write so far durable: fdatasync the data file, then persist the marks
  // made before the sync into the mapped bitmap and header (msync). A failed fdatasync
  // is sticky: Linux may drop the dirty pages it failed to write, so a later sync could
  // "succeed" without them; every later Flush fails too and no bit is persisted again.
  Status Flush();
  // Flush, then set the clean-shutdown flag durably. The layer is read-only afterwards.
  // The caller stops writing first (the daemon closes after the last request): a write
  // racing Close could mark a block after the final flush.
  Status Close();

 private:
  DeltaLayer(std::unique_ptr<common::File> data, std::unique_ptr<common::MappedFile> map,
             DeltaHeader header, bool writable);
  // Loads the persisted bits, reading only the bitmap pages the map file holds data in.
  Status LoadBitmap(const common::File& map_file);
  Status PersistHeader();
  std::span<std::byte> MappedBitmap();
  // For a packed layer: where virtual offset_bytes lives in the data file, and the end of
  // its run of owned blocks (virtual). EINVAL when the block is not owned.
  struct PackedPlace {
    uint64_t file_offset;
    uint64_t run_end;
  };
  Result<PackedPlace> Place(uint64_t offset_bytes) const;
  // SEEK_DATA / SEEK_HOLE in a packed layer, mapped back to virtual offsets.
  Result<uint64_t> PackedSeek(uint64_t offset_bytes, bool data) const;

  std::unique_ptr<common::File> data_;
  std::unique_ptr<common::MappedFile> map_;
  DeltaHeader header_;  // generation and clean flag guarded by flush_mutex_ once open
  std::atomic<bool> writable_;
  bool was_unclean_ = false;

  // The authoritative ownership bits, 64 blocks a word; never cleared.
  OwnershipBits bits_;
  std::atomic<uint64_t> owned_blocks_{0};
  std::unique_ptr<BlockRank> rank_;  // packed layers only

  // Lock order: flush_mutex_ before marks_mutex_.
  mutable std::mutex flush_mutex_;   // one Flush/Close at a time
  Status sync_failure_;              // guarded by flush_mutex_: the first failed fdatasync
  mutable std::mutex marks_mutex_;   // guards dirty_words_
  std::unordered_set<uint64_t> dirty_words_;  // words marked since the last Flush
};

}  // namespace engine
