// verify, attrs: what the images say of each live task besides its memory
// and fds. From /proc: its resource limits (prlimit), umask, OOM score,
// and per thread its no_new_privs, nice, policy and real-time priority.
// Asked of the tree, stopped for a moment as the dump stops it (syscalls
// injected into each thread, every register and byte put back): each
// thread's parent-death signal, TSC mode and timer slack, each task's
// child-subreaper flag and, for a task that continued, every signal's
// disposition (handler, flags, mask, restorer), its itimers and each
// thread's blocked signals and sigaltstack (these three compared in
// task_state.cc). A task resumed by exec is compared on its own thread
// only: exec leaves one. Only what the images hold is compared.
#include <linux/prctl.h>
#include <signal.h>

#include <algorithm>

#include "orchestrator/dump/freeze.h"
#include "orchestrator/verify/verifier.h"
#include "sys/proc.h"
#include "sys/proc_mm.h"
#include "sys/process.h"

namespace ro::verify {
namespace {

constexpr int kFreezeTimeoutMs = 10000;

std::string Str(long long v) { return std::to_string(v); }

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%#llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string Limits(uint64_t cur, uint64_t max) {
  auto one = [](uint64_t v) { return v == ~uint64_t{0} ? std::string("unlimited") : std::to_string(v); };
  return one(cur) + "/" + one(max);
}

std::string Sigaction(const sys::KernelSigaction& a) {
  return "handler " + Hex(a.handler) + " flags " + Hex(a.flags) + " mask " + Hex(a.mask) + " restorer " + Hex(a.restorer);
}

}  // namespace

void Verifier::AskTree() {
  auto tree = FrozenTree::Freeze(root_, kFreezeTimeoutMs);
  if (!tree.ok()) {
    Diff("tree (root pid " + Str(root_) + " here): it could not be stopped to ask what only its tasks can tell: " +
         tree.error().ToString());
    return;
  }
  std::map<pid_t, pid_t> inner_of;  // outer pid -> in the tree's namespace
  for (const auto& [pid, l] : live_) inner_of[l.info.outer] = pid;
  for (const FrozenTree::Task& t : tree->tasks()) {
    if (t.zombie || !t.seized || !inner_of.count(t.pid)) continue;
    const images::TaskPlan* plan = plan_.FindTask(inner_of[t.pid]);
    std::string who = "task " + Str(inner_of[t.pid]);
    if (t.stopped) {
      Diff(who + ": stopped (job control): what only it can tell was not asked");
      continue;
    }
    auto insn = sys::FindSyscallInsn(t.pid);
    if (!insn.ok()) {
      Diff(who + ": " + insn.error().ToString());
      continue;
    }
    bool filtered = live_[inner_of[t.pid]].info.seccomp > 0;
    bool continued = plan != nullptr && plan->resume_mode == images::ResumeMode::kContinue;
    std::vector<pid_t> tids{t.pid};
    for (const FrozenTree::Thread& th : t.threads) tids.push_back(th.tid);
    for (pid_t tid : tids) {
      Asked a;
      if (continued) {
        // Before any injection, which blocks every signal meanwhile.
        auto blocked = sys::PtraceGetSigmask(tid);
        if (!blocked.ok()) {
          Diff(who + " (thread " + Str(tid) + " here): " + blocked.error().ToString());
          continue;
        }
        a.blocked = *blocked;
      }
      auto calls = sys::RemoteSyscalls::Begin(tid, *insn, filtered);
      if (!calls.ok()) {
        Diff(who + " (thread " + Str(tid) + " here): " + calls.error().ToString());
        continue;
      }
      Status s = [&]() -> Status {
        if (tid != t.pid) {
          RO_ASSIGN_OR_RETURN(a.knobs, sys::AskThreadKnobs(*calls));
          return {};
        }
        // The task's own thread: all the dump asks, in one stop.
        RO_ASSIGN_OR_RETURN(sys::LeaderAnswers leader, sys::AskLeader(*calls));
        a.knobs = leader.thread;
        a.subreaper = leader.task.child_subreaper;
        if (continued) {
          a.sigactions = leader.sigactions;
          a.task = leader.task;
        }
        return {};
      }();
      Status end = calls->End();
      if (s.ok() && !end.ok()) s = std::move(end);
      if (!s.ok()) {
        Diff(who + " (thread " + Str(tid) + " here): " + s.error().ToString());
        continue;
      }
      asked_[tid] = std::move(a);
    }
  }
  tree->Release();
}

