// A task's attributes come back exactly after dump, kill and restore:
// test/helpers/attrs_prog's tree (a root with a second thread, a child and
// a grandchild) sets resource limits, nice, a child-subreaper flag,
// no_new_privs, a umask, a timer slack, the TSC disabled, signal
// dispositions (SA_RESETHAND, flags and masks at SIG_DFL), advice on pages
// (MADV_WIPEONFORK, DONTFORK, DONTDUMP, HUGEPAGE, NOHUGEPAGE, MERGEABLE,
// SEQUENTIAL, RANDOM) and a parent-death signal, each task and thread its
// own. Checked from outside (/proc: limits, status, stat, timerslack_ns,
// smaps), through what each task reads of itself, by a child forked after
// the restore (the WIPEONFORK page is wiped, the DONTFORK page absent), by
// SIGINT (its handler runs once), and by killing the grandchild's parent
// (its parent-death signal arrives, and not before). verify agrees, and
// names each difference once the images are changed; the dump refuses what
// no restore could give back, leaving the tree running.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "sys/proc.h"
#include "sys/proc_mm.h"
#include "sys/proc_tree.h"
#include "sys/process.h"
#include "test/helpers/mm_images.h"
#include "test/helpers/sandbox.h"
#include "test/helpers/test_util.h"

namespace ro::test {
namespace {

#define EXPECT_OR_RETURN(cond, msg)                                          \
  do {                                                                       \
    if (!(cond)) return std::string(#cond) + " failed: " + std::string(msg); \
  } while (0)

using Fields = std::map<std::string, std::string>;

std::string Str(long long v) { return std::to_string(v); }

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%#llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string AttrsProg() { return std::string(RO_HELPERS_DIR) + "/attrs_prog"; }

// The key=value words of `path` once `ok` holds for them (every 10 ms for
// up to `ms`); empty when it never did. A record attrs_prog rewrites in
// place is taken whole only (its seq and end agree).
Fields WaitFor(const std::string& path, const std::function<bool(Fields&)>& ok, int ms = 5000) {
  for (int waited = 0; waited <= ms; waited += 10) {
    Fields f = KeyValues(ReadText(path));
    if (!f.empty() && f["seq"] == f["end"] && ok(f)) return f;
    ::usleep(10000);
  }
  return {};
}

// The record of `path` as it is now.
Fields Now(const std::string& path) {
  return WaitFor(path, [](Fields&) { return true; });
}

Fields WaitCounter(const std::string& path, uint64_t at_least) {
  return WaitFor(path, [&](Fields& f) { return NumberOf(f, "counter") >= at_least; });
}

// The value after "Key:" in /proc/PID/status (or a task's), trimmed.
std::string StatusField(const std::string& status_path, const std::string& key) {
  std::istringstream in(ReadText(status_path));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key + ":", 0) != 0) continue;
    size_t at = line.find_first_not_of(" \t", key.size() + 1);
    return at == std::string::npos ? "" : line.substr(at);
  }
  return "";
}

// "soft hard" of a /proc/PID/limits line ("Max open files").
std::string LimitsLine(pid_t pid, const std::string& name) {
  std::istringstream in(ReadText("/proc/" + Str(pid) + "/limits"));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name, 0) != 0) continue;
    std::istringstream words(line.substr(name.size()));
    std::string soft, hard;
    words >> soft >> hard;
    return soft + " " + hard;
  }
  return "";
}

long NiceOf(const std::string& stat_path) {
  auto st = sys::ParseProcStatMm(ReadText(stat_path));
  return st.ok() ? st->nice : 99;
}

// The VmFlags of the VMA of `pid` holding `addr`.
std::string VmFlagsAt(pid_t pid, uint64_t addr) {
  auto vmas = sys::ReadVmas(pid);
  if (!vmas.ok()) return "";
  for (const sys::Vma& v : *vmas) {
    if (v.start <= addr && addr < v.end) return " " + v.vm_flags + " ";
  }
  return "";
}

// The thread of `pid` that is not `pid` itself (as the caller sees it).
pid_t OtherThread(pid_t pid) {
  auto tids = sys::ReadThreadIds(pid);
  if (!tids.ok()) return 0;
  for (pid_t tid : *tids) {
    if (tid != pid) return tid;
  }
  return 0;
}

// The id, in the tree's namespace, of attrs_prog's second thread (DIR/thread).
pid_t ReportingThread(const std::string& dir) {
  Fields f = WaitFor(dir + "/thread", [](Fields& x) { return !x["tid"].empty(); });
  return static_cast<pid_t>(NumberOf(f, "tid"));
}

// attrs_prog started in a new PID namespace, running, every task and the
// second thread reporting.
std::string Start(const std::string& w, pid_t& root, const char* extra = nullptr) {
  root = StartTreeInNewPidNs([&] {
    ::execl(AttrsProg().c_str(), "attrs_prog", w.c_str(), extra, nullptr);
    ::_exit(127);
  });
  EXPECT_OR_RETURN(root > 0, "clone");
  EXPECT_OR_RETURN(!WaitCounter(w + "/root", 3).empty() && !WaitCounter(w + "/leaf", 3).empty() &&
                       !Now(w + "/layout").empty(),
                   "attrs_prog did not start: " + ReadText(w + "/root") + ReadText(w + "/leaf") + ReadText(w + "/layout"));
  return "";
}

