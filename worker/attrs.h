// attrs, in each live task at its hand-over (after every task has its fds
// and the helpers are gone): what the images say of it besides its memory
// and fds. Images/plan_attrs.h says what each value is.
#pragma once

#include "images/plan.h"
#include "restorer/args.h"
#include "sys/status.h"
#include "worker/files.h"

namespace ro::worker {

// The task's umask, child-subreaper flag and OOM score (written through
// the caller's /proc, layout.proc_fd), for every live task whatever its
// resume kind. Errors name the call.
Status ApplyTaskAttrs(const images::TaskPlan& task, const FdLayout& layout);

// A task that execs or holds: its resource limits and its own thread's
// timer slack, scheduling and no_new_privs, right before its seccomp
// filters (it keeps no other thread). Its TSC mode is SetTscMode's, its
// parent-death signal the hand-over's (worker/resume.cc).
Status ApplyOwnThreadAttrs(const images::TaskPlan& task);

// A task that execs or holds, at the very last (nothing that reads the
// clock may run after it: with PR_TSC_SIGSEGV the vDSO's RDTSC faults).
// Returns whether it changed anything.
bool SetTscMode(const images::TaskPlan& task);
// Undoes SetTscMode, so that a failed exec can still log.
void ResetTscMode();

// A continuing task: the restorer's share, each thread's attributes and the
// task's limits (restorer/args.h), which it sets itself.
void FillRestorerAttrs(const images::AttrsPlan& attrs, restorer::TaskArgs& args, restorer::ThreadArgs* threads, size_t nr_threads);

}  // namespace ro::worker
