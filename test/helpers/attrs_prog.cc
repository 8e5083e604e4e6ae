// A tree whose tasks and threads set the attributes a restore must give
// back (test/ns/attrs_test.cc dumps, kills, restores and checks it from
// outside and through what each task reports of itself). Plain C style,
// linked statically like mm_programs (no loader, no sanitizer runtime).
//
//   attrs_prog DIR [root-pdeath]
//
// The root first forks a child, which forks a grandchild, and starts a
// second thread; then it sets for itself: RLIMIT_NOFILE 200/300,
// RLIMIT_STACK 4 MiB soft, nice 7, child subreaper, no_new_privs, umask
// 027, timer slack 123456 ns, TSC disabled (PR_TSC_SIGSEGV: from then on it
// never reads the clock), a SA_RESETHAND handler of SIGINT, SIGQUIT at
// SIG_DFL with SA_RESTART|SA_NODEFER and SIGUSR2 in its mask, a SA_RESETHAND
// handler of SIGUSR1 that has fired (SIG_DFL again, its flags kept), and one
// page of private anonymous memory per advice: MADV_WIPEONFORK (holding a
// secret), DONTFORK, DONTDUMP, HUGEPAGE, NOHUGEPAGE, MERGEABLE, SEQUENTIAL,
// RANDOM, one mlock'd page, the personality ADDR_NO_RANDOMIZE, SIGPWR
// blocked, a sigaltstack, ITIMER_REAL every 1000 s and ITIMER_VIRTUAL once
// in 500 s (neither fires while a test runs). With root-pdeath it also asks
// for SIGTERM when its parent dies. Its second thread sets nice 3, timer
// slack 77777 ns, the name "attrs-second-thread" (comm keeps 15 bytes of
// it), SIGWINCH blocked and a sigaltstack of its own, and keeps the TSC and
// no_new_privs off. The grandchild sets nice 2, umask 077, RLIMIT_NOFILE
// 100/150 and SIGTERM as its parent-death signal, with a handler that
// writes DIR/leaf-term and exits.
//
// Each task rewrites DIR/root, DIR/middle or DIR/leaf (one record of
// key=value words between seq=N and end=N, with the random cookie made at
// start and its pid) every 50 ms with what it reads of itself, in place
// through an fd it keeps; the second thread DIR/thread (with its tid); the
// root writes DIR/layout (the pages' addresses, and whether each madvise
// was taken) once, before it opens DIR/root. When DIR/fork-request
// appears task 1 forks a child that reports in DIR/forked what it sees of
// the WIPEONFORK page (its first bytes) and whether the DONTFORK page is
// mapped in it, then exits. When DIR/change-request appears task 1
// changes what verify must then see changed: its sigaltstack gets
// SS_AUTODISARM, it blocks SIGURG too, munlocks the locked page, sets
// personality 0, ITIMER_REAL every 2000 s and disarms ITIMER_VIRTUAL; the
// second thread then blocks SIGURG too, names itself "renamed" and
// disables its sigaltstack. Each record says changed=1 once done.
#include <errno.h>
#include <initializer_list>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

