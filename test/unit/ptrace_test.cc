// Syscalls and code injected into a stopped task (sys/ptrace_api.h): they
// run in the task's context, and leave nothing behind: registers, mask,
// the scratch bytes and the address space are as before, a nanosleep it
// was in goes on sleeping, a sigsuspend's temporary mask still ends with
// the real one back, its handlers still run. The signal dispositions asked
// in one stop (sys/remote_attrs.h) are what the task's own sigaction()
// says, and so are its thread and task knobs (sigaltstack, tid address,
// securebits, TSC mode, itimers, break...), the same in one stop as one
// syscall at a time. The tasks are the test's own children (no privileges needed, but
// for suspending a seccomp filter).
#include <gtest/gtest.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "sys/proc.h"
#include "sys/proc_mm.h"
#include "sys/ptrace_api.h"
#include "sys/remote_attrs.h"
#include "sys/remote_mem.h"

namespace ro::sys {
namespace {

struct Shared {
  std::atomic<long> counter{0};
  std::atomic<long> bad{0};     // a sleep that ended with an error other than EINTR
  std::atomic<long> usr2{0};
  std::atomic<long> mask_ok{-1};
  std::atomic<long> traps{0};   // SIGTRAP handled
  std::atomic<long> release{0};  // the test says: unblock SIGTRAP
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
    pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ == 0) {
      // Dies with the test, should it die first (its tracer gone, it would
      // run on).
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(0);
      body(*shared_);
      ::_exit(0);
    }
  }
  ~Child() {
    Reap();
    ::munmap(shared_, sizeof(Shared));
  }
  // Kills and reaps it (if the test has not reaped it already, ECHILD),
  // never to be named again.
  void Reap() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, __WALL);
    pid_ = -1;
  }
  // Reaps it once it was SIGKILLed, unless an injection's waitpid did
  // already (ECHILD): its pid is not to be signalled again.
  void ReapKilled() {
    if (pid_ <= 0) return;
    ::waitpid(pid_, nullptr, __WALL);
    pid_ = -1;
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

using Sigactions = std::array<KernelSigaction, 65>;

Shared* g_shared = nullptr;  // in a child: its shared block, for its handlers
void CountUsr2(int) { ++g_shared->usr2; }
void CountTrap(int) { ++g_shared->traps; }
void OnInfo(int, siginfo_t*, void*) {}
extern "C" void FakeRestorer() {}

constexpr uint64_t kSaRestorer = 0x04000000;  // the kernel's SA_RESTORER, which glibc does not export

uint64_t Bit(int sig) { return 1ull << (sig - 1); }

// Sets the kernel's disposition of `sig` as it is, restorer included.
void RawSigaction(int sig, const KernelSigaction& ka) { ::syscall(SYS_rt_sigaction, sig, &ka, nullptr, 8); }

// Handlers, flags, masks and restorers of every kind on several signals;
// SIGTRAP handled, blocked and pending.
void SetDispositions() {
  struct sigaction sa {};
  sa.sa_sigaction = OnInfo;
  sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGINT);
  sigaddset(&sa.sa_mask, SIGQUIT);
  sigaddset(&sa.sa_mask, SIGRTMIN + 2);
  ::sigaction(SIGUSR1, &sa, nullptr);
  sa = {};
  sa.sa_handler = CountUsr2;
  sa.sa_flags = SA_RESTART;
  sigaddset(&sa.sa_mask, SIGHUP);
  ::sigaction(SIGUSR2, &sa, nullptr);
  sa = {};
  sa.sa_handler = SIG_IGN;
  ::sigaction(SIGTERM, &sa, nullptr);
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGPIPE, &sa, nullptr);
  sa = {};
  sa.sa_handler = SIG_DFL;  // SIG_DFL keeps its flags and mask
  sa.sa_flags = SA_RESETHAND | SA_NODEFER;
  sigaddset(&sa.sa_mask, SIGALRM);
  ::sigaction(SIGHUP, &sa, nullptr);
  sa = {};
  sa.sa_handler = SIG_DFL;
  sa.sa_flags = SA_NOCLDSTOP;
  ::sigaction(SIGCHLD, &sa, nullptr);
  sa = {};
  sa.sa_handler = CountTrap;
  ::sigaction(SIGTRAP, &sa, nullptr);
  // A restorer of its own, and a real-time signal ignored.
  RawSigaction(40, {reinterpret_cast<uint64_t>(&OnInfo), SA_SIGINFO | kSaRestorer | SA_RESTART,
                    reinterpret_cast<uint64_t>(&FakeRestorer), Bit(SIGUSR1) | Bit(63)});
  RawSigaction(64, {reinterpret_cast<uint64_t>(SIG_IGN), 0, 0, 0});
  sigset_t trap;
  sigemptyset(&trap);
  sigaddset(&trap, SIGTRAP);
  ::sigprocmask(SIG_BLOCK, &trap, nullptr);
  ::raise(SIGTRAP);  // pending until the test releases it
}

// Every disposition as the task's own sigaction() says (glibc refuses its
// two internal signals, 32 and 33: the raw syscall for those).
Sigactions OwnSigactions() {
  Sigactions out{};
  for (int sig = 1; sig <= 64; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    KernelSigaction& k = out[static_cast<size_t>(sig)];
    if (sig == 32 || sig == 33) {
      ::syscall(SYS_rt_sigaction, sig, nullptr, &k, 8);
      continue;
    }
    struct sigaction sa {};
    ::sigaction(sig, nullptr, &sa);
    k.handler = reinterpret_cast<uint64_t>(sa.sa_handler);
    k.flags = static_cast<uint64_t>(static_cast<unsigned>(sa.sa_flags));
    k.restorer = reinterpret_cast<uint64_t>(sa.sa_restorer);
    std::memcpy(&k.mask, &sa.sa_mask, sizeof(k.mask));
  }
  return out;
}

