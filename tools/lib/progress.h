// SPDX-License-Identifier: Apache-2.0
#pragma once

// A one-line progress display for operations that copy data: bytes done of total, rate
// and time left, redrawn in place. Draws only when stderr is a terminal.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace tools {

// "1.5 GiB", "512.0 MiB", "4.0 KiB", "17 B".
std::string HumanBytes(uint64_t bytes);

class Progress {
 public:
  Progress(std::string label, uint64_t total_bytes, std::FILE* out = stderr);
  // Draws if `done_bytes` moved on and at least 100 ms passed since the last draw.
  void Update(uint64_t done_bytes);
  // Draws the final state and ends the line.
  void Finish(uint64_t done_bytes);
  bool enabled() const { return enabled_; }

  // The text of one frame (exposed for tests).
  static std::string Format(const std::string& label, uint64_t done_bytes, uint64_t total_bytes,
                            double elapsed_seconds);

 private:
  void Draw(uint64_t done_bytes);

  std::string label_;
  uint64_t total_bytes_;
  std::FILE* out_;
  bool enabled_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace tools
