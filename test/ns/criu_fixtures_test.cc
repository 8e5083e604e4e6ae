// The upstream CRIU fixtures (/work/shared/criu-images/*: img/ written by
// `criu dump`, root.tar.gz, expected.txt), restored for real and checked
// from outside against what the live trees looked like before the dump:
//
//   1. root.tar.gz unpacked into a fresh tmpfs R, a copy of img/ restored
//      with `restore-orch --images COPY --root R --external usr=/usr
//      -d --pidfile F` (the restore the README gives);
//   2. a snapshot of the restored tree (test/helpers/tree_snapshot.h, the
//      format and normalization of expected.txt) compared with expected.txt
//      section by section, every difference one line;
//   3. live checks, as criu-restore-check.txt made them: propagation,
//      unbindable, read-only and covered mounts (mounts-sharing); the
//      restored AutoFS master serving a new key (autofs-master); the counter
//      going on from its dumped value and cookie (memory-counter); the pipe
//      and FIFO data readable through the restored readers' fds
//      (tree-sessions);
//   4. `restore-orch verify` of the copy against the live tree;
//   5. the tree killed through its pid 1, and nothing left: no process,
//      mount or /dev/shm entry.
//
// Each fixture runs in its own sandbox (PID and mount namespaces): nothing
// is mounted in the caller's namespace.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "test/helpers/fixtures.h"
#include "test/helpers/sandbox.h"
#include "test/helpers/test_util.h"
#include "test/helpers/tree_snapshot.h"

