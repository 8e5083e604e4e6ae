// Restore of trees of 10, 100 and 1000 tasks against the bare syscalls they
// need: a program that only clone3s the same tree with set_tid in a new PID
// namespace. Both run in every iteration, so the ratio is fair on a noisy
// machine. Likewise mounts, and dump of the same trees and mount sets
// against bare ptrace freezing and /proc reading. Run as root; the
// benchmark works in its own mount namespace and kills every tree it makes.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <linux/close_range.h>
#include <linux/auto_fs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <linux/ptrace.h>
#include <dirent.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "images/image_dir.h"
#include "sys/clone.h"
#include "sys/futex.h"
#include "sys/mount_api.h"
#include "sys/mountinfo.h"
#include "test/helpers/test_util.h"
#include "test/helpers/tree_images.h"

namespace {

using ro::test::TaskSpec;
constexpr int kFanOut = 10;

// pids 1..n; the parent of i is (i - 2) / kFanOut + 1: a tree ten wide.
std::vector<TaskSpec> WideTree(int n) {
  std::vector<TaskSpec> tasks;
  for (int i = 1; i <= n; ++i) {
    pid_t ppid = i == 1 ? 0 : (i - 2) / kFanOut + 1;
    tasks.push_back(TaskSpec{.pid = i, .ppid = ppid, .pgid = 1, .sid = 1});
  }
  return tasks;
}

std::atomic<uint32_t>* g_count = nullptr;

constexpr int kPipesPerChild = 5;

// Fd numbers of the pipes between a task and its parent: the child reads
// at 3..7, the parent writes at 100 + 5 * (child's place among siblings).
int ChildFd(int k) { return 3 + k; }
int ParentFd(int child, int k) { return 100 + ((child - 2) % kFanOut) * kPipesPerChild + k; }

[[noreturn]] void BareTask(int pid, int n, bool fds) {
  for (int c = (pid - 1) * kFanOut + 2; c <= std::min(n, (pid - 1) * kFanOut + kFanOut + 1); ++c) {
    int p[kPipesPerChild][2];
    if (fds) {
      for (auto& pp : p) (void)!::pipe2(pp, O_CLOEXEC);
    }
    auto r = ro::sys::Clone3(ro::sys::CloneSpec{.flags = 0, .pid = c, .want_pidfd = false});
    if (r.ok() && r->pid == 0) {
      if (fds) {
        for (int k = 0; k < kPipesPerChild; ++k) {
          ::dup3(p[k][0], ChildFd(k), 0);
          ::close(p[k][0]);
          ::close(p[k][1]);
        }
        // What the parent held for its own parent and siblings is not ours.
        ::close_range(100, ~0U, 0);
      }
      BareTask(c, n, fds);
    }
    if (fds) {
      for (int k = 0; k < kPipesPerChild; ++k) {
        ::dup3(p[k][1], ParentFd(c, k), 0);
        ::close(p[k][0]);
        ::close(p[k][1]);
      }
    }
  }
  if (g_count->fetch_add(1) + 1 == static_cast<uint32_t>(n)) ro::sys::FutexWakeAll(*g_count);
  for (;;) ::pause();
}

// The bare syscalls: seconds until every task of the tree exists.
double Bare(int n, bool fds) {
  g_count->store(0);
  uint64_t t0 = ro::sys::MonotonicNs();
  auto root = ro::sys::Clone3(ro::sys::CloneSpec{.flags = CLONE_NEWPID, .pid = 1, .want_pidfd = false});
  if (!root.ok()) return -1;
  if (root->pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    BareTask(1, n, fds);
  }
  for (uint32_t c; (c = g_count->load()) != static_cast<uint32_t>(n);) ro::sys::FutexWait(*g_count, c, 100);
  double s = (ro::sys::MonotonicNs() - t0) / 1e9;
  ro::test::KillTree(root->pid);
  return s;
}

struct RestoreRun {
  double wall_s = -1;    // the whole restore-orch command
  double engine_s = -1;  // from its stats: arena, root, stages
  double rss_kib = 0;
};

RestoreRun Restore(const std::string& dir, const std::string& stats) {
  RestoreRun run;
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return run;
  uint64_t t0 = ro::sys::MonotonicNs();
  pid_t orch = ::fork();
  if (orch == 0) {
    ::dup2(out[1], 1);
    ::execl(ro::test::RestoreOrch().c_str(), "restore-orch", "--images", dir.c_str(), "--detach", "--stats",
            stats.c_str(), nullptr);
    _exit(127);
  }
  ::close(out[1]);
  char buf[64] = {};
  ssize_t got = ::read(out[0], buf, sizeof(buf) - 1);
  ::close(out[0]);
  int status = 0;
  ::waitpid(orch, &status, 0);
  run.wall_s = (ro::sys::MonotonicNs() - t0) / 1e9;
  pid_t root = got > 0 ? static_cast<pid_t>(std::atoi(buf)) : 0;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || root <= 0) {
    run.wall_s = -1;
    return run;
  }
  ro::test::KillTree(root);  // we are a subreaper: the detached root is ours to reap
  std::ifstream in(stats);
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (!j.is_discarded()) {
    run.engine_s = j["total_ms"].get<double>() / 1e3;
    run.rss_kib = j["orchestrator_peak_rss_kib"].get<double>();
  }
  return run;
}

