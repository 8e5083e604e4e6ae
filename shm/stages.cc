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
     "the root task runs with its pid in new namespaces; it has built the mount tree and pivoted into it"},
    {Stage::kForking, "forking", Participants::kAllTasks, nullptr, nullptr, nullptr,
     "every task and helper exists with its pid, session and process group"},
    {Stage::kFiles, "files", Participants::kAllTasks, nullptr, nullptr, nullptr,
     "every task holds exactly its fds with their flags; pipes hold their data; masters own their AutoFS mounts"},
    {Stage::kReaping, "reaping", Participants::kRestoredTasks, NoHelpers, nullptr, nullptr,
     "helpers have exited and were reaped; their children belong to the root task"},
    {Stage::kMemory, "memory", Participants::kRestoredTasks, NoneContinues, nullptr, nullptr,
     "every task that continues has its VMAs premapped in the zone and filled from its pages, its restorer ready"},
    {Stage::kResume, "resume", Participants::kRestoredTasks, nullptr, nullptr, kPostRestore,
     "every task is in its root and cwd, past its last step that can fail"},
    {Stage::kDone, "done", Participants::kRestoredTasks, nullptr, kPreResume, kPostResume,
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

bool Skipped(Stage stage, const images::RestorePlan& plan) {
  const StageInfo& s = Describe(stage);
  return s.skipped != nullptr && s.skipped(plan);
}

uint32_t ParticipantCount(Stage stage, const images::RestorePlan& plan) {
  switch (Describe(stage).participants) {
    case Participants::kRootTask: return 1;
    case Participants::kAllTasks: return static_cast<uint32_t>(plan.tasks.size());
    case Participants::kRestoredTasks: return static_cast<uint32_t>(plan.tasks.size() - plan.helpers);
  }
  return 0;
}

bool WorkerTakesPart(Stage stage, const images::TaskPlan& task) {
  switch (Describe(stage).participants) {
    case Participants::kRootTask: return false;
    case Participants::kAllTasks: return true;
    case Participants::kRestoredTasks: return task.kind != images::TaskKind::kHelper;
  }
  return false;
}

}  // namespace ro::shm
