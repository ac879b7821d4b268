// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for opening and reading disks: the input becomes "fuzz.vmdk" in a
// MemoryStorage (split at each kFileSeparator into further files "fuzz-1.vmdk",
// "fuzz-2.vmdk", ..., so descriptors can name COWD deltas, flat extents and parents).
// If Disk::Open succeeds, the harness walks the allocation map and reads every data run,
// checking the documented contracts (runs are non-empty and within the request, zero and
// unallocated runs read as zeros) and aborting on a violation.
//
// Work per input is capped so that a huge declared capacity cannot make one input run
// for seconds: at most kMaxMapCalls map calls, each over at most kMaxMapSpanBytes, at most
// kMaxMappedBytes mapped (from the start, and again near the end of a larger disk), and at
// most kMaxReadBytes read.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "common/memory_storage.h"
#include "vmdk/disk.h"

namespace {

constexpr std::string_view kFileSeparator = "%%FILE%%";
constexpr size_t kMaxFiles = 8;
constexpr int kMaxMapCalls = 2048;
// Map walks every grain of the span: 256 MiB of 1-sector grains is 512 Ki steps.
constexpr uint64_t kMaxMapSpanBytes = 256ULL << 20;
constexpr uint64_t kMaxMappedBytes = 2ULL << 30;
constexpr uint64_t kMaxReadBytes = 64ULL << 20;
constexpr size_t kReadChunkBytes = 1 << 20;
// How much of each zero or unallocated run is read back to check it is zeros.
constexpr uint64_t kZeroProbeBytes = 4096;

[[noreturn]] void Fail(const char* what, uint64_t offset, uint64_t length) {
  std::fprintf(stderr, "sparse_extent_fuzzer: %s (offset %llu, length %llu)\n", what,
               static_cast<unsigned long long>(offset), static_cast<unsigned long long>(length));
  std::abort();
}

void CheckFailure(const common::Status& status) {
  if (status.code() <= 0 || status.message().empty())
    Fail("failure without errno or message", 0, 0);
}

// Maps and reads [start, end) of the disk within the budgets; `read` is shared by walks.
void Walk(const vmdk::Disk& disk, uint64_t start, uint64_t end, uint64_t& read) {
  std::vector<std::byte> buf;
  uint64_t pos = start, mapped = 0;
  for (int map_calls = 0; pos < end && map_calls < kMaxMapCalls && mapped < kMaxMappedBytes;) {
    ++map_calls;
    const uint64_t want = std::min(end - pos, kMaxMapSpanBytes);
    auto m = disk.Map(pos, want);
    if (!m) {  // corrupt grain tables are found when first loaded
      CheckFailure(m.error());
      return;
    }
    const vmdk::ChainMapping run = m.value();
    if (run.length_bytes == 0 || run.length_bytes > want)
      Fail("map run length", pos, run.length_bytes);
    if ((run.link_index < 0) != (run.state == vmdk::BlockState::kUnallocated) ||
        run.link_index >= static_cast<int>(disk.links().size())) {
      Fail("map link index does not match the state", pos, run.length_bytes);
    }
    mapped += run.length_bytes;
    if (run.state == vmdk::BlockState::kData) {
      for (uint64_t done = 0; done < run.length_bytes && read < kMaxReadBytes;) {
        size_t n =
            std::min<uint64_t>({run.length_bytes - done, kReadChunkBytes, kMaxReadBytes - read});
        buf.resize(n);
        common::Status st = disk.Read(pos + done, buf);
        if (!st.ok()) {
          CheckFailure(st);
          return;
        }
        done += n;
        read += n;
      }
    } else {
      buf.assign(std::min(run.length_bytes, kZeroProbeBytes), std::byte{0xa5});
      common::Status st = disk.Read(pos, buf);
      if (!st.ok()) {
        CheckFailure(st);
        return;
      }
      if (std::any_of(buf.begin(), buf.end(), [](std::byte b) { return b != std::byte{0}; })) {
        Fail("a zero or unallocated run does not read as zeros", pos, buf.size());
      }
    }
    pos += run.length_bytes;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  common::MemoryStorage storage;
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  for (size_t i = 0; i < kMaxFiles && (i == 0 || !rest.empty()); ++i) {
    size_t cut = i + 1 < kMaxFiles ? rest.find(kFileSeparator) : std::string_view::npos;
    std::string_view part = rest.substr(0, cut);
    rest = cut == std::string_view::npos ? std::string_view()
                                         : rest.substr(cut + kFileSeparator.size());
    const auto* begin = reinterpret_cast<const std::byte*>(part.data());
    storage.SetFile(i == 0 ? std::string("fuzz.vmdk") : "fuzz-" + std::to_string(i) + ".vmdk",
                    std::vector<std::byte>(begin, begin + part.size()));
  }

  auto disk = vmdk::Disk::Open(storage, "fuzz.vmdk");
  if (!disk) {
    CheckFailure(disk.error());
    return 0;
  }
  const vmdk::Disk& d = *disk.value();
  const uint64_t capacity = d.capacity_bytes();
  uint64_t read = 0;
  Walk(d, 0, capacity, read);
  // That walk may have stopped early on a large disk: look at its end too.
  if (capacity > kMaxMappedBytes) Walk(d, capacity - kMaxMapSpanBytes, capacity, read);

  std::byte past[1];
  if (d.Read(capacity, past).ok()) Fail("a read past the capacity succeeded", capacity, 1);
  return 0;
}
