#include "sys/netlink.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/fib_rules.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>

namespace ro::sys {
namespace {

std::string Str(long long v) { return std::to_string(v); }

// Walks the attributes after `offset` bytes of payload: each must fit,
// and together they must fill the message. `cb` returns an error text or "".
Status ForEachAttribute(const nlmsghdr* nlh, size_t offset, const std::function<std::string(const nlattr*)>& cb) {
  const char* end = reinterpret_cast<const char*>(nlh) + nlh->nlmsg_len;
  const char* at = static_cast<const char*>(mnl_nlmsg_get_payload(nlh)) + MNL_ALIGN(offset);
  while (at < end) {
    const auto* attr = reinterpret_cast<const nlattr*>(at);
    int left = static_cast<int>(end - at);
    if (!mnl_attr_ok(attr, left)) return Fail("attribute at byte " + Str(at - reinterpret_cast<const char*>(nlh)) + " runs past the message");
    if (std::string problem = cb(attr); !problem.empty()) return Fail(problem);
    at += MNL_ALIGN(attr->nla_len);
  }
  return {};
}

std::string Bytes(const nlattr* a) {
  return std::string(static_cast<const char*>(mnl_attr_get_payload(a)), mnl_attr_get_payload_len(a));
}

// A NUL-terminated string attribute of at most `max` characters.
std::string String(const nlattr* a, size_t max, std::string& problem) {
  std::string s = Bytes(a);
  size_t nul = s.find('\0');
  if (nul == std::string::npos || nul > max) {
    problem = "a string attribute (type " + Str(mnl_attr_get_type(a)) + ") is not a NUL-terminated string of at most " + Str(max) + " bytes";
    return {};
  }
  return s.substr(0, nul);
}

Status CheckMessage(const void* message, size_t size, uint16_t type, size_t header, const char* name) {
  const auto* nlh = static_cast<const nlmsghdr*>(message);
  if (size < sizeof(nlmsghdr) || !mnl_nlmsg_ok(nlh, static_cast<int>(size))) return Fail("not a whole netlink message");
  if (nlh->nlmsg_type != type) return Fail("message type " + Str(nlh->nlmsg_type) + " is not " + name + " (" + Str(type) + ")");
  if (mnl_nlmsg_get_payload_len(nlh) < header) return Fail(std::string(name) + " message too short for its header");
  return {};
}

}  // namespace

std::string AddressText(uint8_t family, const std::string& bytes) {
  char text[INET6_ADDRSTRLEN] = {};
  if ((family == AF_INET && bytes.size() == 4) || (family == AF_INET6 && bytes.size() == 16)) {
    if (::inet_ntop(family, bytes.data(), text, sizeof text) != nullptr) return text;
  }
  return "(" + Str(static_cast<long long>(bytes.size())) + " bytes)";
}

std::string NetAddress::Text() const { return AddressText(family, Key()) + "/" + Str(prefixlen); }

bool SameAddress(const NetAddress& a, const NetAddress& b) {
  const uint32_t mask = kSettableAddressFlags | kSecondaryAddress;
  return a.family == b.family && a.Key() == b.Key() && a.prefixlen == b.prefixlen && a.scope == b.scope && a.label == b.label &&
         a.metric == b.metric &&
         (a.flags & mask) == (b.flags & mask) &&
         (a.valid_lft == 0xffffffff) == (b.valid_lft == 0xffffffff);
}

std::string NetRoute::Text() const {
  std::string text = dst.empty() ? std::string("default") : AddressText(family, dst) + "/" + Str(dst_len);
  // ip-route(8)'s names for the values rtnetlink.h defines (RTPROT_*, RTN_*).
  static const char* const kProtocols[] = {"unspec", "redirect", "kernel", "boot", "static"};
  static const char* const kTypes[] = {"unspec", "unicast", "local", "broadcast", "anycast", "multicast", "blackhole",
                                       "unreachable", "prohibit", "throw", "nat", "xresolve"};
  std::string proto = protocol < std::size(kProtocols) ? kProtocols[protocol] : Str(protocol);
  std::string kind = type < std::size(kTypes) ? kTypes[type] : Str(type);
  std::string table_name = table == RT_TABLE_MAIN ? "main" : table == RT_TABLE_LOCAL ? "local" : Str(table);
  return text + " table " + table_name + " proto " + proto + " type " + kind;
}

Result<NetAddress> ParseAddressMessage(const void* message, size_t size) {
  RO_TRY(CheckMessage(message, size, RTM_NEWADDR, sizeof(ifaddrmsg), "RTM_NEWADDR"));
  const auto* nlh = static_cast<const nlmsghdr*>(message);
  const auto* ifa = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(nlh));
  NetAddress a;
  a.family = ifa->ifa_family;
  a.prefixlen = ifa->ifa_prefixlen;
  a.scope = ifa->ifa_scope;
  a.flags = ifa->ifa_flags;
  a.ifindex = static_cast<int>(ifa->ifa_index);
  size_t width = a.family == AF_INET ? 4 : a.family == AF_INET6 ? 16 : 0;
  if (width == 0) return Fail("address family " + Str(a.family) + " is neither AF_INET nor AF_INET6");
  if (a.prefixlen > width * 8) return Fail("prefix length " + Str(a.prefixlen) + " is more than " + Str(width * 8) + " bits");
  auto sized = [&](const nlattr* attr, size_t want, const char* what, std::string& out) -> std::string {
    if (mnl_attr_get_payload_len(attr) != want) return std::string(what) + " is " + Str(mnl_attr_get_payload_len(attr)) + " bytes, not " + Str(want);
    out = Bytes(attr);
    return {};
  };
  Status attrs = ForEachAttribute(nlh, sizeof(ifaddrmsg), [&](const nlattr* attr) -> std::string {
    std::string problem;
    switch (mnl_attr_get_type(attr)) {
      case IFA_ADDRESS: return sized(attr, width, "IFA_ADDRESS", a.address);
      case IFA_LOCAL: return sized(attr, width, "IFA_LOCAL", a.local);
      case IFA_BROADCAST: return sized(attr, 4, "IFA_BROADCAST", a.broadcast);
      case IFA_LABEL: a.label = String(attr, IFNAMSIZ - 1, problem); return problem;
      case IFA_FLAGS:
        if (mnl_attr_get_payload_len(attr) != 4) return "IFA_FLAGS is not 4 bytes";
        a.flags = mnl_attr_get_u32(attr);
        return {};
      case IFA_CACHEINFO: {
        if (mnl_attr_get_payload_len(attr) != sizeof(ifa_cacheinfo)) return "IFA_CACHEINFO is not " + Str(sizeof(ifa_cacheinfo)) + " bytes";
        ifa_cacheinfo ci;
        std::memcpy(&ci, mnl_attr_get_payload(attr), sizeof ci);
        a.valid_lft = ci.ifa_valid;
        a.preferred_lft = ci.ifa_prefered;
        return {};
      }
      case IFA_PROTO:
        if (mnl_attr_get_payload_len(attr) != 1) return "IFA_PROTO is not 1 byte";
        a.proto = mnl_attr_get_u8(attr);
        return {};
      // What the kernel adds for information only: not asked for on restore.
      case IFA_RT_PRIORITY:
        if (mnl_attr_get_payload_len(attr) != 4) return "IFA_RT_PRIORITY is not 4 bytes";
        a.metric = mnl_attr_get_u32(attr);
        return {};
      case IFA_MULTICAST: case IFA_ANYCAST: case IFA_TARGET_NETNSID: return {};
      default: return "attribute type " + Str(mnl_attr_get_type(attr)) + " is not one an address has";
    }
  });
  if (!attrs.ok()) return std::move(attrs).error();
  if (a.Key().empty()) return Fail("the address has neither IFA_LOCAL nor IFA_ADDRESS");
  if (a.family == AF_INET6 && !a.broadcast.empty()) return Fail("an AF_INET6 address has IFA_BROADCAST");
  return a;
}

