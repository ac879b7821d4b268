// SPDX-License-Identifier: Apache-2.0
#include "tools/lib/progress.h"

#include <unistd.h>

#include <fmt/format.h>

namespace tools {

std::string HumanBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < 1024) return fmt::format("{} B", bytes);
  double value = static_cast<double>(bytes) / 1024;
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  return fmt::format("{:.1f} {}", value, kUnits[unit]);
}

Progress::Progress(std::string label, uint64_t total_bytes, std::FILE* out)
    : label_(std::move(label)),
      total_bytes_(total_bytes),
      out_(out),
      enabled_(::isatty(::fileno(out)) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

std::string Progress::Format(const std::string& label, uint64_t done_bytes, uint64_t total_bytes,
                             double elapsed_seconds) {
  double fraction = total_bytes ? static_cast<double>(done_bytes) / total_bytes : 1.0;
  double rate = elapsed_seconds > 0 ? done_bytes / elapsed_seconds : 0;
  std::string eta = "--:--";
  if (rate > 0 && done_bytes <= total_bytes) {
    auto left = static_cast<uint64_t>((total_bytes - done_bytes) / rate);
    eta = left >= 3600 ? fmt::format("{}:{:02}:{:02}", left / 3600, left / 60 % 60, left % 60)
                       : fmt::format("{}:{:02}", left / 60, left % 60);
  }
  return fmt::format("{} {:>10} / {:<10} {:5.1f}%  {:>10}/s  {} left", label,
                     HumanBytes(done_bytes), HumanBytes(total_bytes), fraction * 100,
                     HumanBytes(static_cast<uint64_t>(rate)), eta);
}

void Progress::Draw(uint64_t done_bytes) {
  auto now = std::chrono::steady_clock::now();
  double elapsed = std::chrono::duration<double>(now - start_).count();
  std::fprintf(out_, "\r%s\x1b[K", Format(label_, done_bytes, total_bytes_, elapsed).c_str());
  std::fflush(out_);
  last_draw_ = now;
}

void Progress::Update(uint64_t done_bytes) {
  if (!enabled_) return;
  if (std::chrono::steady_clock::now() - last_draw_ < std::chrono::milliseconds(100)) return;
  Draw(done_bytes);
}

void Progress::Finish(uint64_t done_bytes) {
  if (!enabled_) return;
  Draw(done_bytes);
  std::fputc('\n', out_);
  std::fflush(out_);
}

}  // namespace tools
