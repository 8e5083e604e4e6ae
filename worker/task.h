// What runs inside every restored task, from the moment it is cloned with
// its pid until it hands over: the stages of shm/stages.h, each task doing
// its step of each and waiting at the stage's barrier.
#pragma once

#include <cstddef>

#include "images/plan.h"
#include "shm/arena.h"
#include "sys/unique_fd.h"
#include "worker/files.h"

namespace ro::worker {

struct TaskContext {
  const images::RestorePlan* plan = nullptr;
  shm::Arena* arena = nullptr;
  const UniqueFd* proc_dir = nullptr;  // the caller's /proc, at layout.proc_fd
  FdLayout layout;
  bool detach = false;                 // the root task must outlive the orchestrator
  // Where a task whose plan says sid or pgid 0 (--shell-job) ends: the
  // orchestrator's own session and group as the tree's PID namespace sees
  // them (0 from inside a new one).
  pid_t outside_sid = 0;
  pid_t outside_pgid = 0;
};

// Runs task `index` of the plan in the calling process, which must already
// have that task's pid. Walks the stages its kind takes part in: forks its
// children (each runs this too) and joins its session and group, places its
// fds, reaps helpers, checks it can resume; then hands over by its resume
// kind. Never returns; on failure it records the error in the arena
// (aborting the restore) and exits.
[[noreturn]] void RunTask(const TaskContext& ctx, size_t index);

// In a child just forked by a task: runs task `index`, starting from the
// stack frame of the tree's first RunTask (the parent's deeper frames are
// left behind: constant stack per level of the tree).
[[noreturn]] void RunForkedTask(const TaskContext& ctx, size_t index);

}  // namespace ro::worker