Result<NetRoute> ParseRouteMessage(const void* message, size_t size) {
  RO_TRY(CheckMessage(message, size, RTM_NEWROUTE, sizeof(rtmsg), "RTM_NEWROUTE"));
  const auto* nlh = static_cast<const nlmsghdr*>(message);
  const auto* rtm = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(nlh));
  NetRoute r;
  r.family = rtm->rtm_family;
  r.dst_len = rtm->rtm_dst_len;
  r.protocol = rtm->rtm_protocol;
  r.type = rtm->rtm_type;
  r.table = rtm->rtm_table;
  r.key.assign(static_cast<const char*>(mnl_nlmsg_get_payload(nlh)), sizeof(rtmsg));
  Status attrs = ForEachAttribute(nlh, sizeof(rtmsg), [&](const nlattr* attr) -> std::string {
    if (mnl_attr_get_type(attr) != RTA_CACHEINFO) r.key.append(reinterpret_cast<const char*>(attr), MNL_ALIGN(attr->nla_len));
    switch (mnl_attr_get_type(attr)) {
      case RTA_DST: r.dst = Bytes(attr); return {};
      case RTA_TABLE:
        if (mnl_attr_get_payload_len(attr) != 4) return "RTA_TABLE is not 4 bytes";
        r.table = mnl_attr_get_u32(attr);
        return {};
      case RTA_OIF:
        if (mnl_attr_get_payload_len(attr) != 4) return "RTA_OIF is not 4 bytes";
        r.oif = static_cast<int>(mnl_attr_get_u32(attr));
        return {};
      default: return {};
    }
  });
  if (!attrs.ok()) return std::move(attrs).error();
  return r;
}

