#include "images/plan.h"

#include <fcntl.h>

#include <csignal>

#include <algorithm>
#include <functional>
#include <set>

#include "images/proto/autofs.pb.h"
#include "images/proto/core.pb.h"
#include "images/proto/fdinfo.pb.h"
#include "images/proto/fs.pb.h"
#include "images/proto/inventory.pb.h"
#include "images/proto/mnt.pb.h"
#include "images/proto/pipe-data.pb.h"
#include "images/proto/pstree.pb.h"
#include "images/proto/resume.pb.h"
#include "images/proto/seccomp.pb.h"

namespace ro::images {
namespace {

constexpr uint32_t kPidMaxLimit = 4u << 20;   // PID_MAX_LIMIT on 64-bit
constexpr uint32_t kFdLimit = 1u << 20;       // NR_OPEN
constexpr uint32_t kDefaultPipeCapacity = 65536;
constexpr uint32_t kMaxPipeCapacity = 1u << 30;
constexpr size_t kMaxSeccompInsns = 4096;     // BPF_MAXINSNS
constexpr uint32_t kTaskAlive = 1;
constexpr uint32_t kTaskDead = 2;
constexpr uint32_t kTaskStopped = 3;
constexpr uint32_t kFstypeAutofs = 18;

std::string Str(uint64_t v) { return std::to_string(v); }

// Collects problems, one line each: "file: entry N: what".
class Problems {
 public:
  void Add(const std::string& file, std::optional<size_t> entry, std::string what) {
    Error e = Fail(std::move(what));
    e.context = entry ? file + ": entry " + Str(*entry) : file;
    errors_.push_back(std::move(e));
  }
  bool empty() const { return errors_.empty(); }
  std::vector<Error> Take() { return std::move(errors_); }

 private:
  std::vector<Error> errors_;
};

const char* FdTypeName(int type) {
  const auto* d = img::fd_types_descriptor()->FindValueByNumber(type);
  return d != nullptr ? d->name().c_str() : "unknown";
}

// Where a file id was defined, for messages.
struct FileRef {
  size_t entry;
  const img::file_entry* msg;
};

class Builder {
 public:
  Builder(const ImageDir& dir, const PlanOptions& options) : dir_(dir), options_(options) {}

  PlanOutcome Run() {
    plan_.image_dir = dir_.path;
    CheckUnsupported();
    if (!ReadInventory()) return Finish();
    if (!ReadPstree()) return Finish();
    ReadCores();
    CheckSessions();
    ReadFiles();
    ReadFdTables();
    ReadPipeData(PipesDataKind(), false);
    ReadPipeData(FifoDataKind(), true);
    ReadFsAndResume();
    ReadSeccomp();
    if (problems_.empty()) ReadMounts();
    if (problems_.empty()) PlanForks();
    return Finish();
  }

 private:
  PlanOutcome Finish() {
    PlanOutcome out;
    if (problems_.empty()) {
      out.plan = std::move(plan_);
    } else {
      out.errors = problems_.Take();
    }
    return out;
  }

  void CheckUnsupported() {
    plan_.unsupported_files = dir_.unsupported;
    if (options_.ignore_unsupported) return;
    for (const std::string& name : dir_.unsupported) {
      problems_.Add(name, std::nullopt,
                    "image kind not supported by restore-orch (--ignore-unsupported restores without it)");
    }
  }

  bool ReadInventory() {
    const ImageFile* f = dir_.Find(InventoryKind());
    const std::string name = MakeFileName(InventoryKind());
    if (f == nullptr) {
      problems_.Add(name, std::nullopt, "missing: not an image directory");
      return false;
    }
    const auto& inv = f->As<img::inventory_entry>(0);
    if (inv.img_version() != 2) {
      problems_.Add(name, 0, "img_version " + Str(inv.img_version()) + " is not supported (only 2)");
    }
    if (!inv.fdinfo_per_id()) {
      problems_.Add(name, 0, "fdinfo_per_id is not set: images from a CRIU too old to read");
    }
    if (inv.has_root_ids()) root_ids_ = &inv.root_ids();
    return true;
  }

  bool ReadPstree() {
    const std::string name = MakeFileName(PstreeKind());
    const ImageFile* f = dir_.Find(PstreeKind());
    if (f == nullptr || f->entries.empty()) {
      problems_.Add(name, std::nullopt, f == nullptr ? "missing" : "holds no task");
      return false;
    }
    std::map<pid_t, size_t> entry_of;
    std::optional<size_t> root;
    for (size_t i = 0; i < f->entries.size(); ++i) {
      const auto& e = f->As<img::pstree_entry>(i);
      if (e.pid() == 0 || e.pid() >= kPidMaxLimit) {
        problems_.Add(name, i, "pid " + Str(e.pid()) + " is out of range 1.." + Str(kPidMaxLimit - 1));
        continue;
      }
      if (e.pgid() >= kPidMaxLimit || e.sid() >= kPidMaxLimit || e.ppid() >= kPidMaxLimit) {
        problems_.Add(name, i, "ppid, pgid or sid out of range");
        continue;
      }
      if (!entry_of.emplace(e.pid(), i).second) {
        problems_.Add(name, i, "duplicate pid " + Str(e.pid()) + " (also entry " + Str(entry_of[e.pid()]) + ")");
        continue;
      }
      if (e.threads_size() > 1) {
        problems_.Add(name, i, "task " + Str(e.pid()) + " has " + Str(e.threads_size()) +
                                   " threads: multi-threaded tasks are not supported");
      } else if (e.threads_size() == 1 && e.threads(0) != e.pid()) {
        problems_.Add(name, i, "thread " + Str(e.threads(0)) + " of task " + Str(e.pid()) + " is not the task itself");
      }
      if (e.ppid() == 0) {
        if (root) {
          problems_.Add(name, i, "second root task " + Str(e.pid()) + " (ppid 0; entry " + Str(*root) + " is the first)");
          continue;
        }
        root = i;
      }
      TaskPlan t;
      t.pid = static_cast<pid_t>(e.pid());
      t.ppid = static_cast<pid_t>(e.ppid());
      t.pgid = static_cast<pid_t>(e.pgid());
      t.sid = static_cast<pid_t>(e.sid());
      tasks_.emplace(t.pid, std::move(t));
      pstree_entry_.emplace(static_cast<pid_t>(e.pid()), i);
    }
    if (!root) {
      problems_.Add(name, std::nullopt, "no root task (no entry with ppid 0)");
      return false;
    }
    root_pid_ = static_cast<pid_t>(f->As<img::pstree_entry>(*root).pid());
    for (size_t i = 0; i < f->entries.size(); ++i) {
      const auto& e = f->As<img::pstree_entry>(i);
      if (e.ppid() == 0 || entry_of.count(e.pid()) == 0 || entry_of[e.pid()] != i) continue;
      auto parent = tasks_.find(static_cast<pid_t>(e.ppid()));
      if (parent == tasks_.end()) {
        problems_.Add(name, i, "ppid " + Str(e.ppid()) + " of task " + Str(e.pid()) + " names no task in the tree");
        continue;
      }
      parent->second.children.push_back(static_cast<pid_t>(e.pid()));
    }
    if (!problems_.empty()) return false;
    // Every task must hang below the root: anything else is a ppid cycle.
    std::set<pid_t> seen;
    std::vector<pid_t> stack{root_pid_};
    while (!stack.empty()) {
      pid_t p = stack.back();
      stack.pop_back();
      if (!seen.insert(p).second) continue;
      for (pid_t c : tasks_[p].children) stack.push_back(c);
    }
    for (const auto& [pid, t] : tasks_) {
      if (seen.count(pid) == 0) {
        problems_.Add(name, pstree_entry_[pid], "task " + Str(pid) + " is not below the root task: its ppid chain is a cycle");
      }
    }
    return problems_.empty();
  }

