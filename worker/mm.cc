#include "worker/mm.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/rseq.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "restorer/args.h"
#include "sys/elf.h"
#include "sys/files.h"
#include "sys/mapping.h"
#include "sys/special_mappings.h"
#include "worker/attrs.h"

namespace ro::worker {
namespace {

using images::ContinuePlan;
using images::VmaKind;
using images::VmaPlan;
namespace rst = ro::restorer;

// Bytes as lowercase hex ("" shows as "none").
std::string HexBytes(const std::string& bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out.empty() ? "none" : out;
}

constexpr uint64_t kTaskSize = 0x7ffffffff000ull;  // x86_64, 4-level paging

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%#llx", static_cast<unsigned long long>(v));
  return buf;
}

// Fills pages runs of `pages_file` into memory: run r goes to base(r).
template <class Dest>
Status FillRuns(const std::string& pages_file, const std::vector<images::PagesRun>& runs, const FdLayout& layout, shm::Arena& arena,
                Dest dest) {
  if (runs.empty()) return {};
  RO_ASSIGN_OR_RETURN(UniqueFd pages, sys::OpenAt(layout.images_fd, pages_file, O_RDONLY | O_NOFOLLOW));
  for (const images::PagesRun& r : runs) {
    RO_TRY(arena.Fault(shm::FaultPoint::kMmPages, "read " + std::to_string(r.nr_pages) + " pages for " + Hex(r.vaddr)));
    uint64_t at = dest(r);
    void* to = reinterpret_cast<void*>(at);
    RO_TRY(sys::PopulateWrite(at, r.nr_pages * images::kPageSize));  // no fault per page in the read
    RO_TRY(sys::PreadExactly(pages.get(), to, r.nr_pages * images::kPageSize, r.offset, pages_file));
  }
  return {};
}

// Where each part of the per-task zone is.
struct TaskZone {
  uint64_t code, args, stack, slots, premap, end;
};

TaskZone ZoneOf(const images::ZonePlan& z) {
  TaskZone t;
  t.code = z.start + z.task_offset;
  t.args = t.code + z.code_size;
  t.stack = t.args + z.args_size;
  t.slots = t.stack + z.stack_size;
  t.premap = z.start + z.premap_offset;
  t.end = z.start + z.size;
  return t;
}

// Bump allocation in the argument area.
class ArgsArea {
 public:
  ArgsArea(uint64_t base, uint64_t size) : next_(base), end_(base + size) {}
  template <class T>
  Result<T*> Take(size_t count) {
    uint64_t at = (next_ + 15) & ~uint64_t(15);
    uint64_t bytes = sizeof(T) * count;
    if (at + bytes > end_) return Fail("the restorer's arguments do not fit the zone");
    next_ = at + bytes;
    return reinterpret_cast<T*>(at);
  }

 private:
  uint64_t next_, end_;
};

class Preparer {
 public:
  Preparer(const images::TaskPlan& t, const images::RestorePlan& plan, const FdLayout& layout, shm::Arena& arena, size_t index)
      : t_(t), c_(*t.cont), plan_(plan), layout_(layout), arena_(arena), index_(index), zone_(ZoneOf(plan.zone)) {}

  Status Run() {
    const images::ZonePlan& z = plan_.zone;
    // The per-task part of the zone, reserved whole, then laid out.
    RO_TRY(sys::MapFixed(zone_.code, zone_.end - zone_.code, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0, false));
    RO_TRY(sys::MapFixed(zone_.code, z.code_size + z.args_size + z.stack_size, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, true));
    size_t code = static_cast<size_t>(__stop_rstblob - __start_rstblob);
    if (code > z.code_size) return Fail("the restorer's code (" + std::to_string(code) + " bytes) does not fit the zone");
    std::memcpy(reinterpret_cast<void*>(zone_.code), __start_rstblob, code);
    RO_TRY(sys::Protect(zone_.code, z.code_size, PROT_READ | PROT_EXEC));
    ArgsArea area(zone_.args, z.args_size);
    RO_ASSIGN_OR_RETURN(args_, area.Take<rst::TaskArgs>(1));
    std::memset(args_, 0, sizeof(*args_));
    RO_TRY(Premap(area));
    RO_TRY(Specials());
    RO_TRY(MmFields(area));
    RO_TRY(SignalState(area));
    RO_TRY(Seccomp(area));
    if (!arena_.Fault(shm::FaultPoint::kMmRestorer, "restorer").ok()) {
      args_->inject_step = rst::kStepVma;
      args_->inject_pass = arena_.fault_pass();
    }
    return {};
  }