Result<std::vector<std::string>> SplitMessages(const std::string& bytes) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < bytes.size()) {
    if (bytes.size() - at < sizeof(nlmsghdr)) return Fail("a netlink message header at byte " + Str(at) + " runs past the end");
    nlmsghdr h;
    std::memcpy(&h, bytes.data() + at, sizeof h);
    if (h.nlmsg_len < sizeof(nlmsghdr) || h.nlmsg_len > bytes.size() - at) {
      return Fail("the netlink message at byte " + Str(at) + " says it is " + Str(h.nlmsg_len) + " bytes long, which does not fit");
    }
    out.push_back(bytes.substr(at, h.nlmsg_len));
    at += NLMSG_ALIGN(h.nlmsg_len);
  }
  return out;
}

NetlinkSocket::NetlinkSocket(mnl_socket* s) : socket_(s) {}
NetlinkSocket::NetlinkSocket(NetlinkSocket&& o) noexcept : socket_(o.socket_), seq_(o.seq_) { o.socket_ = nullptr; }
NetlinkSocket& NetlinkSocket::operator=(NetlinkSocket&& o) noexcept {
  if (this != &o) {
    if (socket_ != nullptr) mnl_socket_close(socket_);
    socket_ = o.socket_;
    seq_ = o.seq_;
    o.socket_ = nullptr;
  }
  return *this;
}
NetlinkSocket::~NetlinkSocket() {
  if (socket_ != nullptr) mnl_socket_close(socket_);
}

Result<NetlinkSocket> NetlinkSocket::Open(int protocol) {
  mnl_socket* s = mnl_socket_open2(protocol, SOCK_CLOEXEC);
  if (s == nullptr) return SysError("socket(AF_NETLINK, " + Str(protocol) + ")");
  NetlinkSocket out(s);
  if (mnl_socket_bind(s, 0, MNL_SOCKET_AUTOPID) != 0) return SysError("bind a netlink socket");
  return out;
}

Result<std::vector<std::string>> NetlinkSocket::Dump(uint16_t type, const void* header, size_t header_size, const std::string& what) {
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE > 32768 ? MNL_SOCKET_BUFFER_SIZE : 32768);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  nlh->nlmsg_seq = ++seq_;
  std::memcpy(mnl_nlmsg_put_extra_header(nlh, header_size), header, header_size);
  if (mnl_socket_sendto(socket_, nlh, nlh->nlmsg_len) < 0) return SysError("send the dump request for " + what);
  std::vector<std::string> out;
  const unsigned portid = mnl_socket_get_portid(socket_);
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(socket_, buf.data(), buf.size());
    if (n < 0) return SysError("receive " + what);
    int left = static_cast<int>(n);
    for (auto* m = reinterpret_cast<nlmsghdr*>(buf.data()); mnl_nlmsg_ok(m, left); m = mnl_nlmsg_next(m, &left)) {
      if (m->nlmsg_seq != seq_ || m->nlmsg_pid != portid) continue;
      if (m->nlmsg_type == NLMSG_DONE) return out;
      if (m->nlmsg_type == NLMSG_ERROR) {
        const auto* e = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(m));
        return SysError("dump " + what, e->error < 0 ? -e->error : EPROTO);
      }
      out.emplace_back(reinterpret_cast<const char*>(m), m->nlmsg_len);
    }
  }
}

