// The shared arena: mapped where the plan says, waits that always end
// (an abort wakes every waiter, a task that never arrives cannot wedge the
// others past the deadline), facts published by one task read by another.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>

#include "shm/arena.h"
#include "sys/futex.h"

namespace ro::shm {
namespace {

constexpr uint64_t kAddress = 0x3f0000000000;

uint64_t InMs(int ms) { return sys::MonotonicNs() + static_cast<uint64_t>(ms) * 1000000; }

double SecondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Forks a child that runs `f` and exits with its result.
pid_t Child(const std::function<int()>& f) {
  pid_t pid = ::fork();
  if (pid == 0) _exit(f());
  return pid;
}

int ExitCode(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(Arena, IsMappedAtThePlannedAddressAndNowhereElse) {
  auto arena = Arena::Create({.address = kAddress, .tasks = 10, .mounts = 3, .deadline_ns = InMs(1000)});
  ASSERT_TRUE(arena.ok()) << arena.error().ToString();
  EXPECT_EQ(reinterpret_cast<uint64_t>(arena->base()), kAddress);
  auto again = Arena::Create({.address = kAddress, .tasks = 10, .deadline_ns = InMs(1000)});
  ASSERT_FALSE(again.ok()) << "MAP_FIXED_NOREPLACE must not map over the first arena";
  EXPECT_EQ(again.error().err, EEXIST) << again.error().ToString();
}

TEST(Arena, IsUnmappedWhenItGoesAway) {
  { ASSERT_TRUE(Arena::Create({.address = kAddress, .tasks = 4, .deadline_ns = InMs(1000)}).ok()); }
  EXPECT_TRUE(Arena::Create({.address = kAddress, .tasks = 4, .deadline_ns = InMs(1000)}).ok());
}

TEST(Arena, AnAbortWakesEveryWaiterAtOnce) {
  auto arena = Arena::Create({.address = kAddress, .tasks = 3, .deadline_ns = InMs(30000)});
  ASSERT_TRUE(arena.ok());
  arena->BeginStage(Stage::kForking, 3);
  std::vector<pid_t> waiters;
  for (size_t i = 0; i < 2; ++i) {
    waiters.push_back(Child([&arena, i] { return arena->FinishStage(i, Stage::kForking).ok() ? 0 : 1; }));
  }
  ::usleep(100000);  // both are waiting for the third
  auto t0 = std::chrono::steady_clock::now();
  arena->Abort(7, Stage::kForking, Fail("something broke"));
  for (pid_t w : waiters) EXPECT_EQ(ExitCode(w), 1) << "a waiter of an aborted restore must fail";
  EXPECT_LT(SecondsSince(t0), 1.0);
  ASSERT_TRUE(arena->failure().has_value());
  EXPECT_EQ(arena->failure()->task, 7);
  EXPECT_EQ(arena->failure()->error.what, "something broke");
}

TEST(Arena, ATaskThatDiesNeverWedgesTheOthers) {
  auto arena = Arena::Create({.address = kAddress, .tasks = 2, .deadline_ns = InMs(400)});
  ASSERT_TRUE(arena.ok());
  arena->BeginStage(Stage::kForking, 2);
  pid_t victim = Child([] {
    ::pause();  // never arrives
    return 0;
  });
  pid_t waiter = Child([&arena] { return arena->FinishStage(0, Stage::kForking).ok() ? 0 : 1; });
  auto t0 = std::chrono::steady_clock::now();
  ::kill(victim, SIGKILL);
  EXPECT_EQ(ExitCode(victim), 128 + SIGKILL);
  EXPECT_EQ(ExitCode(waiter), 1) << "the waiter gives up at the deadline";
  EXPECT_LT(SecondsSince(t0), 1.5);
}

TEST(Arena, AGroupLeaderThatNeverComesCannotWedgeItsMembers) {
  auto arena = Arena::Create({.address = kAddress, .tasks = 2, .deadline_ns = InMs(300)});
  ASSERT_TRUE(arena.ok());
  auto t0 = std::chrono::steady_clock::now();
  pid_t member = Child([&arena] { return arena->WaitGroupReady(1).ok() ? 0 : 1; });
  EXPECT_EQ(ExitCode(member), 1);
  EXPECT_LT(SecondsSince(t0), 1.5);
}

TEST(Arena, StagesEndWhenEveryParticipantArrives) {
  auto arena = Arena::Create({.address = kAddress, .tasks = 2, .deadline_ns = InMs(5000)});
  ASSERT_TRUE(arena.ok());
  arena->BeginStage(Stage::kFiles, 2);
  pid_t a = Child([&arena] { return arena->FinishStage(0, Stage::kFiles).ok() ? 0 : 1; });
  pid_t b = Child([&arena] { return arena->FinishStage(1, Stage::kFiles).ok() ? 0 : 1; });
  bool done = false;
  for (int i = 0; i < 100 && !done; ++i) done = arena->WaitFinished(50);
  EXPECT_TRUE(done);
  arena->BeginStage(Stage::kReaping, 2);  // releases both
  EXPECT_EQ(ExitCode(a), 0);
  EXPECT_EQ(ExitCode(b), 0);
  EXPECT_EQ(arena->slot(0).stage.load(), static_cast<uint32_t>(Stage::kFiles));
}

TEST(Arena, AMountFactPublishedInOneTaskIsReadInAnother) {
  auto arena = Arena::Create({.address = kAddress, .tasks = 1, .mounts = 4, .deadline_ns = InMs(5000)});
  ASSERT_TRUE(arena.ok());
  EXPECT_FALSE(arena->MountDevice(2).has_value());
  pid_t p = Child([&arena] {
    arena->PublishMountDevice(2, 0x12345);
    return 0;
  });
  EXPECT_EQ(ExitCode(p), 0);
  ASSERT_TRUE(arena->MountDevice(2).has_value());
  EXPECT_EQ(*arena->MountDevice(2), 0x12345u);
  EXPECT_FALSE(arena->MountDevice(4).has_value()) << "out of range";
}

TEST(Arena, FaultsCountPassesAcrossTasks) {
  auto arena = Arena::Create({.address = kAddress, .tasks = 1, .deadline_ns = InMs(5000),
                              .fault = FaultSpec{FaultPoint::kFork, 2}});
  ASSERT_TRUE(arena.ok());
  pid_t p = Child([&arena] { return arena->Fault(FaultPoint::kFork, "first").ok() ? 0 : 1; });
  EXPECT_EQ(ExitCode(p), 0);
  Status second = arena->Fault(FaultPoint::kFork, "second");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().err, EIO);
  EXPECT_TRUE(arena->Fault(FaultPoint::kPivot, "other point").ok());
}

}  // namespace
}  // namespace ro::shm
