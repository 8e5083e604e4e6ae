// Small programs the continue tests (test/ns/mm_continue_test.cc) dump,
// kill and restore, each proving from outside that it went on rather than
// started again. Plain C style, linked statically (no loader, no sanitizer
// runtime: its address space is its own).
//
//   mm_programs DIR shared        a parent and its child share a MAP_SHARED
//                                 anonymous region of 3 pages (the middle one
//                                 never touched); each counts in it, and
//                                 copies the token the test leaves in
//                                 DIR/poke-<its pid> into it for the other
//                                 to report.
//   mm_programs DIR file FILE     FILE (3 pages) mapped MAP_PRIVATE|PROT_WRITE;
//                                 page 1 changed in memory (cookie, counter),
//                                 pages 0 and 2 only read: their checksums
//                                 are reported.
//   mm_programs DIR sleep MS      one nanosleep of MS ms (reported: start and
//                                 end on CLOCK_MONOTONIC, the error); its child
//                                 blocks in read on a pipe whose write end the
//                                 parent holds at fd 20, and reports what it
//                                 reads.
//   mm_programs DIR waits MS      waits the kernel restarts through a
//                                 restart block: the task polls nothing with
//                                 a timeout of MS ms; child 2 polls a pipe
//                                 (no timeout) whose write end the parent
//                                 holds at fd 20; child 3 waits on a futex
//                                 for MS ms. Each reports start, end
//                                 (CLOCK_MONOTONIC), result and errno.
//   mm_programs DIR signals       an itimer (50 ms) with a SIGALRM handler,
//                                 SIGUSR1 blocked, a SA_SIGINFO handler of
//                                 SIGUSR2 keeping the sigqueue value, SIGTERM
//                                 ignored, a SA_RESETHAND handler of SIGHUP.
//   mm_programs DIR fill MIB      MIB MiB of private anonymous memory, every
//                                 word written; then DIR/ready-<pid>, and it
//                                 sleeps (the memory benchmarks).
//   mm_programs DIR reserve GIB   a PROT_NONE reservation of GIB GiB (more than
//                                 memory and swap may hold: never charged)
//                                 with one page made writable and written, a
//                                 page written then made read-only, and a
//                                 read-only page never written; then
//                                 DIR/ready-<pid>, and it sleeps.
//   mm_programs DIR tree N KIB    N tasks (itself and N-1 children), each with
//                                 KIB KiB of private anonymous memory written;
//                                 DIR/ready-<pid> once all are, then they sleep.
//   mm_programs DIR tight         two threads, each on a stack of its own that
//                                 ends 1 KiB below its stack pointer at a guard
//                                 page (a coroutine's): one spins counting, the
//                                 other counts and nanosleeps 1 ms; the main
//                                 thread reports both counts.
//
// Each task rewrites DIR/state-<pid> (key=value words, with the random cookie
// made at start) after each step; DIR/layout-<pid> holds addresses, once.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/random.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

namespace {

const long kPage = 4096;
char g_dir[512];
uint64_t g_cookie;

void WriteFile(const char* stem, const char* text) {
  char path[600], tmp[620];
  snprintf(path, sizeof(path), "%s/%s-%d", g_dir, stem, getpid());
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) _exit(10);
  size_t len = strlen(text);
  if (write(fd, text, len) != static_cast<ssize_t>(len)) _exit(11);
  close(fd);
  if (rename(tmp, path) != 0) _exit(12);
}

// The hex token in DIR/poke-<pid>, 0 when there is none.
uint64_t Poke() {
  char path[600];
  snprintf(path, sizeof(path), "%s/poke-%d", g_dir, getpid());
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[32] = {};
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  return n > 0 ? strtoull(buf, nullptr, 16) : 0;
}

uint64_t NowMs() {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<uint64_t>(t.tv_sec) * 1000 + static_cast<uint64_t>(t.tv_nsec) / 1000000;
}

// Sleeps about `ms`; a signal cutting it short is fine.
void Nap(long ms) {
  struct timespec req = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&req, nullptr);
}

