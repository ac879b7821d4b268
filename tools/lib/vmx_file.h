// SPDX-License-Identifier: Apache-2.0
#pragma once

// The text of a VMware .vmx configuration, read and edited without disturbing anything
// not edited: every line that is not changed (comments, blank lines, unknown keys, their
// order, spacing and line endings, CRLF or LF, a missing final newline) is written back
// byte for byte. Only the syntax lives here; what keys mean is in vm_source.h and
// clone_vmx.h.
//
// Syntax, as VMware reads it:
//   - `key = "value"` lines, spaces or tabs around `=` optional. Keys compare ignoring
//     ASCII case (VMware treats `scsi0:0.fileName` and `scsi0:0.filename` alike); when a
//     key is set on several lines the last one wins.
//   - Inside quotes, `|XX` (two hex digits) is the byte XX: VMware writes `"` as `|22` and
//     `|` as `|7C`, so a quoted value never holds a quote. Values are bytes, used as they
//     are whatever `.encoding` says.
//   - An unquoted value (hand-edited files) runs to the end of the line, trailing blanks
//     dropped. Text after a closing quote is kept and ignored.
//   - Blank lines and lines whose first non-blank character is `#` are comments. A leading
//     UTF-8 byte-order mark is kept.
// Refused, naming the line, because they cannot be read unambiguously: a line that is
// neither a comment nor holds `=`, a line with nothing before `=`, a quoted value
// without its closing quote, a NUL byte.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tools {

// A .vmx is a few kilobytes; anything past this is not one, and reading it whole would
// only waste memory.
inline constexpr size_t kMaxVmxBytes = 1 << 20;

class VmxFile {
 public:
  struct Setting {
    std::string key;         // as spelled in the file
    std::string value;       // decoded
    size_t line_number = 0;  // 1-based, in the text parsed (0 for lines added since)
  };

  // Parses `text`. `name` (the file, as the user knows it) starts every error message:
  // "golden.vmx: line 7: no '=' (expected key = \"value\")", EINVAL.
  static common::Result<VmxFile> Parse(std::string_view text, const std::string& name);

  // The value of `key` (last line setting it wins), or nullopt.
  std::optional<std::string> Get(std::string_view key) const;
  // Every setting, in file order.
  std::vector<Setting> Settings() const;

  // Gives every line setting `key` the value `value` (encoded and quoted), keeping the
  // rest of each line as it was; when no line sets it, appends `key = "value"` with the
  // file's line ending.
  void Set(std::string_view key, std::string_view value);
  // Removes every line setting `key`; returns how many there were.
  size_t Remove(std::string_view key);

  // The file's text: unedited lines exactly as parsed.
  std::string Text() const;

  // VMware's quoted-value encoding: `|XX` for `"`, `|`, and control bytes.
  static std::string Encode(std::string_view value);
  // The reverse; a `|` not followed by two hex digits stays as it is.
  static std::string Decode(std::string_view raw);

  // Keys compare ignoring ASCII case.
  static bool SameKey(std::string_view a, std::string_view b);

 private:
  struct Line {
    std::string text;         // without its line ending
    std::string_view ending;  // "\n", "\r\n", or "" for a last line without one (literals)
    bool is_setting = false;
    std::string key;
    std::string value;
    size_t value_begin = 0;  // the raw value (quotes included) is text[value_begin, value_end)
    size_t value_end = 0;
    size_t line_number = 0;
  };

  // The line ending most lines use ("\n" for a file without any).
  std::string_view DominantEnding() const;

  std::vector<Line> lines_;
};

}  // namespace tools