 private:
  // An fd for the restorer, above every fd the task restores (it closes
  // them all from layout.parked_base on before it ends).
  Result<int> ServiceFd(UniqueFd fd) {
    RO_ASSIGN_OR_RETURN(UniqueFd moved, sys::DupAtOrAbove(fd.get(), layout_.parked_base));
    int n = moved.get();
    kept_.push_back(std::move(moved));
    return n;
  }

  // The file of a file-backed VMA (or the exe), opened once, checked to be
  // the size the images say.
  Result<int> FileFd(uint32_t file_id, bool write) {
    auto known = files_.find({file_id, write});
    if (known != files_.end()) return known->second;
    const images::FilePlan& f = plan_.files.at(file_id);
    RO_ASSIGN_OR_RETURN(UniqueFd fd, sys::OpenAt(AT_FDCWD, f.path, (write ? O_RDWR : O_RDONLY) | O_NOFOLLOW));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return SysError("fstat " + f.path);
    if (!S_ISREG(st.st_mode)) return Fail(f.path + " is not a regular file");
    if (f.size && static_cast<uint64_t>(st.st_size) != *f.size) {
      return Fail(f.path + " is " + std::to_string(st.st_size) + " bytes, the images say " + std::to_string(*f.size) +
                  ": not the file that was mapped");
    }
    if (!f.build_id.empty()) {
      // As CRIU checks it: a rebuilt program of the same size is another
      // program, and its code would run on the old one's memory.
      RO_ASSIGN_OR_RETURN(std::string id, sys::ElfBuildId(fd.get(), f.path));
      id.resize((id.size() + 3) / 4 * 4, '\0');
      if (id != f.build_id) {
        return Fail(f.path + " has build-id " + HexBytes(id) + ", the images say " + HexBytes(f.build_id) + ": not the file that was mapped");
      }
    }
    RO_ASSIGN_OR_RETURN(int n, ServiceFd(std::move(fd)));
    files_[{file_id, write}] = n;
    return n;
  }

  // Which VMAs (indices of c_.mm.vmas) the pages image fills.
  std::vector<bool> VmasWithPages() const {
    const std::vector<VmaPlan>& vmas = c_.mm.vmas;  // sorted by start; the plan put every run inside one
    std::vector<bool> filled(vmas.size(), false);
    for (const images::PagesRun& r : c_.mm.runs) {
      auto after = std::upper_bound(vmas.begin(), vmas.end(), r.vaddr, [](uint64_t a, const VmaPlan& v) { return a < v.start; });
      if (after != vmas.begin()) filled[static_cast<size_t>(after - 1 - vmas.begin())] = true;
    }
    return filled;
  }

