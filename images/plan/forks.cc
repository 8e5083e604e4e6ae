// The tree, second half: who forks whom, and when, so that every task ends
// with its session and group. A task inherits its session from whoever
// forks it, at that moment; a session leader has two: the one it was born
// in and its own. Helpers stand in for leaders that have exited (kernel
// rule: a session or group can only be created by a task with its id).
#include <algorithm>
#include <set>

#include "images/plan/context.h"

namespace ro::images::plan {
namespace {

std::vector<pid_t> PreOrder(Context& ctx) {
  std::vector<pid_t> order;
  std::vector<pid_t> stack{ctx.root_pid};
  while (!stack.empty()) {
    pid_t p = stack.back();
    stack.pop_back();
    order.push_back(p);
    const auto& kids = ctx.Task(p).children;
    for (auto it = kids.rbegin(); it != kids.rend(); ++it) stack.push_back(*it);
  }
  return order;
}

bool AddHelper(Context& ctx, TaskPlan h) {
  if (ctx.tasks.count(h.pid)) {
    ctx.problems.Add(MakeFileName(PstreeKind()), std::nullopt, "helper pid " + Str(h.pid) + " is taken");
    return false;
  }
  for (const auto& [pid, t] : ctx.tasks) {
    if (std::find(t.threads.begin(), t.threads.end(), h.pid) != t.threads.end()) {
      ctx.problems.Add(MakeFileName(PstreeKind()), std::nullopt,
                       "helper pid " + Str(h.pid) + " is taken by a thread of task " + Str(pid));
      return false;
    }
  }
  ctx.tasks.emplace(h.pid, std::move(h));
  return true;
}

// Which session each task must be born in, and the helpers that stand in
// for exited session leaders' forks of the root's reparented children.
bool PlanSessions(Context& ctx, const std::vector<pid_t>& order) {
  const std::string pstree = MakeFileName(PstreeKind());
  std::map<pid_t, std::optional<pid_t>> born;      // leaders: sid they must be born in
  std::map<pid_t, std::vector<pid_t>> via_helper;  // session -> root children that need it
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    TaskPlan& t = ctx.Task(*it);
    t.setsid = t.sid == t.pid;
    t.leads_group = t.pgid == t.pid;
    if (t.pid == ctx.root_pid) continue;
    TaskPlan& parent = ctx.Task(t.ppid);
    std::optional<pid_t> need = t.setsid ? born[t.pid] : std::optional<pid_t>(t.sid);
    if (!need || *need == parent.sid) continue;  // forked after the parent's setsid
    bool parent_leads = parent.sid == parent.pid;
    bool root = parent.pid == ctx.root_pid;
    // The root task is born in the caller's session, which the tree sees as 0.
    bool parent_can = parent_leads && (root ? *need == 0 : (!born[parent.pid] || *born[parent.pid] == *need));
    if (parent_can) {
      if (!root) born[parent.pid] = *need;
      t.before_parent_setsid = true;
      continue;
    }
    if (root && ctx.plan.ns.new_pid) {
      via_helper[*need].push_back(t.pid);  // reparented to the root when its parent died
      continue;
    }
    ctx.problems.Add(pstree, ctx.pstree_entry[t.pid],
                     "task " + Str(t.pid) + " is in session " + Str(*need) + ", which its parent " + Str(parent.pid) +
                         " (session " + Str(parent.sid) + ") could never have given it");
  }
  if (!ctx.ok()) return false;
  const TaskPlan& root = ctx.Task(ctx.root_pid);
  if (ctx.plan.ns.new_pid && root.sid != 0 && root.sid != root.pid) {
    ctx.problems.Add(pstree, ctx.pstree_entry[ctx.root_pid], "root task is in session " + Str(root.sid) +
                                                                  ", which only a task younger than it could have made");
    return false;
  }

