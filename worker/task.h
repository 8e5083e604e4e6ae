// What runs inside every restored task, from the moment it is cloned with
// its pid until it resumes.
#pragma once

#include <cstddef>

#include "images/plan.h"
#include "shm/arena.h"
#include "worker/autofs.h"
#include "worker/fds.h"
#include "sys/unique_fd.h"

namespace ro::worker {

struct TaskContext {
  const images::RestorePlan* plan = nullptr;
  shm::Arena* arena = nullptr;
  const UniqueFd* proc_dir = nullptr;  // the caller's /proc, at layout.proc_fd
  FdLayout layout;
  const std::vector<AutofsMount>* autofs = nullptr;  // filled by the root task before it forks
  bool detach = false;                 // the root task must outlive the orchestrator
};

// Runs task `index` of the plan in the calling process, which must already
// have that task's pid. Forks the task's children (each runs this too),
// joins its session and group, walks the stages, and resumes: exec, holder,
// or zombie exit. Never returns; on failure it records the error in the
// arena (aborting the restore) and exits.
[[noreturn]] void RunTask(const TaskContext& ctx, size_t index);

}  // namespace ro::worker