  Status Premap(ArgsArea& area) {
    std::vector<rst::Vma> steps;
    std::vector<bool> has_pages = VmasWithPages();
    for (size_t i = 0; i < c_.mm.vmas.size(); ++i) {
      const VmaPlan& v = c_.mm.vmas[i];
      uint64_t len = v.end - v.start;
      uint64_t at = zone_.premap + v.premap;
      int keep = static_cast<int>(v.flags & (MAP_GROWSDOWN | MAP_NORESERVE | MAP_LOCKED));
      // Writable only to be filled, or when it is: a private VMA mapped
      // writable is charged to the commit limit and keeps VM_ACCOUNT (the
      // kernel's accountable_mapping), which a read-only or PROT_NONE one
      // never had (a reservation of many GiB would not even fit).
      int prot = has_pages[i] || (v.prot & PROT_WRITE) ? PROT_READ | PROT_WRITE | (v.prot & PROT_EXEC) : static_cast<int>(v.prot);
      std::string what = "VMA " + Hex(v.start) + "-" + Hex(v.end);
      if (Status s = arena_.Fault(shm::FaultPoint::kMmPremap, "premap"); !s.ok()) return std::move(s).error().Within(what);
      switch (v.kind) {
        case VmaKind::kAnonPrivate: {
          Status s = sys::MapFixed(at, len, prot & ~PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | keep, -1, 0, true);
          if (!s.ok()) return std::move(s).error().Within(what);
          steps.push_back(rst::Vma{v.start, len, at, 0, v.madv, -1, rst::kMove, v.prot, 0});
          break;
        }
        case VmaKind::kFilePrivate: {
          auto fd = FileFd(v.file_id, false);
          if (!fd.ok()) return std::move(fd).error().Within(what);
          Status s = sys::MapFixed(at, len, prot, MAP_PRIVATE | keep, *fd, v.pgoff, true);
          if (!s.ok()) return std::move(s).error().Within(what);
          steps.push_back(rst::Vma{v.start, len, at, 0, v.madv, -1, rst::kMove, v.prot, 0});
          break;
        }
        case VmaKind::kFileShared: {
          // Opened as the images have it: a read-only mapping of a file open
          // for writing may be made writable later (VM_MAYWRITE).
          auto fd = FileFd(v.file_id, (plan_.files.at(v.file_id).flags & O_ACCMODE) != O_RDONLY);
          if (!fd.ok()) return std::move(fd).error().Within(what);
          steps.push_back(rst::Vma{v.start, len, 0, v.pgoff, v.madv, *fd, rst::kMapFile, v.prot, MAP_SHARED | static_cast<uint32_t>(keep)});
          break;
        }
        case VmaKind::kAnonShared: {
          const images::ShmemPlan& s = plan_.shmem[v.shmem];
          if (v.pgoff + len > s.size) return Fail(what + " maps past the end of shared object " + std::to_string(s.id));
          steps.push_back(rst::Vma{v.start, len, plan_.zone.start + s.zone_offset + v.pgoff, 0, v.madv, -1, rst::kShare, v.prot, 0});
          break;
        }
        case VmaKind::kSysvShm:
          // The attachment's first VMA attaches the whole segment (the
          // task is in the tree's IPC namespace, which holds it by now);
          // the others are parts of it, given their own prot and advice.
          if (v.attach_len != 0) {
            steps.push_back(rst::Vma{v.start, len, static_cast<uint64_t>(v.sysv_id), v.attach_len, v.madv, -1, rst::kShmAttach, v.prot, v.shmflg});
          } else {
            steps.push_back(rst::Vma{v.start, len, 0, 0, v.madv, -1, rst::kShmPart, v.prot, 0});
          }
          break;
        case VmaKind::kVdso: case VmaKind::kVvar: case VmaKind::kVsyscall:
          break;  // Specials()
      }
    }
    // The dumped pages, read straight into the premapped VMAs.
    const std::vector<VmaPlan>& vmas = c_.mm.vmas;
    Status filled = FillRuns(c_.mm.pages_file, c_.mm.runs, layout_, arena_, [&](const images::PagesRun& r) {
      auto after = std::upper_bound(vmas.begin(), vmas.end(), r.vaddr, [](uint64_t a, const VmaPlan& v) { return a < v.start; });
      const VmaPlan& v = *(after - 1);
      return zone_.premap + v.premap + (r.vaddr - v.start);
    });
    if (!filled.ok()) return filled;
    RO_ASSIGN_OR_RETURN(rst::Vma* out, area.Take<rst::Vma>(steps.size()));
    std::memcpy(out, steps.data(), steps.size() * sizeof(rst::Vma));
    args_->vmas = out;
    args_->nr_vmas = static_cast<uint32_t>(steps.size());
    return {};
  }

