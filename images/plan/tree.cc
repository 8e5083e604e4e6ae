// The tree, first half: tasks from pstree.img and their cores, the
// namespaces the root task gets, and sessions and groups a fork order can
// produce. images/plan/forks.cc plans the forks themselves.
#include <csignal>
#include <optional>
#include <set>

#include "images/plan/context.h"
#include "images/proto/pstree.pb.h"
#include "images/ipc_sysctls.h"
#include "images/proto/utsns.pb.h"
#include "sys/namespaces.h"

namespace ro::images::plan {
namespace {

constexpr uint32_t kPidMaxLimit = 4u << 20;  // PID_MAX_LIMIT on 64-bit
constexpr uint32_t kTaskAlive = 1;
constexpr uint32_t kTaskDead = 2;
constexpr uint32_t kTaskStopped = 3;

// A wait status a zombie can come back with: an exit code (code << 8), or
// death by a signal whose default action terminates (the core-dump bit
// aside). A stopping or ignored signal would leave the task alive.
bool IsExitStatus(uint32_t status) {
  uint32_t sig = status & 0x7f;
  if (sig == 0) return (status & ~0xff00u) == 0;
  if ((status & ~0xffu) != 0 || sig >= 65) return false;
  switch (sig) {
    case SIGSTOP: case SIGTSTP: case SIGTTIN: case SIGTTOU: case SIGCHLD: case SIGCONT: case SIGURG: case SIGWINCH:
      return false;
    default:
      return true;
  }
}

bool ReadPstree(Context& ctx) {
  const std::string name = MakeFileName(PstreeKind());
  const ImageFile* f = ctx.dir.Find(PstreeKind());
  if (f == nullptr || f->entries.empty()) {
    ctx.problems.Add(name, std::nullopt, f == nullptr ? "missing" : "holds no task");
    return false;
  }
  std::map<pid_t, size_t> entry_of;
  std::optional<size_t> root;
  for (size_t i = 0; i < f->entries.size(); ++i) {
    const auto& e = f->As<img::pstree_entry>(i);
    if (e.pid() == 0 || e.pid() >= kPidMaxLimit) {
      ctx.problems.Add(name, i, "pid " + Str(e.pid()) + " is out of range 1.." + Str(kPidMaxLimit - 1));
      continue;
    }
    if (e.pgid() >= kPidMaxLimit || e.sid() >= kPidMaxLimit || e.ppid() >= kPidMaxLimit) {
      ctx.problems.Add(name, i, "ppid, pgid or sid out of range");
      continue;
    }
    if (!entry_of.emplace(e.pid(), i).second) {
      ctx.problems.Add(name, i, "duplicate pid " + Str(e.pid()) + " (also entry " + Str(entry_of[e.pid()]) + ")");
      continue;
    }
    if (e.ppid() == 0) {
      if (root) {
        ctx.problems.Add(name, i, "second root task " + Str(e.pid()) + " (ppid 0; entry " + Str(*root) + " is the first)");
        continue;
      }
      root = i;
    }
    TaskPlan t;
    t.pid = static_cast<pid_t>(e.pid());
    t.ppid = static_cast<pid_t>(e.ppid());
    t.pgid = static_cast<pid_t>(e.pgid());
    t.sid = static_cast<pid_t>(e.sid());
    ctx.tasks.emplace(t.pid, std::move(t));
    ctx.pstree_entry.emplace(static_cast<pid_t>(e.pid()), i);
  }
  if (!root) {
    ctx.problems.Add(name, std::nullopt, "no root task (no entry with ppid 0)");
    return false;
  }
  ctx.root_pid = static_cast<pid_t>(f->As<img::pstree_entry>(*root).pid());
  for (size_t i = 0; i < f->entries.size(); ++i) {
    const auto& e = f->As<img::pstree_entry>(i);
    if (e.ppid() == 0 || entry_of.count(e.pid()) == 0 || entry_of[e.pid()] != i) continue;
    auto parent = ctx.tasks.find(static_cast<pid_t>(e.ppid()));
    if (parent == ctx.tasks.end()) {
      ctx.problems.Add(name, i, "ppid " + Str(e.ppid()) + " of task " + Str(e.pid()) + " names no task in the tree");
      continue;
    }
    parent->second.children.push_back(static_cast<pid_t>(e.pid()));
  }
  if (!ctx.ok()) return false;
  // Every task must hang below the root: anything else is a ppid cycle.
  std::set<pid_t> seen;
  std::vector<pid_t> stack{ctx.root_pid};
  while (!stack.empty()) {
    pid_t p = stack.back();
    stack.pop_back();
    if (!seen.insert(p).second) continue;
    for (pid_t c : ctx.tasks[p].children) stack.push_back(c);
  }
  for (const auto& [pid, t] : ctx.tasks) {
    if (seen.count(pid) == 0) {
      ctx.problems.Add(name, ctx.pstree_entry[pid], "task " + Str(pid) + " is not below the root task: its ppid chain is a cycle");
    }
  }
  return ctx.ok();
}

// A live task's threads: the task itself first, each id in range. (Ids
// unique across the tree are checked once all are known, in PlanTasks.)
void ReadThreads(Context& ctx, TaskPlan& t) {
  const std::string name = MakeFileName(PstreeKind());
  size_t i = ctx.pstree_entry[t.pid];
  const auto& e = ctx.dir.Find(PstreeKind())->As<img::pstree_entry>(i);
  if (e.threads_size() == 0) {
    t.threads = {t.pid};
    return;
  }
  if (e.threads(0) != e.pid()) {
    ctx.problems.Add(name, i, "thread " + Str(e.threads(0)) + " of task " + Str(e.pid()) + " comes first, not the task itself");
    return;
  }
  for (uint32_t tid : e.threads()) {
    if (tid == 0 || tid >= kPidMaxLimit) {
      ctx.problems.Add(name, i, "thread id " + Str(tid) + " of task " + Str(e.pid()) + " is out of range 1.." + Str(kPidMaxLimit - 1));
      return;
    }
    t.threads.push_back(static_cast<pid_t>(tid));
  }
}

// Every thread id of the tree once: a thread id is a pid of the namespace.
void CheckThreadIds(Context& ctx) {
  std::map<pid_t, pid_t> owner;  // id -> task
  for (const auto& [pid, t] : ctx.tasks) owner.emplace(pid, pid);
  for (const auto& [pid, t] : ctx.tasks) {
    for (size_t k = 1; k < t.threads.size(); ++k) {
      auto [it, fresh] = owner.emplace(t.threads[k], pid);
      if (!fresh) {
        ctx.problems.Add(MakeFileName(PstreeKind()), ctx.pstree_entry[pid],
                         "thread " + Str(t.threads[k]) + " of task " + Str(pid) + " has the id of " +
                             (it->first == it->second ? "task " : "a thread of task ") + Str(it->second));
      }
    }
  }
}

const img::task_kobj_ids_entry* IdsOf(const Context& ctx, pid_t pid, const img::core_entry* core) {
  if (core != nullptr && core->has_ids()) return &core->ids();
  const ImageFile* f = ctx.dir.Find(IdsKind(), static_cast<uint32_t>(pid));
  return f != nullptr ? &f->As<img::task_kobj_ids_entry>(0) : nullptr;
}

void ReadCores(Context& ctx) {
  for (auto& [pid, t] : ctx.tasks) {
    const std::string name = MakeFileName(CoreKind(), static_cast<uint32_t>(pid));
    const img::core_entry* core = ctx.Core(pid);
    if (core == nullptr) {
      ctx.problems.Add(name, std::nullopt, "missing: every task of pstree.img needs its core image");
      continue;
    }
    if (!core->has_tc()) {
      ctx.problems.Add(name, 0, "no task_core_entry (tc)");
      continue;
    }
    t.comm = core->tc().comm();
    switch (core->tc().task_state()) {
      case kTaskAlive: t.kind = TaskKind::kAlive; break;
      case kTaskDead:
        t.kind = TaskKind::kZombie;
        t.exit_status = core->tc().exit_code();
        if (!IsExitStatus(t.exit_status)) {
          ctx.problems.Add(name, 0, "exit_code " + HexStr(t.exit_status) +
                                        " is not the wait status of a task that exited or was killed by a terminating signal");
        }
        if (pid == ctx.root_pid) ctx.problems.Add(name, 0, "the root task is a zombie");
        if (!t.children.empty()) ctx.problems.Add(name, 0, "zombie " + Str(pid) + " has children");
        break;
      case kTaskStopped:
        ctx.problems.Add(name, 0, "task " + Str(pid) + " was stopped: stopped tasks are not supported");
        break;
      default:
        ctx.problems.Add(name, 0, "task_state " + Str(core->tc().task_state()) + " is not alive (1), dead (2) or stopped (3)");
        break;
    }
    // A zombie's thread ids mean nothing (CRIU writes an uninitialised one).
    if (t.kind != TaskKind::kZombie) ReadThreads(ctx, t);
    const img::task_kobj_ids_entry* ids = IdsOf(ctx, pid, core);
    if (ids == nullptr) {
      if (t.kind != TaskKind::kZombie) {
        ctx.problems.Add(name, 0, "no namespace/file ids: neither core.ids nor " +
                                      MakeFileName(IdsKind(), static_cast<uint32_t>(pid)) + " is present");
      }
    } else {
      ctx.ids[pid] = ids;
    }
  }
}

// Namespaces restore-orch does not create: every task must share the one
// the inventory names as outside the tree (CRIU's root_ids), or the tree
// would come back in the caller's. Ids an image leaves out are not
// compared. timens-N.img (CRIU writes it for every dump: the clocks at
// dump time) matters only for a time namespace of the tree's own.
void CheckOtherNamespaces(Context& ctx) {
  if (ctx.root_ids == nullptr) return;
  const img::task_kobj_ids_entry& outside = *ctx.root_ids;
  using Has = bool (img::task_kobj_ids_entry::*)() const;
  using Get = uint32_t (img::task_kobj_ids_entry::*)() const;
  struct NsKind {
    const char* name;
    Has has;
    Get get;
  };
  static const NsKind kKinds[] = {
      {"user", &img::task_kobj_ids_entry::has_user_ns_id, &img::task_kobj_ids_entry::user_ns_id},
      {"cgroup", &img::task_kobj_ids_entry::has_cgroup_ns_id, &img::task_kobj_ids_entry::cgroup_ns_id},
      {"time", &img::task_kobj_ids_entry::has_time_ns_id, &img::task_kobj_ids_entry::time_ns_id},
  };
  for (const auto& [pid, ids] : ctx.ids) {
    for (const NsKind& k : kKinds) {
      if (!(ids->*k.has)() || !(outside.*k.has)() || (ids->*k.get)() == (outside.*k.get)()) continue;
      ctx.problems.Add(MakeFileName(CoreKind(), static_cast<uint32_t>(pid)), 0,
                       "task " + Str(pid) + " is in a " + k.name + " namespace of its own (id " + Str((ids->*k.get)()) +
                           "): restore-orch does not restore " + k.name + " namespaces");
      break;
    }
  }
}

// One of a UTS namespace's names (utsns.proto): what sethostname(2) and
// setdomainname(2) take and uname(2) gives back.
void CheckUtsName(Context& ctx, const std::string& file, const char* field, const std::string& value) {
  if (value.size() > sys::kUtsNameMax) {
    ctx.problems.Add(file, 0, std::string(field) + " is " + Str(value.size()) + " bytes long: the kernel takes at most " + Str(sys::kUtsNameMax));
  } else if (value.find('\0') != std::string::npos) {
    ctx.problems.Add(file, 0, std::string(field) + " holds a NUL byte: uname(2) would cut it there");
  }
}

}  // namespace

std::optional<uint32_t> TreeNamespace(Context& ctx, const img::task_kobj_ids_entry* root_ids, NsIdOf id, const std::string& a_what) {
  const std::string what = a_what.substr(a_what.find(' ') + 1);
  // Plain values (an id of 0 never counts without its flag): GCC 12 takes
  // optionals compared here for uninitialised.
  const std::optional<uint32_t> root_opt = root_ids != nullptr ? id(*root_ids) : std::nullopt;
  const std::optional<uint32_t> outside_opt = ctx.root_ids != nullptr ? id(*ctx.root_ids) : std::nullopt;
  const bool has_root = root_opt.has_value(), has_outside = outside_opt.has_value();
  const uint32_t root = root_opt.value_or(0), outside = outside_opt.value_or(0);
  for (const auto& [pid, ids] : ctx.ids) {
    const std::optional<uint32_t> own_opt = id(*ids);
    if (!own_opt.has_value()) continue;
    const uint32_t own = own_opt.value_or(0);
    const std::string core = MakeFileName(CoreKind(), static_cast<uint32_t>(pid));
    if (!has_root) {
      // No id for the root task: every task must share the caller's.
      if (has_outside && own != outside) {
        ctx.problems.Add(core, 0, "task " + Str(pid) + " is in " + a_what + " of its own (id " + Str(own) + ") while the root task's is not named");
      }
    } else if (own != root) {
      ctx.problems.Add(core, 0, "task " + Str(pid) + " is in another " + what + " (id " + Str(own) + ") than the root task (id " + Str(root) +
                                    "): a tree is restored with one " + what);
    }
  }
  if (!has_root || !has_outside || outside == root) return std::nullopt;
  return root;
}

namespace {

// Every task shares the root task's UTS namespace. When that is not the
// one the inventory names as outside the tree (CRIU's root_ids), the root
// task is cloned into a new one that gets the names of
// utsns-<id>.img (CRIU's layout, keyed by the namespace's id).
void PlanUts(Context& ctx, const img::task_kobj_ids_entry* root_ids) {
  auto uts = [](const img::task_kobj_ids_entry& ids) { return ids.has_uts_ns_id() ? std::optional(ids.uts_ns_id()) : std::nullopt; };
  std::optional<uint32_t> own = TreeNamespace(ctx, root_ids, uts, "a UTS namespace");
  if (!own) return;
  const uint32_t id = *own;
  const std::string name = MakeFileName(UtsnsKind(), id);
  const ImageFile* f = ctx.dir.Find(UtsnsKind(), id);
  if (f == nullptr || f->entries.empty()) {
    ctx.problems.Add(name, std::nullopt, "missing: the root task is in a UTS namespace of its own (id " + Str(id) + ")");
    return;
  }
  const auto& e = f->As<img::utsns_entry>(0);
  CheckUtsName(ctx, name, "nodename", e.nodename());
  CheckUtsName(ctx, name, "domainname", e.domainname());
  ctx.plan.ns.uts = UtsPlan{id, e.nodename(), e.domainname()};
}

// As the UTS namespace: every task shares the root task's IPC namespace;
// one of the tree's own gets the sysctls of ipcns-var-<id>.img.
void PlanIpc(Context& ctx, const img::task_kobj_ids_entry* root_ids) {
  auto ipc_id = [](const img::task_kobj_ids_entry& ids) { return ids.has_ipc_ns_id() ? std::optional(ids.ipc_ns_id()) : std::nullopt; };
  std::optional<uint32_t> own = TreeNamespace(ctx, root_ids, ipc_id, "an IPC namespace");
  if (!own) return;
  const uint32_t id = *own;
  const std::string name = MakeFileName(IpcVarKind(), id);
  const ImageFile* f = ctx.dir.Find(IpcVarKind(), id);
  if (f == nullptr || f->entries.empty()) {
    ctx.problems.Add(name, std::nullopt, "missing: the root task is in an IPC namespace of its own (id " + Str(id) + ")");
    return;
  }
  const auto& e = f->As<img::ipc_var_entry>(0);
  for (std::string& p : IpcVarProblems(e)) ctx.problems.Add(name, 0, std::move(p));
  IpcPlan ipc{.ns_id = id};
  for (auto& [path, text] : IpcSysctlsToWrite(e)) {
    (path.ends_with("_next_id") ? ipc.next_ids : ipc.sysctls).emplace_back(std::move(path), std::move(text));
  }
  PlanSysvObjects(ctx, e, ipc);
  PlanPosixMqueues(ctx, e, ipc);
  ctx.plan.ns.ipc = std::move(ipc);
}

// The root task gets a new PID (mount) namespace unless it shares the one
// the inventory names as outside the tree; every task shares the root's.
void PlanNamespaces(Context& ctx) {
  auto root = ctx.ids.find(ctx.root_pid);
  const img::task_kobj_ids_entry* root_ids = root != ctx.ids.end() ? root->second : nullptr;
  NamespacePlan& ns = ctx.plan.ns;
  if (ctx.root_ids != nullptr && root_ids != nullptr) {
    ns.new_pid = !(root_ids->has_pid_ns_id() && ctx.root_ids->has_pid_ns_id() &&
                   root_ids->pid_ns_id() == ctx.root_ids->pid_ns_id());
    ns.new_mnt = !(root_ids->has_mnt_ns_id() && ctx.root_ids->has_mnt_ns_id() &&
                   root_ids->mnt_ns_id() == ctx.root_ids->mnt_ns_id());
  }
  const std::string pstree = MakeFileName(PstreeKind());
  size_t root_entry = ctx.pstree_entry[ctx.root_pid];
  if (!ns.new_pid && ctx.root_pid == 1) {
    ctx.problems.Add(pstree, root_entry, "root task has pid 1 but shares the caller's PID namespace");
  }
  if (ns.new_pid && ctx.root_pid != 1) {
    ctx.problems.Add(pstree, root_entry, "root task " + Str(ctx.root_pid) + " of a new PID namespace must have pid 1");
  }
  for (const auto& [pid, ids] : ctx.ids) {
    if (pid == ctx.root_pid || root_ids == nullptr) continue;
    if (ids->pid_ns_id() != root_ids->pid_ns_id() || ids->mnt_ns_id() != root_ids->mnt_ns_id()) {
      ctx.problems.Add(MakeFileName(CoreKind(), static_cast<uint32_t>(pid)), 0,
                       "task " + Str(pid) + " is in another PID or mount namespace than the root task: nested namespaces are not supported");
    }
  }
  if (ns.new_mnt && root_ids != nullptr && root_ids->has_mnt_ns_id()) ns.mnt_ns_id = root_ids->mnt_ns_id();
  CheckOtherNamespaces(ctx);
  PlanUts(ctx, root_ids);
  PlanIpc(ctx, root_ids);
  PlanNet(ctx, root_ids);
}

// Sessions and groups outside the tree: the caller's (a job of a shell's
// session). Such a task is written with sid or pgid 0 by restore-orch's
// dump, and by any dump of a tree in a PID namespace of its own (its
// leader is not in the namespace); a CRIU dump of a shell job in its
// caller's PID namespace writes the outside numbers: the root task's
// session and group when no task of the tree leads them. As CRIU, such tasks are restored only with
// --shell-job, and then stay in restore-orch's session and group (0 in the
// plan). One line names the first such task and the flag.
void PlaceOutsideSessions(Context& ctx) {
  const TaskPlan& root = ctx.Task(ctx.root_pid);
  pid_t outside_sid = root.sid != root.pid && ctx.tasks.count(root.sid) == 0 ? root.sid : 0;
  pid_t outside_pgid = root.pgid != root.pid && ctx.tasks.count(root.pgid) == 0 ? root.pgid : 0;
  auto out_sid = [&](const TaskPlan& t) { return t.sid == 0 || t.sid == outside_sid; };
  auto out_pgid = [&](const TaskPlan& t) { return t.pgid == 0 || (outside_pgid != 0 && t.pgid == outside_pgid); };
  std::optional<pid_t> first;
  size_t count = 0;
  for (auto& [pid, t] : ctx.tasks) {
    // A group outside the tree is only for a task of a session outside it
    // (the other combination is refused by CheckSessions).
    if (!out_sid(t)) continue;
    ++count;
    if (!first || ctx.pstree_entry[pid] < ctx.pstree_entry[*first]) first = pid;
    if (!ctx.options.shell_job) continue;
    if (out_pgid(t)) t.pgid = 0;
    t.sid = 0;
  }
  if (!first || ctx.options.shell_job) return;
  const TaskPlan& t = ctx.Task(*first);
  std::string others = count > 1 ? " (and " + Str(count - 1) + " more task" + (count > 2 ? "s" : "") + ")" : "";
  ctx.problems.Add(MakeFileName(PstreeKind()), ctx.pstree_entry[*first],
                   "task " + Str(t.pid) + " is in a session outside the tree (sid " + Str(t.sid) +
                       (t.sid == 0 ? "" : ", which the root task does not lead") + ")" + others +
                       ": a shell job, restored only with --shell-job (-j), which leaves it in restore-orch's session "
                       "and process group");
}

void CheckSessions(Context& ctx) {
  const std::string name = MakeFileName(PstreeKind());
  std::map<pid_t, pid_t> group_sid;    // pgid -> sid of its first member
  std::map<pid_t, pid_t> group_first;  // pgid -> that member
  for (const auto& [pid, t] : ctx.tasks) {
    size_t entry = ctx.pstree_entry[pid];
    if (t.sid == pid && t.pgid != pid) {
      ctx.problems.Add(name, entry, "session leader " + Str(pid) + " has pgid " + Str(t.pgid) +
                                        ": a session leader always leads its own group");
    }
    if (t.pgid == 0 && t.sid != 0) {
      ctx.problems.Add(name, entry, "task " + Str(pid) + " is in a group outside the tree (pgid 0) but in session " + Str(t.sid));
    }
    if (t.pgid != 0) {
      auto [it, fresh] = group_sid.emplace(t.pgid, t.sid);
      if (fresh) {
        group_first[t.pgid] = pid;
      } else if (it->second != t.sid) {
        ctx.problems.Add(name, entry, "process group " + Str(t.pgid) + " spans two sessions: task " + Str(pid) +
                                          " is in session " + Str(t.sid) + ", task " + Str(group_first[t.pgid]) +
                                          " in session " + Str(it->second));
      }
    }
  }
  std::set<pid_t> session_ids;
  for (const auto& [pid, t] : ctx.tasks) session_ids.insert(t.sid);
  for (const auto& [pid, t] : ctx.tasks) {
    size_t entry = ctx.pstree_entry[pid];
    // The kernel keeps a pid reserved while it names a session or group,
    // so a live task bearing that pid is that session's leader.
    if (session_ids.count(pid) != 0 && t.sid != pid) {
      ctx.problems.Add(name, entry, "task " + Str(pid) + " is in session " + Str(t.sid) + " but session " + Str(pid) +
                                        " bears its pid: only its leader can have that pid");
    }
    auto g = group_sid.find(pid);
    if (g != group_sid.end() && t.sid != g->second) {
      ctx.problems.Add(name, entry, "task " + Str(pid) + " is in session " + Str(t.sid) + " but its process group " +
                                        Str(pid) + " lives in session " + Str(g->second));
    }
  }
  for (const auto& [pgid, sid] : group_sid) {
    auto leader = ctx.tasks.find(pgid);
    if (leader != ctx.tasks.end() && leader->second.pgid != pgid) {
      ctx.problems.Add(name, ctx.pstree_entry[pgid], "task " + Str(pgid) + " left its own process group " + Str(pgid) +
                                                         ", which lives on with task " + Str(group_first[pgid]) +
                                                         ": not supported");
    }
    if (session_ids.count(pgid) != 0 && sid != pgid) {
      ctx.problems.Add(name, ctx.pstree_entry[group_first[pgid]],
                       "process group " + Str(pgid) + " is in session " + Str(sid) + ", but group " + Str(pgid) +
                           " can only have been made by setsid() of session " + Str(pgid));
    }
  }
}

}  // namespace

bool PlanTasks(Context& ctx) {
  if (!ReadPstree(ctx)) return false;
  ReadCores(ctx);
  CheckThreadIds(ctx);
  PlanNamespaces(ctx);
  PlaceOutsideSessions(ctx);
  CheckSessions(ctx);
  return true;
}

}  // namespace ro::images::plan
