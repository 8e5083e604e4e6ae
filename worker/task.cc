#include "worker/task.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "sys/clone.h"
#include "sys/futex.h"
#include "sys/log.h"
#include "sys/proc.h"
#include "worker/resume.h"

namespace ro::worker {
namespace {

using images::TaskKind;
using images::TaskPlan;
using shm::Stage;

std::string Num(long v) { return std::to_string(v); }

class Task {
 public:
  Task(const TaskContext& ctx, size_t index)
      : ctx_(ctx), index_(index), t_(ctx.plan->tasks[index]), arena_(*ctx.arena) {}

  [[noreturn]] void Run() {
    Status s = Restore();
    if (!s.ok()) {
      Error e = std::move(s).error();
      if (!arena_.aborted()) log::Error("task {}: {}", t_.pid, e.ToString());
      arena_.Abort(t_.pid, stage_, e);
      _exit(1);
    }
    Resume();
  }

 private:
  // The checklist; each step stops it on failure.
  Status Restore() {
    stage_ = Stage::kForking;
    log::SetStage("forking");
    RO_TRY(VerifyPid());
    if (index_ == 0) CloseInherited(ctx_.layout);
    DropUnkept(t_, *ctx_.plan, ctx_.layout);
    RO_TRY(Publish());
    PauseIfAsked(Stage::kForking);
    RO_TRY(CreateFiles(t_, *ctx_.plan, ctx_.layout, arena_));
    for (pid_t child : t_.children) {
      if (Plan(child).before_parent_setsid) RO_TRY(Fork(child));
    }
    if (t_.setsid) {
      RO_TRY(arena_.Fault(shm::FaultPoint::kSession, "setsid()"));
      if (::setsid() < 0) return SysError("setsid()");
    }
    for (pid_t child : t_.children) {
      if (!Plan(child).before_parent_setsid) RO_TRY(Fork(child));
    }
    RO_TRY(JoinGroup());
    RO_TRY(VerifySessionAndGroup());
    RO_TRY(Finish(Stage::kForking));

    stage_ = Stage::kFiles;
    log::SetStage("files");
    PauseIfAsked(Stage::kFiles);
    RO_TRY(PlaceFds(t_, *ctx_.plan, ctx_.layout, arena_));
    // Post-open work, with every fd in place and the task in its final group.
    if (ctx_.autofs != nullptr) RO_TRY(TakeOverAutofs(t_, *ctx_.plan, *ctx_.autofs, ctx_.layout, arena_));
    RO_TRY(Finish(Stage::kFiles));

    // Without helpers there is nothing to reap: the stage is skipped.
    if (ctx_.plan->helpers > 0) {
      stage_ = Stage::kReaping;
      log::SetStage("reaping");
      PauseIfAsked(Stage::kReaping);
      if (t_.kind == TaskKind::kHelper) _exit(0);  // its work is done; its parent reaps it
      RO_TRY(ReapHelpers());
      RO_TRY(Finish(Stage::kReaping));
    }

    stage_ = Stage::kResume;
    log::SetStage("resume");
    PauseIfAsked(Stage::kResume);
    RO_TRY(CheckResumable(t_));
    RO_TRY(Finish(Stage::kResume));
    return {};
  }

  // Testing hook: RESTORE_ORCH_PAUSE_AT=STAGE:PID:FILE makes task PID write
  // its outer pid to FILE on entering STAGE and stop there until it is
  // killed or the restore gives up, so that tests can kill a task mid-way.
  void PauseIfAsked(Stage stage) {
    const char* spec = std::getenv("RESTORE_ORCH_PAUSE_AT");
    if (spec == nullptr) return;
    std::string s(spec);
    size_t a = s.find(':');
    size_t b = s.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) return;
    if (s.substr(0, a) != shm::StageName(stage) || std::atoi(s.substr(a + 1, b - a - 1).c_str()) != t_.pid) return;
    if (FILE* f = std::fopen(s.substr(b + 1).c_str(), "we")) {
      std::fprintf(f, "%d\n", arena_.slot(index_).outer_pid.load());
      std::fclose(f);
    }
    log::Warn("task {} paused in stage {} (RESTORE_ORCH_PAUSE_AT)", t_.pid, shm::StageName(stage));
    while (!arena_.aborted() && sys::MonotonicNs() < arena_.deadline_ns()) ::usleep(10000);
  }

