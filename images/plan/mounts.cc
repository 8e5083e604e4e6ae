// Mounts: the root task's mount namespace from mountpoints-<id>.img. One
// root; every other mount below its parent's path; placement parents
// first; the mount of each superblock with the shortest root made (or
// bound from outside), the others binds of it; then the sharing steps that
// rebuild peer and master groups on the placed tree.
#include <algorithm>
#include <set>

#include "images/filesystems.h"
#include "images/plan/context.h"
#include "images/proto/mnt.pb.h"

namespace ro::images::plan {
namespace {

std::optional<MountPlan> ReadMount(Context& ctx, const img::mnt_entry& e, const std::string& name, size_t i) {
  if (e.mnt_id() == 0) {
    ctx.problems.Add(name, i, "mnt_id 0 is not a mount id");
    return std::nullopt;
  }
  auto mp = NormalizeAbsolutePath(e.mountpoint());
  if (!mp) {
    ctx.problems.Add(name, i, "mountpoint \"" + e.mountpoint() + "\" is not absolute or contains \"..\": it could escape the root");
    return std::nullopt;
  }
  if (RemovedRoot(e.root())) {
    ctx.problems.Add(name, i, "root \"" + e.root() + "\" was removed before the dump: a bind of it cannot be restored");
    return std::nullopt;
  }
  auto root = NormalizeAbsolutePath(e.root());
  if (!root) {
    ctx.problems.Add(name, i, "root \"" + e.root() + "\" is not absolute or contains \"..\"");
    return std::nullopt;
  }
  MountPlan m;
  m.mnt_id = e.mnt_id();
  m.parent_id = e.parent_mnt_id();
  m.fstype_code = e.fstype();
  m.fstype = FstypeName(e.fstype());
  m.mountpoint = *mp;
  m.root = *root;
  m.source = e.source();
  m.options = e.options();
  m.flags = e.flags();
  m.sb_flags = e.sb_flags();
  m.root_dev = e.root_dev();
  m.shared_id = e.shared_id();
  m.master_id = e.master_id();
  // CRIU 4 marks an external mount by its ext_key alone (ext_mount is
  // the older flag); its fstype is then often 0.
  if (e.ext_mount() || !e.ext_key().empty() || e.fstype() == img::AUTO) m.how = MountSource::kExternal;
  m.ext_key = e.ext_key().empty() ? m.mountpoint : e.ext_key();
  if (!e.fsname().empty() && (e.fstype() == img::AUTO || e.fstype() == img::UNSUPPORTED)) m.fstype = e.fsname();
  if (m.shared_id != 0 && m.shared_id == m.master_id) {
    ctx.problems.Add(name, i, "mount " + Str(m.mnt_id) + " is its own master (shared_id == master_id " + Str(m.shared_id) + ")");
    return std::nullopt;
  }
  return m;
}

// One root; every other mount below an existing parent, below its parent's
// path. Fills the placement order (parents first, which also finds cycles).
bool PlanPlacement(Context& ctx, std::map<uint32_t, MountPlan>& mounts, const std::string& name) {
  std::optional<uint32_t> root;
  std::map<uint32_t, std::vector<uint32_t>> children;
  for (auto& [id, m] : mounts) {
    if (mounts.count(m.parent_id) == 0 || m.parent_id == id) {
      if (root) {
        ctx.problems.Add(name, ctx.mount_entry[id], "parent mount " + Str(m.parent_id) + " of mount " + Str(id) +
                                                        " is missing (mount " + Str(*root) + " is already the root)");
        continue;
      }
      root = id;
      continue;
    }
    const MountPlan& parent = mounts[m.parent_id];
    if (!IsBelow(m.mountpoint, parent.mountpoint)) {
      ctx.problems.Add(name, ctx.mount_entry[id], "mountpoint " + m.mountpoint + " is not below its parent's " + parent.mountpoint);
      continue;
    }
    children[m.parent_id].push_back(id);
  }
  if (!root) {
    ctx.problems.Add(name, std::nullopt, "no root mount: every mount's parent is in the image (a cycle)");
    return false;
  }
  if (mounts[*root].mountpoint != "/") {
    ctx.problems.Add(name, ctx.mount_entry[*root], "root mount " + Str(*root) + " is at " + mounts[*root].mountpoint + ", not /");
  }
  // Of two siblings, one below the other's mountpoint was there first: the
  // other covers it (mounted later, it would have been its child). Mount
  // ids say nothing of that order, the kernel reuses them. So deeper
  // mountpoints are placed first; the rest keep their id order.
  auto depth = [&](uint32_t id) { return std::count(mounts[id].mountpoint.begin(), mounts[id].mountpoint.end(), '/'); };
  for (auto& [parent, kids] : children) {
    std::stable_sort(kids.begin(), kids.end(), [&](uint32_t a, uint32_t b) { return depth(a) > depth(b); });
  }
  mounts[*root].parent_id = 0;
  std::set<uint32_t> placed;
  std::vector<uint32_t> stack{*root};
  while (!stack.empty()) {
    uint32_t id = stack.back();
    stack.pop_back();
    if (!placed.insert(id).second) continue;
    ctx.plan.placement.push_back(id);
    auto& kids = children[id];
    for (auto it = kids.rbegin(); it != kids.rend(); ++it) stack.push_back(*it);
  }
  for (const auto& [id, m] : mounts) {
    if (placed.count(id) == 0 && ctx.ok()) {
      ctx.problems.Add(name, ctx.mount_entry[id], "mount " + Str(id) + " is not below the root mount: its parent chain is a cycle");
    }
  }
  return ctx.ok();
}

// Where each external mount comes from, and the root mount: CRIU never
// dumps the tree's root mount (it binds it from --root, whatever its type),
// restore-orch's own dumps pack a tmpfs root. Only what the caller names
// reaches the host: a mount it names no source for is a problem naming the
// flag that would map it.
void PlanSources(Context& ctx, std::map<uint32_t, MountPlan>& mounts, const std::string& name) {
  const PlanOptions& o = ctx.options;
  auto external = [&](MountPlan& m) {
    if (o.external_keys.count(m.ext_key)) {
      m.external = ExternalSource::kGiven;
    } else if (o.ext_mount_map_auto || o.externals_named_later) {
      m.external = ExternalSource::kAuto;
    } else {
      ctx.problems.Add(name, ctx.mount_entry[m.mnt_id],
                       "mount " + m.mountpoint + " (" + m.fstype + ") is external (key \"" + m.ext_key + "\"): give " +
                           ExternalFlag(m.ext_key) + ", or --ext-mount-map auto to bind the caller's mount of the same device and root");
    }
  };
  uint32_t root = ctx.plan.placement.front();
  for (auto& [id, m] : mounts) {
    if (id == root) continue;
    if (m.how == MountSource::kExternal) {
      external(m);
    } else if (!CreatableFstype(m.fstype_code)) {
      ctx.problems.Add(name, ctx.mount_entry[id], "filesystem " + m.fstype + " (fstype " + Str(m.fstype_code) + ") at " + m.mountpoint +
                                                      " is not supported");
    }
  }
  MountPlan& r = mounts[root];
  bool no_contents = RestoreOf(r.fstype_code) == FsRestore::kTmpfs && ctx.dir.Find(TmpfsKind(), r.root_dev) == nullptr;
  if (o.root_given) {
    r.how = MountSource::kExternal;
    r.external = ExternalSource::kRootDir;
  } else if (r.how == MountSource::kExternal) {
    if (o.external_keys.count(r.ext_key) || o.ext_mount_map_auto || o.externals_named_later) {
      external(r);
    } else {
      ctx.problems.Add(name, ctx.mount_entry[root], "the root mount (" + r.fstype + ") is external: give --root DIR (or --external " +
                                                        r.ext_key + "=PATH, or --ext-mount-map auto)");
    }
  } else if (!CreatableFstype(r.fstype_code) || no_contents) {
    if (o.externals_named_later) {
      r.how = MountSource::kExternal;  // the dump's check: named at restore
    } else {
      ctx.problems.Add(name, ctx.mount_entry[root], "the root mount (" + r.fstype + ") is not in the images" +
                                                        (no_contents ? std::string(" (no ") + MakeFileName(TmpfsKind(), r.root_dev) + ")" : "") +
                                                        ": give --root DIR, the directory to restore the tree's root from, as CRIU's restore needs");
    }
  }
}

// Creation: the mount of each superblock with the shortest root is made
// new (or bound from outside); the others are binds of it.
void PlanCreation(Context& ctx, std::map<uint32_t, MountPlan>& mounts) {
  std::map<std::pair<uint32_t, uint32_t>, uint32_t> first_of_sb;  // (fstype, dev) -> mnt
  std::vector<uint32_t> order(ctx.plan.placement);
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return mounts[a].root.size() < mounts[b].root.size(); });
  std::vector<uint32_t> binds;
  for (uint32_t id : order) {
    MountPlan& m = mounts[id];
    auto [it, fresh] = first_of_sb.emplace(std::make_pair(m.fstype_code, m.root_dev), id);
    if (fresh || m.how == MountSource::kExternal) {
      if (fresh && m.how == MountSource::kNew && m.fstype_code == img::TMPFS) {
        if (const ImageFile* tar = ctx.dir.Find(TmpfsKind(), m.root_dev)) {
          const Entry& e = tar->entries[0];
          m.contents = e.ref ? *e.ref : PayloadRef{MakeFileName(TmpfsKind(), m.root_dev), 0, e.payload.size()};
        }
      }
      ctx.plan.mounts.push_back(m);
    } else {
      m.how = MountSource::kBind;
      m.bind_of = it->second;
      binds.push_back(id);
    }
  }
  for (uint32_t id : binds) ctx.plan.mounts.push_back(mounts[id]);
}

