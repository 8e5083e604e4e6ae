// `restore-orch verify`: compares a live tree with its images.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "images/plan.h"

namespace ro {

// Every difference between the tree whose root task is `root` (a pid as
// the caller sees it) and the plan, one line each; empty when they agree.
// Compared: the process tree (pids, parents, sessions, groups, zombies and
// their status), each task's fds (numbers, kinds, paths, flags,
// close-on-exec, which fds share a description, which share a pipe), and
// the mount namespace (mountpoints, fstypes, roots, per-mount flags, the
// images' superblock options, propagation up to renumbering of peer
// groups, AutoFS owners and pipes). What must change is not compared: ids,
// device numbers, and AutoFS fd=, pgrp= and pipe_ino= as numbers.
std::vector<std::string> VerifyTree(const images::RestorePlan& plan, pid_t root);

}  // namespace ro
