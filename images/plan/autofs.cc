// AutoFS: each AutoFS superblock the restore makes, from its
// autofs-<dev>.img: the mount options it is made with, and the master that
// takes it over (the task whose pid is pgrp, through the pipe end it holds
// at fd, or at read_fd when it had closed its write end), or catatonic.
#include <fcntl.h>

#include "images/plan/context.h"
#include "images/proto/autofs.pb.h"
#include "images/proto/mnt.pb.h"

namespace ro::images::plan {
namespace {

// The problem with an entry's values, or empty.
std::string CheckValues(const img::autofs_entry& e) {
  if (e.mode() < 0 || e.mode() > 2) return "mode " + Str(uint32_t(e.mode())) + " is not direct (0), indirect (1) or offset (2)";
  if (e.minproto() < 0 || e.maxproto() < e.minproto()) {
    return "protocol range " + std::to_string(e.minproto()) + ".." + std::to_string(e.maxproto()) + " is empty";
  }
  // The kernel speaks versions 3 to 5 (AUTOFS_MIN/MAX_PROTO_VERSION) and
  // refuses a mount whose range holds none of them.
  if (e.maxproto() < 3 || e.minproto() > 5) {
    return "protocol range " + std::to_string(e.minproto()) + ".." + std::to_string(e.maxproto()) +
           " holds none of the versions the kernel speaks (3..5)";
  }
  if ((e.has_uid() && e.uid() < 0) || (e.has_gid() && e.gid() < 0)) return "uid or gid is negative";
  if (e.timeout() < 0) return "negative timeout " + std::to_string(e.timeout());
  if (e.fd() < -1) return "fd " + std::to_string(e.fd()) + " is neither -1 (catatonic) nor an fd number";
  return "";
}

// The master's fd holding the pipe end the mount needs, or null.
const FdPlan* MasterEnd(const Context& ctx, const TaskPlan& master, const AutofsPlan& a) {
  uint32_t want_mode = a.write_end_closed ? O_RDONLY : O_WRONLY;
  for (const FdPlan& p : master.fds) {
    if (p.fd != a.pipe_fd) continue;
    const FilePlan& f = ctx.plan.files.at(p.file_id);
    return f.kind == FileKind::kPipe && (f.flags & O_ACCMODE) == want_mode ? &p : nullptr;
  }
  return nullptr;
}

}  // namespace

void PlanAutofs(Context& ctx) {
  const std::string mounts_file = MakeFileName(MountpointsKind(), ctx.plan.ns.mnt_ns_id);
  for (const MountPlan& m : ctx.plan.mounts) {
    if (m.how != MountSource::kNew || RestoreOf(m.fstype_code) != FsRestore::kAutofs) continue;
    const std::string file = MakeFileName(AutofsKind(), m.root_dev);
    const ImageFile* f = ctx.dir.Find(AutofsKind(), m.root_dev);
    if (f == nullptr) {
      ctx.problems.Add(mounts_file, ctx.mount_entry[m.mnt_id], "AutoFS mount " + m.mountpoint + " has no " + file);
      continue;
    }
    const auto& e = f->As<img::autofs_entry>(0);
    if (std::string why = CheckValues(e); !why.empty()) {
      ctx.problems.Add(file, 0, why);
      continue;
    }
    AutofsPlan a;
    a.mnt_id = m.mnt_id;
    a.path = m.mountpoint;
    a.dev = m.root_dev;
    a.timeout = e.timeout();
    a.minproto = e.minproto();
    a.maxproto = e.maxproto();
    a.mode = e.mode();
    if (e.has_uid()) a.uid = e.uid();
    if (e.has_gid()) a.gid = e.gid();
    a.catatonic = e.fd() == -1;
    if (a.catatonic) {
      ctx.plan.autofs.push_back(a);
      continue;
    }
    // A mount no master can take over fails the plan, or stays catatonic
    // when the caller asked for that.
    auto orphan = [&](const std::string& why) {
      if (!ctx.options.autofs_orphans_catatonic) {
        ctx.problems.Add(file, 0, why);
        return;
      }
      a.catatonic = true;
      a.master = 0;
      a.pipe_fd = -1;
      a.write_end_closed = false;
      ctx.plan.autofs.push_back(a);
      ctx.plan.warnings.push_back(file + ": " + why + "; left catatonic (--autofs-orphans=catatonic)");
    };
    auto master = ctx.tasks.find(static_cast<pid_t>(e.pgrp()));
    if (e.pgrp() <= 0 || master == ctx.tasks.end() || master->second.kind != TaskKind::kAlive) {
      orphan("master (pgrp " + std::to_string(e.pgrp()) + ") of AutoFS mount " + m.mountpoint + " is not a live task of the tree");
      continue;
    }
    a.master = master->first;
    a.write_end_closed = e.has_read_fd();
    a.pipe_fd = a.write_end_closed ? e.read_fd() : e.fd();
    if (a.write_end_closed) {
      // The kernel names the fd a master hands over as the mount's fd=: the
      // temporary write end goes at the number the mount had, when free.
      bool taken = false;
      for (const FdPlan& fd : master->second.fds) taken |= fd.fd == e.fd();
      if (!taken) a.write_fd = e.fd();
    }
    if (MasterEnd(ctx, master->second, a) == nullptr) {
      orphan("master " + Str(a.master) + " holds no pipe " + (a.write_end_closed ? "read" : "write") + " end at fd " +
             std::to_string(a.pipe_fd) + " for AutoFS mount " + m.mountpoint);
      continue;
    }
    ctx.plan.autofs.push_back(a);
  }
  for (auto& [id, f] : ctx.plan.files) {
    if (f.kind != FileKind::kRegular || f.mnt_id <= 0) continue;
    const MountPlan* m = ctx.plan.FindMount(static_cast<uint32_t>(f.mnt_id));
    if (m != nullptr && m->fstype_code == img::AUTOFS && m->root == "/" && m->mountpoint == f.path) f.autofs_mnt_id = m->mnt_id;
  }
}

}  // namespace ro::images::plan
