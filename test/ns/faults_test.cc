// Every fault point, injected into a full restore (mount namespace with
// shared/slave mounts and tmpfs contents, AutoFS with a master, sessions,
// groups, a zombie, pipes with data, a FIFO, seccomp, an exec): the restore
// fails with one line naming task, stage, operation and errno, and leaves
// nothing behind.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <set>
#include <sstream>

#include "test/helpers/fixtures.h"
#include "test/helpers/sandbox.h"
#include "test/helpers/test_util.h"
#include "test/helpers/tree_images.h"

namespace ro::test {
namespace {

// The fault points, those of memory restore ("mm-...") or the others.
std::vector<std::string> FaultNames(bool memory) {
  RunResult r = RunCommand({RestoreOrch(), "--list-faults"});
  std::vector<std::string> names;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    std::string name = line.substr(0, line.find(' '));
    if ((name.rfind("mm-", 0) == 0) == memory) names.push_back(name);
  }
  return names;
}

// The one error line restore-orch printed last.
std::string LastErrorLine(const std::string& err) {
  std::string last;
  std::istringstream lines(err);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("restore-orch: ", 0) == 0) last = line;
  }
  return last;
}

// From restore-orch's --stats: whether it closed everything it opened.
std::string FdBalance(const std::string& stats) {
  size_t at = stats.find("\"orchestrator_fds\"");
  if (at == std::string::npos) return "no orchestrator_fds in the stats";
  std::string fds = stats.substr(at, stats.find('}', at) - at);
  auto number = [&](const char* key) {
    size_t k = fds.find(key);
    return k == std::string::npos ? -1 : std::atoi(fds.c_str() + fds.find(':', k) + 1);
  };
  return number("\"start\"") >= 0 && number("\"start\"") == number("\"end\"") ? "" : "restore-orch's fds: " + fds;
}

class Faults : public ::testing::TestWithParam<std::string> {};

TEST_P(Faults, FailCleanlyAtEveryPoint) {
  std::string fault = GetParam();
  if (fault.rfind("autofs", 0) == 0) {
    RO_SKIP_WITHOUT_AUTOFS();
  }
  EXPECT_EQ(InSandbox([fault] {
              TempDir dir, srv;
              if (Status s = images::WriteImageDir(dir.path(), DemoImagesForThisKernel()); !s.ok()) return s.error().ToString();
              if (::mkfifo(srv.File("demo.fifo").c_str(), 0600) != 0) return std::string("mkfifo failed");
              auto mounts = MountTable();
              auto shm = DevShm();
              std::string p;
              bool reached = false;
              for (const char* pass : {"1", "2"}) {
                std::string spec = fault + ":" + pass;
                RunResult r = RunCommand({RestoreOrch(), "--images", dir.path(), "--detach", "--stats", srv.File("stats"), "--fault", spec, "--external",
                                          "dev=/dev", "--external", "usr=/usr", "--external", "lib=/usr/lib", "--external",
                                          "lib64=/usr/lib64", "--external", "srv=" + srv.path()});
                if (r.status == 0) {
                  KillTree(static_cast<pid_t>(std::atoi(r.out.c_str())));  // the point has fewer passes here
                  continue;
                }
                reached = true;
                if (r.status != 1) p += spec + ": status " + std::to_string(r.status) + "\n";
                if (std::string b = FdBalance(srv.Read("stats")); !b.empty()) p += spec + ": " + b + "\n";
                // One line from restore-orch: task (or root task), stage, operation, errno.
                std::string last = LastErrorLine(r.err);
                if (last.find("task ") == std::string::npos || last.find("stage ") == std::string::npos ||
                    last.find("[injected fault " + spec + "]: Input/output error") == std::string::npos) {
                  p += spec + ": unexpected error line '" + last + "'\n";
                }
                if (int n = OtherProcesses(); n != 0) p += spec + ": " + std::to_string(n) + " processes left\n";
                if (MountTable() != mounts) p += spec + ": the mount table changed\n";
                if (DevShm() != shm) p += spec + ": /dev/shm changed\n";
              }
              if (!reached) p += fault + ": never reached by the restore\n";
              return p;
            }),
            "");
}

