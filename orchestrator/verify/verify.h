// `restore-orch verify`: compares a live tree with its images.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
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
// groups, AutoFS owners and pipes, the files of each tmpfs whose contents
// the image directory `images_fd` holds). What must change is not
// compared: ids, device numbers, and AutoFS fd=, pgrp= and pipe_ino= as
// numbers.
std::vector<std::string> VerifyTree(const images::RestorePlan& plan, pid_t root, int images_fd);

// What ComparePages read and how long it took.
struct PagesCheckStats {
  uint64_t bytes = 0;  // compared
  uint64_t ns = 0;
};

// At restore time, before any continuing task runs its own code: the
// memory of each task of `tasks` (plan index -> its pid as restore-orch
// sees it), every VMA in place, compared with its pages images, read from
// the image directory `images_fd`: each run of its pagemap at its address,
// and each dumped page of a shared object where the task maps it. Reads
// /proc/PID/mem (the caller traces the tasks; PROT_NONE pages are read
// too). Returns one line per run that differs or cannot be read ("task 5:
// 3 pages at 0x7f0000001000 from pages-2.img at offset 0x3000: differ,
// first at 0x7f0000001a08"), at most 16 per task and then a count; empty
// when every page matches. `stats` (optional) gets the bytes and time.
std::vector<std::string> ComparePages(const images::RestorePlan& plan, const std::map<size_t, pid_t>& tasks, int images_fd,
                                      PagesCheckStats* stats = nullptr);

}  // namespace ro
