#include "sys/proc_mm.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "sys/mapping.h"
#include "sys/proc.h"
#include "sys/files.h"
#include "sys/remote_mem.h"

namespace ro::sys {
namespace {

std::string Proc(pid_t pid, const std::string& rest) { return "/proc/" + std::to_string(pid) + "/" + rest; }

std::string MapFilesPath(pid_t outer, uint64_t start, uint64_t end) {
  char range[48];
  std::snprintf(range, sizeof(range), "%" PRIx64 "-%" PRIx64, start, end);
  return Proc(outer, std::string("map_files/") + range);
}

// "start-end perms offset major:minor inode   path" (the path may hold spaces).
bool ParseRangeLine(const std::string& line, Vma& v) {
  char perms[5] = {};
  unsigned long long start = 0, end = 0, offset = 0, inode = 0;
  unsigned major = 0, minor = 0;
  int path_at = 0;
  if (std::sscanf(line.c_str(), "%llx-%llx %4s %llx %x:%x %llu %n", &start, &end, perms, &offset, &major, &minor, &inode,
                  &path_at) != 7) {
    return false;
  }
  // What the kernel shows is a page-aligned, non-empty range.
  if (end <= start || start % kPageSize != 0 || end % kPageSize != 0) return false;
  v.start = start;
  v.end = end;
  v.read = perms[0] == 'r';
  v.write = perms[1] == 'w';
  v.exec = perms[2] == 'x';
  v.shared = perms[3] == 's';
  v.offset = offset;
  v.major = major;
  v.minor = minor;
  v.inode = inode;
  v.path = path_at > 0 && static_cast<size_t>(path_at) <= line.size() ? line.substr(static_cast<size_t>(path_at)) : "";
  return true;
}

}  // namespace

bool Vma::HasFlag(std::string_view code) const {
  for (size_t at = 0; at + code.size() <= vm_flags.size(); at += 3) {
    if (vm_flags.compare(at, code.size(), code) == 0) return true;
  }
  return false;
}

Result<std::vector<Vma>> ParseSmaps(const std::string& text) {
  std::vector<Vma> out;
  size_t line_no = 0;
  for (size_t at = 0; at < text.size();) {
    size_t nl = text.find('\n', at);
    std::string line = text.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
    at = nl == std::string::npos ? text.size() : nl + 1;
    ++line_no;
    if (line.empty()) continue;
    if (line.rfind("VmFlags:", 0) == 0) {
      if (out.empty()) return Fail("smaps line " + std::to_string(line_no) + ": VmFlags before any VMA");
      size_t first = line.find_first_not_of(' ', 8);
      out.back().vm_flags = first == std::string::npos ? "" : line.substr(first);
      continue;
    }
    for (auto [key, field] : {std::pair{"Rss:", &Vma::rss_kib}, std::pair{"Swap:", &Vma::swap_kib}}) {
      if (line.rfind(key, 0) != 0 || out.empty()) continue;
      out.back().*field = std::strtoll(line.c_str() + std::strlen(key), nullptr, 10);
    }
    // Other "Key: value" lines belong to the VMA above; a range line starts
    // with a hex digit and holds a '-' before the first space.
    size_t dash = line.find('-'), space = line.find(' ');
    if (dash == std::string::npos || space == std::string::npos || dash > space || line.find(':') < dash) continue;
    Vma v;
    if (!ParseRangeLine(line, v)) return Fail("smaps line " + std::to_string(line_no) + ": cannot parse \"" + line + "\"");
    out.push_back(std::move(v));
  }
  return out;
}

Result<std::vector<Vma>> ReadVmas(pid_t outer) {
  RO_ASSIGN_OR_RETURN(std::string text, ReadProcFile(Proc(outer, "smaps")));
  auto vmas = ParseSmaps(text);
  if (!vmas.ok()) return std::move(vmas).error().Within(Proc(outer, "smaps"));
  return vmas;
}

Result<ProcStatMm> ParseProcStatMm(const std::string& text) {
  size_t close = text.rfind(')');
  if (close == std::string::npos) return Fail("malformed /proc stat");
  std::istringstream rest(text.substr(close + 1));
  std::vector<std::string> f;
  for (std::string w; rest >> w;) f.push_back(w);
  // f[0] is field 3; field N is f[N - 3].
  if (f.size() < 49) return Fail("short /proc stat: " + std::to_string(f.size() + 2) + " fields");
  auto u = [&](int n) { return static_cast<uint64_t>(std::strtoull(f[static_cast<size_t>(n - 3)].c_str(), nullptr, 10)); };
  ProcStatMm s;
  s.flags = static_cast<uint32_t>(u(9));
  s.nice = std::strtol(f[19 - 3].c_str(), nullptr, 10);
  s.start_code = u(26);
  s.end_code = u(27);
  s.start_stack = u(28);
  s.rt_priority = static_cast<uint32_t>(u(40));
  s.policy = static_cast<uint32_t>(u(41));
  s.start_data = u(45);
  s.end_data = u(46);
  s.start_brk = u(47);
  s.arg_start = u(48);
  s.arg_end = u(49);
  s.env_start = u(50);
  s.env_end = u(51);
  return s;
}

std::vector<uint64_t> ParseAuxv(const std::string& bytes) {
  std::vector<uint64_t> words(bytes.size() / sizeof(uint64_t));
  if (!words.empty()) std::memcpy(words.data(), bytes.data(), words.size() * sizeof(uint64_t));  // memcpy to null is UB, even of 0 bytes
  return words;
}

Result<std::vector<uint64_t>> ReadAuxv(pid_t outer) {
  RO_ASSIGN_OR_RETURN(std::string bytes, ReadProcFile(Proc(outer, "auxv")));
  return ParseAuxv(bytes);
}

size_t ParsePosixTimerCount(const std::string& text) {
  size_t n = 0;
  for (size_t at = 0; (at = text.find("ID:", at)) != std::string::npos; at += 3) {
    if (at == 0 || text[at - 1] == '\n') ++n;
  }
  return n;
}

Result<size_t> CountPosixTimers(pid_t outer) {
  RO_ASSIGN_OR_RETURN(std::string text, ReadProcFile(Proc(outer, "timers")));
  return ParsePosixTimerCount(text);
}

Result<Pagemap> Pagemap::Open(pid_t outer) {
  Pagemap p;
  p.path_ = Proc(outer, "pagemap");
  p.fd_ = UniqueFd(::open(p.path_.c_str(), O_RDONLY | O_CLOEXEC));
  if (!p.fd_) return SysError("open " + p.path_);
  return p;
}

Status Pagemap::Read(uint64_t first_page, std::span<uint64_t> out) const {
  return PreadExactly(fd_.get(), out.data(), out.size_bytes(), first_page * sizeof(uint64_t), path_);
}

namespace {

// PAGEMAP_SCAN's argument and result, as include/uapi/linux/fs.h (6.7)
// declares them; Debian 12's headers predate it.
struct PageRegion {
  uint64_t start, end, categories;
};
struct PmScanArg {
  uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages, category_inverted, category_mask,
      category_anyof_mask, return_mask;
};
constexpr uint64_t kPageIsPresent = 1u << 3, kPageIsSwapped = 1u << 4;
constexpr unsigned long kPagemapScan = _IOWR('f', 16, PmScanArg);

}  // namespace

Result<std::optional<std::vector<std::pair<uint64_t, uint64_t>>>> Pagemap::PopulatedRanges(uint64_t start, uint64_t end) const {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  std::vector<PageRegion> regions(512);
  for (uint64_t at = start; at < end;) {
    PmScanArg arg{};
    arg.size = sizeof(arg);
    arg.start = at;
    arg.end = end;
    arg.vec = reinterpret_cast<uint64_t>(regions.data());
    arg.vec_len = regions.size();
    arg.category_anyof_mask = kPageIsPresent | kPageIsSwapped;
    arg.return_mask = kPageIsPresent | kPageIsSwapped;
    long n = ::ioctl(fd_.get(), kPagemapScan, &arg);
    if (n < 0) {
      if (errno == ENOTTY || errno == EINVAL) return std::optional<std::vector<std::pair<uint64_t, uint64_t>>>();
      return SysError("ioctl(PAGEMAP_SCAN) " + path_);
    }
    for (long i = 0; i < n; ++i) {
      const PageRegion& r = regions[static_cast<size_t>(i)];
      if (!out.empty() && out.back().second == r.start) {
        out.back().second = r.end;
      } else {
        out.emplace_back(r.start, r.end);
      }
    }
    if (arg.walk_end <= at) return Fail("ioctl(PAGEMAP_SCAN) " + path_ + " made no progress at " + std::to_string(at));
    at = arg.walk_end;
  }
  return std::optional(std::move(out));
}

Result<uint64_t> ZeroPagePfn() {
  RO_ASSIGN_OR_RETURN(Mapping page, MapPrivateAnonymous(kPageSize));
  // A read fault on untouched anonymous memory maps the shared zero page.
  (void)*static_cast<volatile const char*>(page.base());
  uint64_t entry = 0;
  UniqueFd fd(::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
  if (!fd) return SysError("open /proc/self/pagemap");
  RO_TRY(PreadExactly(fd.get(), &entry, sizeof(entry), reinterpret_cast<uint64_t>(page.base()) / kPageSize * sizeof(entry),
                      "/proc/self/pagemap"));
  return (entry & kPmPresent) ? (entry & kPmPfnMask) : 0;
}

Result<MappedFile> ReadMappedFile(pid_t outer, uint64_t start, uint64_t end) {
  return ReadLinkedFile(MapFilesPath(outer, start, end));
}

Result<MappedFile> ReadLinkedFile(const std::string& path) {
  MappedFile f;
  RO_ASSIGN_OR_RETURN(f.path, ReadProcLink(path));
  struct statx stx {};
  if (::statx(AT_FDCWD, path.c_str(), 0, STATX_BASIC_STATS | STATX_MNT_ID, &stx) != 0) return SysError("statx " + path);
  if (::stat(path.c_str(), &f.st) != 0) return SysError("stat " + path);
  if (stx.stx_mask & STATX_MNT_ID) f.mnt_id = static_cast<uint32_t>(stx.stx_mnt_id);
  return f;
}

Result<dev_t> AnonSharedMemoryDevice() {
  RO_ASSIGN_OR_RETURN(Mapping page, MapSharedAnonymous(kPageSize, 0));
  uint64_t at = reinterpret_cast<uint64_t>(page.base());
  std::string path = MapFilesPath(::getpid(), at, at + kPageSize);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return SysError("stat " + path);
  return st.st_dev;
}

Result<UniqueFd> OpenMappedFile(pid_t outer, uint64_t start, uint64_t end, int flags) {
  std::string path = MapFilesPath(outer, start, end);
  UniqueFd fd(::open(path.c_str(), flags | O_CLOEXEC));
  if (!fd) return SysError("open " + path);
  return fd;
}

}  // namespace ro::sys