namespace {

const long kPage = 4096;
char g_dir[512];
uint64_t g_cookie;
volatile sig_atomic_t g_ints = 0, g_usr1 = 0;
volatile sig_atomic_t g_change = 0;  // set by task 1 for its second thread: make its changes
const size_t kAltstackSize = 65536;
const int kSsAutodisarm = static_cast<int>(1u << 31);  // <linux/signal.h>, which clashes with <signal.h>
char g_altstacks[2][kAltstackSize];                  // task 1's, its second thread's

void WriteFile(const char* name, const char* text) {
  char path[600], tmp[620];
  snprintf(path, sizeof(path), "%s/%s", g_dir, name);
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  size_t len = strlen(text);
  if (write(fd, text, len) != static_cast<ssize_t>(len)) _exit(11);
  close(fd);
  if (rename(tmp, path) != 0) _exit(12);
}

// A file a task or thread rewrites in place, kept open from the start: its
// fd table does not change from one report to the next (a dump that caught
// a file open for a moment would make verify count an fd the images lack).
// One fixed-length record, "seq=N ... end=N": a reader retries one it
// caught half written.
struct Record {
  int fd = -1;
  unsigned long seq = 0;
  void Open(const char* name) {
    char path[600];
    snprintf(path, sizeof(path), "%s/%s", g_dir, name);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) _exit(10);
  }
  void Write(const char* text) {
    char buf[1024];
    memset(buf, ' ', sizeof(buf));
    ++seq;
    int n = snprintf(buf, sizeof(buf) - 1, "seq=%lu %s end=%lu", seq, text, seq);
    if (n < 0 || n >= static_cast<int>(sizeof(buf)) - 1) _exit(13);
    buf[n] = ' ';
    buf[sizeof(buf) - 1] = '\n';
    if (pwrite(fd, buf, sizeof(buf), 0) != static_cast<ssize_t>(sizeof(buf))) _exit(11);
  }
};

// nanosleep: a syscall, never the vDSO's clock (RDTSC faults once the TSC
// is disabled).
void Nap(long ms) {
  struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&t, &t) != 0 && errno == EINTR) {
  }
}

// What a thread reads of itself.
void Self(char* out, size_t len) {
  int pdeath = 0, reaper = 0, tsc = 0;
  prctl(PR_GET_PDEATHSIG, &pdeath);
  prctl(PR_GET_CHILD_SUBREAPER, &reaper);
  if (prctl(PR_GET_TSC, &tsc) != 0) tsc = 0;
  mode_t mask = umask(0);
  umask(mask);
  errno = 0;
  int nice = getpriority(PRIO_PROCESS, 0);
  struct rlimit nofile;
  getrlimit(RLIMIT_NOFILE, &nofile);
  snprintf(out, len, "cookie=%016llx pdeath=%d subreaper=%d tsc=%d nnp=%d umask=%03o slack=%ld nice=%d nofile=%llu/%llu",
           static_cast<unsigned long long>(g_cookie), pdeath, reaper, tsc, static_cast<int>(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)),
           static_cast<unsigned>(mask), static_cast<long>(prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0)), nice,
           static_cast<unsigned long long>(nofile.rlim_cur), static_cast<unsigned long long>(nofile.rlim_max));
}

// Blocks `sig` in the calling thread, besides what it blocks.
void Block(int sig) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

// g_altstacks[which] as the calling thread's sigaltstack, with `flags`; the stack.
void* Altstack(int which, int flags) {
  stack_t ss = {};
  ss.ss_sp = g_altstacks[which];
  ss.ss_size = kAltstackSize;
  ss.ss_flags = flags;
  if (sigaltstack(&ss, nullptr) != 0) _exit(14);
  return ss.ss_sp;
}

void* SecondThread(void*) {
  setpriority(PRIO_PROCESS, 0, 3);  // this thread only
  prctl(PR_SET_TIMERSLACK, 77777, 0, 0, 0);
  prctl(PR_SET_NAME, "attrs-second-thread");
  Block(SIGWINCH);
  Altstack(1, 0);
  char self[400], text[500];
  long tid = static_cast<long>(syscall(SYS_gettid));
  Record out;
  out.Open("thread");
  int changed = 0;
  for (unsigned long n = 0;; ++n) {
    if (g_change && !changed) {
      Block(SIGURG);
      prctl(PR_SET_NAME, "renamed");
      stack_t off = {};
      off.ss_flags = SS_DISABLE;
      sigaltstack(&off, nullptr);
      changed = 1;
    }
    Self(self, sizeof(self));
    snprintf(text, sizeof(text), "%s counter=%lu tid=%ld changed=%d", self, n, tid, changed);
    out.Write(text);
    Nap(50);
  }
  return nullptr;
}

void OnLeafTerm(int) {
  WriteFile("leaf-term", "got=SIGTERM\n");
  _exit(0);
}

