// The tree's own IPC namespace, as its root task makes it right after its
// clone (CLONE_NEWIPC), before any other task exists.
#pragma once

#include "images/plan.h"
#include "sys/status.h"

namespace ro {

// In the calling task's (new, empty) IPC namespace: writes `ipc`'s
// sysctls, makes its System V objects with their ids, owners, modes and
// contents (segment pages read from `images_fd`, the image directory),
// then writes the next ids. `proc_fd`: a /proc of the task's PID
// namespace. Errors name the object and the call.
Status RestoreIpcNamespace(const images::IpcPlan& ipc, int proc_fd, int images_fd);

}  // namespace ro
