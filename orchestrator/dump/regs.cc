// A live thread's registers into its core, as CRIU writes them
// (core.thread_info): the general registers (user_regs_struct, mode
// NATIVE), the FPU and vector state (images/x86_fpu.h), the GDT TLS slots,
// the clear_child_tid address. A task frozen inside a syscall is written so
// that it resumes as the kernel would have resumed it; the registers of
// the live task are never changed.
#include <asm/unistd.h>

#include <cerrno>

#include "images/x86_fpu.h"
#include "orchestrator/dump/collector.h"
#include "sys/cpu.h"

namespace ro::dump {
namespace {

// The kernel's restart codes (include/linux/errno.h, not in uapi).
constexpr long kErestartsys = 512, kErestartnointr = 513, kErestartnohand = 514, kErestartRestartblock = 516;
constexpr uint64_t kSyscallInsnBytes = 2;  // `syscall`

// How the registers of a task stopped on its way out of an interrupted
// syscall are written, as CRIU does: when the syscall would be restarted,
// the saved registers re-issue it (ax = the syscall number, ip back on the
// `syscall` instruction). -ERESTART_RESTARTBLOCK restarts through the
// task's restart_block, which the kernel keeps and a restore cannot give
// back; CRIU then writes -EINTR, which a program without signal handlers
// never sees otherwise. The syscalls that use a restart block (the sleeps,
// poll, a futex wait with a timeout: kernel/time/hrtimer.c,
// posix-cpu-timers.c, fs/select.c, kernel/futex/waitwake.c) are re-issued
// instead:
//
// nanosleep and clock_nanosleep: a relative sleep interrupted this way had
// the kernel write the time left to its `rem` argument (do_nanosleep:
// nanosleep_copyout before -ERESTART_RESTARTBLOCK); when the caller gave
// one, the sleep is re-issued for that time, `rem` passed as `req` too, so
// it ends when it was due plus the time the task was stopped. The one
// visible trace: after the call, the register that held `req` holds `rem`
// (callers through a function, as libc's are, do not read it back).
// Without `rem` the sleep starts over for its whole length. An absolute
// (TIMER_ABSTIME) sleep comes back with -ERESTARTNOHAND and is re-issued as
// it was: it wakes at the same clock reading, which for CLOCK_MONOTONIC and
// CLOCK_BOOTTIME means the same only on the same boot (or with a time
// namespace restored to match).
//
// poll and futex (FUTEX_WAIT with a relative timeout; the absolute waits
// come back the same way): the time left is only in the restart block, so
// they are re-issued with their arguments as they were. A poll without
// timeout and an absolute wait end exactly as they would have; a relative
// timeout starts over, so it ends at most the time already waited late
// (the kernel itself restarts epoll_wait and a signalled select so).
void AdjustInterruptedSyscall(img::user_x86_regs_entry& r) {
  if (static_cast<int64_t>(r.orig_ax()) < 0) return;  // not in a syscall
  switch (static_cast<int64_t>(r.ax())) {
    case -kErestartnohand:
    case -kErestartsys:
    case -kErestartnointr:
      r.set_ax(r.orig_ax());
      r.set_ip(r.ip() - kSyscallInsnBytes);
      break;
    case -kErestartRestartblock:
      if (r.orig_ax() == __NR_nanosleep || r.orig_ax() == __NR_clock_nanosleep || r.orig_ax() == __NR_poll ||
          r.orig_ax() == __NR_futex) {
        r.set_ax(r.orig_ax());
        r.set_ip(r.ip() - kSyscallInsnBytes);
        // nanosleep(req: di, rem: si); clock_nanosleep(clock: di, flags: si, req: dx, rem: r10).
        if (r.orig_ax() == __NR_nanosleep && r.si() != 0) r.set_di(r.si());
        if (r.orig_ax() == __NR_clock_nanosleep && r.r10() != 0) r.set_dx(r.r10());
      } else {
        r.set_ax(static_cast<uint64_t>(-static_cast<int64_t>(EINTR)));
      }
      break;
    default:
      break;
  }
}

}  // namespace

Status Collector::FillThreadInfo(const ThreadLive& live, img::core_entry& core) {
  const user_regs_struct& in = live.regs;
  img::thread_info_x86& ti = *core.mutable_thread_info();
  ti.set_clear_tid_addr(live.clear_tid_addr);
  img::user_x86_regs_entry& r = *ti.mutable_gpregs();
  r.set_r15(in.r15);
  r.set_r14(in.r14);
  r.set_r13(in.r13);
  r.set_r12(in.r12);
  r.set_bp(in.rbp);
  r.set_bx(in.rbx);
  r.set_r11(in.r11);
  r.set_r10(in.r10);
  r.set_r9(in.r9);
  r.set_r8(in.r8);
  r.set_ax(in.rax);
  r.set_cx(in.rcx);
  r.set_dx(in.rdx);
  r.set_si(in.rsi);
  r.set_di(in.rdi);
  r.set_orig_ax(in.orig_rax);
  r.set_ip(in.rip);
  r.set_cs(in.cs);
  r.set_flags(in.eflags);
  r.set_sp(in.rsp);
  r.set_ss(in.ss);
  r.set_fs_base(in.fs_base);
  r.set_gs_base(in.gs_base);
  r.set_ds(in.ds);
  r.set_es(in.es);
  r.set_fs(in.fs);
  r.set_gs(in.gs);
  r.set_mode(img::NATIVE);
  AdjustInterruptedSyscall(r);
  // Inside an rseq critical section the kernel would send the task to the
  // section's abort handler before it runs on: so does its image.
  const ThreadLive::RseqCs& cs = live.cs;
  if (live.rseq_cs != 0 && cs.version == 0 && r.ip() >= cs.start_ip && r.ip() - cs.start_ip < cs.post_commit_offset) {
    r.set_ip(cs.abort_ip);
  }

  auto fp = images::XsaveToFpregs(live.xstate, sys::HostXstateLayout());
  if (!fp.ok()) return std::move(fp).error().Within("its FPU state");
  *ti.mutable_fpregs() = std::move(fp).value();

  for (const user_desc& d : live.tls) {
    img::user_desc_t* e = ti.add_tls();
    e->set_entry_number(d.entry_number);
    e->set_base_addr(d.base_addr);
    e->set_limit(d.limit);
    e->set_seg_32bit(d.seg_32bit != 0);
    e->set_contents_h((d.contents & 2) != 0);
    e->set_contents_l((d.contents & 1) != 0);
    e->set_read_exec_only(d.read_exec_only != 0);
    e->set_limit_in_pages(d.limit_in_pages != 0);
    e->set_seg_not_present(d.seg_not_present != 0);
    e->set_usable(d.useable != 0);
  }
  return {};
}

}  // namespace ro::dump
