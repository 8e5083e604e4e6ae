// The memory dump's limits, on real trees: a task with 64 MiB of memory is
// streamed into the images with little memory of restore-orch's own, and
// pages that hold nothing (never touched, the zero page, all zeros) write
// nothing; what cannot be dumped (POSIX timers, SysV shm of the caller's
// IPC namespace, a mapping of a
// deleted file) is refused with one line naming the task and the object,
// the tree left running, nothing written (pages already streamed removed).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <iostream>
#include <sstream>

#include "test/helpers/mm_images.h"
#include "test/helpers/sandbox.h"
#include "test/helpers/test_util.h"

namespace ro::test {
namespace {

#define EXPECT_OR_RETURN(cond, msg)                                          \
  do {                                                                       \
    if (!(cond)) return std::string(#cond) + " failed: " + std::string(msg); \
  } while (0)

constexpr uint64_t kPage = 4096;
// restore-orch's peak RSS while it streams 64 MiB: far below them. Under
// AddressSanitizer its own shadow and quarantine alone are over 100 MiB,
// so only the release run can hold it to 24 MiB.
#if defined(__SANITIZE_ADDRESS__)
constexpr long long kMaxDumpRssKib = 512 * 1024;
#else
constexpr long long kMaxDumpRssKib = 24 * 1024;
#endif

std::string Str(long long v) { return std::to_string(v); }
std::string Hex(uint64_t v) {
  std::ostringstream o;
  o << std::hex << "0x" << v;
  return o.str();
}

TEST(MmDump, SixtyFourMiBStreamWithLittleMemoryAndZeroPagesWriteNothing) {
  std::string err = InSandbox([] {
    TempDir work, images;
    const std::string w = work.path();
    pid_t root = StartTreeInNewPidNs([&] {
      ::execl(MmCounter().c_str(), "mm_counter", w.c_str(), "big", nullptr);
      ::_exit(127);
    });
    EXPECT_OR_RETURN(root > 0, "clone");
    std::map<std::string, std::string> layout;
    for (int i = 0; i < 1000 && layout.empty(); ++i) {
      layout = KeyValues(ReadText(w + "/layout-1"));
      if (layout.empty()) ::usleep(10000);
    }
    EXPECT_OR_RETURN(!layout.empty(), "mm_counter big did not start");
    RunResult d = RunDump(root, images.path(), {"--leave-running", "--stats", work.File("stats.json")});
    EXPECT_OR_RETURN(d.status == 0, d.err);
    for (int i = 0; i < 100 && TaskState(root) != 'S'; ++i) ::usleep(10000);
    EXPECT_OR_RETURN(TaskState(root) == 'S', std::string("the task does not sleep on: ") + TaskState(root));
    std::string stats = work.Read("stats.json");
    auto number = [&](const std::string& key) {
      size_t at = stats.find("\"" + key + "\": ");
      return at == std::string::npos ? -1.0 : std::strtod(stats.c_str() + at + key.size() + 4, nullptr);
    };
    const uint64_t big = NumberOf(layout, "big"), small = NumberOf(layout, "small");
    double rss_kib = number("peak_rss_kib"), pages_bytes = number("pages_bytes");
    std::cout << "64 MiB dump: total " << number("total_ms") << " ms, downtime " << number("downtime_ms") << " ms, pages "
              << number("pages_ms") << " ms, " << pages_bytes << " bytes of pages, " << number("zero_pages")
              << " zero pages left out, restore-orch peak RSS " << rss_kib << " KiB" << std::endl;
    EXPECT_OR_RETURN(rss_kib > 0 && rss_kib < kMaxDumpRssKib, "peak RSS " + Str(static_cast<long long>(rss_kib)) + " KiB");
    EXPECT_OR_RETURN(pages_bytes >= static_cast<double>(big) && pages_bytes < static_cast<double>(big + (1 << 20)),
                     "pages_bytes " + Str(static_cast<long long>(pages_bytes)));
    EXPECT_OR_RETURN(number("zero_pages") >= 2.0 * static_cast<double>(small / kPage), "zero pages " + Str(static_cast<long long>(number("zero_pages"))));
    ImageMemory mem;
    EXPECT_OR_RETURN(mem.Load(images.path(), "pagemap-1.img"), "pagemap");
    uint64_t written = NumberOf(layout, "written"), untouched = NumberOf(layout, "untouched");
    EXPECT_OR_RETURN(!mem.Covers(untouched, untouched + big), "the untouched 64 MiB were dumped");
    EXPECT_OR_RETURN(!mem.Covers(NumberOf(layout, "read_only"), NumberOf(layout, "read_only") + small), "zero-page mappings were dumped");
    EXPECT_OR_RETURN(!mem.Covers(NumberOf(layout, "zeros"), NumberOf(layout, "zeros") + small), "pages of zeros were dumped");
    for (uint64_t at : {written, written + big / 2 + 40, written + big - 8}) {
      auto page = mem.Page(at);
      EXPECT_OR_RETURN(page.has_value(), "page " + Hex(at) + " missing");
      uint64_t word = 0;
      std::memcpy(&word, page->data() + at % kPage / 8 * 8, 8);
      EXPECT_OR_RETURN(word == at / 8 * 8, "page " + Hex(at) + " holds " + Hex(word));
    }
    KillTree(root);
    return std::string();
  });
  EXPECT_EQ(err, "");
}

// What the memory dump refuses: one line naming the task and the object,
// the tree left running, nothing written.
struct Refused {
  const char* name;
  std::function<void(const std::string& work)> init;
  const char* message;
  size_t tasks;
  const char* what = nullptr;  // also in the line
};

[[noreturn]] void Wait() {
  for (;;) ::pause();
}

const Refused kRefused[] = {
    {"POSIX timer", [](const std::string&) {
       timer_t id;
       if (::timer_create(CLOCK_MONOTONIC, nullptr, &id) != 0) ::_exit(3);
       Wait();
     }, "task 1 (", 1, "): it has 1 POSIX timer(s) (timer_create): not supported"},
    {"SysV shm", [](const std::string&) {
       int shm = ::shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
       if (shm < 0 || ::shmat(shm, nullptr, 0) == reinterpret_cast<void*>(-1)) ::_exit(3);
       ::shmctl(shm, IPC_RMID, nullptr);  // gone with the task
       Wait();
     }, "task 1 (", 1, "(/SYSV00000000 (deleted)) attaches System V segment "},
    // In a child: the root's pages are already streamed into the target
    // directory when the child is refused, and must go again.
    {"deleted file", [](const std::string& work) {
       if (::fork() != 0) Wait();
       std::string path = work + "/mapped";
       int fd = ::open(path.c_str(), O_RDWR | O_CREAT, 0644);
       if (fd < 0 || ::ftruncate(fd, 8192) != 0 || ::mmap(nullptr, 8192, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED) ::_exit(3);
       ::close(fd);
       ::unlink(path.c_str());
       Wait();
     }, "task 2 (", 2, "/mapped (deleted)) maps a deleted file"},
};

TEST(MmDump, RefusesPosixTimersSysvShmAndDeletedMappings) {
  for (const Refused& r : kRefused) {
    std::string err = InSandbox([&] {
      TempDir work;
      std::string images = work.File("images");
      pid_t root = StartTreeInNewPidNs([&] { r.init(work.path()); });
      EXPECT_OR_RETURN(root > 0, "clone");
      for (int i = 0; i < 300 && TreeBelow(root).size() < r.tasks; ++i) ::usleep(10000);
      // Every task set up and in its pause() (a loaded machine may still be
      // running its shmat when the tree is complete).
      for (int i = 0; i < 300; ++i) {
        std::vector<pid_t> now = TreeBelow(root);
        if (now.size() == r.tasks && std::all_of(now.begin(), now.end(), [](pid_t p) { return TaskState(p) == 'S'; })) break;
        ::usleep(10000);
      }
      ::usleep(100000);
      std::vector<pid_t> tree = TreeBelow(root);
      std::vector<std::string> maps_before, maps_after;
      for (pid_t p : tree) maps_before.push_back(ReadText("/proc/" + Str(p) + "/maps"));
      RunResult d = RunDump(root, images);
      std::string states;
      for (pid_t p : tree) {
        states += TaskState(p);
        maps_after.push_back(ReadText("/proc/" + Str(p) + "/maps"));
      }
      KillTree(root);
      EXPECT_OR_RETURN(tree.size() == r.tasks, "tree of " + Str(static_cast<long long>(tree.size())));
      EXPECT_OR_RETURN(d.status == 3, "exit " + Str(d.status) + " (a refusal is 3): " + d.err);
      EXPECT_OR_RETURN(d.err.find(r.message) != std::string::npos && (r.what == nullptr || d.err.find(r.what) != std::string::npos), d.err);
      EXPECT_OR_RETURN(std::count(d.err.begin(), d.err.end(), '\n') == 1, "one line: " + d.err);
      std::string changed;
      for (size_t i = 0; i < maps_before.size() && i < maps_after.size(); ++i) {
        if (maps_before[i] != maps_after[i]) changed += "task " + Str(tree[i]) + " before:\n" + maps_before[i] + "after:\n" + maps_after[i];
      }
      EXPECT_OR_RETURN(states == std::string(r.tasks, 'S') && changed.empty(), "left " + states + (changed.empty() ? "" : " with other maps:\n" + changed));
      EXPECT_OR_RETURN(::access(images.c_str(), F_OK) != 0, "the image directory was left behind");
      return std::string();
    });
    EXPECT_EQ(err, "") << r.name;
  }
}

}  // namespace
}  // namespace ro::test