namespace ro::test {
namespace {

using Clock = std::chrono::steady_clock;

const std::string kFixtures = RO_CRIU_FIXTURES;

std::string Str(long long v) { return std::to_string(v); }

double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string Secs(double s) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3f s", s);
  return buf;
}

std::optional<std::string> ReadWhole(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string out;
  char buf[65536];
  for (ssize_t n; (n = ::read(fd, buf, sizeof(buf))) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// Findings of one fixture: every problem one line; notes (timings, what
// matched) go to stderr as they come.
struct Report {
  std::string fixture;
  std::vector<std::string> problems;
  void Fail(const std::string& line) { problems.push_back(line); }
  void Note(const std::string& line) const { std::fprintf(stderr, "[%s] %s\n", fixture.c_str(), line.c_str()); }
  std::string Text() const {
    std::string out;
    for (const std::string& p : problems) out += "[" + fixture + "] " + p + "\n";
    return out;
  }
};

// ---------------------------------------------------------------- processes

struct Ran {
  int status = -1;  // exit code, or 128+signal
  bool timed_out = false;
  std::string out, err;
  double seconds = 0;
};

// Runs argv with stdout and stderr in files of `dir`, killed after
// `deadline_s` (a restore that wedges must not wedge the test); `slow`, if
// given, is called once when it has run for `slow_s`, and again at the
// deadline, before the kill.
Ran RunWithin(const std::vector<std::string>& argv, const TempDir& dir, const std::string& tag, double deadline_s,
              const std::function<void(const std::string& when)>& slow = nullptr, double slow_s = 0) {
  Ran r;
  auto t0 = Clock::now();
  std::string out_path = dir.File(tag + ".out"), err_path = dir.File(tag + ".err");
  pid_t pid = ::fork();
  if (pid == 0) {
    int in = ::open("/dev/null", O_RDONLY);
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (in < 0 || out < 0 || err < 0) ::_exit(126);
    ::dup2(in, 0), ::dup2(out, 1), ::dup2(err, 2);
    ::close_range(3, ~0u, 0);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  pollfd p{pidfd, POLLIN, 0};
  if (slow && slow_s > 0 && pidfd >= 0 && ::poll(&p, 1, static_cast<int>(slow_s * 1000)) == 0) {
    slow("still running after " + Secs(slow_s));
  }
  int remaining = static_cast<int>((deadline_s - Since(t0)) * 1000);
  while (pidfd >= 0 && ::poll(&p, 1, std::max(remaining, 0)) == 0) {
    if (!r.timed_out && slow) slow("at the deadline, " + Secs(Since(t0)));
    r.timed_out = true;
    ::syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
    remaining = 10000;
  }
  if (pidfd >= 0) ::close(pidfd);
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = ReadWhole(out_path).value_or("");
  r.err = ReadWhole(err_path).value_or("");
  r.seconds = Since(t0);
  return r;
}

// The tree below `root`: pid in the tree's namespace -> pid as we see it.
std::map<long, pid_t> TreePids(pid_t root) {
  std::map<long, pid_t> out;
  std::vector<pid_t> todo{root};
  std::set<pid_t> seen;
  while (!todo.empty()) {
    pid_t h = todo.back();
    todo.pop_back();
    if (!seen.insert(h).second) continue;
    auto status = ReadWhole("/proc/" + Str(h) + "/status");
    if (!status) continue;
    for (const std::string& l : Lines(*status)) {
      if (l.rfind("NSpid:", 0) == 0) out[std::stol(l.substr(l.find_last_of(" \t") + 1))] = h;
    }
    if (DIR* d = ::opendir(("/proc/" + Str(h) + "/task").c_str())) {
      while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        std::istringstream kids(ReadWhole("/proc/" + Str(h) + "/task/" + e->d_name + "/children").value_or(""));
        for (pid_t k; kids >> k;) todo.push_back(k);
      }
      ::closedir(d);
    }
  }
  return out;
}

// Field 22 of /proc/PID/stat: the start time, which tells one process from
// another that got the same pid.
std::string StartTime(pid_t pid) {
  std::string stat = ReadWhole("/proc/" + Str(pid) + "/stat").value_or("");
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return "?";
  std::istringstream in(stat.substr(paren + 1));
  std::string f;
  for (int i = 0; i < 20 && (in >> f); ++i) {
  }
  return f;
}

// Every process of the sandbox but us, one line each: what a wedged
// restore is doing (state, wait channel, tracer, blocked and pending
// signals, the top of its kernel stack).
std::vector<std::string> ProcessTable() {
  std::vector<std::string> out;
  pid_t self = ::getpid();
  DIR* d = ::opendir("/proc");
  while (dirent* e = d ? ::readdir(d) : nullptr) {
    pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
    if (pid <= 0 || pid == self) continue;
    std::string base = "/proc/" + Str(pid);
    std::map<std::string, std::string> st;
    for (const std::string& l : Lines(ReadWhole(base + "/status").value_or(""))) {
      size_t c = l.find(':');
      if (c == std::string::npos) continue;
      std::string v = l.substr(c + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      std::replace(v.begin(), v.end(), '\t', ' ');
      st[l.substr(0, c)] = v;
    }
    if (st.empty()) continue;
    std::vector<std::string> stack = Lines(ReadWhole(base + "/stack").value_or(""));
    std::string frames;
    for (size_t i = 0; i < stack.size() && i < 5; ++i) {
      std::string f = stack[i].substr(stack[i].find(']') == std::string::npos ? 0 : stack[i].find(']') + 2);
      frames += (frames.empty() ? "" : " < ") + f.substr(0, f.find('+'));
    }
    out.push_back("pid " + Str(pid) + " (NSpid " + st["NSpid"] + ") " + st["Name"] + " state " + st["State"] +
                  " ppid " + st["PPid"] + " wchan " + ReadWhole(base + "/wchan").value_or("?") + " tracer " + st["TracerPid"] +
                  " SigBlk " + st["SigBlk"] + " SigPnd " + st["SigPnd"] + " ShdPnd " + st["ShdPnd"] + " kernel stack: " + frames);
  }
  if (d != nullptr) ::closedir(d);
  return out;
}

// Runs `fn` in a child that joined the mount namespace of `root` (and, with
// `in_pid_ns`, in a grandchild inside the tree's PID namespace: a task of
// the tree's namespaces that is in none of its process groups); what `fn`
// returns comes back as text. Killed after `timeout_s`.
struct InTree {
  std::string text;
  bool timed_out = false;
  bool ok = false;  // the child ran fn to its end
};
InTree RunInTree(pid_t root, bool in_pid_ns, const std::function<std::string()>& fn, double timeout_s = 10) {
  InTree r;
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return r;
  int mnt = ::open(("/proc/" + Str(root) + "/ns/mnt").c_str(), O_RDONLY | O_CLOEXEC);
  int pid = ::open(("/proc/" + Str(root) + "/ns/pid").c_str(), O_RDONLY | O_CLOEXEC);
  pid_t child = ::fork();
  if (child == 0) {
    ::close(p[0]);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    auto write_all = [&](const std::string& s) {
      for (size_t off = 0; off < s.size();) {
        ssize_t n = ::write(p[1], s.data() + off, s.size() - off);
        if (n <= 0) break;
        off += static_cast<size_t>(n);
      }
    };
    if (in_pid_ns && ::setns(pid, CLONE_NEWPID) != 0) {
      write_all(std::string("setns(pid): ") + std::strerror(errno));
      ::_exit(1);
    }
    if (::setns(mnt, CLONE_NEWNS) != 0) {
      write_all(std::string("setns(mnt): ") + std::strerror(errno));
      ::_exit(1);
    }
    if (!in_pid_ns) {
      write_all(fn());
      ::_exit(0);
    }
    pid_t inner = ::fork();
    if (inner == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      write_all(fn());
      ::_exit(0);
    }
    ::close(p[1]);
    int status = 0;
    ::waitpid(inner, &status, 0);
    ::_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 2);
  }
  ::close(p[1]);
  if (mnt >= 0) ::close(mnt);
  if (pid >= 0) ::close(pid);
  auto deadline = Clock::now() + std::chrono::milliseconds(static_cast<long>(timeout_s * 1000));
  char buf[4096];
  for (;;) {
    int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
    pollfd pf{p[0], POLLIN, 0};
    if (left <= 0 || ::poll(&pf, 1, left) == 0) {
      r.timed_out = true;
      ::kill(child, SIGKILL);  // our own child; its grandchild dies with it
      break;
    }
    ssize_t n = ::read(p[0], buf, sizeof(buf));
    if (n <= 0) break;
    r.text.append(buf, static_cast<size_t>(n));
  }
  ::close(p[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  r.ok = !r.timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  return r;
}

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

// How many mounts of the tree sit on `path` (its root task's mountinfo).
int CountMounts(pid_t root, const std::string& path) {
  int n = 0;
  for (const std::string& l : Lines(ReadWhole("/proc/" + Str(root) + "/mountinfo").value_or(""))) {
    std::istringstream in(l);
    std::string f[5];
    for (auto& x : f) in >> x;
    n += f[4] == path;
  }
  return n;
}

// ---------------------------------------------------------------- comparison

// Compares one section, lines in order; every difference one line.
void CompareLines(Report& r, const std::string& name, const std::vector<std::string>& want, const std::vector<std::string>& got) {
  if (want == got) {
    r.Note("ok: " + name + " equal (" + Str(static_cast<long long>(want.size())) + " lines)");
    return;
  }
  std::multiset<std::string> w(want.begin(), want.end()), g(got.begin(), got.end());
  bool any = false;
  std::multiset<std::string> missing, extra;
  std::set_difference(w.begin(), w.end(), g.begin(), g.end(), std::inserter(missing, missing.end()));
  std::set_difference(g.begin(), g.end(), w.begin(), w.end(), std::inserter(extra, extra.end()));
  for (const std::string& l : want) {
    if (auto it = missing.find(l); it != missing.end()) {
      r.Fail(name + " expected: " + l);
      missing.erase(it);
      any = true;
    }
  }
  for (const std::string& l : got) {
    if (auto it = extra.find(l); it != extra.end()) {
      r.Fail(name + " actual:   " + l);
      extra.erase(it);
      any = true;
    }
  }
  if (!any) {
    size_t i = 0;
    while (i < want.size() && want[i] == got[i]) ++i;
    r.Fail(name + " same lines in another order: line " + Str(static_cast<long long>(i + 1)) + " expected '" + want[i] +
           "', actual '" + got[i] + "'");
  }
}

// [tmpfs contents] is one block per tmpfs ("tmpfs at MP:" and its sorted
// lines) in the order of the root task's mountinfo, which make.sh does not
// normalize: it is the order the mounts were made in, which a restore need
// not repeat (the [mountinfo] section, sorted, is where mounts are compared).
// So blocks are compared by mount point, each block line by line; a block
// order that differs is a note, not a difference.
void CompareTmpfs(Report& r, const std::string& name, const std::vector<std::string>& want, const std::vector<std::string>& got) {
  auto blocks = [](const std::vector<std::string>& lines, std::vector<std::string>* order) {
    std::map<std::string, std::vector<std::string>> out;
    std::string cur;
    for (const std::string& l : lines) {
      if (l.rfind("tmpfs at ", 0) == 0) {
        cur = l;
        order->push_back(l);
      }
      out[cur].push_back(l);
    }
    return out;
  };
  std::vector<std::string> want_order, got_order;
  auto w = blocks(want, &want_order);
  auto g = blocks(got, &got_order);
  size_t before = r.problems.size();
  std::set<std::string> keys;
  for (const auto& [k, v] : w) keys.insert(k);
  for (const auto& [k, v] : g) keys.insert(k);
  for (const std::string& k : keys) {
    static const std::vector<std::string> kNone;
    const auto& a = w.count(k) ? w.at(k) : kNone;
    const auto& b = g.count(k) ? g.at(k) : kNone;
    if (a == b) continue;
    Report sub{r.fixture, {}};
    CompareLines(sub, name, a, b);
    r.problems.insert(r.problems.end(), sub.problems.begin(), sub.problems.end());
  }
  if (r.problems.size() == before) {
    r.Note("ok: " + name + " equal (" + Str(static_cast<long long>(want.size())) + " lines" +
           (want_order == got_order ? ")" : "; the blocks come in another mountinfo order, which is not compared)"));
    if (want_order != got_order) {
      std::string a, b;
      for (const auto& x : want_order) a += " " + x.substr(9, x.size() - 10);
      for (const auto& x : got_order) b += " " + x.substr(9, x.size() - 10);
      r.Note("   tmpfs blocks in expected.txt:" + a + "; restored:" + b);
    }
  }
}

// A line both sides may spell differently for a reason the fixture's
// README gives, rewritten to one spelling on both sides.
using Allowance = std::function<std::string(const std::string& section, const std::string& line)>;

void CompareSnapshot(Report& r, const Sections& want, const Sections& got, const Allowance& allow) {
  for (const std::string& name : want.names) {
    if (name.rfind("[extra", 0) == 0) continue;  // the fixture's own, checked live
    const std::vector<std::string>* g = got.Find(name);
    if (g == nullptr) {
      r.Fail(name + " missing from the restored tree's snapshot");
      continue;
    }
    std::vector<std::string> a = *want.Find(name), b = *g;
    if (allow) {
      for (auto& l : a) l = allow(name, l);
      for (auto& l : b) l = allow(name, l);
    }
    if (name == "[tmpfs contents]") {
      CompareTmpfs(r, name, a, b);
    } else {
      CompareLines(r, name, a, b);
    }
  }
  for (const std::string& name : got.names) {
    if (!want.Find(name)) {
      for (const std::string& l : *got.Find(name)) r.Fail(name + " not in expected.txt: " + l);
    }
  }
}

// ---------------------------------------------------------------- one fixture

struct Tree {
  pid_t root = 0;                 // the tree's pid 1, as we see it
  std::map<long, pid_t> pids;     // tree pid -> our pid
  std::string images;             // the copy of img/
  Sections expected;               // expected.txt
  Sections restored;               // the snapshot taken right after the restore
  Clock::time_point restored_at;  // when restore-orch -d returned
};

using LiveCheck = std::function<void(Tree&, Report&)>;

struct FixtureSpec {
  std::string name;
  Allowance allow;
  LiveCheck live;
};

std::string RestoreAndCheck(const FixtureSpec& spec) {
  Report r{spec.name, {}};
  auto t_all = Clock::now();
  const std::string src = kFixtures + "/" + spec.name;
  const std::vector<std::string> mounts_before = MountTable();
  const std::vector<std::string> shm_before = DevShm();
  Tree tree;
  tree.expected = ParseSections(ReadWhole(src + "/expected.txt").value_or(""));
  if (tree.expected.names.empty()) return "[" + spec.name + "] cannot read " + src + "/expected.txt\n";

  std::optional<TempDir> work;
  work.emplace();
  tree.images = work->File("img");
  std::error_code ec;
  std::filesystem::copy(src + "/img", tree.images, std::filesystem::copy_options::recursive, ec);
  if (ec) return "[" + spec.name + "] copy of img/: " + ec.message() + "\n";
  for (const auto& e : std::filesystem::directory_iterator(tree.images)) {
    std::filesystem::permissions(e.path(), std::filesystem::perms::owner_write, std::filesystem::perm_options::add);
  }
  std::filesystem::permissions(tree.images, std::filesystem::perms::owner_write, std::filesystem::perm_options::add);
  if (std::string e = FitRlimitsToThisMachine(tree.images); !e.empty()) return "[" + spec.name + "] " + e + "\n";
  const std::string root_dir = work->File("R");
  ::mkdir(root_dir.c_str(), 0755);
  // The sandbox's own mount namespace, private: nothing reaches the caller's.
  if (::mount("fx-root", root_dir.c_str(), "tmpfs", 0, "size=16m,mode=0755") != 0) {
    return "[" + spec.name + "] " + Errno("mount tmpfs on " + root_dir) + "\n";
  }
  auto unmount_root = [&] {
    if (::umount2(root_dir.c_str(), 0) != 0) r.Fail(Errno("umount " + root_dir));
  };
  RunResult tar = RunCommand({"tar", "-C", root_dir, "-xzpf", src + "/root.tar.gz", "--numeric-owner"});
  if (tar.status != 0) {
    unmount_root();
    return "[" + spec.name + "] tar: " + tar.err + "\n";
  }

  // 1. The restore, as the README gives it (and a deadline of our own).
  const std::string pidfile = work->File("pidfile");
  // A restore of these trees takes well under a second: after 5 s it is
  // wedged, and what every process is doing is noted; at restore-orch's own
  // --timeout it must roll back and exit; 20 s later the test kills it.
  auto wedged = [&](const std::string& when) {
    r.Note("restore-orch " + when + "; the sandbox's processes:");
    for (const std::string& l : ProcessTable()) r.Note("  " + l);
  };
  Ran restore = RunWithin({RestoreOrch(), "--images", tree.images, "--root", root_dir, "--external", "usr=/usr",
                           "-d", "--pidfile", pidfile, "--timeout", "10"},
                          *work, "restore", 30, wedged, 5);
  auto t_restored = Clock::now();
  tree.restored_at = t_restored;
  r.Note("restore-orch exited " + Str(restore.status) + " after " + Secs(restore.seconds) +
         (restore.timed_out ? " (killed at the test's 30 s deadline: it had not exited 20 s after its own --timeout 10)" : ""));
  if (restore.status != 0) {
    r.Fail("restore: exit " + Str(restore.status) + " after " + Secs(restore.seconds) +
           (restore.timed_out ? ", killed at the test's 30 s deadline, 20 s after its own --timeout 10 should have rolled it back" : ""));
    for (const std::string& l : Lines(restore.err)) r.Fail("restore stderr: " + l);
  } else {
    for (const std::string& l : Lines(restore.err)) r.Note("restore stderr: " + l);
  }
  std::string pid_text = ReadWhole(pidfile).value_or("");
  if (restore.status == 0) {
    tree.root = static_cast<pid_t>(std::atoi(pid_text.c_str()));
    if (tree.root <= 0) r.Fail("restore: pidfile holds '" + pid_text + "'");
    if (std::atoi(restore.out.c_str()) != tree.root) r.Fail("restore: printed '" + restore.out + "', pidfile '" + pid_text + "'");
  }
  int pidfd = tree.root > 0 ? static_cast<int>(::syscall(SYS_pidfd_open, tree.root, 0)) : -1;
  if (tree.root > 0 && pidfd < 0) r.Fail(Errno("pidfd_open of the restored root " + Str(tree.root)));

  if (pidfd >= 0) {
    tree.pids = TreePids(tree.root);
    if (tree.pids.count(1) == 0 || tree.pids[1] != tree.root) {
      r.Fail("the restored root " + Str(tree.root) + " is not pid 1 of its PID namespace");
    }
    std::string ours = std::filesystem::read_symlink("/proc/self/ns/pid", ec).string();
    std::string theirs = std::filesystem::read_symlink("/proc/" + Str(tree.root) + "/ns/pid", ec).string();
    if (ours == theirs) r.Fail("the restored tree is in our PID namespace");
    std::map<long, std::string> started;
    for (const auto& [ns, host] : tree.pids) started[ns] = StartTime(host);

    // 2. The snapshot, after the half second make.sh waits too.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    auto t_snap = Clock::now();
    std::string text = SnapshotTree(tree.root);
    r.Note("snapshot of the restored tree in " + Secs(Since(t_snap)));
    tree.restored = ParseSections(text);
    CompareSnapshot(r, tree.expected, tree.restored, spec.allow);

    // 4. verify (before the live checks, which change the tree).
    Ran verify = RunWithin({RestoreOrch(), "verify", "--images", tree.images, "--pid", Str(tree.root)},
                           *work, "verify", 60);
    r.Note("restore-orch verify exited " + Str(verify.status) + " after " + Secs(verify.seconds) + ": " +
           (Lines(verify.out).empty() ? "" : Lines(verify.out).back()));
    if (verify.status != 0) {
      r.Fail("verify: exit " + Str(verify.status));
      for (const std::string& l : Lines(verify.out + verify.err)) r.Fail("verify: " + l);
    }

    // 3. The fixture's live checks.
    auto t_live = Clock::now();
    if (spec.live) spec.live(tree, r);
    r.Note("live checks in " + Secs(Since(t_live)));

    // The same processes all along: none died and came back.
    std::map<long, pid_t> now = TreePids(tree.root);
    for (const auto& [ns, start] : started) {
      if (!now.count(ns) || now[ns] != tree.pids[ns] || StartTime(now[ns]) != start) {
        r.Fail("task " + Str(ns) + " is not the process restored (pid " + Str(tree.pids[ns]) + ", started at " + start +
               "; now " + (now.count(ns) ? "pid " + Str(now[ns]) + " started at " + StartTime(now[ns]) : "gone") + ")");
      }
    }
    for (const auto& [ns, host] : now) {
      if (!started.count(ns)) r.Fail("task " + Str(ns) + " (pid " + Str(host) + ") appeared after the restore");
    }

    // 5. Kill the tree through its pid 1: the PID namespace goes with it.
    ::syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
    ::waitpid(tree.root, nullptr, 0);
    ::close(pidfd);
  }
  auto t_kill = Clock::now();
  int left = OtherProcesses();
  if (left != 0) r.Fail(Str(left) + " processes left in the sandbox after the tree was killed");
  unmount_root();
  work.reset();
  if (MountTable() != mounts_before) r.Fail("the sandbox's mount table changed");
  if (DevShm() != shm_before) r.Fail("/dev/shm changed");
  r.Note("teardown in " + Secs(Since(t_kill)) + "; whole fixture " + Secs(Since(t_all)) + " (restore to teardown " +
         Secs(std::chrono::duration<double>(t_kill - t_restored).count()) + ")");
  return r.Text();
}

bool FixturePresent(const std::string& name) {
  struct stat s {};
  return ::stat((kFixtures + "/" + name + "/img").c_str(), &s) == 0 &&
         ::stat((kFixtures + "/" + name + "/root.tar.gz").c_str(), &s) == 0 &&
         ::stat((kFixtures + "/" + name + "/expected.txt").c_str(), &s) == 0;
}

#define RUN_FIXTURE(spec)                                                                                  \
  do {                                                                                                     \
    if (!FixturePresent((spec).name)) GTEST_SKIP() << kFixtures << "/" << (spec).name << " is not there"; \
    std::string failures = InSandbox([&] { return RestoreAndCheck(spec); });                               \
    if (!failures.empty()) ADD_FAILURE() << "\n" << failures;                                              \
  } while (0)

// ---------------------------------------------------------------- tree-sessions

// The pipe's 10 bytes and the FIFO's 5, read through the very fds the
// restored readers hold (pidfd_getfd: the same open file descriptions).
void TreeSessionsLive(Tree& t, Report& r) {
  struct Want {
    long pid;
    int fd;
    std::string data;
    const char* what;
  };
  for (const Want& w : {Want{5, 3, "0123456789", "the pipe's read end (pipe-reader 5:3)"},
                        Want{2, 7, "fifo!", "the FIFO's read end (sess-leader 2:7)"}}) {
    if (!t.pids.count(w.pid)) {
      r.Fail(std::string("live: no task ") + Str(w.pid) + " for " + w.what);
      continue;
    }
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, t.pids[w.pid], 0));
    int fd = pidfd < 0 ? -1 : static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd, w.fd, 0));
    if (fd < 0) {
      r.Fail(std::string("live: ") + Errno(std::string("pidfd_getfd of ") + w.what));
      if (pidfd >= 0) ::close(pidfd);
      continue;
    }
    std::string got;
    pollfd p{fd, POLLIN, 0};
    char buf[256];
    // The pipe's end is blocking: read only what poll says is there.
    while (got.size() < w.data.size() && ::poll(&p, 1, 1000) == 1 && (p.revents & POLLIN)) {
      ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
    int after = -1;
    ::ioctl(fd, FIONREAD, &after);
    if (got == w.data && after == 0) {
      r.Note(std::string("ok: live: ") + w.what + " holds '" + got + "' and nothing more");
    } else {
      r.Fail(std::string("live: ") + w.what + ": read '" + got + "' (want '" + w.data + "'), " + Str(after) + " bytes left");
    }
    ::close(fd);
    ::close(pidfd);
  }
}

// ---------------------------------------------------------------- mounts-sharing

void MountsSharingLive(Tree& t, Report& r) {
  pid_t root = t.root;
  auto in_tree = [&](const std::function<std::string()>& fn) {
    InTree x = RunInTree(root, false, fn);
    if (!x.ok) return std::string("(the helper in the tree's mount namespace failed: ") + x.text + ")";
    return x.text;
  };
  auto counts = [&](std::initializer_list<const char*> paths) {
    std::string s;
    for (const char* p : paths) s += Str(CountMounts(root, p));
    return s;
  };
  // A mount on /peer/sub (a peer of /shared; /shared/sub is the root of the
  // slave /slave) reaches /shared/sub and /slave ("/slave" is itself a
  // mount: 2 there).
  std::string made = in_tree([] { return ::mount("t-peer", "/peer/sub", "tmpfs", 0, nullptr) == 0 ? "" : Errno("mount /peer/sub"); });
  std::string got = counts({"/peer/sub", "/shared/sub", "/slave"});
  std::string gone = in_tree([] { return ::umount2("/peer/sub", 0) == 0 ? "" : Errno("umount /peer/sub"); });
  std::string after = counts({"/peer/sub", "/shared/sub", "/slave"});
  if (made.empty() && got == "112" && gone.empty() && after == "001") {
    r.Note("ok: live: a mount on peer /peer/sub reaches /shared/sub and the slave /slave (and its umount too)");
  } else {
    r.Fail("live: a mount on /peer/sub: " + made + " counts /peer/sub,/shared/sub,/slave = " + got + " (want 112); umount: " +
           gone + " then " + after + " (want 001)");
  }
  // A mount under the slave reaches neither /shared nor /peer.
  made = in_tree([] {
    if (::mkdir("/slave/new", 0755) != 0) return Errno("mkdir /slave/new");
    return ::mount("t-slave", "/slave/new", "tmpfs", 0, nullptr) == 0 ? std::string() : Errno("mount /slave/new");
  });
  got = counts({"/slave/new", "/shared/sub/new", "/peer/sub/new"});
  gone = in_tree([] {
    std::string e;
    if (::umount2("/slave/new", 0) != 0) e += Errno("umount /slave/new");
    if (::rmdir("/slave/new") != 0) e += Errno("rmdir /slave/new");
    return e;
  });
  if (made.empty() && got == "100" && gone.empty()) {
    r.Note("ok: live: a mount under the slave stays there");
  } else {
    r.Fail("live: a mount on /slave/new: " + made + " counts /slave/new,/shared/sub/new,/peer/sub/new = " + got +
           " (want 100); cleanup: " + gone);
  }
  // Binding the unbindable /unbind is refused.
  std::string bind = in_tree([] {
    if (::mount("/unbind", "/vol-ro", nullptr, MS_BIND, nullptr) == 0) {
      ::umount2("/vol-ro", 0);
      return std::string("bound");
    }
    return Errno("refused");
  });
  if (bind.rfind("refused: ", 0) == 0) {
    r.Note("ok: live: binding the unbindable /unbind is " + bind);
  } else {
    r.Fail("live: binding /unbind: " + bind);
  }
  // /vol-ro is read-only.
  std::string ro = in_tree([] {
    int fd = ::open("/vol-ro/new", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::close(fd);
      ::unlink("/vol-ro/new");
      return std::string("created /vol-ro/new");
    }
    return errno == EROFS ? std::string("EROFS") : Errno("open /vol-ro/new");
  });
  if (ro == "EROFS") {
    r.Note("ok: live: /vol-ro is read-only (EROFS)");
  } else {
    r.Fail("live: writing into /vol-ro: " + ro);
  }
  // The covered tmpfs under /stack: in a private copy of the tree's mount
  // namespace, the top one unmounted, listed as make.sh listed it
  // ("  /NAME SIZE bytes: CONTENT" with $(cat)'s trailing newlines gone).
  std::string covered = in_tree([] {
    if (::unshare(CLONE_NEWNS) != 0) return Errno("unshare");
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return Errno("make the copy private");
    if (::umount2("/stack", 0) != 0) return Errno("umount /stack");
    std::vector<std::string> names;
    if (DIR* d = ::opendir("/stack")) {
      while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] != '.') names.push_back(e->d_name);
      }
      ::closedir(d);
    }
    std::sort(names.begin(), names.end());
    std::string out;
    for (const std::string& n : names) {
      std::string data = ReadWhole("/stack/" + n).value_or("<unreadable>");
      std::string shown = data;
      while (!shown.empty() && shown.back() == '\n') shown.pop_back();
      out += "  /" + n + " " + Str(static_cast<long long>(data.size())) + " bytes: " + shown + "\n";
    }
    return out;
  });
  const std::vector<std::string>* want = nullptr;
  for (const std::string& name : t.expected.names) {
    if (name.rfind("[extra: covered tmpfs", 0) == 0) want = t.expected.Find(name);
  }
  if (want == nullptr) {
    r.Fail("expected.txt has no [extra: covered tmpfs] section");
  } else if (Lines(covered) == *want) {
    r.Note("ok: live: the covered tmpfs under /stack holds" + covered.substr(1, covered.size() - 2));
  } else {
    for (const std::string& l : *want) r.Fail("[extra: covered tmpfs] expected: " + l);
    for (const std::string& l : Lines(covered)) r.Fail("[extra: covered tmpfs] actual:   " + l);
  }
  // The checks left the mounts as the restore made them.
  Sections now = ParseSections(SnapshotTree(root));
  CompareLines(r, "[mountinfo] after the live checks (against the restored tree's before them)", *t.restored.Find("[mountinfo]"),
               *now.Find("[mountinfo]"));
}

