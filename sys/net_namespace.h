// A network namespace as a whole: a thread joins it (or a new one), reads
// everything a user could see of it (links, addresses, routes, rules,
// nexthops, neighbours, address labels, firewall tables, sysctls), and two
// such states are compared. The messages come from sys/netlink.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "sys/netlink.h"
#include "sys/status.h"

namespace ro::sys {

// Runs `body` on a short-lived thread of the caller that joined the
// network namespace of task `pid` (setns(2) CLONE_NEWNET; a network
// namespace is per thread), or a new one when pid is 0 (unshare(2)),
// and returns what it returns. /proc/sys/net and sockets opened by `body`
// are that namespace's. Needs CAP_SYS_ADMIN. Errors: open of
// /proc/PID/ns/net, setns, unshare, a thread that cannot start.
Status InNetNamespace(pid_t pid, const std::function<Status()>& body);

// Every sysctl under /proc/sys/net of the calling thread's network
// namespace that can be read and written, by path under /proc/sys/net
// ("ipv4/conf/all/forwarding") -> its text without the last newline.
// Files the kernel refuses to read (stable_secret before it is set: EIO)
// are left out. Errors: opendir and read, naming the path.
Result<std::map<std::string, std::string>> ReadNetSysctls();

// What a network namespace holds, as a thread inside it sees it.
struct NetNamespaceState {
  std::vector<NetLink> links;
  std::vector<std::string> address_messages;  // as the kernel sends them (ParseAddressMessage reads each)
  std::vector<NetRoute> routes;               // IPv4 and IPv6, every table
  std::vector<std::string> rules;             // IPv4 then IPv6 (NetlinkSocket::Rules)
  std::vector<std::string> nft_tables;        // names
  std::vector<std::string> iptables;          // legacy tables' names (ip_tables_names, ip6_tables_names)
  std::map<std::string, std::string> sysctls;  // ReadNetSysctls
  std::vector<std::string> nexthops;    // RTM_GETNEXTHOP payloads
  std::vector<std::string> neighbours;  // RTM_GETNEIGH payloads, proxy entries too
  std::vector<std::string> addrlabels;  // RTM_GETADDRLABEL payloads (IPv6 address labels), the table's sequence number zeroed
};

// What differs between two network namespaces' states, one line each
// ("sysctl net.core.somaxconn is 77, <want_name> 4096"): links (name,
// type, settable flags, MTU, queue length, alias, root qdisc, group),
// addresses (SameAddress, IPv4 primary or secondary; a finite lifetime
// longer than want's), routes, rules, nexthops, neighbours, address
// labels, firewall tables, and every sysctl both have. `got` is the
// state looked at, `want` what it should be.
std::vector<std::string> NetStateDifferences(const NetNamespaceState& want, const NetNamespaceState& got, const std::string& want_name);

// Reads the calling thread's network namespace (run it in InNetNamespace).
// A kernel without IPv6, nf_tables or legacy iptables has none of them.
// Errors: the netlink calls' and ReadNetSysctls'.
Status ReadNetNamespaceState(NetNamespaceState& state);

}  // namespace ro::sys
