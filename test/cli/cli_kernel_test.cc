// The command line against real trees, each test in its own sandbox (PID
// and mount namespaces): signals on a foreground restore, a pidfile that
// cannot be written, dump --dry-run, dump's action scripts and statuses.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <dirent.h>
#include <fstream>
#include <set>
#include <sstream>

#include "images/image_dir.h"
#include "sys/clone.h"
#include "test/helpers/sandbox.h"
#include "test/helpers/test_util.h"
#include "test/helpers/tree_images.h"

namespace ro::test {
namespace {

#define EXPECT_OR_RETURN(cond, msg)                                          \
  do {                                                                       \
    if (!(cond)) return std::string(#cond) + " failed: " + std::string(msg); \
  } while (0)

std::string Str(long v) { return std::to_string(v); }

bool WaitFor(const std::string& path, int ms = 10000) {
  for (int i = 0; i < ms / 10; ++i) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && st.st_size > 0) return true;
    ::usleep(10000);
  }
  return false;
}

// restore-orch in the foreground, its stderr in `err`.
pid_t StartRestore(const std::vector<std::string>& args, const std::string& err) {
  pid_t pid = ::fork();
  if (pid == 0) {
    // As from a terminal: a test runner started in the background may
    // have SIGINT ignored, which a restored shell would inherit (and a
    // non-interactive shell cannot trap a signal ignored on entry).
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) ::signal(sig, SIG_DFL);
    int fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 2);
    std::vector<std::string> all = {RestoreOrch()};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

struct SignalCase {
  const char* name;
  std::string script;                 // the root task's program (sh -c)
  std::vector<int> signals;           // sent to restore-orch, the next once `got` exists
  std::string kill_after = "30";
  int want = 137;
  std::string message;                // in restore-orch's stderr
  double at_least_s = 0, at_most_s = 3;
};

void PrintTo(const SignalCase& c, std::ostream* os) { *os << c.name; }

class ForegroundSignals : public ::testing::TestWithParam<SignalCase> {};

TEST_P(ForegroundSignals, DoWhatTheDocsSay) {
  const SignalCase& c = GetParam();
  EXPECT_EQ(InSandbox([&c] {
              TempDir dir, work;
              std::string got = work.File("got");
              std::string script = c.script;
              for (size_t at; (at = script.find("GOT")) != std::string::npos;) script.replace(at, 3, got);
              std::vector<TaskSpec> tasks = {{.pid = 1, .ppid = 0, .pgid = 1, .sid = 1, .comm = "sh", .argv = {"/bin/sh", "-c", script}, .env = {"PATH=/usr/bin:/bin"}},
                                             {.pid = 2, .ppid = 1, .pgid = 1, .sid = 1}};
              if (Status s = images::WriteImageDir(dir.path(), TreeImages(tasks)); !s.ok()) return s.error().ToString();
              std::string pidfile = work.File("pid"), err = work.File("err");
              pid_t orch = StartRestore({"--images", dir.path(), "--pidfile", pidfile, "--kill-after", c.kill_after}, err);
              EXPECT_OR_RETURN(WaitFor(pidfile), "the tree was not restored: " + work.Read("err"));
              ::usleep(100000);  // the root's shell has set its traps
              auto t0 = std::chrono::steady_clock::now();
              for (size_t i = 0; i < c.signals.size(); ++i) {
                if (i > 0) EXPECT_OR_RETURN(WaitFor(got, 3000), "the root task never saw the first signal");
                ::kill(orch, c.signals[i]);
              }
              int status = 0;
              ::waitpid(orch, &status, 0);
              double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
              std::string text = work.Read("err");
              std::string p;
              if (!WIFEXITED(status) || WEXITSTATUS(status) != c.want) p += "status " + Str(status) + ", want exit " + Str(c.want) + "\n";
              if (text.find(c.message) == std::string::npos) p += "stderr: " + text + "\n";
              if (s < c.at_least_s || s > c.at_most_s) p += "took " + std::to_string(s) + " s\n";
              if (int n = OtherProcesses(); n != 0) p += Str(n) + " processes left behind\n";
              return p;
            }),
            "");
}

INSTANTIATE_TEST_SUITE_P(
    Restore, ForegroundSignals,
    ::testing::Values(
        // The init of the tree's PID namespace without a handler: the kernel would drop SIGINT; the tree is killed.
        SignalCase{"sigint_to_an_init_that_does_not_catch_it", "exec sleep 1000", {SIGINT}, "30", 137,
                   "SIGINT: the root task, init of the tree's PID namespace, does not catch it"},
        SignalCase{"sigterm_caught_and_exit", "trap 'exit 3' TERM; while :; do sleep 0.05; done", {SIGTERM}, "30", 3, ""},
        SignalCase{"sigterm_caught_and_ignored_is_killed_after_kill_after",
                   "trap 'echo x > GOT' TERM; while :; do sleep 0.05; done", {SIGTERM}, "0.5", 137,
                   "the root task is still running 0.5 s after SIGTERM: killing the tree", 0.4, 3},
        SignalCase{"second_signal_kills", "trap 'echo x > GOT' TERM; while :; do sleep 0.05; done", {SIGTERM, SIGINT}, "30", 137,
                   "a second SIGINT after SIGTERM: killing the tree"},
        SignalCase{"sighup_is_forwarded_only", "trap 'exit 5' HUP; while :; do sleep 0.05; done", {SIGHUP}, "0.2", 5, ""}),
    [](const auto& p) { return std::string(p.param.name); });

TEST(Pidfile, OneThatCannotBeWrittenFailsTheRestore) {
  EXPECT_EQ(InSandbox([] {
              TempDir dir, work;
              std::vector<TaskSpec> tasks = {{.pid = 1, .ppid = 0, .pgid = 1, .sid = 1}, {.pid = 2, .ppid = 1, .pgid = 1, .sid = 1}};
              if (Status s = images::WriteImageDir(dir.path(), TreeImages(tasks)); !s.ok()) return s.error().ToString();
              // A full filesystem (the sandbox's own mount): the pidfile opens, its write fails with ENOSPC.
              std::string full = work.File("full");
              if (::mkdir(full.c_str(), 0700) != 0 || ::mount("pidfile", full.c_str(), "tmpfs", 0, "size=4k") != 0) {
                return std::string("cannot mount a small tmpfs");
              }
              int filler = ::open((full + "/filler").c_str(), O_WRONLY | O_CREAT, 0600);
              std::string block(4096, 'x');
              while (::write(filler, block.data(), block.size()) > 0) {
              }
              ::close(filler);
              std::string pidfile = full + "/pid";
              RunResult r = RunCommand({RestoreOrch(), "--images", dir.path(), "--detach", "--pidfile", pidfile});
              std::string p;
              if (r.status != 1) p += "status " + Str(r.status) + "\n";
              if (r.err.find("write pidfile " + pidfile + ": No space left on device") == std::string::npos) p += r.err;
              if (!r.out.empty()) p += "printed a pid: " + r.out;
              if (::access(pidfile.c_str(), F_OK) == 0) p += "the half-written pidfile is left\n";
              if (int n = OtherProcesses(); n != 0) p += Str(n) + " processes left behind\n";
              // Devices and other non-files are refused before anything is created.
              r = RunCommand({RestoreOrch(), "--images", dir.path(), "--detach", "--pidfile", "/dev/null"});
              if (r.status != 1 || r.err.find("--pidfile /dev/null exists and is not a regular file") == std::string::npos) {
                p += "pidfile /dev/null: status " + Str(r.status) + ": " + r.err;
              }
              ::umount2(full.c_str(), MNT_DETACH);
              return p;
            }),
            "");
}

// SIGINT or SIGTERM while an action script runs ends the script and rolls
// the restore back, at any point before the hand-over; what a script
// prints goes to restore-orch's stderr, never to the stdout the pid is on.
TEST(ActionScripts, ASignalWhileOneRunsRollsTheRestoreBack) {
  EXPECT_EQ(InSandbox([] {
              TempDir dir, work;
              std::vector<TaskSpec> tasks = {{.pid = 1, .ppid = 0, .pgid = 1, .sid = 1}, {.pid = 2, .ppid = 1, .pgid = 1, .sid = 1}};
              if (Status s = images::WriteImageDir(dir.path(), TreeImages(tasks)); !s.ok()) return s.error().ToString();
              std::string script = work.File("script.sh");
              work.Write("script.sh", "#!/bin/sh\necho \"out at $1\"; echo \"err at $1\" >&2\n[ \"$1\" != \"$(cat " + work.File("slow") +
                                          ")\" ] || { touch " + work.File("started") + "; sleep 30; }\n");
              ::chmod(script.c_str(), 0755);
              std::string p;
              // Nothing slow: every point's output on stderr, the pid alone on stdout.
              work.Write("slow", "none");
              RunResult quick = RunCommand({RestoreOrch(), "--images", dir.path(), "--detach", "--action-script", script});
              pid_t back = std::atoi(quick.out.c_str());
              if (quick.status != 0 || quick.out != Str(back) + "\n" || quick.err.find("out at pre-restore\nerr at pre-restore\n") == std::string::npos ||
                  quick.err.find("out at post-resume") == std::string::npos) {
                p += "quick: status " + Str(quick.status) + ", stdout: " + quick.out + ", stderr: " + quick.err;
              }
              if (back > 0) KillTree(back);
              for (const char* point : {"pre-restore", "post-restore"}) {
                for (int sig : {SIGINT, SIGTERM}) {
                  work.Write("slow", point);
                  ::unlink(work.File("started").c_str());
                  std::string err = work.File("err");
                  pid_t orch = StartRestore({"--images", dir.path(), "--detach", "--action-script", script}, err);
                  bool started = [&] {
                    for (int i = 0; i < 1000 && ::access(work.File("started").c_str(), F_OK) != 0; ++i) ::usleep(10000);
                    return ::access(work.File("started").c_str(), F_OK) == 0;
                  }();
                  auto t0 = std::chrono::steady_clock::now();
                  ::kill(orch, sig);
                  int status = 0;
                  ::waitpid(orch, &status, 0);
                  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                  std::ifstream in(err);
                  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
                  std::string what = std::string(point) + " " + strsignal(sig) + ": ";
                  if (!started) p += what + "the script did not start\n";
                  if (!WIFEXITED(status) || WEXITSTATUS(status) != 1) p += what + "status " + Str(status) + "\n";
                  if (text.find(std::string("interrupted by ") + strsignal(sig)) == std::string::npos) p += what + "stderr: " + text;
                  if (took > 5) p += what + "took " + std::to_string(took) + " s: the script was waited for\n";
                  if (int n = OtherProcesses(); n != 0) p += what + Str(n) + " processes left behind\n";
                }
              }
              return p;
            }),
            "");
}

// A tree for the dump tests: the root (init of its PID namespace) holds a
// pipe with data at fd 10 and 11 and a child; both sleep.
pid_t StartTree() {
  sys::CloneSpec spec;
  spec.flags = CLONE_NEWPID;
  spec.want_pidfd = false;
  auto cloned = sys::Clone3(spec);
  if (!cloned.ok()) return -1;
  if (cloned->pid == 0) {
    ::close_range(3, ~0u, 0);
    if (::setsid() < 0) _exit(1);  // a session of its own: not a shell's job
    int null = ::open("/dev/null", O_RDWR);
    for (int fd = 0; fd < 3; ++fd) ::dup2(null, fd);
    int p[2];
    if (::pipe(p) != 0 || ::dup2(p[0], 10) != 10 || ::dup2(p[1], 11) != 11 || ::write(11, "hello", 5) != 5) _exit(1);
    ::close(p[0]);
    ::close(p[1]);
    if (::fork() == 0) {
      ::execl("/bin/sleep", "sleep", "1000", nullptr);
      _exit(127);
    }
    ::execl("/bin/sleep", "sleep", "1000", nullptr);
    _exit(127);
  }
  return cloned->pid;
}

std::vector<std::string> ChildrenOf(pid_t pid) {
  std::ifstream in("/proc/" + Str(pid) + "/task/" + Str(pid) + "/children");
  std::vector<std::string> out;
  for (std::string k; in >> k;) out.push_back(k);
  return out;
}

bool Settled(pid_t root) {
  for (int i = 0; i < 500; ++i) {
    auto kids = ChildrenOf(root);
    char exe[64] = {};
    ssize_t n = ::readlink(("/proc/" + Str(root) + "/exe").c_str(), exe, sizeof(exe) - 1);
    if (kids.size() == 1 && n > 0 && std::string(exe, n) == "/usr/bin/sleep") {
      n = ::readlink(("/proc/" + kids[0] + "/exe").c_str(), exe, sizeof(exe) - 1);
      if (n > 0 && std::string(exe, n) == "/usr/bin/sleep") return true;
    }
    ::usleep(10000);
  }
  return false;
}

std::set<std::string> ImagesIn(const std::string& dir) {
  std::set<std::string> out;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (std::string(e->d_name).ends_with(".img")) out.insert(e->d_name);
    }
    ::closedir(d);
  }
  return out;
}

