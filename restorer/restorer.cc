// The restorer: freestanding code the worker copies into the bootstrap zone
// and jumps to, on a stack in the zone. It replaces the task's address space
// with the image's and sets the kernel state that only the task itself can
// set, then stops at a breakpoint for the orchestrator, which sets the
// registers and unmaps the zone. No libc, no sanitizers, no stack protector:
// every function is in section "rstblob" and reaches nothing outside it (the
// build checks the object has no relocation there). Each failure fills the
// report in the arena and exits with status 127.
#include <asm/unistd.h>
#include <linux/mman.h>
#include <linux/prctl.h>
#include <linux/seccomp.h>

#include "restorer/args.h"

#define RST __attribute__((section("rstblob"), used))

namespace ro::restorer {
namespace {

constexpr long kMremapMaymove = 1, kMremapFixed = 2;
constexpr long kSigSetmask = 2;
constexpr long kRseqUnregister = 1;
constexpr long kPrSetMm = 35, kPrSetMmMap = 14;

RST long Sys6(long nr, long a, long b, long c, long d, long e, long f) {
  long ret;
  register long r10 asm("r10") = d;
  register long r8 asm("r8") = e;
  register long r9 asm("r9") = f;
  asm volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9) : "rcx", "r11", "memory");
  return ret;
}

RST long Sys(long nr, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0) { return Sys6(nr, a, b, c, d, e, 0); }

[[noreturn]] RST void Fail(const TaskArgs* args, uint32_t step, long ret, uint64_t arg) {
  args->report->arg = arg;
  args->report->injected = args->inject_step == step ? args->inject_pass : 0;
  args->report->err = static_cast<int32_t>(-ret);
  __atomic_store_n(&args->report->step, step, __ATOMIC_RELEASE);
  for (;;) Sys(__NR_exit_group, 127);
}

RST inline void Check(const TaskArgs* args, long ret, uint32_t step, uint64_t arg) {
  if (ret < 0 && ret > -4096) Fail(args, step, ret, arg);
}

// Everything outside the zone goes: restore-orch's code, heap, stacks and
// libraries, and whatever else the task had.
RST void UnmapOutsideZone(const TaskArgs* args) {
  Check(args, Sys(__NR_munmap, 0, static_cast<long>(args->zone_start)), kStepUnmap, 0);
  if (args->task_size > args->zone_end) {
    Check(args, Sys(__NR_munmap, static_cast<long>(args->zone_end), static_cast<long>(args->task_size - args->zone_end)), kStepUnmap,
          args->zone_end);
  }
}

RST void PlaceVmas(const TaskArgs* args) {
  if (args->inject_step == kStepVma) Fail(args, kStepVma, -5 /* EIO */, args->nr_vmas > 0 ? args->vmas[0].start : 0);
  for (uint32_t i = 0; i < args->nr_vmas; ++i) {
    const Vma& v = args->vmas[i];
    long ret = 0;
    switch (v.op) {
      case kMove:
        ret = Sys(__NR_mremap, static_cast<long>(v.source), static_cast<long>(v.len), static_cast<long>(v.len),
                  kMremapFixed | kMremapMaymove, static_cast<long>(v.start));
        break;
      case kShare:
        ret = Sys(__NR_mremap, static_cast<long>(v.source), 0, static_cast<long>(v.len), kMremapFixed | kMremapMaymove,
                  static_cast<long>(v.start));
        break;
      case kMapFile:
        ret = Sys6(__NR_mmap, static_cast<long>(v.start), static_cast<long>(v.len), v.prot, v.flags | MAP_FIXED, v.fd,
                   static_cast<long>(v.pgoff));
        break;
      default:
        ret = -22;
        break;
    }
    Check(args, ret, kStepVma, v.start);
    if (ret >= 0 && static_cast<uint64_t>(ret) != v.start) Fail(args, kStepVma, -22, v.start);
  }
  for (uint32_t i = 0; i < args->nr_specials; ++i) {
    const Special& s = args->specials[i];
    if (s.target == 0) {
      Check(args, Sys(__NR_munmap, static_cast<long>(s.slot), static_cast<long>(s.len)), kStepSpecial, s.slot);
      continue;
    }
    long ret = Sys(__NR_mremap, static_cast<long>(s.slot), static_cast<long>(s.len), static_cast<long>(s.len),
                   kMremapFixed | kMremapMaymove, static_cast<long>(s.target));
    Check(args, ret, kStepSpecial, s.target);
  }
  for (uint32_t i = 0; i < args->nr_vmas; ++i) {
    const Vma& v = args->vmas[i];
    if (v.op != kMapFile) Check(args, Sys(__NR_mprotect, static_cast<long>(v.start), static_cast<long>(v.len), v.prot), kStepProtect, v.start);
    for (long advice = 0; advice < 64; ++advice) {
      if (v.madv & (1ull << advice)) {
        Check(args, Sys(__NR_madvise, static_cast<long>(v.start), static_cast<long>(v.len), advice), kStepMadvise, v.start);
      }
    }
  }
}

