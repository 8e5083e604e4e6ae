// The memory reader of /proc: a task's VMAs with their smaps flags, the mm
// fields of its stat, its auxv, its pagemap, the files behind its mappings
// (map_files), and its POSIX timers. The dump reads address spaces through it.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <span>
#include <optional>
#include <string>
#include <utility>
#include <string_view>
#include <vector>

#include "sys/status.h"
#include "sys/unique_fd.h"

namespace ro::sys {

inline constexpr uint64_t kPageSize = 4096;

// One VMA of /proc/PID/smaps.
struct Vma {
  uint64_t start = 0;
  uint64_t end = 0;
  bool read = false, write = false, exec = false, shared = false;
  uint64_t offset = 0;  // into the mapped file, in bytes
  uint32_t major = 0, minor = 0;
  uint64_t inode = 0;
  std::string path;      // as maps shows it: "", "[heap]", "/a/b", "/a/b (deleted)"...
  std::string vm_flags;  // the VmFlags line: two-letter codes ("rd wr mr mw me ac")
  // smaps' Rss and Swap lines, KiB; -1 when smaps had none (maps text).
  // Both 0: no page of the VMA is present or swapped (the zero page is
  // not counted), so its pagemap need not be read.
  int64_t rss_kib = -1, swap_kib = -1;

  uint64_t pages() const { return (end - start) / kPageSize; }
  bool HoldsNoPage() const { return rss_kib == 0 && swap_kib == 0; }
  bool HasFlag(std::string_view code) const;
};

// Parses smaps text: every VMA in address order.
Result<std::vector<Vma>> ParseSmaps(const std::string& text);
// Reads /proc/OUTER/smaps.
Result<std::vector<Vma>> ReadVmas(pid_t outer);

// The fields of /proc/PID/stat a dump of the task's memory and scheduling
// needs (proc(5) numbers them in the comments). The mm fields read 0 to a
// reader that may not ptrace the task.
struct ProcStatMm {
  uint32_t flags = 0;        // 9, PF_*
  long nice = 0;             // 19
  uint64_t start_code = 0;   // 26
  uint64_t end_code = 0;     // 27
  uint64_t start_stack = 0;  // 28
  uint32_t rt_priority = 0;  // 40
  uint32_t policy = 0;       // 41
  uint64_t start_data = 0;   // 45
  uint64_t end_data = 0;     // 46
  uint64_t start_brk = 0;    // 47
  uint64_t arg_start = 0;    // 48
  uint64_t arg_end = 0;      // 49
  uint64_t env_start = 0;    // 50
  uint64_t env_end = 0;      // 51
};
Result<ProcStatMm> ParseProcStatMm(const std::string& text);

// /proc/OUTER/auxv as 64-bit words, AT_NULL pair included.
Result<std::vector<uint64_t>> ReadAuxv(pid_t outer);
// The bytes of an auxv file as 64-bit words (host order); a trailing part
// word is left out.
std::vector<uint64_t> ParseAuxv(const std::string& bytes);

// The number of POSIX timers (timer_create) of OUTER (/proc/OUTER/timers).
Result<size_t> CountPosixTimers(pid_t outer);
// The number of timers in the text of a timers file: its lines that start
// with "ID:".
size_t ParsePosixTimerCount(const std::string& text);

// Bits of a /proc/PID/pagemap entry.
inline constexpr uint64_t kPmPresent = 1ull << 63;
inline constexpr uint64_t kPmSwapped = 1ull << 62;
inline constexpr uint64_t kPmFile = 1ull << 61;  // a page-cache (or shared) page, not the task's own copy
inline constexpr uint64_t kPmPfnMask = (1ull << 55) - 1;

// /proc/OUTER/pagemap, read by page number.
class Pagemap {
 public:
  static Result<Pagemap> Open(pid_t outer);
  // The entries of `out.size()` pages from page number `first_page` on.
  Status Read(uint64_t first_page, std::span<uint64_t> out) const;
  // The ranges of [start, end) (page-aligned addresses) holding a present
  // or swapped page, in address order, adjacent ones merged; asked of the
  // kernel's page tables with the PAGEMAP_SCAN ioctl (Linux 6.7,
  // include/uapi/linux/fs.h), so a sparse reserve of terabytes costs what
  // its pages cost. nullopt when the kernel has no PAGEMAP_SCAN (the
  // caller reads every entry); errors name the file and errno.
  Result<std::optional<std::vector<std::pair<uint64_t, uint64_t>>>> PopulatedRanges(uint64_t start, uint64_t end) const;

 private:
  UniqueFd fd_;
  std::string path_;
};

// The PFN of the kernel's shared zero page as pagemap shows it (0 when
// pagemap hides PFNs from this reader: without CAP_SYS_ADMIN).
Result<uint64_t> ZeroPagePfn();

// The file mapped at [start, end) of OUTER, through /proc/OUTER/map_files:
// its path (as readlink shows it to this reader), what it is (stat), and
// the mount it was opened on.
struct MappedFile {
  std::string path;
  struct stat st {};
  uint32_t mnt_id = 0;
};
Result<MappedFile> ReadMappedFile(pid_t outer, uint64_t start, uint64_t end);
// The same for any /proc link to a file (/proc/PID/exe).
Result<MappedFile> ReadLinkedFile(const std::string& link);
// Opens it (needs CAP_SYS_ADMIN): a mapped file, or the shmem object of
// shared anonymous memory.
Result<UniqueFd> OpenMappedFile(pid_t outer, uint64_t start, uint64_t end, int flags);

// The device of shared anonymous memory (MAP_SHARED|MAP_ANONYMOUS and
// /dev/zero mappings, SysV shm, memfds: the kernel's internal shmem mount),
// found by mapping some and looking at it.
Result<dev_t> AnonSharedMemoryDevice();

}  // namespace ro::sys
