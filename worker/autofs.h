// The AutoFS take-over: a master hands each of its restored mounts to its
// own pipe, from its own process group.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "images/plan.h"
#include "shm/arena.h"
#include "sys/status.h"
#include "worker/fds.h"

namespace ro::worker {

// An AutoFS superblock as the root task mounted it (with a dummy pipe, then
// catatonic); tasks forked afterwards inherit the list.
struct AutofsMount {
  uint32_t mnt_id = 0;
  std::string path;  // inside the restored mount namespace
  dev_t dev = 0;     // the new superblock's device
};

// Runs in a master once its fds are in place and it is in its final process
// group: for each of its mounts, opens it through /dev/autofs (the fd at
// layout.autofs_fd) and calls SETPIPEFD with its write end, so that the
// kernel's requests reach it. A master that had closed its write end gets a
// temporary one, reopened from its read end and closed afterwards.
Status TakeOverAutofs(const images::TaskPlan& task, const images::RestorePlan& plan,
                      const std::vector<AutofsMount>& mounts, const FdLayout& layout, shm::Arena& arena);

}  // namespace ro::worker