// Sleeps and counts; unblocks SIGTRAP once the test says so.
[[noreturn]] void CountForever(Shared& s) {
  bool released = false;
  for (;;) {
    struct timespec req = {0, 5 * 1000 * 1000}, rem;
    if (::syscall(SYS_nanosleep, &req, &rem) != 0 && errno != EINTR) ++s.bad;
    ++s.counter;
    if (!released && s.release.load() != 0) {
      released = true;
      sigset_t trap;
      sigemptyset(&trap);
      sigaddset(&trap, SIGTRAP);
      ::sigprocmask(SIG_UNBLOCK, &trap, nullptr);
    }
  }
}

// A pipe the child writes what its own sigaction() said into.
class Report {
 public:
  Report() { EXPECT_EQ(::pipe(fds_), 0); }
  ~Report() {
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  void Send(const Sigactions& sa) { (void)!::write(fds_[1], sa.data(), sizeof(sa)); }
  bool Receive(Sigactions& sa) {
    ::close(fds_[1]);
    fds_[1] = -1;
    size_t got = 0;
    while (got < sizeof(sa)) {
      ssize_t n = ::read(fds_[0], reinterpret_cast<char*>(sa.data()) + got, sizeof(sa) - got);
      if (n <= 0) return false;
      got += static_cast<size_t>(n);
    }
    return true;
  }

 private:
  int fds_[2] = {-1, -1};
};

std::string Maps(pid_t pid) {
  auto text = ReadProcFile("/proc/" + std::to_string(pid) + "/maps");
  return text.ok() ? *text : std::string("unreadable");
}

// The lines of one maps text that the other lacks, each way.
std::string MapsDiff(const std::string& before, const std::string& after) {
  auto lines = [](const std::string& text) {
    std::vector<std::string> out;
    for (size_t at = 0; at < text.size();) {
      size_t nl = text.find('\n', at);
      if (nl == std::string::npos) nl = text.size();
      out.push_back(text.substr(at, nl - at));
      at = nl + 1;
    }
    return out;
  };
  std::vector<std::string> a = lines(before), b = lines(after);
  std::string out;
  for (const std::string& l : a) {
    if (std::find(b.begin(), b.end(), l) == b.end()) out += "gone: " + l + "\n";
  }
  for (const std::string& l : b) {
    if (std::find(a.begin(), a.end(), l) == a.end()) out += "new:  " + l + "\n";
  }
  return out;
}

std::string DescribeDiff(const Sigactions& got, const Sigactions& want) {
  std::string out;
  for (size_t sig = 1; sig < got.size(); ++sig) {
    if (got[sig] == want[sig]) continue;
    out += "signal " + std::to_string(sig) + ": handler " + std::to_string(got[sig].handler) + " flags " +
           std::to_string(got[sig].flags) + " restorer " + std::to_string(got[sig].restorer) + " mask " +
           std::to_string(got[sig].mask) + ", its own sigaction() says " + std::to_string(want[sig].handler) + " " +
           std::to_string(want[sig].flags) + " " + std::to_string(want[sig].restorer) + " " + std::to_string(want[sig].mask) + "\n";
  }
  return out;
}

// Seized and in an interrupt stop, or the test fails.
::testing::AssertionResult Stop(pid_t pid) {
  if (!PtraceSeize(pid).ok()) return ::testing::AssertionFailure() << "seize";
  auto stop = PtraceInterruptAndWait(pid, 5000);
  if (!stop.ok() || stop->exited) return ::testing::AssertionFailure() << "interrupt";
  return ::testing::AssertionSuccess();
}

TEST(Ptrace, SigactionsInOneStopAreTheTasksOwnAndLeaveNoTrace) {
  Report report;
  Child child([&report](Shared& s) {
    g_shared = &s;
    SetDispositions();
    report.Send(OwnSigactions());
    CountForever(s);
  });
  Sigactions own{};
  ASSERT_TRUE(report.Receive(own));
  ASSERT_TRUE(child.WaitCounter(2));
  pid_t pid = child.pid();
  ASSERT_TRUE(Stop(pid));
  auto regs = PtraceGetRegs(pid);
  auto mask = PtraceGetSigmask(pid);
  ASSERT_TRUE(regs.ok() && mask.ok());
  std::string maps = Maps(pid);
  uint64_t insn = SyscallInsn(pid);
  ASSERT_NE(insn, 0u);
  uint64_t scratch_at = (regs->rsp - 128 - RemoteSyscalls::kScratchBytes) & ~uint64_t{63};
  std::string scratch(RemoteSyscalls::kScratchBytes, '\0');
  ASSERT_TRUE(ReadTaskMemory(pid, scratch_at, scratch.data(), scratch.size()).ok());
  {
    auto task = RemoteSyscalls::Begin(pid, insn, false);
    ASSERT_TRUE(task.ok()) << task.error().ToString();
    auto fast = AskSigactions(*task);
    ASSERT_TRUE(fast.ok()) << fast.error().ToString();
    // mmap, the code, its int3 and munmap; SIGTRAP's handler put back.
    int fast_stops = task->stops();
    EXPECT_LE(fast_stops, 7);
    EXPECT_EQ(*fast, own) << DescribeDiff(*fast, own);
    auto slow = AskSigactionsOneByOne(*task);
    ASSERT_TRUE(slow.ok()) << slow.error().ToString();
    EXPECT_EQ(task->stops() - fast_stops, 2 * 62);
    EXPECT_EQ(*slow, own) << DescribeDiff(*slow, own);
    EXPECT_TRUE(task->End().ok());
  }
  EXPECT_EQ(MapsDiff(maps, Maps(pid)), "");
  auto regs_after = PtraceGetRegs(pid);
  auto mask_after = PtraceGetSigmask(pid);
  ASSERT_TRUE(regs_after.ok() && mask_after.ok());
  EXPECT_TRUE(SameRegs(*regs, *regs_after));
  EXPECT_EQ(*mask, *mask_after);
  std::string scratch_after(RemoteSyscalls::kScratchBytes, '\0');
  ASSERT_TRUE(ReadTaskMemory(pid, scratch_at, scratch_after.data(), scratch_after.size()).ok());
  EXPECT_EQ(scratch_after, scratch);
  ASSERT_TRUE(PtraceDetach(pid, 0).ok());

  // It runs on as before: its handlers run, the SIGTRAP it had pending
  // (the int3's was merged into it) is still there, handled once.
  long counted = child.shared().counter.load();
  EXPECT_TRUE(child.WaitCounter(counted + 3));
  EXPECT_EQ(child.shared().traps.load(), 0);
  child.shared().release = 1;
  for (int i = 0; i < 300 && child.shared().traps.load() == 0; ++i) ::usleep(10000);
  EXPECT_EQ(child.shared().traps.load(), 1);
  ::kill(pid, SIGUSR2);
  for (int i = 0; i < 300 && child.shared().usr2.load() == 0; ++i) ::usleep(10000);
  EXPECT_EQ(child.shared().usr2.load(), 1);
  ::kill(pid, SIGTRAP);  // still its handler's, not reset by the int3
  for (int i = 0; i < 300 && child.shared().traps.load() == 1; ++i) ::usleep(10000);
  EXPECT_EQ(child.shared().traps.load(), 2);
  counted = child.shared().counter.load();
  EXPECT_TRUE(child.WaitCounter(counted + 3));
  EXPECT_EQ(child.shared().bad.load(), 0);
  int status = 0;
  EXPECT_EQ(::waitpid(pid, &status, WNOHANG), 0) << "it died";
}

// A filter that refuses rt_sigaction(SIGUSR1, ...) with EPERM.
void RefuseSigactionOfSigusr1() {
  sock_filter insns[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_rt_sigaction, 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[0])),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SIGUSR1, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(std::size(insns)), insns};
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) ::_exit(3);
}

