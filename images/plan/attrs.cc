// attrs: what a live task is besides its memory and fds, from its cores
// (resource limits, child subreaper, OOM score, and per thread scheduling,
// parent-death signal, no_new_privs), fs-<pid>.img (umask) and
// attrs-<tid>.img (timer slack, TSC mode). Each value the kernel would
// refuse, or silently change, is a problem; so is each one restore-orch
// here could not set (PlanOptions::host), so that nothing is lost quietly.
// A thread's credentials (uids, gids, capability sets, securebits,
// supplementary groups) come back when its task continues (the restorer
// sets them last) and must be restore-orch's otherwise.
#include <algorithm>
#include <array>
#include <cstdio>

#include "images/plan/context.h"
#include "images/proto/attrs.pb.h"
#include "images/proto/fs.pb.h"

namespace ro::images::plan {
namespace {

constexpr uint64_t kInfinity = ~uint64_t{0};
constexpr uint64_t kNrOpenMax = 2147483584;  // sysctl_nr_max: fs.nr_open's own ceiling
constexpr int kNofile = 7;
constexpr uint32_t kResetOnFork = 0x40000000;  // SCHED_RESET_ON_FORK
constexpr uint32_t kLoginuidUnset = 4294967295u;
std::string Limit(uint64_t v) { return v == kInfinity ? "unlimited" : Str(v); }

bool RealTime(uint32_t policy) {
  uint32_t p = policy & ~kResetOnFork;
  return p == 1 || p == 2;  // SCHED_FIFO, SCHED_RR
}

std::string Hex64(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%#llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string Ids(const std::array<uint32_t, 4>& v) { return Str(v[0]) + "/" + Str(v[1]) + "/" + Str(v[2]) + "/" + Str(v[3]); }

// Whether `id` is one the user namespace of `map` maps (user_namespaces(7)).
bool Mapped(const std::vector<IdRange>& map, uint32_t id) {
  return std::any_of(map.begin(), map.end(), [id](const IdRange& r) { return id >= r.inside && uint64_t{id} < uint64_t{r.inside} + r.count; });
}

// How a thread's credentials differ from restore-orch's, which a restored
// task that does not continue gets, and whose uids and gids every restored
// task gets; "" when they do not.
std::string CredsDiffer(const img::creds_entry& c, const HostAttrs& host) {
  std::array<uint32_t, 4> uids{c.uid(), c.euid(), c.suid(), c.fsuid()}, gids{c.gid(), c.egid(), c.sgid(), c.fsgid()};
  if (uids != host.uids || gids != host.gids) {
    return "uid " + Ids(uids) + " gid " + Ids(gids) + " (real/effective/saved/fs), restore-orch's uid " + Ids(host.uids) + " gid " +
           Ids(host.gids);
  }
  const google::protobuf::RepeatedField<uint32_t>* sets[] = {&c.cap_inh(), &c.cap_prm(), &c.cap_eff(), &c.cap_bnd(), &c.cap_amb()};
  const char* names[] = {"inheritable", "permitted", "effective", "bounding", "ambient"};
  for (size_t i = 0; i < 5; ++i) {
    uint64_t caps = 0;
    bool beyond = false;  // words past the 64 capabilities a kernel has
    for (int w = 0; w < sets[i]->size(); ++w) {
      if (w < 2) caps |= uint64_t{sets[i]->Get(w)} << (32 * w);
      beyond = beyond || (w >= 2 && sets[i]->Get(w) != 0);
    }
    if (caps != host.caps[i] || beyond) {
      return std::string(names[i]) + " capabilities " + Hex64(caps) + ", restore-orch's " + Hex64(host.caps[i]);
    }
  }
  if (c.secbits() != host.securebits) return "securebits " + HexStr(c.secbits()) + ", restore-orch's " + HexStr(host.securebits);
  std::vector<uint32_t> groups = SortedGroups({c.groups().begin(), c.groups().end()}), own = SortedGroups(host.groups);
  if (groups != own) return "supplementary groups " + GroupList(groups) + ", restore-orch's " + GroupList(own);
  return "";
}

// A thread's uids, gids, capability sets, securebits and groups from its
// creds, or what is wrong with them.
Result<CredsPlan> ReadCreds(const img::creds_entry& c) {
  CredsPlan out;
  out.uids = {c.uid(), c.euid(), c.suid(), c.fsuid()};
  out.gids = {c.gid(), c.egid(), c.sgid(), c.fsgid()};
  constexpr uint32_t kNoId = 4294967295u;  // (uid_t)-1: "unchanged" to setresuid, no task's id
  for (const auto& [ids, what] : {std::pair{&out.uids, "uid"}, std::pair{&out.gids, "gid"}}) {
    if (std::find(ids->begin(), ids->end(), kNoId) != ids->end()) {
      return Fail(std::string(what) + " " + Ids(*ids) + " (real/effective/saved/fs) holds 4294967295, which is no id ((" + what +
                  "_t)-1)");
    }
  }
  const google::protobuf::RepeatedField<uint32_t>* sets[] = {&c.cap_inh(), &c.cap_prm(), &c.cap_eff(), &c.cap_bnd(), &c.cap_amb()};
  const char* names[] = {"cap_inh", "cap_prm", "cap_eff", "cap_bnd", "cap_amb"};
  for (size_t i = 0; i < 5; ++i) {
    for (int w = 0; w < sets[i]->size(); ++w) {
      if (w < 2) {
        out.caps[i] |= uint64_t{sets[i]->Get(w)} << (32 * w);
      } else if (sets[i]->Get(w) != 0) {
        return Fail(std::string(names[i]) + " has bits past the 64 capabilities a kernel has");
      }
    }
  }
  out.securebits = c.secbits();
  if (static_cast<size_t>(c.groups_size()) > kMaxGroups) {
    return Fail(Str(c.groups_size()) + " supplementary groups, more than the kernel's " + Str(kMaxGroups));
  }
  out.groups.assign(c.groups().begin(), c.groups().end());
  return out;
}

bool SameCreds(const CredsPlan& c, const HostAttrs& host) {
  return c.uids == host.uids && c.gids == host.gids && c.caps == host.caps && c.securebits == host.securebits && SortedGroups(c.groups) == SortedGroups(host.groups);
}

// What keeps the restorer, running with restore-orch's credentials
// (`host`), from giving a thread `want` in its order (groups; securebits
// with SECBIT_NO_SETUID_FIXUP, so that a new uid keeps the capabilities;
// gids; uids; inheritable; ambient raised; bounding set dropped;
// securebits; permitted and effective lowered: the kernel's rules of
// setgroups(2), setresuid(2), capset(2), PR_CAPBSET_DROP,
// PR_CAP_AMBIENT_RAISE and PR_SET_SECUREBITS, kernel/sys.c and
// security/commoncap.c); "" when nothing does.
std::string CannotGive(const CredsPlan& want, const HostAttrs& host) {
  constexpr int kCapSetgid = 6, kCapSetuid = 7, kCapSetpcap = 8;
  constexpr uint32_t kKnownSecurebits = 0xfff;  // SECURE_ALL_BITS and their locks (6.14's exec bits included)
  constexpr uint32_t kLocks = 0xaaa, kNoAmbientRaise = 1u << 6;
  constexpr uint32_t kNoSetuidFixup = 1u << 2, kNoSetuidFixupLocked = 1u << 3;
  using S = CredsPlan::Set;
  const auto& c = want.caps;
  const uint64_t eff = host.caps[S::kEffective];
  if (SortedGroups(want.groups) != SortedGroups(host.groups) && !(eff >> kCapSetgid & 1)) return "setting its supplementary groups needs CAP_SETGID, which restore-orch does not have";
  for (uint32_t g : want.groups) {
    if (!Mapped(host.gid_map, g)) return "supplementary group " + Str(g) + " is not mapped in restore-orch's user namespace";
  }
  if (want.gids != host.gids) {
    if (!(eff >> kCapSetgid & 1)) return "setting its gids " + Ids(want.gids) + " needs CAP_SETGID, which restore-orch does not have";
    for (uint32_t g : want.gids) {
      if (!Mapped(host.gid_map, g)) return "gid " + Str(g) + " is not mapped in restore-orch's user namespace";
    }
  }
  if (want.uids != host.uids) {
    if (!(eff >> kCapSetuid & 1)) return "setting its uids " + Ids(want.uids) + " needs CAP_SETUID, which restore-orch does not have";
    for (uint32_t u : want.uids) {
      if (!Mapped(host.uid_map, u)) return "uid " + Str(u) + " is not mapped in restore-orch's user namespace";
    }
    if (!(host.securebits & kNoSetuidFixup)) {
      if (host.securebits & kNoSetuidFixupLocked) {
        return "a new uid would drop its capabilities: restore-orch's securebits lock SECBIT_NO_SETUID_FIXUP off";
      }
      if (!(eff >> kCapSetpcap & 1)) return "keeping its capabilities across a new uid needs CAP_SETPCAP (securebits), which restore-orch does not have";
    }
  }
  if (c != host.caps || want.securebits != host.securebits) {
    if (!(eff >> kCapSetpcap & 1)) return "setting its capabilities and securebits needs CAP_SETPCAP, which restore-orch does not have";
  }
  if (c[S::kPermitted] & ~host.caps[S::kPermitted]) {
    return "permitted capabilities " + Hex64(c[S::kPermitted]) + " go beyond restore-orch's " + Hex64(host.caps[S::kPermitted]);
  }
  if (c[S::kEffective] & ~c[S::kPermitted]) {
    return "effective capabilities " + Hex64(c[S::kEffective]) + " are not all permitted (" + Hex64(c[S::kPermitted]) + ")";
  }
  if (c[S::kBounding] & ~host.caps[S::kBounding]) {
    return "bounding set " + Hex64(c[S::kBounding]) + " goes beyond restore-orch's " + Hex64(host.caps[S::kBounding]);
  }
  if (c[S::kInheritable] & ~(host.caps[S::kInheritable] | host.caps[S::kBounding])) {
    return "inheritable capabilities " + Hex64(c[S::kInheritable]) + " go beyond restore-orch's inheritable and bounding sets";
  }
  if (c[S::kAmbient] & ~(c[S::kPermitted] & c[S::kInheritable])) {
    return "ambient capabilities " + Hex64(c[S::kAmbient]) + " are not all permitted and inheritable";
  }
  if (c[S::kAmbient] != 0 && (host.securebits & kNoAmbientRaise)) {
    return "ambient capabilities " + Hex64(c[S::kAmbient]) + ", which restore-orch's securebits (SECBIT_NO_CAP_AMBIENT_RAISE) forbid raising";
  }
  if (want.securebits & ~kKnownSecurebits) return "securebits " + Hex64(want.securebits) + " has bits the kernel does not know";
  uint32_t locked = host.securebits & kLocks;
  if (((locked >> 1) & (host.securebits ^ want.securebits)) || (locked & ~want.securebits)) {
    return "securebits " + Hex64(want.securebits) + " differ from restore-orch's " + Hex64(host.securebits) + " where those are locked";
  }
  return "";
}

std::string PolicyName(uint32_t policy) {
  static const char* names[] = {"SCHED_OTHER", "SCHED_FIFO", "SCHED_RR", "SCHED_BATCH", "4", "SCHED_IDLE", "SCHED_DEADLINE"};
  uint32_t p = policy & ~kResetOnFork;
  std::string s = p < 7 ? names[p] : Str(p);
  return (policy & kResetOnFork) ? s + "|SCHED_RESET_ON_FORK" : s;
}

// tc.rlimits: at most one per RLIMIT_*, soft within hard, within what the
// kernel and this host allow.
void ReadRlimits(Context& ctx, const img::task_core_entry& tc, const std::string& name, const std::string& who, AttrsPlan& a) {
  if (!tc.has_rlimits()) return;
  const auto& list = tc.rlimits().rlimits();
  if (list.size() > kNumRlimits) {
    ctx.problems.Add(name, 0, who + Str(static_cast<uint64_t>(list.size())) + " resource limits, more than the kernel's " + Str(kNumRlimits));
    return;
  }
  const std::optional<HostAttrs>& host = ctx.options.host;
  for (int r = 0; r < list.size(); ++r) {
    const img::rlimit_entry& e = list[r];
    std::string what = who + std::string(RlimitName(r)) + ": ";
    if (e.cur() > e.max()) {
      ctx.problems.Add(name, 0, what + "soft limit " + Limit(e.cur()) + " is above its hard limit " + Limit(e.max()));
      continue;
    }
    if (r == kNofile && e.max() > (host ? host->nr_open : kNrOpenMax)) {
      ctx.problems.Add(name, 0, what + "hard limit " + Limit(e.max()) + " is above fs.nr_open (" +
                                    Str(host ? host->nr_open : kNrOpenMax) + "), which the kernel refuses");
      continue;
    }
    if (host && e.max() > host->hard_limits[static_cast<size_t>(r)] && !host->cap_sys_resource) {
      ctx.problems.Add(name, 0, what + "hard limit " + Limit(e.max()) + " is above restore-orch's " +
                                    Limit(host->hard_limits[static_cast<size_t>(r)]) +
                                    ": raising it needs CAP_SYS_RESOURCE, which restore-orch does not have");
      continue;
    }
    a.rlimits.push_back(RlimitPlan{r, e.cur(), e.max()});
  }
}

// One thread's own attributes, from its core (the task's for threads[0])
// and its attrs image.
ThreadAttrsPlan ReadThread(Context& ctx, pid_t task, pid_t tid, bool is_root, bool continues) {
  ThreadAttrsPlan th;
  const std::string who = (tid == task ? "task " : "thread " + Str(tid) + " of task ") + Str(task) + ": ";
  const std::string name = MakeFileName(CoreKind(), static_cast<uint32_t>(tid));
  const img::core_entry* core = ctx.Core(tid);
  const std::optional<HostAttrs>& host = ctx.options.host;
  if (core != nullptr && core->has_thread_core()) {
    const img::thread_core_entry& tc = core->thread_core();
    if (tc.has_sched_nice()) {
      if (tc.sched_nice() < -20 || tc.sched_nice() > 19) {
        ctx.problems.Add(name, 0, who + "sched_nice " + std::to_string(tc.sched_nice()) + " is outside -20..19");
      } else if (host && tc.sched_nice() < host->nice && !host->cap_sys_nice) {
        ctx.problems.Add(name, 0, who + "sched_nice " + std::to_string(tc.sched_nice()) + " is below restore-orch's " +
                                      std::to_string(host->nice) + ": lowering it needs CAP_SYS_NICE, which restore-orch does not have");
      } else {
        th.nice = tc.sched_nice();
      }
    }
    if (tc.has_sched_policy()) {
      uint32_t policy = tc.sched_policy(), p = policy & ~kResetOnFork;
      uint32_t prio = tc.has_sched_prio() ? tc.sched_prio() : 0;
      if (p == 6) {
        ctx.problems.Add(name, 0, who + "sched_policy SCHED_DEADLINE cannot be restored (its runtime, deadline and period are not in the images)");
      } else if (p > 5 || p == 4) {
        ctx.problems.Add(name, 0, who + "sched_policy " + Str(policy) + " is no scheduling policy (SCHED_OTHER, FIFO, RR, BATCH, IDLE)");
      } else if (RealTime(policy) ? (prio < 1 || prio > 99) : prio != 0) {
        ctx.problems.Add(name, 0, who + "sched_prio " + Str(prio) + " does not fit " + PolicyName(policy) +
                                      (RealTime(policy) ? " (1..99)" : " (0)"));
      } else if (host && RealTime(policy) && !host->cap_sys_nice) {
        ctx.problems.Add(name, 0, who + "sched_policy " + PolicyName(policy) + " needs CAP_SYS_NICE, which restore-orch does not have");
      } else {
        th.policy = policy;
        th.rt_priority = prio;
      }
    }
    if (tc.has_pdeath_sig() && tc.pdeath_sig() != 0) {
      if (tc.pdeath_sig() > 64) {
        ctx.problems.Add(name, 0, who + "pdeath_sig " + Str(tc.pdeath_sig()) + " is no signal (1..64)");
      } else if (is_root) {
        ctx.problems.Add(name, 0, who + "parent-death signal " + Str(tc.pdeath_sig()) +
                                      " of the root task concerns its parent outside the tree, which a restore does not bring back (restore-orch "
                                      "would stand in for it, and its exit would send the signal): not supported");
      } else {
        th.pdeath_sig = static_cast<int>(tc.pdeath_sig());
      }
    }
    if (tc.has_creds()) {
      uint32_t nnp = tc.creds().has_no_new_privs() ? tc.creds().no_new_privs() : 0;
      if (nnp > 1) {
        ctx.problems.Add(name, 0, who + "no_new_privs " + Str(nnp) + " is neither 0 nor 1");
      } else if (host && host->no_new_privs && nnp == 0) {
        ctx.problems.Add(name, 0, who + "no_new_privs is 0 but restore-orch runs with no_new_privs set, which no task can clear");
      } else {
        th.no_new_privs = nnp == 1;
      }
      auto creds = ReadCreds(tc.creds());
      if (!creds.ok()) {
        ctx.problems.Add(name, 0, who + creds.error().what);
      } else if (!host) {
        th.creds = std::move(creds).value();  // no restore-orch to compare with (verify): what the images say
      } else if (!SameCreds(*creds, *host) && continues) {
        if (std::string why = CannotGive(*creds, *host); !why.empty()) {
          ctx.problems.Add(name, 0, who + "its credentials cannot be given back: " + why);
        } else {
          th.creds = std::move(creds).value();
        }
      } else if (std::string differ = host ? CredsDiffer(tc.creds(), *host) : ""; !differ.empty()) {
        ctx.problems.Add(name, 0, who + "its credentials differ from restore-orch's, which every restored task gets" +
                                      (continues ? "" : " unless it continues (it has no memory images)") +
                                      ": " + differ);
      }
    }
  }
  const ImageFile* f = ctx.dir.Find(AttrsKind(), static_cast<uint32_t>(tid));
  if (f == nullptr) return th;
  const std::string attrs = MakeFileName(AttrsKind(), static_cast<uint32_t>(tid));
  const auto& e = f->As<img::thread_attrs_entry>(0);
  if (e.has_timer_slack_ns()) {
    if (e.timer_slack_ns() == 0 && !(th.policy && RealTime(*th.policy))) {
      ctx.problems.Add(attrs, 0, who + "timer slack 0 is a real-time thread's, and it is not one");
    } else {
      th.timer_slack_ns = e.timer_slack_ns();
    }
  }
  if (e.has_tsc_mode()) {
    if (e.tsc_mode() != 1 && e.tsc_mode() != 2) {
      ctx.problems.Add(attrs, 0, who + "tsc_mode " + Str(e.tsc_mode()) + " is neither PR_TSC_ENABLE (1) nor PR_TSC_SIGSEGV (2)");
    } else {
      th.tsc_mode = e.tsc_mode();
    }
  }
  return th;
}

void ReadTask(Context& ctx, TaskPlan& t) {
  const std::string name = MakeFileName(CoreKind(), static_cast<uint32_t>(t.pid));
  const img::core_entry& core = *ctx.Core(t.pid);
  const img::task_core_entry& tc = core.tc();
  const std::optional<HostAttrs>& host = ctx.options.host;
  AttrsPlan& a = t.attrs;
  const std::string who = "task " + Str(t.pid) + ": ";
  ReadRlimits(ctx, tc, name, who, a);
  if (tc.has_child_subreaper()) a.child_subreaper = tc.child_subreaper();
  if (tc.has_oom_score_adj()) {
    int adj = tc.oom_score_adj();
    if (adj < -1000 || adj > 1000) {
      ctx.problems.Add(name, 0, who + "oom_score_adj " + std::to_string(adj) + " is outside -1000..1000");
    } else if (host && adj < host->oom_score_adj && !host->cap_sys_resource) {
      ctx.problems.Add(name, 0, who + "oom_score_adj " + std::to_string(adj) + " is below restore-orch's " + std::to_string(host->oom_score_adj) +
                                    ": lowering it needs CAP_SYS_RESOURCE, which restore-orch does not have");
    } else {
      a.oom_score_adj = adj;
    }
  }
  // Every restored task has restore-orch's login uid (setting another
  // needs CAP_AUDIT_CONTROL and an unset one, and is refused once set).
  if (host && tc.has_loginuid() && tc.loginuid() != host->loginuid) {
    auto uid = [](uint32_t v) { return v == kLoginuidUnset ? std::string("unset (4294967295)") : Str(v); };
    ctx.problems.Add(name, 0, who + "login uid " + uid(tc.loginuid()) + " differs from restore-orch's " + uid(host->loginuid) +
                                  ", which every restored task gets");
  }
  if (const ImageFile* fs = ctx.dir.Find(FsKind(), static_cast<uint32_t>(t.pid))) {
    const auto& e = fs->As<img::fs_entry>(0);
    if (e.has_umask()) {
      if (e.umask() > 0777) {
        ctx.problems.Add(MakeFileName(FsKind(), static_cast<uint32_t>(t.pid)), 0, who + "umask " + OctStr(e.umask()) + " is beyond 0777");
      } else {
        a.umask = e.umask();
      }
    }
  }
  bool continues = t.resume_mode == ResumeMode::kContinue;
  for (pid_t tid : t.threads) a.threads.push_back(ReadThread(ctx, t.pid, tid, t.pid == ctx.root_pid, continues));
}

}  // namespace

void PlanAttrs(Context& ctx) {
  for (auto& [pid, t] : ctx.tasks) {
    if (t.kind != TaskKind::kAlive || ctx.Core(pid) == nullptr) continue;
    ReadTask(ctx, t);
  }
}

}  // namespace ro::images::plan

namespace ro::images {

std::vector<uint32_t> SortedGroups(std::vector<uint32_t> groups) {
  std::sort(groups.begin(), groups.end());
  return groups;
}

std::string GroupList(const std::vector<uint32_t>& groups) {
  std::string out;
  for (uint32_t g : groups) out += (out.empty() ? "" : ",") + std::to_string(g);
  return out.empty() ? std::string("none") : out;
}

}  // namespace ro::images