  const img::task_kobj_ids_entry* IdsOf(pid_t pid, const img::core_entry* core) {
    if (core != nullptr && core->has_ids()) return &core->ids();
    const ImageFile* f = dir_.Find(IdsKind(), static_cast<uint32_t>(pid));
    return f != nullptr ? &f->As<img::task_kobj_ids_entry>(0) : nullptr;
  }

  void ReadCores() {
    const ImageFile* seccomp = dir_.Find(SeccompKind());
    for (auto& [pid, t] : tasks_) {
      const std::string name = MakeFileName(CoreKind(), static_cast<uint32_t>(pid));
      const ImageFile* f = dir_.Find(CoreKind(), static_cast<uint32_t>(pid));
      if (f == nullptr) {
        problems_.Add(name, std::nullopt, "missing: every task of pstree.img needs its core image");
        continue;
      }
      const auto& core = f->As<img::core_entry>(0);
      if (!core.has_tc()) {
        problems_.Add(name, 0, "no task_core_entry (tc)");
        continue;
      }
      t.comm = core.tc().comm();
      switch (core.tc().task_state()) {
        case kTaskAlive: t.kind = TaskKind::kAlive; break;
        case kTaskDead:
          t.kind = TaskKind::kZombie;
          t.exit_status = core.tc().exit_code();
          if (!IsExitStatus(t.exit_status)) {
            problems_.Add(name, 0, "exit_code " + HexStr(t.exit_status) +
                                       " is not the wait status of a task that exited or was killed by a terminating signal");
          }
          if (pid == root_pid_) problems_.Add(name, 0, "the root task is a zombie");
          if (!t.children.empty()) problems_.Add(name, 0, "zombie " + Str(pid) + " has children");
          break;
        case kTaskStopped:
          problems_.Add(name, 0, "task " + Str(pid) + " was stopped: stopped tasks are not supported");
          break;
        default:
          problems_.Add(name, 0, "task_state " + Str(core.tc().task_state()) + " is not alive (1), dead (2) or stopped (3)");
          break;
      }
      const img::task_kobj_ids_entry* ids = IdsOf(pid, &core);
      if (ids == nullptr) {
        if (t.kind != TaskKind::kZombie) {
          problems_.Add(name, 0, "no namespace/file ids: neither core.ids nor " +
                                     MakeFileName(IdsKind(), static_cast<uint32_t>(pid)) + " is present");
        }
      } else {
        ids_[pid] = ids;
      }
      // Seccomp mode: per thread now, per task in old images.
      uint32_t mode = 0;
      uint32_t index = 0;
      if (core.has_thread_core() && core.thread_core().has_seccomp_mode()) {
        mode = core.thread_core().seccomp_mode();
        index = core.thread_core().seccomp_filter();
      } else if (core.tc().has_old_seccomp_mode()) {
        mode = core.tc().old_seccomp_mode();
        index = core.tc().old_seccomp_filter();
      }
      if (mode == img::strict) {
        problems_.Add(name, 0, "seccomp strict mode cannot be restored (the task could not exec)");
      } else if (mode == img::filter) {
        seccomp_index_[pid] = index;
        if (seccomp == nullptr) problems_.Add(name, 0, "seccomp filter mode but seccomp.img is missing");
      }
    }
  }

  void CheckSessions() {
    const std::string name = MakeFileName(PstreeKind());
    std::map<pid_t, pid_t> group_sid;   // pgid -> sid of its first member
    std::map<pid_t, pid_t> group_first;  // pgid -> that member
    for (const auto& [pid, t] : tasks_) {
      size_t entry = pstree_entry_[pid];
      if (t.sid == pid && t.pgid != pid) {
        problems_.Add(name, entry, "session leader " + Str(pid) + " has pgid " + Str(t.pgid) +
                                       ": a session leader always leads its own group");
      }
      if (t.pgid == 0 && t.sid != 0) {
        problems_.Add(name, entry, "task " + Str(pid) + " is in a group outside the tree (pgid 0) but in session " + Str(t.sid));
      }
      if (t.pgid != 0) {
        auto [it, fresh] = group_sid.emplace(t.pgid, t.sid);
        if (fresh) {
          group_first[t.pgid] = pid;
        } else if (it->second != t.sid) {
          problems_.Add(name, entry, "process group " + Str(t.pgid) + " spans two sessions: task " + Str(pid) +
                                         " is in session " + Str(t.sid) + ", task " + Str(group_first[t.pgid]) +
                                         " in session " + Str(it->second));
        }
      }
    }
    std::set<pid_t> session_ids;
    for (const auto& [pid, t] : tasks_) session_ids.insert(t.sid);
    for (const auto& [pid, t] : tasks_) {
      size_t entry = pstree_entry_[pid];
      // The kernel keeps a pid reserved while it names a session or group,
      // so a live task bearing that pid is that session's leader.
      if (session_ids.count(pid) != 0 && t.sid != pid) {
        problems_.Add(name, entry, "task " + Str(pid) + " is in session " + Str(t.sid) + " but session " + Str(pid) +
                                       " bears its pid: only its leader can have that pid");
      }
      auto g = group_sid.find(pid);
      if (g != group_sid.end() && t.sid != g->second) {
        problems_.Add(name, entry, "task " + Str(pid) + " is in session " + Str(t.sid) + " but its process group " +
                                       Str(pid) + " lives in session " + Str(g->second));
      }
    }
    for (const auto& [pgid, sid] : group_sid) {
      auto leader = tasks_.find(pgid);
      if (leader != tasks_.end() && leader->second.pgid != pgid) {
        problems_.Add(name, pstree_entry_[pgid], "task " + Str(pgid) + " left its own process group " + Str(pgid) +
                                                     ", which lives on with task " + Str(group_first[pgid]) +
                                                     ": not supported");
      }
      if (session_ids.count(pgid) != 0 && sid != pgid) {
        problems_.Add(name, pstree_entry_[group_first[pgid]],
                      "process group " + Str(pgid) + " is in session " + Str(sid) + ", but group " + Str(pgid) +
                          " can only have been made by setsid() of session " + Str(pgid));
      }
    }
  }

