// Open file descriptions and fd tables of restored tasks.
//
// Each description is made once, by its creator task before it forks, and
// parked at a service fd above every number the images use; descendants
// inherit it, drop what their subtree does not hold, and finally place
// their own with dup3 at the exact numbers. The engine's own fds (the
// caller's /proc, the log, the image directory, /dev/autofs) sit above the
// parked range, at the same numbers in every task.
#pragma once

#include "images/plan.h"
#include "shm/arena.h"
#include "sys/status.h"

namespace ro::worker {

// Where the service fds are, the same in every task.
struct FdLayout {
  int parked_base = 0;  // slot s is parked at parked_base + s
  int parked_end = 0;   // one past the last parked fd
  int proc_fd = 0;      // the caller's /proc (O_PATH), at parked_end or above
  int log_fd = 0;       // the log sink, above proc_fd
  int images_fd = -1;   // the image directory (large payloads are read through it), above log_fd
  int autofs_fd = -1;   // /dev/autofs when there are AutoFS masters, above images_fd
};

// The layout for a plan: parked fds above the highest fd the images use;
// the service fds' numbers are filled in when they are opened.
FdLayout LayoutFor(const images::RestorePlan& plan);

// Root task: closes everything it inherited from the orchestrator but the
// service fds.
void CloseInherited(const FdLayout& layout);

// After fork: closes the parked descriptions this task does not keep.
void DropUnkept(const images::TaskPlan& task, const images::RestorePlan& plan, const FdLayout& layout);

// Makes the descriptions this task creates, parked at their slots: pipes
// with their capacity, contents and status flags (further descriptions of an
// end reopened through /proc), FIFOs, regular files and devices at their
// position. Errors name a task and fd that hold the object.
Status CreateFiles(const images::TaskPlan& task, const images::RestorePlan& plan, const FdLayout& layout,
                   shm::Arena& arena);

// Places the task's fds at their numbers with their close-on-exec flag, then
// closes every parked description.
Status PlaceFds(const images::TaskPlan& task, const images::RestorePlan& plan, const FdLayout& layout, shm::Arena& arena);

// Closes every fd that is not one of the task's own, service fds included,
// but those in `keep` (above the task's own: the log fd and the exec status
// pipe, close-on-exec, for an exec that may fail).
void CloseAllButOwn(const images::TaskPlan& task, std::vector<int> keep);

}  // namespace ro::worker
