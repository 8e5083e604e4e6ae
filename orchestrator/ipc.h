// The tree's own IPC namespace, as its root task makes it right after its
// clone (CLONE_NEWIPC), before any other task exists.
#pragma once

#include "images/plan.h"
#include "sys/status.h"

namespace ro {

// In the calling task's (new, empty) IPC namespace: writes limits its
// System V objects and POSIX message queues fit in, makes them with their
// ids, owners, modes and contents (segment pages read from `images_fd`,
// the image directory; queues with their messages),
// then writes `ipc`'s sysctls and last its next ids. `proc_fd`: a /proc of the task's PID
// namespace. Errors name the object and the call.
Status RestoreIpcNamespace(const images::IpcPlan& ipc, int proc_fd, int images_fd);

}  // namespace ro