  void ReadFiles() {
    const std::string name = MakeFileName(FilesKind());
    const ImageFile* f = dir_.Find(FilesKind());
    if (f == nullptr) return;
    for (size_t i = 0; i < f->entries.size(); ++i) {
      const auto& e = f->As<img::file_entry>(i);
      if (!file_refs_.emplace(e.id(), FileRef{i, &e}).second) {
        problems_.Add(name, i, "duplicate file id " + Str(e.id()));
      }
    }
    for (const auto& [id, ref] : file_refs_) {
      const img::file_entry& e = *ref.msg;
      FilePlan p;
      p.id = id;
      switch (e.type()) {
        case img::REG: {
          if (!e.has_reg()) {
            problems_.Add(name, ref.entry, "REG file " + Str(id) + " has no reg entry");
            continue;
          }
          if (e.reg().id() != id) {
            problems_.Add(name, ref.entry, "reg.id " + Str(e.reg().id()) + " differs from the file id " + Str(id));
          }
          auto path = NormalizeAbsolutePath(e.reg().name());
          if (!path) {
            problems_.Add(name, ref.entry, "path \"" + e.reg().name() + "\" is not absolute or contains \"..\"");
            continue;
          }
          if ((e.reg().flags() & O_ACCMODE) == O_ACCMODE) {
            problems_.Add(name, ref.entry, "open flags 0" + OctStr(e.reg().flags()) + " have an invalid access mode");
          }
          p.kind = FileKind::kRegular;
          p.flags = e.reg().flags();
          p.pos = e.reg().pos();
          p.path = *path;
          break;
        }
        case img::PIPE: {
          if (!e.has_pipe()) {
            problems_.Add(name, ref.entry, "PIPE file " + Str(id) + " has no pipe entry");
            continue;
          }
          if (e.pipe().id() != id) {
            problems_.Add(name, ref.entry, "pipe.id " + Str(e.pipe().id()) + " differs from the file id " + Str(id));
          }
          uint32_t mode = e.pipe().flags() & O_ACCMODE;
          if (mode != O_RDONLY && mode != O_WRONLY) {
            problems_.Add(name, ref.entry, "pipe " + Str(e.pipe().pipe_id()) + " end opened neither read-only nor write-only");
          }
          p.kind = FileKind::kPipe;
          p.flags = e.pipe().flags();
          p.pipe_id = e.pipe().pipe_id();
          break;
        }
        case img::FIFO: {
          if (!e.has_fifo()) {
            problems_.Add(name, ref.entry, "FIFO file " + Str(id) + " has no fifo entry");
            continue;
          }
          auto path_ref = file_refs_.find(e.fifo().regf_id());
          if (!e.fifo().has_regf_id() || path_ref == file_refs_.end() || !path_ref->second.msg->has_reg()) {
            problems_.Add(name, ref.entry, "FIFO " + Str(id) + " names no REG entry for its path (regf_id " +
                                               Str(e.fifo().regf_id()) + ")");
            continue;
          }
          const auto& reg = path_ref->second.msg->reg();
          auto path = NormalizeAbsolutePath(reg.name());
          if (!path) {
            problems_.Add(name, ref.entry, "FIFO path \"" + reg.name() + "\" is not absolute or contains \"..\"");
            continue;
          }
          p.kind = FileKind::kFifo;
          p.flags = reg.flags();
          p.path = *path;
          p.pipe_id = e.fifo().pipe_id();
          break;
        }
        default:
          unsupported_files_.emplace(id, e.type());
          continue;
      }
      plan_.files.emplace(id, std::move(p));
    }
  }

  static std::string OctStr(uint32_t v) {
    char buf[16];
    std::snprintf(buf, sizeof(buf), "%o", v);
    return buf;
  }

  void ReadFdTables() {
    std::map<uint32_t, pid_t> table_owner;
    for (auto& [pid, t] : tasks_) {
      if (t.kind == TaskKind::kZombie) continue;
      auto ids = ids_.find(pid);
      if (ids == ids_.end()) continue;
      uint32_t files_id = ids->second->files_id();
      auto [owner, fresh] = table_owner.emplace(files_id, pid);
      const std::string name = MakeFileName(FdinfoKind(), files_id);
      if (!fresh) {
        problems_.Add(name, std::nullopt, "tasks " + Str(owner->second) + " and " + Str(pid) +
                                              " share one fd table (CLONE_FILES): not supported");
        continue;
      }
      const ImageFile* f = dir_.Find(FdinfoKind(), files_id);
      if (f == nullptr) continue;  // no fds at all
      std::map<uint32_t, size_t> fd_entry;
      for (size_t i = 0; i < f->entries.size(); ++i) {
        const auto& e = f->As<img::fdinfo_entry>(i);
        std::string who = "task " + Str(pid) + " fd " + Str(e.fd());
        if (e.fd() >= kFdLimit) {
          problems_.Add(name, i, who + ": fd number above the kernel's limit " + Str(kFdLimit - 1));
          continue;
        }
        if (auto [it, ok] = fd_entry.emplace(e.fd(), i); !ok) {
          problems_.Add(name, i, who + ": two fds with one number (also entry " + Str(it->second) + ")");
          continue;
        }
        if ((e.flags() & ~uint32_t(FD_CLOEXEC)) != 0) {
          problems_.Add(name, i, who + ": fd flags 0x" + HexStr(e.flags()) + " hold more than FD_CLOEXEC");
        }
        auto ref = file_refs_.find(e.id());
        if (ref == file_refs_.end()) {
          problems_.Add(name, i, who + ": file id " + Str(e.id()) + " is missing from files.img");
          continue;
        }
        if (static_cast<int>(ref->second.msg->type()) != static_cast<int>(e.type())) {
          problems_.Add(name, i, who + ": fdinfo says " + FdTypeName(e.type()) + " but files.img entry " +
                                     Str(ref->second.entry) + " is " + FdTypeName(ref->second.msg->type()));
          continue;
        }
        if (auto u = unsupported_files_.find(e.id()); u != unsupported_files_.end()) {
          problems_.Add(name, i, who + ": " + FdTypeName(u->second) + " files are not supported");
          continue;
        }
        if (plan_.files.count(e.id()) == 0) continue;  // already reported in files.img
        t.fds.push_back(FdPlan{static_cast<int>(e.fd()), e.id(), (e.flags() & FD_CLOEXEC) != 0});
      }
      std::sort(t.fds.begin(), t.fds.end(), [](const FdPlan& a, const FdPlan& b) { return a.fd < b.fd; });
    }
  }

