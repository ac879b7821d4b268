// SPDX-License-Identifier: Apache-2.0
#include "vmdk/descriptor.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstddef>
#include <limits>
#include <utility>

namespace vmdk {
namespace {

using common::Error;

constexpr size_t kNpos = std::string_view::npos;
constexpr std::string_view kExtentComment = "# Extent description";

// The template of CreateEmpty(). SetExtents puts the extents right after "# Extent
// description", never after a blank line: qemu 7.2 parses an extent twice when a blank line
// precedes it (vmdk-format.md section 12).
constexpr std::string_view kEmptyTemplate = R"(# Disk DescriptorFile
version=1
encoding="UTF-8"
CID=fffffffe
parentCID=ffffffff
createType="monolithicFlat"

# Extent description

# The Disk Data Base
#DDB

)";

constexpr std::array<std::pair<ExtentAccess, std::string_view>, 3> kAccessNames{{
    {ExtentAccess::kReadWrite, "RW"},
    {ExtentAccess::kReadOnly, "RDONLY"},
    {ExtentAccess::kNoAccess, "NOACCESS"},
}};

constexpr std::array<std::pair<ExtentType, std::string_view>, 8> kTypeNames{{
    {ExtentType::kFlat, "FLAT"},
    {ExtentType::kSparse, "SPARSE"},
    {ExtentType::kZero, "ZERO"},
    {ExtentType::kVmfs, "VMFS"},
    {ExtentType::kVmfsSparse, "VMFSSPARSE"},
    {ExtentType::kVmfsRdm, "VMFSRDM"},
    {ExtentType::kVmfsRaw, "VMFSRAW"},
    {ExtentType::kSeSparse, "SESPARSE"},
}};

// A lone CR (one not followed by LF) counts as a blank, so a final "...\r" still parses.
bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsBlank(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsBlank(s.back())) s.remove_suffix(1);
  return s;
}

char AsciiLower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return std::ranges::equal(a, b, [](char x, char y) { return AsciiLower(x) == AsciiLower(y); });
}

bool IsDdbKey(std::string_view key) {
  return key.size() >= 4 && EqualsIgnoreCase(key.substr(0, 4), "ddb.");
}

bool IsCidKey(std::string_view key) {
  return EqualsIgnoreCase(key, "CID") || EqualsIgnoreCase(key, "parentCID");
}

bool IsComment(std::string_view raw) {
  std::string_view trimmed = Trim(raw);
  return !trimmed.empty() && trimmed.front() == '#';
}

template <class E, size_t N>
std::optional<E> LookupName(const std::array<std::pair<E, std::string_view>, N>& table,
                            std::string_view name) {
  for (const auto& [value, text] : table)
    if (EqualsIgnoreCase(text, name)) return value;
  return std::nullopt;
}

template <class E, size_t N>
std::string_view NameOf(const std::array<std::pair<E, std::string_view>, N>& table, E value) {
  for (const auto& [v, text] : table)
    if (v == value) return text;
  return "?";
}

enum class NumberError { kNone, kInvalid, kOverflow };

// The whole of `s` as a number: no sign, prefix or blanks (std::from_chars never throws).
template <class T>
NumberError ParseNumber(std::string_view s, int base, T& out) {
  if (s.empty()) return NumberError::kInvalid;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out, base);
  if (ec == std::errc::result_out_of_range) return NumberError::kOverflow;
  if (ec != std::errc() || end != s.data() + s.size()) return NumberError::kInvalid;
  return NumberError::kNone;
}

std::optional<uint32_t> ParseCid(std::string_view s) {
  // QEMU writes CIDs with "%x", so leading zeros may be missing: 1 to 8 hex digits.
  // from_chars takes no sign or "0x" for an unsigned type.
  uint32_t cid = 0;
  if (s.empty() || s.size() > 8 || ParseNumber(s, 16, cid) != NumberError::kNone) {
    return std::nullopt;
  }
  return cid;
}

