// SPDX-License-Identifier: Apache-2.0
#pragma once

// The VMDK text descriptor (vmdk-format.md section 3): parsing, typed access and a writer
// that round-trips. Pure text processing: no I/O.
//
// Round trip: a parsed descriptor remembers every line as it was (comments, blank lines,
// CRLF, spacing, unknown keys, trailing spaces). ToString() of an unmodified descriptor
// returns the input text byte for byte; a line changed through Set/SetExtents is
// regenerated in VMware's style, every other line is kept as it was.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace vmdk {

using common::Result;
using common::Status;

enum class ExtentAccess { kReadWrite, kReadOnly, kNoAccess };  // RW, RDONLY, NOACCESS

enum class ExtentType {
  kFlat,        // FLAT
  kSparse,      // SPARSE (hosted KDMV, or whatever magic the file has)
  kZero,        // ZERO
  kVmfs,        // VMFS
  kVmfsSparse,  // VMFSSPARSE (ESXi COWD)
  kVmfsRdm,     // VMFSRDM
  kVmfsRaw,     // VMFSRAW
  kSeSparse,    // SESPARSE
};

std::string_view ToString(ExtentAccess access);
std::string_view ToString(ExtentType type);

// One extent line: <access> <size-in-sectors> <type> ["<file>" [<offset> [extra...]]]
struct ExtentLine {
  ExtentAccess access = ExtentAccess::kReadWrite;
  uint64_t size_sectors = 0;
  ExtentType type = ExtentType::kFlat;
  std::string file_name;                  // as written, unquoted; empty for ZERO
  std::optional<uint64_t> offset_sectors; // sectors into the file, when written
  std::vector<std::string> extra_fields;  // partition UUID, device id: kept, unused

  bool operator==(const ExtentLine&) const = default;
};

// CID value meaning "no parent" in parentCID.
inline constexpr uint32_t kNoParentCid = 0xffffffff;

// Upper bound on a descriptor's size in bytes. QEMU refuses larger ones too; real
// descriptors are under 4 KiB even with dozens of extents.
inline constexpr size_t kMaxDescriptorBytes = 1 << 20;

// Upper bound on extent lines: a 62 TiB disk split into 2 GiB pieces has 31,744; any
// more is corrupt input, and the bound keeps memory proportional to a real disk.
inline constexpr size_t kMaxExtents = 65536;

class Descriptor {
 public:
  // Parses descriptor text (the caller has already cut an embedded descriptor at its
  // first NUL). Accepts LF and CRLF, comments and blank lines anywhere, `key=value`,
  // `key = "value"`, trailing spaces, keys in any case. Fails with EINVAL and a message
  // "line N: cause" for: a line that is none of comment/blank/key=value/extent, an
  // extent line with an unknown access or type, a non-numeric size or offset, a missing
  // or unterminated file-name quote (except ZERO, which has no file), a CID/parentCID
  // that is not 8 hex digits, a non-numeric version, no extent line at all, text over
  // kMaxDescriptorBytes or more than kMaxExtents extents, or a NUL byte.
  static Result<Descriptor> Parse(std::string_view text);

  // A new, empty descriptor in VMware's conventional layout (header comment, header,
  // extent section, DDB section), for callers that build one from scratch.
  static Descriptor CreateEmpty();

  // The text, round-tripping as described above. Lines added by Set/SetExtents use the
  // newline convention of the first line of the input (LF for CreateEmpty).
  std::string ToString() const;

  // Any header or DDB entry, key compared case-insensitively ("CID", "ddb.adapterType").
  // The value is trimmed and stripped of one pair of surrounding double quotes.
  std::optional<std::string> Get(std::string_view key) const;
  // Sets an entry: replaces the value of an existing line (keeping its quoting and
  // spacing style) or appends a new line at the end of its section: header keys as
  // `key=value` (quoted unless the value is a number or hex CID), ddb.* keys as
  // `ddb.key = "value"`.
  void Set(std::string_view key, std::string_view value);
  // Removes every line with this key. Returns whether one was removed.
  bool Remove(std::string_view key);

  // Typed header values. Missing keys give the documented defaults.
  int version() const;                                     // default 1
  std::optional<uint32_t> cid() const;                     // CID
  uint32_t parent_cid() const;                             // default kNoParentCid
  std::string create_type() const;                         // "" when absent
  std::optional<std::string> parent_file_name_hint() const;

  const std::vector<ExtentLine>& extents() const { return extents_; }
  // Replaces all extent lines (regenerated in VMware's format, FLAT with offset).
  void SetExtents(std::vector<ExtentLine> extents);
  uint64_t capacity_sectors() const;  // sum of extent sizes

  // All entries in file order, key as written and value unquoted (for display).
  std::vector<std::pair<std::string, std::string>> Entries() const;

 private:
  struct Line {
    enum class Kind { kVerbatim, kEntry, kExtent } kind = Kind::kVerbatim;
    std::string raw;          // text without the line ending; regenerated when changed
    std::string key;          // for kEntry
    std::string value;        // for kEntry, unquoted
    bool quoted = false;      // for kEntry: value was in double quotes
    bool spaced = false;      // for kEntry: "key = value" rather than "key=value"
    size_t value_begin = 0;   // for kEntry: where the value (or its quote) starts in raw
    size_t extent_index = 0;  // for kExtent
    bool crlf = false;        // ends with CRLF rather than LF (if it ends at all)
  };

  // Parse(), but an empty extent section is allowed (for CreateEmpty).
  static Result<Descriptor> ParseText(std::string_view text, bool require_extents);
  // Where a new header entry goes: after the last header entry before the extents.
  size_t HeaderInsertIndex() const;
  // A generated line, ending with the file's newline convention.
  Line NewLine(Line::Kind kind, std::string raw) const;

  std::vector<Line> lines_;
  std::vector<ExtentLine> extents_;
  std::string newline_ = "\n";
  bool ends_with_newline_ = true;
};

// The canonical text of one extent line (VMware's format).
std::string FormatExtentLine(const ExtentLine& extent);

}  // namespace vmdk