// The wide tree, with kPipesPerChild pipes between every task and its
// parent: about ten fds a task.
ro::test::ImageSet WithPipes(int n) {
  std::vector<TaskSpec> tasks = WideTree(n);
  std::vector<ro::test::FileSpec> files;
  uint32_t id = 1;
  for (int c = 2; c <= n; ++c) {
    for (int k = 0; k < kPipesPerChild; ++k) {
      uint32_t pipe_id = static_cast<uint32_t>(c * kPipesPerChild + k);
      files.push_back({.kind = ro::test::FileSpec::kPipe, .id = id, .pipe_id = pipe_id, .flags = O_RDONLY});
      files.push_back({.kind = ro::test::FileSpec::kPipe, .id = id + 1, .pipe_id = pipe_id, .flags = O_WRONLY});
      tasks[static_cast<size_t>(c - 1)].fds.push_back({ChildFd(k), id});
      tasks[static_cast<size_t>(tasks[static_cast<size_t>(c - 1)].ppid - 1)].fds.push_back({ParentFd(c, k), id + 1});
      id += 2;
    }
  }
  return ro::test::TreeImages(tasks, false, files);
}

void BM_RestoreTree(benchmark::State& state) {
  int n = static_cast<int>(state.range(0));
  bool fds = state.range(1) != 0;
  ro::test::TempDir dir;
  if (!ro::images::WriteImageDir(dir.path(), fds ? WithPipes(n) : ro::test::TreeImages(WideTree(n))).ok()) {
    state.SkipWithError("cannot write images");
    return;
  }
  std::string stats = dir.File("stats.json");
  double bare = 0, wall = 0, engine = 0, rss = 0;
  for (auto _ : state) {
    double b = Bare(n, fds);
    RestoreRun r = Restore(dir.path(), stats);
    if (b < 0 || r.wall_s < 0) {
      state.SkipWithError("restore or bare clone failed");
      return;
    }
    bare += b;
    wall += r.wall_s;
    engine += r.engine_s;
    rss = std::max(rss, r.rss_kib);
    state.SetIterationTime(r.wall_s);
  }
  state.counters["bare_ms"] = bare * 1e3 / state.iterations();
  state.counters["engine_ms"] = engine * 1e3 / state.iterations();
  state.counters["ratio_wall"] = wall / bare;
  state.counters["ratio_engine"] = engine / bare;
  state.counters["peak_rss_MiB"] = rss / 1024;
}
// ---- mounts ----

// n mounts below a tmpfs root: every tenth an AutoFS mount of the one
// master (task 2), and a fifth in peer groups of two (a tmpfs and a bind
// of it); the rest plain tmpfs.
struct MountShape {
  enum Kind { kTmpfs, kAutofs, kShared, kPeer } kind;
  int index;
};

std::vector<MountShape> Shapes(int n) {
  std::vector<MountShape> shapes;
  for (int i = 1; i < n; ++i) {
    if (i % 10 == 0) {
      shapes.push_back({MountShape::kAutofs, i});
    } else if (i % 10 == 1 && i + 1 < n) {
      shapes.push_back({MountShape::kShared, i});
      shapes.push_back({MountShape::kPeer, ++i});
    } else {
      shapes.push_back({MountShape::kTmpfs, i});
    }
  }
  return shapes;
}

