// A program whose memory and signal state the memory dump tests check,
// written in plain C style and linked statically (its layout is its own:
// no dynamic loader, no sanitizer runtime).
//
//   mm_counter DIR          the counter: a random cookie and a counter in a
//                           private anonymous mmap, on the heap, on its
//                           stack and in a MAP_SHARED anonymous page shared
//                           with a forked child (which echoes the counter
//                           from its own stack); a SIGUSR2 handler with
//                           SA_RESTART and a mask, SIGUSR1 blocked, an
//                           itimer, a sigaltstack, and a region it made
//                           PROT_NONE; it rounds toward zero (x87
//                           control word and MXCSR, FPU state a restore
//                           must give back); it sleeps in nanosleep
//                           between counts (every 100 ms).
//   mm_counter DIR big      64 MiB written with a pattern, 64 MiB never
//                           touched, 1 MiB only read, 1 MiB written with
//                           zeros; then it sleeps.
//
// It writes DIR/layout-PID (its addresses, once) and DIR/state-PID (its
// state, rewritten after each count: counter, cookie, how many SIGUSR2 it
// handled, and whether its mask, itimer, handler and altstack are still
// what it set). The magics of the regions are built at run time, so they
// are nowhere in the binary: a search of the pages images finds exactly
// the regions.
#include <errno.h>
#include <fcntl.h>
#include <fenv.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

namespace {

struct Region {
  char magic[8];
  uint64_t cookie;
  uint64_t counter;
  uint64_t echo;
};

const long kPage = 4096;
const time_t kTimerSeconds = 3600;
volatile sig_atomic_t g_usr2 = 0;
char g_dir[512];

void OnUsr2(int) { g_usr2 = g_usr2 + 1; }

// "RM" + two letters of the region + "01", made from shifted bytes.
void Magic(char out[8], const char* shifted) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(shifted[i] + 1);
}

void WriteFile(const char* stem, const char* text) {
  char path[600];
  snprintf(path, sizeof(path), "%s/%s-%d", g_dir, stem, getpid());
  char tmp[620];
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) _exit(10);
  size_t len = strlen(text);
  if (write(fd, text, len) != static_cast<ssize_t>(len)) _exit(11);
  close(fd);
  if (rename(tmp, path) != 0) _exit(12);
}

// What the task set up is still there: SIGUSR1 blocked, the itimer's
// interval, the SIGUSR2 handler with SA_RESTART, the altstack, the
// rounding mode.
int StateIntact(void* altstack) {
  sigset_t now;
  sigprocmask(SIG_BLOCK, nullptr, &now);
  struct itimerval it;
  getitimer(ITIMER_REAL, &it);
  struct sigaction sa;
  sigaction(SIGUSR2, nullptr, &sa);
  stack_t ss;
  sigaltstack(nullptr, &ss);
  return sigismember(&now, SIGUSR1) == 1 && it.it_interval.tv_sec == kTimerSeconds && sa.sa_handler == OnUsr2 &&
         (sa.sa_flags & SA_RESTART) != 0 && sigismember(&sa.sa_mask, SIGWINCH) == 1 && ss.ss_sp == altstack &&
         fegetround() == FE_TOWARDZERO && (__builtin_ia32_stmxcsr() & 0x6000) == 0x6000;
}

void SleepMs(long ms, int raw, long* bad) {
  struct timespec req = {ms / 1000, (ms % 1000) * 1000000L}, rem;
  // The parent sleeps through glibc (clock_nanosleep), the child with the
  // nanosleep syscall itself.
  long r = raw ? syscall(SYS_nanosleep, &req, &rem) : nanosleep(&req, &rem);
  if (r != 0 && errno != EINTR) ++*bad;
}

[[noreturn]] void Child(Region* shared) {
  Region mine;
  Magic(mine.magic, "QLBGKC/0");  // RMCHLD01
  mine.cookie = shared->cookie;
  mine.counter = 0;
  mine.echo = 0;
  long bad = 0;
  for (;;) {
    mine.counter = shared->counter;
    mine.echo = shared->counter;
    shared->echo = mine.echo;
    char text[200];
    snprintf(text, sizeof(text), "counter=%llu cookie=%016llx usr2=%d intact=%d bad=%ld stack=%p\n",
             static_cast<unsigned long long>(mine.counter), static_cast<unsigned long long>(mine.cookie), static_cast<int>(g_usr2),
             fegetround() == FE_TOWARDZERO ? 1 : 0, bad,
             static_cast<void*>(&mine));
    WriteFile("state", text);
    SleepMs(100, 1, &bad);
  }
}

