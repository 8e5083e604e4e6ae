#include "orchestrator/externals.h"

#include <gtest/gtest.h>

namespace ro {
namespace {

// Each mount of a stack on one mountpoint gets a key of its own: the one
// on top its mountpoint, the covered ones their place from the bottom.
TEST(ExternalKeys, CoveredMountsAreNumberedFromTheBottomOfTheirStack) {
  auto mounts = sys::ParseMountInfo(
      "20 1 254:0 / / rw - ext4 /dev/vda rw\n"
      "21 20 0:20 / /proc rw - proc proc rw\n"
      "22 21 0:38 / /proc rw - proc proc rw\n"
      "23 22 0:40 / /proc rw - proc proc rw\n"
      "24 21 0:41 / /proc/sys/fs/binfmt_misc rw - binfmt_misc binfmt_misc rw\n"
      "25 20 254:0 /src /x rw - ext4 /dev/vda rw\n"
      "26 25 0:42 / /x rw - tmpfs cover rw\n"
      "27 26 0:43 / /x/y rw - tmpfs y rw\n");
  ASSERT_TRUE(mounts.ok()) << mounts.error().ToString();
  std::map<uint32_t, std::string> keys = ExternalKeys(*mounts);
  EXPECT_EQ(keys, (std::map<uint32_t, std::string>{{20, "/"},
                                                    {21, "/proc#1"},
                                                    {22, "/proc#2"},
                                                    {23, "/proc"},
                                                    {24, "/proc/sys/fs/binfmt_misc"},
                                                    {25, "/x#1"},
                                                    {26, "/x"},
                                                    {27, "/x/y"}}));
}

// A mount whose parent is itself (the namespace's root as some kernels
// show it) or missing ends the walk down a stack.
TEST(ExternalKeys, ARootOrAMissingParentEndsTheStack) {
  auto mounts = sys::ParseMountInfo(
      "30 30 0:20 / / rw - tmpfs a rw\n"
      "31 30 0:21 / / rw - tmpfs b rw\n"
      "41 99 0:22 / /m rw - tmpfs c rw\n"
      "42 41 0:23 / /m rw - tmpfs d rw\n");
  ASSERT_TRUE(mounts.ok()) << mounts.error().ToString();
  std::map<uint32_t, std::string> keys = ExternalKeys(*mounts);
  EXPECT_EQ(keys, (std::map<uint32_t, std::string>{{30, "/#1"}, {31, "/"}, {41, "/m#1"}, {42, "/m"}}));
}

// A mountpoint that reads as another's key: keys stay one mount's each.
TEST(ExternalKeys, AMountpointNamedLikeAKeyDoesNotShareIt) {
  auto mounts = sys::ParseMountInfo(
      "20 1 254:0 / / rw - ext4 /dev/vda rw\n"
      "21 20 254:0 /src /t rw - ext4 /dev/vda rw\n"
      "22 21 254:0 /src/a /t rw - ext4 /dev/vda rw\n"
      "23 20 254:0 /other /t#1 rw - ext4 /dev/vda rw\n");
  ASSERT_TRUE(mounts.ok()) << mounts.error().ToString();
  std::map<uint32_t, std::string> keys = ExternalKeys(*mounts);
  EXPECT_EQ(keys, (std::map<uint32_t, std::string>{{20, "/"}, {21, "/t#1#1"}, {22, "/t"}, {23, "/t#1"}}));
}

}  // namespace
}  // namespace ro