  // A wait status a zombie can come back with: an exit code (code << 8), or
  // death by a signal whose default action terminates (the core-dump bit
  // aside). A stopping or ignored signal would leave the task alive.
  static bool IsExitStatus(uint32_t status) {
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

  static std::string HexStr(uint32_t v) {
    char buf[16];
    std::snprintf(buf, sizeof(buf), "%x", v);
    return buf;
  }

  void ReadPipeData(const Kind& kind, bool fifo) {
    const ImageFile* f = dir_.Find(kind);
    if (f == nullptr) return;
    const std::string name = MakeFileName(kind);
    std::set<uint32_t> known;
    for (const auto& [id, p] : plan_.files) {
      if ((p.kind == FileKind::kFifo) == fifo && p.kind != FileKind::kRegular) known.insert(p.pipe_id);
    }
    std::set<uint32_t> seen;
    for (size_t i = 0; i < f->entries.size(); ++i) {
      const auto& e = f->As<img::pipe_data_entry>(i);
      if (!seen.insert(e.pipe_id()).second) {
        problems_.Add(name, i, "second data entry for pipe " + Str(e.pipe_id()));
        continue;
      }
      if (known.count(e.pipe_id()) == 0) {
        problems_.Add(name, i, std::string("data for ") + (fifo ? "FIFO " : "pipe ") + Str(e.pipe_id()) +
                                   " which no file entry names");
        continue;
      }
      uint32_t capacity = e.has_size() ? e.size() : 0;
      if (e.has_size() && (capacity < 4096 || capacity > kMaxPipeCapacity || (capacity & (capacity - 1)) != 0)) {
        problems_.Add(name, i, "pipe capacity " + Str(capacity) + " is not a power of two between 4096 and " + Str(kMaxPipeCapacity));
        continue;
      }
      uint32_t limit = capacity != 0 ? capacity : kDefaultPipeCapacity;
      if (e.bytes() > limit) {
        problems_.Add(name, i, "pipe " + Str(e.pipe_id()) + " holds " + Str(e.bytes()) + " bytes, more than its capacity " + Str(limit));
        continue;
      }
      plan_.pipe_data_index[{fifo, e.pipe_id()}] = plan_.pipe_data.size();
      plan_.pipe_data.push_back(PipeDataPlan{e.pipe_id(), capacity, f->entries[i].payload, fifo});
    }
  }

  std::optional<std::string> DirOf(pid_t pid, uint32_t id, const std::string& name, const char* what) {
    auto it = plan_.files.find(id);
    if (it == plan_.files.end() || it->second.kind != FileKind::kRegular) {
      problems_.Add(name, 0, std::string(what) + " of task " + Str(pid) + " names file " + Str(id) +
                                 ", which is no regular file entry of files.img");
      return std::nullopt;
    }
    return it->second.path;
  }

  void ReadFsAndResume() {
    for (auto& [pid, t] : tasks_) {
      if (t.kind == TaskKind::kZombie) continue;
      if (const ImageFile* f = dir_.Find(FsKind(), static_cast<uint32_t>(pid))) {
        const std::string name = MakeFileName(FsKind(), static_cast<uint32_t>(pid));
        const auto& fs = f->As<img::fs_entry>(0);
        if (auto cwd = DirOf(pid, fs.cwd_id(), name, "cwd")) t.cwd = *cwd;
        if (auto root = DirOf(pid, fs.root_id(), name, "root")) t.root = *root;
      }
      if (const ImageFile* f = dir_.Find(ResumeKind(), static_cast<uint32_t>(pid))) {
        const std::string name = MakeFileName(ResumeKind(), static_cast<uint32_t>(pid));
        const auto& r = f->As<img::resume_entry>(0);
        if (r.exe().empty() || r.exe().find('\0') != std::string::npos) {
          problems_.Add(name, 0, "exe is empty or holds a NUL byte");
          continue;
        }
        if (r.has_cwd() && !NormalizeAbsolutePath(r.cwd())) {
          problems_.Add(name, 0, "cwd \"" + r.cwd() + "\" is not absolute or contains \"..\"");
          continue;
        }
        ResumePlan rp;
        rp.exe = r.exe();
        rp.argv.assign(r.argv().begin(), r.argv().end());
        rp.env.assign(r.env().begin(), r.env().end());
        rp.cwd = r.cwd();
        t.resume = std::move(rp);
      }
    }
  }

  void ReadSeccomp() {
    const ImageFile* f = dir_.Find(SeccompKind());
    if (f == nullptr) return;
    const std::string name = MakeFileName(SeccompKind());
    const auto& entry = f->As<img::seccomp_entry>(0);
    for (auto& [pid, first] : seccomp_index_) {
      // The thread's index names its oldest filter; prev leads to newer ones.
      std::set<uint32_t> visited;
      std::optional<uint32_t> index = first;
      while (index) {
        if (*index >= static_cast<uint32_t>(entry.seccomp_filters_size())) {
          problems_.Add(name, 0, "task " + Str(pid) + " names seccomp filter " + Str(*index) + " of " +
                                     Str(entry.seccomp_filters_size()));
          break;
        }
        if (!visited.insert(*index).second) {
          problems_.Add(name, 0, "seccomp filter chain of task " + Str(pid) + " loops at filter " + Str(*index));
          break;
        }
        const auto& filter = entry.seccomp_filters(static_cast<int>(*index));
        size_t len = filter.filter().size();
        if (len == 0 || len % 8 != 0 || len / 8 > kMaxSeccompInsns) {
          problems_.Add(name, 0, "seccomp filter " + Str(*index) + " is " + Str(len) +
                                     " bytes: not 1.." + Str(kMaxSeccompInsns) + " instructions of 8 bytes");
          break;
        }
        tasks_[pid].seccomp.push_back(SeccompFilterPlan{filter.filter(), filter.flags()});
        index = filter.has_prev() ? std::optional<uint32_t>(filter.prev()) : std::nullopt;
      }
    }
  }

  // ---- mounts ----

  void ReadMounts() {
    const img::task_kobj_ids_entry* root_ids = ids_.count(root_pid_) ? ids_[root_pid_] : nullptr;
    plan_.ns.new_pid = true;
    plan_.ns.new_mnt = true;
    if (root_ids_ != nullptr && root_ids != nullptr) {
      plan_.ns.new_pid = !(root_ids->has_pid_ns_id() && root_ids_->has_pid_ns_id() &&
                           root_ids->pid_ns_id() == root_ids_->pid_ns_id());
      plan_.ns.new_mnt = !(root_ids->has_mnt_ns_id() && root_ids_->has_mnt_ns_id() &&
                           root_ids->mnt_ns_id() == root_ids_->mnt_ns_id());
    }
    const std::string pstree = MakeFileName(PstreeKind());
    if (!plan_.ns.new_pid && root_pid_ == 1) {
      problems_.Add(pstree, pstree_entry_[root_pid_], "root task has pid 1 but shares the caller's PID namespace");
    }
    if (plan_.ns.new_pid && root_pid_ != 1) {
      problems_.Add(pstree, pstree_entry_[root_pid_], "root task " + Str(root_pid_) +
                                                          " of a new PID namespace must have pid 1");
    }
    for (const auto& [pid, ids] : ids_) {
      if (pid == root_pid_ || root_ids == nullptr) continue;
      if (ids->pid_ns_id() != root_ids->pid_ns_id() || ids->mnt_ns_id() != root_ids->mnt_ns_id()) {
        problems_.Add(MakeFileName(CoreKind(), static_cast<uint32_t>(pid)), 0,
                      "task " + Str(pid) + " is in another PID or mount namespace than the root task: nested namespaces are not supported");
      }
    }
    if (!plan_.ns.new_mnt) return;
    if (root_ids == nullptr || !root_ids->has_mnt_ns_id()) {
      problems_.Add(MakeFileName(CoreKind(), static_cast<uint32_t>(root_pid_)), 0,
                    "root task has no mnt_ns_id: cannot find its mountpoints image");
      return;
    }
    plan_.ns.mnt_ns_id = root_ids->mnt_ns_id();
    const std::string name = MakeFileName(MountpointsKind(), plan_.ns.mnt_ns_id);
    const ImageFile* f = dir_.Find(MountpointsKind(), plan_.ns.mnt_ns_id);
    if (f == nullptr || f->entries.empty()) {
      problems_.Add(name, std::nullopt, f == nullptr ? "missing: the root task's mount namespace has no mountpoints image"
                                                     : "holds no mount");
      return;
    }
    std::map<uint32_t, size_t> entry_of;
    std::map<uint32_t, MountPlan> mounts;
    for (size_t i = 0; i < f->entries.size(); ++i) {
      const auto& e = f->As<img::mnt_entry>(i);
      if (e.mnt_id() == 0) {
        problems_.Add(name, i, "mnt_id 0 is not a mount id");
        continue;
      }
      if (!entry_of.emplace(e.mnt_id(), i).second) {
        problems_.Add(name, i, "duplicate mnt_id " + Str(e.mnt_id()));
        continue;
      }
      auto mp = NormalizeAbsolutePath(e.mountpoint());
      if (!mp) {
        problems_.Add(name, i, "mountpoint \"" + e.mountpoint() + "\" is not absolute or contains \"..\": it could escape the root");
        continue;
      }
      auto root = NormalizeAbsolutePath(e.root());
      if (!root) {
        problems_.Add(name, i, "root \"" + e.root() + "\" is not absolute or contains \"..\"");
        continue;
      }
      MountPlan m;
      m.mnt_id = e.mnt_id();
      m.parent_id = e.parent_mnt_id();
      m.fstype_code = e.fstype();
      m.fstype = FstypeName(e.fstype());
      m.mountpoint = *mp;
      m.root = *root;
      m.source = e.source();
      m.options = e.options();
      m.flags = e.flags();
      m.sb_flags = e.sb_flags();
      m.root_dev = e.root_dev();
      m.shared_id = e.shared_id();
      m.master_id = e.master_id();
      if (e.ext_mount() || e.fstype() == img::AUTO) {
        m.how = MountSource::kExternal;
        m.ext_key = e.ext_key().empty() ? m.mountpoint : e.ext_key();
        if (e.fstype() == img::AUTO && !e.fsname().empty()) m.fstype = e.fsname();
      } else if (!CreatableFstype(e.fstype())) {
        problems_.Add(name, i, "filesystem " + std::string(FstypeName(e.fstype())) + " (fstype " + Str(e.fstype()) +
                                   ") at " + m.mountpoint + " is not supported");
        continue;
      }
      if (m.shared_id != 0 && m.shared_id == m.master_id) {
        problems_.Add(name, i, "mount " + Str(m.mnt_id) + " is its own master (shared_id == master_id " + Str(m.shared_id) + ")");
        continue;
      }
      mounts.emplace(m.mnt_id, std::move(m));
    }
    if (!problems_.empty()) return;

    // One root; every other mount below an existing parent, below its parent's path.
    std::optional<uint32_t> root;
    std::map<uint32_t, std::vector<uint32_t>> children;
    for (auto& [id, m] : mounts) {
      if (mounts.count(m.parent_id) == 0 || m.parent_id == id) {
        if (root) {
          problems_.Add(name, entry_of[id], "parent mount " + Str(m.parent_id) + " of mount " + Str(id) +
                                                " is missing (mount " + Str(*root) + " is already the root)");
          continue;
        }
        root = id;
        continue;
      }
      const MountPlan& parent = mounts[m.parent_id];
      if (!IsBelow(m.mountpoint, parent.mountpoint)) {
        problems_.Add(name, entry_of[id], "mountpoint " + m.mountpoint + " is not below its parent's " + parent.mountpoint);
        continue;
      }
      children[m.parent_id].push_back(id);
    }
    if (!root) {
      problems_.Add(name, std::nullopt, "no root mount: every mount's parent is in the image (a cycle)");
      return;
    }
    if (mounts[*root].mountpoint != "/") {
      problems_.Add(name, entry_of[*root], "root mount " + Str(*root) + " is at " + mounts[*root].mountpoint + ", not /");
    }
    mounts[*root].parent_id = 0;
    // Placement: parents first (pre-order), which also finds cycles.
    std::set<uint32_t> placed;
    std::vector<uint32_t> stack{*root};
    while (!stack.empty()) {
      uint32_t id = stack.back();
      stack.pop_back();
      if (!placed.insert(id).second) continue;
      plan_.placement.push_back(id);
      auto& kids = children[id];
      for (auto it = kids.rbegin(); it != kids.rend(); ++it) stack.push_back(*it);
    }
    for (const auto& [id, m] : mounts) {
      if (placed.count(id) == 0 && problems_.empty()) {
        problems_.Add(name, entry_of[id], "mount " + Str(id) + " is not below the root mount: its parent chain is a cycle");
      }
    }
    if (!problems_.empty()) return;

    // Creation: the mount of each superblock with the shortest root is made
    // new (or bound from outside); the others are binds of it.
    std::map<std::pair<uint32_t, uint32_t>, uint32_t> first_of_sb;  // (fstype, dev) -> mnt
    std::vector<uint32_t> order(plan_.placement);
    std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
      return mounts[a].root.size() < mounts[b].root.size();
    });
    std::vector<uint32_t> binds;
    for (uint32_t id : order) {
      MountPlan& m = mounts[id];
      auto key = std::make_pair(m.fstype_code, m.root_dev);
      auto [it, fresh] = first_of_sb.emplace(key, id);
      if (fresh || m.how == MountSource::kExternal) {
        if (fresh && m.how == MountSource::kNew && m.fstype_code == img::TMPFS) {
          if (const ImageFile* tar = dir_.Find(TmpfsKind(), m.root_dev)) m.contents = tar->entries[0].payload;
        }
        plan_.mounts.push_back(m);
      } else {
        m.how = MountSource::kBind;
        m.bind_of = it->second;
        binds.push_back(id);
      }
    }
    for (uint32_t id : binds) plan_.mounts.push_back(mounts[id]);