// A group is the set of mounts with one (shared_id, master_id); its first
// member is the one with the shortest root (the source of
// MOVE_MOUNT_SET_GROUP must contain the destination's root). Masters are
// joined before their slaves; a cycle of masters is an error.
void PlanSharing(Context& ctx, std::map<uint32_t, MountPlan>& mounts, const std::string& name) {
  struct Group {
    uint32_t shared = 0;
    uint32_t master = 0;
    std::vector<uint32_t> members;
  };
  using Key = std::pair<uint32_t, uint32_t>;
  std::map<Key, Group> groups;
  std::map<uint32_t, Key> group_of_shared;  // shared_id -> group key
  for (uint32_t id : ctx.plan.placement) {
    const MountPlan& m = mounts[id];
    if (m.shared_id == 0 && m.master_id == 0) continue;
    Key key{m.shared_id, m.master_id};
    Group& g = groups[key];
    g.shared = m.shared_id;
    g.master = m.master_id;
    g.members.push_back(id);
    if (m.shared_id != 0) {
      auto [it, fresh] = group_of_shared.emplace(m.shared_id, key);
      if (!fresh && it->second != key) {
        ctx.problems.Add(name, ctx.mount_entry[id], "peer group " + Str(m.shared_id) + " has members with different masters (" +
                                                        Str(it->second.second) + " and " + Str(m.master_id) + ")");
      }
    }
  }
  if (!ctx.ok()) return;
  for (auto& [key, g] : groups) {
    std::stable_sort(g.members.begin(), g.members.end(), [&](uint32_t a, uint32_t b) { return mounts[a].root.size() < mounts[b].root.size(); });
  }
  std::vector<SharingStep>& steps = ctx.plan.sharing;
  std::set<Key> done;
  std::set<Key> active;
  // Depth first along the master chains, without recursion (an image
  // decides how long they are): a group's steps come once its master's are out.
  // With --enable-external-masters: the external mount that mount `id` is
  // bound from (through binds of the tree), whose source in the caller's
  // tree is of the same superblock; 0 (a problem) when it is made anew.
  auto external_behind = [&](uint32_t id) -> uint32_t {
    const MountPlan* m = &mounts[id];
    for (size_t hops = 0; m->how == MountSource::kBind && hops <= mounts.size(); ++hops) {
      auto next = mounts.find(m->bind_of);
      if (next == mounts.end()) break;
      m = &next->second;
    }
    if (m->how == MountSource::kExternal) return m->mnt_id;
    ctx.problems.Add(name, ctx.mount_entry[id], "mount " + Str(id) + " at " + mounts[id].mountpoint + " was a slave of peer group " +
                                                    Str(mounts[id].master_id) + " outside the images, but it is made anew, not bound from "
                                                    "the caller's tree: --enable-external-masters cannot make it a slave of a group outside");
    return 0;
  };
  auto emit = [&](const Key& key) {
    Group& g = groups[key];
    uint32_t first = g.members.front();
    // Slaves of a group outside the images: each joins it from the
    // caller's tree (a peer group of them only its first, the others join that).
    bool outside = g.master != 0 && group_of_shared.count(g.master) == 0;
    if (outside) {
      for (size_t i = 0; i < (g.shared != 0 ? 1 : g.members.size()); ++i) {
        uint32_t from = ctx.options.external_masters ? external_behind(g.members[i]) : 0;
        steps.push_back({SharingStep::Op::kSlaveOfExternal, g.members[i], from, g.master});
      }
    } else if (g.master != 0) {
      steps.push_back({SharingStep::Op::kSlaveOf, first, groups[group_of_shared[g.master]].members.front(), g.master});
    }
    if (g.shared != 0) steps.push_back({SharingStep::Op::kMakeShared, first, 0, g.shared});
    if (outside && g.shared == 0) return;
    for (size_t i = 1; i < g.members.size(); ++i) {
      steps.push_back({SharingStep::Op::kJoinGroup, g.members[i], first, g.shared != 0 ? g.shared : g.master});
    }
  };
  for (const auto& [start, unused] : groups) {
    std::vector<Key> chain;  // start, its master, its master's master...
    for (Key key = start;;) {
      if (done.count(key)) break;
      if (!active.insert(key).second) {
        ctx.problems.Add(name, ctx.mount_entry[groups[key].members.front()], "sharing groups form a master cycle through group " + Str(key.first));
        return;
      }
      chain.push_back(key);
      const Group& g = groups[key];
      auto master = g.master != 0 ? group_of_shared.find(g.master) : group_of_shared.end();
      if (master == group_of_shared.end()) break;
      key = master->second;
    }
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
      emit(*it);
      done.insert(*it);
      active.erase(*it);
    }
  }
}

}  // namespace

