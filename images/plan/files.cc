// Files: open file descriptions (files.img), each task's fd table
// (fdinfo-<files_id>.img), pipe and FIFO contents, cwd and root; then, once
// the forks are planned, who makes each description and who keeps it
// parked on the way down to its holders.
#include <fcntl.h>

#include <algorithm>
#include <set>

#include "images/plan/context.h"
#include "images/proto/fdinfo.pb.h"
#include "images/proto/fs.pb.h"
#include "images/proto/owners.pb.h"
#include "images/proto/pipe-data.pb.h"

namespace ro::images::plan {
namespace {

constexpr uint32_t kFdLimit = 1u << 20;  // NR_OPEN
constexpr uint32_t kDefaultPipeCapacity = 65536;
constexpr uint32_t kMaxPipeCapacity = 1u << 30;

const char* FdTypeName(int type) {
  const auto* d = img::fd_types_descriptor()->FindValueByNumber(type);
  return d != nullptr ? d->name().c_str() : "unknown";
}

// Where a file id was defined, for messages.
struct FileRef {
  size_t entry;
  const img::file_entry* msg;
};

struct FileTable {
  std::map<uint32_t, FileRef> refs;
  std::map<uint32_t, int> unsupported;  // file id -> fd type
};

// One files.img entry as a description to make, or nullopt (reported).
std::optional<FilePlan> ReadFile(Context& ctx, const FileTable& table, uint32_t id, const FileRef& ref) {
  const std::string name = MakeFileName(FilesKind());
  const img::file_entry& e = *ref.msg;
  FilePlan p;
  p.id = id;
  switch (e.type()) {
    case img::REG: {
      if (!e.has_reg()) {
        ctx.problems.Add(name, ref.entry, "REG file " + Str(id) + " has no reg entry");
        return std::nullopt;
      }
      if (e.reg().id() != id) {
        ctx.problems.Add(name, ref.entry, "reg.id " + Str(e.reg().id()) + " differs from the file id " + Str(id));
      }
      auto path = NormalizeAbsolutePath(e.reg().name());
      if (!path) {
        ctx.problems.Add(name, ref.entry, "path \"" + e.reg().name() + "\" is not absolute or contains \"..\"");
        return std::nullopt;
      }
      if ((e.reg().flags() & O_ACCMODE) == O_ACCMODE) {
        ctx.problems.Add(name, ref.entry, "open flags 0" + OctStr(e.reg().flags()) + " have an invalid access mode");
      }
      p.kind = FileKind::kRegular;
      p.flags = e.reg().flags();
      p.pos = e.reg().pos();
      p.path = *path;
      if (e.reg().has_size()) p.size = e.reg().size();
      if (e.reg().has_mode()) p.mode = e.reg().mode();
      if (e.reg().build_id_size() > 16) {
        ctx.problems.Add(name, ref.entry, "file " + Str(id) + " has a build-id of " + Str(e.reg().build_id_size()) + " words, more than 16");
        return std::nullopt;
      }
      for (uint32_t word : e.reg().build_id()) p.build_id.append(reinterpret_cast<const char*>(&word), sizeof(word));
      p.mnt_id = e.reg().mnt_id();
      return p;
    }
    case img::PIPE: {
      if (!e.has_pipe()) {
        ctx.problems.Add(name, ref.entry, "PIPE file " + Str(id) + " has no pipe entry");
        return std::nullopt;
      }
      if (e.pipe().id() != id) {
        ctx.problems.Add(name, ref.entry, "pipe.id " + Str(e.pipe().id()) + " differs from the file id " + Str(id));
      }
      uint32_t mode = e.pipe().flags() & O_ACCMODE;
      if (mode != O_RDONLY && mode != O_WRONLY) {
        ctx.problems.Add(name, ref.entry, "pipe " + Str(e.pipe().pipe_id()) + " end opened neither read-only nor write-only");
      }
      p.kind = FileKind::kPipe;
      p.flags = e.pipe().flags();
      p.pipe_id = e.pipe().pipe_id();
      return p;
    }
    case img::FIFO: {
      if (!e.has_fifo()) {
        ctx.problems.Add(name, ref.entry, "FIFO file " + Str(id) + " has no fifo entry");
        return std::nullopt;
      }
      auto path_ref = table.refs.find(e.fifo().regf_id());
      if (!e.fifo().has_regf_id() || path_ref == table.refs.end() || !path_ref->second.msg->has_reg()) {
        ctx.problems.Add(name, ref.entry, "FIFO " + Str(id) + " names no REG entry for its path (regf_id " +
                                              Str(e.fifo().regf_id()) + ")");
        return std::nullopt;
      }
      const auto& reg = path_ref->second.msg->reg();
      auto path = NormalizeAbsolutePath(reg.name());
      if (!path) {
        ctx.problems.Add(name, ref.entry, "FIFO path \"" + reg.name() + "\" is not absolute or contains \"..\"");
        return std::nullopt;
      }
      p.kind = FileKind::kFifo;
      p.flags = reg.flags();
      p.path = *path;
      p.pipe_id = e.fifo().pipe_id();
      p.mnt_id = reg.mnt_id();
      return p;
    }
    default:
      return std::nullopt;  // an unsupported kind: reported by the fds that hold it
  }
}

FileTable ReadFiles(Context& ctx) {
  FileTable table;
  const std::string name = MakeFileName(FilesKind());
  const ImageFile* f = ctx.dir.Find(FilesKind());
  if (f == nullptr) return table;
  for (size_t i = 0; i < f->entries.size(); ++i) {
    const auto& e = f->As<img::file_entry>(i);
    if (!table.refs.emplace(e.id(), FileRef{i, &e}).second) {
      ctx.problems.Add(name, i, "duplicate file id " + Str(e.id()));
    }
  }
  for (const auto& [id, ref] : table.refs) {
    switch (ref.msg->type()) {
      case img::REG: case img::PIPE: case img::FIFO: break;
      default: table.unsupported.emplace(id, ref.msg->type()); continue;
    }
    if (auto p = ReadFile(ctx, table, id, ref)) ctx.plan.files.emplace(id, std::move(*p));
  }
  return table;
}

void ReadFdTables(Context& ctx, const FileTable& table) {
  std::map<uint32_t, pid_t> table_owner;
  for (auto& [pid, t] : ctx.tasks) {
    if (t.kind == TaskKind::kZombie) continue;
    auto ids = ctx.ids.find(pid);
    if (ids == ctx.ids.end()) continue;
    uint32_t files_id = ids->second->files_id();
    auto [owner, fresh] = table_owner.emplace(files_id, pid);
    const std::string name = MakeFileName(FdinfoKind(), files_id);
    if (!fresh) {
      ctx.problems.Add(name, std::nullopt, "tasks " + Str(owner->second) + " and " + Str(pid) +
                                               " share one fd table (CLONE_FILES): not supported");
      continue;
    }
    const ImageFile* f = ctx.dir.Find(FdinfoKind(), files_id);
    if (f == nullptr) continue;  // no fds at all
    std::map<uint32_t, size_t> fd_entry;
    for (size_t i = 0; i < f->entries.size(); ++i) {
      const auto& e = f->As<img::fdinfo_entry>(i);
      std::string who = "task " + Str(pid) + " fd " + Str(e.fd());
      if (e.fd() >= kFdLimit) {
        ctx.problems.Add(name, i, who + ": fd number above the kernel's limit " + Str(kFdLimit - 1));
        continue;
      }
      if (auto [it, ok] = fd_entry.emplace(e.fd(), i); !ok) {
        ctx.problems.Add(name, i, who + ": two fds with one number (also entry " + Str(it->second) + ")");
        continue;
      }
      if ((e.flags() & ~uint32_t(FD_CLOEXEC)) != 0) {
        ctx.problems.Add(name, i, who + ": fd flags 0x" + HexStr(e.flags()) + " hold more than FD_CLOEXEC");
      }
      auto ref = table.refs.find(e.id());
      if (ref == table.refs.end()) {
        ctx.problems.Add(name, i, who + ": file id " + Str(e.id()) + " is missing from files.img");
        continue;
      }
      if (static_cast<int>(ref->second.msg->type()) != static_cast<int>(e.type())) {
        ctx.problems.Add(name, i, who + ": fdinfo says " + FdTypeName(e.type()) + " but files.img entry " +
                                      Str(ref->second.entry) + " is " + FdTypeName(ref->second.msg->type()));
        continue;
      }
      if (auto u = table.unsupported.find(e.id()); u != table.unsupported.end()) {
        ctx.problems.Add(name, i, who + ": " + FdTypeName(u->second) + " files are not supported");
        continue;
      }
      if (ctx.plan.files.count(e.id()) == 0) continue;  // already reported in files.img
      t.fds.push_back(FdPlan{static_cast<int>(e.fd()), e.id(), (e.flags() & FD_CLOEXEC) != 0});
    }
    std::sort(t.fds.begin(), t.fds.end(), [](const FdPlan& a, const FdPlan& b) { return a.fd < b.fd; });
  }
}

void ReadPipeData(Context& ctx, const Kind& kind, bool fifo) {
  const ImageFile* f = ctx.dir.Find(kind);
  if (f == nullptr) return;
  const std::string name = MakeFileName(kind);
  std::set<uint32_t> known;
  for (const auto& [id, p] : ctx.plan.files) {
    if ((p.kind == FileKind::kFifo) == fifo && p.kind != FileKind::kRegular) known.insert(p.pipe_id);
  }
  std::set<uint32_t> seen;
  for (size_t i = 0; i < f->entries.size(); ++i) {
    const auto& e = f->As<img::pipe_data_entry>(i);
    if (!seen.insert(e.pipe_id()).second) {
      ctx.problems.Add(name, i, "second data entry for pipe " + Str(e.pipe_id()));
      continue;
    }
    if (known.count(e.pipe_id()) == 0) {
      ctx.problems.Add(name, i, std::string("data for ") + (fifo ? "FIFO " : "pipe ") + Str(e.pipe_id()) +
                                    " which no file entry names");
      continue;
    }
    uint32_t capacity = e.has_size() ? e.size() : 0;
    if (e.has_size() && (capacity < 4096 || capacity > kMaxPipeCapacity || (capacity & (capacity - 1)) != 0)) {
      ctx.problems.Add(name, i, "pipe capacity " + Str(capacity) + " is not a power of two between 4096 and " + Str(kMaxPipeCapacity));
      continue;
    }
    uint32_t limit = capacity != 0 ? capacity : kDefaultPipeCapacity;
    if (e.bytes() > limit) {
      ctx.problems.Add(name, i, "pipe " + Str(e.pipe_id()) + " holds " + Str(e.bytes()) + " bytes, more than its capacity " + Str(limit));
      continue;
    }
    ctx.plan.pipe_data_index[{fifo, e.pipe_id()}] = ctx.plan.pipe_data.size();
    ctx.plan.pipe_data.push_back(PipeDataPlan{e.pipe_id(), capacity, f->entries[i].payload, fifo});
  }
}

// pipe-owners.img: each entry a pipe of files.img, once, with an owner
// fchown(2) takes (-1 would mean "leave it") and a mode fchmod(2) takes.
void ReadPipeOwners(Context& ctx) {
  const ImageFile* f = ctx.dir.Find(PipeOwnersKind());
  if (f == nullptr) return;
  ctx.plan.pipe_owners_known = true;
  const std::string name = MakeFileName(PipeOwnersKind());
  std::set<uint32_t> pipes;
  for (const auto& [id, p] : ctx.plan.files) {
    if (p.kind == FileKind::kPipe) pipes.insert(p.pipe_id);
  }
  for (size_t i = 0; i < f->entries.size(); ++i) {
    const auto& e = f->As<img::pipe_owner_entry>(i);
    if (pipes.count(e.pipe_id()) == 0) {
      ctx.problems.Add(name, i, "pipe " + Str(e.pipe_id()) + " is no pipe of files.img");
    } else if (e.uid() == UINT32_MAX || e.gid() == UINT32_MAX) {
      ctx.problems.Add(name, i, "pipe " + Str(e.pipe_id()) + " has owner " + Str(e.uid()) + ":" + Str(e.gid()) + ": -1 is no id");
    } else if (e.has_mode() && (e.mode() & ~07777u) != 0) {
      ctx.problems.Add(name, i, "pipe " + Str(e.pipe_id()) + " has mode 0" + OctStr(e.mode()) + ": more than permission bits (07777)");
    } else if (!ctx.plan.pipe_owners.emplace(e.pipe_id(), PipeOwner{e.uid(), e.gid(), e.has_mode() ? e.mode() : kPipeMode}).second) {
      ctx.problems.Add(name, i, "second owner of pipe " + Str(e.pipe_id()));
    }
  }
}

// cwd and root name regular-file entries of files.img.
void ReadFsDirs(Context& ctx) {
  for (auto& [pid, t] : ctx.tasks) {
    if (t.kind == TaskKind::kZombie) continue;
    const ImageFile* f = ctx.dir.Find(FsKind(), static_cast<uint32_t>(pid));
    if (f == nullptr) continue;
    const std::string name = MakeFileName(FsKind(), static_cast<uint32_t>(pid));
    const auto& fs = f->As<img::fs_entry>(0);
    pid_t task = pid;  // clang 14 (the fuzz build) cannot capture a structured binding
    auto dir_of = [&](uint32_t id, const char* what) -> const FilePlan* {
      auto it = ctx.plan.files.find(id);
      if (it == ctx.plan.files.end() || it->second.kind != FileKind::kRegular) {
        ctx.problems.Add(name, 0, std::string(what) + " of task " + Str(task) + " names file " + Str(id) +
                                      ", which is no regular file entry of files.img");
        return nullptr;
      }
      return &it->second;
    };
    if (const FilePlan* cwd = dir_of(fs.cwd_id(), "cwd")) {
      t.cwd = cwd->path;
      t.cwd_mnt_id = cwd->mnt_id;
    }
    if (const FilePlan* root = dir_of(fs.root_id(), "root")) {
      t.root = root->path;
      t.root_mnt_id = root->mnt_id;
    }
  }
}

}  // namespace

void PlanFileTables(Context& ctx) {
  FileTable table = ReadFiles(ctx);
  ReadFdTables(ctx, table);
  ReadPipeData(ctx, PipesDataKind(), false);
  ReadPipeData(ctx, FifoDataKind(), true);
  ReadPipeOwners(ctx);
  ReadFsDirs(ctx);
}

// The descriptions of one pipe (or FIFO) are made together, by the common
// ancestor of all their holders, because further descriptions of an end
// are reopened from the first.
void PlanFileCreation(Context& ctx) {
  RestorePlan& plan = ctx.plan;
  ForkAncestry ancestry(ctx);
  // Tasks in an order where every parent comes before its children.
  std::vector<pid_t> order;
  std::vector<pid_t> stack{ctx.root_pid};
  while (!stack.empty()) {
    pid_t p = stack.back();
    stack.pop_back();
    order.push_back(p);
    for (pid_t c : ctx.Task(p).children) stack.push_back(c);
  }
  std::map<pid_t, size_t> preorder;
  for (size_t i = 0; i < order.size(); ++i) preorder[order[i]] = i;
  // Holders of each file id, and the group each id is made with.
  std::map<uint32_t, std::vector<pid_t>> holders;
  for (pid_t p : order) {
    for (const FdPlan& fd : ctx.Task(p).fds) {
      auto& h = holders[fd.file_id];
      if (h.empty()) {
        plan.files[fd.file_id].first_holder = p;
        plan.files[fd.file_id].first_fd = fd.fd;
      }
      if (h.empty() || h.back() != p) h.push_back(p);
      plan.max_fd = std::max(plan.max_fd, fd.fd);
    }
  }
  auto group_of = [&](const FilePlan& f) -> std::pair<int, uint32_t> {
    switch (f.kind) {
      case FileKind::kRegular: return {0, f.id};
      case FileKind::kPipe: return {1, f.pipe_id};
      case FileKind::kFifo: return {2, f.pipe_id};
    }
    return {0, f.id};
  };
  std::map<std::pair<int, uint32_t>, std::vector<uint32_t>> groups;
  for (const auto& [id, h] : holders) groups[group_of(plan.files[id])].push_back(id);
  for (auto& [key, ids] : groups) {
    // The common ancestor of a set is that of its first and last member in
    // preorder: one walk up the tree per group, however deep the tree.
    pid_t first = 0, last = 0;
    for (uint32_t id : ids) {
      for (pid_t p : holders[id]) {
        if (first == 0 || preorder[p] < preorder[first]) first = p;
        if (last == 0 || preorder[p] > preorder[last]) last = p;
      }
    }
    pid_t creator = ancestry.Common(first, last);
    for (uint32_t id : ids) {
      FilePlan& f = plan.files[id];
      f.creator = creator;
      ctx.Task(creator).creates.push_back(id);
      // Everyone between the creator and a holder keeps it parked.
      for (pid_t p : holders[id]) {
        for (pid_t q = p; q != creator; q = ctx.Task(q).fork_parent) {
          auto& keeps = ctx.Task(q).keeps;
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
    TaskPlan& t = ctx.Task(p);
    uint32_t next = 0;
    for (uint32_t id : t.keeps) next = std::max(next, plan.files[id].slot + 1);
    for (uint32_t id : t.creates) plan.files[id].slot = next++;
    plan.parked_slots = std::max(plan.parked_slots, next);
  }
  for (auto& [pid, t] : ctx.tasks) {
    std::sort(t.keeps.begin(), t.keeps.end(), [&](uint32_t a, uint32_t b) { return plan.files[a].slot < plan.files[b].slot; });
    t.keeps.erase(std::unique(t.keeps.begin(), t.keeps.end()), t.keeps.end());
  }
}

}  // namespace ro::images::plan