    PlanSharing(mounts, name, entry_of);
    PlanAutofs(mounts, first_of_sb, name, entry_of);
  }

  static bool IsBelow(const std::string& path, const std::string& dir) {
    if (dir == "/") return true;
    return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 && path[dir.size()] == '/');
  }

  void PlanSharing(std::map<uint32_t, MountPlan>& mounts, const std::string& name, std::map<uint32_t, size_t>& entry_of) {
    // A group is the set of mounts with one (shared_id, master_id); its
    // first member is the one with the shortest root (the source of
    // MOVE_MOUNT_SET_GROUP must contain the destination's root).
    struct Group {
      uint32_t shared = 0;
      uint32_t master = 0;
      std::vector<uint32_t> members;
    };
    std::map<std::pair<uint32_t, uint32_t>, Group> groups;
    std::map<uint32_t, std::pair<uint32_t, uint32_t>> group_of_shared;  // shared_id -> group key
    for (uint32_t id : plan_.placement) {
      const MountPlan& m = mounts[id];
      if (m.shared_id == 0 && m.master_id == 0) continue;
      auto key = std::make_pair(m.shared_id, m.master_id);
      Group& g = groups[key];
      g.shared = m.shared_id;
      g.master = m.master_id;
      g.members.push_back(id);
      if (m.shared_id != 0) {
        auto [it, fresh] = group_of_shared.emplace(m.shared_id, key);
        if (!fresh && it->second != key) {
          problems_.Add(name, entry_of[id], "peer group " + Str(m.shared_id) + " has members with different masters (" +
                                                Str(it->second.second) + " and " + Str(m.master_id) + ")");
        }
      }
    }
    if (!problems_.empty()) return;
    for (auto& [key, g] : groups) {
      std::stable_sort(g.members.begin(), g.members.end(), [&](uint32_t a, uint32_t b) {
        return mounts[a].root.size() < mounts[b].root.size();
      });
    }
    // Masters before their slaves; a cycle of masters is an error.
    std::set<std::pair<uint32_t, uint32_t>> done;
    std::set<std::pair<uint32_t, uint32_t>> active;
    std::function<bool(const std::pair<uint32_t, uint32_t>&)> visit = [&](const auto& key) -> bool {
      if (done.count(key)) return true;
      if (!active.insert(key).second) {
        problems_.Add(name, entry_of[groups[key].members.front()], "sharing groups form a master cycle through group " +
                                                                       Str(key.first));
        return false;
      }
      Group& g = groups[key];
      uint32_t first = g.members.front();
      if (g.master != 0) {
        auto master = group_of_shared.find(g.master);
        if (master == group_of_shared.end()) {
          plan_.sharing.push_back({SharingStep::Op::kSlaveOfExternal, first, 0, g.master});
        } else {
          if (!visit(master->second)) return false;
          plan_.sharing.push_back({SharingStep::Op::kSlaveOf, first, groups[master->second].members.front(), g.master});
        }
      }
      if (g.shared != 0) {
        plan_.sharing.push_back({SharingStep::Op::kMakeShared, first, 0, g.shared});
      }
      for (size_t i = 1; i < g.members.size(); ++i) {
        plan_.sharing.push_back({SharingStep::Op::kJoinGroup, g.members[i], first, g.shared != 0 ? g.shared : g.master});
      }
      active.erase(key);
      done.insert(key);
      return true;
    };
    for (const auto& [key, g] : groups) {
      if (!visit(key)) return;
    }
  }

