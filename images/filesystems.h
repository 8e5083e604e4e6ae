// The filesystem vocabulary: mnt.proto's fstype codes, their names as
// mountinfo prints them, and how a restore brings each back. The planner,
// the dump, `image show` and `verify` all read it from here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ro::images {

// How a restore makes a mount of a filesystem type. Every role dispatches
// on this with one switch (no default), so a new kind is a compiler
// warning everywhere it matters.
enum class FsRestore {
  kAutofs,    // a new AutoFS superblock with a dummy pipe, taken over by its master
  kTmpfs,     // a new tmpfs, filled from its tmpfs-dev-<dev>.tar.gz.img
  kKernel,    // a new superblock of a kernel filesystem with nothing to fill (proc, sysfs, devpts...)
  kExternal,  // not made: bound from the caller's tree (--root, --external)
};

// mountinfo's name for an fstype code ("tmpfs" for 5), "unknown" for codes
// CRIU does not define.
const char* FstypeName(uint32_t code);
// The fstype code for a mountinfo name; 0 (UNSUPPORTED) when it has none.
uint32_t FstypeCode(std::string_view name);
// kExternal for filesystems a restore cannot make anew (ext4, overlay,
// fuse, codes 0 and AUTO...).
FsRestore RestoreOf(uint32_t code);
// Filesystems a restore makes anew (fsopen); the others are bound.
bool CreatableFstype(uint32_t code);

// "/a/./b//c" -> "/a/b/c"; nullopt when not absolute, when ".." appears or
// when it holds a NUL byte.
std::optional<std::string> NormalizeAbsolutePath(std::string_view path);

// The directory a mount's root names when the kernel marks it removed
// ("/x//deleted" in mountinfo, d_path's suffix for an unlinked dentry):
// "/x"; nullopt for any other root.
std::optional<std::string> RemovedRoot(std::string_view root);

// True when `path` is `dir` or below it (both normalised).
bool IsBelow(std::string_view path, std::string_view dir);
// `path` relative to `base` ("/a/b" in "/a" -> "b", "/a" in "/a" -> "");
// both normalised, `path` below `base`.
std::string PathBelow(const std::string& path, const std::string& base);

}  // namespace ro::images
