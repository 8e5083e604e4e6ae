// A live task's address space into mm-<pid>.img, as CRIU 4.2 writes it:
// the mm fields (code, data, stack, break, arguments, environment, auxv,
// exe, dumpable, THP) and one vma_entry per VMA of its smaps, with CRIU's
// prot, MAP_* flags, VMA_* status bits and madvise bits (MADV_WIPEONFORK
// too, as CRIU keeps it); file mappings name a files.img entry, shared
// anonymous memory its shmem inode. What a restore could not give back
// (SysV shm, AIO rings, deleted files, devices, hugetlb, memfds, VMAs
// locked on fault, sealed, droppable or registered with userfaultfd) is
// refused, one line naming the mapping.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>

#include <cstdio>

#include "images/kinds.h"
#include "orchestrator/dump/collector.h"
#include "sys/files.h"
#include "sys/proc.h"

namespace ro::dump {
namespace {

// CRIU's VMA_* status bits (criu/include/image.h).
constexpr uint32_t kVmaRegular = 1u << 0, kVmaVsyscall = 1u << 2, kVmaVdso = 1u << 3, kVmaHeap = 1u << 5,
                   kVmaFilePrivate = 1u << 6, kVmaFileShared = 1u << 7, kVmaAnonShared = 1u << 8, kVmaAnonPrivate = 1u << 9,
                   kVmaSysvipc = 1u << 10, kVmaVvar = 1u << 12;

// smaps VmFlags that CRIU keeps as madvise(2) advice bits.
struct Advice {
  const char* code;
  int advice;
};
constexpr Advice kAdvice[] = {{"sr", MADV_SEQUENTIAL}, {"rr", MADV_RANDOM},   {"dc", MADV_DONTFORK},   {"dd", MADV_DONTDUMP},
                              {"mg", MADV_MERGEABLE},  {"hg", MADV_HUGEPAGE}, {"nh", MADV_NOHUGEPAGE}, {"wf", MADV_WIPEONFORK}};

// smaps VmFlags of what a restore could not give a VMA back.
struct Unrestorable {
  const char* code;
  const char* what;
};
constexpr Unrestorable kUnrestorable[] = {
    {"lf", "locked on fault (mlock2 MLOCK_ONFAULT)"}, {"sl", "sealed (mseal)"}, {"dp", "droppable (MAP_DROPPABLE)"},
    {"um", "registered with userfaultfd"}, {"uw", "registered with userfaultfd"}, {"ui", "registered with userfaultfd"}};

const dev_t kDevZero = makedev(1, 5);

std::string Range(const sys::Vma& v) {
  char buf[80];
  std::snprintf(buf, sizeof(buf), "mapping %#llx-%#llx", static_cast<unsigned long long>(v.start), static_cast<unsigned long long>(v.end));
  return std::string(buf) + (v.path.empty() ? "" : " (" + v.path + ")");
}

bool StartsWith(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

Result<img::vma_entry> Collector::DescribeVma(const Task& t, const sys::Vma& v) {
  img::vma_entry e;
  e.set_start(v.start);
  e.set_end(v.end);
  e.set_pgoff(v.offset);
  e.set_shmid(0);
  e.set_prot((v.read ? PROT_READ : 0) | (v.write ? PROT_WRITE : 0) | (v.exec ? PROT_EXEC : 0));
  uint32_t flags = v.shared ? MAP_SHARED : MAP_PRIVATE;
  if (v.HasFlag("gd")) flags |= MAP_GROWSDOWN;
  if (v.HasFlag("lo")) flags |= MAP_LOCKED;
  if (v.HasFlag("nr")) flags |= MAP_NORESERVE;
  e.set_flags(flags);
  e.set_fd(-1);
  uint64_t madv = 0;
  for (const Advice& a : kAdvice) {
    if (v.HasFlag(a.code)) madv |= uint64_t{1} << a.advice;
  }
  if (madv != 0) e.set_madv(madv);

  if (v.HasFlag("ht")) return Refuse(Range(v) + " is hugetlb memory: not supported");
  for (const Unrestorable& u : kUnrestorable) {
    if (v.HasFlag(u.code)) return Refuse(Range(v) + " is " + u.what + ": not supported");
  }
  bool vvar = v.path == "[vvar]" || v.path == "[vvar_vclock]";
  if ((v.HasFlag("io") || v.HasFlag("pf")) && !vvar) return Refuse(Range(v) + " maps device memory (VM_IO/VM_PFNMAP): not supported");
  auto anon = [&](uint32_t status) {
    e.set_flags(e.flags() | MAP_ANONYMOUS);
    e.set_status(status);
    return e;
  };
  if (v.path == "[vsyscall]") return anon(kVmaVsyscall | kVmaAnonPrivate);
  if (v.path == "[vdso]") return anon(kVmaRegular | kVmaVdso | kVmaAnonPrivate);
  if (vvar) return anon(kVmaRegular | kVmaVvar | kVmaAnonPrivate);
  if (v.path == "[heap]") return anon(kVmaRegular | kVmaHeap | kVmaAnonPrivate);
  if (v.inode != 0 || StartsWith(v.path, "/")) return DescribeFileVma(t, v, std::move(e));
  if (v.shared) return Refuse(Range(v) + " is shared memory without a shmem object: not supported");
  if (!v.path.empty() && v.path != "[stack]" && !StartsWith(v.path, "[anon:")) {
    return Refuse(Range(v) + " is a special mapping restore-orch does not know: not supported");
  }
  return anon(kVmaRegular | kVmaAnonPrivate);
}

Result<img::vma_entry> Collector::DescribeFileVma(const Task& t, const sys::Vma& v, img::vma_entry e) {
  if (v.path == "/[aio] (deleted)") return Refuse(Range(v) + " is an AIO ring (io_setup): not supported");
  if (StartsWith(v.path, "/SYSV")) {
    // An attachment of a System V segment: its file's inode number is the
    // segment's id (ipc/shm.c); its pages are the segment's, dumped with it.
    if (!sysv_shm_ids_.count(v.inode)) {
      return Refuse(Range(v) + " attaches System V segment " + Str(static_cast<long long>(v.inode)) +
                    " of an IPC namespace that is not the tree's own: not supported");
    }
    ++sysv_vmas_[v.inode];
    e.set_flags(e.flags() | MAP_ANONYMOUS);
    e.set_status(kVmaRegular | kVmaAnonShared | kVmaSysvipc);
    e.set_shmid(v.inode);
    return e;
  }
  auto file = sys::ReadMappedFile(t.outer, v.start, v.end);
  if (!file.ok()) return std::move(file).error().Within(Range(v));
  if (!anon_shared_dev_) {
    RO_ASSIGN_OR_RETURN(anon_shared_dev_, sys::AnonSharedMemoryDevice());
  }
  if (file->st.st_dev == *anon_shared_dev_) {
    if (StartsWith(v.path, "/memfd:")) return Refuse(Range(v) + " maps a memfd (memfd_create): not supported");
    if (!v.shared) return Refuse(Range(v) + " is a private mapping of a shared memory object: not supported");
    // Shared anonymous memory (MAP_SHARED|MAP_ANONYMOUS, /dev/zero): named
    // by its shmem inode, dumped once whoever maps it.
    uint64_t ino = file->st.st_ino;
    if (sysv_shm_ids_.count(ino)) {
      return Refuse(Range(v) + ": its shared memory's inode number " + Str(static_cast<long long>(ino)) +
                    " is also a System V segment's id, and CRIU's images name both pagemap-shmem-" + Str(static_cast<long long>(ino)) + ".img");
    }
    Shmem& shm = shmem_[ino];
    if (!shm.fd) {
      RO_ASSIGN_OR_RETURN(shm.fd, sys::OpenMappedFile(t.outer, v.start, v.end, O_RDONLY));
    }
    shm.extent = std::max(shm.extent, v.offset + (v.end - v.start));
    e.set_flags(e.flags() | MAP_ANONYMOUS);
    e.set_status(kVmaRegular | kVmaAnonShared);
    e.set_shmid(ino);
    return e;
  }
  if (v.path.ends_with(" (deleted)")) return Refuse(Range(v) + " maps a deleted file: it could not be mapped again");
  bool reg = S_ISREG(file->st.st_mode);
  if (!reg && !(S_ISCHR(file->st.st_mode) && file->st.st_rdev == kDevZero)) {
    return Refuse(Range(v) + " maps a device: not supported");
  }
  // The open mode a restore needs: write access only for shared mappings
  // that may write (as CRIU reads smaps' "sh" and "mw").
  uint32_t mode = v.shared && v.HasFlag("mw") ? O_RDWR : O_RDONLY;
  auto open = [&]() { return sys::OpenMappedFile(t.outer, v.start, v.end, O_RDONLY); };
  auto id = MappedFileId(*file, mode, open);
  if (!id.ok()) return std::move(id).error().Within(Range(v));
  e.set_shmid(*id);
  e.set_fdflags(mode);
  e.set_status(kVmaRegular | (v.shared ? kVmaFileShared : kVmaFilePrivate));
  return e;
}

Status Collector::CollectMm(const Task& t) {
  const LiveState& live = *t.live;
  auto mm = std::make_unique<img::mm_entry>();
  const sys::ProcStatMm& st = live.stat;
  mm->set_mm_start_code(st.start_code);
  mm->set_mm_end_code(st.end_code);
  mm->set_mm_start_data(st.start_data);
  mm->set_mm_end_data(st.end_data);
  mm->set_mm_start_stack(st.start_stack);
  mm->set_mm_start_brk(st.start_brk);
  mm->set_mm_brk(live.brk);
  mm->set_mm_arg_start(st.arg_start);
  mm->set_mm_arg_end(st.arg_end);
  mm->set_mm_env_start(st.env_start);
  mm->set_mm_env_end(st.env_end);

  auto exe = sys::ReadLinkedFile(t.Proc("exe"));
  if (!exe.ok()) return std::move(exe).error().Within("its program");
  if (exe->path.ends_with(" (deleted)")) return Refuse("its program " + exe->path + " is deleted: it could not be mapped again");
  auto open_exe = [&]() { return sys::OpenAt(AT_FDCWD, t.Proc("exe"), O_RDONLY); };
  auto exe_id = MappedFileId(*exe, O_RDONLY, open_exe);
  if (!exe_id.ok()) return std::move(exe_id).error().Within("its program " + exe->path);
  mm->set_exe_file_id(*exe_id);
  RO_ASSIGN_OR_RETURN(std::vector<uint64_t> auxv, sys::ReadAuxv(t.outer));
  for (uint64_t w : auxv) mm->add_mm_saved_auxv(w);

  for (const sys::Vma& v : live.vmas) {
    // This kernel splits the vvar area in two ([vvar], [vvar_vclock]):
    // CRIU 4.2 writes them as one VVAR VMA.
    if (v.path == "[vvar_vclock]" && mm->vmas_size() > 0) {
      img::vma_entry& prev = *mm->mutable_vmas(mm->vmas_size() - 1);
      if ((prev.status() & kVmaVvar) && prev.end() == v.start) {
        prev.set_end(v.end);
        continue;
      }
    }
    RO_ASSIGN_OR_RETURN(img::vma_entry e, DescribeVma(t, v));
    *mm->add_vmas() = std::move(e);
    ++out_.counts.vmas;
  }
  mm->set_dumpable(live.dumpable);
  mm->set_thp_disabled(sys::StatusInnermost(t.info.status, "THP_enabled") == 0);
  RO_TRY(DumpTaskPages(t, *mm));
  File(*images::KindByName("MM"), static_cast<uint32_t>(t.pid)).entries.push_back(images::Entry{std::move(mm), {}});
  return {};
}

}  // namespace ro::dump
