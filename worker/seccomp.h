// Seccomp filters of restored tasks.
#pragma once

#include "images/plan.h"
#include "sys/status.h"

namespace ro::worker {

// Installs the task's filters, oldest first, with their flags. Done last,
// right before the hand-over: a restored filter may forbid what the restore
// itself still does.
Status InstallSeccomp(const images::TaskPlan& task);

}  // namespace ro::worker
