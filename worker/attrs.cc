#include "worker/attrs.h"

#include <linux/prctl.h>

#include "sys/task_attrs.h"

namespace ro::worker {

Status ApplyTaskAttrs(const images::TaskPlan& t, const FdLayout& layout) {
  const images::AttrsPlan& a = t.attrs;
  if (a.umask) sys::SetUmask(*a.umask);
  if (a.child_subreaper) RO_TRY(sys::SetChildSubreaper(*a.child_subreaper));
  if (a.oom_score_adj) RO_TRY(sys::SetOomScoreAdj(layout.proc_fd, *a.oom_score_adj));
  return {};
}

Status ApplyOwnThreadAttrs(const images::TaskPlan& t) {
  for (const images::RlimitPlan& r : t.attrs.rlimits) RO_TRY(sys::SetResourceLimit(r.resource, r.cur, r.max));
  if (t.attrs.threads.empty()) return {};
  const images::ThreadAttrsPlan& th = t.attrs.threads.front();
  // The slack before the policy: a real-time thread's slack is the kernel's.
  if (th.timer_slack_ns) RO_TRY(sys::SetTimerSlack(*th.timer_slack_ns));
  if (th.nice) RO_TRY(sys::SetNice(*th.nice));
  if (th.policy) RO_TRY(sys::SetScheduling(*th.policy, th.rt_priority));
  if (th.no_new_privs.value_or(false)) RO_TRY(sys::SetNoNewPrivs());
  return {};
}

bool SetTscMode(const images::TaskPlan& t) {
  if (t.attrs.threads.empty() || !t.attrs.threads.front().tsc_mode) return false;
  return sys::SetTscMode(*t.attrs.threads.front().tsc_mode).ok();
}

void ResetTscMode() { (void)sys::SetTscMode(PR_TSC_ENABLE); }

void FillRestorerAttrs(const images::AttrsPlan& a, restorer::TaskArgs& args, restorer::ThreadArgs* threads, size_t nr_threads) {
  args.nr_rlimits = 0;
  for (const images::RlimitPlan& r : a.rlimits) {
    args.rlimits[args.nr_rlimits++] = restorer::Rlimit{r.cur, r.max, static_cast<uint32_t>(r.resource), 0};
  }
  for (size_t i = 0; i < nr_threads && i < a.threads.size(); ++i) {
    const images::ThreadAttrsPlan& p = a.threads[i];
    restorer::ThreadArgs& th = threads[i];
    th.has_timer_slack = p.timer_slack_ns.has_value();
    th.timer_slack = p.timer_slack_ns.value_or(0);
    th.has_nice = p.nice.has_value();
    th.nice = p.nice.value_or(0);
    th.has_policy = p.policy.has_value();
    th.policy = p.policy.value_or(0);
    th.rt_priority = p.rt_priority;
    th.tsc_mode = p.tsc_mode.value_or(0);
    th.pdeath_sig = static_cast<uint32_t>(p.pdeath_sig);
    th.no_new_privs = p.no_new_privs.value_or(false) ? 1 : 0;
  }
}

}  // namespace ro::worker