  std::set<pid_t> used;
  for (const auto& [pid, t] : ctx.tasks) used.insert({t.pid, t.sid, t.pgid});
  pid_t next_free = 2;
  auto fresh_pid = [&]() {
    while (used.count(next_free)) ++next_free;
    used.insert(next_free);
    return next_free;
  };
  for (auto& [sid, members] : via_helper) {
    TaskPlan h;
    h.kind = TaskKind::kHelper;
    h.sid = sid;
    h.ppid = ctx.root_pid;
    auto leader = ctx.tasks.find(sid);
    if (leader != ctx.tasks.end()) {
      // The leader lives: a helper born in its session forks the members.
      h.pid = fresh_pid();
      h.fork_parent = sid;
      h.pgid = leader->second.pgid;
      h.helper_reason = "forks session " + Str(sid) + "'s tasks that were reparented to the root";
    } else {
      h.pid = h.pgid = sid;
      h.fork_parent = ctx.root_pid;
      h.setsid = true;
      h.leads_group = true;
      h.helper_reason = "session " + Str(sid) + " outlived its leader";
    }
    for (pid_t m : members) ctx.Task(m).fork_parent = h.pid;
    if (!AddHelper(ctx, std::move(h))) return false;
  }
  return true;
}

// A helper leads each process group whose leader has exited.
bool PlanGroupHelpers(Context& ctx, const std::vector<pid_t>& order) {
  std::set<pid_t> groups;
  for (const auto& [pid, t] : ctx.tasks) {
    if (t.pgid != 0) groups.insert(t.pgid);
  }
  std::map<pid_t, pid_t> first_member;
  for (pid_t p : order) first_member.emplace(ctx.Task(p).pgid, p);
  for (pid_t pgid : groups) {
    if (ctx.tasks.count(pgid)) continue;
    pid_t first = first_member[pgid];
    TaskPlan h;
    h.kind = TaskKind::kHelper;
    h.pid = h.pgid = pgid;
    h.sid = ctx.Task(first).sid;
    h.ppid = h.fork_parent = first;
    h.leads_group = true;
    h.helper_reason = "process group " + Str(pgid) + " outlived its leader";
    if (!AddHelper(ctx, std::move(h))) return false;
  }
  return true;
}

}  // namespace

void PlanForks(Context& ctx) {
  std::vector<pid_t> order = PreOrder(ctx);
  for (pid_t p : order) ctx.Task(p).fork_parent = ctx.Task(p).ppid;
  if (!PlanSessions(ctx, order) || !PlanGroupHelpers(ctx, order)) return;

  // Fork lists in image order, the before-setsid ones first.
  for (auto& [pid, t] : ctx.tasks) t.children.clear();
  std::vector<pid_t> all = order;
  for (const auto& [pid, t] : ctx.tasks) {
    if (t.kind == TaskKind::kHelper) all.push_back(pid);
  }
  for (int pass = 0; pass < 2; ++pass) {
    for (pid_t p : all) {
      TaskPlan& t = ctx.Task(p);
      if (p == ctx.root_pid || t.before_parent_setsid != (pass == 0)) continue;
      ctx.Task(t.fork_parent).children.push_back(p);
    }
  }
  ctx.fork_order = PreOrder(ctx);
}

ForkAncestry::ForkAncestry(Context& ctx) : ctx_(ctx) {
  std::vector<pid_t> stack{ctx.root_pid};
  depth_[ctx.root_pid] = 0;
  while (!stack.empty()) {
    pid_t p = stack.back();
    stack.pop_back();
    for (pid_t c : ctx.Task(p).children) {
      depth_[c] = depth_[p] + 1;
      stack.push_back(c);
    }
  }
}

pid_t ForkAncestry::Common(pid_t a, pid_t b) const {
  while (depth_.at(a) > depth_.at(b)) a = ctx_.Task(a).fork_parent;
  while (depth_.at(b) > depth_.at(a)) b = ctx_.Task(b).fork_parent;
  while (a != b) {
    a = ctx_.Task(a).fork_parent;
    b = ctx_.Task(b).fork_parent;
  }
  return a;
}

void LayOutTasks(Context& ctx) {
  RestorePlan& plan = ctx.plan;
  plan.tasks.reserve(ctx.fork_order.size());
  for (pid_t p : ctx.fork_order) {
    plan.index[p] = static_cast<int>(plan.tasks.size());
    plan.tasks.push_back(std::move(ctx.Task(p)));
    plan.helpers += plan.tasks.back().kind == TaskKind::kHelper;
  }
}

}  // namespace ro::images::plan
