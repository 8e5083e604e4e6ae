// A live task's state while the tree is frozen: its VMAs, resource limits
// and shared signal queue; for each of its threads, registers, FPU state,
// TLS slots, signal mask and queue, rseq and robust-list registrations,
// read from outside; then what only a thread itself can ask the kernel
// (its sigaltstack, clear_child_tid address, parent-death signal; the
// leader also the task's sigactions, itimers, break, dumpable...), through
// syscalls injected into it. Nothing of the task is changed: the injection
// puts back every register, its mask and every byte it used.
#include <linux/prctl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "orchestrator/dump/collector.h"
#include "sys/cpu.h"
#include "sys/proc.h"
#include "sys/proc_tree.h"
#include "sys/process.h"
#include "sys/remote_mem.h"

namespace ro::dump {
namespace {

constexpr int kTlsFirst = 12;  // GDT_ENTRY_TLS_MIN on x86_64
constexpr int kNumRlimits = 16;  // RLIM_NLIMITS

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%#llx", static_cast<unsigned long long>(v));
  return buf;
}

// The structures the kernel wrote at the scratch area, as 64-bit words.
using Words = std::array<uint64_t, 4>;

Words ToWords(const std::string& bytes) {
  Words w{};
  std::memcpy(w.data(), bytes.data(), std::min(bytes.size(), sizeof(w)));
  return w;
}

}  // namespace

Status Collector::ReadLiveState(Task& t) {
  auto live = std::make_unique<LiveState>();
  const pid_t pid = t.outer;
  if (t.frozen->pending_signal != 0) {
    return SysError("signal " + Str(t.frozen->pending_signal) + " kept arriving while it was frozen; try again", kErrTryAgain);
  }
  RO_ASSIGN_OR_RETURN(size_t timers, sys::CountPosixTimers(pid));
  if (timers != 0) return Fail("it has " + Str(static_cast<long long>(timers)) + " POSIX timer(s) (timer_create): not supported");
  RO_ASSIGN_OR_RETURN(live->vmas, sys::ReadVmas(pid));
  RO_ASSIGN_OR_RETURN(std::string stat, sys::ReadProcFile(t.Proc("stat")));
  auto parsed = sys::ParseProcStatMm(stat);
  if (!parsed.ok()) return std::move(parsed).error().Within(t.Proc("stat"));
  live->stat = *parsed;
  if (sys::HostXstateLayout().features == 0) return Fail("this CPU has no XSAVE: the FPU state cannot be dumped");
  // Every thread the freeze stopped, the task's own first: no thread can
  // have come or gone since (each is stopped, none can clone).
  if (static_cast<size_t>(t.info.threads) != t.frozen->threads.size() + 1) {
    return SysError("it has " + Str(t.info.threads) + " threads but " + Str(static_cast<long long>(t.frozen->threads.size() + 1)) +
                        " were frozen (a thread came or went); try again",
                    kErrTryAgain);
  }
  live->threads.resize(t.frozen->threads.size() + 1);
  // One `syscall` instruction serves every thread: they share the memory.
  auto insn = sys::FindSyscallInsn(pid, live->vmas);
  if (!insn.ok()) return Fail("no syscall instruction in its [vdso] or executable mappings: its state cannot be asked for");
  RO_TRY(ReadThread(t, pid, *insn, live.get(), live->threads[0]));
  for (size_t i = 0; i < t.frozen->threads.size(); ++i) {
    const FrozenTree::Thread& frozen = t.frozen->threads[i];
    if (frozen.pending_signal != 0) {
      return SysError("thread " + Str(frozen.tid) + ": signal " + Str(frozen.pending_signal) +
                          " kept arriving while it was frozen; try again",
                      kErrTryAgain);
    }
    Status s = CheckThreadShares(t, frozen.tid);
    if (s.ok()) s = ReadThread(t, frozen.tid, *insn, nullptr, live->threads[i + 1]);
    if (!s.ok()) return std::move(s).error().Within("thread " + Str(frozen.tid) + " here");
  }
  RO_ASSIGN_OR_RETURN(live->pending_shared, sys::PtracePeekSiginfo(pid, true));
  for (int r = 0; r < kNumRlimits; ++r) {
    RO_ASSIGN_OR_RETURN(rlimit limit, sys::GetResourceLimit(pid, r));
    live->rlimits.push_back(limit);
  }
  t.live = std::move(live);
  return {};
}

