// ptrace(2) for freezing a tree: seize, interrupt, wait for the stop,
// detach, and read seccomp filters of a stopped task.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "sys/status.h"

namespace ro::sys {

// PTRACE_SEIZE without options: the task keeps running until interrupted,
// and if the tracer dies the kernel detaches it (nothing is killed).
Status PtraceSeize(pid_t pid);

// How a seized task stopped after PTRACE_INTERRUPT.
struct PtraceStop {
  bool exited = false;  // it exited (or was killed) instead of stopping
  int pending_signal = 0;  // stopped to receive this signal: hand it back on detach
};

// PTRACE_INTERRUPT, then waits (only for this pid) until it is in a ptrace
// stop or gone, or `timeout_ms` passed (ETIMEDOUT: a task in an
// uninterruptible wait stops only once the wait ends).
Result<PtraceStop> PtraceInterruptAndWait(pid_t pid, int timeout_ms);

// PTRACE_DETACH, delivering `signal` (0 for none) as it resumes.
Status PtraceDetach(pid_t pid, int signal);

// The `index`th seccomp filter of a stopped tracee (0 = the oldest) as a
// struct sock_filter array, and its SECCOMP_FILTER_FLAG_* flags. ENOENT
// past the last one.
struct SeccompFilter {
  std::string program;
  uint64_t flags = 0;
};
Result<SeccompFilter> PtraceSeccompFilter(pid_t pid, unsigned long index);

}  // namespace ro::sys