  // The running kernel's vdso and vvar pages go where the image had them:
  // both must be the same size as the image's (the same kernel).
  Status Specials() {
    RO_ASSIGN_OR_RETURN(std::vector<sys::SpecialMapping> have, sys::ReadSpecialMappings());
    const VmaPlan* vdso = nullptr;
    uint64_t vvar_start = 0, vvar_len = 0;
    for (const VmaPlan& v : c_.mm.vmas) {
      if (v.kind == VmaKind::kVdso) vdso = &v;
      if (v.kind == VmaKind::kVvar) {
        if (vvar_len == 0) vvar_start = v.start;
        if (v.start != vvar_start + vvar_len) return Fail("the image's vvar VMAs are not contiguous");
        vvar_len += v.end - v.start;
      }
    }
    uint64_t cur_vvar = 0, cur_vvar_len = 0;
    for (const sys::SpecialMapping& m : have) {
      if (m.name != "[vdso]") {
        if (cur_vvar_len == 0) cur_vvar = m.start;
        cur_vvar_len = m.end - cur_vvar;
      }
    }
    uint64_t slot = zone_.slots;
    for (const sys::SpecialMapping& m : have) {
      if (args_->nr_specials == 4) return Fail("more than four special mappings");
      uint64_t len = m.end - m.start;
      uint64_t target = 0;
      if (m.name == "[vdso]") {
        if (vdso != nullptr && vdso->end - vdso->start != len) {
          return Fail("the vdso here is " + std::to_string(len) + " bytes, the image's " + std::to_string(vdso->end - vdso->start) +
                      ": the images come from another kernel");
        }
        target = vdso != nullptr ? vdso->start : 0;
      } else {
        if (vvar_len != 0 && vvar_len != cur_vvar_len) {
          return Fail("the vvar pages here are " + std::to_string(cur_vvar_len) + " bytes, the image's " + std::to_string(vvar_len) +
                      ": the images come from another kernel");
        }
        target = vvar_len != 0 ? vvar_start + (m.start - cur_vvar) : 0;
      }
      if (slot + len > zone_.slots + plan_.zone.slots_size) return Fail("the vdso and vvar pages do not fit the zone");
      args_->specials[args_->nr_specials++] = rst::Special{m.start, len, slot, target};
      slot += len;
    }
    return {};
  }

  Status MmFields(ArgsArea& area) {
    const images::MmPlan& m = c_.mm;
    rst::MmMap& mm = args_->mm;
    mm = rst::MmMap{m.start_code, m.end_code, m.start_data, m.end_data, m.start_brk, m.brk, m.start_stack,
                    m.arg_start, m.arg_end, m.env_start, m.env_end, 0, 0, 0};
    RO_ASSIGN_OR_RETURN(uint64_t* auxv, area.Take<uint64_t>(m.auxv.size() + 2));
    std::memcpy(auxv, m.auxv.data(), m.auxv.size() * sizeof(uint64_t));
    mm.auxv = reinterpret_cast<uint64_t>(auxv);
    mm.auxv_size = static_cast<uint32_t>(m.auxv.size() * sizeof(uint64_t));
    RO_ASSIGN_OR_RETURN(int exe, FileFd(m.exe_file_id, false));
    mm.exe_fd = static_cast<uint32_t>(exe);
    args_->dumpable = m.dumpable;
    args_->thp_disabled = m.thp_disabled;
    args_->zone_start = plan_.zone.start;
    args_->zone_end = plan_.zone.start + plan_.zone.size;
    args_->task_size = kTaskSize;
    args_->report = reinterpret_cast<rst::Report*>(&arena_.slot(index_).report);
    args_->pid = t_.pid;
    args_->first_service_fd = static_cast<uint32_t>(layout_.parked_base);
    // glibc registered this thread's rseq area in restore-orch's memory.
    if (__rseq_size > 0) {
      args_->worker_rseq = reinterpret_cast<uint64_t>(__builtin_thread_pointer()) + static_cast<uint64_t>(__rseq_offset);
      args_->worker_rseq_len = __rseq_size < 32 ? 32 : __rseq_size;
      args_->worker_rseq_sig = RSEQ_SIG;
    }
    return {};
  }