  void PlanAutofs(std::map<uint32_t, MountPlan>& mounts, const std::map<std::pair<uint32_t, uint32_t>, uint32_t>& first_of_sb,
                  const std::string& name, std::map<uint32_t, size_t>& entry_of) {
    for (const auto& [key, id] : first_of_sb) {
      if (key.first != kFstypeAutofs) continue;
      const MountPlan& m = mounts[id];
      const std::string file = MakeFileName(AutofsKind(), m.root_dev);
      const ImageFile* f = dir_.Find(AutofsKind(), m.root_dev);
      if (f == nullptr) {
        problems_.Add(name, entry_of[id], "AutoFS mount " + m.mountpoint + " has no " + file);
        continue;
      }
      const auto& e = f->As<img::autofs_entry>(0);
      AutofsPlan a;
      a.mnt_id = id;
      a.path = m.mountpoint;
      a.dev = m.root_dev;
      a.timeout = e.timeout();
      a.minproto = e.minproto();
      a.maxproto = e.maxproto();
      a.mode = e.mode();
      if (e.has_uid()) a.uid = e.uid();
      if (e.has_gid()) a.gid = e.gid();
      if (e.mode() < 0 || e.mode() > 2) {
        problems_.Add(file, 0, "mode " + Str(uint32_t(e.mode())) + " is not direct (0), indirect (1) or offset (2)");
        continue;
      }
      if (e.minproto() < 0 || e.maxproto() < e.minproto()) {
        problems_.Add(file, 0, "protocol range " + std::to_string(e.minproto()) + ".." + std::to_string(e.maxproto()) + " is empty");
        continue;
      }
      if (e.timeout() < 0) {
        problems_.Add(file, 0, "negative timeout " + std::to_string(e.timeout()));
        continue;
      }
      if (e.fd() < -1) {
        problems_.Add(file, 0, "fd " + std::to_string(e.fd()) + " is neither -1 (catatonic) nor an fd number");
        continue;
      }
      if (e.fd() == -1) {
        a.catatonic = true;
        plan_.autofs.push_back(a);
        continue;
      }
      // A mount no master can take over fails the plan, or stays catatonic
      // when the caller asked for that.
      auto orphan = [&](const std::string& why) {
        if (!options_.autofs_orphans_catatonic) {
          problems_.Add(file, 0, why);
          return;
        }
        a = AutofsPlan{a.mnt_id, a.path, a.dev, true, 0, -1, false, a.timeout, a.minproto, a.maxproto, a.mode, a.uid, a.gid};
        plan_.autofs.push_back(a);
        plan_.warnings.push_back(file + ": " + why + "; left catatonic (--autofs-orphans=catatonic)");
      };
      auto master = tasks_.find(static_cast<pid_t>(e.pgrp()));
      if (e.pgrp() <= 0 || master == tasks_.end() || master->second.kind != TaskKind::kAlive) {
        orphan("master (pgrp " + std::to_string(e.pgrp()) + ") of AutoFS mount " + m.mountpoint + " is not a live task of the tree");
        continue;
      }
      a.master = master->first;
      a.write_end_closed = e.has_read_fd();
      a.pipe_fd = a.write_end_closed ? e.read_fd() : e.fd();
      const char* want = a.write_end_closed ? "read" : "write";
      uint32_t want_mode = a.write_end_closed ? O_RDONLY : O_WRONLY;
      const FdPlan* fd = nullptr;
      for (const FdPlan& p : master->second.fds) {
        if (p.fd == a.pipe_fd) fd = &p;
      }
      const FilePlan* file_plan = fd != nullptr ? &plan_.files[fd->file_id] : nullptr;
      if (file_plan == nullptr || file_plan->kind != FileKind::kPipe || (file_plan->flags & O_ACCMODE) != want_mode) {
        orphan("master " + Str(a.master) + " holds no pipe " + want + " end at fd " + std::to_string(a.pipe_fd) +
               " for AutoFS mount " + m.mountpoint);
        continue;
      }
      plan_.autofs.push_back(a);
    }
  }

