// Reading /proc.
#pragma once

#include <sys/types.h>

#include <string>

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

}  // namespace ro::sys
