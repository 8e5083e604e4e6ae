// Real programs continue where they were dumped: each test starts a live
// tree in a private PID (and, for AutoFS, mount) namespace inside the
// sandbox, dumps it (which kills it), restores it with `--detach`, runs
// `verify`, and then checks from outside that it went on rather than
// started again: random cookies made at start are the same, counters go on
// from their dumped values, and tokens the test makes only after the
// restore travel through the restored memory, pipes and signals. Programs:
// test/helpers/mm_programs (shared memory, a changed private file mapping,
// a sleep and a blocked read, signal state), Debian's bash and python3, and
// the AutoFS test master (its served-key count and cookie live in memory).
// Each test kills only what it started and leaves no process, mount or
// /dev/shm entry.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "sys/meminfo.h"
#include "sys/proc_maps.h"
#include "test/helpers/mm_images.h"
#include "test/helpers/sandbox.h"
#include "test/helpers/test_util.h"

namespace ro::test {
namespace {

#define EXPECT_OR_RETURN(cond, msg)                                          \
  do {                                                                       \
    if (!(cond)) return std::string(#cond) + " failed: " + std::string(msg); \
  } while (0)

using Fields = std::map<std::string, std::string>;

std::string Str(long long v) { return std::to_string(v); }

std::string Helper() { return std::string(RO_HELPERS_DIR) + "/mm_programs"; }

uint64_t NowMs() {
  timespec t{};
  ::clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<uint64_t>(t.tv_sec) * 1000 + static_cast<uint64_t>(t.tv_nsec) / 1000000;
}

uint64_t Random() {
  uint64_t v = 0;
  while (v == 0) {
    if (::getrandom(&v, sizeof(v), 0) != sizeof(v)) return 0x5eed;
  }
  return v;
}

std::string HexOf(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%llx", static_cast<unsigned long long>(v));
  return buf;
}

// The key=value words of `path` once `ok` holds for them (polling every
// 10 ms for up to `ms`); empty when it never did.
Fields WaitFor(const std::string& path, const std::function<bool(Fields&)>& ok, int ms = 5000) {
  for (int waited = 0; waited <= ms; waited += 10) {
    Fields f = KeyValues(ReadText(path));
    if (!f.empty() && ok(f)) return f;
    ::usleep(10000);
  }
  return {};
}

Fields WaitCounter(const std::string& path, const char* key, uint64_t at_least, int ms = 5000) {
  return WaitFor(path, [&](Fields& f) { return NumberOf(f, key) >= at_least; }, ms);
}

// Writes `text` to `path` atomically (the programs poll it).
void Put(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  (void)!::write(fd, text.data(), text.size());
  ::close(fd);
  ::rename(tmp.c_str(), path.c_str());
}

// What the sandbox holds before a test starts its tree: none of it may
// change by the end (taken and checked inside the sandbox).
struct Baseline {
  std::vector<std::string> mounts = MountTable();
  std::vector<std::string> shm = DevShm();
  std::string Check() const {
    if (MountTable() != mounts) return "mounts were left behind";
    if (DevShm() != shm) return "/dev/shm entries were left behind";
    if (int n = OtherProcesses(); n != 0) return Str(n) + " processes were left behind";
    return "";
  }
};

// dump (which kills the tree), wait for its root, restore --detach
// --check-pages, verify. `log` gets restore-orch's log.
struct Cycle {
  pid_t restored = 0;
  std::string log;
  uint64_t dump_start_ms = 0, restored_ms = 0;
};

// `verify` false: the tree changes by itself (a shell forks and reaps), so
// a comparison of its tasks could race.
std::string DumpAndRestore(pid_t root, const std::string& dir, Cycle& c, const std::vector<std::string>& restore_args = {},
                           bool verify = true) {
  c.dump_start_ms = NowMs();
  RunResult d = RunDump(root, dir);
  if (d.status != 0) KillTree(root);  // a refused dump leaves the tree running
  ::waitpid(root, nullptr, 0);
  EXPECT_OR_RETURN(d.status == 0, "dump: " + d.err);
  // --check-pages: every restored page is compared with the images before the tasks run.
  std::vector<std::string> argv = {RestoreOrch(), "--images", dir, "--detach", "--check-pages", "-v"};
  argv.insert(argv.end(), restore_args.begin(), restore_args.end());
  RunResult r = RunCommand(argv);
  c.restored_ms = NowMs();
  c.log = r.err;
  EXPECT_OR_RETURN(r.status == 0, "restore: " + r.err);
  EXPECT_OR_RETURN(r.err.find("matches their pages images") != std::string::npos, "the pages were not compared: " + r.err);
  c.restored = static_cast<pid_t>(std::atoi(r.out.c_str()));
  EXPECT_OR_RETURN(c.restored > 0, "restore printed no pid: " + r.out);
  if (!verify) return "";
  RunResult v = RunCommand({RestoreOrch(), "verify", "--images", dir, "--pid", Str(c.restored)});
  if (v.status != 0) {
    // The programs run on: one frozen while it wrote its state file (open,
    // write, close) has closed that fd by the time verify looks. Only such
    // a "missing" fd is forgiven; any other difference fails.
    std::istringstream lines(v.out);
    bool other = false;
    for (std::string line; std::getline(lines, line);) {
      bool closed_since = line.rfind("task ", 0) == 0 && line.find(" fd ") != std::string::npos && line.ends_with(": missing");
      bool summary = line.ends_with(" difference") || line.ends_with(" differences");
      other |= !closed_since && !summary && !line.empty();
    }
    if (other || v.status != 1) {
      KillTree(c.restored);
      return "verify: " + v.out + v.err;
    }
  }
  return "";
}

// The VMA of `pid` that starts at `start`.
std::optional<sys::MapsEntry> MapAt(pid_t pid, uint64_t start) {
  auto maps = sys::ReadMaps(pid);
  if (!maps.ok()) return std::nullopt;
  for (const sys::MapsEntry& m : *maps) {
    if (m.start == start) return m;
  }
  return std::nullopt;
}

// A parent and its child share a MAP_SHARED anonymous region: after the
// restore it is still one object (one inode, both tasks), the counters of
// each are seen by the other, and tokens made after the restore go both ways.
TEST(MmContinue, SharedAnonymousRegionIsSharedBothWays) {
  std::string err = InSandbox([] {
    Baseline base;
    TempDir work, images;
    const std::string w = work.path();
    pid_t root = StartTreeInNewPidNs([&] {
      ::execl(Helper().c_str(), "mm_programs", w.c_str(), "shared", nullptr);
      ::_exit(127);
    });
    EXPECT_OR_RETURN(root > 0, "clone");
    Fields p0 = WaitCounter(w + "/state-1", "counter", 3), c0 = WaitCounter(w + "/state-2", "counter", 3);
    EXPECT_OR_RETURN(!p0.empty() && !c0.empty(), "mm_programs shared did not start");
    uint64_t region = NumberOf(KeyValues(ReadText(w + "/layout-1")), "region");
    Cycle c;
    if (std::string e = DumpAndRestore(root, images.path(), c); !e.empty()) return e;
    uint64_t p_dumped = NumberOf(KeyValues(ReadText(w + "/state-1")), "counter");
    uint64_t c_dumped = NumberOf(KeyValues(ReadText(w + "/state-2")), "counter");
    std::vector<pid_t> tree = TreeBelow(c.restored);
    EXPECT_OR_RETURN(tree.size() == 2, "restored tree of " + Str(static_cast<long long>(tree.size())));
    // One object: the same inode in both tasks, at the same address.
    auto m1 = MapAt(tree[0], region), m2 = MapAt(tree[1], region);
    EXPECT_OR_RETURN(m1 && m2 && m1->perms.substr(0, 4) == "rw-s" && m2->perms.substr(0, 4) == "rw-s" && m1->inode == m2->inode &&
                         m1->end - m1->start == 3 * 4096,
                     "the region is not one shared mapping of 3 pages in both tasks");
    // Each counts on from its dumped value and sees the other count on.
    Fields p = WaitFor(w + "/state-1", [&](Fields& f) {
      return NumberOf(f, "counter") >= p_dumped + 5 && NumberOf(f, "other_counter") >= c_dumped + 5 &&
             NumberOf(f, "other_tail") >= c_dumped + 5;
    });
    Fields ch = WaitFor(w + "/state-2", [&](Fields& f) {
      return NumberOf(f, "counter") >= c_dumped + 5 && NumberOf(f, "other_counter") >= p_dumped + 5 &&
             NumberOf(f, "other_tail") >= p_dumped + 5;
    });
    EXPECT_OR_RETURN(!p.empty() && !ch.empty(), "counters through the region: " + ReadText(w + "/state-1") + ReadText(w + "/state-2"));
    EXPECT_OR_RETURN(p["cookie"] == p0["cookie"] && ch["cookie"] == p0["cookie"] && p["shared_cookie"] == p0["cookie"] &&
                         ch["shared_cookie"] == p0["cookie"],
                     "cookies changed: the tree started again");
    EXPECT_OR_RETURN(NumberOf(p, "counter") < p_dumped + 200, "the parent's counter jumped");
    // Tokens made now: the parent's to the child, the child's to the parent.
    uint64_t to_child = Random(), to_parent = Random();
    Put(w + "/poke-1", HexOf(to_child));
    Put(w + "/poke-2", HexOf(to_parent));
    Fields seen_by_child = WaitFor(w + "/state-2", [&](Fields& f) { return f["from_other"] == HexOf(to_child); });
    Fields seen_by_parent = WaitFor(w + "/state-1", [&](Fields& f) { return f["from_other"] == HexOf(to_parent); });
    EXPECT_OR_RETURN(!seen_by_child.empty(), "the child does not see the parent's write: " + ReadText(w + "/state-2"));
    EXPECT_OR_RETURN(!seen_by_parent.empty(), "the parent does not see the child's write: " + ReadText(w + "/state-1"));
    KillTree(c.restored);
    return base.Check();
  });
  EXPECT_EQ(err, "");
}

// A MAP_PRIVATE mapping of a file, changed in memory: the change comes back
// (and the program counts on in it), the pages it did not change still show
// the file, and the file itself is untouched.
TEST(MmContinue, PrivateFileMappingKeepsItsChangeAndTheFileDoesNot) {
  std::string err = InSandbox([] {
    Baseline base;
    TempDir work, images;
    const std::string w = work.path();
    std::string content(3 * 4096, '\0');
    for (size_t i = 0; i < content.size(); i += 8) {
      uint64_t r = Random();
      std::memcpy(&content[i], &r, 8);
    }
    work.Write("data.bin", content);
    auto fnv = [](const std::string& s) {
      uint64_t h = 1469598103934665603ull;
      for (unsigned char ch : s) h = (h ^ ch) * 1099511628211ull;
      char buf[24];
      std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
      return std::string(buf);
    };
    pid_t root = StartTreeInNewPidNs([&] {
      ::execl(Helper().c_str(), "mm_programs", w.c_str(), "file", (w + "/data.bin").c_str(), nullptr);
      ::_exit(127);
    });
    EXPECT_OR_RETURN(root > 0, "clone");
    Fields f0 = WaitCounter(w + "/state-1", "counter", 3);
    EXPECT_OR_RETURN(!f0.empty(), "mm_programs file did not start");
    uint64_t map = NumberOf(KeyValues(ReadText(w + "/layout-1")), "map");
    Cycle c;
    if (std::string e = DumpAndRestore(root, images.path(), c); !e.empty()) return e;
    uint64_t dumped = NumberOf(KeyValues(ReadText(w + "/state-1")), "counter");
    Fields f = WaitCounter(w + "/state-1", "counter", dumped + 5);
    EXPECT_OR_RETURN(!f.empty(), "the restored program does not count: " + ReadText(w + "/state-1"));
    EXPECT_OR_RETURN(f["cookie"] == f0["cookie"] && f["magic"] == "CHANGED!", "the change was lost: " + ReadText(w + "/state-1"));
    EXPECT_OR_RETURN(NumberOf(f, "counter") < dumped + 200, "the counter jumped");
    EXPECT_OR_RETURN(f["page0"] == fnv(content.substr(0, 4096)) && f["page2"] == fnv(content.substr(2 * 4096)) &&
                         f["page1_rest"] == fnv(content.substr(4096 + 64 + 24, 4096 - 64 - 24)),
                     "the unchanged pages do not show the file: " + ReadText(w + "/state-1"));
    EXPECT_OR_RETURN(work.Read("data.bin") == content, "the file was changed");
    auto m = MapAt(c.restored, map);
    EXPECT_OR_RETURN(m && m->perms.substr(0, 4) == "rw-p" && m->path == w + "/data.bin" && m->offset == 0 && m->end - m->start == 3 * 4096,
                     "the mapping is not the file's, private and writable");
    // verify names each difference of the address space in one line: the
    // images changed to map the file from offset 0x2000 and to make a
    // private anonymous read-write VMA read-only.
    RunResult decoded = RunCommand({RestoreOrch(), "image", "decode", images.File("mm-1.img")});
    auto json = nlohmann::json::parse(decoded.out, nullptr, false);
    EXPECT_OR_RETURN(decoded.status == 0 && !json.is_discarded(), "image decode mm-1.img: " + decoded.err);
    auto& vmas = json["entries"][0]["vmas"];
    size_t at = 0;
    while (at < vmas.size() && vmas[at]["start"].get<uint64_t>() != map) ++at;
    size_t anon = 0;
    while (anon < vmas.size() && !(vmas[anon]["prot"].get<uint32_t>() == (PROT_READ | PROT_WRITE) &&
                                   (vmas[anon]["status"].get<uint32_t>() & (1u << 9)) != 0)) {  // VMA_ANON_PRIVATE
      ++anon;
    }
    EXPECT_OR_RETURN(at < vmas.size() && anon < vmas.size(), "the file's VMA or an anonymous one is not in mm-1.img");
    vmas[at]["pgoff"] = 0x2000;
    uint64_t next = vmas[anon]["start"].get<uint64_t>(), next_end = vmas[anon]["end"].get<uint64_t>();
    vmas[anon]["prot"] = PROT_READ;
    RunResult encoded = RunCommand({RestoreOrch(), "image", "encode", "-o", images.File("mm-1.img.new")}, json.dump());
    EXPECT_OR_RETURN(encoded.status == 0 && ::rename(images.File("mm-1.img.new").c_str(), images.File("mm-1.img").c_str()) == 0,
                     "image encode: " + encoded.err);
    RunResult v = RunCommand({RestoreOrch(), "verify", "--images", images.path(), "--pid", Str(c.restored)});
    char want_file[200], want_prot[200];
    std::snprintf(want_file, sizeof(want_file), "task 1: VMA %#llx-%#llx rw-p %s: maps its file from offset 0x2000, live from 0\n",
                  static_cast<unsigned long long>(map), static_cast<unsigned long long>(map + 3 * 4096), (w + "/data.bin").c_str());
    std::snprintf(want_prot, sizeof(want_prot), "task 1: VMA %#llx-%#llx r--p", static_cast<unsigned long long>(next),
                  static_cast<unsigned long long>(next_end));
    EXPECT_OR_RETURN(v.status == 1 && v.out.find(want_file) != std::string::npos && v.out.find(want_prot) != std::string::npos,
                     "verify of the changed images:\n" + v.out + v.err);
    KillTree(c.restored);
    return base.Check();
  });
  EXPECT_EQ(err, "");
}

// A task in a 2 s nanosleep and its child blocked in read on a pipe: the
// sleep neither ends early nor returns an error, and ends about when it
// was due (plus the time the tree was stopped); the read returns what the
// test writes into the pipe after the restore.
TEST(MmContinue, SleepEndsOnTimeAndBlockedReadGetsNewData) {
  std::string err = InSandbox([] {
    Baseline base;
    TempDir work, images;
    const std::string w = work.path();
    constexpr uint64_t kSleepMs = 2000;
    pid_t root = StartTreeInNewPidNs([&] {
      ::execl(Helper().c_str(), "mm_programs", w.c_str(), "sleep", Str(kSleepMs).c_str(), nullptr);
      ::_exit(127);
    });
    EXPECT_OR_RETURN(root > 0, "clone");
    Fields s0 = WaitCounter(w + "/state-1", "start", 1), r0 = WaitFor(w + "/state-2", [](Fields& f) { return f.count("reads") > 0; });
    EXPECT_OR_RETURN(!s0.empty() && !r0.empty(), "mm_programs sleep did not start");
    for (int i = 0; i < 200 && (TaskState(TreeBelow(root).back()) != 'S' || TaskState(root) != 'S'); ++i) ::usleep(5000);
    ::usleep(700000);  // well into the sleep: a sleep started over would end 700 ms late
    Cycle c;
    if (std::string e = DumpAndRestore(root, images.path(), c); !e.empty()) return e;
    uint64_t start = NumberOf(s0, "start");
    // The read waits on: nothing came yet.
    std::vector<pid_t> tree = TreeBelow(c.restored);
    EXPECT_OR_RETURN(tree.size() == 2, "restored tree of " + Str(static_cast<long long>(tree.size())));
    EXPECT_OR_RETURN(NumberOf(KeyValues(ReadText(w + "/state-2")), "reads") == 0, "the read returned: " + ReadText(w + "/state-2"));
    std::string token = "tok" + HexOf(Random());
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, c.restored, 0));
    int wr = pidfd < 0 ? -1 : static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd, 20, 0));
    bool written = wr >= 0 && ::write(wr, token.data(), token.size()) == static_cast<ssize_t>(token.size());
    if (wr >= 0) ::close(wr);
    if (pidfd >= 0) ::close(pidfd);
    EXPECT_OR_RETURN(written, "writing into the restored pipe");
    Fields r = WaitFor(w + "/state-2", [](Fields& f) { return NumberOf(f, "reads") >= 1; });
    EXPECT_OR_RETURN(!r.empty() && r["got"] == token && r["err"] == "0" && r["reads"] == "1" && r["cookie"] == r0["cookie"],
                     "the blocked read: " + ReadText(w + "/state-2"));
    Fields s = WaitCounter(w + "/state-1", "woke", 1, 6000);
    EXPECT_OR_RETURN(!s.empty() && s["err"] == "0" && s["cookie"] == s0["cookie"] && NumberOf(s, "start") == start,
                     "the sleep: " + ReadText(w + "/state-1"));
    uint64_t woke = NumberOf(s, "woke");
    uint64_t stopped = c.restored_ms - c.dump_start_ms;
    EXPECT_OR_RETURN(woke >= start + kSleepMs, "woke " + Str(static_cast<long long>(woke - start)) + " ms after it began");
    EXPECT_OR_RETURN(woke <= start + kSleepMs + stopped + 300,
                     "woke " + Str(static_cast<long long>(woke - start)) + " ms after a sleep of " + Str(kSleepMs) + " ms began, the tree stopped " +
                         Str(static_cast<long long>(stopped)) + " ms");
    KillTree(c.restored);
    return base.Check();
  });
  EXPECT_EQ(err, "");
}

