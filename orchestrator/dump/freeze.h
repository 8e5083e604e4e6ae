// Freezing a live process tree for a dump: every thread of every task is
// seized with ptrace and interrupted, children and threads that appear
// meanwhile included, so the tree cannot change while it is read. Zombies cannot be traced; they cannot
// change either. The tree is released (detached, running on as before)
// unless it is killed; dropping a FrozenTree releases it.
#pragma once

#include <sys/types.h>

#include <cerrno>
#include <chrono>
#include <map>
#include <vector>

#include "sys/ptrace_api.h"
#include "sys/status.h"
#include "sys/unique_fd.h"

namespace ro {

// The errno of a dump that may succeed if tried again (a task that did not
// stop, an AutoFS request not read yet): exit status 75.
inline constexpr int kErrTryAgain = EAGAIN;

// The mark of a refusal: the tree holds what restore-orch cannot checkpoint
// or restore (exit status 3). Above every errno, so that no failed syscall
// is taken for one; the dump prints a refusal's line without it. Any other
// error of a dump, a logical one (no errno) included, is a failure (exit 1).
inline constexpr int kErrRefused = 4096 + 3;
// A refusal saying what the tree holds.
inline Error Refuse(std::string what) { return Error{std::move(what), kErrRefused, {}}; }

class FrozenTree {
 public:
  // A thread of a task other than the task itself (its leader, whose tid
  // is the pid).
  struct Thread {
    pid_t tid = 0;           // as restore-orch sees it
    bool seized = false;
    int pending_signal = 0;  // handed back on release
  };
  struct Task {
    pid_t pid = 0;           // as restore-orch sees it
    pid_t parent = 0;        // 0 for the root
    UniqueFd pidfd;          // holds the pid: kills go to this task only
    bool zombie = false;
    bool stopped = false;    // job-control stopped before the freeze
    bool seized = false;
    int pending_signal = 0;  // handed back on release
    // Its other threads, in increasing tid order: every one that was there
    // once the freeze found no new one in /proc/PID/task (those that
    // exited while it was frozen are not listed).
    std::vector<Thread> threads;
  };

  // Seizes the tree whose root is `root`. A task that cannot be seized
  // (not a zombie, not gone) fails the freeze and releases what was seized;
  // one that does not stop within `timeout_ms` (an uninterruptible wait:
  // a disk, an AutoFS lookup whose master is frozen) fails it with
  // kErrTryAgain.
  static Result<FrozenTree> Freeze(pid_t root, int timeout_ms);

  FrozenTree(FrozenTree&&) = default;
  FrozenTree& operator=(FrozenTree&&) = delete;
  ~FrozenTree() { Release(); }

  // Tasks in discovery order: every parent before its children.
  const std::vector<Task>& tasks() const { return tasks_; }
  // When the first task was interrupted: the tree's downtime starts here.
  std::chrono::steady_clock::time_point frozen_at() const { return frozen_at_; }

  // Detaches every task: they run on as before. Idempotent.
  void Release();
  // SIGKILLs every task through its pidfd (the frozen ones die without
  // running again), then detaches.
  Status Kill();

 private:
  explicit FrozenTree(int timeout_ms) : timeout_ms_(timeout_ms) {}
  Status Seize(Task& t);
  Status SeizeThreads(Task& t);
  // Interrupts a seized thread and waits for its stop; a signal on its way
  // in is delivered first (its handler runs), then it stops again.
  Result<sys::PtraceStop> Stop(pid_t tid);
  Status Discover();

  std::vector<Task> tasks_;
  std::map<pid_t, size_t> index_;
  std::chrono::steady_clock::time_point frozen_at_{};
  bool released_ = false;
  int timeout_ms_ = 0;
};

}  // namespace ro
