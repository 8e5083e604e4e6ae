#include "orchestrator/dump/freeze.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "sys/log.h"
#include "sys/proc.h"
#include "sys/proc_tree.h"
#include "sys/process.h"
#include "sys/ptrace_api.h"
#include "sys/status.h"

namespace ro {
namespace {

std::string Proc(pid_t pid, const std::string& rest) { return "/proc/" + std::to_string(pid) + "/" + rest; }

// The children of every thread of `pid` (empty when it is gone).
std::vector<pid_t> Children(pid_t pid) {
  auto children = sys::ReadChildren(pid);
  return children.ok() ? std::move(children).value() : std::vector<pid_t>{};
}

char StateOf(pid_t pid) {
  auto text = sys::ReadProcFile(Proc(pid, "stat"));
  if (!text.ok()) return '\0';
  auto st = sys::ParseProcStat(*text);
  return st.ok() ? st->state : '\0';
}

// A task (or thread) in vfork(2) waits uninterruptibly (wchan
// kernel_clone) until its child, which runs in its address space, execs or
// exits: no interrupt stops it, and its memory is its child's. The child
// sharing its mm (kcmp KCMP_VM), or 0 when it is no vfork parent.
pid_t VforkChild(pid_t tid) {
  if (StateOf(tid) != 'D') return 0;
  auto wchan = sys::ReadProcFile(Proc(tid, "wchan"));
  bool in_clone = !wchan.ok() || wchan->empty() || wchan->find("clone") != std::string::npos || wchan->find("vfork") != std::string::npos;
  if (!in_clone) return 0;
  for (pid_t child : Children(tid)) {
    if (sys::KcmpSame(tid, child, sys::KcmpType::kVm)) return child;
  }
  return 0;
}

Error VforkRefusal(pid_t child) {
  return Refuse("it is a vfork parent waiting for its child " + std::to_string(child) +
              " (which runs in its memory until it execs or exits): a vfork parent cannot be dumped");
}

// Why a task may be stuck, from where it waits (its wchan): said only when
// the kernel function names it.
std::string WaitCause(const std::string& wchan) {
  if (wchan.find("autofs") != std::string::npos) return "an AutoFS lookup, whose master may be frozen or gone";
  for (const char* io : {"io_schedule", "folio_wait", "wait_on_page", "blk_", "bio_", "nfs", "fuse", "jbd2", "ext4", "xfs", "btrfs"}) {
    if (wchan.find(io) != std::string::npos) return "I/O";
  }
  return "";
}

}  // namespace

Result<FrozenTree> FrozenTree::Freeze(pid_t root, int timeout_ms) {
  FrozenTree tree(timeout_ms);
  // Every pid below is read from /proc: it must be this PID namespace's.
  auto self = sys::ReadProcLink("/proc/self");
  if (!self.ok() || *self != std::to_string(::getpid())) {
    return Fail("/proc is not the proc of restore-orch's PID namespace (mount one, or run restore-orch where it is)");
  }
  if (root == ::getpid()) return Refuse("task " + std::to_string(root) + " is restore-orch itself: dump a tree it is not part of");
  Task t;
  t.pid = root;
  tree.tasks_.push_back(std::move(t));
  tree.index_[root] = 0;
  if (Status s = tree.Seize(tree.tasks_[0]); !s.ok()) return std::move(s).error().Within("task " + std::to_string(root));
  if (tree.tasks_[0].zombie) return Refuse("task " + std::to_string(root) + ": the tree's root is a zombie");
  RO_TRY(tree.Discover());
  return tree;
}

Status FrozenTree::Seize(Task& t) {
  RO_ASSIGN_OR_RETURN(t.pidfd, sys::PidfdOpen(t.pid));
  char state = StateOf(t.pid);
  if (state == 'Z' || state == 'X') {
    // A leader that called pthread_exit shows as a zombie while its
    // threads run on: not a zombie a restore could make.
    auto tids = sys::ReadThreadIds(t.pid);
    if (tids.ok() && tids->size() > 1) {
      return Refuse("its main thread exited while " + std::to_string(tids->size() - 1) +
                  " other thread(s) run on: not supported");
    }
    t.zombie = true;
    return {};
  }
  // Refused at once rather than after --freeze-timeout.
  if (pid_t child = VforkChild(t.pid); child != 0) return VforkRefusal(child);
  t.stopped = state == 'T';
  if (frozen_at_ == std::chrono::steady_clock::time_point{}) frozen_at_ = std::chrono::steady_clock::now();
  if (Status s = sys::PtraceSeize(t.pid); !s.ok()) {
    // It may have exited since: then it is a zombie (its parent is frozen
    // or about to be) and needs no freezing.
    char now = StateOf(t.pid);
    if (now == 'Z' || now == 'X') {
      t.zombie = true;
      return {};
    }
    auto info = sys::ReadTask(t.pid);
    long tracer = info.ok() ? info->tracer : 0;
    if (tracer > 0) return Refuse("it is traced by pid " + std::to_string(tracer) + " (a debugger or tracer): it cannot be frozen");
    return s;
  }
  t.seized = true;
  RO_ASSIGN_OR_RETURN(sys::PtraceStop stop, Stop(t.pid));
  if (stop.exited) {
    t.seized = false;  // the kernel detached it when it died
    t.zombie = true;
    return {};
  }
  if (stop.group_stop != 0) t.stopped = true;  // stopped by a signal meanwhile: job control
  t.pending_signal = stop.pending_signal;
  RO_TRY(SeizeThreads(t));
  log::Debug("froze task {} ({} threads)", t.pid, t.threads.size() + 1);
  return {};
}

Result<sys::PtraceStop> FrozenTree::Stop(pid_t tid) {
  auto stopped = sys::PtraceInterruptAndWait(tid, timeout_ms_);
  if (!stopped.ok() && stopped.error().err == ETIMEDOUT) {
    // Still traced: the kernel detaches it when restore-orch exits. A
    // vfork that began after the first look is no wait to try again.
    if (pid_t child = VforkChild(tid); child != 0) return VforkRefusal(child);
    auto wchan = sys::ReadProcFile(Proc(tid, "wchan"));
    std::string where = wchan.ok() && !wchan->empty() && *wchan != "0" ? *wchan : "";
    std::string cause = WaitCause(where);
    return SysError("it did not stop within " + std::to_string(timeout_ms_) + " ms: it waits uninterruptibly" +
                        (where.empty() ? std::string() : " in " + where) + (cause.empty() ? " (cause unknown)" : " (" + cause + ")") +
                        "; try again",
                    kErrTryAgain);
  }
  if (!stopped.ok()) return std::move(stopped).error();
  sys::PtraceStop stop = *stopped;
  // A signal already on its way in when the task stopped: it is delivered
  // (its handler runs, as it would have), then the task stops for us. So
  // the dump sees it stopped where it can be read and asked (its registers
  // are not half-way into a signal), and the signal is not lost to the
  // syscalls the dump injects.
  for (int round = 0; round < 8 && stop.pending_signal != 0 && !stop.exited; ++round) {
    RO_TRY(sys::PtraceCont(tid, stop.pending_signal));
    RO_ASSIGN_OR_RETURN(stop, sys::PtraceInterruptAndWait(tid, timeout_ms_));
  }
  return stop;
}

// Seizing a thread does not stop its siblings: each is seized and
// interrupted on its own. A thread running when its siblings stopped may
// have cloned another: /proc/PID/task is read again until a pass finds
// none new (every known thread is stopped then, none can clone).
Status FrozenTree::SeizeThreads(Task& t) {
  std::set<pid_t> known{t.pid};
  for (bool grew = true; grew;) {
    grew = false;
    RO_ASSIGN_OR_RETURN(std::vector<pid_t> tids, sys::ReadThreadIds(t.pid));
    for (pid_t tid : tids) {
      if (!known.insert(tid).second) continue;
      grew = true;
      std::string who = "thread " + std::to_string(tid);
      if (Status s = sys::PtraceSeize(tid); !s.ok()) {
        if (s.error().err == ESRCH) continue;  // it exited meanwhile
        return std::move(s).error().Within(who);
      }
      t.threads.push_back(Thread{tid, true, 0});
      auto stop = Stop(tid);
      if (!stop.ok()) return std::move(stop).error().Within(who);
      if (stop->exited) {
        t.threads.pop_back();  // the kernel detached it when it died
        continue;
      }
      if (stop->group_stop != 0) t.stopped = true;
      t.threads.back().pending_signal = stop->pending_signal;
      log::Debug("froze thread {} of task {}", tid, t.pid);
    }
  }
  std::sort(t.threads.begin(), t.threads.end(), [](const Thread& a, const Thread& b) { return a.tid < b.tid; });
  return {};
}

Status FrozenTree::Discover() {
  // A pass over every frozen task's children finds those forked before it
  // stopped; once a pass finds nothing new, no frozen task can fork again.
  for (bool grew = true; grew;) {
    grew = false;
    for (size_t i = 0; i < tasks_.size(); ++i) {
      if (tasks_[i].zombie) continue;
      pid_t parent = tasks_[i].pid;
      for (pid_t child : Children(parent)) {
        if (index_.count(child)) continue;
        if (child == ::getpid()) return Refuse("task " + std::to_string(child) + " is restore-orch itself: dump a tree it is not part of");
        Task t;
        t.pid = child;
        t.parent = parent;
        tasks_.push_back(std::move(t));
        index_[child] = tasks_.size() - 1;
        if (Status s = Seize(tasks_.back()); !s.ok()) return std::move(s).error().Within("task " + std::to_string(child));
        grew = true;
      }
    }
  }
  // A task that became a zombie while its siblings were frozen is a zombie
  // now: its children (none of a zombie's) were reparented and found above.
  return {};
}

void FrozenTree::Release() {
  if (released_) return;
  released_ = true;
  for (Task& t : tasks_) {
    for (Thread& th : t.threads) {
      if (!th.seized) continue;
      if (Status s = sys::PtraceDetach(th.tid, th.pending_signal); !s.ok() && s.error().err != ESRCH) {
        log::Warn("release thread {} of task {}: {}", th.tid, t.pid, s.error().ToString());
      }
      th.seized = false;
    }
    if (!t.seized) continue;
    if (Status s = sys::PtraceDetach(t.pid, t.pending_signal); !s.ok() && !(s.error().err == ESRCH)) {
      log::Warn("release task {}: {}", t.pid, s.error().ToString());
    }
    t.seized = false;
  }
}

Status FrozenTree::Kill() {
  Status first;
  for (Task& t : tasks_) {
    if (Status s = sys::PidfdSendSignal(t.pidfd, SIGKILL); !s.ok() && s.error().err != ESRCH && first.ok()) {
      first = std::move(s).error().Within("kill task " + std::to_string(t.pid));
    }
  }
  Release();
  return first;
}

}  // namespace ro
