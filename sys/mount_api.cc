#include "sys/mount_api.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <set>

#include "sys/fd_passing.h"
#include "sys/mountinfo.h"

namespace ro::sys {
namespace {

Result<UniqueFd> OpenAt2(int dir, const std::string& name, uint64_t flags) {
  open_how how{};
  how.flags = flags | O_CLOEXEC;
  how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_BENEATH;
  int fd = static_cast<int>(::syscall(SYS_openat2, dir, name.c_str(), &how, sizeof(how)));
  if (fd < 0) return SysError("openat2(" + name + ")");
  return UniqueFd(fd);
}

}  // namespace

std::vector<std::string> SplitOptions(const std::string& options) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= options.size()) {
    size_t j = options.find(',', i);
    if (j == std::string::npos) j = options.size();
    if (j > i) out.push_back(options.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

Status MakeTreePrivate() {
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return SysError("mount(/, MS_REC|MS_PRIVATE)");
  return {};
}

Status PivotRootTo(const UniqueFd& new_root, const std::string& what) {
  if (::fchdir(new_root.get()) != 0) return SysError("chdir " + what);
  if (::syscall(SYS_pivot_root, ".", ".") != 0) return SysError("pivot_root(" + what + ")");
  if (::umount2(".", MNT_DETACH) != 0) return SysError("umount2(old root, MNT_DETACH)");
  if (::chdir("/") != 0) return SysError("chdir /");
  return {};
}

Result<UniqueFd> NewMount(const std::string& fstype, const std::string& source, const std::vector<std::string>& options,
                          bool read_only) {
  UniqueFd fs(::fsopen(fstype.c_str(), FSOPEN_CLOEXEC));
  if (!fs) return SysError("fsopen(" + fstype + ")");
  if (!source.empty() && ::fsconfig(fs.get(), FSCONFIG_SET_STRING, "source", source.c_str(), 0) != 0) {
    return SysError("fsconfig(" + fstype + ", source=" + source + ")");
  }
  for (const std::string& opt : options) {
    if (opt == "rw" || opt == "ro") continue;
    size_t eq = opt.find('=');
    int r = eq == std::string::npos
                ? ::fsconfig(fs.get(), FSCONFIG_SET_FLAG, opt.c_str(), nullptr, 0)
                : ::fsconfig(fs.get(), FSCONFIG_SET_STRING, opt.substr(0, eq).c_str(), opt.substr(eq + 1).c_str(), 0);
    if (r != 0) return SysError("fsconfig(" + fstype + ", " + opt + ")");
  }
  if (read_only && ::fsconfig(fs.get(), FSCONFIG_SET_FLAG, "ro", nullptr, 0) != 0) {
    return SysError("fsconfig(" + fstype + ", ro)");
  }
  if (::fsconfig(fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) return SysError("fsconfig(" + fstype + ", create)");
  UniqueFd mnt(::fsmount(fs.get(), FSMOUNT_CLOEXEC, 0));
  if (!mnt) return SysError("fsmount(" + fstype + ")");
  return mnt;
}

Status SetSuperblockReadOnly(const UniqueFd& mount) {
  UniqueFd fs(::fspick(mount.get(), "", FSPICK_EMPTY_PATH | FSPICK_CLOEXEC));
  if (!fs) return SysError("fspick");
  if (::fsconfig(fs.get(), FSCONFIG_SET_FLAG, "ro", nullptr, 0) != 0 ||
      ::fsconfig(fs.get(), FSCONFIG_CMD_RECONFIGURE, nullptr, nullptr, 0) != 0) {
    return SysError("fsconfig(ro, reconfigure)");
  }
  return {};
}

Result<UniqueFd> CloneMount(const UniqueFd& dir, const std::string& path) {
  unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_NO_AUTOMOUNT | AT_SYMLINK_NOFOLLOW;
  if (path.empty()) flags |= AT_EMPTY_PATH;
  UniqueFd fd(::open_tree(dir.get(), path.c_str(), flags));
  if (!fd) return SysError("open_tree(" + (path.empty() ? std::string(".") : path) + ", OPEN_TREE_CLONE)");
  return fd;
}

Result<uint64_t> MountIdOf(const UniqueFd& fd) {
  struct statx stx {};
  if (::statx(fd.get(), "", AT_EMPTY_PATH, STATX_MNT_ID, &stx) != 0) return SysError("statx(STATX_MNT_ID)");
  if (!(stx.stx_mask & STATX_MNT_ID)) {
    errno = EOPNOTSUPP;
    return SysError("statx(STATX_MNT_ID)");
  }
  return stx.stx_mnt_id;
}

namespace {

// An fd that `make` opens in a child process that joined the mount
// namespace of `ns_of` (its root and cwd then the namespace's root), handed
// back over a socket. `make` returns the fd or -1 with errno set; `what`
// names it in errors.
Result<UniqueFd> FdFromMountNamespace(pid_t ns_of, int (*make)(const void*), const void* arg, const std::string& what) {
  std::string ns_path = "/proc/" + std::to_string(ns_of) + "/ns/mnt";
  UniqueFd ns(::open(ns_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns) return SysError("open " + ns_path);
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) return SysError("socketpair");
  UniqueFd mine(pair[0]), theirs(pair[1]);
  // fork(), not a raw clone: the child of a threaded process may allocate
  // (an error's text) only after glibc's fork handlers.
  pid_t child = ::fork();
  if (child < 0) return SysError("fork (to open " + what + " in its mount namespace)");
  if (child == 0) {
    // setns(CLONE_NEWNS) needs an fs_struct of its own: fork gave it one.
    // The child's exit status is its errno.
    if (::setns(ns.get(), CLONE_NEWNS) != 0) ::_exit(errno);
    int fd = make(arg);
    if (fd < 0) ::_exit(errno);
    ::_exit(SendFd(theirs, fd).ok() ? 0 : errno);
  }
  theirs.reset();
  Result<UniqueFd> got = ReceiveFd(mine);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) return SysError("waitpid (the opener of " + what + ")");
  }
  if (got.ok()) return got;
  if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
    errno = WEXITSTATUS(status);
    return SysError("setns(" + ns_path + ") and " + what);
  }
  return std::move(got).error();
}

}  // namespace

