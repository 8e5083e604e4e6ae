// The plan under construction, shared by the per-concern planners of
// images/plan/. Each planner reads the images of its concern and what the
// planners before it left here, and adds its part; planners never call each
// other. images/plan/build.cc runs them in order. Private to the planner.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "images/image_dir.h"
#include "images/kinds.h"
#include "images/plan.h"
#include "images/proto/core.pb.h"
#include "images/proto/ipc-var.pb.h"

namespace ro::images::plan {

// Problems, one line each: "file: entry N: what".
class Problems {
 public:
  void Add(const std::string& file, std::optional<size_t> entry, std::string what);
  bool empty() const { return errors_.empty(); }
  std::vector<Error> Take() { return std::move(errors_); }

 private:
  std::vector<Error> errors_;
};

struct Context {
  Context(const ImageDir& d, const PlanOptions& o) : dir(d), options(o) {}

  const ImageDir& dir;
  const PlanOptions& options;
  Problems problems;
  RestorePlan plan;  // the output; `plan.tasks` is laid out last, from `tasks` and `fork_order`

  // Inventory: the ids of the namespaces outside the tree.
  const img::task_kobj_ids_entry* root_ids = nullptr;

  // Tree: every task by pid (helpers included once planned), the pstree
  // entry each came from (for messages), the ids each names, and the fork
  // order (parents before children) the plan's task list follows.
  std::map<pid_t, TaskPlan> tasks;
  std::map<pid_t, size_t> pstree_entry;
  std::map<pid_t, const img::task_kobj_ids_entry*> ids;
  pid_t root_pid = 0;
  std::vector<pid_t> fork_order;

  // Mounts: the mountpoints entry each mount came from (for messages).
  std::map<uint32_t, size_t> mount_entry;

  bool ok() const { return problems.empty(); }
  // The core image of a task, or null when it has none.
  const img::core_entry* Core(pid_t pid) const;
  // The task, which must exist.
  TaskPlan& Task(pid_t pid) { return tasks.at(pid); }
};

// Nearest common ancestors in the fork tree, once PlanForks has laid it out.
class ForkAncestry {
 public:
  explicit ForkAncestry(Context& ctx);
  pid_t Common(pid_t a, pid_t b) const;

 private:
  Context& ctx_;
  std::map<pid_t, size_t> depth_;
};

// The planners, in the order build.cc runs them. Each returns false when
// what it found leaves the planners after it nothing sound to work on.
bool PlanInventory(Context& ctx);       // inventory.img; unsupported kinds
bool PlanTasks(Context& ctx);           // tree: pstree, cores, namespaces, sessions
void PlanFileTables(Context& ctx);      // files: files.img, fd tables, pipe data, cwd/root
void PlanResume(Context& ctx);          // resume: how each task hands over
void PlanSeccomp(Context& ctx);         // seccomp: each task's filter chain
void PlanAttrs(Context& ctx);           // attrs: limits, scheduling, parent-death signal, umask... of live tasks
void PlanMemory(Context& ctx);          // mm: address spaces, registers and signal state of tasks that continue
void PlanMounts(Context& ctx);          // mounts: tree, creation order, placement, sharing
void PlanAutofs(Context& ctx);          // autofs: each superblock and its master
void PlanForks(Context& ctx);           // tree: helpers, who forks whom, fork order
void PlanFileCreation(Context& ctx);    // files: who makes each description, who parks it
void PlanZone(Context& ctx);            // mm: who makes each shared object, and where the bootstrap zone lies
void LayOutTasks(Context& ctx);         // the task list in fork order, and its index

// How a range of dumped pages lies in what a restore fills: the pieces
// (keeping the run's file offsets) that each lie in one fillable area, or
// false when some page lies where nothing may be filled.
using Splitter = std::function<bool(const PagesRun& run, std::vector<PagesRun>& pieces)>;
// The runs of pagemap image `pm` (named `name`) cut by `split`, checked
// against its pages image: `pages_file` and `runs` are set. Problems are
// added to ctx (false then).
bool ReadPagemap(Context& ctx, const ImageFile& pm, const std::string& name, std::string& pages_file, std::vector<PagesRun>& runs,
                 const Splitter& split);
// tree: the System V objects of the tree's IPC namespace (ipc.ns_id),
// checked against its sysctls `var`.
void PlanSysvObjects(Context& ctx, const img::ipc_var_entry& var, IpcPlan& ipc);
// posix-mqueues-<id>.img of the IPC namespace `ipc`: its queues, and the
// fs/mqueue limits they are made under (appended to ipc.creation).
void PlanPosixMqueues(Context& ctx, const img::ipc_var_entry& var, IpcPlan& ipc);
// tree: namespaces of one kind (UTS, IPC, network), which every task must
// share with the root task. `id` reads a task's namespace id (nullopt when
// its ids lack it); `a_what` names one ("a UTS namespace"). Returns the id
// of the root task's namespace when it is the tree's own (the inventory's
// root_ids name another, outside the tree), nullopt when the tree shares
// the caller's or the images do not say which is outside; a task in another
// namespace than the root task's is a problem added to ctx.
using NsIdOf = std::optional<uint32_t> (*)(const img::task_kobj_ids_entry& ids);
std::optional<uint32_t> TreeNamespace(Context& ctx, const img::task_kobj_ids_entry* root_ids, NsIdOf id, const std::string& a_what);
// tree: the network namespace of the tree's own, when `root_ids` (the root
// task's) names another than the inventory's (images/plan/net.cc).
void PlanNet(Context& ctx, const img::task_kobj_ids_entry* root_ids);

std::string Str(uint64_t v);
std::string HexStr(uint32_t v);
std::string OctStr(uint32_t v);

}  // namespace ro::images::plan