uint64_t Fnv(const unsigned char* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

struct SharedRegion {
  uint64_t cookie;
  uint64_t counter[2];  // parent, child
  uint64_t token[2];    // written by the parent, by the child
};

int Shared() {
  char* region = static_cast<char*>(mmap(nullptr, 3 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  if (region == MAP_FAILED) return 3;
  SharedRegion* s = reinterpret_cast<SharedRegion*>(region);
  s->cookie = g_cookie;
  uint64_t* tail = reinterpret_cast<uint64_t*>(region + 2 * kPage);  // the last page too, never the middle one
  pid_t child = fork();
  if (child < 0) return 7;
  int me = child == 0 ? 1 : 0, other = 1 - me;
  char text[400];
  snprintf(text, sizeof(text), "region=%p\n", static_cast<void*>(region));
  WriteFile("layout", text);
  for (;;) {
    ++s->counter[me];
    tail[me] = s->counter[me];
    if (uint64_t t = Poke(); t != 0) s->token[me] = t;
    snprintf(text, sizeof(text), "counter=%llu cookie=%016llx other_counter=%llu other_tail=%llu from_other=%llx shared_cookie=%016llx\n",
             static_cast<unsigned long long>(s->counter[me]), static_cast<unsigned long long>(g_cookie),
             static_cast<unsigned long long>(s->counter[other]), static_cast<unsigned long long>(tail[other]),
             static_cast<unsigned long long>(s->token[other]), static_cast<unsigned long long>(s->cookie));
    WriteFile("state", text);
    Nap(20);
  }
}

struct FileRegion {
  char magic[8];
  uint64_t cookie;
  uint64_t counter;
};

int File(const char* file) {
  int fd = open(file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 3;
  // PROT_WRITE on a read-only fd: MAP_PRIVATE copies on write, the file
  // never sees it.
  unsigned char* map = static_cast<unsigned char*>(mmap(nullptr, 3 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0));
  close(fd);
  if (map == MAP_FAILED) return 4;
  FileRegion* r = reinterpret_cast<FileRegion*>(map + kPage + 64);
  memcpy(r->magic, "CHANGED!", 8);
  r->cookie = g_cookie;
  r->counter = 0;
  char text[400];
  snprintf(text, sizeof(text), "map=%p\n", static_cast<void*>(map));
  WriteFile("layout", text);
  for (;;) {
    ++r->counter;
    // Page 1 outside the change is still the file's.
    uint64_t page1_rest = Fnv(map + kPage + 64 + sizeof(FileRegion), kPage - 64 - sizeof(FileRegion));
    snprintf(text, sizeof(text), "counter=%llu cookie=%016llx magic=%.8s page0=%016llx page1_rest=%016llx page2=%016llx\n",
             static_cast<unsigned long long>(r->counter), static_cast<unsigned long long>(r->cookie), r->magic,
             static_cast<unsigned long long>(Fnv(map, kPage)), static_cast<unsigned long long>(page1_rest),
             static_cast<unsigned long long>(Fnv(map + 2 * kPage, kPage)));
    WriteFile("state", text);
    Nap(20);
  }
}

int Sleep(long ms) {
  int p[2];
  if (pipe(p) != 0 || dup2(p[1], 20) != 20 || dup2(p[0], 21) != 21) return 3;
  close(p[0]);
  close(p[1]);
  char text[400];
  pid_t child = fork();
  if (child < 0) return 7;
  if (child == 0) {
    close(20);
    uint64_t total = 0;
    snprintf(text, sizeof(text), "cookie=%016llx reads=0 got= total=0 err=0\n", static_cast<unsigned long long>(g_cookie));
    WriteFile("state", text);
    for (int reads = 1;; ++reads) {
      char buf[64] = {};
      ssize_t n = read(21, buf, sizeof(buf) - 1);
      int err = n < 0 ? errno : 0;
      if (n > 0) total += static_cast<uint64_t>(n);
      snprintf(text, sizeof(text), "cookie=%016llx reads=%d got=%s total=%llu err=%d\n", static_cast<unsigned long long>(g_cookie),
               reads, n > 0 ? buf : "", static_cast<unsigned long long>(total), err);
      WriteFile("state", text);
      if (n == 0) return 0;
    }
  }
  close(21);
  uint64_t start = NowMs();
  snprintf(text, sizeof(text), "cookie=%016llx start=%llu woke=0 err=0\n", static_cast<unsigned long long>(g_cookie),
           static_cast<unsigned long long>(start));
  WriteFile("state", text);
  struct timespec req = {ms / 1000, (ms % 1000) * 1000000L}, rem = {0, 0};
  int r = nanosleep(&req, &rem);
  int err = r != 0 ? errno : 0;
  uint64_t woke = NowMs();
  snprintf(text, sizeof(text), "cookie=%016llx start=%llu woke=%llu err=%d\n", static_cast<unsigned long long>(g_cookie),
           static_cast<unsigned long long>(start), static_cast<unsigned long long>(woke), err);
  WriteFile("state", text);
  for (;;) pause();
}

// One wait of Waits(): reports start, then end, result and errno.
template <class Wait>
void Report(Wait wait) {
  char text[200];
  uint64_t start = NowMs();
  snprintf(text, sizeof(text), "cookie=%016llx start=%llu woke=0 ret=0 err=0\n", static_cast<unsigned long long>(g_cookie),
           static_cast<unsigned long long>(start));
  WriteFile("state", text);
  long r = wait();
  int err = r < 0 ? errno : 0;
  snprintf(text, sizeof(text), "cookie=%016llx start=%llu woke=%llu ret=%ld err=%d\n", static_cast<unsigned long long>(g_cookie),
           static_cast<unsigned long long>(start), static_cast<unsigned long long>(NowMs()), r, err);
  WriteFile("state", text);
}

int Waits(long ms) {
  int p[2];
  if (pipe(p) != 0 || dup2(p[1], 20) != 20 || dup2(p[0], 21) != 21) return 3;
  close(p[0]);
  close(p[1]);
  for (int kind = 0; kind < 2; ++kind) {
    pid_t child = fork();
    if (child < 0) return 7;
    if (child != 0) continue;
    close(20);
    if (kind == 0) {
      struct pollfd pfd = {21, POLLIN, 0};
      Report([&] { return static_cast<long>(poll(&pfd, 1, -1)); });
    } else {
      static uint32_t word = 0;
      struct timespec timeout = {ms / 1000, (ms % 1000) * 1000000L};
      Report([&] { return syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, &timeout, nullptr, 0); });
    }
    for (;;) pause();
  }
  close(21);
  Report([&] { return static_cast<long>(poll(nullptr, 0, static_cast<int>(ms))); });
  for (;;) pause();
}

volatile sig_atomic_t g_ticks = 0, g_hups = 0;
volatile int g_token = 0;

void OnAlarm(int) { g_ticks = g_ticks + 1; }
void OnUsr2(int, siginfo_t* info, void*) { g_token = info->si_value.sival_int; }
void OnHup(int) { g_hups = g_hups + 1; }

int Signals() {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = OnAlarm;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGALRM, &sa, nullptr) != 0) return 4;
  memset(&sa, 0, sizeof(sa));
  sa.sa_sigaction = OnUsr2;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGALRM);
  if (sigaction(SIGUSR2, &sa, nullptr) != 0) return 4;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = OnHup;
  sa.sa_flags = SA_RESETHAND;
  if (sigaction(SIGHUP, &sa, nullptr) != 0) return 4;
  signal(SIGTERM, SIG_IGN);
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  sigprocmask(SIG_BLOCK, &block, nullptr);
  struct itimerval it = {{0, 50000}, {0, 50000}};
  if (setitimer(ITIMER_REAL, &it, nullptr) != 0) return 6;
  char text[400];
  for (;;) {
    sigset_t pending, mask;
    sigpending(&pending);
    sigprocmask(SIG_BLOCK, nullptr, &mask);
    struct sigaction hup, usr2;
    sigaction(SIGHUP, nullptr, &hup);
    sigaction(SIGUSR2, nullptr, &usr2);
    struct itimerval now;
    getitimer(ITIMER_REAL, &now);
    int usr2_ok = usr2.sa_sigaction == OnUsr2 && (usr2.sa_flags & SA_SIGINFO) && sigismember(&usr2.sa_mask, SIGALRM) == 1;
    snprintf(text, sizeof(text),
             "cookie=%016llx ticks=%d token=%d hups=%d hup_default=%d usr1_pending=%d usr1_blocked=%d usr2_ok=%d interval_us=%ld\n",
             static_cast<unsigned long long>(g_cookie), static_cast<int>(g_ticks), g_token, static_cast<int>(g_hups),
             hup.sa_handler == SIG_DFL, sigismember(&pending, SIGUSR1) == 1, sigismember(&mask, SIGUSR1) == 1, usr2_ok,
             static_cast<long>(now.it_interval.tv_sec * 1000000 + now.it_interval.tv_usec));
    WriteFile("state", text);
    Nap(20);
  }
}

