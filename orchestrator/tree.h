// The orchestrator half of the tree: every restored task watched through a
// pidfd from the moment it publishes its pid in the arena, so that an
// unexpected death aborts the restore at once, and a rollback kills exactly
// the tasks restore-orch made.
#pragma once

#include <sys/types.h>

#include <set>
#include <string>
#include <vector>

#include "images/plan.h"
#include "shm/arena.h"
#include "sys/status.h"
#include "sys/unique_fd.h"

namespace ro {

class TaskWatch {
 public:
  TaskWatch(const images::RestorePlan& plan, shm::Arena& arena);

  // The root task, cloned by the orchestrator itself.
  void SetRoot(pid_t outer, UniqueFd pidfd);
  pid_t root() const { return root_; }
  const UniqueFd& root_pidfd() const { return pidfds_[0]; }

  // Opens pidfds for tasks that published their pid since, and fails when a
  // task died that should not have by `stage` (helpers exit after forking
  // and files, zombies in the last stage): "task 4 was killed by Killed".
  Status Check(shm::Stage stage);
  // "; still waiting for tasks 4, 7" - those that have not finished `stage`.
  std::string Stragglers(shm::Stage stage) const;

  // Rollback: SIGKILL to the root task (in a new PID namespace every task
  // dies with it) or to every task by its pidfd, then reaps the root and
  // waits (bounded) until each watched task is gone.
  void KillAll(bool new_pid_namespace);
  // Waits until every zombie-to-be has exited (before continuing tasks are
  // traced: a child's exit would stop a traced parent), or `deadline_ns`.
  Status AwaitZombies(uint64_t deadline_ns);
  // After success: stop watching every task but the root.
  void ReleaseAllButRoot();
  void ReleaseAll();

 private:
  bool ExpectedToExit(size_t i, shm::Stage stage) const;

  const images::RestorePlan& plan_;
  shm::Arena& arena_;
  std::vector<UniqueFd> pidfds_;
  std::set<size_t> gone_;
  pid_t root_ = 0;
};

}  // namespace ro
