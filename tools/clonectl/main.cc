// SPDX-License-Identifier: Apache-2.0
// clonectl: snapshot points, clones, VM and VMDK inspection. Parses arguments and dispatches.

#include <CLI/CLI.hpp>

#include <cstdio>

#include "tools/clonectl/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"clonectl: linked and full clones of VMware virtual disks"};
  app.require_subcommand(1);

  clonectl::CloneArgs clone;
  CLI::App* clone_cmd = app.add_subcommand(
      "clone",
      "Make a clone of a VMDK or a VM directory: linked (instant, whatever the disk size) or "
      "full (independent monolithicSparse copies)");
  clone_cmd->add_option("SRC", clone.source, "a VM directory with one .vmx, a .vmx, or a plain .vmdk (any subformat or chain); with --full also a linked clone")
      ->required();
  clone_cmd->add_option("DEST", clone.destination, "the clone directory to create (must not exist)")
      ->required();
  CLI::Option* linked_flag = clone_cmd->add_flag(
      "--linked", clone.linked, "share SRC's disks read-only and keep only changes (the default)");
  clone_cmd
      ->add_flag("--full", clone.full,
                 "write independent copies of SRC's disks (monolithicSparse VMDKs that need "
                 "neither clonefs nor SRC), with a progress bar; SRC may also be a linked "
                 "clone that is not mounted")
      ->excludes(linked_flag);
  clone_cmd->add_option("--name", clone.display_name, "display name (default: DEST's name)");
  clone_cmd->add_option("--snapshot", clone.snapshot,
                        "clone this snapshot point of a managed VM (default: take a new one)");

  clonectl::SnapshotArgs snapshot;
  CLI::App* snapshot_cmd = app.add_subcommand(
      "snapshot", "Freeze a VM's current state as a named snapshot point (the VM must not be mounted)");
  snapshot_cmd->add_option("VM", snapshot.vm, "the VM directory or its .vmx")->required();
  snapshot_cmd->add_option("NAME", snapshot.name, "the snapshot point's name")->required();

  clonectl::SnapshotsArgs snapshots;
  CLI::App* snapshots_cmd = app.add_subcommand(
      "snapshots", "List a VM's snapshot points: name, time, size and the clones based on each");
  snapshots_cmd->add_option("VM", snapshots.vm, "the VM directory or its .vmx")->required();
  snapshots_cmd->add_flag("--json", snapshots.json, "print JSON instead of text");

  clonectl::RevertArgs revert;
  CLI::App* revert_cmd = app.add_subcommand(
      "revert", "Discard a VM's changes since a snapshot point (the VM must not be mounted)");
  revert_cmd->add_option("VM", revert.vm, "the VM directory or its .vmx")->required();
  revert_cmd->add_option("NAME", revert.name, "the snapshot point to go back to")->required();

  clonectl::DeleteArgs del;
  CLI::App* delete_cmd = app.add_subcommand(
      "delete", "Delete a VM, or one of its snapshot points; refused while clones depend on it");
  delete_cmd->add_option("VM", del.vm, "the VM directory or its .vmx")->required();
  delete_cmd->add_option("--snapshot", del.snapshot,
                         "delete this snapshot point only (its changes merge into the next layer)");
  delete_cmd->add_flag("--forget-missing", del.forget_missing,
                       "drop the records of dependent clones that were moved or deleted "
                       "without clonectl");

  clonectl::InfoArgs info;
  CLI::App* info_cmd = app.add_subcommand(
      "info", "Show a VM's disks and their layer chains, parent, snapshot points, dependents, "
              "space used and whether it is mounted");
  info_cmd->add_option("VM", info.clone, "the VM directory or its .vmx")->required();
  info_cmd->add_flag("--json", info.json, "print JSON instead of text");

  clonectl::TreeArgs tree;
  CLI::App* tree_cmd = app.add_subcommand(
      "tree", "Show the clone/snapshot tree: the VM's snapshot points, the clones made from "
              "each (recursively), and where its current state is");
  tree_cmd->add_option("VM", tree.vm, "the VM directory or its .vmx")->required();
  tree_cmd->add_flag("--ascii", tree.ascii, "draw with ASCII characters instead of box drawing");

  clonectl::VerifyArgs verify;
  CLI::App* verify_cmd = app.add_subcommand(
      "verify", "Check a VM's base fingerprints and every layer's headers (works while it is "
                "mounted); exit status 1 if anything is wrong");
  verify_cmd->add_option("VM", verify.vm, "the VM directory or its .vmx")->required();
  verify_cmd->add_flag("--full", verify.full,
                       "also read every block of every snapshot layer and compare it with its "
                       "checksum, naming each bad block");
  verify_cmd->add_flag("--json", verify.json, "print JSON instead of text");

  clonectl::InspectArgs inspect;
  CLI::App* inspect_cmd = app.add_subcommand(
      "inspect", "Show a VMDK's subformat, extents, capacity, CID chain and allocation");
  inspect_cmd->add_option("DISK", inspect.disk, "the .vmdk to inspect (any subformat or chain)")
      ->required();
  inspect_cmd->add_flag("--json", inspect.json, "print JSON instead of text");

  clonectl::ExportArgs exp;
  CLI::App* export_cmd = app.add_subcommand(
      "export", "Write the whole virtual disk as a sparse raw file (holes skipped)");
  export_cmd->add_option("DISK", exp.disk, "the .vmdk to export (any subformat or chain)")
      ->required();
  export_cmd->add_option("OUT", exp.out, "the raw file to create (must not exist)")->required();

  // CLI11 reports an unknown command word as "a subcommand is required"; name it instead.
  auto is_command = [&](const char* word) {
    for (const CLI::App* sub : app.get_subcommands({})) {
      if (sub->check_name(word)) return true;
    }
    return false;
  };
  if (argc > 1 && argv[1][0] != '-' && !is_command(argv[1])) {
    std::fprintf(stderr, "clonectl: unknown command '%s' (see clonectl --help)\n", argv[1]);
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // One line, as every clonectl error; --help shows the usage.
    std::fprintf(stderr, "clonectl: %s (see clonectl --help)\n", e.what());
    return 2;
  }

  if (clone_cmd->parsed()) return clonectl::RunClone(clone);
  if (snapshot_cmd->parsed()) return clonectl::RunSnapshot(snapshot);
  if (snapshots_cmd->parsed()) return clonectl::RunSnapshots(snapshots);
  if (revert_cmd->parsed()) return clonectl::RunRevert(revert);
  if (delete_cmd->parsed()) return clonectl::RunDelete(del);
  if (info_cmd->parsed()) return clonectl::RunInfo(info);
  if (tree_cmd->parsed()) return clonectl::RunTree(tree);
  if (verify_cmd->parsed()) return clonectl::RunVerify(verify);
  if (inspect_cmd->parsed()) return clonectl::RunInspect(inspect);
  if (export_cmd->parsed()) return clonectl::RunExport(exp);
  return clonectl::Fail("no command given");
}