char State(pid_t pid) {
  std::ifstream in("/proc/" + Str(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t close = text.rfind(')');
  return close == std::string::npos || close + 2 >= text.size() ? '?' : text[close + 2];
}

TEST(DumpCli, DryRunReleasesTheTreeWritesNothingAndSaysWhatItWouldWrite) {
  EXPECT_EQ(InSandbox([] {
              TempDir work;
              std::string images = work.File("images");
              pid_t root = StartTree();
              EXPECT_OR_RETURN(root > 0 && Settled(root), "the tree did not start");
              pid_t child = std::atoi(ChildrenOf(root)[0].c_str());
              RunResult dry = RunCommand({RestoreOrch(), "dump", "-t", Str(root), "-D", images, "--dry-run"});
              std::string p;
              if (dry.status != 0) p += "dry run: status " + Str(dry.status) + ": " + dry.err;
              if (::access(images.c_str(), F_OK) == 0) p += "the dry run made the image directory\n";
              for (pid_t t : {root, child}) {
                char s = State(t);
                if (s != 'S' && s != 'R') p += "task " + Str(t) + " is in state " + std::string(1, s) + " after the dry run\n";
              }
              // Its pipe still holds its data.
              int fd = ::open(("/proc/" + Str(root) + "/fd/10").c_str(), O_RDONLY | O_NONBLOCK);
              char buf[16] = {};
              if (fd < 0 || ::read(fd, buf, sizeof(buf)) != 5 || std::string(buf, 5) != "hello") p += "the pipe lost its data\n";
              if (fd >= 0) ::close(fd);
              ::write(::open(("/proc/" + Str(root) + "/fd/11").c_str(), O_WRONLY), "hello", 5);
              if (dry.out.find("dry run: the tree was frozen, read, checked and released; nothing was written\n") == std::string::npos ||
                  dry.out.find("tasks 2, threads 2, zombies 0, fds ") == std::string::npos) {
                p += "dry run printed:\n" + dry.out;
              }
              // A real dump then writes exactly the files the dry run named.
              RunResult real = RunCommand({RestoreOrch(), "dump", "-t", Str(root), "-D", images, "-R"});
              if (real.status != 0) p += "dump: status " + Str(real.status) + ": " + real.err;
              std::set<std::string> written = ImagesIn(images);
              if (written.size() < 4) p += "the dump wrote " + Str(static_cast<long>(written.size())) + " files\n";
              for (const std::string& f : written) {
                if (dry.out.find("  " + f + " ") == std::string::npos) p += "the dry run did not name " + f + "\n";
              }
              if (dry.out.find("a dump would write " + Str(static_cast<long>(written.size())) + " files") == std::string::npos) {
                p += "the dry run named another number of files than " + Str(static_cast<long>(written.size())) + ":\n" + dry.out;
              }
              KillTree(root);
              return p;
            }),
            "");
}

TEST(DumpCli, ActionScriptsRunAtPreDumpAndPostDump) {
  EXPECT_EQ(InSandbox([] {
              TempDir work;
              std::string log = work.File("actions");
              std::string script = work.File("script.sh");
              work.Write("script.sh", "#!/bin/sh\necho \"$1 $RESTORE_ORCH_ACTION $CRTOOLS_SCRIPT_ACTION $RESTORE_ORCH_ROOT_PID "
                                      "$CRTOOLS_INIT_PID\" >> " + log + "\n[ \"$1\" != post-dump ] || [ ! -e " + work.File("fail") +
                                      " ]\n");
              ::chmod(script.c_str(), 0755);
              pid_t root = StartTree();
              EXPECT_OR_RETURN(root > 0 && Settled(root), "the tree did not start");
              std::string p;
              RunResult r = RunCommand({RestoreOrch(), "dump", "-t", Str(root), "-D", work.File("one"), "-R", "--action-script", script});
              if (r.status != 0) p += "dump: " + r.err;
              std::string want = "pre-dump pre-dump pre-dump " + Str(root) + " " + Str(root) + "\npost-dump post-dump post-dump " +
                                 Str(root) + " " + Str(root) + "\n";
              if (work.Read("actions") != want) p += "scripts saw:\n" + work.Read("actions") + "want:\n" + want;
              // A failing post-dump script fails the dump: no images, the tree runs on.
              work.Write("fail", "1");
              r = RunCommand({RestoreOrch(), "dump", "-t", Str(root), "-D", work.File("two"), "--action-script", script});
              if (r.status != 1 || r.err.find("action script " + script + " at post-dump exited with status 1") == std::string::npos) {
                p += "failing post-dump: status " + Str(r.status) + ": " + r.err;
              }
              if (::access(work.File("two").c_str(), F_OK) == 0) p += "the failed dump left its directory\n";
              char s = State(root);
              if (s != 'S' && s != 'R') p += "the tree is in state " + std::string(1, s) + " after a failed post-dump\n";
              // Its dry run runs no script.
              ::unlink(log.c_str());
              r = RunCommand({RestoreOrch(), "dump", "-t", Str(root), "-D", work.File("three"), "--dry-run", "--action-script", script});
              if (r.status != 0 || ::access(log.c_str(), F_OK) == 0) p += "dry run: status " + Str(r.status) + ", scripts ran\n";
              KillTree(root);
              return p;
            }),
            "");
}

// SIGINT while the pre-dump script runs: the script is ended at once, the
// tree is never frozen, nothing is written.
TEST(DumpCli, ASignalWhileThePreDumpScriptRunsStopsTheDump) {
  EXPECT_EQ(InSandbox([] {
              TempDir work;
              std::string script = work.File("script.sh");
              work.Write("script.sh", "#!/bin/sh\necho go > " + work.File("started") + "\nsleep 30\n");
              ::chmod(script.c_str(), 0755);
              pid_t root = StartTree();
              EXPECT_OR_RETURN(root > 0 && Settled(root), "the tree did not start");
              std::string p;
              pid_t orch = ::fork();
              if (orch == 0) {
                int null = ::open("/dev/null", O_WRONLY);
                int err = ::open(work.File("err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
                ::dup2(null, 1);
                ::dup2(err, 2);
                ::execl(RestoreOrch().c_str(), "restore-orch", "dump", "-t", Str(root).c_str(), "-D", work.File("images").c_str(),
                        "--action-script", script.c_str(), nullptr);
                ::_exit(127);
              }
              if (!WaitFor(work.File("started"), 10000)) p += "the script did not start\n";
              auto t0 = std::chrono::steady_clock::now();
              ::kill(orch, SIGINT);
              int status = 0;
              ::waitpid(orch, &status, 0);
              double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
              std::string err = work.Read("err");
              if (!WIFEXITED(status) || WEXITSTATUS(status) != 1 ||
                  err.find("interrupted by Interrupt while the pre-dump action script ran: nothing was written and the tree runs on") ==
                      std::string::npos) {
                p += "status " + Str(status) + ": " + err;
              }
              if (took > 5) p += "the script was waited for: " + std::to_string(took) + " s\n";
              if (::access(work.File("images").c_str(), F_OK) == 0) p += "the dump left its directory\n";
              char state = State(root);
              if (state != 'S' && state != 'R') p += "the tree is in state " + std::string(1, state) + "\n";
              KillTree(root);
              if (int n = OtherProcesses(); n != 0) p += Str(n) + " processes left (the script's sleep?)\n";
              return p;
            }),
            "");
}

// A refusal is 3 (test/ns/dump_test.cc: each refused object); a failure 1.
TEST(DumpCli, NoSuchProcessIsAFailure) {
  EXPECT_EQ(InSandbox([] {
              TempDir work;
              std::string p;
              // No such process: a failure (1), one line.
              RunResult r = RunCommand({RestoreOrch(), "dump", "-t", "4194303", "-D", work.File("a")});
              if (r.status != 1 || std::count(r.err.begin(), r.err.end(), '\n') != 1) p += "no such pid: " + Str(r.status) + ": " + r.err;
              return p;
            }),
            "");
}

// A dump or restore that runs past its first second shows where it is on
// stderr: on a terminal by default, elsewhere with --progress, never with
// -q. The action script stretches the start past that second, and the
// line goes on while it runs.
TEST(ProgressCli, LongDumpsAndRestoresSayWhereTheyAreUnlessQuiet) {
  EXPECT_EQ(InSandbox([] {
              TempDir work;
              std::string script = work.File("slow.sh");
              work.Write("slow.sh", "#!/bin/sh\ncase \"$1\" in pre-dump|pre-restore) sleep 1.3 ;; esac\n");
              ::chmod(script.c_str(), 0755);
              pid_t root = StartTree();
              EXPECT_OR_RETURN(root > 0 && Settled(root), "the tree did not start");
              std::string p;
              auto dump = [&](const std::string& dir, std::vector<std::string> extra) {
                std::vector<std::string> args = {RestoreOrch(), "dump", "-t", Str(root), "-D", work.File(dir), "-R", "--action-script", script};
                args.insert(args.end(), extra.begin(), extra.end());
                return RunCommand(args);
              };
              // stderr is a file here: no line unless asked for.
              RunResult plain = dump("plain", {});
              if (plain.status != 0 || !plain.err.empty()) p += "plain dump: status " + Str(plain.status) + ", stderr: " + plain.err;
              RunResult quiet = dump("quiet", {"-q"});
              if (quiet.status != 0 || !quiet.err.empty()) p += "quiet dump: status " + Str(quiet.status) + ", stderr: " + quiet.err;
              RunResult shown = dump("shown", {"--progress"});
              // Each line names a stage the dump passed after its first second, and ends.
              if (shown.status != 0 || shown.err.find("restore-orch: dump: action script at pre-dump, ") != 0 ||
                  shown.err.find('\r') != std::string::npos || shown.err.back() != '\n') {
                p += "dump --progress: status " + Str(shown.status) + ", stderr: " + shown.err;
              }
              RunResult both = dump("both", {"-q", "--progress"});
              if (both.status != 64 || both.err.find("-q/--quiet and --progress exclude each other") == std::string::npos) {
                p += "-q with --progress: status " + Str(both.status) + ": " + both.err;
              }
              KillTree(root);
              // The restore of those images, as long: the root task's stage is the first it shows.
              RunResult restored = RunCommand({RestoreOrch(), "--images", work.File("shown"), "--detach", "--progress",
                                               "--action-script", script});
              pid_t back = std::atoi(restored.out.c_str());
              if (restored.status != 0 || back <= 0 || restored.err.find("restore-orch: restore: action script at pre-restore, ") != 0) {
                p += "restore --progress: status " + Str(restored.status) + ", stdout: " + restored.out + ", stderr: " + restored.err;
              }
              if (back > 0) KillTree(back);
              RunResult silent = RunCommand({RestoreOrch(), "restore", "--images", work.File("shown"), "--detach", "-q",
                                             "--action-script", script});
              back = std::atoi(silent.out.c_str());
              if (silent.status != 0 || back <= 0 || !silent.err.empty()) {
                p += "restore -q: status " + Str(silent.status) + ", stderr: " + silent.err;
              }
              if (back > 0) KillTree(back);
              return p;
            }),
            "");
}

}  // namespace
}  // namespace ro::test
