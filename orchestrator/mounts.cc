#include "orchestrator/mounts.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "orchestrator/autofs.h"
#include "orchestrator/tmpfs.h"
#include "sys/files.h"
#include "sys/log.h"
#include "sys/mount_api.h"
#include "sys/meminfo.h"
#include "sys/mountinfo.h"

namespace ro {
namespace {

using images::MountPlan;
using images::MountSource;
using images::SharingStep;

std::string Num(uint64_t v) { return std::to_string(v); }

Error About(const MountPlan& m, Error e) { return e.Within("mount " + Num(m.mnt_id) + " at " + m.mountpoint); }

class Builder {
 public:
  Builder(const images::RestorePlan& plan, const MountOptions& options, int images_fd, shm::Arena& arena)
      : plan_(plan), options_(options), images_fd_(images_fd), arena_(arena) {}

  Status Run() {
    RO_TRY(sys::MakeTreePrivate());
    for (size_t i = 0; i < plan_.mounts.size(); ++i) {
      const MountPlan& m = plan_.mounts[i];
      auto fd = Create(m);
      if (!fd.ok()) return About(m, std::move(fd).error());
      struct stat st {};
      if (::fstat(fd->get(), &st) != 0) return About(m, SysError("fstat the new mount"));
      arena_.PublishMountDevice(i, st.st_dev);
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
      case MountSource::kNew: {
        RO_ASSIGN_OR_RETURN(fd, CreateSuperblock(m));
        break;
      }
      case MountSource::kBind: {
        const MountPlan& src = *plan_.FindMount(m.bind_of);
        RO_ASSIGN_OR_RETURN(fd, CloneBelow(fds_[src.mnt_id], images::PathBelow(m.root, src.root), Ours(src)));
        break;
      }
      case MountSource::kExternal: {
        auto found = options_.sources.find(m.mnt_id);
        if (found == options_.sources.end()) return Fail("external mount without a resolved source");
        const ExternalSource& source = found->second;
        log::Info("external mount {} from {}", m.mountpoint, source.Describe());
        if (source.hidden_mount) {
          // Attached as it is: only the copy it was cloned in could clone it again.
          fd.reset(::fcntl(source.hidden_mount.get(), F_DUPFD_CLOEXEC, 0));
          if (!fd) return SysError("dup the source cloned from under what hides it");
        } else {
          RO_ASSIGN_OR_RETURN(fd, sys::CloneMountAt(source.path));
        }
        break;
      }
    }
    RO_TRY(sys::SetMountFlags(fd, m.flags));
    return fd;
  }

  // A detached clone of `mount` at `rel` below its root ("" for the root),
  // looked up without symlinks: a directory or a file (a file bound onto a
  // file); made as a directory when `make` (the source is ours, an empty
  // new filesystem).
  static Result<UniqueFd> CloneBelow(const UniqueFd& mount, const std::string& rel, bool make) {
    if (rel.empty()) return sys::CloneMount(mount, "");
    auto root = sys::OpenBeneath(mount, rel, false, true);
    if (!root.ok() && root.error().err == ENOENT && make) root = sys::OpenBeneath(mount, rel, true, false);
    if (!root.ok()) return std::move(root).error();
    return sys::CloneMount(*root, "");
  }

  Result<UniqueFd> CreateSuperblock(const MountPlan& m) {
    bool ro = (m.sb_flags & MS_RDONLY) != 0;
    switch (images::RestoreOf(m.fstype_code)) {
      case images::FsRestore::kAutofs:
        return MountAutofs(plan_, m, arena_);
      case images::FsRestore::kTmpfs:
        if (m.contents) {
          // A read-only tmpfs gets its files first and read-only afterwards.
          RO_ASSIGN_OR_RETURN(UniqueFd fd, sys::NewMount(m.fstype, m.source, sys::SplitOptions(m.options), false));
          RO_ASSIGN_OR_RETURN(TmpfsCap cap, TmpfsCapFor(m.options, options_.tmpfs_limit, sys::PhysicalMemoryBytes()));
          RO_TRY(UnpackTmpfs(fd, images_fd_, *m.contents, cap));
          if (ro) RO_TRY(sys::SetSuperblockReadOnly(fd));
          return fd;
        }
        return sys::NewMount(m.fstype, m.source, sys::SplitOptions(m.options), ro);
      case images::FsRestore::kKernel:
        return sys::NewMount(m.fstype, m.source, sys::SplitOptions(m.options), ro);
      case images::FsRestore::kExternal:
        break;
    }
    return Fail("filesystem " + m.fstype + " cannot be made anew");
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
    RO_ASSIGN_OR_RETURN(root_dir_, sys::OpenAt(AT_FDCWD, staging_, O_PATH | O_DIRECTORY));
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
        case SharingStep::Op::kSlaveOfExternal: {
          if (s.peer == 0) {
            log::Warn("mount {} was a slave of peer group {} outside the images; it is restored private (--enable-external-masters "
                      "makes it a slave of the group of the caller's mount it is bound from)", m.mountpoint, s.group);
            break;
          }
          auto source = options_.sources.find(s.peer);
          // None: its source is hidden here (ResolveExternalMasters warned); it stays private.
          if (source == options_.sources.end() || !source->second.master_mount) break;
          r = sys::JoinPeerGroup(source->second.master_mount, fds_[s.mnt], "the caller's mount of " + source->second.path + " -> mnt " + Num(s.mnt));
          if (r.ok()) r = sys::SetPropagation(fds_[s.mnt], MS_SLAVE);
          break;
        }
      }
      if (!r.ok()) return About(m, r.error());
    }
    return {};
  }

