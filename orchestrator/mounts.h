// The mount tree of the restored namespace, built by the root task inside
// its new (private) mount namespace before it forks anyone.
#pragma once

#include <map>
#include <string>

#include "images/plan.h"
#include "shm/arena.h"
#include "sys/status.h"

namespace ro {

struct MountOptions {
  std::string root;                              // --root: source of an external root mount
  std::map<std::string, std::string> externals;  // --external KEY=PATH
};

// Makes the root task's mount namespace private (nothing propagates to the
// caller's), then builds the plan's mounts and pivots into them:
//  1. every mount is made detached and private: new superblocks with fsopen
//     (tmpfs contents streamed from the image directory `images_fd`;
//     AutoFS as orchestrator/autofs.h says), binds cloned from their source,
//     externals cloned from the caller's tree (--root, --external, or found
//     by device and root path); each new mount's device is published in the
//     arena;
//  2. the root mount is attached at a staging directory and the others are
//     moved into place parents first, mountpoints resolved beneath the new
//     root without following symlinks (made only in our own filesystems);
//  3. peer groups are joined (MOVE_MOUNT_SET_GROUP), slaves made, then
//     unbindable mounts marked: nothing propagated while mounts were placed;
//  4. pivot_root into the new tree and detach the old one.
Status BuildMountTree(const images::RestorePlan& plan, const MountOptions& options, int images_fd, shm::Arena& arena);

}  // namespace ro
