#include "worker/resume.h"

#include <unistd.h>

#include <csignal>
#include <vector>

#include "sys/files.h"
#include "sys/log.h"
#include "sys/process.h"
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

void Seccomp(const images::TaskPlan& t, shm::Arena& arena) {
  Status s = t.seccomp.empty() ? Status() : arena.Fault(shm::FaultPoint::kSeccomp, "seccomp(SET_MODE_FILTER)");
  if (s.ok()) s = InstallSeccomp(t);
  if (!s.ok()) {
    log::Error("task {}: {}", t.pid, s.error().ToString());
    arena.Abort(t.pid, shm::Stage::kDone, s.error());
    _exit(127);
  }
}

// Execs the task's resume program with RESTORE_ORCH_RESTORED=1 added to
// its environment; fds without close-on-exec survive.
[[noreturn]] void Exec(const images::TaskPlan& t, shm::Arena& arena, size_t index, const FdLayout& layout) {
  std::vector<std::string> env = t.resume->env;
  env.push_back("RESTORE_ORCH_RESTORED=1");
  std::vector<char*> argv, envp;
  std::vector<std::string> args = t.resume->argv;
  if (args.empty()) args.push_back(t.resume->exe);
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  // The log fd is close-on-exec and stays usable if exec fails.
  CloseAllButOwn(t, layout, true);
  Seccomp(t, arena);
  if (Status s = arena.Fault(shm::FaultPoint::kResume, "execve(" + t.resume->exe + ")"); !s.ok()) {
    arena.Abort(t.pid, shm::Stage::kDone, s.error());
    _exit(127);
  }
  arena.Arrive(index, shm::Stage::kDone);
  ::execve(t.resume->exe.c_str(), argv.data(), envp.data());
  Error e = SysError("execve(" + t.resume->exe + ")");
  log::Error("task {}: {}", t.pid, e.ToString());
  arena.Abort(t.pid, shm::Stage::kDone, e);
  _exit(127);
}

}  // namespace

Status CheckResumable(const images::TaskPlan& t) {
  if (t.resume_mode == images::ResumeMode::kZombie) return {};
  if (!t.root.empty() && t.root != "/" && ::chroot(t.root.c_str()) != 0) return SysError("chroot(" + t.root + ")");
  bool exec = t.resume_mode == images::ResumeMode::kExec;
  std::string cwd = exec && !t.resume->cwd.empty() ? t.resume->cwd : t.cwd;
  if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) return SysError("chdir(" + cwd + ")");
  if (exec && ::access(t.resume->exe.c_str(), X_OK) != 0) {
    return SysError("resume program " + t.resume->exe + " is not executable");
  }
  return {};
}

void ResumeTask(const images::TaskPlan& t, const images::RestorePlan& plan, shm::Arena& arena, size_t index,
                const FdLayout& layout, bool keep_parent_death) {
  if (t.kind == images::TaskKind::kHelper) _exit(0);  // its work is done; its parent reaps it
  if (!keep_parent_death) sys::SetParentDeathSignal(0);
  switch (t.resume_mode) {
    case images::ResumeMode::kZombie:
      arena.Arrive(index, shm::Stage::kDone);
      sys::CloseRange(0, ~0U);
      ExitAs(t.exit_status);
    case images::ResumeMode::kHold:
      CloseAllButOwn(t, layout, true);
      Seccomp(t, arena);
      arena.Arrive(index, shm::Stage::kDone);
      sys::CloseRange(static_cast<unsigned>(layout.log_fd), static_cast<unsigned>(layout.log_fd));
      for (;;) ::pause();
    case images::ResumeMode::kExec:
      Exec(t, arena, index, layout);
    case images::ResumeMode::kContinue:
      // Counted as resumed now: the orchestrator catches the restorer at
      // its end (or its death) and finishes the hand-over.
      arena.Arrive(index, shm::Stage::kDone);
      RunRestorer(plan);
  }
  _exit(127);
}

}  // namespace ro::worker