// Dump (which kills the tree), restore --detach, verify; `restored` the new root.
std::string Cycle(pid_t root, const std::string& images, pid_t& restored) {
  RunResult d = RunDump(root, images);
  ::waitpid(root, nullptr, 0);
  EXPECT_OR_RETURN(d.status == 0, "dump: " + d.err);
  RunResult r = RunCommand({RestoreOrch(), "--images", images, "--detach", "--check-pages"});
  EXPECT_OR_RETURN(r.status == 0, "restore: " + r.err);
  restored = static_cast<pid_t>(std::atoi(r.out.c_str()));
  EXPECT_OR_RETURN(restored > 0, "restore printed no pid: " + r.out);
  return "";
}

TEST(Attrs, EveryAttributeComesBackExactly) {
  std::string err = InSandbox([] {
    TempDir work, images;
    KillAtEnd tree;
    const std::string w = work.path();
    pid_t root = 0;
    if (std::string e = Start(w, root); !e.empty()) return e;
    Fields before = Now(w + "/root");
    Fields layout = Now(w + "/layout");
    pid_t inner_thread = ReportingThread(w);
    EXPECT_OR_RETURN(before["tsc"] == "2" && before["nnp"] == "1" && before["umask"] == "027" && inner_thread > 0,
                     "attrs_prog did not set its attributes: " + ReadText(w + "/root"));
    if (std::string e = Cycle(root, images.path(), tree.pid); !e.empty()) return e;
    const pid_t r = tree.pid;
    RunResult v = RunCommand({RestoreOrch(), "verify", "--images", images.path(), "--pid", Str(r)});
    EXPECT_OR_RETURN(v.status == 0, "verify: " + v.out + v.err);
    std::vector<pid_t> tasks = TreeBelow(r);
    EXPECT_OR_RETURN(tasks.size() == 3, "restored tree of " + Str(static_cast<long long>(tasks.size())) + " tasks");
    const pid_t middle = tasks[1], leaf = tasks[2];
    const pid_t thread = OtherThread(r);
    EXPECT_OR_RETURN(thread > 0, "the second thread did not come back");

    // From outside.
    const std::string proc = "/proc/" + Str(r) + "/";
    EXPECT_OR_RETURN(LimitsLine(r, "Max open files") == "200 300", "limits: " + LimitsLine(r, "Max open files"));
    EXPECT_OR_RETURN(LimitsLine(r, "Max stack size").rfind("4194304 ", 0) == 0, "limits: " + LimitsLine(r, "Max stack size"));
    EXPECT_OR_RETURN(LimitsLine(leaf, "Max open files") == "100 150", "the grandchild's limits: " + LimitsLine(leaf, "Max open files"));
    EXPECT_OR_RETURN(StatusField(proc + "status", "NoNewPrivs") == "1" && StatusField(proc + "status", "Umask") == "0027",
                     "status: " + ReadText(proc + "status"));
    const std::string other = proc + "task/" + Str(thread) + "/";
    EXPECT_OR_RETURN(StatusField(other + "status", "NoNewPrivs") == "0", "the second thread's no_new_privs");
    EXPECT_OR_RETURN(StatusField("/proc/" + Str(leaf) + "/status", "Umask") == "0077", "the grandchild's umask");
    EXPECT_OR_RETURN(NiceOf(proc + "stat") == 7 && NiceOf(other + "stat") == 3 && NiceOf("/proc/" + Str(leaf) + "/stat") == 2,
                     "nice " + Str(NiceOf(proc + "stat")) + " " + Str(NiceOf(other + "stat")));
    EXPECT_OR_RETURN(ReadText(proc + "timerslack_ns") == "123456\n", "timerslack_ns " + ReadText(proc + "timerslack_ns"));
    struct Advice {
      const char* page;
      const char* flag;
    };
    for (Advice a : {Advice{"wipe", "wf"}, Advice{"dontfork", "dc"}, Advice{"dontdump", "dd"}, Advice{"huge", "hg"},
                     Advice{"nohuge", "nh"}, Advice{"merge", "mg"}, Advice{"seqread", "sr"}, Advice{"randread", "rr"}}) {
      if (layout[std::string(a.page) + "_ok"] != "1") continue;  // the kernel has no THP or KSM
      std::string flags = VmFlagsAt(r, NumberOf(layout, a.page));
      EXPECT_OR_RETURN(flags.find(std::string(" ") + a.flag + " ") != std::string::npos,
                       std::string("the ") + a.page + " page's VmFlags lack " + a.flag + ":" + flags);
    }

    // What each task and thread reads of itself, fresh after the restore.
    uint64_t dumped = NumberOf(Now(w + "/root"), "counter");
    Fields s = WaitCounter(w + "/root", dumped + 3);
    EXPECT_OR_RETURN(!s.empty() && s["cookie"] == before["cookie"], "the root did not go on: " + ReadText(w + "/root"));
    for (const char* key : {"pdeath", "subreaper", "tsc", "nnp", "umask", "slack", "nice", "nofile", "stack", "int_flags", "int_default",
                            "quit_flags", "quit_usr2", "usr1_default", "usr1_flags", "secret"}) {
      EXPECT_OR_RETURN(s[key] == before[key], std::string(key) + " changed: " + before[key] + " -> " + s[key]);
    }
    EXPECT_OR_RETURN(s["subreaper"] == "1" && s["slack"] == "123456" && s["nice"] == "7" && s["nofile"] == "200/300" &&
                         (NumberOf(s, "int_flags") & 0x80000000u) && (NumberOf(s, "usr1_flags") & 0x80000000u) && s["usr1_default"] == "1" &&
                         (NumberOf(s, "quit_flags") & 0x50000000u) == 0x50000000u && s["quit_usr2"] == "1",
                     ReadText(w + "/root"));
    const std::string thread_file = w + "/thread";
    Fields t = WaitFor(thread_file, [](Fields& f) { return f["tsc"] == "1"; });
    EXPECT_OR_RETURN(!t.empty() && t["slack"] == "77777" && t["nice"] == "3" && t["nnp"] == "0" && t["cookie"] == before["cookie"],
                     "the second thread: " + ReadText(thread_file));
    Fields l = WaitCounter(w + "/leaf", NumberOf(Now(w + "/leaf"), "counter") + 2);
    EXPECT_OR_RETURN(!l.empty() && l["pdeath"] == "15" && l["nice"] == "2" && l["umask"] == "077" && l["nofile"] == "100/150",
                     "the grandchild: " + ReadText(w + "/leaf"));

    // A child forked now: the WIPEONFORK page is wiped, the DONTFORK one absent.
    work.Write("fork-request", "1");
    Fields forked = WaitFor(w + "/forked", [](Fields& f) { return !f["wiped"].empty(); });
    EXPECT_OR_RETURN(!forked.empty() && forked["wiped"] == "1" && forked["dontfork_mapped"] == "0",
                     "the forked child saw: " + ReadText(w + "/forked"));
    // SA_RESETHAND: the handler runs once, then SIGINT is at SIG_DFL.
    EXPECT_OR_RETURN(::kill(r, SIGINT) == 0, "kill SIGINT");
    EXPECT_OR_RETURN(!WaitFor(w + "/root", [](Fields& f) { return f["ints"] == "1" && f["int_default"] == "1"; }).empty(),
                     "SIGINT's handler: " + ReadText(w + "/root"));
    // The parent-death signal follows the restored parent: not sent as
    // restore-orch exited, sent as the grandchild's parent dies.
    EXPECT_OR_RETURN(ReadText(w + "/leaf-term").empty(), "the grandchild got its parent-death signal too early");
    EXPECT_OR_RETURN(::kill(middle, SIGKILL) == 0, "kill the grandchild's parent");
    EXPECT_OR_RETURN(!WaitFor(w + "/leaf-term", [](Fields& f) { return f["got"] == "SIGTERM"; }).empty(),
                     "the grandchild did not get SIGTERM when its parent died");
    return std::string();
  });
  EXPECT_EQ(err, "");
}

