// The network namespace of the tree's own, as CRIU lays it out
// (criu/net.c): netns-<ns>.img with the device sysctls of all and default,
// netdev-<ns>.img with the loopback link and its sysctls, ifaddr-<ns>.img
// as `ip addr save` writes it. What restore-orch would not bring back (other
// links, routes the kernel did not make, rules, firewall tables, other
// sysctls changed from what a new namespace has) is refused.
#include <fcntl.h>
#include <linux/if_arp.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <algorithm>
#include <cstring>
#include <sstream>

#include "images/kinds.h"
#include "images/net_sysctls.h"
#include "images/proto/netdev.pb.h"
#include "orchestrator/dump/collector.h"
#include "orchestrator/dump/freeze.h"
#include "orchestrator/net.h"
#include "sys/files.h"
#include "sys/net_namespace.h"
#include "sys/netlink.h"
#include "sys/proc.h"
#include "sys/unique_fd.h"

namespace ro {
namespace dump {
Status Collector::DumpNetNamespace(pid_t root) {
  const std::string who = root_who_ + ": its network namespace ";
  sys::NetNamespaceState tree;
  RO_TRY(sys::InNetNamespace(root, [&] { return sys::ReadNetNamespaceState(tree); }));
  const sys::NetLink* lo = nullptr;
  for (const sys::NetLink& l : tree.links) {
    if (l.type == ARPHRD_LOOPBACK && l.ifindex == 1) {
      lo = &l;
      continue;
    }
    return Refuse(who + "has link " + l.name + " (" + (l.kind.empty() ? "type " + Str(l.type) : l.kind) +
                  "), which restore-orch does not restore (only the loopback)");
  }
  if (lo == nullptr) return Refuse(who + "has no loopback link");
  for (const sys::NetRoute& r : tree.routes) {
    if (r.protocol != RTPROT_KERNEL) {
      return Refuse(who + "has route " + r.Text() + ", not made by the kernel: restore-orch restores no routes");
    }
  }
  if (!tree.nft_tables.empty()) return Refuse(who + "has nftables table " + tree.nft_tables.front() + ": restore-orch restores no firewall");
  if (!tree.iptables.empty()) return Refuse(who + "has iptables table " + tree.iptables.front() + ": restore-orch restores no firewall");

  auto netns = std::make_unique<img::netns_entry>();
  for (auto& e : images::DevconfEntries(tree.sysctls, "ipv4", "default")) *netns->add_def_conf4() = std::move(e);
  for (auto& e : images::DevconfEntries(tree.sysctls, "ipv4", "all")) *netns->add_all_conf4() = std::move(e);
  for (auto& e : images::DevconfEntries(tree.sysctls, "ipv6", "default")) *netns->add_def_conf6() = std::move(e);
  for (auto& e : images::DevconfEntries(tree.sysctls, "ipv6", "all")) *netns->add_all_conf6() = std::move(e);
  for (auto& e : images::UnixEntries(tree.sysctls)) *netns->add_unix_conf() = std::move(e);
  auto dev = std::make_unique<img::net_device_entry>();
  dev->set_type(img::LOOPBACK);
  dev->set_ifindex(static_cast<uint32_t>(lo->ifindex));
  dev->set_mtu(lo->mtu);
  dev->set_flags(lo->flags);
  dev->set_name(lo->name);
  if (!lo->address.empty()) dev->set_address(lo->address);
  for (auto& e : images::DevconfEntries(tree.sysctls, "ipv4", lo->name)) *dev->add_conf4() = std::move(e);
  for (auto& e : images::DevconfEntries(tree.sysctls, "ipv6", lo->name)) *dev->add_conf6() = std::move(e);

  // A trial restore into a new namespace, made and dropped here: whatever
  // the images would not bring back (a sysctl outside CRIU's lists, one
  // that follows another) shows as a difference.
  images::NetPlan trial{.lo_flags = lo->flags, .lo_mtu = lo->mtu};
  std::vector<std::string> problems;
  size_t unknown = 0;
  trial.sysctls = images::NetSysctlsToWrite(*netns, *dev, problems, problems, unknown);
  if (!problems.empty()) return Refuse(who + problems.front());
  std::string ifaddr(4, '\0');
  std::memcpy(ifaddr.data(), &images::kIpAddrSaveMagic, 4);
  for (const std::string& m : tree.address_messages) {
    RO_ASSIGN_OR_RETURN(sys::NetAddress a, sys::ParseAddressMessage(m.data(), m.size()));
    trial.addresses.push_back(std::move(a));
    ifaddr += m;
    ifaddr.resize(NLMSG_ALIGN(ifaddr.size() - 4) + 4, '\0');
  }
  sys::NetNamespaceState restored;
  auto same = [&](const sys::NetNamespaceState& s) { return sys::NetStateDifferences(tree, s, "the dumped one").empty(); };
  if (Status s = TrialNetNamespace(trial, &restored, same); !s.ok()) {
    return Refuse(who + "could not be restored: a trial restore into a new namespace failed: " + s.error().ToString());
  }
  // Compared whole: anything the trial lacks or has otherwise (a route the
  // kernel did not make, a queueing discipline, a nexthop, a neighbour
  // entry, an address label, a sysctl outside CRIU's lists...) would be lost.
  std::vector<std::string> lost = sys::NetStateDifferences(tree, restored, "the dumped one");
  if (!lost.empty()) {
    return Refuse(who + "would not come back as it is: restored, it " + lost.front() +
                  (lost.size() > 1 ? " (and " + Str(lost.size() - 1) + " more)" : ""));
  }

  const uint32_t ns = static_cast<uint32_t>(tree_net_ns_);
  File(images::NetnsKind(), ns).entries.push_back(images::Entry{std::move(netns), {}});
  File(images::NetdevKind(), ns).entries.push_back(images::Entry{std::move(dev), {}});
  File(images::IfaddrKind(), ns).entries.push_back(images::Entry{nullptr, std::move(ifaddr)});
  return {};
}

}  // namespace dump
}  // namespace ro