void PlanMounts(Context& ctx) {
  if (!ctx.plan.ns.new_mnt) return;
  if (ctx.plan.ns.mnt_ns_id == 0) {
    ctx.problems.Add(MakeFileName(CoreKind(), static_cast<uint32_t>(ctx.root_pid)), 0,
                     "root task has no mnt_ns_id: cannot find its mountpoints image");
    return;
  }
  const std::string name = MakeFileName(MountpointsKind(), ctx.plan.ns.mnt_ns_id);
  const ImageFile* f = ctx.dir.Find(MountpointsKind(), ctx.plan.ns.mnt_ns_id);
  if (f == nullptr || f->entries.empty()) {
    ctx.problems.Add(name, std::nullopt, f == nullptr ? "missing: the root task's mount namespace has no mountpoints image"
                                                      : "holds no mount");
    return;
  }
  std::map<uint32_t, MountPlan> mounts;
  for (size_t i = 0; i < f->entries.size(); ++i) {
    const auto& e = f->As<img::mnt_entry>(i);
    if (e.mnt_id() != 0 && !ctx.mount_entry.emplace(e.mnt_id(), i).second) {
      ctx.problems.Add(name, i, "duplicate mnt_id " + Str(e.mnt_id()));
      continue;
    }
    if (auto m = ReadMount(ctx, e, name, i)) mounts.emplace(m->mnt_id, std::move(*m));
  }
  if (!ctx.ok() || !PlanPlacement(ctx, mounts, name)) return;
  PlanSources(ctx, mounts, name);
  PlanCreation(ctx, mounts);
  PlanSharing(ctx, mounts, name);
}

}  // namespace ro::images::plan

namespace ro::images {

std::string ExternalFlag(const std::string& ext_key) {
  if (ext_key.find('=') == std::string::npos) return "--external " + ext_key + "=PATH";
  return "--external mnt[" + ext_key + "]:PATH";
}

}  // namespace ro::images
