// The sysctls of a network namespace as CRIU keeps them: each device
// configuration (net/ipv4/conf/<all|default|lo>/*, net/ipv6/conf/...) as a
// list of sysctl_entry by position in CRIU's name lists (criu/net.c,
// devconfs4 and devconfs6), and net/unix/max_dgram_qlen (unix_conf).
#pragma once

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "images/proto/netdev.pb.h"
#include "images/proto/sysctl.pb.h"

namespace ro::images {

// CRIU's lists, in CRIU's order: an image's entry N is the Nth name.
const std::vector<std::string>& Ipv4DevconfNames();
const std::vector<std::string>& Ipv6DevconfNames();
const std::vector<std::string>& UnixSysctlNames();

// What a dump writes for one device configuration: `proto` "ipv4" or
// "ipv6", `target` "all", "default" or a link's name; `live` maps paths
// under /proc/sys/net ("ipv4/conf/all/forwarding") to their text. One entry
// per name of the list, typed as CRIU types it (stable_secret is text,
// the rest 32-bit), without a value when `live` lacks the path or its text
// is not a number.
std::vector<img::sysctl_entry> DevconfEntries(const std::map<std::string, std::string>& live, const std::string& proto,
                                              const std::string& target);
// unix_conf: net/unix/max_dgram_qlen, empty when `live` lacks it.
std::vector<img::sysctl_entry> UnixEntries(const std::map<std::string, std::string>& live);

// The paths under /proc/sys/net (as DevconfEntries' keys) that the images
// above hold for a namespace whose only link is `link`.
std::set<std::string> KeptNetSysctls(const std::string& link);

// What a restore writes for `entries` of one configuration (positional, as
// above; `names` the list): path under /proc/sys -> text, entries without a
// value skipped, accept_redirects last (CRIU: it must follow forwarding).
// Appends to `problems` an entry of the wrong type or a string with a
// newline or NUL or longer than 200 bytes (one line each, naming the
// sysctl); an entry past the end of the list is named in `unknown`.
std::vector<std::pair<std::string, std::string>> DevconfToWrite(const google::protobuf::RepeatedPtrField<img::sysctl_entry>& entries,
                                                                 const std::vector<std::string>& names, const std::string& dir,
                                                                 std::vector<std::string>& problems, size_t& unknown);

// What a restore writes for a namespace (netns-<id>.img) and its loopback
// link (netdev-<id>.img), in order: all, default (IPv4 then IPv6: all
// first, as writing it changes the others), the link's, unix_conf. What
// DevconfToWrite finds wrong goes to `netns_problems` or `link_problems`
// by the image it is in; entries past CRIU's lists are counted in `unknown`.
std::vector<std::pair<std::string, std::string>> NetSysctlsToWrite(const img::netns_entry& ns, const img::net_device_entry& link,
                                                                   std::vector<std::string>& netns_problems,
                                                                   std::vector<std::string>& link_problems, size_t& unknown);

}  // namespace ro::images
