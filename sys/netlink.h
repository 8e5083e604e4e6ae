// A network namespace through rtnetlink (include/uapi/linux/rtnetlink.h,
// if_link.h, if_addr.h) and nfnetlink, with libmnl for the messages: its
// links, addresses, routes and rules read, a link's flags and MTU set, and
// addresses added and removed. Every call acts in the network namespace the
// socket was opened in.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sys/status.h"

struct mnl_socket;

namespace ro::sys {

// One link (RTM_NEWLINK).
struct NetLink {
  int ifindex = 0;
  std::string name;    // IFLA_IFNAME
  std::string kind;    // IFLA_LINKINFO's IFLA_INFO_KIND ("veth", "bridge"...), empty when the link has none (lo)
  uint16_t type = 0;   // ARPHRD_* (ARPHRD_LOOPBACK for lo)
  uint32_t flags = 0;  // IFF_* (include/uapi/linux/if.h)
  uint32_t mtu = 0;    // bytes
  std::string address;  // IFLA_ADDRESS: the hardware address's bytes
  uint32_t txqlen = 0;  // IFLA_TXQLEN
  uint32_t group = 0;   // IFLA_GROUP
  std::string alias;    // IFLA_IFALIAS
  std::string qdisc;    // IFLA_QDISC: the root queueing discipline's kind ("noqueue")
  uint32_t gso_max_size = 0, gro_max_size = 0;  // IFLA_GSO_MAX_SIZE, IFLA_GRO_MAX_SIZE: bytes
};

// The flags of a link that dev_change_flags() takes from user space
// (net/core/dev.c); the others (IFF_RUNNING, IFF_LOWER_UP...) are state.
inline constexpr uint32_t kSettableLinkFlags = 0x1 /*UP*/ | 0x4 /*DEBUG*/ | 0x20 /*NOTRAILERS*/ | 0x80 /*NOARP*/ |
                                               0x100 /*PROMISC*/ | 0x200 /*ALLMULTI*/ | 0x1000 /*MULTICAST*/ | 0x8000 /*DYNAMIC*/;

// An address of `family` (AF_INET: 4 bytes, AF_INET6: 16) as inet_ntop(3)
// writes it; "(N bytes)" for any other size.
std::string AddressText(uint8_t family, const std::string& bytes);

// One address (RTM_NEWADDR, struct ifaddrmsg and its attributes).
struct NetAddress {
  uint8_t family = 0;     // AF_INET or AF_INET6
  uint8_t prefixlen = 0;  // bits: at most 32 (AF_INET) or 128
  uint8_t scope = 0;      // RT_SCOPE_*
  uint32_t flags = 0;     // IFA_F_*: ifa_flags, or IFA_FLAGS when present (32 bits)
  int ifindex = 0;
  std::string local;      // IFA_LOCAL: 4 or 16 bytes, or empty
  std::string address;    // IFA_ADDRESS: 4 or 16 bytes, or empty
  std::string broadcast;  // IFA_BROADCAST (AF_INET): 4 bytes, or empty
  std::string label;      // IFA_LABEL: at most 15 bytes (IFNAMSIZ - 1), or empty
  // IFA_CACHEINFO's lifetimes in seconds; 0xffffffff (INFINITY_LIFE_TIME) is forever.
  uint32_t valid_lft = 0xffffffff;
  uint32_t preferred_lft = 0xffffffff;
  std::optional<uint8_t> proto;  // IFA_PROTO (IFAPROT_*), kernels from 5.18
  uint32_t metric = 0;           // IFA_RT_PRIORITY: the metric of the prefix route the address makes

