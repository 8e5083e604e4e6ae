// Per-thread restore cost: restore-orch restoring a dumped tree of idle
// threads (test/helpers/threads_prog --idle: 1 task of 1000 threads, 100
// tasks of 10) against the bare syscalls of the same threads (clone3 with
// set_tid of each process and each thread in a new PID namespace). In the
// same iteration both run once more with one thread per task, so the cost
// of the threads alone is the difference, for the engine and for the bare
// syscalls, and the ratio is fair on a noisy machine. Run as root; the
// benchmark works in its own mount namespace and kills every tree it makes.
#include <benchmark/benchmark.h>
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "sys/clone.h"
#include "sys/futex.h"
#include "test/helpers/mm_images.h"
#include "test/helpers/test_util.h"

// clone3(args, size) of a thread that only ever waits in pause(): it needs
// no stack of its own beyond what the kernel is given. Returns the tid, or
// -errno, in the caller.
extern "C" long ro_bench_clone_thread(const void* args, unsigned long size);
asm(R"(
  .text
  .globl ro_bench_clone_thread
  .type ro_bench_clone_thread, @function
ro_bench_clone_thread:
  mov $435, %eax
  syscall
  test %rax, %rax
  jnz 1f
2:
  mov $34, %eax
  syscall
  jmp 2b
1:
  ret
)");

