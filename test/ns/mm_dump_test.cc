// The memory dump, on real trees: test/helpers/mm_counter keeps a cookie and
// a counter in anonymous memory, on its heap and stack, and in a page shared
// with its child, with signal state of every kind; its dump, read back with
// restore-orch's own image reader, holds every VMA, the regions at their
// offsets, the registers, sigactions, mask, itimer and altstack, and it runs
// on untouched after --leave-running; crit reads it all. (mm_limits_test:
// a 64 MiB task, and what the memory dump refuses.)
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstring>
#include <map>
#include <sstream>

#include "images/kinds.h"
#include "images/proto/core.pb.h"
#include "images/proto/fdinfo.pb.h"
#include "images/proto/mm.pb.h"
#include "sys/proc_mm.h"
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
constexpr uint32_t kVmaRegular = 1u << 0, kVmaVsyscall = 1u << 2, kVmaVdso = 1u << 3, kVmaHeap = 1u << 5,
                   kVmaFilePrivate = 1u << 6, kVmaAnonShared = 1u << 8, kVmaAnonPrivate = 1u << 9, kVmaVvar = 1u << 12;

std::string Str(long long v) { return std::to_string(v); }
std::string Hex(uint64_t v) {
  std::ostringstream o;
  o << std::hex << "0x" << v;
  return o.str();
}

// Waits until DIR/state-PID says the counter reached `at_least`.
std::map<std::string, std::string> WaitState(const std::string& dir, int pid, uint64_t at_least) {
  for (int i = 0; i < 500; ++i) {
    auto f = KeyValues(ReadText(dir + "/state-" + Str(pid)));
    if (NumberOf(f, "counter") >= at_least) return f;
    ::usleep(10000);
  }
  return {};
}

// The region of mm_counter at `addr` in the dumped memory: "" when it holds
// the magic, cookie and a counter of at least 1, else what is wrong.
std::string CheckRegion(const ImageMemory& mem, uint64_t addr, const std::string& magic, uint64_t cookie, uint64_t* counter) {
  auto page = mem.Page(addr);
  if (!page) return magic + " at " + Hex(addr) + ": the page was not dumped";
  size_t off = addr % kPage;
  if (off + 32 > kPage) return magic + ": crosses a page";
  uint64_t c = 0, n = 0;
  std::memcpy(&c, page->data() + off + 8, 8);
  std::memcpy(&n, page->data() + off + 16, 8);
  if (page->compare(off, 8, magic) != 0) return magic + " at " + Hex(addr) + ": found \"" + page->substr(off, 8) + "\"";
  if (c != cookie) return magic + ": cookie " + Hex(c) + ", expected " + Hex(cookie);
  if (n == 0) return magic + ": counter 0";
  *counter = n;
  return "";
}