TEST(Ptrace, SigactionsUnderSeccompOneStopWhenSuspendedTheFirstRefusalOtherwise) {
  if (::geteuid() != 0) GTEST_SKIP() << "PTRACE_O_SUSPEND_SECCOMP needs CAP_SYS_ADMIN";
  Report report;
  Child child([&report](Shared& s) {
    g_shared = &s;
    SetDispositions();
    report.Send(OwnSigactions());
    RefuseSigactionOfSigusr1();
    CountForever(s);
  });
  Sigactions own{};
  ASSERT_TRUE(report.Receive(own));
  ASSERT_TRUE(child.WaitCounter(2));
  pid_t pid = child.pid();
  ASSERT_TRUE(Stop(pid));
  std::string maps = Maps(pid);
  auto regs = PtraceGetRegs(pid);
  ASSERT_TRUE(regs.ok());
  uint64_t insn = SyscallInsn(pid);
  ASSERT_NE(insn, 0u);
  {
    auto task = RemoteSyscalls::Begin(pid, insn, true);
    ASSERT_TRUE(task.ok()) << task.error().ToString();
    auto sa = AskSigactions(*task);
    ASSERT_TRUE(sa.ok()) << sa.error().ToString();
    EXPECT_LE(task->stops(), 7);
    EXPECT_EQ(*sa, own) << DescribeDiff(*sa, own);
    EXPECT_TRUE(task->End().ok());
  }
  {
    // The filter sees the code's syscalls: the first refused is the error,
    // named as the one-by-one path names it.
    auto task = RemoteSyscalls::Begin(pid, insn, false);
    ASSERT_TRUE(task.ok()) << task.error().ToString();
    auto sa = AskSigactions(*task);
    ASSERT_FALSE(sa.ok());
    EXPECT_EQ(sa.error().err, EPERM);
    EXPECT_NE(sa.error().ToString().find("injected rt_sigaction(10)"), std::string::npos) << sa.error().ToString();
    auto slow = AskSigactionsOneByOne(*task);
    ASSERT_FALSE(slow.ok());
    EXPECT_EQ(slow.error().ToString(), sa.error().ToString());
    EXPECT_TRUE(task->End().ok());
  }
  EXPECT_EQ(MapsDiff(maps, Maps(pid)), "");
  auto regs_after = PtraceGetRegs(pid);
  ASSERT_TRUE(regs_after.ok());
  EXPECT_TRUE(SameRegs(*regs, *regs_after));
  ASSERT_TRUE(PtraceDetach(pid, 0).ok());
  long counted = child.shared().counter.load();
  EXPECT_TRUE(child.WaitCounter(counted + 3));
  EXPECT_EQ(child.shared().bad.load(), 0);
}

TEST(Ptrace, SigactionsOneByOneWhenTheTaskCannotMapCode) {
  Report report;
  Child child([&report](Shared& s) {
    g_shared = &s;
    SetDispositions();
    report.Send(OwnSigactions());
    // No more address space than it has: its mmap fails with ENOMEM.
    long pages = 0;
    FILE* statm = std::fopen("/proc/self/statm", "r");
    if (statm == nullptr || std::fscanf(statm, "%ld", &pages) != 1) ::_exit(3);
    std::fclose(statm);
    rlimit as{static_cast<rlim_t>(pages) * 4096, RLIM_INFINITY};
    if (::setrlimit(RLIMIT_AS, &as) != 0) ::_exit(3);
    CountForever(s);
  });
  Sigactions own{};
  ASSERT_TRUE(report.Receive(own));
  ASSERT_TRUE(child.WaitCounter(2));
  pid_t pid = child.pid();
  ASSERT_TRUE(Stop(pid));
  std::string maps = Maps(pid);
  uint64_t insn = SyscallInsn(pid);
  ASSERT_NE(insn, 0u);
  {
    auto task = RemoteSyscalls::Begin(pid, insn, false);
    ASSERT_TRUE(task.ok()) << task.error().ToString();
    auto refused = task->Call(SYS_mmap, {0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, ~0ull, 0});
    ASSERT_TRUE(refused.ok());
    ASSERT_EQ(*refused, -ENOMEM) << "the limit does not hold";
    int before = task->stops();
    auto sa = AskSigactions(*task);
    ASSERT_TRUE(sa.ok()) << sa.error().ToString();
    EXPECT_EQ(task->stops() - before, 2 + 2 * 62);  // the refused mmap, then one by one
    EXPECT_EQ(*sa, own) << DescribeDiff(*sa, own);
    EXPECT_TRUE(task->End().ok());
  }
  EXPECT_EQ(MapsDiff(maps, Maps(pid)), "");
  ASSERT_TRUE(PtraceDetach(pid, 0).ok());
  long counted = child.shared().counter.load();
  EXPECT_TRUE(child.WaitCounter(counted + 3));
}

