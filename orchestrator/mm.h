// The orchestrator half of mm: the last step of every task that continues.
// Its restorer ends at a breakpoint with the image's memory and kernel state
// in place but the bootstrap zone still mapped and its own registers in the
// CPU; the orchestrator, its tracer from before it started, unmaps the zone
// from inside it (one munmap run at the restorer's syscall instruction),
// sets the dumped registers, FPU state and signal mask, and lets the whole
// tree go together. (CRIU's restorer ends the same way: its blob is
// unmapped by its tracer.)
#pragma once

#include <map>
#include <string>
#include <vector>

#include "images/plan.h"
#include "shm/arena.h"
#include "sys/status.h"

namespace ro {

class Continuation {
 public:
  Continuation(const images::RestorePlan& plan, shm::Arena& arena) : plan_(plan), arena_(arena) {}
  Continuation(const Continuation&) = delete;
  Continuation& operator=(const Continuation&) = delete;
  // Detaches whatever it still traces (on failure the tasks are being killed).
  ~Continuation();

  bool any() const;
  // Before the done stage opens: seizes every continuing task (they wait
  // at the resume barrier), with PTRACE_O_EXITKILL (they die with
  // restore-orch until they are let go) and PTRACE_O_SUSPEND_SECCOMP (their
  // restored filters must not stop the last munmap).
  Status Seize();
  // Once every task has reached the done stage: waits until each restorer
  // stopped at its breakpoint (or names the step it failed at), finishes
  // each task, then detaches them all at once. `deadline_ns` bounds it.
  Status Finish(uint64_t deadline_ns);
  // Makes Finish compare every continuing task's memory with its pages
  // images (read through `images_fd`, the image directory) once all are at
  // their breakpoints, before any register is set: a difference fails it,
  // each logged in one line (verify/verify.h ComparePages).
  void CheckPages(int images_fd) { check_pages_fd_ = images_fd; }

 private:
  struct ThreadStop {
    size_t task;  // plan index
    pid_t tid;    // in the tree's namespace
    pid_t outer;  // in restore-orch's
  };
  // The last steps, each started in every task before Finish waits for the
  // first (the tasks run them side by side): the munmap of the zone set up
  // and let run to its syscall entry; its entry, then its exit, waited for
  // (`entry`); every thread's dumped registers, xstate and mask.
  Status StartZoneUnmap(pid_t outer);
  Status NextSyscallStop(pid_t outer, bool entry);
  Status SetRegisters(size_t index, const std::vector<ThreadStop>& threads);
  // `s`, its error prefixed with the task's pid.
  Status Within(size_t index, Status s) const;

  const images::RestorePlan& plan_;
  shm::Arena& arena_;
  std::vector<pid_t> traced_;  // outer ids of every traced task and thread
  int check_pages_fd_ = -1;    // CheckPages
};

// "mremap of the VMA at 0x7f...: Invalid argument" from a restorer's report.
std::string DescribeRestorerFailure(const shm::RestorerReport& report);

}  // namespace ro