// Every VMA of the live task is in its mm, as the kernel shows it.
std::string CheckVmas(pid_t outer, const img::mm_entry& mm) {
  auto live = sys::ReadVmas(outer);
  EXPECT_OR_RETURN(live.ok(), "smaps");
  size_t at = 0;
  for (const sys::Vma& v : *live) {
    if (v.path == "[vvar_vclock]") continue;  // one VVAR VMA with [vvar], as CRIU 4.2 writes it
    EXPECT_OR_RETURN(at < static_cast<size_t>(mm.vmas_size()), "VMA " + Hex(v.start) + " missing");
    const img::vma_entry& e = mm.vmas(static_cast<int>(at++));
    std::string who = "VMA " + Hex(v.start) + " " + v.path;
    EXPECT_OR_RETURN(e.start() == v.start, who + ": start " + Hex(e.start()));
    if (v.path != "[vvar]") EXPECT_OR_RETURN(e.end() == v.end, who + ": end " + Hex(e.end()));
    uint32_t prot = (v.read ? PROT_READ : 0) | (v.write ? PROT_WRITE : 0) | (v.exec ? PROT_EXEC : 0);
    EXPECT_OR_RETURN(e.prot() == prot, who + ": prot " + Str(e.prot()));
    EXPECT_OR_RETURN(((e.flags() & MAP_SHARED) != 0) == v.shared && ((e.flags() & MAP_PRIVATE) != 0) == !v.shared, who + ": flags");
    EXPECT_OR_RETURN(((e.flags() & MAP_GROWSDOWN) != 0) == (v.path == "[stack]"), who + ": MAP_GROWSDOWN");
    EXPECT_OR_RETURN(e.fd() == -1, who + ": fd");
    uint32_t want = 0;
    if (v.path == "[vsyscall]") {
      want = kVmaVsyscall | kVmaAnonPrivate;
    } else if (v.path == "[vdso]") {
      want = kVmaRegular | kVmaVdso | kVmaAnonPrivate;
    } else if (v.path == "[vvar]") {
      want = kVmaRegular | kVmaVvar | kVmaAnonPrivate;
    } else if (v.path == "[heap]") {
      want = kVmaRegular | kVmaHeap | kVmaAnonPrivate;
    } else if (v.path == "/dev/zero (deleted)") {
      want = kVmaRegular | kVmaAnonShared;
      EXPECT_OR_RETURN(e.shmid() == v.inode, who + ": shmid " + Str(static_cast<long long>(e.shmid())));
    } else if (!v.path.empty() && v.path[0] == '/') {
      want = kVmaRegular | kVmaFilePrivate;
      EXPECT_OR_RETURN(e.pgoff() == v.offset && e.has_fdflags() && e.fdflags() == O_RDONLY, who + ": pgoff/fdflags");
    } else {
      want = kVmaRegular | kVmaAnonPrivate;
    }
    EXPECT_OR_RETURN(e.status() == want, who + ": status " + Hex(e.status()) + ", expected " + Hex(want));
    bool anon = !(want & kVmaFilePrivate);
    EXPECT_OR_RETURN(((e.flags() & MAP_ANONYMOUS) != 0) == anon, who + ": MAP_ANONYMOUS");
  }
  EXPECT_OR_RETURN(at == static_cast<size_t>(mm.vmas_size()), "more VMAs in the image than live");
  return "";
}

// crit reads every file of the dump, and `crit x DIR mems` the memory maps.
std::string CritReads(const std::string& dir) {
  if (RunCommand({"crit", "--help"}).status != 0) return "crit not found: run scripts/setup.sh (Debian package criu)";
  DIR* d = ::opendir(dir.c_str());
  EXPECT_OR_RETURN(d != nullptr, dir);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) names.push_back(e->d_name);
  ::closedir(d);
  for (const std::string& name : names) {
    auto parsed = images::ParseFileName(name);
    if (!parsed || parsed->kind->ours || parsed->kind->layout == images::Layout::kRaw) continue;
    RunResult r = RunCommand({"crit", "decode", "-i", dir + "/" + name});
    EXPECT_OR_RETURN(r.status == 0, "crit decode " + name + ": " + r.err);
  }
  RunResult mems = RunCommand({"crit", "x", dir, "mems"});
  EXPECT_OR_RETURN(mems.status == 0 && mems.out.find("shmem[") != std::string::npos && mems.out.find("[vdso]") != std::string::npos,
                   "crit x mems: " + mems.out + mems.err);
  return "";
}