// What a task says of itself (the thread knobs of its own thread).
struct OwnKnobs {
  ThreadKnobs thread;
  TaskKnobs task;
  Sigactions sigactions;
};

int g_tid_word = 0;  // a clear_child_tid address of the child's own

// Every knob away from its default: a sigaltstack, a tid address,
// SECBIT_KEEP_CAPS (PR_SET_KEEPCAPS), a timer slack, RDTSC trapping (where
// the CPU can), the three itimers, a moved break, not dumpable (as root:
// else the test could not trace it), a child subreaper. The parent-death
// signal is Child's SIGKILL.
void SetKnobs() {
  void* alt = ::mmap(nullptr, 64 * 1024, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  stack_t ss{};
  ss.ss_sp = alt;
  ss.ss_size = 64 * 1024;
  if (alt == MAP_FAILED || ::sigaltstack(&ss, nullptr) != 0) ::_exit(3);
  ::syscall(SYS_set_tid_address, &g_tid_word);
  if (::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0 || ::prctl(PR_SET_TIMERSLACK, 123457, 0, 0, 0) != 0) ::_exit(3);
  ::prctl(PR_SET_TSC, PR_TSC_SIGSEGV, 0, 0, 0);  // EINVAL where the CPU cannot trap it
  itimerval real{{500, 250000}, {1000, 0}}, virt{{600, 1000}, {2000, 0}}, prof{{700, 2000}, {3000, 0}};
  if (::setitimer(ITIMER_REAL, &real, nullptr) != 0 || ::setitimer(ITIMER_VIRTUAL, &virt, nullptr) != 0 ||
      ::setitimer(ITIMER_PROF, &prof, nullptr) != 0) {
    ::_exit(3);
  }
  if (::sbrk(256 * 1024) == reinterpret_cast<void*>(-1)) ::_exit(3);
  if (::geteuid() == 0 && ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) ::_exit(3);
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) ::_exit(3);
}

// The knobs as the task's own syscalls give them.
OwnKnobs AskOwnKnobs() {
  OwnKnobs own{};
  ThreadKnobs& t = own.thread;
  stack_t ss{};
  ::sigaltstack(nullptr, &ss);
  t.ss_sp = reinterpret_cast<uint64_t>(ss.ss_sp);
  t.ss_flags = static_cast<uint32_t>(ss.ss_flags);
  t.ss_size = ss.ss_size;
  int* tid = nullptr;
  ::prctl(PR_GET_TID_ADDRESS, &tid, 0, 0, 0);
  t.clear_tid_addr = reinterpret_cast<uint64_t>(tid);
  ::prctl(PR_GET_PDEATHSIG, &t.pdeath_sig, 0, 0, 0);
  t.securebits = ::prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
  t.timer_slack = static_cast<uint64_t>(::prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0));
  if (::prctl(PR_GET_TSC, &t.tsc_mode, 0, 0, 0) != 0) t.tsc_mode = 0;
  TaskKnobs& k = own.task;
  for (int which = 0; which < 3; ++which) {
    itimerval it{};
    ::getitimer(which, &it);
    k.itimers[static_cast<size_t>(which)] = {static_cast<uint64_t>(it.it_interval.tv_sec), static_cast<uint64_t>(it.it_interval.tv_usec),
                                             static_cast<uint64_t>(it.it_value.tv_sec), static_cast<uint64_t>(it.it_value.tv_usec)};
  }
  k.brk = static_cast<uint64_t>(::syscall(SYS_brk, 0));
  k.dumpable = ::prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
  int reaper = 0;
  ::prctl(PR_GET_CHILD_SUBREAPER, &reaper, 0, 0, 0);
  k.child_subreaper = reaper != 0;
  long merge = ::prctl(68 /* PR_GET_MEMORY_MERGE */, 0, 0, 0, 0);
  k.memory_merge = merge > 0;
  own.sigactions = OwnSigactions();
  return own;
}