namespace {

std::atomic<uint32_t>* g_count = nullptr;

struct CloneArgs {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};

constexpr uint64_t kThreadStack = 4096;

// Process `index` (pid index + 1) of the bare tree: its threads with their
// tids (after every pid), then it reports and waits.
[[noreturn]] void BareProcess(int index, int tasks, int threads) {
  void* stacks = ::mmap(nullptr, kThreadStack * static_cast<uint64_t>(threads), PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  for (int j = 1; j < threads && stacks != MAP_FAILED; ++j) {
    uint64_t tid = static_cast<uint64_t>(tasks + index * (threads - 1) + j);
    CloneArgs ca{};
    ca.flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
    ca.stack = reinterpret_cast<uint64_t>(stacks) + kThreadStack * static_cast<uint64_t>(j);
    ca.stack_size = kThreadStack;
    ca.set_tid = reinterpret_cast<uint64_t>(&tid);
    ca.set_tid_size = 1;
    if (ro_bench_clone_thread(&ca, sizeof(ca)) < 0) break;
  }
  if (g_count->fetch_add(1) + 1 == static_cast<uint32_t>(tasks)) ro::sys::FutexWakeAll(*g_count);
  for (;;) ::pause();
}

// The bare syscalls: seconds until every task and thread exists.
double Bare(int tasks, int threads) {
  g_count->store(0);
  uint64_t t0 = ro::sys::MonotonicNs();
  auto root = ro::sys::Clone3(ro::sys::CloneSpec{.flags = CLONE_NEWPID, .pid = 1, .want_pidfd = false});
  if (!root.ok()) return -1;
  if (root->pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    for (int i = 1; i < tasks; ++i) {
      auto child = ro::sys::Clone3(ro::sys::CloneSpec{.flags = 0, .pid = i + 1, .want_pidfd = false});
      if (child.ok() && child->pid == 0) BareProcess(i, tasks, threads);
    }
    BareProcess(0, tasks, threads);
  }
  for (uint32_t c; (c = g_count->load()) != static_cast<uint32_t>(tasks);) ro::sys::FutexWait(*g_count, c, 100);
  double s = (ro::sys::MonotonicNs() - t0) / 1e9;
  ro::test::KillTree(root->pid);
  return s;
}

// A dump of threads_prog --idle TASKS THREADS (killed after the dump) in `dir`.
bool DumpIdleTree(int tasks, int threads, const std::string& dir) {
  ro::test::TempDir ready;
  std::string r = ready.path(), prog = std::string(RO_HELPERS_DIR) + "/threads_prog";
  std::string t = std::to_string(tasks), n = std::to_string(threads);
  pid_t root = ro::test::StartTreeInNewPidNs([&] {
    ::execl(prog.c_str(), "threads_prog", "--idle", t.c_str(), n.c_str(), r.c_str(), nullptr);
    ::_exit(127);
  });
  if (root <= 0) return false;
  for (int i = 0; i < 3000; ++i) {
    int files = 0;
    if (DIR* d = ::opendir(r.c_str())) {
      while (dirent* e = ::readdir(d)) files += e->d_name[0] != '.';
      ::closedir(d);
    }
    if (files == tasks) break;
    ::usleep(10000);
  }
  ro::test::RunResult d = ro::test::RunDump(root, dir);
  ro::test::KillTree(root);
  if (d.status != 0) std::fprintf(stderr, "threads_bench: dump: %s", d.err.c_str());
  return d.status == 0;
}

// restore-orch --detach of `dir`, timed; the restored tree killed. The
// engine's own time from its stats.
struct RestoreRun {
  double wall_s = -1, engine_s = -1;
};

RestoreRun Restore(const std::string& dir, const std::string& stats) {
  RestoreRun run;
  uint64_t t0 = ro::sys::MonotonicNs();
  ro::test::RunResult r = ro::test::RunCommand({ro::test::RestoreOrch(), "--images", dir, "--detach", "--stats", stats});
  run.wall_s = (ro::sys::MonotonicNs() - t0) / 1e9;
  pid_t root = static_cast<pid_t>(std::atoi(r.out.c_str()));
  if (r.status != 0 || root <= 0) {
    std::fprintf(stderr, "threads_bench: restore: %s", r.err.c_str());
    run.wall_s = -1;
    return run;
  }
  ro::test::KillTree(root);  // we are a subreaper: the detached root is ours to reap
  std::ifstream in(stats);
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (!j.is_discarded()) run.engine_s = j["total_ms"].get<double>() / 1e3;
  return run;
}

void BM_RestoreThreads(benchmark::State& state) {
  int tasks = static_cast<int>(state.range(0)), threads = static_cast<int>(state.range(1));
  ro::test::TempDir dir;
  std::string many = dir.File("many"), one = dir.File("one"), stats = dir.File("stats.json");
  if (!DumpIdleTree(tasks, threads, many) || !DumpIdleTree(tasks, 1, one)) {
    state.SkipWithError("cannot dump the idle tree");
    return;
  }
  double bare = 0, bare1 = 0, wall = 0, wall1 = 0, engine = 0, engine1 = 0;
  for (auto _ : state) {
    double b = Bare(tasks, threads), b1 = Bare(tasks, 1);
    RestoreRun r = Restore(many, stats), r1 = Restore(one, stats);
    if (b < 0 || b1 < 0 || r.wall_s < 0 || r1.wall_s < 0) {
      state.SkipWithError("restore or bare clone failed");
      return;
    }
    bare += b, bare1 += b1, wall += r.wall_s, wall1 += r1.wall_s, engine += r.engine_s, engine1 += r1.engine_s;
    state.SetIterationTime(r.wall_s);
  }
  double it = static_cast<double>(state.iterations());
  double extra = static_cast<double>(tasks) * (threads - 1);  // threads beyond each task's own
  state.counters["bare_ms"] = bare * 1e3 / it;
  state.counters["engine_ms"] = engine * 1e3 / it;
  state.counters["one_thread_engine_ms"] = engine1 * 1e3 / it;
  state.counters["ratio_wall"] = wall / bare;
  // The threads alone: with them minus without them, per thread.
  double thread_us = (engine - engine1) * 1e6 / it / extra, bare_thread_us = (bare - bare1) * 1e6 / it / extra;
  state.counters["thread_us"] = thread_us;
  state.counters["bare_thread_us"] = bare_thread_us;
  state.counters["ratio_per_thread"] = thread_us / bare_thread_us;
}

// Args: tasks, threads per task (its own included).
BENCHMARK(BM_RestoreThreads)
    ->ArgNames({"tasks", "threads"})
    ->Args({1, 1000})
    ->Args({100, 10})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);

}  // namespace

int main(int argc, char** argv) {
  if (::geteuid() != 0) {
    std::fprintf(stderr, "threads_bench: needs root (it clones PID namespaces)\n");
    return 1;
  }
  // Our own mount namespace, and every orphaned tree comes back to us.
  if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    std::perror("threads_bench: private mount namespace");
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
