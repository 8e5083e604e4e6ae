#include "orchestrator/mm.h"

#include <linux/ptrace.h>
#include <signal.h>
#include <sys/syscall.h>

#include <cstring>
#include <map>

#include "restorer/args.h"
#include "sys/futex.h"
#include "sys/log.h"
#include "sys/ptrace_api.h"
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

std::string DescribeRestorerFailure(const shm::RestorerReport& report) {
  std::string arg = report.step == rst::kStepSigaction || report.step == rst::kStepSignal || report.step == rst::kStepSeccomp ||
                            report.step == rst::kStepItimer
                        ? " " + std::to_string(report.arg)
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
    RO_TRY(sys::PtraceSeizeWith(outer, PTRACE_O_EXITKILL | PTRACE_O_SUSPEND_SECCOMP));
    traced_.push_back(outer);
  }
  return {};
}

Status Continuation::Finish(uint64_t deadline_ns) {
  std::vector<std::pair<size_t, pid_t>> tasks;
  for (size_t i = 0; i < plan_.tasks.size(); ++i) {
    if (plan_.tasks[i].resume_mode == images::ResumeMode::kContinue) tasks.emplace_back(i, arena_.slot(i).outer_pid.load());
  }
  // Every restorer ends at its breakpoint, or dies: events of any traced
  // task are taken as they come (a dying task must be reaped by its tracer
  // before the init of its PID namespace can finish dying).
  std::map<pid_t, size_t> waiting;
  for (const auto& [i, outer] : tasks) waiting.emplace(outer, i);
  while (!waiting.empty()) {
    RO_ASSIGN_OR_RETURN(sys::TraceeEvent ev, sys::PtraceWaitAny(deadline_ns));
    auto it = waiting.find(ev.pid);
    if (it == waiting.end()) continue;
    size_t i = it->second;
    std::string who = "task " + std::to_string(plan_.tasks[i].pid);
    if (ev.stop.exited) {
      for (size_t k = 0; k < plan_.tasks.size(); ++k) {  // the cause, if a restorer says
        const shm::RestorerReport& r = arena_.slot(k).report;
        if (r.step != 0) return Fail("task " + std::to_string(plan_.tasks[k].pid) + ": " + DescribeRestorerFailure(r));
      }
      return Fail(who + ": its restorer died");
    }
    if (ev.stop.stop_signal != SIGTRAP) {
      return Fail(who + ": its restorer stopped with " + std::string(strsignal(ev.stop.stop_signal)) + " instead of at its end");
    }
    waiting.erase(it);
  }
  for (const auto& [i, outer] : tasks) {
    if (Status s = FinishTask(i, outer); !s.ok()) return std::move(s).error().Within("task " + std::to_string(plan_.tasks[i].pid));
  }
  // Let them all go together.
  for (pid_t pid : traced_) RO_TRY(sys::PtraceDetach(pid, 0));
  traced_.clear();
  return {};
}

Status Continuation::FinishTask(size_t index, pid_t outer) {
  const images::ContinuePlan& c = *plan_.tasks[index].cont;
  const images::ZonePlan& z = plan_.zone;
  uint64_t deadline = sys::MonotonicNs() + 5'000'000'000ull;
  // The zone goes, by a munmap run in the task at the restorer's syscall
  // instruction; the task is stopped again at the syscall's exit, before it
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
  for (int stop = 0; stop < 2; ++stop) {  // the syscall's entry, then its exit
    RO_TRY(sys::PtraceSyscall(outer, 0));
    RO_ASSIGN_OR_RETURN(sys::TraceeStop s, sys::PtraceWaitStop(outer, deadline));
    if (s.exited) return Fail("died while the zone was unmapped");
  }
  RO_ASSIGN_OR_RETURN(user_regs_struct after, sys::PtraceGetRegs(outer));
  if (static_cast<long long>(after.rax) != 0) {
    return SysError("munmap of the zone " + Hex(z.start) + "+" + Hex(z.size), static_cast<int>(-static_cast<long long>(after.rax)));
  }
  RO_TRY(arena_.Fault(shm::FaultPoint::kMmContinue, "set the registers"));
  // The dumped registers; orig_ax -1: no syscall restart is pending (the
  // images' registers already point at a syscall to re-issue, if any).
  const auto& g = c.gpregs;
  user_regs_struct r{};
  r.r15 = g[0], r.r14 = g[1], r.r13 = g[2], r.r12 = g[3], r.rbp = g[4], r.rbx = g[5], r.r11 = g[6], r.r10 = g[7];
  r.r9 = g[8], r.r8 = g[9], r.rax = g[10], r.rcx = g[11], r.rdx = g[12], r.rsi = g[13], r.rdi = g[14];
  r.orig_rax = static_cast<unsigned long long>(-1);
  r.rip = g[16], r.cs = g[17], r.eflags = g[18], r.rsp = g[19], r.ss = g[20], r.fs_base = g[21], r.gs_base = g[22];
  r.ds = g[23], r.es = g[24], r.fs = g[25], r.gs = g[26];
  RO_TRY(sys::PtraceSetRegs(outer, r));
  RO_TRY(sys::PtraceSetSigmask(outer, c.blocked));
  log::Debug("task {} continues at {}", plan_.tasks[index].pid, Hex(r.rip));
  return {};
}

}  // namespace ro