// A restore gives every thread of a task the task's fd table, cwd and
// root, namespaces and seccomp filters: a thread that unshared one of them
// (unshare(2) acts on the calling thread alone) would come back sharing.
Status Collector::CheckThreadShares(const Task& t, pid_t tid) {
  if (!sys::KcmpSame(t.outer, tid, sys::KcmpType::kFiles)) {
    return Fail("it has an fd table of its own (unshare(CLONE_FILES)): not supported");
  }
  if (!sys::KcmpSame(t.outer, tid, sys::KcmpType::kFs)) {
    return Fail("it has a cwd and root of its own (unshare(CLONE_FS)): not supported");
  }
  std::string task = "/proc/" + Str(t.outer) + "/task/";
  for (const char* ns : {"mnt", "net", "ipc", "uts", "cgroup"}) {
    struct stat mine {}, leader {};
    std::string rest = std::string("/ns/") + ns;
    if (::stat((task + Str(tid) + rest).c_str(), &mine) != 0 || ::stat((task + Str(t.outer) + rest).c_str(), &leader) != 0) {
      continue;  // a kernel without it
    }
    if (mine.st_ino != leader.st_ino) return Fail(std::string("it is in a ") + ns + " namespace of its own: not supported");
  }
  RO_ASSIGN_OR_RETURN(sys::TaskInfo info, sys::ReadTask(tid));
  long filters = sys::StatusInnermost(t.info.status, "Seccomp_filters");
  bool same = info.seccomp == t.info.seccomp && sys::StatusInnermost(info.status, "Seccomp_filters") == filters;
  for (long i = 0; same && i < filters; ++i) {
    auto mine = sys::PtraceSeccompFilter(tid, static_cast<unsigned long>(i));
    auto leader = sys::PtraceSeccompFilter(t.outer, static_cast<unsigned long>(i));
    same = mine.ok() && leader.ok() && mine->program == leader->program && mine->flags == leader->flags;
  }
  if (!same) return Fail("its seccomp mode or filters differ from its task's: not supported");
  return {};
}

// One thread: its registers and state read from outside, then what it
// must be asked itself (injected into it, its siblings stopped).
Status Collector::ReadThread(const Task& t, pid_t outer, uint64_t syscall_insn, LiveState* task_wide, ThreadLive& th) {
  th.outer = outer;
  RO_ASSIGN_OR_RETURN(sys::TaskInfo info, sys::ReadTask(outer));
  th.tid = info.pid;
  th.comm = info.comm;
  th.status = info.status;
  if (info.nspid.size() != pid_levels_) return Fail("its thread id is not one of the tree's PID namespace");
  if (info.uids != own_uids_ || info.gids != own_gids_) {
    return Fail("it runs with other credentials than restore-orch (a thread that changed its uid or gid): not supported");
  }
  if (info.status.find("\nx86_Thread_features:\tshstk") != std::string::npos) {
    return Fail("it runs with a shadow stack (x86 user shadow stack): not supported");
  }
  RO_ASSIGN_OR_RETURN(std::string stat, sys::ReadProcFile("/proc/" + Str(t.outer) + "/task/" + Str(outer) + "/stat"));
  auto parsed = sys::ParseProcStatMm(stat);
  if (!parsed.ok()) return std::move(parsed).error();
  th.stat = *parsed;

  auto regs = sys::PtraceGetRegs(outer);
  if (!regs.ok() && regs.error().err == EINVAL) return Fail("it is a 32-bit task: not supported");
  if (!regs.ok()) return std::move(regs).error();
  th.regs = *regs;
  RO_ASSIGN_OR_RETURN(th.xstate, sys::PtraceGetXstate(outer));
  for (int i = 0; i < 3; ++i) {
    auto desc = sys::PtraceGetThreadArea(outer, kTlsFirst + i);
    if (!desc.ok() && desc.error().err != EIO) return std::move(desc).error();
    // A kernel without 32-bit emulation has no GDT TLS: CRIU writes zeros.
    if (desc.ok()) th.tls[static_cast<size_t>(i)] = *desc;
    th.tls[static_cast<size_t>(i)].entry_number = static_cast<unsigned>(kTlsFirst + i);
  }
  RO_ASSIGN_OR_RETURN(th.sigmask, sys::PtraceGetSigmask(outer));
  RO_ASSIGN_OR_RETURN(th.pending, sys::PtracePeekSiginfo(outer, false));
  RO_ASSIGN_OR_RETURN(th.rseq, sys::PtraceGetRseqConfig(outer));
  if (th.rseq.flags != 0) return Fail("its rseq registration has flags " + Hex(th.rseq.flags) + ": not supported");
  if (th.rseq.abi_pointer != 0) {
    // struct rseq: u32 cpu_id_start, u32 cpu_id, u64 rseq_cs.
    RO_TRY(sys::ReadTaskMemory(outer, th.rseq.abi_pointer + 8, &th.rseq_cs, sizeof(th.rseq_cs)));
    if (th.rseq_cs != 0) {
      Words cs{};  // struct rseq_cs: u32 version, u32 flags, u64 start_ip, post_commit_offset, abort_ip
      RO_TRY(sys::ReadTaskMemory(outer, th.rseq_cs, cs.data(), sizeof(cs)));
      th.cs = {static_cast<uint32_t>(cs[0]), static_cast<uint32_t>(cs[0] >> 32), cs[1], cs[2], cs[3]};
    }
  }
  RO_ASSIGN_OR_RETURN(th.robust, sys::GetRobustList(outer));

  RO_ASSIGN_OR_RETURN(sys::RemoteSyscalls task, sys::RemoteSyscalls::Begin(outer, syscall_insn, t.info.seccomp > 0));
  if (Status s = AskThread(task, t.info.status, th, task_wide); !s.ok()) {
    (void)task.End();  // the first error is the one to report
    return s;
  }
  return task.End();
}

