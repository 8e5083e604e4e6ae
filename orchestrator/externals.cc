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

std::set<uint32_t> CoveredExternalsLeftOut(const std::vector<sys::MountInfo>& mounts, const std::set<uint32_t>& own_devices,
                                           const std::set<uint32_t>& in_use) {
  std::map<uint32_t, const sys::MountInfo*> by_id;
  std::map<uint32_t, int> children;
  for (const sys::MountInfo& m : mounts) {
    by_id[m.mnt_id] = &m;
    ++children[m.parent_id];
  }
  std::set<uint32_t> left_out;
  for (const sys::MountInfo& m : mounts) {
    auto p = by_id.find(m.parent_id);
    if (p == by_id.end() || p->second == &m || p->second->mountpoint != m.mountpoint || children[m.parent_id] != 1) continue;
    if (!IsExternal(*p->second, own_devices) || in_use.count(m.parent_id)) continue;
    left_out.insert(m.parent_id);
  }
  return left_out;
}

}  // namespace ro
