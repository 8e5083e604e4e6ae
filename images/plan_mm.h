// The part of the plan for tasks that continue where they stopped: their
// address space (mm), registers and signal state, validated from CRIU's
// mm, pagemap, pages, core and memfd images (images/plan/mm.cc), and the
// layout of the bootstrap zone every restored task keeps while it replaces
// its address space.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "images/image_file.h"

namespace ro::images {

inline constexpr uint64_t kPageSize = 4096;

// What a VMA is and how a restore brings it back.
enum class VmaKind {
  kAnonPrivate,  // premapped anonymous, filled from the pages image, moved into place
  kFilePrivate,  // premapped from its file (MAP_PRIVATE), copied-on-write pages filled, moved into place
  kFileShared,   // mapped from its file at its place (MAP_SHARED)
  kAnonShared,   // a shared anonymous object (ShmemPlan), made once by its creator, moved into place by each holder
  kSysvShm,      // part of an attachment of a System V segment of the tree's IPC namespace (shmat by the task itself)
  kVdso,         // the running kernel's vdso, moved to where the image had it
  kVvar,         // the running kernel's vvar pages, moved likewise
  kVsyscall,     // the fixed vsyscall page: nothing to do
};

struct VmaPlan {
  uint64_t start = 0;
  uint64_t end = 0;
  uint64_t pgoff = 0;   // bytes, for file mappings and shared objects
  uint32_t prot = 0;    // PROT_*
  uint32_t flags = 0;   // MAP_* as dumped (MAP_PRIVATE, MAP_SHARED, MAP_ANONYMOUS, MAP_GROWSDOWN...)
  uint64_t madv = 0;    // madvise bits (1 << MADV_*)
  VmaKind kind = VmaKind::kAnonPrivate;
  uint32_t file_id = 0;    // kFile*: the files.img REG entry of the mapped file
  uint32_t shmem = 0;      // kAnonShared: index into RestorePlan::shmem
  uint64_t premap = 0;     // kAnonPrivate, kFilePrivate: offset in the task's premap area
  int32_t sysv_id = -1;    // kSysvShm: the segment's id (IpcPlan::shm)
  uint64_t attach_len = 0; // kSysvShm, the attachment's first VMA (pgoff 0): bytes shmat maps (the segment, page-rounded)
  uint32_t shmflg = 0;     // kSysvShm, likewise: SHM_RDONLY unless some VMA of it is writable, SHM_EXEC when one is executable
};

// A run of consecutive pages in a pages image: `nr_pages` pages for
// addresses from `vaddr` on, at `offset` bytes into the pages file.
struct PagesRun {
  uint64_t vaddr = 0;
  uint64_t nr_pages = 0;
  uint64_t offset = 0;
};

struct MmPlan {
  uint64_t start_code = 0, end_code = 0, start_data = 0, end_data = 0, start_stack = 0;
  uint64_t start_brk = 0, brk = 0, arg_start = 0, arg_end = 0, env_start = 0, env_end = 0;
  std::vector<uint64_t> auxv;  // (type, value) pairs, AT_NULL last
  uint32_t exe_file_id = 0;
  std::vector<VmaPlan> vmas;   // sorted, not overlapping
  std::string pages_file;      // pages-<id>.img holding the runs
  std::vector<PagesRun> runs;  // sorted by vaddr; each inside a private VMA (vdso pages CRIU dumps are skipped)
  uint64_t premap_size = 0;    // bytes of the premap area the private VMAs need
  int dumpable = -1;           // -1: leave as it is
  bool thp_disabled = false;
};

struct SigactionPlan {
  uint64_t handler = 0;  // SIG_DFL 0, SIG_IGN 1, or an address
  uint64_t flags = 0;
  uint64_t restorer = 0;
  uint64_t mask = 0;
};

struct ItimerPlan {
  uint64_t interval_sec = 0, interval_usec = 0, value_sec = 0, value_usec = 0;
};

// One thread's registers (x86_64) and the kernel state that is its own.
struct ThreadPlan {
  pid_t tid = 0;
  std::array<uint64_t, 27> gpregs{};  // user_regs_struct order: r15 ... ip (16), cs, flags, sp (19), ss, fs_base, gs_base, ds, es, fs, gs
  std::string xstate;                 // the PTRACE_SETREGSET NT_X86_XSTATE buffer for this CPU ("": the image has no fpregs)
  uint64_t clear_tid_addr = 0;
  uint64_t blocked = 0;               // the signal mask
  std::optional<std::array<uint64_t, 3>> altstack;  // ss_sp, ss_size, ss_flags
  std::optional<std::array<uint64_t, 3>> rseq;      // abi pointer, size, signature
  uint64_t robust_list = 0, robust_list_len = 0;
  std::vector<std::string> pending;                 // siginfo_t bytes, queued to the thread itself
  std::string comm;                                 // "" : the task's
};

// Everything of a task that is neither memory nor fds: its threads (the
// leader first) and the state its threads share.
struct ContinuePlan {
  MmPlan mm;
  std::vector<ThreadPlan> threads;                  // threads[0] is the task itself
  std::array<SigactionPlan, 64> sigactions{};       // index signal - 1; SIGKILL and SIGSTOP stay default
  ItimerPlan itimers[3];                            // real, virtual, prof
  std::vector<std::string> pending_shared;          // siginfo_t bytes, queued to its thread group
  uint32_t personality = 0;
};

// A shared anonymous memory object (MAP_SHARED|MAP_ANONYMOUS, or CRIU's
// memfd standing for one), made once by the nearest common ancestor of the
// tasks that map it, before it forks, at the same zone address in all.
struct ShmemPlan {
  uint64_t id = 0;            // the image's shmid
  uint64_t size = 0;          // bytes, page-aligned
  uint64_t zone_offset = 0;   // where it is premapped, from the zone's start
  std::string pages_file;     // "" when no page of it was dumped
  std::vector<PagesRun> runs; // vaddr is the offset in the object
  pid_t creator = 0;
};

// The bootstrap zone: one range, free in every continuing task's image and
// in restore-orch, kept while a task replaces its address space:
//   [arena][shared objects][restorer code | args | stack | vdso slots | premap]
// The arena and shared objects are made before the tasks fork and are
// inherited; the rest each continuing task maps for itself.
struct ZonePlan {
  uint64_t start = 0;
  uint64_t size = 0;
  uint64_t arena_size = 0;
  uint64_t shared_offset = 0, shared_size = 0;
  uint64_t task_offset = 0;          // the per-task part
  uint64_t code_size = 0, args_size = 0, stack_size = 0, slots_size = 0;
  uint64_t premap_offset = 0, premap_size = 0;  // premap_size: the largest any task needs
};

}  // namespace ro::images
