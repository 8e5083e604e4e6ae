// The one table of cross-process restore stages (CRIU's CR_STATE_* are the
// model). Every task walks the stages in this order; a stage ends for all
// when every participant has finished it. The controller opens them from
// this table, the worker walks it, --stats and --dry-run list it. A new
// stage is a new row here, a value of Stage and its step in the worker.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "images/plan.h"

namespace ro::shm {

enum class Stage : uint32_t {
  kNone = 0,
  kRootTask,  // the root task runs with its pid in its PID and mount namespaces, its mount tree built
  kForking,   // every task and helper exists with its pid, session and process group
  kFiles,     // every task holds exactly its fds, at their numbers, with their flags; AutoFS masters own their mounts
  kReaping,   // helpers have exited and were reaped; their children belong to the root
  kMemory,    // every continuing task has its new address space premapped and filled, its restorer ready
  kResume,    // every task is past its last step that can fail
  kDone,      // tasks exec their programs, stay holders, or exit as zombies
};
inline constexpr size_t kStageCount = 8;

// Action-script points (CRIU's names), in the order a restore passes them.
inline constexpr const char* kPreRestore = "pre-restore";                      // nothing created yet
inline constexpr const char* kPostSetupNamespaces = "post-setup-namespaces";  // root task and mount tree exist
inline constexpr const char* kPostRestore = "post-restore";                    // every task restored, none resumed
inline constexpr const char* kPreResume = "pre-resume";                        // about to resume
inline constexpr const char* kPostResume = "post-resume";                      // every task resumed

enum class Participants {
  kRootTask,        // the root task alone, running the orchestrator's part for the whole tree
  kAllTasks,        // every task, helpers included
  kRestoredTasks,   // every task but the helpers (they have exited by then)
  kLiveTasks,       // every task but the helpers and the zombies (they have exited by then)
};

struct StageInfo {
  Stage stage;
  std::string_view name;
  Participants participants;
  // True when the stage has nothing to do for this plan and is not opened
  // at all (no task waits at its barrier); null: never skipped.
  bool (*skipped)(const images::RestorePlan& plan);
  const char* action_before;  // action-script point run before the stage opens, or null
  const char* action_after;   // ... after every participant finished it, or null
  std::string_view what;      // what holds once it has ended, for --dry-run
};

// Every stage after kNone, in order.
std::span<const StageInfo> Stages();
const StageInfo& Describe(Stage stage);
// "root-task", "forking"...; "start" for kNone.
const char* StageName(Stage stage);

bool Skipped(Stage stage, const images::RestorePlan& plan);
// What holds once `stage` has ended for this plan (--dry-run): its `what`,
// said of the plan's own namespaces for the root task's stage (new ones,
// or the caller's that the tree shares).
std::string WhatFor(Stage stage, const images::RestorePlan& plan);
// How many tasks of the plan finish `stage`.
uint32_t ParticipantCount(Stage stage, const images::RestorePlan& plan);
// Whether `task` finishes `stage` in the worker. The root task's stage is
// finished by the orchestrator's code in the root task, not by its worker.
bool WorkerTakesPart(Stage stage, const images::TaskPlan& task);
// The last stage `task` takes part in: it arrives there and hands over
// without waiting (zombies exit at the end of resume, the others at done).
Stage LastStage(const images::TaskPlan& task, const images::RestorePlan& plan);

}  // namespace ro::shm
