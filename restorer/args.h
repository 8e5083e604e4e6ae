// The restorer's argument block: plain structs, filled by the worker (with
// libc, in worker/mm.cc) inside the bootstrap zone, read by the restorer
// (no libc, restorer/restorer.cc). Every pointer is an address in the zone
// or in the task's restored memory; every size is in bytes. Layouts the
// kernel reads (sigaction, itimerval, stack_t, prctl_mm_map, sock_fprog,
// siginfo) are laid out here exactly as the kernel's x86_64 ABI has them.
#pragma once

#include <stdint.h>

namespace ro::restorer {

// What a VMA step does.
enum VmaOp : uint32_t {
  kMove = 1,       // mremap(source, len, len, MREMAP_FIXED|MREMAP_MAYMOVE, start): a premapped private VMA
  kShare = 2,      // mremap(source, 0, len, ...): a new mapping of a shared object's pages
  kMapFile = 3,    // mmap(start, len, prot, flags|MAP_FIXED, fd, pgoff): a shared file mapping
  kShmAttach = 4,  // shmat(source, start, flags): a System V segment (id `source`), `pgoff` bytes from `start`
  kShmPart = 5,    // nothing to map: a later VMA of the attachment before it
};

struct Vma {
  uint64_t start;   // where it goes
  uint64_t len;
  uint64_t source;  // kMove, kShare: where it is now; kShmAttach: the segment's id
  uint64_t pgoff;   // kMapFile; kShmAttach: the attachment's length
  uint64_t madv;    // 1 << MADV_* to apply
  int32_t fd;       // kMapFile
  uint32_t op;      // VmaOp
  uint32_t prot;    // the final PROT_*
  uint32_t flags;   // kMapFile: MAP_* (MAP_SHARED...); kShmAttach: SHM_RDONLY, SHM_EXEC
};

// A kernel special mapping (vdso, vvar, vvar_vclock) of the running kernel:
// moved aside to `slot` first, then to `target` (0: unmapped).
struct Special {
  uint64_t current;
  uint64_t len;
  uint64_t slot;
  uint64_t target;
};

// struct sigaction as rt_sigaction(2) reads it on x86_64.
struct KernelSigaction {
  uint64_t handler;
  uint64_t flags;
  uint64_t restorer;
  uint64_t mask;
};

// struct prctl_mm_map (PR_SET_MM_MAP).
struct MmMap {
  uint64_t start_code, end_code, start_data, end_data, start_brk, brk, start_stack;
  uint64_t arg_start, arg_end, env_start, env_end;
  uint64_t auxv;       // address of the words
  uint32_t auxv_size;  // bytes
  uint32_t exe_fd;
};

struct SeccompFilter {
  uint64_t len;     // instructions (struct sock_fprog.len)
  uint64_t filter;  // address of the struct sock_filter array
  uint32_t flags;
  uint32_t pad;
};

// One resource limit (struct rlimit64, then its RLIMIT_* number).
struct Rlimit {
  uint64_t cur;
  uint64_t max;
  uint32_t resource;
  uint32_t pad;
};

struct PendingSignal {
  uint32_t shared;  // 1: to the thread group, 0: to the task itself
  uint32_t signo;
  uint8_t siginfo[128];
};

// Where the restorer says what failed before it exits (a task slot of the
// shared arena): the step (Step), the errno, and the step's argument.
struct Report {
  uint32_t step;
  int32_t err;
  uint64_t arg;
  uint32_t injected;  // the pass of an injected fault, copied from TaskArgs
  uint32_t pad;
};

enum Step : uint32_t {
  kStepNone = 0,
  kStepRseq,       // unregistering the worker's rseq area
  kStepBlock,      // blocking every signal
  kStepAside,      // moving a special mapping aside (arg: its address)
  kStepUnmap,      // unmapping everything outside the zone
  kStepVma,        // putting a VMA in place (arg: its start)
  kStepSpecial,    // moving a special mapping to its place (arg: its target)
  kStepProtect,    // mprotect of a VMA (arg: its start)
  kStepMadvise,    // madvise of a VMA (arg: its start)
  kStepMm,         // prctl(PR_SET_MM_MAP)
  kStepSigaction,  // rt_sigaction (arg: the signal)
  kStepItimer,     // setitimer (arg: which)
  kStepAltstack,   // sigaltstack
  kStepRseqSet,    // rseq registration
  kStepThread,     // set_tid_address, set_robust_list, personality, prctls
  kStepSignal,     // queueing a pending signal (arg: the signal)
  kStepSeccomp,    // installing a seccomp filter (arg: its index)
  kStepThreadCreate,  // clone3 of a thread with its tid (arg: the tid)
  kStepRlimit,     // prlimit64 of a resource limit (arg: RLIMIT_*)
  kStepSched,      // setpriority (arg: the nice value) or sched_setscheduler (arg: the policy)
  kStepAttr,       // prctl of a thread's attribute (arg: PR_SET_*)
  kStepCreds,      // setting a thread's credentials (arg: a CredsOp)
  kStepCount,
};

// A thread's uids and gids (real, effective, saved, fs), capability sets
// (1 << CAP_*), securebits and supplementary groups, set as its last step
// (threads have their own credentials).
struct Creds {
  uint64_t inheritable, permitted, effective, bounding, ambient;
  uint32_t securebits;
  uint32_t nr_groups;
  uint32_t uids[4], gids[4];
  const uint32_t* groups;
};

// What kStepCreds was doing (its report's arg).
enum CredsOp : uint32_t {
  kCredsGroups = 1,     // setgroups
  kCredsKeepCaps,       // PR_SET_SECUREBITS adding SECBIT_NO_SETUID_FIXUP before new uids
  kCredsGids,           // setresgid and setfsgid
  kCredsUids,           // setresuid and setfsuid
  kCredsCapget,         // capget of its own
  kCredsInheritable,    // capset raising the inheritable set
  kCredsAmbient,        // PR_CAP_AMBIENT_CLEAR_ALL and RAISE
  kCredsBounding,       // PR_CAPBSET_READ and DROP
  kCredsSecurebits,     // PR_SET_SECUREBITS
  kCredsCapset,         // the final capset
};

struct TaskArgs;

// One thread's own state: the leader's is threads[0]; each other thread is
// created by the leader with its tid (clone3 set_tid) on its own stack.
struct ThreadArgs {
  const TaskArgs* task;
  int32_t tid;
  uint64_t stack, stack_size;  // its stack in the zone (not the leader's)
  uint64_t altstack[3];        // stack_t: ss_sp, ss_flags, ss_size (SS_DISABLE when the images have none)
  uint32_t has_rseq, rseq_sig;
  uint64_t rseq, rseq_len;
  uint64_t clear_tid_addr;
  uint64_t robust_list, robust_list_len;
  char comm[16];               // "" : unchanged
  uint32_t nr_pending, pad;
  const PendingSignal* pending;  // queued to this thread
  // Its attributes, set last (before its seccomp filters); has_*/0: unchanged.
  uint32_t has_timer_slack, has_nice;
  uint64_t timer_slack;        // ns
  int32_t nice;                // -20..19
  uint32_t has_policy;
  uint32_t policy;             // SCHED_* | SCHED_RESET_ON_FORK
  uint32_t rt_priority;
  uint32_t tsc_mode;           // PR_TSC_ENABLE 1, PR_TSC_SIGSEGV 2
  uint32_t pdeath_sig;
  uint32_t no_new_privs;       // 1: set it
  uint32_t pad1;
  const Creds* creds;          // null: restore-orch's, unchanged
};

struct TaskArgs {
  uint64_t zone_start, zone_end;  // never unmapped by the restorer
  uint64_t task_size;             // the end of user address space
  Report* report;

