#include "sys/remote_attrs.h"

#include <linux/prctl.h>
#include <signal.h>
#include <sys/syscall.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <optional>
#include <string>

// Where the code below leaves its answers, from the start of the scratch
// area (CodeAnswers spells the same layout out for C++).
#define RO_ANSWER_RVAL 2080       // int64_t[13]: each syscall's raw result, by Ask
#define RO_ANSWER_SS 2184         // stack_t (24 bytes)
#define RO_ANSWER_TID 2208        // the clear_child_tid address (8)
#define RO_ANSWER_PDEATH 2216     // int
#define RO_ANSWER_TSC 2224        // int
#define RO_ANSWER_ITIMERS 2232    // struct itimerval[3] (32 bytes each)
#define RO_ANSWER_SUBREAPER 2328  // int
#define RO_ANSWER_END 2336
#define RO_STR(x) #x
#define RO_XSTR(x) RO_STR(x)

// What AskSigactions, AskThreadKnobs, AskTaskKnobs and AskLeader run in
// the task (RemoteSyscalls::RunCode), built from three macros that each
// make their syscalls with the scratch area in r12 (syscall keeps every
// register but rax, rcx and r11), whatever fails.
//  - ro_ask_sigactions: rt_sigaction(sig, NULL, scratch + sig * 32, 8)
//    for every signal but SIGKILL and SIGSTOP, up to the first that
//    fails. Out: ebx 0 when every call succeeded, else the signal whose
//    call failed, and rax its result. So it comes last.
//  - ro_ask_thread_knobs, ro_ask_task_knobs: one syscall each, its raw
//    result stored at rval[its Ask], what it writes at its RO_ANSWER_*
//    place. Arguments not named are 0 (PR_GET_MEMORY_MERGE refuses others).
// Each piece: in rdi the scratch area (RunCode's prologue sets it).
asm(R"(
    .equ ro_rval, )" RO_XSTR(RO_ANSWER_RVAL) R"(
    .equ ro_ss, )" RO_XSTR(RO_ANSWER_SS) R"(
    .equ ro_tid, )" RO_XSTR(RO_ANSWER_TID) R"(
    .equ ro_pdeath, )" RO_XSTR(RO_ANSWER_PDEATH) R"(
    .equ ro_tsc, )" RO_XSTR(RO_ANSWER_TSC) R"(
    .equ ro_itimers, )" RO_XSTR(RO_ANSWER_ITIMERS) R"(
    .equ ro_subreaper, )" RO_XSTR(RO_ANSWER_SUBREAPER) R"(

    .macro ro_call nr, ask   # syscall nr, its result to rval[ask]
    mov   $\nr, %eax
    syscall
    mov   %rax, ro_rval+8*\ask(%r12)
    .endm

    .macro ro_zero_args      # the 3rd to 6th arguments: 0
    xor   %edx, %edx
    xor   %r10d, %r10d
    xor   %r8d, %r8d
    xor   %r9d, %r9d
    .endm

    .macro ro_ask_thread_knobs
    ro_zero_args
    xor   %edi, %edi         # sigaltstack(NULL, &ss)
    lea   ro_ss(%r12), %rsi
    ro_call 131, 0           # __NR_sigaltstack, kSigaltstack
    mov   $40, %edi          # prctl(PR_GET_TID_ADDRESS, &tid)
    lea   ro_tid(%r12), %rsi
    ro_call 157, 1           # __NR_prctl, kTidAddress
    mov   $2, %edi           # prctl(PR_GET_PDEATHSIG, &sig)
    lea   ro_pdeath(%r12), %rsi
    ro_call 157, 2           # kPdeathSig
    mov   $27, %edi          # prctl(PR_GET_SECUREBITS): the bits
    xor   %esi, %esi
    ro_call 157, 3           # kSecurebits
    mov   $30, %edi          # prctl(PR_GET_TIMERSLACK): ns
    ro_call 157, 4           # kTimerSlack
    mov   $25, %edi          # prctl(PR_GET_TSC, &mode)
    lea   ro_tsc(%r12), %rsi
    ro_call 157, 5           # kTsc
    .endm

    .macro ro_ask_task_knobs
    ro_zero_args
    xor   %edi, %edi         # getitimer(ITIMER_REAL, &itimers[0])
    lea   ro_itimers(%r12), %rsi
    ro_call 36, 6            # __NR_getitimer, kItimerReal
    mov   $1, %edi           # getitimer(ITIMER_VIRTUAL, &itimers[1])
    lea   ro_itimers+32(%r12), %rsi
    ro_call 36, 7            # kItimerVirtual
    mov   $2, %edi           # getitimer(ITIMER_PROF, &itimers[2])
    lea   ro_itimers+64(%r12), %rsi
    ro_call 36, 8            # kItimerProf
    xor   %edi, %edi         # brk(0): the break
    xor   %esi, %esi
    ro_call 12, 9            # __NR_brk, kBrk
    mov   $3, %edi           # prctl(PR_GET_DUMPABLE): the flag
    ro_call 157, 10          # kDumpable
    mov   $37, %edi          # prctl(PR_GET_CHILD_SUBREAPER, &flag)
    lea   ro_subreaper(%r12), %rsi
    ro_call 157, 11          # kChildSubreaper
    mov   $68, %edi          # prctl(PR_GET_MEMORY_MERGE): the flag
    xor   %esi, %esi
    ro_call 157, 12          # kMemoryMerge
    .endm

    .macro ro_ask_sigactions
    mov   $1, %ebx           # sig
1:  cmp   $9, %ebx           # SIGKILL
    je    2f
    cmp   $19, %ebx          # SIGSTOP
    je    2f
    mov   %ebx, %edi         # sig
    xor   %esi, %esi         # act: NULL, only asked
    mov   %rbx, %rdx
    shl   $5, %rdx
    add   %r12, %rdx         # oact: scratch + sig * 32
    mov   $8, %r10d          # sizeof(sigset_t)
    mov   $13, %eax          # __NR_rt_sigaction
    syscall
    test  %rax, %rax
    js    3f                 # failed: ebx says for which signal
2:  inc   %ebx
    cmp   $64, %ebx
    jbe   1b
    xor   %ebx, %ebx         # all asked
3:
    .endm

    .pushsection .rodata.ro_ask_code, "a"
    .globl ro_sigaction_code, ro_sigaction_code_end, ro_thread_knobs_code, ro_thread_knobs_code_end
    .globl ro_task_knobs_code, ro_task_knobs_code_end, ro_leader_code, ro_leader_code_end
    .hidden ro_sigaction_code, ro_sigaction_code_end, ro_thread_knobs_code, ro_thread_knobs_code_end
    .hidden ro_task_knobs_code, ro_task_knobs_code_end, ro_leader_code, ro_leader_code_end
ro_sigaction_code:
    mov   %rdi, %r12
    ro_ask_sigactions
ro_sigaction_code_end:
ro_thread_knobs_code:
    mov   %rdi, %r12
    ro_ask_thread_knobs
ro_thread_knobs_code_end:
ro_task_knobs_code:
    mov   %rdi, %r12
    ro_ask_task_knobs
ro_task_knobs_code_end:
ro_leader_code:
    mov   %rdi, %r12
    ro_ask_thread_knobs
    ro_ask_task_knobs
    ro_ask_sigactions
ro_leader_code_end:
    .popsection
    .purgem ro_call
    .purgem ro_zero_args
    .purgem ro_ask_thread_knobs
    .purgem ro_ask_task_knobs
    .purgem ro_ask_sigactions
)");
extern "C" const char ro_sigaction_code[], ro_sigaction_code_end[], ro_thread_knobs_code[], ro_thread_knobs_code_end[];
extern "C" const char ro_task_knobs_code[], ro_task_knobs_code_end[], ro_leader_code[], ro_leader_code_end[];