INSTANTIATE_TEST_SUITE_P(Points, Faults, ::testing::ValuesIn(FaultNames(false)), [](const auto& point) {
  std::string name = point.param;
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
});

// Memory restore's points, against CRIU's memory-counter dump (two tasks
// that continue, sharing anonymous memory): at passes 1 and 2, exit 1 with
// one line naming the task, the stage and the injected fault, nothing left.
class MemoryFaults : public ::testing::TestWithParam<std::string> {};

TEST_P(MemoryFaults, FailCleanlyAtEveryPoint) {
  std::string fault = GetParam();
  EXPECT_EQ(InSandbox([fault] {
              TempDir work;
              if (std::string e = PrepareFixture("memory-counter", work); !e.empty()) return e;
              auto mounts = MountTable();
              auto shm = DevShm();
              std::string p;
              for (const char* pass : {"1", "2"}) {
                std::string spec = fault + ":" + pass;
                std::vector<std::string> cmd = FixtureRestoreArgs(work);
                cmd.insert(cmd.end(), {"--detach", "--stats", work.File("stats"), "--fault", spec});
                RunResult r = RunCommand(cmd);
                if (r.status == 0) {
                  p += spec + ": not reached\n";
                  KillTree(static_cast<pid_t>(std::atoi(r.out.c_str())));
                  continue;
                }
                std::string last = LastErrorLine(r.err);
                if (r.status != 1) p += spec + ": status " + std::to_string(r.status) + "\n";
                if (last.find("task ") == std::string::npos || last.find("stage ") == std::string::npos ||
                    last.find("[injected fault " + spec + "]") == std::string::npos || last.find("Input/output error") == std::string::npos) {
                  p += spec + ": unexpected error line '" + last + "'\n";
                }
                if (std::string b = FdBalance(work.Read("stats")); !b.empty()) p += spec + ": " + b + "\n";
                if (int n = OtherProcesses(); n != 0) p += spec + ": " + std::to_string(n) + " processes left\n";
                if (MountTable() != mounts) p += spec + ": the mount table changed\n";
                if (DevShm() != shm) p += spec + ": /dev/shm changed\n";
              }
              return p;
            }),
            "");
}

INSTANTIATE_TEST_SUITE_P(Points, MemoryFaults, ::testing::ValuesIn(FaultNames(true)), [](const auto& point) {
  std::string name = point.param;
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
});

// Syscall faults through the supervised seccomp filter: the kernel-facing
// error paths, for real. `must_fail`: the call is surely reached.
struct SyscallCase {
  std::string spec;
  bool must_fail;
};

// How ctest names the case (else the struct's bytes, pointers included).
void PrintTo(const SyscallCase& c, std::ostream* os) { *os << c.spec << (c.must_fail ? " must fail" : ""); }

class SyscallFaults : public ::testing::TestWithParam<SyscallCase> {};

TEST_P(SyscallFaults, FailCleanly) {
  SyscallCase c = GetParam();
  if (c.spec.rfind("ioctl", 0) == 0) {
    RO_SKIP_WITHOUT_AUTOFS();  // only AutoFS makes ioctls
  }
  EXPECT_EQ(InSandbox([c] {
              TempDir dir, srv;
              if (Status s = images::WriteImageDir(dir.path(), DemoImagesForThisKernel()); !s.ok()) return s.error().ToString();
              if (::mkfifo(srv.File("demo.fifo").c_str(), 0600) != 0) return std::string("mkfifo failed");
              auto mounts = MountTable();
              auto shm = DevShm();
              RunResult r = RunCommand({RestoreOrch(), "--images", dir.path(), "--detach", "--fault-syscall", c.spec,
                                        "--external", "dev=/dev", "--external", "usr=/usr", "--external", "lib=/usr/lib",
                                        "--external", "lib64=/usr/lib64", "--external", "srv=" + srv.path()});
              std::string p;
              if (r.status == 0) {
                KillTree(static_cast<pid_t>(std::atoi(r.out.c_str())));
                if (c.must_fail) p += c.spec + ": the restore did not fail\n";
              } else {
                std::string last;
                std::istringstream lines(r.err);
                for (std::string line; std::getline(lines, line);) {
                  if (line.rfind("restore-orch: ", 0) == 0) last = line;
                }
                if (r.status != 1 || last.find("stage ") == std::string::npos) p += c.spec + ": status " + std::to_string(r.status) + ", " + last + "\n";
              }
              if (int n = OtherProcesses(); n != 0) p += c.spec + ": " + std::to_string(n) + " processes left\n";
              if (MountTable() != mounts) p += c.spec + ": the mount table changed\n";
              if (DevShm() != shm) p += c.spec + ": /dev/shm changed\n";
              return p;
            }),
            "");
}

