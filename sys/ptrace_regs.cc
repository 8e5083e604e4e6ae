#include "sys/ptrace_regs.h"

#include <elf.h>
#include <linux/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
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

Status PtraceCont(pid_t pid, int signal) {
  if (Ptrace(PTRACE_CONT, pid, 0, static_cast<unsigned long>(signal)) != 0) return SysError("ptrace(PTRACE_CONT, " + Num(pid) + ")");
  return {};
}

Result<user_regs_struct> PtraceGetRegs(pid_t pid) {
  user_regs_struct regs{};
  iovec iov{&regs, sizeof(regs)};
  if (Ptrace(PTRACE_GETREGSET, pid, NT_PRSTATUS, reinterpret_cast<unsigned long>(&iov)) != 0) {
    return SysError("ptrace(PTRACE_GETREGSET, " + Num(pid) + ", NT_PRSTATUS)");
  }
  return regs;
}

Status PtraceSetRegs(pid_t pid, const user_regs_struct& regs) {
  user_regs_struct copy = regs;
  iovec iov{&copy, sizeof(copy)};
  if (Ptrace(PTRACE_SETREGSET, pid, NT_PRSTATUS, reinterpret_cast<unsigned long>(&iov)) != 0) {
    return SysError("ptrace(PTRACE_SETREGSET, " + Num(pid) + ", NT_PRSTATUS)");
  }
  return {};
}

Status PtraceSetXstate(pid_t pid, const std::string& xstate) {
  std::string copy = xstate;
  iovec iov{copy.data(), copy.size()};
  if (Ptrace(PTRACE_SETREGSET, pid, NT_X86_XSTATE, reinterpret_cast<unsigned long>(&iov)) != 0) {
    return SysError("ptrace(PTRACE_SETREGSET, " + Num(pid) + ", NT_X86_XSTATE, " + Num(static_cast<long>(xstate.size())) + " bytes)");
  }
  return {};
}

Status PtraceSetSigmask(pid_t pid, uint64_t mask) {
  if (Ptrace(PTRACE_SETSIGMASK, pid, sizeof(mask), reinterpret_cast<unsigned long>(&mask)) != 0) {
    return SysError("ptrace(PTRACE_SETSIGMASK, " + Num(pid) + ")");
  }
  return {};
}

}  // namespace ro::sys
