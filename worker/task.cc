#include "worker/task.h"

#include <setjmp.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "shm/stages.h"
#include "sys/futex.h"
#include "sys/log.h"
#include "sys/process.h"
#include "worker/autofs.h"
#include "worker/mm.h"
#include "worker/resume.h"
#include "worker/tree.h"

namespace ro::worker {
namespace {

using shm::Stage;

class Task {
 public:
  Task(const TaskContext& ctx, size_t index)
      : ctx_(ctx), index_(index), t_(ctx.plan->tasks[index]), plan_(*ctx.plan), arena_(*ctx.arena) {}

  [[noreturn]] void Run() {
    Status s = Restore();
    if (!s.ok()) {
      Error e = std::move(s).error();
      // The orchestrator prints the one error line; this is for -v.
      if (!arena_.aborted()) log::Info("task {}: {}", t_.pid, e.ToString());
      arena_.Abort(t_.pid, stage_, e);
      _exit(1);
    }
    ResumeTask(t_, *ctx_.plan, arena_, index_, stage_, ctx_.layout, !ctx_.detach && index_ == 0);
  }

 private:
  // The checklist: the task's step of every stage it takes part in, each
  // ended at the stage's barrier; its last stage ends with its hand-over
  // (ResumeTask), which arrives there without waiting.
  Status Restore() {
    stage_ = Stage::kForking;
    RO_TRY(VerifyPid(t_));
    RO_TRY(Publish(ctx_, index_));
    Stage last = shm::LastStage(t_, plan_);
    for (const shm::StageInfo& info : shm::Stages()) {
      if (!shm::WorkerTakesPart(info.stage, t_) || shm::Skipped(info.stage, plan_)) continue;
      stage_ = info.stage;
      log::SetStage(info.name);
      PauseIfAsked(info.stage);
      RO_TRY(Step(info.stage));
      if (info.stage == last) break;
      RO_TRY(arena_.Fault(shm::FaultPoint::kBarrier, std::string("finish stage ") + shm::StageName(info.stage)));
      RO_TRY(arena_.FinishStage(index_, info.stage));
    }
    return {};
  }

  Status Step(Stage stage) {
    switch (stage) {
      case Stage::kNone:
      case Stage::kRootTask:  // the orchestrator's part, done in the root task before it ran this
      case Stage::kDone:      // the hand-over, ResumeTask
        return {};
      case Stage::kForking:
        if (index_ == 0) CloseInherited(ctx_.layout);
        DropUnkept(t_, plan_, ctx_.layout);
        RO_TRY(CreateFiles(t_, plan_, ctx_.layout, arena_));
        RO_TRY(MakeSharedMemory(t_, plan_, ctx_.layout, arena_));
        return ForkTree(ctx_, index_);
      case Stage::kFiles:
        RO_TRY(PlaceFds(t_, plan_, ctx_.layout, arena_));
        // Post-open work, with every fd in place and the task in its final group.
        return TakeOverAutofs(t_, plan_, ctx_.layout, arena_);
      case Stage::kReaping:
        return ReapHelpers(ctx_, t_);
      case Stage::kMemory:
        if (t_.resume_mode != images::ResumeMode::kContinue) return {};
        return PrepareMemory(t_, plan_, ctx_.layout, arena_, index_);
      case Stage::kResume:
        // A continuing task is traced from the end of this stage: a signal
        // it got now (a helper's or zombie's SIGCHLD) would stop it at the
        // barrier. It stays pending; its restorer discards it.
        if (t_.resume_mode == images::ResumeMode::kContinue) sys::BlockAllSignals();
        RO_TRY(PrepareExec(t_, arena_, index_, ctx_.layout));
        return CheckResumable(t_);
    }
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

  const TaskContext& ctx_;
  size_t index_;
  const images::TaskPlan& t_;
  const images::RestorePlan& plan_;
  shm::Arena& arena_;
  Stage stage_ = Stage::kForking;
};

// Where a forked task starts: the frame of the first RunTask of the tree,
// copied into every child with its memory. A child jumps back there instead
// of running deep in its parent's stack, so each level of a chain of tasks
// costs the same stack, however deep the chain.
sigjmp_buf g_start;
bool g_start_set = false;
size_t g_start_index = 0;

}  // namespace

void RunTask(const TaskContext& ctx, size_t index) {
  volatile size_t start = index;
  if (sigsetjmp(g_start, 0) != 0) start = g_start_index;
  g_start_set = true;
  Task(ctx, start).Run();
}

void RunForkedTask(const TaskContext& ctx, size_t index) {
  if (!g_start_set) RunTask(ctx, index);
  g_start_index = index;
  siglongjmp(g_start, 1);
}

}  // namespace ro::worker
