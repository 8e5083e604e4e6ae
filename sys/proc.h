// Reading /proc.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sys/status.h"
#include "sys/unique_fd.h"

namespace ro::sys {

// The calling process's pid in the PID namespace of the proc mount behind
// `proc_dir` (an fd of a /proc directory), read from its "self" link.
Result<pid_t> OuterPid(const UniqueFd& proc_dir);

struct ProcStat {
  pid_t pid = 0;
  std::string comm;
  char state = '?';
  pid_t ppid = 0;
  pid_t pgid = 0;
  pid_t sid = 0;
  int exit_code = 0;  // wait status of a zombie (field 52)
};

// Parses /proc/PID/stat text; the comm may hold spaces and parentheses.
Result<ProcStat> ParseProcStat(const std::string& text);

// The numbers of a "Key:\tv1\tv2" line of /proc/PID/status (NSpid, NSsid:
// one per PID namespace, outermost first); empty when the key is absent.
std::vector<long> StatusValues(const std::string& status, const std::string& key);
// The last of them: the value in the innermost PID namespace, or -1.
long StatusInnermost(const std::string& status, const std::string& key);
// The hexadecimal value of a "Key:\t<hex>" line of /proc/PID/status
// (signal and capability sets: SigBlk, SigCgt, CapEff...); nullopt when the
// key is absent or its value is not hexadecimal.
std::optional<uint64_t> StatusHex(const std::string& status, const std::string& key);

// The pids of /proc/PID/task/TID/children (space-separated decimal), in
// order; parsing stops at the first word that is not a pid.
std::vector<pid_t> ParsePidList(const std::string& text);
// The octal number of a "Key:\t0022" line (Umask); -1 when absent.
long StatusOctal(const std::string& status, const std::string& key);

// /proc/PID/fdinfo/N.
struct FdInfo {
  uint64_t pos = 0;
  uint32_t flags = 0;  // O_* of the open file description, O_CLOEXEC for the fd
  uint32_t mnt_id = 0;
  // Its "lock:" lines: each file lock the task holds through this fd, as
  // /proc/locks words it ("1: FLOCK  ADVISORY  WRITE 1234 00:2d:17 0 EOF";
  // the kind is POSIX, OFDLCK, FLOCK, ACCESS, LEASE or DELEG).
  std::vector<std::string> locks;
};
Result<FdInfo> ParseFdInfo(const std::string& text);

// Resource `resource` (RLIMIT_*) of /proc/PID/limits text: soft and hard
// limit, "unlimited" as RLIM_INFINITY. The kernel prints a header, then
// one line per resource in RLIMIT_* order, each a name padded to 25
// columns (names hold spaces), soft and hard limit, a unit
// (fs/proc/base.c, proc_pid_limits). nullopt when the line is missing or
// its numbers do not parse.
std::optional<std::pair<uint64_t, uint64_t>> ParseProcLimit(const std::string& text, int resource);

// A whole /proc file (small: status, stat, cmdline...), or an error naming it.
Result<std::string> ReadProcFile(const std::string& path);
// The target of a /proc symlink (fd/N, cwd, exe).
Result<std::string> ReadProcLink(const std::string& path);
// NUL-separated strings (cmdline, environ).
std::vector<std::string> SplitNul(const std::string& text);

}  // namespace ro::sys