std::optional<int> ParseVersion(std::string_view s) {
  int version = 0;
  if (ParseNumber(s, 10, version) != NumberError::kNone || version < 0) return std::nullopt;
  return version;
}

bool IsDecimal(std::string_view s) {
  return !s.empty() && std::ranges::all_of(s, [](char c) { return c >= '0' && c <= '9'; });
}

// Takes the next blank-separated token off the front of `rest` ("" at the end).
std::string_view NextToken(std::string_view& rest) {
  size_t start = 0;
  while (start < rest.size() && IsBlank(rest[start])) ++start;
  size_t end = start;
  while (end < rest.size() && !IsBlank(rest[end])) ++end;
  std::string_view token = rest.substr(start, end - start);
  rest.remove_prefix(end);
  return token;
}

Status ParseSectors(std::string_view word, std::string_view what, uint64_t& out) {
  NumberError error = ParseNumber(word, 10, out);
  if (error == NumberError::kOverflow) {
    return Error(EINVAL, "extent {} '{}' does not fit in 64 bits", what, word);
  }
  if (error == NumberError::kInvalid) return Error(EINVAL, "invalid extent {} '{}'", what, word);
  return Status::Ok();
}

// One extent line; the error message lacks the "line N: " prefix.
Result<ExtentLine> ParseExtentLine(std::string_view rest) {
  std::string_view access_word = NextToken(rest);
  std::string_view size_word = NextToken(rest);
  ExtentLine extent;
  std::optional<ExtentAccess> access = LookupName(kAccessNames, access_word);
  if (!access) {
    // Only something shaped like an extent line ("<word> <number> ...") is reported as one.
    if (!IsDecimal(size_word)) return Error(EINVAL, "not a comment, key=value or extent line");
    return Error(EINVAL, "unknown extent access '{}'", access_word);
  }
  extent.access = *access;
  BOOST_OUTCOME_TRYV(ParseSectors(size_word, "size", extent.size_sectors));

  std::string_view type_word = NextToken(rest);
  if (type_word.empty()) return Error(EINVAL, "missing extent type");
  std::optional<ExtentType> type = LookupName(kTypeNames, type_word);
  if (!type) return Error(EINVAL, "unknown extent type '{}'", type_word);
  extent.type = *type;

  rest = Trim(rest);
  if (rest.empty() && extent.type == ExtentType::kZero) return extent;
  if (rest.empty()) return Error(EINVAL, "missing file name");
  if (rest.front() != '"') return Error(EINVAL, "file name not in double quotes");
  size_t close = rest.find('"', 1);
  if (close == kNpos) return Error(EINVAL, "unterminated file name quote");
  extent.file_name = rest.substr(1, close - 1);
  if (extent.file_name.empty() && extent.type != ExtentType::kZero) {
    return Error(EINVAL, "empty file name");
  }
  // A CR, LF or NUL cannot be written back into a descriptor line (and names no real
  // file), so such a name is refused rather than silently changed on the next write.
  if (extent.file_name.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
    return Error(EINVAL, "file name contains a control character");
  }
  rest.remove_prefix(close + 1);
  if (!rest.empty() && !IsBlank(rest.front())) return Error(EINVAL, "no blank after file name");
  if (std::string_view offset_word = NextToken(rest); !offset_word.empty()) {
    uint64_t offset = 0;
    BOOST_OUTCOME_TRYV(ParseSectors(offset_word, "offset", offset));
    extent.offset_sectors = offset;
  }
  while (!Trim(rest).empty()) extent.extra_fields.emplace_back(NextToken(rest));
  return extent;
}

// Removes the bytes that would break the line structure if written.
std::string StripBytes(std::string_view s, std::string_view bad) {
  std::string out;
  for (char c : s)
    if (bad.find(c) == kNpos) out += c;
  return out;
}

constexpr std::string_view kBadValueBytes{"\"\r\n\0", 4};
constexpr std::string_view kBadFieldBytes{"\" \t\r\n\0", 6};

