// The one stage table: order, names, who takes part, what is skipped, and
// where action scripts run.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "shm/stages.h"

namespace ro::shm {
namespace {

images::RestorePlan PlanWith(size_t alive, size_t helpers) {
  images::RestorePlan plan;
  for (size_t i = 0; i < alive + helpers; ++i) {
    images::TaskPlan t;
    t.pid = static_cast<pid_t>(i + 1);
    t.kind = i < alive ? images::TaskKind::kAlive : images::TaskKind::kHelper;
    plan.tasks.push_back(t);
  }
  plan.helpers = helpers;
  return plan;
}

// --dry-run says where the root task runs as the plan has it: new
// namespaces, or the caller's the tree shares.
TEST(StageTable, TheRootTasksStageNamesThePlansNamespaces) {
  images::RestorePlan plan = PlanWith(1, 0);
  plan.ns.new_pid = plan.ns.new_mnt = true;
  EXPECT_EQ(WhatFor(Stage::kRootTask, plan),
            "the root task runs with its pid in new PID and mount namespaces; it has built the mount tree and pivoted into it");
  plan.ns.new_pid = plan.ns.new_mnt = false;
  EXPECT_EQ(WhatFor(Stage::kRootTask, plan), "the root task runs with its pid in the caller's PID and mount namespaces");
  plan.ns.new_pid = true;
  EXPECT_EQ(WhatFor(Stage::kRootTask, plan), "the root task runs with its pid in a new PID namespace and the caller's mount namespace");
  EXPECT_EQ(WhatFor(Stage::kFiles, plan), std::string(Describe(Stage::kFiles).what));
}

TEST(StageTable, EveryStageOnceInOrderWithAUniqueName) {
  std::set<std::string> names;
  uint32_t last = 0;
  for (const StageInfo& s : Stages()) {
    EXPECT_GT(static_cast<uint32_t>(s.stage), last) << s.name;
    last = static_cast<uint32_t>(s.stage);
    EXPECT_TRUE(names.insert(std::string(s.name)).second) << s.name;
    EXPECT_EQ(&Describe(s.stage), &s);
    EXPECT_EQ(std::string(StageName(s.stage)), std::string(s.name));
    EXPECT_FALSE(s.what.empty()) << s.name;
  }
  EXPECT_EQ(Stages().size() + 1, kStageCount);
  EXPECT_EQ(Stages().front().stage, Stage::kRootTask);
  EXPECT_EQ(Stages().back().stage, Stage::kDone);
  EXPECT_EQ(std::string(StageName(Stage::kNone)), "start");
}

TEST(StageTable, ParticipantsFollowTheTaskKinds) {
  images::RestorePlan plan = PlanWith(5, 2);
  EXPECT_EQ(ParticipantCount(Stage::kRootTask, plan), 1u);
  EXPECT_EQ(ParticipantCount(Stage::kForking, plan), 7u);
  EXPECT_EQ(ParticipantCount(Stage::kFiles, plan), 7u);
  EXPECT_EQ(ParticipantCount(Stage::kReaping, plan), 5u);
  EXPECT_EQ(ParticipantCount(Stage::kDone, plan), 5u);
  const images::TaskPlan& helper = plan.tasks.back();
  const images::TaskPlan& alive = plan.tasks.front();
  EXPECT_FALSE(WorkerTakesPart(Stage::kRootTask, alive)) << "the orchestrator's part in the root task finishes it";
  EXPECT_TRUE(WorkerTakesPart(Stage::kForking, helper));
  EXPECT_FALSE(WorkerTakesPart(Stage::kReaping, helper));
  EXPECT_TRUE(WorkerTakesPart(Stage::kReaping, alive));
}

TEST(StageTable, ReapingIsSkippedWithoutHelpersMemoryWithoutContinuingTasks) {
  EXPECT_TRUE(Skipped(Stage::kReaping, PlanWith(3, 0)));
  EXPECT_FALSE(Skipped(Stage::kReaping, PlanWith(3, 1)));
  images::RestorePlan plan = PlanWith(3, 0);
  EXPECT_TRUE(Skipped(Stage::kMemory, plan));
  plan.tasks[1].resume_mode = images::ResumeMode::kContinue;
  EXPECT_FALSE(Skipped(Stage::kMemory, plan));
  for (const StageInfo& s : Stages()) {
    if (s.stage != Stage::kReaping && s.stage != Stage::kMemory) {
      EXPECT_FALSE(Skipped(s.stage, PlanWith(3, 0))) << s.name;
    }
  }
}

TEST(StageTable, ActionScriptPointsInTheOrderARestorePassesThem) {
  std::vector<std::string> points;
  for (const StageInfo& s : Stages()) {
    if (s.action_before != nullptr) points.push_back(s.action_before);
    if (s.action_after != nullptr) points.push_back(s.action_after);
  }
  EXPECT_EQ(points, (std::vector<std::string>{kPostSetupNamespaces, kPostRestore, kPreResume, kPostResume}));
}

}  // namespace
}  // namespace ro::shm
