// mm: a task whose images hold its address space (mm-<pid>.img, its
// pagemap and pages, x86_64 registers in its core) continues where it
// stopped. Every VMA, page run, register set and signal-state value is
// checked here, before anything exists; images/plan/zone.cc then places the
// bootstrap zone where no VMA of any continuing task lies.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>

#include "images/plan/context.h"
#include "images/x86_fpu.h"
#include "images/proto/core-x86.pb.h"
#include "images/proto/fdinfo.pb.h"
#include "images/proto/memfd.pb.h"
#include "images/proto/mm.pb.h"
#include "images/proto/pagemap.pb.h"
#include "sys/meminfo.h"
#include "sys/special_mappings.h"

namespace ro::images::plan {
namespace {

constexpr uint64_t kTaskSizeMax = 0x7ffffffff000ull;  // x86_64 TASK_SIZE_MAX, 4-level paging
constexpr size_t kMaxVmas = 65530;  // vm.max_map_count's default
constexpr size_t kMaxAuxvWords = 2 * 26;
// CRIU's VMA status bits (criu/include/image.h).
constexpr uint32_t kVmaRegular = 1u << 0, kVmaVsyscall = 1u << 2, kVmaVdso = 1u << 3, kVmaFilePrivate = 1u << 6,
                   kVmaFileShared = 1u << 7, kVmaAnonShared = 1u << 8, kVmaAnonPrivate = 1u << 9,
                   kVmaSysvipc = 1u << 10, kVmaSocket = 1u << 11, kVmaVvar = 1u << 12, kVmaAioring = 1u << 13,
                   kVmaMemfd = 1u << 14, kVmaUnsupported = 1u << 31;
constexpr uint32_t kPePresent = 4, kPeLazy = 2, kPeParent = 1;
// What the kernel takes for a 64-bit user task (arch/x86: __USER_CS,
// __USER_DS; ptrace's putreg refuses other RPLs and a task given a
// 32-bit or LDT selector runs in another mode or faults on its return).
constexpr uint64_t kUserCs = 0x33, kUserDs = 0x2b;
// EFLAGS a user task may hold: CF, the always-one bit 1, PF, AF, ZF, SF,
// IF, DF, OF, RF, AC, ID. TF makes it trap after one instruction (SIGTRAP
// kills it); IOPL, NT, VM, VIF, VIP and the reserved bits are not a user
// task's.
constexpr uint64_t kUserFlags = (1u << 0) | (1u << 1) | (1u << 2) | (1u << 4) | (1u << 6) | (1u << 7) | (1u << 9) | (1u << 10) |
                                (1u << 11) | (1u << 16) | (1u << 18) | (1u << 21);
constexpr uint64_t kSaRestorer = 0x04000000;
constexpr uint64_t kSsOnstack = 1, kSsDisable = 2, kSsAutodisarm = 1u << 31, kMinSigstksz = 2048;
constexpr uint64_t kRobustListHeadSize = 24;  // struct robust_list_head: set_robust_list takes no other length
constexpr uint64_t kRseqMinSize = 32;         // ORIG_RSEQ_SIZE, also the area's alignment
constexpr uint64_t kMaxFileOffset = 0x7fffffffffffffffull;  // MAX_LFS_FILESIZE: mmap past it is EOVERFLOW

bool Aligned(uint64_t v) { return v % kPageSize == 0; }

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%#llx", static_cast<unsigned long long>(v));
  return buf;
}

// Shared state of the memory planner across tasks: shared objects by the
// image's shmid.
struct Shared {
  std::map<uint64_t, uint32_t> index;  // shmid -> RestorePlan::shmem index
};

// The shared object a VMA maps: CRIU 4's memfd form (a files.img MEMFD
// entry standing for /dev/zero) or the classic VMA_ANON_SHARED (shmid is the
// object's inode).
std::optional<uint64_t> ShmidOf(Context& ctx, const img::vma_entry& v, const std::string& name, size_t entry) {
  if (v.status() & kVmaAnonShared) return v.shmid();
  const ImageFile* files = ctx.dir.Find(FilesKind());
  const ImageFile* memfds = ctx.dir.Find(MemfdInodeKind());
  if (files != nullptr && memfds != nullptr) {
    for (size_t i = 0; i < files->entries.size(); ++i) {
      const auto& f = files->As<img::file_entry>(i);
      if (f.id() != v.shmid() || !f.has_memfd()) continue;
      for (size_t k = 0; k < memfds->entries.size(); ++k) {
        const auto& m = memfds->As<img::memfd_inode_entry>(k);
        if (m.inode_id() != f.memfd().inode_id()) continue;
        if (m.name() != "/dev/zero") break;
        return m.shmid();
      }
    }
  }
  ctx.problems.Add(name, entry, "VMA " + Hex(v.start()) + "-" + Hex(v.end()) +
                                    " maps a memfd that is not shared anonymous memory: memfds are not supported");
  return std::nullopt;
}

}  // namespace