ro::test::ImageSet MountImages(int n) {
  std::vector<TaskSpec> tasks = {{.pid = 1, .ppid = 0, .pgid = 1, .sid = 1}, {.pid = 2, .ppid = 1, .pgid = 2, .sid = 2}};
  std::vector<ro::test::FileSpec> files;
  std::vector<ro::test::MountSpec> mounts = {{.id = 1000, .parent = 1, .mountpoint = "/", .dev = 1}};
  std::vector<ro::test::AutofsSpec> autofs;
  uint32_t file = 1;
  for (const MountShape& m : Shapes(n)) {
    uint32_t id = 1000 + static_cast<uint32_t>(m.index);
    std::string mp = "/m" + std::to_string(m.index);
    uint32_t dev = 10 + static_cast<uint32_t>(m.index);
    switch (m.kind) {
      case MountShape::kTmpfs:
        mounts.push_back({.id = id, .parent = 1000, .mountpoint = mp, .dev = dev});
        break;
      case MountShape::kShared:
        mounts.push_back({.id = id, .parent = 1000, .mountpoint = mp, .shared = id, .dev = dev});
        break;
      case MountShape::kPeer:
        mounts.push_back({.id = id, .parent = 1000, .mountpoint = mp, .shared = id - 1, .dev = dev - 1});
        break;
      case MountShape::kAutofs: {
        int wfd = 100 + 2 * m.index, rfd = wfd + 1;
        files.push_back({.kind = ro::test::FileSpec::kPipe, .id = file, .pipe_id = file, .flags = O_RDONLY});
        files.push_back({.kind = ro::test::FileSpec::kPipe, .id = file + 1, .pipe_id = file, .flags = O_WRONLY});
        tasks[1].fds.push_back({rfd, file});
        tasks[1].fds.push_back({wfd, file + 1});
        file += 2;
        mounts.push_back({.id = id, .parent = 1000, .fstype = 18, .mountpoint = mp, .source = "auto", .dev = dev});
        autofs.push_back({.dev = dev, .fd = wfd, .pgrp = 2, .mode = 1});
        break;
      }
    }
  }
  ro::test::ImageSet set = ro::test::TreeImages(tasks, false, files);
  ro::test::AddMounts(set, mounts, autofs);
  return set;
}

// The bare syscalls: in a new mount namespace, the same mounts made, placed
// and grouped, AutoFS ones with a pipe and made catatonic.
void BareMounts(int n) {
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) _exit(1);
  auto root = ro::sys::NewMount("tmpfs", "none", {}, false);
  if (!root.ok() || !ro::sys::MoveMountTo(*root, "/tmp").ok()) _exit(2);
  ro::UniqueFd dir(::open("/tmp", O_PATH | O_DIRECTORY | O_CLOEXEC));
  std::map<int, ro::UniqueFd> fds;
  for (const MountShape& m : Shapes(n)) {
    ro::UniqueFd fd;
    if (m.kind == MountShape::kAutofs) {
      int p[2];
      (void)!::pipe2(p, O_CLOEXEC);
      auto a = ro::sys::NewMount("autofs", "auto",
                                 {"fd=" + std::to_string(p[1]), "pgrp=" + std::to_string(::getpid()), "minproto=5", "maxproto=5", "indirect"},
                                 false);
      if (!a.ok()) _exit(3);
      fd = std::move(a).value();
      int r = ::openat(fd.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      unsigned long timeout = 300;
      ::ioctl(r, AUTOFS_IOC_SETTIMEOUT, &timeout);
      ::ioctl(r, AUTOFS_IOC_CATATONIC, 0);
      ::close(r);
      ::close(p[0]);
      ::close(p[1]);
    } else if (m.kind == MountShape::kPeer) {
      auto c = ro::sys::CloneMount(fds[m.index - 1], "");
      if (!c.ok()) _exit(4);
      fd = std::move(c).value();
    } else {
      auto t = ro::sys::NewMount("tmpfs", "none", {}, false);
      if (!t.ok()) _exit(5);
      fd = std::move(t).value();
    }
    auto target = ro::sys::OpenBeneath(dir, "m" + std::to_string(m.index), true, false);
    if (!target.ok() || !ro::sys::MoveMount(fd, *target, "m").ok()) _exit(6);
    if (m.kind == MountShape::kShared) (void)ro::sys::SetPropagation(fd, MS_SHARED);
    if (m.kind == MountShape::kPeer) (void)ro::sys::JoinPeerGroup(fds[m.index - 1], fd, "peer");
    fds[m.index] = std::move(fd);
  }
  _exit(0);
}

