// The dump's mount namespace: every mount of the tree's namespace from its
// root task's mountinfo, tmpfs contents, and each AutoFS mount's state
// with its master's pipe.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/sysmacros.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <map>

#include "images/kinds.h"
#include "images/filesystems.h"
#include "orchestrator/dump/collector.h"
#include "orchestrator/externals.h"
#include "orchestrator/tmpfs.h"
#include "sys/files.h"
#include "sys/mount_api.h"

namespace ro::dump {
namespace {

uint32_t MountFlags(const sys::MountInfo& m) {
  uint32_t flags = 0;
  bool atime_set = false;
  for (const std::string& o : sys::SplitOptions(m.mount_options)) {
    if (o == "ro") flags |= MS_RDONLY;
    if (o == "nosuid") flags |= MS_NOSUID;
    if (o == "nodev") flags |= MS_NODEV;
    if (o == "noexec") flags |= MS_NOEXEC;
    if (o == "nodiratime") flags |= MS_NODIRATIME;
    if (o == "noatime" || o == "relatime") {
      flags |= o == "noatime" ? MS_NOATIME : MS_RELATIME;
      atime_set = true;
    }
  }
  if (!atime_set) flags |= MS_STRICTATIME;
  if (m.unbindable) flags |= MS_UNBINDABLE;
  return flags;
}

}  // namespace

std::optional<long long> IntOption(const sys::MountInfo& m, const char* key) {
  std::string v = m.SuperOption(key);
  if (v.empty()) return std::nullopt;
  char* end = nullptr;
  long long n = std::strtoll(v.c_str(), &end, 10);
  if (*end != '\0') return std::nullopt;
  return n;
}

Status Collector::ReadMounts() {
  auto mounts = sys::ReadNamespaceMountInfo(tree_.tasks().front().pid);
  if (!mounts.ok()) return std::move(mounts).error().Within("the tree's mount namespace");
  mounts_ = std::move(mounts).value();
  for (const sys::MountInfo& m : mounts_) {
    if (m.fstype != "autofs") continue;
    auto ino = IntOption(m, "pipe_ino");
    if (ino && *ino > 0) autofs_pipes_.insert(static_cast<uint64_t>(*ino));
  }
  return {};
}

Status Collector::CollectMounts() {
  RO_ASSIGN_OR_RETURN(std::set<uint32_t> own_devs, OwnDevices());
  std::set<uint32_t> done;        // superblocks whose contents or AutoFS state are dumped
  std::set<uint32_t> new_tmpfs;   // tmpfs superblocks made anew at restore
  auto external_of = [&](const sys::MountInfo& m) { return IsExternal(m, own_devs); };
  std::map<uint32_t, std::string> keys = ExternalKeys(mounts_);
  images::ImageFile& file = File(images::MountpointsKind(), static_cast<uint32_t>(tree_mnt_ns_));
  for (const sys::MountInfo& m : mounts_) {
    std::string where = "mount " + m.mountpoint;
    if (m.major >= 4096 || m.minor >= (1u << 20)) return Refuse(where + ": device " + Str(m.major) + ":" + Str(m.minor) + " does not fit the images");
    // No path of a restored filesystem would reach a removed root.
    if (auto removed = images::RemovedRoot(m.root)) {
      return Refuse(where + ": a bind of " + *removed + ", removed since from its filesystem: restore-orch cannot restore it");
    }
    uint32_t dev = DeviceOf(m);
    uint32_t code = images::FstypeCode(m.fstype);
    bool external = external_of(m);
    // A restore mounts mqueue in the tree's new IPC namespace: one of
    // another namespace (inherited across unshare) would change meaning.
    if (m.fstype == "mqueue" && tree_ipc_ns_ != own_ipc_ns_ && !external && makedev(m.major, m.minor) != tree_mqueue_dev_) {
      return Refuse(where + ": the mqueue filesystem of another IPC namespace than the tree's (a restore would mount the tree's own)");
    }
    auto e = std::make_unique<img::mnt_entry>();
    e->set_fstype(code == 0 ? static_cast<uint32_t>(img::AUTO) : code);
    if (code == 0) e->set_fsname(m.fstype);
    e->set_mnt_id(m.mnt_id);
    e->set_root_dev(dev);
    e->set_parent_mnt_id(m.parent_id);
    e->set_flags(MountFlags(m));
    e->set_root(m.root);
    e->set_mountpoint(m.mountpoint);
    e->set_source(m.source);
    e->set_options(m.super_options);
    e->set_shared_id(m.shared);
    e->set_master_id(m.master);
    bool sb_ro = false;
    for (const std::string& o : sys::SplitOptions(m.super_options)) sb_ro |= o == "ro";
    e->set_sb_flags(sb_ro ? MS_RDONLY : 0);
    if (external) {
      e->set_ext_mount(true);
      e->set_ext_key(keys[m.mnt_id]);
    }
    file.entries.push_back(images::Entry{std::move(e), {}});
    ++out_.counts.mounts;
    if (external) continue;
    if (code == img::TMPFS) new_tmpfs.insert(dev);
    if (m.root != "/" || !done.insert(dev).second) continue;
    if (code == img::TMPFS) {
      if (Status s = PackTmpfsContents(m, dev); !s.ok()) return std::move(s).error().Within(where);
    } else if (code == img::AUTOFS) {
      if (Status s = CollectAutofs(m, dev); !s.ok()) return std::move(s).error().Within("AutoFS " + where);
      ++out_.counts.autofs;
    }
  }
  for (uint32_t dev : new_tmpfs) {
    if (!done.count(dev)) {
      return Refuse("tmpfs " + Str(dev >> 20) + ":" + Str(dev & 0xfffff) +
                  ": no mount of the tree shows its root, so its contents cannot be dumped");
    }
  }
  return {};
}

Status Collector::PackTmpfsContents(const sys::MountInfo& m, uint32_t dev) {
  // From the namespace's root: the root task's may be a chroot.
  RO_ASSIGN_OR_RETURN(const UniqueFd* root, NamespaceRoot());
  auto dir = sys::OpenBeneath(*root, m.mountpoint.substr(1), false, false);
  if (!dir.ok() && dir.error().err != ENOENT && dir.error().err != ENOTDIR) return std::move(dir).error();
  std::optional<uint64_t> shown;  // the mount its mountpoint shows
  if (dir.ok()) {
    RO_ASSIGN_OR_RETURN(shown, sys::MountIdOf(*dir));
  }
  std::string caveat;
  UniqueFd view;
  if (shown == m.mnt_id) {
    // Packed from a copy of this mount alone: files that mounts below it
    // cover are its contents too.
    RO_ASSIGN_OR_RETURN(view, TmpfsView(tree_.tasks().front().pid, *dir, caveat));
  } else {
    // Hidden by mounts stacked on it, or on the way to it: packed from a
    // copy of it made where they are detached.
    auto copy = sys::CloneHiddenMount(tree_.tasks().front().pid, sys::MountPathOf(mounts_, m.mnt_id));
    if (!copy.ok() && copy.error().err == EINVAL && m.unbindable) {
      return Refuse("it is unbindable and other mounts hide it, so its contents cannot be read");
    }
    if (!copy.ok()) return std::move(copy).error().Within("its contents, under the mounts that hide it");
    view = std::move(copy).value();
  }
  if (!caveat.empty()) out_.warnings.push_back("tmpfs " + m.mountpoint + ": " + caveat);
  std::vector<std::string> skipped;
  auto packed = packer_.Pack(view, skipped);
  if (!packed.ok() && packed.error().err == 0) {
    // Without an errno it is what the tmpfs holds, not a failed read: a refusal.
    return Refuse(packed.error().ToString());
  }
  RO_ASSIGN_OR_RETURN(std::string tar, std::move(packed));
  for (const std::string& s : skipped) out_.warnings.push_back("tmpfs " + m.mountpoint + ": " + s);
  out_.counts.tmpfs_bytes += tar.size();
  File(images::TmpfsKind(), dev).entries.push_back(images::Entry{nullptr, std::move(tar)});
  return {};
}

}  // namespace ro::dump
