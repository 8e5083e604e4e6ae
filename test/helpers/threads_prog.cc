// A multi-threaded program for the thread dump and restore tests, written
// in plain C style and linked statically (no dynamic loader, no sanitizer
// runtime: its threads and layout are its own).
//
//   threads_prog DIR
//   threads_prog --idle TASKS THREADS DIR   (the benchmark's tree)
//
// Five threads, each named (prctl PR_SET_NAME) and counting in its own
// thread-local counter (__thread) and in one shared atomic counter:
//   tp-main   the leader: counts every 20 ms (clock_nanosleep through
//             glibc) and writes DIR/state; SIGUSR1 and SIGUSR2 reach only
//             it (the others block them): SIGUSR1 signals the condition
//             variable, SIGUSR2 wakes the futex
//   tp-spin   counts, spinning about 1 ms of user time between 5 ms sleeps
//   tp-sleep  counts every 50 ms, sleeping in the raw nanosleep syscall
//   tp-cond   counts each time it wakes from pthread_cond_wait with news
//   tp-futex  counts each time it wakes from a raw FUTEX_WAIT with news
//
// --idle: the init forks TASKS - 1 children; each of the TASKS processes
// starts THREADS - 1 threads (64 KiB stacks) that wait in pause(), then
// writes DIR/ready-PID and waits too.
//
// DIR/state, rewritten in place after each count of tp-main (one record
// of 1024 bytes, through an fd held from the start), one line:
// seq=<number of the write> cookie=<random made at start> total=<shared atomic> and per thread
// <name>=<its thread-local counter> tid-<name>=<its gettid()>, then
// mask-ok=1 when tp-main's mask is as set (the others blocking USR1/USR2
// is checked by their counters: a signal sent to the process would
// otherwise go to any of them), bad=<syscalls that failed unexpectedly>
// and end=<seq again: a reader that sees them differ read a write half done>.
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>

