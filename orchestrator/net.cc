#include "orchestrator/net.h"

#include <linux/netlink.h>

#include "sys/log.h"
#include "sys/namespaces.h"
#include "sys/netlink.h"

namespace ro {

Status RestoreNetNamespace(const images::NetPlan& net, int proc_fd) {
  std::vector<std::pair<std::string, std::string>> changed;
  for (const auto& [path, text] : net.sysctls) {
    auto now = sys::ReadSysctl(proc_fd, path);
    if (now.ok() && *now == text) continue;
    if (!now.ok() && now.error().err == ENOENT) return std::move(now).error().Within("this kernel has no sysctl " + path);
    changed.emplace_back(path, text);
  }
  RO_TRY(sys::WriteSysctls(proc_fd, changed));
  log::Debug("network namespace: {} of {} sysctls written", changed.size(), net.sysctls.size());

  RO_ASSIGN_OR_RETURN(sys::NetlinkSocket rt, sys::NetlinkSocket::Open(NETLINK_ROUTE));
  constexpr int kLoopback = 1;  // a new namespace's first link
  RO_TRY(rt.SetLink(kLoopback, net.lo_flags, sys::kSettableLinkFlags, net.lo_mtu));
  // Bringing lo up gave it 127.0.0.1/8 and ::1/128: keep what the images
  // have, drop what they lack.
  RO_ASSIGN_OR_RETURN(std::vector<sys::NetAddress> now, rt.Addresses());
  for (const sys::NetAddress& a : now) {
    if (a.ifindex != kLoopback) continue;
    bool wanted = false;
    for (const sys::NetAddress& w : net.addresses) {
      wanted = wanted || (w.family == a.family && w.Key() == a.Key() && w.prefixlen == a.prefixlen);
    }
    if (!wanted) RO_TRY(rt.DeleteAddress(a));
  }
  for (const sys::NetAddress& a : net.addresses) RO_TRY(rt.AddAddress(a));
  return {};
}

}  // namespace ro