// The pages runs of a pagemap image, cut by `split` into pieces that each
// lie in one fillable area, checked against the pages file.
bool ReadPagemap(Context& ctx, const ImageFile& pm, const std::string& name, std::string& pages_file, std::vector<PagesRun>& runs,
                 const Splitter& split) {
  const auto& head = pm.As<img::pagemap_head>(0);
  pages_file = MakeFileName(PagesKind(), head.pages_id());
  const ImageFile* pages = ctx.dir.Find(PagesKind(), head.pages_id());
  if (pages == nullptr || !pages->entries[0].ref) {
    ctx.problems.Add(name, 0, "its pages image " + pages_file + " is missing");
    return false;
  }
  uint64_t available = pages->entries[0].ref->length;
  uint64_t offset = 0, last_end = 0;
  for (size_t i = 1; i < pm.entries.size(); ++i) {
    const auto& e = pm.As<img::pagemap_entry>(i);
    uint64_t n = e.has_nr_pages() ? e.nr_pages() : e.compat_nr_pages();
    uint32_t flags = e.has_flags() ? e.flags() : kPePresent;
    if (e.in_parent() || (flags & kPeParent)) {
      ctx.problems.Add(name, i, "pages at " + Hex(e.vaddr()) + " are in a parent image (incremental dumps are not supported)");
      return false;
    }
    // Only pages present in the pages image are restored (CRIU marks the
    // ones a page server could serve instead PE_LAZY too, and writes them):
    // lazy pages alone (a page server's) or flags restore-orch does not
    // know would leave the task's memory without them.
    if (!(flags & kPePresent) || (flags & ~(kPePresent | kPeLazy)) != 0) {
      std::string why = (flags & ~(kPePresent | kPeLazy | kPeParent)) != 0
                            ? "unknown bits " + Hex(flags & ~(kPePresent | kPeLazy | kPeParent))
                        : (flags & kPeLazy) ? std::string("PE_LAZY without PE_PRESENT: lazy pages are not supported")
                                            : std::string("not PE_PRESENT");
      ctx.problems.Add(name, i, "pages at " + Hex(e.vaddr()) + " have flags " + Hex(flags) + " (" + why +
                                    "): only pages present in the pages image (PE_PRESENT) can be restored");
      return false;
    }
    if (n == 0 || !Aligned(e.vaddr()) || n > (kTaskSizeMax >> 12) || e.vaddr() < last_end || e.vaddr() + n * kPageSize < e.vaddr()) {
      ctx.problems.Add(name, i, std::to_string(n) + " pages at " + Hex(e.vaddr()) + " are empty, unaligned, out of order or out of range");
      return false;
    }
    if (offset + n * kPageSize > available) {
      ctx.problems.Add(name, i, "pages run past the end of " + pages_file + " (" + std::to_string(available) + " bytes)");
      return false;
    }
    if (!split(PagesRun{e.vaddr(), n, offset}, runs)) {
      ctx.problems.Add(name, i, std::to_string(n) + " pages at " + Hex(e.vaddr()) + " lie outside the memory they could fill");
      return false;
    }
    offset += n * kPageSize;
    last_end = e.vaddr() + n * kPageSize;
  }
  return true;
}

