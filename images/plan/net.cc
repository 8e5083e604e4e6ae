// tree: the network namespace of the tree's own, from CRIU's images of it
// (criu/net.c): netns-<id>.img, netdev-<id>.img, and the raw output of
// `ip addr save`, `ip route save`, `ip rule save`, iptables-save and nft.
// The loopback link, its addresses and the namespace's device sysctls are
// restored; anything else a new namespace does not have is a problem.
#include <fcntl.h>
#include <linux/fib_rules.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>

#include <cstring>
#include <sstream>

#include "images/net_sysctls.h"
#include "images/plan/context.h"
#include "images/proto/netdev.pb.h"
#include "sys/netlink.h"
#include "sys/unique_fd.h"

namespace ro::images::plan {
namespace {

constexpr uint64_t kMaxNetFileBytes = 16 << 20;
constexpr size_t kMaxAddresses = 4096;

// The bytes of raw image `name`: in memory (a dump checking its images),
// or read from the image directory. Errors name the call.
Result<std::string> RawBytes(Context& ctx, const std::string& name) {
  const auto it = ctx.dir.files.find(name);
  if (it == ctx.dir.files.end() || it->second.entries.size() != 1) return Fail("not a raw image");
  const Entry& e = it->second.entries[0];
  if (!e.ref) return e.payload;
  UniqueFd dirfd(::open(ctx.dir.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dirfd) return SysError("open the image directory " + ctx.dir.path);
  return ReadWholeFile(dirfd.get(), e.ref->file, kMaxNetFileBytes);
}

// The netlink messages of raw image `name` after its magic (none when it
// is empty). Problems are added to ctx (false then).
bool ReadMessages(Context& ctx, const std::string& name, uint32_t magic, std::vector<std::string>& out) {
  auto bytes = RawBytes(ctx, name);
  if (!bytes.ok()) {
    ctx.problems.Add(name, std::nullopt, bytes.error().what);
    return false;
  }
  if (bytes->empty()) return true;
  uint32_t got = 0;
  if (bytes->size() < 4 || (std::memcpy(&got, bytes->data(), 4), got != magic)) {
    ctx.problems.Add(name, std::nullopt, "does not start with iproute2's magic 0x" + HexStr(magic));
    return false;
  }
  auto messages = sys::SplitMessages(bytes->substr(4));
  if (!messages.ok()) {
    ctx.problems.Add(name, std::nullopt, messages.error().what);
    return false;
  }
  out = std::move(messages).value();
  return true;
}

// The rules a new namespace has (net/ipv4/fib_rules.c, net/ipv6/fib6_rules.c:
// priority 0 lookup local, 32766 main, 32767 default (IPv4 only)).
std::string RuleProblem(const std::string& message) {
  const auto* nlh = reinterpret_cast<const nlmsghdr*>(message.data());
  if (nlh->nlmsg_type != RTM_NEWRULE || nlh->nlmsg_len < NLMSG_LENGTH(sizeof(fib_rule_hdr))) return "is not an RTM_NEWRULE message";
  fib_rule_hdr h;
  std::memcpy(&h, message.data() + NLMSG_HDRLEN, sizeof h);
  uint32_t table = h.table, priority = 0;
  size_t at = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof h);
  while (at + sizeof(nlattr) <= nlh->nlmsg_len) {
    nlattr a;
    std::memcpy(&a, message.data() + at, sizeof a);
    if (a.nla_len < sizeof(nlattr) || at + a.nla_len > nlh->nlmsg_len) return "has an attribute that runs past the message";
    const char* payload = message.data() + at + NLA_HDRLEN;
    if (a.nla_type == FRA_TABLE && a.nla_len == NLA_HDRLEN + 4) {
      std::memcpy(&table, payload, 4);
    } else if (a.nla_type == FRA_PRIORITY && a.nla_len == NLA_HDRLEN + 4) {
      std::memcpy(&priority, payload, 4);
    } else if (a.nla_type != FRA_PROTOCOL) {
      return "has selector or action attribute " + Str(a.nla_type) + ", which a new namespace's rules do not";
    }
    at += NLA_ALIGN(a.nla_len);
  }
  bool standard = h.action == FR_ACT_TO_TBL && h.dst_len == 0 && h.src_len == 0 && h.tos == 0 && h.flags == 0 &&
                  ((priority == 0 && table == RT_TABLE_LOCAL) || (priority == 32766 && table == RT_TABLE_MAIN) ||
                   (priority == 32767 && table == RT_TABLE_DEFAULT && h.family == AF_INET));
  if (!standard) return "priority " + Str(priority) + " table " + Str(table) + " is not one of the rules a new namespace has";
  return {};
}

// iptables-save's output holding no rule and only ACCEPT policies: what a
// namespace whose tables were merely loaded shows.
std::string FirewallProblem(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  for (size_t n = 1; std::getline(in, line); ++n) {
    if (line.empty() || line[0] == '#' || line[0] == '*' || line == "COMMIT") continue;
    // ":CHAIN ACCEPT [packets:bytes]", nothing else.
    if (line[0] == ':') {
      size_t sp = line.find(' ');
      if (sp != std::string::npos && line.compare(sp, 9, " ACCEPT [") == 0 && line.back() == ']' &&
          line.find_first_not_of("0123456789:", sp + 9) == line.size() - 1) {
        continue;
      }
    }
    return "line " + Str(n) + " (\"" + line.substr(0, 60) + "\") is a rule or policy: restore-orch restores no firewall";
  }
  return {};
}

// The loopback link of netdev-<id>.img (null when there is none, or no file).
const img::net_device_entry* PlanLoopback(Context& ctx, uint32_t id, NetPlan& net) {
  const std::string name = MakeFileName(NetdevKind(), id);
  const ImageFile* f = ctx.dir.Find(NetdevKind(), id);
  if (f == nullptr) {
    ctx.problems.Add(name, std::nullopt, "missing: the root task is in a network namespace of its own (id " + Str(id) + ")");
    return nullptr;
  }
  const img::net_device_entry* lo = nullptr;
  for (size_t i = 0; i < f->entries.size(); ++i) {
    const auto& e = f->As<img::net_device_entry>(i);
    if (e.type() == img::LOOPBACK && lo == nullptr) {
      lo = &e;
      continue;
    }
    ctx.problems.Add(name, i, "link " + e.name() + " (" + img::nd_type_Name(e.type()) +
                                  "): restore-orch restores only the loopback link of a network namespace");
  }
  if (lo == nullptr) {
    ctx.problems.Add(name, std::nullopt, "has no loopback link");
    return nullptr;
  }
  if (lo->ifindex() != 1 || lo->name() != "lo") {
    ctx.problems.Add(name, 0, "the loopback link is " + lo->name() + " with ifindex " + Str(lo->ifindex()) +
                                  ": a new namespace's is lo with ifindex 1");
  }
  if (lo->mtu() == 0) ctx.problems.Add(name, 0, "the loopback link's MTU is 0");
  if (lo->conf_size() > 0) ctx.problems.Add(name, 0, "uses older CRIU's device configuration (conf), which restore-orch does not read");
  net.lo_flags = lo->flags();
  net.lo_mtu = lo->mtu();
  return lo;
}

void PlanAddresses(Context& ctx, uint32_t id, int lo_ifindex, NetPlan& net) {
  const std::string name = MakeFileName(IfaddrKind(), id);
  if (ctx.dir.Find(IfaddrKind(), id) == nullptr) return;  // no address at all
  std::vector<std::string> messages;
  if (!ReadMessages(ctx, name, kIpAddrSaveMagic, messages)) return;
  if (messages.size() > kMaxAddresses) {
    ctx.problems.Add(name, std::nullopt, Str(messages.size()) + " addresses: at most " + Str(kMaxAddresses) + " are restored");
    return;
  }
  for (size_t i = 0; i < messages.size(); ++i) {
    auto a = sys::ParseAddressMessage(messages[i].data(), messages[i].size());
    if (!a.ok()) {
      ctx.problems.Add(name, i, a.error().what);
      continue;
    }
    if (a->ifindex != lo_ifindex) {
      ctx.problems.Add(name, i, "address " + a->Text() + " is on link " + Str(a->ifindex) + ", not the loopback");
      continue;
    }
    if (a->valid_lft == 0 || a->preferred_lft > a->valid_lft) {
      ctx.problems.Add(name, i, "address " + a->Text() + " is valid for " + Str(a->valid_lft) + " s and preferred for " +
                                    Str(a->preferred_lft) + " s: the kernel takes a valid lifetime above 0 and no shorter than the preferred");
      continue;
    }
    // What the kernel sets of an address as it goes (duplicate address
    // detection, privacy addresses) no restore can ask for.
    constexpr uint32_t kKernelState = 0x04 /*OPTIMISTIC*/ | 0x08 /*DADFAILED*/ | 0x40 /*TENTATIVE*/ | 0x800 /*STABLE_PRIVACY*/;
    const uint32_t state = a->flags & (kKernelState | (a->family == AF_INET6 ? 0x01u /*TEMPORARY*/ : 0u));
    if (state != 0) {
      ctx.problems.Add(name, i, "address " + a->Text() + " has flags 0x" + HexStr(state) +
                                    " (the kernel's duplicate address detection or privacy state), which a restore cannot set");
      continue;
    }
    if ((a->flags & 0x20 /*DEPRECATED*/) != 0 && a->preferred_lft != 0) {
      ctx.problems.Add(name, i, "address " + a->Text() + " is deprecated while preferred for " + Str(a->preferred_lft) +
                                    " s: the kernel deprecates an address only when its preferred lifetime ends");
      continue;
    }
    const std::string& key = a->Key();
    if (a->family == AF_INET6 && (static_cast<uint8_t>(key[0]) == 0xff || key == std::string(16, '\0'))) {
      ctx.problems.Add(name, i, "address " + a->Text() + " is a multicast or the unspecified address, which no link is given");
      continue;
    }
    a->ifindex = 1;
    net.addresses.push_back(std::move(a).value());
  }
}

// What restore-orch does not restore must not be there: routes other than
// the kernel's, rules other than a new namespace's, firewall rules.
void CheckRoutingAndFirewall(Context& ctx, uint32_t id) {
  for (const char* kind : {"ROUTE", "ROUTE6"}) {
    const Kind& k = *KindByName(kind);
    if (ctx.dir.Find(k, id) == nullptr) continue;
    const std::string name = MakeFileName(k, id);
    std::vector<std::string> messages;
    if (!ReadMessages(ctx, name, kIpRouteSaveMagic, messages)) continue;
    for (size_t i = 0; i < messages.size(); ++i) {
      auto r = sys::ParseRouteMessage(messages[i].data(), messages[i].size());
      if (!r.ok()) {
        ctx.problems.Add(name, i, r.error().what);
      } else if (r->protocol != RTPROT_KERNEL) {
        ctx.problems.Add(name, i, "route " + r->Text() + " was not made by the kernel: restore-orch restores no routes");
      }
    }
  }
  if (const Kind& k = *KindByName("RULE"); ctx.dir.Find(k, id) != nullptr) {
    const std::string name = MakeFileName(k, id);
    std::vector<std::string> messages;
    if (ReadMessages(ctx, name, kIpRouteSaveMagic, messages)) {
      for (size_t i = 0; i < messages.size(); ++i) {
        if (std::string p = RuleProblem(messages[i]); !p.empty()) ctx.problems.Add(name, i, "rule " + p);
      }
    }
  }
  for (const char* kind : {"IPTABLES", "IP6TABLES", "NFTABLES"}) {
    const Kind& k = *KindByName(kind);
    if (ctx.dir.Find(k, id) == nullptr) continue;
    const std::string name = MakeFileName(k, id);
    auto text = RawBytes(ctx, name);
    if (!text.ok()) {
      ctx.problems.Add(name, std::nullopt, text.error().what);
    } else if (std::string(kind) == "NFTABLES" ? text->find_first_not_of(" \t\n") != std::string::npos : !FirewallProblem(*text).empty()) {
      ctx.problems.Add(name, std::nullopt, std::string(kind) == "NFTABLES" ? "holds nftables rules: restore-orch restores no firewall" : FirewallProblem(*text));
    }
  }
}

}  // namespace

void PlanNet(Context& ctx, const img::task_kobj_ids_entry* root_ids) {
  auto net_id = [](const img::task_kobj_ids_entry& ids) { return ids.has_net_ns_id() ? std::optional(ids.net_ns_id()) : std::nullopt; };
  std::optional<uint32_t> own = TreeNamespace(ctx, root_ids, net_id, "a network namespace");
  if (!own) {
    // Which network namespace is the caller's, the images do not say: a
    // tree whose images hold one of its own would come back in the caller's.
    bool outside_named = ctx.root_ids != nullptr && ctx.root_ids->has_net_ns_id();
    if (root_ids != nullptr && root_ids->has_net_ns_id() && !outside_named && ctx.dir.Find(NetnsKind(), root_ids->net_ns_id()) != nullptr) {
      ctx.problems.Add(MakeFileName(InventoryKind()), 0,
                       "names no network namespace outside the tree, while the root task's (id " + Str(root_ids->net_ns_id()) +
                           ") has images of its own");
    }
    return;
  }
  const uint32_t id = *own;
  const std::string name = MakeFileName(NetnsKind(), id);
  const ImageFile* f = ctx.dir.Find(NetnsKind(), id);
  if (f == nullptr || f->entries.empty()) {
    ctx.problems.Add(name, std::nullopt, "missing: the root task is in a network namespace of its own (id " + Str(id) + ")");
    return;
  }
  const auto& e = f->As<img::netns_entry>(0);
  NetPlan net{.ns_id = id};
  if (e.has_ext_key()) ctx.problems.Add(name, 0, "the namespace is external (" + e.ext_key() + "): restore-orch makes a new one");
  if (e.def_conf_size() > 0 || e.all_conf_size() > 0) {
    ctx.problems.Add(name, 0, "uses older CRIU's device configuration (def_conf, all_conf), which restore-orch does not read");
  }
  if (e.nsids_size() > 0) {
    ctx.plan.warnings.push_back(name + ": the ids the namespace gave " + Str(e.nsids_size()) + " other namespaces are not restored");
  }
  const img::net_device_entry* lo = PlanLoopback(ctx, id, net);
  if (lo == nullptr) return;
  std::vector<std::string> netns_problems, link_problems;
  size_t unknown = 0;
  net.sysctls = NetSysctlsToWrite(e, *lo, netns_problems, link_problems, unknown);
  for (std::string& p : netns_problems) ctx.problems.Add(name, 0, std::move(p));
  for (std::string& p : link_problems) ctx.problems.Add(MakeFileName(NetdevKind(), id), 0, std::move(p));
  if (unknown > 0) {
    ctx.problems.Add(name, 0, Str(unknown) + " sysctl entries lie past CRIU's lists, whose names restore-orch does not know: they would not be restored");
  }
  PlanAddresses(ctx, id, static_cast<int>(lo->ifindex()), net);
  CheckRoutingAndFirewall(ctx, id);
  ctx.plan.ns.net = std::move(net);
}

}  // namespace ro::images::plan