[[noreturn]] void Ready() {
  WriteFile("ready", "ready\n");
  for (;;) pause();
}

void* Filled(size_t bytes) {
  uint64_t* p = static_cast<uint64_t*>(mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (p == MAP_FAILED) _exit(3);
  for (size_t i = 0; i < bytes / sizeof(uint64_t); ++i) p[i] = reinterpret_cast<uint64_t>(&p[i]) ^ g_cookie;
  return p;
}

int Fill(long mib) {
  Filled(static_cast<size_t>(mib) << 20);
  Ready();
}

int Reserve(long gib) {
  size_t size = static_cast<size_t>(gib) << 30;
  char* r = static_cast<char*>(mmap(nullptr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (r == MAP_FAILED) return 3;
  if (mprotect(r + (1 << 20), 4096, PROT_READ | PROT_WRITE) != 0) return 4;
  memcpy(r + (1 << 20), &g_cookie, sizeof(g_cookie));
  char* once = static_cast<char*>(mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  char* never = static_cast<char*>(mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (once == MAP_FAILED || never == MAP_FAILED) return 5;
  memcpy(once, &g_cookie, sizeof(g_cookie));
  if (mprotect(once, 4096, PROT_READ) != 0) return 6;
  Ready();
}

int Tree(long n, long kib) {
  int p[2];
  if (n < 1 || pipe2(p, O_CLOEXEC) != 0) return 3;
  for (long i = 1; i < n; ++i) {
    pid_t c = fork();
    if (c < 0) return 7;
    if (c == 0) {
      close(p[0]);
      Filled(static_cast<size_t>(kib) << 10);
      if (write(p[1], "x", 1) != 1) _exit(4);
      close(p[1]);
      for (;;) pause();
    }
  }
  close(p[1]);
  Filled(static_cast<size_t>(kib) << 10);
  char buf[256];
  for (long got = 0; got < n - 1;) {
    ssize_t r = read(p[0], buf, sizeof(buf));
    if (r <= 0) return 5;
    got += r;
  }
  close(p[0]);
  Ready();
}

// The tight stacks' threads: rsp 1 KiB above a PROT_NONE page; they touch
// no stack at all.
uint64_t g_spins, g_naps;
const struct timespec kNapTime = {0, 1000000};

void* SpinOnTightStack(void* sp) {
  __asm__ volatile(
      "mov %0, %%rsp\n\t"
      "1: lock incq %1\n\t"
      "pause\n\t"
      "jmp 1b\n\t"
      :
      : "r"(sp), "m"(g_spins)
      : "memory");
  return nullptr;
}

void* NapOnTightStack(void* sp) {
  __asm__ volatile(
      "mov %0, %%rsp\n\t"
      "1: lock incq %1\n\t"
      "mov $35, %%eax\n\t"  // nanosleep(&kNapTime, NULL)
      "lea %2, %%rdi\n\t"
      "xor %%esi, %%esi\n\t"
      "syscall\n\t"
      "jmp 1b\n\t"
      :
      : "r"(sp), "m"(g_naps), "m"(kNapTime)
      : "rax", "rdi", "rsi", "rcx", "r11", "memory");
  return nullptr;
}

// A stack of 2 pages above a guard page; its top 1 KiB above the guard.
char* TightStack() {
  char* m = static_cast<char*>(mmap(nullptr, 3 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (m == MAP_FAILED || mprotect(m, kPage, PROT_NONE) != 0) _exit(3);
  return m + kPage + 1024;
}

int Tight() {
  pthread_t spin, nap;
  if (pthread_create(&spin, nullptr, SpinOnTightStack, TightStack()) != 0) return 7;
  if (pthread_create(&nap, nullptr, NapOnTightStack, TightStack()) != 0) return 7;
  char text[200];
  for (;;) {
    snprintf(text, sizeof(text), "cookie=%016llx spins=%llu naps=%llu\n", static_cast<unsigned long long>(g_cookie),
             static_cast<unsigned long long>(__atomic_load_n(&g_spins, __ATOMIC_RELAXED)),
             static_cast<unsigned long long>(__atomic_load_n(&g_naps, __ATOMIC_RELAXED)));
    WriteFile("state", text);
    Nap(20);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || strlen(argv[1]) >= sizeof(g_dir)) return 64;
  strcpy(g_dir, argv[1]);
  if (getrandom(&g_cookie, sizeof(g_cookie), 0) != sizeof(g_cookie)) return 2;
  if (strcmp(argv[2], "shared") == 0) return Shared();
  if (strcmp(argv[2], "file") == 0 && argc == 4) return File(argv[3]);
  if (strcmp(argv[2], "sleep") == 0 && argc == 4) return Sleep(atol(argv[3]));
  if (strcmp(argv[2], "waits") == 0 && argc == 4) return Waits(atol(argv[3]));
  if (strcmp(argv[2], "signals") == 0) return Signals();
  if (strcmp(argv[2], "fill") == 0 && argc == 4) return Fill(atol(argv[3]));
  if (strcmp(argv[2], "reserve") == 0 && argc == 4) return Reserve(atol(argv[3]));
  if (strcmp(argv[2], "tree") == 0 && argc == 5) return Tree(atol(argv[3]), atol(argv[4]));
  if (strcmp(argv[2], "tight") == 0) return Tight();
  return 64;
}