// The registers of a task stopped in a nanosleep: written to re-issue it
// (ax = the syscall, ip back on the `syscall` instruction), sp as it was.
std::string CheckSleepRegs(const img::core_entry& core, const std::string& live_syscall, uint64_t nr) {
  const auto& r = core.thread_info().gpregs();
  std::istringstream in(live_syscall);
  std::vector<std::string> w;
  for (std::string s; in >> s;) w.push_back(s);
  EXPECT_OR_RETURN(w.size() == 9, "/proc/PID/syscall: " + live_syscall);
  uint64_t sp = std::strtoull(w[7].c_str(), nullptr, 0), pc = std::strtoull(w[8].c_str(), nullptr, 0);
  EXPECT_OR_RETURN(r.orig_ax() == nr, "orig_ax " + Hex(r.orig_ax()) + ": not frozen in syscall " + Str(static_cast<long long>(nr)));
  // Frozen in the sleep: written to re-issue it (ax the syscall number, ip
  // back on the syscall instruction). On a loaded machine the freeze may
  // come just as a sleep returned: ax 0, ip after the instruction.
  bool reissued = r.ax() == nr && r.ip() + 2 == pc, returned = r.ax() == 0 && r.ip() == pc;
  EXPECT_OR_RETURN(reissued || returned, "ax " + Hex(r.ax()) + " ip " + Hex(r.ip()) + " live pc " + Hex(pc) +
                                             ": the sleep is neither re-issued nor returned");
  EXPECT_OR_RETURN(r.sp() == sp, "sp " + Hex(r.sp()) + " live " + Hex(sp));
  EXPECT_OR_RETURN(r.mode() == img::NATIVE && r.cs() == 0x33 && r.fs_base() != 0, "mode/cs/fs_base");
  EXPECT_OR_RETURN(core.thread_info().tls_size() == 3 && core.thread_info().tls(0).entry_number() == 12, "tls entries");
  EXPECT_OR_RETURN(core.thread_info().fpregs().xmm_space_size() == 64 && core.thread_info().fpregs().mxcsr() != 0, "fpregs");
  return "";
}

