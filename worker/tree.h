// The tree, in each task: its pid checked, itself made known to the
// orchestrator, its children forked with their pids (before and after its
// own setsid, as the plan says), its session and group joined, and the
// helpers among its children reaped.
#pragma once

#include <cstddef>

#include "images/plan.h"
#include "sys/status.h"
#include "worker/task.h"

namespace ro::worker {

// The first thing a cloned task does: getpid() must be the image's pid.
Status VerifyPid(const images::TaskPlan& task);

// Publishes the task's pid as the orchestrator sees it in the arena (the
// orchestrator watches it from then on), drops the signal mask inherited
// from the orchestrator, takes its comm, and outside a new PID namespace
// asks to die with its parent until it resumes.
Status Publish(const TaskContext& ctx, size_t index);

// Forks the task's children (each runs RunTask), calls setsid() between
// those born in its old session and the others, joins its process group,
// and checks it ended in the session and group of the images.
Status ForkTree(const TaskContext& ctx, size_t index);

// Waits for the helpers among the task's children, which exit once their
// work is done; one that fails fails the restore.
Status ReapHelpers(const TaskContext& ctx, const images::TaskPlan& task);

}  // namespace ro::worker
