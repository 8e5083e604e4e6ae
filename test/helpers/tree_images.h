// Builds image sets for process trees in code, for the restore tests.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "test/helpers/test_util.h"

namespace ro::test {

struct TaskSpec {
  pid_t pid = 0;
  pid_t ppid = 0;
  pid_t pgid = 0;
  pid_t sid = 0;
  bool zombie = false;
  uint32_t exit_status = 0;  // wait status, zombies only
  std::string comm = "task";
  std::vector<std::string> argv;  // with exe = argv[0]: a resume image
  std::vector<std::string> env;
  std::string cwd;
};

// inventory, pstree, core-<pid> for each task and resume-<pid> where argv is
// set. The tree gets its own PID namespace (unless shared_pid_ns) and
// shares the caller's mount namespace.
ImageSet TreeImages(const std::vector<TaskSpec>& tasks, bool shared_pid_ns = false);

// A chain root(1) -> 2 -> ... -> depth; every task its own group in session 1.
std::vector<TaskSpec> Chain(int depth);
// Root 1 with `n` children 2..n+1, all in session 1, group 1.
std::vector<TaskSpec> Fan(int n);

}  // namespace ro::test
