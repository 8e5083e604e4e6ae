#include "orchestrator/net.h"

#include <fcntl.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "sys/files.h"
#include "sys/log.h"
#include "sys/unique_fd.h"
#include "sys/namespaces.h"
#include "sys/net_namespace.h"
#include "sys/netlink.h"

namespace ro {

Status RestoreNetNamespace(const images::NetPlan& net, int proc_fd) {
  RO_ASSIGN_OR_RETURN(sys::NetlinkSocket rt, sys::NetlinkSocket::Open(NETLINK_ROUTE));
  constexpr int kLoopback = 1;  // a new namespace's first link
  // Up with its MTU first, as lo was before anyone could change it: going
  // up resets the link's IPv6 mtu sysctl and gives it its first addresses
  // and queueing discipline; the flags the images have come last.
  RO_TRY(rt.SetLink(kLoopback, 0x1 /*IFF_UP*/, 0x1, net.lo_mtu));
  // In order, each read just before it is written: writing one (all's
  // forwarding) changes others (all's accept_redirects, default's and each
  // link's forwarding), which then get their own value back.
  size_t written = 0;
  for (const auto& [path, text] : net.sysctls) {
    auto now = sys::ReadSysctl(proc_fd, path);
    if (now.ok() && *now == text) continue;
    if (!now.ok() && now.error().err == ENOENT) return std::move(now).error().Within("this kernel has no sysctl " + path);
    RO_TRY(sys::WriteSysctls(proc_fd, {{path, text}}));
    ++written;
  }
  log::Debug("network namespace: {} of {} sysctls written", written, net.sysctls.size());

  // Bringing lo up gave it 127.0.0.1/8 and ::1/128. IPv4 addresses are all
  // made again in the images' order, so that the first of each subnet is
  // its primary again (and each link lists them as the images do); an IPv6 address the kernel made as the images have
  // it is kept (adding it again would add a route), others are removed.
  RO_ASSIGN_OR_RETURN(std::vector<sys::NetAddress> now, rt.Addresses());
  std::vector<sys::NetAddress> kept;
  for (const sys::NetAddress& a : now) {
    if (a.ifindex != kLoopback) continue;
    bool wanted = false;
    for (const sys::NetAddress& w : net.addresses) wanted = wanted || sys::SameAddress(w, a);
    if (a.family == AF_INET6 && wanted) {
      kept.push_back(a);
      continue;
    }
    // A secondary may have gone with its primary.
    if (Status s = rt.DeleteAddress(a); !s.ok() && s.error().err != EADDRNOTAVAIL) return s;
  }
  auto add = [&](const sys::NetAddress& a) -> Status {
    bool there = false;
    for (const sys::NetAddress& k : kept) there = there || sys::SameAddress(k, a);
    return there ? Status{} : rt.AddAddress(a);
  };
  for (const sys::NetAddress& a : net.addresses) {
    if (a.family != AF_INET6) RO_TRY(add(a));
  }
  // The kernel puts a new IPv6 address first among those of its scope
  // (ipv6_link_dev_addr, net/ipv6/addrconf.c), and that order picks the
  // source address: they are added last first.
  for (auto a = net.addresses.rbegin(); a != net.addresses.rend(); ++a) {
    if (a->family == AF_INET6) RO_TRY(add(*a));
  }
  return rt.SetLink(kLoopback, net.lo_flags, sys::kSettableLinkFlags, std::nullopt);
}

Status TrialNetNamespace(const images::NetPlan& net, sys::NetNamespaceState* state,
                         const std::function<bool(const sys::NetNamespaceState&)>& settled) {
  return sys::InNetNamespace(0, [&]() -> Status {
    RO_ASSIGN_OR_RETURN(UniqueFd proc, sys::OpenAt(AT_FDCWD, "/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    RO_TRY(RestoreNetNamespace(net, proc.get()));
    if (state == nullptr) return {};
    RO_TRY(sys::ReadNetNamespaceState(*state));
    for (int i = 0; settled && i < 25 && !settled(*state); ++i) {
      ::usleep(20000);
      *state = sys::NetNamespaceState{};
      RO_TRY(sys::ReadNetNamespaceState(*state));
    }
    return {};
  });
}

}  // namespace ro
