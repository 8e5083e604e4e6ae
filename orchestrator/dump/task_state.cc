// A live task's state while the tree is frozen: its VMAs, resource limits
// and shared signal queue; for each of its threads, registers, FPU state,
// TLS slots, signal mask and queue, rseq and robust-list registrations,
// scheduling policy, read from outside; then what only a thread itself can
// ask the kernel (its sigaltstack, clear_child_tid address, parent-death
// signal, TSC mode, timer slack; the leader also the task's disposition of
// every signal, itimers, break, dumpable, subreaper flag...), through
// syscalls injected into it (sys/remote_attrs.h). Nothing of the task is
// changed: the injection puts back every register, its mask and every
// byte it used.
#include <signal.h>
#include <sys/stat.h>

#include <array>
#include <cstdio>
#include <cstdlib>

#include "orchestrator/dump/collector.h"
#include "sys/cpu.h"
#include "sys/proc.h"
#include "sys/proc_tree.h"
#include "sys/process.h"
#include "sys/remote_attrs.h"
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

// A structure read from the task, as 64-bit words.
using Words = std::array<uint64_t, 4>;

}  // namespace

Status Collector::ReadLiveState(Task& t) {
  auto live = std::make_unique<LiveState>();
  const pid_t pid = t.outer;
  if (t.frozen->pending_signal != 0) {
    return SysError("signal " + Str(t.frozen->pending_signal) + " kept arriving while it was frozen; try again", kErrTryAgain);
  }
  RO_ASSIGN_OR_RETURN(size_t timers, sys::CountPosixTimers(pid));
  if (timers != 0) return Refuse("it has " + Str(static_cast<long long>(timers)) + " POSIX timer(s) (timer_create): not supported");
  RO_ASSIGN_OR_RETURN(live->vmas, sys::ReadVmas(pid));
  RO_ASSIGN_OR_RETURN(std::string stat, sys::ReadProcFile(t.Proc("stat")));
  auto parsed = sys::ParseProcStatMm(stat);
  if (!parsed.ok()) return std::move(parsed).error().Within(t.Proc("stat"));
  live->stat = *parsed;
  if (sys::HostXstateLayout().features == 0) return Refuse("this CPU has no XSAVE: the FPU state cannot be dumped");
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
  if (!insn.ok()) return Refuse("no syscall instruction in its [vdso] or executable mappings: its state cannot be asked for");
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
    return Refuse("it has an fd table of its own (unshare(CLONE_FILES)): not supported");
  }
  if (!sys::KcmpSame(t.outer, tid, sys::KcmpType::kFs)) {
    return Refuse("it has a cwd and root of its own (unshare(CLONE_FS)): not supported");
  }
  std::string task = "/proc/" + Str(t.outer) + "/task/";
  for (const char* ns : {"mnt", "net", "ipc", "uts", "cgroup"}) {
    struct stat mine {}, leader {};
    std::string rest = std::string("/ns/") + ns;
    if (::stat((task + Str(tid) + rest).c_str(), &mine) != 0 || ::stat((task + Str(t.outer) + rest).c_str(), &leader) != 0) {
      continue;  // a kernel without it
    }
    if (mine.st_ino != leader.st_ino) return Refuse(std::string("it is in a ") + ns + " namespace of its own: not supported");
  }
  RO_ASSIGN_OR_RETURN(sys::TaskInfo info, sys::ReadTask(tid));
  long filters = sys::StatusInnermost(t.info.status, "Seccomp_filters");
  bool same = info.seccomp == t.info.seccomp && sys::StatusInnermost(info.status, "Seccomp_filters") == filters;
  for (long i = 0; same && i < filters; ++i) {
    auto mine = sys::PtraceSeccompFilter(tid, static_cast<unsigned long>(i));
    auto leader = sys::PtraceSeccompFilter(t.outer, static_cast<unsigned long>(i));
    same = mine.ok() && leader.ok() && mine->program == leader->program && mine->flags == leader->flags;
  }
  if (!same) return Refuse("its seccomp mode or filters differ from its task's: not supported");
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
  if (info.nspid.size() != pid_levels_) return Refuse("its thread id is not one of the tree's PID namespace");
  if (info.status.find("\nx86_Thread_features:\tshstk") != std::string::npos) {
    return Refuse("it runs with a shadow stack (x86 user shadow stack): not supported");
  }
  RO_ASSIGN_OR_RETURN(std::string stat, sys::ReadProcFile("/proc/" + Str(t.outer) + "/task/" + Str(outer) + "/stat"));
  auto parsed = sys::ParseProcStatMm(stat);
  if (!parsed.ok()) return std::move(parsed).error();
  th.stat = *parsed;
  RO_ASSIGN_OR_RETURN(sys::Scheduling sched, sys::GetScheduling(outer));
  th.sched_policy = sched.policy;
  th.sched_prio = sched.priority;

  auto regs = sys::PtraceGetRegs(outer);
  if (!regs.ok() && regs.error().err == EINVAL) return Refuse("it is a 32-bit task: not supported");
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
  if (th.rseq.flags != 0) return Refuse("its rseq registration has flags " + Hex(th.rseq.flags) + ": not supported");
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
  if (Status s = AskThread(task, th, task_wide); !s.ok()) {
    (void)task.End();  // the first error is the one to report
    return s;
  }
  return task.End();
}

Status Collector::AskThread(sys::RemoteSyscalls& task, ThreadLive& th, LiveState* task_wide) {
  // Per thread: what the kernel keeps in the thread's task_struct; of the
  // task's own thread also the task's, all in one stop.
  sys::ThreadKnobs k;
  if (task_wide == nullptr) {
    RO_ASSIGN_OR_RETURN(k, sys::AskThreadKnobs(task));
  } else {
    RO_ASSIGN_OR_RETURN(sys::LeaderAnswers a, sys::AskLeader(task));
    k = a.thread;
    LiveState& live = *task_wide;
    // Every signal, caught or not: a SIG_DFL disposition keeps the flags
    // and mask it was set with (an SA_RESETHAND handler that ran, a
    // sigaction(2) with SIG_DFL), which sigaction(2) shows.
    live.sigactions = a.sigactions;
    for (size_t which = 0; which < 3; ++which) {
      const sys::TaskKnobs::Itimer& it = a.task.itimers[which];
      live.itimers[which] = {it.interval_sec, it.interval_usec, it.value_sec, it.value_usec};
    }
    live.brk = a.task.brk;
    live.dumpable = a.task.dumpable;
    live.child_subreaper = a.task.child_subreaper;
    if (a.task.memory_merge) {
      return Refuse("it has KSM merging on for all its memory (prctl PR_SET_MEMORY_MERGE), which needs CAP_SYS_RESOURCE to set: not supported");
    }
  }
  th.ss_sp = k.ss_sp;
  th.ss_flags = k.ss_flags;
  th.ss_size = k.ss_size;
  th.clear_tid_addr = k.clear_tid_addr;
  th.pdeath_sig = k.pdeath_sig;
  th.secbits = k.securebits;
  th.tsc_mode = k.tsc_mode;
  th.timer_slack = k.timer_slack;
  return {};
}

}  // namespace ro::dump
