// The new mount API, thinly wrapped: detached mounts as fds, placed and
// joined to peer groups by fd, paths resolved beneath a root without
// following symlinks.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "sys/mountinfo.h"
#include "sys/status.h"
#include "sys/unique_fd.h"

namespace ro::sys {

// A new superblock of `fstype` (fsopen/fsconfig/fsmount). `options` are
// the superblock options as mountinfo prints them ("size=64k", "mode=755",
// "inode64"); "rw" and "ro" are taken from `read_only`.
Result<UniqueFd> NewMount(const std::string& fstype, const std::string& source, const std::vector<std::string>& options,
                          bool read_only);

// Makes the superblock behind `mount` read-only (fspick + reconfigure).
Status SetSuperblockReadOnly(const UniqueFd& mount);

// A detached copy of the mount at `path` below `dir` (open_tree with
// OPEN_TREE_CLONE, not recursive, never triggering an automount). An empty
// `path` clones `dir` itself.
Result<UniqueFd> CloneMount(const UniqueFd& dir, const std::string& path);
Result<UniqueFd> CloneMountAt(const std::string& absolute_path);
// The id of the mount `fd` is on (statx STATX_MNT_ID, as mountinfo numbers
// mounts). Errors: statx's, or a kernel without STATX_MNT_ID (EOPNOTSUPP).
Result<uint64_t> MountIdOf(const UniqueFd& fd);
// A detached copy of the mount `mount` (an fd on its root, opened through
// /proc/PID/root) alone, without the mounts below it: the files they cover
// can be read through it. open_tree clones only mounts of the caller's own
// namespace, so a child process joins the mount namespace of `ns_of` (where
// `mount` lives), clones it and hands the fd back. Errors: "setns" or
// "open_tree" with the child's errno, or the fork, socket and wait.
Result<UniqueFd> CloneMountAlone(pid_t ns_of, const UniqueFd& mount);
// The mountpoints of the mounts of a mountinfo table from the namespace's
// root mount down to `mnt_id`, root first: how CloneHiddenMount finds that
// mount in a copy of its namespace, where mount ids are new. Empty when
// `mnt_id` is not in `mounts`.
std::vector<std::string> MountPathOf(const std::vector<MountInfo>& mounts, uint32_t mnt_id);
// A detached copy, alone, of the mount of the mount namespace of `ns_of`
// that `path` (MountPathOf) leads to, though other mounts hide it (stacked
// on it or on one of its ancestors, or mounted on a directory of the way to
// it), or of its file or directory `below` its root (relative, looked up
// within that mount without symlinks; "" for the root): a child joins the
// namespace, makes a private copy of it (unshare, everything made private
// there, so nothing reaches the original), detaches in the copy what hides
// the mount and clones it. The copy is only ever the copy's: no other
// namespace may clone it again (the kernel's may_copy_tree), but it can be
// attached anywhere (move_mount). Errors: as CloneMountAlone's; ESTALE when
// the namespace is not as `path` says; EINVAL for an unbindable mount.
Result<UniqueFd> CloneHiddenMount(pid_t ns_of, const std::vector<std::string>& path, const std::string& below = "");
// The mountinfo of the mount namespace of `ns_of` as seen from its root
// (read through a child that joins it): every mount of the namespace,
// whatever root (chroot) its tasks have, since /proc/PID/mountinfo shows
// only what lies under PID's root. Errors: as OpenNamespaceRoot's, the read.
Result<std::vector<MountInfo>> ReadNamespaceMountInfo(pid_t ns_of);
// The root of the mount namespace of `ns_of` (O_PATH), opened by a child
// that joins it: the namespace's root whatever root (chroot) its tasks
// have. Errors: as CloneMountAlone's, "open(/)".
Result<UniqueFd> OpenNamespaceRoot(pid_t ns_of);

// What a file is, by the kernel's numbers: the device and inode of its
// superblock, and the mount it is reached through (mountinfo's id).
struct FileIdentity {
  dev_t dev = 0;
  uint64_t ino = 0;
  uint64_t mnt_id = 0;
  bool operator==(const FileIdentity&) const = default;
};
// Of the file `fd` is on (statx STATX_INO|STATX_MNT_ID; a symlink itself).
Result<FileIdentity> IdentityOf(const UniqueFd& fd);
// Of what the absolute `path` leads to, resolved as a task whose root is
// `root` would resolve it (symlinks inside the root, the last component not
// followed), as a restore reopens fds by their paths. Errors: openat2's
// (ENOENT: nothing there now), statx's.
Result<FileIdentity> IdentityAt(const UniqueFd& root, const std::string& path);

// Per-mount flags from MS_* bits (MS_RDONLY, MS_NOSUID, MS_NODEV,
// MS_NOEXEC, MS_NOATIME, MS_NODIRATIME, MS_RELATIME, MS_STRICTATIME).
Status SetMountFlags(const UniqueFd& mount, uint32_t ms_flags);
// MS_SHARED, MS_SLAVE, MS_PRIVATE or MS_UNBINDABLE.
Status SetPropagation(const UniqueFd& mount, uint64_t propagation);
// Attaches `mount` on the directory (or file) `target`.
Status MoveMount(const UniqueFd& mount, const UniqueFd& target, const std::string& what);
Status MoveMountTo(const UniqueFd& mount, const std::string& absolute_path);
// Puts `to` into the peer group of `from` (MOVE_MOUNT_SET_GROUP).
Status JoinPeerGroup(const UniqueFd& from, const UniqueFd& to, const std::string& what);

// Opens `path` (relative, "a/b") beneath `root` as O_PATH, refusing
// symlinks, "..", and escapes. Every component but the last must be a
// directory; the last too unless `leaf_is_file`, which takes it of any
// type. With `create`, missing components are made: directories, and the
// last one a regular file when `leaf_is_file`.
Result<UniqueFd> OpenBeneath(const UniqueFd& root, const std::string& path, bool create, bool leaf_is_file);

// mount(NULL, "/", NULL, MS_REC|MS_PRIVATE): nothing done in the caller's
// mount namespace from now on propagates out of it.
Status MakeTreePrivate();

// Makes `new_root` (a directory fd) the root of the caller's mount
// namespace: pivot_root(".", ".") from inside it stacks the old root on the
// new one, which is then detached; the cwd ends at the new "/". `what`
// names the new root in errors.
Status PivotRootTo(const UniqueFd& new_root, const std::string& what);

// Splits "a,b=c,d" at commas.
std::vector<std::string> SplitOptions(const std::string& options);

}  // namespace ro::sys
