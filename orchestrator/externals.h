// Which mounts of a tree's mount namespace a dump writes as external
// (bound from the caller's tree at restore), and the key each is named by.
#pragma once

#include <cstdint>
#include <map>
#include <string>
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
// The key each mount of `mounts` (a tree's mountinfo) is named by when it
// is external (`--external KEY=PATH`, the images' ext_key): its mountpoint,
// and for a mount another covers at its root (stacked on the same
// mountpoint) its mountpoint and its place in the stack, counted from 1 at
// the lowest ("/proc#1"), so that every mount of a stack has a key of its
// own; "#place" is repeated while another mount already has the key (a
// directory named "t#1"). Shape: mnt id -> key, one per mount; two mounts
// at one place of one stack (the same mountpoint twice) share it.
std::map<uint32_t, std::string> ExternalKeys(const std::vector<sys::MountInfo>& mounts);

}  // namespace ro
