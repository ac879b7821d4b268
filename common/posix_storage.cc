// SPDX-License-Identifier: Apache-2.0
#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/interprocess/file_mapping.hpp>
#include <boost/interprocess/mapped_region.hpp>

#include <sys/syscall.h>
#include <sys/uio.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <limits>
#include <optional>
#include <vector>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/mapped_copy.h"
#include "common/storage.h"

namespace common {
namespace {

// How a file's reads use the page cache (see SharedParentStorage in storage.h).
// kReadAround: the small-read half of kSharedParent only, for files open for writing
// (a clone's delta), where O_DIRECT reads would have to wait for dirty pages.
enum class ReadPolicy { kPageCache, kSharedParent, kReadAround };

// Reads that the shared-parent policy sends around the page cache when the data is not
// cached: at least this long (sequential streams; a hypervisor's cache=none reads this
// way) and aligned for O_DIRECT.
constexpr size_t kDirectReadMinBytes = 128 * 1024;
constexpr uint64_t kDirectAlignBytes = 4096;
// A small read that misses the page cache also fetches the aligned window around it
// (read-around, as the kernel does for mmap faults), so random readers of one parent
// find its neighbourhood cached: 64 KiB is a VMDK grain.
constexpr uint64_t kReadAroundBytes = 64 * 1024;
// A packed frozen layer holds nothing but its live blocks in block order, so a wider
// window around a miss fetches blocks its readers will want: 256 KiB is 64 of them, at
// about twice a 64 KiB read's time on an SSD.
constexpr uint64_t kFrozenReadAroundBytes = 256 * 1024;

// preads until dst is full or the file ends: the bytes read, or -1 with errno set.
ssize_t PreadFully(int fd, std::span<std::byte> dst, uint64_t offset_bytes) {
  size_t done = 0;
  while (done < dst.size()) {
    ssize_t n = ::pread(fd, dst.data() + done, dst.size() - done,
                        static_cast<off_t>(offset_bytes + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) break;  // end of file
    done += static_cast<size_t>(n);
  }
  return static_cast<ssize_t>(done);
}

// How long a file's residency answer (File::Resident) is kept before it is asked again:
// this long per 64 MiB of file, as asking walks the file's pages (cachestat, mincore), and
// never longer than kResidencyRecheckMaxNs.
constexpr int64_t kResidencyRecheckNs = 200'000'000;
constexpr int64_t kResidencyRecheckMaxNs = 2'000'000'000;
constexpr uint64_t kResidencyRecheckUnitBytes = 64 << 20;

uint64_t PageBytes() {
  static const auto page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  return page;
}

// A read-only mapping of a whole file whose contents never change. It is made from the
// open descriptor (mmap), so that it maps that file and no other: Boost.Interprocess maps
// by name only.
class ResidentMapping {
 public:
  // Null when the file is empty or cannot be mapped (reads then go through the file).
  static std::unique_ptr<ResidentMapping> Of(int fd) {
    struct stat st;
    if (::fstat(fd, &st) != 0 || st.st_size <= 0) return nullptr;
    const auto size = static_cast<uint64_t>(st.st_size);
    void* at = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    if (at == MAP_FAILED) return nullptr;
    // A packed layer keeps its discarded blocks as holes, which no read may ever bring
    // into the cache: the file counts as all cached once as many pages as it holds data.
    const uint64_t data_bytes = std::min<uint64_t>(size, static_cast<uint64_t>(st.st_blocks) * 512);
    return std::unique_ptr<ResidentMapping>(
        new ResidentMapping(static_cast<std::byte*>(at), size, data_bytes));
  }
  ~ResidentMapping() { ::munmap(bytes_, size_); }
  ResidentMapping(const ResidentMapping&) = delete;
  ResidentMapping& operator=(const ResidentMapping&) = delete;

  uint64_t size() const { return size_; }
  uint64_t data_bytes() const { return data_bytes_; }
  // How long an answer of File::Resident is kept for this file.
  int64_t recheck_ns() const { return recheck_ns_; }

  // Copies [offset, offset + dst.size()): false if it does not lie in the file, or if the
  // file failed under the copy (CopyFromMapping).
  bool Copy(uint64_t offset_bytes, std::span<std::byte> dst) const {
    if (offset_bytes > size_ || dst.size() > size_ - offset_bytes) return false;
    return CopyFromMapping(dst.data(), bytes_ + offset_bytes, dst.size());
  }

  // mincore(2) of the mapping, for kernels without cachestat: for a file its owner (or
  // root) maps, whether each page is in the page cache; for others, whether it is mapped
  // here, which also means cached.
  bool AllPagesCached() const {
    std::vector<unsigned char> pages((size_ + PageBytes() - 1) / PageBytes());
    if (::mincore(bytes_, size_, pages.data()) != 0) return false;
    const auto cached = static_cast<uint64_t>(
        std::count_if(pages.begin(), pages.end(), [](unsigned char p) { return p & 1; }));
    return cached * PageBytes() >= data_bytes_;
  }

 private:
  ResidentMapping(std::byte* bytes, uint64_t size, uint64_t data_bytes)
      : bytes_(bytes),
        size_(size),
        data_bytes_(data_bytes),
        recheck_ns_(std::min(kResidencyRecheckMaxNs,
                             kResidencyRecheckNs *
                                 static_cast<int64_t>(1 + size / kResidencyRecheckUnitBytes))) {}

  std::byte* bytes_;
  uint64_t size_;
  uint64_t data_bytes_;
  int64_t recheck_ns_;
};

class PosixFile final : public File {
 public:
  PosixFile(std::string path, int fd, ReadPolicy policy = ReadPolicy::kPageCache,
            uint64_t read_around_bytes = kReadAroundBytes,
            std::unique_ptr<ResidentMapping> mapping = nullptr)
      : File(std::move(path)),
        fd_(fd),
        policy_(policy),
        read_around_bytes_(read_around_bytes),
        mapping_(std::move(mapping)) {}
  ~PosixFile() override {
    ::close(fd_);
    if (direct_fd_ >= 0) ::close(direct_fd_);
  }

  Result<size_t> ReadAt(uint64_t offset_bytes, std::span<std::byte> dst) const override {
    if (policy_ != ReadPolicy::kPageCache && !dst.empty()) {
      if (policy_ == ReadPolicy::kSharedParent && dst.size() >= kDirectReadMinBytes &&
          Aligned(offset_bytes, dst)) {
        // A buffered probe (RWF_NOWAIT) would start the kernel's readahead before failing,
        // and the whole stream would then be read through the cache after all; cachestat
        // asks without side effects.
        if (!AllCached(offset_bytes, dst.size())) {
          if (auto direct = ReadDirect(offset_bytes, dst)) return *direct;
        }
        return ReadBuffered(offset_bytes, dst);
      }
      // Served from the page cache when all of it is there: one syscall, no I/O.
      iovec iov{dst.data(), dst.size()};
      ssize_t n = ::preadv2(fd_, &iov, 1, static_cast<off_t>(offset_bytes), RWF_NOWAIT);
      if (n == static_cast<ssize_t>(dst.size())) return dst.size();
      {
        const uint64_t window = offset_bytes / read_around_bytes_ * read_around_bytes_;
        const uint64_t end = offset_bytes + dst.size();
        ::posix_fadvise(fd_, static_cast<off_t>(window),
                        static_cast<off_t>(std::max(end - window, read_around_bytes_)),
                        POSIX_FADV_WILLNEED);
      }
    }
    return ReadBuffered(offset_bytes, dst);
  }

  bool ReadCachedAt(uint64_t offset_bytes, std::span<std::byte> dst) const override {
    if (Resident() && mapping_->Copy(offset_bytes, dst)) return true;
    iovec iov{dst.data(), dst.size()};
    return ::preadv2(fd_, &iov, 1, static_cast<off_t>(offset_bytes), RWF_NOWAIT) ==
           static_cast<ssize_t>(dst.size());
  }

  bool Resident() const override {
    if (!mapping_) return false;
    timespec now_ts{};
    ::clock_gettime(CLOCK_MONOTONIC_COARSE, &now_ts);  // cheap: asked for every piece
    const int64_t now = int64_t{now_ts.tv_sec} * 1'000'000'000 + now_ts.tv_nsec;
    int64_t checked = residency_checked_ns_.load(std::memory_order_relaxed);
    if (now - checked >= mapping_->recheck_ns() &&
        residency_checked_ns_.compare_exchange_strong(checked, now, std::memory_order_relaxed)) {
      const std::optional<uint64_t> cached = CachedBytes(0, mapping_->size());
      resident_.store(cached ? *cached >= mapping_->data_bytes() : mapping_->AllPagesCached(),
                      std::memory_order_relaxed);
    }
    return resident_.load(std::memory_order_relaxed);
  }

  Status WriteAt(uint64_t offset_bytes, std::span<const std::byte> src) override {
    size_t done = 0;
    while (done < src.size()) {
      ssize_t n = ::pwrite(fd_, src.data() + done, src.size() - done,
                           static_cast<off_t>(offset_bytes + done));
      if (n < 0) {
        int err = errno;
        if (err == EINTR) continue;
        return Status::FromErrno(err, fmt::format("{}: write at byte {}", path(), offset_bytes));
      }
      done += static_cast<size_t>(n);
    }
    return Status::Ok();
  }

  Result<uint64_t> Size() const override {
    struct stat st;
    if (::fstat(fd_, &st) != 0) return Status::FromErrno(errno, fmt::format("{}: stat", path()));
    return static_cast<uint64_t>(st.st_size);
  }

  Status Truncate(uint64_t size_bytes) override {
    if (::ftruncate(fd_, static_cast<off_t>(size_bytes)) != 0) {
      return Status::FromErrno(errno, fmt::format("{}: truncate to {} bytes", path(), size_bytes));
    }
    return Status::Ok();
  }

  Result<uint64_t> NextData(uint64_t offset_bytes) const override {
    return Seek(offset_bytes, SEEK_DATA);
  }
  Result<uint64_t> NextHole(uint64_t offset_bytes) const override {
    return Seek(offset_bytes, SEEK_HOLE);
  }

  Status Sync() override {
    if (::fdatasync(fd_) != 0) return Status::FromErrno(errno, fmt::format("{}: fdatasync", path()));
    return Status::Ok();
  }

  Status StartWriteback(uint64_t offset_bytes, uint64_t length_bytes) override {
    if (::sync_file_range(fd_, static_cast<off_t>(offset_bytes), static_cast<off_t>(length_bytes),
                          SYNC_FILE_RANGE_WRITE) != 0) {
      return Status::FromErrno(errno, fmt::format("{}: start writeback of {} bytes at byte {}",
                                                  path(), length_bytes, offset_bytes));
    }
    return Status::Ok();
  }

  Status PunchHole(uint64_t offset_bytes, uint64_t length_bytes) override {
    if (::fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                    static_cast<off_t>(offset_bytes), static_cast<off_t>(length_bytes)) != 0) {
      return Status::FromErrno(errno, fmt::format("{}: punch hole of {} bytes at byte {}", path(),
                                                  length_bytes, offset_bytes));
    }
    return Status::Ok();
  }

 private:
  // lseek moves the shared file offset, which nothing here uses (all I/O is positional),
  // so concurrent calls are safe.
  Result<uint64_t> Seek(uint64_t offset_bytes, int whence) const {
    off_t at = ::lseek(fd_, static_cast<off_t>(offset_bytes), whence);
    if (at >= 0) return static_cast<uint64_t>(at);
    int err = errno;
    if (err == ENXIO) return Size();  // no data (or only the implicit hole) past offset
    if (err == EINVAL && whence == SEEK_DATA) return offset_bytes;  // no hole support
    if (err == EINVAL) return Size();
    return Status::FromErrno(err, fmt::format("{}: lseek {} at byte {}", path(),
                                              whence == SEEK_DATA ? "SEEK_DATA" : "SEEK_HOLE",
                                              offset_bytes));
  }

  // Whether every page of the range is in the page cache: cachestat(2), Linux 6.5. Where
  // it is missing the answer is "no", and large reads go direct.
  bool AllCached(uint64_t offset_bytes, uint64_t length_bytes) const {
    return CachedBytes(offset_bytes, length_bytes).value_or(0) >= length_bytes;
  }
  // How many bytes of the range the page cache holds, in whole pages (cachestat), or
  // nullopt where the kernel cannot say.
  std::optional<uint64_t> CachedBytes(uint64_t offset_bytes, uint64_t length_bytes) const {
    struct Range {
      uint64_t off, len;
    } range{offset_bytes, length_bytes};
    struct CacheStat {
      uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
    } stat{};
    constexpr long kCachestat = 451;  // x86_64 and the generic syscall table alike
    if (::syscall(kCachestat, fd_, &range, &stat, 0) != 0) return std::nullopt;
    return stat.nr_cache * PageBytes();
  }
  static bool Aligned(uint64_t offset_bytes, std::span<std::byte> dst) {
    return offset_bytes % kDirectAlignBytes == 0 && dst.size() % kDirectAlignBytes == 0 &&
           reinterpret_cast<uintptr_t>(dst.data()) % kDirectAlignBytes == 0;
  }

  Result<size_t> ReadBuffered(uint64_t offset_bytes, std::span<std::byte> dst) const {
    ssize_t n = PreadFully(fd_, dst, offset_bytes);
    if (n < 0) {
      return Status::FromErrno(errno, fmt::format("{}: read at byte {}", path(), offset_bytes));
    }
    return static_cast<size_t>(n);
  }

  // An O_DIRECT read of the whole range; nullopt when the file (system) cannot do one, and
  // the caller reads through the page cache instead. The file is read-only, so no dirty
  // page can disagree with what the device holds.
  std::optional<size_t> ReadDirect(uint64_t offset_bytes, std::span<std::byte> dst) const {
    int fd = direct_fd_.load();
    if (fd == -2) return std::nullopt;  // O_DIRECT refused before
    if (fd < 0) {
      fd = ::open(fmt::format("/proc/self/fd/{}", fd_).c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
      int expected = -1;
      if (fd < 0) {
        direct_fd_.compare_exchange_strong(expected, -2);
        return std::nullopt;
      }
      if (!direct_fd_.compare_exchange_strong(expected, fd)) {
        ::close(fd);
        fd = expected;
        if (fd < 0) return std::nullopt;
      }
    }
    ssize_t n = PreadFully(fd, dst, offset_bytes);
    if (n < 0) return std::nullopt;  // EINVAL (alignment) and the like: buffered instead
    return static_cast<size_t>(n);
  }

  int fd_;
  ReadPolicy policy_;
  uint64_t read_around_bytes_;
  mutable std::atomic<int> direct_fd_{-1};  // -1 not opened yet, -2 O_DIRECT unavailable
  std::unique_ptr<ResidentMapping> mapping_;  // files whose contents never change only
  // When the file was last found all cached or not (File::Resident), and the answer.
  mutable std::atomic<int64_t> residency_checked_ns_{std::numeric_limits<int64_t>::min() / 2};
  mutable std::atomic<bool> resident_{false};
};

class PosixMappedFile final : public MappedFile {
 public:
  // Owns fd (the mapped file, open as mapped), used to allocate blocks under the mapping.
  PosixMappedFile(std::string path, int fd, boost::interprocess::mapped_region region,
                  bool writable)
      : path_(std::move(path)), fd_(fd), region_(std::move(region)), writable_(writable) {}
  ~PosixMappedFile() override { ::close(fd_); }
  const std::string& path() const override { return path_; }
  std::span<std::byte> bytes() override {
    return {static_cast<std::byte*>(region_.get_address()), region_.get_size()};
  }
  Status Flush(uint64_t offset_bytes, uint64_t length_bytes) override {
    // msync wants a page-aligned start and mapped_region::flush passes the address as
    // given (EINVAL otherwise), so widen the range to whole pages here. It reports
    // failure without errno, so errno is read right after it.
    if (!writable_) return Error(EROFS, "{}: flush of a read-only mapping", path_);
    const uint64_t page = boost::interprocess::mapped_region::get_page_size();
    const uint64_t start = offset_bytes / page * page;
    const uint64_t end = std::min<uint64_t>(offset_bytes + length_bytes, region_.get_size());
    errno = 0;
    if (end > start && !region_.flush(start, end - start, /*async=*/false)) {
      return Status::FromErrno(errno ? errno : EIO,
                               fmt::format("{}: msync of {} bytes at byte {}", path_,
                                           length_bytes, offset_bytes));
    }
    return Status::Ok();
  }
  Status Reserve(uint64_t offset_bytes, uint64_t length_bytes) override {
    if (!writable_) return Error(EROFS, "{}: reserve in a read-only mapping", path_);
    const uint64_t end = std::min<uint64_t>(offset_bytes + length_bytes, region_.get_size());
    if (end <= offset_bytes) return Status::Ok();
    while (::fallocate(fd_, FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset_bytes),
                       static_cast<off_t>(end - offset_bytes)) != 0) {
      int err = errno;
      if (err == EINTR) continue;
      // A file system without fallocate offers no way to reserve: stores go on as before.
      if (err == EOPNOTSUPP) return Status::Ok();
      return Status::FromErrno(err, fmt::format("{}: allocate {} bytes at byte {}", path_,
                                                length_bytes, offset_bytes));
    }
    return Status::Ok();
  }

 private:
  std::string path_;
  int fd_;
  boost::interprocess::mapped_region region_;
  bool writable_;
};

class PosixStorageImpl final : public Storage {
 public:
  explicit PosixStorageImpl(ReadPolicy policy = ReadPolicy::kPageCache,
                            uint64_t read_around_bytes = kReadAroundBytes,
                            bool map_read_only_files = false)
      : policy_(policy),
        read_around_bytes_(read_around_bytes),
        map_read_only_files_(map_read_only_files) {}
  Result<std::unique_ptr<File>> Open(const std::string& path, OpenMode mode) override {
    int flags = O_CLOEXEC | (mode == OpenMode::kReadOnly ? O_RDONLY : O_RDWR);
    int fd = ::open(path.c_str(), flags);
    if (fd < 0) return Status::FromErrno(errno, path);
    struct stat st;
    if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
      ::close(fd);
      return Status(EISDIR, fmt::format("{}: is a directory", path));
    }
    ReadPolicy policy = policy_;
    if (mode != OpenMode::kReadOnly && policy == ReadPolicy::kSharedParent) {
      policy = ReadPolicy::kReadAround;
    }
    std::unique_ptr<ResidentMapping> mapping;
    if (map_read_only_files_ && mode == OpenMode::kReadOnly) mapping = ResidentMapping::Of(fd);
    return std::unique_ptr<File>(
        new PosixFile(path, fd, policy, read_around_bytes_, std::move(mapping)));
  }

