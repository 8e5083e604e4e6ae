#include "worker/resume.h"

#include <unistd.h>

#include <csignal>
#include <vector>

#include "sys/files.h"
#include "sys/log.h"
#include "sys/process.h"
#include "worker/attrs.h"
#include "worker/mm.h"
#include "worker/seccomp.h"

namespace ro::worker {
namespace {

[[noreturn]] void ExitAs(uint32_t wait_status) {
  int sig = static_cast<int>(wait_status & 0x7f);
  if (sig != 0) {
    ::signal(sig, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    ::sigprocmask(SIG_UNBLOCK, &set, nullptr);
    ::raise(sig);
    // A signal whose default is not to terminate: the closest is an exit.
  }
  _exit(static_cast<int>((wait_status >> 8) & 0xff));
}

// A step of the hand-over that must succeed: its failure aborts the restore.
void Must(const images::TaskPlan& t, shm::Arena& arena, Status s) {
  if (!s.ok()) {
    log::Info("task {}: {}", t.pid, s.error().ToString());  // the orchestrator prints the one error line
    arena.Abort(t.pid, shm::Stage::kDone, s.error());
    _exit(127);
  }
}

// Its limits, its thread's attributes (no_new_privs last), then its seccomp
// filters: they may forbid what comes before.
void Seccomp(const images::TaskPlan& t, shm::Arena& arena) {
  Must(t, arena, ApplyOwnThreadAttrs(t));
  Status s = t.seccomp.empty() ? Status() : arena.Fault(shm::FaultPoint::kSeccomp, "seccomp(SET_MODE_FILTER)");
  if (s.ok()) s = InstallSeccomp(t);
  Must(t, arena, std::move(s));
}

// Execs the task's resume program with RESTORE_ORCH_RESTORED=1 added to
// its environment; fds without close-on-exec survive.
// The exec's status pipe: close-on-exec write end kept through the exec,
// read end opened by the orchestrator through /proc (worker: PrepareExec).
int g_exec_status_write = -1;

[[noreturn]] void Exec(const images::TaskPlan& t, shm::Arena& arena, size_t index, shm::Stage last, const FdLayout& layout) {
  std::vector<std::string> env = t.resume->env;
  env.push_back("RESTORE_ORCH_RESTORED=1");
  std::vector<char*> argv, envp;
  std::vector<std::string> args = t.resume->argv;
  if (args.empty()) args.push_back(t.resume->exe);
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  // The log fd and the status pipe's write end are close-on-exec: they stay
  // usable if the exec fails, and the orchestrator reads end of file when
  // it succeeds.
  CloseAllButOwn(t, {layout.log_fd, g_exec_status_write});
  Seccomp(t, arena);
  if (Status s = arena.Fault(shm::FaultPoint::kResume, "execve(" + t.resume->exe + ")"); !s.ok()) {
    arena.Abort(t.pid, shm::Stage::kDone, s.error());
    _exit(127);
  }
  arena.Arrive(index, last);
  bool tsc = SetTscMode(t);  // nothing may read the clock from here on
  ::execve(t.resume->exe.c_str(), argv.data(), envp.data());
  Error e = SysError("execve(" + t.resume->exe + ")");
  if (tsc) ResetTscMode();
  int err = e.err;
  (void)!::write(g_exec_status_write, &err, sizeof(err));
  log::Info("task {}: {}", t.pid, e.ToString());  // the orchestrator prints the one error line
  arena.Abort(t.pid, shm::Stage::kDone, e);
  _exit(127);
}

}  // namespace

Status PrepareExec(const images::TaskPlan& t, shm::Arena& arena, size_t index, const FdLayout& layout) {
  if (t.resume_mode != images::ResumeMode::kExec) return {};
  RO_ASSIGN_OR_RETURN(sys::PipeEnds ends, sys::Pipe(0));
  RO_ASSIGN_OR_RETURN(UniqueFd read, sys::DupAtOrAbove(ends.read.get(), layout.parked_base));
  RO_ASSIGN_OR_RETURN(UniqueFd write, sys::DupAtOrAbove(ends.write.get(), layout.parked_base));
  arena.slot(index).exec_status_fd.store(read.release());
  g_exec_status_write = write.release();
  return {};
}

Status CheckResumable(const images::TaskPlan& t) {
  if (t.resume_mode == images::ResumeMode::kZombie) return {};
  // Both are paths of the mount namespace (as /proc/PID/cwd reads from
  // outside it), not of the task's root: the working directory is reached
  // first, and chroot keeps it.
  bool exec = t.resume_mode == images::ResumeMode::kExec;
  std::string cwd = exec && !t.resume->cwd.empty() ? t.resume->cwd : t.cwd;
  if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) return SysError("chdir(" + cwd + ")");
  if (!t.root.empty() && t.root != "/" && ::chroot(t.root.c_str()) != 0) return SysError("chroot(" + t.root + ")");
  if (exec && ::access(t.resume->exe.c_str(), X_OK) != 0) {
    return SysError("resume program " + t.resume->exe + " is not executable");
  }
  return {};
}

namespace {

// A task of a tree in the caller's PID namespace has died with its parent
// since its clone (worker/tree.cc); at the hand-over it stops, but only once
// its parent has: restore-orch killed before the root task stopped takes
// every task with it (each one's parent dies first), killed after it takes
// none (no task's parent dies), never part of the tree. The root task keeps
// its parent-death signal with `keep` (attached: it dies with restore-orch).
void StopDyingWithParent(const images::TaskPlan& t, const images::RestorePlan& plan, shm::Arena& arena, size_t index,
                         shm::Stage last, bool keep) {
  if (!plan.ns.new_pid && t.fork_parent != 0) {
    int parent = plan.IndexOf(t.fork_parent);
    if (parent >= 0 && plan.tasks[static_cast<size_t>(parent)].kind != images::TaskKind::kHelper) {
      if (Status s = arena.WaitReleased(static_cast<size_t>(parent)); !s.ok()) {
        arena.Abort(t.pid, last, s.error());
        _exit(1);
      }
    }
  }
  // The task's own parent-death signal from here on (its parent is the
  // one it had, helpers are gone; the root task has none: images/plan/attrs.cc).
  if (!keep) sys::SetParentDeathSignal(t.attrs.threads.empty() ? 0 : t.attrs.threads.front().pdeath_sig);
  arena.MarkReleased(index);
}

}  // namespace

void ResumeTask(const images::TaskPlan& t, const images::RestorePlan& plan, shm::Arena& arena, size_t index, shm::Stage last,
                const FdLayout& layout, bool keep_parent_death) {
  if (t.kind == images::TaskKind::kHelper) {
    // Its work is done once its stage has ended for all; its parent reaps it.
    (void)arena.FinishStage(index, last);
    _exit(0);
  }
  if (t.resume_mode == images::ResumeMode::kZombie) {
    // It exits at the end of the resume stage, while its parent is still in
    // it: it cannot wait for its parent's release (that comes in the done
    // stage), and has no need to. Killed with restore-orch before it exits,
    // it is gone as it would be soon anyway; after, it is its parent's zombie.
    arena.MarkReleased(index);
  } else {
    StopDyingWithParent(t, plan, arena, index, last, keep_parent_death);
    Must(t, arena, ApplyTaskAttrs(t, layout));
  }
  switch (t.resume_mode) {
    case images::ResumeMode::kZombie:
      arena.Arrive(index, last);
      sys::CloseRange(0, ~0U);
      ExitAs(t.exit_status);
    case images::ResumeMode::kHold:
      CloseAllButOwn(t, {layout.log_fd});
      Seccomp(t, arena);
      arena.Arrive(index, last);
      sys::CloseRange(static_cast<unsigned>(layout.log_fd), static_cast<unsigned>(layout.log_fd));
      (void)SetTscMode(t);
      for (;;) ::pause();
    case images::ResumeMode::kExec:
      Exec(t, arena, index, last, layout);
    case images::ResumeMode::kContinue:
      // Counted as resumed now: the orchestrator catches the restorer at
      // its end (or its death) and finishes the hand-over.
      arena.Arrive(index, last);
      RunRestorer(plan);
  }
  _exit(127);
}

}  // namespace ro::worker