// A pipe the child writes a plain structure into.
template <class T>
class Pipe {
 public:
  Pipe() { EXPECT_EQ(::pipe(fds_), 0); }
  ~Pipe() {
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  void Send(const T& v) { (void)!::write(fds_[1], &v, sizeof(v)); }
  bool Receive(T& v) {
    ::close(fds_[1]);
    fds_[1] = -1;
    size_t got = 0;
    while (got < sizeof(v)) {
      ssize_t n = ::read(fds_[0], reinterpret_cast<char*>(&v) + got, sizeof(v) - got);
      if (n <= 0) return false;
      got += static_cast<size_t>(n);
    }
    return true;
  }

 private:
  int fds_[2] = {-1, -1};
};

std::string Describe(const ThreadKnobs& k) {
  return "ss " + std::to_string(k.ss_sp) + "/" + std::to_string(k.ss_size) + "/" + std::to_string(k.ss_flags) + " tid " +
         std::to_string(k.clear_tid_addr) + " pdeath " + std::to_string(k.pdeath_sig) + " secbits " + std::to_string(k.securebits) +
         " slack " + std::to_string(k.timer_slack) + " tsc " + std::to_string(k.tsc_mode);
}

// Everything but the itimers' values, which run down: there each later
// answer is at most the earlier one, and at most `within_s` below it.
::testing::AssertionResult SameTaskKnobs(const TaskKnobs& later, const TaskKnobs& earlier, uint64_t within_s = 5) {
  if (later.brk != earlier.brk || later.dumpable != earlier.dumpable || later.child_subreaper != earlier.child_subreaper ||
      later.memory_merge != earlier.memory_merge) {
    return ::testing::AssertionFailure() << "brk " << later.brk << " / " << earlier.brk << ", dumpable " << later.dumpable << " / "
                                         << earlier.dumpable << ", subreaper " << later.child_subreaper << " / "
                                         << earlier.child_subreaper << ", merge " << later.memory_merge << " / " << earlier.memory_merge;
  }
  for (size_t i = 0; i < 3; ++i) {
    const TaskKnobs::Itimer &a = later.itimers[i], &b = earlier.itimers[i];
    uint64_t va = a.value_sec * 1000000 + a.value_usec, vb = b.value_sec * 1000000 + b.value_usec;
    if (a.interval_sec != b.interval_sec || a.interval_usec != b.interval_usec || va > vb || vb - va > within_s * 1000000) {
      return ::testing::AssertionFailure() << "itimer " << i << ": " << a.interval_sec << "." << a.interval_usec << " " << va
                                           << " us, earlier " << b.interval_sec << "." << b.interval_usec << " " << vb << " us";
    }
  }
  return ::testing::AssertionSuccess();
}

TEST(Ptrace, KnobsInOneStopAreTheTasksOwnAsOneByOneAndLeaveNoTrace) {
  Pipe<OwnKnobs> report;
  Child child([&report](Shared& s) {
    g_shared = &s;
    SetDispositions();
    SetKnobs();
    report.Send(AskOwnKnobs());
    CountForever(s);
  });
  OwnKnobs own{};
  ASSERT_TRUE(report.Receive(own)) << "the child could not set its knobs";
  // Away from the defaults, or the comparison says little.
  EXPECT_NE(own.thread.ss_sp, 0u);
  EXPECT_EQ(own.thread.clear_tid_addr, reinterpret_cast<uint64_t>(&g_tid_word));  // the same address in the fork
  EXPECT_EQ(own.thread.pdeath_sig, SIGKILL);
  EXPECT_EQ(own.thread.securebits, 1 << 4);  // SECBIT_KEEP_CAPS
  EXPECT_EQ(own.thread.timer_slack, 123457u);
  EXPECT_EQ(own.task.itimers[0].interval_sec, 500u);
  EXPECT_EQ(own.task.itimers[2].interval_usec, 2000u);
  EXPECT_TRUE(own.task.child_subreaper);
  if (::geteuid() == 0) {
    EXPECT_EQ(own.task.dumpable, 0);
  }
  ASSERT_TRUE(child.WaitCounter(2));
  pid_t pid = child.pid();
  ASSERT_TRUE(Stop(pid));
  auto regs = PtraceGetRegs(pid);
  auto mask = PtraceGetSigmask(pid);
  ASSERT_TRUE(regs.ok() && mask.ok());
  std::string maps = Maps(pid);
  uint64_t insn = SyscallInsn(pid);
  ASSERT_NE(insn, 0u);
  uint64_t scratch_at = (regs->rsp - 128 - RemoteSyscalls::kScratchBytes) & ~uint64_t{63};
  std::string scratch(RemoteSyscalls::kScratchBytes, '\0');
  ASSERT_TRUE(ReadTaskMemory(pid, scratch_at, scratch.data(), scratch.size()).ok());
  {
    auto task = RemoteSyscalls::Begin(pid, insn, false);
    ASSERT_TRUE(task.ok()) << task.error().ToString();
    auto leader = AskLeader(*task);
    ASSERT_TRUE(leader.ok()) << leader.error().ToString();
    // mmap, the code, its int3, SIGTRAP's handler put back, munmap.
    EXPECT_LE(task->stops(), 7);
    EXPECT_EQ(leader->thread, own.thread) << Describe(leader->thread) << "\nits own: " << Describe(own.thread);
    EXPECT_TRUE(SameTaskKnobs(leader->task, own.task));
    EXPECT_EQ(leader->sigactions, own.sigactions) << DescribeDiff(leader->sigactions, own.sigactions);

    int stops = task->stops();
    auto thread = AskThreadKnobs(*task);
    ASSERT_TRUE(thread.ok()) << thread.error().ToString();
    EXPECT_LE(task->stops() - stops, 7);
    EXPECT_EQ(*thread, own.thread) << Describe(*thread);
    stops = task->stops();
    auto knobs = AskTaskKnobs(*task);
    ASSERT_TRUE(knobs.ok()) << knobs.error().ToString();
    EXPECT_LE(task->stops() - stops, 7);
    EXPECT_TRUE(SameTaskKnobs(*knobs, leader->task));

    stops = task->stops();
    auto slow_thread = AskThreadKnobsOneByOne(*task);
    ASSERT_TRUE(slow_thread.ok()) << slow_thread.error().ToString();
    EXPECT_EQ(task->stops() - stops, 2 * 6);
    EXPECT_EQ(*slow_thread, own.thread) << Describe(*slow_thread);
    stops = task->stops();
    auto slow_task = AskTaskKnobsOneByOne(*task);
    ASSERT_TRUE(slow_task.ok()) << slow_task.error().ToString();
    EXPECT_EQ(task->stops() - stops, 2 * 7);
    EXPECT_TRUE(SameTaskKnobs(*slow_task, *knobs));
    EXPECT_TRUE(task->End().ok());
  }
  EXPECT_EQ(MapsDiff(maps, Maps(pid)), "");
  auto regs_after = PtraceGetRegs(pid);
  auto mask_after = PtraceGetSigmask(pid);
  ASSERT_TRUE(regs_after.ok() && mask_after.ok());
  EXPECT_TRUE(SameRegs(*regs, *regs_after));
  EXPECT_EQ(*mask, *mask_after);
  std::string scratch_after(RemoteSyscalls::kScratchBytes, '\0');
  ASSERT_TRUE(ReadTaskMemory(pid, scratch_at, scratch_after.data(), scratch_after.size()).ok());
  EXPECT_EQ(scratch_after, scratch);
  ASSERT_TRUE(PtraceDetach(pid, 0).ok());
  long counted = child.shared().counter.load();
  EXPECT_TRUE(child.WaitCounter(counted + 3));
  EXPECT_EQ(child.shared().bad.load(), 0);
  int status = 0;
  EXPECT_EQ(::waitpid(pid, &status, WNOHANG), 0) << "it died";
}

TEST(Ptrace, KnobsOneByOneWhenTheTaskCannotMapCode) {
  Pipe<OwnKnobs> report;
  Child child([&report](Shared& s) {
    g_shared = &s;
    SetDispositions();
    SetKnobs();
    report.Send(AskOwnKnobs());
    long pages = 0;
    FILE* statm = std::fopen("/proc/self/statm", "r");
    if (statm == nullptr || std::fscanf(statm, "%ld", &pages) != 1) ::_exit(3);
    std::fclose(statm);
    rlimit as{static_cast<rlim_t>(pages) * 4096, RLIM_INFINITY};
    if (::setrlimit(RLIMIT_AS, &as) != 0) ::_exit(3);
    CountForever(s);
  });
  OwnKnobs own{};
  ASSERT_TRUE(report.Receive(own));
  ASSERT_TRUE(child.WaitCounter(2));
  pid_t pid = child.pid();
  ASSERT_TRUE(Stop(pid));
  std::string maps = Maps(pid);
  auto regs = PtraceGetRegs(pid);
  ASSERT_TRUE(regs.ok());
  uint64_t insn = SyscallInsn(pid);
  ASSERT_NE(insn, 0u);
  {
    auto task = RemoteSyscalls::Begin(pid, insn, false);
    ASSERT_TRUE(task.ok()) << task.error().ToString();
    auto refused = task->Call(SYS_mmap, {0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, ~0ull, 0});
    ASSERT_TRUE(refused.ok());
    ASSERT_EQ(*refused, -ENOMEM) << "the limit does not hold";
    int stops = task->stops();
    auto leader = AskLeader(*task);
    ASSERT_TRUE(leader.ok()) << leader.error().ToString();
    EXPECT_EQ(task->stops() - stops, 2 + 2 * (6 + 62 + 7));  // the refused mmap, then one by one
    EXPECT_EQ(leader->thread, own.thread) << Describe(leader->thread);
    EXPECT_TRUE(SameTaskKnobs(leader->task, own.task));
    EXPECT_EQ(leader->sigactions, own.sigactions) << DescribeDiff(leader->sigactions, own.sigactions);
    stops = task->stops();
    auto thread = AskThreadKnobs(*task);
    ASSERT_TRUE(thread.ok()) << thread.error().ToString();
    EXPECT_EQ(task->stops() - stops, 2 + 2 * 6);
    EXPECT_EQ(*thread, own.thread) << Describe(*thread);
    stops = task->stops();
    auto knobs = AskTaskKnobs(*task);
    ASSERT_TRUE(knobs.ok()) << knobs.error().ToString();
    EXPECT_EQ(task->stops() - stops, 2 + 2 * 7);
    EXPECT_TRUE(SameTaskKnobs(*knobs, leader->task));
    EXPECT_TRUE(task->End().ok());
  }
  EXPECT_EQ(MapsDiff(maps, Maps(pid)), "");
  auto regs_after = PtraceGetRegs(pid);
  ASSERT_TRUE(regs_after.ok());
  EXPECT_TRUE(SameRegs(*regs, *regs_after));
  ASSERT_TRUE(PtraceDetach(pid, 0).ok());
  long counted = child.shared().counter.load();
  EXPECT_TRUE(child.WaitCounter(counted + 3));
}

// What a thread says of itself, and its tid.
struct OwnThread {
  pid_t tid = 0;
  ThreadKnobs knobs;
};

TEST(Ptrace, AThreadsKnobsInOneStopAreItsOwnNotItsLeaders) {
  Pipe<OwnThread> report;
  Child child([&report](Shared& s) {
    std::thread([&report, &s] {
      void* alt = ::mmap(nullptr, 32 * 1024, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      stack_t ss{};
      ss.ss_sp = alt;
      ss.ss_size = 32 * 1024;
      if (alt == MAP_FAILED || ::sigaltstack(&ss, nullptr) != 0) ::_exit(3);
      if (::prctl(PR_SET_TIMERSLACK, 77777, 0, 0, 0) != 0 || ::prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) != 0) ::_exit(3);
      ::syscall(SYS_set_tid_address, &g_tid_word);
      OwnThread own;
      own.tid = static_cast<pid_t>(::syscall(SYS_gettid));
      own.knobs = AskOwnKnobs().thread;
      report.Send(own);
      for (;;) ::pause();
    }).detach();
    CountForever(s);
  });
  OwnThread own{};
  ASSERT_TRUE(report.Receive(own));
  ASSERT_TRUE(child.WaitCounter(2));
  ASSERT_NE(own.tid, child.pid());
  EXPECT_EQ(own.knobs.timer_slack, 77777u);
  EXPECT_EQ(own.knobs.pdeath_sig, SIGTERM);
  ASSERT_TRUE(Stop(own.tid));  // the thread alone
  auto regs = PtraceGetRegs(own.tid);
  ASSERT_TRUE(regs.ok());
  uint64_t insn = SyscallInsn(child.pid());
  ASSERT_NE(insn, 0u);
  {
    auto thread = RemoteSyscalls::Begin(own.tid, insn, false);
    ASSERT_TRUE(thread.ok()) << thread.error().ToString();
    auto fast = AskThreadKnobs(*thread);
    ASSERT_TRUE(fast.ok()) << fast.error().ToString();
    EXPECT_LE(thread->stops(), 5);
    EXPECT_EQ(*fast, own.knobs) << Describe(*fast) << "\nits own: " << Describe(own.knobs);
    auto slow = AskThreadKnobsOneByOne(*thread);
    ASSERT_TRUE(slow.ok()) << slow.error().ToString();
    EXPECT_EQ(*slow, own.knobs) << Describe(*slow);
    EXPECT_TRUE(thread->End().ok());
  }
  auto regs_after = PtraceGetRegs(own.tid);
  ASSERT_TRUE(regs_after.ok());
  EXPECT_TRUE(SameRegs(*regs, *regs_after));
  ASSERT_TRUE(PtraceDetach(own.tid, 0).ok());
  long counted = child.shared().counter.load();
  EXPECT_TRUE(child.WaitCounter(counted + 3));
}

// A filter that refuses prctl(PR_GET_TSC) with EPERM and answers
// prctl(PR_GET_MEMORY_MERGE) with EINVAL, as a kernel without KSM does.
void RefuseTscAndMerge() {
  sock_filter insns[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_prctl, 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[0])),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PR_GET_TSC, 3, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 68 /* PR_GET_MEMORY_MERGE */, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EINVAL),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
  };
  sock_fprog prog{static_cast<unsigned short>(std::size(insns)), insns};
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) ::_exit(3);
}

