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
#include <linux/securebits.h>

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
      case kShmAttach:
        ret = Sys(__NR_shmat, static_cast<long>(v.source), static_cast<long>(v.start), v.flags);
        break;
      case kShmPart:
        ret = static_cast<long>(v.start);
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
  // What is pending now came from the restore (a helper's or zombie's
  // SIGCHLD, with every signal blocked): it goes before the image's own.
  uint64_t all = ~0ull;
  struct {
    long sec, nsec;
  } now = {0, 0};
  char info[128];
  while (Sys(__NR_rt_sigtimedwait, reinterpret_cast<long>(&all), reinterpret_cast<long>(info), reinterpret_cast<long>(&now), 8) > 0) {
  }
  for (long sig = 1; sig <= 64; ++sig) {
    if (sig == 9 || sig == 19) continue;  // SIGKILL, SIGSTOP
    Check(args, Sys(__NR_rt_sigaction, sig, reinterpret_cast<long>(&args->sigactions[sig - 1]), 0, 8), kStepSigaction,
          static_cast<uint64_t>(sig));
  }
  for (long which = 0; which < 3; ++which) {
    Check(args, Sys(__NR_setitimer, which, reinterpret_cast<long>(args->itimers[which]), 0), kStepItimer, static_cast<uint64_t>(which));
  }
  for (uint32_t i = 0; i < args->nr_pending; ++i) {
    const PendingSignal& p = args->pending[i];
    Check(args, Sys(__NR_rt_sigqueueinfo, args->pid, p.signo, reinterpret_cast<long>(p.siginfo)), kStepSignal, p.signo);
  }
}

RST void SetProcessState(const TaskArgs* args) {
  Check(args, Sys(__NR_personality, args->personality), kStepThread, args->personality);
  if (args->dumpable >= 0) Check(args, Sys(__NR_prctl, PR_SET_DUMPABLE, args->dumpable), kStepThread, PR_SET_DUMPABLE);
  if (args->thp_disabled) Check(args, Sys(__NR_prctl, PR_SET_THP_DISABLE, 1, 0, 0, 0), kStepThread, PR_SET_THP_DISABLE);
}

// The task's resource limits: once its memory is in place and before its
// threads exist (they were created under them, and so are now).
RST void SetLimits(const TaskArgs* args) {
  for (uint32_t i = 0; i < args->nr_rlimits; ++i) {
    const Rlimit& r = args->rlimits[i];
    Check(args, Sys(__NR_prlimit64, 0, r.resource, reinterpret_cast<long>(&r), 0), kStepRlimit, r.resource);
  }
}

// A thread's scheduling, timer slack (before its policy: a real-time
// thread's slack is the kernel's), TSC mode, parent-death signal, and last
// no_new_privs: it only narrows what the thread may do.
RST void SetThreadAttrs(const ThreadArgs* th) {
  const TaskArgs* args = th->task;
  if (th->has_timer_slack) Check(args, Sys(__NR_prctl, PR_SET_TIMERSLACK, static_cast<long>(th->timer_slack)), kStepAttr, PR_SET_TIMERSLACK);
  if (th->has_nice) Check(args, Sys(__NR_setpriority, 0 /* PRIO_PROCESS */, 0, th->nice), kStepSched, static_cast<uint64_t>(th->nice));
  if (th->has_policy) {
    int32_t param = static_cast<int32_t>(th->rt_priority);  // struct sched_param
    Check(args, Sys(__NR_sched_setscheduler, 0, th->policy, reinterpret_cast<long>(&param)), kStepSched, th->policy);
  }
  if (th->tsc_mode != 0) Check(args, Sys(__NR_prctl, PR_SET_TSC, th->tsc_mode), kStepAttr, PR_SET_TSC);
  if (th->pdeath_sig != 0) Check(args, Sys(__NR_prctl, PR_SET_PDEATHSIG, th->pdeath_sig), kStepAttr, PR_SET_PDEATHSIG);
  if (th->no_new_privs) Check(args, Sys(__NR_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), kStepAttr, PR_SET_NO_NEW_PRIVS);
}

// linux/capability.h's _LINUX_CAPABILITY_VERSION_3 header and data.
struct CapHeader {
  uint32_t version;
  int32_t pid;
};
struct CapData {
  uint32_t effective, permitted, inheritable;
};
constexpr uint32_t kCapabilityVersion3 = 0x20080522;

RST long Capset(uint64_t effective, uint64_t permitted, uint64_t inheritable) {
  CapHeader h = {kCapabilityVersion3, 0};
  CapData d[2] = {{static_cast<uint32_t>(effective), static_cast<uint32_t>(permitted), static_cast<uint32_t>(inheritable)},
                  {static_cast<uint32_t>(effective >> 32), static_cast<uint32_t>(permitted >> 32), static_cast<uint32_t>(inheritable >> 32)}};
  return Sys(__NR_capset, reinterpret_cast<long>(&h), reinterpret_cast<long>(d));
}

