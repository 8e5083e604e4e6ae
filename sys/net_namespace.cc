#include "sys/net_namespace.h"

#include <dirent.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/fib_rules.h>
#include <linux/if_addr.h>
#include <linux/if_addrlabel.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/nexthop.h>
#include <linux/rtnetlink.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <memory>
#include <sstream>
#include <system_error>
#include <thread>

#include "sys/proc.h"
#include "sys/unique_fd.h"

namespace ro::sys {
namespace {

std::string Str(long long v) { return std::to_string(v); }

}  // namespace

Status InNetNamespace(pid_t pid, const std::function<Status()>& body) {
  UniqueFd ns;
  const std::string path = "/proc/" + Str(pid) + "/ns/net";
  if (pid != 0) {
    ns.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns) return SysError("open " + path);
  }
  Status status;
  auto run = [&] {
    if (pid != 0 ? ::setns(ns.get(), CLONE_NEWNET) != 0 : ::unshare(CLONE_NEWNET) != 0) {
      status = SysError(pid != 0 ? "setns(CLONE_NEWNET) into " + path : std::string("unshare(CLONE_NEWNET)"));
      return;
    }
    status = body();
  };
  try {
    std::thread(run).join();
  } catch (const std::system_error& e) {
    return SysError("start a thread to join the network namespace", e.code().value());
  }
  return status;
}

namespace {

Status WalkSysctls(const std::string& dir, const std::string& prefix, std::map<std::string, std::string>& out) {
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
  if (!d) return SysError("opendir " + dir);
  while (dirent* e = ::readdir(d.get())) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string path = dir + "/" + name;
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) continue;  // a device that went away
    if (S_ISDIR(st.st_mode)) {
      RO_TRY(WalkSysctls(path, prefix + name + "/", out));
      continue;
    }
    if (!S_ISREG(st.st_mode) || (st.st_mode & S_IRUSR) == 0 || (st.st_mode & S_IWUSR) == 0) continue;
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return SysError("open " + path);
    std::string text;
    char buf[4096];
    bool readable = true;
    for (;;) {
      ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EIO || errno == EPERM || errno == EINVAL || errno == EOPNOTSUPP)) {
        readable = false;  // nothing to read yet (stable_secret) or not here
        break;
      }
      if (n < 0) return SysError("read " + path);
      if (n == 0) break;
      text.append(buf, static_cast<size_t>(n));
    }
    if (!readable) continue;
    if (!text.empty() && text.back() == '\n') text.pop_back();
    out[prefix + name] = std::move(text);
  }
  return {};
}

}  // namespace

Result<std::map<std::string, std::string>> ReadNetSysctls() {
  std::map<std::string, std::string> out;
  RO_TRY(WalkSysctls("/proc/sys/net", "", out));
  return out;
}