  // The address that names it: IFA_LOCAL, else IFA_ADDRESS.
  const std::string& Key() const { return local.empty() ? address : local; }
  // "127.0.0.1/8", "::1/128"
  std::string Text() const;
};

// Whether two addresses are the same as far as a restore makes them:
// family, address, prefix, scope, label, the flags user space sets, and
// whether they are permanent (the lifetimes themselves count down).
bool SameAddress(const NetAddress& a, const NetAddress& b);
inline constexpr uint32_t kSecondaryAddress = 0x01;  // IFA_F_SECONDARY: an IPv4 address that is not its subnet's primary

// The flags of an address that user space may ask for (net/ipv4/devinet.c,
// net/ipv6/addrconf.c); the rest (IFA_F_TENTATIVE, IFA_F_DADFAILED, ...,
// IFA_F_PERMANENT, which follows from the lifetimes) are the kernel's.
inline constexpr uint32_t kSettableAddressFlags = 0x02 /*NODAD*/ | 0x10 /*HOMEADDRESS*/ | 0x100 /*MANAGETEMPADDR*/ |
                                                  0x200 /*NOPREFIXROUTE*/ | 0x400 /*MCAUTOJOIN*/;

// One route (RTM_NEWROUTE): what a refusal names.
struct NetRoute {
  uint8_t family = 0;
  uint8_t dst_len = 0;
  uint8_t protocol = 0;  // RTPROT_* (RTPROT_KERNEL: made by the kernel from an address or a link)
  uint8_t type = 0;      // RTN_*
  uint32_t table = 0;    // RTA_TABLE, else rtm_table
  std::string dst;       // RTA_DST bytes, empty for a default route
  int oif = 0;
  // Every attribute but RTA_CACHEINFO (use counts and expiry, which change
  // by themselves), with the header: equal for two routes exactly when
  // one namespace's route is the other's.
  std::string key;
  std::string Text() const;  // "10.0.0.0/8 table 254 proto 4"
};

// One message of a netlink stream as `ip addr save` writes it (a whole
// nlmsghdr and payload): checks that it is an RTM_NEWADDR whose
// attributes fill it exactly and have the sizes the kernel gives them.
// Errors say what is wrong (for a line naming the image and the entry).
Result<NetAddress> ParseAddressMessage(const void* message, size_t size);
// The same for RTM_NEWROUTE.
Result<NetRoute> ParseRouteMessage(const void* message, size_t size);
// Splits a buffer of whole netlink messages; a message that runs past the
// end, or a size not a multiple of 4, is an error naming its offset.
Result<std::vector<std::string>> SplitMessages(const std::string& bytes);

// An rtnetlink (or nfnetlink) socket of the calling thread's network
// namespace. Not copyable; closed on destruction.
class NetlinkSocket {
 public:
  // protocol: NETLINK_ROUTE or NETLINK_NETFILTER. Errors: socket, bind.
  static Result<NetlinkSocket> Open(int protocol);
  NetlinkSocket(NetlinkSocket&&) noexcept;
  NetlinkSocket& operator=(NetlinkSocket&&) noexcept;
  ~NetlinkSocket();

  // A dump request (NLM_F_DUMP) of `type` (RTM_GETLINK, RTM_GETADDR...)
  // with `header` (struct rtgenmsg, ifaddrmsg... as the type wants) as its
  // payload: every reply message whole, in order. Errors: the kernel's
  // (named by `what`), send, receive.
  Result<std::vector<std::string>> Dump(uint16_t type, const void* header, size_t header_size, const std::string& what);

  Result<std::vector<NetLink>> Links();
  // Every address of the namespace, as the kernel sends them (whole
  // messages, for ifaddr images) and parsed.
  Result<std::vector<std::string>> AddressMessages();
  Result<std::vector<NetAddress>> Addresses();
  Result<std::vector<NetRoute>> Routes(uint8_t family);
  // Every rule of `family`, each message's payload (no nlmsghdr): two
  // namespaces have the same rules exactly when the lists are equal.
  Result<std::vector<std::string>> Rules(uint8_t family);
  // The names of the namespace's nftables tables (on a NETLINK_NETFILTER
  // socket); none when the kernel has no nf_tables.
  Result<std::vector<std::string>> NftTables();

  // Sets `change` bits of the link's flags to those of `flags`, and its MTU
  // when `mtu` is set. Errors: the kernel's, naming the link.
  Status SetLink(int ifindex, uint32_t flags, uint32_t change, std::optional<uint32_t> mtu);
  // Adds `a` (NLM_F_CREATE | NLM_F_REPLACE: an address that exists gets
  // a's flags and lifetimes), or deletes it.
  Status AddAddress(const NetAddress& a);
  Status DeleteAddress(const NetAddress& a);

 private:
  explicit NetlinkSocket(mnl_socket* s);
  Status Ack(const void* request, size_t size, const std::string& what);

  mnl_socket* socket_ = nullptr;
  uint32_t seq_ = 1;
};

}  // namespace ro::sys