// ---------------------------------------------------------------- autofs-master

void AutofsLive(Tree& t, Report& r) {
  // A lookup of /auto/beta from a task of the tree's PID and mount
  // namespaces in none of its groups (the kernel refuses lookups from
  // outside the master's PID namespace): master-a, whose memory was
  // restored, reads the packet and mounts fx-key-beta there.
  auto t0 = Clock::now();
  InTree lookup = RunInTree(
      t.root, true,
      [] {
        struct stat s {};
        if (::stat("/auto/beta/key.txt", &s) != 0) return Errno("stat /auto/beta/key.txt");
        return ReadWhole("/auto/beta/key.txt").value_or("<unreadable>");
      },
      10);
  double took = Since(t0);
  bool mounted = false;
  for (const std::string& l : Lines(ReadWhole("/proc/" + Str(t.root) + "/mountinfo").value_or(""))) {
    mounted |= l.find(" /auto/beta ") != std::string::npos && l.find(" - tmpfs fx-key-beta ") != std::string::npos;
  }
  if (lookup.ok && lookup.text == "served by master-a for key beta\n" && mounted) {
    r.Note("ok: live: the restored master-a served /auto/beta in " + Secs(took) + " (fx-key-beta mounted, key.txt '" +
           lookup.text.substr(0, lookup.text.size() - 1) + "\\n')");
  } else {
    r.Fail("live: lookup of /auto/beta" + std::string(lookup.timed_out ? " timed out after 10 s" : "") + ": '" + lookup.text +
           "', fx-key-beta " + (mounted ? "mounted" : "not mounted"));
  }
  // master-a is the restored process, not one that exec'd its program
  // again (an exec renames it and restore-orch's exec adds
  // RESTORE_ORCH_RESTORED=1 to its environment); the start times of all
  // tasks are compared at the end.
  pid_t a = t.pids.count(2) ? t.pids[2] : 0;
  std::string comm = ReadWhole("/proc/" + Str(a) + "/comm").value_or("");
  std::string env = ReadWhole("/proc/" + Str(a) + "/environ").value_or("");
  while (!env.empty() && env.back() == '\0') env.pop_back();
  std::replace(env.begin(), env.end(), '\0', ' ');
  if (comm != "master-a\n" || env.find("RESTORE_ORCH_RESTORED") != std::string::npos) {
    r.Fail("live: task 2 is '" + comm + "' with environment '" + env + "'");
  } else {
    r.Note("ok: live: task 2 is still master-a, environment '" + env + "' (as it was started: not re-executed)");
  }
  // Nothing else changed: the mounts are the restored ones and the new key,
  // /direct still owned by master-b (3) through its read end (fd 3), /auto
  // by master-a with both ends.
  Sections now = ParseSections(SnapshotTree(t.root));
  std::vector<std::string> want = *t.restored.Find("[mountinfo]");
  want.push_back("/auto/beta depth=0 parent=/auto root=/ rw,relatime - - tmpfs fx-key-beta rw,size=64k");
  std::sort(want.begin(), want.end());
  CompareLines(r, "[mountinfo] after the lookup (against the restored tree's before it, and the new key)", want,
               *now.Find("[mountinfo]"));
  const std::vector<std::string>* autofs = now.Find("[autofs]");
  if (autofs == nullptr) {
    r.Fail("[autofs] after the lookup: no AutoFS mount left");
    return;
  }
  CompareLines(r, "[autofs] after the lookup (against the restored tree's before it)", *t.restored.Find("[autofs]"), *autofs);
  bool direct = false, indirect = false;
  for (const std::string& l : *autofs) {
    direct |= l.rfind("/direct direct timeout=45 owner=3 leader=yes holds=3r write-end=closed ", 0) == 0;
    indirect |= l.rfind("/auto indirect timeout=120 owner=2 leader=yes holds=3r,4w write-end=kept at fd=4 ", 0) == 0;
  }
  if (direct && indirect) {
    r.Note("ok: live: after the lookup /direct is still owned by master-b through its read end 3, /auto by master-a (3r, 4w)");
  } else {
    for (const std::string& l : *autofs) r.Fail("live: [autofs] after the lookup: " + l);
  }
}

