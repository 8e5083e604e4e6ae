// verify, mounts: the root task's mount namespace as the images have it:
// every mount at its place with its filesystem, root, per-mount flags,
// superblock options and propagation (up to renumbering of groups), and no
// mount the images do not have.
#include <fcntl.h>
#include <sys/mount.h>

#include <algorithm>
#include <set>

#include "images/filesystems.h"
#include "orchestrator/tmpfs.h"
#include "orchestrator/verify/verifier.h"
#include "sys/files.h"
#include "sys/log.h"
#include "sys/mount_api.h"
#include "sys/proc_files.h"

namespace ro::verify {

void Verifier::CompareMounts() {
  if (!plan_.ns.new_mnt) return;
  auto mounts = sys::ReadNamespaceMountInfo(root_);
  if (!mounts.ok()) {
    Diff("mounts: " + mounts.error().ToString());
    return;
  }
  std::map<std::string, std::vector<const sys::MountInfo*>> by_point;
  for (const auto& m : *mounts) by_point[m.mountpoint].push_back(&m);
  std::map<uint32_t, uint32_t> group;  // image peer group -> live one
  auto same_group = [&](uint32_t image, uint32_t live, const std::string& where, const char* what) {
    if (image == 0 || live == 0) {
      if ((image == 0) != (live == 0)) Diff(where + ": " + what + (image == 0 ? " is set, images have none" : " is missing"));
      return;
    }
    auto [it, fresh] = group.emplace(image, live);
    if (!fresh && it->second != live) Diff(where + ": " + what + " is not the group its peers are in");
  };
  size_t expected = 0;
  for (uint32_t id : plan_.placement) {
    const images::MountPlan& m = *plan_.FindMount(id);
    ++expected;
    std::string where = "mount " + m.mountpoint;
    auto& stack = by_point[m.mountpoint];
    if (stack.empty()) {
      Diff(where + ": missing");
      continue;
    }
    // Parents are placed (and paired) first: the live mount there whose
    // parent is the pair of this one's (mounts stacked on one mountpoint,
    // binds among them, come in any order); the lowest when it has none.
    auto pick = stack.begin();
    if (auto parent = live_mount_of_.find(m.parent_id); parent != live_mount_of_.end()) {
      auto child = std::find_if(stack.begin(), stack.end(), [&](const sys::MountInfo* c) { return c->parent_id == parent->second; });
      if (child != stack.end()) pick = child;
    }
    const sys::MountInfo& l = **pick;
    stack.erase(pick);
    live_mount_of_[m.mnt_id] = l.mnt_id;
    // An external mount bound from the very filesystem the images name
    // (--ext-mount-map auto, or a source of the same device) must have
    // their root too; one bound from elsewhere (--root, --external) is
    // what the caller chose.
    bool external = m.how == images::MountSource::kExternal;
    bool same_fs = !external || (l.major << 20 | l.minor) == m.root_dev;
    bool named = !external || (m.fstype != "unknown" && m.fstype != "auto");  // CRIU's code for a type our table lacks
    if (same_fs && named && l.fstype != m.fstype) Diff(where + ": " + l.fstype + ", images say " + m.fstype);
    if (same_fs && l.root != m.root) Diff(where + ": root " + l.root + ", images say " + m.root);
    auto opts = sys::SplitOptions(l.mount_options);
    std::set<std::string> have(opts.begin(), opts.end());
    const std::pair<uint32_t, const char*> flags[] = {{MS_RDONLY, "ro"}, {MS_NOSUID, "nosuid"}, {MS_NODEV, "nodev"}, {MS_NOEXEC, "noexec"}};
    for (const auto& [bit, name] : flags) {
      if (((m.flags & bit) != 0) != (have.count(name) != 0)) Diff(where + ": " + name + " differs");
    }
    if (((m.flags & MS_UNBINDABLE) != 0) != l.unbindable) Diff(where + ": unbindable differs");
    // AutoFS options name pipes and process groups: compared by CompareAutofs.
    if (!external && images::RestoreOf(m.fstype_code) != images::FsRestore::kAutofs) {
      auto live_opts = sys::SplitOptions(l.super_options);
      std::set<std::string> live_set(live_opts.begin(), live_opts.end());
      for (const std::string& o : sys::SplitOptions(m.options)) {
        if (o != "rw" && o != "ro" && !live_set.count(o)) Diff(where + ": superblock option " + o + " is missing");
      }
    }
    same_group(m.shared_id, l.shared, where, "peer group");
    bool external_master = plan_.MasterOutside(m);
    if (!external_master) {
      same_group(m.master_id, l.master, where, "master group");
    } else if (l.master == 0) {
      Diff(where + ": a slave of no group, images say of peer group " + std::to_string(m.master_id) +
           " outside the tree (it is private: restored without --enable-external-masters, or from a source hidden there)");
    } else if (l.master != m.master_id) {
      Diff(where + ": a slave of peer group " + std::to_string(l.master) + ", images say of peer group " + std::to_string(m.master_id) +
           " outside the tree");
    }
    CompareAutofs(m, l, where);
    if (m.how == images::MountSource::kNew && m.contents) CompareTmpfsContents(m, l, *mounts, where);
  }
  size_t live = mounts->size();
  if (live != expected) Diff("mounts: " + std::to_string(live) + " live, images have " + std::to_string(expected));
}

void Verifier::CompareTmpfsContents(const images::MountPlan& m, const sys::MountInfo& l, const std::vector<sys::MountInfo>& live_mounts,
                                    const std::string& where) {
  std::string caveat;
  auto read = [&]() -> Result<TmpfsListing> {
    RO_ASSIGN_OR_RETURN(UniqueFd root, sys::OpenNamespaceRoot(root_));  // the root task's may be a chroot
    auto dir = sys::OpenBeneath(root, m.mountpoint.substr(1), false, false);
    if (!dir.ok() && dir.error().err != ENOENT && dir.error().err != ENOTDIR) return std::move(dir).error();
    std::optional<uint64_t> shown;
    if (dir.ok()) {
      RO_ASSIGN_OR_RETURN(shown, sys::MountIdOf(*dir));
    }
    if (shown == l.mnt_id) {
      RO_ASSIGN_OR_RETURN(UniqueFd view, TmpfsView(root_, *dir, caveat));
      return ListTmpfsTree(view);
    }
    // Hidden by mounts stacked on it or on the way to it: read where they
    // are detached, in a private copy of the namespace.
    RO_ASSIGN_OR_RETURN(UniqueFd view, sys::CloneHiddenMount(root_, sys::MountPathOf(live_mounts, l.mnt_id)));
    return ListTmpfsTree(view);
  };
  auto live = read();
  if (!live.ok()) {
    Diff(where + ": its files cannot be read: " + live.error().ToString());
    return;
  }
  if (!caveat.empty()) log::Warn("{}: {}", where, caveat);
  auto images = ListTmpfsArchive(images_fd_, *m.contents);
  if (!images.ok()) {
    Diff(where + ": its files in the images cannot be read: " + images.error().ToString());
    return;
  }
  // A restore makes the mountpoints of the mounts on this one (and their
  // parents) when the images lack them; and the root when they lack it.
  std::set<std::string> made = {""};
  for (const images::MountPlan& c : plan_.mounts) {
    if (c.parent_id != m.mnt_id) continue;
    std::string rel = images::PathBelow(c.mountpoint, m.mountpoint);
    while (!rel.empty()) {
      made.insert(rel);
      size_t slash = rel.rfind('/');
      rel = slash == std::string::npos ? "" : rel.substr(0, slash);
    }
  }
  for (std::string& d : CompareTmpfs(*live, *images, made)) Diff(where + ": " + d);
}

}  // namespace ro::verify
