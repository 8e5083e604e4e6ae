// The orchestrator half of AutoFS, run by the root task while it builds the
// mount tree: each AutoFS superblock is mounted with a dummy pipe owned by
// no master yet, its timeout set, and made catatonic at once; its master
// takes it over from its own process later (worker/autofs.h). The dumped
// fd=, pgrp= and pipe_ino= are never passed on.
#pragma once

#include "images/plan.h"
#include "shm/arena.h"
#include "sys/status.h"
#include "sys/unique_fd.h"

namespace ro {

// The detached, catatonic AutoFS mount for plan mount `m` (a new AutoFS
// superblock), with the mountpoints of the mounts to be placed on it (or on
// binds of it) already made as directories in it. Errors name the step
// (pipe2, the helper, fsconfig, the ioctls).
Result<UniqueFd> MountAutofs(const images::RestorePlan& plan, const images::MountPlan& m, shm::Arena& arena);

}  // namespace ro