// An image file as JSON, changed by `edit`, written back.
std::string EditImage(const TempDir& images, const std::string& name, const std::function<void(nlohmann::json&)>& edit) {
  RunResult decoded = RunCommand({RestoreOrch(), "image", "decode", images.File(name)});
  auto json = nlohmann::json::parse(decoded.out, nullptr, false);
  EXPECT_OR_RETURN(decoded.status == 0 && !json.is_discarded(), "image decode " + name + ": " + decoded.err);
  edit(json["entries"][0]);
  RunResult encoded = RunCommand({RestoreOrch(), "image", "encode", "-o", images.File(name + ".new")}, json.dump());
  EXPECT_OR_RETURN(encoded.status == 0, "image encode " + name + ": " + encoded.err);
  EXPECT_OR_RETURN(::rename(images.File(name + ".new").c_str(), images.File(name).c_str()) == 0, "rename " + name);
  return "";
}

TEST(Attrs, VerifyNamesEachDifference) {
  std::string err = InSandbox([] {
    TempDir work, images;
    KillAtEnd tree;
    const std::string w = work.path();
    pid_t root = 0;
    if (std::string e = Start(w, root); !e.empty()) return e;
    pid_t thread = ReportingThread(w);  // in the tree's namespace
    pid_t leaf = static_cast<pid_t>(NumberOf(Now(w + "/leaf"), "pid"));
    uint64_t wipe = NumberOf(Now(w + "/layout"), "wipe");
    if (std::string e = Cycle(root, images.path(), tree.pid); !e.empty()) return e;
    RunResult same = RunCommand({RestoreOrch(), "verify", "--images", images.path(), "--pid", Str(tree.pid)});
    EXPECT_OR_RETURN(same.status == 0, "verify: " + same.out + same.err);
    // The images changed, one value of each kind.
    std::string e;
    auto edit = [&](const std::string& name, const std::function<void(nlohmann::json&)>& f) {
      if (e.empty()) e = EditImage(images, name, f);
    };
    edit("core-1.img", [](nlohmann::json& c) {
      c["tc"]["rlimits"]["rlimits"][7]["cur"] = 150;
      c["tc"]["child_subreaper"] = false;
      c["tc"]["oom_score_adj"] = 10;
      c["tc"]["sigactions"][1]["flags"] = c["tc"]["sigactions"][1]["flags"].get<uint64_t>() & ~uint64_t{0x80000000};
      c["thread_core"]["sched_nice"] = 5;
      c["thread_core"]["creds"]["no_new_privs"] = 0;
    });
    edit("core-" + Str(thread) + ".img", [](nlohmann::json& c) { c["thread_core"]["sched_nice"] = 4; });
    edit("core-" + Str(leaf) + ".img", [](nlohmann::json& c) { c["thread_core"]["pdeath_sig"] = 10; });
    edit("fs-1.img", [](nlohmann::json& f) { f["umask"] = 022; });
    edit("attrs-1.img", [](nlohmann::json& a) {
      a["timer_slack_ns"] = 5000;
      a["tsc_mode"] = 1;
    });
    edit("mm-1.img", [&](nlohmann::json& m) {
      for (auto& vma : m["vmas"]) {
        if (vma["start"].get<uint64_t>() == wipe) vma.erase("madv");
      }
    });
    if (!e.empty()) return e;
    RunResult v = RunCommand({RestoreOrch(), "verify", "--images", images.path(), "--pid", Str(tree.pid)});
    char vma[128];
    std::snprintf(vma, sizeof(vma), "task 1: VMA %#llx-%#llx: madvise MADV_WIPEONFORK at %#llx, images say none",
                  static_cast<unsigned long long>(wipe), static_cast<unsigned long long>(wipe + 4096), static_cast<unsigned long long>(wipe));
    for (const std::string& want : {std::string("task 1: RLIMIT_NOFILE 200/300, images say 150/300"),
                                    std::string("task 1: is a child subreaper, images say it is not"),
                                    std::string("task 1: oom_score_adj 0, images say 10"),
                                    std::string("task 1: signal 2: handler "),
                                    std::string("task 1: nice 7, images say 5"),
                                    std::string("task 1: NoNewPrivs 1, images say 0"),
                                    "task 1 thread " + Str(thread) + ": nice 3, images say 4",
                                    "task " + Str(leaf) + ": parent-death signal 15, images say 10",
                                    std::string("task 1: umask 027, images say 022"),
                                    std::string("task 1: timer slack 123456 ns, images say 5000"),
                                    std::string("task 1: TSC mode 2 (1 enabled, 2 SIGSEGV), images say 1"), std::string(vma)}) {
      EXPECT_OR_RETURN(v.out.find(want + (want.back() == ' ' ? "" : "\n")) != std::string::npos || v.out.find(want) != std::string::npos,
                       "verify does not say \"" + want + "\":\n" + v.out + v.err);
    }
    EXPECT_OR_RETURN(v.status == 1 && v.out.find("12 differences") != std::string::npos, "verify:\n" + v.out + v.err);
    return std::string();
  });
  EXPECT_EQ(err, "");
}

