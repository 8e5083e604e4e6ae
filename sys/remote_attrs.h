// What only a task itself can get from the kernel, asked through syscalls
// injected into one of its threads (sys/ptrace_api.h RemoteSyscalls, the
// thread in a ptrace stop): the task's signal dispositions, itimers,
// break, dumpable, child-subreaper and memory-merge flags; the thread's
// parent-death signal, TSC mode, timer slack, sigaltstack,
// clear_child_tid address and securebits. Each group is asked by a few
// instructions run in the task (RunCode: one stop, plus an injected mmap
// and munmap), or, when the task cannot map them, one injected syscall at
// a time (two stops each): the ...OneByOne forms, with the same answers
// and the same errors. The dump and verify ask the same questions. x86_64
// only.
#pragma once

#include <array>
#include <cstdint>

#include "sys/ptrace_api.h"
#include "sys/status.h"

namespace ro::sys {

// struct sigaction as rt_sigaction(2) hands it out on x86_64.
struct KernelSigaction {
  uint64_t handler = 0;  // SIG_DFL 0, SIG_IGN 1, or an address
  uint64_t flags = 0;
  uint64_t restorer = 0;
  uint64_t mask = 0;
  bool operator==(const KernelSigaction&) const = default;
};

// Every signal's disposition, by signal number (1..64; SIGKILL, SIGSTOP
// and index 0 stay zero), whatever the handler (a SIG_DFL disposition
// keeps the flags and mask it was set with, and sigaction(2) shows them):
// all asked by a few instructions run in the task (RunCode: one stop, and
// an injected mmap and munmap), or, when the task cannot map them, as
// AskSigactionsOneByOne does. The first rt_sigaction that fails is the
// error, "injected rt_sigaction(N)" with its errno.
Result<std::array<KernelSigaction, 65>> AskSigactions(RemoteSyscalls& task);
// The same answers, one injected rt_sigaction each (two stops each).
Result<std::array<KernelSigaction, 65>> AskSigactionsOneByOne(RemoteSyscalls& task);

// The task's PR_GET_CHILD_SUBREAPER.
Result<bool> AskChildSubreaper(RemoteSyscalls& task);
// The task's PR_GET_MEMORY_MERGE (KSM for all its memory): false when the
// kernel has no KSM.
Result<bool> AskMemoryMerge(RemoteSyscalls& task);

// What a thread has for itself.
struct ThreadKnobs {
  int pdeath_sig = 0;        // PR_GET_PDEATHSIG
  int tsc_mode = 0;          // PR_GET_TSC: PR_TSC_ENABLE 1, PR_TSC_SIGSEGV 2 (0: the CPU has no TSC control)
  uint64_t timer_slack = 0;  // PR_GET_TIMERSLACK, ns
  int securebits = 0;        // PR_GET_SECUREBITS
  uint64_t ss_sp = 0, ss_size = 0;  // sigaltstack
  uint32_t ss_flags = 0;
  uint64_t clear_tid_addr = 0;      // PR_GET_TID_ADDRESS
  bool operator==(const ThreadKnobs&) const = default;
};
// Asked in that order: sigaltstack, PR_GET_TID_ADDRESS, PR_GET_PDEATHSIG,
// PR_GET_SECUREBITS, PR_GET_TIMERSLACK, PR_GET_TSC (EINVAL, a CPU without
// TSC control, is mode 0). The first that fails is the error, "injected
// prctl(PR_GET_TSC)" (or "injected sigaltstack") with its errno.
Result<ThreadKnobs> AskThreadKnobs(RemoteSyscalls& thread);
Result<ThreadKnobs> AskThreadKnobsOneByOne(RemoteSyscalls& thread);

// What a task (its thread group) has, asked of any of its threads.
struct TaskKnobs {
  struct Itimer {  // struct itimerval
    uint64_t interval_sec = 0, interval_usec = 0, value_sec = 0, value_usec = 0;
    bool operator==(const Itimer&) const = default;
  };
  std::array<Itimer, 3> itimers{};  // getitimer: ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF
  uint64_t brk = 0;                 // brk(0)
  int dumpable = 0;                 // PR_GET_DUMPABLE
  bool child_subreaper = false;     // PR_GET_CHILD_SUBREAPER
  bool memory_merge = false;        // PR_GET_MEMORY_MERGE (false: the kernel has no KSM, EINVAL)
  bool operator==(const TaskKnobs&) const = default;
};
// Asked in that order: getitimer(0..2), brk(0), PR_GET_DUMPABLE,
// PR_GET_CHILD_SUBREAPER, PR_GET_MEMORY_MERGE; the first that fails is the
// error ("injected getitimer(1)", "injected brk(0)", "injected
// prctl(PR_GET_DUMPABLE)"...).
Result<TaskKnobs> AskTaskKnobs(RemoteSyscalls& task);
Result<TaskKnobs> AskTaskKnobsOneByOne(RemoteSyscalls& task);

// All a dump asks of a task's own thread, in one stop: its thread knobs,
// every signal's disposition and the task knobs, with the error the three
// asked one after the other in that order would give. When the task
// cannot map code, each group one by one.
struct LeaderAnswers {
  ThreadKnobs thread;
  std::array<KernelSigaction, 65> sigactions{};
  TaskKnobs task;
};
Result<LeaderAnswers> AskLeader(RemoteSyscalls& task);

}  // namespace ro::sys