TEST(Ptrace, AKnobThatFailsIsNamedAsOneByOneNamesItAndNoKsmIsNoError) {
  Child child([](Shared& s) {
    RefuseTscAndMerge();
    CountForever(s);
  });
  ASSERT_TRUE(child.WaitCounter(2));
  pid_t pid = child.pid();
  ASSERT_TRUE(Stop(pid));
  std::string maps = Maps(pid);
  auto regs = PtraceGetRegs(pid);
  ASSERT_TRUE(regs.ok());
  uint64_t insn = SyscallInsn(pid);
  ASSERT_NE(insn, 0u);
  {
    auto task = RemoteSyscalls::Begin(pid, insn, false);
    ASSERT_TRUE(task.ok()) << task.error().ToString();
    auto thread = AskThreadKnobs(*task);
    ASSERT_FALSE(thread.ok());
    EXPECT_EQ(thread.error().err, EPERM);
    EXPECT_NE(thread.error().ToString().find("injected prctl(PR_GET_TSC)"), std::string::npos) << thread.error().ToString();
    auto slow = AskThreadKnobsOneByOne(*task);
    ASSERT_FALSE(slow.ok());
    EXPECT_EQ(slow.error().ToString(), thread.error().ToString());
    auto leader = AskLeader(*task);
    ASSERT_FALSE(leader.ok());
    EXPECT_EQ(leader.error().ToString(), thread.error().ToString());

    auto knobs = AskTaskKnobs(*task);
    ASSERT_TRUE(knobs.ok()) << knobs.error().ToString();
    EXPECT_FALSE(knobs->memory_merge);
    auto slow_knobs = AskTaskKnobsOneByOne(*task);
    ASSERT_TRUE(slow_knobs.ok()) << slow_knobs.error().ToString();
    EXPECT_TRUE(SameTaskKnobs(*slow_knobs, *knobs));
    auto merge = AskMemoryMerge(*task);
    ASSERT_TRUE(merge.ok()) << merge.error().ToString();
    EXPECT_FALSE(*merge);
    EXPECT_TRUE(task->End().ok());
  }
  EXPECT_EQ(MapsDiff(maps, Maps(pid)), "");
  auto regs_after = PtraceGetRegs(pid);
  ASSERT_TRUE(regs_after.ok());
  EXPECT_TRUE(SameRegs(*regs, *regs_after));
  ASSERT_TRUE(PtraceDetach(pid, 0).ok());
  long counted = child.shared().counter.load();
  EXPECT_TRUE(child.WaitCounter(counted + 3));
  EXPECT_EQ(child.shared().bad.load(), 0);
}

