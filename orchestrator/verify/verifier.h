// `verify`, one file per concern in orchestrator/verify/: tree.cc (tasks,
// sessions, groups, zombies), files.cc (fd tables), mounts.cc (the mount
// namespace), namespaces.cc (the UTS and IPC namespaces), autofs.cc (AutoFS owners and pipes), mm.cc (the address
// space of tasks that continued), attrs.cc (limits, scheduling, umask,
// parent-death signal, signal dispositions...), task_state.cc (what else a
// task that continued keeps: personality, itimers, each thread's name,
// blocked signals and sigaltstack). Each reads the live tree
// with the dump's readers of /proc (sys/proc_tree.h, sys/proc_files.h,
// sys/mountinfo.h); what only a task can tell is asked of it, stopped for
// a moment as the dump stops it (sys/remote_attrs.h). A read that fails
// is a difference, never an empty value. Private to verify.
#pragma once

#include <sys/types.h>

#include <array>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "images/plan.h"
#include "sys/mount_api.h"
#include "sys/mountinfo.h"
#include "sys/posix_mqueue.h"
#include "sys/proc_tree.h"
#include "sys/remote_attrs.h"
#include "sys/sysv_ipc.h"

namespace ro::verify {

class Verifier {
 public:
  Verifier(const images::RestorePlan& plan, pid_t root, int images_fd) : plan_(plan), root_(root), images_fd_(images_fd) {}

  std::vector<std::string> Run() {
    CollectTasks();
    CompareTasks();
    CompareNamespaces();
    CompareMounts();  // first: the fds' mounts are compared through its pairing
    CompareFds();
    CompareMemory();
    CompareAttrs();
    CompareTaskState();  // after CompareAttrs: it reads what AskTree asked
    return diffs_;
  }

 private:
  void Diff(std::string line) { diffs_.push_back(std::move(line)); }

  // tree.cc
  void CollectTasks();
  void CompareTasks();
  // files.cc: fd tables, then each task's cwd and root.
  void CompareFds();
  void CompareFsDirs(const images::TaskPlan& t, pid_t outer, const std::string& who);
  // That `path` leads to the file `held` (a restore reopens by path) and
  // that the file is on the mount the images say (`image_mnt_id`, paired
  // with a live mount by CompareMounts; -1 unknown). An empty `path`: the
  // mount alone (an AutoFS root, reached through /dev/autofs).
  void CompareReached(const std::string& where, const std::string& path, const sys::FileIdentity& held, int64_t image_mnt_id);
  // Whether `mnt_id` is a mount of the tree's mount namespace.
  bool InTreeNamespace(uint64_t mnt_id);
  // namespaces.cc: the tree's UTS namespace and its names, its IPC
  // namespace and its sysctls.
  void CompareNamespaces();
  void CompareUts();
  void CompareIpc();
  void CompareNet();
  // ipc_objects.cc: the System V objects `live` of the tree's own IPC
  // namespace against the plan's (contents included).
  void CompareSysvObjects(const sys::SysvObjects& live, const std::string& root);
  void ComparePosixMqueues(const std::vector<sys::PosixMqueue>& live, const std::string& root);
  void CompareSegmentContents(const images::SysvShmPlan& want, int live, const std::string& what);
  std::optional<ino_t> CompareSharing(const char* kind, const char* name, bool own_wanted);
  // mounts.cc
  void CompareMounts();
  // The files of a tmpfs the images hold contents of (mount `m`, live `l`).
  void CompareTmpfsContents(const images::MountPlan& m, const sys::MountInfo& l, const std::vector<sys::MountInfo>& live,
                            const std::string& where);
  // mm.cc
  void CompareMemory();
  // Each VMA's kept madvise advice and its mlock (VM_LOCKED) against
  // smaps' VmFlags.
  void CompareVmFlags(const images::TaskPlan& t, pid_t outer, const std::string& who);
  // attrs.cc: limits, scheduling, umask, OOM score, no_new_privs from /proc;
  // parent-death signal, TSC mode, timer slack, subreaper and signal
  // dispositions asked of the stopped tree (AskTree).
  void CompareAttrs();
  // A thread's capability sets and supplementary groups (its /proc
  // task directory `dir`) with the images'.
  void CompareCreds(const std::string& thread, const std::string& dir, const images::CredsPlan& want);
  void AskTree();
  // task_state.cc: of each task that continued, its personality and
  // itimers, and per thread its name, blocked signals and sigaltstack.
  void CompareTaskState();
  // The task's itimers (ITIMER_REAL, VIRTUAL, PROF) with the images': armed
  // or not and the interval; the time left only as far as running on
  // explains it (no more than the images' or one interval).
  void CompareItimers(const images::ContinuePlan& want, const sys::TaskKnobs& have, const std::string& who);
  // One thread's name (comm), blocked signals and sigaltstack with its
  // ThreadPlan; `outer` its task and `tid` the thread as the caller sees them.
  void CompareThreadState(const images::TaskPlan& t, const images::ThreadPlan& want, pid_t outer, pid_t tid, const std::string& thread);
  // autofs.cc
  void CompareAutofs(const images::MountPlan& m, const sys::MountInfo& l, const std::string& where);

  const images::RestorePlan& plan_;
  pid_t root_;
  int images_fd_;
  struct LiveTask {
    sys::TaskInfo info;
    pid_t ppid = 0;  // in the tree's numbering; 0 for the root
    std::vector<pid_t> threads;  // its thread ids in the tree's numbering, its own first
    std::map<pid_t, pid_t> outer_of;  // thread id in the tree's numbering -> as the caller sees it
  };
  // What verify asked each thread by injected syscalls (attrs.cc), by its
  // id as the caller sees it.
  struct Asked {
    sys::ThreadKnobs knobs;
    bool subreaper = false;                            // the task's, asked of its own thread
    std::optional<std::array<sys::KernelSigaction, 65>> sigactions;  // the task's, when it continued
    std::optional<sys::TaskKnobs> task;                // the task's (itimers...), asked of its own thread when it continued
    std::optional<uint64_t> blocked;                   // the thread's blocked signals (PTRACE_GETSIGMASK), when its task continued
  };
  std::map<pid_t, Asked> asked_;
  std::map<uint32_t, uint64_t> live_mount_of_;  // image mnt_id -> the live mount it was paired with
  std::optional<std::set<uint32_t>> ns_mounts_;  // the ids of the tree's namespace's mounts, once needed
  std::optional<UniqueFd> ns_root_;  // the root of the tree's mount namespace (an invalid fd: it could not be opened)
  std::map<pid_t, LiveTask> live_;  // by the pid in the tree's namespace
  std::vector<std::string> diffs_;
};

}  // namespace ro::verify