  // Fills `n` pending signals from siginfo bytes (si_signo first).
  static void FillPending(rst::PendingSignal* out, const std::vector<std::string>& infos, uint32_t shared) {
    for (size_t i = 0; i < infos.size(); ++i) {
      out[i].shared = shared;
      std::memcpy(out[i].siginfo, infos[i].data(), sizeof(out[i].siginfo));
      std::memcpy(&out[i].signo, infos[i].data(), sizeof(out[i].signo));
    }
  }

  Status SignalState(ArgsArea& area) {
    for (size_t i = 0; i < 64; ++i) {
      const images::SigactionPlan& s = c_.sigactions[i];
      args_->sigactions[i] = rst::KernelSigaction{s.handler, s.flags, s.restorer, s.mask};
    }
    for (int w = 0; w < 3; ++w) {
      const images::ItimerPlan& it = c_.itimers[w];
      args_->itimers[w][0] = it.interval_sec;
      args_->itimers[w][1] = it.interval_usec;
      args_->itimers[w][2] = it.value_sec;
      args_->itimers[w][3] = it.value_usec;
    }
    args_->personality = c_.personality;
    RO_ASSIGN_OR_RETURN(rst::PendingSignal* shared, area.Take<rst::PendingSignal>(c_.pending_shared.size()));
    FillPending(shared, c_.pending_shared, 1);
    args_->pending = shared;
    args_->nr_pending = static_cast<uint32_t>(c_.pending_shared.size());
    // Each thread's own state; every thread but the leader gets a stack of
    // its own in the zone.
    RO_ASSIGN_OR_RETURN(rst::ThreadArgs* threads, area.Take<rst::ThreadArgs>(c_.threads.size()));
    uint64_t per_thread = plan_.zone.stack_size / std::max<size_t>(c_.threads.size(), 1) & ~uint64_t(4095);
    for (size_t i = 0; i < c_.threads.size(); ++i) {
      const images::ThreadPlan& p = c_.threads[i];
      rst::ThreadArgs& th = threads[i];
      std::memset(&th, 0, sizeof(th));
      th.task = args_;
      th.tid = p.tid;
      // The leader runs on the top part (RunRestorer starts it there).
      th.stack = zone_.stack + (i == 0 ? c_.threads.size() - 1 : i - 1) * per_thread;
      th.stack_size = per_thread;
      // None in the images is none here too: the worker may have one
      // (sanitizers install theirs), pointing into memory gone after the
      // restore. stack_t is {ss_sp, ss_flags, ss_size}.
      if (p.altstack) {
        th.altstack[0] = (*p.altstack)[0];
        th.altstack[1] = (*p.altstack)[2];
        th.altstack[2] = (*p.altstack)[1];
      } else {
        th.altstack[1] = SS_DISABLE;
      }
      if (p.rseq) {
        th.has_rseq = 1;
        th.rseq = (*p.rseq)[0];
        th.rseq_len = (*p.rseq)[1];
        th.rseq_sig = static_cast<uint32_t>((*p.rseq)[2]);
      }
      th.clear_tid_addr = p.clear_tid_addr;
      th.robust_list = p.robust_list;
      th.robust_list_len = p.robust_list_len;
      std::strncpy(th.comm, p.comm.c_str(), sizeof(th.comm) - 1);
      RO_ASSIGN_OR_RETURN(rst::PendingSignal* own, area.Take<rst::PendingSignal>(p.pending.size()));
      FillPending(own, p.pending, 0);
      th.pending = own;
      th.nr_pending = static_cast<uint32_t>(p.pending.size());
    }
    FillRestorerAttrs(t_.attrs, *args_, threads, c_.threads.size());
    for (size_t i = 0; i < c_.threads.size() && i < t_.attrs.threads.size(); ++i) {
      const std::optional<images::CredsPlan>& p = t_.attrs.threads[i].creds;
      if (!p) continue;
      RO_ASSIGN_OR_RETURN(rst::Creds* creds, area.Take<rst::Creds>(1));
      RO_ASSIGN_OR_RETURN(uint32_t* groups, area.Take<uint32_t>(p->groups.size()));
      std::copy(p->groups.begin(), p->groups.end(), groups);
      using S = images::CredsPlan::Set;
      *creds = rst::Creds{p->caps[S::kInheritable], p->caps[S::kPermitted], p->caps[S::kEffective], p->caps[S::kBounding],
                          p->caps[S::kAmbient],     p->securebits,          static_cast<uint32_t>(p->groups.size()), {}, {}, groups};
      std::copy(p->uids.begin(), p->uids.end(), creds->uids);
      std::copy(p->gids.begin(), p->gids.end(), creds->gids);
      threads[i].creds = creds;
    }
    args_->threads = threads;
    args_->nr_threads = static_cast<uint32_t>(c_.threads.size());
    return {};
  }