// Waits the kernel restarts through the task's restart block, which a
// restore cannot give back (poll, a futex wait with a timeout): they are
// re-issued with their arguments, as CRIU does not (it returns EINTR). The
// poll without timeout returns what the test writes after the restore; the
// timed poll and futex wait end with their timeout (0, ETIMEDOUT), never
// early and never with EINTR, at most one timeout after the restore.
TEST(MmContinue, PollAndFutexWaitsGoOnAfterRestore) {
  std::string err = InSandbox([] {
    Baseline base;
    TempDir work, images;
    const std::string w = work.path();
    constexpr uint64_t kWaitMs = 2000;
    pid_t root = StartTreeInNewPidNs([&] {
      ::execl(Helper().c_str(), "mm_programs", w.c_str(), "waits", Str(kWaitMs).c_str(), nullptr);
      ::_exit(127);
    });
    EXPECT_OR_RETURN(root > 0, "clone");
    std::vector<Fields> before;
    for (int pid = 1; pid <= 3; ++pid) before.push_back(WaitCounter(w + "/state-" + Str(pid), "start", 1));
    for (const Fields& f : before) EXPECT_OR_RETURN(!f.empty(), "mm_programs waits did not start");
    for (int i = 0; i < 200; ++i) {
      std::vector<pid_t> tree = TreeBelow(root);
      if (tree.size() == 3 && std::all_of(tree.begin(), tree.end(), [](pid_t p) { return TaskState(p) == 'S'; })) break;
      ::usleep(5000);
    }
    ::usleep(700000);  // well into the waits
    Cycle c;
    if (std::string e = DumpAndRestore(root, images.path(), c); !e.empty()) return e;
    // The timed waits may have run out while a loaded machine dumped and
    // restored (below: never early, never EINTR); the untimed poll waits on.
    for (int pid = 1; pid <= 3; ++pid) {
      Fields f = KeyValues(ReadText(w + "/state-" + Str(pid)));
      uint64_t woke = NumberOf(f, "woke"), start = NumberOf(before[static_cast<size_t>(pid - 1)], "start");
      EXPECT_OR_RETURN(woke == 0 || (pid != 2 && woke >= start + kWaitMs),
                       "task " + Str(pid) + " returned at once: " + ReadText(w + "/state-" + Str(pid)));
    }
    std::string token = "tok" + HexOf(Random());
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, c.restored, 0));
    int wr = pidfd < 0 ? -1 : static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd, 20, 0));
    bool written = wr >= 0 && ::write(wr, token.data(), token.size()) == static_cast<ssize_t>(token.size());
    if (wr >= 0) ::close(wr);
    if (pidfd >= 0) ::close(pidfd);
    EXPECT_OR_RETURN(written, "writing into the restored pipe");
    Fields polled = WaitCounter(w + "/state-2", "woke", 1);
    EXPECT_OR_RETURN(!polled.empty() && polled["ret"] == "1" && polled["err"] == "0" && polled["cookie"] == before[1]["cookie"],
                     "the poll without timeout: " + ReadText(w + "/state-2"));
    const char* expect_err[] = {"0", "", "110"};  // the timed poll returns 0; the futex wait ETIMEDOUT
    for (int pid : {1, 3}) {
      Fields f = WaitCounter(w + "/state-" + Str(pid), "woke", 1, 8000);
      std::string what = std::string(pid == 1 ? "the timed poll" : "the futex wait") + ": " + ReadText(w + "/state-" + Str(pid));
      EXPECT_OR_RETURN(!f.empty() && f["err"] == expect_err[pid - 1] && f["cookie"] == before[static_cast<size_t>(pid - 1)]["cookie"], what);
      uint64_t start = NumberOf(f, "start"), woke = NumberOf(f, "woke");
      EXPECT_OR_RETURN(start == NumberOf(before[static_cast<size_t>(pid - 1)], "start"), what + " (started again)");
      EXPECT_OR_RETURN(woke >= start + kWaitMs, what + " (ended early)");
      EXPECT_OR_RETURN(woke <= c.restored_ms + kWaitMs + 500, what + " (ended more than one timeout after the restore)");
    }
    KillTree(c.restored);
    return base.Check();
  });
  EXPECT_EQ(err, "");
}

