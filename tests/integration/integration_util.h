// SPDX-License-Identifier: Apache-2.0
#pragma once

// Helpers for the integration tests: running clonectl and the qemu reference tools, and
// checking the shape of clonectl's output. qemu-img/qemu-io are the reference reader
// and writer; clonectl must agree with them byte for byte.

#include <gtest/gtest.h>

#include <cctype>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/test_support.h"

namespace integration {

using testing_support::CommandResult;
using testing_support::Run;
using testing_support::RunsOk;

inline std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

inline void WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

inline CommandResult Clonectl(std::vector<std::string> args) {
  args.insert(args.begin(), testing_support::ClonectlPath());
  return Run(args);
}

// `qemu-io -f vmdk -c COMMAND... IMAGE`; fails if any command fails.
inline ::testing::AssertionResult QemuIo(const std::string& image,
                                         const std::vector<std::string>& commands) {
  std::vector<std::string> argv = {"qemu-io", "-f", "vmdk"};
  for (const auto& c : commands) {
    argv.push_back("-c");
    argv.push_back(c);
  }
  argv.push_back(image);
  return RunsOk(argv);
}

// Exports `image` with clonectl to `out` (replacing it) and with `qemu-img convert -O raw`
// to `out`.qemu, and compares the two byte for byte. Keeps `out`; removes the reference.
inline ::testing::AssertionResult ExportMatchesQemu(const std::string& image,
                                                    const std::string& out) {
  const std::string reference = out + ".qemu";
  std::filesystem::remove(out);
  if (auto r = RunsOk({testing_support::ClonectlPath(), "export", image, out}); !r) return r;
  if (auto r = RunsOk({"qemu-img", "convert", "-f", "vmdk", "-O", "raw", image, reference}); !r) {
    return r;
  }
  const std::string difference = testing_support::FirstDifference(out, reference);
  std::filesystem::remove(reference);
  if (difference.empty()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "clonectl export vs qemu-img convert of " << image << ": " << difference;
}

// The error contract: non-zero exit, and stderr is exactly one line
// `<program>: <file>: <cause>` that contains `needle` (a file name, a cause), ignoring case.
inline ::testing::AssertionResult IsOneLineError(const CommandResult& r,
                                                 const std::string& needle,
                                                 const std::string& program = "clonectl") {
  if (r.exit_code == 0) return ::testing::AssertionFailure() << "exited 0; stdout:\n" << r.out;
  const bool one_line =
      !r.err.empty() && r.err.back() == '\n' && r.err.find('\n') == r.err.size() - 1;
  if (!one_line || r.err.rfind(program + ": ", 0) != 0) {
    return ::testing::AssertionFailure()
           << "stderr is not one line starting \"" << program << ": \":\n" << r.err;
  }
  auto lower = [](std::string text) {
    for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return text;
  };
  if (lower(r.err).find(lower(needle)) == std::string::npos) {
    return ::testing::AssertionFailure()
           << "stderr does not mention \"" << needle << "\": " << r.err;
  }
  return ::testing::AssertionSuccess();
}

// Parses `text` without throwing; is_discarded() when it is not valid JSON.
inline nlohmann::json ParseJson(const std::string& text) {
  return nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
}

// A CID as clonectl may print it: an 8-hex-digit string or a number.
inline std::optional<uint32_t> CidOf(const nlohmann::json& value) {
  if (value.is_number_unsigned()) return value.get<uint32_t>();
  if (!value.is_string()) return std::nullopt;
  const std::string text = value.get<std::string>();
  if (text.empty() || text.size() > 8 ||
      text.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
    return std::nullopt;
  }
  return static_cast<uint32_t>(std::stoul(text, nullptr, 16));
}

// `clonectl inspect --json IMAGE`, parsed; a discarded value when it fails.
inline nlohmann::json InspectJson(const std::string& image) {
  CommandResult r = Clonectl({"inspect", image, "--json"});
  if (r.exit_code != 0) {
    ADD_FAILURE() << "clonectl inspect --json " << image << " exited " << r.exit_code << ": "
                  << r.err;
    return nlohmann::json(nlohmann::json::value_t::discarded);
  }
  nlohmann::json json = ParseJson(r.out);
  if (json.is_discarded()) ADD_FAILURE() << "inspect --json is not JSON:\n" << r.out;
  return json;
}

// The CID line of a qemu-made image, via `qemu-img info` ("cid: 3602693246").
inline std::optional<uint32_t> QemuCid(const std::string& image) {
  CommandResult r = Run({"qemu-img", "info", "--output=json", image});
  if (r.exit_code != 0) return std::nullopt;
  nlohmann::json info = ParseJson(r.out);
  if (info.is_discarded()) return std::nullopt;
  const auto& data = info["format-specific"]["data"];
  if (!data.contains("cid")) return std::nullopt;
  return data["cid"].get<uint32_t>();
}

// What makes `copy` a good full clone of `source` (DESIGN.md: opens in QEMU and VMware
// without clonefs or the source): qemu-img info reads it as a monolithicSparse VMDK of the
// same size with no backing file, `qemu-img check` finds no errors, and
// `qemu-img compare` finds it identical to the source.
inline ::testing::AssertionResult IsFullCloneOf(const std::string& copy,
                                                const std::string& source) {
  CommandResult info = Run({"qemu-img", "info", "--output=json", copy});
  if (info.exit_code != 0) {
    return ::testing::AssertionFailure() << "qemu-img info " << copy << ": " << info.err;
  }
  nlohmann::json json = ParseJson(info.out);
  CommandResult source_info = Run({"qemu-img", "info", "--output=json", source});
  nlohmann::json source_json = ParseJson(source_info.out);
  if (json.is_discarded() || source_json.is_discarded()) {
    return ::testing::AssertionFailure() << "qemu-img info is not JSON: " << info.out;
  }
  if (json["format"] != "vmdk" ||
      json["format-specific"]["data"]["create-type"] != "monolithicSparse" ||
      json.contains("backing-filename") || json["virtual-size"] != source_json["virtual-size"]) {
    return ::testing::AssertionFailure() << "qemu-img info of " << copy << ":\n" << info.out;
  }
  CommandResult check = Run({"qemu-img", "check", "-f", "vmdk", copy});
  if (check.exit_code != 0 || check.out.find("No errors were found") == std::string::npos) {
    return ::testing::AssertionFailure() << "qemu-img check " << copy << " exited "
                                         << check.exit_code << ": " << check.out << check.err;
  }
  CommandResult compare = Run({"qemu-img", "compare", "-f", "vmdk", "-F", "vmdk", source, copy});
  if (compare.exit_code != 0) {
    return ::testing::AssertionFailure() << "qemu-img compare " << source << " " << copy
                                         << " exited " << compare.exit_code << ": "
                                         << compare.out << compare.err;
  }
  return ::testing::AssertionSuccess();
}

}  // namespace integration
