// `verify`, one file per concern in orchestrator/verify/: tree.cc (tasks,
// sessions, groups, zombies), files.cc (fd tables), mounts.cc (the mount
// namespace), autofs.cc (AutoFS owners and pipes), mm.cc (the address
// space of tasks that continued). Each reads the live tree
// with the dump's readers of /proc (sys/proc_tree.h, sys/proc_files.h,
// sys/mountinfo.h); a read that fails is a difference, never an empty
// value. Private to verify.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "images/plan.h"
#include "sys/mountinfo.h"
#include "sys/proc_tree.h"

namespace ro::verify {

class Verifier {
 public:
  Verifier(const images::RestorePlan& plan, pid_t root) : plan_(plan), root_(root) {}

  std::vector<std::string> Run() {
    CollectTasks();
    CompareTasks();
    CompareFds();
    CompareMounts();
    CompareMemory();
    return diffs_;
  }

 private:
  void Diff(std::string line) { diffs_.push_back(std::move(line)); }

  // tree.cc
  void CollectTasks();
  void CompareTasks();
  // files.cc
  void CompareFds();
  // mounts.cc
  void CompareMounts();
  // mm.cc
  void CompareMemory();
  // autofs.cc
  void CompareAutofs(const images::MountPlan& m, const sys::MountInfo& l, const std::string& where);

  const images::RestorePlan& plan_;
  pid_t root_;
  struct LiveTask {
    sys::TaskInfo info;
    pid_t ppid = 0;  // in the tree's numbering; 0 for the root
    std::vector<pid_t> threads;  // its thread ids in the tree's numbering, its own first
  };
  std::map<pid_t, LiveTask> live_;  // by the pid in the tree's namespace
  std::vector<std::string> diffs_;
};

}  // namespace ro::verify
