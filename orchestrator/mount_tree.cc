#include "orchestrator/mount_tree.h"

#include <fcntl.h>
#include <linux/auto_fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <csignal>
#include <optional>
#include <set>
#include <utility>

#include "sys/clone.h"
#include "sys/log.h"
#include "sys/mount_api.h"
#include "sys/mountinfo.h"
#include "orchestrator/tmpfs.h"

namespace ro {
namespace {

using images::MountPlan;
using images::MountSource;
using images::SharingStep;

std::string Num(uint64_t v) { return std::to_string(v); }

Error About(const MountPlan& m, Error e) { return e.Within("mount " + Num(m.mnt_id) + " at " + m.mountpoint); }

// `path` relative to `base` ("/a/b" in "/a" -> "b"); both normalised.
std::string Below(const std::string& path, const std::string& base) {
  if (base == "/") return path.substr(1);
  if (path == base) return "";
  return path.substr(base.size() + 1);
}

const char* AutofsMode(int mode) { return mode == 0 ? "direct" : mode == 1 ? "indirect" : "offset"; }

// A child of the root task, sharing its fd table, in a process group of
// its own: an AutoFS mount made with its group as pgrp lets it make
// directories in the mount (the kernel allows that to the owner only).
// The fd table is shared: every fd stays open until the child is reaped.
class AutofsDirMaker {
 public:
  // `dirs` are copied into the child with its memory: relative paths to
  // make below the mount Make() names.
  static Result<AutofsDirMaker> Start(const std::vector<std::string>& dirs) {
    int go[2];
    if (::pipe2(go, O_CLOEXEC) != 0) return SysError("pipe2");
    AutofsDirMaker maker;
    maker.go_r_.reset(go[0]);
    maker.go_w_.reset(go[1]);
    RO_ASSIGN_OR_RETURN(sys::Cloned c, sys::Clone3(sys::CloneSpec{.flags = CLONE_FILES, .want_pidfd = false}));
    if (c.pid == 0) Child(maker.go_r_.get(), dirs);
    maker.pid_ = c.pid;
    // Its group exists before the mount names it.
    if (::setpgid(c.pid, c.pid) != 0) return SysError("setpgid(" + Num(static_cast<uint64_t>(c.pid)) + ") for the AutoFS directory helper");
    return maker;
  }
  AutofsDirMaker(AutofsDirMaker&& o) noexcept
      : pid_(std::exchange(o.pid_, 0)), go_r_(std::move(o.go_r_)), go_w_(std::move(o.go_w_)) {}
  AutofsDirMaker& operator=(AutofsDirMaker&&) = delete;
  ~AutofsDirMaker() {
    go_w_.reset();  // a helper still waiting for its mount reads end of file and exits
    Reap();
  }
  pid_t pid() const { return pid_; }

  // Lets the helper make its directories below `mount`, the AutoFS mount
  // made with its group as owner, and waits for it.
  Status Make(const UniqueFd& mount) {
    int fd = mount.get();
    if (::write(go_w_.get(), &fd, sizeof(fd)) != sizeof(fd)) return SysError("start the AutoFS directory helper");
    int status = Reap();
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      return SysError("make the mountpoints below the AutoFS mount", WIFEXITED(status) ? WEXITSTATUS(status) : EINTR);
    }
    return {};
  }

 private:
  AutofsDirMaker() = default;

  [[noreturn]] static void Child(int go, const std::vector<std::string>& dirs) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = -1;
    if (::read(go, &fd, sizeof(fd)) != sizeof(fd)) ::_exit(0);  // not needed after all
    for (const std::string& dir : dirs) {
      // The mount fd is shared (CLONE_FILES): borrowed, never closed.
      UniqueFd borrowed(fd);
      auto made = sys::OpenBeneath(borrowed, dir, true, false);
      borrowed.release();
      if (!made.ok()) ::_exit(made.error().err != 0 ? made.error().err : EINVAL);
    }
    ::_exit(0);
  }

  int Reap() {
    int status = 0;
    if (pid_ > 0) ::waitpid(pid_, &status, 0);
    pid_ = 0;
    return status;
  }

  pid_t pid_ = 0;
  UniqueFd go_r_, go_w_;
};

class Builder {
 public:
  Builder(const images::RestorePlan& plan, const MountOptions& options, std::vector<worker::AutofsMount>* autofs,
          shm::Arena& arena)
      : plan_(plan), options_(options), autofs_(autofs), arena_(arena) {}