  // Who forks whom, and when, so that every task ends with its session and
  // group. A task inherits its session from whoever forks it, at that
  // moment; a session leader has two: the one it was born in and its own.
  // Helpers stand in for leaders that have exited (kernel rule: a session
  // or group can only be created by a task with its id).
  void PlanForks() {
    const std::string pstree = MakeFileName(PstreeKind());
    std::map<pid_t, std::optional<pid_t>> born;   // leaders: sid they must be born in
    std::map<pid_t, std::vector<pid_t>> via_helper;  // session -> root children that need it
    std::vector<pid_t> order = PreOrder();
    for (pid_t p : order) tasks_[p].fork_parent = tasks_[p].ppid;
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
      TaskPlan& t = tasks_[*it];
      t.setsid = t.sid == t.pid;
      t.leads_group = t.pgid == t.pid;
      if (t.pid == root_pid_) continue;
      TaskPlan& parent = tasks_[t.ppid];
      std::optional<pid_t> need = t.setsid ? born[t.pid] : std::optional<pid_t>(t.sid);
      if (!need || *need == parent.sid) continue;  // forked after the parent's setsid
      bool parent_leads = parent.sid == parent.pid;
      bool root = parent.pid == root_pid_;
      // The root task is born in the caller's session, which the tree sees as 0.
      bool parent_can = parent_leads && (root ? *need == 0 : (!born[parent.pid] || *born[parent.pid] == *need));
      if (parent_can) {
        if (!root) born[parent.pid] = *need;
        t.before_parent_setsid = true;
        continue;
      }
      if (root && plan_.ns.new_pid) {
        via_helper[*need].push_back(t.pid);  // reparented to the root when its parent died
        continue;
      }
      problems_.Add(pstree, pstree_entry_[t.pid],
                    "task " + Str(t.pid) + " is in session " + Str(*need) + ", which its parent " + Str(parent.pid) +
                        " (session " + Str(parent.sid) + ") could never have given it");
    }
    if (!problems_.empty()) return;
    const TaskPlan& root = tasks_[root_pid_];
    if (plan_.ns.new_pid && root.sid != 0 && root.sid != root.pid) {
      problems_.Add(pstree, pstree_entry_[root_pid_], "root task is in session " + Str(root.sid) +
                                                          ", which only a task younger than it could have made");
      return;
    }

    std::set<pid_t> used;
    for (const auto& [pid, t] : tasks_) used.insert({t.pid, t.sid, t.pgid});
    pid_t next_free = 2;
    auto fresh_pid = [&]() {
      while (used.count(next_free)) ++next_free;
      used.insert(next_free);
      return next_free;
    };
    for (auto& [sid, members] : via_helper) {
      TaskPlan h;
      h.kind = TaskKind::kHelper;
      h.sid = sid;
      h.ppid = root_pid_;
      auto leader = tasks_.find(sid);
      if (leader != tasks_.end()) {
        // The leader lives: a helper born in its session forks the members.
        h.pid = fresh_pid();
        h.fork_parent = sid;
        h.pgid = leader->second.pgid;
        h.helper_reason = "forks session " + Str(sid) + "'s tasks that were reparented to the root";
      } else {
        h.pid = h.pgid = sid;
        h.fork_parent = root_pid_;
        h.setsid = true;
        h.leads_group = true;
        h.helper_reason = "session " + Str(sid) + " outlived its leader";
      }
      for (pid_t m : members) tasks_[m].fork_parent = h.pid;
      if (!AddHelper(std::move(h))) return;
    }
    std::set<pid_t> groups;
    for (const auto& [pid, t] : tasks_) {
      if (t.pgid != 0) groups.insert(t.pgid);
    }
    for (pid_t pgid : groups) {
      if (tasks_.count(pgid)) continue;
      pid_t first = 0;
      for (pid_t p : order) {
        if (tasks_[p].pgid == pgid) {
          first = p;
          break;
        }
      }
      TaskPlan h;
      h.kind = TaskKind::kHelper;
      h.pid = h.pgid = pgid;
      h.sid = tasks_[first].sid;
      h.ppid = h.fork_parent = first;
      h.leads_group = true;
      h.helper_reason = "process group " + Str(pgid) + " outlived its leader";
      if (!AddHelper(std::move(h))) return;
    }

