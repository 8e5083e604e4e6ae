#include "orchestrator/cli.h"

#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "orchestrator/commands.h"
#include "sys/log.h"
#include "sys/unique_fd.h"

#ifndef RESTORE_ORCH_VERSION
#define RESTORE_ORCH_VERSION "0.0.0"
#endif

namespace ro {
namespace {

void AddRestoreOptions(CLI::App& app, RestoreArgs& args) {
  app.add_option("--images,-D", args.images, "image directory to restore from")->check(CLI::ExistingDirectory);
  app.add_flag("--dry-run", args.dry_run, "validate the images, print the restore plan stage by stage, create nothing");
  app.add_flag("--ignore-unsupported", args.ignore_unsupported,
               "restore even though the directory holds image kinds restore-orch does not restore");
  app.add_option("--action-script", args.action_scripts,
                 "run FILE at pre-restore, post-setup-namespaces, post-restore, pre-resume and post-resume, with "
                 "RESTORE_ORCH_ACTION and RESTORE_ORCH_ROOT_PID (and CRIU's CRTOOLS_SCRIPT_ACTION, CRTOOLS_INIT_PID) "
                 "set; repeatable; a failing script fails the restore")
      ->check(CLI::ExistingFile);
  app.add_option("--fault", args.fault,
                 "NAME[:N]: make the Nth pass (default 1) through fault point NAME fail with EIO, as if its operation had "
                 "(--list-faults lists them; RESTORE_ORCH_FAULT does the same)");
  app.add_option("--fault-syscall", args.fault_syscall,
                 "SYSCALL:ERRNO[:N][@PID]: make the Nth call (default 1) of SYSCALL in the restored tasks (or in the task "
                 "with image pid PID) fail with ERRNO (a name like EIO, or a number), through a supervised seccomp filter; "
                 "for fault-injection runs: the filter stays with the tasks");
  app.add_option("--autofs-orphans", args.autofs_orphans,
                 "an AutoFS mount whose master is not in the tree (or holds no pipe at the dumped fd): 'fail' the "
                 "restore, or leave it 'catatonic' with a warning")
      ->check(CLI::IsMember({"fail", "catatonic"}))
      ->capture_default_str();
  app.add_flag("-d,--detach", args.detach,
               "return once every task has resumed and print the root task's pid (as the caller sees it)");
  app.add_option("--pidfile", args.pidfile, "write the root task's pid (as the caller sees it) to FILE");
  app.add_option("--timeout", args.timeout_s, "give up and roll back if the restore has not resumed every task after SEC seconds")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--stats", args.stats_file, "write per-stage wall times and counts as JSON to FILE");
  app.add_option("--root,-r", args.root,
                 "directory of the caller's tree to bind as the tree's root mount (CRIU never dumps the root mount: its "
                 "dumps need this)")
      ->check(CLI::ExistingDirectory);
  app.add_option("--external", args.externals,
                 "KEY=PATH or mnt[KEY]:PATH (CRIU's spelling): bind PATH of the caller's tree for the external mount with "
                 "that key (its ext_key, or its mountpoint); repeatable. External mounts come only from what the caller names: "
                 "one without a source fails the restore before anything is created");
  app.add_option("--ext-mount-map", args.ext_mount_maps,
                 "'auto': bind each external mount without --external from the caller's mount of the same device that holds "
                 "its root (what CRIU's --ext-mount-map auto does); or KEY:PATH, the same as --external KEY=PATH; repeatable");
}

}  // namespace

int RunCli(int argc, char** argv) {
  CLI::App app{
      "restore-orch: restores a checkpointed Linux process tree (PID and mount namespaces, mounts with AutoFS and "
      "propagation, tasks with exact PIDs, sessions and groups, pipes and fds) from a CRIU-layout image directory.",
      "restore-orch"};
  app.set_version_flag("--version", std::string("restore-orch ") + RESTORE_ORCH_VERSION);
  bool list_faults = false;
  app.add_flag("--list-faults", list_faults, "print every fault point --fault can name, with what it breaks");
  int verbosity = 0;
  std::string log_file;
  app.add_flag("-v,--verbose", verbosity, "more log output on stderr: -v info, -vv debug");
  app.add_option("--log-file", log_file, "append log lines to FILE instead of stderr");
  app.require_subcommand(0, 1);
  app.fallthrough();

  RestoreArgs top_restore;
  AddRestoreOptions(app, top_restore);

  RestoreArgs sub_restore;
  CLI::App* restore = app.add_subcommand("restore", "restore a tree from --images DIR (the default command)");
  AddRestoreOptions(*restore, sub_restore);
  restore->fallthrough();

  CLI::App* image = app.add_subcommand("image", "read and write single image files and directories");
  image->require_subcommand(1);
  std::string decode_file;
  bool pretty = false;
  CLI::App* decode = image->add_subcommand("decode", "print an image file as JSON (crit's layout, protobuf's JSON mapping)");
  decode->add_option("FILE", decode_file, "image file")->required();
  decode->add_flag("--pretty", pretty, "indent the JSON");
  std::string encode_in = "-", encode_out = "-";
  CLI::App* encode = image->add_subcommand("encode", "turn JSON (as decode prints it) into a binary image file");
  encode->add_option("-i,--input", encode_in, "JSON file (default: standard input)");
  encode->add_option("-o,--output", encode_out, "image file to write (default: standard output)");
  std::string show_dir;
  CLI::App* show = image->add_subcommand("show", "summarise an image directory: tasks, fds, mounts, AutoFS");
  show->add_option("DIR", show_dir, "image directory")->required()->check(CLI::ExistingDirectory);

  DumpArgs dump_args;
  CLI::App* dump = app.add_subcommand(
      "dump", "checkpoint a live process tree into CRIU-layout images: freeze it, read it, write DIR, then kill it (or let it run on)");
  dump->add_option("--tree,-t", dump_args.tree, "the tree's root task, as this process sees it (the init of the tree's PID namespace when it has one)")
      ->required()
      ->check(CLI::Range(1, 4194304));
  dump->add_option("--images,-D", dump_args.images, "directory to write the images to (made if absent; must hold no images)")->required();
  dump->add_flag("--leave-running", dump_args.leave_running, "let the tree run on after the dump instead of killing it");
  dump->add_option("--freeze-timeout", dump_args.freeze_timeout_s,
                   "give up (exit 75, the tree released) when a task has not stopped after SEC seconds: it is in an "
                   "uninterruptible wait")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  dump->add_option("--stats", dump_args.stats_file,
                   "write per-phase times (freeze, collect, check, write, finish), the tree's downtime and counts as JSON to FILE");

  CLI::App* check = app.add_subcommand("check", "probe the kernel for every feature a restore needs; exit 0 if all are there");

  RestoreArgs verify_args;
  int verify_pid = 0;
  CLI::App* verify = app.add_subcommand(
      "verify", "compare a live tree (process tree, fds, mount namespace) with its images; print each difference, exit 0 when equal");
  verify->add_option("--images,-D", verify_args.images, "image directory")->required()->check(CLI::ExistingDirectory);
  verify->add_option("--pid", verify_pid, "the tree's root task, as this process sees it")->required()->check(CLI::Range(1, 4194304));
  verify->add_flag("--ignore-unsupported", verify_args.ignore_unsupported, "ignore image kinds restore-orch does not restore");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "restore-orch: %s\nrun 'restore-orch --help' for usage\n", e.what());
    return kExitUsage;
  }

  log::SetLevel(verbosity >= 2 ? log::Level::kDebug : verbosity == 1 ? log::Level::kInfo : log::Level::kWarn);
  UniqueFd log_fd;
  if (!log_file.empty()) {
    log_fd.reset(::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (!log_fd) {
      std::fprintf(stderr, "restore-orch: open log file %s: %m\n", log_file.c_str());
      return kExitFailure;
    }
    log::SetSink(log_fd.get());
  }

  if (list_faults) return CmdListFaults();
  if (*decode) return CmdImageDecode(decode_file, pretty);
  if (*encode) return CmdImageEncode(encode_in, encode_out);
  if (*show) return CmdImageShow(show_dir);
  if (*check) return CmdCheck();
  if (*dump) return CmdDump(dump_args);
  if (*verify) return CmdVerify(verify_args, verify_pid);
  const RestoreArgs& args = *restore ? sub_restore : top_restore;
  if (args.images.empty()) {
    std::fprintf(stderr, "restore-orch: --images DIR is required\nrun 'restore-orch --help' for usage\n");
    return kExitUsage;
  }
  return CmdRestore(args);
}

}  // namespace ro
