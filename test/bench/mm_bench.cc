// Memory dump and restore against the bare syscalls they need, both run in
// every iteration so that the ratio holds on a noisy machine:
//   - one task with 1 GiB of private anonymous memory (test/helpers/
//     mm_programs fill): restore against reading its pages file (in the page
//     cache) into fresh anonymous memory; dump against process_vm_readv of
//     the same bytes and writing them to a file;
//   - 1000 tasks with a few hundred KiB private each (mm_programs tree):
//     restore and dump in ms per task; the restore against a bare tree of
//     as many tasks, each reading its pages file into fresh memory.
// restore-orch's own peak RSS (its --stats) is printed beside the pages'
// size, and the restore's time with --check-pages (check_pages_*). Run as root: it works in its own mount namespace, its trees in PID
// namespaces of their own, and kills every tree it makes.
#include <benchmark/benchmark.h>
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "sys/clone.h"
#include "sys/futex.h"
#include "sys/proc_maps.h"
#include "test/helpers/mm_images.h"
#include "test/helpers/test_util.h"

namespace {

using ro::test::TempDir;

std::string Helper() { return std::string(RO_HELPERS_DIR) + "/mm_programs"; }

double Seconds(uint64_t since_ns) { return (ro::sys::MonotonicNs() - since_ns) / 1e9; }

// Starts mm_programs with `args` in a new PID namespace and waits for its
// root's ready file; the root's pid, or 0.
pid_t StartProgram(const std::string& work, const std::vector<std::string>& args) {
  pid_t root = ro::test::StartTreeInNewPidNs([&] {
    std::vector<const char*> argv = {"mm_programs", work.c_str()};
    for (const std::string& a : args) argv.push_back(a.c_str());
    argv.push_back(nullptr);
    ::execv(Helper().c_str(), const_cast<char* const*>(argv.data()));
    ::_exit(127);
  });
  if (root <= 0) return 0;
  for (int i = 0; i < 6000; ++i) {
    if (::access((work + "/ready-1").c_str(), F_OK) == 0) return root;
    ::usleep(10000);
  }
  ro::test::KillTree(root);
  return 0;
}

nlohmann::json Stats(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in, nullptr, false);
}

struct RestoreRun {
  double wall_s = -1, engine_s = -1, rss_kib = 0;
};

// restore-orch --images DIR --detach --stats [--check-pages], then the tree killed.
RestoreRun Restore(const std::string& dir, const std::string& stats, bool check_pages = false) {
  RestoreRun run;
  std::vector<std::string> argv = {ro::test::RestoreOrch(), "--images", dir, "--detach", "--stats", stats};
  if (check_pages) argv.push_back("--check-pages");
  uint64_t t0 = ro::sys::MonotonicNs();
  ro::test::RunResult r = ro::test::RunCommand(argv);
  run.wall_s = Seconds(t0);
  pid_t root = static_cast<pid_t>(std::atoi(r.out.c_str()));
  if (r.status != 0 || root <= 0) {
    std::fprintf(stderr, "restore: %s\n", r.err.c_str());
    run.wall_s = -1;
    return run;
  }
  ro::test::KillTree(root);  // we are a subreaper
  auto j = Stats(stats);
  if (!j.is_discarded()) {
    run.engine_s = j["total_ms"].get<double>() / 1e3;
    run.rss_kib = j["orchestrator_peak_rss_kib"].get<double>();
  }
  return run;
}

// The pages files of a dump and their total size.
std::vector<std::string> PagesFiles(const std::string& dir, uint64_t* bytes) {
  std::vector<std::string> out;
  *bytes = 0;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name.rfind("pages-", 0) != 0) continue;
      struct stat st {};
      ::stat((dir + "/" + name).c_str(), &st);
      *bytes += static_cast<uint64_t>(st.st_size);
      out.push_back(dir + "/" + name);
    }
    ::closedir(d);
  }
  return out;
}

