#include "sys/ptrace_api.h"

#include <elf.h>
#include <linux/filter.h>
#include <linux/ptrace.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>

// glibc's <sys/ptrace.h> clashes with <linux/ptrace.h>; the raw syscall
// needs neither's prototypes.
#include <sys/syscall.h>
#include <unistd.h>

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

#include "sys/proc.h"
#include "sys/remote_mem.h"

// RunCode's page: this prologue, the caller's code, an int3. The int3's
// SIGTRAP is forced on a task whose signals are all blocked, and the
// kernel then resets the signal's disposition to SIG_DFL
// (force_sig_info_to_task), so SIGTRAP's is saved first, for RunCode to
// put back. In: rdi the scratch area (passed on to the code), rsi where
// the 32 bytes of SIGTRAP's sigaction go.
asm(R"(
    .pushsection .rodata.ro_run_code_prologue, "a"
    .globl ro_run_code_prologue, ro_run_code_prologue_end
    .hidden ro_run_code_prologue, ro_run_code_prologue_end
ro_run_code_prologue:
    mov   %rdi, %r8          # the scratch area, for the code
    mov   %rsi, %rdx         # oact
    mov   $5, %edi           # SIGTRAP
    xor   %esi, %esi         # act: NULL, only asked
    mov   $8, %r10d          # sizeof(sigset_t)
    mov   $13, %eax          # __NR_rt_sigaction
    syscall
    mov   %r8, %rdi
ro_run_code_prologue_end:
    .popsection
)");
extern "C" const char ro_run_code_prologue[], ro_run_code_prologue_end[];