// What else a task that continued keeps: its personality and itimers, each
// thread's name, blocked signals and sigaltstack, and the mlock of a page.
// They come back; verify finds nothing changed while the itimers run down,
// nor in images that name the second thread longer than its comm holds and
// block SIGKILL and SIGSTOP (which the kernel never blocks); then, once
// attrs_prog changed each (DIR/change-request), it names each change.
TEST(Attrs, VerifySeesEachChangeOfAContinuedTask) {
  std::string err = InSandbox([] {
    TempDir work, images;
    KillAtEnd tree;
    const std::string w = work.path();
    pid_t root = 0;
    if (std::string e = Start(w, root); !e.empty()) return e;
    pid_t thread = ReportingThread(w);  // in the tree's namespace
    Fields layout = Now(w + "/layout");
    EXPECT_OR_RETURN(layout["locked_ok"] == "1", "mlock: " + ReadText(w + "/layout"));
    const uint64_t locked = NumberOf(layout, "locked"), altstack = NumberOf(layout, "altstack");
    if (std::string e = Cycle(root, images.path(), tree.pid); !e.empty()) return e;
    const pid_t r = tree.pid;
    const std::string other = "/proc/" + Str(r) + "/task/" + Str(OtherThread(r)) + "/";
    EXPECT_OR_RETURN(ReadText("/proc/" + Str(r) + "/personality") == "00040000\n", "personality " + ReadText("/proc/" + Str(r) + "/personality"));
    EXPECT_OR_RETURN(VmFlagsAt(r, locked).find(" lo ") != std::string::npos, "the locked page's VmFlags:" + VmFlagsAt(r, locked));
    EXPECT_OR_RETURN(ReadText(other + "comm") == "attrs-second-th\n", "the second thread's name " + ReadText(other + "comm"));
    EXPECT_OR_RETURN(StatusField(other + "status", "SigBlk") == "0000000008000000", "the second thread's SigBlk");
    ::usleep(300000);  // the itimers run down
    RunResult same = RunCommand({RestoreOrch(), "verify", "--images", images.path(), "--pid", Str(r)});
    EXPECT_OR_RETURN(same.status == 0, "verify: " + same.out + same.err);
    constexpr uint64_t kUnblockable = (uint64_t{1} << (SIGKILL - 1)) | (uint64_t{1} << (SIGSTOP - 1));
    std::string e = EditImage(images, "core-1.img", [&](nlohmann::json& c) {
      c["thread_core"]["blk_sigset"] = c["thread_core"]["blk_sigset"].get<uint64_t>() | kUnblockable;
    });
    if (e.empty()) {
      e = EditImage(images, "core-" + Str(thread) + ".img", [&](nlohmann::json& c) {
        c["thread_core"]["blk_sigset"] = c["thread_core"]["blk_sigset"].get<uint64_t>() | kUnblockable;
        c["thread_core"]["comm"] = "attrs-second-thread";
      });
    }
    if (!e.empty()) return e;
    same = RunCommand({RestoreOrch(), "verify", "--images", images.path(), "--pid", Str(r)});
    EXPECT_OR_RETURN(same.status == 0, "verify, SIGKILL, SIGSTOP and a long name in the images: " + same.out + same.err);

    work.Write("change-request", "1");
    EXPECT_OR_RETURN(!WaitFor(w + "/root", [](Fields& f) { return f["changed"] == "1"; }).empty() &&
                         !WaitFor(w + "/thread", [](Fields& f) { return f["changed"] == "1"; }).empty(),
                     "attrs_prog did not change: " + ReadText(w + "/root") + ReadText(w + "/thread"));
    RunResult v = RunCommand({RestoreOrch(), "verify", "--images", images.path(), "--pid", Str(r)});
    const std::string t = "task 1 thread " + Str(thread);
    const std::string stack = Hex(altstack) + " of 65536 bytes";
    for (const std::string& want : {"task 1: sigaltstack " + stack + " SS_AUTODISARM, images say " + stack,
                                    t + ": sigaltstack none, images say " + Hex(NumberOf(layout, "thread_altstack")) + " of 65536 bytes",
                                    std::string("task 1: blocked signals (SigBlk) 0x20400000, images say 0x20000000"),
                                    t + ": blocked signals (SigBlk) 0x8400000, images say 0x8000000",
                                    t + ": name (comm) \"renamed\", images say \"attrs-second-th\"",
                                    "task 1: VMA " + Hex(locked) + "-" + Hex(locked + 4096) + ": not locked at " + Hex(locked) +
                                        ", images say locked (MAP_LOCKED)",
                                    std::string("task 1: personality 0, images say 0x40000"),
                                    std::string("task 1: ITIMER_REAL armed, interval 2000.000000 s, images say armed, interval 1000.000000 s"),
                                    std::string("task 1: ITIMER_VIRTUAL disarmed, interval 0.000000 s, images say armed, interval 0.000000 s")}) {
      EXPECT_OR_RETURN(v.out.find(want + "\n") != std::string::npos, "verify does not say \"" + want + "\":\n" + v.out + v.err);
    }
    EXPECT_OR_RETURN(v.status == 1 && v.out.find("9 differences") != std::string::npos, "verify:\n" + v.out + v.err);
    return std::string();
  });
  EXPECT_EQ(err, "");
}