  Status Pivot() {
    RO_TRY(arena_.Fault(shm::FaultPoint::kPivot, "pivot_root(" + staging_ + ")"));
    return sys::PivotRootTo(root_dir_, staging_);
  }

  const images::RestorePlan& plan_;
  const MountOptions& options_;
  int images_fd_;
  shm::Arena& arena_;
  std::map<uint32_t, UniqueFd> fds_;
  std::string staging_;
  UniqueFd root_dir_;
};

// The caller's mount of the device of `m` whose root holds m's root: by its
// path when a path of the caller's reaches it (the one whose root is
// nearest m's), else that mount (uncovered ones first) cloned from under
// what hides it.
Result<ExternalSource> FindByDevice(const MountPlan& m, const std::vector<sys::MountInfo>& caller) {
  uint32_t major = m.root_dev >> 20, minor = m.root_dev & 0xfffff;
  std::set<uint32_t> covered;
  std::map<std::pair<uint32_t, std::string>, uint32_t> on_top;  // (parent, mountpoint) -> a mount there
  for (const sys::MountInfo& o : caller) on_top[{o.parent_id, o.mountpoint}] = o.mnt_id;
  for (const sys::MountInfo& c : caller) {
    auto above = on_top.find({c.mnt_id, c.mountpoint});
    if (above != on_top.end() && above->second != c.mnt_id) covered.insert(c.mnt_id);
  }
  std::vector<const sys::MountInfo*> holders;
  for (const sys::MountInfo& c : caller) {
    if (c.major != major || c.minor != minor) continue;
    if (c.root == "/" || m.root == c.root || m.root.rfind(c.root + "/", 0) == 0) holders.push_back(&c);
  }
  if (holders.empty()) {
    return Fail("external " + m.fstype + " mount " + m.mountpoint + " (--ext-mount-map auto): no mount of device " + Num(major) + ":" +
                Num(minor) + " here holds " + m.root + "; give " + images::ExternalFlag(m.ext_key));
  }
  std::stable_sort(holders.begin(), holders.end(), [&](const sys::MountInfo* a, const sys::MountInfo* b) {
    bool a_covered = covered.count(a->mnt_id) != 0, b_covered = covered.count(b->mnt_id) != 0;
    return a_covered != b_covered ? b_covered : a->root.size() > b->root.size();
  });
  auto below_of = [&](const sys::MountInfo& c) {
    std::string rest = c.root == "/" ? m.root : m.root.substr(c.root.size());
    return rest == "/" ? std::string() : rest;
  };
  auto path_of = [&](const sys::MountInfo& c) {
    std::string rest = below_of(c);
    return c.mountpoint == "/" ? (rest.empty() ? "/" : rest) : c.mountpoint + rest;
  };
  for (const sys::MountInfo* c : holders) {
    if (covered.count(c->mnt_id)) break;
    // Its path must reach the source through that mount: something the
    // caller mounted on the way would be bound instead.
    std::string path = path_of(*c);
    auto at = sys::OpenAt(AT_FDCWD, path, O_PATH | O_NOFOLLOW);
    if (!at.ok()) continue;
    RO_ASSIGN_OR_RETURN(uint64_t through, sys::MountIdOf(*at));
    if (through == c->mnt_id) return ExternalSource{.path = path};
  }
  const sys::MountInfo& c = *holders.front();
  ExternalSource hidden{.path = path_of(c), .below = below_of(c)};
  if (!hidden.below.empty()) hidden.below.erase(0, 1);
  auto clone = sys::CloneHiddenMount(::getpid(), sys::MountPathOf(caller, c.mnt_id), hidden.below);
  if (!clone.ok()) {
    return std::move(clone).error().Within("external " + m.fstype + " mount " + m.mountpoint + " (--ext-mount-map auto): mount " +
                                           Num(c.mnt_id) + " of device " + Num(major) + ":" + Num(minor) + " here, which others hide");
  }
  hidden.hidden_mount = std::move(clone).value();
  return hidden;
}

}  // namespace

