// The kernel probe, run for real. It works in its own PID and mount
// namespaces: afterwards the caller's mount table is unchanged.
#include <gtest/gtest.h>

#include "sys/kernel_features.h"
#include "sys/mountinfo.h"
#include "test/helpers/test_util.h"

namespace ro::sys {
namespace {

std::vector<std::string> MountLines() {
  std::vector<std::string> lines;
  auto mounts = ReadMountInfo();
  if (mounts.ok()) {
    for (const auto& m : *mounts) lines.push_back(std::to_string(m.mnt_id) + " " + m.mountpoint + " " + m.fstype);
  }
  return lines;
}

TEST(KernelProbe, EveryFeatureIsPresentAndNothingLeaks) {
  auto before = MountLines();
  auto features = ProbeKernel();
  ASSERT_TRUE(features.ok()) << features.error().ToString();
  std::string report;
  for (const auto& f : features->features) report += f.name + ": " + (f.ok ? "ok " : "FAIL ") + f.detail + "\n";
  if (!test::KernelHasAutofs()) {
    // A kernel built without AutoFS: the probe says so, for both AutoFS
    // features, and finds everything else.
    for (const auto& f : features->features) {
      bool autofs = f.name == "autofs-pipe-ino" || f.name == "dev-autofs";
      EXPECT_EQ(f.ok, !autofs) << f.name << "\n" << report;
    }
    EXPECT_FALSE(features->AllOk()) << report;
    EXPECT_EQ(before, MountLines()) << "the probe changed the caller's mount namespace";
    GTEST_SKIP() << "this kernel has no AutoFS: the probe names it missing, as it should\n" << report;
  }
  // The memory restore's needs too (ptrace, PR_SET_MM_MAP, rseq), and the
  // speed-ups this 6.x kernel has.
  for (const char* name : {"pid-namespace", "mount-namespace", "clone3-set-tid", "move-mount-set-group",
                           "autofs-pipe-ino", "dev-autofs", "ptrace-seize-interrupt", "prctl-mm-map", "rseq", "pagemap-scan",
                           "madv-populate-write"}) {
    EXPECT_TRUE(features->Has(name)) << name << "\n" << report;
  }
  EXPECT_TRUE(features->AllOk()) << report;
  for (const auto& f : features->features) EXPECT_EQ(f.required, !IsOptionalFeature(f.name)) << f.name;
  EXPECT_FALSE(IsOptionalFeature("prctl-mm-map"));
  EXPECT_TRUE(IsOptionalFeature("pagemap-scan"));
  EXPECT_EQ(before, MountLines()) << "the probe changed the caller's mount namespace";
}

TEST(KernelProbe, CheckSubcommandExitsZero) {
  test::RunResult r = test::RunCommand({test::RestoreOrch(), "check"});
  if (!test::KernelHasAutofs()) {
    EXPECT_EQ(r.status, 1) << r.out << r.err;
    EXPECT_NE(r.out.find("dev-autofs             FAIL"), std::string::npos) << r.out;
    GTEST_SKIP() << "this kernel has no AutoFS: check fails naming it, as it should";
  }
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("dev-autofs"), std::string::npos);
}

}  // namespace
}  // namespace ro::sys
