// The calling task's own attributes, as a restored task sets them back
// (the worker, with libc: tasks that exec or hold; the restorer sets them
// by raw syscalls for tasks that continue), and as restore-orch reads its
// own to know what it can give the tasks it restores: resource limits,
// scheduling (for the calling thread), timer slack, TSC mode,
// no_new_privs, child subreaper, umask, OOM score, login uid, credentials.
// Errors name
// the call and its arguments.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "sys/status.h"
#include "sys/unique_fd.h"

namespace ro::sys {

// prlimit(0, resource): the calling process's limit.
Status SetResourceLimit(int resource, uint64_t cur, uint64_t max);
// setpriority(PRIO_PROCESS, 0): the calling thread's nice.
Status SetNice(int nice);
// sched_setscheduler(0): the calling thread's policy (SCHED_RESET_ON_FORK
// included) and real-time priority.
Status SetScheduling(uint32_t policy, uint32_t priority);
// prctl(PR_SET_TIMERSLACK) of the calling thread.
Status SetTimerSlack(uint64_t ns);
// prctl(PR_SET_TSC) of the calling thread: PR_TSC_ENABLE or PR_TSC_SIGSEGV.
Status SetTscMode(uint32_t mode);
// prctl(PR_SET_NO_NEW_PRIVS, 1) of the calling thread (it cannot be undone).
Status SetNoNewPrivs();
// prctl(PR_SET_CHILD_SUBREAPER) of the calling process.
Status SetChildSubreaper(bool on);
// umask(2) of the calling process.
void SetUmask(uint32_t mask);
// Writes the calling process's /proc/self/oom_score_adj, through `proc_dir`
// (a /proc directory that shows the caller: restore-orch's).
Status SetOomScoreAdj(int proc_dir, int adj);

// One line of a /proc/PID/uid_map or gid_map (user_namespaces(7)): ids
// [inside, inside + count) of the namespace are [outside, outside + count)
// of its parent's.
struct IdMapLine {
  uint32_t inside = 0, outside = 0, count = 0;
};

// What the calling process has, which every process it forks inherits.
struct OwnAttrs {
  std::array<uint64_t, 16> hard_limits{};  // rlim_max, RLIMIT_* order
  uint64_t nr_open = 1048576;              // /proc/sys/fs/nr_open
  bool cap_sys_resource = false;
  bool cap_sys_nice = false;
  int nice = 0;
  bool no_new_privs = false;
  uint32_t loginuid = 4294967295u;
  int oom_score_adj = 0;
  std::array<uint32_t, 4> uids{}, gids{};  // real, effective, saved, fs
  std::array<uint64_t, 5> caps{};          // inheritable, permitted, effective, bounding, ambient
  uint32_t securebits = 0;
  std::vector<uint32_t> groups;
  std::vector<IdMapLine> uid_map, gid_map;  // /proc/self/{uid,gid}_map
};
Result<OwnAttrs> ReadOwnAttrs();

// The lines of a /proc/PID/uid_map or gid_map ("inside outside count"
// each); an error naming the line that is not three numbers.
Result<std::vector<IdMapLine>> ParseIdMap(const std::string& text);

}  // namespace ro::sys