  Status Finish(Stage stage) {
    RO_TRY(arena_.Fault(shm::FaultPoint::kBarrier, std::string("finish stage ") + shm::StageName(stage)));
    return arena_.FinishStage(index_, stage);
  }

  const TaskPlan& Plan(pid_t pid) const { return ctx_.plan->tasks[static_cast<size_t>(ctx_.plan->IndexOf(pid))]; }

  Status VerifyPid() {
    pid_t got = ::getpid();
    if (got != t_.pid) return Fail("task was cloned with pid " + Num(got) + " instead of " + Num(t_.pid));
    return {};
  }

  Status Publish() {
    // Outside a new PID namespace nothing kills the tree with the root task:
    // each task dies with its parent until it resumes (helpers' children
    // excepted, as their parent exits on purpose).
    if (!ctx_.plan->ns.new_pid && t_.fork_parent != 0 && Plan(t_.fork_parent).kind != TaskKind::kHelper) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    }
    // Tasks start with the orchestrator's signal mask (it blocks the signals
    // it forwards); a restored task must not keep that.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (!t_.comm.empty()) ::prctl(PR_SET_NAME, t_.comm.c_str());
    RO_ASSIGN_OR_RETURN(pid_t outer, sys::OuterPid(*ctx_.proc_dir));
    arena_.slot(index_).pid = t_.pid;  // published by the store below
    arena_.slot(index_).outer_pid.store(outer);
    return {};
  }

  Status Fork(pid_t child) {
    int index = ctx_.plan->IndexOf(child);
    RO_TRY(arena_.Fault(shm::FaultPoint::kFork, "clone3 of task " + Num(child)));
    auto cloned = sys::Clone3(sys::CloneSpec{.flags = 0, .pid = child, .want_pidfd = false});
    if (!cloned.ok()) {
      Error e = std::move(cloned).error();
      if (e.err == EEXIST) e.what += ": pid " + Num(child) + " is taken";
      return e;
    }
    if (cloned->pid == 0) {
      Task(ctx_, static_cast<size_t>(index)).Run();
    }
    return {};
  }

  Status JoinGroup() {
    if (t_.leads_group) {
      // A session leader already leads its group.
      if (!t_.setsid) {
        RO_TRY(arena_.Fault(shm::FaultPoint::kGroup, "setpgid(0, 0)"));
        if (::setpgid(0, 0) != 0) return SysError("setpgid(0, 0)");
      }
      arena_.MarkGroupReady(index_);
      return {};
    }
    if (t_.pgid == 0 || ::getpgrp() == t_.pgid) return {};
    int leader = ctx_.plan->IndexOf(t_.pgid);
    if (leader < 0) return Fail("no task leads process group " + Num(t_.pgid));
    RO_TRY(arena_.WaitGroupReady(static_cast<size_t>(leader)));
    RO_TRY(arena_.Fault(shm::FaultPoint::kGroup, "setpgid(0, " + Num(t_.pgid) + ")"));
    if (::setpgid(0, t_.pgid) != 0) return SysError("setpgid(0, " + Num(t_.pgid) + ")");
    return {};
  }

  Status VerifySessionAndGroup() {
    pid_t sid = ::getsid(0);
    pid_t pgid = ::getpgrp();
    if (sid != t_.sid || pgid != t_.pgid) {
      return Fail("ended in session " + Num(sid) + " and group " + Num(pgid) + ", images say " + Num(t_.sid) + " and " +
                  Num(t_.pgid));
    }
    return {};
  }

  Status ReapHelpers() {
    for (pid_t child : t_.children) {
      if (Plan(child).kind != TaskKind::kHelper) continue;
      int status = 0;
      pid_t r;
      do {
        r = ::waitpid(child, &status, __WALL);
      } while (r < 0 && errno == EINTR);
      if (r < 0) return SysError("waitpid(helper " + Num(child) + ")");
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return Fail("helper " + Num(child) + " failed");
    }
    return {};
  }

  // Every task has passed its last step that can fail, and the
  // orchestrator opened kDone: hand over.
  [[noreturn]] void Resume() {
    log::SetStage("done");
    ResumeTask(t_, *ctx_.arena, index_, ctx_.layout, !ctx_.detach && index_ == 0);
  }

  const TaskContext& ctx_;
  size_t index_;
  const TaskPlan& t_;
  shm::Arena& arena_;
  Stage stage_ = Stage::kForking;
};

}  // namespace

void RunTask(const TaskContext& ctx, size_t index) { Task(ctx, index).Run(); }

}  // namespace ro::worker
