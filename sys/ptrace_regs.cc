#include "sys/ptrace_regs.h"

#include <linux/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sched.h>

#include "sys/futex.h"

namespace ro::sys {
namespace {

long Ptrace(long request, pid_t pid, unsigned long addr, unsigned long data) {
  return ::syscall(SYS_ptrace, request, pid, addr, data);
}

std::string Num(long v) { return std::to_string(v); }

}  // namespace

Status PtraceSeizeWith(pid_t pid, unsigned long options) {
  if (Ptrace(PTRACE_SEIZE, pid, 0, options) != 0) return SysError("ptrace(PTRACE_SEIZE, " + Num(pid) + ", options " + Num(static_cast<long>(options)) + ")");
  return {};
}

namespace {

// waitpid(pid) (-1: any) until an event or the deadline.
Result<TraceeEvent> Wait(pid_t pid, uint64_t deadline_ns) {
  for (int polls = 0;; ++polls) {
    int status = 0;
    pid_t got = ::waitpid(pid, &status, __WALL | WNOHANG);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return SysError("waitpid(" + Num(pid) + ")");
    if (got == 0) {
      if (MonotonicNs() >= deadline_ns) return SysError("waiting for task " + Num(pid) + " to stop", ETIMEDOUT);
      if (polls < 64) {
        ::sched_yield();
      } else {
        ::usleep(200);
      }
      continue;
    }
    TraceeEvent ev;
    ev.pid = got;
    ev.stop.status = status;
    if (WIFEXITED(status) || WIFSIGNALED(status)) {
      ev.stop.exited = true;
      return ev;
    }
    if (!WIFSTOPPED(status)) continue;
    ev.stop.stop_signal = WSTOPSIG(status) & 0x7f;
    ev.stop.event = status >> 16;
    return ev;
  }
}

}  // namespace

Result<TraceeStop> PtraceWaitStop(pid_t pid, uint64_t deadline_ns) {
  RO_ASSIGN_OR_RETURN(TraceeEvent ev, Wait(pid, deadline_ns));
  return ev.stop;
}

Result<TraceeEvent> PtraceWaitAny(uint64_t deadline_ns) { return Wait(-1, deadline_ns); }

Status PtraceSyscall(pid_t pid, int signal) {
  if (Ptrace(PTRACE_SYSCALL, pid, 0, static_cast<unsigned long>(signal)) != 0) return SysError("ptrace(PTRACE_SYSCALL, " + Num(pid) + ")");
  return {};
}

}  // namespace ro::sys
