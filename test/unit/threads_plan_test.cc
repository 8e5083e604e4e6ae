// The plan's checks of thread ids (pstree threads), without a kernel: a
// thread id is a pid of the namespace, so it must be unique among the
// tree's pids and thread ids, the task's own comes first, and a task with
// threads but no memory to run them in cannot be a holder. A restore's
// --dry-run lists the threads of each task.
#include <gtest/gtest.h>

#include "images/plan.h"
#include "images/proto/pstree.pb.h"
#include "test/helpers/test_util.h"
#include "test/helpers/tree_images.h"

namespace ro::images {
namespace {

using test::TaskSpec;

std::string Errors(const PlanOutcome& out) {
  std::string errors;
  for (const Error& e : out.errors) errors += e.ToString() + "\n";
  return errors;
}

// Two tasks (1, and 2 resuming by exec), with the pstree entry of task
// `pid` listing `threads`.
test::ImageSet WithThreads(pid_t pid, const std::vector<uint32_t>& threads) {
  test::ImageSet set = test::TreeImages({TaskSpec{.pid = 1, .ppid = 0, .pgid = 1, .sid = 1, .argv = {"/bin/sleep", "1"}},
                                         TaskSpec{.pid = 2, .ppid = 1, .pgid = 1, .sid = 1, .argv = {"/bin/sleep", "1"}}});
  auto& entry = test::Mutable<img::pstree_entry>(set, "pstree.img", static_cast<size_t>(pid - 1));
  entry.clear_threads();
  for (uint32_t tid : threads) entry.add_threads(tid);
  return set;
}

TEST(ThreadPlan, ThreadIdsAreKeptTheTasksOwnFirst) {
  PlanOutcome out = BuildPlan(test::ToImageDir(WithThreads(1, {1, 7, 9})), PlanOptions{});
  ASSERT_TRUE(out.plan.has_value()) << Errors(out);
  EXPECT_EQ(out.plan->FindTask(1)->threads, (std::vector<pid_t>{1, 7, 9}));
  EXPECT_EQ(out.plan->FindTask(2)->threads, (std::vector<pid_t>{2}));
  // --dry-run's plan lists them.
  EXPECT_NE(FormatPlan(*out.plan).find("3 threads: 1 7 9"), std::string::npos) << FormatPlan(*out.plan);
}

TEST(ThreadPlan, AThreadIdOfAnotherTaskIsRefused) {
  PlanOutcome out = BuildPlan(test::ToImageDir(WithThreads(1, {1, 2})), PlanOptions{});
  EXPECT_FALSE(out.plan.has_value());
  EXPECT_NE(Errors(out).find("thread 2 of task 1 has the id of task 2"), std::string::npos) << Errors(out);
}

TEST(ThreadPlan, AThreadIdOfTwoTasksIsRefused) {
  test::ImageSet set = WithThreads(1, {1, 5});
  auto& second = test::Mutable<img::pstree_entry>(set, "pstree.img", 1);
  second.add_threads(5);
  PlanOutcome out = BuildPlan(test::ToImageDir(set), PlanOptions{});
  EXPECT_FALSE(out.plan.has_value());
  EXPECT_NE(Errors(out).find("thread 5 of task 2 has the id of a thread of task 1"), std::string::npos) << Errors(out);
}

TEST(ThreadPlan, TheTasksOwnIdComesFirstAndIdsAreInRange) {
  PlanOutcome first = BuildPlan(test::ToImageDir(WithThreads(2, {8, 2})), PlanOptions{});
  EXPECT_FALSE(first.plan.has_value());
  EXPECT_NE(Errors(first).find("thread 8 of task 2 comes first, not the task itself"), std::string::npos) << Errors(first);
  PlanOutcome range = BuildPlan(test::ToImageDir(WithThreads(2, {2, 4194304})), PlanOptions{});
  EXPECT_FALSE(range.plan.has_value());
  EXPECT_NE(Errors(range).find("thread id 4194304 of task 2 is out of range"), std::string::npos) << Errors(range);
}

TEST(ThreadPlan, AHolderWithThreadsButNoMemoryIsRefused) {
  test::ImageSet set = test::TreeImages({TaskSpec{.pid = 1, .ppid = 0, .pgid = 1, .sid = 1}});  // no resume image: a holder
  auto& entry = test::Mutable<img::pstree_entry>(set, "pstree.img", 0);
  entry.add_threads(3);
  PlanOutcome out = BuildPlan(test::ToImageDir(set), PlanOptions{});
  EXPECT_FALSE(out.plan.has_value());
  EXPECT_NE(Errors(out).find("task 1 has 2 threads but no memory images to run them in"), std::string::npos) << Errors(out);
}

}  // namespace
}  // namespace ro::images
