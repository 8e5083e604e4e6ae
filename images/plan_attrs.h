// The part of the plan for a live task's attributes (images/plan/attrs.cc):
// its resource limits, scheduling, parent-death signal, child-subreaper
// flag, no_new_privs, umask, OOM score, timer slack and TSC mode, from its
// core-<tid>.img (tc.rlimits, tc.child_subreaper, tc.oom_score_adj,
// thread_core.sched_*, pdeath_sig, creds.no_new_privs), fs-<pid>.img
// (umask) and restore-orch's own attrs-<tid>.img (timer slack, TSC mode,
// which CRIU does not keep). Every value is checked against what the
// kernel accepts, and, when the caller says what this host lets
// restore-orch set (PlanOptions::host), against that: a value the restore
// could not give back is a problem, never a silent loss.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ro::images {

inline constexpr int kNumRlimits = 16;  // RLIM_NLIMITS

// "RLIMIT_NOFILE" for 7; "RLIMIT_?" beyond the kernel's.
inline std::string_view RlimitName(int resource) {
  constexpr std::string_view kNames[kNumRlimits] = {
      "RLIMIT_CPU",   "RLIMIT_FSIZE",  "RLIMIT_DATA",    "RLIMIT_STACK",    "RLIMIT_CORE",       "RLIMIT_RSS",
      "RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS",       "RLIMIT_LOCKS",      "RLIMIT_SIGPENDING",
      "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_RTPRIO", "RLIMIT_RTTIME"};
  return resource >= 0 && resource < kNumRlimits ? kNames[resource] : "RLIMIT_?";
}

struct RlimitPlan {
  int resource = 0;  // RLIMIT_*
  uint64_t cur = 0, max = 0;  // RLIM_INFINITY is ~0
};

// A thread's credentials, when they differ from restore-orch's: set by the
// restorer as the thread's very last step, so only a task that continues
// has them. Bits of a set: 1 << CAP_*.
struct CredsPlan {
  enum Set { kInheritable, kPermitted, kEffective, kBounding, kAmbient };
  enum Id { kReal, kEffectiveId, kSaved, kFs };
  std::array<uint32_t, 4> uids{}, gids{};  // by Id, as in /proc/PID/status's Uid and Gid lines
  std::array<uint64_t, 5> caps{};  // by Set
  uint32_t securebits = 0;         // SECBIT_* (prctl PR_SET_SECUREBITS)
  std::vector<uint32_t> groups;    // as the image lists them, at most kMaxGroups
};
inline constexpr size_t kMaxGroups = 65536;  // NGROUPS_MAX

// Supplementary groups as the set they are: sorted (images and /proc list
// them in any order).
std::vector<uint32_t> SortedGroups(std::vector<uint32_t> groups);
// Groups as "5,6", or "none" when there are none.
std::string GroupList(const std::vector<uint32_t>& groups);

struct ThreadAttrsPlan {
  std::optional<int> nice;                // -20..19
  std::optional<uint32_t> policy;         // SCHED_* | SCHED_RESET_ON_FORK
  uint32_t rt_priority = 0;               // SCHED_FIFO/SCHED_RR: 1..99
  int pdeath_sig = 0;                     // 0: none
  std::optional<bool> no_new_privs;
  std::optional<uint64_t> timer_slack_ns; // 0 only for a real-time thread
  std::optional<uint32_t> tsc_mode;       // PR_TSC_ENABLE 1, PR_TSC_SIGSEGV 2
  std::optional<CredsPlan> creds;         // only when they differ from restore-orch's (always without PlanOptions::host)
};

// What a task has as a whole (its signal struct and fs), and per thread.
struct AttrsPlan {
  std::vector<RlimitPlan> rlimits;        // in RLIMIT_* order, at most kNumRlimits
  std::optional<uint32_t> umask;          // 0..0777
  std::optional<bool> child_subreaper;
  std::optional<int> oom_score_adj;       // -1000..1000
  std::vector<ThreadAttrsPlan> threads;   // as TaskPlan::threads: the task's own first
};

// One line of /proc/PID/uid_map or gid_map: ids [inside, inside + count)
// of the user namespace are [outside, outside + count) of its parent's.
struct IdRange {
  uint32_t inside = 0, outside = 0, count = 0;
};

// What this host lets a restore give its tasks (restore-orch's own state):
// each restored task starts with restore-orch's limits, nice, login uid,
// OOM score and no_new_privs, and without CAP_SYS_RESOURCE or
// CAP_SYS_NICE can only lower what needs them to raise.
struct HostAttrs {
  std::array<uint64_t, kNumRlimits> hard_limits{};  // restore-orch's rlim_max
  uint64_t nr_open = 1048576;                       // fs.nr_open: RLIMIT_NOFILE's ceiling
  bool cap_sys_resource = false;
  bool cap_sys_nice = false;
  int nice = 0;
  bool no_new_privs = false;
  uint32_t loginuid = 4294967295u;
  int oom_score_adj = 0;
  // Its credentials, which every restored task gets: uid and gid (real,
  // effective, saved, fs), capability sets (inheritable, permitted,
  // effective, bounding, ambient), securebits, supplementary groups.
  std::array<uint32_t, 4> uids{}, gids{};
  std::array<uint64_t, 5> caps{};
  uint32_t securebits = 0;
  std::vector<uint32_t> groups;
  // The ids its user namespace maps (only those can be set): its
  // uid_map and gid_map; the initial namespace maps all but 4294967295.
  std::vector<IdRange> uid_map{{0, 0, 4294967295u}}, gid_map{{0, 0, 4294967295u}};
};

}  // namespace ro::images
