// The files' reader of /proc: a task's whole fd table, each fd with what
// it points at, its inode, its open flags, position and mount. The dump and
// `verify` both read fd tables through it.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "sys/status.h"

namespace ro::sys {

struct FdEntry {
  int fd = 0;
  std::string target;  // readlink of /proc/PID/fd/N ("pipe:[123]", "/a/b", "/a/b (deleted)")
  struct stat st {};   // stat of /proc/PID/fd/N: the object itself
  uint32_t flags = 0;  // O_* of the open file description, with O_CLOEXEC for the fd
  uint64_t pos = 0;
  uint32_t mnt_id = 0;
  std::vector<std::string> locks;  // file locks held through it (FdInfo::locks)
};

// Every fd of OUTER, sorted by number. An fd closed while it is read is
// left out; any other failure is an error naming the fd and the file.
Result<std::vector<FdEntry>> ReadFdTable(pid_t outer);

}  // namespace ro::sys
