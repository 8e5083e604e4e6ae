// clone3(2), the one syscall glibc 2.36 does not wrap.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>

#include "sys/status.h"
#include "sys/unique_fd.h"

namespace ro::sys {

struct CloneSpec {
  uint64_t flags = 0;             // CLONE_NEWPID, CLONE_NEWNS, ... (not CLONE_PIDFD)
  std::optional<pid_t> pid;       // set_tid for the innermost PID namespace
  bool want_pidfd = true;
};

struct Cloned {
  pid_t pid = 0;   // 0 in the child
  UniqueFd pidfd;  // parent only, when asked for
};

// Like fork(): returns twice. The child gets SIGCHLD as exit signal.
// Errors: "clone3(flags 0x..., set_tid N)" with errno (EEXIST: pid taken,
// EINVAL: set_tid not usable here, ENOSYS: no clone3).
Result<Cloned> Clone3(const CloneSpec& spec);

}  // namespace ro::sys
