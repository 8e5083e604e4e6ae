// The AutoFS take-over: a master hands each of its restored mounts to its
// own pipe, from its own process group.
#pragma once

#include "images/plan.h"
#include "shm/arena.h"
#include "sys/status.h"
#include "worker/files.h"

namespace ro::worker {

// Runs in every task once its fds are in place and it is in its final
// process group; a master, for each of its mounts, opens the mount through
// /dev/autofs (the fd at layout.autofs_fd) with the device the root task
// published in the arena, and calls SETPIPEFD with its write end, so that
// the kernel's requests reach it. A master that had closed its write end
// gets a temporary one, reopened from its read end and closed afterwards.
Status TakeOverAutofs(const images::TaskPlan& task, const images::RestorePlan& plan, const FdLayout& layout,
                      shm::Arena& arena);

}  // namespace ro::worker