// Signal state: the itimer fires on (its handler counts), SIGUSR1 stays
// blocked and the one sent before the dump stays pending, a SA_SIGINFO
// handler gets a value queued after the restore, SIGTERM stays ignored and a
// SA_RESETHAND handler runs once and is reset.
TEST(MmContinue, HandlersMaskAndItimerStillFire) {
  std::string err = InSandbox([] {
    Baseline base;
    TempDir work, images;
    const std::string w = work.path();
    const std::string state = w + "/state-1";
    pid_t root = StartTreeInNewPidNs([&] {
      ::execl(Helper().c_str(), "mm_programs", w.c_str(), "signals", nullptr);
      ::_exit(127);
    });
    EXPECT_OR_RETURN(root > 0, "clone");
    Fields f0 = WaitCounter(state, "ticks", 5);
    EXPECT_OR_RETURN(!f0.empty(), "mm_programs signals did not start");
    ::kill(root, SIGUSR1);
    EXPECT_OR_RETURN(!WaitFor(state, [](Fields& f) { return f["usr1_pending"] == "1"; }).empty(), "SIGUSR1 is not pending");
    Cycle c;
    if (std::string e = DumpAndRestore(root, images.path(), c); !e.empty()) return e;
    uint64_t dumped = NumberOf(KeyValues(ReadText(state)), "ticks");
    Fields f = WaitCounter(state, "ticks", dumped + 2);
    EXPECT_OR_RETURN(!f.empty(), "the itimer does not fire: " + ReadText(state));
    uint64_t t0 = NumberOf(f, "ticks"), ms0 = NowMs();
    ::usleep(600000);
    Fields later = KeyValues(ReadText(state));
    uint64_t ticks = NumberOf(later, "ticks") - t0, ms = NowMs() - ms0;
    EXPECT_OR_RETURN(ticks * 50 + 150 >= ms && ticks * 50 <= ms + 150,
                     Str(static_cast<long long>(ticks)) + " ticks of 50 ms in " + Str(static_cast<long long>(ms)) + " ms");
    EXPECT_OR_RETURN(later["cookie"] == f0["cookie"] && later["usr1_pending"] == "1" && later["usr1_blocked"] == "1" &&
                         later["usr2_ok"] == "1" && later["interval_us"] == "50000" && later["hups"] == "0" && later["hup_default"] == "0",
                     ReadText(state));
    int token = static_cast<int>(Random() & 0x3fffffff);
    sigval value{};
    value.sival_int = token;
    EXPECT_OR_RETURN(::sigqueue(c.restored, SIGUSR2, value) == 0, "sigqueue");
    EXPECT_OR_RETURN(!WaitFor(state, [&](Fields& x) { return x["token"] == Str(token); }).empty(), "SIGUSR2's value: " + ReadText(state));
    ::kill(c.restored, SIGTERM);
    ::kill(c.restored, SIGHUP);
    Fields hup = WaitFor(state, [](Fields& x) { return x["hups"] == "1"; });
    EXPECT_OR_RETURN(!hup.empty() && hup["hup_default"] == "1", "SIGHUP's handler: " + ReadText(state));
    uint64_t after = NumberOf(hup, "ticks");
    char st = TaskState(c.restored);
    // Alive: running, sleeping, or in a moment's disk wait (it writes its state file).
    EXPECT_OR_RETURN(!WaitCounter(state, "ticks", after + 3).empty() && (st == 'S' || st == 'R' || st == 'D'),
                     std::string("it did not survive SIGTERM: state ") + st);
    KillTree(c.restored);
    return base.Check();
  });
  EXPECT_EQ(err, "");
}