RST void SetSignalState(const TaskArgs* args) {
  for (long sig = 1; sig <= 64; ++sig) {
    if (sig == 9 || sig == 19) continue;  // SIGKILL, SIGSTOP
    Check(args, Sys(__NR_rt_sigaction, sig, reinterpret_cast<long>(&args->sigactions[sig - 1]), 0, 8), kStepSigaction,
          static_cast<uint64_t>(sig));
  }
  for (long which = 0; which < 3; ++which) {
    Check(args, Sys(__NR_setitimer, which, reinterpret_cast<long>(args->itimers[which]), 0), kStepItimer, static_cast<uint64_t>(which));
  }
  if (args->has_altstack) Check(args, Sys(__NR_sigaltstack, reinterpret_cast<long>(args->altstack), 0), kStepAltstack, args->altstack[0]);
}

RST void SetThreadState(const TaskArgs* args) {
  if (args->has_rseq) {
    Check(args, Sys(__NR_rseq, static_cast<long>(args->rseq), static_cast<long>(args->rseq_len), 0, args->rseq_sig), kStepRseqSet,
          args->rseq);
  }
  Sys(__NR_set_tid_address, static_cast<long>(args->clear_tid_addr));
  if (args->robust_list != 0) {
    Check(args, Sys(__NR_set_robust_list, static_cast<long>(args->robust_list), static_cast<long>(args->robust_list_len)),
          kStepThread, args->robust_list);
  }
  Check(args, Sys(__NR_personality, args->personality), kStepThread, args->personality);
  if (args->dumpable >= 0) Check(args, Sys(__NR_prctl, PR_SET_DUMPABLE, args->dumpable), kStepThread, PR_SET_DUMPABLE);
  if (args->thp_disabled) Check(args, Sys(__NR_prctl, PR_SET_THP_DISABLE, 1, 0, 0, 0), kStepThread, PR_SET_THP_DISABLE);
  for (uint32_t i = 0; i < args->nr_pending; ++i) {
    const PendingSignal& p = args->pending[i];
    long ret = p.shared ? Sys(__NR_rt_sigqueueinfo, args->pid, p.signo, reinterpret_cast<long>(p.siginfo))
                        : Sys(__NR_rt_tgsigqueueinfo, args->pid, args->pid, p.signo, reinterpret_cast<long>(p.siginfo));
    Check(args, ret, kStepSignal, p.signo);
  }
}

}  // namespace
}  // namespace ro::restorer

using namespace ro::restorer;

extern "C" [[noreturn]] RST void ro_restorer_main(const TaskArgs* args) {
  // The worker's rseq area lies in memory about to go: the kernel must not
  // write to it any more.
  if (args->worker_rseq != 0) {
    Check(args, Sys(__NR_rseq, static_cast<long>(args->worker_rseq), static_cast<long>(args->worker_rseq_len), kRseqUnregister,
                    args->worker_rseq_sig),
          kStepRseq, args->worker_rseq);
  }
  uint64_t all = ~0ull;
  Check(args, Sys(__NR_rt_sigprocmask, kSigSetmask, reinterpret_cast<long>(&all), 0, 8), kStepBlock, 0);
  // The running kernel's vdso and vvar go aside first: a VMA of the image
  // may lie where they are now.
  for (uint32_t i = 0; i < args->nr_specials; ++i) {
    const Special& s = args->specials[i];
    Check(args, Sys(__NR_mremap, static_cast<long>(s.current), static_cast<long>(s.len), static_cast<long>(s.len),
                    kMremapFixed | kMremapMaymove, static_cast<long>(s.slot)),
          kStepAside, s.current);
  }
  UnmapOutsideZone(args);
  PlaceVmas(args);
  Check(args, Sys(__NR_prctl, kPrSetMm, kPrSetMmMap, reinterpret_cast<long>(&args->mm), sizeof(MmMap)), kStepMm, 0);
  SetSignalState(args);
  SetThreadState(args);
  Sys(__NR_close_range, args->first_service_fd, ~0u, 0);
  for (uint32_t i = 0; i < args->nr_seccomp; ++i) {
    const SeccompFilter& f = args->seccomp[i];
    struct {
      uint16_t len;
      uint64_t filter;
    } prog = {static_cast<uint16_t>(f.len), f.filter};
    Check(args, Sys(__NR_seccomp, SECCOMP_SET_MODE_FILTER, f.flags, reinterpret_cast<long>(&prog)), kStepSeccomp, i);
  }
  // Done: the orchestrator takes over at this breakpoint.
  for (;;) asm volatile("int3" ::: "memory");
}

extern "C" __attribute__((naked, section("rstblob"), used)) void ro_restorer_syscall_gadget() {
  asm volatile("syscall\n\tint3\n\t");
}
