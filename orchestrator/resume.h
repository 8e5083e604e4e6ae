// The orchestrator half of resume: a task resumed by exec is resumed once
// its exec has happened. Each exec task keeps a close-on-exec status pipe;
// restore-orch opens its read end through /proc before the done stage, and
// reads end of file once the exec succeeded (the only write end went with
// the old image), or the errno of an exec that failed.
#pragma once

#include <vector>

#include "images/plan.h"
#include "shm/arena.h"
#include "sys/status.h"
#include "sys/unique_fd.h"

namespace ro {

class ExecWatch {
 public:
  ExecWatch(const images::RestorePlan& plan, shm::Arena& arena) : plan_(plan), arena_(arena) {}

  // Before the done stage: opens every exec task's status pipe.
  Status Open();
  // After the done stage: waits until every exec happened, or names the
  // first that failed ("task 3: execve(/bin/x): Exec format error"), until
  // `deadline_ns`.
  Status Await(uint64_t deadline_ns);

 private:
  const images::RestorePlan& plan_;
  shm::Arena& arena_;
  std::vector<std::pair<size_t, UniqueFd>> pipes_;  // task index, read end
};

}  // namespace ro