// Threads on small stacks that end just below their stack pointers at a
// guard page (a coroutine's, a sigaltstack's): too little room below the
// red zone for the dump's scratch area, which is then a page of its own,
// mapped and unmapped again. A --leave-running dump leaves them counting
// and verify agrees with the live tree (it injects the same way); a dump,
// restore and verify bring them back counting on from where they were,
// the sleeping one in its nanosleep loop.
TEST(MmContinue, ThreadsOnTightStacksAboveAGuardPageContinue) {
  std::string err = InSandbox([] {
    Baseline base;
    TempDir work, images, running;
    const std::string w = work.path();
    const std::string state = w + "/state-1";
    pid_t root = StartTreeInNewPidNs([&] {
      ::execl(Helper().c_str(), "mm_programs", w.c_str(), "tight", nullptr);
      ::_exit(127);
    });
    EXPECT_OR_RETURN(root > 0, "clone");
    Fields f0 = WaitFor(state, [](Fields& f) { return NumberOf(f, "spins") > 0 && NumberOf(f, "naps") >= 5; });
    if (f0.empty()) KillTree(root);
    EXPECT_OR_RETURN(!f0.empty(), "mm_programs tight did not start: " + ReadText(state));
    RunResult left = RunDump(root, running.File("images"), {"--leave-running"});
    RunResult v = RunCommand({RestoreOrch(), "verify", "--images", running.File("images"), "--pid", Str(root)});
    uint64_t naps = NumberOf(KeyValues(ReadText(state)), "naps");
    bool going = !WaitCounter(state, "naps", naps + 5).empty();
    if (left.status != 0 || v.status != 0 || !going) KillTree(root);
    EXPECT_OR_RETURN(left.status == 0, "dump --leave-running: " + left.err);
    EXPECT_OR_RETURN(v.status == 0, "verify of the live tree: " + v.out + v.err);
    EXPECT_OR_RETURN(going, "it stopped counting after --leave-running: " + ReadText(state));
    Cycle c;
    if (std::string e = DumpAndRestore(root, images.path(), c); !e.empty()) return e;
    Fields dumped = KeyValues(ReadText(state));
    Fields f = WaitFor(state, [&](Fields& x) {
      return NumberOf(x, "spins") > NumberOf(dumped, "spins") && NumberOf(x, "naps") >= NumberOf(dumped, "naps") + 5;
    });
    KillTree(c.restored);
    EXPECT_OR_RETURN(!f.empty(), "the threads do not count on from " + dumped["spins"] + "/" + dumped["naps"] + ": " + ReadText(state));
    EXPECT_OR_RETURN(f["cookie"] == f0["cookie"], "cookie " + f["cookie"] + ", was " + f0["cookie"]);
    return base.Check();
  });
  EXPECT_EQ(err, "");
}