  Status Run() {
    RO_ASSIGN_OR_RETURN(caller_, sys::ReadMountInfo());
    for (const MountPlan& m : plan_.mounts) {
      auto fd = Create(m);
      if (!fd.ok()) return About(m, std::move(fd).error());
      fds_.emplace(m.mnt_id, std::move(fd).value());
    }
    RO_TRY(Place());
    RO_TRY(Share());
    for (const MountPlan& m : plan_.mounts) {
      if (m.flags & MS_UNBINDABLE) {
        if (Status s = sys::SetPropagation(fds_[m.mnt_id], MS_UNBINDABLE); !s.ok()) return About(m, s.error());
      }
    }
    return Pivot();
  }

 private:
  bool Ours(const MountPlan& m) const {
    const MountPlan* p = &m;
    while (p->how == MountSource::kBind) p = plan_.FindMount(p->bind_of);
    return p->how == MountSource::kNew;
  }

  Result<UniqueFd> Create(const MountPlan& m) {
    RO_TRY(arena_.Fault(shm::FaultPoint::kMountCreate, "create the mount"));
    UniqueFd fd;
    switch (m.how) {
      case MountSource::kNew:
        if (m.fstype == "autofs") {
          RO_ASSIGN_OR_RETURN(fd, MountAutofs(m));
        } else {
          // A read-only tmpfs gets its files first and read-only afterwards.
          bool ro = (m.sb_flags & MS_RDONLY) != 0;
          RO_ASSIGN_OR_RETURN(fd, sys::NewMount(m.fstype, m.source, sys::SplitOptions(m.options), ro && !m.contents));
          if (m.contents) {
            RO_TRY(UnpackTmpfs(fd, *m.contents));
            if (ro) RO_TRY(sys::SetSuperblockReadOnly(fd));
          }
        }
        break;
      case MountSource::kBind: {
        const MountPlan& src = *plan_.FindMount(m.bind_of);
        std::string rel = Below(m.root, src.root);
        if (rel.empty()) {
          RO_ASSIGN_OR_RETURN(fd, sys::CloneMount(fds_[src.mnt_id], ""));
        } else {
          // The bind's root in its source: made when the source is ours (an
          // empty new filesystem), looked up without symlinks otherwise.
          RO_ASSIGN_OR_RETURN(UniqueFd dir, sys::OpenBeneath(fds_[src.mnt_id], rel, Ours(src), false));
          RO_ASSIGN_OR_RETURN(fd, sys::CloneMount(dir, ""));
        }
        break;
      }
      case MountSource::kExternal: {
        RO_ASSIGN_OR_RETURN(std::string source, ExternalSource(m));
        log::Info("external mount {} from {}", m.mountpoint, source);
        RO_ASSIGN_OR_RETURN(fd, sys::CloneMountAt(source));
        break;
      }
    }
    RO_TRY(sys::SetMountFlags(fd, m.flags));
    return fd;
  }

  Result<std::string> ExternalSource(const MountPlan& m) {
    if (m.mountpoint == "/" && !options_.root.empty()) return options_.root;
    auto given = options_.externals.find(m.ext_key);
    if (given != options_.externals.end()) return given->second;
    // Found by device and root: a mount of the caller's whose root contains ours.
    uint32_t major = m.root_dev >> 20, minor = m.root_dev & 0xfffff;
    // A mount covered by another at its own mountpoint cannot be reached
    // by its path: binding that path would bind the one on top.
    std::set<uint32_t> covered;
    for (const sys::MountInfo& o : caller_) {
      for (const sys::MountInfo& c : caller_) {
        if (o.parent_id == c.mnt_id && o.mountpoint == c.mountpoint && o.mnt_id != c.mnt_id) covered.insert(c.mnt_id);
      }
    }
    const sys::MountInfo* best = nullptr;
    bool only_covered = false;
    for (const sys::MountInfo& c : caller_) {
      if (c.major != major || c.minor != minor) continue;
      bool contains = c.root == "/" || m.root == c.root || m.root.rfind(c.root + "/", 0) == 0;
      if (contains && covered.count(c.mnt_id)) only_covered = true;
      if (contains && !covered.count(c.mnt_id) && (best == nullptr || c.root.size() > best->root.size())) best = &c;
    }
    if (best == nullptr && only_covered) {
      return Fail("external " + m.fstype + " mount: the mounts of device " + Num(major) + ":" + Num(minor) +
                  " here are covered by other mounts; give --external " + m.ext_key + "=PATH");
    }
    if (best == nullptr) {
      return Fail("external " + m.fstype + " mount: no mount of device " + Num(major) + ":" + Num(minor) +
                  " here holds " + m.root + "; give --external " + m.ext_key + "=PATH");
    }
    std::string rest = best->root == "/" ? m.root : m.root.substr(best->root.size());
    if (rest == "/") rest.clear();
    return best->mountpoint == "/" ? (rest.empty() ? "/" : rest) : best->mountpoint + rest;
  }

