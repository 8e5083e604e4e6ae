// Image-controlled size and depth: the planner and `image show` on deep
// chains and wide trees, without recursion and in near-linear time.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "images/plan.h"
#include "images/show.h"
#include "test/helpers/test_util.h"
#include "test/helpers/tree_images.h"

namespace ro::test {
namespace {

// `tasks`, each holding both ends of one pipe at fds 3 and 4: its creator is
// the common ancestor of all of them.
ImageSet SharingOnePipe(std::vector<TaskSpec> tasks) {
  for (TaskSpec& t : tasks) t.fds = {{.fd = 3, .file = 1}, {.fd = 4, .file = 2}};
  return TreeImages(tasks, false,
                    {{.kind = FileSpec::kPipe, .id = 1, .pipe_id = 7, .flags = 0},
                     {.kind = FileSpec::kPipe, .id = 2, .pipe_id = 7, .flags = 1}});
}

// Seconds BuildPlan takes on `set`, or -1 when it refuses it (`errors` says why).
double PlanSeconds(const ImageSet& set, std::string& errors) {
  images::ImageDir dir = ToImageDir(set);
  auto start = std::chrono::steady_clock::now();
  images::PlanOutcome out = images::BuildPlan(dir, images::PlanOptions{});
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (const Error& e : out.errors) errors += e.ToString() + "\n";
  return out.plan ? s : -1;
}

// Linear work grows ten times from 10,000 to 100,000 tasks, quadratic a
// hundred: the planner stays well below the latter whatever the machine
// (n log n and the caches make it 10 to 40 here). A tenth of that under
// the sanitizers, which are slower ten times over.
#if defined(__SANITIZE_ADDRESS__)
constexpr int kFewTasks = 1000;
#else
constexpr int kFewTasks = 10000;
#endif

TEST(Scale, ChainsAndWideTreesPlanInNearLinearTime) {
  for (bool chain : {true, false}) {
    double t[2] = {0, 0};
    int i = 0;
    for (int n : {kFewTasks, 10 * kFewTasks}) {
      std::string errors;
      t[i] = PlanSeconds(SharingOnePipe(chain ? Chain(n) : Fan(n - 1)), errors);
      ASSERT_GE(t[i], 0) << errors;
      std::fprintf(stderr, "plan of a %s of %d tasks sharing one pipe: %.3f s\n", chain ? "chain" : "wide tree", n, t[i]);
      ++i;
    }
    EXPECT_LT(t[1], 60 * std::max(t[0], 0.03)) << (chain ? "chain" : "wide tree");
  }
}

// Each mount a slave of the one before it: ordered without recursion.
TEST(Scale, AMasterChainOf50000MountsPlans) {
  ImageSet set = TreeImages({{.pid = 1, .ppid = 0, .pgid = 1, .sid = 1}});
  std::vector<MountSpec> mounts = {{.id = 40, .parent = 1, .mountpoint = "/", .dev = 10},
                                   {.id = 41, .parent = 40, .mountpoint = "/m", .shared = 1, .dev = 50}};
  for (uint32_t i = 1; i < 50000; ++i) {
    mounts.push_back({.id = 41 + i, .parent = 40, .mountpoint = "/m" + std::to_string(i), .shared = i + 1, .master = i, .dev = 50});
  }
  AddMounts(set, mounts);
  std::string errors;
  double s = PlanSeconds(set, errors);
  ASSERT_GE(s, 0) << errors.substr(0, 2000);
  std::fprintf(stderr, "plan of a master chain of 50000 mounts: %.3f s\n", s);
}

// `image show` indents at most 32 levels: its output grows linearly with
// a chain's depth, and a deep one does not exhaust the stack.
TEST(Scale, ImageShowOfADeepChainIsLinear) {
  size_t small = images::ShowImageDir(ToImageDir(TreeImages(Chain(1700)))).size();
  size_t big = images::ShowImageDir(ToImageDir(TreeImages(Chain(17000)))).size();
  EXPECT_LT(big, 12 * small) << small << " bytes for 1700 levels, " << big << " for 17000";
}

}  // namespace
}  // namespace ro::test