// The numbered lines of a log "i=N c=C", in order.
std::vector<std::pair<uint64_t, std::string>> Lines(const std::string& text) {
  std::vector<std::pair<uint64_t, std::string>> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    Fields f = KeyValues(line);
    out.emplace_back(NumberOf(f, "i"), f["c"]);
  }
  return out;
}

// Debian's bash in a `for` loop (each iteration appends a line and runs
// /bin/sleep): after the restore it goes on at the next iteration with its
// cookie, not from the first.
TEST(MmContinue, BashForLoopContinuesAtTheNextIteration) {
  std::string err = InSandbox([] {
    Baseline base;
    TempDir work, images;
    const std::string w = work.path();
    const std::string log = w + "/bash.log";
    const std::string script = "c=$RANDOM$RANDOM; for i in $(seq 1 5000); do echo \"i=$i c=$c\" >> " + log + "; sleep 0.05; done";
    pid_t root = StartTreeInNewPidNs([&] {
      ::execl("/bin/bash", "bash", "-c", script.c_str(), nullptr);
      ::_exit(127);
    });
    EXPECT_OR_RETURN(root > 0, "clone");
    for (int i = 0; i < 500 && Lines(ReadText(log)).size() < 4; ++i) ::usleep(10000);
    auto before = Lines(ReadText(log));
    EXPECT_OR_RETURN(before.size() >= 4, "bash did not start: " + ReadText(log));
    Cycle c;
    if (std::string e = DumpAndRestore(root, images.path(), c, {}, false); !e.empty()) return e;
    auto dumped = Lines(ReadText(log));
    size_t n = dumped.size();
    for (int i = 0; i < 500 && Lines(ReadText(log)).size() < n + 5; ++i) ::usleep(10000);
    auto after = Lines(ReadText(log));
    EXPECT_OR_RETURN(after.size() >= n + 5, "bash does not go on:\n" + ReadText(log));
    for (size_t i = 0; i < after.size(); ++i) {
      EXPECT_OR_RETURN(after[i].first == i + 1 && after[i].second == before[0].second,
                       "line " + Str(static_cast<long long>(i + 1)) + " of the log after the restore at line " + Str(static_cast<long long>(n)) +
                           ":\n" + ReadText(log));
    }
    KillTree(c.restored);
    return base.Check();
  });
  EXPECT_EQ(err, "");
}