Status ReadNetNamespaceState(NetNamespaceState& v) {
  RO_ASSIGN_OR_RETURN(NetlinkSocket rt, NetlinkSocket::Open(NETLINK_ROUTE));
  RO_ASSIGN_OR_RETURN(v.links, rt.Links());
  RO_ASSIGN_OR_RETURN(v.address_messages, rt.AddressMessages());
  for (uint8_t family : {AF_INET, AF_INET6}) {
    auto routes = rt.Routes(family);
    if (!routes.ok() && routes.error().err == EAFNOSUPPORT) continue;  // a kernel without IPv6
    if (!routes.ok()) return std::move(routes).error();
    v.routes.insert(v.routes.end(), routes->begin(), routes->end());
    auto rules = rt.Rules(family);
    if (!rules.ok() && rules.error().err == EAFNOSUPPORT) continue;
    if (!rules.ok()) return std::move(rules).error();
    v.rules.insert(v.rules.end(), rules->begin(), rules->end());
  }
  if (auto nf = NetlinkSocket::Open(NETLINK_NETFILTER); nf.ok()) {
    RO_ASSIGN_OR_RETURN(v.nft_tables, nf->NftTables());
  }
  for (const char* file : {"ip_tables_names", "ip6_tables_names"}) {
    auto names = ReadProcFile(std::string("/proc/thread-self/net/") + file);
    if (!names.ok()) continue;  // no legacy iptables in this kernel
    std::istringstream lines(*names);
    for (std::string name; std::getline(lines, name);) {
      if (!name.empty()) v.iptables.push_back(name);
    }
  }
  RO_ASSIGN_OR_RETURN(v.sysctls, ReadNetSysctls());
  auto payloads = [&](uint16_t type, const void* header, size_t size, const char* what, std::vector<std::string>& out) -> Status {
    auto messages = rt.Dump(type, header, size, what);
    if (!messages.ok() && (messages.error().err == EOPNOTSUPP || messages.error().err == EAFNOSUPPORT)) return {};
    if (!messages.ok()) return std::move(messages).error();
    for (std::string& m : *messages) out.push_back(m.substr(NLMSG_HDRLEN));
    return {};
  };
  nhmsg nh{};
  nh.nh_family = AF_UNSPEC;
  RO_TRY(payloads(RTM_GETNEXTHOP, &nh, sizeof nh, "the nexthops", v.nexthops));
  ndmsg nd{};
  nd.ndm_family = AF_UNSPEC;
  RO_TRY(payloads(RTM_GETNEIGH, &nd, sizeof nd, "the neighbours", v.neighbours));
  nd.ndm_flags = NTF_PROXY;
  RO_TRY(payloads(RTM_GETNEIGH, &nd, sizeof nd, "the proxy neighbours", v.neighbours));
  // Without what changes by itself: when the entry was last used and confirmed, how often probed.
  for (std::string& n : v.neighbours) {
    if (n.size() < NLMSG_ALIGN(sizeof(ndmsg))) continue;
    std::string kept = n.substr(0, NLMSG_ALIGN(sizeof(ndmsg)));
    for (size_t at = kept.size(); at + sizeof(nlattr) <= n.size();) {
      nlattr a;
      std::memcpy(&a, n.data() + at, sizeof a);
      if (a.nla_len < sizeof(nlattr) || at + a.nla_len > n.size()) break;
      if (a.nla_type != NDA_CACHEINFO && a.nla_type != NDA_PROBES) kept.append(n, at, NLA_ALIGN(a.nla_len));
      at += NLA_ALIGN(a.nla_len);
    }
    n = std::move(kept);
  }
  ifaddrlblmsg lbl{};
  lbl.ifal_family = AF_INET6;
  RO_TRY(payloads(RTM_GETADDRLABEL, &lbl, sizeof lbl, "the address labels", v.addrlabels));
  for (std::string& l : v.addrlabels) {
    if (l.size() >= sizeof(ifaddrlblmsg)) std::memset(l.data() + offsetof(ifaddrlblmsg, ifal_seq), 0, sizeof(uint32_t));
  }
  return {};
}