// Python 3 as a task that narrows its credentials: supplementary groups 5
// and 6, CAP_SYS_ADMIN and CAP_NET_ADMIN out of its bounding set,
// CAP_CHOWN and CAP_NET_RAW inheritable, CAP_NET_RAW ambient, securebits
// SECBIT_NOROOT locked, and a second thread that lowers its own permitted
// and effective sets to CAP_NET_RAW (credentials are per thread).
const char kCredsProgram[] = R"(
import ctypes, os, sys, threading, time
libc = ctypes.CDLL(None, use_errno=True)
def check(ret, what):
    if ret != 0:
        raise OSError(ctypes.get_errno(), what)
class Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
class Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]
def capset(eff, prm, inh):
    d = (Data * 2)(Data(eff & 0xffffffff, prm & 0xffffffff, inh & 0xffffffff), Data(eff >> 32, prm >> 32, inh >> 32))
    check(libc.syscall(126, ctypes.byref(Header(0x20080522, 0)), d), "capset")
def capget():
    d = (Data * 2)()
    check(libc.syscall(125, ctypes.byref(Header(0x20080522, 0)), d), "capget")
    return d[0].effective | d[1].effective << 32, d[0].permitted | d[1].permitted << 32
os.setgroups([5, 6])
for cap in (21, 12):
    check(libc.prctl(24, cap, 0, 0, 0), "PR_CAPBSET_DROP")
eff, prm = capget()
capset(eff, prm, 0x2001)
check(libc.prctl(47, 2, 13, 0, 0), "PR_CAP_AMBIENT_RAISE")
check(libc.prctl(28, 0x3, 0, 0, 0), "PR_SET_SECUREBITS")
ready = threading.Event()
def narrow():
    capset(0x2000, 0x2000, 0x2001)
    ready.set()
    while True:
        time.sleep(0.05)
threading.Thread(target=narrow, daemon=True).start()
ready.wait()
open(sys.argv[1], "w").write("ready\n")
while True:
    time.sleep(0.05)
)";

// The capability and group lines of each thread of `pid`, sorted (thread
// ids differ outside a restored namespace).
std::string ThreadCreds(pid_t pid) {
  std::vector<std::string> threads;
  auto tids = sys::ReadThreadIds(pid);
  if (!tids.ok()) return "?";
  for (pid_t tid : *tids) {
    std::string path = "/proc/" + Str(pid) + "/task/" + Str(tid) + "/status", line;
    for (const char* key : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "Groups"}) line += StatusField(path, key) + " ";
    threads.push_back(line);
  }
  std::sort(threads.begin(), threads.end());
  std::string out;
  for (const std::string& t : threads) out += t + "\n";
  return out;
}