Result<std::vector<NetLink>> NetlinkSocket::Links() {
  rtgenmsg g{AF_UNSPEC};
  RO_ASSIGN_OR_RETURN(std::vector<std::string> messages, Dump(RTM_GETLINK, &g, sizeof g, "the links"));
  std::vector<NetLink> out;
  for (const std::string& m : messages) {
    const auto* nlh = reinterpret_cast<const nlmsghdr*>(m.data());
    if (nlh->nlmsg_type != RTM_NEWLINK || mnl_nlmsg_get_payload_len(nlh) < sizeof(ifinfomsg)) continue;
    const auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
    NetLink l;
    l.ifindex = ifi->ifi_index;
    l.type = ifi->ifi_type;
    l.flags = ifi->ifi_flags;
    mnl_attr_parse(nlh, sizeof(ifinfomsg), [](const nlattr* a, void* data) -> int {
      auto* link = static_cast<NetLink*>(data);
      switch (mnl_attr_get_type(a)) {
        case IFLA_IFNAME: if (mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0) link->name = mnl_attr_get_str(a); break;
        case IFLA_MTU: if (mnl_attr_validate(a, MNL_TYPE_U32) == 0) link->mtu = mnl_attr_get_u32(a); break;
        case IFLA_ADDRESS: link->address = Bytes(a); break;
        case IFLA_TXQLEN: if (mnl_attr_validate(a, MNL_TYPE_U32) == 0) link->txqlen = mnl_attr_get_u32(a); break;
        case IFLA_GROUP: if (mnl_attr_validate(a, MNL_TYPE_U32) == 0) link->group = mnl_attr_get_u32(a); break;
        case IFLA_GSO_MAX_SIZE: if (mnl_attr_validate(a, MNL_TYPE_U32) == 0) link->gso_max_size = mnl_attr_get_u32(a); break;
        case IFLA_GRO_MAX_SIZE: if (mnl_attr_validate(a, MNL_TYPE_U32) == 0) link->gro_max_size = mnl_attr_get_u32(a); break;
        case IFLA_IFALIAS: link->alias = std::string(static_cast<const char*>(mnl_attr_get_payload(a)), strnlen(static_cast<const char*>(mnl_attr_get_payload(a)), mnl_attr_get_payload_len(a))); break;
        case IFLA_QDISC: link->qdisc = std::string(static_cast<const char*>(mnl_attr_get_payload(a)), strnlen(static_cast<const char*>(mnl_attr_get_payload(a)), mnl_attr_get_payload_len(a))); break;
        case IFLA_LINKINFO:
          mnl_attr_parse_nested(a, [](const nlattr* info, void* d) -> int {
            if (mnl_attr_get_type(info) == IFLA_INFO_KIND && mnl_attr_validate(info, MNL_TYPE_STRING) == 0) {
              static_cast<NetLink*>(d)->kind = std::string(mnl_attr_get_str(info), strnlen(mnl_attr_get_str(info), mnl_attr_get_payload_len(info)));
            }
            return MNL_CB_OK;
          }, link);
          break;
        default: break;
      }
      return MNL_CB_OK;
    }, &l);
    out.push_back(std::move(l));
  }
  return out;
}

Result<std::vector<std::string>> NetlinkSocket::AddressMessages() {
  ifaddrmsg ifa{};
  ifa.ifa_family = AF_UNSPEC;
  return Dump(RTM_GETADDR, &ifa, sizeof ifa, "the addresses");
}

Result<std::vector<NetAddress>> NetlinkSocket::Addresses() {
  RO_ASSIGN_OR_RETURN(std::vector<std::string> messages, AddressMessages());
  std::vector<NetAddress> out;
  for (const std::string& m : messages) {
    auto a = ParseAddressMessage(m.data(), m.size());
    if (!a.ok()) return std::move(a).error().Within("an address the kernel sent");
    out.push_back(std::move(a).value());
  }
  return out;
}

Result<std::vector<NetRoute>> NetlinkSocket::Routes(uint8_t family) {
  rtmsg rtm{};
  rtm.rtm_family = family;
  RO_ASSIGN_OR_RETURN(std::vector<std::string> messages, Dump(RTM_GETROUTE, &rtm, sizeof rtm, "the routes"));
  std::vector<NetRoute> out;
  for (const std::string& m : messages) {
    auto r = ParseRouteMessage(m.data(), m.size());
    if (!r.ok()) return std::move(r).error().Within("a route the kernel sent");
    out.push_back(std::move(r).value());
  }
  return out;
}

Result<std::vector<std::string>> NetlinkSocket::Rules(uint8_t family) {
  fib_rule_hdr h{};
  h.family = family;
  RO_ASSIGN_OR_RETURN(std::vector<std::string> messages, Dump(RTM_GETRULE, &h, sizeof h, "the rules"));
  for (std::string& m : messages) m.erase(0, NLMSG_HDRLEN);
  return messages;
}

