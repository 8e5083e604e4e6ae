#include "orchestrator/autofs.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <optional>
#include <utility>

#include "sys/autofs_dev.h"
#include "sys/clone.h"
#include "sys/files.h"
#include "sys/mount_api.h"
#include "sys/process.h"

namespace ro {
namespace {

using images::MountPlan;
using images::MountSource;

std::string Num(uint64_t v) { return std::to_string(v); }

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
    RO_ASSIGN_OR_RETURN(sys::PipeEnds go, sys::Pipe(0));
    AutofsDirMaker maker;
    maker.go_r_ = std::move(go.read);
    maker.go_w_ = std::move(go.write);
    pid_t self = ::getpid();
    RO_ASSIGN_OR_RETURN(sys::Cloned c, sys::Clone3(sys::CloneSpec{.flags = CLONE_FILES, .want_pidfd = false}));
    if (c.pid == 0) Child(self, maker.go_r_.get(), dirs);
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

  [[noreturn]] static void Child(pid_t parent, int go, const std::vector<std::string>& dirs) {
    if (!sys::DieWithParent(parent)) ::_exit(ESRCH);
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

// Paths, relative to the root of AutoFS superblock `m`, of the mountpoints
// of mounts placed on it or on a bind of it.
std::vector<std::string> DirsBelowAutofs(const images::RestorePlan& plan, const MountPlan& m) {
  std::vector<std::string> dirs;
  for (const MountPlan& child : plan.mounts) {
    const MountPlan* parent = plan.FindMount(child.parent_id);
    if (parent == nullptr || child.mnt_id == parent->mnt_id) continue;
    const MountPlan* sb = parent;
    while (sb->how == MountSource::kBind) sb = plan.FindMount(sb->bind_of);
    if (sb != &m) continue;
    std::string in_parent = images::PathBelow(child.mountpoint, parent->mountpoint);
    std::string root = parent->root == "/" ? "" : parent->root.substr(1);
    std::string path = root.empty() ? in_parent : in_parent.empty() ? root : root + "/" + in_parent;
    if (!path.empty()) dirs.push_back(path);
  }
  return dirs;
}

}  // namespace

Result<UniqueFd> MountAutofs(const images::RestorePlan& plan, const MountPlan& m, shm::Arena& arena) {
  const images::AutofsPlan* a = nullptr;
  for (const auto& candidate : plan.autofs) {
    if (candidate.mnt_id == m.mnt_id) a = &candidate;
  }
  if (a == nullptr) return Fail("AutoFS mount without its autofs image");
  RO_TRY(arena.Fault(shm::FaultPoint::kAutofsMount, "mount autofs with a dummy pipe"));
  auto dummy = sys::Pipe(0);
  if (!dummy.ok()) return std::move(dummy).error().Within("dummy AutoFS pipe");
  // pgrp must name a process group of this PID namespace; ours (pid 1's)
  // is still outside it, so the root task's own pid stands in.
  std::vector<std::string> opts = {"fd=" + Num(static_cast<uint64_t>(dummy->write.get())),
                                   "pgrp=" + Num(static_cast<uint64_t>(::getpid())),
                                   "minproto=" + Num(static_cast<uint64_t>(a->minproto)),
                                   "maxproto=" + Num(static_cast<uint64_t>(a->maxproto)), AutofsMode(a->mode)};
  if (a->uid) opts.push_back("uid=" + Num(static_cast<uint64_t>(*a->uid)));
  if (a->gid) opts.push_back("gid=" + Num(static_cast<uint64_t>(*a->gid)));
  // Mounts below it need their directories in it, which only its owner's
  // process group may make, and only before it is catatonic: a helper in
  // a group of its own owns it until they are made.
  std::vector<std::string> dirs = DirsBelowAutofs(plan, m);
  std::optional<AutofsDirMaker> maker;
  if (!dirs.empty()) {
    auto started = AutofsDirMaker::Start(dirs);
    if (!started.ok()) return std::move(started).error();
    maker.emplace(std::move(started).value());
    opts[1] = "pgrp=" + Num(static_cast<uint64_t>(maker->pid()));
  }
  RO_ASSIGN_OR_RETURN(UniqueFd mnt, sys::NewMount("autofs", m.source, opts, (m.sb_flags & MS_RDONLY) != 0));
  if (maker) RO_TRY(maker->Make(mnt));
  RO_ASSIGN_OR_RETURN(UniqueFd root, sys::OpenAt(mnt.get(), ".", O_RDONLY | O_DIRECTORY, 0, "the AutoFS root"));
  RO_TRY(arena.Fault(shm::FaultPoint::kAutofsCatatonic, "ioctl(AUTOFS_IOC_CATATONIC)"));
  RO_TRY(sys::AutofsSetTimeout(root, static_cast<unsigned long>(a->timeout)));
  RO_TRY(sys::AutofsMakeCatatonic(root));
  return mnt;
}

}  // namespace ro
