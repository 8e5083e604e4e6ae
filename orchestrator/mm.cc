#include "orchestrator/mm.h"

#include <linux/ptrace.h>
#include <signal.h>
#include <sys/syscall.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "orchestrator/verify/verify.h"
#include "restorer/args.h"
#include "sys/futex.h"
#include "sys/log.h"
#include "sys/ptrace_api.h"
#include "sys/proc_tree.h"
#include "sys/ptrace_regs.h"

namespace ro {
namespace {

namespace rst = ro::restorer;

const char* StepName(uint32_t step) {
  switch (static_cast<rst::Step>(step)) {
    case rst::kStepNone: return "nothing";
    case rst::kStepRseq: return "rseq(unregister the worker's area)";
    case rst::kStepBlock: return "rt_sigprocmask(block all)";
    case rst::kStepAside: return "mremap of the running vdso or vvar aside";
    case rst::kStepUnmap: return "munmap of everything outside the zone";
    case rst::kStepVma: return "putting the VMA in place";
    case rst::kStepSpecial: return "mremap of the vdso or vvar into place";
    case rst::kStepProtect: return "mprotect of the VMA";
    case rst::kStepMadvise: return "madvise of the VMA";
    case rst::kStepMm: return "prctl(PR_SET_MM_MAP)";
    case rst::kStepSigaction: return "rt_sigaction of signal";
    case rst::kStepItimer: return "setitimer";
    case rst::kStepAltstack: return "sigaltstack";
    case rst::kStepRseqSet: return "rseq(register)";
    case rst::kStepThread: return "set_robust_list, personality or prctl";
    case rst::kStepSignal: return "queueing pending signal";
    case rst::kStepSeccomp: return "seccomp(SET_MODE_FILTER) of filter";
    case rst::kStepThreadCreate: return "clone3 of thread";
    case rst::kStepRlimit: return "prlimit64 of resource";
    case rst::kStepSched: return "setpriority or sched_setscheduler with";
    case rst::kStepAttr: return "prctl";
    case rst::kStepCreds: return "setting the thread's credentials:";
    case rst::kStepCount: break;
  }
  return "an unknown step";
}

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%#llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

const char* CredsOpName(uint64_t op) {
  switch (op) {
    case rst::kCredsGroups: return "setgroups";
    case rst::kCredsKeepCaps: return "prctl(PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP)";
    case rst::kCredsGids: return "setresgid/setfsgid";
    case rst::kCredsUids: return "setresuid/setfsuid";
    case rst::kCredsCapget: return "capget";
    case rst::kCredsInheritable: return "capset of the inheritable set";
    case rst::kCredsAmbient: return "prctl(PR_CAP_AMBIENT)";
    case rst::kCredsBounding: return "prctl(PR_CAPBSET_DROP)";
    case rst::kCredsSecurebits: return "prctl(PR_SET_SECUREBITS)";
    case rst::kCredsCapset: return "capset";
  }
  return "an unknown step";
}

std::string DescribeRestorerFailure(const shm::RestorerReport& report) {
  if (report.step == rst::kStepCreds) {
    return std::string("restorer: ") + StepName(report.step) + " " + CredsOpName(report.arg) + ": " + std::strerror(report.err);
  }
  std::string arg = report.step == rst::kStepSigaction || report.step == rst::kStepSignal || report.step == rst::kStepSeccomp ||
                            report.step == rst::kStepItimer || report.step == rst::kStepThreadCreate || report.step == rst::kStepRlimit ||
                            report.step == rst::kStepSched || report.step == rst::kStepAttr
                        ? " " + std::to_string(static_cast<long long>(report.arg))
                        : report.arg != 0 ? " at " + Hex(report.arg) : "";
  std::string injected = report.injected != 0 ? " [injected fault mm-restorer:" + std::to_string(report.injected) + "]" : "";
  return std::string("restorer: ") + StepName(report.step) + arg + injected + ": " + std::strerror(report.err);
}

Continuation::~Continuation() {
  for (pid_t pid : traced_) (void)sys::PtraceDetach(pid, 0);
}

bool Continuation::any() const {
  for (const images::TaskPlan& t : plan_.tasks) {
    if (t.resume_mode == images::ResumeMode::kContinue) return true;
  }
  return false;
}

Status Continuation::Seize() {
  for (size_t i = 0; i < plan_.tasks.size(); ++i) {
    if (plan_.tasks[i].resume_mode != images::ResumeMode::kContinue) continue;
    pid_t outer = arena_.slot(i).outer_pid.load();
    // Its threads, which its restorer creates, are traced from their start.
    RO_TRY(sys::PtraceSeizeWith(outer, PTRACE_O_EXITKILL | PTRACE_O_SUSPEND_SECCOMP | PTRACE_O_TRACECLONE));
    traced_.push_back(outer);
  }
  return {};
}

Status Continuation::Finish(uint64_t deadline_ns) {
  // Every thread of every continuing task ends at its restorer's
  // breakpoint, or the task dies: events of every tracee are taken as they
  // come (a dying task must be reaped by its tracer before the init of its
  // PID namespace can finish dying).
  std::map<pid_t, size_t> task_of_leader;  // outer pid -> task index
  size_t expected = 0;
  for (size_t i = 0; i < plan_.tasks.size(); ++i) {
    if (plan_.tasks[i].resume_mode != images::ResumeMode::kContinue) continue;
    task_of_leader[arena_.slot(i).outer_pid.load()] = i;
    expected += plan_.tasks[i].cont->threads.size();
  }
  std::map<pid_t, ThreadStop> trapped;  // outer tid -> thread
  uint64_t t0 = sys::MonotonicNs();
  while (trapped.size() < expected) {
    RO_ASSIGN_OR_RETURN(sys::TraceeEvent ev, sys::PtraceWaitAny(deadline_ns));
    if (ev.stop.exited) {
      for (size_t k = 0; k < plan_.tasks.size(); ++k) {  // the cause, if a restorer says
        const shm::RestorerReport& r = arena_.slot(k).report;
        if (r.step != 0) return Fail("task " + std::to_string(plan_.tasks[k].pid) + ": " + DescribeRestorerFailure(r));
      }
      auto leader = task_of_leader.find(ev.pid);
      if (leader != task_of_leader.end()) return Fail("task " + std::to_string(plan_.tasks[leader->second].pid) + ": its restorer died");
      continue;  // a thread of a task whose leader's death follows
    }
    if (std::find(traced_.begin(), traced_.end(), ev.pid) == traced_.end()) traced_.push_back(ev.pid);  // a new thread
    if (ev.stop.event != 0) {
      RO_TRY(sys::PtraceCont(ev.pid, 0));  // a clone event, or a new thread's first stop
      continue;
    }
    if (ev.stop.stop_signal != SIGTRAP) {
      // A signal on its way to the task (it is traced, so even an ignored
      // one stops it): let it go on, the signal with it.
      RO_TRY(sys::PtraceCont(ev.pid, ev.stop.stop_signal));
      continue;
    }
    // At its breakpoint: which thread of which task.
    if (auto known = task_of_leader.find(ev.pid); known != task_of_leader.end()) {  // a main thread: no /proc read
      trapped[ev.pid] = ThreadStop{known->second, plan_.tasks[known->second].pid, ev.pid};
      continue;
    }
    RO_ASSIGN_OR_RETURN(sys::TaskInfo info, sys::ReadTask(ev.pid));
    // Its task is the one whose leader's outer pid is its Tgid (as the
    // reader's /proc shows it).
    auto tgid = sys::StatusValues(info.status, "Tgid");
    auto leader = tgid.empty() ? task_of_leader.end() : task_of_leader.find(static_cast<pid_t>(tgid.front()));
    if (leader == task_of_leader.end()) return Fail("pid " + std::to_string(ev.pid) + " stopped at a restorer's end but is no continuing task");
    trapped[ev.pid] = ThreadStop{leader->second, info.pid, ev.pid};
  }
  log::Debug("{} threads stopped at their restorer's end in {:.2f} ms", expected, (sys::MonotonicNs() - t0) / 1e6);
  t0 = sys::MonotonicNs();
  if (check_pages_fd_ >= 0) {
    std::map<size_t, pid_t> tasks;
    for (const auto& [outer, i] : task_of_leader) tasks[i] = outer;
    PagesCheckStats stats;
    std::vector<std::string> diffs = ComparePages(plan_, tasks, check_pages_fd_, &stats);
    for (const std::string& d : diffs) log::Error("{}", d);
    if (!diffs.empty()) return Fail("the restored memory differs from the pages images: " + diffs.front());
    log::Info("the memory of {} tasks matches their pages images: {:.1f} MiB compared in {:.1f} ms", tasks.size(),
              static_cast<double>(stats.bytes) / (1 << 20), static_cast<double>(stats.ns) / 1e6);
  }
  // Each step is started in every task before the orchestrator waits for
  // the first: the tasks' munmaps run side by side.
  for (const auto& [outer, i] : task_of_leader) RO_TRY(Within(i, StartZoneUnmap(outer)));
  for (int stop = 0; stop < 2; ++stop) {  // the syscall's entry, then its exit
    for (const auto& [outer, i] : task_of_leader) RO_TRY(Within(i, NextSyscallStop(outer, stop == 0)));
  }
  std::vector<std::vector<ThreadStop>> threads_of(plan_.tasks.size());
  for (const auto& [outer_tid, stop] : trapped) threads_of[stop.task].push_back(stop);
  for (const auto& [outer, i] : task_of_leader) RO_TRY(Within(i, SetRegisters(i, threads_of[i])));
  // Let them all go together.
  for (pid_t pid : traced_) RO_TRY(sys::PtraceDetach(pid, 0));
  traced_.clear();
  log::Debug("{} tasks given their registers and let go in {:.2f} ms", task_of_leader.size(), (sys::MonotonicNs() - t0) / 1e6);
  return {};
}

Status Continuation::Within(size_t index, Status s) const {
  if (s.ok()) return s;
  return std::move(s).error().Within("task " + std::to_string(plan_.tasks[index].pid));
}

Status Continuation::StartZoneUnmap(pid_t outer) {
  const images::ZonePlan& z = plan_.zone;
  // The task is at its restorer's breakpoint (its other threads are
  // stopped): the zone goes by one munmap run at the restorer's syscall
  // instruction (the gadget), traced to the syscall's exit, before the task
  // could run anything where the zone was.
  RO_ASSIGN_OR_RETURN(user_regs_struct regs, sys::PtraceGetRegs(outer));
  uint64_t gadget = z.start + z.task_offset +
                    static_cast<uint64_t>(reinterpret_cast<const char*>(&ro_restorer_syscall_gadget) - __start_rstblob);
  user_regs_struct call = regs;
  call.rip = gadget;
  call.rax = SYS_munmap;
  call.orig_rax = static_cast<unsigned long long>(-1);
  call.rdi = z.start;
  call.rsi = z.size;
  RO_TRY(sys::PtraceSetRegs(outer, call));
  return sys::PtraceSyscall(outer, 0);
}

Status Continuation::NextSyscallStop(pid_t outer, bool entry) {
  uint64_t deadline = sys::MonotonicNs() + 5'000'000'000ull;
  RO_ASSIGN_OR_RETURN(sys::TraceeStop s, sys::PtraceWaitStop(outer, deadline));
  if (s.exited) return Fail("died while the zone was unmapped");
  if (entry) return sys::PtraceSyscall(outer, 0);
  RO_ASSIGN_OR_RETURN(user_regs_struct after, sys::PtraceGetRegs(outer));
  if (static_cast<long long>(after.rax) != 0) {
    const images::ZonePlan& z = plan_.zone;
    return SysError("munmap of the zone " + Hex(z.start) + "+" + Hex(z.size), static_cast<int>(-static_cast<long long>(after.rax)));
  }
  return {};
}

Status Continuation::SetRegisters(size_t index, const std::vector<ThreadStop>& threads) {
  const images::ContinuePlan& c = *plan_.tasks[index].cont;
  RO_TRY(arena_.Fault(shm::FaultPoint::kMmContinue, "set the registers"));
  // Every thread's dumped registers; orig_ax -1: no syscall restart is
  // pending (the images' registers already point at a syscall to re-issue,
  // if any).
  for (const ThreadStop& stop : threads) {
    pid_t outer_tid = stop.outer;
    const images::ThreadPlan* th = nullptr;
    for (const images::ThreadPlan& candidate : c.threads) {
      if (candidate.tid == stop.tid) th = &candidate;
    }
    if (th == nullptr) return Fail("thread " + std::to_string(stop.tid) + " is not in the images");
    const auto& g = th->gpregs;
    user_regs_struct r{};
    r.r15 = g[0], r.r14 = g[1], r.r13 = g[2], r.r12 = g[3], r.rbp = g[4], r.rbx = g[5], r.r11 = g[6], r.r10 = g[7];
    r.r9 = g[8], r.r8 = g[9], r.rax = g[10], r.rcx = g[11], r.rdx = g[12], r.rsi = g[13], r.rdi = g[14];
    r.orig_rax = static_cast<unsigned long long>(-1);
    r.rip = g[16], r.cs = g[17], r.eflags = g[18], r.rsp = g[19], r.ss = g[20], r.fs_base = g[21], r.gs_base = g[22];
    r.ds = g[23], r.es = g[24], r.fs = g[25], r.gs = g[26];
    RO_TRY(sys::PtraceSetRegs(outer_tid, r));
    if (!th->xstate.empty()) RO_TRY(sys::PtraceSetXstate(outer_tid, th->xstate));
    RO_TRY(sys::PtraceSetSigmask(outer_tid, th->blocked));
    log::Debug("thread {} of task {} continues at {}", th->tid, plan_.tasks[index].pid, Hex(r.rip));
  }
  return {};
}

}  // namespace ro
