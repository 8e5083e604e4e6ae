// dump → kill → restore → verify with trees the tests start for real:
// sessions with dead leaders, zombies, pipes and FIFOs with data, shared
// descriptions, mounts with peer groups and tmpfs contents, AutoFS masters
// of both kinds. Also: every kind of object dump refuses leaves the tree
// running as it was, a pending AutoFS request asks to try again, and a tree
// that forks all the time loses no child to the freeze.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/auto_fs.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <algorithm>
#include <functional>
#include <set>
#include <sstream>
#include <thread>

#include "images/image_dir.h"
#include "images/kinds.h"
#include "images/proto/autofs.pb.h"
#include "sys/clone.h"
#include "sys/proc.h"
#include "test/helpers/live_tree.h"
#include "test/helpers/sandbox.h"
#include "test/helpers/test_util.h"

namespace ro::test {
namespace {

// Bytes queued in a pipe a task holds, without taking them.
int Queued(pid_t pid, int fd) {
  int r = ::open(("/proc/" + Str(pid) + "/fd/" + Str(fd)).c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  int n = -1;
  if (r >= 0 && ::ioctl(r, FIONREAD, &n) != 0) n = -1;
  if (r >= 0) ::close(r);
  return n;
}

// Reads what a pipe or FIFO held by a task holds, without waiting.
std::string Drain(pid_t pid, int fd) {
  std::string path = "/proc/" + Str(pid) + "/fd/" + Str(fd);
  int r = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (r < 0) return "<cannot open " + path + ">";
  std::string out;
  char buf[65536];
  for (ssize_t n; (n = ::read(r, buf, sizeof(buf))) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(r);
  return out;
}

int CountImages(const std::string& dir) {
  int n = 0;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) n += std::string(e->d_name).ends_with(".img");
    ::closedir(d);
  }
  return n;
}

// crit reads every file of a dump, and its process tree.
std::string CritReads(const std::string& dir) {
  if (RunCommand({"crit", "--help"}).status != 0) return "crit not found: run scripts/setup.sh (Debian package criu)";
  DIR* d = ::opendir(dir.c_str());
  EXPECT_OR_RETURN(d != nullptr, dir);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) names.push_back(e->d_name);
  ::closedir(d);
  for (const std::string& name : names) {
    auto parsed = images::ParseFileName(name);
    if (!parsed || parsed->kind->ours || parsed->kind->layout == images::Layout::kRaw) continue;
    RunResult r = RunCommand({"crit", "decode", "-i", dir + "/" + name});
    EXPECT_OR_RETURN(r.status == 0, "crit decode " + name + ": " + r.err);
  }
  RunResult ps = RunCommand({"crit", "x", dir, "ps"});
  EXPECT_OR_RETURN(ps.status == 0, "crit x ps: " + ps.err);
  return "";
}

// A tree of four with what sessions, pipes and files can hold:
//   1 session leader, reads pipe P ("hello") at 10, holds a 1 MiB pipe with
//     300000 bytes at 20/21, a FIFO with data at 12, a file at position 3 at
//     13 and the same file opened again, at position 5, at 14
//   2 own process group, writes P at 11, shares the file description at 13,
//     runs under two seccomp filters
//   C in the session of a leader that has exited (reparented to 1)
//   Z a zombie with exit status 7
constexpr size_t kBigPipe = 300000;

std::string Pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + i % 23);
  return s;
}