// What SetExtents stores and FormatExtentLine writes: nothing that cannot be parsed back,
// FLAT (and any line with extra fields) with an offset.
ExtentLine Normalized(ExtentLine extent) {
  extent.file_name = StripBytes(extent.file_name, kBadValueBytes);
  for (std::string& field : extent.extra_fields) field = StripBytes(field, kBadFieldBytes);
  std::erase_if(extent.extra_fields, [](const std::string& f) { return f.empty(); });
  if (!extent.offset_sectors &&
      (extent.type == ExtentType::kFlat || !extent.extra_fields.empty())) {
    extent.offset_sectors = 0;
  }
  return extent;
}

bool IsValidKey(std::string_view key) {
  return !key.empty() && key.front() != '#' &&
         key.find_first_of(std::string_view{"\" \t\r\n=\0", 8}) == kNpos;
}

std::string Quote(std::string_view value) { return fmt::format("\"{}\"", value); }

}  // namespace

std::string_view ToString(ExtentAccess access) { return NameOf(kAccessNames, access); }
std::string_view ToString(ExtentType type) { return NameOf(kTypeNames, type); }

std::string FormatExtentLine(const ExtentLine& extent_in) {
  ExtentLine extent = Normalized(extent_in);
  std::string out =
      fmt::format("{} {} {}", ToString(extent.access), extent.size_sectors, ToString(extent.type));
  if (!extent.file_name.empty() || extent.type != ExtentType::kZero || extent.offset_sectors) {
    out += " " + Quote(extent.file_name);
  }
  if (extent.offset_sectors) out += fmt::format(" {}", *extent.offset_sectors);
  for (const std::string& field : extent.extra_fields) out += " " + field;
  return out;
}

Result<Descriptor> Descriptor::Parse(std::string_view text) { return ParseText(text, true); }

Result<Descriptor> Descriptor::ParseText(std::string_view text, bool require_extents) {
  using Kind = Line::Kind;
  if (text.size() > kMaxDescriptorBytes) {
    return Error(EINVAL, "descriptor is {} bytes, over the limit of {}", text.size(),
                 kMaxDescriptorBytes);
  }
  Descriptor d;
  d.ends_with_newline_ = text.empty() || text.back() == '\n';
  uint64_t capacity_sectors = 0;
  size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    size_t newline = text.find('\n');
    std::string_view raw = text.substr(0, newline);
    text.remove_prefix(newline == kNpos ? text.size() : newline + 1);
    Line line;
    if (newline != kNpos && raw.ends_with('\r')) {
      raw.remove_suffix(1);
      line.crlf = true;
      if (line_no == 1) d.newline_ = "\r\n";
    } else if (newline == kNpos) {
      line.crlf = d.newline_ == "\r\n";  // used only if a line is added after it
    }
    if (raw.find('\0') != kNpos) return Error(EINVAL, "line {}: NUL byte", line_no);
    line.raw = raw;
    size_t equals = raw.find('=');
    size_t quote = raw.find('"');
    if (Trim(raw).empty() || IsComment(raw)) {
      line.kind = Kind::kVerbatim;
    } else if (equals != kNpos && (quote == kNpos || equals < quote)) {
      std::string_view key = Trim(raw.substr(0, equals));
      if (!IsValidKey(key)) return Error(EINVAL, "line {}: invalid key '{}'", line_no, key);
      size_t value_begin = equals + 1;
      while (value_begin < raw.size() && IsBlank(raw[value_begin])) ++value_begin;
      std::string_view value = Trim(raw.substr(value_begin));
      line.quoted = value.size() >= 2 && value.front() == '"' && value.back() == '"';
      if (line.quoted) value = value.substr(1, value.size() - 2);
      if (IsCidKey(key) && !ParseCid(value)) {
        return Error(EINVAL, "line {}: {} '{}' is not 1 to 8 hex digits", line_no, key, value);
      }
      if (EqualsIgnoreCase(key, "version") && !ParseVersion(value)) {
        return Error(EINVAL, "line {}: version '{}' is not a number", line_no, value);
      }
      line.kind = Kind::kEntry;
      line.key = key;
      line.value = value;
      line.spaced = value_begin > equals + 1 || (equals > 0 && IsBlank(raw[equals - 1]));
      line.value_begin = value_begin;
    } else {
      Result<ExtentLine> parsed = ParseExtentLine(raw);
      if (!parsed) return parsed.error().WithContext(fmt::format("line {}", line_no));
      ExtentLine& extent = parsed.value();
      if (d.extents_.size() == kMaxExtents) {
        return Error(EINVAL, "line {}: more than {} extents", line_no, kMaxExtents);
      }
      if (extent.size_sectors > std::numeric_limits<uint64_t>::max() - capacity_sectors) {
        return Error(EINVAL, "line {}: total extent size does not fit in 64 bits", line_no);
      }
      capacity_sectors += extent.size_sectors;
      line.kind = Kind::kExtent;
      line.extent_index = d.extents_.size();
      d.extents_.push_back(std::move(extent));
    }
    d.lines_.push_back(std::move(line));
  }
  if (require_extents && d.extents_.empty()) return Error(EINVAL, "no extent line");
  return d;
}