double BareMountsSeconds(int n) {
  uint64_t t0 = ro::sys::MonotonicNs();
  auto child = ro::sys::Clone3(ro::sys::CloneSpec{.flags = CLONE_NEWNS | CLONE_NEWPID, .pid = 1, .want_pidfd = false});
  if (!child.ok()) return -1;
  if (child->pid == 0) BareMounts(n);
  int status = 0;
  ::waitpid(child->pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
  return (ro::sys::MonotonicNs() - t0) / 1e9;
}

void BM_RestoreMounts(benchmark::State& state) {
  int n = static_cast<int>(state.range(0));
  ro::test::TempDir dir;
  if (!ro::images::WriteImageDir(dir.path(), MountImages(n)).ok()) {
    state.SkipWithError("cannot write images");
    return;
  }
  std::string stats = dir.File("stats.json");
  double bare = 0, wall = 0, engine = 0;
  for (auto _ : state) {
    double b = BareMountsSeconds(n);
    RestoreRun r = Restore(dir.path(), stats);
    if (b < 0 || r.wall_s < 0) {
      state.SkipWithError("restore or bare mounts failed");
      return;
    }
    bare += b;
    wall += r.wall_s;
    engine += r.engine_s;
    state.SetIterationTime(r.wall_s);
  }
  state.counters["bare_ms"] = bare * 1e3 / state.iterations();
  state.counters["engine_ms"] = engine * 1e3 / state.iterations();
  state.counters["ratio_engine"] = engine / bare;
  state.counters["ratio_wall"] = wall / bare;
}
// ---- dump ----

// The bare work of a dump: seize and interrupt every task of the tree, read
// its status, stat and fd table, read the namespace's mountinfo and open
// every mount, then detach. Seconds.
double BareDump(pid_t root, bool mounts) {
  uint64_t t0 = ro::sys::MonotonicNs();
  std::vector<pid_t> tasks{root};
  char buf[8192];
  auto slurp = [&](const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    while (::read(fd, buf, sizeof(buf)) > 0) {
    }
    ::close(fd);
  };
  for (size_t i = 0; i < tasks.size(); ++i) {
    pid_t p = tasks[i];
    std::string proc = "/proc/" + std::to_string(p) + "/";
    if (::syscall(SYS_ptrace, PTRACE_SEIZE, p, 0, 0) != 0 || ::syscall(SYS_ptrace, PTRACE_INTERRUPT, p, 0, 0) != 0) return -1;
    ::waitpid(p, nullptr, __WALL);
    slurp(proc + "status");
    slurp(proc + "stat");
    if (DIR* d = ::opendir((proc + "fd").c_str())) {
      while (dirent* e = ::readdir(d)) (void)!::readlink((proc + "fd/" + e->d_name).c_str(), buf, sizeof(buf));
      ::closedir(d);
    }
    std::ifstream kids(proc + "task/" + std::to_string(p) + "/children");
    for (pid_t k; kids >> k;) tasks.push_back(k);
  }
  if (mounts) {
    std::string root_dir = "/proc/" + std::to_string(root) + "/root";
    auto info = ro::sys::ReadMountInfo("/proc/" + std::to_string(root) + "/mountinfo");
    if (info.ok()) {
      for (const auto& m : *info) {
        int fd = ::open((root_dir + m.mountpoint).c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
        struct statx stx {};
        if (fd >= 0) ::statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &stx), ::close(fd);
      }
    }
  }
  for (pid_t p : tasks) ::syscall(SYS_ptrace, PTRACE_DETACH, p, 0, 0);
  return (ro::sys::MonotonicNs() - t0) / 1e9;
}

// Seconds to create every file of `from` afresh in `to`, with its bytes.
double BareWrite(const std::string& from, const std::string& to) {
  std::vector<std::pair<std::string, std::string>> files;
  if (DIR* d = ::opendir(from.c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.') continue;
      std::ifstream in(from + "/" + e->d_name);
      std::stringstream text;
      text << in.rdbuf();
      files.emplace_back(e->d_name, text.str());
    }
    ::closedir(d);
  }
  ::mkdir(to.c_str(), 0700);
  uint64_t t0 = ro::sys::MonotonicNs();
  for (const auto& [name, bytes] : files) {
    int fd = ::open((to + "/" + name).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    (void)!::write(fd, bytes.data(), bytes.size());
    ::close(fd);
  }
  return (ro::sys::MonotonicNs() - t0) / 1e9;
}

// Restores `images` detached as the live tree to dump; its root, or 0.
pid_t LiveTree(const ro::test::ImageSet& images) {
  ro::test::TempDir dir;
  if (!ro::images::WriteImageDir(dir.path(), images).ok()) return 0;
  ro::test::RunResult r = ro::test::RunCommand({ro::test::RestoreOrch(), "--images", dir.path(), "--detach"});
  return r.status == 0 ? static_cast<pid_t>(std::atoi(r.out.c_str())) : 0;
}

void DumpBench(benchmark::State& state, const ro::test::ImageSet& images, bool mounts) {
  pid_t root = LiveTree(images);
  if (root <= 0) {
    state.SkipWithError("cannot restore the tree to dump");
    return;
  }
  double bare = 0, bare_write = 0, wall = 0, downtime = 0, freeze = 0, collect = 0, write = 0;
  for (auto _ : state) {
    double b = BareDump(root, mounts);
    ro::test::TempDir out;
    std::string stats = out.File("stats.json");
    uint64_t t0 = ro::sys::MonotonicNs();
    ro::test::RunResult r = ro::test::RunCommand({ro::test::RestoreOrch(), "dump", "--tree", std::to_string(root), "--images",
                                                  out.File("images"), "--leave-running", "--stats", stats});
    double w = (ro::sys::MonotonicNs() - t0) / 1e9;
    std::ifstream in(stats);
    auto j = nlohmann::json::parse(in, nullptr, false);
    if (b < 0 || r.status != 0 || j.is_discarded()) {
      state.SkipWithError(("dump or bare freeze failed: " + r.err).c_str());
      break;
    }
    // Writing the same files: what the dump must write, bare.
    double bw = BareWrite(out.File("images"), out.File("bare"));
    bare += b;
    bare_write += bw;
    wall += w;
    downtime += j["downtime_ms"].get<double>() / 1e3;
    freeze += j["freeze_ms"].get<double>() / 1e3;
    collect += j["collect_ms"].get<double>() / 1e3;
    write += j["write_ms"].get<double>() / 1e3;
    state.SetIterationTime(w);
  }
  ro::test::KillTree(root);
  double n = static_cast<double>(state.iterations());
  state.counters["bare_ms"] = bare * 1e3 / n;
  state.counters["freeze_ms"] = freeze * 1e3 / n;
  state.counters["downtime_ms"] = downtime * 1e3 / n;
  state.counters["collect_ms"] = collect * 1e3 / n;
  state.counters["write_ms"] = write * 1e3 / n;
  state.counters["bare_write_ms"] = bare_write * 1e3 / n;
  // Downtime (the tree runs on before the files are written) against the
  // bare freeze and reads; the whole command against those plus the writes.
  state.counters["ratio_downtime"] = downtime / bare;
  state.counters["ratio_wall"] = wall / (bare + bare_write);
}

void BM_DumpTree(benchmark::State& state) { DumpBench(state, WithPipes(static_cast<int>(state.range(0))), false); }
void BM_DumpMounts(benchmark::State& state) { DumpBench(state, MountImages(static_cast<int>(state.range(0))), true); }

BENCHMARK(BM_DumpTree)->ArgName("tasks")->Arg(10)->Arg(100)->Arg(1000)->UseManualTime()->Unit(benchmark::kMillisecond)->MinTime(2);
BENCHMARK(BM_DumpMounts)->ArgName("mounts")->Arg(10)->Arg(100)->Arg(1000)->UseManualTime()->Unit(benchmark::kMillisecond)->MinTime(2);

BENCHMARK(BM_RestoreMounts)->ArgName("mounts")->Arg(10)->Arg(100)->Arg(1000)->UseManualTime()->Unit(benchmark::kMillisecond)->MinTime(2);

// Args: tasks, and whether every task shares pipes with its parent.
BENCHMARK(BM_RestoreTree)
    ->ArgNames({"tasks", "pipes"})
    ->Args({10, 0})
    ->Args({100, 0})
    ->Args({1000, 0})
    ->Args({1000, 1})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2);

}  // namespace

int main(int argc, char** argv) {
  if (::geteuid() != 0) {
    std::fprintf(stderr, "restore_bench: needs root (it clones PID namespaces)\n");
    return 1;
  }
  // Our own mount namespace, and every orphaned tree comes back to us.
  if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    std::perror("restore_bench: private mount namespace");
    return 1;
  }
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  void* word = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  g_count = new (word) std::atomic<uint32_t>(0);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