TEST(MmDump, CounterImagesHoldItsMemoryRegistersAndSignalsAndItRunsOn) {
  std::string err = InSandbox([] {
    TempDir work, images;
    const std::string w = work.path();
    pid_t root = StartTreeInNewPidNs([&] {
      ::execl(MmCounter().c_str(), "mm_counter", w.c_str(), nullptr);
      ::_exit(127);
    });
    EXPECT_OR_RETURN(root > 0, "clone");
    auto parent_state = WaitState(w, 1, 2);
    auto child_state = WaitState(w, 2, 2);
    EXPECT_OR_RETURN(!parent_state.empty() && !child_state.empty(), "mm_counter did not start");
    std::vector<pid_t> tree = TreeBelow(root);
    EXPECT_OR_RETURN(tree.size() == 2, "tree of " + Str(static_cast<long long>(tree.size())));
    auto layout = KeyValues(ReadText(w + "/layout-1"));
    uint64_t cookie = std::strtoull(parent_state["cookie"].c_str(), nullptr, 16);
    // Both tasks sleep more than 99.9% of the time, but a loaded machine
    // can freeze one between two sleeps: dumped again then (the registers
    // checked below are those of a sleep).
    std::string dir;
    for (int attempt = 0; attempt < 5; ++attempt) {
      dir = images.File("dump" + Str(attempt));
      RunResult d = RunDump(root, dir, {"--leave-running", "--stats", work.File("stats.json")});
      EXPECT_OR_RETURN(d.status == 0, d.err);
      auto c1 = ReadImage(dir, "core-1.img"), c2 = ReadImage(dir, "core-2.img");
      EXPECT_OR_RETURN(c1 && c2, "core images");
      if (c1->As<img::core_entry>(0).thread_info().gpregs().orig_ax() == 230 &&
          c2->As<img::core_entry>(0).thread_info().gpregs().orig_ax() == 35) {
        break;
      }
    }
    // It runs on: the same pids count on, with the same cookie.
    auto after = WaitState(w, 1, NumberOf(parent_state, "counter") + 3);
    EXPECT_OR_RETURN(!after.empty() && TreeBelow(root) == tree, "the counter stopped after the dump");
    EXPECT_OR_RETURN(after["cookie"] == parent_state["cookie"], "cookie changed");
    // Asleep again, at the same instruction with the same stack pointer:
    // read while in its sleep (clock_nanosleep 230, nanosleep 35), not in
    // the write and rename of its state file between two sleeps.
    std::string syscall_live[2];
    for (int t = 0; t < 2; ++t) {
      const std::string sleep = t == 0 ? "230 " : "35 ";
      for (int i = 0; i < 500; ++i) {
        syscall_live[t] = ReadText("/proc/" + Str(tree[static_cast<size_t>(t)]) + "/syscall");
        if (syscall_live[t].rfind(sleep, 0) == 0) break;
        ::usleep(2000);
      }
    }

    if (std::string e = CritReads(dir); !e.empty()) return e;
    auto mm1 = ReadImage(dir, "mm-1.img"), mm2 = ReadImage(dir, "mm-2.img");
    auto core1 = ReadImage(dir, "core-1.img"), core2 = ReadImage(dir, "core-2.img");
    EXPECT_OR_RETURN(mm1 && mm2 && core1 && core2, "mm and core images");
    const auto& m1 = mm1->As<img::mm_entry>(0);
    const auto& m2 = mm2->As<img::mm_entry>(0);
    if (std::string e = CheckVmas(tree[0], m1); !e.empty()) return "task 1: " + e;
    if (std::string e = CheckVmas(tree[1], m2); !e.empty()) return "task 2: " + e;

    // The mm fields and the exe.
    auto files = ReadImage(dir, "files.img");
    EXPECT_OR_RETURN(files.has_value(), "files.img");
    const img::reg_file_entry* exe = nullptr;
    for (size_t i = 0; i < files->entries.size(); ++i) {
      const auto& f = files->As<img::file_entry>(i);
      if (f.id() == m1.exe_file_id() && f.has_reg()) exe = &f.reg();
    }
    struct stat helper_st {};
    ::stat(MmCounter().c_str(), &helper_st);
    EXPECT_OR_RETURN(exe != nullptr && exe->name() == MmCounter() && exe->size() == static_cast<uint64_t>(helper_st.st_size) &&
                         exe->build_id_size() >= 4,
                     "exe entry");
    EXPECT_OR_RETURN(m2.exe_file_id() == m1.exe_file_id(), "the two tasks name different exe entries");
    EXPECT_OR_RETURN(m1.vmas(0).shmid() == m1.exe_file_id(), "the binary's mapping is not the exe's entry");
    EXPECT_OR_RETURN(m1.mm_saved_auxv_size() >= 20 && m1.mm_saved_auxv_size() % 2 == 0 && m1.dumpable() == 1, "auxv/dumpable");
    uint64_t heap = NumberOf(layout, "heap");
    EXPECT_OR_RETURN(m1.mm_start_brk() <= heap && heap < m1.mm_brk() && m1.mm_start_code() == 0x401000 &&
                         m1.mm_start_stack() > NumberOf(layout, "stack"),
                     "mm fields: brk " + Hex(m1.mm_start_brk()) + "-" + Hex(m1.mm_brk()));

    // The regions, read back through pagemap and pages.
    ImageMemory mem1, mem2;
    EXPECT_OR_RETURN(mem1.Load(dir, "pagemap-1.img") && mem2.Load(dir, "pagemap-2.img"), "pagemaps");
    uint64_t anon = NumberOf(layout, "anon"), counters[5] = {};
    std::string e;
    if ((e = CheckRegion(mem1, anon + kPage, "RMANON01", cookie, &counters[0])) != "") return e;
    if ((e = CheckRegion(mem1, heap, "RMHEAP01", cookie, &counters[1])) != "") return e;
    if ((e = CheckRegion(mem1, NumberOf(layout, "stack"), "RMSTCK01", cookie, &counters[2])) != "") return e;
    if ((e = CheckRegion(mem2, NumberOf(child_state, "stack"), "RMCHLD01", cookie, &counters[3])) != "") return e;
    EXPECT_OR_RETURN(counters[0] == counters[1] && counters[1] == counters[2], "counters differ between regions");
    uint64_t hidden_counter = 0;  // PROT_NONE: read through /proc/PID/mem
    if ((e = CheckRegion(mem1, NumberOf(layout, "hidden"), "RMPROT01", cookie, &hidden_counter)) != "") return e;
    // Never touched, only read (the zero page), written with zeros: none dumped.
    EXPECT_OR_RETURN(!mem1.Covers(anon, anon + kPage) && !mem1.Covers(anon + 2 * kPage, anon + 4 * kPage), "zero pages were dumped");
    uint64_t alt = NumberOf(layout, "altstack");
    EXPECT_OR_RETURN(!mem1.Covers(alt, alt + NumberOf(layout, "altsize")), "the untouched altstack was dumped");
    // The shared page: one object, named by both tasks, dumped once.
    uint64_t shared = NumberOf(layout, "shared"), shmid = 0;
    for (const auto* m : {&m1, &m2}) {
      for (const auto& v : m->vmas()) {
        if (v.start() == shared) {
          EXPECT_OR_RETURN(v.status() == (kVmaRegular | kVmaAnonShared) && (shmid == 0 || shmid == v.shmid()), "shared VMA");
          shmid = v.shmid();
        }
      }
    }
    int shmem_files = 0;
    if (DIR* dd = ::opendir(dir.c_str())) {
      while (dirent* de = ::readdir(dd)) shmem_files += std::string(de->d_name).rfind("pagemap-shmem-", 0) == 0;
      ::closedir(dd);
    }
    EXPECT_OR_RETURN(shmid != 0 && shmem_files == 1, "shmem pagemaps: " + Str(shmem_files));
    ImageMemory shm;
    EXPECT_OR_RETURN(shm.Load(dir, "pagemap-shmem-" + Str(static_cast<long long>(shmid)) + ".img") && shm.pages() == 1, "shmem pagemap");
    if ((e = CheckRegion(shm, 0, "RMSHRD01", cookie, &counters[4])) != "") return e;
    EXPECT_OR_RETURN(counters[4] == counters[0], "shared counter");
    EXPECT_OR_RETURN(mem1.pages_id() != mem2.pages_id() && mem1.pages_id() != shm.pages_id(), "pages ids");

    // Registers: each frozen in its sleep (glibc's clock_nanosleep, the
    // child's raw nanosleep), written to sleep again.
    const auto& c1 = core1->As<img::core_entry>(0);
    const auto& c2 = core2->As<img::core_entry>(0);
    if ((e = CheckSleepRegs(c1, syscall_live[0], 230)) != "") return "task 1: " + e;
    if ((e = CheckSleepRegs(c2, syscall_live[1], 35)) != "") return "task 2: " + e;
    // Signal state.
    EXPECT_OR_RETURN(c1.tc().sigactions_size() == 62, "sigactions " + Str(c1.tc().sigactions_size()));
    const auto& usr2 = c1.tc().sigactions(SIGUSR2 - 2);  // 1..64 without SIGKILL (9)
    EXPECT_OR_RETURN(usr2.sigaction() == NumberOf(layout, "handler") && (usr2.flags() & SA_RESTART) && usr2.restorer() != 0 &&
                         usr2.mask() == (1ull << (SIGWINCH - 1)),
                     "SIGUSR2 sigaction " + Hex(usr2.sigaction()) + " flags " + Hex(usr2.flags()) + " mask " + Hex(usr2.mask()));
    EXPECT_OR_RETURN(c2.tc().sigactions(SIGUSR2 - 2).sigaction() == NumberOf(layout, "handler"), "child's SIGUSR2 handler");
    uint64_t usr1 = 1ull << (SIGUSR1 - 1);
    EXPECT_OR_RETURN((c1.tc().blk_sigset() & usr1) && c1.thread_core().blk_sigset() == c1.tc().blk_sigset(), "blocked mask");
    EXPECT_OR_RETURN(c1.tc().timers().real().isec() == 3600 && c1.tc().timers().real().vsec() <= 3600 &&
                         c1.tc().timers().real().vsec() > 3000 && c2.tc().timers().real().isec() == 0,
                     "itimers");
    EXPECT_OR_RETURN(c1.thread_core().sas().ss_sp() == alt && c1.thread_core().sas().ss_size() == NumberOf(layout, "altsize") &&
                         c1.thread_core().sas().ss_flags() == 0,
                     "sigaltstack");
    EXPECT_OR_RETURN(c1.thread_core().futex_rla() != 0 && c1.thread_core().futex_rla_len() == 24 &&
                         c1.thread_info().clear_tid_addr() != 0 && c1.thread_core().rseq_entry().rseq_abi_size() >= 20 &&
                         c1.tc().rlimits().rlimits_size() == 16 && c1.thread_core().creds().cap_eff_size() == 2,
                     "robust list, tid address, rseq, rlimits, creds");

    // Its handler still runs, its mask, timer, handler and altstack are as
    // it set them, and no sleep returned an error.
    ::kill(tree[0], SIGUSR2);
    std::map<std::string, std::string> handled;
    for (int i = 0; i < 300; ++i) {
      handled = KeyValues(ReadText(w + "/state-1"));
      if (handled["usr2"] == "1") break;
      ::usleep(10000);
    }
    EXPECT_OR_RETURN(handled["usr2"] == "1" && handled["intact"] == "1" && handled["bad"] == "0", ReadText(w + "/state-1"));
    auto child_after = KeyValues(ReadText(w + "/state-2"));
    EXPECT_OR_RETURN(child_after["bad"] == "0" && NumberOf(child_after, "counter") > NumberOf(child_state, "counter"), ReadText(w + "/state-2"));
    std::string stats = work.Read("stats.json");
    EXPECT_OR_RETURN(stats.find("\"pages_bytes\": " + Str(static_cast<long long>((mem1.pages() + mem2.pages() + 1) * kPage))) !=
                         std::string::npos,
                     stats);
    KillTree(root);
    return std::string();
  });
  EXPECT_EQ(err, "");
}