// A task that continues gets back each thread's capability sets,
// securebits and supplementary groups; verify sees each changed.
TEST(Attrs, CapabilitiesSecurebitsAndGroupsComeBackPerThread) {
  std::string err = InSandbox([] {
    TempDir work, images;
    KillAtEnd tree;
    const std::string ready = work.File("ready");
    pid_t root = StartTreeInNewPidNs([&] {
      ::execl("/usr/bin/python3", "python3", "-c", kCredsProgram, ready.c_str(), nullptr);
      ::_exit(127);
    });
    EXPECT_OR_RETURN(root > 0, "clone");
    for (int i = 0; i < 500 && ReadText(ready).empty(); ++i) ::usleep(10000);
    EXPECT_OR_RETURN(!ReadText(ready).empty(), "the program did not start");
    std::string before = ThreadCreds(root);
    if (std::string e = Cycle(root, images.path(), tree.pid); !e.empty()) return e;
    std::string after = ThreadCreds(tree.pid);
    RunResult same = RunCommand({RestoreOrch(), "verify", "--images", images.path(), "--pid", Str(tree.pid)});
    EXPECT_OR_RETURN(before.find("0000000000002000 0000000000002000") != std::string::npos &&
                         before.find("000001fffedfefff 0000000000002000 5 6") != std::string::npos,
                     "the program's credentials:\n" + before);
    EXPECT_OR_RETURN(after == before, "after the restore:\n" + after + "before:\n" + before);
    EXPECT_OR_RETURN(same.status == 0, "verify: " + same.out + same.err);
    std::string e = EditImage(images, "core-1.img", [](nlohmann::json& c) {
      c["thread_core"]["creds"]["cap_eff"] = nlohmann::json::array({0x2000, 0});
      c["thread_core"]["creds"]["groups"] = nlohmann::json::array({5});
      c["thread_core"]["creds"]["secbits"] = 1;
    });
    if (!e.empty()) return e;
    RunResult v = RunCommand({RestoreOrch(), "verify", "--images", images.path(), "--pid", Str(tree.pid)});
    // restore-orch's own effective set, as the main thread kept it, differs from host to host.
    std::string eff = "task 1: CapEff " + Hex(sys::StatusHex(ReadText("/proc/" + Str(tree.pid) + "/status"), "CapEff").value_or(0));
    for (const std::string& want : {eff + ", images say 0x2000\n",
                                    std::string("task 1: supplementary groups 5,6, images say 5"),
                                    std::string("task 1: securebits 0x3, images say 0x1")}) {
      EXPECT_OR_RETURN(v.out.find(want) != std::string::npos, "verify does not say \"" + want + "\":\n" + v.out + v.err);
    }
    EXPECT_OR_RETURN(v.status == 1, "verify:\n" + v.out + v.err);
    return std::string();
  });
  EXPECT_EQ(err, "");
}

// Python 3 as a tree of tasks with uids and gids of their own: the main
// thread takes gids 100/200/300/400 (real/effective/saved/fs) by raw
// syscalls (its threads keep theirs: credentials are per thread), a second
// thread uids 1000/1001/0/1000 (its effective capabilities go, as the
// kernel drops them for a non-zero euid), and a child drops to uid and gid
// 2000/3000 everywhere, without groups or capabilities. Each makes itself
// dumpable again, as a change of euid resets that.
const char kUsersProgram[] = R"(
import ctypes, os, sys, threading, time
libc = ctypes.CDLL(None, use_errno=True)
def check(ret, what):
    if ret != 0:
        raise OSError(ctypes.get_errno(), what)
r, w = os.pipe()
if os.fork() == 0:
    os.setgroups([])
    os.setresgid(3000, 3000, 3000)
    os.setresuid(2000, 2000, 2000)
    check(libc.prctl(4, 1, 0, 0, 0), "PR_SET_DUMPABLE")
    os.write(w, b"x")
    while True:
        time.sleep(0.05)
os.read(r, 1)
check(libc.syscall(119, 100, 200, 300), "setresgid")
libc.syscall(123, 400)
ready = threading.Event()
def become():
    check(libc.syscall(117, 1000, 1001, 0), "setresuid")
    libc.syscall(122, 1000)
    check(libc.prctl(4, 1, 0, 0, 0), "PR_SET_DUMPABLE")
    ready.set()
    while True:
        time.sleep(0.05)
threading.Thread(target=become, daemon=True).start()
ready.wait()
open(sys.argv[1], "w").write("ready\n")
while True:
    time.sleep(0.05)
)";

// Each thread of each task of the tree under `root`: its uid, gid, group,
// capability lines and the owner of its /proc directory, sorted (ids
// differ outside a restored PID namespace).
std::string TreeIds(pid_t root) {
  std::vector<std::string> threads;
  std::vector<pid_t> tasks = {root};
  for (size_t i = 0; i < tasks.size(); ++i) {
    std::istringstream children(ReadText("/proc/" + Str(tasks[i]) + "/task/" + Str(tasks[i]) + "/children"));
    for (pid_t c = 0; children >> c;) tasks.push_back(c);
    auto tids = sys::ReadThreadIds(tasks[i]);
    if (!tids.ok()) return "?";
    for (pid_t tid : *tids) {
      std::string dir = "/proc/" + Str(tasks[i]) + "/task/" + Str(tid), line;
      for (const char* key : {"Uid", "Gid", "Groups", "CapPrm", "CapEff"}) line += StatusField(dir + "/status", key) + " | ";
      struct stat st {};
      line += "owner " + (::stat(dir.c_str(), &st) == 0 ? Str(st.st_uid) + ":" + Str(st.st_gid) : "?");
      threads.push_back(line);
    }
  }
  std::sort(threads.begin(), threads.end());
  std::string out;
  for (const std::string& t : threads) out += t + "\n";
  return out;
}

