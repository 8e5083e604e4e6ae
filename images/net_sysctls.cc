#include "images/net_sysctls.h"

#include <charconv>
#include <climits>

namespace ro::images {
namespace {

constexpr size_t kMaxStringSysctl = 200;  // CRIU's MAX_STR_CONF_LEN

bool ParseInt32(const std::string& text, int32_t& out) {
  long long v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < INT32_MIN || v > INT32_MAX) return false;
  out = static_cast<int32_t>(v);
  return true;
}

img::sysctl_entry Entry(const std::map<std::string, std::string>& live, const std::string& path, bool text) {
  img::sysctl_entry e;
  e.set_type(text ? img::CTL_STR : img::CTL_32);
  auto it = live.find(path);
  if (it == live.end()) return e;
  int32_t v = 0;
  if (text) {
    e.set_sarg(it->second);
  } else if (ParseInt32(it->second, v)) {
    e.set_iarg(v);
  }
  return e;
}

}  // namespace

const std::vector<std::string>& Ipv4DevconfNames() {
  static const std::vector<std::string> names = {
      "accept_local", "accept_redirects", "accept_source_route", "arp_accept", "arp_announce", "arp_filter",
      "arp_ignore", "arp_notify", "bootp_relay", "disable_policy", "disable_xfrm", "force_igmp_version",
      "forwarding", "igmpv2_unsolicited_report_interval", "igmpv3_unsolicited_report_interval", "log_martians",
      "medium_id", "promote_secondaries", "proxy_arp", "proxy_arp_pvlan", "route_localnet", "rp_filter",
      "secure_redirects", "send_redirects", "shared_media", "src_valid_mark", "tag", "ignore_routes_with_linkdown",
      "drop_gratuitous_arp", "drop_unicast_in_l2_multicast"};
  return names;
}

const std::vector<std::string>& Ipv6DevconfNames() {
  static const std::vector<std::string> names = {
      "accept_dad", "accept_ra", "accept_ra_defrtr", "accept_ra_from_local", "accept_ra_min_hop_limit", "accept_ra_mtu",
      "accept_ra_pinfo", "accept_ra_rt_info_max_plen", "accept_ra_rtr_pref", "accept_redirects", "accept_source_route",
      "autoconf", "dad_transmits", "disable_ipv6", "drop_unicast_in_l2_multicast", "drop_unsolicited_na",
      "force_mld_version", "force_tllao", "forwarding", "hop_limit", "ignore_routes_with_linkdown", "keep_addr_on_down",
      "max_addresses", "max_desync_factor", "mldv1_unsolicited_report_interval", "mldv2_unsolicited_report_interval",
      "mtu", "ndisc_notify", "optimistic_dad", "proxy_ndp", "regen_max_retry", "router_probe_interval",
      "router_solicitation_delay", "router_solicitation_interval", "router_solicitations", "stable_secret",
      "suppress_frag_ndisc", "temp_prefered_lft", "temp_valid_lft", "use_oif_addrs_only", "use_optimistic",
      "use_tempaddr"};
  return names;
}

const std::vector<std::string>& UnixSysctlNames() {
  static const std::vector<std::string> names = {"max_dgram_qlen"};
  return names;
}

std::vector<img::sysctl_entry> DevconfEntries(const std::map<std::string, std::string>& live, const std::string& proto,
                                              const std::string& target) {
  std::vector<img::sysctl_entry> out;
  const auto& names = proto == "ipv4" ? Ipv4DevconfNames() : Ipv6DevconfNames();
  for (const std::string& name : names) {
    out.push_back(Entry(live, proto + "/conf/" + target + "/" + name, name == "stable_secret"));
  }
  return out;
}

std::vector<img::sysctl_entry> UnixEntries(const std::map<std::string, std::string>& live) {
  std::vector<img::sysctl_entry> out;
  for (const std::string& name : UnixSysctlNames()) {
    if (live.count("unix/" + name) == 0) return {};
    out.push_back(Entry(live, "unix/" + name, false));
  }
  return out;
}

