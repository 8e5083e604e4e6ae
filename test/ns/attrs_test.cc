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

// Kills the tree whose root is `pid` on every way out of a test body.
struct KillAtEnd {
  pid_t pid = 0;
  ~KillAtEnd() {
    if (pid > 0) KillTree(pid);
  }
};

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
