// verify, namespaces: the tree's UTS namespace (its own, with the images'
// host and domain name, or the caller's), shared by every task.
#include "orchestrator/verify/verifier.h"
#include "sys/namespaces.h"

namespace ro::verify {

void Verifier::CompareNamespaces() {
  auto own = sys::NamespaceInode(0, "uts");
  auto tree = sys::NamespaceInode(root_, "uts");
  if (!own.ok() || !tree.ok()) {
    Diff("task 1's UTS namespace: " + (own.ok() ? tree : own).error().ToString());
    return;
  }
  const std::string root = "task " + std::to_string(plan_.tasks.empty() ? 0 : plan_.tasks.front().pid);
  const std::optional<images::UtsPlan>& want = plan_.ns.uts;
  if (!want && *tree != *own) Diff(root + ": in a UTS namespace of its own, the images have it share the caller's");
  if (want && *tree == *own) Diff(root + ": shares the caller's UTS namespace, the images give it one of its own");
  if (want && *tree != *own) {
    auto names = sys::ReadUtsNames(root_);
    if (!names.ok()) {
      Diff(root + ": " + names.error().ToString());
    } else {
      if (names->nodename != want->nodename) Diff(root + ": hostname \"" + names->nodename + "\", images say \"" + want->nodename + "\"");
      if (names->domainname != want->domainname) {
        Diff(root + ": domainname \"" + names->domainname + "\", images say \"" + want->domainname + "\"");
      }
    }
  }
  for (const auto& [pid, live] : live_) {
    auto its = sys::NamespaceInode(live.info.outer, "uts");
    if (its.ok() && *its != *tree) Diff("task " + std::to_string(pid) + ": in another UTS namespace than the root task");
  }
}

}  // namespace ro::verify
