// verify, tree: every task of the images alive (or a zombie) with its
// parent, session, group, thread ids and exit status; no task the images
// do not have.
#include <algorithm>
#include <map>
#include <set>

#include "orchestrator/verify/verifier.h"

namespace ro::verify {

void Verifier::CollectTasks() {
  std::map<pid_t, pid_t> inner_of;  // outer pid -> pid in the tree's namespace
  std::vector<pid_t> stack{root_};
  while (!stack.empty()) {
    pid_t outer = stack.back();
    stack.pop_back();
    auto task = sys::ReadTask(outer);
    if (!task.ok()) {
      Diff("task (pid " + std::to_string(outer) + " here): " + task.error().ToString());
      continue;
    }
    inner_of[outer] = task->pid;
    LiveTask& live = live_[task->pid];
    live.info = std::move(task).value();
    // Its threads by their ids in the tree's namespace (a thread's NSpid).
    if (auto tids = sys::ReadThreadIds(outer); tids.ok()) {
      for (pid_t tid : *tids) {
        if (tid == outer) {
          live.threads.push_back(live.info.pid);
          live.outer_of[live.info.pid] = outer;
        } else if (auto th = sys::ReadTask(tid); th.ok()) {
          live.threads.push_back(th->pid);
          live.outer_of[th->pid] = tid;
        }
      }
    }
    auto children = sys::ReadChildren(outer);
    if (!children.ok()) {
      Diff("task (pid " + std::to_string(outer) + " here): " + children.error().ToString());
      continue;
    }
    for (pid_t k : *children) stack.push_back(k);
  }
  for (auto& [pid, t] : live_) {
    auto parent = inner_of.find(t.info.outer_ppid);
    t.ppid = t.info.outer == root_ || parent == inner_of.end() ? 0 : parent->second;
  }
}

void Verifier::CompareTasks() {
  std::map<pid_t, bool> seen;
  // A session or group the images have as 0 (--shell-job) is the caller's:
  // any the tree's tasks and helpers do not lead.
  std::set<pid_t> planned;
  for (const auto& t : plan_.tasks) planned.insert(t.pid);
  auto same = [&](pid_t live, pid_t images) { return live == images || (images == 0 && planned.count(live) == 0); };
  // ...and one session (group) for all of them: the partition counts, not
  // only the numbers. Compared as restore-orch sees them (inside a new PID
  // namespace every outside session is 0).
  std::map<std::string, std::pair<pid_t, pid_t>> caller;  // "session"/"process group" -> first task, its live id
  auto one_outside = [&](const std::string& what, pid_t task, pid_t live, pid_t images) {
    if (images != 0) return;
    auto [first, fresh] = caller.emplace(what, std::make_pair(task, live));
    if (!fresh && first->second.second != live) {
      Diff("task " + std::to_string(task) + ": " + what + " " + std::to_string(live) + ", not the " + what + " " +
           std::to_string(first->second.second) + " of task " + std::to_string(first->second.first) +
           " (as seen here; the images have both in the caller's)");
    }
  };
  for (const auto& t : plan_.tasks) {
    if (t.kind == images::TaskKind::kHelper) continue;
    seen[t.pid] = true;
    auto it = live_.find(t.pid);
    std::string who = "task " + std::to_string(t.pid);
    if (it == live_.end()) {
      Diff(who + ": missing");
      continue;
    }
    const sys::TaskInfo& l = it->second.info;
    pid_t ppid = it->second.ppid;
    if (ppid != t.ppid) Diff(who + ": parent " + std::to_string(ppid) + ", images say " + std::to_string(t.ppid));
    if (!same(l.sid, t.sid)) Diff(who + ": session " + std::to_string(l.sid) + ", images say " + std::to_string(t.sid));
    if (!same(l.pgid, t.pgid)) Diff(who + ": process group " + std::to_string(l.pgid) + ", images say " + std::to_string(t.pgid));
    one_outside("session", t.pid, l.outer_sid, t.sid);  // as restore-orch sees them: 0 inside a new PID namespace
    one_outside("process group", t.pid, l.outer_pgid, t.pgid);
    bool zombie = t.kind == images::TaskKind::kZombie;
    if (zombie != (l.state == 'Z')) Diff(who + (zombie ? ": not a zombie" : ": is a zombie"));
    if (!zombie && l.state != 'Z') {
      std::vector<pid_t> want = t.threads, have = it->second.threads;
      std::sort(want.begin(), want.end());
      std::sort(have.begin(), have.end());
      auto ids = [](const std::vector<pid_t>& v) {
        std::string out;
        for (pid_t x : v) out += (out.empty() ? "" : " ") + std::to_string(x);
        return out;
      };
      if (want != have) Diff(who + ": threads " + ids(have) + ", images say " + ids(want));
    }
    if (zombie && l.state == 'Z' && static_cast<uint32_t>(l.exit_code) != t.exit_status) {
      Diff(who + ": exit status " + std::to_string(l.exit_code) + ", images say " + std::to_string(t.exit_status));
    }
  }
  for (const auto& [pid, l] : live_) {
    if (!seen.count(pid)) Diff("task " + std::to_string(pid) + ": not in the images");
  }
}

}  // namespace ro::verify