namespace {

enum { kMain, kSpin, kSleep, kCond, kFutex, kThreads };
const char* const kNames[kThreads] = {"tp-main", "tp-spin", "tp-sleep", "tp-cond", "tp-futex"};

__thread uint64_t t_count = 0;  // each thread's own counter
std::atomic<uint64_t> g_total{0};
std::atomic<uint64_t> g_published[kThreads];  // copies of the thread-local counters, for the state file
std::atomic<long> g_tid[kThreads];
std::atomic<long> g_bad{0};
uint64_t g_cookie = 0;
char g_dir[512];
int g_state_fd = -1;  // DIR/state

pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;
uint64_t g_generation = 0;  // under g_lock
uint32_t g_futex_word = 0;  // bumped then woken by tp-main

volatile sig_atomic_t g_usr1 = 0, g_usr2 = 0;

void OnUsr1(int) { g_usr1 = g_usr1 + 1; }
void OnUsr2(int) { g_usr2 = g_usr2 + 1; }

void Count(int who) {
  ++t_count;
  g_total.fetch_add(1);
  g_published[who].store(t_count);
}

void Start(int who) {
  prctl(PR_SET_NAME, kNames[who], 0, 0, 0);
  g_tid[who].store(syscall(SYS_gettid));
}

void SleepMs(long ms, int raw) {
  struct timespec req = {ms / 1000, (ms % 1000) * 1000000L};
  long r = raw ? syscall(SYS_nanosleep, &req, nullptr) : nanosleep(&req, nullptr);
  if (r != 0 && errno != EINTR) g_bad.fetch_add(1);
}

void* Spin(void*) {
  Start(kSpin);
  for (;;) {
    struct timespec a, b;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
    volatile uint64_t x = 0;
    do {
      for (int i = 0; i < 1000; ++i) x = x + static_cast<uint64_t>(i);
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
    } while ((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec) < 1000000L);
    Count(kSpin);
    SleepMs(5, 0);
  }
  return nullptr;
}

void* Sleep(void*) {
  Start(kSleep);
  for (;;) {
    SleepMs(50, 1);
    Count(kSleep);
  }
  return nullptr;
}

void* Cond(void*) {
  Start(kCond);
  uint64_t seen = 0;
  for (;;) {
    pthread_mutex_lock(&g_lock);
    while (g_generation == seen) pthread_cond_wait(&g_cond, &g_lock);
    seen = g_generation;
    pthread_mutex_unlock(&g_lock);
    Count(kCond);
  }
  return nullptr;
}

void* Futex(void*) {
  Start(kFutex);
  uint32_t seen = 0;
  for (;;) {
    uint32_t now;
    while ((now = __atomic_load_n(&g_futex_word, __ATOMIC_ACQUIRE)) == seen) {
      long r = syscall(SYS_futex, &g_futex_word, FUTEX_WAIT_PRIVATE, seen, nullptr, nullptr, 0);
      if (r != 0 && errno != EAGAIN && errno != EINTR) g_bad.fetch_add(1);
    }
    seen = now;
    Count(kFutex);
  }
  return nullptr;
}

void WriteState() {
  static uint64_t seq = 0;
  ++seq;
  char text[1024];
  int n = snprintf(text, sizeof(text), "seq=%llu cookie=%016llx total=%llu", static_cast<unsigned long long>(seq),
                   static_cast<unsigned long long>(g_cookie), static_cast<unsigned long long>(g_total.load()));
  for (int i = 0; i < kThreads; ++i) {
    n += snprintf(text + n, sizeof(text) - static_cast<size_t>(n), " %s=%llu tid-%s=%ld", kNames[i],
                  static_cast<unsigned long long>(g_published[i].load()), kNames[i], g_tid[i].load());
  }
  sigset_t now;
  pthread_sigmask(SIG_BLOCK, nullptr, &now);
  int mask_ok = !sigismember(&now, SIGUSR1) && !sigismember(&now, SIGUSR2) && sigismember(&now, SIGWINCH);
  n += snprintf(text + n, sizeof(text) - static_cast<size_t>(n), " usr1=%d usr2=%d mask-ok=%d bad=%ld end=%llu",
                static_cast<int>(g_usr1), static_cast<int>(g_usr2), mask_ok, g_bad.load(), static_cast<unsigned long long>(seq));
  // One record of fixed length, rewritten in place through the fd held
  // since the start: its fd table never changes (a dump sees what a
  // restore gives back). A reader that catches a write half done sees seq
  // and end differ.
  memset(text + n, ' ', sizeof(text) - static_cast<size_t>(n));
  text[sizeof(text) - 1] = '\n';
  if (pwrite(g_state_fd, text, sizeof(text), 0) != static_cast<ssize_t>(sizeof(text))) _exit(11);
}

void* Idle(void*) {
  for (;;) pause();
  return nullptr;
}

int IdleTree(int tasks, int threads) {
  for (int i = 1; i < tasks; ++i) {
    pid_t c = fork();
    if (c < 0) return 4;
    if (c == 0) break;
  }
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  for (int i = 1; i < threads; ++i) {
    pthread_t t;
    if (pthread_create(&t, &attr, Idle, nullptr) != 0) return 3;
  }
  char path[600];
  snprintf(path, sizeof(path), "%s/ready-%d", g_dir, getpid());
  int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return 5;
  close(fd);
  for (;;) pause();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && strcmp(argv[1], "--idle") == 0 && strlen(argv[4]) < sizeof(g_dir)) {
    strcpy(g_dir, argv[4]);
    return IdleTree(atoi(argv[2]), atoi(argv[3]));
  }
  if (argc != 2 || strlen(argv[1]) >= sizeof(g_dir)) {
    fprintf(stderr, "usage: threads_prog DIR | threads_prog --idle TASKS THREADS DIR\n");
    return 64;
  }
  strcpy(g_dir, argv[1]);
  if (getrandom(&g_cookie, sizeof(g_cookie), 0) != sizeof(g_cookie)) return 2;
  char path[600];
  snprintf(path, sizeof(path), "%s/state", g_dir);
  g_state_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (g_state_fd < 0) return 10;
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = OnUsr1;
  sigaction(SIGUSR1, &sa, nullptr);
  sa.sa_handler = OnUsr2;
  sigaction(SIGUSR2, &sa, nullptr);
  // The workers are born with USR1 and USR2 (and WINCH) blocked; the
  // leader unblocks USR1 and USR2 once they exist.
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  sigaddset(&block, SIGUSR2);
  sigaddset(&block, SIGWINCH);
  pthread_sigmask(SIG_BLOCK, &block, nullptr);
  Start(kMain);
  void* (*bodies[kThreads])(void*) = {nullptr, Spin, Sleep, Cond, Futex};
  for (int i = 1; i < kThreads; ++i) {
    pthread_t t;
    if (pthread_create(&t, nullptr, bodies[i], nullptr) != 0) return 3;
  }
  for (int i = 1; i < kThreads; ++i) {
    while (g_tid[i].load() == 0) SleepMs(1, 0);
  }
  sigset_t unblock;
  sigemptyset(&unblock);
  sigaddset(&unblock, SIGUSR1);
  sigaddset(&unblock, SIGUSR2);
  pthread_sigmask(SIG_UNBLOCK, &unblock, nullptr);
  int usr1_done = 0, usr2_done = 0;
  for (;;) {
    if (g_usr1 != usr1_done) {
      usr1_done = g_usr1;
      pthread_mutex_lock(&g_lock);
      ++g_generation;
      pthread_cond_signal(&g_cond);
      pthread_mutex_unlock(&g_lock);
    }
    if (g_usr2 != usr2_done) {
      usr2_done = g_usr2;
      __atomic_add_fetch(&g_futex_word, 1, __ATOMIC_RELEASE);
      syscall(SYS_futex, &g_futex_word, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
    }
    Count(kMain);
    WriteState();
    SleepMs(20, 0);
  }
}