namespace {

// The lines of `want` that `got` lacks, and those it has more of.
void CompareLists(std::vector<std::string> want, std::vector<std::string> got, const std::string& what,
                  const std::function<std::string(const std::string&)>& text, const std::string& want_name, std::vector<std::string>& out) {
  std::sort(want.begin(), want.end());
  std::sort(got.begin(), got.end());
  std::vector<std::string> missing, extra;
  std::set_difference(want.begin(), want.end(), got.begin(), got.end(), std::back_inserter(missing));
  std::set_difference(got.begin(), got.end(), want.begin(), want.end(), std::back_inserter(extra));
  for (const std::string& m : missing) out.push_back("lacks " + what + " " + text(m) + " that " + want_name + " has");
  for (const std::string& e : extra) out.push_back("has " + what + " " + text(e) + " that " + want_name + " lacks");
}

// "priority 100 table 100 (family 2, action 1, from /8)" of a rule's payload.
// A rule as ip-rule(8) shows it: "priority 32765 from 10.0.0.0/8 fwmark 0x5
// iif lo lookup 100 (IPv4)"; the selectors and actions of fib_rules.h.
std::string RuleText(const std::string& payload) {
  if (payload.size() < sizeof(fib_rule_hdr)) return "(short)";
  fib_rule_hdr h;
  std::memcpy(&h, payload.data(), sizeof h);
  uint32_t priority = 0, table = h.table, fwmark = 0, goto_target = 0;
  bool has_fwmark = false;
  std::string src, dst, iif, oif;
  for (size_t at = NLMSG_ALIGN(sizeof h); at + sizeof(nlattr) <= payload.size();) {
    nlattr a;
    std::memcpy(&a, payload.data() + at, sizeof a);
    if (a.nla_len < sizeof(nlattr) || at + a.nla_len > payload.size()) break;
    std::string value = payload.substr(at + NLA_HDRLEN, a.nla_len - NLA_HDRLEN);
    uint32_t word = 0;
    if (value.size() == 4) std::memcpy(&word, value.data(), 4);
    switch (a.nla_type) {
      case FRA_PRIORITY: priority = word; break;
      case FRA_TABLE: table = word; break;
      case FRA_FWMARK: fwmark = word, has_fwmark = true; break;
      case FRA_GOTO: goto_target = word; break;
      case FRA_SRC: src = AddressText(h.family, value); break;
      case FRA_DST: dst = AddressText(h.family, value); break;
      case FRA_IIFNAME: iif = value.substr(0, value.find('\0')); break;
      case FRA_OIFNAME: oif = value.substr(0, value.find('\0')); break;
      default: break;
    }
    at += NLA_ALIGN(a.nla_len);
  }
  std::string text = "priority " + Str(priority);
  text += " from " + (src.empty() ? std::string("all") : src + "/" + Str(h.src_len));
  if (!dst.empty()) text += " to " + dst + "/" + Str(h.dst_len);
  if (has_fwmark) text += fmt::format(" fwmark {:#x}", fwmark);
  if (!iif.empty()) text += " iif " + iif;
  if (!oif.empty()) text += " oif " + oif;
  std::string table_name = table == RT_TABLE_MAIN ? "main" : table == RT_TABLE_LOCAL ? "local" : table == RT_TABLE_DEFAULT ? "default" : Str(table);
  switch (h.action) {
    case FR_ACT_TO_TBL: text += " lookup " + table_name; break;
    case FR_ACT_GOTO: text += " goto " + Str(goto_target); break;
    case FR_ACT_NOP: text += " nop"; break;
    case FR_ACT_BLACKHOLE: text += " blackhole"; break;
    case FR_ACT_UNREACHABLE: text += " unreachable"; break;
    case FR_ACT_PROHIBIT: text += " prohibit"; break;
    default: text += " action " + Str(h.action); break;
  }
  return text + (h.family == AF_INET6 ? " (IPv6)" : h.family == AF_INET ? " (IPv4)" : " (family " + Str(h.family) + ")");
}

std::string Hex(const std::string& bytes) {
  std::string out;
  char b[4];
  for (unsigned char c : bytes.substr(0, 48)) {
    std::snprintf(b, sizeof b, "%02x", c);
    out += b;
  }
  return out + (bytes.size() > 48 ? "..." : "");
}

}  // namespace

