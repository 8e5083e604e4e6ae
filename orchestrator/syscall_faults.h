// Syscall faults: --fault-syscall SYSCALL:ERRNO[:N][@PID] makes the Nth call
// of SYSCALL in the restored tasks (or in the task with that image pid) fail
// with ERRNO, through a seccomp user-notification filter that the root task
// installs before it does anything and the orchestrator supervises: it
// counts the calls, answers the chosen one with the error and lets every
// other one continue. The kernel-facing error paths run for real.
//
// The filter stays with the tasks: after restore-orch exits, the syscall
// fails with ENOSYS in them. It is a tool for fault-injection runs.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <optional>
#include <string>
#include <thread>

#include "shm/arena.h"
#include "sys/status.h"
#include "sys/unique_fd.h"

namespace ro {

struct SyscallFault {
  std::string name;
  int nr = -1;
  int err = 0;
  unsigned pass = 1;
  std::optional<pid_t> task;  // image pid
};

Result<SyscallFault> ParseSyscallFault(const std::string& text);

// In the root task: installs the filter and hands its notification fd over
// `channel` (SCM_RIGHTS).
Status InstallSyscallFault(const SyscallFault& fault, const UniqueFd& channel);

// In the orchestrator: receives the notification fd and answers calls on a
// thread until Stop() (or the filter's last task is gone).
class SyscallFaultSupervisor {
 public:
  SyscallFaultSupervisor() = default;
  SyscallFaultSupervisor(const SyscallFaultSupervisor&) = delete;
  SyscallFaultSupervisor& operator=(const SyscallFaultSupervisor&) = delete;
  ~SyscallFaultSupervisor() { Stop(); }

  // Waits for the fd from the root task (at most `timeout_ms`), then starts.
  // `arena` maps the callers' pids to image pids.
  Status Start(const SyscallFault& fault, const UniqueFd& channel, shm::Arena& arena, int timeout_ms);
  void Stop();

 private:
  void Serve();

  SyscallFault fault_;
  shm::Arena* arena_ = nullptr;
  UniqueFd notify_;
  UniqueFd stop_;  // eventfd
  std::thread thread_;
  unsigned calls_ = 0;
};

}  // namespace ro
