// Threads, dumped and restored for real: test/helpers/threads_prog runs
// five named threads (counting in thread-local storage and a shared
// atomic; one spinning, one in nanosleep, one on a condition variable, one
// in a raw futex wait, the leader writing its state); its dump holds one
// core per thread in CRIU's layout, --leave-running lets every thread run
// on, and its restore brings every thread back with its tid and name,
// counting on from where it was, and the waiters wake when told. Then
// Debian's automount (four threads) is dumped and restored as the master
// of its AutoFS mounts and serves a new key without being started again.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "images/proto/core.pb.h"
#include "images/proto/pstree.pb.h"
#include "sys/clone.h"
#include "sys/proc.h"
#include "sys/proc_tree.h"
#include "test/helpers/mm_images.h"
#include "test/helpers/sandbox.h"
#include "test/helpers/test_util.h"

namespace ro::test {
namespace {

#define EXPECT_OR_RETURN(cond, msg)                                          \
  do {                                                                       \
    if (!(cond)) return std::string(#cond) + " failed: " + std::string(msg); \
  } while (0)

// In a tree's tasks (no gtest there): stop the task with a code naming the line.
#define MUST(cond)                              \
  do {                                          \
    if (!(cond)) ::_exit(100 + __LINE__ % 100); \
  } while (0)

std::string Str(long long v) { return std::to_string(v); }

const char* const kNames[] = {"tp-main", "tp-spin", "tp-sleep", "tp-cond", "tp-futex"};

std::string ThreadsProg() { return std::string(RO_HELPERS_DIR) + "/threads_prog"; }

// DIR/state as threads_prog wrote it last: a record read whole (its seq
// and end agree), or empty.
std::map<std::string, std::string> ReadState(const std::string& dir) {
  for (int i = 0; i < 100; ++i) {
    auto f = KeyValues(ReadText(dir + "/state"));
    if (!f["seq"].empty() && f["seq"] == f["end"]) return f;
    ::usleep(1000);
  }
  return {};
}

// DIR/state once `pred` holds for it (empty after 5 s).
std::map<std::string, std::string> WaitState(const std::string& dir,
                                             const std::function<bool(const std::map<std::string, std::string>&)>& pred) {
  for (int i = 0; i < 500; ++i) {
    auto f = ReadState(dir);
    if (!f.empty() && pred(f)) return f;
    ::usleep(10000);
  }
  return {};
}

// Every thread of OUTER: its id in its own PID namespace -> its name.
std::map<pid_t, std::string> ThreadsOf(pid_t outer) {
  std::map<pid_t, std::string> out;
  auto tids = sys::ReadThreadIds(outer);
  if (!tids.ok()) return out;
  for (pid_t tid : *tids) {
    auto t = sys::ReadTask(tid);
    if (t.ok()) out[t->pid] = t->comm;
  }
  return out;
}

std::string Describe(const std::map<pid_t, std::string>& threads) {
  std::string out;
  for (const auto& [tid, name] : threads) out += Str(tid) + ":" + name + " ";
  return out;
}

// threads_prog started as the init of a new PID namespace, every thread
// running, the condition variable and the futex each signalled once.
pid_t StartThreadsProg(const std::string& w, std::string* err) {
  pid_t root = StartTreeInNewPidNs([&] {
    ::execl(ThreadsProg().c_str(), "threads_prog", w.c_str(), nullptr);
    ::_exit(127);
  });
  if (root <= 0) {
    *err = "clone";
    return root;
  }
  auto started = WaitState(w, [](const auto& f) { return NumberOf(f, "tp-sleep") >= 2 && NumberOf(f, "tp-spin") >= 2; });
  if (started.empty()) {
    *err = "threads_prog did not start: " + ReadText(w + "/state");
    return root;
  }
  ::kill(root, SIGUSR1);
  ::kill(root, SIGUSR2);
  if (WaitState(w, [](const auto& f) { return NumberOf(f, "tp-cond") == 1 && NumberOf(f, "tp-futex") == 1; }).empty()) {
    *err = "the waiters did not wake before the dump: " + ReadText(w + "/state");
  }
  return root;
}

// After a dump or restore: every counter goes on from `at` (or beyond),
// the waiters wake once more each when signalled, nothing failed.
std::string CountsOnAndWakes(const std::string& w, pid_t root, const std::map<std::string, std::string>& at) {
  uint64_t main_at = NumberOf(at, "tp-main"), spin_at = NumberOf(at, "tp-spin"), sleep_at = NumberOf(at, "tp-sleep");
  auto going = WaitState(w, [&](const auto& f) {
    return NumberOf(f, "tp-main") >= main_at + 5 && NumberOf(f, "tp-spin") > spin_at && NumberOf(f, "tp-sleep") > sleep_at;
  });
  EXPECT_OR_RETURN(!going.empty(), "the threads do not count on from " + Str(main_at) + "/" + Str(spin_at) + "/" +
                                       Str(sleep_at) + ": " + ReadText(w + "/state"));
  EXPECT_OR_RETURN(going["cookie"] == at.at("cookie"), "cookie " + going["cookie"] + ", was " + at.at("cookie"));
  EXPECT_OR_RETURN(NumberOf(going, "total") > NumberOf(at, "total"), "the shared counter went back");
  EXPECT_OR_RETURN(NumberOf(going, "tp-cond") == 1 && NumberOf(going, "tp-futex") == 1, "a waiter woke untold: " + ReadText(w + "/state"));
  EXPECT_OR_RETURN(going["mask-ok"] == "1" && going["bad"] == "0", ReadText(w + "/state"));
  ::kill(root, SIGUSR1);
  auto cond = WaitState(w, [](const auto& f) { return NumberOf(f, "tp-cond") == 2; });
  EXPECT_OR_RETURN(!cond.empty(), "the condition variable's waiter did not wake: " + ReadText(w + "/state"));
  ::kill(root, SIGUSR2);
  auto futex = WaitState(w, [](const auto& f) { return NumberOf(f, "tp-futex") == 2; });
  EXPECT_OR_RETURN(!futex.empty(), "the futex waiter did not wake: " + ReadText(w + "/state"));
  EXPECT_OR_RETURN(futex["bad"] == "0" && futex["usr1"] == Str(static_cast<long long>(NumberOf(at, "usr1") + 1)),
                   ReadText(w + "/state"));
  return "";
}

TEST(Threads, DumpWritesACorePerThreadAndLeaveRunningResumesEveryThread) {
  std::string err = InSandbox([] {
    TempDir work, images;
    const std::string w = work.path();
    std::string e;
    pid_t root = StartThreadsProg(w, &e);
    KillAtEnd tree{root};
    if (!e.empty()) return e;
    std::map<pid_t, std::string> live = ThreadsOf(root);
    EXPECT_OR_RETURN(live.size() == 5, "threads: " + Describe(live));
    RunResult d = RunDump(root, images.path(), {"--leave-running", "--stats", work.File("stats.json")});
    EXPECT_OR_RETURN(d.status == 0, d.err);
    auto at = ReadState(w);
    EXPECT_OR_RETURN(!at.empty(), "no whole state record: " + ReadText(w + "/state"));
    if ((e = CountsOnAndWakes(w, root, at)) != "") return "after --leave-running: " + e;
    EXPECT_OR_RETURN(ThreadsOf(root) == live, "threads after the dump: " + Describe(ThreadsOf(root)));
    EXPECT_OR_RETURN(work.Read("stats.json").find("\"threads\": 5") != std::string::npos, work.Read("stats.json"));

    // CRIU's layout: the pstree entry lists the threads, the task's own
    // first; each thread has its core with registers and its own state;
    // what the threads share is in the leader's core only.
    auto pstree = ReadImage(images.path(), "pstree.img");
    EXPECT_OR_RETURN(pstree && pstree->entries.size() == 1, "pstree.img");
    const auto& entry = pstree->As<img::pstree_entry>(0);
    std::vector<pid_t> listed(entry.threads().begin(), entry.threads().end());
    std::vector<pid_t> want;
    for (const auto& [tid, name] : live) want.push_back(tid);
    EXPECT_OR_RETURN(listed == want && listed.front() == 1, "pstree threads");
    for (const auto& [tid, name] : live) {
      std::string who = "core-" + Str(tid) + ".img";
      auto core = ReadImage(images.path(), who);
      EXPECT_OR_RETURN(core.has_value(), who + " missing");
      const auto& c = core->As<img::core_entry>(0);
      EXPECT_OR_RETURN(c.mtype() == img::core_entry::X86_64 && c.has_thread_info() && c.has_thread_core(), who);
      EXPECT_OR_RETURN(c.has_tc() == (tid == 1) && c.has_ids() == (tid == 1), who + ": task-wide state in a thread's core");
      EXPECT_OR_RETURN(c.thread_core().comm() == name, who + ": comm " + c.thread_core().comm() + ", live " + name);
      const auto& ti = c.thread_info();
      EXPECT_OR_RETURN(ti.clear_tid_addr() != 0 && ti.gpregs().fs_base() != 0 && ti.fpregs().xmm_space_size() == 64, who + ": registers");
      EXPECT_OR_RETURN(c.thread_core().futex_rla() != 0 && c.thread_core().futex_rla_len() == 24, who + ": robust list");
      uint64_t usr = (1ull << (SIGUSR1 - 1)) | (1ull << (SIGUSR2 - 1));
      uint64_t blocked = c.thread_core().blk_sigset();
      EXPECT_OR_RETURN(tid == 1 ? (blocked & usr) == 0 : (blocked & usr) == usr, who + ": mask " + Str(static_cast<long long>(blocked)));
    }
    std::set<uint64_t> tls_bases;
    for (const auto& [tid, name] : live) {
      auto core = ReadImage(images.path(), "core-" + Str(tid) + ".img");
      tls_bases.insert(core->As<img::core_entry>(0).thread_info().gpregs().fs_base());
    }
    EXPECT_OR_RETURN(tls_bases.size() == 5, "threads share a TLS base");

    // crit reads the leader's core and a thread's, and the process tree.
    if (RunCommand({"crit", "--help"}).status != 0) return std::string("crit not found: run scripts/setup.sh (Debian package criu)");
    for (auto it = live.begin(); it != std::next(live.begin(), 2); ++it) {
      const auto& [tid, name] = *it;
      RunResult c = RunCommand({"crit", "decode", "-i", images.File("core-" + Str(tid) + ".img")});
      EXPECT_OR_RETURN(c.status == 0 && c.out.find(name) != std::string::npos, "crit decode core-" + Str(tid) + ".img: " + c.err);
    }
    RunResult ps = RunCommand({"crit", "x", images.path(), "ps"});
    EXPECT_OR_RETURN(ps.status == 0, "crit x ps: " + ps.err);

    // image show and a restore's dry run list the threads.
    std::string ids = "1";
    for (auto it = std::next(live.begin()); it != live.end(); ++it) ids += " " + Str(it->first);
    RunResult show = RunCommand({RestoreOrch(), "image", "show", images.path()});
    EXPECT_OR_RETURN(show.status == 0 && show.out.find("threads " + ids) != std::string::npos, show.out + show.err);
    RunResult dry = RunCommand({RestoreOrch(), "--images", images.path(), "--dry-run"});
    EXPECT_OR_RETURN(dry.status == 0 && dry.out.find("5 threads: " + ids) != std::string::npos, dry.out + dry.err);
    tree.Now();
    return std::string();
  });
  EXPECT_EQ(err, "");
}

TEST(Threads, RestoredThreadsContinueWithTheirIdsNamesAndCounters) {
  std::string err = InSandbox([] {
    TempDir work, images;
    const std::string w = work.path();
    std::string e;
    pid_t root = StartThreadsProg(w, &e);
    KillAtEnd tree{root};
    if (!e.empty()) return e;
    std::map<pid_t, std::string> live = ThreadsOf(root);
    EXPECT_OR_RETURN(live.size() == 5, "threads: " + Describe(live));
    RunResult d = RunDump(root, images.path());
    EXPECT_OR_RETURN(d.status == 0, d.err);
    tree.Now();  // reaped: the dump killed it
    auto at = ReadState(w);  // the last state it wrote before the dump
    EXPECT_OR_RETURN(!at.empty(), "no whole state record: " + ReadText(w + "/state"));

    RunResult r = RunCommand({RestoreOrch(), "--images", images.path(), "--detach"});
    EXPECT_OR_RETURN(r.status == 0, "restore: " + r.err);
    KillAtEnd again{static_cast<pid_t>(std::atoi(r.out.c_str()))};
    pid_t restored = again.pid;
    if ((e = CountsOnAndWakes(w, restored, at)) != "") return "after the restore: " + e;
    // The same threads: ids (as the program and /proc see them) and names.
    EXPECT_OR_RETURN(ThreadsOf(restored) == live, "restored threads " + Describe(ThreadsOf(restored)) + ", dumped " + Describe(live));
    auto now = ReadState(w);
    for (const char* name : kNames) {
      std::string key = std::string("tid-") + name;
      EXPECT_OR_RETURN(now[key] == at[key], key + " " + now[key] + ", was " + at[key]);
    }
    RunResult v = RunCommand({RestoreOrch(), "verify", "--images", images.path(), "--pid", Str(restored)});
    EXPECT_OR_RETURN(v.status == 0, "verify: " + v.out + v.err);
    again.Now();
    EXPECT_OR_RETURN(OtherProcesses() == 0, "processes left");
    return std::string();
  });
  EXPECT_EQ(err, "");
}

// Starts a tree whose root runs `init` (which execs) as the init of new
// PID and mount namespaces, leading a session of its own, with only
// /dev/null at 0-2.
pid_t StartTreeInNewNamespaces(const std::function<void()>& init) {
  sys::CloneSpec spec;
  spec.flags = CLONE_NEWPID | CLONE_NEWNS;
  spec.want_pidfd = false;
  auto cloned = sys::Clone3(spec);
  if (!cloned.ok()) return -1;
  if (cloned->pid == 0) {
    ::close_range(3, ~0u, 0);
    if (::setsid() < 0) ::_exit(1);  // a session of its own: not a shell's job
    int null = ::open("/dev/null", O_RDWR);
    for (int fd = 0; fd < 3; ++fd) ::dup2(null, fd);
    if (null > 2) ::close(null);
    init();
    ::_exit(0);
  }
  return cloned->pid;
}

// Runs `fn` in a process inside the PID and mount namespaces of `pid` (an
// AutoFS master only hears lookups from its own PID namespace), outside
// every process group of the tree; its exit code.
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

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// The task below `root` (its child) running `comm`, as the caller sees it.
pid_t ChildNamed(pid_t root, const std::string& comm) {
  for (pid_t p : TreeBelow(root)) {
    auto t = sys::ReadTask(p);
    if (t.ok() && t->comm == comm) return p;
  }
  return 0;
}

// Whether `path` (a key below an AutoFS mount) is served: a tmpfs mounted
// there, seen from inside the tree.
bool Served(pid_t root, const std::string& path) {
  int looked_up = InTree(root, [&] {
    struct stat st {};
    return ::stat((path + "/.").c_str(), &st) == 0 ? 0 : 1;
  });
  return looked_up == 0 && ReadText("/proc/" + Str(root) + "/mountinfo").find(" " + path + " ") != std::string::npos;
}

// Debian's automount, multi-threaded, as the master of an indirect mount
// with a file map, one with a program map and a direct map, in its own
// session inside the tree's PID and mount namespaces: dumped with keys
// mounted, restored WITHOUT exec (it continues from its memory: same pid
// and threads, no new start-up in its log), it serves new keys of both
// indirect maps asked by a task outside its process group, and the keys
// mounted before the dump stay; a new direct key is not served (below).
TEST(Threads, DebiansAutomountContinuesAfterRestoreAndServesNewKeys) {
  RO_SKIP_WITHOUT_AUTOFS();
  if (::access("/usr/sbin/automount", X_OK) != 0) GTEST_SKIP() << "automount (Debian package autofs) is not installed";
  std::string err = InSandbox([] {
    TempDir work, images;
    const std::string w = work.path();
    work.Write("auto.master", w + "/auto " + w + "/auto.map --timeout=300\n" + w + "/prog program:" + w +
                                  "/prog.map --timeout=300\n/- " + w + "/direct.map\n");
    work.Write("direct.map", w + "/d1 -fstype=tmpfs,size=1m :tmpfs\n" + w + "/d2 -fstype=tmpfs,size=1m :tmpfs\n");
    work.Write("auto.map", "key1 -fstype=tmpfs,size=1m :tmpfs\nkey2 -fstype=tmpfs,size=1m :tmpfs\n");
    work.Write("prog.map", "#!/bin/sh\necho \"-fstype=tmpfs,size=1m :tmpfs\"\n");
    ::chmod(work.File("prog.map").c_str(), 0755);
    for (const char* d : {"/auto", "/prog"}) ::mkdir((w + d).c_str(), 0755);
    const std::string log = work.File("automount.log");
    pid_t root = StartTreeInNewNamespaces([&] {
      MUST(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0);
      // Its FIFO (/run/autofs.fifo-*) in the tree's own tmpfs.
      MUST(::mount("run", "/run", "tmpfs", 0, "size=1m,mode=755") == 0);
      if (::fork() == 0) {
        MUST(::setsid() > 0);
        int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        MUST(out >= 0 && ::dup2(out, 1) == 1 && ::dup2(out, 2) == 2);
        ::close(out);
        ::execl("/usr/sbin/automount", "automount", "-f", "-d", "-t", "0", (w + "/auto.master").c_str(), nullptr);
        ::_exit(127);
      }
      ::execl("/bin/sleep", "sleep", "1000", nullptr);
      ::_exit(127);
    });
    EXPECT_OR_RETURN(root > 0, "clone");
    KillAtEnd tree{root};
    pid_t am = 0;
    for (int i = 0; i < 500; ++i) {
      am = ChildNamed(root, "automount");
      std::string mi = ReadText("/proc/" + Str(root) + "/mountinfo");
      if (am != 0 && mi.find(" " + w + "/auto ") != std::string::npos && mi.find(" " + w + "/prog ") != std::string::npos &&
          ThreadsOf(am).size() >= 4) {
        break;
      }
      ::usleep(10000);
    }
    EXPECT_OR_RETURN(am != 0, "automount did not start: " + work.Read("automount.log"));
    EXPECT_OR_RETURN(Served(root, w + "/auto/key1"), "key1 before the dump: " + work.Read("automount.log"));
    EXPECT_OR_RETURN(Served(root, w + "/d1"), "d1 before the dump: " + work.Read("automount.log"));
    // A request's thread sends its answer and logs before it exits: wait
    // until the thread set stays the same for 300 ms, so the dump does not
    // catch a thread that was about to end (it would end after the restore).
    std::map<pid_t, std::string> threads = ThreadsOf(am);
    for (int stable_ms = 0, waited_ms = 0; stable_ms < 300 && waited_ms < 10000; waited_ms += 50) {
      ::usleep(50 * 1000);
      std::map<pid_t, std::string> now = ThreadsOf(am);
      stable_ms = now == threads ? stable_ms + 50 : 0;
      threads = std::move(now);
    }
    EXPECT_OR_RETURN(threads.size() >= 2, "automount is not multi-threaded: " + Describe(threads));
    const std::string started = "Starting automounter";
    EXPECT_OR_RETURN(Count(work.Read("automount.log"), started) == 1, work.Read("automount.log"));

    RunResult d = RunDump(root, images.path());
    EXPECT_OR_RETURN(d.status == 0, "dump: " + d.err);
    tree.Now();  // reaped: the dump killed it
    RunResult r = RunCommand({RestoreOrch(), "--images", images.path(), "--detach", "--ext-mount-map", "auto"});
    EXPECT_OR_RETURN(r.status == 0, "restore: " + r.err);
    KillAtEnd again{static_cast<pid_t>(std::atoi(r.out.c_str()))};
    pid_t restored = again.pid;
    std::string p;
    // As dumped (before new keys add mounts): tasks, threads, fds, mounts.
    RunResult v = RunCommand({RestoreOrch(), "verify", "--images", images.path(), "--pid", Str(restored)});
    if (v.status != 0) p += "verify: " + v.out + v.err;
    pid_t am_after = ChildNamed(restored, "automount");
    if (am_after == 0) p += "no automount in the restored tree\n";
    // The same automount, continuing: its threads with their ids, no new start.
    if (am_after != 0 && ThreadsOf(am_after) != threads) {
      p += "threads " + Describe(ThreadsOf(am_after)) + ", dumped " + Describe(threads) + "\n";
    }
    if (am_after != 0 && ReadText("/proc/" + Str(am_after) + "/cmdline").find("automount") == std::string::npos) {
      p += "its command line: " + ReadText("/proc/" + Str(am_after) + "/cmdline") + "\n";
    }
    // Its ioctl fd on the root of the direct mount d1, covered by the tmpfs
    // it triggered, is on that AutoFS mount again (opened through
    // /dev/autofs: its path leads to the tmpfs).
    if (am_after != 0) {
      std::map<std::string, std::string> fstype_of;  // mount id -> fstype
      std::istringstream mi(ReadText("/proc/" + Str(restored) + "/mountinfo"));
      for (std::string line; std::getline(mi, line);) {
        std::istringstream words(line);
        std::string id, word;
        words >> id;
        while (words >> word && word != "-") {
        }
        words >> word;
        fstype_of[id] = word;
      }
      int on_d1 = 0;
      for (int fd = 0; fd < 1024; ++fd) {
        std::string at = "/proc/" + Str(am_after) + "/fd/" + Str(fd);
        char buf[4096];
        ssize_t n = ::readlink(at.c_str(), buf, sizeof(buf));
        if (n <= 0 || std::string(buf, static_cast<size_t>(n)) != w + "/d1") continue;
        std::string info = ReadText("/proc/" + Str(am_after) + "/fdinfo/" + Str(fd));
        size_t m = info.find("mnt_id:");
        std::string id = m == std::string::npos ? "" : info.substr(m + 7, info.find('\n', m) - m - 7);
        id.erase(0, id.find_first_not_of(" \t"));
        ++on_d1;
        if (fstype_of[id] != "autofs") p += "fd " + Str(fd) + " on " + w + "/d1 is on a " + fstype_of[id] + " mount, not its AutoFS mount\n";
      }
      if (on_d1 == 0) p += "automount holds no fd on " + w + "/d1 after the restore\n";
    }
    for (const char* key : {"/auto/key2", "/prog/anything"}) {
      if (!Served(restored, w + key)) p += std::string("new key ") + key + " not served after the restore\n";
    }
    if (ReadText("/proc/" + Str(restored) + "/mountinfo").find(" " + w + "/auto/key1 ") == std::string::npos) {
      p += "key1 is no longer mounted\n";
    }
    // Its direct mounts are not served by the automount that continues: it
    // finds a direct mount's map entry by the device and inode numbers of
    // the mount's root, and the restored mount's root inode is a new one
    // (the kernel numbers inodes of new autofs superblocks from a global
    // counter). It never answers such a lookup (SIGALRM, fatal, ends the
    // wait); the restart action script is the way (README, AutoFS).
    int direct = InTree(restored, [&] {
      ::alarm(1);
      struct stat st {};
      return ::stat((w + "/d2/.").c_str(), &st) == 0 ? 0 : 1;
    });
    if (direct == 0) p += "a direct key was served after the restore: update the README's AutoFS section\n";
    std::string said = work.Read("automount.log");
    if (said.find("can't find map entry") == std::string::npos) p += "automount did not say why it ignored the direct key\n";
    if (ReadText("/proc/" + Str(restored) + "/mountinfo").find(" " + w + "/d1 ") == std::string::npos) {
      p += "the direct key mounted before the dump is no longer mounted\n";
    }
    if (Count(said, started) != 1) p += "automount started again\n";
    if (said.find(w + "/auto/key2") == std::string::npos) p += "automount did not log key2\n";
    if (!p.empty()) p += "automount said:\n" + said;
    again.Now();
    if (OtherProcesses() != 0) p += "processes left\n";
    return p;
  });
  EXPECT_EQ(err, "");
}

}  // namespace
}  // namespace ro::test
