// The last step of every task: exec its program, stay a holder, or exit as
// the zombie it was.
#pragma once

#include <cstddef>

#include "images/plan.h"
#include "shm/arena.h"
#include "sys/status.h"
#include "worker/files.h"

namespace ro::worker {

// Checks what can still fail before the hand-over, and moves the task to
// its root and cwd: the program exists and is executable.
Status CheckResumable(const images::TaskPlan& task);

// Closes every fd but the task's own, installs its seccomp filters, counts
// it as resumed in the arena, then: a zombie exits with its
// wait status (re-raising its signal), a task with a resume program execs it
// with RESTORE_ORCH_RESTORED=1 added to its environment, a continuing task
// jumps to its restorer (worker/mm.h; its seccomp filters are the
// restorer's last step), any other task waits until it is killed. The parent-death signal set
// for the restore is dropped, except with `keep_parent_death` (the root task
// of a restore that waits for it: it dies with restore-orch).
[[noreturn]] void ResumeTask(const images::TaskPlan& task, const images::RestorePlan& plan, shm::Arena& arena, size_t index,
                             const FdLayout& layout, bool keep_parent_death);

}  // namespace ro::worker