namespace ro::sys {
namespace {

long Ptrace(long request, pid_t pid, unsigned long addr, unsigned long data) {
  return ::syscall(SYS_ptrace, request, pid, addr, data);
}

std::string Num(long v) { return std::to_string(v); }

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%#llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string Req(const char* request, pid_t pid) { return std::string("ptrace(") + request + ", " + Num(pid) + ")"; }

// Generous for every XSAVE area (AMX included): the kernel shortens the
// iovec to its own size.
constexpr size_t kMaxXstate = 64 * 1024;

constexpr uint64_t kCodePage = 4096;
// Scratch()'s own page, when the stack has no room.
constexpr uint64_t kScratchPage = 4096;
static_assert(kScratchPage >= ro::sys::RemoteSyscalls::kScratchBytes);
// The x86_64 ABI's red zone below the stack pointer, which leaf functions
// use without moving it.
constexpr uint64_t kRedZone = 128;
constexpr char kInt3 = '\xcc';

}  // namespace

Status PtraceSeize(pid_t pid) {
  if (Ptrace(PTRACE_SEIZE, pid, 0, 0) != 0) return SysError("ptrace(PTRACE_SEIZE, " + Num(pid) + ")");
  return {};
}

Result<PtraceStop> PtraceInterruptAndWait(pid_t pid, int timeout_ms) {
  if (Ptrace(PTRACE_INTERRUPT, pid, 0, 0) != 0) return SysError("ptrace(PTRACE_INTERRUPT, " + Num(pid) + ")");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (int polls = 0;; ++polls) {
    int status = 0;
    pid_t got = ::waitpid(pid, &status, __WALL | WNOHANG);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return SysError("waitpid(" + Num(pid) + ")");
    if (got == 0) {
      if (std::chrono::steady_clock::now() >= deadline) {
        return SysError("waiting for task " + Num(pid) + " to stop", ETIMEDOUT);
      }
      // Most tasks stop within microseconds; a busy one within a tick.
      if (polls < 64) {
        ::sched_yield();
      } else {
        ::usleep(200);
      }
      continue;
    }
    PtraceStop stop;
    if (WIFEXITED(status) || WIFSIGNALED(status)) {
      stop.exited = true;
      return stop;
    }
    if (!WIFSTOPPED(status)) continue;
    int event = status >> 16;
    int sig = WSTOPSIG(status);
    // PTRACE_EVENT_STOP is the interrupt (or a group stop); anything else
    // is a signal on its way in: keep it for the detach.
    if (event != PTRACE_EVENT_STOP) stop.pending_signal = sig;
    if (event == PTRACE_EVENT_STOP && sig != SIGTRAP) stop.group_stop = sig;
    return stop;
  }
}

Status PtraceCont(pid_t pid, int signal) {
  if (Ptrace(PTRACE_CONT, pid, 0, static_cast<unsigned long>(signal)) != 0) return SysError(Req("PTRACE_CONT", pid));
  return {};
}

Status PtraceDetach(pid_t pid, int signal) {
  if (Ptrace(PTRACE_DETACH, pid, 0, static_cast<unsigned long>(signal)) != 0) {
    return SysError("ptrace(PTRACE_DETACH, " + Num(pid) + ")");
  }
  return {};
}

Result<SeccompFilter> PtraceSeccompFilter(pid_t pid, unsigned long index) {
  long count = Ptrace(PTRACE_SECCOMP_GET_FILTER, pid, index, 0);
  if (count < 0) return SysError("ptrace(PTRACE_SECCOMP_GET_FILTER, " + Num(pid) + ", " + Num(static_cast<long>(index)) + ")");
  std::vector<sock_filter> program(static_cast<size_t>(count));
  if (Ptrace(PTRACE_SECCOMP_GET_FILTER, pid, index, reinterpret_cast<unsigned long>(program.data())) != count) {
    return SysError("ptrace(PTRACE_SECCOMP_GET_FILTER, " + Num(pid) + ", " + Num(static_cast<long>(index)) + ") changed size");
  }
  SeccompFilter out;
  out.program.assign(reinterpret_cast<const char*>(program.data()), program.size() * sizeof(sock_filter));
  seccomp_metadata meta{};
  meta.filter_off = index;
  if (Ptrace(PTRACE_SECCOMP_GET_METADATA, pid, sizeof(meta), reinterpret_cast<unsigned long>(&meta)) < 0) {
    return SysError("ptrace(PTRACE_SECCOMP_GET_METADATA, " + Num(pid) + ")");
  }
  out.flags = meta.flags;
  return out;
}

Result<user_regs_struct> PtraceGetRegs(pid_t pid) {
  user_regs_struct regs{};
  iovec iov{&regs, sizeof(regs)};
  if (Ptrace(PTRACE_GETREGSET, pid, NT_PRSTATUS, reinterpret_cast<unsigned long>(&iov)) != 0) {
    return SysError(Req("PTRACE_GETREGSET NT_PRSTATUS", pid));
  }
  if (iov.iov_len != sizeof(regs)) {
    return SysError("task " + Num(pid) + " is a 32-bit task (its registers are " + Num(static_cast<long>(iov.iov_len)) + " bytes)", EINVAL);
  }
  return regs;
}

Status PtraceSetRegs(pid_t pid, const user_regs_struct& regs) {
  iovec iov{const_cast<user_regs_struct*>(&regs), sizeof(regs)};
  if (Ptrace(PTRACE_SETREGSET, pid, NT_PRSTATUS, reinterpret_cast<unsigned long>(&iov)) != 0) {
    return SysError(Req("PTRACE_SETREGSET NT_PRSTATUS", pid));
  }
  return {};
}

Result<std::string> PtraceGetXstate(pid_t pid) {
  std::string buf(kMaxXstate, '\0');
  iovec iov{buf.data(), buf.size()};
  if (Ptrace(PTRACE_GETREGSET, pid, NT_X86_XSTATE, reinterpret_cast<unsigned long>(&iov)) != 0) {
    return SysError(Req("PTRACE_GETREGSET NT_X86_XSTATE", pid));
  }
  buf.resize(iov.iov_len);
  return buf;
}

Status PtraceSetXstate(pid_t pid, std::string_view xstate) {
  iovec iov{const_cast<char*>(xstate.data()), xstate.size()};
  if (Ptrace(PTRACE_SETREGSET, pid, NT_X86_XSTATE, reinterpret_cast<unsigned long>(&iov)) != 0) {
    return SysError(Req("PTRACE_SETREGSET NT_X86_XSTATE", pid) + " with " + Num(static_cast<long>(xstate.size())) + " bytes");
  }
  return {};
}

Result<uint64_t> PtraceGetSigmask(pid_t pid) {
  uint64_t mask = 0;
  if (Ptrace(PTRACE_GETSIGMASK, pid, sizeof(mask), reinterpret_cast<unsigned long>(&mask)) != 0) {
    return SysError(Req("PTRACE_GETSIGMASK", pid));
  }
  return mask;
}

Status PtraceSetSigmask(pid_t pid, uint64_t mask) {
  if (Ptrace(PTRACE_SETSIGMASK, pid, sizeof(mask), reinterpret_cast<unsigned long>(&mask)) != 0) {
    return SysError(Req("PTRACE_SETSIGMASK", pid));
  }
  return {};
}

Result<std::vector<std::string>> PtracePeekSiginfo(pid_t pid, bool shared) {
  constexpr int kBatch = 32;
  std::vector<std::string> out;
  siginfo_t batch[kBatch];
  for (;;) {
    ptrace_peeksiginfo_args args{};
    args.off = out.size();
    args.flags = shared ? PTRACE_PEEKSIGINFO_SHARED : 0;
    args.nr = kBatch;
    long n = Ptrace(PTRACE_PEEKSIGINFO, pid, reinterpret_cast<unsigned long>(&args), reinterpret_cast<unsigned long>(batch));
    if (n < 0) return SysError(Req(shared ? "PTRACE_PEEKSIGINFO shared" : "PTRACE_PEEKSIGINFO", pid));
    if (n == 0) return out;
    for (long i = 0; i < n; ++i) out.emplace_back(reinterpret_cast<const char*>(&batch[i]), sizeof(siginfo_t));
  }
}

Result<user_desc> PtraceGetThreadArea(pid_t pid, int index) {
  user_desc desc{};
  if (Ptrace(PTRACE_GET_THREAD_AREA, pid, static_cast<unsigned long>(index), reinterpret_cast<unsigned long>(&desc)) != 0) {
    return SysError(Req("PTRACE_GET_THREAD_AREA", pid) + " entry " + Num(index));
  }
  return desc;
}

Result<RseqConfig> PtraceGetRseqConfig(pid_t pid) {
  ptrace_rseq_configuration conf{};
  if (Ptrace(PTRACE_GET_RSEQ_CONFIGURATION, pid, sizeof(conf), reinterpret_cast<unsigned long>(&conf)) < 0) {
    return SysError(Req("PTRACE_GET_RSEQ_CONFIGURATION", pid));
  }
  return RseqConfig{conf.rseq_abi_pointer, conf.rseq_abi_size, conf.signature, conf.flags};
}

Status PtraceSetOptions(pid_t pid, unsigned long options) {
  if (Ptrace(PTRACE_SETOPTIONS, pid, 0, options) != 0) return SysError(Req("PTRACE_SETOPTIONS", pid) + " " + Num(static_cast<long>(options)));
  return {};
}

Result<RemoteSyscalls> RemoteSyscalls::Begin(pid_t pid, uint64_t syscall_insn_addr, bool suspend_seccomp) {
  RemoteSyscalls s;
  s.pid_ = pid;
  s.insn_ = syscall_insn_addr;
  RO_ASSIGN_OR_RETURN(s.saved_regs_, PtraceGetRegs(pid));
  RO_ASSIGN_OR_RETURN(s.saved_mask_, PtraceGetSigmask(pid));
  s.active_ = true;  // from here on, End() (or the destructor) puts things back
  // Nothing is delivered while the task runs our syscalls: what arrives
  // stays queued for when it runs its own code again.
  RO_TRY(PtraceSetSigmask(pid, ~uint64_t{0}));
  // TRACESYSGOOD marks syscall stops as such (PTRACE_GET_SYSCALL_INFO
  // tells entry from exit only then).
  s.options_set_ = true;
  RO_TRY(PtraceSetOptions(pid, PTRACE_O_TRACESYSGOOD | (suspend_seccomp ? PTRACE_O_SUSPEND_SECCOMP : 0)));
  return s;
}

RemoteSyscalls::RemoteSyscalls(RemoteSyscalls&& o) noexcept
    : pid_(o.pid_),
      insn_(o.insn_),
      saved_regs_(o.saved_regs_),
      saved_mask_(o.saved_mask_),
      active_(std::exchange(o.active_, false)),
      moved_(o.moved_),
      options_set_(o.options_set_),
      at_entry_(o.at_entry_),
      stray_signal_(o.stray_signal_),
      scratch_(o.scratch_),
      scratch_saved_(std::move(o.scratch_saved_)),
      scratch_page_(std::exchange(o.scratch_page_, false)),
      code_(std::exchange(o.code_, 0)),
      trap_reset_(std::exchange(o.trap_reset_, false)),
      stops_(o.stops_) {}

RemoteSyscalls::~RemoteSyscalls() { (void)End(); }

Status RemoteSyscalls::Step(int expected_op, long& rval) {
  if (Ptrace(PTRACE_SYSCALL, pid_, 0, 0) != 0) return SysError(Req("PTRACE_SYSCALL", pid_));
  int status = 0;
  for (;;) {
    pid_t got = ::waitpid(pid_, &status, __WALL);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return SysError("waitpid(" + Num(pid_) + ")");
    break;
  }
  ++stops_;
  if (WIFEXITED(status) || WIFSIGNALED(status)) {
    active_ = false;  // nothing left to put back: the pages went with it
    code_ = 0;
    scratch_page_ = false;
    trap_reset_ = false;
    return SysError("task " + Num(pid_) + " died while running an injected syscall", ESRCH);
  }
  ptrace_syscall_info info{};
  if (Ptrace(PTRACE_GET_SYSCALL_INFO, pid_, sizeof(info), reinterpret_cast<unsigned long>(&info)) <= 0) {
    return SysError(Req("PTRACE_GET_SYSCALL_INFO", pid_));
  }
  if (info.op != expected_op) {
    // A fault at the instruction (not a syscall there: discarded when the
    // task resumes), or a signal nobody can block (SIGSTOP: delivered by
    // End()).
    int sig = WIFSTOPPED(status) ? WSTOPSIG(status) : 0;
    if ((status >> 16) == 0 && sig != SIGSEGV && sig != SIGBUS && sig != SIGILL && sig != SIGTRAP) stray_signal_ = sig;
    return Fail("task " + Num(pid_) + " stopped with signal " + Num(sig) + " instead of at the injected syscall's " +
                (expected_op == PTRACE_SYSCALL_INFO_ENTRY ? "entry" : "exit"));
  }
  at_entry_ = expected_op == PTRACE_SYSCALL_INFO_ENTRY;
  if (expected_op == PTRACE_SYSCALL_INFO_EXIT) rval = static_cast<long>(info.exit.rval);
  return {};
}

Result<long> RemoteSyscalls::Call(long nr, const std::array<uint64_t, 6>& args) {
  if (!active_) return Fail("task " + Num(pid_) + ": injected syscall after End()");
  return Syscall(nr, args);
}

Result<long> RemoteSyscalls::Syscall(long nr, const std::array<uint64_t, 6>& args) {
  user_regs_struct r = saved_regs_;
  r.rip = insn_;
  r.rax = static_cast<unsigned long long>(nr);
  r.orig_rax = ~0ull;  // -1: not in a syscall, so no restart logic applies on the way out
  r.rdi = args[0];
  r.rsi = args[1];
  r.rdx = args[2];
  r.r10 = args[3];
  r.r8 = args[4];
  r.r9 = args[5];
  RO_TRY(PtraceSetRegs(pid_, r));
  moved_ = true;
  long rval = 0;
  RO_TRY(Step(PTRACE_SYSCALL_INFO_ENTRY, rval));
  RO_TRY(Step(PTRACE_SYSCALL_INFO_EXIT, rval));
  return rval;
}

// The scratch area is the stack's, below its red zone, when that is the
// task's own memory, readable and writable (proved by writing its own bytes
// back): no syscall, no change to the address space. A thread on a stack
// that ends close below its stack pointer (a coroutine's or a small
// sigaltstack above a guard page, the main stack at the limit of what the
// kernel has grown it to: remote access does not grow a stack) has no such
// area, and gets a page of its own instead: mapped by an injected mmap
// (read and write, private, anonymous: zeros, nothing to save) and unmapped
// by End() (or by the task's death), so the address space ends as it was.
// RunCode's page cannot serve: it is not writable by the task (no LSM
// allows W+X), and it lives for one run while the scratch area outlives it
// (the answers, SIGTRAP's saved disposition that RemoveCode reads).
Result<uint64_t> RemoteSyscalls::Scratch() {
  if (scratch_ != 0) return scratch_;
  std::string below = "no scratch area below its stack pointer (" + Hex(saved_regs_.rsp) + ")";
  if (saved_regs_.rsp >= kRedZone + kScratchBytes + 64) {
    uint64_t at = (saved_regs_.rsp - kRedZone - kScratchBytes) & ~uint64_t{63};
    std::string saved(kScratchBytes, '\0');
    Status s = ReadTaskMemory(pid_, at, saved.data(), saved.size());
    if (s.ok()) s = WriteTaskMemory(pid_, at, saved.data(), saved.size());  // the same bytes: only a test of writing
    if (s.ok()) {
      scratch_saved_ = std::move(saved);
      scratch_ = at;
      return scratch_;
    }
    below += ": " + s.error().ToString();
  }
  if (!active_) return Fail("task " + Num(pid_) + ": " + below + ", and no page can be mapped after End()");
  RO_ASSIGN_OR_RETURN(long at, Syscall(SYS_mmap, {0, kScratchPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, ~0ull, 0}));
  if (at < 0 && at > -4096) {
    return SysError("task " + Num(pid_) + ": " + below + ", and an injected mmap of a scratch page failed", static_cast<int>(-at));
  }
  scratch_page_ = true;
  scratch_saved_.assign(kScratchBytes, '\0');  // what a fresh page holds
  scratch_ = static_cast<uint64_t>(at);
  return scratch_;
}

Result<std::string> RemoteSyscalls::ReadScratch(size_t len) {
  RO_ASSIGN_OR_RETURN(uint64_t at, Scratch());
  std::string out(std::min(len, kScratchBytes), '\0');
  RO_TRY(ReadTaskMemory(pid_, at, out.data(), out.size()));
  return out;
}

Status RemoteSyscalls::WriteScratch(std::string_view bytes) {
  RO_ASSIGN_OR_RETURN(uint64_t at, Scratch());
  if (bytes.size() > kScratchBytes) return Fail("scratch area: " + Num(static_cast<long>(bytes.size())) + " bytes do not fit");
  return WriteTaskMemory(pid_, at, bytes.data(), bytes.size());
}

Result<std::optional<user_regs_struct>> RemoteSyscalls::RunCode(std::string_view code) {
  if (!active_) return Fail("task " + Num(pid_) + ": injected code after End()");
  if (code.size() > kMaxCodeBytes) return Fail("injected code of " + Num(static_cast<long>(code.size())) + " bytes: too long");
  RO_TRY(RemoveCode());  // what a failed run left
  std::string page(ro_run_code_prologue, ro_run_code_prologue_end);
  page.append(code);
  page.push_back(kInt3);
  RO_ASSIGN_OR_RETURN(uint64_t scratch, Scratch());
  uint64_t trap_saved = scratch + kCodeScratchBytes;
  // Written once before the code does, so that it cannot fault there; and
  // SIGTRAP's slot reads SIG_DFL (nothing to put back) unless the prologue
  // saved another disposition.
  std::string fill = scratch_saved_;
  std::fill(fill.begin() + kCodeScratchBytes, fill.end(), '\0');
  RO_TRY(WriteTaskMemory(pid_, scratch, fill.data(), fill.size()));

  RO_ASSIGN_OR_RETURN(long at, Syscall(SYS_mmap, {0, kCodePage, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, ~0ull, 0}));
  if (at < 0 && at > -4096) return std::optional<user_regs_struct>{};  // refused: nothing changed
  code_ = static_cast<uint64_t>(at);
  // Read-only in the task: only a debugger's write (FOLL_FORCE) gets in.
  if (Status w = PokeTaskMemory(pid_, code_, page.data(), page.size()); !w.ok()) {
    RO_TRY(RemoveCode());
    return std::optional<user_regs_struct>{};
  }
  user_regs_struct r = saved_regs_;
  r.rip = code_;
  r.orig_rax = ~0ull;  // not in a syscall: no restart logic on the way out
  r.rdi = scratch;
  r.rsi = trap_saved;
  RO_TRY(PtraceSetRegs(pid_, r));
  if (Ptrace(PTRACE_CONT, pid_, 0, 0) != 0) return SysError(Req("PTRACE_CONT", pid_) + " into injected code");
  at_entry_ = false;
  RO_TRY(WaitForCodeEnd(code_ + page.size()));
  RO_ASSIGN_OR_RETURN(user_regs_struct end, PtraceGetRegs(pid_));
  RO_TRY(RemoveCode());
  return std::optional<user_regs_struct>(end);
}

// Waits for the SIGTRAP of the int3 before `end`, letting pass (and
// keeping for End()) a signal nobody can block.
Status RemoteSyscalls::WaitForCodeEnd(uint64_t end) {
  for (int tries = 0; tries < 64; ++tries) {
    int status = 0;
    pid_t got;
    while ((got = ::waitpid(pid_, &status, __WALL)) < 0 && errno == EINTR) {
    }
    if (got < 0) return SysError("waitpid(" + Num(pid_) + ")");
    ++stops_;
    if (WIFEXITED(status) || WIFSIGNALED(status)) {
      active_ = false;  // nothing left to put back: the pages went with it
      code_ = 0;
      scratch_page_ = false;
      return SysError("task " + Num(pid_) + " died while running injected code", ESRCH);
    }
    if (!WIFSTOPPED(status)) continue;
    int sig = WSTOPSIG(status);
    bool delivery = (status >> 16) == 0;  // a signal-delivery stop, not a group stop
    if (delivery && (sig == SIGTRAP || sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE)) {
      RO_ASSIGN_OR_RETURN(user_regs_struct r, PtraceGetRegs(pid_));
      if (sig != SIGTRAP || r.rip != end) {
        return Fail("task " + Num(pid_) + " stopped with signal " + Num(sig) + " at " + Hex(r.rip) +
                    " instead of at the end of injected code (" + Hex(end) + ")");
      }
      trap_reset_ = true;
      siginfo_t info{};
      if (Ptrace(PTRACE_GETSIGINFO, pid_, 0, reinterpret_cast<unsigned long>(&info)) != 0) {
        return SysError(Req("PTRACE_GETSIGINFO", pid_));
      }
      // A SIGTRAP queued before (sent to the task while it blocks it) is
      // the one dequeued here, the int3's merged into it: End() queues it
      // again.
      if (info.si_code != SI_KERNEL && stray_signal_ == 0) stray_signal_ = SIGTRAP;
      return {};
    }
    // SIGSTOP (which nobody can block) is delivered by End(); a group stop
    // ends here.
    if (delivery && stray_signal_ == 0) stray_signal_ = sig;
    if (Ptrace(PTRACE_CONT, pid_, 0, 0) != 0) return SysError(Req("PTRACE_CONT", pid_) + " into injected code");
  }
  return Fail("task " + Num(pid_) + " did not reach the end of injected code");
}

// Puts back SIGTRAP's disposition (the int3 reset it) and unmaps the page.
Status RemoteSyscalls::RemoveCode() {
  Status first;
  if (std::exchange(trap_reset_, false)) {
    uint64_t at = scratch_ + kCodeScratchBytes, handler = 0;
    first = ReadTaskMemory(pid_, at, &handler, sizeof(handler));
    if (first.ok() && handler != reinterpret_cast<uint64_t>(SIG_DFL)) {
      auto r = Syscall(SYS_rt_sigaction, {SIGTRAP, at, 0, 8, 0, 0});
      if (!r.ok()) {
        first = std::move(r).error();
      } else if (*r != 0) {
        first = SysError("injected rt_sigaction(SIGTRAP) putting back its disposition", static_cast<int>(-*r));
      }
    }
  }
  if (uint64_t at = std::exchange(code_, 0); at != 0) {
    auto r = Syscall(SYS_munmap, {at, kCodePage, 0, 0, 0, 0});
    if (!r.ok() && first.ok()) first = std::move(r).error();
    if (r.ok() && *r != 0 && first.ok()) first = SysError("injected munmap(" + Hex(at) + ", " + Num(static_cast<long>(kCodePage)) + ")", static_cast<int>(-*r));
  }
  return first;
}

// The task is in a syscall-exit stop. Asked to stop again (INTERRUPT) and
// let go, it leaves the syscall path through the signal code, where the
// kernel traps before it dequeues anything: there it sits as after the
// freeze, and when it is released the kernel applies the restart logic
// to the registers put back (an interrupted nanosleep goes on sleeping).
Status RemoteSyscalls::BackToInterruptStop() {
  int signal = std::exchange(stray_signal_, 0);
  for (int tries = 0; tries < 16; ++tries) {
    if (Ptrace(PTRACE_INTERRUPT, pid_, 0, 0) != 0) return SysError(Req("PTRACE_INTERRUPT", pid_));
    if (Ptrace(PTRACE_CONT, pid_, 0, static_cast<unsigned long>(signal)) != 0) return SysError(Req("PTRACE_CONT", pid_));
    int status = 0;
    pid_t got;
    while ((got = ::waitpid(pid_, &status, __WALL)) < 0 && errno == EINTR) {
    }
    if (got < 0) return SysError("waitpid(" + Num(pid_) + ")");
    if (!WIFSTOPPED(status)) return SysError("task " + Num(pid_) + " died while its state was put back", ESRCH);
    if ((status >> 16) == PTRACE_EVENT_STOP) return {};
    signal = WSTOPSIG(status);  // a signal on its way in: deliver it, then trap again
  }
  return Fail("task " + Num(pid_) + " did not return to its interrupt stop");
}

Status RemoteSyscalls::End() {
  if (!active_) return {};
  active_ = false;
  Status first;
  auto keep = [&first](Status s) {
    if (first.ok() && !s.ok()) first = std::move(s);
  };
  if (at_entry_) {
    // Stopped at a syscall's entry (its exit never came): the kernel would
    // run whatever orig_ax says once resumed. Make it no syscall at all.
    user_regs_struct none = saved_regs_;
    none.orig_rax = ~0ull;
    long ignored = 0;
    keep(PtraceSetRegs(pid_, none));
    if (first.ok()) keep(Step(PTRACE_SYSCALL_INFO_EXIT, ignored));
  }
  keep(RemoveCode());  // injected syscalls again: before the registers are put back
  if (std::exchange(scratch_page_, false)) {
    // After RemoveCode, which reads SIGTRAP's saved disposition there.
    auto r = Syscall(SYS_munmap, {scratch_, kScratchPage, 0, 0, 0, 0});
    if (!r.ok()) keep(std::move(r).error());
    if (r.ok() && *r != 0) keep(SysError("injected munmap(" + Hex(scratch_) + ", " + Num(static_cast<long>(kScratchPage)) + ") of the scratch page", static_cast<int>(-*r)));
    scratch_ = 0;
  } else if (scratch_ != 0) {
    keep(WriteTaskMemory(pid_, scratch_, scratch_saved_.data(), scratch_saved_.size()));
  }
  keep(PtraceSetRegs(pid_, saved_regs_));
  keep(PtraceSetSigmask(pid_, saved_mask_));
  if (options_set_) keep(PtraceSetOptions(pid_, 0));
  if (moved_) keep(BackToInterruptStop());
  return first;
}

Result<uint64_t> FindSyscallInsn(pid_t pid, const std::vector<Vma>& vmas) {
  constexpr uint64_t kMaxScan = 1 << 20;
  std::vector<const Vma*> order;
  for (const Vma& v : vmas) {
    if (v.path == "[vdso]") order.insert(order.begin(), &v);
  }
  for (const Vma& v : vmas) {
    if (v.exec && v.read && v.path != "[vdso]" && v.path != "[vsyscall]") order.push_back(&v);
  }
  std::string code;
  for (const Vma* v : order) {
    code.resize(std::min<uint64_t>(v->end - v->start, kMaxScan));
    if (!ReadTaskMemory(pid, v->start, code.data(), code.size()).ok()) continue;
    size_t at = code.find("\x0f\x05", 0, 2);
    if (at != std::string::npos) return v->start + at;
  }
  return Fail("task " + Num(pid) + ": no syscall instruction in its [vdso] or executable mappings");
}

Result<uint64_t> FindSyscallInsn(pid_t pid) {
  RO_ASSIGN_OR_RETURN(std::vector<Vma> vmas, ReadVmas(pid));
  return FindSyscallInsn(pid, vmas);
}

Result<long> PtraceInjectSyscall(pid_t pid, uint64_t syscall_insn_addr, long nr, std::array<uint64_t, 6> args) {
  auto status = ReadProcFile("/proc/" + Num(pid) + "/status");
  bool filtered = status.ok() && StatusInnermost(*status, "Seccomp") > 0;
  RO_ASSIGN_OR_RETURN(RemoteSyscalls s, RemoteSyscalls::Begin(pid, syscall_insn_addr, filtered));
  auto r = s.Call(nr, args);
  Status end = s.End();
  if (!r.ok()) return std::move(r).error();
  if (!end.ok()) return std::move(end).error();
  return *r;
}

}  // namespace ro::sys