// ---------------------------------------------------------------- memory-counter

// counter.c's record: "counter=%020llu cookie=%016llx usr2=%02d", spaces to
// 63 bytes, '\n'.
struct Record {
  bool ok = false;
  unsigned long long counter = 0;
  std::string cookie, usr2, raw;
};
Record ParseRecord(const std::string& raw) {
  Record rec;
  rec.raw = raw;
  static const std::regex kRe("counter=([0-9]{20}) cookie=([0-9a-f]{16}) usr2=([0-9]{2}) *\n");
  std::smatch m;
  if (raw.size() == 64 && std::regex_match(raw, m, kRe)) {
    rec.ok = true;
    rec.counter = std::stoull(m[1]);
    rec.cookie = m[2];
    rec.usr2 = m[3];
  }
  return rec;
}

struct Region {
  uint64_t addr = 0, cookie = 0, counter = 0, echo = 0;
};

// Every struct region of counter.c in the task's memory, by magic, read
// through /proc/PID/mem.
std::map<std::string, std::vector<Region>> ScanRegions(pid_t pid) {
  static const char* kMagics[] = {"FXANON01", "FXHEAP01", "FXSTCK01", "FXSHRD01", "FXCHLD01"};
  std::map<std::string, std::vector<Region>> out;
  int mem = ::open(("/proc/" + Str(pid) + "/mem").c_str(), O_RDONLY | O_CLOEXEC);
  if (mem < 0) return out;
  for (const std::string& l : Lines(ReadWhole("/proc/" + Str(pid) + "/maps").value_or(""))) {
    unsigned long long start = 0, end = 0;
    char perms[8] = {};
    if (std::sscanf(l.c_str(), "%llx-%llx %7s", &start, &end, perms) != 3 || perms[0] != 'r') continue;
    if (l.find("[vvar") != std::string::npos || l.find("[vsyscall]") != std::string::npos) continue;
    if (end - start > (64ull << 20)) continue;
    std::string buf(end - start, '\0');
    ssize_t n = ::pread(mem, buf.data(), buf.size(), static_cast<off_t>(start));
    if (n <= 0) continue;
    buf.resize(static_cast<size_t>(n));
    for (const char* magic : kMagics) {
      for (size_t at = buf.find(magic); at != std::string::npos; at = buf.find(magic, at + 1)) {
        if (at + 32 > buf.size()) continue;
        Region reg;
        reg.addr = start + at;
        std::memcpy(&reg.cookie, buf.data() + at + 8, 8);
        std::memcpy(&reg.counter, buf.data() + at + 16, 8);
        std::memcpy(&reg.echo, buf.data() + at + 24, 8);
        out[magic].push_back(reg);
      }
    }
  }
  ::close(mem);
  return out;
}