// The whole cycle with the restore that continues tasks: the dumped
// counter, killed, comes back and counts on from its dumped value with its
// cookie, both tasks, their shared page, handler, mask, itimer and altstack
// intact, no sleep returning an error.
TEST(MmDump, RestoredCounterContinuesWhereItWasDumped) {
  std::string err = InSandbox([] {
    TempDir work, images;
    const std::string w = work.path();
    pid_t root = StartTreeInNewPidNs([&] {
      ::execl(MmCounter().c_str(), "mm_counter", w.c_str(), nullptr);
      ::_exit(127);
    });
    EXPECT_OR_RETURN(root > 0, "clone");
    auto before = WaitState(w, 1, 3);
    EXPECT_OR_RETURN(!before.empty() && !WaitState(w, 2, 3).empty(), "mm_counter did not start");
    RunResult d = RunDump(root, images.path());
    EXPECT_OR_RETURN(d.status == 0, d.err);
    ::waitpid(root, nullptr, 0);
    auto dumped = KeyValues(ReadText(w + "/state-1"));
    uint64_t at_dump = NumberOf(dumped, "counter");
    RunResult r = RunCommand({RestoreOrch(), "--images", images.path(), "--detach"});
    EXPECT_OR_RETURN(r.status == 0, "restore: " + r.err);
    pid_t restored = static_cast<pid_t>(std::atoi(r.out.c_str()));
    auto after = WaitState(w, 1, at_dump + 5);
    auto child = WaitState(w, 2, at_dump + 5);
    EXPECT_OR_RETURN(!after.empty() && !child.empty(), "the restored counter does not count: " + ReadText(w + "/state-1"));
    EXPECT_OR_RETURN(after["cookie"] == before["cookie"] && child["cookie"] == before["cookie"], "cookie changed");
    EXPECT_OR_RETURN(after["intact"] == "1" && after["bad"] == "0" && child["bad"] == "0", ReadText(w + "/state-1"));
    EXPECT_OR_RETURN(child["intact"] == "1", "the child lost its rounding mode: " + ReadText(w + "/state-2"));
    EXPECT_OR_RETURN(NumberOf(after, "echo") + 3 >= NumberOf(after, "counter"), "the child does not echo through the shared page");
    ::kill(restored, SIGUSR2);
    std::map<std::string, std::string> handled;
    for (int i = 0; i < 300 && handled["usr2"] != "1"; ++i) {
      handled = KeyValues(ReadText(w + "/state-1"));
      ::usleep(10000);
    }
    EXPECT_OR_RETURN(handled["usr2"] == "1" && handled["intact"] == "1", ReadText(w + "/state-1"));
    KillTree(restored);
    return std::string();
  });
  EXPECT_EQ(err, "");
}

}  // namespace
}  // namespace ro::test
