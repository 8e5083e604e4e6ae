// Which mounts of a tree's mount namespace a dump writes as external
// (bound from the caller's tree at restore), and which covered ones it
// leaves out; the dump and verify ask the same questions.
#pragma once

#include <cstdint>
#include <set>
#include <vector>

#include "sys/mountinfo.h"
#include "sys/status.h"

namespace ro {

// A superblock's device as the images number it (major << 20 | minor).
uint32_t DeviceOf(const sys::MountInfo& m);
// The devices of every superblock mounted in restore-orch's own mount
// namespace (/proc/self/mountinfo). Errors: its reading.
Result<std::set<uint32_t>> OwnDevices();
// A filesystem a restore cannot make, or one restore-orch's namespace also
// mounts (the tree inherited it; an AutoFS mount is the tree's own): bound
// from the caller's tree at restore.
bool IsExternal(const sys::MountInfo& m, const std::set<uint32_t>& own_devices);
// The external mounts of `mounts` (a tree's mountinfo) that another covers
// at their root, with nothing else mounted on them and none of `in_use`
// (the mounts the tree's fds are on): invisible to the tree, and no path of
// the caller's would reach them at restore, so a dump leaves them out.
std::set<uint32_t> CoveredExternalsLeftOut(const std::vector<sys::MountInfo>& mounts, const std::set<uint32_t>& own_devices,
                                           const std::set<uint32_t>& in_use);

}  // namespace ro
