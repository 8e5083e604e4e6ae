// Namespaces of a tree other than its PID and mount namespaces, dumped and
// restored for real: a UTS namespace of the tree's own comes back as a new
// one with its host and domain name, checked from outside with nsenter(1);
// verify names a changed name; a task in another UTS namespace than the
// root task is refused at dump and the tree runs on.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "test/helpers/mm_images.h"
#include "test/helpers/sandbox.h"
#include "test/helpers/test_util.h"

namespace ro::test {
namespace {

#define EXPECT_OR_RETURN(cond, msg)                                          \
  do {                                                                       \
    if (!(cond)) return std::string(#cond) + " failed: " + std::string(msg); \
  } while (0)

std::string Str(long long v) { return std::to_string(v); }

struct KillAtEnd {
  pid_t pid = 0;
  ~KillAtEnd() {
    if (pid > 0) KillTree(pid);
  }
};

// Python 3 as the init of new PID and UTS namespaces: it names its UTS
// namespace, forks a child (which, with argv[2] "split", takes a UTS
// namespace of its own), writes argv[1] and runs on.
const char kUtsProgram[] = R"py(
import ctypes, os, socket, sys, time
libc = ctypes.CDLL(None, use_errno=True)
if libc.unshare(0x04000000) != 0:
    raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWUTS)")
socket.sethostname("box-1")
domain = b"example.org"
if libc.setdomainname(domain, len(domain)) != 0:
    raise OSError(ctypes.get_errno(), "setdomainname")
r, w = os.pipe()
if os.fork() == 0:
    if len(sys.argv) > 2 and sys.argv[2] == "split":
        libc.unshare(0x04000000)
    os.write(w, b"x")
    while True:
        time.sleep(0.05)
os.read(r, 1)
open(sys.argv[1], "w").write("ready\n")
while True:
    time.sleep(0.05)
)py";

pid_t StartUtsTree(const std::string& ready, const char* mode) {
  pid_t root = StartTreeInNewPidNs([&] {
    ::execl("/usr/bin/python3", "python3", "-c", kUtsProgram, ready.c_str(), mode, nullptr);
    ::_exit(127);
  });
  for (int i = 0; root > 0 && i < 500 && ReadText(ready).empty(); ++i) ::usleep(10000);
  return root;
}

// What the UTS namespace of `pid` says of itself, asked from outside by
// nsenter(1): "nodename domainname".
std::string UtsOf(pid_t pid) {
  RunResult r = RunCommand({"nsenter", "-t", Str(pid), "-u", "sh", "-c", "echo $(uname -n) $(cat /proc/sys/kernel/domainname)"});
  return r.status == 0 ? r.out : "nsenter failed: " + r.err;
}

std::string NsLink(pid_t pid) {
  char buf[64] = {};
  ssize_t n = ::readlink(("/proc/" + Str(pid) + "/ns/uts").c_str(), buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "?";
}

std::vector<pid_t> Children(pid_t pid) {
  std::vector<pid_t> out;
  std::istringstream in(ReadText("/proc/" + Str(pid) + "/task/" + Str(pid) + "/children"));
  for (pid_t c = 0; in >> c;) out.push_back(c);
  return out;
}

TEST(Namespaces, AUtsNamespaceComesBackWithItsNames) {
  std::string err = InSandbox([] {
    TempDir work, images;
    KillAtEnd tree;
    pid_t root = StartUtsTree(work.File("ready"), "");
    EXPECT_OR_RETURN(root > 0 && !ReadText(work.File("ready")).empty(), "the program did not start");
    EXPECT_OR_RETURN(UtsOf(root) == "box-1 example.org\n", "before: " + UtsOf(root));
    RunResult d = RunDump(root, images.path());
    ::waitpid(root, nullptr, 0);
    EXPECT_OR_RETURN(d.status == 0, "dump: " + d.err);
    RunResult r = RunCommand({RestoreOrch(), "--images", images.path(), "--detach"});
    EXPECT_OR_RETURN(r.status == 0, "restore: " + r.err);
    tree.pid = static_cast<pid_t>(std::atoi(r.out.c_str()));
    EXPECT_OR_RETURN(tree.pid > 0, "restore printed no pid: " + r.out);
    // Its own namespace again, named as it was, shared by its child; the
    // caller's names are untouched.
    EXPECT_OR_RETURN(UtsOf(tree.pid) == "box-1 example.org\n", "after: " + UtsOf(tree.pid));
    EXPECT_OR_RETURN(NsLink(tree.pid) != NsLink(::getpid()), "the restored tree shares the caller's UTS namespace");
    std::vector<pid_t> kids = Children(tree.pid);
    EXPECT_OR_RETURN(kids.size() == 1 && NsLink(kids[0]) == NsLink(tree.pid), "the child is not in its parent's UTS namespace");
    EXPECT_OR_RETURN(UtsOf(::getpid()) != "box-1 example.org\n", "the caller's names changed");
    RunResult dry = RunCommand({RestoreOrch(), "--images", images.path(), "--dry-run"});
    EXPECT_OR_RETURN(dry.out.find("hostname \"box-1\", domainname \"example.org\"") != std::string::npos, "dry run: " + dry.out);
    RunResult same = RunCommand({RestoreOrch(), "verify", "--images", images.path(), "--pid", Str(tree.pid)});
    EXPECT_OR_RETURN(same.status == 0, "verify: " + same.out + same.err);
    // The images' hostname changed: verify says so.
    std::string uts;
    for (const auto& e : std::filesystem::directory_iterator(images.path())) {
      if (e.path().filename().string().rfind("utsns-", 0) == 0) uts = e.path().filename().string();
    }
    EXPECT_OR_RETURN(!uts.empty(), "no utsns image");
    RunResult decoded = RunCommand({RestoreOrch(), "image", "decode", images.File(uts)});
    auto json = nlohmann::json::parse(decoded.out, nullptr, false);
    EXPECT_OR_RETURN(!json.is_discarded() && json["magic"] == "UTSNS", "image decode: " + decoded.out + decoded.err);
    json["entries"][0]["nodename"] = "box-2";
    RunResult encoded = RunCommand({RestoreOrch(), "image", "encode", "-o", images.File(uts)}, json.dump());
    EXPECT_OR_RETURN(encoded.status == 0, "image encode: " + encoded.err);
    RunResult v = RunCommand({RestoreOrch(), "verify", "--images", images.path(), "--pid", Str(tree.pid)});
    const std::string want = "task 1: hostname \"box-1\", images say \"box-2\"";
    EXPECT_OR_RETURN(v.status == 1 && v.out.find(want) != std::string::npos, "verify does not say '" + want + "':\n" + v.out + v.err);
    return std::string();
  });
  EXPECT_EQ(err, "");
}

TEST(Namespaces, ATaskInAnotherUtsNamespaceIsRefusedAndTheTreeRunsOn) {
  std::string err = InSandbox([] {
    TempDir work, images;
    KillAtEnd tree;
    tree.pid = StartUtsTree(work.File("ready"), "split");
    EXPECT_OR_RETURN(tree.pid > 0 && !ReadText(work.File("ready")).empty(), "the program did not start");
    std::vector<pid_t> kids = Children(tree.pid);
    EXPECT_OR_RETURN(kids.size() == 1 && NsLink(kids[0]) != NsLink(tree.pid), "the child did not take a UTS namespace of its own");
    RunResult d = RunDump(tree.pid, images.File("d"));
    EXPECT_OR_RETURN(d.status == 3 && d.err.find("it is in another UTS namespace than the tree's root") != std::string::npos,
                     "dump: " + Str(d.status) + " " + d.err);
    EXPECT_OR_RETURN(::access(images.File("d").c_str(), F_OK) != 0, "the refused dump left its directory");
    EXPECT_OR_RETURN(::kill(tree.pid, 0) == 0 && ::kill(kids[0], 0) == 0, "the tree is gone");
    EXPECT_OR_RETURN(ReadText("/proc/" + Str(kids[0]) + "/stat").find(") S ") != std::string::npos ||
                         ReadText("/proc/" + Str(kids[0]) + "/stat").find(") R ") != std::string::npos,
                     "the child is not running: " + ReadText("/proc/" + Str(kids[0]) + "/stat"));
    return std::string();
  });
  EXPECT_EQ(err, "");
}

}  // namespace
}  // namespace ro::test
