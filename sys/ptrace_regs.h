// ptrace(2) for handing a restored task its registers: seize with options,
// wait for a stop, run to the next syscall stop, and set general registers,
// the extended FPU state and the signal mask of a stopped tracee.
#pragma once

#include <sys/types.h>
#include <sys/user.h>

#include <cstdint>
#include <string>

#include "sys/ptrace_api.h"
#include "sys/status.h"

namespace ro::sys {

// PTRACE_SEIZE with PTRACE_O_* `options` (e.g. PTRACE_O_EXITKILL, which
// kills the tracee if the tracer dies, PTRACE_O_SUSPEND_SECCOMP).
Status PtraceSeizeWith(pid_t pid, unsigned long options);

// How a tracee was found by PtraceWaitStop.
struct TraceeStop {
  bool exited = false;  // it exited or was killed (`status` is its wait status)
  int status = 0;
  int stop_signal = 0;  // the stop's signal (SIGTRAP for a breakpoint or a syscall stop)
  int event = 0;        // PTRACE_EVENT_* of an event stop (a clone, a seized task's first stop), 0 otherwise
};

// Waits for `pid` (a tracee of the caller) to stop or exit, until
// `deadline_ns` (CLOCK_MONOTONIC; ETIMEDOUT after it).
Result<TraceeStop> PtraceWaitStop(pid_t pid, uint64_t deadline_ns);

// The next event of any child or tracee of the caller (waitpid(-1)), until
// `deadline_ns` (ETIMEDOUT after it; ECHILD when there is none left).
struct TraceeEvent {
  pid_t pid = 0;
  TraceeStop stop;
};
Result<TraceeEvent> PtraceWaitAny(uint64_t deadline_ns);

// PTRACE_SYSCALL: resumes the tracee (delivering `signal`, 0 for none)
// until its next syscall entry or exit.
Status PtraceSyscall(pid_t pid, int signal);

// PtraceGetRegs, PtraceSetRegs, PtraceSetXstate and PtraceSetSigmask (with
// the dump's getters) are in sys/ptrace_api.h.

}  // namespace ro::sys
