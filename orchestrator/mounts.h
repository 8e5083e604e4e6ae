// The mount tree of the restored namespace, built by the root task inside
// its new (private) mount namespace before it forks anyone.
#pragma once

#include <map>
#include <string>

#include "images/plan.h"
#include "shm/arena.h"
#include "sys/unique_fd.h"
#include "sys/status.h"

namespace ro {

// Where an external mount is bound from in the caller's tree.
struct ExternalSource {
  std::string path;  // its path in the caller's tree (for a hidden one, what that path shows is another mount)
  // A source no path of the caller's reaches (its mount is covered by
  // another at its root, or something is mounted on the way to it): the
  // caller's mount cloned alone from a private copy of the caller's
  // namespace where what hides it is detached (sys::CloneHiddenMount), and
  // the source's path below that mount's root ("" for the root itself),
  // where the clone was taken. Its own mount: attached once, by the restore.
  UniqueFd hidden_mount;
  std::string below;
  // With --enable-external-masters, for a source whose mount slaves of a
  // group outside the images join: an O_PATH fd on the root of the caller's
  // mount holding the source, in the caller's namespace (shared or a slave:
  // the source of MOVE_MOUNT_SET_GROUP); closed otherwise (ResolveExternalMasters).
  UniqueFd master_mount;
  // For logs and --dry-run: the path, and how a hidden one is reached.
  std::string Describe() const;
};

struct MountOptions {
  std::string root;                              // --root: source of the tree's root mount
  std::map<std::string, std::string> externals;  // --external KEY=PATH
  std::map<uint32_t, ExternalSource> sources;    // every external mount's source, by mnt_id (ResolveExternalSources)
  uint64_t tmpfs_limit = 0;                      // --tmpfs-limit: the cap on each tmpfs's unpacked contents (0: its size=)
  bool allow_unlimited_tmpfs = false;            // --allow-unlimited-tmpfs: restore size=0 / nr_inodes=0 tmpfs mounts
};

// Refuses, before anything is created, a tmpfs the images would make
// unlimited (size=0, nr_blocks=0, nr_inodes=0) unless the caller allows it,
// and a size= that is no size. Error: one line naming the mountpoints
// image, the mount and the option, and the flag.
Status CheckTmpfsOptions(const images::RestorePlan& plan, const MountOptions& options);

// The source, in the caller's tree, of every external mount of the plan:
// --root DIR, the PATH of --external KEY=PATH, or with --ext-mount-map auto
// the caller's mount of the same device whose root holds the mount's root:
// by its path when that path reaches it, else cloned from under the mounts
// that hide it (so a stack of the caller's, as on /proc or /dev/pts, gives
// each of its mounts). Each must exist. Run before anything is created (and
// by --dry-run): a hidden source is cloned here, in a child that leaves
// nothing behind. Errors name the mount, its key and the flag to give.
Result<std::map<uint32_t, ExternalSource>> ResolveExternalSources(const images::RestorePlan& plan, const MountOptions& options);

// With --enable-external-masters (kSlaveOfExternal steps with a `peer`):
// opens, for each external mount such a step names, the root of the
// caller's mount holding its source (ExternalSource::master_mount). Run
// after ResolveExternalSources, before anything is created (and by
// --dry-run). Errors, naming the mount and the caller's: a caller's mount
// that is private (in no group to be a slave of) or that its path does not
// reach. Warnings: a source hidden by other mounts (no fd on it can be had
// here: that mount is restored private), a caller's mount in another group
// than the images' master (the mount comes back a slave of the caller's).
Status ResolveExternalMasters(const images::RestorePlan& plan, MountOptions& options);

// Makes the root task's mount namespace private (nothing propagates to the
// caller's), then builds the plan's mounts and pivots into them:
//  1. every mount is made detached and private: new superblocks with fsopen
//     (tmpfs contents streamed from the image directory `images_fd`;
//     AutoFS as orchestrator/autofs.h says), binds cloned from their source,
//     externals cloned from their resolved sources in the caller's tree;
//     each new mount's device is published in the arena;
//  2. the root mount is attached at a staging directory and the others are
//     moved into place parents first, mountpoints resolved beneath the new
//     root without following symlinks (made only in our own filesystems);
//  3. peer groups are joined (MOVE_MOUNT_SET_GROUP), slaves made, then
//     unbindable mounts marked: nothing propagated while mounts were placed;
//  4. pivot_root into the new tree and detach the old one.
Status BuildMountTree(const images::RestorePlan& plan, const MountOptions& options, int images_fd, shm::Arena& arena);

}  // namespace ro