[[noreturn]] void Loop(const char* name) {
  char self[400], text[600];
  Record out;
  out.Open(name);
  for (unsigned long n = 0;; ++n) {
    Self(self, sizeof(self));
    snprintf(text, sizeof(text), "%s counter=%lu pid=%d", self, n, getpid());
    out.Write(text);
    Nap(50);
  }
}

[[noreturn]] void Leaf() {
  pid_t parent = getppid();
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = OnLeafTerm;
  sigaction(SIGTERM, &sa, nullptr);
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) OnLeafTerm(SIGTERM);
  setpriority(PRIO_PROCESS, 0, 2);
  umask(077);
  struct rlimit nofile = {100, 150};
  setrlimit(RLIMIT_NOFILE, &nofile);
  Loop("leaf");
}

[[noreturn]] void Middle() {
  if (fork() == 0) Leaf();
  Loop("middle");
}

void OnInt(int) { g_ints = g_ints + 1; }
void OnUsr1(int) { g_usr1 = g_usr1 + 1; }

// One page with `advice`; 0 when mmap failed. `taken`: madvise succeeded.
char* Page(int advice, int* taken) {
  void* p = mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) _exit(3);
  *taken = madvise(p, kPage, advice) == 0;
  return static_cast<char*>(p);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  snprintf(g_dir, sizeof(g_dir), "%s", argv[1]);
  bool root_pdeath = argc > 2 && strcmp(argv[2], "root-pdeath") == 0;
  while (g_cookie == 0) {
    if (getrandom(&g_cookie, sizeof(g_cookie), 0) != sizeof(g_cookie)) return 3;
  }
  if (fork() == 0) Middle();
  pthread_t thread;
  if (pthread_create(&thread, nullptr, SecondThread, nullptr) != 0) return 4;

  struct rlimit nofile = {200, 300}, stack;
  setrlimit(RLIMIT_NOFILE, &nofile);
  getrlimit(RLIMIT_STACK, &stack);
  stack.rlim_cur = 4 << 20;
  setrlimit(RLIMIT_STACK, &stack);
  setpriority(PRIO_PROCESS, 0, 7);
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  if (root_pdeath) prctl(PR_SET_PDEATHSIG, SIGTERM);
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  umask(027);
  prctl(PR_SET_TIMERSLACK, 123456, 0, 0, 0);
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = OnInt;
  sa.sa_flags = SA_RESETHAND;
  sigaction(SIGINT, &sa, nullptr);
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = SIG_DFL;
  sa.sa_flags = SA_RESTART | SA_NODEFER;
  sigaddset(&sa.sa_mask, SIGUSR2);
  sigaction(SIGQUIT, &sa, nullptr);
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = OnUsr1;
  sa.sa_flags = SA_RESETHAND | SA_RESTART;
  sigaction(SIGUSR1, &sa, nullptr);
  raise(SIGUSR1);  // runs once: SIG_DFL from now on, with its flags
  Block(SIGPWR);
  void* altstack = Altstack(0, 0);
  personality(ADDR_NO_RANDOMIZE);
  struct itimerval real = {{1000, 0}, {1000, 0}}, virt = {{0, 0}, {500, 0}};
  setitimer(ITIMER_REAL, &real, nullptr);
  setitimer(ITIMER_VIRTUAL, &virt, nullptr);

  int wipe_ok, dontfork_ok, dontdump_ok, huge_ok, nohuge_ok, merge_ok, seq_ok, rand_ok, locked_ok;
  char* wipe = Page(MADV_WIPEONFORK, &wipe_ok);
  char* dontfork = Page(MADV_DONTFORK, &dontfork_ok);
  char* dontdump = Page(MADV_DONTDUMP, &dontdump_ok);
  char* huge = Page(MADV_HUGEPAGE, &huge_ok);
  char* nohuge = Page(MADV_NOHUGEPAGE, &nohuge_ok);
  char* merge = Page(MADV_MERGEABLE, &merge_ok);
  char* seq = Page(MADV_SEQUENTIAL, &seq_ok);
  char* rnd = Page(MADV_RANDOM, &rand_ok);
  char* locked = Page(MADV_NORMAL, &locked_ok);
  locked_ok = mlock(locked, kPage) == 0;
  snprintf(wipe, kPage, "SECRET%010llx", static_cast<unsigned long long>(g_cookie & 0xffffffffffull));
  for (char* p : {dontfork, dontdump, huge, nohuge, merge, seq, rnd, locked}) p[0] = 'x';
  char layout[800];
  snprintf(layout, sizeof(layout),
           "wipe=%p dontfork=%p dontdump=%p huge=%p nohuge=%p merge=%p seqread=%p randread=%p wipe_ok=%d dontfork_ok=%d dontdump_ok=%d "
           "huge_ok=%d nohuge_ok=%d merge_ok=%d seqread_ok=%d randread_ok=%d locked=%p locked_ok=%d altstack=%p thread_altstack=%p\n",
           wipe, dontfork, dontdump, huge, nohuge, merge, seq, rnd, wipe_ok, dontfork_ok, dontdump_ok, huge_ok, nohuge_ok, merge_ok, seq_ok,
           rand_ok, locked, locked_ok, altstack, static_cast<void*>(g_altstacks[1]));
  WriteFile("layout", layout);
  prctl(PR_SET_TSC, PR_TSC_SIGSEGV);  // no clock from here on

  char self[400], text[900];
  Record out;
  out.Open("root");
  int changed = 0;
  for (unsigned long n = 0;; ++n) {
    char request[700];
    snprintf(request, sizeof(request), "%s/change-request", g_dir);
    if (unlink(request) == 0) {
      Altstack(0, kSsAutodisarm);
      Block(SIGURG);
      munlock(locked, kPage);
      personality(0);
      real.it_interval.tv_sec = 2000;
      setitimer(ITIMER_REAL, &real, nullptr);
      virt = {};
      setitimer(ITIMER_VIRTUAL, &virt, nullptr);
      g_change = 1;
      changed = 1;
    }
    snprintf(request, sizeof(request), "%s/fork-request", g_dir);
    if (unlink(request) == 0) {
      pid_t child = fork();
      if (child == 0) {
        unsigned char vec = 0;
        int dontfork_mapped = mincore(dontfork, kPage, &vec) == 0 || errno != ENOMEM;
        char first[17] = {};
        memcpy(first, wipe, 16);
        for (int i = 0; i < 16; ++i) first[i] = first[i] >= 0x21 && first[i] <= 0x7e ? first[i] : '.';
        int wiped = 1;
        for (long i = 0; i < kPage; ++i) wiped = wiped && wipe[i] == 0;
        snprintf(text, sizeof(text), "first=%s wiped=%d dontfork_mapped=%d\n", first, wiped, dontfork_mapped);
        WriteFile("forked", text);
        _exit(0);
      }
      if (child > 0) waitpid(child, nullptr, 0);
    }
    struct sigaction in, quit, usr1;
    sigaction(SIGINT, nullptr, &in);
    sigaction(SIGQUIT, nullptr, &quit);
    sigaction(SIGUSR1, nullptr, &usr1);
    struct rlimit st;
    getrlimit(RLIMIT_STACK, &st);
    Self(self, sizeof(self));
    snprintf(text, sizeof(text),
             "%s counter=%lu secret=%.16s ints=%d int_flags=%#lx int_default=%d quit_flags=%#lx quit_usr2=%d usr1_default=%d "
             "usr1_flags=%#lx usr1_runs=%d stack=%llu changed=%d",
             self, n, wipe, static_cast<int>(g_ints), static_cast<unsigned long>(in.sa_flags) & 0xffffffffu,
             in.sa_handler == SIG_DFL, static_cast<unsigned long>(quit.sa_flags) & 0xffffffffu, sigismember(&quit.sa_mask, SIGUSR2) == 1,
             usr1.sa_handler == SIG_DFL, static_cast<unsigned long>(usr1.sa_flags) & 0xffffffffu, static_cast<int>(g_usr1),
             static_cast<unsigned long long>(st.rlim_cur), changed);
    out.Write(text);
    Nap(50);
  }
}