  Status Seccomp(ArgsArea& area) {
    RO_ASSIGN_OR_RETURN(rst::SeccompFilter* filters, area.Take<rst::SeccompFilter>(t_.seccomp.size()));
    for (size_t i = 0; i < t_.seccomp.size(); ++i) {
      const images::SeccompFilterPlan& f = t_.seccomp[i];
      RO_ASSIGN_OR_RETURN(char* program, area.Take<char>(f.program.size()));
      std::memcpy(program, f.program.data(), f.program.size());
      // TSYNC concerns threads; a continuing task has one.
      filters[i] = rst::SeccompFilter{f.program.size() / 8, reinterpret_cast<uint64_t>(program), f.flags & ~1u, 0};
    }
    args_->seccomp = filters;
    args_->nr_seccomp = static_cast<uint32_t>(t_.seccomp.size());
    return {};
  }

  const images::TaskPlan& t_;
  const ContinuePlan& c_;
  const images::RestorePlan& plan_;
  const FdLayout& layout_;
  shm::Arena& arena_;
  size_t index_;
  TaskZone zone_;
  rst::TaskArgs* args_ = nullptr;
  std::map<std::pair<uint32_t, bool>, int> files_;
  std::vector<UniqueFd> kept_;  // released on success: the restorer closes them
 public:
  void Keep() {
    for (UniqueFd& fd : kept_) fd.release();
  }
};

}  // namespace

Status MakeSharedMemory(const images::TaskPlan& t, const images::RestorePlan& plan, const FdLayout& layout, shm::Arena& arena) {
  for (uint32_t i : t.makes_shmem) {
    const images::ShmemPlan& s = plan.shmem[i];
    uint64_t at = plan.zone.start + s.zone_offset;
    Status made = arena.Fault(shm::FaultPoint::kMmPremap, "make the shared object");
    if (made.ok()) made = sys::MapFixed(at, s.size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0, false);
    if (made.ok()) made = FillRuns(s.pages_file, s.runs, layout, arena, [at](const images::PagesRun& r) { return at + r.vaddr; });
    if (!made.ok()) return std::move(made).error().Within("shared memory " + std::to_string(s.id));
  }
  return {};
}

Status PrepareMemory(const images::TaskPlan& t, const images::RestorePlan& plan, const FdLayout& layout, shm::Arena& arena,
                     size_t index) {
  Preparer p(t, plan, layout, arena, index);
  RO_TRY(p.Run());
  p.Keep();
  return {};
}

void RunRestorer(const images::RestorePlan& plan) {
  TaskZone z = ZoneOf(plan.zone);
  uint64_t entry = z.code + static_cast<uint64_t>(reinterpret_cast<const char*>(&ro_restorer_main) - __start_rstblob);
  uint64_t stack = (z.stack + plan.zone.stack_size - 64) & ~uint64_t(15);
  asm volatile(
      "mov %0, %%rsp\n\t"
      "mov %1, %%rdi\n\t"
      "xor %%ebp, %%ebp\n\t"
      "jmp *%2\n\t" ::"r"(stack),
      "r"(z.args), "r"(entry)
      : "memory");
  __builtin_unreachable();
}

}  // namespace ro::worker