namespace ro::sys {
namespace {

constexpr long kPrGetMemoryMerge = 68;  // linux/prctl.h of 6.4

// The numbers the code above spells out.
static_assert(SYS_sigaltstack == 131 && SYS_prctl == 157 && SYS_getitimer == 36 && SYS_brk == 12 && SYS_rt_sigaction == 13);
static_assert(PR_GET_TID_ADDRESS == 40 && PR_GET_PDEATHSIG == 2 && PR_GET_SECUREBITS == 27 && PR_GET_TIMERSLACK == 30 &&
              PR_GET_TSC == 25 && PR_GET_DUMPABLE == 3 && PR_GET_CHILD_SUBREAPER == 37);

// The syscalls asked of a thread, then of a task, in the order the
// one-by-one paths make them (and errors are reported in); the index of
// each one's result in CodeAnswers::rval.
enum Ask : size_t {
  kSigaltstack, kTidAddress, kPdeathSig, kSecurebits, kTimerSlack, kTsc,  // the thread's
  kItimerReal, kItimerVirtual, kItimerProf, kBrk, kDumpable, kChildSubreaper, kMemoryMerge,  // the task's
  kAsks
};
constexpr const char* kAskNames[kAsks] = {
    "sigaltstack",          "prctl(PR_GET_TID_ADDRESS)", "prctl(PR_GET_PDEATHSIG)", "prctl(PR_GET_SECUREBITS)",
    "prctl(PR_GET_TIMERSLACK)", "prctl(PR_GET_TSC)",     "getitimer(0)",            "getitimer(1)",
    "getitimer(2)",         "brk(0)",                    "prctl(PR_GET_DUMPABLE)",  "prctl(PR_GET_CHILD_SUBREAPER)",
    "prctl(PR_GET_MEMORY_MERGE)"};

// The scratch area as the code leaves it (the RO_ANSWER_* layout).
struct CodeAnswers {
  std::array<KernelSigaction, 65> sigactions;  // by signal number
  std::array<int64_t, kAsks> rval;             // raw results, -errno when it failed
  uint64_t ss_sp;                              // stack_t
  uint32_t ss_flags, ss_pad;
  uint64_t ss_size;
  uint64_t clear_tid_addr;
  uint32_t pdeath_sig, pdeath_pad;
  uint32_t tsc_mode, tsc_pad;
  std::array<std::array<uint64_t, 4>, 3> itimers;  // struct itimerval
  uint32_t child_subreaper, subreaper_pad;
};
static_assert(offsetof(CodeAnswers, rval) == RO_ANSWER_RVAL && offsetof(CodeAnswers, ss_sp) == RO_ANSWER_SS &&
              offsetof(CodeAnswers, clear_tid_addr) == RO_ANSWER_TID && offsetof(CodeAnswers, pdeath_sig) == RO_ANSWER_PDEATH &&
              offsetof(CodeAnswers, tsc_mode) == RO_ANSWER_TSC && offsetof(CodeAnswers, itimers) == RO_ANSWER_ITIMERS &&
              offsetof(CodeAnswers, child_subreaper) == RO_ANSWER_SUBREAPER && sizeof(CodeAnswers) == RO_ANSWER_END);
static_assert(sizeof(CodeAnswers) <= RemoteSyscalls::kCodeScratchBytes);

// Whether a raw result is a failure: an EINVAL of PR_GET_TSC (a CPU
// without TSC control) or PR_GET_MEMORY_MERGE (a kernel without KSM) is an
// answer.
bool Failed(Ask ask, long r) {
  if (r == -EINVAL && (ask == kTsc || ask == kMemoryMerge)) return false;
  return r < 0 && r > -4096;
}

Status Check(Ask ask, long r) {
  if (Failed(ask, r)) return SysError(std::string("injected ") + kAskNames[ask], static_cast<int>(-r));
  return {};
}

// The first of [first, last] that failed in the code's run.
Status CheckRun(const CodeAnswers& a, Ask first, Ask last) {
  for (size_t i = first; i <= last; ++i) RO_TRY(Check(static_cast<Ask>(i), a.rval[i]));
  return {};
}

// ro_ask_sigactions' end: ebx the signal whose rt_sigaction failed.
Status CheckSigactionRun(const user_regs_struct& end) {
  if (end.rbx == 0) return {};
  return SysError("injected rt_sigaction(" + std::to_string(end.rbx) + ")", static_cast<int>(-static_cast<long>(end.rax)));
}

ThreadKnobs ThreadKnobsOf(const CodeAnswers& a) {
  ThreadKnobs k;
  k.ss_sp = a.ss_sp;
  k.ss_flags = a.ss_flags;
  k.ss_size = a.ss_size;
  k.clear_tid_addr = a.clear_tid_addr;
  k.pdeath_sig = static_cast<int>(a.pdeath_sig);
  k.securebits = static_cast<int>(a.rval[kSecurebits]);
  k.timer_slack = static_cast<uint64_t>(a.rval[kTimerSlack]);
  if (a.rval[kTsc] == 0) k.tsc_mode = static_cast<int>(a.tsc_mode);
  return k;
}

TaskKnobs TaskKnobsOf(const CodeAnswers& a) {
  TaskKnobs k;
  for (size_t i = 0; i < 3; ++i) k.itimers[i] = {a.itimers[i][0], a.itimers[i][1], a.itimers[i][2], a.itimers[i][3]};
  k.brk = static_cast<uint64_t>(a.rval[kBrk]);
  k.dumpable = static_cast<int>(a.rval[kDumpable]);
  k.child_subreaper = a.child_subreaper != 0;
  k.memory_merge = a.rval[kMemoryMerge] != -EINVAL && a.rval[kMemoryMerge] != 0;
  return k;
}

std::array<KernelSigaction, 65> SigactionsOf(const CodeAnswers& a) {
  std::array<KernelSigaction, 65> out = a.sigactions;
  out[0] = out[SIGKILL] = out[SIGSTOP] = {};  // never asked: what the stack held
  return out;
}

// What the code between `begin` and `end` left: its registers at the end
// and the scratch area. nullopt when the task cannot map code.
struct Run {
  user_regs_struct end;
  CodeAnswers answers;
};
Result<std::optional<Run>> RunAsk(RemoteSyscalls& task, const char* begin, const char* end) {
  RO_ASSIGN_OR_RETURN(std::optional<user_regs_struct> regs, task.RunCode({begin, end}));
  if (!regs) return std::optional<Run>{};
  std::optional<Run> run(Run{*regs, {}});
  RO_ASSIGN_OR_RETURN(std::string bytes, task.ReadScratch(sizeof(CodeAnswers)));
  if (bytes.size() != sizeof(CodeAnswers)) return Fail("task " + std::to_string(task.pid()) + ": scratch area read short");
  std::memcpy(&run->answers, bytes.data(), sizeof(CodeAnswers));
  return run;
}

using Words = std::array<uint64_t, 4>;

// One syscall; `ask` names it in errors.
Result<long> Call(RemoteSyscalls& task, long nr, std::array<uint64_t, 6> args, Ask ask) {
  RO_ASSIGN_OR_RETURN(long r, task.Call(nr, args));
  RO_TRY(Check(ask, r));
  return r;
}

// One that writes a structure of `len` bytes at the scratch area (its
// address is args[at]).
Result<Words> Ask(RemoteSyscalls& task, long nr, std::array<uint64_t, 6> args, size_t at, size_t len, const std::string& what) {
  RO_ASSIGN_OR_RETURN(uint64_t scratch, task.Scratch());
  args[at] = scratch;
  RO_ASSIGN_OR_RETURN(long r, task.Call(nr, args));
  if (r < 0 && r > -4096) return SysError("injected " + what, static_cast<int>(-r));
  RO_ASSIGN_OR_RETURN(std::string bytes, task.ReadScratch(len));
  Words w{};
  std::memcpy(w.data(), bytes.data(), std::min(bytes.size(), sizeof(w)));
  return w;
}

}  // namespace

Result<std::array<KernelSigaction, 65>> AskSigactions(RemoteSyscalls& task) {
  RO_ASSIGN_OR_RETURN(std::optional<Run> run, RunAsk(task, ro_sigaction_code, ro_sigaction_code_end));
  if (!run) return AskSigactionsOneByOne(task);  // the task may not map code
  RO_TRY(CheckSigactionRun(run->end));
  return SigactionsOf(run->answers);
}

Result<std::array<KernelSigaction, 65>> AskSigactionsOneByOne(RemoteSyscalls& task) {
  std::array<KernelSigaction, 65> out{};
  for (int sig = 1; sig <= 64; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    RO_ASSIGN_OR_RETURN(Words sa, Ask(task, SYS_rt_sigaction, {static_cast<uint64_t>(sig), 0, 0, 8, 0, 0}, 2, 32,
                                      "rt_sigaction(" + std::to_string(sig) + ")"));
    out[static_cast<size_t>(sig)] = {sa[0], sa[1], sa[2], sa[3]};
  }
  return out;
}

Result<bool> AskChildSubreaper(RemoteSyscalls& task) {
  RO_ASSIGN_OR_RETURN(Words w, Ask(task, SYS_prctl, {PR_GET_CHILD_SUBREAPER, 0, 0, 0, 0, 0}, 1, 4, kAskNames[kChildSubreaper]));
  return static_cast<uint32_t>(w[0]) != 0;
}

Result<bool> AskMemoryMerge(RemoteSyscalls& task) {
  RO_ASSIGN_OR_RETURN(long r, Call(task, SYS_prctl, {kPrGetMemoryMerge, 0, 0, 0, 0, 0}, kMemoryMerge));
  return r != -EINVAL && r != 0;  // EINVAL: a kernel without KSM (or without the prctl)
}

Result<ThreadKnobs> AskThreadKnobs(RemoteSyscalls& thread) {
  RO_ASSIGN_OR_RETURN(std::optional<Run> run, RunAsk(thread, ro_thread_knobs_code, ro_thread_knobs_code_end));
  if (!run) return AskThreadKnobsOneByOne(thread);  // the task may not map code
  RO_TRY(CheckRun(run->answers, kSigaltstack, kTsc));
  return ThreadKnobsOf(run->answers);
}

Result<ThreadKnobs> AskThreadKnobsOneByOne(RemoteSyscalls& thread) {
  ThreadKnobs k;
  // stack_t: ss_sp, ss_flags (int), ss_size.
  RO_ASSIGN_OR_RETURN(Words ss, Ask(thread, SYS_sigaltstack, {0, 0, 0, 0, 0, 0}, 1, 24, kAskNames[kSigaltstack]));
  k.ss_sp = ss[0];
  k.ss_flags = static_cast<uint32_t>(ss[1]);
  k.ss_size = ss[2];
  RO_ASSIGN_OR_RETURN(Words tid, Ask(thread, SYS_prctl, {PR_GET_TID_ADDRESS, 0, 0, 0, 0, 0}, 1, 8, kAskNames[kTidAddress]));
  k.clear_tid_addr = tid[0];
  RO_ASSIGN_OR_RETURN(Words pdeath, Ask(thread, SYS_prctl, {PR_GET_PDEATHSIG, 0, 0, 0, 0, 0}, 1, 4, kAskNames[kPdeathSig]));
  k.pdeath_sig = static_cast<int>(static_cast<uint32_t>(pdeath[0]));
  RO_ASSIGN_OR_RETURN(long secbits, Call(thread, SYS_prctl, {PR_GET_SECUREBITS, 0, 0, 0, 0, 0}, kSecurebits));
  k.securebits = static_cast<int>(secbits);
  RO_ASSIGN_OR_RETURN(long slack, Call(thread, SYS_prctl, {PR_GET_TIMERSLACK, 0, 0, 0, 0, 0}, kTimerSlack));
  k.timer_slack = static_cast<uint64_t>(slack);
  // PR_GET_TSC fails with EINVAL where the CPU cannot trap RDTSC.
  RO_ASSIGN_OR_RETURN(uint64_t scratch, thread.Scratch());
  RO_TRY(thread.WriteScratch(std::string(4, '\0')));
  RO_ASSIGN_OR_RETURN(long tsc, Call(thread, SYS_prctl, {PR_GET_TSC, scratch, 0, 0, 0, 0}, kTsc));
  if (tsc == 0) {
    RO_ASSIGN_OR_RETURN(std::string mode, thread.ReadScratch(4));
    uint32_t m = 0;
    std::memcpy(&m, mode.data(), sizeof(m));
    k.tsc_mode = static_cast<int>(m);
  }
  return k;
}

Result<TaskKnobs> AskTaskKnobs(RemoteSyscalls& task) {
  RO_ASSIGN_OR_RETURN(std::optional<Run> run, RunAsk(task, ro_task_knobs_code, ro_task_knobs_code_end));
  if (!run) return AskTaskKnobsOneByOne(task);  // the task may not map code
  RO_TRY(CheckRun(run->answers, kItimerReal, kMemoryMerge));
  return TaskKnobsOf(run->answers);
}

Result<TaskKnobs> AskTaskKnobsOneByOne(RemoteSyscalls& task) {
  TaskKnobs k;
  for (size_t which = 0; which < 3; ++which) {
    // struct itimerval: it_interval {sec, usec}, it_value {sec, usec}.
    RO_ASSIGN_OR_RETURN(Words it, Ask(task, SYS_getitimer, {which, 0, 0, 0, 0, 0}, 1, 32, kAskNames[kItimerReal + which]));
    k.itimers[which] = {it[0], it[1], it[2], it[3]};
  }
  RO_ASSIGN_OR_RETURN(long brk, Call(task, SYS_brk, {0, 0, 0, 0, 0, 0}, kBrk));
  k.brk = static_cast<uint64_t>(brk);
  RO_ASSIGN_OR_RETURN(long dumpable, Call(task, SYS_prctl, {PR_GET_DUMPABLE, 0, 0, 0, 0, 0}, kDumpable));
  k.dumpable = static_cast<int>(dumpable);
  RO_ASSIGN_OR_RETURN(k.child_subreaper, AskChildSubreaper(task));
  RO_ASSIGN_OR_RETURN(k.memory_merge, AskMemoryMerge(task));
  return k;
}

Result<LeaderAnswers> AskLeader(RemoteSyscalls& task) {
  LeaderAnswers out;
  RO_ASSIGN_OR_RETURN(std::optional<Run> run, RunAsk(task, ro_leader_code, ro_leader_code_end));
  if (!run) {  // the task may not map code: its mmap was refused once, no need to try again
    RO_ASSIGN_OR_RETURN(out.thread, AskThreadKnobsOneByOne(task));
    RO_ASSIGN_OR_RETURN(out.sigactions, AskSigactionsOneByOne(task));
    RO_ASSIGN_OR_RETURN(out.task, AskTaskKnobsOneByOne(task));
    return out;
  }
  RO_TRY(CheckRun(run->answers, kSigaltstack, kTsc));
  RO_TRY(CheckSigactionRun(run->end));
  RO_TRY(CheckRun(run->answers, kItimerReal, kMemoryMerge));
  out.thread = ThreadKnobsOf(run->answers);
  out.sigactions = SigactionsOf(run->answers);
  out.task = TaskKnobsOf(run->answers);
  return out;
}

}  // namespace ro::sys
