#include "sys/mountinfo.h"

#include <gtest/gtest.h>

namespace ro::sys {
namespace {

TEST(MountInfo, ParsesTagsAndEscapes) {
  auto r = ParseMountInfo(
      "22 1 0:21 / / rw,relatime shared:1 - tmpfs tmpfs rw\n"
      "36 22 0:50 /sub /a\\040b rw master:3 shared:7 - autofs automount rw,fd=5,pgrp=42,timeout=300,minproto=5,"
      "maxproto=5,indirect,pipe_ino=1234\n"
      "37 22 0:51 / /u rw unbindable - proc proc\n");
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  ASSERT_EQ(r->size(), 3u);
  const MountInfo& a = (*r)[1];
  EXPECT_EQ(a.mnt_id, 36u);
  EXPECT_EQ(a.parent_id, 22u);
  EXPECT_EQ(a.minor, 50u);
  EXPECT_EQ(a.root, "/sub");
  EXPECT_EQ(a.mountpoint, "/a b");
  EXPECT_EQ(a.shared, 7u);
  EXPECT_EQ(a.master, 3u);
  EXPECT_EQ(a.fstype, "autofs");
  EXPECT_EQ(a.SuperOption("pipe_ino"), "1234");
  EXPECT_EQ(a.SuperOption("pgrp"), "42");
  EXPECT_EQ(a.SuperOption("pipe"), "");
  EXPECT_TRUE((*r)[2].unbindable);
  EXPECT_EQ((*r)[2].super_options, "");
}

TEST(MountInfo, RejectsMalformedLines) {
  EXPECT_FALSE(ParseMountInfo("22 1 0:21 / / rw\n").ok());
  EXPECT_FALSE(ParseMountInfo("x 1 0:21 / / rw - tmpfs tmpfs rw\n").ok());
}

}  // namespace
}  // namespace ro::sys
