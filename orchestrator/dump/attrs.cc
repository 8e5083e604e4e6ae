// A live task's attributes that CRIU's core has no field for, into
// restore-orch's own attrs-<tid>.img, one per thread: its timer slack and
// TSC mode (its limits, scheduling, parent-death signal, subreaper flag,
// no_new_privs and OOM score go into its cores, signals.cc; its umask into
// fs-<pid>.img, files.cc). What no restore could give back is refused:
// SCHED_DEADLINE (its runtime, deadline and period are not kept), and a
// parent-death signal of the root task, which concerns a parent outside
// the tree (restore-orch stands in for it, and its exit with --detach
// would send the signal). What restore-orch here could not set (a hard
// limit above its own...) the dump's check of its images refuses
// (images/plan/attrs.cc).
#include <sched.h>

#include "images/kinds.h"
#include "images/proto/attrs.pb.h"
#include "orchestrator/dump/collector.h"

namespace ro::dump {

Status Collector::CollectAttrs(const Task& t) {
  for (const ThreadLive& th : t.live->threads) {
    std::string who = th.tid == t.pid ? "it" : "its thread " + Str(th.tid);
    if ((th.sched_policy & ~SCHED_RESET_ON_FORK) == SCHED_DEADLINE) {
      return Refuse(who + " runs under SCHED_DEADLINE, whose runtime, deadline and period are not kept: not supported");
    }
    if (th.pdeath_sig != 0 && t.frozen->parent == 0) {
      return Refuse(who + " has parent-death signal " + Str(th.pdeath_sig) +
                  " (prctl PR_SET_PDEATHSIG), which concerns the root task's parent outside the tree; a restore does not bring it "
                  "back (restore-orch stands in for it, and its exit would send the signal): not supported");
    }
    auto e = std::make_unique<img::thread_attrs_entry>();
    e->set_timer_slack_ns(th.timer_slack);
    if (th.tsc_mode != 0) e->set_tsc_mode(static_cast<uint32_t>(th.tsc_mode));
    File(images::AttrsKind(), static_cast<uint32_t>(th.tid)).entries.push_back(images::Entry{std::move(e), {}});
  }
  return {};
}

}  // namespace ro::dump
