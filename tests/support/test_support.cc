// SPDX-License-Identifier: Apache-2.0
#include "tests/support/test_support.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>

namespace fs = std::filesystem;

namespace testing_support {

TempDir::TempDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/clonefs-test-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

CommandResult Run(const std::vector<std::string>& argv) {
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) {
    throw std::runtime_error("pipe failed");
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  CommandResult result;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_count = 2;
  char buf[65536];
  while (open_count > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<size_t>(n));
      } else {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_count;
      }
    }
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

CommandResult RunShell(const std::string& command) { return Run({"sh", "-c", command}); }

::testing::AssertionResult RunsOk(const std::vector<std::string>& argv) {
  CommandResult r = Run(argv);
  if (r.exit_code == 0) return ::testing::AssertionSuccess();
  std::string command;
  for (const auto& a : argv) command += (command.empty() ? "" : " ") + a;
  return ::testing::AssertionFailure()
         << "`" << command << "` exited " << r.exit_code << "; stderr:\n"
         << r.err;
}

std::vector<std::byte> ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> bytes(chars.size());
  std::memcpy(bytes.data(), chars.data(), chars.size());
  return bytes;
}

void WriteFileBytes(const std::string& path, const std::vector<std::byte>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::string SamplesDir() { return CLONEFS_SAMPLES_DIR; }

void CopySamplesDecompressed(const std::string& dir) {
  for (const auto& entry : fs::recursive_directory_iterator(SamplesDir())) {
    fs::path rel = fs::relative(entry.path(), SamplesDir());
    fs::path target = fs::path(dir) / rel;
    if (entry.is_directory()) {
      fs::create_directories(target);
      continue;
    }
    fs::create_directories(target.parent_path());
    if (entry.path().extension() == ".gz") {
      target.replace_extension();
      gzFile in = gzopen(entry.path().c_str(), "rb");
      if (!in) throw std::runtime_error("gzopen " + entry.path().string());
      std::ofstream out(target, std::ios::binary | std::ios::trunc);
      char buf[1 << 16];
      int n;
      while ((n = gzread(in, buf, sizeof buf)) > 0) out.write(buf, n);
      gzclose(in);
      if (n < 0 || !out) throw std::runtime_error("gunzip " + entry.path().string());
    } else {
      fs::copy_file(entry.path(), target, fs::copy_options::overwrite_existing);
      fs::permissions(target, fs::perms::owner_write, fs::perm_options::add);
    }
  }
}

std::string Sha256OfFile(const std::string& path) {
  CommandResult r = Run({"sha256sum", "-b", path});
  if (r.exit_code != 0 || r.out.size() < 64) throw std::runtime_error("sha256sum " + path);
  return r.out.substr(0, 64);
}

namespace {

class Fd {
 public:
  explicit Fd(const std::string& path) : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    if (fd_ < 0) throw std::runtime_error("cannot open " + path);
  }
  ~Fd() { ::close(fd_); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

using Range = std::pair<uint64_t, uint64_t>;  // [begin, end) in bytes

// The ranges SEEK_DATA reports; everything else is a hole and reads as zeros.
std::vector<Range> DataRanges(int fd, uint64_t size_bytes) {
  std::vector<Range> ranges;
  off_t pos = 0;
  while (static_cast<uint64_t>(pos) < size_bytes) {
    off_t data = ::lseek(fd, pos, SEEK_DATA);
    if (data < 0) break;  // ENXIO: no data after pos
    off_t hole = ::lseek(fd, data, SEEK_HOLE);
    if (hole < 0) hole = static_cast<off_t>(size_bytes);
    ranges.emplace_back(data, hole);
    pos = hole;
  }
  return ranges;
}

}  // namespace

std::string FirstDifference(const std::string& a, const std::string& b) {
  const uint64_t size_a = fs::file_size(a), size_b = fs::file_size(b);
  if (size_a != size_b) {
    return "sizes differ: " + std::to_string(size_a) + " vs " + std::to_string(size_b);
  }
  Fd fd_a(a), fd_b(b);
  std::vector<Range> ranges = DataRanges(fd_a.get(), size_a);
  std::vector<Range> ranges_b = DataRanges(fd_b.get(), size_b);
  ranges.insert(ranges.end(), ranges_b.begin(), ranges_b.end());
  std::sort(ranges.begin(), ranges.end());
  constexpr size_t kChunk = 1 << 20;
  std::vector<char> buf_a(kChunk), buf_b(kChunk);
  uint64_t done = 0;  // everything below `done` has been compared
  for (auto [begin, end] : ranges) {
    for (uint64_t pos = std::max(begin, done); pos < end; pos += kChunk) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, end - pos));
      if (::pread(fd_a.get(), buf_a.data(), n, static_cast<off_t>(pos)) !=
              static_cast<ssize_t>(n) ||
          ::pread(fd_b.get(), buf_b.data(), n, static_cast<off_t>(pos)) !=
              static_cast<ssize_t>(n)) {
        return "short read at offset " + std::to_string(pos);
      }
      if (std::memcmp(buf_a.data(), buf_b.data(), n) == 0) continue;
      size_t i = 0;
      while (buf_a[i] == buf_b[i]) ++i;
      std::ostringstream msg;
      msg << "first difference at byte " << pos + i << ": 0x" << std::hex
          << (static_cast<unsigned>(buf_a[i]) & 0xff) << " vs 0x"
          << (static_cast<unsigned>(buf_b[i]) & 0xff);
      return msg.str();
    }
    done = std::max(done, end);
  }
  return "";
}

uint64_t AllocatedBytes(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw std::runtime_error("cannot stat " + path);
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

void DropFromPageCache(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot open " + path);
  const int err = ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
  if (err != 0) throw std::runtime_error("cannot drop the cached pages of " + path);
}

bool Eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= until) return condition();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

std::string ClonectlPath() { return CLONECTL_PATH; }

}  // namespace testing_support
