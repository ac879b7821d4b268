// SPDX-License-Identifier: Apache-2.0
#pragma once

// The clonectl subcommands. Each returns the process exit status and reports errors as
// one line on stderr: "clonectl: FILE: cause".

#include <atomic>
#include <string>

namespace clonectl {

struct InspectArgs {
  std::string disk;
  bool json = false;
};
int RunInspect(const InspectArgs& args);

struct ExportArgs {
  std::string disk;
  std::string out;
};
int RunExport(const ExportArgs& args);

struct CloneArgs {
  std::string source;
  std::string destination;
  bool linked = false;  // the default when --full is not given either
  bool full = false;
  std::string display_name;
  std::string snapshot;
};
int RunClone(const CloneArgs& args);

struct InfoArgs {
  std::string clone;
  bool json = false;
};
int RunInfo(const InfoArgs& args);

struct SnapshotArgs {
  std::string vm;
  std::string name;
};
int RunSnapshot(const SnapshotArgs& args);

struct SnapshotsArgs {
  std::string vm;
  bool json = false;
};
int RunSnapshots(const SnapshotsArgs& args);

struct RevertArgs {
  std::string vm;
  std::string name;
};
int RunRevert(const RevertArgs& args);

struct DeleteArgs {
  std::string vm;
  std::string snapshot;
  bool forget_missing = false;
};
int RunDelete(const DeleteArgs& args);

struct VerifyArgs {
  std::string vm;
  bool full = false;
  bool json = false;
};
// Exit status 0 when every check passed, 1 when a problem was found or verify could not
// run (then with the one-line error).
int RunVerify(const VerifyArgs& args);

struct TreeArgs {
  std::string vm;
  bool ascii = false;
};
int RunTree(const TreeArgs& args);

// Prints "clonectl: <message>" and returns the failure exit status.
int Fail(const std::string& message);

// From now on SIGINT and SIGTERM set the returned flag instead of killing the process, so
// that a copy can stop cleanly and leave nothing behind.
const std::atomic<bool>* CatchInterrupts();

}  // namespace clonectl