Status Collector::AskThread(sys::RemoteSyscalls& task, const std::string& status, ThreadLive& th, LiveState* task_wide) {
  RO_ASSIGN_OR_RETURN(uint64_t scratch, task.Scratch());
  // A syscall that must succeed; `what` names it in errors.
  auto call = [&task](long nr, std::array<uint64_t, 6> args, const std::string& what) -> Result<long> {
    RO_ASSIGN_OR_RETURN(long r, task.Call(nr, args));
    if (r < 0 && r > -4096) return SysError("injected " + what, static_cast<int>(-r));
    return r;
  };
  // One that writes a structure of `len` bytes at the scratch area.
  auto ask = [&](long nr, std::array<uint64_t, 6> args, size_t len, const std::string& what) -> Result<Words> {
    RO_TRY(call(nr, args, what));
    RO_ASSIGN_OR_RETURN(std::string bytes, task.ReadScratch(len));
    return ToWords(bytes);
  };

  // Per thread: its sigaltstack, tid address, parent-death signal and
  // securebits (the kernel keeps each in the thread's task_struct).
  // stack_t: ss_sp, ss_flags (int), ss_size.
  RO_ASSIGN_OR_RETURN(Words ss, ask(SYS_sigaltstack, {0, scratch, 0, 0, 0, 0}, 24, "sigaltstack"));
  th.ss_sp = ss[0];
  th.ss_flags = static_cast<uint32_t>(ss[1]);
  th.ss_size = ss[2];
  RO_ASSIGN_OR_RETURN(Words tid, ask(SYS_prctl, {PR_GET_TID_ADDRESS, scratch, 0, 0, 0, 0}, 8, "prctl(PR_GET_TID_ADDRESS)"));
  th.clear_tid_addr = tid[0];
  RO_ASSIGN_OR_RETURN(Words pdeath, ask(SYS_prctl, {PR_GET_PDEATHSIG, scratch, 0, 0, 0, 0}, 4, "prctl(PR_GET_PDEATHSIG)"));
  th.pdeath_sig = static_cast<int>(static_cast<uint32_t>(pdeath[0]));
  RO_ASSIGN_OR_RETURN(long secbits, call(SYS_prctl, {PR_GET_SECUREBITS, 0, 0, 0, 0, 0}, "prctl(PR_GET_SECUREBITS)"));
  th.secbits = static_cast<int>(secbits);
  if (task_wide == nullptr) return {};
  LiveState& live = *task_wide;

  // Asked one by one: each costs the task two stops. A signal neither
  // caught nor ignored (SigCgt, SigIgn) has SIG_DFL, and what sigaction(2)
  // may have set along with SIG_DFL (flags, mask, restorer) changes
  // nothing, SIGCHLD's SA_NOCLDSTOP/SA_NOCLDWAIT excepted: those are
  // written as zeros (as after exec), SIGCHLD is always asked.
  uint64_t asked = sys::StatusHex(status, "SigCgt").value_or(0) | sys::StatusHex(status, "SigIgn").value_or(0) |
                   (uint64_t{1} << (SIGCHLD - 1));
  for (int sig = 1; sig <= 64; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP || !((asked >> (sig - 1)) & 1)) continue;
    // struct kernel_sigaction: handler, flags, restorer, mask (8 bytes).
    RO_ASSIGN_OR_RETURN(Words sa, ask(SYS_rt_sigaction, {static_cast<uint64_t>(sig), 0, scratch, 8, 0, 0}, 32,
                                      "rt_sigaction(" + Str(sig) + ")"));
    live.sigactions[static_cast<size_t>(sig)] = {sa[0], sa[1], sa[2], sa[3]};
  }
  for (int which = 0; which < 3; ++which) {
    // struct itimerval: it_interval {sec, usec}, it_value {sec, usec}.
    RO_ASSIGN_OR_RETURN(Words it, ask(SYS_getitimer, {static_cast<uint64_t>(which), scratch, 0, 0, 0, 0}, 32,
                                      "getitimer(" + Str(which) + ")"));
    live.itimers[static_cast<size_t>(which)] = {it[0], it[1], it[2], it[3]};
  }
  RO_ASSIGN_OR_RETURN(long brk, call(SYS_brk, {0, 0, 0, 0, 0, 0}, "brk(0)"));
  live.brk = static_cast<uint64_t>(brk);
  RO_ASSIGN_OR_RETURN(long dumpable, call(SYS_prctl, {PR_GET_DUMPABLE, 0, 0, 0, 0, 0}, "prctl(PR_GET_DUMPABLE)"));
  live.dumpable = static_cast<int>(dumpable);
  RO_ASSIGN_OR_RETURN(Words reaper, ask(SYS_prctl, {PR_GET_CHILD_SUBREAPER, scratch, 0, 0, 0, 0}, 4, "prctl(PR_GET_CHILD_SUBREAPER)"));
  live.child_subreaper = static_cast<int>(static_cast<uint32_t>(reaper[0]));
  return {};
}

}  // namespace ro::dump