  // An AutoFS superblock with a dummy pipe, owned by no master yet: its
  // timeout set and made catatonic at once. The dumped fd=, pgrp= and
  // pipe_ino= are never passed on.
  Result<UniqueFd> MountAutofs(const MountPlan& m) {
    const images::AutofsPlan* a = nullptr;
    for (const auto& candidate : plan_.autofs) {
      if (candidate.mnt_id == m.mnt_id) a = &candidate;
    }
    if (a == nullptr) return Fail("AutoFS mount without its autofs image");
    RO_TRY(arena_.Fault(shm::FaultPoint::kAutofsMount, "mount autofs with a dummy pipe"));
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return SysError("pipe2 (dummy AutoFS pipe)");
    UniqueFd rd(p[0]), wr(p[1]);
    // pgrp must name a process group of this PID namespace; ours (pid 1's)
    // is still outside it, so the root task's own pid stands in.
    std::vector<std::string> opts = {"fd=" + Num(static_cast<uint64_t>(wr.get())), "pgrp=" + Num(static_cast<uint64_t>(::getpid())),
                                     "minproto=" + Num(static_cast<uint64_t>(a->minproto)),
                                     "maxproto=" + Num(static_cast<uint64_t>(a->maxproto)), AutofsMode(a->mode)};
    if (a->uid) opts.push_back("uid=" + Num(static_cast<uint64_t>(*a->uid)));
    if (a->gid) opts.push_back("gid=" + Num(static_cast<uint64_t>(*a->gid)));
    // Mounts below it need their directories in it, which only its owner's
    // process group may make, and only before it is catatonic: a helper in
    // a group of its own owns it until they are made.
    std::vector<std::string> dirs = DirsBelowAutofs(m);
    std::optional<AutofsDirMaker> maker;
    if (!dirs.empty()) {
      auto started = AutofsDirMaker::Start(dirs);
      if (!started.ok()) return std::move(started).error();
      maker.emplace(std::move(started).value());
      opts[1] = "pgrp=" + Num(static_cast<uint64_t>(maker->pid()));
    }
    RO_ASSIGN_OR_RETURN(UniqueFd mnt, sys::NewMount("autofs", m.source, opts, (m.sb_flags & MS_RDONLY) != 0));
    if (maker) RO_TRY(maker->Make(mnt));
    UniqueFd root(::openat(mnt.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!root) return SysError("open the AutoFS root");
    RO_TRY(arena_.Fault(shm::FaultPoint::kAutofsCatatonic, "ioctl(AUTOFS_IOC_CATATONIC)"));
    unsigned long timeout = static_cast<unsigned long>(a->timeout);
    if (::ioctl(root.get(), AUTOFS_IOC_SETTIMEOUT, &timeout) != 0) return SysError("ioctl(AUTOFS_IOC_SETTIMEOUT, " + Num(timeout) + ")");
    if (::ioctl(root.get(), AUTOFS_IOC_CATATONIC, 0) != 0) return SysError("ioctl(AUTOFS_IOC_CATATONIC)");
    struct stat st {};
    if (::fstat(root.get(), &st) != 0) return SysError("fstat the AutoFS root");
    autofs_->push_back(worker::AutofsMount{m.mnt_id, m.mountpoint, st.st_dev});
    return mnt;
  }

  // Paths, relative to the root of AutoFS superblock `m`, of the mountpoints
  // of mounts placed on it or on a bind of it.
  std::vector<std::string> DirsBelowAutofs(const MountPlan& m) const {
    std::vector<std::string> dirs;
    for (const MountPlan& child : plan_.mounts) {
      const MountPlan* parent = plan_.FindMount(child.parent_id);
      if (parent == nullptr || child.mnt_id == parent->mnt_id) continue;
      const MountPlan* sb = parent;
      while (sb->how == MountSource::kBind) sb = plan_.FindMount(sb->bind_of);
      if (sb != &m) continue;
      std::string in_parent = Below(child.mountpoint, parent->mountpoint);
      std::string root = parent->root == "/" ? "" : parent->root.substr(1);
      std::string path = root.empty() ? in_parent : in_parent.empty() ? root : root + "/" + in_parent;
      if (!path.empty()) dirs.push_back(path);
    }
    return dirs;
  }

  Status Place() {
    // A staging directory of the caller's tree holds the new root until the pivot.
    for (const char* dir : {"/tmp", "/mnt", "/run", "/var/tmp"}) {
      struct stat st {};
      if (::lstat(dir, &st) == 0 && S_ISDIR(st.st_mode)) {
        staging_ = dir;
        break;
      }
    }
    if (staging_.empty()) return Fail("no staging directory (/tmp, /mnt, /run) for the new root");
    const MountPlan& root = *plan_.FindMount(plan_.placement.front());
    if (Status s = sys::MoveMountTo(fds_[root.mnt_id], staging_); !s.ok()) return About(root, s.error());
    root_dir_.reset(::open(staging_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root_dir_) return SysError("open " + staging_);
    for (size_t i = 1; i < plan_.placement.size(); ++i) {
      const MountPlan& m = *plan_.FindMount(plan_.placement[i]);
      const MountPlan& parent = *plan_.FindMount(m.parent_id);
      struct stat st {};
      ::fstat(fds_[m.mnt_id].get(), &st);
      if (Status s = arena_.Fault(shm::FaultPoint::kMountPlace, "move_mount(-> " + m.mountpoint + ")"); !s.ok()) {
        return About(m, s.error());
      }
      auto target = sys::OpenBeneath(root_dir_, m.mountpoint.substr(1), Ours(parent), S_ISREG(st.st_mode));
      if (!target.ok()) return About(m, std::move(target).error());
      if (Status s = sys::MoveMount(fds_[m.mnt_id], *target, m.mountpoint); !s.ok()) return About(m, s.error());
    }
    return {};
  }

  Status Share() {
    for (const SharingStep& s : plan_.sharing) {
      const MountPlan& m = *plan_.FindMount(s.mnt);
      Status r = arena_.Fault(shm::FaultPoint::kMountShare, "sharing step of mnt " + Num(s.mnt));
      if (!r.ok()) return About(m, r.error());
      switch (s.op) {
        case SharingStep::Op::kMakeShared:
          r = sys::SetPropagation(fds_[s.mnt], MS_SHARED);
          break;
        case SharingStep::Op::kJoinGroup:
          r = sys::JoinPeerGroup(fds_[s.peer], fds_[s.mnt], "mnt " + Num(s.peer) + " -> mnt " + Num(s.mnt));
          break;
        case SharingStep::Op::kSlaveOf:
          r = sys::JoinPeerGroup(fds_[s.peer], fds_[s.mnt], "mnt " + Num(s.peer) + " -> mnt " + Num(s.mnt));
          if (r.ok()) r = sys::SetPropagation(fds_[s.mnt], MS_SLAVE);
          break;
        case SharingStep::Op::kSlaveOfExternal:
          log::Warn("mount {} was a slave of peer group {} outside the images; it is restored private", m.mountpoint, s.group);
          break;
      }
      if (!r.ok()) return About(m, r.error());
    }
    return {};
  }

  Status Pivot() {
    RO_TRY(arena_.Fault(shm::FaultPoint::kPivot, "pivot_root(" + staging_ + ")"));
    if (::fchdir(root_dir_.get()) != 0) return SysError("chdir " + staging_);
    // pivot_root(".", ".") stacks the old root on the new one; detaching it
    // leaves the new root alone.
    if (::syscall(SYS_pivot_root, ".", ".") != 0) return SysError("pivot_root(" + staging_ + ")");
    if (::umount2(".", MNT_DETACH) != 0) return SysError("umount2(old root, MNT_DETACH)");
    if (::chdir("/") != 0) return SysError("chdir /");
    return {};
  }

  const images::RestorePlan& plan_;
  const MountOptions& options_;
  std::vector<worker::AutofsMount>* autofs_;
  shm::Arena& arena_;
  std::vector<sys::MountInfo> caller_;
  std::map<uint32_t, UniqueFd> fds_;
  std::string staging_;
  UniqueFd root_dir_;
};

}  // namespace

Status BuildMountTree(const images::RestorePlan& plan, const MountOptions& options, std::vector<worker::AutofsMount>* autofs,
                      shm::Arena& arena) {
  return Builder(plan, options, autofs, arena).Run();
}

}  // namespace ro