// Debian's python3 with its state in a dict: its counter goes on from the
// dumped value with its cookie.
TEST(MmContinue, Python3KeepsTheStateOfItsDict) {
  std::string err = InSandbox([] {
    Baseline base;
    TempDir work, images;
    const std::string w = work.path();
    const std::string state = w + "/py.state";
    const char* program =
        "import os, random, sys, time\n"
        "w = sys.argv[1]\n"
        "d = {'cookie': random.getrandbits(62), 'n': 0, 'history': []}\n"
        "while True:\n"
        "    d['n'] += 1\n"
        "    d['history'].append(d['n'] * 3)\n"
        "    with open(w + '/py.tmp', 'w') as f:\n"
        "        f.write('n=%d cookie=%x sum=%d\\n' % (d['n'], d['cookie'], sum(d['history'])))\n"
        "    os.rename(w + '/py.tmp', w + '/py.state')\n"
        "    time.sleep(0.05)\n";
    pid_t root = StartTreeInNewPidNs([&] {
      ::execl("/usr/bin/python3", "python3", "-c", program, w.c_str(), nullptr);
      ::_exit(127);
    });
    EXPECT_OR_RETURN(root > 0, "clone");
    Fields f0 = WaitCounter(state, "n", 3);
    EXPECT_OR_RETURN(!f0.empty(), "python3 did not start: " + ReadText(state));
    Cycle c;
    if (std::string e = DumpAndRestore(root, images.path(), c); !e.empty()) return e;
    uint64_t dumped = NumberOf(KeyValues(ReadText(state)), "n");
    Fields f = WaitCounter(state, "n", dumped + 5);
    EXPECT_OR_RETURN(!f.empty(), "python3 does not go on: " + ReadText(state));
    uint64_t n = NumberOf(f, "n");
    EXPECT_OR_RETURN(f["cookie"] == f0["cookie"] && n < dumped + 200 && NumberOf(f, "sum") == 3 * n * (n + 1) / 2,
                     "state after the restore (dumped at n=" + Str(static_cast<long long>(dumped)) + "): " + ReadText(state));
    KillTree(c.restored);
    return base.Check();
  });
  EXPECT_EQ(err, "");
}