Descriptor Descriptor::CreateEmpty() { return ParseText(kEmptyTemplate, false).value(); }

std::string Descriptor::ToString() const {
  std::string out;
  for (size_t i = 0; i < lines_.size(); ++i) {
    out += lines_[i].raw;
    if (i + 1 < lines_.size() || ends_with_newline_) out += lines_[i].crlf ? "\r\n" : "\n";
  }
  return out;
}

std::optional<std::string> Descriptor::Get(std::string_view key) const {
  for (const Line& line : lines_)
    if (line.kind == Line::Kind::kEntry && EqualsIgnoreCase(line.key, key)) return line.value;
  return std::nullopt;
}

Descriptor::Line Descriptor::NewLine(Line::Kind kind, std::string raw) const {
  Line line;
  line.kind = kind;
  line.raw = std::move(raw);
  line.crlf = newline_ == "\r\n";
  return line;
}

size_t Descriptor::HeaderInsertIndex() const {
  auto extent_or_ddb = std::ranges::find_if(lines_, [](const Line& line) {
    return line.kind == Line::Kind::kExtent ||
           (line.kind == Line::Kind::kEntry && IsDdbKey(line.key));
  });
  const size_t boundary = static_cast<size_t>(extent_or_ddb - lines_.begin());
  for (size_t i = boundary; i > 0; --i)
    if (lines_[i - 1].kind == Line::Kind::kEntry) return i;
  // No header entry yet: after the "# Disk DescriptorFile" line, if there is one.
  return boundary > 0 && IsComment(lines_[0].raw) ? 1 : 0;
}

void Descriptor::Set(std::string_view key, std::string_view value_in) {
  if (!IsValidKey(key)) return;
  std::string value = StripBytes(value_in, kBadValueBytes);
  bool found = false;
  for (Line& line : lines_) {
    if (line.kind != Line::Kind::kEntry || !EqualsIgnoreCase(line.key, key)) continue;
    // Everything before the value stays; trailing blanks go (vmdk-format.md section 12).
    line.raw.resize(line.value_begin);
    line.raw += line.quoted ? Quote(value) : value;
    line.value = value;
    found = true;
  }
  if (found) return;

  Line line = NewLine(Line::Kind::kEntry, std::string(key));
  line.key = key;
  line.value = value;
  size_t index = 0;
  if (IsDdbKey(key)) {
    line.quoted = line.spaced = true;
    line.raw += " = ";
    auto last_ddb = std::ranges::find_if(lines_.rbegin(), lines_.rend(), [](const Line& l) {
      return l.kind == Line::Kind::kEntry && IsDdbKey(l.key);
    });
    index =
        last_ddb == lines_.rend() ? lines_.size() : static_cast<size_t>(lines_.rend() - last_ddb);
  } else {
    line.quoted = !IsDecimal(value) && !(IsCidKey(key) && ParseCid(value));
    line.raw += "=";
    index = HeaderInsertIndex();
  }
  line.value_begin = line.raw.size();
  line.raw += line.quoted ? Quote(value) : value;
  lines_.insert(lines_.begin() + static_cast<ptrdiff_t>(index), std::move(line));
}

