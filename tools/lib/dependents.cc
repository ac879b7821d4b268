// SPDX-License-Identifier: Apache-2.0
#include "tools/lib/dependents.h"

#include <algorithm>
#include <cerrno>

#include <nlohmann/json.hpp>

#include "fs/engine/clone_config.h"

namespace tools {
namespace {

using common::Error;
using common::Result;
using common::Status;
using Json = nlohmann::ordered_json;

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string RecordPath(const std::string& meta, const std::string& vm_id) {
  return meta + "/" + kDependentsDirName + "/" + vm_id + ".json";
}

Result<DependentRecord> ReadRecord(common::Storage& storage, const std::string& path) {
  BOOST_OUTCOME_TRY(file, storage.Open(path, common::OpenMode::kReadOnly));
  BOOST_OUTCOME_TRY(size, file->Size());
  if (size > (64 << 10)) return Error(EINVAL, "{}: too large for a dependent record", path);
  std::string text(size, '\0');
  BOOST_OUTCOME_TRYV(file->ReadExactAt(0, std::as_writable_bytes(std::span(text)), "record"));
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return Error(EINVAL, "{}: not a dependent record", path);
  DependentRecord r;
  for (auto [key, field] : {std::pair{"path", &r.path}, std::pair{"vm_id", &r.vm_id},
                            std::pair{"snapshot", &r.snapshot},
                            std::pair{"created_utc", &r.created_utc}}) {
    if (!j.contains(key) || !j[key].is_string()) {
      return Error(EINVAL, "{}: '{}' is missing or not a string", path, key);
    }
    *field = j[key].get<std::string>();
  }
  return r;
}

// What is wrong with a dependent, or "" when it is where its record says.
std::string CheckDependent(common::Storage& storage, const DependentRecord& r,
                           const std::string& parent_vm_id) {
  auto config = engine::LoadCloneConfig(storage, r.path);
  if (!config) {
    if (config.error().code() == ENOENT) return "missing: moved or deleted without clonectl";
    return config.error().message();
  }
  if (config.value().vm_id != r.vm_id) return "the directory now holds another VM";
  if (!config.value().parent || config.value().parent->vm_id != parent_vm_id) {
    return "no longer a clone of this VM";
  }
  return "";
}

}  // namespace

Result<std::unique_ptr<DependentsLock>> DependentsLock::Acquire(common::Storage& storage,
                                                                 const std::string& meta) {
  const std::string path = meta + "/dependents.lock";
  if (auto file = storage.CreateExclusive(path); !file && file.error().code() != EEXIST) {
    return file.error();
  }
  try {
    boost::interprocess::file_lock lock(path.c_str());
    lock.lock();
    return std::unique_ptr<DependentsLock>(new DependentsLock(std::move(lock)));
  } catch (const boost::interprocess::interprocess_exception& e) {
    int code = e.get_native_error() != 0 ? e.get_native_error() : EIO;
    return Error(code, "{}: cannot lock: {}", path, e.what());
  }
}

Status AddDependent(common::Storage& storage, const std::string& meta,
                    const DependentRecord& record) {
  const std::string dir = meta + "/" + kDependentsDirName;
  if (!storage.Stat(dir)) {
    BOOST_OUTCOME_TRYV(storage.CreateDirectory(dir));
    BOOST_OUTCOME_TRYV(storage.SyncDirectory(meta));
  }
  Json j{{"path", record.path},
         {"vm_id", record.vm_id},
         {"snapshot", record.snapshot},
         {"created_utc", record.created_utc}};
  return engine::WriteFileAtomically(storage, RecordPath(meta, record.vm_id), j.dump(2) + "\n");
}

Status RemoveDependent(common::Storage& storage, const std::string& meta,
                       const std::string& vm_id) {
  BOOST_OUTCOME_TRYV(storage.Remove(RecordPath(meta, vm_id)));
  return storage.SyncDirectory(meta + "/" + kDependentsDirName);
}

Result<std::vector<Dependent>> ListDependents(common::Storage& storage, const std::string& meta,
                                              const std::string& vm_id) {
  std::vector<Dependent> out;
  const std::string dir = meta + "/" + kDependentsDirName;
  auto names = storage.ListDirectory(dir);
  if (!names) {
    if (names.error().code() == ENOENT) return out;
    return names.error();
  }
  for (const std::string& name : names.value()) {
    if (!EndsWith(name, ".json")) continue;  // temporary files of an interrupted write
    BOOST_OUTCOME_TRY(record, ReadRecord(storage, dir + "/" + name));
    Dependent d{record, CheckDependent(storage, record, vm_id)};
    out.push_back(std::move(d));
  }
  std::sort(out.begin(), out.end(),
            [](const Dependent& a, const Dependent& b) { return a.record.path < b.record.path; });
  return out;
}

}  // namespace tools