INSTANTIATE_TEST_SUITE_P(
    Calls, SyscallFaults,
    ::testing::Values(SyscallCase{"mount:EIO", true}, SyscallCase{"move_mount:EIO", true}, SyscallCase{"move_mount:EIO:5", true},
                      SyscallCase{"ioctl:EIO", true}, SyscallCase{"clone3:EAGAIN", true}, SyscallCase{"clone3:EAGAIN:3", true},
                      SyscallCase{"setpgid:EPERM", true}, SyscallCase{"setsid:EPERM", true}, SyscallCase{"setsid:EPERM@2", true},
                      SyscallCase{"dup3:EBADF", true}, SyscallCase{"dup3:EBADF:4", true}, SyscallCase{"write:EIO", false},
                      SyscallCase{"write:EIO:3", false}, SyscallCase{"execve:ENOENT", false}, SyscallCase{"fsopen:ENOMEM", true},
                      SyscallCase{"pipe2:EMFILE", true}),
    [](const auto& call) {
      std::string name = call.param.spec;
      for (char& ch : name) {
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      }
      return name;
    });

// restore-orch killed with SIGKILL mid-restore: the tree dies with it.
TEST(Faults, TheTreeDiesWithAKilledOrchestrator) {
  EXPECT_EQ(InSandbox([] {
              TempDir dir, work;
              if (Status s = images::WriteImageDir(dir.path(), DemoImagesForThisKernel()); !s.ok()) return s.error().ToString();
              auto mounts = MountTable();
              ::mkfifo(work.File("demo.fifo").c_str(), 0600);
              // Paths are seen from inside the restored tree: /srv is `work`.
              ::setenv("RESTORE_ORCH_PAUSE_AT", "files:4:/srv/paused", 1);
              pid_t orch = ::fork();
              if (orch == 0) {
                int null = ::open("/dev/null", O_WRONLY);
                ::dup2(null, 2);
                ::execl(RestoreOrch().c_str(), "restore-orch", "--images", dir.path().c_str(), "--external", "dev=/dev",
                        "--external", "usr=/usr", "--external", "lib=/usr/lib", "--external", "lib64=/usr/lib64",
                        "--external", ("srv=" + work.path()).c_str(), nullptr);
                _exit(127);
              }
              ::unsetenv("RESTORE_ORCH_PAUSE_AT");
              for (int i = 0; i < 500 && work.Read("paused").empty(); ++i) ::usleep(10000);
              if (work.Read("paused").empty()) return std::string("task 4 never paused");
              ::kill(orch, SIGKILL);
              ::waitpid(orch, nullptr, 0);
              std::string p;
              int left = 0;
              for (int i = 0; i < 100 && (left = OtherProcesses()) != 0; ++i) ::usleep(10000);
              if (left != 0) p += std::to_string(left) + " processes outlived restore-orch\n";
              if (MountTable() != mounts) p += "the mount table changed\n";
              return p;
            }),
            "");
}