// The thread's uids or gids (real, effective, saved by setres*id, then fs,
// read back: setfs*id does not fail, it ignores) from `ids`.
RST void SetIds(const TaskArgs* args, const uint32_t* ids, long setres, long setfs, uint64_t op) {
  Check(args, Sys(setres, ids[0], ids[1], ids[2]), kStepCreds, op);
  Sys(setfs, ids[3]);
  if (static_cast<uint32_t>(Sys(setfs, -1)) != ids[3]) Check(args, -1 /* EPERM */, kStepCreds, op);
}

// The thread's credentials, from restore-orch's (a superset the plan
// checked), in the order the kernel allows: groups; SECBIT_NO_SETUID_FIXUP
// so that new uids keep the capabilities (cap_task_fix_setuid); gids, then
// uids while CAP_SETGID and CAP_SETUID are effective; the inheritable set
// raised while the bounding set is whole; ambient capabilities (each must
// be permitted and inheritable); the bounding set dropped and securebits
// set while CAP_SETPCAP is still effective; permitted and effective
// lowered last (security/commoncap.c).
RST void SetCreds(const ThreadArgs* th) {
  const TaskArgs* args = th->task;
  const Creds* c = th->creds;
  Check(args, Sys(__NR_setgroups, c->nr_groups, reinterpret_cast<long>(c->groups)), kStepCreds, kCredsGroups);
  uint32_t uids[3] = {};
  Check(args, Sys(__NR_getresuid, reinterpret_cast<long>(&uids[0]), reinterpret_cast<long>(&uids[1]), reinterpret_cast<long>(&uids[2])),
        kStepCreds, kCredsUids);
  bool new_uids = uids[0] != c->uids[0] || uids[1] != c->uids[1] || uids[2] != c->uids[2] ||
                  static_cast<uint32_t>(Sys(__NR_setfsuid, -1)) != c->uids[3];
  if (new_uids) {
    long keep = Sys(__NR_prctl, PR_GET_SECUREBITS);
    Check(args, keep, kStepCreds, kCredsKeepCaps);
    if (!(keep & SECBIT_NO_SETUID_FIXUP)) Check(args, Sys(__NR_prctl, PR_SET_SECUREBITS, keep | SECBIT_NO_SETUID_FIXUP), kStepCreds, kCredsKeepCaps);
  }
  SetIds(args, c->gids, __NR_setresgid, __NR_setfsgid, kCredsGids);
  if (new_uids) SetIds(args, c->uids, __NR_setresuid, __NR_setfsuid, kCredsUids);
  CapHeader h = {kCapabilityVersion3, 0};
  CapData now[2] = {};
  Check(args, Sys(__NR_capget, reinterpret_cast<long>(&h), reinterpret_cast<long>(now)), kStepCreds, kCredsCapget);
  uint64_t effective = now[0].effective | uint64_t{now[1].effective} << 32;
  uint64_t permitted = now[0].permitted | uint64_t{now[1].permitted} << 32;
  Check(args, Capset(effective, permitted, c->inheritable), kStepCreds, kCredsInheritable);
  Check(args, Sys(__NR_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), kStepCreds, kCredsAmbient);
  for (int cap = 0; cap < 64; ++cap) {
    if (c->ambient >> cap & 1) Check(args, Sys(__NR_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0), kStepCreds, kCredsAmbient);
  }
  for (int cap = 0; cap < 64; ++cap) {
    long in = Sys(__NR_prctl, PR_CAPBSET_READ, cap);
    if (in == -22 /* EINVAL: past the kernel's last capability */) break;
    Check(args, in, kStepCreds, kCredsBounding);
    if (in == 1 && !(c->bounding >> cap & 1)) Check(args, Sys(__NR_prctl, PR_CAPBSET_DROP, cap), kStepCreds, kCredsBounding);
  }
  long bits = Sys(__NR_prctl, PR_GET_SECUREBITS);
  Check(args, bits, kStepCreds, kCredsSecurebits);
  if (static_cast<uint32_t>(bits) != c->securebits) {
    Check(args, Sys(__NR_prctl, PR_SET_SECUREBITS, c->securebits), kStepCreds, kCredsSecurebits);
  }
  Check(args, Capset(c->effective, c->permitted, c->inheritable), kStepCreds, kCredsCapset);
}

