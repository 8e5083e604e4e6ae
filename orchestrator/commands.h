// The subcommands, each a function from parsed arguments to an exit code.
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

namespace ro {

struct RestoreArgs {
  std::string images;
  bool dry_run = false;
  bool ignore_unsupported = false;
  std::string autofs_orphans = "fail";  // or "catatonic"
  std::string tmpfs_limit;              // --tmpfs-limit SIZE: cap on each tmpfs's unpacked contents
  bool allow_unlimited_tmpfs = false;   // --allow-unlimited-tmpfs
  bool detach = false;
  std::string pidfile;
  std::string stats_file;
  double timeout_s = 60;
  double kill_after_s = 10;  // after a forwarded SIGINT/SIGTERM, the tree is killed if still alive
  std::string root;                    // --root
  std::vector<std::string> externals;  // --external KEY=PATH or mnt[KEY]:PATH (CRIU's spelling)
  std::vector<std::string> ext_mount_maps;  // --ext-mount-map auto, or KEY:PATH
  bool external_masters = false;  // --enable-external-masters: slaves of groups outside the images stay slaves of the caller's
  std::vector<std::string> action_scripts;
  std::string fault;  // --fault NAME[:N], or RESTORE_ORCH_FAULT
  std::string fault_syscall;  // --fault-syscall SYSCALL:ERRNO[:N][@PID]
  bool check_pages = false;   // --check-pages
  bool shell_job = false;     // -j/--shell-job: tasks in a session outside the tree stay in restore-orch's
  bool quiet = false;         // -q/--quiet: no progress line
  bool progress = false;      // --progress: a progress line also when stderr is not a terminal
};

struct DumpArgs {
  pid_t tree = 0;
  std::string images;
  bool leave_running = false;
  std::string stats_file;
  double freeze_timeout_s = 10;
  bool dry_run = false;  // freeze, read, check, release: write nothing, print what would be written
  std::vector<std::string> action_scripts;  // run at pre-dump and post-dump
  bool shell_job = false;  // -j/--shell-job: a tree in a session or group led from outside it may be dumped
  bool quiet = false;      // -q/--quiet: no progress line
  bool progress = false;   // --progress: a progress line also when stderr is not a terminal
};

struct CheckArgs {
  std::vector<std::string> features;  // --feature NAME (ours or CRIU's); empty: all
  bool all = false;                   // --all (CRIU's): every feature, as without --feature
  bool json = false;
};

struct VerifyArgs {
  std::string images;
  pid_t pid = 0;
  bool ignore_unsupported = false;
};

int CmdRestore(const RestoreArgs& args);
int CmdDump(const DumpArgs& args);
// `output` "-" (or empty) is standard output.
int CmdImageDecode(const std::string& file, bool pretty, const std::string& output);
int CmdImageEncode(const std::string& input, const std::string& output);
int CmdImageShow(const std::string& dir);
int CmdCheck(const CheckArgs& args);
int CmdListFaults();
int CmdVerify(const VerifyArgs& args);

// The features `check` probes, as restore-orch names them and as CRIU does
// (empty where CRIU checks nothing of the same meaning).
std::vector<std::pair<std::string, std::string>> CheckFeatureNames();

}  // namespace ro