Result<UniqueFd> CloneMountAlone(pid_t ns_of, const UniqueFd& mount) {
  int fd = mount.get();
  return FdFromMountNamespace(
      ns_of,
      [](const void* arg) {
        return ::open_tree(*static_cast<const int*>(arg), "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_NO_AUTOMOUNT);
      },
      &fd, "open_tree(OPEN_TREE_CLONE)");
}

std::vector<std::string> MountPathOf(const std::vector<MountInfo>& mounts, uint32_t mnt_id) {
  std::map<uint32_t, const MountInfo*> by_id;
  for (const MountInfo& m : mounts) by_id[m.mnt_id] = &m;
  std::vector<std::string> path;
  auto it = by_id.find(mnt_id);
  while (it != by_id.end() && path.size() <= mounts.size()) {
    path.insert(path.begin(), it->second->mountpoint);
    if (it->second->parent_id == it->second->mnt_id) break;
    it = by_id.find(it->second->parent_id);
  }
  return path;
}

namespace {

bool IsPathPrefix(const std::string& prefix, const std::string& path) {
  if (prefix == "/") return true;
  return path == prefix || (path.size() > prefix.size() && path.compare(0, prefix.size(), prefix) == 0 && path[prefix.size()] == '/');
}

struct HiddenMount {
  const std::vector<std::string>* path;
  const std::string* below;
  int proc_fd;  // restore-orch's /proc: the namespace may have none
};

// In the child of FdFromMountNamespace: a private copy of the namespace in
// which every mount that hides the wanted one (stacked on it or on one of
// its ancestors, or mounted on a directory of the way to it) is detached,
// and the wanted one cloned alone.
int CloneHiddenInCopy(const void* arg) {
  const std::vector<std::string>& want = *static_cast<const HiddenMount*>(arg)->path;
  const std::string& below = *static_cast<const HiddenMount*>(arg)->below;
  int proc_fd = static_cast<const HiddenMount*>(arg)->proc_fd;
  // The copy's mounts are peers of the originals until made private:
  // only then does nothing done in the copy reach the tree.
  if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return -1;
  auto mounts = ReadMountInfoAt(proc_fd, "self/mountinfo");
  if (!mounts.ok()) return -1;
  // The wanted mount and its ancestors in the copy, found by the
  // mountpoints of the way down from the namespace's root mount.
  std::set<uint32_t> ids;
  for (const MountInfo& m : *mounts) ids.insert(m.mnt_id);
  std::vector<const MountInfo*> chain;
  for (const std::string& point : want) {
    const MountInfo* next = nullptr;
    for (const MountInfo& m : *mounts) {
      bool root = m.parent_id == m.mnt_id || ids.count(m.parent_id) == 0;
      bool step = chain.empty() ? root : m.parent_id == chain.back()->mnt_id && &m != chain.back();
      if (!step || m.mountpoint != point) continue;
      if (next != nullptr) {
        errno = ESTALE;  // two mounts on one place of one parent: which is meant cannot be told
        return -1;
      }
      next = &m;
    }
    if (next == nullptr) {
      errno = ESTALE;  // not the namespace the caller saw
      return -1;
    }
    chain.push_back(next);
  }
  if (chain.empty()) {
    errno = ESTALE;
    return -1;
  }
  // Each directory of the way, from the root down, shows the deepest
  // ancestor below it once what is on top there is detached.
  const std::string& target = chain.back()->mountpoint;
  std::vector<std::string> ways{"/"};
  for (size_t at = 1; at <= target.size(); ++at) {
    if (at == target.size() || target[at] == '/') ways.push_back(target.substr(0, at));
  }
  for (const std::string& way : ways) {
    const MountInfo* expected = chain.front();
    for (const MountInfo* a : chain) {
      if (IsPathPrefix(a->mountpoint, way)) expected = a;
    }
    for (size_t tries = 0;; ++tries) {
      UniqueFd dir(::open(way.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
      if (!dir) return -1;
      auto id = MountIdOf(dir);
      if (!id.ok()) return -1;
      if (*id == expected->mnt_id) break;
      if (tries > mounts->size()) {
        errno = ESTALE;
        return -1;
      }
      if (::umount2(way.c_str(), MNT_DETACH) != 0) return -1;
    }
  }
  UniqueFd at(::open(target.c_str(), O_PATH | O_CLOEXEC));
  if (!at) return -1;
  int clone = ::open_tree(at.get(), "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_NO_AUTOMOUNT);
  if (clone < 0 || below.empty()) return clone;
  // `below` is looked up in the clone, which is the mount alone: what is
  // mounted on the way there in the namespace is not in it. Within that
  // mount only, without symlinks; the clone was made here, so this
  // namespace may clone it again (the kernel's may_copy_tree).
  UniqueFd whole(clone);
  open_how how{};
  how.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV;
  at.reset(static_cast<int>(::syscall(SYS_openat2, whole.get(), below.c_str(), &how, sizeof(how))));
  if (!at) return -1;
  return ::open_tree(at.get(), "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_NO_AUTOMOUNT);
}

}  // namespace

Result<UniqueFd> CloneHiddenMount(pid_t ns_of, const std::vector<std::string>& path, const std::string& below) {
  std::string where = path.empty() ? "?" : path.back();
  if (!below.empty()) where += " (" + below + " below its root)";
  UniqueFd proc(::open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!proc) return SysError("open /proc");
  HiddenMount want{&path, &below, proc.get()};
  return FdFromMountNamespace(ns_of, CloneHiddenInCopy, &want,
                              "the mount at " + where + " cloned in a private copy of the namespace with the mounts hiding it detached");
}

Result<std::vector<MountInfo>> ReadNamespaceMountInfo(pid_t ns_of) {
  UniqueFd proc(::open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!proc) return SysError("open /proc");
  int proc_fd = proc.get();
  // Opened by the child: the file shows the mounts as its opener sees
  // them, from the namespace's root, and keeps doing so once it exits.
  RO_ASSIGN_OR_RETURN(UniqueFd file, FdFromMountNamespace(
                                         ns_of,
                                         [](const void* arg) {
                                           return ::openat(*static_cast<const int*>(arg), "self/mountinfo", O_RDONLY | O_CLOEXEC);
                                         },
                                         &proc_fd, "open(/proc/self/mountinfo)"));
  return ReadMountInfoAt(file.get(), "");
}

Result<UniqueFd> OpenNamespaceRoot(pid_t ns_of) {
  return FdFromMountNamespace(
      ns_of, [](const void*) { return ::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC); }, nullptr, "open(/)");
}

Result<FileIdentity> IdentityOf(const UniqueFd& fd) {
  struct statx stx {};
  if (::statx(fd.get(), "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_INO | STATX_MNT_ID, &stx) != 0) return SysError("statx");
  if (!(stx.stx_mask & STATX_MNT_ID)) {
    errno = EOPNOTSUPP;
    return SysError("statx(STATX_MNT_ID)");
  }
  return FileIdentity{makedev(stx.stx_dev_major, stx.stx_dev_minor), stx.stx_ino, stx.stx_mnt_id};
}

Result<FileIdentity> IdentityAt(const UniqueFd& root, const std::string& path) {
  open_how how{};
  how.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  std::string rel = path.empty() || path == "/" ? "." : path.substr(path[0] == '/' ? 1 : 0);
  UniqueFd at(static_cast<int>(::syscall(SYS_openat2, root.get(), rel.c_str(), &how, sizeof(how))));
  if (!at) return SysError("openat2(" + path + ")");
  return IdentityOf(at);
}

Result<UniqueFd> CloneMountAt(const std::string& absolute_path) {
  UniqueFd fd(::open_tree(AT_FDCWD, absolute_path.c_str(),
                          OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_NO_AUTOMOUNT | AT_SYMLINK_NOFOLLOW));
  if (!fd) return SysError("open_tree(" + absolute_path + ", OPEN_TREE_CLONE)");
  return fd;
}

Status SetMountFlags(const UniqueFd& mount, uint32_t ms) {
  mount_attr attr{};
  if (ms & MS_RDONLY) attr.attr_set |= MOUNT_ATTR_RDONLY;
  if (ms & MS_NOSUID) attr.attr_set |= MOUNT_ATTR_NOSUID;
  if (ms & MS_NODEV) attr.attr_set |= MOUNT_ATTR_NODEV;
  if (ms & MS_NOEXEC) attr.attr_set |= MOUNT_ATTR_NOEXEC;
  if (ms & MS_NODIRATIME) attr.attr_set |= MOUNT_ATTR_NODIRATIME;
  attr.attr_clr |= MOUNT_ATTR__ATIME;
  if (ms & MS_NOATIME) {
    attr.attr_set |= MOUNT_ATTR_NOATIME;
  } else if (ms & MS_STRICTATIME) {
    attr.attr_set |= MOUNT_ATTR_STRICTATIME;
  } else {
    attr.attr_set |= MOUNT_ATTR_RELATIME;
  }
  if (::mount_setattr(mount.get(), "", AT_EMPTY_PATH, &attr, sizeof(attr)) != 0) {
    return SysError("mount_setattr(flags " + std::to_string(ms) + ")");
  }
  return {};
}

Status SetPropagation(const UniqueFd& mount, uint64_t propagation) {
  mount_attr attr{};
  attr.propagation = propagation;
  if (::mount_setattr(mount.get(), "", AT_EMPTY_PATH, &attr, sizeof(attr)) != 0) {
    return SysError("mount_setattr(propagation " + std::to_string(propagation) + ")");
  }
  return {};
}

Status MoveMount(const UniqueFd& mount, const UniqueFd& target, const std::string& what) {
  if (::move_mount(mount.get(), "", target.get(), "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0) {
    return SysError("move_mount(-> " + what + ")");
  }
  return {};
}

Status MoveMountTo(const UniqueFd& mount, const std::string& absolute_path) {
  if (::move_mount(mount.get(), "", AT_FDCWD, absolute_path.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    return SysError("move_mount(-> " + absolute_path + ")");
  }
  return {};
}

Status JoinPeerGroup(const UniqueFd& from, const UniqueFd& to, const std::string& what) {
  if (::move_mount(from.get(), "", to.get(), "", MOVE_MOUNT_SET_GROUP | MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0) {
    return SysError("move_mount(" + what + ", MOVE_MOUNT_SET_GROUP)");
  }
  return {};
}

Result<UniqueFd> OpenBeneath(const UniqueFd& root, const std::string& path, bool create, bool leaf_is_file) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    if (j > i) parts.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  UniqueFd dir(::fcntl(root.get(), F_DUPFD_CLOEXEC, 0));
  if (!dir) return SysError("dup");
  for (size_t k = 0; k < parts.size(); ++k) {
    const std::string& part = parts[k];
    if (part == "." || part == "..") return Fail("path " + path + " has a '" + part + "' component");
    bool leaf = k + 1 == parts.size();
    auto next = OpenAt2(dir.get(), part, O_PATH | (leaf && leaf_is_file ? 0 : O_DIRECTORY));
    if (!next.ok() && next.error().err == ENOENT && create) {
      int r = leaf && leaf_is_file ? ::mknodat(dir.get(), part.c_str(), S_IFREG | 0600, 0)
                                   : ::mkdirat(dir.get(), part.c_str(), 0755);
      if (r != 0 && errno != EEXIST) return SysError("create " + path + " (at " + part + ")");
      next = OpenAt2(dir.get(), part, O_PATH | (leaf && leaf_is_file ? 0 : O_DIRECTORY));
    }
    if (!next.ok()) return std::move(next).error().Within(path);
    dir = std::move(next).value();
  }
  return dir;
}

}  // namespace ro::sys