    // Fork lists in image order, the before-setsid ones first.
    for (auto& [pid, t] : tasks_) t.children.clear();
    std::vector<pid_t> all;
    for (pid_t p : order) all.push_back(p);
    for (const auto& [pid, t] : tasks_) {
      if (t.kind == TaskKind::kHelper) all.push_back(pid);
    }
    for (int pass = 0; pass < 2; ++pass) {
      for (pid_t p : all) {
        TaskPlan& t = tasks_[p];
        if (p == root_pid_ || t.before_parent_setsid != (pass == 0)) continue;
        tasks_[t.fork_parent].children.push_back(p);
      }
    }
    PlanFileCreation();
    std::vector<pid_t> stack{root_pid_};
    while (!stack.empty()) {
      pid_t p = stack.back();
      stack.pop_back();
      plan_.index[p] = static_cast<int>(plan_.tasks.size());
      plan_.tasks.push_back(tasks_[p]);
      plan_.helpers += tasks_[p].kind == TaskKind::kHelper;
      const auto& kids = tasks_[p].children;
      for (auto it = kids.rbegin(); it != kids.rend(); ++it) stack.push_back(*it);
    }
  }

  // Which task makes each open file description, and who keeps it parked on
  // the way down to its holders. The descriptions of one pipe (or FIFO) are
  // made together, by the common ancestor of all their holders, because
  // further descriptions of an end are reopened from the first.
  void PlanFileCreation() {
    std::map<pid_t, int> depth;
    std::vector<pid_t> order;
    std::vector<pid_t> stack{root_pid_};
    depth[root_pid_] = 0;
    while (!stack.empty()) {
      pid_t p = stack.back();
      stack.pop_back();
      order.push_back(p);
      for (pid_t c : tasks_[p].children) {
        depth[c] = depth[p] + 1;
        stack.push_back(c);
      }
    }
    auto lca = [&](pid_t a, pid_t b) {
      while (depth[a] > depth[b]) a = tasks_[a].fork_parent;
      while (depth[b] > depth[a]) b = tasks_[b].fork_parent;
      while (a != b) {
        a = tasks_[a].fork_parent;
        b = tasks_[b].fork_parent;
      }
      return a;
    };
    // Holders of each file id, and the group each id is made with.
    std::map<uint32_t, std::vector<pid_t>> holders;
    for (pid_t p : order) {
      for (const FdPlan& fd : tasks_[p].fds) {
        auto& h = holders[fd.file_id];
        if (h.empty()) {
          plan_.files[fd.file_id].first_holder = p;
          plan_.files[fd.file_id].first_fd = fd.fd;
        }
        if (h.empty() || h.back() != p) h.push_back(p);
        plan_.max_fd = std::max(plan_.max_fd, fd.fd);
      }
    }
    auto group_of = [&](const FilePlan& f) -> std::pair<int, uint32_t> {
      if (f.kind == FileKind::kRegular) return {0, f.id};
      return {f.kind == FileKind::kPipe ? 1 : 2, f.pipe_id};
    };
    std::map<std::pair<int, uint32_t>, std::vector<uint32_t>> groups;
    for (const auto& [id, h] : holders) groups[group_of(plan_.files[id])].push_back(id);
    for (auto& [key, ids] : groups) {
      pid_t creator = 0;
      for (uint32_t id : ids) {
        for (pid_t p : holders[id]) creator = creator == 0 ? p : lca(creator, p);
      }
      for (uint32_t id : ids) {
        FilePlan& f = plan_.files[id];
        f.creator = creator;
        tasks_[creator].creates.push_back(id);
        // Everyone between the creator and a holder keeps it parked.
        for (pid_t p : holders[id]) {
          for (pid_t q = p; q != creator; q = tasks_[q].fork_parent) {
            auto& keeps = tasks_[q].keeps;
            if (!keeps.empty() && keeps.back() == id) break;  // this path is marked already
            keeps.push_back(id);
          }
        }
      }
    }
    // Parking slots: a task's own descriptions go above the slots of those
    // it keeps from its ancestors, so slots are reused across subtrees and
    // fd tables stay small. Parents come before children in `order`.
    for (pid_t p : order) {
      TaskPlan& t = tasks_[p];
      uint32_t next = 0;
      for (uint32_t id : t.keeps) next = std::max(next, plan_.files[id].slot + 1);
      for (uint32_t id : t.creates) plan_.files[id].slot = next++;
      plan_.parked_slots = std::max(plan_.parked_slots, next);
    }
    for (auto& [pid, t] : tasks_) {
      std::sort(t.keeps.begin(), t.keeps.end(), [&](uint32_t a, uint32_t b) { return plan_.files[a].slot < plan_.files[b].slot; });
      t.keeps.erase(std::unique(t.keeps.begin(), t.keeps.end()), t.keeps.end());
    }
  }

  std::vector<pid_t> PreOrder() {
    std::vector<pid_t> order;
    std::vector<pid_t> stack{root_pid_};
    while (!stack.empty()) {
      pid_t p = stack.back();
      stack.pop_back();
      order.push_back(p);
      const auto& kids = tasks_[p].children;
      for (auto it = kids.rbegin(); it != kids.rend(); ++it) stack.push_back(*it);
    }
    return order;
  }

  bool AddHelper(TaskPlan h) {
    if (tasks_.count(h.pid)) {
      problems_.Add(MakeFileName(PstreeKind()), std::nullopt, "helper pid " + Str(h.pid) + " is taken");
      return false;
    }
    tasks_.emplace(h.pid, std::move(h));
    return true;
  }

  const ImageDir& dir_;
  const PlanOptions& options_;
  Problems problems_;
  RestorePlan plan_;
  std::map<pid_t, TaskPlan> tasks_;
  std::map<pid_t, size_t> pstree_entry_;
  std::map<pid_t, const img::task_kobj_ids_entry*> ids_;
  std::map<pid_t, uint32_t> seccomp_index_;
  std::map<uint32_t, FileRef> file_refs_;
  std::map<uint32_t, int> unsupported_files_;  // file id -> fd type
  const img::task_kobj_ids_entry* root_ids_ = nullptr;
  pid_t root_pid_ = 0;
};

}  // namespace

const TaskPlan* RestorePlan::FindTask(pid_t pid) const {
  int i = IndexOf(pid);
  return i < 0 ? nullptr : &tasks[static_cast<size_t>(i)];
}

int RestorePlan::IndexOf(pid_t pid) const {
  auto it = index.find(pid);
  return it == index.end() ? -1 : it->second;
}

const MountPlan* RestorePlan::FindMount(uint32_t mnt_id) const {
  for (const MountPlan& m : mounts) {
    if (m.mnt_id == mnt_id) return &m;
  }
  return nullptr;
}

const PipeDataPlan* RestorePlan::PipeData(bool fifo, uint32_t pipe_id) const {
  auto it = pipe_data_index.find({fifo, pipe_id});
  return it == pipe_data_index.end() ? nullptr : &pipe_data[it->second];
}

size_t RestorePlan::CountFds() const {
  size_t n = 0;
  for (const TaskPlan& t : tasks) n += t.fds.size();
  return n;
}

PlanOutcome BuildPlan(const ImageDir& dir, const PlanOptions& options) { return Builder(dir, options).Run(); }

std::optional<std::string> NormalizeAbsolutePath(std::string_view path) {
  if (path.empty() || path[0] != '/' || path.find('\0') != std::string_view::npos) return std::nullopt;
  std::string out;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view part = path.substr(i, j - i);
    i = j;
    if (part.empty() || part == ".") continue;
    if (part == "..") return std::nullopt;
    out += '/';
    out += part;
  }
  return out.empty() ? "/" : out;
}

bool CreatableFstype(uint32_t code) {
  switch (code) {
    case img::PROC: case img::SYSFS: case img::DEVTMPFS: case img::BINFMT_MISC: case img::TMPFS:
    case img::DEVPTS: case img::PSTORE: case img::SECURITYFS: case img::FUSECTL: case img::DEBUGFS:
    case img::CGROUP: case img::MQUEUE: case img::AUTOFS: case img::TRACEFS: case img::CGROUP2:
      return true;
    default:
      return false;
  }
}

uint32_t FstypeCode(std::string_view name) {
  for (uint32_t code = 1; code <= img::CGROUP2; ++code) {
    std::string_view known = FstypeName(code);
    if (known != "unknown" && name == known) return code;
  }
  return 0;
}

const char* FstypeName(uint32_t code) {
  switch (code) {
    case img::PROC: return "proc";
    case img::SYSFS: return "sysfs";
    case img::DEVTMPFS: return "devtmpfs";
    case img::BINFMT_MISC: return "binfmt_misc";
    case img::TMPFS: return "tmpfs";
    case img::DEVPTS: return "devpts";
    case img::SIMFS: return "simfs";
    case img::PSTORE: return "pstore";
    case img::SECURITYFS: return "securityfs";
    case img::FUSECTL: return "fusectl";
    case img::DEBUGFS: return "debugfs";
    case img::CGROUP: return "cgroup";
    case img::AUFS: return "aufs";
    case img::MQUEUE: return "mqueue";
    case img::FUSE: return "fuse";
    case img::AUTO: return "auto";
    case img::OVERLAYFS: return "overlay";
    case img::AUTOFS: return "autofs";
    case img::TRACEFS: return "tracefs";
    case img::CGROUP2: return "cgroup2";
    default: return "unknown";
  }
}

}  // namespace ro::images
