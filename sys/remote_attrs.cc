#include "sys/remote_attrs.h"

#include <linux/prctl.h>
#include <signal.h>
#include <sys/syscall.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>

// What AskSigactions runs in the task (RemoteSyscalls::RunCode):
// rt_sigaction(sig, NULL, scratch + sig * 32, 8) for every signal but
// SIGKILL and SIGSTOP, up to the first that fails. In: rdi the scratch
// area. Out: ebx 0 when every call succeeded, else the signal whose call
// failed, and rax its result.
asm(R"(
    .pushsection .rodata.ro_sigaction_code, "a"
    .globl ro_sigaction_code, ro_sigaction_code_end
    .hidden ro_sigaction_code, ro_sigaction_code_end
ro_sigaction_code:
    mov   %rdi, %r12         # the scratch area
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
    syscall                  # (keeps every register but rax, rcx, r11)
    test  %rax, %rax
    js    3f                 # failed: ebx says for which signal
2:  inc   %ebx
    cmp   $64, %ebx
    jbe   1b
    xor   %ebx, %ebx         # all asked
3:
ro_sigaction_code_end:
    .popsection
)");
extern "C" const char ro_sigaction_code[], ro_sigaction_code_end[];

namespace ro::sys {
namespace {

constexpr long kPrGetMemoryMerge = 68;  // linux/prctl.h of 6.4

using Words = std::array<uint64_t, 4>;

// A syscall that must succeed; `what` names it in errors.
Result<long> Call(RemoteSyscalls& task, long nr, std::array<uint64_t, 6> args, const std::string& what) {
  RO_ASSIGN_OR_RETURN(long r, task.Call(nr, args));
  if (r < 0 && r > -4096) return SysError("injected " + what, static_cast<int>(-r));
  return r;
}

// One that writes a structure of `len` bytes at the scratch area (its
// address is args[at]).
Result<Words> Ask(RemoteSyscalls& task, long nr, std::array<uint64_t, 6> args, size_t at, size_t len, const std::string& what) {
  RO_ASSIGN_OR_RETURN(uint64_t scratch, task.Scratch());
  args[at] = scratch;
  RO_TRY(Call(task, nr, args, what));
  RO_ASSIGN_OR_RETURN(std::string bytes, task.ReadScratch(len));
  Words w{};
  std::memcpy(w.data(), bytes.data(), std::min(bytes.size(), sizeof(w)));
  return w;
}

}  // namespace

Result<std::array<KernelSigaction, 65>> AskSigactions(RemoteSyscalls& task) {
  static_assert(65 * sizeof(KernelSigaction) <= RemoteSyscalls::kCodeScratchBytes);
  RO_ASSIGN_OR_RETURN(std::optional<user_regs_struct> end, task.RunCode({ro_sigaction_code, ro_sigaction_code_end}));
  if (!end) return AskSigactionsOneByOne(task);  // the task may not map code
  if (end->rbx != 0) {
    return SysError("injected rt_sigaction(" + std::to_string(end->rbx) + ")", static_cast<int>(-static_cast<long>(end->rax)));
  }
  RO_ASSIGN_OR_RETURN(std::string bytes, task.ReadScratch(65 * sizeof(KernelSigaction)));
  std::array<KernelSigaction, 65> out{};
  for (int sig = 1; sig <= 64; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    // struct kernel_sigaction: handler, flags, restorer, mask (8 bytes).
    std::memcpy(&out[static_cast<size_t>(sig)], bytes.data() + sig * sizeof(KernelSigaction), sizeof(KernelSigaction));
  }
  return out;
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
  RO_ASSIGN_OR_RETURN(Words w, Ask(task, SYS_prctl, {PR_GET_CHILD_SUBREAPER, 0, 0, 0, 0, 0}, 1, 4, "prctl(PR_GET_CHILD_SUBREAPER)"));
  return static_cast<uint32_t>(w[0]) != 0;
}

Result<bool> AskMemoryMerge(RemoteSyscalls& task) {
  RO_ASSIGN_OR_RETURN(long r, task.Call(SYS_prctl, {kPrGetMemoryMerge, 0, 0, 0, 0, 0}));
  if (r == -EINVAL) return false;  // a kernel without KSM (or without the prctl)
  if (r < 0 && r > -4096) return SysError("injected prctl(PR_GET_MEMORY_MERGE)", static_cast<int>(-r));
  return r != 0;
}

Result<ThreadKnobs> AskThreadKnobs(RemoteSyscalls& thread) {
  ThreadKnobs k;
  // stack_t: ss_sp, ss_flags (int), ss_size.
  RO_ASSIGN_OR_RETURN(Words ss, Ask(thread, SYS_sigaltstack, {0, 0, 0, 0, 0, 0}, 1, 24, "sigaltstack"));
  k.ss_sp = ss[0];
  k.ss_flags = static_cast<uint32_t>(ss[1]);
  k.ss_size = ss[2];
  RO_ASSIGN_OR_RETURN(Words tid, Ask(thread, SYS_prctl, {PR_GET_TID_ADDRESS, 0, 0, 0, 0, 0}, 1, 8, "prctl(PR_GET_TID_ADDRESS)"));
  k.clear_tid_addr = tid[0];
  RO_ASSIGN_OR_RETURN(Words pdeath, Ask(thread, SYS_prctl, {PR_GET_PDEATHSIG, 0, 0, 0, 0, 0}, 1, 4, "prctl(PR_GET_PDEATHSIG)"));
  k.pdeath_sig = static_cast<int>(static_cast<uint32_t>(pdeath[0]));
  RO_ASSIGN_OR_RETURN(long secbits, Call(thread, SYS_prctl, {PR_GET_SECUREBITS, 0, 0, 0, 0, 0}, "prctl(PR_GET_SECUREBITS)"));
  k.securebits = static_cast<int>(secbits);
  RO_ASSIGN_OR_RETURN(long slack, Call(thread, SYS_prctl, {PR_GET_TIMERSLACK, 0, 0, 0, 0, 0}, "prctl(PR_GET_TIMERSLACK)"));
  k.timer_slack = static_cast<uint64_t>(slack);
  // PR_GET_TSC fails with EINVAL where the CPU cannot trap RDTSC.
  RO_ASSIGN_OR_RETURN(uint64_t scratch, thread.Scratch());
  RO_TRY(thread.WriteScratch(std::string(4, '\0')));
  RO_ASSIGN_OR_RETURN(long tsc, thread.Call(SYS_prctl, {PR_GET_TSC, scratch, 0, 0, 0, 0}));
  if (tsc < 0 && tsc != -EINVAL) return SysError("injected prctl(PR_GET_TSC)", static_cast<int>(-tsc));
  if (tsc == 0) {
    RO_ASSIGN_OR_RETURN(std::string mode, thread.ReadScratch(4));
    uint32_t m = 0;
    std::memcpy(&m, mode.data(), sizeof(m));
    k.tsc_mode = static_cast<int>(m);
  }
  return k;
}

}  // namespace ro::sys