// Each VMA's start, end, protection and VmFlags (smaps), one line each.
std::string VmaFlags(pid_t pid) {
  std::istringstream in(ReadText("/proc/" + Str(pid) + "/smaps"));
  std::string out;
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::string first, second;
    words >> first >> second;
    if (first == "VmFlags:") {
      out += line.substr(8) + "\n";
    } else if (!first.empty() && first.back() != ':') {
      out += first + " " + second;  // a VMA's first line: "start-end perms ..."
    }
  }
  return out;
}

// A reservation larger than memory and swap, read-only and PROT_NONE
// VMAs: premapped without being charged, each comes back with the
// VmFlags it had (VM_ACCOUNT only where it was: never-writable VMAs do not
// gain it, and so do not merge with neighbours that have it).
TEST(MmContinue, AReservationAndReadOnlyVmasKeepTheirFlags) {
  std::string err = InSandbox([] {
    Baseline base;
    TempDir work, images;
    const std::string w = work.path();
    // Twice memory and swap: mmap's heuristic refuses a charge that large.
    long gib = static_cast<long>(2 * (sys::PhysicalMemoryBytes() >> 30) + 64);
    pid_t root = StartTreeInNewPidNs([&] {
      ::execl(Helper().c_str(), "mm_programs", w.c_str(), "reserve", Str(gib).c_str(), nullptr);
      ::_exit(127);
    });
    EXPECT_OR_RETURN(root > 0, "clone");
    for (int i = 0; i < 500 && ::access((w + "/ready-1").c_str(), F_OK) != 0; ++i) ::usleep(10000);
    EXPECT_OR_RETURN(::access((w + "/ready-1").c_str(), F_OK) == 0, "the program did not start");
    std::string before = VmaFlags(root);
    Cycle c;
    if (std::string e = DumpAndRestore(root, images.path(), c); !e.empty()) return e;
    std::string after = VmaFlags(c.restored);
    KillTree(c.restored);
    EXPECT_OR_RETURN(before.find("---p") != std::string::npos && before.find(" ac ") != std::string::npos, "before:\n" + before);
    EXPECT_OR_RETURN(after == before, "after the restore:\n" + after + "before:\n" + before);
    return base.Check();
  });
  EXPECT_EQ(err, "");
}