  uint64_t worker_rseq, worker_rseq_len;  // the worker's registration, undone first (0: none)
  uint32_t worker_rseq_sig, pad0;

  uint32_t nr_specials, nr_vmas;
  Special specials[4];
  const Vma* vmas;

  MmMap mm;
  int32_t dumpable;      // -1: unchanged
  uint32_t thp_disabled;
  uint32_t personality;
  uint32_t pad1;

  KernelSigaction sigactions[64];  // index signal - 1
  uint64_t itimers[3][4];          // real, virtual, prof: interval sec/usec, value sec/usec
  int32_t pid;                     // the task's pid
  uint32_t nr_pending;             // queued to the thread group
  const PendingSignal* pending;
  uint32_t nr_threads, pad2;       // threads[0] is the leader
  const ThreadArgs* threads;
  uint32_t first_service_fd;       // closed from here on before the end
  uint32_t nr_seccomp;
  const SeccompFilter* seccomp;
  uint32_t inject_step;  // fail at this step with EIO (--fault mm-restorer), 0: never
  uint32_t inject_pass;
  uint32_t nr_rlimits, pad3;       // set before the threads are created
  Rlimit rlimits[16];
};

}  // namespace ro::restorer

// The restorer's entry: runs on a stack in the zone, never returns; ends in
// a breakpoint the orchestrator catches (it then sets the registers and
// unmaps the zone), or exits with status 127 after filling the report.
extern "C" [[noreturn]] void ro_restorer_main(const ro::restorer::TaskArgs* args);
// One `syscall` instruction followed by a breakpoint, in the restorer's
// code: the orchestrator runs the zone's final munmap there.

extern "C" void ro_restorer_syscall_gadget();
// The restorer's code, which the worker copies into the zone.
extern "C" const char __start_rstblob[];
extern "C" const char __stop_rstblob[];
