#include "orchestrator/dump/dump.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>

#include "images/builders.h"
#include "images/ipc_sysctls.h"
#include "images/kinds.h"
#include "images/proto/inventory.pb.h"
#include "images/proto/pstree.pb.h"
#include "images/proto/resume.pb.h"
#include "images/proto/utsns.pb.h"
#include "orchestrator/dump/collector.h"
#include "sys/log.h"
#include "sys/proc.h"
#include "sys/proc_tree.h"
#include "sys/process.h"
#include "sys/namespaces.h"

namespace ro {
namespace dump {

std::string Str(long long v) { return std::to_string(v); }

namespace {

Result<ino_t> NsInode(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return SysError("stat " + path);
  return st.st_ino;
}

// Namespaces restore-orch does not make: a task must share them with
// restore-orch, or its restore would put it somewhere else.
constexpr const char* kForeignNamespaces[] = {"user", "cgroup", "time"};

}  // namespace

images::ImageFile& Collector::File(const images::Kind& kind, std::optional<uint32_t> key) {
  images::ImageFile& f = out_.files[images::MakeFileName(kind, key)];
  f.kind = &kind;
  return f;
}

Result<DumpedImages> Collector::Run() {
  RO_TRY(ReadNamespaces());
  RO_TRY(FindOutsideSessions());
  if (new_mnt_) RO_TRY(ReadMounts());
  size_t collected = 0;
  for (const FrozenTree::Task& t : tree_.tasks()) {
    if (options_.progress) options_.progress(collected++, tree_.tasks().size());
    RO_TRY(CollectTask(t));
  }
  RO_TRY(CheckSysvAttachments());
  RO_TRY(DumpSharedMemory());
  WritePstreeAndInventory();
  if (new_mnt_) RO_TRY(CollectMounts());
  // A pipe whose other end is outside the tree is restored without it.
  for (const auto& [pipe_id, h] : pipes_) {
    if (h.writer && !h.reader) {
      out_.warnings.push_back(h.first + ": pipe " + Str(pipe_id) +
                              " has no reader in the tree: after restore, writes to it fail with EPIPE");
    }
    if (h.reader && !h.writer) {
      out_.warnings.push_back(h.first + ": pipe " + Str(pipe_id) +
                              " has no writer in the tree: after restore, reads reach end of file once its data is read");
    }
  }
  return std::move(out_);
}

Status Collector::ReadNamespaces() {
  const FrozenTree::Task& root = tree_.tasks().front();
  std::string proc = "/proc/" + Str(root.pid) + "/";
  RO_ASSIGN_OR_RETURN(own_pid_ns_, NsInode("/proc/self/ns/pid"));
  RO_ASSIGN_OR_RETURN(own_mnt_ns_, NsInode("/proc/self/ns/mnt"));
  RO_ASSIGN_OR_RETURN(tree_pid_ns_, NsInode(proc + "ns/pid"));
  RO_ASSIGN_OR_RETURN(tree_mnt_ns_, NsInode(proc + "ns/mnt"));
  RO_ASSIGN_OR_RETURN(std::string root_status, sys::ReadProcFile(proc + "status"));
  RO_ASSIGN_OR_RETURN(std::string self, sys::ReadProcFile("/proc/self/status"));
  for (const char* ns : kForeignNamespaces) {
    auto own = NsInode(std::string("/proc/self/ns/") + ns);
    own_ns_[ns] = own.ok() ? *own : 0;
  }
  new_pid_ = tree_pid_ns_ != own_pid_ns_;
  new_mnt_ = tree_mnt_ns_ != own_mnt_ns_;
  long inner = sys::StatusInnermost(root_status, "NSpid");
  root_who_ = "task " + Str(inner > 0 ? inner : root.pid) + (inner > 0 && inner != root.pid ? " (pid " + Str(root.pid) + " here)" : "");
  // The tree's UTS namespace: restore-orch's, or one of its own whose names
  // are dumped (utsns-<id>.img, as CRIU lays it out).
  RO_ASSIGN_OR_RETURN(own_uts_ns_, NsInode("/proc/self/ns/uts"));
  RO_ASSIGN_OR_RETURN(tree_uts_ns_, NsInode(proc + "ns/uts"));
  if (tree_uts_ns_ != own_uts_ns_) {
    RO_ASSIGN_OR_RETURN(sys::UtsNames names, sys::ReadUtsNames(root.pid));
    auto uts = std::make_unique<img::utsns_entry>();
    uts->set_nodename(names.nodename);
    uts->set_domainname(names.domainname);
    File(images::UtsnsKind(), static_cast<uint32_t>(tree_uts_ns_)).entries.push_back(images::Entry{std::move(uts), {}});
  }
  // Its IPC namespace: restore-orch's, or one of its own whose sysctls
  // (ipcns-var-<id>.img) and System V objects are dumped.
  RO_ASSIGN_OR_RETURN(own_ipc_ns_, NsInode("/proc/self/ns/ipc"));
  RO_ASSIGN_OR_RETURN(tree_ipc_ns_, NsInode(proc + "ns/ipc"));
  if (tree_ipc_ns_ != own_ipc_ns_) {
    // Each segment's pages are dumped while its file is open, one at a time.
    auto pages = [this](const sys::SysvShmSegment& s, int contents) -> Status {
      Status dumped = DumpShmemObject(static_cast<uint64_t>(s.perm.id), contents, s.size);
      if (!dumped.ok()) return std::move(dumped).error().Within("System V shared memory segment " + Str(s.perm.id));
      return Status();
    };
    RO_ASSIGN_OR_RETURN(sys::IpcNamespaceState ipc, sys::ReadIpcNamespace(root.pid, images::IpcSysctlPaths(), pages, true));
    tree_mqueue_dev_ = ipc.mqueue_dev;
    RO_ASSIGN_OR_RETURN(img::ipc_var_entry var, images::IpcVarFromSysctls(ipc.sysctls));
    File(images::IpcVarKind(), static_cast<uint32_t>(tree_ipc_ns_))
        .entries.push_back(images::Entry{std::make_unique<img::ipc_var_entry>(std::move(var)), {}});
    RO_TRY(DumpSysvObjects(std::move(ipc.sysv)));
    RO_TRY(DumpPosixMqueues(std::move(ipc.mqueues)));
  }
  // Its network namespace: restore-orch's, or one of its own.
  RO_ASSIGN_OR_RETURN(own_net_ns_, NsInode("/proc/self/ns/net"));
  RO_ASSIGN_OR_RETURN(tree_net_ns_, NsInode(proc + "ns/net"));
  if (tree_net_ns_ != own_net_ns_) RO_TRY(DumpNetNamespace(root.pid));
  pid_levels_ = sys::StatusValues(root_status, "NSpid").size();
  const std::string& who = root_who_;
  if (new_pid_ && sys::StatusInnermost(root_status, "NSpid") != 1) {
    return Refuse(who + ": it is pid " + Str(sys::StatusInnermost(root_status, "NSpid")) +
                " of its PID namespace, not its init: dump the tree from the namespace's init");
  }
  if (new_pid_ && pid_levels_ != sys::StatusValues(self, "NSpid").size() + 1) {
    return Refuse(who + ": its PID namespace is not a child of restore-orch's (nested PID namespaces are not supported)");
  }
  return {};
}

Status Collector::CollectTask(const FrozenTree::Task& frozen) {
  if (options_.interrupted) RO_TRY(options_.interrupted());
  Task t;
  t.frozen = &frozen;
  t.outer = frozen.pid;
  t.who = "task " + Str(frozen.pid);
  RO_ASSIGN_OR_RETURN(t.info, sys::ReadTask(frozen.pid));
  t.pid = t.info.pid;
  t.pgid = outside_pgids_.count(t.info.pgid) ? 0 : t.info.pgid;  // --shell-job (else refused)
  t.sid = outside_sids_.count(t.info.sid) ? 0 : t.info.sid;
  if (t.pid != t.outer) t.who = "task " + Str(t.pid) + " (pid " + Str(t.outer) + " here)";
  t.comm = t.info.comm;
  t.zombie = frozen.zombie;
  t.exit_status = static_cast<uint32_t>(t.info.exit_code);
  if (frozen.parent != 0) {
    const Task& parent = tasks_.at(by_outer_.at(frozen.parent));
    t.ppid = parent.pid;
  }
  if (Status s = CheckTask(t); !s.ok()) return std::move(s).error().Within(t.who);
  tasks_.push_back(std::move(t));
  by_outer_[frozen.pid] = tasks_.size() - 1;
  Task& saved = tasks_.back();
  using Clock = std::chrono::steady_clock;
  Clock::time_point start = Clock::now();
  if (!saved.zombie) {
    if (Status s = ReadLiveState(saved); !s.ok()) return std::move(s).error().Within(saved.who);
  }
  Clock::time_point state_read = Clock::now();
  if (Status s = CollectCore(saved); !s.ok()) return std::move(s).error().Within(saved.who);
  if (saved.zombie) {
    ++out_.counts.zombies;
    return {};
  }
  for (size_t i = 1; i < saved.live->threads.size(); ++i) saved.thread_ids.push_back(saved.live->threads[i].tid);
  for (auto step : {&Collector::CollectFds, &Collector::CollectFsDirs, &Collector::CollectResume, &Collector::CollectAttrs}) {
    if (Status s = (this->*step)(saved); !s.ok()) return std::move(s).error().Within(saved.who);
  }
  Clock::time_point files_read = Clock::now();
  if (Status s = CollectMm(saved); !s.ok()) return std::move(s).error().Within(saved.who);
  saved.live.reset();  // its images hold it now
  auto ms = [](Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
  log::Debug("{}: registers and signal state {:.2f} ms, fds {:.2f} ms, memory {:.2f} ms", saved.who, ms(start, state_read),
             ms(state_read, files_read), ms(files_read, Clock::now()));
  return {};
}

Status Collector::CheckTask(const Task& t) {
  if (t.info.nspid.size() != pid_levels_) {
    return Refuse("it is in a PID namespace of its own below the tree's (nested PID namespaces are not supported)");
  }
  if (t.zombie) return {};
  if (t.frozen->stopped) return Refuse("it is stopped (job control): stopped tasks are not supported");
  RO_ASSIGN_OR_RETURN(ino_t pid_ns, NsInode(t.Proc("ns/pid")));
  RO_ASSIGN_OR_RETURN(ino_t mnt_ns, NsInode(t.Proc("ns/mnt")));
  if (pid_ns != tree_pid_ns_) return Refuse("it is in another PID namespace than the tree's root");
  if (mnt_ns != tree_mnt_ns_) return Refuse("it is in another mount namespace than the tree's root");
  RO_ASSIGN_OR_RETURN(ino_t uts_ns, NsInode(t.Proc("ns/uts")));
  if (uts_ns != tree_uts_ns_) return Refuse("it is in another UTS namespace than the tree's root (one UTS namespace per tree is restored)");
  RO_ASSIGN_OR_RETURN(ino_t ipc_ns, NsInode(t.Proc("ns/ipc")));
  if (ipc_ns != tree_ipc_ns_) return Refuse("it is in another IPC namespace than the tree's root (one IPC namespace per tree is restored)");
  RO_ASSIGN_OR_RETURN(ino_t net_ns, NsInode(t.Proc("ns/net")));
  if (net_ns != tree_net_ns_) return Refuse("it is in another network namespace than the tree's root (one network namespace per tree is restored)");
  for (const char* ns : kForeignNamespaces) {
    ino_t own = own_ns_[ns];
    if (own == 0) continue;  // a kernel without it
    RO_ASSIGN_OR_RETURN(ino_t its, NsInode(t.Proc(std::string("ns/") + ns)));
    if (own != its) {
      return Refuse(std::string("it is in a ") + ns + " namespace of its own, which restore-orch does not restore");
    }
  }
  // Sharing with the parent what only threads or CLONE_* children share.
  if (t.frozen->parent != 0) {
    struct Shared {
      sys::KcmpType type;
      const char* what;
    };
    for (Shared s : {Shared{sys::KcmpType::kVm, "its memory"}, Shared{sys::KcmpType::kFiles, "its fd table"},
                     Shared{sys::KcmpType::kFs, "its cwd and root"}, Shared{sys::KcmpType::kSighand, "its signal handlers"}}) {
      if (sys::KcmpSame(t.outer, t.frozen->parent, s.type)) {
        return Refuse(std::string("it shares ") + s.what + " with its parent (CLONE_VM/FILES/FS/SIGHAND): not supported");
      }
    }
  }
  return {};
}

Status Collector::CollectCore(const Task& t) {
  ++out_.counts.tasks;
  auto core = std::make_unique<img::core_entry>();
#if defined(__aarch64__)
  core->set_mtype(img::core_entry::AARCH64);
#else
  core->set_mtype(img::core_entry::X86_64);
#endif
  auto* tc = core->mutable_tc();
  tc->set_task_state(t.zombie ? 2 : 1);
  tc->set_exit_code(t.zombie ? t.exit_status : 0);
  tc->set_flags(0);
  tc->set_comm(t.comm);
  tc->set_personality(0);
  tc->set_blk_sigset(0);
  if (!t.zombie) {
    auto persona = sys::ReadProcFile(t.Proc("personality"));
    if (persona.ok()) tc->set_personality(static_cast<uint32_t>(std::strtoul(persona->c_str(), nullptr, 16)));
    tc->set_blk_sigset(t.info.blocked);
    auto* ids = core->mutable_ids();
    uint32_t own = static_cast<uint32_t>(t.pid);  // nothing is shared between tasks (checked)
    ids->set_vm_id(own);
    ids->set_files_id(own);
    ids->set_fs_id(own);
    ids->set_sighand_id(own);
    ids->set_pid_ns_id(static_cast<uint32_t>(tree_pid_ns_));
    ids->set_mnt_ns_id(static_cast<uint32_t>(tree_mnt_ns_));
    ids->set_uts_ns_id(static_cast<uint32_t>(tree_uts_ns_));
    ids->set_ipc_ns_id(static_cast<uint32_t>(tree_ipc_ns_));
    ids->set_net_ns_id(static_cast<uint32_t>(tree_net_ns_));
    RO_TRY(CollectSeccomp(t, *core));
    RO_TRY(FillThreadInfo(t.live->leader(), *core));
    RO_TRY(FillSignalState(t, *core));
  }
  images::ImageFile& f = File(images::CoreKind(), static_cast<uint32_t>(t.pid));
  f.entries.push_back(images::Entry{std::move(core), {}});
  if (!t.zombie) RO_TRY(CollectThreadCores(t));
  return {};
}

Status Collector::CollectThreadCores(const Task& t) {
  out_.counts.threads += t.live->threads.size();
  for (size_t i = 1; i < t.live->threads.size(); ++i) {
    const ThreadLive& th = t.live->threads[i];
    auto core = std::make_unique<img::core_entry>();
#if defined(__aarch64__)
    core->set_mtype(img::core_entry::AARCH64);
#else
    core->set_mtype(img::core_entry::X86_64);
#endif
    std::string who = "thread " + Str(th.tid) + (th.tid != th.outer ? " (tid " + Str(th.outer) + " here)" : "");
    if (Status s = FillThreadInfo(th, *core); !s.ok()) return std::move(s).error().Within(who);
    if (Status s = FillThreadCore(th, *core->mutable_thread_core()); !s.ok()) return std::move(s).error().Within(who);
    images::ImageFile& f = File(images::CoreKind(), static_cast<uint32_t>(th.tid));
    if (!f.entries.empty()) return Refuse(who + ": its id is taken by another task or thread of the tree");
    f.entries.push_back(images::Entry{std::move(core), {}});
  }
  return {};
}

Status Collector::CollectResume(const Task& t) {
  RO_ASSIGN_OR_RETURN(std::string exe, sys::ReadProcLink(t.Proc("exe")));
  if (exe.ends_with(" (deleted)")) return Refuse("its program " + exe + " is deleted: it could not be resumed");
  RO_ASSIGN_OR_RETURN(std::string cmdline, sys::ReadProcFile(t.Proc("cmdline")));
  RO_ASSIGN_OR_RETURN(std::string environ, sys::ReadProcFile(t.Proc("environ")));
  RO_ASSIGN_OR_RETURN(std::string cwd, sys::ReadProcLink(t.Proc("cwd")));
  auto r = std::make_unique<img::resume_entry>();
  r->set_exe(exe);
  for (const std::string& a : sys::SplitNul(cmdline)) r->add_argv(a);
  for (const std::string& e : sys::SplitNul(environ)) r->add_env(e);
  if (!cwd.ends_with(" (deleted)")) r->set_cwd(cwd);
  File(images::ResumeKind(), static_cast<uint32_t>(t.pid)).entries.push_back(images::Entry{std::move(r), {}});
  return {};
}

// Sessions and groups whose leader is outside the tree (a shell's job),
// found before anything else is read: sid or pgid 0 (from inside the
// tree's own PID namespace the leader is not there), the root task's
// session or group when no task of the tree leads it, and, sharing
// restore-orch's PID namespace, any whose leader lives outside the tree. As
// CRIU, such a tree is dumped only with --shell-job; they are then written
// as 0, which a restore with --shell-job leaves in restore-orch's session
// and group. (A session or group whose leader has exited and that is not
// the root's was made in the tree: a helper stands in for its leader.)
Status Collector::FindOutsideSessions() {
  struct Ids {
    pid_t outer, pid, sid, pgid, outer_sid, outer_pgid;
  };
  std::vector<Ids> ids;
  std::set<pid_t> in_tree;
  for (const FrozenTree::Task& f : tree_.tasks()) {
    RO_ASSIGN_OR_RETURN(sys::TaskInfo info, sys::ReadTask(f.pid));
    ids.push_back({f.pid, info.pid, info.sid, info.pgid, info.outer_sid, info.outer_pgid});
    in_tree.insert(info.pid);
  }
  if (ids.empty()) return {};
  const Ids& root = ids.front();
  auto outside = [&](pid_t id, pid_t root_id) {
    if (id == 0) return true;
    if (in_tree.count(id)) return false;
    if (id == root_id && root_id != root.pid) return true;
    return !new_pid_ && ::access(("/proc/" + Str(id)).c_str(), F_OK) == 0;
  };
  // With --shell-job every outside session (group) becomes restore-orch's
  // one: two of them would come back merged. They are told apart by their
  // numbers as restore-orch sees them (0 inside a new PID namespace).
  const Ids* first_sid = nullptr;
  const Ids* first_pgid = nullptr;
  for (const Ids& t : ids) {
    bool sid_out = outside(t.sid, root.sid), pgid_out = outside(t.pgid, root.pgid);
    if (!sid_out && !pgid_out) continue;
    if (sid_out) outside_sids_.insert(t.sid);
    if (pgid_out) outside_pgids_.insert(t.pgid);
    std::string who = "task " + Str(t.pid) + (t.pid != t.outer ? " (pid " + Str(t.outer) + " here)" : "");
    if (options_.shell_job) {
      auto differ = [&](const Ids*& first, pid_t Ids::*outer, const char* what) -> Status {
        if (first == nullptr) first = &t;
        if (first->*outer == t.*outer) return {};
        return Refuse(who + " and task " + Str(first->pid) + " are in different " + what + "s led outside the tree (" +
                    Str(t.*outer) + " and " + Str(first->*outer) + " here): a restore with --shell-job would put both in "
                    "restore-orch's one " + what);
      };
      if (sid_out) RO_TRY(differ(first_sid, &Ids::outer_sid, "session"));
      if (pgid_out) RO_TRY(differ(first_pgid, &Ids::outer_pgid, "process group"));
      continue;
    }
    std::string what = sid_out ? "session " + Str(t.sid) : "process group " + Str(t.pgid);
    return Refuse(who + " is in " + what + ", whose leader is outside the tree (a shell's job): dump it with --shell-job (-j), "
                "and restore it with --shell-job, which leaves it in restore-orch's session and group");
  }
  return {};
}

void Collector::WritePstreeAndInventory() {
  images::ImageFile& pstree = File(images::PstreeKind());
  for (const Task& t : tasks_) {
    auto e = images::NewPstreeEntry(t.pid, t.ppid, t.pgid, t.sid);  // lists the task itself as its first thread
    for (pid_t tid : t.thread_ids) e->add_threads(static_cast<uint32_t>(tid));
    pstree.entries.push_back(images::Entry{std::move(e), {}});
  }
  // restore-orch's own namespaces: what the tree shares with its caller.
  auto inv = images::NewInventory(static_cast<uint32_t>(own_pid_ns_), static_cast<uint32_t>(own_mnt_ns_));
  inv->mutable_root_ids()->set_uts_ns_id(static_cast<uint32_t>(own_uts_ns_));
  inv->mutable_root_ids()->set_ipc_ns_id(static_cast<uint32_t>(own_ipc_ns_));
  inv->mutable_root_ids()->set_net_ns_id(static_cast<uint32_t>(own_net_ns_));
  File(images::InventoryKind()).entries.push_back(images::Entry{std::move(inv), {}});
}

}  // namespace dump

Result<DumpedImages> CollectImages(const FrozenTree& tree, const CollectOptions& options) {
  return dump::Collector(tree, options).Run();
}

}  // namespace ro