std::vector<std::string> NetStateDifferences(const NetNamespaceState& want, const NetNamespaceState& got, const std::string& want_name) {
  std::vector<std::string> out;
  auto quoted = [](const std::string& v) { return v.empty() ? std::string("\"\"") : v; };
  auto diff = [&](const std::string& what, const std::string& have, const std::string& should) {
    if (have != should) out.push_back("has " + what + " " + quoted(have) + ", " + want_name + " " + quoted(should));
  };
  for (const NetLink& w : want.links) {
    const NetLink* g = nullptr;
    for (const NetLink& l : got.links) g = l.ifindex == w.ifindex ? &l : g;
    if (g == nullptr) {
      out.push_back("lacks link " + w.name + " (ifindex " + Str(w.ifindex) + ") that " + want_name + " has");
      continue;
    }
    const std::string link = "link " + Str(w.ifindex) + "'s ";
    diff(link + "name", g->name, w.name);
    diff(link + "kind", g->kind, w.kind);
    diff(link + "flags", Str(g->flags & kSettableLinkFlags), Str(w.flags & kSettableLinkFlags));
    diff(link + "MTU", Str(g->mtu), Str(w.mtu));
    diff(link + "queue length", Str(g->txqlen), Str(w.txqlen));
    diff(link + "alias", g->alias, w.alias);
    // A link that was never up has "noop", one that was "noqueue": neither queues.
    auto queueing = [](const std::string& q) { return q == "noop" ? std::string("noqueue") : q; };
    diff(link + "root qdisc", queueing(g->qdisc), queueing(w.qdisc));
    diff(link + "GSO maximum size", Str(g->gso_max_size), Str(w.gso_max_size));
    diff(link + "GRO maximum size", Str(g->gro_max_size), Str(w.gro_max_size));
    diff(link + "group", Str(g->group), Str(w.group));
  }
  for (const NetLink& g : got.links) {
    bool known = false;
    for (const NetLink& w : want.links) known = known || w.ifindex == g.ifindex;
    if (!known) out.push_back("has link " + g.name + " (ifindex " + Str(g.ifindex) + ") that " + want_name + " lacks");
  }
  auto parse = [](const std::vector<std::string>& messages) {
    std::vector<NetAddress> list;
    for (const std::string& m : messages) {
      if (auto a = ParseAddressMessage(m.data(), m.size()); a.ok()) list.push_back(std::move(a).value());
    }
    return list;
  };
  const std::vector<NetAddress> want_addrs = parse(want.address_messages), got_addrs = parse(got.address_messages);
  for (const NetAddress& w : want_addrs) {
    const NetAddress* g = nullptr;
    for (const NetAddress& a : got_addrs) g = SameAddress(a, w) ? &a : g;
    if (g == nullptr) {
      out.push_back("lacks address " + w.Text() + " as " + want_name + " has it (scope, label, flags, lifetime)");
    } else if (g->valid_lft != 0xffffffff && g->valid_lft > w.valid_lft) {
      out.push_back("has address " + w.Text() + " valid for " + Str(g->valid_lft) + " s, " + want_name + " " + Str(w.valid_lft) + " s");
    }
  }
  for (const NetAddress& g : got_addrs) {
    bool known = false;
    for (const NetAddress& w : want_addrs) known = known || SameAddress(g, w);
    if (!known) out.push_back("has address " + g.Text() + " that " + want_name + " lacks (or has otherwise)");
  }
  // Each link lists its addresses of a family in an order the kernel keeps
  // (IPv4: a subnet's primary first; IPv6: newest first within a scope),
  // and the order picks the source address of what the tree sends.
  std::map<std::pair<int, int>, std::pair<std::string, std::string>> orders;  // (ifindex, family) -> want, got
  auto list = [](std::string& to, const NetAddress& a) { to += (to.empty() ? "" : ", ") + a.Text(); };
  for (const NetAddress& w : want_addrs) {
    for (const NetAddress& g : got_addrs) {
      if (SameAddress(g, w)) list(orders[{w.ifindex, w.family}].first, w);
    }
  }
  for (const NetAddress& g : got_addrs) {
    for (const NetAddress& w : want_addrs) {
      if (SameAddress(g, w)) list(orders[{g.ifindex, g.family}].second, g);
    }
  }
  for (const auto& [key, order] : orders) {
    if (order.first == order.second) continue;
    out.push_back("lists the " + std::string(key.second == AF_INET6 ? "IPv6" : "IPv4") + " addresses of ifindex " +
                  Str(key.first) + " as " + order.second + ", " + want_name + " as " + order.first);
  }
  std::vector<std::string> want_routes, got_routes;
  std::map<std::string, std::string> route_text;
  for (const NetRoute& r : want.routes) {
    want_routes.push_back(r.key);
    route_text[r.key] = r.Text();
  }
  for (const NetRoute& r : got.routes) {
    got_routes.push_back(r.key);
    route_text[r.key] = r.Text();
  }
  CompareLists(want_routes, got_routes, "route", [&](const std::string& k) { return route_text[k]; }, want_name, out);
  CompareLists(want.rules, got.rules, "routing rule", RuleText, want_name, out);
  CompareLists(want.nexthops, got.nexthops, "nexthop", Hex, want_name, out);
  CompareLists(want.neighbours, got.neighbours, "neighbour entry", Hex, want_name, out);
  CompareLists(want.addrlabels, got.addrlabels, "IPv6 address label", Hex, want_name, out);
  CompareLists(want.nft_tables, got.nft_tables, "nftables table", [](const std::string& s) { return s; }, want_name, out);
  CompareLists(want.iptables, got.iptables, "iptables table", [](const std::string& s) { return s; }, want_name, out);
  for (const auto& [path, value] : got.sysctls) {
    auto w = want.sysctls.find(path);
    if (w == want.sysctls.end() || w->second == value) continue;
    std::string name = "net." + path;
    std::replace(name.begin(), name.end(), '/', '.');
    out.push_back("has sysctl " + name + " = " + value + ", " + want_name + " " + w->second);
  }
  return out;
}

}  // namespace ro::sys