std::set<std::string> KeptNetSysctls(const std::string& link) {
  std::set<std::string> kept;
  for (const char* target : {"all", "default"}) {
    for (const std::string& n : Ipv4DevconfNames()) kept.insert(std::string("ipv4/conf/") + target + "/" + n);
    for (const std::string& n : Ipv6DevconfNames()) kept.insert(std::string("ipv6/conf/") + target + "/" + n);
  }
  for (const std::string& n : Ipv4DevconfNames()) kept.insert("ipv4/conf/" + link + "/" + n);
  for (const std::string& n : Ipv6DevconfNames()) kept.insert("ipv6/conf/" + link + "/" + n);
  for (const std::string& n : UnixSysctlNames()) kept.insert("unix/" + n);
  return kept;
}

std::vector<std::pair<std::string, std::string>> DevconfToWrite(const google::protobuf::RepeatedPtrField<img::sysctl_entry>& entries,
                                                                 const std::vector<std::string>& names, const std::string& dir,
                                                                 std::vector<std::string>& problems, size_t& unknown) {
  std::vector<std::pair<std::string, std::string>> out;
  std::vector<std::pair<std::string, std::string>> last;
  for (int i = 0; i < entries.size(); ++i) {
    if (static_cast<size_t>(i) >= names.size()) {
      ++unknown;
      continue;
    }
    const img::sysctl_entry& e = entries[i];
    const std::string path = dir + "/" + names[i];
    const bool text = names[i] == "stable_secret";
    if ((e.type() == img::CTL_STR) != text) {
      problems.push_back("entry " + std::to_string(i) + " (" + path + ") is " + (text ? "a number" : "text") + ": the kernel's is " +
                         (text ? "text" : "a number"));
      continue;
    }
    if (text && e.has_sarg()) {
      const std::string& s = e.sarg();
      if (s.size() > kMaxStringSysctl || s.find_first_of(std::string("\n\0", 2)) != std::string::npos) {
        problems.push_back(path + " is not one line of at most " + std::to_string(kMaxStringSysctl) + " bytes");
        continue;
      }
      out.emplace_back(path, s);
    } else if (!text && e.has_iarg()) {
      (names[i] == "accept_redirects" ? last : out).emplace_back(path, std::to_string(e.iarg()));
    }
  }
  out.insert(out.end(), last.begin(), last.end());
  return out;
}

std::vector<std::pair<std::string, std::string>> NetSysctlsToWrite(const img::netns_entry& ns, const img::net_device_entry& link,
                                                                   std::vector<std::string>& netns_problems,
                                                                   std::vector<std::string>& link_problems, size_t& unknown) {
  std::vector<std::pair<std::string, std::string>> out;
  auto add = [&](const google::protobuf::RepeatedPtrField<img::sysctl_entry>& entries, const std::vector<std::string>& names,
                 const std::string& dir, std::vector<std::string>& problems) {
    for (auto& kv : DevconfToWrite(entries, names, dir, problems, unknown)) out.push_back(std::move(kv));
  };
  add(ns.all_conf4(), Ipv4DevconfNames(), "net/ipv4/conf/all", netns_problems);
  add(ns.all_conf6(), Ipv6DevconfNames(), "net/ipv6/conf/all", netns_problems);
  add(ns.def_conf4(), Ipv4DevconfNames(), "net/ipv4/conf/default", netns_problems);
  add(ns.def_conf6(), Ipv6DevconfNames(), "net/ipv6/conf/default", netns_problems);
  add(link.conf4(), Ipv4DevconfNames(), "net/ipv4/conf/" + link.name(), link_problems);
  add(link.conf6(), Ipv6DevconfNames(), "net/ipv6/conf/" + link.name(), link_problems);
  for (int i = 0; i < ns.unix_conf_size(); ++i) {
    const img::sysctl_entry& u = ns.unix_conf(i);
    if (static_cast<size_t>(i) >= UnixSysctlNames().size()) {
      ++unknown;
    } else if (u.type() != img::CTL_32) {
      netns_problems.push_back("unix_conf entry " + std::to_string(i) + " (net/unix/" + UnixSysctlNames()[i] + ") is not a number");
    } else if (u.has_iarg()) {
      out.emplace_back("net/unix/" + UnixSysctlNames()[i], std::to_string(u.iarg()));
    }
  }
  return out;
}

}  // namespace ro::images