// The bare restore of the memory: every pages file read into fresh
// anonymous memory of its size. Seconds.
double BareRead(const std::vector<std::string>& files) {
  uint64_t t0 = ro::sys::MonotonicNs();
  for (const std::string& f : files) {
    int fd = ::open(f.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat st {};
    if (fd < 0 || ::fstat(fd, &st) != 0) return -1;
    size_t len = static_cast<size_t>(st.st_size);
    if (len == 0) {
      ::close(fd);
      continue;
    }
    char* mem = static_cast<char*>(::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    for (size_t off = 0; off < len;) {
      ssize_t n = ::pread(fd, mem + off, len - off, static_cast<off_t>(off));
      if (n <= 0) return -1;
      off += static_cast<size_t>(n);
    }
    ::munmap(mem, len);
    ::close(fd);
  }
  return Seconds(t0);
}

// The bare restore of a tree: a task cloned into a new PID namespace forks
// one child per pages file but the first, and each task (it too) reads its
// file into fresh anonymous memory of its size and says so on a pipe: the
// clone, fork, mmap and pread the tree's restore cannot do without.
// Seconds until every task has (teardown not counted, as in Restore).
double BareTree(const std::vector<std::string>& files) {
  int ready[2];
  if (files.empty() || ::pipe2(ready, O_CLOEXEC) != 0) return -1;
  auto fill = [&](const std::string& f) {
    int fd = ::open(f.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat st {};
    if (fd < 0 || ::fstat(fd, &st) != 0) ::_exit(3);
    size_t len = static_cast<size_t>(st.st_size);
    void* mem = len ? ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) : nullptr;
    if (len && (mem == MAP_FAILED || ::pread(fd, mem, len, 0) != static_cast<ssize_t>(len))) ::_exit(4);
    ::close(fd);
    if (::write(ready[1], "x", 1) != 1) ::_exit(5);
  };
  uint64_t t0 = ro::sys::MonotonicNs();
  auto cloned = ro::sys::Clone3(ro::sys::CloneSpec{.flags = CLONE_NEWPID, .want_pidfd = false});
  if (!cloned.ok()) return -1;
  if (cloned->pid == 0) {
    for (size_t i = 1; i < files.size(); ++i) {
      pid_t c = ::fork();
      if (c < 0) ::_exit(6);
      if (c == 0) {
        fill(files[i]);
        for (;;) ::pause();
      }
    }
    fill(files[0]);
    for (;;) ::pause();
  }
  ::close(ready[1]);
  size_t got = 0;
  char buf[256];
  while (got < files.size()) {
    ssize_t n = ::read(ready[0], buf, sizeof(buf));
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  double s = Seconds(t0);
  ::close(ready[0]);
  ro::test::KillTree(cloned->pid);  // the init: its namespace goes with it
  return got == files.size() ? s : -1;
}

// The bare dump of the memory: the private anonymous VMAs of `pid` read with
// process_vm_readv in 4 MiB batches (they stay in the CPU's caches between
// the read and the write) and written to a file in `dir`. Seconds.
double BareReadv(pid_t pid, const std::string& dir) {
  auto maps = ro::sys::ReadMaps(pid);
  if (!maps.ok()) return -1;
  constexpr size_t kBatch = 4u << 20;
  static char* buf = static_cast<char*>(::mmap(nullptr, kBatch, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  uint64_t t0 = ro::sys::MonotonicNs();
  int out = ::open((dir + "/bare.img").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out < 0) return -1;
  for (const ro::sys::MapsEntry& m : *maps) {
    if (m.perms.substr(0, 4) != "rw-p" || !m.path.empty()) continue;
    for (uint64_t at = m.start; at < m.end; at += kBatch) {
      size_t len = static_cast<size_t>(std::min<uint64_t>(kBatch, m.end - at));
      iovec local{buf, len}, remote{reinterpret_cast<void*>(at), len};
      if (::process_vm_readv(pid, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(len)) return -1;
      if (::write(out, buf, len) != static_cast<ssize_t>(len)) return -1;
    }
  }
  ::close(out);
  double s = Seconds(t0);
  ::unlink((dir + "/bare.img").c_str());
  return s;
}

void BM_Restore1GiB(benchmark::State& state) {
  TempDir work, images;
  pid_t root = StartProgram(work.path(), {"fill", "1024"});
  ro::test::RunResult d = root > 0 ? ro::test::RunDump(root, images.path()) : ro::test::RunResult{};
  if (root > 0) ::waitpid(root, nullptr, 0);
  if (d.status != 0) {
    state.SkipWithError(("dump: " + d.err).c_str());
    return;
  }
  uint64_t pages = 0;
  std::vector<std::string> files = PagesFiles(images.path(), &pages);
  double bare = 0, wall = 0, engine = 0, rss = 0, checked = 0;
  for (auto _ : state) {
    double b = BareRead(files);
    RestoreRun r = Restore(images.path(), work.File("stats.json"));
    RestoreRun c = Restore(images.path(), work.File("stats.json"), true);
    if (b < 0 || r.wall_s < 0 || c.wall_s < 0) {
      state.SkipWithError("restore or bare read failed");
      return;
    }
    bare += b;
    wall += r.wall_s;
    engine += r.engine_s;
    checked += c.wall_s;
    rss = std::max(rss, r.rss_kib);
    state.SetIterationTime(r.wall_s);
  }
  double n = static_cast<double>(state.iterations());
  state.counters["pages_MiB"] = static_cast<double>(pages) / (1 << 20);
  state.counters["check_pages_ms"] = checked * 1e3 / n;
  state.counters["bare_ms"] = bare * 1e3 / n;
  state.counters["engine_ms"] = engine * 1e3 / n;
  state.counters["ratio_wall"] = wall / bare;
  state.counters["ratio_engine"] = engine / bare;
  state.counters["peak_rss_MiB"] = rss / 1024;
}

void BM_Dump1GiB(benchmark::State& state) {
  TempDir work;
  pid_t root = StartProgram(work.path(), {"fill", "1024"});
  if (root <= 0) {
    state.SkipWithError("mm_programs fill did not start");
    return;
  }
  double bare = 0, wall = 0, downtime = 0, pages_ms = 0, rss = 0;
  for (auto _ : state) {
    TempDir out;
    double b = BareReadv(root, out.path());
    uint64_t t0 = ro::sys::MonotonicNs();
    ro::test::RunResult r = ro::test::RunDump(root, out.File("images"), {"--leave-running", "--stats", out.File("stats.json")});
    double w = Seconds(t0);
    auto j = Stats(out.File("stats.json"));
    if (b < 0 || r.status != 0 || j.is_discarded()) {
      state.SkipWithError(("dump or bare readv failed: " + r.err).c_str());
      break;
    }
    bare += b;
    wall += w;
    downtime += j["downtime_ms"].get<double>();
    pages_ms += j["pages_ms"].get<double>();
    rss = std::max(rss, j["peak_rss_kib"].get<double>());
    state.SetIterationTime(w);
  }
  ro::test::KillTree(root);
  double n = static_cast<double>(state.iterations());
  state.counters["bare_ms"] = bare * 1e3 / n;
  state.counters["downtime_ms"] = downtime / n;
  state.counters["pages_ms"] = pages_ms / n;
  state.counters["ratio_wall"] = wall / bare;
  state.counters["peak_rss_MiB"] = rss / 1024;
}

constexpr int kTasks = 1000, kKib = 300;

void BM_RestoreSmallTasks(benchmark::State& state) {
  TempDir work, images;
  pid_t root = StartProgram(work.path(), {"tree", std::to_string(kTasks), std::to_string(kKib)});
  ro::test::RunResult d = root > 0 ? ro::test::RunDump(root, images.path()) : ro::test::RunResult{};
  if (root > 0) ::waitpid(root, nullptr, 0);
  if (d.status != 0) {
    state.SkipWithError(("dump: " + d.err).c_str());
    return;
  }
  uint64_t pages = 0;
  std::vector<std::string> files = PagesFiles(images.path(), &pages);
  double wall = 0, engine = 0, rss = 0, checked = 0, bare = 0;
  for (auto _ : state) {
    RestoreRun r = Restore(images.path(), work.File("stats.json"));
    RestoreRun c = Restore(images.path(), work.File("stats.json"), true);
    double b = BareTree(files);
    if (r.wall_s < 0 || c.wall_s < 0 || b < 0) {
      state.SkipWithError("restore or bare tree failed");
      return;
    }
    wall += r.wall_s;
    engine += r.engine_s;
    checked += c.wall_s;
    bare += b;
    rss = std::max(rss, r.rss_kib);
    state.SetIterationTime(r.wall_s);
  }
  double n = static_cast<double>(state.iterations());
  state.counters["pages_MiB"] = static_cast<double>(pages) / (1 << 20);
  state.counters["check_pages_ms_per_task"] = checked * 1e3 / n / kTasks;
  state.counters["ms_per_task"] = wall * 1e3 / n / kTasks;
  state.counters["engine_ms_per_task"] = engine * 1e3 / n / kTasks;
  state.counters["bare_ms_per_task"] = bare * 1e3 / n / kTasks;
  state.counters["ratio_wall"] = wall / bare;
  state.counters["peak_rss_MiB"] = rss / 1024;
}

void BM_DumpSmallTasks(benchmark::State& state) {
  TempDir work;
  pid_t root = StartProgram(work.path(), {"tree", std::to_string(kTasks), std::to_string(kKib)});
  if (root <= 0) {
    state.SkipWithError("mm_programs tree did not start");
    return;
  }
  double wall = 0, downtime = 0, rss = 0;
  for (auto _ : state) {
    TempDir out;
    uint64_t t0 = ro::sys::MonotonicNs();
    ro::test::RunResult r = ro::test::RunDump(root, out.File("images"), {"--leave-running", "--stats", out.File("stats.json")});
    double w = Seconds(t0);
    auto j = Stats(out.File("stats.json"));
    if (r.status != 0 || j.is_discarded()) {
      state.SkipWithError(("dump failed: " + r.err).c_str());
      break;
    }
    wall += w;
    downtime += j["downtime_ms"].get<double>();
    rss = std::max(rss, j["peak_rss_kib"].get<double>());
    state.SetIterationTime(w);
  }
  ro::test::KillTree(root);
  double n = static_cast<double>(state.iterations());
  state.counters["ms_per_task"] = wall * 1e3 / n / kTasks;
  state.counters["downtime_ms_per_task"] = downtime / n / kTasks;
  state.counters["peak_rss_MiB"] = rss / 1024;
}

BENCHMARK(BM_Restore1GiB)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_Dump1GiB)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_RestoreSmallTasks)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK(BM_DumpSmallTasks)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(1);

}  // namespace

int main(int argc, char** argv) {
  if (::geteuid() != 0) {
    std::fprintf(stderr, "mm_bench: needs root (it clones PID namespaces)\n");
    return 1;
  }
  if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    std::perror("mm_bench: private mount namespace");
    return 1;
  }
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
