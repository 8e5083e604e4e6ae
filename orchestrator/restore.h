// The restore itself: arena, root task, stages, then success (wait for the
// root task or detach) or rollback.
#pragma once

#include <string>

#include "images/plan.h"
#include "orchestrator/mounts.h"
#include "orchestrator/syscall_faults.h"
#include "shm/faults.h"

#include <optional>
#include "sys/progress.h"
#include "sys/status.h"

namespace ro {

struct RestoreOptions {
  bool detach = false;
  std::string pidfile;
  std::string stats_file;
  double timeout_s = 60;  // bounds the restore up to the hand-over
  double kill_after_s = 10;  // after a forwarded SIGINT/SIGTERM: the tree is killed if still alive (WaitRoot)
  MountOptions mounts;
  std::vector<std::string> action_scripts;  // run at each point of action_scripts.h
  std::optional<shm::FaultSpec> fault;       // --fault
  std::optional<SyscallFault> syscall_fault;  // --fault-syscall
  bool check_pages = false;  // compare each continuing task's memory with its pages images before it runs
  sys::ProgressLine* progress = nullptr;  // the command's progress line (not owned), or null
};

// Restores the plan. Returns the exit status for restore-orch: the root
// task's (128+n when killed by signal n) when waiting, 0 when detached, 1
// when the restore failed — then nothing it created is left (a pidfile that
// cannot be written fails it too). While it waits, SIGINT, SIGTERM and
// SIGHUP reach the root task as they would an ordinary process; a tree
// whose init would drop one, or that outlives a forwarded SIGINT/SIGTERM by
// kill_after_s or a second one, is killed.
int RunRestore(const images::RestorePlan& plan, const RestoreOptions& options);

}  // namespace ro