TEST(Ptrace, InjectedCodeReturnsItsRegistersAndAFaultIsAnErrorThatLeavesNoTrace) {
  Child child([](Shared& s) { CountForever(s); });
  ASSERT_TRUE(child.WaitCounter(2));
  pid_t pid = child.pid();
  ASSERT_TRUE(Stop(pid));
  std::string maps = Maps(pid);
  auto regs = PtraceGetRegs(pid);
  ASSERT_TRUE(regs.ok());
  uint64_t insn = SyscallInsn(pid);
  ASSERT_NE(insn, 0u);
  {
    auto task = RemoteSyscalls::Begin(pid, insn, false);
    ASSERT_TRUE(task.ok()) << task.error().ToString();
    // mov $39, %eax (getpid); syscall; mov %rdi, %rbx
    auto own = task->RunCode(std::string_view("\xb8\x27\x00\x00\x00\x0f\x05\x48\x89\xfb", 10));
    ASSERT_TRUE(own.ok()) << own.error().ToString();
    ASSERT_TRUE(own->has_value());
    EXPECT_EQ((*own)->rax, static_cast<unsigned long long>(pid));
    auto scratch = task->Scratch();
    ASSERT_TRUE(scratch.ok());
    EXPECT_EQ((*own)->rbx, *scratch);
    EXPECT_EQ(MapsDiff(maps, Maps(pid)), "") << "the page is still there";
    auto fault = task->RunCode("\x0f\x0b");  // ud2
    ASSERT_FALSE(fault.ok());
    EXPECT_NE(fault.error().ToString().find("signal 4"), std::string::npos) << fault.error().ToString();
    EXPECT_TRUE(task->End().ok());
  }
  EXPECT_EQ(MapsDiff(maps, Maps(pid)), "");
  auto regs_after = PtraceGetRegs(pid);
  ASSERT_TRUE(regs_after.ok());
  EXPECT_TRUE(SameRegs(*regs, *regs_after));
  ASSERT_TRUE(PtraceDetach(pid, 0).ok());
  long counted = child.shared().counter.load();
  EXPECT_TRUE(child.WaitCounter(counted + 3));
  EXPECT_EQ(child.shared().bad.load(), 0);
}

