#include "test/helpers/sandbox.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "sys/mountinfo.h"

namespace ro::test {
namespace {

std::string ReadAll(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

void WriteAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
}

std::string Errno(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

}  // namespace

std::string InSandbox(const std::function<std::string()>& body) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return Errno("pipe2");
  pid_t child = ::fork();
  if (child < 0) return Errno("fork");
  if (child == 0) {
    ::close(p[0]);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::unshare(CLONE_NEWNS | CLONE_NEWPID) != 0) {
      WriteAll(p[1], Errno("unshare(CLONE_NEWNS|CLONE_NEWPID)"));
      _exit(1);
    }
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      WriteAll(p[1], Errno("mount(/, MS_REC|MS_PRIVATE)"));
      _exit(1);
    }
    pid_t init = ::fork();
    if (init == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
        WriteAll(p[1], Errno("mount(proc)"));
        _exit(1);
      }
      std::string failure;
      try {
        failure = body();
      } catch (const std::exception& e) {
        failure = std::string("exception: ") + e.what();
      }
      WriteAll(p[1], failure);
      _exit(failure.empty() ? 0 : 1);
    }
    int status = 0;
    ::waitpid(init, &status, 0);
    _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 2);
  }
  ::close(p[1]);
  std::string failure = ReadAll(p[0]);
  ::close(p[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  if (failure.empty() && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) failure = "sandbox exited abnormally";
  return failure;
}

std::vector<sys::ProcStat> ReadTree(pid_t init) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return {};
  pid_t child = ::fork();
  if (child == 0) {
    ::close(p[0]);
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, init, 0));
    if (pidfd < 0 || ::setns(pidfd, CLONE_NEWPID) != 0) _exit(1);
    pid_t reader = ::fork();  // the first child enters the namespace
    if (reader == 0) {
      if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
          ::mount("proc", "/proc", "proc", 0, nullptr) != 0) {
        _exit(1);
      }
      std::string out;
      pid_t self = ::getpid();
      DIR* d = ::opendir("/proc");
      while (dirent* e = d ? ::readdir(d) : nullptr) {
        pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
        if (pid <= 0 || pid == self) continue;
        int fd = ::open((std::string("/proc/") + e->d_name + "/stat").c_str(), O_RDONLY);
        if (fd < 0) continue;
        std::string line = ReadAll(fd);
        ::close(fd);
        if (!line.empty() && line.back() != '\n') line += '\n';
        out += line;
      }
      WriteAll(p[1], out);
      _exit(0);
    }
    int status = 0;
    ::waitpid(reader, &status, 0);
    _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
  }
  ::close(p[1]);
  std::string text = ReadAll(p[0]);
  ::close(p[0]);
  ::waitpid(child, nullptr, 0);
  std::vector<sys::ProcStat> out;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    auto st = sys::ParseProcStat(line);
    if (st.ok()) out.push_back(*st);
  }
  return out;
}

std::vector<std::string> DevShm() {
  std::vector<std::string> names;
  if (DIR* d = ::opendir("/dev/shm")) {
    while (dirent* e = ::readdir(d)) names.push_back(e->d_name);
    ::closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

int OtherProcesses() {
  // Killed processes take a while to die and be reaped (many of them,
  // on a loaded machine, under ASan): up to 3 s for the count to reach 0.
  int n = 0;
  for (int i = 0; i < 1500; ++i) {
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    n = 0;
    if (DIR* d = ::opendir("/proc")) {
      while (dirent* e = ::readdir(d)) n += std::atoi(e->d_name) > 1;
      ::closedir(d);
    }
    if (n == 0 && i >= 50) return 0;  // and no straggler for the first 100 ms
    ::usleep(2000);
  }
  return n;
}

std::vector<std::string> MountTable() {
  std::vector<std::string> lines;
  auto mounts = sys::ReadMountInfo();
  if (mounts.ok()) {
    for (const auto& m : *mounts) lines.push_back(std::to_string(m.mnt_id) + " " + m.mountpoint + " " + m.fstype);
  }
  return lines;
}

}  // namespace ro::test
