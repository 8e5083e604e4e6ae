// verify, namespaces: the tree's UTS, IPC and network namespaces (its own,
// with the images' host and domain name or sysctls, or the caller's), each
// shared by every task; an IPC namespace of its own holds the images'
// System V objects (ipc_objects.cc) and no POSIX message queue (none is
// restored); a network namespace of its own holds the loopback with the
// images' flags, MTU and addresses, no route, rule or firewall table a new
// one lacks, and the images' sysctls.
#include <map>

#include "images/ipc_sysctls.h"
#include "orchestrator/net.h"
#include "orchestrator/verify/verifier.h"
#include "sys/namespaces.h"
#include "sys/net_namespace.h"
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
  ComparePosixMqueues(state->mqueues, root);
}

// The live namespace against what a restore of the images makes: a new
// namespace is given the images' part here (the restore's own code) and
// every difference a user would see between the two is named.
void Verifier::CompareNet() {
  std::optional<ino_t> tree = CompareSharing("net", "network", plan_.ns.net.has_value());
  if (!tree || !plan_.ns.net) return;
  const std::string root = "task " + std::to_string(plan_.tasks.empty() ? 0 : plan_.tasks.front().pid) + ": its network namespace ";
  sys::NetNamespaceState live, restored;
  Status read = sys::InNetNamespace(root_, [&] { return sys::ReadNetNamespaceState(live); });
  if (!read.ok()) {
    Diff(root + read.error().ToString());
    return;
  }
  auto same = [&](const sys::NetNamespaceState& s) { return sys::NetStateDifferences(s, live, "the images'").empty(); };
  if (Status s = TrialNetNamespace(*plan_.ns.net, &restored, same); !s.ok()) {
    Diff(root + "could not be compared: the images' namespace could not be made: " + s.error().ToString());
    return;
  }
  for (const std::string& d : sys::NetStateDifferences(restored, live, "the images'")) Diff(root + d);
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
