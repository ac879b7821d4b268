// SPDX-License-Identifier: Apache-2.0
// clonefs VM MOUNTPOINT [-f] [-o ro,allow_other,...]: mounts a linked clone (or a plain
// VMDK, read-only) as a directory; mount(8) runs it the same way, through mount.fuse3, for
// type fuse.clonefs. See docs/daemon.md.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "common/mount_table.h"
#include "common/storage.h"
#include "fs/engine/mounted_vm.h"
#include "fs/fuse/clonefs_fs.h"
#include "fs/fuse/mount_options.h"
#include "fs/fuse/startup_report.h"

namespace {

namespace fs = std::filesystem;

std::string DeadMountError(const std::string& mountpoint) {
  return fmt::format("clonefs: {}: a dead FUSE mount is still there (its daemon died); "
                     "run fusermount3 -u {}",
                     mountpoint, mountpoint);
}

// A dead FUSE mount (its daemon was killed) fails requests with ENOTCONN; say what to do.
// statfs is asked first because it always reaches the daemon, while stat of a mount's
// root is answered from the kernel's attribute cache for up to its timeout after the
// daemon died (and the mount would then pass for a live clonefs mount).
std::string CheckMountpoint(const std::string& mountpoint) {
  struct statfs fs_stat {};
  if (statfs(mountpoint.c_str(), &fs_stat) != 0 && errno == ENOTCONN) {
    return DeadMountError(mountpoint);
  }
  struct stat st {};
  if (stat(mountpoint.c_str(), &st) != 0) {
    int err = errno;
    if (err == ENOTCONN) return DeadMountError(mountpoint);
    return fmt::format("clonefs: {}: {}", mountpoint, std::strerror(err));
  }
  if (!S_ISDIR(st.st_mode)) return fmt::format("clonefs: {}: not a directory", mountpoint);
  if (common::MountedFileSystemType(mountpoint) == "fuse.clonefs") {
    return fmt::format("clonefs: {}: a clonefs mount is already there", mountpoint);
  }
  return "";
}

// The mount's source as /proc/self/mountinfo shows it: the VM path as given, made
// canonical (absolute, symlinks resolved), which is how mount(8) resolves an fstab line's
// source when it asks whether that line is mounted already (`mount -a` run twice). It may
// contain commas; libfuse takes "\\," as a literal one.
std::string FsName(const std::string& vm_path) {
  std::error_code error;
  fs::path source = fs::canonical(vm_path, error);
  if (error) source = fs::absolute(vm_path).lexically_normal();
  std::string fsname;
  for (char c : source.string()) {
    if (c == ',' || c == '\\') fsname += '\\';
    fsname += c;
  }
  return fsname;
}

void SetUpLogging(bool foreground, const engine::MountedVm& vm) {
  std::shared_ptr<spdlog::logger> logger;
  if (foreground) {
    logger = spdlog::stderr_color_mt("clonefs");
  } else if (!vm.vm_dir().empty()) {
    // The daemon has no terminal: it logs beside the clone's metadata.
    try {
      logger = spdlog::basic_logger_mt(
          "clonefs", vm.vm_dir() + "/" + engine::MountedVm::hidden_name() + "/daemon.log");
    } catch (const spdlog::spdlog_ex&) {
      logger = spdlog::null_logger_mt("clonefs");
    }
  } else {
    logger = spdlog::null_logger_mt("clonefs");
  }
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

int Serve(const std::string& vm_path, const std::string& mountpoint,
          const clonefs::MountOptions& options, bool foreground) {
  clonefs::StartupReport report(foreground);
  engine::MountRequest request{vm_path, mountpoint, options.read_only};
  auto opened = engine::MountedVm::Open(common::SharedParentStorage(), request);
  if (!opened) report.Fail("clonefs: " + opened.error().message());
  std::unique_ptr<engine::MountedVm> vm = std::move(opened).value();
  SetUpLogging(foreground, *vm);
  for (const auto& disk : vm->disks()) {
    if (disk.recovered_after_crash) {
      spdlog::warn("{}: not shut down cleanly; recovered to its last persisted state",
                   disk.name);
    }
  }

  int dir_fd = -1;
  if (!vm->vm_dir().empty()) {
    dir_fd = open(vm->vm_dir().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) {
      std::string error = fmt::format("clonefs: {}: {}", vm->vm_dir(), std::strerror(errno));
      (void)vm->Close();
      report.Fail(error);
    }
  }
  clonefs::ClonefsFs filesystem(*vm, dir_fd, clonefs::FsOptions{});

  std::string fuse_options = fmt::format("fsname={},subtype=clonefs,max_read={}", FsName(vm_path),
                                         clonefs::kMaxRequestBytes);
  if (options.read_only) fuse_options += ",ro";
  if (options.no_exec) fuse_options += ",noexec";
  if (options.allow_other) fuse_options += ",allow_other";
  if (options.default_permissions) fuse_options += ",default_permissions";
  const char* argv[] = {"clonefs", "-o", fuse_options.c_str()};
  fuse_args args = FUSE_ARGS_INIT(3, const_cast<char**>(argv));
  const fuse_lowlevel_ops& ops = clonefs::ClonefsFs::Ops();
  fuse_session* session = fuse_session_new(&args, &ops, sizeof ops, &filesystem);
  if (session == nullptr || fuse_set_signal_handlers(session) != 0 ||
      fuse_session_mount(session, mountpoint.c_str()) != 0) {
    (void)vm->Close();
    report.Fail(fmt::format("clonefs: {}: cannot mount (is /dev/fuse usable?)", mountpoint));
  }
  spdlog::info("mounted {} at {} (pid {}){}", vm_path, mountpoint, getpid(),
               options.read_only ? ", read-only" : "");
  report.Ready();

  filesystem.StartFlushTimer();
  fuse_loop_config* loop = fuse_loop_cfg_create();
  fuse_loop_cfg_set_clone_fd(loop, 1);
  fuse_loop_cfg_set_max_threads(loop, 16);
  int loop_rc = fuse_session_loop_mt(session, loop);
  fuse_loop_cfg_destroy(loop);
  filesystem.StopFlushTimer();

  fuse_session_unmount(session);
  fuse_remove_signal_handlers(session);
  fuse_session_destroy(session);
  common::Status closed = vm->Close();
  if (dir_fd >= 0) close(dir_fd);
  if (!closed.ok()) {
    spdlog::error("unmounted, but the final flush failed: {}", closed.message());
    return 1;
  }
  spdlog::info("unmounted {}; every write flushed", mountpoint);
  return loop_rc == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Mounts a linked clone as a directory of writable VMDKs.\n"
               "VM is a clone directory, its .vmx, or a plain .vmdk (mounted read-only).\n"
               "Also mounted by mount(8) and fstab as type fuse.clonefs.\n"
               "Unmount with fusermount3 -u MOUNTPOINT, umount MOUNTPOINT (as root) or\n"
               "SIGTERM: every write is flushed.",
               "clonefs"};
  std::string vm_path, mountpoint;
  bool foreground = false;
  std::vector<std::string> option_lists;
  app.add_option("VM", vm_path, "clone directory, .vmx or .vmdk")->required();
  app.add_option("MOUNTPOINT", mountpoint, "an existing directory")->required();
  app.add_flag("-f,--foreground", foreground, "stay in the foreground (log to stderr)");
  app.add_option("-o", option_lists,
                 "ro, rw, noexec, allow_other, default_permissions (comma-separated); "
                 "mount(8)'s generic options are accepted and ignored")
      ->allow_extra_args(false);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string what = e.what();
    std::fprintf(stderr, "clonefs: %s (see clonefs --help)\n", what.c_str());
    return 2;
  }
  auto options = clonefs::ParseMountOptions(option_lists);
  if (!options) {
    std::fprintf(stderr, "clonefs: %s\n", options.error().message().c_str());
    return 2;
  }
  if (clonefs::IsFuseDescriptorMountpoint(mountpoint)) {
    std::fprintf(stderr,
                 "clonefs: %s: mount.fuse3's drop_privileges option is not supported "
                 "(clonefs mounts by itself); remove it, and umount the mountpoint it "
                 "left behind\n",
                 mountpoint.c_str());
    return 2;
  }
  mountpoint = fs::absolute(mountpoint).lexically_normal().string();
  if (mountpoint.size() > 1 && mountpoint.back() == '/') mountpoint.pop_back();
  if (std::string problem = CheckMountpoint(mountpoint); !problem.empty()) {
    std::fprintf(stderr, "%s\n", problem.c_str());
    return 1;
  }
  return Serve(vm_path, mountpoint, options.value(), foreground);
}
