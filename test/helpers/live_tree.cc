#include "test/helpers/live_tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <sstream>

#include "sys/clone.h"
#include "sys/proc.h"

namespace ro::test {

std::string Str(long v) { return std::to_string(v); }

std::string ReadFile(const std::string& path) {
  auto text = sys::ReadProcFile(path);
  return text.ok() ? *text : "";
}

void WriteFile(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  MUST(fd >= 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
  ::close(fd);
}

void ExecSleep() {
  ::execl("/bin/sleep", "sleep", "1000", nullptr);
  ::_exit(127);
}

void MoveFd(int fd, int to) {
  if (fd == to) return;
  MUST(::dup2(fd, to) == to);
  ::close(fd);
}

pid_t StartTree(bool new_pid, bool new_mnt, const std::function<void()>& init, bool own_session) {
  sys::CloneSpec spec;
  spec.flags = (new_pid ? CLONE_NEWPID : 0) | (new_mnt ? CLONE_NEWNS : 0);
  spec.want_pidfd = false;
  auto cloned = sys::Clone3(spec);
  if (!cloned.ok()) return -1;
  if (cloned->pid == 0) {
    ::close_range(3, ~0u, 0);
    if (own_session) MUST(::setsid() > 0);
    int null = ::open("/dev/null", O_RDWR);
    for (int fd = 0; fd < 3; ++fd) ::dup2(null, fd);
    if (null > 2) ::close(null);
    init();
    ::_exit(0);
  }
  return cloned->pid;
}

std::vector<pid_t> TreeOf(pid_t root) {
  std::vector<pid_t> out{root};
  for (size_t i = 0; i < out.size(); ++i) {
    std::string task = "/proc/" + Str(out[i]) + "/task/";
    if (DIR* d = ::opendir(task.c_str())) {
      while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        std::istringstream in(ReadFile(task + e->d_name + "/children"));
        for (pid_t k; in >> k;) out.push_back(k);
      }
      ::closedir(d);
    }
  }
  return out;
}

char StateOf(pid_t pid) {
  auto st = sys::ParseProcStat(ReadFile("/proc/" + Str(pid) + "/stat"));
  return st.ok() ? st->state : '?';
}

bool RunsOn(pid_t pid) {
  char c = StateOf(pid);
  return c == 'R' || c == 'S' || c == 'D';
}

bool WaitSettled(pid_t root, size_t count, const std::set<std::string>& exes) {
  for (int i = 0; i < 1000; ++i) {
    std::vector<pid_t> tree = TreeOf(root);
    bool settled = tree.size() == count;
    for (pid_t p : tree) {
      if (!settled || exes.empty()) break;
      if (StateOf(p) == 'Z') continue;
      auto link = sys::ReadProcLink("/proc/" + Str(p) + "/exe");
      // In its sleep, not still loading its libraries after the exec (a
      // dump then would restore maps that go on changing).
      settled = link.ok() && exes.count(*link) != 0 && StateOf(p) == 'S';
    }
    if (settled) return true;
    ::usleep(10000);
  }
  return false;
}

RunResult Dump(pid_t root, const std::string& dir, std::vector<std::string> extra) {
  std::vector<std::string> argv = {RestoreOrch(), "dump", "--tree", Str(root), "--images", dir};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return RunCommand(argv);
}

std::string RestoreAndVerify(const std::string& dir, pid_t& restored, const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {RestoreOrch(), "--images", dir, "--detach", "--ext-mount-map", "auto"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  RunResult r = RunCommand(argv);
  EXPECT_OR_RETURN(r.status == 0, "restore: " + r.err);
  restored = static_cast<pid_t>(std::atoi(r.out.c_str()));
  RunResult v = RunCommand({RestoreOrch(), "verify", "--images", dir, "--pid", Str(restored)});
  EXPECT_OR_RETURN(v.status == 0, "verify: " + v.out + v.err);
  return "";
}

std::string RefusedMounts(const std::function<void(const std::string&)>& build, const std::string& want, bool after_work) {
  TempDir work;
  const std::string w = work.path();
  pid_t root = StartTree(true, true, [&] {
    MUST(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0);
    build(w);
    ExecSleep();
  });
  EXPECT_OR_RETURN(root > 0 && WaitSettled(root, 1), "the tree did not settle");
  RunResult d = Dump(root, work.File("images"));
  bool running = RunsOn(root);
  KillTree(root);
  EXPECT_OR_RETURN(d.status == 3, "exit " + Str(d.status) + ": " + d.err);
  EXPECT_OR_RETURN(d.err.find((after_work ? w : "") + want) != std::string::npos, d.err);
  EXPECT_OR_RETURN(std::count(d.err.begin(), d.err.end(), '\n') == 1, "one line: " + d.err);
  EXPECT_OR_RETURN(running, "the tree was not left running");
  EXPECT_OR_RETURN(::access(work.File("images").c_str(), F_OK) != 0, "the image directory was left behind");
  return std::string();
}

}  // namespace ro::test
