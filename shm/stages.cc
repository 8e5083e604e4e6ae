#include "shm/stages.h"

namespace ro::shm {
namespace {

bool NoHelpers(const images::RestorePlan& plan) { return plan.helpers == 0; }

bool NoneContinues(const images::RestorePlan& plan) {
  for (const images::TaskPlan& t : plan.tasks) {
    if (t.resume_mode == images::ResumeMode::kContinue) return false;
  }
  return true;
}

constexpr StageInfo kStages[] = {
    {Stage::kRootTask, "root-task", Participants::kRootTask, nullptr, nullptr, kPostSetupNamespaces,
     "the root task runs with its pid in the tree's namespaces (new ones, or the caller's it shares); a new mount "
     "namespace has its mount tree built and the task pivoted into it"},
    {Stage::kForking, "forking", Participants::kAllTasks, nullptr, nullptr, nullptr,
     "every task and helper exists with its pid, session and process group"},
    {Stage::kFiles, "files", Participants::kAllTasks, nullptr, nullptr, nullptr,
     "every task holds exactly its fds with their flags; pipes hold their data; masters own their AutoFS mounts"},
    {Stage::kReaping, "reaping", Participants::kRestoredTasks, NoHelpers, nullptr, nullptr,
     "helpers have exited and were reaped; their children belong to the root task"},
    {Stage::kMemory, "memory", Participants::kRestoredTasks, NoneContinues, nullptr, nullptr,
     "every task that continues has its VMAs premapped in the zone and filled from its pages, its restorer ready"},
    {Stage::kResume, "resume", Participants::kRestoredTasks, nullptr, nullptr, kPostRestore,
     "every task is in its root and cwd, past its last step that can fail; zombies have exited"},
    {Stage::kDone, "done", Participants::kLiveTasks, nullptr, kPreResume, kPostResume,
     "every task has handed over: exec, holder, zombie, or continue (its restorer has put its memory and state in place "
     "and the orchestrator its registers)"},
};
static_assert(sizeof(kStages) / sizeof(kStages[0]) == kStageCount - 1);

}  // namespace

std::span<const StageInfo> Stages() { return kStages; }

const StageInfo& Describe(Stage stage) { return kStages[static_cast<size_t>(stage) - 1]; }

const char* StageName(Stage stage) {
  if (stage == Stage::kNone) return "start";
  return Describe(stage).name.data();
}

std::string WhatFor(Stage stage, const images::RestorePlan& plan) {
  if (stage != Stage::kRootTask) return std::string(Describe(stage).what);
  std::string ns = plan.ns.new_pid && plan.ns.new_mnt ? "in new PID and mount namespaces"
                   : plan.ns.new_pid                  ? "in a new PID namespace and the caller's mount namespace"
                   : plan.ns.new_mnt                  ? "in the caller's PID namespace and a new mount namespace"
                                                      : "in the caller's PID and mount namespaces";
  return "the root task runs with its pid " + ns +
         (plan.ns.new_mnt ? "; it has built the mount tree and pivoted into it" : "");
}

bool Skipped(Stage stage, const images::RestorePlan& plan) {
  const StageInfo& s = Describe(stage);
  return s.skipped != nullptr && s.skipped(plan);
}

uint32_t ParticipantCount(Stage stage, const images::RestorePlan& plan) {
  switch (Describe(stage).participants) {
    case Participants::kRootTask: return 1;
    case Participants::kAllTasks: return static_cast<uint32_t>(plan.tasks.size());
    case Participants::kRestoredTasks: return static_cast<uint32_t>(plan.tasks.size() - plan.helpers);
    case Participants::kLiveTasks: {
      uint32_t n = 0;
      for (const images::TaskPlan& t : plan.tasks) n += t.kind == images::TaskKind::kAlive;
      return n;
    }
  }
  return 0;
}

bool WorkerTakesPart(Stage stage, const images::TaskPlan& task) {
  switch (Describe(stage).participants) {
    case Participants::kRootTask: return false;
    case Participants::kAllTasks: return true;
    case Participants::kRestoredTasks: return task.kind != images::TaskKind::kHelper;
    case Participants::kLiveTasks: return task.kind == images::TaskKind::kAlive;
  }
  return false;
}

Stage LastStage(const images::TaskPlan& task, const images::RestorePlan& plan) {
  Stage last = Stage::kNone;
  for (const StageInfo& s : kStages) {
    if (WorkerTakesPart(s.stage, task) && !Skipped(s.stage, plan)) last = s.stage;
  }
  return last;
}

}  // namespace ro::shm
