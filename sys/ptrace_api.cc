#include "sys/ptrace_api.h"

#include <linux/filter.h>
#include <linux/ptrace.h>
#include <signal.h>
#include <sys/wait.h>

// glibc's <sys/ptrace.h> clashes with <linux/ptrace.h>; the raw syscall
// needs neither's prototypes.
#include <sys/syscall.h>
#include <unistd.h>

#include <sched.h>

#include <chrono>
#include <vector>

namespace ro::sys {
namespace {

long Ptrace(long request, pid_t pid, unsigned long addr, unsigned long data) {
  return ::syscall(SYS_ptrace, request, pid, addr, data);
}

std::string Num(long v) { return std::to_string(v); }

}  // namespace

Status PtraceSeize(pid_t pid) {
  if (Ptrace(PTRACE_SEIZE, pid, 0, 0) != 0) return SysError("ptrace(PTRACE_SEIZE, " + Num(pid) + ")");
  return {};
}

Result<PtraceStop> PtraceInterruptAndWait(pid_t pid, int timeout_ms) {
  if (Ptrace(PTRACE_INTERRUPT, pid, 0, 0) != 0) return SysError("ptrace(PTRACE_INTERRUPT, " + Num(pid) + ")");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (int polls = 0;; ++polls) {
    int status = 0;
    pid_t got = ::waitpid(pid, &status, __WALL | WNOHANG);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return SysError("waitpid(" + Num(pid) + ")");
    if (got == 0) {
      if (std::chrono::steady_clock::now() >= deadline) {
        return SysError("waiting for task " + Num(pid) + " to stop", ETIMEDOUT);
      }
      // Most tasks stop within microseconds; a busy one within a tick.
      if (polls < 64) {
        ::sched_yield();
      } else {
        ::usleep(200);
      }
      continue;
    }
    PtraceStop stop;
    if (WIFEXITED(status) || WIFSIGNALED(status)) {
      stop.exited = true;
      return stop;
    }
    if (!WIFSTOPPED(status)) continue;
    int event = status >> 16;
    int sig = WSTOPSIG(status);
    // PTRACE_EVENT_STOP is the interrupt (or a group stop); anything else
    // is a signal on its way in: keep it for the detach.
    if (event != PTRACE_EVENT_STOP) stop.pending_signal = sig;
    return stop;
  }
}

Status PtraceDetach(pid_t pid, int signal) {
  if (Ptrace(PTRACE_DETACH, pid, 0, static_cast<unsigned long>(signal)) != 0) {
    return SysError("ptrace(PTRACE_DETACH, " + Num(pid) + ")");
  }
  return {};
}

Result<SeccompFilter> PtraceSeccompFilter(pid_t pid, unsigned long index) {
  long count = Ptrace(PTRACE_SECCOMP_GET_FILTER, pid, index, 0);
  if (count < 0) return SysError("ptrace(PTRACE_SECCOMP_GET_FILTER, " + Num(pid) + ", " + Num(static_cast<long>(index)) + ")");
  std::vector<sock_filter> program(static_cast<size_t>(count));
  if (Ptrace(PTRACE_SECCOMP_GET_FILTER, pid, index, reinterpret_cast<unsigned long>(program.data())) != count) {
    return SysError("ptrace(PTRACE_SECCOMP_GET_FILTER, " + Num(pid) + ", " + Num(static_cast<long>(index)) + ") changed size");
  }
  SeccompFilter out;
  out.program.assign(reinterpret_cast<const char*>(program.data()), program.size() * sizeof(sock_filter));
  seccomp_metadata meta{};
  meta.filter_off = index;
  if (Ptrace(PTRACE_SECCOMP_GET_METADATA, pid, sizeof(meta), reinterpret_cast<unsigned long>(&meta)) < 0) {
    return SysError("ptrace(PTRACE_SECCOMP_GET_METADATA, " + Num(pid) + ")");
  }
  out.flags = meta.flags;
  return out;
}

}  // namespace ro::sys
