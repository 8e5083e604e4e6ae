// Live trees for end-to-end tests: start one (in new PID and mount
// namespaces when asked), wait for it to settle, dump it, restore and
// verify it, all through the real binary. For tests that run inside
// InSandbox (no gtest assertions there: each returns a message, "" when
// all went well).
#pragma once

#include <sys/types.h>

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "test/helpers/test_util.h"

// In a test body returning std::string: returns "<cond> failed: <msg>".
#define EXPECT_OR_RETURN(cond, msg)                                          \
  do {                                                                       \
    if (!(cond)) return std::string(#cond) + " failed: " + std::string(msg); \
  } while (0)

// In a tree's tasks (no gtest there): stops the task with a code naming the line.
#define MUST(cond)                                \
  do {                                            \
    if (!(cond)) ::_exit(100 + __LINE__ % 100);   \
  } while (0)

namespace ro::test {

std::string Str(long v);
// A whole file, "" when it cannot be read.
std::string ReadFile(const std::string& path);
// Writes `text` to `path` (created 0644, truncated); in a task, MUST.
void WriteFile(const std::string& path, const std::string& text);
// Execs /bin/sleep 1000 (exit 127 when it cannot).
[[noreturn]] void ExecSleep();
// Moves `fd` to number `to` (closing the old number).
void MoveFd(int fd, int to);

// Starts a tree whose root runs `init` (which execs or exits) in a new PID
// namespace (and mount namespace when asked), with only /dev/null at 0-2,
// leading a session of its own (unless `own_session` is false: a shell's
// job, in the caller's session and group). Returns its pid, -1 on failure.
pid_t StartTree(bool new_pid, bool new_mnt, const std::function<void()>& init, bool own_session = true);
// The tree below `root` (pids as the caller sees them), root first, from
// /proc children.
std::vector<pid_t> TreeOf(pid_t root);
// The state letter of /proc/PID/stat ('?' when gone).
char StateOf(pid_t pid);
// Neither stopped, traced nor dead: running, sleeping or in a wait.
bool RunsOn(pid_t pid);
// Waits (up to 10 s) until the tree has `count` tasks and every live one
// runs one of `exes` (any program when empty), asleep in it (state S).
bool WaitSettled(pid_t root, size_t count, const std::set<std::string>& exes = {"/usr/bin/sleep"});

// restore-orch dump --tree ROOT --images DIR EXTRA...
RunResult Dump(pid_t root, const std::string& dir, std::vector<std::string> extra = {});
// Restores `dir` detached (--ext-mount-map auto, then `extra`), sets
// `restored` to the root's pid and checks the live tree with verify.
std::string RestoreAndVerify(const std::string& dir, pid_t& restored, const std::vector<std::string>& extra = {});

// The root task of a tree in its own PID and mount namespaces makes its
// mounts private, runs `build` with a fresh work directory, then execs
// sleep; the dump must exit 3 with one line holding `want` (after the work
// directory's path, unless `after_work` is false), leave the tree running
// and write no image directory. "" or what went wrong.
std::string RefusedMounts(const std::function<void(const std::string&)>& build, const std::string& want, bool after_work = true);

}  // namespace ro::test
