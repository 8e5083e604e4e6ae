// Processes by pidfd, comparing kernel objects of two processes (kcmp), and
// per-process facts another process may read: resource limits, robust
// futex list.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <cstdint>

#include <optional>
#include <string>

#include "sys/status.h"
#include "sys/unique_fd.h"

namespace ro::sys {

// pidfd_open(pid, 0). Errors: ESRCH when the pid does not exist.
Result<UniqueFd> PidfdOpen(pid_t pid);
// pidfd_send_signal(pidfd, sig). ESRCH once the task has exited.
Status PidfdSendSignal(const UniqueFd& pidfd, int sig);

// How a child ended, read without reaping it (waitid P_PIDFD, WNOWAIT):
// "exited with status 3", "was killed by Killed"; nullopt while it runs.
std::optional<std::string> DescribeExitedChild(const UniqueFd& pidfd);

// kcmp(2) types we use (linux/kcmp.h).
enum class KcmpType { kFile = 0, kVm = 1, kFiles = 2, kFs = 3, kSighand = 4 };

// kcmp's ordering of the object of `type` (for kFile: fds `fd1` and `fd2`)
// in `pid1` and `pid2`: 0 the same, 1 less, 2 greater, 3 not ordered.
Result<int> Kcmp(pid_t pid1, pid_t pid2, KcmpType type, unsigned long fd1 = 0, unsigned long fd2 = 0);
// True when both share the object; errors count as not shared.
bool KcmpSame(pid_t pid1, pid_t pid2, KcmpType type, unsigned long fd1 = 0, unsigned long fd2 = 0);

// prlimit(pid, resource, NULL, &old): a resource limit of another process.
// The kernel lets only a caller with the task's uids and gids, or with
// CAP_SYS_RESOURCE, read it so (kernel/sys.c, check_prlimit_permission);
// on EPERM it is read from /proc/PID/limits, which anyone may read.
Result<rlimit> GetResourceLimit(pid_t pid, int resource);

// sched_getscheduler(tid) and sched_getparam(tid): a thread's policy
// (SCHED_*, with SCHED_RESET_ON_FORK when set) and real-time priority.
struct Scheduling {
  int policy = 0;
  int priority = 0;
};
Result<Scheduling> GetScheduling(pid_t tid);

// get_robust_list(pid): the head of the robust futex list a thread
// registered (set_robust_list) and its length; 0/0 when none.
struct RobustList {
  uint64_t head = 0;
  uint64_t len = 0;
};
Result<RobustList> GetRobustList(pid_t pid);

// Asks the kernel for `sig` when the parent dies (PR_SET_PDEATHSIG), 0 to
// drop it.
void SetParentDeathSignal(int sig);

// For a task just cloned: asks for SIGKILL when its parent dies
// (PR_SET_PDEATHSIG), then checks that the parent is still
// `expected_parent` (getppid(), as the caller's PID namespace numbers it:
// the pid the parent read with getpid() before the clone). The kernel sends
// the signal only for a death after the prctl; a parent that died between
// clone and prctl left the task reparented (to a subreaper or init) with
// nothing to kill it. Returns false when that happened: the caller must exit
// at once, before it creates anything.
bool DieWithParent(pid_t expected_parent);
// The same for a task whose parent is outside its PID namespace, where
// getppid() is 0 whoever the parent is: `parent` is a pidfd of the parent
// (pidfd_open by the parent before the clone, inherited), which polls
// readable once the parent has exited (pidfd_open(2)).
bool DieWithParent(const UniqueFd& parent);

// Blocks every signal the kernel lets a task block (all but SIGKILL and
// SIGSTOP) in the calling thread: later ones stay pending, and a traced
// task then never stops for a signal's delivery.
void BlockAllSignals();
// Whether the calling process holds capability `cap` (CAP_* number) in its
// effective set (/proc/self/status CapEff).
Result<bool> HasEffectiveCapability(int cap);

// The calling thread's name (PR_SET_NAME; the kernel keeps 15 bytes).
void SetName(const std::string& comm);

}  // namespace ro::sys