bool Descriptor::Remove(std::string_view key) {
  return std::erase_if(lines_, [key](const Line& line) {
           return line.kind == Line::Kind::kEntry && EqualsIgnoreCase(line.key, key);
         }) > 0;
}

// Values made invalid by Set read as absent.
int Descriptor::version() const { return ParseVersion(Get("version").value_or("")).value_or(1); }
std::optional<uint32_t> Descriptor::cid() const { return ParseCid(Get("CID").value_or("")); }
uint32_t Descriptor::parent_cid() const {
  return ParseCid(Get("parentCID").value_or("")).value_or(kNoParentCid);
}

std::string Descriptor::create_type() const { return Get("createType").value_or(""); }

std::optional<std::string> Descriptor::parent_file_name_hint() const {
  return Get("parentFileNameHint");
}

void Descriptor::SetExtents(std::vector<ExtentLine> extents) {
  using Kind = Line::Kind;
  for (ExtentLine& extent : extents) extent = Normalized(std::move(extent));
  // Extent k takes the place of old extent line k (kept as it was if unchanged); surplus old
  // lines go, and further extents follow the last old one. Without old extent lines they
  // follow "# Extent description", added after the header entries if missing.
  auto is_extent = [](const Line& line) { return line.kind == Kind::kExtent; };
  auto anchor = std::ranges::find_if(lines_.rbegin(), lines_.rend(), is_extent);
  if (anchor == lines_.rend()) {
    anchor = std::ranges::find_if(lines_.rbegin(), lines_.rend(), [](const Line& line) {
      return line.kind == Kind::kVerbatim && EqualsIgnoreCase(Trim(line.raw), kExtentComment);
    });
  }
  size_t anchor_index = 0;
  if (anchor != lines_.rend()) {
    anchor_index = static_cast<size_t>(lines_.rend() - anchor) - 1;
  } else {
    anchor_index = HeaderInsertIndex();
    lines_.insert(lines_.begin() + static_cast<ptrdiff_t>(anchor_index),
                  NewLine(Kind::kVerbatim, std::string(kExtentComment)));
  }
  auto make_line = [&](size_t k) {
    Line line = NewLine(Kind::kExtent, FormatExtentLine(extents[k]));
    line.extent_index = k;
    return line;
  };
  std::vector<Line> lines;
  lines.reserve(lines_.size() + extents.size());
  for (size_t i = 0; i < lines_.size(); ++i) {
    Line& line = lines_[i];
    const size_t k = line.extent_index;
    if (line.kind != Kind::kExtent || (k < extents.size() && extents_[k] == extents[k])) {
      lines.push_back(std::move(line));
    } else if (k < extents.size()) {
      lines.push_back(make_line(k));
    }
    if (i == anchor_index) {
      for (size_t j = extents_.size(); j < extents.size(); ++j) lines.push_back(make_line(j));
    }
  }
  lines_ = std::move(lines);
  extents_ = std::move(extents);
}

uint64_t Descriptor::capacity_sectors() const {
  uint64_t total = 0;
  for (const ExtentLine& extent : extents_) total += extent.size_sectors;
  return total;
}

std::vector<std::pair<std::string, std::string>> Descriptor::Entries() const {
  std::vector<std::pair<std::string, std::string>> entries;
  for (const Line& line : lines_) {
    if (line.kind == Line::Kind::kEntry) entries.emplace_back(line.key, line.value);
  }
  return entries;
}

}  // namespace vmdk