namespace {

// One VMA: its kind, and whether the image's values could be mapped.
std::optional<VmaPlan> ReadVma(Context& ctx, Shared& shared, const img::vma_entry& v, const std::string& name, size_t entry,
                               int index) {
  VmaPlan p;
  p.start = v.start();
  p.end = v.end();
  p.pgoff = v.pgoff();
  p.prot = v.prot();
  p.flags = v.flags();
  p.madv = v.has_madv() ? v.madv() : 0;
  std::string what = "vmas[" + std::to_string(index) + "] " + Hex(p.start) + "-" + Hex(p.end);
  uint32_t status = v.status();
  if (status & kVmaVsyscall) {
    p.kind = VmaKind::kVsyscall;
    return p;
  }
  if (!Aligned(p.start) || !Aligned(p.end) || p.start >= p.end || p.end > kTaskSizeMax) {
    ctx.problems.Add(name, entry, what + " is not a page-aligned range of user addresses");
    return std::nullopt;
  }
  // Root may map below vm.mmap_min_addr (CAP_SYS_RAWIO), which a task of
  // the image may not have had: an image alone must not lift the host's guard.
  if (p.start < sys::MmapMinAddr()) {
    ctx.problems.Add(name, entry, what + " starts below vm.mmap_min_addr (" + Hex(sys::MmapMinAddr()) +
                                      "), which the kernel keeps user mappings from");
    return std::nullopt;
  }
  if (!Aligned(p.pgoff)) {
    ctx.problems.Add(name, entry, what + ": pgoff " + Hex(p.pgoff) + " is not page-aligned");
    return std::nullopt;
  }
  if ((p.prot & ~uint32_t(PROT_READ | PROT_WRITE | PROT_EXEC)) != 0) {
    ctx.problems.Add(name, entry, what + ": prot " + Hex(p.prot) + " holds more than PROT_READ|PROT_WRITE|PROT_EXEC");
    return std::nullopt;
  }
  if (status & (kVmaSocket | kVmaAioring | kVmaUnsupported)) {
    ctx.problems.Add(name, entry, what + ": socket, AIO ring or unsupported mappings cannot be restored");
    return std::nullopt;
  }
  if (status & kVmaSysvipc) {
    // CRIU's shmid is the segment's id (the inode number of its file).
    const IpcPlan* ipc = ctx.plan.ns.ipc ? &*ctx.plan.ns.ipc : nullptr;
    bool held = ipc != nullptr && v.shmid() <= INT32_MAX &&
                std::any_of(ipc->shm.begin(), ipc->shm.end(), [&](const SysvShmPlan& s) { return s.perm.id == static_cast<int32_t>(v.shmid()); });
    if (!held || !(p.flags & MAP_SHARED)) {
      ctx.problems.Add(name, entry, what + " attaches System V segment " + std::to_string(v.shmid()) +
                                        (held ? " without MAP_SHARED" : ", which the images' IPC namespace of the tree's own does not hold"));
      return std::nullopt;
    }
    p.kind = VmaKind::kSysvShm;
    p.sysv_id = static_cast<int32_t>(v.shmid());
  } else if (status & kVmaVdso) {
    p.kind = VmaKind::kVdso;
  } else if (status & kVmaVvar) {
    p.kind = VmaKind::kVvar;
  } else if ((status & kVmaAnonShared) || (status & kVmaMemfd)) {
    auto shmid = ShmidOf(ctx, v, name, entry);
    if (!shmid) return std::nullopt;
    // The object is made whole in restore-orch's address space first.
    if (p.pgoff > kTaskSizeMax - (p.end - p.start)) {
      ctx.problems.Add(name, entry, what + " maps shared memory " + std::to_string(*shmid) + " at offset " + Hex(p.pgoff) +
                                        ": the offset is out of range (a shared object is at most " + Hex(kTaskSizeMax) + " bytes)");
      return std::nullopt;
    }
    auto [it, fresh] = shared.index.emplace(*shmid, static_cast<uint32_t>(ctx.plan.shmem.size()));
    if (fresh) ctx.plan.shmem.push_back(ShmemPlan{.id = *shmid});
    ShmemPlan& s = ctx.plan.shmem[it->second];
    s.size = std::max(s.size, p.pgoff + (p.end - p.start));
    p.kind = VmaKind::kAnonShared;
    p.shmem = it->second;
  } else if (status & (kVmaFilePrivate | kVmaFileShared)) {
    auto f = ctx.plan.files.find(static_cast<uint32_t>(v.shmid()));
    if (f == ctx.plan.files.end() || f->second.kind != FileKind::kRegular || (f->second.mode && !S_ISREG(*f->second.mode))) {
      ctx.problems.Add(name, entry, what + " maps file " + std::to_string(v.shmid()) + ", which is no regular file entry of files.img");
      return std::nullopt;
    }
    p.file_id = f->first;
    p.kind = (status & kVmaFileShared) ? VmaKind::kFileShared : VmaKind::kFilePrivate;
    // A shared mapping writes through to its file: only a file the images
    // have open for writing may be mapped so (the kernel's own rule, mmap
    // EACCES, on the description the restore opens with the entry's mode).
    if (p.kind == VmaKind::kFileShared && (p.prot & PROT_WRITE) && (f->second.flags & O_ACCMODE) == O_RDONLY) {
      ctx.problems.Add(name, entry, what + " is a writable shared mapping of " + f->second.path + ", which files.img entry " +
                                        std::to_string(f->first) + " has open read-only");
      return std::nullopt;
    }
    if (p.pgoff > kMaxFileOffset - (p.end - p.start)) {
      ctx.problems.Add(name, entry, what + ": file offset " + Hex(p.pgoff) + " is out of range (mmap refuses it: EOVERFLOW)");
      return std::nullopt;
    }
    if (p.flags & MAP_GROWSDOWN) {
      ctx.problems.Add(name, entry, what + " maps a file but is MAP_GROWSDOWN: mmap refuses that (EINVAL)");
      return std::nullopt;
    }
  } else if (status & kVmaAnonPrivate) {
    p.kind = VmaKind::kAnonPrivate;
  } else {
    ctx.problems.Add(name, entry, what + ": status " + Hex(status) + " names no kind of mapping restore-orch knows");
    return std::nullopt;
  }
  (void)kVmaRegular;
  // Advice the kernel keeps in the VMA (smaps VmFlags sr rr dc mg hg nh dd
  // wf): any other bit would be advice that acts once or destroys data.
  constexpr uint64_t kKept = 1u << MADV_RANDOM | 1u << MADV_SEQUENTIAL | 1u << MADV_DONTFORK | 1u << MADV_MERGEABLE |
                             1u << MADV_HUGEPAGE | 1u << MADV_NOHUGEPAGE | 1u << MADV_DONTDUMP | 1u << MADV_WIPEONFORK;
  auto has = [&p](int advice) { return (p.madv >> advice) & 1; };
  std::string bad = (p.madv & ~kKept) ? "bits " + Hex(p.madv & ~kKept) + " are no advice a VMA keeps"
                    : has(MADV_RANDOM) && has(MADV_SEQUENTIAL) ? "MADV_RANDOM and MADV_SEQUENTIAL exclude each other"
                    : has(MADV_HUGEPAGE) && has(MADV_NOHUGEPAGE) ? "MADV_HUGEPAGE and MADV_NOHUGEPAGE exclude each other"
                    : has(MADV_WIPEONFORK) && p.kind != VmaKind::kAnonPrivate ? "MADV_WIPEONFORK is for private anonymous memory only"
                                                                              : "";
  if (!bad.empty()) {
    ctx.problems.Add(name, entry, what + ": madv " + Hex(p.madv) + ": " + bad);
    return std::nullopt;
  }
  return p;
}

// The vdso and vvar VMAs are the running kernel's own pages moved into
// place: the image's must have this kernel's sizes and the vdso the same
// place relative to the vvar pages (its code reads them at a fixed
// distance), else the task would die at its first clock_gettime.
bool SpecialsFit(Context& ctx, const MmPlan& m, const std::string& name) {
  const VmaPlan* vdso = nullptr;
  uint64_t vvar_start = 0, vvar_size = 0;
  for (const VmaPlan& v : m.vmas) {
    if (v.kind == VmaKind::kVdso) {
      if (vdso != nullptr) {
        ctx.problems.Add(name, 0, "two vdso VMAs (" + Hex(vdso->start) + ", " + Hex(v.start) + ")");
        return false;
      }
      vdso = &v;
    }
    if (v.kind == VmaKind::kVvar) {
      if (vvar_size == 0) vvar_start = v.start;
      if (v.start != vvar_start + vvar_size) {
        ctx.problems.Add(name, 0, "the vvar VMAs at " + Hex(vvar_start) + " and " + Hex(v.start) + " are not contiguous");
        return false;
      }
      vvar_size += v.end - v.start;
    }
  }
  if (vdso == nullptr && vvar_size == 0) return true;
  const sys::SpecialLayout& host = sys::HostSpecialLayout();
  std::string here = "this kernel's vdso is " + Hex(host.vdso_size) + " bytes at " + std::to_string(host.vdso_offset) +
                     " from its vvar pages of " + Hex(host.vvar_size) + " bytes";
  std::string image = "the image's vdso " + (vdso ? Hex(vdso->end - vdso->start) + " bytes at " + Hex(vdso->start) : std::string("(none)")) +
                      ", vvar " + (vvar_size ? Hex(vvar_size) + " bytes at " + Hex(vvar_start) : std::string("(none)"));
  if (!host.known) {
    ctx.problems.Add(name, 0, image + ": this kernel's vdso layout could not be read");
    return false;
  }
  if (vvar_size != 0 && host.vvar_size != 0 && vvar_size != host.vvar_size) {
    ctx.problems.Add(name, 0, image + ", " + here + ": the vvar pages differ (images of another kernel)");
    return false;
  }
  if (vdso == nullptr) return true;
  bool fits = host.vdso_size == vdso->end - vdso->start &&
              (host.vvar_size == 0 || (vvar_size != 0 && static_cast<int64_t>(vdso->start - vvar_start) == host.vdso_offset));
  if (!fits) {
    ctx.problems.Add(name, 0, image + ", " + here + ": the vdso must keep this kernel's size and place next to its vvar pages");
    return false;
  }
  return true;
}

// Each attachment of a System V segment as shmat makes it: VMAs of one
// segment, in address order from pgoff 0, together covering the segment
// (page-rounded), perhaps split by mprotect or madvise. A part of one
// (munmap'd or mremap'd pieces) cannot be attached again. The first VMA
// gets the attachment's length and shmat flags.
bool SysvAttachmentsWhole(Context& ctx, MmPlan& m, const std::string& name) {
  for (size_t i = 0; i < m.vmas.size();) {
    VmaPlan& first = m.vmas[i];
    if (first.kind != VmaKind::kSysvShm) {
      ++i;
      continue;
    }
    const auto& segments = ctx.plan.ns.ipc->shm;
    auto seg = std::find_if(segments.begin(), segments.end(), [&](const SysvShmPlan& s) { return s.perm.id == first.sysv_id; });
    const uint64_t span = (seg->size + kPageSize - 1) / kPageSize * kPageSize;
    bool writable = false, executable = false;
    uint64_t covered = 0;
    size_t j = i;
    for (; j < m.vmas.size() && m.vmas[j].kind == VmaKind::kSysvShm && m.vmas[j].sysv_id == first.sysv_id && covered < span; ++j) {
      const VmaPlan& v = m.vmas[j];
      if (v.pgoff != covered || v.start != first.start + covered) break;
      covered += v.end - v.start;
      writable |= (v.prot & PROT_WRITE) != 0;
      executable |= (v.prot & PROT_EXEC) != 0;
    }
    if (covered != span) {
      ctx.problems.Add(name, 0, "VMA " + Hex(first.start) + "-" + Hex(first.end) + " of System V segment " + std::to_string(first.sysv_id) +
                                    " is part of an attachment (" + Hex(covered) + " of its " + Hex(span) +
                                    " bytes, from offset 0, in order): only whole attachments can be restored");
      return false;
    }
    first.attach_len = span;
    first.shmflg = (writable ? 0 : SHM_RDONLY) | (executable ? SHM_EXEC : 0);
    i = j;
  }
  return true;
}

std::optional<MmPlan> ReadMm(Context& ctx, Shared& shared, pid_t pid) {
  const std::string name = MakeFileName(MmKind(), static_cast<uint32_t>(pid));
  const auto& mm = ctx.dir.Find(MmKind(), static_cast<uint32_t>(pid))->As<img::mm_entry>(0);
  MmPlan m;
  m.start_code = mm.mm_start_code();
  m.end_code = mm.mm_end_code();
  m.start_data = mm.mm_start_data();
  m.end_data = mm.mm_end_data();
  m.start_stack = mm.mm_start_stack();
  m.start_brk = mm.mm_start_brk();
  m.brk = mm.mm_brk();
  m.arg_start = mm.mm_arg_start();
  m.arg_end = mm.mm_arg_end();
  m.env_start = mm.mm_env_start();
  m.env_end = mm.mm_env_end();
  // What PR_SET_MM_MAP refuses (kernel/sys.c, validate_prctl_map_addr):
  // a field outside [vm.mmap_min_addr, TASK_SIZE), and pairs out of order.
  const std::pair<const char*, uint64_t> fields[] = {
      {"mm_start_code", m.start_code}, {"mm_end_code", m.end_code},   {"mm_start_data", m.start_data},
      {"mm_end_data", m.end_data},     {"mm_start_brk", m.start_brk}, {"mm_brk", m.brk},
      {"mm_start_stack", m.start_stack}, {"mm_arg_start", m.arg_start}, {"mm_arg_end", m.arg_end},
      {"mm_env_start", m.env_start},   {"mm_env_end", m.env_end}};
  const uint64_t min_addr = sys::MmapMinAddr();
  for (const auto& [field, a] : fields) {
    if (a >= kTaskSizeMax) {
      ctx.problems.Add(name, 0, std::string(field) + " " + Hex(a) + " is beyond user space");
      return std::nullopt;
    }
    if (a < min_addr) {
      ctx.problems.Add(name, 0, std::string(field) + " " + Hex(a) + " is below vm.mmap_min_addr (" + Hex(min_addr) +
                                    "): PR_SET_MM_MAP refuses it");
      return std::nullopt;
    }
  }
  struct Order {
    const char *low, *high;
    uint64_t a, b;
    bool strict;
  };
  const Order orders[] = {{"mm_start_code", "mm_end_code", m.start_code, m.end_code, true},
                          {"mm_start_data", "mm_end_data", m.start_data, m.end_data, false},
                          {"mm_start_brk", "mm_brk", m.start_brk, m.brk, false},
                          {"mm_arg_start", "mm_arg_end", m.arg_start, m.arg_end, false},
                          {"mm_env_start", "mm_env_end", m.env_start, m.env_end, false}};
  for (const Order& o : orders) {
    if (o.strict ? o.a < o.b : o.a <= o.b) continue;
    ctx.problems.Add(name, 0, std::string(o.low) + " " + Hex(o.a) + (o.strict ? " is not below " : " is above ") + o.high + " " +
                                  Hex(o.b) + ": PR_SET_MM_MAP refuses it");
    return std::nullopt;
  }
  if (mm.mm_saved_auxv_size() > static_cast<int>(kMaxAuxvWords)) {
    ctx.problems.Add(name, 0, "saved auxv of " + std::to_string(mm.mm_saved_auxv_size()) + " words is more than " +
                                  std::to_string(kMaxAuxvWords / 2) + " pairs");
    return std::nullopt;
  }
  if (mm.mm_saved_auxv_size() % 2 != 0) {
    ctx.problems.Add(name, 0, "saved auxv of " + std::to_string(mm.mm_saved_auxv_size()) + " words is no whole number of (type, value) pairs");
    return std::nullopt;
  }
  m.auxv.assign(mm.mm_saved_auxv().begin(), mm.mm_saved_auxv().end());
  auto exe = ctx.plan.files.find(mm.exe_file_id());
  if (exe == ctx.plan.files.end() || exe->second.kind != FileKind::kRegular || (exe->second.mode && !S_ISREG(*exe->second.mode))) {
    ctx.problems.Add(name, 0, "exe_file_id " + std::to_string(mm.exe_file_id()) + " names no regular file entry of files.img");
    return std::nullopt;
  }
  m.exe_file_id = exe->first;
  if (mm.vmas_size() > static_cast<int>(kMaxVmas)) {
    ctx.problems.Add(name, 0, std::to_string(mm.vmas_size()) + " VMAs, more than the kernel's " + std::to_string(kMaxVmas));
    return std::nullopt;
  }
  uint64_t last_end = 0;
  for (int i = 0; i < mm.vmas_size(); ++i) {
    auto v = ReadVma(ctx, shared, mm.vmas(i), name, 0, i);
    if (!v) return std::nullopt;
    if (v->kind != VmaKind::kVsyscall && v->start < last_end) {
      ctx.problems.Add(name, 0, "VMA " + Hex(v->start) + " overlaps the one before it or is out of order");
      return std::nullopt;
    }
    if (v->kind == VmaKind::kAnonPrivate || v->kind == VmaKind::kFilePrivate) {
      v->premap = m.premap_size;
      m.premap_size += v->end - v->start;
    }
    if (v->kind != VmaKind::kVsyscall) last_end = v->end;
    m.vmas.push_back(*v);
  }
  if (!SpecialsFit(ctx, m, name) || !SysvAttachmentsWhole(ctx, m, name)) return std::nullopt;
  if (mm.has_dumpable()) {
    if (mm.dumpable() < 0 || mm.dumpable() > 1) {  // SUID_DUMP_ROOT (2) is the kernel's to set, not PR_SET_DUMPABLE's
      ctx.problems.Add(name, 0, "dumpable " + std::to_string(mm.dumpable()) + " is neither 0 nor 1: PR_SET_DUMPABLE refuses it");
      return std::nullopt;
    }
    m.dumpable = static_cast<int>(mm.dumpable());
  }
  m.thp_disabled = mm.thp_disabled();
  // Pages: each run inside one private VMA; CRIU also dumps the vdso's pages,
  // which the running kernel's vdso replaces.
  const ImageFile* pm = ctx.dir.Find(PagemapKind(), static_cast<uint32_t>(pid));
  if (pm == nullptr) {
    ctx.problems.Add(MakeFileName(PagemapKind(), static_cast<uint32_t>(pid)), std::nullopt, "missing: " + name + " needs it");
    return std::nullopt;
  }
  // A run may span adjacent VMAs: it is cut at their ends. Pages of the
  // vdso (CRIU dumps them) are skipped; any other page must fall in a
  // private VMA.
  auto split = [&m](const PagesRun& run, std::vector<PagesRun>& pieces) {
    uint64_t vaddr = run.vaddr, end = run.vaddr + run.nr_pages * kPageSize;
    auto v = std::upper_bound(m.vmas.begin(), m.vmas.end(), vaddr, [](uint64_t a, const VmaPlan& x) { return a < x.start; });
    if (v == m.vmas.begin()) return false;
    --v;
    while (vaddr < end) {
      if (v == m.vmas.end() || vaddr < v->start || vaddr >= v->end) return false;
      uint64_t piece_end = std::min(end, v->end);
      switch (v->kind) {
        case VmaKind::kAnonPrivate: case VmaKind::kFilePrivate:
          pieces.push_back(PagesRun{vaddr, (piece_end - vaddr) / kPageSize, run.offset + (vaddr - run.vaddr)});
          break;
        case VmaKind::kVdso: case VmaKind::kVvar:
          break;
        case VmaKind::kFileShared: case VmaKind::kAnonShared: case VmaKind::kSysvShm: case VmaKind::kVsyscall:
          return false;
      }
      vaddr = piece_end;
      ++v;
    }
    return true;
  };
  if (!ReadPagemap(ctx, *pm, MakeFileName(PagemapKind(), static_cast<uint32_t>(pid)), m.pages_file, m.runs, split)) return std::nullopt;
  return m;
}

bool SiginfosFit(Context& ctx, const std::string& name, const std::vector<std::string>& infos) {
  for (const std::string& s : infos) {
    if (s.size() != 128) {
      ctx.problems.Add(name, 0, "a pending signal's siginfo is " + std::to_string(s.size()) + " bytes, not 128");
      return false;
    }
    // rt_sigqueueinfo queues signals 1..64 (0 would queue nothing); a
    // pending SIGKILL would kill the task as it is restored.
    int32_t signo = 0;
    std::memcpy(&signo, s.data(), sizeof(signo));
    if (signo < 1 || signo > 64 || signo == 9) {
      ctx.problems.Add(name, 0, "a pending signal's siginfo names signal " + std::to_string(signo) +
                                    (signo == 9 ? ": a pending SIGKILL would kill the task" : ": not a signal (1..64)"));
      return false;
    }
  }
  return true;
}

// What of a thread's general registers the kernel refuses, or a task could
// not run with; "" when nothing.
std::string BadRegisters(const img::user_x86_regs_entry& r) {
  if (r.cs() != kUserCs || r.ss() != kUserDs) {
    return "cs " + Hex(r.cs()) + " or ss " + Hex(r.ss()) + " is not the 64-bit user selector (cs " + Hex(kUserCs) + ", ss " +
           Hex(kUserDs) + ")";
  }
  const std::pair<const char*, uint64_t> data[] = {{"ds", r.ds()}, {"es", r.es()}, {"fs", r.fs()}, {"gs", r.gs()}};
  for (const auto& [reg, v] : data) {
    if (v != 0 && v != kUserDs) return std::string(reg) + " " + Hex(v) + " is neither 0 nor the user data selector " + Hex(kUserDs);
  }
  if ((r.flags() & ~kUserFlags) != 0) {
    return "flags " + Hex(r.flags()) + " hold " + Hex(r.flags() & ~kUserFlags) +
           ((r.flags() & (1u << 8)) ? " (TF: the task would trap after one instruction)" : "") +
           ", bits a user task cannot hold";
  }
  if (r.fs_base() >= kTaskSizeMax || r.gs_base() >= kTaskSizeMax) {
    return "fs_base " + Hex(r.fs_base()) + " or gs_base " + Hex(r.gs_base()) + " is not a user address";
  }
  return {};
}

// One thread's registers and its own kernel state, from core-<tid>.img
// (x86_64 only). `tc_blocked`: the mask of old images that keep it per task.
std::optional<ThreadPlan> ReadThread(Context& ctx, pid_t tid, uint64_t tc_blocked) {
  const std::string name = MakeFileName(CoreKind(), static_cast<uint32_t>(tid));
  const img::core_entry* core = ctx.Core(tid);
  if (core == nullptr) {
    ctx.problems.Add(name, std::nullopt, "missing: every thread of a task that continues needs its core image");
    return std::nullopt;
  }
  if (core->mtype() != img::core_entry::X86_64 || !core->has_thread_info()) {
    ctx.problems.Add(name, 0, "no x86_64 thread_info: only x86_64 tasks can continue");
    return std::nullopt;
  }
  const auto& ti = core->thread_info();
  const auto& r = ti.gpregs();
  if (r.has_mode() && r.mode() != img::NATIVE) {
    ctx.problems.Add(name, 0, "a 32-bit (compat) task cannot continue");
    return std::nullopt;
  }
  if (r.ip() >= kTaskSizeMax || r.sp() >= kTaskSizeMax) {
    ctx.problems.Add(name, 0, "ip " + Hex(r.ip()) + " or sp " + Hex(r.sp()) + " is beyond user space");
    return std::nullopt;
  }
  if (std::string bad = BadRegisters(r); !bad.empty()) {
    ctx.problems.Add(name, 0, "gpregs: " + bad);
    return std::nullopt;
  }
  ThreadPlan th;
  th.tid = tid;
  th.gpregs = {r.r15(), r.r14(), r.r13(), r.r12(), r.bp(), r.bx(), r.r11(), r.r10(), r.r9(), r.r8(), r.ax(), r.cx(), r.dx(), r.si(),
               r.di(), r.orig_ax(), r.ip(), r.cs(), r.flags(), r.sp(), r.ss(), r.fs_base(), r.gs_base(), r.ds(), r.es(), r.fs(), r.gs()};
  if (ti.has_fpregs()) {
    // Converted now: state this CPU cannot hold is refused before anything is created.
    auto xstate = FpregsToXsave(ti.fpregs(), sys::HostXstateLayout());
    if (!xstate.ok()) {
      ctx.problems.Add(name, 0, "fpregs: " + xstate.error().ToString());
      return std::nullopt;
    }
    th.xstate = std::move(xstate).value();
  }
  th.clear_tid_addr = ti.clear_tid_addr();
  th.blocked = tc_blocked;
  if (core->has_thread_core()) {
    const auto& tc = core->thread_core();
    if (tc.has_blk_sigset()) th.blocked = tc.blk_sigset();
    th.robust_list = tc.futex_rla();
    th.robust_list_len = tc.futex_rla_len();
    if (tc.has_sas() && !(tc.sas().ss_flags() & kSsDisable)) {
      // sigaltstack(2): a mode of 0 or SS_ONSTACK (as a thread on its
      // stack reads back), SS_AUTODISARM, and at least MINSIGSTKSZ bytes.
      const auto& sas = tc.sas();
      if ((sas.ss_flags() & ~(kSsOnstack | kSsAutodisarm)) != 0 || sas.ss_size() < kMinSigstksz) {
        ctx.problems.Add(name, 0, "sigaltstack at " + Hex(sas.ss_sp()) + ": flags " + Hex(sas.ss_flags()) + ", " +
                                      std::to_string(sas.ss_size()) + " bytes: sigaltstack refuses flags other than "
                                      "SS_ONSTACK, SS_AUTODISARM or SS_DISABLE and sizes below " + std::to_string(kMinSigstksz));
        return std::nullopt;
      }
      th.altstack = std::array<uint64_t, 3>{sas.ss_sp(), sas.ss_size(), sas.ss_flags()};
    }
    if (tc.has_signals_p()) {
      for (const auto& sig : tc.signals_p().signals()) th.pending.push_back(sig.siginfo());
    }
    if (tc.has_rseq_entry() && tc.rseq_entry().rseq_abi_pointer() != 0) {
      const auto& rs = tc.rseq_entry();
      // rseq(2): at least ORIG_RSEQ_SIZE bytes, aligned to them (where the
      // area lies is checked against the VMAs, PlanMemory).
      if (rs.rseq_abi_size() < kRseqMinSize || rs.rseq_abi_pointer() % kRseqMinSize != 0 ||
          rs.rseq_abi_pointer() >= kTaskSizeMax || rs.rseq_abi_size() > kTaskSizeMax - rs.rseq_abi_pointer()) {
        ctx.problems.Add(name, 0, "rseq area " + Hex(rs.rseq_abi_pointer()) + " of " + std::to_string(rs.rseq_abi_size()) +
                                      " bytes: rseq refuses areas below 32 bytes, not 32-byte aligned or beyond user space");
        return std::nullopt;
      }
      th.rseq = std::array<uint64_t, 3>{rs.rseq_abi_pointer(), rs.rseq_abi_size(), rs.signature()};
    }
    if (th.robust_list != 0 && th.robust_list_len != kRobustListHeadSize) {
      ctx.problems.Add(name, 0, "robust list " + Hex(th.robust_list) + " of length " + std::to_string(th.robust_list_len) +
                                    ": set_robust_list takes only " + std::to_string(kRobustListHeadSize));
      return std::nullopt;
    }
    if (tc.has_comm()) th.comm = tc.comm();
  }
  if (!SiginfosFit(ctx, name, th.pending)) return std::nullopt;
  return th;
}

// The task's threads and what they share: sigactions, timers, signals
// pending for the whole task, from the leader's core.
bool ReadCore(Context& ctx, const TaskPlan& t, ContinuePlan& c) {
  const std::string name = MakeFileName(CoreKind(), static_cast<uint32_t>(t.pid));
  const img::core_entry& core = *ctx.Core(t.pid);
  const auto& tc = core.tc();
  c.personality = tc.personality();
  if (c.personality == 0xffffffffu) {  // personality(0xffffffff) only reads it
    ctx.problems.Add(name, 0, "personality 0xffffffff is not a personality: it cannot be set");
    return false;
  }
  for (pid_t tid : t.threads) {
    auto th = ReadThread(ctx, tid, tc.blk_sigset());
    if (!th) return false;
    c.threads.push_back(std::move(*th));
  }
  // CRIU keeps one entry per signal but SIGKILL and SIGSTOP, in signal
  // order. Flags the kernel does not know it drops, and it never blocks
  // SIGKILL or SIGSTOP: either would be lost silently.
  constexpr uint64_t kSaFlags = 0x1 | 0x2 | 0x4 | 0x800 | 0x04000000 | 0x08000000 | 0x10000000 | 0x40000000 | 0x80000000;
  if (tc.sigactions_size() > 62) ctx.problems.Add(name, 0, Str(tc.sigactions_size()) + " sigactions, more than one per signal");
  int sig = 1;
  for (const auto& sa : tc.sigactions()) {
    if (sig == 9 || sig == 19) ++sig;
    if (sig > 64) break;
    std::string bad = sa.compat_sigaction()           ? "is a 32-bit one"
                      : (sa.flags() & ~kSaFlags)       ? "has flags " + Hex(sa.flags() & ~kSaFlags) + " the kernel does not know"
                      : (sa.mask() & (1u << 8 | 1u << 18)) ? "blocks SIGKILL or SIGSTOP"
                      : sa.sigaction() >= kTaskSizeMax ? "has a handler " + Hex(sa.sigaction()) + " beyond user space"
                                                       : "";
    // A restorer that is no user address faults as the signal is delivered.
    if (bad.empty() && (sa.flags() & kSaRestorer) && sa.restorer() >= kTaskSizeMax) bad = "has a restorer " + Hex(sa.restorer()) + " beyond user space";
    if (!bad.empty()) ctx.problems.Add(name, 0, "the sigaction of signal " + Str(sig) + " " + bad);
    c.sigactions[static_cast<size_t>(sig - 1)] = SigactionPlan{sa.sigaction(), sa.flags(), sa.restorer(), sa.mask()};
    ++sig;
  }
  if (tc.has_timers()) {
    const auto& timers = tc.timers();
    if (timers.posix_size() > 0) {
      ctx.problems.Add(name, 0, "POSIX timers cannot be restored yet");
      return false;
    }
    int i = 0;
    const char* names[] = {"real", "virt", "prof"};
    for (const img::itimer_entry* it : {&timers.real(), &timers.virt(), &timers.prof()}) {
      // setitimer(2) takes 0 <= usec < 1000000 and sec as a non-negative long.
      if (it->iusec() >= 1000000 || it->vusec() >= 1000000 || it->isec() > INT64_MAX || it->vsec() > INT64_MAX) {
        ctx.problems.Add(name, 0, std::string("itimer ") + names[i] + ": interval " + std::to_string(it->isec()) + " s " +
                                      std::to_string(it->iusec()) + " us, value " + std::to_string(it->vsec()) + " s " +
                                      std::to_string(it->vusec()) + " us: microseconds must be below 1000000 (setitimer refuses it)");
        return false;
      }
      c.itimers[i++] = ItimerPlan{it->isec(), it->iusec(), it->vsec(), it->vusec()};
    }
    // A periodic ITIMER_REAL that fired and waits for its SIGALRM to be
    // dequeued reads value 0 (kernel/time/itimer.c: the hrtimer is re-armed
    // in dequeue_signal); setitimer with value 0 would disarm it for good.
    // It is armed one interval on, its SIGALRM pending as dumped. (A
    // disarmed ITIMER_REAL reads interval 0; the CPU timers keep theirs.)
    ItimerPlan& real = c.itimers[0];
    if (real.value_sec == 0 && real.value_usec == 0 && (real.interval_sec != 0 || real.interval_usec != 0)) {
      real.value_sec = real.interval_sec;
      real.value_usec = real.interval_usec;
    }
  }
  if (tc.has_signals_s()) {
    for (const auto& s : tc.signals_s().signals()) c.pending_shared.push_back(s.siginfo());
  }
  return SiginfosFit(ctx, name, c.pending_shared);
}

// The VMA of `m` holding `addr`, or null.
const VmaPlan* VmaAt(const MmPlan& m, uint64_t addr) {
  auto after = std::upper_bound(m.vmas.begin(), m.vmas.end(), addr, [](uint64_t a, const VmaPlan& v) { return a < v.start; });
  if (after == m.vmas.begin()) return nullptr;
  const VmaPlan& v = *(after - 1);
  return addr < v.end && v.kind != VmaKind::kVsyscall ? &v : nullptr;
}

// Each thread's registers and registrations against the task's memory: it
// resumes at an instruction of an executable VMA, and the rseq area the
// kernel writes at every return to user space lies in writable memory
// (else the task dies with SIGSEGV as soon as it runs).
bool ThreadsFitMemory(Context& ctx, const MmPlan& m, const ContinuePlan& c) {
  for (const ThreadPlan& th : c.threads) {
    const std::string name = MakeFileName(CoreKind(), static_cast<uint32_t>(th.tid));
    uint64_t ip = th.gpregs[16];
    const VmaPlan* at = VmaAt(m, ip);
    if (at == nullptr || !(at->prot & PROT_EXEC)) {
      ctx.problems.Add(name, 0, "ip " + Hex(ip) + " lies in no executable VMA of the task: it would fault at once");
      return false;
    }
    if (!th.rseq) continue;
    uint64_t start = (*th.rseq)[0], end = start + (*th.rseq)[1];
    for (uint64_t addr = start; addr < end;) {
      const VmaPlan* v = VmaAt(m, addr);
      bool writable = v != nullptr && (v->prot & PROT_WRITE) &&
                      (v->kind == VmaKind::kAnonPrivate || v->kind == VmaKind::kFilePrivate || v->kind == VmaKind::kAnonShared ||
                       v->kind == VmaKind::kFileShared);
      if (!writable) {
        ctx.problems.Add(name, 0, "rseq area " + Hex(start) + "-" + Hex(end) + " is not inside writable memory of the task (at " +
                                      Hex(addr) + "): the kernel's first write to it would kill the task");
        return false;
      }
      addr = v->end;
    }
  }
  return true;
}

}  // namespace