// A symlink planted in a restored tmpfs cannot send a later mount elsewhere.
TEST(Faults, ASymlinkInATmpfsDoesNotRedirectAMount) {
  EXPECT_EQ(InSandbox([] {
              TempDir src, dir;
              if (::symlink("/etc", src.File("evil").c_str()) != 0) return std::string("symlink failed");
              RunCommand({"tar", "-czf", src.File("t.tar.gz"), "-C", src.path(), "evil"});
              ImageSet set = TreeImages({{.pid = 1, .ppid = 0, .pgid = 1, .sid = 1}});
              AddMounts(set, {{.id = 40, .parent = 1, .mountpoint = "/", .dev = 10},
                              {.id = 41, .parent = 40, .mountpoint = "/data", .dev = 11},
                              {.id = 42, .parent = 41, .mountpoint = "/data/evil/x", .dev = 12}});
              AddTmpfsContents(set, 11, src.Read("t.tar.gz"));
              if (Status s = images::WriteImageDir(dir.path(), set); !s.ok()) return s.error().ToString();
              RunResult r = RunCommand({RestoreOrch(), "--images", dir.path()});
              std::string p;
              if (r.status != 1 || r.err.find("mount 42 at /data/evil/x") == std::string::npos ||
                  r.err.find("Too many levels of symbolic links") == std::string::npos) {
                p += "status " + std::to_string(r.status) + ": " + r.err;
              }
              return p;
            }),
            "");
}

// Under AddressSanitizer every restore-orch run is several times slower:
// fewer rounds keep the soak inside its timeout and still check for leaks.
#if defined(__SANITIZE_ADDRESS__)
constexpr int kSoakRounds = 15;
#else
constexpr int kSoakRounds = 100;
#endif

// Restoring and tearing down a 100-task, 100-mount tree with AutoFS 100
// times (30 under a sanitizer) leaves nothing behind.
TEST(Faults, SoakRestoreAndTearDown) {
  RO_SKIP_WITHOUT_AUTOFS();
  EXPECT_EQ(InSandbox([] {
              std::vector<TaskSpec> tasks = Fan(99);
              std::vector<FileSpec> files;
              std::vector<MountSpec> mounts = {{.id = 1000, .parent = 1, .mountpoint = "/", .dev = 1}};
              std::vector<AutofsSpec> autofs;
              for (uint32_t i = 1; i < 100; ++i) {
                std::string mp = "/m" + std::to_string(i);
                if (i % 10 == 0) {
                  uint32_t f = 2 * i;
                  files.push_back({.kind = FileSpec::kPipe, .id = f, .pipe_id = i, .flags = O_RDONLY});
                  files.push_back({.kind = FileSpec::kPipe, .id = f + 1, .pipe_id = i, .flags = O_WRONLY});
                  tasks[i].fds = {{4, f}, {5, f + 1}};
                  tasks[i].pgid = static_cast<pid_t>(i + 1);
                  mounts.push_back({.id = 1000 + i, .parent = 1000, .fstype = 18, .mountpoint = mp, .source = "auto", .dev = 10 + i});
                  autofs.push_back({.dev = 10 + i, .fd = 5, .pgrp = static_cast<int>(i + 1), .mode = 1});
                } else {
                  mounts.push_back({.id = 1000 + i, .parent = 1000, .mountpoint = mp, .shared = i % 5 == 1 ? i : 0, .dev = 10 + i});
                }
              }
              ImageSet set = TreeImages(tasks, false, files);
              AddMounts(set, mounts, autofs);
              TempDir dir;
              if (Status s = images::WriteImageDir(dir.path(), set); !s.ok()) return s.error().ToString();
              auto before = MountTable();
              auto shm = DevShm();
              std::string p;
              for (int round = 0; round < kSoakRounds && p.empty(); ++round) {
                RunResult r = RunCommand({RestoreOrch(), "--images", dir.path(), "--detach", "--stats", dir.File("stats.json")});
                if (r.status != 0) {
                  p += "round " + std::to_string(round) + ": " + r.err;
                  break;
                }
                if (std::string b = FdBalance(dir.Read("stats.json")); !b.empty()) p += "round " + std::to_string(round) + ": " + b + "\n";
                KillTree(static_cast<pid_t>(std::atoi(r.out.c_str())));
                if (OtherProcesses() != 0) p += "round " + std::to_string(round) + ": processes left\n";
              }
              if (MountTable() != before) p += "the mount table changed\n";
              if (DevShm() != shm) p += "/dev/shm changed\n";
              return p;
            }),
            "");
}

TEST(Faults, UnknownPointIsAUsageError) {
  RunResult r = RunCommand({RestoreOrch(), "--images", "/", "--fault", "nope"});
  EXPECT_EQ(r.status, 64);
  EXPECT_NE(r.err.find("unknown fault point 'nope'"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace ro::test