void Verifier::CompareCreds(const std::string& thread, const std::string& dir, const images::CredsPlan& want) {
  auto status = sys::ReadProcFile(dir + "status");
  if (!status.ok()) {
    Diff(thread + ": " + status.error().ToString());
    return;
  }
  for (const auto& [key, dumped] : {std::pair{"Uid", &want.uids}, std::pair{"Gid", &want.gids}}) {
    std::vector<long> have = sys::StatusValues(*status, key);
    std::string have_text, dumped_text;
    for (long id : have) have_text += (have_text.empty() ? "" : "/") + Str(id);
    for (uint32_t id : *dumped) dumped_text += (dumped_text.empty() ? "" : "/") + Str(id);
    if (have_text != dumped_text) Diff(thread + ": " + key + " " + have_text + " (real/effective/saved/fs), images say " + dumped_text);
  }
  const char* keys[] = {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"};
  for (size_t i = 0; i < 5; ++i) {
    std::optional<uint64_t> have = sys::StatusHex(*status, keys[i]);
    if (have != want.caps[i]) Diff(thread + ": " + keys[i] + " " + (have ? Hex(*have) : "?") + ", images say " + Hex(want.caps[i]));
  }
  std::vector<uint32_t> have;
  for (long g : sys::StatusValues(*status, "Groups")) have.push_back(static_cast<uint32_t>(g));
  have = images::SortedGroups(std::move(have));
  std::vector<uint32_t> dumped = images::SortedGroups(want.groups);
  if (have != dumped) Diff(thread + ": supplementary groups " + images::GroupList(have) + ", images say " + images::GroupList(dumped));
}

void Verifier::CompareAttrs() {
  AskTree();
  for (const images::TaskPlan& t : plan_.tasks) {
    if (t.kind != images::TaskKind::kAlive) continue;
    auto it = live_.find(t.pid);
    if (it == live_.end() || it->second.info.state == 'Z') continue;  // reported with the tasks
    const LiveTask& l = it->second;
    const pid_t outer = l.info.outer;
    const images::AttrsPlan& a = t.attrs;
    const std::string who = "task " + Str(t.pid);
    for (const images::RlimitPlan& r : a.rlimits) {
      auto lim = sys::GetResourceLimit(outer, r.resource);
      if (!lim.ok()) {
        Diff(who + ": " + lim.error().ToString());
      } else if (lim->rlim_cur != r.cur || lim->rlim_max != r.max) {
        Diff(who + ": " + std::string(images::RlimitName(r.resource)) + " " + Limits(lim->rlim_cur, lim->rlim_max) + ", images say " +
             Limits(r.cur, r.max));
      }
    }
    if (a.umask) {
      long umask = sys::StatusOctal(l.info.status, "Umask");
      if (umask != static_cast<long>(*a.umask)) {
        char buf[64];
        std::snprintf(buf, sizeof(buf), ": umask %03lo, images say %03o", umask, *a.umask);
        Diff(who + buf);
      }
    }
    if (a.oom_score_adj) {
      auto adj = sys::ReadProcFile("/proc/" + Str(outer) + "/oom_score_adj");
      if (!adj.ok()) {
        Diff(who + ": " + adj.error().ToString());
      } else if (std::atoi(adj->c_str()) != *a.oom_score_adj) {
        Diff(who + ": oom_score_adj " + Str(std::atoi(adj->c_str())) + ", images say " + Str(*a.oom_score_adj));
      }
    }
    auto asked = asked_.find(outer);
    if (a.child_subreaper && asked != asked_.end() && asked->second.subreaper != *a.child_subreaper) {
      Diff(who + (*a.child_subreaper ? ": is not a child subreaper, images say it is" : ": is a child subreaper, images say it is not"));
    }
    if (t.resume_mode == images::ResumeMode::kContinue && asked != asked_.end() && asked->second.sigactions) {
      for (int sig = 1; sig <= 64; ++sig) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        const images::SigactionPlan& p = t.cont->sigactions[static_cast<size_t>(sig - 1)];
        sys::KernelSigaction want{p.handler, p.flags, p.restorer, p.mask};
        const sys::KernelSigaction& have = (*asked->second.sigactions)[static_cast<size_t>(sig)];
        if (have != want) Diff(who + ": signal " + Str(sig) + ": " + Sigaction(have) + ", images say " + Sigaction(want));
      }
    }
    // Each thread's own; a task that did not continue has only its own thread.
    size_t threads = t.resume_mode == images::ResumeMode::kContinue ? std::min(t.threads.size(), a.threads.size())
                                                                    : std::min<size_t>(1, a.threads.size());
    for (size_t i = 0; i < threads; ++i) {
      const images::ThreadAttrsPlan& p = a.threads[i];
      pid_t tid = t.threads[i];
      auto o = l.outer_of.find(tid);
      if (o == l.outer_of.end()) continue;  // reported with the tasks
      std::string thread = i == 0 ? who : who + " thread " + Str(tid);
      std::string dir = "/proc/" + Str(outer) + "/task/" + Str(o->second) + "/";
      if (p.no_new_privs) {
        auto status = sys::ReadProcFile(dir + "status");
        long nnp = status.ok() ? sys::StatusInnermost(*status, "NoNewPrivs") : -1;
        if (nnp != (*p.no_new_privs ? 1 : 0)) Diff(thread + ": NoNewPrivs " + Str(nnp) + ", images say " + Str(*p.no_new_privs ? 1 : 0));
      }
      if (p.creds) CompareCreds(thread, dir, *p.creds);
      if (p.nice) {
        auto stat = sys::ReadProcFile(dir + "stat");
        auto parsed = stat.ok() ? sys::ParseProcStatMm(*stat) : Result<sys::ProcStatMm>(stat.error());
        if (!parsed.ok()) {
          Diff(thread + ": " + parsed.error().ToString());
        } else if (parsed->nice != *p.nice) {
          Diff(thread + ": nice " + Str(parsed->nice) + ", images say " + Str(*p.nice));
        }
      }
      if (p.policy) {
        auto sched = sys::GetScheduling(o->second);
        if (!sched.ok()) {
          Diff(thread + ": " + sched.error().ToString());
        } else if (static_cast<uint32_t>(sched->policy) != *p.policy || static_cast<uint32_t>(sched->priority) != p.rt_priority) {
          Diff(thread + ": scheduling policy " + Hex(static_cast<uint32_t>(sched->policy)) + " priority " + Str(sched->priority) +
               ", images say " + Hex(*p.policy) + " priority " + Str(p.rt_priority));
        }
      }
      auto knobs = asked_.find(o->second);
      if (knobs == asked_.end()) continue;  // reported by AskTree
      const sys::ThreadKnobs& k = knobs->second.knobs;
      // A root task restored without --detach dies with restore-orch (SIGKILL): by design, not a difference.
      auto parent = sys::ReadProcFile("/proc/" + Str(l.info.outer_ppid) + "/comm");
      bool dies_with_restore_orch = i == 0 && t.ppid == 0 && k.pdeath_sig == SIGKILL && p.pdeath_sig == 0 && parent.ok() &&
                                    *parent == "restore-orch\n";
      if (k.pdeath_sig != p.pdeath_sig && !dies_with_restore_orch) {
        Diff(thread + ": parent-death signal " + Str(k.pdeath_sig) + ", images say " + Str(p.pdeath_sig));
      }
      if (p.creds && static_cast<uint32_t>(k.securebits) != p.creds->securebits) {
        Diff(thread + ": securebits " + Hex(static_cast<uint32_t>(k.securebits)) + ", images say " + Hex(p.creds->securebits));
      }
      if (p.tsc_mode && static_cast<uint32_t>(k.tsc_mode) != *p.tsc_mode) {
        Diff(thread + ": TSC mode " + Str(k.tsc_mode) + " (1 enabled, 2 SIGSEGV), images say " + Str(*p.tsc_mode));
      }
      if (p.timer_slack_ns && k.timer_slack != *p.timer_slack_ns) {
        Diff(thread + ": timer slack " + Str(static_cast<long long>(k.timer_slack)) + " ns, images say " +
             Str(static_cast<long long>(*p.timer_slack_ns)));
      }
    }
  }
}

}  // namespace ro::verify
