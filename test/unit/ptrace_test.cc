// Syscalls injected into a stopped task (sys/ptrace_api.h): they run in
// the task's context, and leave nothing behind: registers, mask and the
// scratch bytes are as before, a nanosleep it was in goes on sleeping, a
// sigsuspend's temporary mask still ends with the real one back. The tasks
// are the test's own children (no privileges needed).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "sys/proc_mm.h"
#include "sys/ptrace_api.h"
#include "sys/remote_mem.h"

namespace ro::sys {
namespace {

struct Shared {
  std::atomic<long> counter{0};
  std::atomic<long> bad{0};     // a sleep that ended with an error other than EINTR
  std::atomic<long> usr2{0};
  std::atomic<long> mask_ok{-1};
};

void OnUsr2(int) {}

// The address of a syscall instruction in `pid`'s vDSO.
uint64_t SyscallInsn(pid_t pid) {
  auto vmas = ReadVmas(pid);
  if (!vmas.ok()) return 0;
  auto insn = FindSyscallInsn(pid, *vmas);
  if (!insn.ok()) return 0;
  for (const Vma& v : *vmas) {
    if (v.path == "[vdso]" && (*insn < v.start || *insn >= v.end)) return 0;  // the vDSO's, when there is one
  }
  return *insn;
}

class Child {
 public:
  template <class F>
  explicit Child(F body) {
    void* m = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    shared_ = new (m) Shared;
    pid_ = ::fork();
    if (pid_ == 0) {
      body(*shared_);
      ::_exit(0);
    }
  }
  ~Child() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, __WALL);
    ::munmap(shared_, sizeof(Shared));
  }
  pid_t pid() const { return pid_; }
  Shared& shared() { return *shared_; }
  bool WaitCounter(long above) {
    for (int i = 0; i < 500 && shared_->counter.load() <= above; ++i) ::usleep(10000);
    return shared_->counter.load() > above;
  }

 private:
  pid_t pid_ = -1;
  Shared* shared_ = nullptr;
};

bool SameRegs(const user_regs_struct& a, const user_regs_struct& b) { return std::memcmp(&a, &b, sizeof(a)) == 0; }

TEST(Ptrace, InjectedSyscallsRunInTheTaskAndLeaveNoTrace) {
  Child child([](Shared& s) {
    struct sigaction sa {};
    sa.sa_handler = OnUsr2;
    sa.sa_flags = SA_RESTART;
    ::sigaction(SIGUSR2, &sa, nullptr);
    for (;;) {
      struct timespec req = {0, 20 * 1000 * 1000}, rem;
      if (::syscall(SYS_nanosleep, &req, &rem) != 0 && errno != EINTR) ++s.bad;
      ++s.counter;
    }
  });
  ASSERT_TRUE(child.WaitCounter(2));
  pid_t pid = child.pid();
  ASSERT_TRUE(PtraceSeize(pid).ok());
  auto stop = PtraceInterruptAndWait(pid, 5000);
  ASSERT_TRUE(stop.ok() && !stop->exited);
  auto before = PtraceGetRegs(pid);
  auto mask_before = PtraceGetSigmask(pid);
  ASSERT_TRUE(before.ok() && mask_before.ok());
  uint64_t insn = SyscallInsn(pid);
  ASSERT_NE(insn, 0u);
  uint64_t scratch_at = (before->rsp - 128 - RemoteSyscalls::kScratchBytes) & ~uint64_t{63};
  std::string scratch_before(RemoteSyscalls::kScratchBytes, '\0');
  ASSERT_TRUE(ReadTaskMemory(pid, scratch_at, scratch_before.data(), scratch_before.size()).ok());
  {
    auto task = RemoteSyscalls::Begin(pid, insn, false);
    ASSERT_TRUE(task.ok()) << task.error().ToString();
    auto own = task->Call(SYS_getpid, {});
    ASSERT_TRUE(own.ok()) << own.error().ToString();
    EXPECT_EQ(*own, pid);
    auto scratch = task->Scratch();
    ASSERT_TRUE(scratch.ok());
    EXPECT_EQ(*scratch, scratch_at);
    auto r = task->Call(SYS_rt_sigaction, {SIGUSR2, 0, *scratch, 8, 0, 0});
    ASSERT_TRUE(r.ok() && *r == 0);
    auto sa = task->ReadScratch(32);
    ASSERT_TRUE(sa.ok());
    uint64_t handler = 0, flags = 0;
    std::memcpy(&handler, sa->data(), 8);
    std::memcpy(&flags, sa->data() + 8, 8);
    EXPECT_EQ(handler, reinterpret_cast<uint64_t>(&OnUsr2));
    EXPECT_NE(flags & SA_RESTART, 0u);
    auto bad = task->Call(SYS_close, {~0ull, 0, 0, 0, 0, 0});  // a syscall that fails: -EBADF, not an error
    ASSERT_TRUE(bad.ok());
    EXPECT_EQ(*bad, -EBADF);
    EXPECT_TRUE(task->End().ok());
  }
  auto after = PtraceGetRegs(pid);
  auto mask_after = PtraceGetSigmask(pid);
  ASSERT_TRUE(after.ok() && mask_after.ok());
  EXPECT_TRUE(SameRegs(*before, *after));
  EXPECT_EQ(*mask_before, *mask_after);
  std::string scratch_after(RemoteSyscalls::kScratchBytes, '\0');
  ASSERT_TRUE(ReadTaskMemory(pid, scratch_at, scratch_after.data(), scratch_after.size()).ok());
  EXPECT_EQ(scratch_after, scratch_before);
  // The one-shot form, in the same stop.
  auto ppid = PtraceInjectSyscall(pid, insn, SYS_getppid, {});
  ASSERT_TRUE(ppid.ok()) << ppid.error().ToString();
  EXPECT_EQ(*ppid, ::getpid());
  auto again = PtraceGetRegs(pid);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(SameRegs(*before, *again));
  ASSERT_TRUE(PtraceDetach(pid, 0).ok());
  long counted = child.shared().counter.load();
  EXPECT_TRUE(child.WaitCounter(counted + 3));
  EXPECT_EQ(child.shared().bad.load(), 0) << "a sleep returned an error after the injection";
}

