// The memory reader's /proc parsers: smaps with VmFlags, maps, stat's mm
// fields, auxv, timers.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sys/proc_maps.h"
#include "sys/proc_mm.h"
#include "sys/special_mappings.h"

namespace ro::sys {
namespace {

constexpr const char* kSmaps =
    "00400000-00401000 r--p 00000000 fe:00 5391170                            /app/prog with space\n"
    "Size:                  4 kB\n"
    "Rss:                   4 kB\n"
    "VmFlags: rd mr mw me dw sd \n"
    "7fd842c93000-7fd842c94000 rw-s 00000000 00:01 791                        /dev/zero (deleted)\n"
    "Private_Dirty:         0 kB\n"
    "VmFlags: rd wr sh mr mw me ms sd \n"
    "7fd842c94000-7fd842c98000 rw-p 00000000 00:00 0 \n"
    "Rss:                   0 kB\n"
    "Swap:                  0 kB\n"
    "THPeligible:    0\n"
    "VmFlags: rd wr mr mw me ac dc sd \n"
    "7ffed6431000-7ffed6452000 rw-p 00000000 00:00 0                          [stack]\n"
    "Rss:                   0 kB\n"
    "Swap:                 12 kB\n"
    "VmFlags: rd wr mr mw me gd ac \n"
    "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n"
    "VmFlags: ex \n";

TEST(ProcMm, SmapsVmasWithTheirFlags) {
  auto vmas = ParseSmaps(kSmaps);
  ASSERT_TRUE(vmas.ok()) << vmas.error().ToString();
  ASSERT_EQ(vmas->size(), 5u);
  const Vma& file = (*vmas)[0];
  EXPECT_EQ(file.start, 0x400000u);
  EXPECT_EQ(file.end, 0x401000u);
  EXPECT_TRUE(file.read && !file.write && !file.exec && !file.shared);
  EXPECT_EQ(file.major, 0xfeu);
  EXPECT_EQ(file.inode, 5391170u);
  EXPECT_EQ(file.path, "/app/prog with space");
  EXPECT_TRUE(file.HasFlag("dw"));
  const Vma& shm = (*vmas)[1];
  EXPECT_TRUE(shm.shared && shm.write);
  EXPECT_EQ(shm.minor, 1u);
  EXPECT_EQ(shm.path, "/dev/zero (deleted)");
  EXPECT_TRUE(shm.HasFlag("sh") && shm.HasFlag("mw") && !shm.HasFlag("gd"));
  EXPECT_EQ((*vmas)[2].path, "");
  EXPECT_TRUE((*vmas)[2].HasFlag("dc"));
  EXPECT_EQ((*vmas)[2].pages(), 4u);
  EXPECT_TRUE((*vmas)[3].HasFlag("gd"));
  EXPECT_EQ((*vmas)[4].start, 0xffffffffff600000u);
  EXPECT_TRUE((*vmas)[4].exec && !(*vmas)[4].read);
  // Rss and Swap: both 0 is a VMA without a page; a missing line is unknown.
  EXPECT_EQ(file.rss_kib, 4);
  EXPECT_FALSE(file.HoldsNoPage());
  EXPECT_TRUE((*vmas)[2].HoldsNoPage());
  EXPECT_EQ((*vmas)[3].swap_kib, 12);
  EXPECT_FALSE((*vmas)[3].HoldsNoPage());
  EXPECT_FALSE((*vmas)[4].HoldsNoPage());
  EXPECT_FALSE(ParseSmaps("VmFlags: rd\n").ok());
}

TEST(ProcMm, StatMmFields) {
  // Fields 1..52 of a real stat line (comm with a space and parentheses).
  std::string stat =
      "25840 (mm (count)er) S 1 25840 25840 0 -1 4194560 120 0 0 0 0 0 0 0 20 5 1 0 1234 1 2 3 "
      "4198400 4695361 140732495822176 0 0 0 0 0 0 0 0 0 17 1 7 2 0 0 0 "
      "4863640 4887184 1046720512 140732495829377 140732495829427 140732495829427 140732495831000 0\n";
  auto s = ParseProcStatMm(stat);
  ASSERT_TRUE(s.ok()) << s.error().ToString();
  EXPECT_EQ(s->flags, 4194560u);
  EXPECT_EQ(s->nice, 5);
  EXPECT_EQ(s->start_code, 4198400u);
  EXPECT_EQ(s->end_code, 4695361u);
  EXPECT_EQ(s->start_stack, 140732495822176u);
  EXPECT_EQ(s->rt_priority, 7u);
  EXPECT_EQ(s->policy, 2u);
  EXPECT_EQ(s->start_data, 4863640u);
  EXPECT_EQ(s->end_data, 4887184u);
  EXPECT_EQ(s->start_brk, 1046720512u);
  EXPECT_EQ(s->arg_start, 140732495829377u);
  EXPECT_EQ(s->env_end, 140732495831000u);
  EXPECT_FALSE(ParseProcStatMm("1 (x) S 1 2 3\n").ok());
}

// PAGEMAP_SCAN: only the touched pages of a sparse reserve come back, runs
// merged; a kernel without it says so (nullopt) instead of failing.
TEST(ProcMm, PopulatedRangesOfASparseReserve) {
  const uint64_t size = 1ull << 30;
  void* base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  ASSERT_NE(base, MAP_FAILED);
  char* b = static_cast<char*>(base);
  for (uint64_t page : {0ull, 5ull, 6ull, 100000ull}) b[page * kPageSize] = 1;
  auto pagemap = Pagemap::Open(::getpid());
  ASSERT_TRUE(pagemap.ok()) << pagemap.error().ToString();
  uint64_t start = reinterpret_cast<uint64_t>(base);
  auto ranges = pagemap->PopulatedRanges(start, start + size);
  ASSERT_TRUE(ranges.ok()) << ranges.error().ToString();
  if (!*ranges) {
    ::munmap(base, size);
    GTEST_SKIP() << "this kernel has no PAGEMAP_SCAN (Linux < 6.7)";
  }
  std::vector<std::pair<uint64_t, uint64_t>> want = {{start, start + kPageSize},
                                                     {start + 5 * kPageSize, start + 7 * kPageSize},
                                                     {start + 100000 * kPageSize, start + 100001 * kPageSize}};
  EXPECT_EQ(**ranges, want);
  ::munmap(base, size);
}

TEST(ProcMm, SmapsRangesArePageAlignedAndNotEmpty) {
  for (const char* line : {"00401000-00400000 r--p 00000000 fe:00 1 /a\n", "00400000-00400000 r--p 00000000 fe:00 1 /a\n",
                           "00400010-00401000 r--p 00000000 fe:00 1 /a\n", "00400000-00401001 r--p 00000000 fe:00 1 /a\n"}) {
    EXPECT_FALSE(ParseSmaps(line).ok()) << line;
    EXPECT_FALSE(ParseMaps(line).ok()) << line;
  }
  auto maps = ParseMaps("00400000-00401000 r--p 00000000 fe:00 1  /a b\n7ffd1000-7ffd3000 r-xp 00000000 00:00 0  [vdso]\n");
  ASSERT_TRUE(maps.ok()) << maps.error().ToString();
  EXPECT_EQ((*maps)[0].path, "/a b");
  auto special = ParseSpecialMappings("00400000-00401000 r--p 00000000 fe:00 1  /a b\n7ffd1000-7ffd3000 r-xp 00000000 00:00 0  [vdso]\n");
  ASSERT_TRUE(special.ok()) << special.error().ToString();
  ASSERT_EQ(special->size(), 1u);
  EXPECT_EQ((*special)[0].start, 0x7ffd1000u);
  EXPECT_EQ((*special)[0].end, 0x7ffd3000u);
  EXPECT_FALSE(ParseSpecialMappings("[vdso]\n").ok());  // no range
}

TEST(ProcMm, AuxvWordsAndTimers) {
  std::string auxv(20, '\0');
  auxv[0] = 6;  // AT_PAGESZ
  auxv[9] = 0x10;
  EXPECT_EQ(ParseAuxv(auxv), (std::vector<uint64_t>{6, 0x1000}));  // the part word at the end is left out
  EXPECT_TRUE(ParseAuxv("").empty());
  EXPECT_EQ(ParsePosixTimerCount("ID: 0\nsignal: 14/0000000000000000\nnotify: signal/pid.7\nClockID: 1\n"
                                 "ID: 1\nsignal: 14/0000000000000000\nnotify: signal/pid.7\nClockID: 0\n"),
            2u);
  EXPECT_EQ(ParsePosixTimerCount("notify: IDX: 3\n"), 0u);  // only at the start of a line
}

}  // namespace
}  // namespace ro::sys