  Result<std::unique_ptr<File>> CreateExclusive(const std::string& path) override {
    int fd = ::open(path.c_str(), O_CLOEXEC | O_RDWR | O_CREAT | O_EXCL, 0644);
    if (fd < 0) return Status::FromErrno(errno, path);
    return std::unique_ptr<File>(new PosixFile(path, fd));
  }

  Result<FileInfo> Stat(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return Status::FromErrno(errno, path);
    FileInfo info;
    info.size_bytes = static_cast<uint64_t>(st.st_size);
    info.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
    info.device = st.st_dev;
    info.inode = st.st_ino;
    info.mode = st.st_mode;
    info.is_regular = S_ISREG(st.st_mode);
    info.is_directory = S_ISDIR(st.st_mode);
    info.allocated_bytes = static_cast<uint64_t>(st.st_blocks) * 512;
    return info;
  }

  Status Rename(const std::string& from, const std::string& to, bool no_replace) override {
    unsigned flags = no_replace ? RENAME_NOREPLACE : 0;
    if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), flags) != 0) {
      return Status::FromErrno(errno, no_replace ? to : fmt::format("rename {} to {}", from, to));
    }
    return Status::Ok();
  }

  Status Remove(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return Status::FromErrno(errno, path);
    return Status::Ok();
  }

  Status CreateDirectory(const std::string& path) override {
    if (::mkdir(path.c_str(), 0755) != 0) return Status::FromErrno(errno, path);
    return Status::Ok();
  }

  Status RemoveDirectory(const std::string& path) override {
    if (::rmdir(path.c_str()) != 0) return Status::FromErrno(errno, path);
    return Status::Ok();
  }

  Result<std::vector<std::string>> ListDirectory(const std::string& path) override {
    DIR* dir = ::opendir(path.c_str());
    if (dir == nullptr) return Status::FromErrno(errno, path);
    std::vector<std::string> names;
    errno = 0;
    while (dirent* entry = ::readdir(dir)) {
      if (std::strcmp(entry->d_name, ".") != 0 && std::strcmp(entry->d_name, "..") != 0) {
        names.emplace_back(entry->d_name);
      }
    }
    int err = errno;
    ::closedir(dir);
    if (err != 0) return Status::FromErrno(err, fmt::format("{}: read directory", path));
    std::sort(names.begin(), names.end());
    return names;
  }

  Status SyncDirectory(const std::string& path) override {
    int fd = ::open(path.empty() ? "." : path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return Status::FromErrno(errno, path);
    int rc = ::fsync(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0) return Status::FromErrno(err, fmt::format("{}: fsync directory", path));
    return Status::Ok();
  }

  Status SetMode(const std::string& path, uint32_t mode) override {
    if (::chmod(path.c_str(), mode) != 0) return Status::FromErrno(errno, path);
    return Status::Ok();
  }

  Result<std::unique_ptr<MappedFile>> MapFile(const std::string& path, OpenMode mode) override {
    const bool writable = mode == OpenMode::kReadWrite;
    const auto access = writable ? boost::interprocess::read_write : boost::interprocess::read_only;
    // Boost.Interprocess reports errors by exception; they end here.
    try {
      boost::interprocess::file_mapping mapping(path.c_str(), access);
      boost::interprocess::mapped_region region(mapping, access);
      int fd = ::open(path.c_str(), (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
      if (fd < 0) return Status::FromErrno(errno, fmt::format("{}: open", path));
      return std::unique_ptr<MappedFile>(
          new PosixMappedFile(path, fd, std::move(region), writable));
    } catch (const boost::interprocess::interprocess_exception& e) {
      int err = e.get_native_error() > 0 ? e.get_native_error() : EIO;
      return Status(err, fmt::format("{}: map: {}", path, e.what()));
    }
  }

 private:
  ReadPolicy policy_;
  uint64_t read_around_bytes_;
  bool map_read_only_files_;
};

}  // namespace

Status File::ReadExactAt(uint64_t offset_bytes, std::span<std::byte> dst,
                         std::string_view what) const {
  BOOST_OUTCOME_TRY(got, ReadAt(offset_bytes, dst));
  if (got != dst.size()) {
    return Error(EIO, "{}: {} at byte {}: unexpected end of file", path(), what, offset_bytes);
  }
  return Status::Ok();
}

Storage& PosixStorage() {
  static PosixStorageImpl storage;
  return storage;
}

Storage& SharedParentStorage() {
  static PosixStorageImpl storage(ReadPolicy::kSharedParent);
  return storage;
}

Storage& FrozenLayerStorage() {
  static PosixStorageImpl storage(ReadPolicy::kSharedParent, kFrozenReadAroundBytes,
                                  /*map_read_only_files=*/true);
  return storage;
}

}  // namespace common
