// The subcommands, each a function from parsed arguments to an exit code.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace ro {

struct RestoreArgs {
  std::string images;
  bool dry_run = false;
  bool ignore_unsupported = false;
  std::string autofs_orphans = "fail";  // or "catatonic"
  bool detach = false;
  std::string pidfile;
  std::string stats_file;
  double timeout_s = 60;
  std::string root;                    // --root
  std::vector<std::string> externals;  // --external KEY=PATH or mnt[KEY]:PATH (CRIU's spelling)
  std::vector<std::string> ext_mount_maps;  // --ext-mount-map auto, or KEY:PATH
  std::vector<std::string> action_scripts;
  std::string fault;  // --fault NAME[:N], or RESTORE_ORCH_FAULT
  std::string fault_syscall;  // --fault-syscall SYSCALL:ERRNO[:N][@PID]
};

struct DumpArgs {
  pid_t tree = 0;
  std::string images;
  bool leave_running = false;
  std::string stats_file;
  double freeze_timeout_s = 10;
};

int CmdRestore(const RestoreArgs& args);
int CmdDump(const DumpArgs& args);
int CmdImageDecode(const std::string& file, bool pretty);
int CmdImageEncode(const std::string& input, const std::string& output);
int CmdImageShow(const std::string& dir);
int CmdCheck();
int CmdListFaults();
int CmdVerify(const RestoreArgs& args, pid_t root);

}  // namespace ro
