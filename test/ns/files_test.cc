// Restores fd tables for real and compares every task's /proc/PID/fd and
// fdinfo, and which fds share one open file description (kcmp), with the
// images.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/kcmp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "test/helpers/sandbox.h"
#include "test/helpers/test_util.h"
#include "test/helpers/tree_images.h"

namespace ro::test {
namespace {

struct Restored {
  pid_t root = 0;                   // as the sandbox sees it
  std::map<pid_t, pid_t> outer;     // image pid -> sandbox pid
  std::string error;
};

std::string ReadFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string out;
  char buf[65536];
  for (ssize_t n; (n = ::read(fd, buf, sizeof(buf))) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

// Inner pid -> sandbox pid, from NSpid of every process in the sandbox.
std::map<pid_t, pid_t> OuterPids() {
  std::map<pid_t, pid_t> out;
  DIR* d = ::opendir("/proc");
  while (dirent* e = d ? ::readdir(d) : nullptr) {
    int pid = std::atoi(e->d_name);
    if (pid <= 1) continue;
    std::string status = ReadFile(std::string("/proc/") + e->d_name + "/status");
    size_t at = status.find("NSpid:");
    if (at == std::string::npos) continue;
    std::istringstream in(status.substr(at + 6, status.find('\n', at) - at - 6));
    std::vector<pid_t> ids;
    for (pid_t v; in >> v;) ids.push_back(v);
    if (ids.size() == 2) out[ids[1]] = ids[0];
  }
  if (d) ::closedir(d);
  return out;
}

Restored RestoreDetached(const ImageSet& images) {
  Restored r;
  TempDir dir;
  if (Status s = images::WriteImageDir(dir.path(), images); !s.ok()) {
    r.error = s.error().ToString();
    return r;
  }
  RunResult run = RunCommand({RestoreOrch(), "--images", dir.path(), "--detach"});
  if (run.status != 0) {
    r.error = "restore failed (" + std::to_string(run.status) + "): " + run.err;
    return r;
  }
  r.root = static_cast<pid_t>(std::atoi(run.out.c_str()));
  r.outer = OuterPids();
  return r;
}

std::set<int> FdNumbers(pid_t pid) {
  std::set<int> fds;
  DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  while (dirent* e = d ? ::readdir(d) : nullptr) {
    if (e->d_name[0] != '.') fds.insert(std::atoi(e->d_name));
  }
  if (d) ::closedir(d);
  return fds;
}

struct FdInfo {
  std::string target;
  unsigned flags = 0;
  long long pos = 0;
};

FdInfo Inspect(pid_t pid, int fd) {
  FdInfo info;
  std::string base = "/proc/" + std::to_string(pid);
  char buf[4096];
  ssize_t n = ::readlink((base + "/fd/" + std::to_string(fd)).c_str(), buf, sizeof(buf) - 1);
  if (n > 0) info.target.assign(buf, static_cast<size_t>(n));
  std::string text = ReadFile(base + "/fdinfo/" + std::to_string(fd));
  size_t p = text.find("pos:");
  if (p != std::string::npos) info.pos = std::atoll(text.c_str() + p + 4);
  size_t f = text.find("flags:");
  if (f != std::string::npos) info.flags = static_cast<unsigned>(std::strtoul(text.c_str() + f + 6, nullptr, 8));
  return info;
}

bool SameDescription(pid_t a, int fa, pid_t b, int fb) {
  return ::syscall(SYS_kcmp, a, b, KCMP_FILE, fa, fb) == 0;
}

// Every task's fd numbers, targets, flags, positions and shared
// descriptions against the specs.
std::string CompareFds(const Restored& r, const std::vector<TaskSpec>& tasks, const std::vector<FileSpec>& files) {
  std::ostringstream p;
  std::map<uint32_t, const FileSpec*> by_id;
  for (const auto& f : files) by_id[f.id] = &f;
  std::map<uint32_t, std::pair<pid_t, int>> first;  // file id -> a (pid, fd) holding it
  std::map<uint32_t, std::string> pipe_target;      // pipe_id -> "pipe:[ino]"
  for (const TaskSpec& t : tasks) {
    auto it = r.outer.find(t.pid);
    if (it == r.outer.end()) {
      p << "task " << t.pid << " not found\n";
      continue;
    }
    pid_t pid = it->second;
    std::set<int> want;
    for (const FdSpec& fd : t.fds) want.insert(fd.fd);
    std::set<int> got = FdNumbers(pid);
    if (got != want) {
      p << "task " << t.pid << " has fds {";
      for (int fd : got) p << " " << fd;
      p << " }, images say {";
      for (int fd : want) p << " " << fd;
      p << " }\n";
    }
    for (const FdSpec& fd : t.fds) {
      const FileSpec& f = *by_id.at(fd.file);
      FdInfo info = Inspect(pid, fd.fd);
      std::string where = "task " + std::to_string(t.pid) + " fd " + std::to_string(fd.fd) + ": ";
      if (f.kind == FileSpec::kPipe) {
        auto [at, fresh] = pipe_target.emplace(f.pipe_id, info.target);
        if (info.target.rfind("pipe:[", 0) != 0 || at->second != info.target) p << where << "is " << info.target << "\n";
      } else if (info.target != f.path) {
        p << where << "is " << info.target << ", not " << f.path << "\n";
      }
      unsigned mask = O_ACCMODE | O_NONBLOCK | O_APPEND;
      if ((info.flags & mask) != (f.flags & mask)) {
        p << where << "flags 0" << std::oct << info.flags << ", want 0" << (f.flags & mask) << std::dec << "\n";
      }
      if (((info.flags & O_CLOEXEC) != 0) != fd.cloexec) p << where << "close-on-exec is wrong\n";
      if (f.kind == FileSpec::kRegular && info.pos != static_cast<long long>(f.pos)) p << where << "pos " << info.pos << "\n";
      auto [at, fresh] = first.emplace(fd.file, std::make_pair(pid, fd.fd));
      if (!fresh && !SameDescription(at->second.first, at->second.second, pid, fd.fd)) {
        p << where << "does not share the description of file " << fd.file << "\n";
      }
    }
  }
  // Different file ids are different descriptions.
  for (auto a = first.begin(); a != first.end(); ++a) {
    for (auto b = std::next(a); b != first.end(); ++b) {
      if (SameDescription(a->second.first, a->second.second, b->second.first, b->second.second)) {
        p << "files " << a->first << " and " << b->first << " share one description\n";
      }
    }
  }
  return p.str();
}

// Reads a pipe through another description of it.
std::string Drain(pid_t pid, int fd) {
  int r = ::open(("/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd)).c_str(), O_RDONLY | O_NONBLOCK);
  if (r < 0) return "<cannot open>";
  std::string out;
  char buf[65536];
  for (ssize_t n; (n = ::read(r, buf, sizeof(buf))) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(r);
  return out;
}

TEST(Fds, TablesFlagsPositionsAndSharedDescriptions) {
  EXPECT_EQ(InSandbox([] {
              TempDir work;
              work.Write("file", "0123456789");
              std::string fifo = work.File("fifo");
              if (::mkfifo(fifo.c_str(), 0600) != 0) return std::string("mkfifo failed");
              std::vector<FileSpec> files = {
                  {.kind = FileSpec::kRegular, .id = 1, .flags = O_RDWR, .path = "/dev/null"},
                  {.kind = FileSpec::kPipe, .id = 10, .pipe_id = 100, .flags = O_RDONLY},
                  {.kind = FileSpec::kPipe, .id = 11, .pipe_id = 100, .flags = O_WRONLY},
                  {.kind = FileSpec::kPipe, .id = 12, .pipe_id = 100, .flags = O_RDONLY | O_NONBLOCK},
                  {.kind = FileSpec::kRegular, .id = 20, .flags = O_RDWR | O_APPEND, .path = work.File("file"), .pos = 3},
                  {.kind = FileSpec::kFifo, .id = 31, .pipe_id = 200, .flags = O_RDONLY | O_NONBLOCK, .path = fifo},
              };
              std::vector<TaskSpec> tasks = {
                  {.pid = 1, .ppid = 0, .pgid = 1, .sid = 1, .fds = {{0, 1}, {1, 1}, {2, 1}, {11, 10}}},
                  {.pid = 2, .ppid = 1, .pgid = 1, .sid = 1, .fds = {{11, 10}, {1500, 11, true}}},
                  {.pid = 3, .ppid = 1, .pgid = 1, .sid = 1, .fds = {{7, 20, true}, {8, 31}}},
                  {.pid = 4, .ppid = 2, .pgid = 1, .sid = 1, .fds = {{5, 12}}},
              };
              std::vector<PipeDataSpec> data = {{.pipe_id = 100, .capacity = 1 << 20, .data = "hello"},
                                                {.pipe_id = 200, .fifo = true, .capacity = 65536, .data = "abc"}};
              Restored r = RestoreDetached(TreeImages(tasks, false, files, data));
              if (!r.error.empty()) return r.error;
              std::string p = CompareFds(r, tasks, files);
              int w = ::open(("/proc/" + std::to_string(r.outer[2]) + "/fd/1500").c_str(), O_WRONLY);
              if (w < 0 || ::fcntl(w, F_GETPIPE_SZ) != (1 << 20)) p += "pipe 100 lost its 1 MiB capacity\n";
              if (w >= 0) ::close(w);
              if (std::string got = Drain(r.outer[4], 5); got != "hello") p += "pipe 100 holds '" + got + "'\n";
              if (std::string got = Drain(r.outer[3], 8); got != "abc") p += "FIFO holds '" + got + "'\n";
              KillTree(r.root);
              return p;
            }),
            "");
}

TEST(Fds, FullMegabytePipesKeepTheirDataAndSize) {
  EXPECT_EQ(InSandbox([] {
              std::string data(1 << 20, '\0');
              std::mt19937 rng(7);
              for (char& c : data) c = static_cast<char>(rng());
              std::vector<FileSpec> files = {
                  {.kind = FileSpec::kPipe, .id = 1, .pipe_id = 1, .flags = O_RDONLY},
                  {.kind = FileSpec::kPipe, .id = 2, .pipe_id = 1, .flags = O_WRONLY | O_NONBLOCK},
                  {.kind = FileSpec::kPipe, .id = 3, .pipe_id = 2, .flags = O_RDONLY | O_NONBLOCK},
                  {.kind = FileSpec::kPipe, .id = 4, .pipe_id = 2, .flags = O_WRONLY | O_NONBLOCK},
              };
              std::vector<TaskSpec> tasks = {{.pid = 1, .ppid = 0, .pgid = 1, .sid = 1, .fds = {{3, 1}, {4, 2}, {5, 3}, {6, 4}}}};
              std::vector<PipeDataSpec> pd = {{.pipe_id = 1, .capacity = 1 << 20, .data = data},
                                              {.pipe_id = 2, .capacity = 1 << 20, .data = ""}};
              Restored r = RestoreDetached(TreeImages(tasks, false, files, pd));
              if (!r.error.empty()) return r.error;
              std::string p = CompareFds(r, tasks, files);
              for (int fd : {4, 6}) {
                int w = ::open(("/proc/" + std::to_string(r.outer[1]) + "/fd/" + std::to_string(fd)).c_str(), O_WRONLY);
                if (::fcntl(w, F_GETPIPE_SZ) != (1 << 20)) p += "fd " + std::to_string(fd) + ": capacity is not 1 MiB\n";
                ::close(w);
              }
              if (Drain(r.outer[1], 3) != data) p += "the full pipe's data changed\n";
              KillTree(r.root);
              return p;
            }),
            "");
}

TEST(Fds, ThousandFdsInOneTask) {
  EXPECT_EQ(InSandbox([] {
              std::vector<FileSpec> files;
              TaskSpec root{.pid = 1, .ppid = 0, .pgid = 1, .sid = 1};
              for (uint32_t i = 0; i < 500; ++i) {
                files.push_back({.kind = FileSpec::kPipe, .id = 2 * i + 1, .pipe_id = i + 1, .flags = O_RDONLY});
                files.push_back({.kind = FileSpec::kPipe, .id = 2 * i + 2, .pipe_id = i + 1, .flags = O_WRONLY});
                root.fds.push_back({static_cast<int>(3 + 2 * i), 2 * i + 1});
                root.fds.push_back({static_cast<int>(4 + 2 * i), 2 * i + 2, i % 2 == 0});
              }
              std::vector<TaskSpec> tasks{root};
              Restored r = RestoreDetached(TreeImages(tasks, false, files));
              if (!r.error.empty()) return r.error;
              std::string p = CompareFds(r, tasks, files);
              KillTree(r.root);
              return p;
            }),
            "");
}

TEST(Fds, OnePipeEndSharedByAHundredTasks) {
  EXPECT_EQ(InSandbox([] {
              std::vector<FileSpec> files = {{.kind = FileSpec::kPipe, .id = 1, .pipe_id = 9, .flags = O_RDONLY},
                                             {.kind = FileSpec::kPipe, .id = 2, .pipe_id = 9, .flags = O_WRONLY}};
              std::vector<TaskSpec> tasks = Fan(100);
              tasks[0].fds = {{8, 2}};
              for (size_t i = 1; i < tasks.size(); ++i) tasks[i].fds = {{7, 1}};
              Restored r = RestoreDetached(TreeImages(tasks, false, files));
              if (!r.error.empty()) return r.error;
              std::string p = CompareFds(r, tasks, files);
              KillTree(r.root);
              return p;
            }),
            "");
}

TEST(Fds, CrossedPipesPingPong) {
  EXPECT_EQ(InSandbox([] {
              // pipe 1 carries 1 -> 2, pipe 2 carries 2 -> 1; each task writes
              // fd 11 and reads fd 12, as in CRIU's pipe00.
              std::vector<FileSpec> files = {
                  {.kind = FileSpec::kPipe, .id = 1, .pipe_id = 1, .flags = O_RDONLY},
                  {.kind = FileSpec::kPipe, .id = 2, .pipe_id = 1, .flags = O_WRONLY},
                  {.kind = FileSpec::kPipe, .id = 3, .pipe_id = 2, .flags = O_RDONLY},
                  {.kind = FileSpec::kPipe, .id = 4, .pipe_id = 2, .flags = O_WRONLY},
              };
              std::string parent =
                  "echo ping >&11; read -r x <&12 || exit 1; [ \"$x\" = pong ] || exit 2; "
                  "if read -r y <&12; then exit 3; fi; exit 0";
              std::string child = "read -r x <&12 || exit 1; [ \"$x\" = ping ] || exit 2; echo pong >&11; exit 0";
              std::vector<TaskSpec> tasks = {
                  {.pid = 1, .ppid = 0, .pgid = 1, .sid = 1, .argv = {"/bin/bash", "-c", parent}, .fds = {{11, 2}, {12, 3}}},
                  {.pid = 2, .ppid = 1, .pgid = 1, .sid = 1, .argv = {"/bin/bash", "-c", child}, .fds = {{11, 4}, {12, 1}}},
              };
              TempDir dir;
              if (Status s = images::WriteImageDir(dir.path(), TreeImages(tasks, false, files)); !s.ok()) return s.error().ToString();
              RunResult r = RunCommand({RestoreOrch(), "--images", dir.path()});
              return r.status == 0 ? std::string() : "ping-pong failed with status " + std::to_string(r.status) + ": " + r.err;
            }),
            "");
}

TEST(Fds, MissingFileIsNamedAndNothingIsLeft) {
  EXPECT_EQ(InSandbox([] {
              std::vector<FileSpec> files = {{.kind = FileSpec::kRegular, .id = 1, .flags = O_RDONLY, .path = "/no/such/file"}};
              std::vector<TaskSpec> tasks = Fan(3);
              tasks[2].fds = {{4, 1}};
              TempDir dir;
              if (Status s = images::WriteImageDir(dir.path(), TreeImages(tasks, false, files)); !s.ok()) return s.error().ToString();
              RunResult r = RunCommand({RestoreOrch(), "--images", dir.path()});
              std::string p;
              if (r.status != 1) p += "status " + std::to_string(r.status) + "\n";
              if (r.err.find("task 3 fd 4: open /no/such/file: No such file or directory") == std::string::npos) p += r.err;
              for (int i = 0; i < 50; ++i) {
                while (::waitpid(-1, nullptr, WNOHANG) > 0) {
                }
                ::usleep(2000);
              }
              if (!OuterPids().empty()) p += "restored processes are left\n";
              return p;
            }),
            "");
}

}  // namespace
}  // namespace ro::test
