#include "orchestrator/externals.h"

#include <map>

#include "images/filesystems.h"
#include "images/proto/mnt.pb.h"

namespace ro {

uint32_t DeviceOf(const sys::MountInfo& m) { return m.major << 20 | m.minor; }

Result<std::set<uint32_t>> OwnDevices() {
  RO_ASSIGN_OR_RETURN(std::vector<sys::MountInfo> own, sys::ReadMountInfo("/proc/self/mountinfo"));
  std::set<uint32_t> devices;
  for (const sys::MountInfo& m : own) devices.insert(DeviceOf(m));
  return devices;
}

bool IsExternal(const sys::MountInfo& m, const std::set<uint32_t>& own_devices) {
  uint32_t code = images::FstypeCode(m.fstype);
  return !images::CreatableFstype(code) || (code != img::AUTOFS && own_devices.count(DeviceOf(m)) != 0);
}

std::map<uint32_t, std::string> ExternalKeys(const std::vector<sys::MountInfo>& mounts) {
  std::map<uint32_t, const sys::MountInfo*> by_id;
  std::set<uint32_t> covered;
  for (const sys::MountInfo& m : mounts) by_id[m.mnt_id] = &m;
  for (const sys::MountInfo& m : mounts) {
    auto p = by_id.find(m.parent_id);
    if (p != by_id.end() && p->second != &m && p->second->mountpoint == m.mountpoint) covered.insert(m.parent_id);
  }
  std::map<uint32_t, std::string> keys;
  std::set<std::string> taken;  // a mountpoint may itself read "/t#1": every key stays one mount's
  for (const sys::MountInfo& m : mounts) {
    if (!covered.count(m.mnt_id)) {
      keys[m.mnt_id] = m.mountpoint;
      taken.insert(m.mountpoint);
    }
  }
  for (const sys::MountInfo& m : mounts) {
    if (!covered.count(m.mnt_id)) continue;
    // Its place: how many of the stack lie below it, itself included.
    size_t place = 1;
    for (auto p = by_id.find(m.parent_id); p != by_id.end() && p->second != &m && p->second->mountpoint == m.mountpoint && place <= mounts.size();
         p = by_id.find(p->second->parent_id)) {
      ++place;
      if (p->second->parent_id == p->second->mnt_id) break;
    }
    std::string key = m.mountpoint + "#" + std::to_string(place);
    while (taken.count(key)) key += "#" + std::to_string(place);
    taken.insert(key);
    keys[m.mnt_id] = key;
  }
  return keys;
}

}  // namespace ro
