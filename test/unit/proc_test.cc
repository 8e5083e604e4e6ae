// /proc text parsers: status lines per PID namespace, fdinfo, NUL lists.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <optional>

#include "sys/proc.h"

namespace ro::sys {
namespace {

constexpr const char* kStatus =
    "Name:\tsleep\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t812\nNgid:\t0\nPid:\t812\nPPid:\t800\n"
    "NSpid:\t812\t4\nNSpgid:\t810\t2\nNSsid:\t810\t0\nThreads:\t1\nSeccomp:\t2\nSeccomp_filters:\t3\n";

TEST(Proc, StatusValuesPerNamespace) {
  EXPECT_EQ(StatusValues(kStatus, "NSpid"), (std::vector<long>{812, 4}));
  EXPECT_EQ(StatusInnermost(kStatus, "NSpid"), 4);
  EXPECT_EQ(StatusInnermost(kStatus, "NSsid"), 0);  // the leader is outside the namespace
  EXPECT_EQ(StatusInnermost(kStatus, "Name"), -1);   // not a number
  EXPECT_EQ(StatusInnermost(kStatus, "Threads"), 1);
  // "Seccomp" must not match "Seccomp_filters", nor "Pid" match "PPid" or "NSpid".
  EXPECT_EQ(StatusInnermost(kStatus, "Seccomp"), 2);
  EXPECT_EQ(StatusInnermost(kStatus, "Pid"), 812);
  EXPECT_EQ(StatusInnermost(kStatus, "Missing"), -1);
  EXPECT_EQ(StatusInnermost("Tgid:\t5\n", "Tgid"), 5);  // the first line
}

TEST(Proc, FdInfo) {
  auto info = ParseFdInfo("pos:\t12345\nflags:\t02004002\nmnt_id:\t31\nino:\t77\n");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->pos, 12345u);
  EXPECT_EQ(info->flags, static_cast<uint32_t>(O_CLOEXEC | O_NONBLOCK | O_RDWR));
  EXPECT_EQ(info->mnt_id, 31u);
  EXPECT_FALSE(ParseFdInfo("pos:\t0\n").ok());  // no flags: not an fdinfo
  // Locks held through the fd, as the kernel lists them (fs/locks.c).
  auto locked = ParseFdInfo("pos:\t0\nflags:\t02\nmnt_id:\t31\nino:\t77\nlock:\t1: FLOCK  ADVISORY  WRITE 1234 00:2d:77 0 EOF\n"
                            "lock:\t2: OFDLCK ADVISORY  READ -1 00:2d:77 0 9\n");
  ASSERT_TRUE(locked.ok());
  ASSERT_EQ(locked->locks.size(), 2u);
  EXPECT_EQ(locked->locks[0], "1: FLOCK  ADVISORY  WRITE 1234 00:2d:77 0 EOF");
  EXPECT_EQ(locked->locks[1], "2: OFDLCK ADVISORY  READ -1 00:2d:77 0 9");
  EXPECT_TRUE(info->locks.empty());
}

TEST(Proc, SplitNul) {
  EXPECT_EQ(SplitNul(std::string("sleep\0" "1000\0", 11)), (std::vector<std::string>{"sleep", "1000"}));
  EXPECT_EQ(SplitNul(std::string("a\0\0b", 4)), (std::vector<std::string>{"a", "", "b"}));
  EXPECT_TRUE(SplitNul("").empty());
}

TEST(Proc, StatusHexSets) {
  std::string status = std::string(kStatus) + "SigBlk:\t0000000000010000\nSigCgt:\t\nCapEff:\t000001ffffffffff\n";
  EXPECT_EQ(StatusHex(status, "SigBlk"), std::optional<uint64_t>(0x10000));
  EXPECT_EQ(StatusHex(status, "CapEff"), std::optional<uint64_t>(0x1ffffffffffull));
  EXPECT_EQ(StatusHex(status, "SigCgt"), std::nullopt);   // no value
  EXPECT_EQ(StatusHex(status, "ShdPnd"), std::nullopt);   // no line
  EXPECT_EQ(StatusHex(status, "Name"), std::nullopt);     // not hexadecimal ("sleep")
  EXPECT_EQ(StatusHex("SigIgn:\t0000000000000004\n", "SigIgn"), std::optional<uint64_t>(4));  // the first line
  EXPECT_EQ(StatusHex("CapEff:\t1ffffffffffffffff\n", "CapEff"), std::nullopt);              // more than 64 bits
}

TEST(Proc, ChildrenPids) {
  EXPECT_EQ(ParsePidList("812 813 900 "), (std::vector<pid_t>{812, 813, 900}));
  EXPECT_TRUE(ParsePidList("").empty());
  EXPECT_EQ(ParsePidList("5 x 6"), (std::vector<pid_t>{5}));  // stops at what is not a pid
}

// As fs/proc/base.c prints it: names with spaces, padded to 25 columns.
TEST(Proc, LimitsLines) {
  const std::string text =
      "Limit                     Soft Limit           Hard Limit           Units     \n"
      "Max cpu time              unlimited            unlimited            seconds   \n"
      "Max file size             unlimited            unlimited            bytes     \n"
      "Max data size             unlimited            unlimited            bytes     \n"
      "Max stack size            8388608              unlimited            bytes     \n"
      "Max core file size        0                    unlimited            bytes     \n"
      "Max resident set          unlimited            unlimited            bytes     \n"
      "Max processes             96362                96362                processes \n"
      "Max open files            1024                 20000                files     \n";
  EXPECT_EQ(ParseProcLimit(text, RLIMIT_STACK), std::make_pair(uint64_t{8388608}, ~uint64_t{0}));
  EXPECT_EQ(ParseProcLimit(text, RLIMIT_CORE), std::make_pair(uint64_t{0}, ~uint64_t{0}));
  EXPECT_EQ(ParseProcLimit(text, RLIMIT_NPROC), std::make_pair(uint64_t{96362}, uint64_t{96362}));
  EXPECT_EQ(ParseProcLimit(text, RLIMIT_NOFILE), std::make_pair(uint64_t{1024}, uint64_t{20000}));
  EXPECT_EQ(ParseProcLimit(text, RLIMIT_NOFILE + 1), std::nullopt);  // no such line
  EXPECT_EQ(ParseProcLimit(text, -1), std::nullopt);
  EXPECT_EQ(ParseProcLimit("Limit\nMax cpu time              12x unlimited\n", RLIMIT_CPU), std::nullopt);
  EXPECT_EQ(ParseProcLimit("Limit\nMax cpu time\n", RLIMIT_CPU), std::nullopt);
  // What the kernel prints of this process is what prlimit says.
  auto self = ReadProcFile("/proc/self/limits");
  ASSERT_TRUE(self.ok());
  for (int r = 0; r < RLIM_NLIMITS; ++r) {
    rlimit l{};
    ASSERT_EQ(::getrlimit(static_cast<__rlimit_resource>(r), &l), 0);
    EXPECT_EQ(ParseProcLimit(*self, r), std::make_pair(uint64_t{l.rlim_cur}, uint64_t{l.rlim_max})) << "resource " << r;
  }
}

}  // namespace
}  // namespace ro::sys