int Counter() {
  uint64_t cookie = 0;
  if (getrandom(&cookie, sizeof(cookie), 0) != sizeof(cookie)) return 2;
  char* anon = static_cast<char*>(mmap(nullptr, 4 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  char* shared_page = static_cast<char*>(mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  char* altstack = static_cast<char*>(mmap(nullptr, 16 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  char* guarded = static_cast<char*>(mmap(nullptr, 2 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (anon == MAP_FAILED || shared_page == MAP_FAILED || altstack == MAP_FAILED || guarded == MAP_FAILED) return 3;
  // Page 0 of the anonymous map is never touched, page 2 only read (the
  // zero page), page 3 written with zeros: none of them is dumped.
  (void)*static_cast<volatile char*>(anon + 2 * kPage);
  memset(anon + 3 * kPage, 0, kPage);
  Region* regions[4];
  regions[0] = reinterpret_cast<Region*>(anon + kPage);
  regions[1] = static_cast<Region*>(malloc(sizeof(Region)));
  Region on_stack;
  regions[2] = &on_stack;
  regions[3] = reinterpret_cast<Region*>(shared_page);
  const char* shifted[4] = {"QL@MNM/0", "QLGD@O/0", "QLRSBJ/0", "QLRGQC/0"};  // RMANON01 RMHEAP01 RMSTCK01 RMSHRD01
  for (int i = 0; i < 4; ++i) {
    Magic(regions[i]->magic, shifted[i]);
    regions[i]->cookie = cookie;
    regions[i]->counter = 0;
    regions[i]->echo = 0;
  }

  // A region nobody may read any more (PROT_NONE): its page is dumped all
  // the same.
  Region* hidden = reinterpret_cast<Region*>(guarded + kPage / 2);
  Magic(hidden->magic, "QLOQNS/0");  // RMPROT01
  hidden->cookie = cookie;
  hidden->counter = 1;
  hidden->echo = 0;
  if (mprotect(guarded, 2 * kPage, PROT_NONE) != 0) return 8;

  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = OnUsr2;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGWINCH);
  if (sigaction(SIGUSR2, &sa, nullptr) != 0) return 4;
  stack_t ss;
  ss.ss_sp = altstack;
  ss.ss_size = 16 * kPage;
  ss.ss_flags = 0;
  if (sigaltstack(&ss, nullptr) != 0) return 5;
  struct itimerval it = {{kTimerSeconds, 0}, {kTimerSeconds, 0}};
  if (setitimer(ITIMER_REAL, &it, nullptr) != 0) return 6;
  if (fesetround(FE_TOWARDZERO) != 0) return 9;
  // The child inherits all of it; SIGUSR1 is blocked in both.
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  sigprocmask(SIG_BLOCK, &block, nullptr);
  pid_t child = fork();
  if (child < 0) return 7;
  if (child == 0) Child(regions[3]);

  char text[600];
  snprintf(text, sizeof(text), "anon=%p heap=%p stack=%p shared=%p handler=%p altstack=%p altsize=%ld child=%d hidden=%p\n",
           static_cast<void*>(anon), static_cast<void*>(regions[1]), static_cast<void*>(&on_stack), static_cast<void*>(shared_page),
           reinterpret_cast<void*>(OnUsr2), static_cast<void*>(altstack), 16 * kPage, child, static_cast<void*>(hidden));
  WriteFile("layout", text);
  long bad = 0;
  for (;;) {
    for (int i = 0; i < 4; ++i) ++regions[i]->counter;
    snprintf(text, sizeof(text), "counter=%llu cookie=%016llx usr2=%d intact=%d bad=%ld echo=%llu\n",
             static_cast<unsigned long long>(regions[0]->counter), static_cast<unsigned long long>(cookie), static_cast<int>(g_usr2),
             StateIntact(altstack), bad, static_cast<unsigned long long>(regions[3]->echo));
    WriteFile("state", text);
    SleepMs(100, 0, &bad);
  }
}

int Big() {
  const size_t kBig = 64ul << 20, kSmall = 1ul << 20;
  uint64_t* written = static_cast<uint64_t*>(mmap(nullptr, kBig, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  char* untouched = static_cast<char*>(mmap(nullptr, kBig, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  char* read_only = static_cast<char*>(mmap(nullptr, kSmall, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  char* zeros = static_cast<char*>(mmap(nullptr, kSmall, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (written == MAP_FAILED || untouched == MAP_FAILED || read_only == MAP_FAILED || zeros == MAP_FAILED) return 3;
  // Every word of a written page holds its address: a page read back
  // from the images tells where it came from.
  for (size_t i = 0; i < kBig / sizeof(uint64_t); ++i) written[i] = reinterpret_cast<uint64_t>(&written[i]);
  for (size_t off = 0; off < kSmall; off += kPage) {
    (void)*static_cast<volatile char*>(read_only + off);
    memset(zeros + off, 0, kPage);
  }
  char text[400];
  snprintf(text, sizeof(text), "written=%p untouched=%p read_only=%p zeros=%p big=%zu small=%zu\n", static_cast<void*>(written),
           static_cast<void*>(untouched), static_cast<void*>(read_only), static_cast<void*>(zeros), kBig, kSmall);
  WriteFile("layout", text);
  long bad = 0;
  for (;;) SleepMs(1000, 0, &bad);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || strlen(argv[1]) >= sizeof(g_dir)) return 64;
  strcpy(g_dir, argv[1]);
  if (argc > 2 && strcmp(argv[2], "big") == 0) return Big();
  return Counter();
}
