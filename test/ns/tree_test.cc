// Restores process trees for real, each inside its own sandbox, and reads
// every restored task from inside its PID namespace.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "test/helpers/sandbox.h"
#include "test/helpers/test_util.h"
#include "test/helpers/tree_images.h"

namespace ro::test {
namespace {

std::string Describe(const sys::ProcStat& s) {
  std::ostringstream o;
  o << "pid " << s.pid << " ppid " << s.ppid << " pgid " << s.pgid << " sid " << s.sid << " state " << s.state
    << " exit " << s.exit_code << " comm " << s.comm;
  return o.str();
}

// Compares the restored namespace with the images, task for task.
std::string Compare(const std::vector<TaskSpec>& want, const std::vector<sys::ProcStat>& got) {
  std::map<pid_t, sys::ProcStat> by_pid;
  for (const auto& s : got) by_pid[s.pid] = s;
  std::ostringstream problems;
  for (const TaskSpec& t : want) {
    auto it = by_pid.find(t.pid);
    if (it == by_pid.end()) {
      problems << "task " << t.pid << " is missing\n";
      continue;
    }
    const sys::ProcStat& s = it->second;
    bool ok = s.ppid == t.ppid && s.pgid == t.pgid && s.sid == t.sid;
    if (t.zombie) ok = ok && s.state == 'Z' && s.exit_code == static_cast<int>(t.exit_status);
    if (!t.zombie) ok = ok && s.state != 'Z';
    if (!ok) {
      problems << "task " << t.pid << ": want ppid " << t.ppid << " pgid " << t.pgid << " sid " << t.sid
               << (t.zombie ? " zombie" : "") << ", got " << Describe(s) << "\n";
    }
    by_pid.erase(it);
  }
  for (const auto& [pid, s] : by_pid) problems << "unexpected process: " << Describe(s) << "\n";
  return problems.str();
}

// Restores `tasks` detached (with `extra` options), compares, kills the tree.
std::string RestoreAndCompare(const std::vector<TaskSpec>& tasks, const std::vector<std::string>& extra = {}) {
  TempDir dir;
  if (Status s = images::WriteImageDir(dir.path(), TreeImages(tasks)); !s.ok()) return s.error().ToString();
  std::vector<std::string> argv = {RestoreOrch(), "--images", dir.path(), "--detach"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  RunResult r = RunCommand(argv);
  if (r.status != 0) return "restore failed (" + std::to_string(r.status) + "): " + r.err;
  pid_t root = static_cast<pid_t>(std::atoi(r.out.c_str()));
  if (root <= 0) return "no root pid printed: " + r.out;
  std::string problems = Compare(tasks, ReadTree(root));
  KillTree(root);
  return problems;
}

TEST(Tree, SingleTask) {
  EXPECT_EQ(InSandbox([] { return RestoreAndCompare({TaskSpec{.pid = 1, .ppid = 0, .pgid = 1, .sid = 1}}); }), "");
}

TEST(Tree, TwoLevels) {
  EXPECT_EQ(InSandbox([] {
              return RestoreAndCompare({{.pid = 1, .ppid = 0, .pgid = 1, .sid = 1},
                                        {.pid = 5, .ppid = 1, .pgid = 1, .sid = 1},
                                        {.pid = 9, .ppid = 1, .pgid = 9, .sid = 1},
                                        {.pid = 12, .ppid = 5, .pgid = 9, .sid = 1},
                                        {.pid = 13, .ppid = 9, .pgid = 13, .sid = 13}});
            }),
            "");
}

TEST(Tree, ChainOfDepth200) {
  EXPECT_EQ(InSandbox([] { return RestoreAndCompare(Chain(200)); }), "");
}

// Each level of a chain forks the next from its tree's first frame, so a
// chain's depth costs no stack: 600 levels restore with a 1 MiB stack
// (each level kept its parent's frames once, and 450 did not). Time per
// level grows with the depth, as a bare fork chain's does here (600 bare
// forks in a chain: 10.6 s; with 60 anonymous mappings: 41 s), so the
// sanitizers' slower build restores 300.
#if defined(__SANITIZE_ADDRESS__)
constexpr int kDeepChain = 300;
#else
constexpr int kDeepChain = 600;
#endif

TEST(Tree, DeepChainWithAOneMegabyteStack) {
  EXPECT_EQ(InSandbox([] {
              struct rlimit stack {};
              ::getrlimit(RLIMIT_STACK, &stack);
              stack.rlim_cur = 1u << 20;
              if (::setrlimit(RLIMIT_STACK, &stack) != 0) return std::string("setrlimit(RLIMIT_STACK)");
              auto start = std::chrono::steady_clock::now();
              std::string problems = RestoreAndCompare(Chain(kDeepChain), {"--timeout", "240"});
              std::fprintf(stderr, "a %d-deep chain restored in %.2f s\n", kDeepChain,
                           std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
              return problems;
            }),
            "");
}

TEST(Tree, FiveHundredChildren) {
  EXPECT_EQ(InSandbox([] { return RestoreAndCompare(Fan(500)); }), "");
}

TEST(Tree, ZombiesKeepTheirExitStatus) {
  EXPECT_EQ(InSandbox([] {
              return RestoreAndCompare({{.pid = 1, .ppid = 0, .pgid = 1, .sid = 1},
                                        {.pid = 2, .ppid = 1, .pgid = 1, .sid = 1, .zombie = true, .exit_status = 3 << 8},
                                        {.pid = 3, .ppid = 1, .pgid = 3, .sid = 1, .zombie = true, .exit_status = SIGKILL},
                                        {.pid = 4, .ppid = 1, .pgid = 4, .sid = 4},
                                        {.pid = 5, .ppid = 4, .pgid = 4, .sid = 4, .zombie = true, .exit_status = 0}});
            }),
            "");
}

// Sessions and groups in every shape the kernel allows: session and group
// leaders that have exited (helpers stand in for them), members whose
// session differs from their parent's, children born before their parent's
// setsid(), a group leader that is not its members' parent, a task left in
// the session outside the namespace (a shell's job: --shell-job), zombies
// in groups.
std::vector<TaskSpec> SessionTable() {
  return {
      {.pid = 1, .ppid = 0, .pgid = 1, .sid = 1},
      {.pid = 15, .ppid = 1, .pgid = 0, .sid = 0},    // still in the caller's session
      {.pid = 2, .ppid = 1, .pgid = 2, .sid = 2},     // session leader
      {.pid = 12, .ppid = 2, .pgid = 1, .sid = 1},    // born before 2's setsid
      {.pid = 13, .ppid = 12, .pgid = 13, .sid = 13}, // leader below a non-leader
      {.pid = 3, .ppid = 2, .pgid = 3, .sid = 2},     // group leader
      {.pid = 4, .ppid = 3, .pgid = 3, .sid = 2},
      {.pid = 16, .ppid = 3, .pgid = 3, .sid = 2, .zombie = true, .exit_status = 1 << 8},
      {.pid = 18, .ppid = 2, .pgid = 3, .sid = 2},    // its group leader is its sibling
      {.pid = 17, .ppid = 2, .pgid = 17, .sid = 2, .zombie = true, .exit_status = SIGTERM},
      {.pid = 5, .ppid = 1, .pgid = 5, .sid = 2},     // reparented, leader 2 alive
      {.pid = 6, .ppid = 1, .pgid = 10, .sid = 10},   // session 10's leader has exited
      {.pid = 7, .ppid = 6, .pgid = 11, .sid = 10},   // group 11's leader has exited
      {.pid = 8, .ppid = 6, .pgid = 11, .sid = 10},
      {.pid = 9, .ppid = 1, .pgid = 10, .sid = 10},
      {.pid = 20, .ppid = 9, .pgid = 20, .sid = 10},
  };
}

TEST(Tree, SessionsAndGroupsWithDeadLeaders) {
  EXPECT_EQ(InSandbox([] { return RestoreAndCompare(SessionTable(), {"--shell-job"}); }), "");
}

TEST(Tree, SessionsFromLeadersThatLeftTheirParentsSession) {
  // A chain where every other task opened its own session, and children
  // of session leaders born on both sides of the setsid().
  EXPECT_EQ(InSandbox([] {
              return RestoreAndCompare({{.pid = 1, .ppid = 0, .pgid = 1, .sid = 1},
                                        {.pid = 2, .ppid = 1, .pgid = 2, .sid = 2},
                                        {.pid = 3, .ppid = 2, .pgid = 1, .sid = 1},
                                        {.pid = 4, .ppid = 2, .pgid = 2, .sid = 2},
                                        {.pid = 5, .ppid = 4, .pgid = 5, .sid = 5},
                                        {.pid = 6, .ppid = 5, .pgid = 2, .sid = 2},
                                        {.pid = 7, .ppid = 5, .pgid = 7, .sid = 5},
                                        {.pid = 8, .ppid = 6, .pgid = 2, .sid = 2}});
            }),
            "");
}

// A shell's job: tasks in the caller's session (sid 0) are refused
// without --shell-job (exit 2, one line naming pstree.img, the entry and
// the flag), and with it stay in the caller's session and group, in a new
// PID namespace and in the caller's; seen from the caller (the sandbox's
// init, leading a session of its own as a shell does), and verified.
std::string ShellJob(bool shared_pid_ns) {
  if (::setsid() < 0) return "setsid: " + std::string(std::strerror(errno));
  pid_t r = shared_pid_ns ? 300 : 1;
  std::vector<TaskSpec> tasks = {{.pid = r, .ppid = 0, .pgid = 0, .sid = 0}, {.pid = r + 1, .ppid = r, .pgid = r + 1, .sid = 0}};
  TempDir dir;
  if (Status s = images::WriteImageDir(dir.path(), TreeImages(tasks, shared_pid_ns)); !s.ok()) return s.error().ToString();
  std::string p;
  RunResult refused = RunCommand({RestoreOrch(), "--images", dir.path(), "--detach"});
  if (refused.status != 2 ||
      refused.err != "restore-orch: " + dir.path() + ": pstree.img: entry 0: task " + std::to_string(r) +
                         " is in a session outside the tree (sid 0) (and 1 more task): a shell job, restored only with "
                         "--shell-job (-j), which leaves it in restore-orch's session and process group\n") {
    p += "without --shell-job: status " + std::to_string(refused.status) + ": " + refused.err;
  }
  RunResult ok = RunCommand({RestoreOrch(), "--images", dir.path(), "--detach", "--shell-job"});
  if (ok.status != 0) return p + "with --shell-job: status " + std::to_string(ok.status) + ": " + ok.err;
  pid_t root = static_cast<pid_t>(std::atoi(ok.out.c_str()));
  auto kids = sys::ReadProcFile("/proc/" + std::to_string(root) + "/task/" + std::to_string(root) + "/children");
  pid_t child = kids.ok() ? static_cast<pid_t>(std::atoi(kids->c_str())) : 0;
  if (::getsid(root) != ::getsid(0) || ::getpgid(root) != ::getpgrp()) {
    p += "the root is in session " + std::to_string(::getsid(root)) + " and group " + std::to_string(::getpgid(root)) +
         ", the caller in " + std::to_string(::getsid(0)) + " and " + std::to_string(::getpgrp()) + "\n";
  }
  if (child <= 0 || ::getsid(child) != ::getsid(0) || ::getpgid(child) != child) {
    p += "the child " + std::to_string(child) + " is in session " + std::to_string(::getsid(child)) + " and group " +
         std::to_string(::getpgid(child)) + "\n";
  }
  RunResult v = RunCommand({RestoreOrch(), "verify", "--images", dir.path(), "--pid", std::to_string(root)});
  if (v.status != 0) p += "verify: " + v.out + v.err;
  KillTree(root);
  if (shared_pid_ns && child > 0) KillTree(child);  // reparented to us, the sandbox's init
  return p;
}

TEST(Tree, AShellJobStaysInTheCallersSessionInItsOwnPidNamespace) {
  EXPECT_EQ(InSandbox([] { return ShellJob(false); }), "");
}

TEST(Tree, AShellJobStaysInTheCallersSessionInTheCallersPidNamespace) {
  EXPECT_EQ(InSandbox([] { return ShellJob(true); }), "");
}

TEST(Resume, ProgramSeesArgvEnvCwdAndTheRestoredFlag) {
  EXPECT_EQ(InSandbox([] {
              TempDir dir, work;
              std::string out = work.File("out");
              std::string script = "printf '%s|%s|%s|%s|%s|%s' \"$0\" \"$1\" \"$FOO\" \"$RESTORE_ORCH_RESTORED\" \"$(pwd)\" $$ > " +
                                   out + "; exit 7";
              std::vector<TaskSpec> tasks = {{.pid = 1, .ppid = 0, .pgid = 1, .sid = 1, .comm = "sh",
                                              .argv = {"/bin/sh", "-c", script, "zero", "one"},
                                              .env = {"FOO=bar baz", "PATH=/usr/bin:/bin"},
                                              .cwd = work.path()}};
              if (Status s = images::WriteImageDir(dir.path(), TreeImages(tasks)); !s.ok()) return s.error().ToString();
              RunResult r = RunCommand({RestoreOrch(), "--images", dir.path()});
              if (r.status != 7) return "restore-orch returned " + std::to_string(r.status) + ", not the program's 7: " + r.err;
              std::string got = work.Read("out");
              std::string want = "zero|one|bar baz|1|" + work.path() + "|1";
              return got == want ? std::string() : "program saw '" + got + "', want '" + want + "'";
            }),
            "");
}

TEST(Resume, SignalsAreForwardedAndDeathBySignalIs128PlusN) {
  EXPECT_EQ(InSandbox([] {
              TempDir dir, work;
              // An init only receives signals it handles: this one handles SIGTERM.
              std::vector<TaskSpec> tasks = {
                  {.pid = 1, .ppid = 0, .pgid = 1, .sid = 1, .comm = "sh",
                   .argv = {"/bin/sh", "-c", "trap 'exit 3' TERM; touch " + work.File("ready") + "; while :; do sleep 0.05; done"}},
                  {.pid = 2, .ppid = 1, .pgid = 1, .sid = 1}};
              if (Status s = images::WriteImageDir(dir.path(), TreeImages(tasks)); !s.ok()) return s.error().ToString();
              std::string p;
              for (int round = 0; round < 2; ++round) {
                ::unlink(work.File("ready").c_str());
                pid_t orch = ::fork();
                if (orch == 0) {
                  ::execl(RestoreOrch().c_str(), "restore-orch", "--images", dir.path().c_str(), "--pidfile",
                          work.File("pid").c_str(), nullptr);
                  _exit(127);
                }
                for (int i = 0; i < 500 && ::access(work.File("ready").c_str(), F_OK) != 0; ++i) ::usleep(10000);
                if (round == 0) {
                  ::kill(orch, SIGTERM);  // forwarded to the root task, which exits 3
                } else {
                  ::kill(std::atoi(work.Read("pid").c_str()), SIGKILL);  // the root task dies of SIGKILL
                }
                int status = 0;
                ::waitpid(orch, &status, 0);
                int want = round == 0 ? 3 : 128 + SIGKILL;
                if (!WIFEXITED(status) || WEXITSTATUS(status) != want) {
                  p += "round " + std::to_string(round) + ": status " + std::to_string(status) + ", want exit " +
                       std::to_string(want) + "\n";
                }
              }
              return p;
            }),
            "");
}

TEST(Seccomp, EveryFilterOfTheChainIsInstalled) {
  EXPECT_EQ(InSandbox([] {
              std::vector<TaskSpec> tasks = {{.pid = 1, .ppid = 0, .pgid = 1, .sid = 1},
                                             {.pid = 2, .ppid = 1, .pgid = 1, .sid = 1, .seccomp_filters = 3}};
              TempDir dir;
              if (Status s = images::WriteImageDir(dir.path(), TreeImages(tasks)); !s.ok()) return s.error().ToString();
              RunResult r = RunCommand({RestoreOrch(), "--images", dir.path(), "--detach"});
              if (r.status != 0) return r.err;
              pid_t root = static_cast<pid_t>(std::atoi(r.out.c_str()));
              std::string p;
              // The task's status, seen from the sandbox: it is the root's only child.
              std::string children;
              {
                std::ifstream in("/proc/" + std::to_string(root) + "/task/" + std::to_string(root) + "/children");
                std::getline(in, children);
              }
              std::ifstream status("/proc/" + std::to_string(std::atoi(children.c_str())) + "/status");
              std::string text((std::istreambuf_iterator<char>(status)), std::istreambuf_iterator<char>());
              if (text.find("Seccomp:\t2") == std::string::npos || text.find("Seccomp_filters:\t3") == std::string::npos) {
                p = "task 2 has no 3 seccomp filters:\n" + text.substr(text.find("Seccomp"), 60);
              }
              KillTree(root);
              return p;
            }),
            "");
}

TEST(ActionScripts, RunAtEveryPointInOrderWithTheRootPid) {
  EXPECT_EQ(InSandbox([] {
              TempDir dir, work;
              std::string log = work.File("log");
              work.Write("script", "#!/bin/sh\necho \"$RESTORE_ORCH_ACTION $RESTORE_ORCH_ROOT_PID $CRTOOLS_SCRIPT_ACTION\" >> " + log + "\n");
              ::chmod(work.File("script").c_str(), 0755);
              if (Status s = images::WriteImageDir(dir.path(), TreeImages(Fan(3))); !s.ok()) return s.error().ToString();
              RunResult r = RunCommand({RestoreOrch(), "--images", dir.path(), "--detach", "--action-script", work.File("script")});
              if (r.status != 0) return r.err;
              pid_t root = static_cast<pid_t>(std::atoi(r.out.c_str()));
              std::string want = "pre-restore 0 pre-restore\n";
              for (const char* point : {"post-setup-namespaces", "post-restore", "pre-resume", "post-resume"}) {
                want += std::string(point) + " " + std::to_string(root) + " " + point + "\n";
              }
              std::string got = work.Read("log");
              KillTree(root);
              return got == want ? std::string() : "scripts ran as:\n" + got + "want:\n" + want;
            }),
            "");
}

TEST(ActionScripts, AFailingScriptRollsBack) {
  EXPECT_EQ(InSandbox([] {
              TempDir dir, work;
              work.Write("script", "#!/bin/sh\n[ \"$RESTORE_ORCH_ACTION\" = pre-resume ] && exit 3\nexit 0\n");
              ::chmod(work.File("script").c_str(), 0755);
              if (Status s = images::WriteImageDir(dir.path(), TreeImages(Fan(3))); !s.ok()) return s.error().ToString();
              RunResult r = RunCommand({RestoreOrch(), "--images", dir.path(), "--action-script", work.File("script")});
              std::string p;
              if (r.status != 1 || r.err.find("at pre-resume exited with status 3") == std::string::npos) p += r.err;
              if (int n = OtherProcesses(); n != 0) p += std::to_string(n) + " processes left behind\n";
              return p;
            }),
            "");
}

// Everything a failed restore must leave as it was.
struct World {
  std::vector<std::string> mounts = MountTable();
  std::vector<std::string> shm = DevShm();
  std::string Unchanged() const {
    std::string p;
    if (mounts != MountTable()) p += "the mount table changed\n";
    if (shm != DevShm()) p += "/dev/shm changed\n";
    if (int n = OtherProcesses(); n != 0) p += "processes left behind: " + std::to_string(n) + "\n";
    return p;
  }
};

TEST(Rollback, PidTakenIsNamedAndNothingIsLeft) {
  EXPECT_EQ(InSandbox([] {
              World before;
              TempDir dir;
              // The tree shares the caller's PID namespace, where pid 1 is the sandbox's init.
              std::vector<TaskSpec> tasks = {{.pid = 300, .ppid = 0, .pgid = 300, .sid = 300},
                                             {.pid = 301, .ppid = 300, .pgid = 300, .sid = 300},
                                             {.pid = 1, .ppid = 300, .pgid = 300, .sid = 300}};
              if (Status s = images::WriteImageDir(dir.path(), TreeImages(tasks, true)); !s.ok()) return s.error().ToString();
              RunResult r = RunCommand({RestoreOrch(), "--images", dir.path()});
              std::string p;
              if (r.status != 1) p += "status " + std::to_string(r.status) + "\n";
              // Found before anything is created (a pid taken meanwhile is named by clone3's EEXIST at rollback).
              if (r.err.find("restore-orch: pid 1 is taken: the tree is restored in restore-orch's PID namespace") ==
                  std::string::npos) {
                p += "unexpected error: " + r.err;
              }
              return p + before.Unchanged();
            }),
            "");
}

class KilledMidRestore : public ::testing::TestWithParam<std::string> {};

TEST_P(KilledMidRestore, FailsWithinOneSecondAndLeavesNothing) {
  std::string stage = GetParam();
  EXPECT_EQ(InSandbox([stage] {
              World before;
              TempDir dir, work;
              std::string mark = work.File("paused");
              if (Status s = images::WriteImageDir(dir.path(), TreeImages(SessionTable())); !s.ok()) return s.error().ToString();
              ::setenv("RESTORE_ORCH_PAUSE_AT", (stage + ":7:" + mark).c_str(), 1);
              pid_t orch = ::fork();
              if (orch == 0) {
                int null = ::open("/dev/null", O_WRONLY);
                ::dup2(null, 2);
                ::execl(RestoreOrch().c_str(), "restore-orch", "--images", dir.path().c_str(), "--shell-job", "--timeout", "30",
                        nullptr);
                _exit(127);
              }
              ::unsetenv("RESTORE_ORCH_PAUSE_AT");
              pid_t victim = 0;
              for (int i = 0; i < 1000 && victim == 0; ++i) {
                ::usleep(10000);
                victim = static_cast<pid_t>(std::atoi(work.Read("paused").c_str()));
              }
              if (victim == 0) return std::string("task 7 never paused");
              auto t0 = std::chrono::steady_clock::now();
              ::kill(victim, SIGKILL);
              int status = 0;
              ::waitpid(orch, &status, 0);
              double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
              std::string p;
              if (!WIFEXITED(status) || WEXITSTATUS(status) != 1) p += "restore-orch did not fail with status 1\n";
              if (s > 1.0) p += "took " + std::to_string(s) + " s to notice\n";
              return p + before.Unchanged();
            }),
            "");
}

INSTANTIATE_TEST_SUITE_P(Stages, KilledMidRestore, ::testing::Values("forking", "files", "reaping", "resume"),
                         [](const auto& stage) { return stage.param; });

TEST(Rollback, HungTaskIsKilledAfterTheTimeout) {
  EXPECT_EQ(InSandbox([] {
              World before;
              TempDir dir, work;
              if (Status s = images::WriteImageDir(dir.path(), TreeImages(SessionTable())); !s.ok()) return s.error().ToString();
              ::setenv("RESTORE_ORCH_PAUSE_AT", ("resume:4:" + work.File("paused")).c_str(), 1);
              auto t0 = std::chrono::steady_clock::now();
              RunResult r = RunCommand({RestoreOrch(), "--images", dir.path(), "--shell-job", "--timeout", "1"});
              double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
              ::unsetenv("RESTORE_ORCH_PAUSE_AT");
              std::string p;
              if (r.status != 1) p += "status " + std::to_string(r.status) + "\n";
              if (r.err.find("timed out after 1 s") == std::string::npos) p += "unexpected error: " + r.err;
              if (s > 3.0) p += "took " + std::to_string(s) + " s\n";
              return p + before.Unchanged();
            }),
            "");
}

}  // namespace
}  // namespace ro::test

namespace ro::test {
namespace {

// An exec that fails after the hand-over fails the restore: restore-orch
// learns every task's exec outcome before it says the tree is restored.
struct ExecCase {
  std::string name;
  std::function<std::vector<std::string>(const TempDir&)> argv;  // argv[0] is the program
  std::string expect;
};

class ExecFailure : public ::testing::TestWithParam<ExecCase> {};

TEST_P(ExecFailure, RollsTheTreeBack) {
  ExecCase c = GetParam();
  EXPECT_EQ(InSandbox([c] {
              World before;
              TempDir dir, work;
              std::vector<TaskSpec> tasks = {{.pid = 1, .ppid = 0, .pgid = 1, .sid = 1, .argv = {"/bin/sleep", "100"}},
                                             {.pid = 2, .ppid = 1, .pgid = 1, .sid = 1, .argv = c.argv(work)}};
              if (Status s = images::WriteImageDir(dir.path(), TreeImages(tasks)); !s.ok()) return s.error().ToString();
              std::string p;
              for (const char* mode : {"--detach", "--timeout"}) {
                std::vector<std::string> cmd = {RestoreOrch(), "--images", dir.path(), mode};
                if (std::string(mode) == "--timeout") cmd.push_back("20");
                RunResult r = RunCommand(cmd);
                if (r.status != 1) p += std::string(mode) + ": status " + std::to_string(r.status) + " (out: " + r.out + ")\n";
                if (r.err.find("task 2") == std::string::npos || r.err.find("execve") == std::string::npos ||
                    r.err.find(c.expect) == std::string::npos) {
                  p += std::string(mode) + ": unexpected error: " + r.err;
                }
              }
              return p + before.Unchanged();
            }),
            "");
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, ExecFailure,
    ::testing::Values(ExecCase{"a_directory", [](const TempDir& w) { return std::vector<std::string>{w.path()}; }, "Permission denied"},
                      ExecCase{"not_an_executable",
                               [](const TempDir& w) {
                                 w.Write("garbage", std::string(64, 'x'));
                                 ::chmod(w.File("garbage").c_str(), 0755);
                                 return std::vector<std::string>{w.File("garbage")};
                               },
                               "Exec format error"},
                      ExecCase{"arguments_too_long",
                               [](const TempDir&) {
                                 std::vector<std::string> argv{"/bin/true"};
                                 for (int i = 0; i < 12; ++i) argv.push_back(std::string(250000, 'a'));
                                 return argv;
                               },
                               "Argument list too long"}),
    [](const auto& param_info) { return param_info.param.name; });

}  // namespace
}  // namespace ro::test