// A stack that ends 1 KiB below the stack pointer, at a guard page (a
// coroutine's, a small sigaltstack): no room for the scratch area there, so
// it is a page of its own, mapped and unmapped again; the answers are the
// task's own, in one stop as one by one, and nothing is left behind.
TEST(Ptrace, ATightStackGetsAScratchPageThatLeavesNoTrace) {
  Report report;
  Child child([&report](Shared& s) {
    SetDispositions();
    report.Send(OwnSigactions());
    char* stack = static_cast<char*>(::mmap(nullptr, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (stack == MAP_FAILED || ::mprotect(stack, 4096, PROT_NONE) != 0) ::_exit(3);
    __asm__ volatile(
        "mov %0, %%rsp\n\t"
        "1: lock incq (%1)\n\t"
        "pause\n\t"
        "jmp 1b\n\t"
        :
        : "r"(stack + 4096 + 1024), "r"(&s.counter)
        : "memory");
  });
  Sigactions own{};
  ASSERT_TRUE(report.Receive(own));
  ASSERT_TRUE(child.WaitCounter(2));
  pid_t pid = child.pid();
  ASSERT_TRUE(Stop(pid));
  std::string maps = Maps(pid);
  auto regs = PtraceGetRegs(pid);
  ASSERT_TRUE(regs.ok());
  uint64_t insn = SyscallInsn(pid);
  ASSERT_NE(insn, 0u);
  std::string stack(1024, '\0');
  ASSERT_TRUE(ReadTaskMemory(pid, regs->rsp - 1024, stack.data(), stack.size()).ok());
  {
    auto task = RemoteSyscalls::Begin(pid, insn, false);
    ASSERT_TRUE(task.ok()) << task.error().ToString();
    auto scratch = task->Scratch();
    ASSERT_TRUE(scratch.ok()) << scratch.error().ToString();
    EXPECT_EQ(task->stops(), 2) << "the scratch page's mmap";
    EXPECT_TRUE(*scratch >= regs->rsp || *scratch + RemoteSyscalls::kScratchBytes <= regs->rsp - 1024) << "on the stack";
    EXPECT_NE(MapsDiff(maps, Maps(pid)), "") << "no page mapped";
    auto fast = AskSigactions(*task);
    ASSERT_TRUE(fast.ok()) << fast.error().ToString();
    EXPECT_EQ(*fast, own) << DescribeDiff(*fast, own);
    auto slow = AskSigactionsOneByOne(*task);
    ASSERT_TRUE(slow.ok()) << slow.error().ToString();
    EXPECT_EQ(*slow, own) << DescribeDiff(*slow, own);
    auto knobs = AskThreadKnobsOneByOne(*task);
    ASSERT_TRUE(knobs.ok()) << knobs.error().ToString();
    EXPECT_TRUE(task->End().ok());
  }
  EXPECT_EQ(MapsDiff(maps, Maps(pid)), "");
  auto regs_after = PtraceGetRegs(pid);
  ASSERT_TRUE(regs_after.ok());
  EXPECT_TRUE(SameRegs(*regs, *regs_after));
  std::string stack_after(1024, '\0');
  ASSERT_TRUE(ReadTaskMemory(pid, regs->rsp - 1024, stack_after.data(), stack_after.size()).ok());
  EXPECT_EQ(stack_after, stack);
  ASSERT_TRUE(PtraceDetach(pid, 0).ok());
  long counted = child.shared().counter.load();
  EXPECT_TRUE(child.WaitCounter(counted + 3));
  int status = 0;
  EXPECT_EQ(::waitpid(pid, &status, WNOHANG), 0) << "it died";
}

TEST(Ptrace, ATaskKilledWhileRunningCodeIsAnErrorNotAHang) {
  Child child([](Shared& s) { CountForever(s); });
  ASSERT_TRUE(child.WaitCounter(2));
  pid_t pid = child.pid();
  ASSERT_TRUE(Stop(pid));
  uint64_t insn = SyscallInsn(pid);
  ASSERT_NE(insn, 0u);
  auto task = RemoteSyscalls::Begin(pid, insn, false);
  ASSERT_TRUE(task.ok()) << task.error().ToString();
  std::thread killer([pid] {
    ::usleep(100 * 1000);
    ::kill(pid, SIGKILL);
  });
  auto spin = task->RunCode("\xeb\xfe");  // jmp . (until killed)
  killer.join();
  ASSERT_FALSE(spin.ok());
  EXPECT_EQ(spin.error().err, ESRCH) << spin.error().ToString();
  EXPECT_TRUE(task->End().ok());
  child.ReapKilled();
}

TEST(Ptrace, ATaskKilledBeforeItsSigactionsAreAskedIsAnErrorNotAHang) {
  Child child([](Shared& s) { CountForever(s); });
  ASSERT_TRUE(child.WaitCounter(2));
  pid_t pid = child.pid();
  ASSERT_TRUE(Stop(pid));
  uint64_t insn = SyscallInsn(pid);
  ASSERT_NE(insn, 0u);
  auto task = RemoteSyscalls::Begin(pid, insn, false);
  ASSERT_TRUE(task.ok()) << task.error().ToString();
  ::kill(pid, SIGKILL);
  auto sa = AskSigactions(*task);
  EXPECT_FALSE(sa.ok());
  (void)task->End();  // errors (nothing to put back into), but returns
  child.ReapKilled();
}

}  // namespace
}  // namespace ro::sys