void PlanMemory(Context& ctx) {
  Shared shared;
  for (auto& [pid, t] : ctx.tasks) {
    // Threads come back only with the memory they run in; an exec starts
    // the program afresh (with one thread), a holder has none to give.
    if (t.kind == TaskKind::kAlive && t.threads.size() > 1 && t.resume_mode == ResumeMode::kHold &&
        ctx.dir.Find(MmKind(), static_cast<uint32_t>(pid)) == nullptr) {
      ctx.problems.Add(MakeFileName(PstreeKind()), ctx.pstree_entry[pid],
                       "task " + Str(pid) + " has " + Str(t.threads.size()) +
                           " threads but no memory images to run them in: multi-threaded tasks are not supported as holders");
    }
    if (t.kind != TaskKind::kAlive || ctx.dir.Find(MmKind(), static_cast<uint32_t>(pid)) == nullptr) continue;
    auto cont = std::make_shared<ContinuePlan>();
    auto mm = ReadMm(ctx, shared, pid);
    if (!mm || !ReadCore(ctx, t, *cont) || !ThreadsFitMemory(ctx, *mm, *cont)) continue;
    cont->mm = std::move(*mm);
    t.cont = std::move(cont);
    t.resume_mode = ResumeMode::kContinue;
  }
  // The shared objects' pages.
  for (ShmemPlan& s : ctx.plan.shmem) {
    s.size = (s.size + kPageSize - 1) / kPageSize * kPageSize;
    const ImageFile* pm = ctx.dir.Find(ShmemPagemapKind(), s.id);
    if (pm == nullptr) continue;  // never written to: zero pages
    auto split = [&s](const PagesRun& run, std::vector<PagesRun>& pieces) {
      if (run.vaddr + run.nr_pages * kPageSize > s.size) return false;
      pieces.push_back(run);
      return true;
    };
    ReadPagemap(ctx, *pm, MakeFileName(ShmemPagemapKind(), s.id), s.pages_file, s.runs, split);
  }
}

}  // namespace ro::images::plan
