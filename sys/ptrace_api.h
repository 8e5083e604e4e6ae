// ptrace(2) for freezing a tree and reading (or, at restore, setting) a
// stopped task's state: seize, interrupt, wait for the stop, detach;
// registers, XSAVE state, signal mask, queued signals, TLS slots, rseq,
// seccomp filters; and syscalls injected into the task's own context.
// x86_64 only.
#pragma once

#include <asm/ldt.h>
#include <sys/types.h>
#include <sys/user.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sys/proc_mm.h"
#include "sys/status.h"

namespace ro::sys {

// PTRACE_SEIZE without options: the task keeps running until interrupted,
// and if the tracer dies the kernel detaches it (nothing is killed).
Status PtraceSeize(pid_t pid);

// How a seized task stopped after PTRACE_INTERRUPT.
struct PtraceStop {
  bool exited = false;  // it exited (or was killed) instead of stopping
  int pending_signal = 0;  // stopped to receive this signal: hand it back on detach
  int group_stop = 0;      // in a group stop (job control) by this signal
};

// PTRACE_INTERRUPT, then waits (only for this pid) until it is in a ptrace
// stop or gone, or `timeout_ms` passed (ETIMEDOUT: a task in an
// uninterruptible wait stops only once the wait ends).
Result<PtraceStop> PtraceInterruptAndWait(pid_t pid, int timeout_ms);

// PTRACE_CONT, delivering `signal` (0 for none).
Status PtraceCont(pid_t pid, int signal);

// PTRACE_DETACH, delivering `signal` (0 for none) as it resumes.
Status PtraceDetach(pid_t pid, int signal);

// The `index`th seccomp filter of a stopped tracee (0 = the oldest) as a
// struct sock_filter array, and its SECCOMP_FILTER_FLAG_* flags. ENOENT
// past the last one.
struct SeccompFilter {
  std::string program;
  uint64_t flags = 0;
};
Result<SeccompFilter> PtraceSeccompFilter(pid_t pid, unsigned long index);

// The general registers of a stopped tracee (PTRACE_GETREGSET NT_PRSTATUS,
// fs_base and gs_base included). A 32-bit task, whose set is smaller, is an
// error (EINVAL) saying so.
Result<user_regs_struct> PtraceGetRegs(pid_t pid);
Status PtraceSetRegs(pid_t pid, const user_regs_struct& regs);

// The FPU/vector state as PTRACE_GETREGSET NT_X86_XSTATE hands it out: the
// XSAVE area in the standard format, as long as the kernel's user xstate
// size (images/x86_fpu.h converts it to and from the images).
Result<std::string> PtraceGetXstate(pid_t pid);
// Loads such a buffer (PTRACE_SETREGSET NT_X86_XSTATE); the kernel checks
// its header (EINVAL for features it does not enable).
Status PtraceSetXstate(pid_t pid, std::string_view xstate);

// The blocked signals, bit n-1 for signal n (PTRACE_GETSIGMASK: the mask a
// sigsuspend/ppoll in progress will restore, not its temporary one).
Result<uint64_t> PtraceGetSigmask(pid_t pid);
// PTRACE_SETSIGMASK (SIGKILL and SIGSTOP are never blocked). It also drops
// the temporary mask of a sigsuspend/ppoll in progress, which is re-issued
// with its own argument when it restarts.
Status PtraceSetSigmask(pid_t pid, uint64_t mask);

// Every siginfo queued for the thread (shared: for the whole thread group),
// oldest first, each as the kernel's 128-byte siginfo_t (PTRACE_PEEKSIGINFO).
Result<std::vector<std::string>> PtracePeekSiginfo(pid_t pid, bool shared);

// The GDT TLS slot `index` (12..14 on x86_64) as set_thread_area(2) sees it.
Result<user_desc> PtraceGetThreadArea(pid_t pid, int index);

// The thread's rseq(2) registration (PTRACE_GET_RSEQ_CONFIGURATION);
// all zero when it has none.
struct RseqConfig {
  uint64_t abi_pointer = 0;
  uint32_t abi_size = 0;
  uint32_t signature = 0;
  uint32_t flags = 0;
};
Result<RseqConfig> PtraceGetRseqConfig(pid_t pid);

// PTRACE_SETOPTIONS (PTRACE_O_*).
Status PtraceSetOptions(pid_t pid, unsigned long options);

// Syscalls run by a stopped tracee in its own context, at the address of a
// `syscall` instruction already in its memory (its [vdso] has some), for
// what only the task itself can ask the kernel: its signal handlers, its
// sigaltstack, its itimers, prctl values, its break. Many of them at once
// can run as a short piece of machine code (RunCode) for the price of one
// stop instead of two each. Between Begin() and End() the task runs
// nothing but those syscalls and that code: every signal is blocked (those
// that arrive stay queued), and End() puts back its registers, its mask,
// its address space and every byte it touched, and leaves it in a ptrace
// stop from which it resumes exactly as it would have (a syscall it was
// interrupted in restarts as before). The task must be in a ptrace stop of
// this tracer, as the dump's freeze leaves it.
class RemoteSyscalls {
 public:
  // Room for 65 structures of 32 bytes (every signal's sigaction, indexed
  // by its number), 256 bytes of other answers (sys/remote_attrs.cc) and
  // the 32 bytes RunCode keeps for itself: some 2.3 KiB below the stack
  // pointer, saved and put back, which most stacks have; a page mapped for
  // it where the stack has not (see Scratch()).
  static constexpr size_t kScratchBytes = 2368;
  // What code run by RunCode may use of the scratch area: its first bytes.
  static constexpr size_t kCodeScratchBytes = kScratchBytes - 32;
  // The longest code RunCode runs (one page with its own prologue and
  // final int3).
  static constexpr size_t kMaxCodeBytes = 4000;

