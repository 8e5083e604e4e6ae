// verify, namespaces: the tree's UTS, IPC and network namespaces (its own,
// with the images' host and domain name or sysctls, or the caller's), each
// shared by every task; an IPC namespace of its own holds the images'
// System V objects (ipc_objects.cc) and no POSIX message queue (none is
// restored); a network namespace of its own holds the loopback with the
// images' flags, MTU and addresses, no route, rule or firewall table a new
// one lacks, and the images' sysctls.
#include <fmt/format.h>

#include <map>

#include "images/ipc_sysctls.h"
#include "orchestrator/verify/verifier.h"
#include "sys/namespaces.h"
#include "sys/netlink.h"

namespace ro::verify {

void Verifier::CompareNamespaces() {
  CompareUts();
  CompareIpc();
  CompareNet();
}

// Whether the root task's namespace of `kind` is its own, as the images
// say (`own_wanted`); every task in the root task's. The root's inode, or
// nullopt when it could not be read.
std::optional<ino_t> Verifier::CompareSharing(const char* kind, const char* name, bool own_wanted) {
  auto own = sys::NamespaceInode(0, kind);
  auto tree = sys::NamespaceInode(root_, kind);
  const std::string root = "task " + std::to_string(plan_.tasks.empty() ? 0 : plan_.tasks.front().pid);
  if (!own.ok() || !tree.ok()) {
    Diff(root + "'s " + name + " namespace: " + (own.ok() ? tree : own).error().ToString());
    return std::nullopt;
  }
  if (!own_wanted && *tree != *own) Diff(root + ": has its own " + name + " namespace, the images have it share the caller's");
  if (own_wanted && *tree == *own) Diff(root + ": shares the caller's " + name + " namespace, the images give it one of its own");
  for (const auto& [pid, live] : live_) {
    auto its = sys::NamespaceInode(live.info.outer, kind);
    if (its.ok() && *its != *tree) Diff("task " + std::to_string(pid) + ": in another " + name + " namespace than the root task");
  }
  return *tree != *own ? std::optional<ino_t>(*tree) : std::nullopt;
}

void Verifier::CompareIpc() {
  std::optional<ino_t> tree = CompareSharing("ipc", "IPC", plan_.ns.ipc.has_value());
  if (!tree || !plan_.ns.ipc) return;
  const std::string root = "task " + std::to_string(plan_.tasks.empty() ? 0 : plan_.tasks.front().pid);
  // Each segment's contents are compared while its file is open.
  auto contents = [&](const sys::SysvShmSegment& s, int fd) -> Status {
    for (const images::SysvShmPlan& w : plan_.ns.ipc->shm) {
      if (w.perm.id == s.perm.id && w.size == s.size) CompareSegmentContents(w, fd, root + ": IPC shared memory segment " + std::to_string(w.perm.id));
    }
    return Status();
  };
  auto state = sys::ReadIpcNamespace(root_, images::IpcSysctlPaths(), contents);
  if (!state.ok()) {
    Diff(root + ": " + state.error().ToString());
    return;
  }
  for (const auto& [path, want] : plan_.ns.ipc->sysctls) {
    auto it = state->sysctls.find(path);
    std::string have = it == state->sysctls.end() ? "?" : it->second;
    // The kernel separates kernel/sem's numbers by tabs and ends with a newline.
    for (char& c : have) c = c == '\t' ? ' ' : c;
    while (!have.empty() && have.back() == '\n') have.pop_back();
    if (have != want) Diff(root + ": IPC sysctl " + path + " " + have + ", images say " + want);
  }
  for (const auto& [path, want] : plan_.ns.ipc->next_ids) {
    auto it = state->sysctls.find(path);
    std::string have = it == state->sysctls.end() ? "?" : it->second;
    while (!have.empty() && have.back() == '\n') have.pop_back();
    // An object made since resets it to -1 (ipc_idr_alloc): that object is named below.
    if (have != want && have != "-1") Diff(root + ": IPC sysctl " + path + " " + have + ", images say " + want);
  }
  CompareSysvObjects(state->sysv, root);
  for (const std::string& o : state->mqueues) Diff(root + ": its IPC namespace holds a " + o + ", which the images do not have");
}

void Verifier::CompareNet() {
  std::optional<ino_t> tree = CompareSharing("net", "network", plan_.ns.net.has_value());
  if (!tree || !plan_.ns.net) return;
  const std::string root = "task " + std::to_string(plan_.tasks.empty() ? 0 : plan_.tasks.front().pid) + ": its network namespace ";
  const images::NetPlan& want = *plan_.ns.net;
  sys::NetNamespaceState live, fresh;
  Status read = sys::InNetNamespace(root_, [&] { return sys::ReadNetNamespaceState(live); });
  if (read.ok()) read = sys::InNetNamespace(0, [&] { return sys::ReadNetNamespaceState(fresh); });
  if (!read.ok()) {
    Diff(root + read.error().ToString());
    return;
  }
  for (const sys::NetLink& l : live.links) {
    if (l.ifindex != 1) {
      Diff(root + "has link " + l.name + ", the images do not");
      continue;
    }
    if ((l.flags & sys::kSettableLinkFlags) != (want.lo_flags & sys::kSettableLinkFlags)) {
      Diff(root + "link " + l.name + " has flags " + fmt::format("{:#x}", l.flags) + ", images say " + fmt::format("{:#x}", want.lo_flags));
    }
    if (l.mtu != want.lo_mtu) Diff(root + "link " + l.name + " has MTU " + std::to_string(l.mtu) + ", images say " + std::to_string(want.lo_mtu));
  }
  std::vector<sys::NetAddress> have;
  for (const std::string& m : live.address_messages) {
    if (auto a = sys::ParseAddressMessage(m.data(), m.size()); a.ok()) have.push_back(std::move(a).value());
  }
  auto in = [](const std::vector<sys::NetAddress>& list, const sys::NetAddress& a) {
    for (const sys::NetAddress& x : list) {
      if (sys::SameAddress(x, a)) return true;
    }
    return false;
  };
  for (const sys::NetAddress& a : want.addresses) {
    if (!in(have, a)) Diff(root + "lacks address " + a.Text() + " (or has it with other flags, scope, label or lifetime)");
  }
  for (const sys::NetAddress& a : have) {
    if (!in(want.addresses, a)) Diff(root + "has address " + a.Text() + ", the images do not");
  }
  for (const sys::NetRoute& r : live.routes) {
    if (r.protocol != 2 /* RTPROT_KERNEL */) Diff(root + "has route " + r.Text() + ", the images have no routes");
  }
  if (live.rules != fresh.rules) Diff(root + "has other routing rules than a new namespace, the images have none");
  for (const std::string& t : live.nft_tables) Diff(root + "has nftables table " + t + ", the images have none");
  for (const std::string& t : live.iptables) Diff(root + "has iptables table " + t + ", the images have none");
  for (const auto& [path, text] : want.sysctls) {
    auto it = live.sysctls.find(path.substr(4));  // "net/..." under /proc/sys
    std::string got = it == live.sysctls.end() ? "?" : it->second;
    if (got != text) Diff(root + "sysctl " + path + " is " + got + ", images say " + text);
  }
}

void Verifier::CompareUts() {
  std::optional<ino_t> tree = CompareSharing("uts", "UTS", plan_.ns.uts.has_value());
  if (!tree || !plan_.ns.uts) return;
  const std::string root = "task " + std::to_string(plan_.tasks.empty() ? 0 : plan_.tasks.front().pid);
  const images::UtsPlan& want = *plan_.ns.uts;
  auto names = sys::ReadUtsNames(root_);
  if (!names.ok()) {
    Diff(root + ": " + names.error().ToString());
    return;
  }
  if (names->nodename != want.nodename) Diff(root + ": hostname \"" + names->nodename + "\", images say \"" + want.nodename + "\"");
  if (names->domainname != want.domainname) Diff(root + ": domainname \"" + names->domainname + "\", images say \"" + want.domainname + "\"");
}

}  // namespace ro::verify
