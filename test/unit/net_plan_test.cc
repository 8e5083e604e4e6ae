// The planner of a network namespace of the tree's own (images/plan/net.cc)
// on images built here: what it restores, and each hostile or unsupported
// image refused with one line naming the file and the entry.
#include <gtest/gtest.h>
#include <linux/fib_rules.h>
#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "images/net_sysctls.h"
#include "images/plan.h"
#include "images/proto/core.pb.h"
#include "images/proto/inventory.pb.h"
#include "images/proto/netdev.pb.h"
#include "test/helpers/test_util.h"
#include "test/helpers/tree_images.h"

namespace ro::images {
namespace {

void Put(std::string& out, const void* p, size_t n) {
  out.append(static_cast<const char*>(p), n);
  out.resize(NLMSG_ALIGN(out.size()), '\0');
}

void Attr(std::string& out, uint16_t type, const std::string& payload) {
  nlattr a{static_cast<uint16_t>(NLA_HDRLEN + payload.size()), type};
  out.append(reinterpret_cast<const char*>(&a), sizeof a);
  out += payload;
  out.resize(NLA_ALIGN(out.size()), '\0');
}

// One message: header of `type`, `body` (the family header and attributes).
std::string Message(uint16_t type, const std::string& body) {
  nlmsghdr h{static_cast<uint32_t>(NLMSG_HDRLEN + body.size()), type, 0, 0, 0};
  std::string out;
  Put(out, &h, sizeof h);
  return out + body;
}

// An RTM_NEWADDR of `address` (4 or 16 bytes) on link `ifindex`, with
// lifetimes (seconds) when `valid` is set.
std::string Address(uint8_t family, const std::string& address, uint8_t prefix, int ifindex = 1, uint32_t valid = 0,
                    uint32_t preferred = 0) {
  ifaddrmsg ifa{family, prefix, 0, RT_SCOPE_UNIVERSE, static_cast<uint32_t>(ifindex)};
  std::string body;
  Put(body, &ifa, sizeof ifa);
  Attr(body, IFA_ADDRESS, address);
  Attr(body, IFA_LOCAL, address);
  if (valid != 0) {
    ifa_cacheinfo ci{preferred, valid, 0, 0};
    Attr(body, IFA_CACHEINFO, std::string(reinterpret_cast<const char*>(&ci), sizeof ci));
  }
  return Message(RTM_NEWADDR, body);
}

std::string Magic(uint32_t magic) { return std::string(reinterpret_cast<const char*>(&magic), 4); }

const std::string kTen("\x0a\x01\x02\x03", 4);

struct NetImages {
  std::function<void(img::netns_entry&)> netns;
  std::function<void(img::net_device_entry&)> lo;
  std::string ifaddr = Magic(0x47361222) + Address(AF_INET, kTen, 8);
  std::vector<std::pair<std::string, std::string>> raw;  // more raw files: name -> bytes
};

// The demo set with every task in network namespace 5 (the inventory's
// outside one 2), and its images as `n` leaves them.
test::ImageSet InNetNamespace(const NetImages& n) {
  test::ImageSet set = test::DemoImages();
  test::Mutable<img::inventory_entry>(set, "inventory.img", 0).mutable_root_ids()->set_net_ns_id(2);
  for (auto& [name, file] : set) {
    if (name.rfind("core-", 0) != 0) continue;
    auto& core = static_cast<img::core_entry&>(*file.entries[0].message);
    if (core.has_ids()) core.mutable_ids()->set_net_ns_id(5);
  }
  std::map<std::string, std::string> live = {{"ipv4/conf/all/forwarding", "1"}, {"ipv6/conf/lo/hop_limit", "33"}, {"unix/max_dgram_qlen", "99"}};
  auto ns = std::make_unique<img::netns_entry>();
  for (auto& e : DevconfEntries(live, "ipv4", "all")) *ns->add_all_conf4() = e;
  for (auto& e : UnixEntries(live)) *ns->add_unix_conf() = e;
  if (n.netns) n.netns(*ns);
  auto lo = std::make_unique<img::net_device_entry>();
  lo->set_type(img::LOOPBACK);
  lo->set_ifindex(1);
  lo->set_mtu(65536);
  lo->set_flags(0x49);
  lo->set_name("lo");
  for (auto& e : DevconfEntries(live, "ipv6", "lo")) *lo->add_conf6() = e;
  if (n.lo) n.lo(*lo);
  auto add = [&](const std::string& name, std::unique_ptr<google::protobuf::Message> m, std::string payload) {
    ImageFile f;
    f.kind = ParseFileName(name)->kind;
    f.entries.push_back(Entry{std::move(m), std::move(payload)});
    set.emplace(name, std::move(f));
  };
  add("netns-5.img", std::move(ns), {});
  add("netdev-5.img", std::move(lo), {});
  add("ifaddr-5.img", nullptr, n.ifaddr);
  for (const auto& [name, bytes] : n.raw) add(name, nullptr, bytes);
  return set;
}

PlanOutcome Plan(const test::ImageSet& set) { return BuildPlan(test::ToImageDir(set), {.ext_mount_map_auto = true}); }

std::string Errors(const PlanOutcome& out) {
  std::string all;
  for (const Error& e : out.errors) all += e.ToString() + "\n";
  return out.plan ? "planned" : all;
}

TEST(NetPlan, TheLoopbackItsAddressesAndSysctls) {
  PlanOutcome out = Plan(InNetNamespace({}));
  ASSERT_TRUE(out.plan.has_value()) << Errors(out);
  ASSERT_TRUE(out.plan->ns.net.has_value());
  const NetPlan& net = *out.plan->ns.net;
  EXPECT_EQ(net.ns_id, 5u);
  EXPECT_EQ(net.lo_mtu, 65536u);
  EXPECT_EQ(net.lo_flags, 0x49u);
  ASSERT_EQ(net.addresses.size(), 1u);
  EXPECT_EQ(net.addresses[0].Text(), "10.1.2.3/8");
  // In order: all before the link's, unix last; only what has a value.
  EXPECT_EQ(net.sysctls, (std::vector<std::pair<std::string, std::string>>{
                             {"net/ipv4/conf/all/forwarding", "1"}, {"net/ipv6/conf/lo/hop_limit", "33"}, {"net/unix/max_dgram_qlen", "99"}}));
  EXPECT_NE(FormatPlan(*out.plan).find("a new network namespace (netns-, netdev-, ifaddr-5.img)"), std::string::npos);
  EXPECT_FALSE(Plan(test::DemoImages()).plan->ns.net.has_value()) << "the demo tree shares the caller's";
}

TEST(NetPlan, CriusKernelRoutesDefaultRulesAndEmptyTablesPass) {
  rtmsg rtm{AF_INET, 8, 0, 0, RT_TABLE_LOCAL, RTPROT_KERNEL, RT_SCOPE_HOST, RTN_LOCAL, 0};
  std::string body;
  Put(body, &rtm, sizeof rtm);
  Attr(body, RTA_DST, kTen);
  fib_rule_hdr rule{AF_INET, 0, 0, 0, RT_TABLE_MAIN, 0, 0, FR_ACT_TO_TBL, 0};
  std::string rbody;
  Put(rbody, &rule, sizeof rule);
  uint32_t prio = 32766;
  Attr(rbody, FRA_PRIORITY, std::string(reinterpret_cast<const char*>(&prio), 4));
  NetImages n;
  n.raw = {{"route-5.img", Magic(0x45311224) + Message(RTM_NEWROUTE, body)},
           {"rule-5.img", Magic(0x45311224) + Message(RTM_NEWRULE, rbody)},
           {"iptables-5.img", "# Generated by iptables-save\n*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n"},
           {"nftables-5.img", "\n"}};
  PlanOutcome out = Plan(InNetNamespace(n));
  EXPECT_TRUE(out.plan.has_value()) << Errors(out);
}

TEST(NetPlan, WhatIsNotRestoredOrHostileIsRefusedNamingTheFileAndEntry) {
  auto refused = [](NetImages n, const std::string& want) {
    std::string errors = Errors(Plan(InNetNamespace(n)));
    EXPECT_NE(errors.find(want), std::string::npos) << "want: " << want << "\ngot: " << errors;
  };
  NetImages n;
  n.ifaddr = Magic(0x12345678) + Address(AF_INET, kTen, 8);
  refused(n, "ifaddr-5.img: does not start with iproute2's magic 0x47361222");
  n.ifaddr = Magic(0x47361222) + Address(AF_INET, kTen, 8).substr(0, 20);
  refused(n, "ifaddr-5.img: the netlink message at byte 0 says it is");
  n.ifaddr = Magic(0x47361222) + Address(AF_INET, kTen, 33);
  refused(n, "ifaddr-5.img: entry 0: prefix length 33 is more than 32 bits");
  n.ifaddr = Magic(0x47361222) + Address(AF_INET, kTen, 8) + Address(AF_INET, kTen, 8, 2);
  refused(n, "ifaddr-5.img: entry 1: address 10.1.2.3/8 is on link 2, not the loopback");
  n.ifaddr = Magic(0x47361222) + Address(AF_INET6, kTen, 8);
  refused(n, "ifaddr-5.img: entry 0: IFA_ADDRESS is 4 bytes, not 16");
  n.ifaddr = Magic(0x47361222) + Address(AF_PACKET, kTen, 8);
  refused(n, "ifaddr-5.img: entry 0: address family 17 is neither AF_INET nor AF_INET6");
  n.ifaddr = Magic(0x47361222) + Message(RTM_NEWROUTE, std::string(12, '\0'));
  refused(n, "ifaddr-5.img: entry 0: message type 24 is not RTM_NEWADDR (20)");
  n.ifaddr = Magic(0x47361222) + Address(AF_INET, kTen, 8, 1, 100, 200);
  refused(n, "ifaddr-5.img: entry 0: address 10.1.2.3/8 is valid for 100 s and preferred for 200 s");
  n.ifaddr = Magic(0x47361222) + Address(AF_INET6, std::string("\xff\x02", 2) + std::string(13, '\0') + "\x01", 128);
  refused(n, "ifaddr-5.img: entry 0: address ff02::1/128 is a multicast or the unspecified address");
  std::string tentative = Address(AF_INET6, std::string(15, '\0') + "\x05", 128);
  tentative[NLMSG_HDRLEN + 2] = 0x40;  // ifa_flags: IFA_F_TENTATIVE
  n.ifaddr = Magic(0x47361222) + tentative;
  refused(n, "ifaddr-5.img: entry 0: address ::5/128 has flags 0x40 (the kernel's duplicate address detection or privacy state)");
  std::string many = Magic(0x47361222);
  for (int i = 0; i < 4097; ++i) many += Address(AF_INET, kTen, 8);
  n.ifaddr = many;
  refused(n, "ifaddr-5.img: 4097 addresses: at most 4096 are restored");

  NetImages veth;
  veth.lo = [](img::net_device_entry& lo) { lo.set_name("../x"); };
  refused(veth, "netdev-5.img: entry 0: the loopback link is ../x with ifindex 1: a new namespace's is lo with ifindex 1");
  NetImages newline;
  newline.netns = [](img::netns_entry& e) {
    auto* s = e.add_def_conf6();
    *s = img::sysctl_entry();
    for (size_t i = 0; i < Ipv6DevconfNames().size(); ++i) {
      auto* x = i == 0 ? s : e.add_def_conf6();
      bool text = Ipv6DevconfNames()[i] == "stable_secret";
      x->set_type(text ? img::CTL_STR : img::CTL_32);
      if (text) x->set_sarg("::1\n0");
    }
  };
  refused(newline, "netns-5.img: entry 0: net/ipv6/conf/default/stable_secret is not one line of at most 200 bytes");
  NetImages typed;
  typed.netns = [](img::netns_entry& e) { e.mutable_all_conf4(0)->set_type(img::CTL_STR); };
  refused(typed, "netns-5.img: entry 0: entry 0 (net/ipv4/conf/all/accept_local) is text: the kernel's is a number");
  NetImages longer;
  longer.netns = [](img::netns_entry& e) { e.add_unix_conf()->set_type(img::CTL_32); };
  refused(longer, "netns-5.img: entry 0: 1 sysctl entries lie past CRIU's lists");
  NetImages external;
  external.netns = [](img::netns_entry& e) { e.set_ext_key("extnet"); };
  refused(external, "netns-5.img: entry 0: the namespace is external (extnet)");
  NetImages old;
  old.netns = [](img::netns_entry& e) { e.add_def_conf(1); };
  refused(old, "netns-5.img: entry 0: uses older CRIU's device configuration (def_conf, all_conf)");

  rtmsg rtm{AF_INET, 16, 0, 0, RT_TABLE_MAIN, RTPROT_STATIC, RT_SCOPE_LINK, RTN_UNICAST, 0};
  std::string body;
  Put(body, &rtm, sizeof rtm);
  Attr(body, RTA_DST, kTen);
  NetImages route;
  route.raw = {{"route-5.img", Magic(0x45311224) + Message(RTM_NEWROUTE, body)}};
  refused(route, "route-5.img: entry 0: route 10.1.2.3/16 table main proto static type unicast was not made by the kernel");
  fib_rule_hdr rule{AF_INET, 0, 0, 0, 100, 0, 0, FR_ACT_TO_TBL, 0};
  std::string rbody;
  Put(rbody, &rule, sizeof rule);
  NetImages rules;
  rules.raw = {{"rule-5.img", Magic(0x45311224) + Message(RTM_NEWRULE, rbody)}};
  refused(rules, "rule-5.img: entry 0: rule priority 0 table 100 is not one of the rules a new namespace has");
  rule.flags = FIB_RULE_INVERT;
  rule.table = RT_TABLE_MAIN;
  rbody.clear();
  Put(rbody, &rule, sizeof rule);
  uint32_t prio = 32766;
  Attr(rbody, FRA_PRIORITY, std::string(reinterpret_cast<const char*>(&prio), 4));
  rules.raw = {{"rule-5.img", Magic(0x45311224) + Message(RTM_NEWRULE, rbody)}};
  refused(rules, "rule-5.img: entry 0: rule priority 32766 table 254 is not one of the rules a new namespace has");
  NetImages policy;
  policy.raw = {{"ip6tables-5.img", "*filter\n:INPUT DROP [0:0] ACCEPT \nCOMMIT\n"}};
  refused(policy, "ip6tables-5.img: line 2");
  NetImages firewall;
  firewall.raw = {{"iptables-5.img", "*filter\n:INPUT DROP [0:0]\nCOMMIT\n"}, {"nftables-5.img", "table inet t {\n}\n"}};
  refused(firewall, "iptables-5.img: line 2 (\":INPUT DROP [0:0]\") is a rule or policy: restore-orch restores no firewall");
  refused(firewall, "nftables-5.img: holds nftables rules: restore-orch restores no firewall");

  // A link other than the loopback, and a namespace without its images.
  test::ImageSet set = InNetNamespace({});
  auto dev = std::make_unique<img::net_device_entry>(static_cast<const img::net_device_entry&>(*set.at("netdev-5.img").entries[0].message));
  dev->set_type(img::VETH);
  dev->set_name("eth0");
  set.at("netdev-5.img").entries.push_back(Entry{std::move(dev), {}});
  std::string errors = Errors(Plan(set));
  EXPECT_NE(errors.find("netdev-5.img: entry 1: link eth0 (VETH): restore-orch restores only the loopback link"), std::string::npos) << errors;
  // An inventory that does not say which namespace is the caller's, while
  // the root task's has images: not restored into the caller's.
  set = InNetNamespace({});
  test::Mutable<img::inventory_entry>(set, "inventory.img", 0).mutable_root_ids()->clear_net_ns_id();
  errors = Errors(Plan(set));
  EXPECT_NE(errors.find("inventory.img: entry 0: names no network namespace outside the tree, while the root task's (id 5) has images of its own"),
            std::string::npos) << errors;
  set = InNetNamespace({});
  set.erase("netns-5.img");
  errors = Errors(Plan(set));
  EXPECT_NE(errors.find("netns-5.img: missing: the root task is in a network namespace of its own (id 5)"), std::string::npos) << errors;
}

}  // namespace
}  // namespace ro::images
