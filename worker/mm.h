// mm, in each task: the shared anonymous objects a task makes before it
// forks, and for a task that continues, its new address space prepared
// while it still has libc: the per-task part of the bootstrap zone mapped,
// each private VMA premapped there and filled from the pages image (pread
// straight into place), the files of file-backed VMAs opened, the
// restorer's code copied and its argument block filled. The restorer
// (restorer/) then puts it all in place.
#pragma once

#include <cstddef>

#include "images/plan.h"
#include "shm/arena.h"
#include "sys/status.h"
#include "worker/files.h"

namespace ro::worker {

// Maps and fills the shared anonymous objects `task` makes (its
// `makes_shmem`), at their zone addresses, before it forks: its children
// inherit them. Reads pages through the image directory (layout.images_fd).
Status MakeSharedMemory(const images::TaskPlan& task, const images::RestorePlan& plan, const FdLayout& layout, shm::Arena& arena);

// Prepares a continuing task's address space and the restorer's arguments
// in the zone. Errors name the VMA, the file or the pages image.
Status PrepareMemory(const images::TaskPlan& task, const images::RestorePlan& plan, const FdLayout& layout, shm::Arena& arena,
                     size_t index);

// Jumps to the restorer PrepareMemory made ready, on its stack in the zone.
[[noreturn]] void RunRestorer(const images::RestorePlan& plan);

}  // namespace ro::worker