void SessionsInit(const std::string& work) {
  MUST(::getsid(0) == 1);  // StartTree's setsid()
  int p[2], big[2];
  MUST(::pipe(p) == 0 && ::pipe(big) == 0);
  MoveFd(p[0], 10);
  MoveFd(p[1], 11);
  MoveFd(big[0], 20);
  MoveFd(big[1], 21);
  MUST(::write(11, "hello", 5) == 5);
  MUST(::fcntl(21, F_SETPIPE_SZ, 1 << 20) >= (1 << 20));
  std::string data = Pattern(kBigPipe);
  MUST(::write(21, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
  int file = ::open((work + "/file").c_str(), O_RDWR | O_CREAT, 0644);
  MUST(file >= 0 && ::write(file, "0123456789", 10) == 10 && ::lseek(file, 3, SEEK_SET) == 3);
  MoveFd(file, 13);
  int again = ::open((work + "/file").c_str(), O_RDONLY);  // a second description of the same file
  MUST(again >= 0 && ::lseek(again, 5, SEEK_SET) == 5);
  MoveFd(again, 14);
  MUST(::mkfifo((work + "/fifo").c_str(), 0644) == 0);
  int fifo = ::open((work + "/fifo").c_str(), O_RDWR);
  MUST(fifo >= 0 && ::write(fifo, "fifo-data", 9) == 9);
  MoveFd(fifo, 12);
  if (::fork() == 0) {
    MUST(::setpgid(0, 0) == 0);
    for (int fd : {10, 12, 14, 20, 21}) ::close(fd);
    // Two stacked allow-everything filters.
    sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    sock_fprog prog{1, &allow};
    for (int i = 0; i < 2; ++i) MUST(::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0);
    ExecSleep();
  }
  pid_t leader = ::fork();
  if (leader == 0) {
    MUST(::setsid() > 0);
    if (::fork() == 0) {
      ::close_range(3, ~0u, 0);
      ExecSleep();
    }
    ::_exit(0);
  }
  MUST(::waitpid(leader, nullptr, 0) == leader);
  if (::fork() == 0) ::_exit(7);
  ::close(11);
  ExecSleep();
}

// Twice round the cycle: the restored tree is dumped and restored again.
TEST(Dump, SessionsPipesFilesRestoreAsTheyWere) {
  std::string err = InSandbox([] {
    TempDir work, images;
    pid_t root = StartTree(true, false, [&] { SessionsInit(work.path()); });
    EXPECT_OR_RETURN(root > 0 && WaitSettled(root, 4), "the tree did not settle");
    RunResult d = Dump(root, images.path(), {"--stats", work.File("stats.json")});
    EXPECT_OR_RETURN(d.status == 0, d.err);
    EXPECT_OR_RETURN(d.err.empty(), "warnings where every pipe has both ends in the tree: " + d.err);
    int status = 0;
    EXPECT_OR_RETURN(::waitpid(root, &status, 0) == root && WIFSIGNALED(status), "the dumped tree was not killed");
    std::string stats = work.Read("stats.json");
    EXPECT_OR_RETURN(stats.find("\"downtime_ms\"") != std::string::npos && stats.find("\"tasks\": 4") != std::string::npos, stats);
    if (std::string e = CritReads(images.path()); !e.empty()) return e;

    pid_t first = 0;
    if (std::string e = RestoreAndVerify(images.path(), first); !e.empty()) return e;
    // A restored tree dumps like the original: once more round the cycle.
    TempDir again;
    RunResult d2 = Dump(first, again.path());
    EXPECT_OR_RETURN(d2.status == 0 && d2.err.empty(), "second dump: " + d2.err);
    ::waitpid(first, nullptr, 0);
    pid_t restored = 0;
    if (std::string e = RestoreAndVerify(again.path(), restored); !e.empty()) return "second cycle: " + e;
    EXPECT_OR_RETURN(Drain(restored, 10) == "hello", "pipe P after restore");
    auto pos = [&](int fd) { return sys::ParseFdInfo(ReadFile("/proc/" + Str(restored) + "/fdinfo/" + Str(fd))).value().pos; };
    EXPECT_OR_RETURN(pos(13) == 3 && pos(14) == 5, "file positions " + Str(static_cast<long>(pos(13))) + ", " + Str(static_cast<long>(pos(14))));
    bool filtered = false;
    for (pid_t p : TreeOf(restored)) {
      std::string text = ReadFile("/proc/" + Str(p) + "/status");
      if (sys::StatusInnermost(text, "NSpid") == 2) filtered = sys::StatusInnermost(text, "Seccomp_filters") == 2;
    }
    EXPECT_OR_RETURN(filtered, "task 2 does not run under its two seccomp filters");
    EXPECT_OR_RETURN(Drain(restored, 20) == Pattern(kBigPipe), "the 1 MiB pipe after restore");
    EXPECT_OR_RETURN(Drain(restored, 12) == "fifo-data", "the FIFO after restore");
    int big = ::open(("/proc/" + Str(restored) + "/fd/20").c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    int capacity = ::fcntl(big, F_GETPIPE_SZ);
    ::close(big);
    EXPECT_OR_RETURN(capacity == 1 << 20, "pipe capacity " + Str(capacity));
    KillTree(restored);
    EXPECT_OR_RETURN(OtherProcesses() == 0, "processes left");
    return std::string();
  });
  EXPECT_EQ(err, "");
}

TEST(Dump, LeaveRunningKeepsTheTreeAndItsPipeContents) {
  std::string err = InSandbox([] {
    TempDir work, images;
    pid_t root = StartTree(true, false, [&] { SessionsInit(work.path()); });
    EXPECT_OR_RETURN(root > 0 && WaitSettled(root, 4), "the tree did not settle");
    std::vector<pid_t> before = TreeOf(root);
    RunResult d = Dump(root, images.path(), {"--leave-running"});
    EXPECT_OR_RETURN(d.status == 0, d.err);
    EXPECT_OR_RETURN(TreeOf(root) == before, "the tree changed");
    for (pid_t p : before) EXPECT_OR_RETURN(RunsOn(p) || StateOf(p) == 'Z', "task " + Str(p) + " is " + StateOf(p));
    // The live tree is what its images say, and kept its pipe contents.
    RunResult v = RunCommand({RestoreOrch(), "verify", "--images", images.path(), "--pid", Str(root)});
    EXPECT_OR_RETURN(v.status == 0, v.out + v.err);
    EXPECT_OR_RETURN(Drain(root, 10) == "hello", "pipe P lost its contents");
    EXPECT_OR_RETURN(Drain(root, 20) == Pattern(kBigPipe), "the big pipe lost its contents");
    // A second dump into the same directory is refused.
    RunResult again = Dump(root, images.path(), {"--leave-running"});
    EXPECT_OR_RETURN(again.status == 1 && again.err.find("already holds images") != std::string::npos, again.err);
    KillTree(root);
    return std::string();
  });
  EXPECT_EQ(err, "");
}

// Mounts: a tmpfs with files, shared with a bind and a slave of it;
// another with a file bound onto a file beside it, a hard link, and a file
// a tmpfs mounted on its directory covers; an
// indirect AutoFS master that keeps its write end, a direct one that closed
// it, a catatonic mount and an orphan nobody holds the pipe of.
void MountsInit(const std::string& w, const std::string& master) {
  MUST(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0);
  for (const char* d : {"/t", "/t2", "/s", "/a", "/d", "/c", "/f"}) MUST(::mkdir((w + d).c_str(), 0755) == 0);
  MUST(::mount("none", (w + "/f").c_str(), "tmpfs", 0, "size=1m") == 0);
  WriteFile(w + "/f/src", "bound file");
  WriteFile(w + "/f/target", "covered");
  MUST(::mount((w + "/f/src").c_str(), (w + "/f/target").c_str(), nullptr, MS_BIND, nullptr) == 0);
  MUST(::link((w + "/f/src").c_str(), (w + "/f/hard").c_str()) == 0);
  const struct timespec times[2] = {{1000000000, 5}, {1234567890, 123456789}};
  MUST(::utimensat(AT_FDCWD, (w + "/f/src").c_str(), times, 0) == 0);
  MUST(::mkdir((w + "/f/d").c_str(), 0755) == 0);
  WriteFile(w + "/f/d/hidden", "covered by a mount");
  MUST(::mount("none", (w + "/f/d").c_str(), "tmpfs", 0, "size=64k") == 0);
  MUST(::mount("none", (w + "/t").c_str(), "tmpfs", 0, "size=1m,mode=750") == 0);
  WriteFile(w + "/t/hello.txt", "tmpfs content");
  MUST(::mkdir((w + "/t/sub").c_str(), 0700) == 0);
  MUST(::symlink("hello.txt", (w + "/t/sub/link").c_str()) == 0);
  MUST(::mount(nullptr, (w + "/t").c_str(), nullptr, MS_SHARED, nullptr) == 0);
  MUST(::mount((w + "/t").c_str(), (w + "/t2").c_str(), nullptr, MS_BIND, nullptr) == 0);
  MUST(::mount((w + "/t").c_str(), (w + "/s").c_str(), nullptr, MS_BIND, nullptr) == 0);
  MUST(::mount(nullptr, (w + "/s").c_str(), nullptr, MS_SLAVE, nullptr) == 0);
  for (bool direct : {false, true}) {
    if (::fork() != 0) continue;
    MUST(::setsid() > 0);
    int p[2];
    MUST(::pipe(p) == 0);
    MoveFd(p[0], 20);
    MoveFd(p[1], 21);
    std::string at = w + (direct ? "/d" : "/a");
    std::string opts = "fd=21,pgrp=" + Str(::getpid()) + ",minproto=5,maxproto=5," + (direct ? "direct" : "indirect");
    MUST(::mount("master", at.c_str(), "autofs", 0, opts.c_str()) == 0);
    if (direct) ::close(21);  // like systemd: the kernel keeps its own reference
    ::execl(master.c_str(), "autofs_master", "20", at.c_str(), (w + (direct ? "/log-d" : "/log-a")).c_str(), nullptr);
    ::_exit(127);
  }
  int p[2];
  MUST(::pipe(p) == 0);
  std::string opts = "fd=" + Str(p[1]) + ",pgrp=1,minproto=5,maxproto=5,indirect";
  MUST(::mount("gone", (w + "/c").c_str(), "autofs", 0, opts.c_str()) == 0);
  int c = ::open((w + "/c").c_str(), O_RDONLY | O_DIRECTORY);
  MUST(c >= 0 && ::ioctl(c, AUTOFS_IOC_CATATONIC, 0) == 0);
  ::close(c);
  // An orphan: its master (us) dropped the pipe without telling the kernel.
  MUST(::mkdir((w + "/o").c_str(), 0755) == 0);
  MUST(::mount("orphan", (w + "/o").c_str(), "autofs", 0, opts.c_str()) == 0);
  ::close(p[0]);
  ::close(p[1]);
  ExecSleep();
}

// Runs `fn` in a process inside the PID and mount namespaces of `pid` (an
// AutoFS master only hears lookups from its own PID namespace); returns
// its exit code. With `wait` false, returns the outer child's pid at once.
int InTree(pid_t pid, const std::function<int()>& fn, bool wait = true) {
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
  if (!wait) return child;
  int status = 0;
  ::waitpid(child, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(Dump, MountsAndAutofsMastersComeBackAndServe) {
  RO_SKIP_WITHOUT_AUTOFS();
  std::string err = InSandbox([] {
    TempDir work, images;
    const std::string w = work.path();
    const std::string master = std::string(RO_HELPERS_DIR) + "/autofs_master";
    pid_t root = StartTree(true, true, [&] { MountsInit(w, master); });
    EXPECT_OR_RETURN(root > 0 && WaitSettled(root, 3, {"/usr/bin/sleep", master}), "the tree did not settle");
    // A key served before the dump: its tmpfs, below the AutoFS mount, is dumped too.
    int served_before = InTree(root, [&] { return ::open((w + "/a/key0").c_str(), O_RDONLY | O_DIRECTORY) >= 0 ? 0 : 1; });
    EXPECT_OR_RETURN(served_before == 0, "lookup before the dump: " + Str(served_before));
    RunResult d = Dump(root, images.path());
    EXPECT_OR_RETURN(d.status == 0, d.err);
    ::waitpid(root, nullptr, 0);

    auto dir = images::LoadImageDir(images.path(), images::Limits{});
    EXPECT_OR_RETURN(dir.ok(), dir.error().ToString());
    int autofs = 0, catatonic = 0, read_fd = 0;
    for (const auto& [name, file] : dir->files) {
      if (file.kind != &images::AutofsKind()) continue;
      const auto& a = file.As<img::autofs_entry>(0);
      ++autofs;
      catatonic += a.fd() == -1;
      read_fd += a.has_read_fd() && a.read_fd() == 20;
    }
    EXPECT_OR_RETURN(d.err.find("AutoFS mount " + w + "/o: nobody in the tree holds its pipe") != std::string::npos, d.err);
    EXPECT_OR_RETURN(autofs == 4 && catatonic == 2 && read_fd == 1,
                     "autofs images: " + Str(autofs) + " mounts, " + Str(catatonic) + " catatonic, " + Str(read_fd) + " with read_fd");
    if (std::string e = CritReads(images.path()); !e.empty()) return e;

    pid_t restored = 0;
    if (std::string e = RestoreAndVerify(images.path(), restored); !e.empty()) return e;
    EXPECT_OR_RETURN(ReadFile("/proc/" + Str(restored) + "/root" + w + "/s/hello.txt") == "tmpfs content", "tmpfs contents");
    EXPECT_OR_RETURN(ReadFile("/proc/" + Str(restored) + "/root" + w + "/f/target") == "bound file", "the file bind");
    EXPECT_OR_RETURN(ReadFile("/proc/" + Str(restored) + "/mountinfo").find(" " + w + "/f/target ") != std::string::npos,
                     "the file bind is not a mount");
    auto link = sys::ReadProcLink("/proc/" + Str(restored) + "/root" + w + "/t/sub/link");
    EXPECT_OR_RETURN(link.ok() && *link == "hello.txt", "symlink in the tmpfs");
    // The restored indirect master serves a lookup; the catatonic mount fails fast.
    int served = InTree(restored, [&] {
      return ::open((w + "/a/key1").c_str(), O_RDONLY | O_DIRECTORY) >= 0 ? 0 : 1;
    });
    EXPECT_OR_RETURN(served == 0, "lookup below the restored indirect mount: " + Str(served));
    EXPECT_OR_RETURN(ReadFile(w + "/log-a") == "key0 0\nkey1 0\n", "master log: " + ReadFile(w + "/log-a"));
    EXPECT_OR_RETURN(ReadFile("/proc/" + Str(restored) + "/mountinfo").find(w + "/a/key0 ") != std::string::npos, "key0 is not mounted");
    int refused = InTree(restored, [&] {
      ::signal(SIGPIPE, SIG_IGN);
      return ::open((w + "/c/x").c_str(), O_RDONLY | O_DIRECTORY) >= 0 ? 0 : 1;
    });
    EXPECT_OR_RETURN(refused == 1, "lookup below the catatonic mount: " + Str(refused));
    int orphan = InTree(restored, [&] {
      ::signal(SIGPIPE, SIG_IGN);
      return ::open((w + "/o/x").c_str(), O_RDONLY | O_DIRECTORY) >= 0 ? 0 : 1;
    });
    EXPECT_OR_RETURN(orphan == 1, "lookup below the orphan: " + Str(orphan));
    // Once more round the cycle, with key1 mounted too now.
    TempDir again;
    RunResult d2 = Dump(restored, again.path());
    EXPECT_OR_RETURN(d2.status == 0, "second dump: " + d2.err);
    ::waitpid(restored, nullptr, 0);
    if (std::string e = RestoreAndVerify(again.path(), restored); !e.empty()) return "second cycle: " + e;
    std::string mountinfo = ReadFile("/proc/" + Str(restored) + "/mountinfo");
    EXPECT_OR_RETURN(mountinfo.find(w + "/a/key0 ") != std::string::npos && mountinfo.find(w + "/a/key1 ") != std::string::npos,
                     "served keys after the second cycle");
    EXPECT_OR_RETURN(ReadFile("/proc/" + Str(restored) + "/root" + w + "/f/target") == "bound file", "the file bind, second cycle");
    struct stat src {}, hard {};
    EXPECT_OR_RETURN(::stat(("/proc/" + Str(restored) + "/root" + w + "/f/src").c_str(), &src) == 0 &&
                         ::stat(("/proc/" + Str(restored) + "/root" + w + "/f/hard").c_str(), &hard) == 0 &&
                         src.st_ino == hard.st_ino && src.st_nlink == 2,
                     "f/src and f/hard are not one inode with two links");
    EXPECT_OR_RETURN(src.st_mtim.tv_sec == 1234567890 && src.st_mtim.tv_nsec == 123456789,
                     "f/src's mtime: " + Str(src.st_mtim.tv_sec) + "." + Str(src.st_mtim.tv_nsec));
    int hidden = InTree(restored, [&] {
      return ::umount2((w + "/f/d").c_str(), MNT_DETACH) == 0 && ReadFile(w + "/f/d/hidden") == "covered by a mount" ? 0 : 1;
    });
    EXPECT_OR_RETURN(hidden == 0, "the file the mount on f/d covered is lost");
    // verify sees a changed file, a new one and a changed mode in a tmpfs.
    std::string f = "/proc/" + Str(restored) + "/root" + w + "/f/";
    WriteFile(f + "src", "BOUND FILE");
    WriteFile(f + "new", "");
    EXPECT_OR_RETURN(::chmod((f + "d/hidden").c_str(), 0600) == 0, "chmod");
    RunResult v = RunCommand({RestoreOrch(), "verify", "--images", again.path(), "--pid", Str(restored)});
    for (const char* want : {"/src: data differs", "/hard: data differs", "/new: not in the images", "/d/hidden: mode 0600, images say 0644"}) {
      EXPECT_OR_RETURN(v.status == 1 && v.out.find("mount " + w + "/f: " + want) != std::string::npos, "verify: " + v.out + v.err);
    }
    int served_again = InTree(restored, [&] { return ::open((w + "/a/key2").c_str(), O_RDONLY | O_DIRECTORY) >= 0 ? 0 : 1; });
    EXPECT_OR_RETURN(served_again == 0, "lookup after the second cycle: " + Str(served_again));
    KillTree(restored);
    EXPECT_OR_RETURN(OtherProcesses() == 0, "processes left");
    return std::string();
  });
  EXPECT_EQ(err, "");
}

// In a tree's root task with its own mount namespace: forks an AutoFS master
// of an indirect mount at `at` that holds its pipe at 20 (read) and 21 but
// never reads it.
void StartDeafMaster(const std::string& at) {
  MUST(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0);
  MUST(::mkdir(at.c_str(), 0755) == 0);
  if (::fork() != 0) return;
  MUST(::setsid() > 0);
  int p[2];
  MUST(::pipe(p) == 0);
  MoveFd(p[0], 20);
  MoveFd(p[1], 21);
  std::string opts = "fd=21,pgrp=" + Str(::getpid()) + ",minproto=5,maxproto=5,indirect";
  MUST(::mount("master", at.c_str(), "autofs", 0, opts.c_str()) == 0);
  ExecSleep();
}

TEST(Dump, PendingAutofsRequestAsksToTryAgain) {
  RO_SKIP_WITHOUT_AUTOFS();
  std::string err = InSandbox([] {
    TempDir work, images;
    const std::string w = work.path();
    pid_t root = StartTree(true, true, [&] {
      StartDeafMaster(w + "/a");
      ExecSleep();
    });
    EXPECT_OR_RETURN(root > 0 && WaitSettled(root, 2), "the tree did not settle");
    pid_t master = TreeOf(root)[1];
    pid_t lookup = InTree(root, [&] { return ::open((w + "/a/waiting").c_str(), O_RDONLY | O_DIRECTORY) >= 0 ? 0 : 1; }, false);
    for (int i = 0; i < 500 && Queued(master, 20) <= 0; ++i) ::usleep(10000);
    EXPECT_OR_RETURN(Queued(master, 20) > 0, "no request reached the pipe");
    RunResult d = Dump(root, images.path());
    bool running = RunsOn(root) && RunsOn(master) && Queued(master, 20) > 0;
    // The tree's end takes the waiting lookup with it (its pid lives in the
    // tree's namespace); then its outer half exits.
    KillTree(root);
    ::waitpid(lookup, nullptr, 0);
    EXPECT_OR_RETURN(d.status == 75, "exit " + Str(d.status) + ": " + d.err);
    EXPECT_OR_RETURN(d.err.find("try again") != std::string::npos && d.err.find(w + "/a") != std::string::npos, d.err);
    EXPECT_OR_RETURN(std::count(d.err.begin(), d.err.end(), '\n') == 1, "one line: " + d.err);
    EXPECT_OR_RETURN(running, "the tree was not left running with its request");
    EXPECT_OR_RETURN(CountImages(images.path()) == 0, "images were written");
    return std::string();
  });
  EXPECT_EQ(err, "");
}

// A task of the tree waiting on an AutoFS mount whose master never answers
// cannot stop: the freeze gives up after --freeze-timeout, exit 75, and the
// tree runs on.
TEST(Dump, TaskStuckInAnAutofsLookupAsksToTryAgain) {
  RO_SKIP_WITHOUT_AUTOFS();
  std::string err = InSandbox([] {
    TempDir work, images;
    const std::string w = work.path();
    pid_t root = StartTree(true, true, [&] {
      StartDeafMaster(w + "/a");
      for (int i = 0; i < 500 && ReadFile("/proc/self/mountinfo").find(" autofs ") == std::string::npos; ++i) ::usleep(10000);
      if (::fork() == 0) ::_exit(::open((w + "/a/stuck").c_str(), O_RDONLY | O_DIRECTORY) >= 0 ? 0 : 1);
      ExecSleep();
    });
    EXPECT_OR_RETURN(root > 0 && WaitSettled(root, 3, {}), "the tree did not settle");
    pid_t master = TreeOf(root)[1];
    for (int i = 0; i < 500 && Queued(master, 20) <= 0; ++i) ::usleep(10000);
    EXPECT_OR_RETURN(Queued(master, 20) > 0, "no request reached the pipe");
    RunResult d = Dump(root, images.path(), {"--freeze-timeout", "0.5"});
    std::vector<char> states;
    for (pid_t p : TreeOf(root)) states.push_back(StateOf(p));
    KillTree(root);
    EXPECT_OR_RETURN(d.status == 75, "exit " + Str(d.status) + ": " + d.err);
    EXPECT_OR_RETURN(d.err.find("did not stop within 500 ms") != std::string::npos && d.err.find("try again") != std::string::npos, d.err);
    // Where it waits names the cause; nothing blames a disk.
    EXPECT_OR_RETURN(d.err.find("(an AutoFS lookup") != std::string::npos && d.err.find("disk") == std::string::npos, d.err);
    EXPECT_OR_RETURN(states.size() == 3 && states[2] == 'D' && states[0] != 't' && states[1] != 't' && states[0] != 'T' && states[1] != 'T',
                     std::string(states.begin(), states.end()));
    EXPECT_OR_RETURN(CountImages(images.path()) == 0, "images were written");
    return std::string();
  });
  EXPECT_EQ(err, "");
}

// Each object dump cannot restore fails the dump with one line naming the
// task and the object, and leaves the tree running as it was.
struct Unsupported {
  const char* name;
  std::function<void(const std::string& work)> init;  // the root's setup; it then waits
  const char* message;
  size_t tasks = 0;            // the tree's tasks once settled (0: by name below)
  const char* also = nullptr;  // also in the line
  bool shell_job = false;      // dumped with --shell-job
};

void Wait() {
  for (;;) ::pause();
}

const Unsupported kUnsupported[] = {
    {"socket", [](const std::string&) {
       int sv[2];
       MUST(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
       MoveFd(sv[0], 10);
       ExecSleep();
     }, "is a socket (socket:["},
    {"eventfd", [](const std::string&) {
       MoveFd(::eventfd(0, 0), 10);
       ExecSleep();
     }, "fd 10 is anon_inode:[eventfd]"},
    {"deleted", [](const std::string& work) {
       int fd = ::open((work + "/gone").c_str(), O_RDWR | O_CREAT, 0644);
       MUST(fd >= 0 && ::unlink((work + "/gone").c_str()) == 0);
       MoveFd(fd, 10);
       ExecSleep();
     }, "fd 10 is a deleted file"},
    {"dead leader", [](const std::string&) {
       std::thread([] { Wait(); }).detach();
       ::syscall(SYS_exit, 0);  // the main thread alone: its other thread runs on
     }, "its main thread exited while 1 other thread(s) run on"},
    {"thread's own fd table", [](const std::string&) {
       std::thread([] {
         MUST(::unshare(CLONE_FILES) == 0);  // this thread alone
         Wait();
       }).detach();
       Wait();
     }, "it has an fd table of its own"},
    {"stopped", [](const std::string&) {
       if (::fork() == 0) {
         ::raise(SIGSTOP);
         ::_exit(0);
       }
       Wait();
     }, "stopped (job control)"},
    {"packet pipe", [](const std::string&) {
       int p[2];
       MUST(::pipe2(p, O_DIRECT) == 0);
       ExecSleep();
     }, "packet-mode"},
    {"traced", [](const std::string&) {
       if (::fork() == 0) {  // traced by the root from now on
         MUST(::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) == 0);
         Wait();
       }
       Wait();
     }, "is traced by pid"},
    {"net namespace", [](const std::string&) {
       if (::fork() == 0) {
         MUST(::unshare(CLONE_NEWNET) == 0);
         ExecSleep();
       }
       ExecSleep();
     }, "it is in another network namespace than the tree's root"},
    {"terminal", [](const std::string&) {
       int master = ::posix_openpt(O_RDWR | O_NOCTTY);
       MUST(master >= 0 && ::grantpt(master) == 0 && ::unlockpt(master) == 0);
       int slave = ::open(::ptsname(master), O_RDWR | O_NOCTTY);
       MUST(slave >= 0);
       ::close(master);  // hangs the terminal up; fd 9 is still one
       MoveFd(slave, 9);
       ExecSleep();
     }, "fd 9 is the terminal /dev/pts/", 1, "terminals are not checkpointed"},
    // Reopened by its path, a pty master is a new pair: refused with --shell-job too.
    {"pty master", [](const std::string&) {
       int master = ::posix_openpt(O_RDWR | O_NOCTTY);
       MUST(master >= 0);
       MoveFd(master, 9);
       ExecSleep();
     }, "fd 9 is the master of a pseudo-terminal (/dev/", 1, "terminals are not checkpointed", true},
    // File locks are not restored: a dump would lose them.
    {"flock", [](const std::string& work) {
       int fd = ::open((work + "/flocked").c_str(), O_RDWR | O_CREAT, 0644);
       MUST(fd >= 0 && ::flock(fd, LOCK_EX) == 0);
       MoveFd(fd, 10);
       ExecSleep();
     }, "/flocked) holds an flock lock (flock) for WRITE: file locks are not restored"},
    {"POSIX lock", [](const std::string& work) {
       // Moved first: closing any fd of the file drops a POSIX lock.
       MoveFd(::open((work + "/posix").c_str(), O_RDWR | O_CREAT, 0644), 11);
       struct flock fl {};
       fl.l_type = F_WRLCK;
       fl.l_whence = SEEK_SET;
       fl.l_len = 10;
       MUST(::fcntl(11, F_SETLK, &fl) == 0);
       ExecSleep();
     }, "fd 11 (", 1, "/posix) holds a POSIX record lock (fcntl F_SETLK) for WRITE: file locks are not restored"},
    {"OFD lock", [](const std::string& work) {
       int fd = ::open((work + "/ofd").c_str(), O_RDWR | O_CREAT, 0644);
       struct flock fl {};
       fl.l_type = F_RDLCK;
       fl.l_whence = SEEK_SET;
       MUST(fd >= 0 && ::fcntl(fd, F_OFD_SETLK, &fl) == 0);
       MoveFd(fd, 12);
       ExecSleep();
     }, "fd 12 (", 1, "holds an open file description lock (fcntl F_OFD_SETLK) for READ"},
    // A vfork parent waits until its child execs or exits: no freeze stops
    // it. Refused at once, not after --freeze-timeout as a wait to retry.
    {"vfork parent", [](const std::string&) {
       static char stack[64 * 1024];
       ::clone([](void*) -> int {
         struct timespec t = {1000, 0};
         ::syscall(SYS_nanosleep, &t, nullptr);
         ::_exit(0);
       }, stack + sizeof(stack), CLONE_VM | CLONE_VFORK | SIGCHLD, nullptr);
       ExecSleep();
     }, "a vfork parent cannot be dumped", 2, "it is a vfork parent waiting for its child "},
};

// A tree whose refusal /proc alone shows (an epoll fd) is refused before
// the freeze: its task blocked in epoll_wait does not see EINTR (a ptrace
// stop would end that wait), and it runs on, still waiting. The line is
// the one the full check gives.
TEST(Dump, RefusedBeforeTheFreezeAnEpollWaitIsNotInterrupted) {
  std::string err = InSandbox([] {
    TempDir work;
    const std::string report = work.File("report");
    pid_t root = StartTree(true, false, [&] {
      int p[2];
      MUST(::pipe(p) == 0);
      MoveFd(::epoll_create1(0), 10);
      epoll_event ev{};
      ev.events = EPOLLIN;
      MUST(::epoll_ctl(10, EPOLL_CTL_ADD, p[0], &ev) == 0);
      WriteFile(report, "waiting\n");
      int r = ::epoll_wait(10, &ev, 1, -1);
      int saved = errno;
      WriteFile(report, "epoll_wait returned " + Str(r) + (r < 0 ? std::string(" ") + ::strerror(saved) : std::string()) + "\n");
      Wait();
    });
    EXPECT_OR_RETURN(root > 0, "clone");
    for (int i = 0; i < 500 && ReadFile(report) != "waiting\n"; ++i) ::usleep(10000);
    ::usleep(100000);  // in epoll_wait by now
    RunResult d = Dump(root, work.File("images"));
    ::usleep(300000);  // an interrupted wait would have written by now
    std::string said = ReadFile(report);
    bool running = RunsOn(root);
    KillTree(root);
    EXPECT_OR_RETURN(d.status == 3, "exit " + Str(d.status) + ": " + d.err);
    EXPECT_OR_RETURN(d.err == "restore-orch: dump: task 1 (pid " + Str(root) +
                                  " here): fd 10 is anon_inode:[eventpoll]: anonymous-inode files (eventfd, epoll, signalfd, "
                                  "timerfd, pidfd...) are not supported\n",
                     d.err);
    EXPECT_OR_RETURN(said == "waiting\n", "the task saw its wait end: " + said);
    EXPECT_OR_RETURN(running, "the tree was not left running");
    EXPECT_OR_RETURN(::access(work.File("images").c_str(), F_OK) != 0, "the image directory was left behind");
    return std::string();
  });
  EXPECT_EQ(err, "");
}

TEST(Dump, RefusesWhatItCannotRestoreAndLeavesTheTreeRunning) {
  for (const Unsupported& u : kUnsupported) {
    std::string err = InSandbox([&] {
      TempDir work;
      std::string images = work.File("images");
      pid_t root = StartTree(true, false, [&] { u.init(work.path()); });
      EXPECT_OR_RETURN(root > 0, "clone");
      // Settled: every task born, the stopped one stopped.
      size_t tasks = u.tasks != 0 ? u.tasks
                     : std::string(u.name) == "stopped" || std::string(u.name) == "traced" || std::string(u.name) == "other user" ||
                             std::string(u.name) == "net namespace"
                         ? 2
                         : 1;
      EXPECT_OR_RETURN(WaitSettled(root, tasks, {}), "the tree did not settle");
      for (int i = 0; i < 300 && std::string(u.name) == "stopped" && StateOf(TreeOf(root).back()) != 'T'; ++i) ::usleep(10000);
      ::usleep(50000);
      // Running or sleeping, stopped, traced-stopped, zombie: what a dump must not change.
      auto kind = [](char c) { return c == 'T' || c == 't' || c == 'Z' ? c : 'r'; };
      std::vector<pid_t> before = TreeOf(root);
      std::vector<char> states;
      for (pid_t p : before) states.push_back(kind(StateOf(p)));
      auto start = std::chrono::steady_clock::now();
      std::vector<std::string> flags = {"--freeze-timeout", "20"};
      if (u.shell_job) flags.push_back("--shell-job");
      RunResult d = Dump(root, images, flags);
      double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::vector<char> after;
      for (pid_t p : TreeOf(root)) after.push_back(kind(StateOf(p)));
      KillTree(root);
      EXPECT_OR_RETURN(d.status == 3, "exit " + Str(d.status) + ": " + d.err);
      EXPECT_OR_RETURN(d.err.find(u.message) != std::string::npos && d.err.find("task ") != std::string::npos, d.err);
      EXPECT_OR_RETURN(u.also == nullptr || d.err.find(u.also) != std::string::npos, d.err);
      EXPECT_OR_RETURN(seconds < 10, "refused only after " + std::to_string(seconds) + " s: " + d.err);
      EXPECT_OR_RETURN(std::count(d.err.begin(), d.err.end(), '\n') == 1, "one line: " + d.err);
      EXPECT_OR_RETURN(after == states, "task states changed: " + std::string(states.begin(), states.end()) + " -> " +
                                            std::string(after.begin(), after.end()));
      EXPECT_OR_RETURN(::access(images.c_str(), F_OK) != 0, "the image directory was left behind");
      return std::string();
    });
    EXPECT_EQ(err, "") << u.name;
  }
}


// A bind of a directory removed since (mountinfo's root "/x//deleted").
TEST(Dump, BindOfARemovedDirectoryIsRefused) {
  EXPECT_EQ(InSandbox([] {
              return RefusedMounts(
                  [](const std::string& w) {
                    MUST(::mkdir((w + "/t").c_str(), 0755) == 0 && ::mkdir((w + "/y").c_str(), 0755) == 0);
                    MUST(::mount("none", (w + "/t").c_str(), "tmpfs", 0, "size=64k") == 0);
                    MUST(::mkdir((w + "/t/x").c_str(), 0755) == 0);
                    MUST(::mount((w + "/t/x").c_str(), (w + "/y").c_str(), nullptr, MS_BIND, nullptr) == 0);
                    MUST(::rmdir((w + "/t/x").c_str()) == 0);
                  },
                  "/y: a bind of /x, removed since");
            }),
            "");
}

// A shell's job: a tree sharing restore-orch's PID and mount namespaces,
// started from the caller's session and group without setsid (the
// sandbox's init is the shell). Refused without --shell-job with one line
// naming the task and the flag, the tree left running; dumped with it, it
// comes back with its pids, in the caller's session and group (the
// sandbox's init sees it there from outside the tree), and verifies.
TEST(Dump, ShellJobInTheCallersNamespacesOnlyWithShellJob) {
  std::string err = InSandbox([] {
    TempDir images;
    EXPECT_OR_RETURN(::setsid() > 0, "setsid");  // the shell leads a session of the sandbox's PID namespace
    // Pids well above those of the processes the test runs meanwhile.
    int last = ::open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
    EXPECT_OR_RETURN(last >= 0 && ::write(last, "1000", 4) == 4, "ns_last_pid");
    ::close(last);
    // A child in a group of its own, and one that stays the root's zombie
    // (its exit waits at the resume stage, its parent's release only at the
    // done stage).
    pid_t root = StartTree(
        false, false,
        [] {
          if (::fork() == 0) {
            MUST(::setpgid(0, 0) == 0);  // a group of its own, in the shell's session
            ExecSleep();
          }
          if (::fork() == 0) ::_exit(7);
          ExecSleep();
        },
        false);
    EXPECT_OR_RETURN(root > 0 && WaitSettled(root, 3), "the tree did not settle");
    std::vector<pid_t> pids = TreeOf(root);
    RunResult refused = Dump(root, images.path() + "/refused");
    EXPECT_OR_RETURN(refused.status == 3, "exit " + Str(refused.status) + ": " + refused.err);
    EXPECT_OR_RETURN(refused.err.find("task " + Str(root) + " is in session 1, whose leader is outside the tree") !=
                             std::string::npos &&
                         refused.err.find("--shell-job (-j)") != std::string::npos,
                     refused.err);
    EXPECT_OR_RETURN(std::count(refused.err.begin(), refused.err.end(), '\n') == 1, "one line: " + refused.err);
    EXPECT_OR_RETURN(RunsOn(root) && TreeOf(root) == pids, "the tree was not left running");
    RunResult d = Dump(root, images.path(), {"--shell-job"});
    EXPECT_OR_RETURN(d.status == 0, d.err);
    EXPECT_OR_RETURN(d.out.find("a restore needs --shell-job (-j): task " + Str(root)) != std::string::npos, d.out);
    for (pid_t p : pids) ::waitpid(p, nullptr, 0);  // the child came to us when the root died
    RunResult plain = RunCommand({RestoreOrch(), "--images", images.path(), "--dry-run"});
    EXPECT_OR_RETURN(plain.status == 2 && plain.err.find("--shell-job") != std::string::npos, "without -j: " + plain.err);
    pid_t restored = 0;
    if (std::string e = RestoreAndVerify(images.path(), restored, {"-j"}); !e.empty()) return e;
    std::vector<pid_t> again = TreeOf(restored);
    size_t zombies = 0;
    for (pid_t p : again) zombies += StateOf(p) == 'Z';
    std::string where;
    for (pid_t p : again) where += " " + Str(p) + ":" + Str(::getsid(p)) + "/" + Str(::getpgid(p));
    bool in_ours = again.size() == 3 && ::getsid(again[0]) == ::getsid(0) && ::getpgid(again[0]) == ::getpgrp() &&
                   ::getsid(again[1]) == ::getsid(0) && ::getpgid(again[1]) == again[1];
    KillTree(restored);
    EXPECT_OR_RETURN(restored == root && again == pids, "the pids changed");
    EXPECT_OR_RETURN(zombies == 1, Str(static_cast<long>(zombies)) + " zombies after the restore");
    EXPECT_OR_RETURN(in_ours, "not in the caller's session " + Str(::getsid(0)) + " and group " + Str(::getpgrp()) + ":" + where);
    return std::string();
  });
  EXPECT_EQ(err, "");
}

// SIGINT in the middle of a dump: the tree runs on, nothing is written.
TEST(Dump, InterruptedDumpWritesNothingAndReleasesTheTree) {
  std::string err = InSandbox([] {
    TempDir work;
    std::string images = work.File("images");
    constexpr int kChildren = 500;
    pid_t root = StartTree(true, false, [] {
      for (int i = 0; i < kChildren; ++i) {
        if (::fork() == 0) Wait();
      }
      Wait();
    });
    EXPECT_OR_RETURN(root > 0 && WaitSettled(root, kChildren + 1, {}), "the tree did not settle");
    pid_t dump = ::fork();
    if (dump == 0) {
      int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, 2);
      ::execl(RestoreOrch().c_str(), "restore-orch", "dump", "--tree", Str(root).c_str(), "--images", images.c_str(), nullptr);
      ::_exit(127);
    }
    // Once the root is frozen restore-orch handles the signal (and the dump is
    // still far from written).
    for (int i = 0; i < 50000 && StateOf(root) != 't'; ++i) ::usleep(100);
    ::kill(dump, SIGINT);
    int status = 0;
    ::waitpid(dump, &status, 0);
    std::vector<pid_t> tree = TreeOf(root);
    size_t running = 0;
    for (pid_t p : tree) running += RunsOn(p);
    KillTree(root);
    EXPECT_OR_RETURN(WIFEXITED(status) && WEXITSTATUS(status) == 1, "dump status " + Str(status));
    EXPECT_OR_RETURN(tree.size() == kChildren + 1 && running == tree.size(), Str(static_cast<long>(running)) + " of " +
                                                                                 Str(static_cast<long>(tree.size())) + " tasks run on");
    EXPECT_OR_RETURN(::access(images.c_str(), F_OK) != 0, "the image directory was left behind");
    return std::string();
  });
  EXPECT_EQ(err, "");
}

// SIGTERM while the pages are being streamed (the collector sees it between
// two runs of pages): a failure like any other interruption, exit 1 (not 3,
// a refusal), the tree running, nothing written.
TEST(Dump, SigtermWhileCollectingExitsOneNotRefused) {
  std::string err = InSandbox([] {
    TempDir work;
    std::string images = work.File("images");
    const std::string filled = work.File("filled");
    pid_t root = StartTree(true, false, [&] {
      constexpr size_t kBytes = size_t{384} << 20;
      auto* m = static_cast<volatile char*>(::mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
      MUST(m != MAP_FAILED);
      for (size_t i = 0; i < kBytes; i += 4096) m[i] = static_cast<char>((i >> 12) | 1);
      WriteFile(filled, "1");
      Wait();
    });
    EXPECT_OR_RETURN(root > 0, "clone");
    for (int i = 0; i < 3000 && ::access(filled.c_str(), F_OK) != 0; ++i) ::usleep(10000);
    bool ready = ::access(filled.c_str(), F_OK) == 0;
    if (!ready) KillTree(root);
    EXPECT_OR_RETURN(ready, "the tree did not fill its memory");
    std::string log = work.File("dump.err");
    pid_t dump = ::fork();
    if (dump == 0) {
      int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(out, 2);
      ::execl(RestoreOrch().c_str(), "restore-orch", "dump", "--tree", Str(root).c_str(), "--images", images.c_str(), nullptr);
      ::_exit(127);
    }
    // The pages file appears as the collector starts streaming.
    auto streaming = [&] {
      DIR* d = ::opendir(images.c_str());
      if (d == nullptr) return false;
      bool found = false;
      while (dirent* e = ::readdir(d)) found |= std::string(e->d_name).rfind("pages-", 0) == 0;
      ::closedir(d);
      return found;
    };
    for (int i = 0; i < 100000 && !streaming(); ++i) ::usleep(100);
    ::kill(dump, SIGTERM);
    int status = 0;
    ::waitpid(dump, &status, 0);
    bool running = RunsOn(root);
    KillTree(root);
    std::string line = ReadFile(log);
    EXPECT_OR_RETURN(WIFEXITED(status) && WEXITSTATUS(status) == 1, "dump status " + Str(status) + ": " + line);
    EXPECT_OR_RETURN(line.find("interrupted by Terminated while collecting") != std::string::npos, line);
    EXPECT_OR_RETURN(std::count(line.begin(), line.end(), '\n') == 1, "one line: " + line);
    EXPECT_OR_RETURN(running, "the tree was not left running");
    EXPECT_OR_RETURN(::access(images.c_str(), F_OK) != 0, "the image directory was left behind");
    return std::string();
  });
  EXPECT_EQ(err, "");
}

// A tree that forks all the time (in restore-orch's PID namespace, so no
// namespace init takes its children down): none escapes the freeze, so the
// kill leaves nothing.
TEST(Dump, ForkingTreeLosesNoChild) {
  std::string err = InSandbox([] {
    TempDir images;
    pid_t root = StartTree(false, false, [] {
      for (;;) {
        if (::fork() == 0) Wait();
        ::usleep(500);
      }
    });
    EXPECT_OR_RETURN(root > 0, "clone");
    for (int i = 0; i < 500 && TreeOf(root).size() <= 20; ++i) ::usleep(10000);  // forking at full speed now
    RunResult d = Dump(root, images.path(), {"--stats", images.File("stats.json")});
    ::waitpid(root, nullptr, 0);
    EXPECT_OR_RETURN(d.status == 0, d.err);
    EXPECT_OR_RETURN(OtherProcesses() == 0, "a child escaped the freeze");
    auto dir = images::LoadImageDir(images.path(), images::Limits{});
    EXPECT_OR_RETURN(dir.ok() && dir->files.at("pstree.img").entries.size() > 20, "too few tasks dumped");
    return std::string();
  });
  EXPECT_EQ(err, "");
}

}  // namespace
}  // namespace ro::test