// Runs `fn` in a process inside the PID and mount namespaces of `pid`;
// its exit code.
int InTree(pid_t pid, const std::function<int()>& fn) {
  pid_t child = ::fork();
  if (child == 0) {
    int mnt = ::open(("/proc/" + Str(pid) + "/ns/mnt").c_str(), O_RDONLY | O_CLOEXEC);
    int pidns = ::open(("/proc/" + Str(pid) + "/ns/pid").c_str(), O_RDONLY | O_CLOEXEC);
    if (mnt < 0 || pidns < 0 || ::setns(pidns, CLONE_NEWPID) != 0 || ::setns(mnt, CLONE_NEWNS) != 0) ::_exit(90);
    pid_t inner = ::fork();
    if (inner == 0) ::_exit(fn());
    int status = 0;
    ::waitpid(inner, &status, 0);
    ::_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// The AutoFS test master, restored with its memory (no exec): it serves
// new keys after the restore, counting on from the keys it served before,
// with the cookie it made at start.
TEST(MmContinue, AutofsMasterServesNewKeysFromItsMemory) {
  RO_SKIP_WITHOUT_AUTOFS();
  std::string err = InSandbox([] {
    Baseline base;
    TempDir work, images;
    const std::string w = work.path();
    const std::string master = std::string(RO_HELPERS_DIR) + "/autofs_master";
    pid_t root = StartTreeInNewPidNs([&] {
      if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
          ::mkdir((w + "/a").c_str(), 0755) != 0) {
        ::_exit(120);
      }
      if (::fork() == 0) {
        int p[2];
        if (::setsid() < 0 || ::pipe(p) != 0 || ::dup2(p[0], 20) != 20 || ::dup2(p[1], 21) != 21) ::_exit(121);
        ::close(p[0]);
        ::close(p[1]);
        std::string opts = "fd=21,pgrp=" + Str(::getpid()) + ",minproto=5,maxproto=5,indirect";
        if (::mount("master", (w + "/a").c_str(), "autofs", 0, opts.c_str()) != 0) ::_exit(122);
        ::execl(master.c_str(), "autofs_master", "20", (w + "/a").c_str(), (w + "/log").c_str(), "counted", nullptr);
        ::_exit(127);
      }
      ::execl("/bin/sleep", "sleep", "1000", nullptr);
      ::_exit(127);
    });
    EXPECT_OR_RETURN(root > 0, "clone");
    for (int i = 0; i < 500; ++i) {
      auto tree = TreeBelow(root);
      if (tree.size() == 2 && ReadText("/proc/" + Str(tree[1]) + "/cmdline").find("counted") != std::string::npos &&
          ReadText("/proc/" + Str(root) + "/cmdline").rfind("sleep", 0) == 0) {
        break;
      }
      ::usleep(10000);
    }
    auto lookup = [&](pid_t in, const std::string& key) {
      return InTree(in, [&] { return ::open((w + "/a/" + key).c_str(), O_RDONLY | O_DIRECTORY) >= 0 ? 0 : 1; });
    };
    EXPECT_OR_RETURN(lookup(root, "key0") == 0 && lookup(root, "key1") == 0, "lookups before the dump: " + ReadText(w + "/log"));
    std::istringstream first(ReadText(w + "/log"));
    std::string l0, l1;
    std::getline(first, l0);
    std::getline(first, l1);
    std::string cookie = KeyValues(l1)["cookie"];
    EXPECT_OR_RETURN(l1.rfind("key1 0 n=2 cookie=", 0) == 0 && !cookie.empty(), "master log: " + ReadText(w + "/log"));
    Cycle c;
    if (std::string e = DumpAndRestore(root, images.path(), c, {"--ext-mount-map", "auto"}); !e.empty()) return e;
    EXPECT_OR_RETURN(lookup(c.restored, "key2") == 0 && lookup(c.restored, "key3") == 0, "lookups after the restore: " + ReadText(w + "/log"));
    std::string want = l0 + "\n" + l1 + "\nkey2 0 n=3 cookie=" + cookie + "\nkey3 0 n=4 cookie=" + cookie + "\n";
    EXPECT_OR_RETURN(ReadText(w + "/log") == want, "master log:\n" + ReadText(w + "/log") + "expected:\n" + want);
    std::string mountinfo = ReadText("/proc/" + Str(c.restored) + "/mountinfo");
    EXPECT_OR_RETURN(mountinfo.find(w + "/a/key0 ") != std::string::npos && mountinfo.find(w + "/a/key3 ") != std::string::npos,
                     "served keys are not mounted");
    KillTree(c.restored);
    return base.Check();
  });
  EXPECT_EQ(err, "");
}

}  // namespace
}  // namespace ro::test