// Every task and thread comes back with its own real, effective, saved and
// fs uids and gids (and the capabilities and groups that go with them);
// verify names a changed one.
TEST(Attrs, EachThreadKeepsItsUidsAndGids) {
  std::string err = InSandbox([] {
    TempDir work, images;
    KillAtEnd tree;
    const std::string ready = work.File("ready");
    pid_t root = StartTreeInNewPidNs([&] {
      ::execl("/usr/bin/python3", "python3", "-c", kUsersProgram, ready.c_str(), nullptr);
      ::_exit(127);
    });
    EXPECT_OR_RETURN(root > 0, "clone");
    for (int i = 0; i < 500 && ReadText(ready).empty(); ++i) ::usleep(10000);
    EXPECT_OR_RETURN(!ReadText(ready).empty(), "the program did not start");
    std::string before = TreeIds(root);
    for (const char* want : {"1000\t1001\t0\t1000 | 100\t200\t300\t400 |", "2000\t2000\t2000\t2000 | 3000\t3000\t3000\t3000 |",
                                    "0\t0\t0\t0 | 100\t200\t300\t400 |"}) {
      EXPECT_OR_RETURN(before.find(want) != std::string::npos, "the program's ids lack '" + std::string(want) + "':\n" + before);
    }
    // A restore-orch without CAP_SETUID could not give them back: the dump
    // refuses, in one line, and the tree runs on as it was.
    RunResult refused = RunCommand({"/usr/bin/setpriv", "--bounding-set=-setuid", RestoreOrch(), "dump", "--tree", Str(root), "--images",
                                    images.File("refused")});
    EXPECT_OR_RETURN(refused.status == 3 && refused.err.find("its credentials cannot be given back: setting its uids 1000/1001/0/1000 "
                                                             "needs CAP_SETUID, which restore-orch does not have") != std::string::npos,
                     "dump without CAP_SETUID: " + Str(refused.status) + " " + refused.err);
    EXPECT_OR_RETURN(TreeIds(root) == before, "after the refused dump:\n" + TreeIds(root));
    if (std::string e = Cycle(root, images.path(), tree.pid); !e.empty()) return e;
    std::string after = TreeIds(tree.pid);
    EXPECT_OR_RETURN(after == before, "after the restore:\n" + after + "before:\n" + before);
    RunResult same = RunCommand({RestoreOrch(), "verify", "--images", images.path(), "--pid", Str(tree.pid)});
    EXPECT_OR_RETURN(same.status == 0, "verify: " + same.out + same.err);
    std::string e = EditImage(images, "core-1.img", [](nlohmann::json& c) { c["thread_core"]["creds"]["egid"] = 201; });
    if (!e.empty()) return e;
    RunResult v = RunCommand({RestoreOrch(), "verify", "--images", images.path(), "--pid", Str(tree.pid)});
    const std::string want = "task 1: Gid 100/200/300/400 (real/effective/saved/fs), images say 100/201/300/400";
    EXPECT_OR_RETURN(v.status == 1 && v.out.find(want) != std::string::npos, "verify does not say \"" + want + "\":\n" + v.out + v.err);
    return std::string();
  });
  EXPECT_EQ(err, "");
}

// A pipe made by a task running as another user is owned by that user
// (the kernel gives it the maker's fsuid and fsgid), and fchmod(2) changes
// a pipe's mode; a restore makes each as root with pipe(2)'s 0600 and gives
// them back (pipe-owners.img); verify compares both, of root's pipes too.
const char kPipeOwnersProgram[] = R"py(
import os, sys, time
root_r, root_w = os.pipe()
os.dup2(root_r, 20)
chmodded_r, chmodded_w = os.pipe()
os.fchmod(chmodded_r, 0o640)
os.dup2(chmodded_r, 23)
if os.fork() == 0:
    os.setresgid(1001, 1001, 1001)
    os.setresuid(1000, 1000, 1000)
    r, w = os.pipe()
    os.dup2(r, 21)
    os.dup2(w, 22)
    os.write(root_w, b"x")
    while True:
        time.sleep(0.05)
os.read(root_r, 1)
open(sys.argv[1], "w").write("ready\n")
while True:
    time.sleep(0.05)
)py";

// "uid:gid" of the file each fd of `pid` names (as stat -L shows it), and
// its permission bits after a space when not 0600.
std::string Owner(pid_t pid, int fd) {
  struct stat st {};
  if (::stat(("/proc/" + Str(pid) + "/fd/" + Str(fd)).c_str(), &st) != 0) return "?";
  char mode[16] = "";
  if ((st.st_mode & 07777) != 0600) std::snprintf(mode, sizeof(mode), " %04o", st.st_mode & 07777);
  return Str(st.st_uid) + ":" + Str(st.st_gid) + mode;
}