  // Saves the task's registers and signal mask and blocks every signal.
  // With `suspend_seccomp` the task's seccomp filters do not see the
  // injected syscalls (PTRACE_O_SUSPEND_SECCOMP: CAP_SYS_ADMIN).
  static Result<RemoteSyscalls> Begin(pid_t pid, uint64_t syscall_insn_addr, bool suspend_seccomp);

  RemoteSyscalls(RemoteSyscalls&& other) noexcept;
  RemoteSyscalls& operator=(RemoteSyscalls&&) = delete;
  RemoteSyscalls(const RemoteSyscalls&) = delete;
  ~RemoteSyscalls();

  // Runs syscall `nr` with `args` (rdi, rsi, rdx, r10, r8, r9; orig_ax -1,
  // so the kernel applies no restart logic) up to its syscall-exit stop,
  // and returns its raw result (-errno when it failed). An error means
  // ptrace failed or the task stopped elsewhere (a signal it could not
  // block, its death).
  Result<long> Call(long nr, const std::array<uint64_t, 6>& args);

  // The address of a scratch area of kScratchBytes in the task, for
  // results that are structures: below its stack's red zone (sp - 128 -
  // kScratchBytes, 64-byte aligned) when all of that is memory the task can
  // read and write; its bytes are saved (process_vm_readv) the first time
  // and written back by End(). Otherwise (a small stack above a guard page
  // or unmapped memory) a page mapped in the task by an injected mmap,
  // zeros at first, unmapped by End(). Errors: ptrace failed, or neither
  // is there (the mmap refused: RLIMIT_AS, no memory), with its errno.
  Result<uint64_t> Scratch();
  // The first `len` bytes of the scratch area, as the last syscall left them.
  Result<std::string> ReadScratch(size_t len);
  // Sets the first bytes of the scratch area (for syscalls that read a
  // structure).
  Status WriteScratch(std::string_view bytes);