Status CheckTmpfsOptions(const images::RestorePlan& plan, const MountOptions& options) {
  const std::string file = images::MakeFileName(images::MountpointsKind(), plan.ns.mnt_ns_id);
  for (const MountPlan& m : plan.mounts) {
    if (m.how != MountSource::kNew || images::RestoreOf(m.fstype_code) != images::FsRestore::kTmpfs) continue;
    std::string where = file + ": mount " + Num(m.mnt_id) + " at " + m.mountpoint;
    if (std::string opt = UnlimitedTmpfsOption(m.options); !opt.empty() && !options.allow_unlimited_tmpfs) {
      return Fail(where + ": tmpfs option " + opt + " makes it unlimited: give --allow-unlimited-tmpfs to restore it (its contents stay capped, --tmpfs-limit)");
    }
    if (auto cap = TmpfsCapFor(m.options, options.tmpfs_limit, 1); !cap.ok()) return std::move(cap).error().Within(where);
  }
  return {};
}

Result<std::map<uint32_t, ExternalSource>> ResolveExternalSources(const images::RestorePlan& plan, const MountOptions& options) {
  std::map<uint32_t, ExternalSource> out;
  std::vector<sys::MountInfo> caller;
  bool read_caller = false;
  for (const MountPlan& m : plan.mounts) {
    if (m.how != MountSource::kExternal) continue;
    ExternalSource source;
    switch (m.external) {
      case images::ExternalSource::kRootDir:
        source.path = options.root;
        break;
      case images::ExternalSource::kGiven: {
        auto given = options.externals.find(m.ext_key);
        if (given == options.externals.end()) return Fail("mount " + m.mountpoint + ": no --external " + m.ext_key + "=PATH");
        source.path = given->second;
        break;
      }
      case images::ExternalSource::kAuto:
        if (!read_caller) {
          RO_ASSIGN_OR_RETURN(caller, sys::ReadMountInfo());
          read_caller = true;
        }
        RO_ASSIGN_OR_RETURN(source, FindByDevice(m, caller));
        break;
    }
    struct stat st {};
    if (!source.hidden_mount && ::stat(source.path.c_str(), &st) != 0) {
      return SysError("mount " + m.mountpoint + " (" + m.fstype + ", key " + m.ext_key + "): its source " + source.path);
    }
    out.emplace(m.mnt_id, std::move(source));
  }
  return out;
}

Status ResolveExternalMasters(const images::RestorePlan& plan, MountOptions& options) {
  std::vector<sys::MountInfo> caller;
  for (const SharingStep& step : plan.sharing) {
    if (step.op != SharingStep::Op::kSlaveOfExternal || step.peer == 0) continue;
    const MountPlan& m = *plan.FindMount(step.mnt);
    auto found = options.sources.find(step.peer);
    if (found == options.sources.end()) return Fail("mount " + m.mountpoint + ": its external mount " + Num(step.peer) + " has no source");
    ExternalSource& source = found->second;
    if (source.master_mount) continue;
    std::string what = "mount " + m.mountpoint + " (a slave of peer group " + Num(step.group) +
                       " outside the images, --enable-external-masters): the caller's mount holding its source " + source.path;
    if (source.hidden_mount) {
      log::Warn("{} is hidden by other mounts here, so it cannot be joined: the mount (and its peers in the images) comes back private", what);
      continue;
    }
    if (caller.empty()) {
      RO_ASSIGN_OR_RETURN(caller, sys::ReadMountInfo());
    }
    RO_ASSIGN_OR_RETURN(UniqueFd at, sys::OpenAt(AT_FDCWD, source.path, O_PATH | O_CLOEXEC, 0, what));
    RO_ASSIGN_OR_RETURN(uint64_t id, sys::MountIdOf(at));
    auto holder = std::find_if(caller.begin(), caller.end(), [&](const sys::MountInfo& c) { return c.mnt_id == id; });
    if (holder == caller.end()) return Fail(what + ": mount " + Num(id) + " is not in this namespace's mountinfo");
    if (holder->shared == 0 && holder->master == 0) {
      return Fail(what + ", mount " + Num(id) + " at " + holder->mountpoint + ", is private: it is in no peer group to be a slave of");
    }
    // MOVE_MOUNT_SET_GROUP takes the root of a mount: the one at its mountpoint, if nothing covers it.
    RO_ASSIGN_OR_RETURN(UniqueFd root, sys::OpenAt(AT_FDCWD, holder->mountpoint, O_PATH | O_CLOEXEC, 0, what));
    RO_ASSIGN_OR_RETURN(uint64_t root_id, sys::MountIdOf(root));
    if (root_id != id) return Fail(what + ": mount " + Num(id) + " at " + holder->mountpoint + " is covered by mount " + Num(root_id));
    uint32_t group = holder->shared != 0 ? holder->shared : holder->master;
    if (group != step.group) {
      log::Warn("mount {} was a slave of peer group {}; it comes back a slave of group {}, that of the caller's mount at {}", m.mountpoint,
                step.group, group, holder->mountpoint);
    }
    source.master_mount = std::move(root);
  }
  return {};
}

std::string ExternalSource::Describe() const {
  if (!hidden_mount) return path;
  return path + ", cloned from under what hides it here";
}

Status BuildMountTree(const images::RestorePlan& plan, const MountOptions& options, int images_fd, shm::Arena& arena) {
  return Builder(plan, options, images_fd, arena).Run();
}

}  // namespace ro
