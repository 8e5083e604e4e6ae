// Restore of trees of 10, 100 and 1000 tasks against the bare syscalls they
// need: a program that only clone3s the same tree with set_tid in a new PID
// namespace. Both run in every iteration, so the ratio is fair on a noisy
// machine. Run as root; the benchmark works in its own mount namespace and
// kills every tree it makes.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
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

[[noreturn]] void BareTask(int pid, int n) {
  for (int c = (pid - 1) * kFanOut + 2; c <= std::min(n, (pid - 1) * kFanOut + kFanOut + 1); ++c) {
    auto r = ro::sys::Clone3(ro::sys::CloneSpec{.flags = 0, .pid = c, .want_pidfd = false});
    if (r.ok() && r->pid == 0) BareTask(c, n);
  }
  if (g_count->fetch_add(1) + 1 == static_cast<uint32_t>(n)) ro::sys::FutexWakeAll(*g_count);
  for (;;) ::pause();
}

void Kill(pid_t pid) {
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd >= 0) {
    ::syscall(SYS_pidfd_send_signal, fd, SIGKILL, nullptr, 0);
    ::close(fd);
  }
  ::waitpid(pid, nullptr, 0);
}

// The bare syscalls: seconds until every task of the tree exists.
double Bare(int n) {
  g_count->store(0);
  uint64_t t0 = ro::sys::MonotonicNs();
  auto root = ro::sys::Clone3(ro::sys::CloneSpec{.flags = CLONE_NEWPID, .pid = 1, .want_pidfd = false});
  if (!root.ok()) return -1;
  if (root->pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    BareTask(1, n);
  }
  for (uint32_t c; (c = g_count->load()) != static_cast<uint32_t>(n);) ro::sys::FutexWait(*g_count, c, 100);
  double s = (ro::sys::MonotonicNs() - t0) / 1e9;
  Kill(root->pid);
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
  Kill(root);  // we are a subreaper: the detached root is ours to reap
  std::ifstream in(stats);
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (!j.is_discarded()) {
    run.engine_s = j["total_ms"].get<double>() / 1e3;
    run.rss_kib = j["orchestrator_peak_rss_kib"].get<double>();
  }
  return run;
}

void BM_RestoreTree(benchmark::State& state) {
  int n = static_cast<int>(state.range(0));
  ro::test::TempDir dir;
  if (!ro::images::WriteImageDir(dir.path(), ro::test::TreeImages(WideTree(n))).ok()) {
    state.SkipWithError("cannot write images");
    return;
  }
  std::string stats = dir.File("stats.json");
  double bare = 0, wall = 0, engine = 0, rss = 0;
  for (auto _ : state) {
    double b = Bare(n);
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
BENCHMARK(BM_RestoreTree)->Arg(10)->Arg(100)->Arg(1000)->UseManualTime()->Unit(benchmark::kMillisecond)->MinTime(2);

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