  // Runs `code`, position-independent x86_64 code that ends by falling
  // off its last byte, in the task: placed in a page of its own (an
  // injected mmap(PROT_READ|PROT_EXEC, MAP_PRIVATE|MAP_ANONYMOUS), written
  // through /proc/PID/mem), entered with the registers as at Begin() but
  // rip at the code and rdi at the scratch area (Scratch()), run with
  // PTRACE_CONT up to the int3 that follows it, whose SIGTRAP is not
  // delivered. The page is unmapped (injected munmap) before this returns,
  // or by End() when something failed in between. Returns the registers at
  // the code's end; its results are what it left there and in the first
  // kCodeScratchBytes of the scratch area (ReadScratch). nullopt, with the
  // task as before, when the task could not map or write the page (RLIMIT_AS,
  // an LSM's rule against executable anonymous memory, proc_mem's
  // force_override): then the same syscalls have to be made with Call().
  // The code must not fault (the kernel forces a blocked fault signal on
  // the task, resetting that signal's disposition to SIG_DFL), must not
  // change SIGTRAP's disposition (the int3's SIGTRAP resets it, and RunCode
  // puts back what it was before), must end (nothing times out), and may
  // use any register but rsp and the stack. Errors: ptrace failed, the
  // task died (ESRCH) or stopped other than at the code's end.
  Result<std::optional<user_regs_struct>> RunCode(std::string_view code);

  // Ptrace stops the task has gone through since Begin(): two for each
  // Call(), one for a RunCode() besides its mmap and munmap.
  int stops() const { return stops_; }

  // Puts everything back (registers, mask, scratch bytes, options) and
  // returns the task to an interrupt stop (PTRACE_EVENT_STOP). Runs once:
  // later calls and the destructor do nothing. The first failure is
  // returned after every step has been tried.
  Status End();

  pid_t pid() const { return pid_; }
  // The registers and mask as they were at Begin().
  const user_regs_struct& saved_regs() const { return saved_regs_; }

 private:
  RemoteSyscalls() = default;
  Result<long> Syscall(long nr, const std::array<uint64_t, 6>& args);
  Status Step(int expected_op, long& rval);
  Status WaitForCodeEnd(uint64_t end);
  Status RemoveCode();
  Status BackToInterruptStop();

  pid_t pid_ = 0;
  uint64_t insn_ = 0;
  user_regs_struct saved_regs_{};
  uint64_t saved_mask_ = 0;
  bool active_ = false;       // End() has something to put back
  bool moved_ = false;        // the task left its original stop
  bool options_set_ = false;
  bool at_entry_ = false;     // in a syscall-entry stop (its exit not reached yet)
  int stray_signal_ = 0;      // an unblockable signal that stopped it: delivered by End()
  uint64_t scratch_ = 0;      // 0 until saved
  std::string scratch_saved_;
  bool scratch_page_ = false;  // scratch_ is a page Scratch() mapped: End() unmaps it
  uint64_t code_ = 0;         // the page RunCode mapped, 0 when there is none
  bool trap_reset_ = false;   // the code's int3 reset SIGTRAP's disposition: put back from the scratch area
  int stops_ = 0;
};

// The address of a `syscall` instruction (0f 05) in a task's memory, for
// RemoteSyscalls: in its [vdso] (the fallback of its clock functions has
// one), else in its other executable mappings (the first MiB of each).
// `vmas` as sys::ReadVmas gives them; the second form reads them.
Result<uint64_t> FindSyscallInsn(pid_t pid, const std::vector<Vma>& vmas);
Result<uint64_t> FindSyscallInsn(pid_t pid);

// One syscall through RemoteSyscalls: Begin, Call, End (seccomp suspended
// when the task has filters). The raw result, -errno when it failed.
Result<long> PtraceInjectSyscall(pid_t pid, uint64_t syscall_insn_addr, long nr, std::array<uint64_t, 6> args);

}  // namespace ro::sys