TEST(Attrs, APipeComesBackOwnedByWhoMadeIt) {
  std::string err = InSandbox([] {
    TempDir work, images;
    KillAtEnd tree;
    const std::string ready = work.File("ready");
    pid_t root = StartTreeInNewPidNs([&] {
      ::execl("/usr/bin/python3", "python3", "-c", kPipeOwnersProgram, ready.c_str(), nullptr);
      ::_exit(127);
    });
    EXPECT_OR_RETURN(root > 0, "clone");
    for (int i = 0; i < 500 && ReadText(ready).empty(); ++i) ::usleep(10000);
    EXPECT_OR_RETURN(!ReadText(ready).empty(), "the program did not start");
    std::vector<pid_t> before = TreeBelow(root);
    EXPECT_OR_RETURN(before.size() == 2 && Owner(before[1], 21) == "1000:1001" && Owner(root, 20) == "0:0" && Owner(root, 23) == "0:0 0640",
                     "before: " + Owner(before.back(), 21) + " " + Owner(root, 20) + " " + Owner(root, 23));
    if (std::string e = Cycle(root, images.path(), tree.pid); !e.empty()) return e;
    std::vector<pid_t> after = TreeBelow(tree.pid);
    EXPECT_OR_RETURN(after.size() == 2, "the restored tree has " + Str(after.size()) + " tasks");
    EXPECT_OR_RETURN(Owner(after[1], 21) == "1000:1001" && Owner(after[1], 22) == "1000:1001" && Owner(tree.pid, 20) == "0:0" &&
                         Owner(tree.pid, 23) == "0:0 0640",
                     "after: " + Owner(after[1], 21) + " " + Owner(after[1], 22) + " " + Owner(tree.pid, 20) + " " + Owner(tree.pid, 23));
    RunResult same = RunCommand({RestoreOrch(), "verify", "--images", images.path(), "--pid", Str(tree.pid)});
    EXPECT_OR_RETURN(same.status == 0, "verify: " + same.out + same.err);
    // Root's pipe given away and made world-readable live: verify sees both.
    const std::string root_pipe = "/proc/" + Str(tree.pid) + "/fd/20";
    EXPECT_OR_RETURN(::chown(root_pipe.c_str(), 5, 6) == 0 && ::chmod(root_pipe.c_str(), 0644) == 0, "chown the root task's pipe");
    RunResult changed = RunCommand({RestoreOrch(), "verify", "--images", images.path(), "--pid", Str(tree.pid)});
    for (const char* want : {"task 1 fd 20: pipe owned by 5:6, images say 0:0", "task 1 fd 20: pipe mode 0644, images say 0600"}) {
      EXPECT_OR_RETURN(changed.status == 1 && changed.out.find(want) != std::string::npos,
                       "verify does not say \"" + std::string(want) + "\":\n" + changed.out + changed.err);
    }
    EXPECT_OR_RETURN(::chown(root_pipe.c_str(), 0, 0) == 0 && ::chmod(root_pipe.c_str(), 0600) == 0, "give the pipe back");
    std::string e = EditImage(images, "pipe-owners.img", [](nlohmann::json& o) { o["uid"] = 1002; });
    if (!e.empty()) return e;
    RunResult v = RunCommand({RestoreOrch(), "verify", "--images", images.path(), "--pid", Str(tree.pid)});
    // The first entry is the root task's pipe with mode 0640.
    const std::string want = "task 1 fd 23: pipe owned by 0:0, images say 1002:0";
    EXPECT_OR_RETURN(v.status == 1 && v.out.find(want) != std::string::npos, "verify does not say \"" + want + "\":\n" + v.out + v.err);
    return std::string();
  });
  EXPECT_EQ(err, "");
}

bool HaveCapSysResource() {
  auto has = sys::HasEffectiveCapability(CAP_SYS_RESOURCE);
  return has.ok() && *has;
}

TEST(Attrs, DumpRefusesWhatNoRestoreGivesBackAndTheTreeRunsOn) {
  std::string err = InSandbox([] {
    TempDir work, images;
    KillAtEnd tree;
    const std::string w = work.path();
    // The root task's parent-death signal concerns its parent outside the tree.
    if (std::string e = Start(w, tree.pid, "root-pdeath"); !e.empty()) return e;
    RunResult d = RunDump(tree.pid, images.File("dump"));
    EXPECT_OR_RETURN(d.status == 3 && d.err.find("task 1 (pid " + Str(tree.pid) + " here): it has parent-death signal 15") !=
                                          std::string::npos,
                     "dump: " + Str(d.status) + " " + d.err);
    size_t lines = 0;
    for (size_t at = d.err.find("restore-orch: dump: "); at != std::string::npos; at = d.err.find("restore-orch: dump: ", at + 1)) ++lines;
    EXPECT_OR_RETURN(lines == 1, "one line: " + d.err);
    EXPECT_OR_RETURN(::access(images.File("dump").c_str(), F_OK) != 0, "the dump left its directory");
    uint64_t at = NumberOf(Now(w + "/root"), "counter");
    EXPECT_OR_RETURN(!WaitCounter(w + "/root", at + 3).empty(), "the tree stopped running");
    return std::string();
  });
  EXPECT_EQ(err, "");
  if (HaveCapSysResource()) GTEST_SKIP() << "restore-orch can raise hard limits here (CAP_SYS_RESOURCE)";
  err = InSandbox([] {
    TempDir work, images;
    KillAtEnd tree;
    const std::string w = work.path();
    if (std::string e = Start(w, tree.pid); !e.empty()) return e;
    // restore-orch's own hard RLIMIT_NOFILE below the root task's 300: a
    // restore here could not give it back.
    RunResult d = RunCommand({"/bin/bash", "-c", "ulimit -n 250 && exec \"$0\" dump --tree \"$1\" --images \"$2\"", RestoreOrch(),
                              Str(tree.pid), images.File("dump")});
    EXPECT_OR_RETURN(d.status == 3 && d.err.find("core-1.img: entry 0: task 1: RLIMIT_NOFILE: hard limit 300 is above restore-orch's 250: "
                                                 "raising it needs CAP_SYS_RESOURCE") != std::string::npos,
                     "dump: " + Str(d.status) + " " + d.err);
    EXPECT_OR_RETURN(::access(images.File("dump").c_str(), F_OK) != 0, "the dump left its directory");
    uint64_t at = NumberOf(Now(w + "/root"), "counter");
    EXPECT_OR_RETURN(!WaitCounter(w + "/root", at + 3).empty(), "the tree stopped running");
    return std::string();
  });
  EXPECT_EQ(err, "");
}

}  // namespace
}  // namespace ro::test