Result<std::vector<std::string>> NetlinkSocket::NftTables() {
  nfgenmsg g{};
  g.nfgen_family = AF_UNSPEC;
  g.version = NFNETLINK_V0;
  auto messages = Dump(static_cast<uint16_t>((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE), &g, sizeof g, "the nftables tables");
  if (!messages.ok()) {
    int err = messages.error().err;
    if (err == EOPNOTSUPP || err == ENOENT || err == EPROTONOSUPPORT || err == EAFNOSUPPORT) return std::vector<std::string>{};
    return std::move(messages).error();
  }
  std::vector<std::string> names;
  for (const std::string& m : *messages) {
    const auto* nlh = reinterpret_cast<const nlmsghdr*>(m.data());
    std::string name = "(unnamed)";
    mnl_attr_parse(nlh, sizeof(nfgenmsg), [](const nlattr* a, void* data) -> int {
      if (mnl_attr_get_type(a) == NFTA_TABLE_NAME && mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0) {
        *static_cast<std::string*>(data) = mnl_attr_get_str(a);
      }
      return MNL_CB_OK;
    }, &name);
    names.push_back(name);
  }
  return names;
}

Status NetlinkSocket::Ack(const void* request, size_t size, const std::string& what) {
  if (mnl_socket_sendto(socket_, request, size) < 0) return SysError("send: " + what);
  char buf[8192];
  const unsigned portid = mnl_socket_get_portid(socket_);
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(socket_, buf, sizeof buf);
    if (n < 0) return SysError(what);
    int left = static_cast<int>(n);
    for (auto* m = reinterpret_cast<nlmsghdr*>(buf); mnl_nlmsg_ok(m, left); m = mnl_nlmsg_next(m, &left)) {
      if (m->nlmsg_seq != seq_ || m->nlmsg_pid != portid || m->nlmsg_type != NLMSG_ERROR) continue;
      const auto* e = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(m));
      if (e->error == 0) return {};
      return SysError(what, -e->error);
    }
  }
}

Status NetlinkSocket::SetLink(int ifindex, uint32_t flags, uint32_t change, std::optional<uint32_t> mtu) {
  char buf[512];
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = RTM_NEWLINK;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  nlh->nlmsg_seq = ++seq_;
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = ifindex;
  ifi->ifi_flags = flags & change;
  ifi->ifi_change = change;
  if (mtu) mnl_attr_put_u32(nlh, IFLA_MTU, *mtu);
  return Ack(nlh, nlh->nlmsg_len, "set the flags and MTU of link " + Str(ifindex));
}

namespace {

nlmsghdr* PutAddress(char* buf, uint16_t type, uint16_t flags, uint32_t seq, const NetAddress& a) {
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = flags;
  nlh->nlmsg_seq = seq;
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = a.family;
  ifa->ifa_prefixlen = a.prefixlen;
  ifa->ifa_scope = a.scope;
  ifa->ifa_flags = static_cast<uint8_t>(a.flags & kSettableAddressFlags & 0xff);
  ifa->ifa_index = static_cast<uint32_t>(a.ifindex);
  if (!a.local.empty()) mnl_attr_put(nlh, IFA_LOCAL, a.local.size(), a.local.data());
  if (!a.address.empty()) mnl_attr_put(nlh, IFA_ADDRESS, a.address.size(), a.address.data());
  return nlh;
}

}  // namespace

Status NetlinkSocket::AddAddress(const NetAddress& a) {
  char buf[512];
  nlmsghdr* nlh = PutAddress(buf, RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE, ++seq_, a);
  if (!a.broadcast.empty()) mnl_attr_put(nlh, IFA_BROADCAST, a.broadcast.size(), a.broadcast.data());
  if (!a.label.empty()) mnl_attr_put_strz(nlh, IFA_LABEL, a.label.c_str());
  mnl_attr_put_u32(nlh, IFA_FLAGS, a.flags & kSettableAddressFlags);
  ifa_cacheinfo ci{};
  ci.ifa_valid = a.valid_lft;
  ci.ifa_prefered = a.preferred_lft;
  mnl_attr_put(nlh, IFA_CACHEINFO, sizeof ci, &ci);
  if (a.proto) mnl_attr_put_u8(nlh, IFA_PROTO, *a.proto);
  if (a.metric != 0) mnl_attr_put_u32(nlh, IFA_RT_PRIORITY, a.metric);
  return Ack(nlh, nlh->nlmsg_len, "add address " + a.Text() + " to link " + Str(a.ifindex));
}

Status NetlinkSocket::DeleteAddress(const NetAddress& a) {
  char buf[512];
  nlmsghdr* nlh = PutAddress(buf, RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK, ++seq_, a);
  return Ack(nlh, nlh->nlmsg_len, "delete address " + a.Text() + " of link " + Str(a.ifindex));
}

}  // namespace ro::sys