std::string Hex16(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

void MemoryCounterLive(Tree& t, Report& r) {
  // What the dump held: [extra: memory at dump time] (scanned out of the
  // pages images) and [extra: /counter.txt just before the dump].
  std::map<std::string, std::string> dumped_line;
  for (const std::string& name : t.expected.names) {
    if (name.rfind("[extra: memory at dump time", 0) != 0) continue;
    for (const std::string& l : *t.expected.Find(name)) dumped_line[l.substr(0, 8)] = l;
  }
  static const std::regex kDumped(".* cookie=([0-9a-f]{16}) counter=([0-9]+) echo=([0-9]+)$");
  std::smatch m;
  std::string anon = dumped_line["FXANON01"];
  if (!std::regex_match(anon, m, kDumped)) {
    r.Fail("expected.txt: no FXANON01 line in [extra: memory at dump time]");
    return;
  }
  const std::string cookie = m[1];
  const unsigned long long dumped = std::stoull(m[2]);
  Record before;
  for (const std::string& name : t.expected.names) {
    if (name.rfind("[extra: /counter.txt", 0) == 0 && !t.expected.Find(name)->empty()) {
      before = ParseRecord(t.expected.Find(name)->front().substr(2) + "\n");
    }
  }
  if (!before.ok || before.cookie != cookie || before.counter != dumped) {
    r.Fail("expected.txt: the record before the dump '" + before.raw + "' does not agree with FXANON01 (" + cookie + ", " +
           Str(static_cast<long long>(dumped)) + ")");
    return;
  }
  // The brief's values: 14, 1dab8daeeb4c1382, usr2=01.
  r.Note("dumped: counter " + Str(static_cast<long long>(dumped)) + " cookie " + cookie + " usr2=" + before.usr2);

  // The record goes on counting from the dumped value, with the cookie and
  // usr2 of the dump, within a couple of seconds.
  const std::string path = "/proc/" + Str(t.root) + "/root/counter.txt";
  Record first = ParseRecord(ReadWhole(path).value_or(""));
  const double first_at = Since(t.restored_at);
  Record last = first;
  auto t0 = Clock::now();
  while (Since(t0) < 2.0 && (!last.ok || last.counter <= first.counter + 5)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    last = ParseRecord(ReadWhole(path).value_or(""));
  }
  // From the dumped value: one tick every 100 ms since the hand-over (and
  // a few for slack), not from wherever else. A read before the first tick
  // after the hand-over still shows the dumped value itself.
  const unsigned long long most = dumped + static_cast<unsigned long long>(first_at * 10) + 3;
  if (first.ok && last.ok && first.cookie == cookie && last.cookie == cookie && first.usr2 == before.usr2 &&
      last.usr2 == before.usr2 && first.counter >= dumped && first.counter <= most && last.counter > first.counter) {
    r.Note("ok: live: /counter.txt goes on from " + Str(static_cast<long long>(dumped)) + ": " +
           Str(static_cast<long long>(first.counter)) + " then " + Str(static_cast<long long>(last.counter)) + " " +
           Secs(Since(t0)) + " later, cookie " + cookie + ", usr2=" + last.usr2);
  } else {
    r.Fail("live: /counter.txt: dumped counter " + Str(static_cast<long long>(dumped)) + " cookie " + cookie + " usr2=" +
           before.usr2 + " (at most " + Str(static_cast<long long>(most)) + " by now); read '" + first.raw.substr(0, 63) + "', then " + Secs(Since(t0)) + " later '" + last.raw.substr(0, 63) +
           "'");
  }

  // The memory itself: pid 1 has the four regions (anon, heap, stack,
  // shared), equal, with the cookie; pid 2 its own FXCHLD01 and the shared
  // page (it wiped its copies of the private ones); the shared page's echo
  // and the child's own region follow the counter. Twice, half a second
  // apart: both go on.
  if (!t.pids.count(1) || !t.pids.count(2)) {
    r.Fail("live: the tree has no tasks 1 and 2");
    return;
  }
  struct Seen {
    uint64_t counter = 0, echo = 0, child = 0;
    bool ok = false;
  };
  auto look = [&](int round) {
    Seen s;
    for (int attempt = 0; attempt < 5; ++attempt) {  // the regions are bumped one after another
      auto p1 = ScanRegions(t.pids[1]);
      auto p2 = ScanRegions(t.pids[2]);
      std::vector<std::string> bad;
      for (const char* magic : {"FXANON01", "FXHEAP01", "FXSTCK01", "FXSHRD01"}) {
        if (p1[magic].size() != 1) bad.push_back(std::string(magic) + " found " + Str(static_cast<long long>(p1[magic].size())) + " times in task 1");
      }
      if (p1.count("FXCHLD01")) bad.push_back("FXCHLD01 in task 1");
      for (const char* magic : {"FXSHRD01", "FXCHLD01"}) {
        if (p2[magic].size() != 1) bad.push_back(std::string(magic) + " found " + Str(static_cast<long long>(p2[magic].size())) + " times in task 2");
      }
      for (const char* magic : {"FXANON01", "FXHEAP01", "FXSTCK01"}) {
        if (p2.count(magic)) bad.push_back(std::string(magic) + " in task 2 (it wiped its copy)");
      }
      if (bad.empty()) {
        const Region& a = p1["FXANON01"][0];
        const Region& sh = p1["FXSHRD01"][0];
        const Region& sh2 = p2["FXSHRD01"][0];
        const Region& ch = p2["FXCHLD01"][0];
        for (const auto& [what, reg] : std::initializer_list<std::pair<const char*, const Region*>>{
                 {"FXANON01", &a}, {"FXHEAP01", &p1["FXHEAP01"][0]}, {"FXSTCK01", &p1["FXSTCK01"][0]}, {"FXSHRD01", &sh}, {"FXCHLD01", &ch}}) {
          if (Hex16(reg->cookie) != cookie) bad.push_back(std::string(what) + " cookie " + Hex16(reg->cookie));
        }
        if (p1["FXHEAP01"][0].counter != a.counter || p1["FXSTCK01"][0].counter != a.counter || sh.counter != a.counter) {
          bad.push_back("task 1's counters differ: anon " + Str(static_cast<long long>(a.counter)) + " heap " +
                        Str(static_cast<long long>(p1["FXHEAP01"][0].counter)) + " stack " +
                        Str(static_cast<long long>(p1["FXSTCK01"][0].counter)) + " shared " + Str(static_cast<long long>(sh.counter)));
        }
        if (sh2.counter != sh.counter || sh2.echo != sh.echo) bad.push_back("the shared page differs between tasks 1 and 2");
        if (sh.echo + 2 < sh.counter || sh.echo > sh.counter) {
          bad.push_back("shared echo " + Str(static_cast<long long>(sh.echo)) + " does not follow counter " + Str(static_cast<long long>(sh.counter)));
        }
        if (ch.counter != ch.echo || ch.counter + 2 < sh.counter || ch.counter > sh.counter) {
          bad.push_back("task 2's FXCHLD01 counter " + Str(static_cast<long long>(ch.counter)) + " echo " +
                        Str(static_cast<long long>(ch.echo)) + " does not follow the shared counter " + Str(static_cast<long long>(sh.counter)));
        }
        s = {a.counter, sh.echo, ch.counter, bad.empty()};
      }
      if (bad.empty()) return s;
      if (attempt == 4) {
        for (const std::string& b : bad) r.Fail("live: memory (round " + Str(round) + "): " + b);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
    }
    return s;
  };
  Seen a = look(1);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  Seen b = look(2);
  if (a.ok && b.ok) {
    if (a.counter > dumped && b.counter > a.counter && b.echo > a.echo && b.child > a.child) {
      r.Note("ok: live: memory: the counter in anon, heap, stack and shared memory " + Str(static_cast<long long>(a.counter)) +
             " then " + Str(static_cast<long long>(b.counter)) + ", the shared echo " + Str(static_cast<long long>(a.echo)) +
             " then " + Str(static_cast<long long>(b.echo)) + ", echo's own region " + Str(static_cast<long long>(a.child)) +
             " then " + Str(static_cast<long long>(b.child)) + ", cookie " + cookie + " everywhere");
    } else {
      r.Fail("live: memory does not go on: counter " + Str(static_cast<long long>(a.counter)) + " -> " +
             Str(static_cast<long long>(b.counter)) + ", echo " + Str(static_cast<long long>(a.echo)) + " -> " +
             Str(static_cast<long long>(b.echo)) + ", child " + Str(static_cast<long long>(a.child)) + " -> " +
             Str(static_cast<long long>(b.child)) + " (dumped " + Str(static_cast<long long>(dumped)) + ")");
    }
  }
}

// /counter.txt is rewritten every 100 ms by the tree (README: "Nothing in
// the tree writes into its root, except memory-counter, which rewrites
// /counter.txt in place (same 64-byte size)"): its md5 changes; its type,
// mode and size are still compared, its contents are checked live above.
std::string CounterAllowance(const std::string& section, const std::string& line) {
  static const std::regex kCounter("^  /counter.txt reg 0o644 size=64 md5=[0-9a-f]{32}$");
  if (section == "[tmpfs contents]" && std::regex_match(line, kCounter)) {
    return "  /counter.txt reg 0o644 size=64 md5=(rewritten every 100 ms: checked live)";
  }
  return line;
}

TEST(CriuFixtures, TreeSessions) { RUN_FIXTURE((FixtureSpec{"tree-sessions", nullptr, TreeSessionsLive})); }

TEST(CriuFixtures, MountsSharing) { RUN_FIXTURE((FixtureSpec{"mounts-sharing", nullptr, MountsSharingLive})); }

TEST(CriuFixtures, AutofsMaster) {
  struct stat s {};
  if (::stat("/dev/autofs", &s) != 0 || !S_ISCHR(s.st_mode)) GTEST_SKIP() << "no /dev/autofs on this machine";
  RUN_FIXTURE((FixtureSpec{"autofs-master", nullptr, AutofsLive}));
}

TEST(CriuFixtures, MemoryCounter) { RUN_FIXTURE((FixtureSpec{"memory-counter", CounterAllowance, MemoryCounterLive})); }

}  // namespace
}  // namespace ro::test
