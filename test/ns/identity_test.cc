// What each fd, cwd and root of a task points at, and which sessions and
// groups its tasks share, through dump → restore → verify with trees the
// tests start for real: a chrooted task keeps its root and its cwd inside
// it; an fd, cwd or root whose path leads elsewhere now (a mount covers it,
// it was renamed or replaced, another mount reaches it) is refused at dump
// with the tree left running, and verify sees a restored one that points
// elsewhere; tasks in different sessions led from outside the tree are
// refused even as a shell's job, and verify sees them merged.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <functional>

#include "test/helpers/live_tree.h"
#include "test/helpers/sandbox.h"
#include "test/helpers/test_util.h"

namespace ro::test {
namespace {

std::string Link(pid_t pid, const char* what) {
  char buf[4096];
  ssize_t n = ::readlink(("/proc/" + Str(pid) + "/" + what).c_str(), buf, sizeof(buf));
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

// SIGUSR1 makes the chrooted task write its own working directory (as it
// sees it, inside its root) to "report" there.
void ReportCwd(int) {
  char buf[512];
  long n = ::syscall(SYS_getcwd, buf, sizeof(buf));
  int fd = ::open("report", O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0 && n > 1) (void)!::write(fd, buf, static_cast<size_t>(n - 1));
  if (fd >= 0) ::close(fd);
}

// Waits up to 5 s for `path` to hold something.
std::string WaitForFile(const std::string& path) {
  for (int i = 0; i < 500; ++i) {
    std::string s = ReadFile(path);
    if (!s.empty()) return s;
    ::usleep(10000);
  }
  return "";
}

// A task chrooted into a directory, its cwd below it: it continues with the
// same root and the same cwd inside it (its own getcwd says "/sub"); verify
// agrees, and sees a cwd the images place elsewhere.
TEST(Identity, AChrootedTaskKeepsItsRootAndItsCwdInsideIt) {
  EXPECT_EQ(InSandbox([] {
              TempDir work;
              const std::string jail = work.File("jail");
              EXPECT_OR_RETURN(::mkdir(jail.c_str(), 0755) == 0 && ::mkdir((jail + "/sub").c_str(), 0755) == 0, "mkdir");
              pid_t root = StartTree(true, false, [&] {
                MUST(::signal(SIGUSR1, ReportCwd) != SIG_ERR);
                MUST(::chroot(jail.c_str()) == 0 && ::chdir("/sub") == 0);
                for (;;) ::pause();
              });
              EXPECT_OR_RETURN(root > 0 && WaitSettled(root, 1, {}), "the tree did not settle");
              for (int i = 0; i < 500 && Link(root, "root") != jail; ++i) ::usleep(10000);
              RunResult d = Dump(root, work.File("images"));
              if (d.status != 0) KillTree(root);  // a refused dump leaves it running
              ::waitpid(root, nullptr, 0);
              EXPECT_OR_RETURN(d.status == 0, d.err);
              pid_t restored = 0;
              if (std::string e = RestoreAndVerify(work.File("images"), restored); !e.empty()) return e;
              std::string have_root = Link(restored, "root"), have_cwd = Link(restored, "cwd");
              ::kill(restored, SIGUSR1);
              std::string inside = WaitForFile(jail + "/sub/report");
              // verify against images whose cwd names the jail itself.
              RunResult v;
              {
                RunResult decoded = RunCommand({RestoreOrch(), "image", "decode", work.File("images") + "/files.img"});
                std::string json = decoded.out;
                size_t at = json.find("\"" + jail + "/sub\"");
                if (decoded.status == 0 && at != std::string::npos) {
                  json.replace(at, jail.size() + 6, "\"" + jail + "\"");
                  RunResult enc = RunCommand({RestoreOrch(), "image", "encode", "-o", work.File("images") + "/files.img"}, json);
                  if (enc.status == 0) v = RunCommand({RestoreOrch(), "verify", "--images", work.File("images"), "--pid", Str(restored)});
                }
              }
              KillTree(restored);
              EXPECT_OR_RETURN(have_root == jail, "root " + have_root);
              EXPECT_OR_RETURN(have_cwd == jail + "/sub", "cwd " + have_cwd);
              EXPECT_OR_RETURN(inside == "/sub", "the task sees its cwd as '" + inside + "'");
              EXPECT_OR_RETURN(v.status == 1 && v.out.find("task 1 cwd: " + jail + "/sub, images say " + jail) != std::string::npos,
                               "verify of edited images: " + Str(v.status) + " " + v.out + v.err);
              return std::string();
            }),
            "");
}

// The root task itself chrooted into a tmpfs of its mount namespace: the
// whole namespace is dumped (its mountinfo shows only what lies under its
// root) and it comes back with that root and its cwd.
TEST(Identity, AChrootedRootTaskKeepsItsWholeMountNamespace) {
  EXPECT_EQ(InSandbox([] {
              TempDir work;
              const std::string jail = work.File("jail");
              pid_t root = StartTree(true, true, [&] {
                MUST(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0);
                MUST(::mkdir(jail.c_str(), 0755) == 0 && ::mount("jt", jail.c_str(), "tmpfs", 0, "size=64k") == 0);
                MUST(::mkdir((jail + "/in").c_str(), 0755) == 0);
                MUST(::chroot(jail.c_str()) == 0 && ::chdir("/in") == 0);
                for (;;) ::pause();
              });
              EXPECT_OR_RETURN(root > 0 && WaitSettled(root, 1, {}), "the tree did not settle");
              for (int i = 0; i < 500 && Link(root, "root") != jail; ++i) ::usleep(10000);
              RunResult d = Dump(root, work.File("images"));
              if (d.status != 0) KillTree(root);
              ::waitpid(root, nullptr, 0);
              EXPECT_OR_RETURN(d.status == 0, "dump: " + d.err);
              pid_t restored = 0;
              if (std::string e = RestoreAndVerify(work.File("images"), restored); !e.empty()) return e;
              std::string have_root = Link(restored, "root"), have_cwd = Link(restored, "cwd");
              KillTree(restored);
              EXPECT_OR_RETURN(have_root == jail && have_cwd == jail + "/in", "root " + have_root + ", cwd " + have_cwd);
              return std::string();
            }),
            "");
}

// The tree's root builds a tmpfs at t/ with d/file in it, then `build`
// (RefusedMounts: the dump must refuse with `want` after the work directory).
std::string Refused(const std::function<void(const std::string&)>& build, const std::string& want) {
  return RefusedMounts(
      [&](const std::string& w) {
        MUST(::mkdir((w + "/t").c_str(), 0755) == 0);
        MUST(::mount("none", (w + "/t").c_str(), "tmpfs", 0, "size=64k") == 0);
        MUST(::mkdir((w + "/t/d").c_str(), 0755) == 0);
        WriteFile(w + "/t/d/file", "under");
        build(w + "/t");
      },
      want);
}

TEST(Identity, AnFdWhoseDirectoryWasMountedOverIsRefused) {
  EXPECT_EQ(InSandbox([] {
              return Refused(
                  [](const std::string& t) {
                    MoveFd(::open((t + "/d/file").c_str(), O_RDONLY), 5);
                    MUST(::mount("none", (t + "/d").c_str(), "tmpfs", 0, "size=64k") == 0);
                    WriteFile(t + "/d/file", "over");  // same name, another file
                  },
                  "/t/d/file): its path leads to another file now (a mount covers it, or it was replaced)");
            }),
            "");
}

// A file the task maps, whose directory was then mounted over: a restore
// would map the file on top (the tree's own data elsewhere), so the dump
// refuses it as it refuses such an fd.
TEST(Identity, AMappedFileWhoseDirectoryWasMountedOverIsRefused) {
  EXPECT_EQ(InSandbox([] {
              TempDir work;
              const std::string t = work.File("t");
              pid_t root = StartTree(true, true, [&] {
                MUST(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0);
                MUST(::mkdir(t.c_str(), 0755) == 0 && ::mount("low", t.c_str(), "tmpfs", 0, "size=64k") == 0);
                WriteFile(t + "/data", std::string(4096, 'A'));
                int fd = ::open((t + "/data").c_str(), O_RDONLY);
                MUST(fd >= 0 && ::mmap(nullptr, 4096, PROT_READ, MAP_SHARED, fd, 0) != MAP_FAILED);
                ::close(fd);
                MUST(::mount("cover", t.c_str(), "tmpfs", 0, "size=64k") == 0);
                WriteFile(t + "/data", std::string(4096, 'B'));
                WriteFile(work.File("ready"), "ready");
                for (;;) ::pause();
              });
              EXPECT_OR_RETURN(root > 0, "clone");
              for (int i = 0; i < 500 && ReadFile(work.File("ready")).empty(); ++i) ::usleep(10000);
              EXPECT_OR_RETURN(!ReadFile(work.File("ready")).empty(), "the tree did not settle");
              RunResult d = Dump(root, work.File("images"));
              bool running = RunsOn(root);
              KillTree(root);
              EXPECT_OR_RETURN(d.status == 3, "exit " + Str(d.status) + ": " + d.err);
              EXPECT_OR_RETURN(d.err.find("mapped file " + t + "/data") != std::string::npos &&
                                   d.err.find("its path leads to another file now") != std::string::npos,
                               d.err);
              EXPECT_OR_RETURN(running, "the tree was not left running");
              return std::string();
            }),
            "");
}

TEST(Identity, ACwdThatWasMountedOverIsRefused) {
  EXPECT_EQ(InSandbox([] {
              return Refused(
                  [](const std::string& t) {
                    MUST(::chdir((t + "/d").c_str()) == 0);
                    MUST(::mount("none", (t + "/d").c_str(), "tmpfs", 0, "size=64k") == 0);
                  },
                  "/t/d: its path leads to another file now");
            }),
            "");
}

// (A renamed file is no worry: its fd's path follows it.)
TEST(Identity, AnFdWhosePathLeadsNowhereIsRefused) {
  EXPECT_EQ(InSandbox([] {
              return Refused(
                  [](const std::string& t) {
                    MoveFd(::open((t + "/d/file").c_str(), O_RDONLY), 6);
                    MUST(::mount("none", (t + "/d").c_str(), "tmpfs", 0, "size=64k") == 0);
                  },
                  "/t/d/file): nothing is at its path now (renamed, removed, or a mount hides it)");
            }),
            "");
}

TEST(Identity, AnFdReachedThroughAnotherMountNowIsRefused) {
  EXPECT_EQ(InSandbox([] {
              return Refused(
                  [](const std::string& t) {
                    MoveFd(::open((t + "/d/file").c_str(), O_RDONLY), 7);
                    // The same directory bound onto itself: the path reaches the same file through the new mount.
                    MUST(::mount((t + "/d").c_str(), (t + "/d").c_str(), nullptr, MS_BIND, nullptr) == 0);
                  },
                  "/t/d/file): its path leads to the same file through another mount");
            }),
            "");
}

// A tree whose root made its mount namespace after opening its stdio
// (/dev/null through its starter's /dev mount, as a runtime hands it):
// dumped with one warning, verified against the live original and the
// restored tree (where it is open through the tree's own /dev).
TEST(Identity, FilesOpenThroughAnotherNamespacesMountAreAcceptedWithAWarning) {
  EXPECT_EQ(InSandbox([] {
              TempDir work;
              pid_t root = StartTree(true, false, [] {
                MUST(::unshare(CLONE_NEWNS) == 0 && ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0);
                ExecSleep();
              });
              EXPECT_OR_RETURN(root > 0 && WaitSettled(root, 1), "the tree did not settle");
              RunResult d = Dump(root, work.File("images"), {"--leave-running"});
              RunResult original = RunCommand({RestoreOrch(), "verify", "--images", work.File("images"), "--pid", Str(root)});
              KillTree(root);
              EXPECT_OR_RETURN(d.status == 0, "dump: " + d.err);
              EXPECT_OR_RETURN(d.err.find("fd 0 (/dev/null): open through a mount outside the tree's mount namespace") != std::string::npos &&
                                   d.err.find("restored through the tree's mounts of the same files") != std::string::npos,
                               "no warning: " + d.err);
              EXPECT_OR_RETURN(original.status == 0, "verify of the original: " + original.out + original.err);
              pid_t restored = 0;
              if (std::string e = RestoreAndVerify(work.File("images"), restored); !e.empty()) return e;
              KillTree(restored);
              return std::string();
            }),
            "");
}

// A file and a directory whose names end as the kernel marks deleted ones
// (" (deleted)") are ordinary: dumped, restored and verified.
TEST(Identity, NamesEndingInDeletedAreNotDeletedFiles) {
  EXPECT_EQ(InSandbox([] {
              TempDir work;
              const std::string dir = work.File("d (deleted)");
              EXPECT_OR_RETURN(::mkdir(dir.c_str(), 0755) == 0, "mkdir");
              work.Write("d (deleted)/x (deleted)", "still here");
              pid_t root = StartTree(true, false, [&] {
                MoveFd(::open((dir + "/x (deleted)").c_str(), O_RDONLY), 5);
                MUST(::chdir(dir.c_str()) == 0);
                ExecSleep();
              });
              EXPECT_OR_RETURN(root > 0 && WaitSettled(root, 1), "the tree did not settle");
              RunResult d = Dump(root, work.File("images"));
              if (d.status != 0) KillTree(root);
              ::waitpid(root, nullptr, 0);
              EXPECT_OR_RETURN(d.status == 0, "dump: " + d.err);
              pid_t restored = 0;
              if (std::string e = RestoreAndVerify(work.File("images"), restored); !e.empty()) return e;
              std::string cwd = Link(restored, "cwd"), fd = ReadFile("/proc/" + Str(restored) + "/fd/5");
              KillTree(restored);
              EXPECT_OR_RETURN(cwd == dir && fd == "still here", "cwd " + cwd + ", fd 5 reads '" + fd + "'");
              return std::string();
            }),
            "");
}

// /proc/self of a tree in a PID namespace of its own but without a proc of
// its own names the task as the caller's proc numbers it: a restore would
// open another process's files.
TEST(Identity, AProcFileNumberedByAnotherPidNamespaceIsRefused) {
  EXPECT_EQ(InSandbox([] {
              return RefusedMounts([](const std::string&) { MoveFd(::open("/proc/self/status", O_RDONLY), 5); },
                                   "/status) is a file of process ", false);
            }),
            "");
}

// An O_PATH fd on a FIFO would come back as the FIFO opened.
TEST(Identity, AnOPathFdOnAFifoIsRefused) {
  EXPECT_EQ(InSandbox([] {
              return RefusedMounts(
                  [](const std::string& w) {
                    MUST(::mkfifo((w + "/fifo").c_str(), 0644) == 0);
                    MoveFd(::open((w + "/fifo").c_str(), O_PATH), 5);
                  },
                  "/fifo) is an O_PATH fd on a FIFO");
            }),
            "");
}

// A restored task whose cwd and fd are then covered by a mount: verify
// says their paths lead elsewhere (as a restore that put them on the
// covering mount's files would).
TEST(Identity, VerifySeesAnFdAndACwdWhosePathsLeadElsewhere) {
  EXPECT_EQ(InSandbox([] {
              TempDir work;
              const std::string w = work.path();
              pid_t root = StartTree(true, true, [&] {
                MUST(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0);
                MUST(::mkdir((w + "/t").c_str(), 0755) == 0);
                MUST(::mount("none", (w + "/t").c_str(), "tmpfs", 0, "size=64k") == 0);
                MUST(::mkdir((w + "/t/d").c_str(), 0755) == 0);
                WriteFile(w + "/t/d/file", "data");
                MoveFd(::open((w + "/t/d/file").c_str(), O_RDONLY), 5);
                MUST(::chdir((w + "/t/d").c_str()) == 0);
                ExecSleep();
              });
              EXPECT_OR_RETURN(root > 0 && WaitSettled(root, 1), "the tree did not settle");
              RunResult d = Dump(root, work.File("images"));
              if (d.status != 0) KillTree(root);  // a refused dump leaves it running
              ::waitpid(root, nullptr, 0);
              EXPECT_OR_RETURN(d.status == 0, d.err);
              pid_t restored = 0;
              if (std::string e = RestoreAndVerify(work.File("images"), restored); !e.empty()) return e;
              // Cover t/d in the restored tree's namespace.
              pid_t coverer = ::fork();
              if (coverer == 0) {
                int ns = ::open(("/proc/" + Str(restored) + "/ns/mnt").c_str(), O_RDONLY);
                MUST(ns >= 0 && ::setns(ns, CLONE_NEWNS) == 0);
                MUST(::mount("none", (w + "/t/d").c_str(), "tmpfs", 0, "size=64k") == 0);
                int fd = ::open((w + "/t/d/file").c_str(), O_WRONLY | O_CREAT, 0644);
                MUST(fd >= 0);
                ::_exit(0);
              }
              int status = 0;
              ::waitpid(coverer, &status, 0);
              RunResult v = RunCommand({RestoreOrch(), "verify", "--images", work.File("images"), "--pid", Str(restored)});
              KillTree(restored);
              EXPECT_OR_RETURN(WIFEXITED(status) && WEXITSTATUS(status) == 0, "covering: " + Str(status));
              EXPECT_OR_RETURN(v.status == 1, "verify: " + Str(v.status) + " " + v.out + v.err);
              EXPECT_OR_RETURN(v.out.find("task 1 fd 5: its path leads to another file than the one it has open") != std::string::npos, v.out);
              EXPECT_OR_RETURN(v.out.find("task 1 cwd: its path leads to another file than the one it has open") != std::string::npos, v.out);
              return std::string();
            }),
            "");
}

// A process of a session of its own joins the PID namespace of `init`, as
// `nsenter` does, and leaves a sleeping child there: pid 2 forks pid 3 and
// exits, and the namespace's init adopts pid 3, in that outside session.
void JoinFromAnotherSession(pid_t init) {
  pid_t joiner = ::fork();
  if (joiner == 0) {
    MUST(::setsid() > 0);
    // Closed before the fork: the sleep (or its parent before the exec, as
    // the dump may see it) would hold it, an fd the dump refuses (its
    // pre-check, before the sessions are compared).
    int ns = ::open(("/proc/" + Str(init) + "/ns/pid").c_str(), O_RDONLY | O_CLOEXEC);
    MUST(ns >= 0 && ::setns(ns, CLONE_NEWPID) == 0);
    ::close(ns);
    if (::fork() == 0) {
      if (::fork() == 0) ExecSleep();
      ::_exit(0);
    }
    ::wait(nullptr);
    ::_exit(0);
  }
  ::waitpid(joiner, nullptr, 0);
}

// Tasks of one tree in two sessions led from outside it (the init's,
// and one a process from outside joined the PID namespace with, as
// `nsenter` or `docker exec` do): a shell job's restore would merge them,
// so the dump refuses them even with --shell-job.
TEST(Identity, TwoSessionsLedFromOutsideAreRefusedEvenAsAShellJob) {
  EXPECT_EQ(InSandbox([] {
              TempDir work;
              EXPECT_OR_RETURN(::setsid() > 0, "setsid");
              pid_t root = StartTree(true, false, [] { for (;;) ::pause(); }, false);
              EXPECT_OR_RETURN(root > 0, "clone");
              JoinFromAnotherSession(root);
              EXPECT_OR_RETURN(WaitSettled(root, 2, {}), "the tree did not settle");
              std::vector<pid_t> before = TreeOf(root);
              RunResult d = Dump(root, work.File("images"), {"--shell-job"});
              bool running = RunsOn(root) && TreeOf(root) == before;
              KillTree(root);
              EXPECT_OR_RETURN(d.status == 3, "exit " + Str(d.status) + ": " + d.err);
              EXPECT_OR_RETURN(d.err.find("task 3 (pid " + Str(before[1]) + " here) and task 1 are in different sessions led outside the tree") !=
                                   std::string::npos,
                               d.err);
              EXPECT_OR_RETURN(std::count(d.err.begin(), d.err.end(), '\n') == 1, "one line: " + d.err);
              EXPECT_OR_RETURN(running, "the tree was not left running");
              return std::string();
            }),
            "");
}

// Images of a shell job (both tasks in the caller's session) against a
// live tree whose two tasks are in two sessions led from outside: verify
// sees the partition, not only the numbers (both are 0 inside).
TEST(Identity, VerifySeesTwoOutsideSessionsWhereTheImagesHaveOne) {
  EXPECT_EQ(InSandbox([] {
              TempDir work;
              EXPECT_OR_RETURN(::setsid() > 0, "setsid");
              pid_t one = StartTree(true, false, [] {
                if (::fork() == 0) ::_exit(0);  // pid 2, gone: the sleeper is pid 3 as in the second tree
                ::wait(nullptr);
                if (::fork() == 0) ExecSleep();
                ExecSleep();
              }, false);
              EXPECT_OR_RETURN(one > 0 && WaitSettled(one, 2), "the first tree did not settle");
              RunResult d = Dump(one, work.File("images"), {"--shell-job"});
              if (d.status != 0) KillTree(one);
              ::waitpid(one, nullptr, 0);
              EXPECT_OR_RETURN(d.status == 0, d.err);
              pid_t two = StartTree(true, false, [] { ExecSleep(); }, false);
              EXPECT_OR_RETURN(two > 0, "clone");
              JoinFromAnotherSession(two);
              bool settled = WaitSettled(two, 2);
              RunResult v = RunCommand({RestoreOrch(), "verify", "--images", work.File("images"), "--pid", Str(two)});
              KillTree(two);
              EXPECT_OR_RETURN(settled, "the second tree did not settle");
              EXPECT_OR_RETURN(v.status == 1 && v.out.find("task 3: session ") != std::string::npos &&
                                   v.out.find("of task 1 (as seen here; the images have both in the caller's)") != std::string::npos,
                               "verify: " + Str(v.status) + " " + v.out + v.err);
              return std::string();
            }),
            "");
}

}  // namespace
}  // namespace ro::test
