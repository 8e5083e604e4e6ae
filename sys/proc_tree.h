// The tree's reader of /proc: one task's identity and state, and its
// children. The dump, the freeze and `verify` all read tasks through it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "sys/proc.h"
#include "sys/status.h"

namespace ro::sys {

// A task as /proc/PID/status and /proc/PID/stat show it. Pids are the
// innermost values (the task's own PID namespace); `nspid` has them all,
// outermost first.
struct TaskInfo {
  pid_t outer = 0;  // as the reader sees it
  pid_t pid = 0;
  pid_t pgid = 0;
  pid_t sid = 0;
  std::vector<long> nspid;
  std::string comm;
  char state = '?';      // R, S, D, T, t, Z, X...
  pid_t outer_ppid = 0;  // the parent as the reader sees it
  pid_t outer_pgid = 0;  // the process group as the reader sees it
  pid_t outer_sid = 0;   // the session as the reader sees it (0: led outside its PID namespace)
  int exit_code = 0;     // a zombie's wait status
  long threads = 0;
  std::vector<long> uids, gids;  // real, effective, saved, filesystem
  uint64_t blocked = 0;          // SigBlk
  long seccomp = 0;              // 0 disabled, 1 strict, 2 filter
  long tracer = 0;               // TracerPid
  std::string status;            // the whole status text, for what is not parsed here
};

// Reads /proc/OUTER/status and /proc/OUTER/stat. Errors name the file (a
// task that is gone: ENOENT/ESRCH).
Result<TaskInfo> ReadTask(pid_t outer);

// The children of every thread of OUTER (/proc/OUTER/task/*/children), as
// the reader sees them. Errors name what could not be read.
Result<std::vector<pid_t>> ReadChildren(pid_t outer);

// The thread ids of OUTER's thread group as the reader sees them
// (/proc/OUTER/task), OUTER itself first, the others in increasing order.
// A task that is gone: ENOENT from opendir.
Result<std::vector<pid_t>> ReadThreadIds(pid_t outer);

}  // namespace ro::sys
