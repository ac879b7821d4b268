// SPDX-License-Identifier: Apache-2.0
#include "tools/lib/vmx_file.h"

#include <cerrno>

namespace tools {
namespace {

using common::Error;
using common::Result;

constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = Lower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

bool VmxFile::SameKey(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

std::string VmxFile::Encode(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '|' || byte < 0x20 || byte == 0x7f) {
      out += fmt::format("|{:02X}", byte);
    } else {
      out += c;
    }
  }
  return out;
}

std::string VmxFile::Decode(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '|' && i + 2 < raw.size() && HexDigit(raw[i + 1]) >= 0 &&
        HexDigit(raw[i + 2]) >= 0) {
      out += static_cast<char>(HexDigit(raw[i + 1]) * 16 + HexDigit(raw[i + 2]));
      i += 2;
    } else {
      out += raw[i];
    }
  }
  return out;
}

Result<VmxFile> VmxFile::Parse(std::string_view text, const std::string& name) {
  if (text.size() > kMaxVmxBytes) {
    return Error(EINVAL, "{}: {} bytes is too large for a .vmx (at most {})", name, text.size(),
                 kMaxVmxBytes);
  }
  VmxFile file;
  size_t pos = 0;
  while (pos < text.size()) {
    Line line;
    line.line_number = file.lines_.size() + 1;
    size_t newline = text.find('\n', pos);
    std::string_view body;
    if (newline == std::string_view::npos) {
      body = text.substr(pos);
      pos = text.size();
    } else {
      body = text.substr(pos, newline - pos);
      pos = newline + 1;
      line.ending = "\n";
      if (!body.empty() && body.back() == '\r') {
        body.remove_suffix(1);
        line.ending = "\r\n";
      }
    }
    line.text = std::string(body);
    const size_t n = line.line_number;
    if (body.find('\0') != std::string_view::npos) {
      return Error(EINVAL, "{}: line {}: NUL byte (not a text file)", name, n);
    }

    size_t i = 0;
    if (n == 1 && body.starts_with(kUtf8Bom)) i = kUtf8Bom.size();
    while (i < body.size() && IsBlank(body[i])) ++i;
    if (i < body.size() && body[i] != '#') {
      const size_t equals = body.find('=', i);
      if (equals == std::string_view::npos) {
        return Error(EINVAL, "{}: line {}: no '=' (expected key = \"value\")", name, n);
      }
      size_t key_end = equals;
      while (key_end > i && IsBlank(body[key_end - 1])) --key_end;
      if (key_end == i) return Error(EINVAL, "{}: line {}: no key before '='", name, n);
      line.key = std::string(body.substr(i, key_end - i));

      size_t v = equals + 1;
      while (v < body.size() && IsBlank(body[v])) ++v;
      line.value_begin = v;
      if (v < body.size() && body[v] == '"') {
        const size_t close = body.find('"', v + 1);
        if (close == std::string_view::npos) {
          return Error(EINVAL, "{}: line {}: the value of {} has no closing '\"'", name, n,
                       line.key);
        }
        line.value = Decode(body.substr(v + 1, close - v - 1));
        line.value_end = close + 1;
      } else {
        size_t end = body.size();
        while (end > v && IsBlank(body[end - 1])) --end;
        line.value = Decode(body.substr(v, end - v));
        line.value_end = end;
      }
      line.is_setting = true;
    }
    file.lines_.push_back(std::move(line));
  }
  return file;
}

std::optional<std::string> VmxFile::Get(std::string_view key) const {
  std::optional<std::string> value;
  for (const Line& line : lines_) {
    if (line.is_setting && SameKey(line.key, key)) value = line.value;
  }
  return value;
}

std::vector<VmxFile::Setting> VmxFile::Settings() const {
  std::vector<Setting> settings;
  for (const Line& line : lines_) {
    if (line.is_setting) settings.push_back({line.key, line.value, line.line_number});
  }
  return settings;
}

void VmxFile::Set(std::string_view key, std::string_view value) {
  const std::string quoted = fmt::format("\"{}\"", Encode(value));
  bool found = false;
  for (Line& line : lines_) {
    if (!line.is_setting || !SameKey(line.key, key)) continue;
    line.text.replace(line.value_begin, line.value_end - line.value_begin, quoted);
    line.value_end = line.value_begin + quoted.size();
    line.value = std::string(value);
    found = true;
  }
  if (found) return;

  const std::string_view ending = DominantEnding();
  if (!lines_.empty() && lines_.back().ending.empty()) lines_.back().ending = ending;
  Line line;
  line.key = std::string(key);
  line.text = line.key + " = ";
  line.value_begin = line.text.size();
  line.text += quoted;
  line.value_end = line.text.size();
  line.value = std::string(value);
  line.ending = ending;
  line.is_setting = true;
  lines_.push_back(std::move(line));
}

size_t VmxFile::Remove(std::string_view key) {
  const size_t before = lines_.size();
  std::erase_if(lines_,
                [&](const Line& line) { return line.is_setting && SameKey(line.key, key); });
  return before - lines_.size();
}

std::string VmxFile::Text() const {
  std::string text;
  for (const Line& line : lines_) {
    text += line.text;
    text += line.ending;
  }
  return text;
}

std::string_view VmxFile::DominantEnding() const {
  size_t crlf = 0;
  size_t lf = 0;
  for (const Line& line : lines_) {
    if (line.ending == "\r\n") ++crlf;
    if (line.ending == "\n") ++lf;
  }
  return crlf > lf ? "\r\n" : "\n";
}

}  // namespace tools