TEST(Ptrace, SigsuspendKeepsItsRealMaskThroughInjection) {
  Child child([](Shared& s) {
    struct sigaction sa {};
    sa.sa_handler = OnUsr2;
    ::sigaction(SIGUSR1, &sa, nullptr);
    sigset_t real, wait_mask;
    sigemptyset(&real);
    sigaddset(&real, SIGUSR1);
    sigaddset(&real, SIGHUP);
    ::sigprocmask(SIG_SETMASK, &real, nullptr);
    sigemptyset(&wait_mask);
    ++s.counter;
    ::sigsuspend(&wait_mask);  // returns once SIGUSR1 is handled
    sigset_t now;
    ::sigprocmask(SIG_SETMASK, nullptr, &now);
    s.mask_ok = sigismember(&now, SIGUSR1) == 1 && sigismember(&now, SIGHUP) == 1;
    for (;;) ::pause();
  });
  ASSERT_TRUE(child.WaitCounter(0));
  pid_t pid = child.pid();
  ::usleep(50000);  // in sigsuspend now
  ASSERT_TRUE(PtraceSeize(pid).ok());
  auto stop = PtraceInterruptAndWait(pid, 5000);
  ASSERT_TRUE(stop.ok() && !stop->exited);
  auto mask = PtraceGetSigmask(pid);
  ASSERT_TRUE(mask.ok());
  EXPECT_EQ(*mask, (1ull << (SIGUSR1 - 1)) | (1ull << (SIGHUP - 1)));  // the real one, not sigsuspend's
  uint64_t insn = SyscallInsn(pid);
  ASSERT_NE(insn, 0u);
  auto r = PtraceInjectSyscall(pid, insn, SYS_getpid, {});
  ASSERT_TRUE(r.ok() && *r == pid);
  ASSERT_TRUE(PtraceDetach(pid, 0).ok());
  ::usleep(50000);
  EXPECT_EQ(child.shared().mask_ok.load(), -1) << "sigsuspend returned without a signal";
  ::kill(pid, SIGUSR1);
  for (int i = 0; i < 300 && child.shared().mask_ok.load() == -1; ++i) ::usleep(10000);
  EXPECT_EQ(child.shared().mask_ok.load(), 1);
}

}  // namespace
}  // namespace ro::sys