// What a thread sets for itself, then its seccomp filters (per thread, as
// the task's were; the tracer suspends them until the end), then its
// credentials, then the breakpoint: the orchestrator takes it from there.
[[noreturn]] RST void FinishThread(const ThreadArgs* th) {
  const TaskArgs* args = th->task;
  if (th->has_rseq) {
    Check(args, Sys(__NR_rseq, static_cast<long>(th->rseq), static_cast<long>(th->rseq_len), 0, th->rseq_sig), kStepRseqSet, th->rseq);
  }
  Sys(__NR_set_tid_address, static_cast<long>(th->clear_tid_addr));
  if (th->robust_list != 0) {
    Check(args, Sys(__NR_set_robust_list, static_cast<long>(th->robust_list), static_cast<long>(th->robust_list_len)), kStepThread,
          th->robust_list);
  }
  Check(args, Sys(__NR_sigaltstack, reinterpret_cast<long>(th->altstack), 0), kStepAltstack, th->altstack[0]);
  if (th->comm[0] != 0) Sys(__NR_prctl, PR_SET_NAME, reinterpret_cast<long>(th->comm));
  for (uint32_t i = 0; i < th->nr_pending; ++i) {
    const PendingSignal& p = th->pending[i];
    Check(args, Sys(__NR_rt_tgsigqueueinfo, args->pid, th->tid, p.signo, reinterpret_cast<long>(p.siginfo)), kStepSignal, p.signo);
  }
  SetThreadAttrs(th);
  for (uint32_t i = 0; i < args->nr_seccomp; ++i) {
    const SeccompFilter& f = args->seccomp[i];
    struct {
      uint16_t len;
      uint64_t filter;
    } prog = {static_cast<uint16_t>(f.len), f.filter};
    Check(args, Sys(__NR_seccomp, SECCOMP_SET_MODE_FILTER, f.flags, reinterpret_cast<long>(&prog)), kStepSeccomp, i);
  }
  if (th->creds != nullptr) {
    SetCreds(th);
    // A new euid or fsuid resets both (commit_creds, kernel/cred.c).
    if (th->pdeath_sig != 0) Check(args, Sys(__NR_prctl, PR_SET_PDEATHSIG, th->pdeath_sig), kStepAttr, PR_SET_PDEATHSIG);
    if (args->dumpable >= 0) Check(args, Sys(__NR_prctl, PR_SET_DUMPABLE, args->dumpable), kStepThread, PR_SET_DUMPABLE);
  }
  for (;;) asm volatile("int3" ::: "memory");
}

// struct clone_args (clone3).
struct CloneArgs {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};

[[noreturn]] RST void ThreadMain(const ThreadArgs* th) { FinishThread(th); }

// clone3(args, size) starting the child on its own stack in `fn(arg)`;
// the parent gets the child's tid or -errno. r8 and r9 survive the syscall.
__attribute__((naked, section("rstblob"), used)) long CloneThread(const CloneArgs*, unsigned long, const ThreadArgs*,
                                                                  void (*)(const ThreadArgs*)) {
  asm volatile(
      "mov %rdx, %r8\n\t"
      "mov %rcx, %r9\n\t"
      "mov $435, %eax\n\t"  // __NR_clone3
      "syscall\n\t"
      "test %rax, %rax\n\t"
      "jnz 1f\n\t"
      "xor %ebp, %ebp\n\t"
      "and $-16, %rsp\n\t"
      "mov %r8, %rdi\n\t"
      "call *%r9\n\t"
      "ud2\n"
      "1:\n\t"
      "ret\n\t");
}

// The task's other threads, each with its tid, sharing everything.
RST void CreateThreads(const TaskArgs* args) {
  for (uint32_t i = 1; i < args->nr_threads; ++i) {
    const ThreadArgs* th = &args->threads[i];
    uint64_t tid = static_cast<uint64_t>(th->tid);
    CloneArgs ca = {};
    ca.flags = 0x00000100 | 0x00000200 | 0x00000400 | 0x00000800 | 0x00010000 | 0x00040000;  // VM FS FILES SIGHAND THREAD SYSVSEM
    ca.stack = th->stack;
    ca.stack_size = th->stack_size;
    ca.set_tid = reinterpret_cast<uint64_t>(&tid);
    ca.set_tid_size = 1;
    long ret = CloneThread(&ca, sizeof(ca), th, &ThreadMain);
    Check(args, ret, kStepThreadCreate, tid);
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
  SetProcessState(args);
  Sys(__NR_close_range, args->first_service_fd, ~0u, 0);
  SetLimits(args);
  CreateThreads(args);
  FinishThread(&args->threads[0]);
}

extern "C" __attribute__((naked, section("rstblob"), used)) void ro_restorer_syscall_gadget() {
  asm volatile("syscall\n\tint3\n\t");
}
