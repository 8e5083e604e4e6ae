// A tree in a network namespace of its own, dumped and restored for real:
// it comes back in a new one with its loopback up, its addresses (one with
// a finite lifetime) and its sysctls, checked from outside with nsenter(1)
// and ip(8), and the restored program binds to its address; verify names
// what changed; crit reads the images. What is not restored (another link,
// a route, a rule, a sysctl outside CRIU's lists, a task in another
// network namespace) is refused at dump and the tree runs on; a failure in
// the namespace's restore is rolled back.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "test/helpers/live_tree.h"
#include "test/helpers/mm_images.h"
#include "test/helpers/sandbox.h"
#include "test/helpers/test_util.h"

namespace ro::test {
namespace {

// Python 3 as the init of a new PID namespace: it takes a network
// namespace of its own, brings lo up with three more addresses and sets
// three sysctls (argv[2] adds what a restore would not bring back: "veth",
// "qdisc", a route marked "proto kernel" ("kernelroute"),
// "route", "rule", "sysctl"; "split": the child takes a network namespace
// of its own), forks a child, writes argv[1] and runs on. Each time
// argv[1].go appears it binds a socket to 10.1.2.3 and writes the
// outcome to argv[1].bind (no socket is open while it waits).
const char kNetProgram[] = R"py(
import ctypes, os, socket, subprocess, sys, time
libc = ctypes.CDLL(None, use_errno=True)
mode = sys.argv[2]
if libc.unshare(0x40000000) != 0:
    raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET)")
def ip(*args):
    subprocess.run(["/sbin/ip"] + list(args), check=True)
ip("link", "set", "lo", "up")
ip("addr", "add", "10.1.2.3/8", "dev", "lo")
ip("-6", "addr", "add", "fd00::5/128", "dev", "lo")
ip("-6", "addr", "add", "fd00::6/128", "dev", "lo")
ip("-6", "addr", "add", "fd00::7/128", "dev", "lo")
ip("addr", "add", "10.1.2.4/8", "dev", "lo")
ip("addr", "add", "192.168.7.1/24", "dev", "lo", "valid_lft", "3600", "preferred_lft", "1800")
for path, value in (("ipv4/conf/all/forwarding", "1"), ("unix/max_dgram_qlen", "99"), ("ipv6/conf/lo/hop_limit", "33")):
    open("/proc/sys/net/" + path, "w").write(value)
if mode == "veth":
    ip("link", "add", "v0", "type", "veth", "peer", "name", "v1")
if mode == "route":
    ip("route", "add", "10.20.0.0/16", "dev", "lo")
if mode == "rule":
    ip("rule", "add", "from", "10.0.0.0/8", "table", "100")
if mode == "sysctl":
    open("/proc/sys/net/ipv4/tcp_keepalive_time", "w").write("600")
if mode == "qdisc":
    subprocess.run(["/sbin/tc", "qdisc", "add", "dev", "lo", "root", "pfifo", "limit", "10"], check=True)
if mode == "kernelroute":
    ip("route", "add", "10.9.0.0/16", "dev", "lo", "proto", "kernel")
r, w = os.pipe()
if os.fork() == 0:
    if mode == "split":
        libc.unshare(0x40000000)
    os.write(w, b"x")
    while True:
        time.sleep(0.05)
os.read(r, 1)
open(sys.argv[1], "w").write("ready\n")
while True:
    time.sleep(0.02)
    if os.path.exists(sys.argv[1] + ".go"):
        os.unlink(sys.argv[1] + ".go")
        try:
            s = socket.socket()
            s.bind(("10.1.2.3", 0))
            s.close()
            state = "bound"
        except OSError as e:
            state = "not bound: %s" % e
        open(sys.argv[1] + ".bind", "w").write(state)
)py";

pid_t StartNetTree(const std::string& ready, const char* mode) {
  pid_t root = StartTreeInNewPidNs([&] {
    ::execl("/usr/bin/python3", "python3", "-c", kNetProgram, ready.c_str(), mode, nullptr);
    ::_exit(127);
  });
  for (int i = 0; root > 0 && i < 500 && ReadText(ready).empty(); ++i) ::usleep(10000);
  return root;
}

// What the program says when asked to bind to 10.1.2.3.
std::string BindOutcome(const std::string& ready) {
  ::unlink((ready + ".bind").c_str());
  WriteFile(ready + ".go", "");
  for (int i = 0; i < 500 && ReadText(ready + ".bind").empty(); ++i) ::usleep(10000);
  return ReadText(ready + ".bind");
}

// A command run in the network namespace of `pid` by nsenter(1).
std::string InNetOf(pid_t pid, const std::string& command) {
  RunResult r = RunCommand({"nsenter", "-t", Str(pid), "-n", "sh", "-c", command});
  return r.status == 0 ? r.out : "nsenter failed: " + r.err;
}

std::string NetLink(pid_t pid) {
  char buf[64] = {};
  ssize_t n = ::readlink(("/proc/" + Str(pid) + "/ns/net").c_str(), buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "?";
}

std::string ImageNamed(const std::string& dir, const std::string& stem) {
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().filename().string().rfind(stem, 0) == 0) return e.path().filename().string();
  }
  return {};
}

const char kSysctls[] = "cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/conf/lo/forwarding /proc/sys/net/unix/max_dgram_qlen "
                        "/proc/sys/net/ipv6/conf/lo/hop_limit";

TEST(NetNamespace, ComesBackWithItsLoopbackAddressesAndSysctls) {
  std::string err = InSandbox([] {
    TempDir work, images;
    KillAtEnd tree;
    const std::string ready = work.File("ready");
    pid_t root = StartNetTree(ready, "");
    EXPECT_OR_RETURN(root > 0 && !ReadText(ready).empty(), "the program did not start");
    EXPECT_OR_RETURN(BindOutcome(ready) == "bound", "before: " + ReadText(ready + ".bind"));
    const std::string sysctls = InNetOf(root, kSysctls);
    EXPECT_OR_RETURN(sysctls == "1\n1\n99\n33\n", "before: " + sysctls);
    // The kernel's order of each family's addresses (it picks the source address).
    const char* order = "ip -o addr show dev lo | awk '{print $4}'";
    const std::string addr_order = InNetOf(root, order);
    RunResult d = RunDump(root, images.path());
    if (d.status != 0) ::kill(root, SIGKILL);
    ::waitpid(root, nullptr, 0);
    EXPECT_OR_RETURN(d.status == 0, "dump: " + d.err);
    RunResult r = RunCommand({RestoreOrch(), "--images", images.path(), "--detach"});
    EXPECT_OR_RETURN(r.status == 0, "restore: " + r.err);
    tree.pid = static_cast<pid_t>(std::atoi(r.out.c_str()));
    EXPECT_OR_RETURN(tree.pid > 0, "restore printed no pid: " + r.out);

    // From outside: a namespace of its own, shared by the child, with lo
    // up, every address, the finite lifetime counting on from where it was.
    EXPECT_OR_RETURN(NetLink(tree.pid) != NetLink(::getpid()), "the restored tree shares the caller's network namespace");
    std::vector<pid_t> tasks = TreeBelow(tree.pid);
    EXPECT_OR_RETURN(tasks.size() == 2 && NetLink(tasks[1]) == NetLink(tree.pid), "the child is not in its parent's network namespace");
    std::string addrs = InNetOf(tree.pid, "ip -o addr show");
    for (const char* want : {"1: lo    inet 127.0.0.1/8 scope host lo", "inet 10.1.2.3/8 scope global lo",
                             "inet 192.168.7.1/24 scope global dynamic lo", "inet6 fd00::5/128 scope global", "inet6 ::1/128 scope host"}) {
      EXPECT_OR_RETURN(addrs.find(want) != std::string::npos, "after, no '" + std::string(want) + "' in:\n" + addrs);
    }
    EXPECT_OR_RETURN(InNetOf(tree.pid, order) == addr_order, "address order before:\n" + addr_order + "after:\n" + InNetOf(tree.pid, order));
    EXPECT_OR_RETURN(InNetOf(tree.pid, "ip -o link show lo").find("<LOOPBACK,UP,LOWER_UP>") != std::string::npos, "lo is not up");
    std::string finite = InNetOf(tree.pid, "ip -o addr show to 192.168.7.1");
    EXPECT_OR_RETURN(finite.find("valid_lft 3") != std::string::npos && finite.find("preferred_lft 1") != std::string::npos,
                     "the finite lifetime: " + finite);
    EXPECT_OR_RETURN(InNetOf(tree.pid, kSysctls) == sysctls, "after: " + InNetOf(tree.pid, kSysctls));
    EXPECT_OR_RETURN(InNetOf(tree.pid, "ip -o route show table all | grep -v 'proto kernel' | grep -v '^local\\|^broadcast\\|^multicast' || true").empty(),
                     "routes not made by the kernel: " + InNetOf(tree.pid, "ip -o route show table all"));
    // The program continues in it: its address is there to bind to.
    EXPECT_OR_RETURN(BindOutcome(ready) == "bound", "after: " + ReadText(ready + ".bind"));

    RunResult dry = RunCommand({RestoreOrch(), "--images", images.path(), "--dry-run"});
    EXPECT_OR_RETURN(dry.out.find("and a new network namespace (netns-, netdev-, ifaddr-") != std::string::npos &&
                         dry.out.find("address 10.1.2.3/8 scope 0 label lo") != std::string::npos,
                     "dry run: " + dry.out);
    RunResult show = RunCommand({RestoreOrch(), "image", "show", images.path()});
    EXPECT_OR_RETURN(show.out.find("  network (netns-") != std::string::npos && show.out.find("    link 1 lo (LOOPBACK) mtu 65536") != std::string::npos &&
                         show.out.find("    address 192.168.7.1/24 on link 1 scope 0 label lo") != std::string::npos,
                     "image show: " + show.out);
    RunResult same = RunCommand({RestoreOrch(), "verify", "--images", images.path(), "--pid", Str(tree.pid)});
    EXPECT_OR_RETURN(same.status == 0, "verify: " + same.out + same.err);
    // CRIU's crit reads what we wrote; ip(8) reads the addresses image.
    RunResult crit = RunCommand({"crit", "show", images.File(ImageNamed(images.path(), "netdev-"))});
    EXPECT_OR_RETURN(crit.status == 0 && crit.out.find("\"LOOPBACK\"") != std::string::npos, "crit: " + crit.out + crit.err);
    RunResult showdump = RunCommand({"sh", "-c", "ip addr showdump < " + images.File(ImageNamed(images.path(), "ifaddr-"))});
    EXPECT_OR_RETURN(showdump.status == 0 && showdump.out.find("inet 10.1.2.3/8") != std::string::npos, "ip addr showdump: " + showdump.out + showdump.err);

    // Changed since: verify names each change, the order of addresses too.
    InNetOf(tree.pid, "ip -6 addr del fd00::6/128 dev lo && ip -6 addr add fd00::6/128 dev lo");
    RunResult reordered = RunCommand({RestoreOrch(), "verify", "--images", images.path(), "--pid", Str(tree.pid)});
    EXPECT_OR_RETURN(reordered.status == 1 && reordered.out.find("task 1: its network namespace lists the IPv6 addresses of ifindex 1 as fd00::6/128, fd00::7/128, fd00::5/128, ::1/128, the images' as fd00::7/128, fd00::6/128, fd00::5/128, ::1/128") != std::string::npos,
                     "verify after fd00::6 was made again:\n" + reordered.out + reordered.err);
    InNetOf(tree.pid, "ip addr add 10.9.9.9/32 dev lo && ip route add 10.20.0.0/16 dev lo && echo 7 > /proc/sys/net/unix/max_dgram_qlen");
    RunResult v = RunCommand({RestoreOrch(), "verify", "--images", images.path(), "--pid", Str(tree.pid)});
    for (const std::string& line : {std::string("task 1: its network namespace has address 10.9.9.9/32 that the images' lacks"),
                                    std::string("task 1: its network namespace has route 10.20.0.0/16 table main proto boot type unicast that the images' lacks"),
                                    std::string("task 1: its network namespace has sysctl net.unix.max_dgram_qlen = 7, the images' 99")}) {
      EXPECT_OR_RETURN(v.status == 1 && v.out.find(line) != std::string::npos, "verify does not say '" + line + "':\n" + v.out + v.err);
    }
    tree.Now();

    // A failure while the namespace is made (its netlink socket refused):
    // said where, and nothing is left.
    RunResult failed = RunCommand({RestoreOrch(), "--images", images.path(), "--detach", "--fault-syscall", "bind:EPERM"});
    EXPECT_OR_RETURN(failed.status == 1 && failed.err.find("the tree's network namespace") != std::string::npos &&
                         failed.err.find("bind a netlink socket") != std::string::npos,
                     "restore with bind failing: " + Str(failed.status) + " " + failed.err);
    EXPECT_OR_RETURN(OtherProcesses() == 0, "a process is left");

    // Hostile images: refused at plan, naming the file and entry.
    auto edit = [&](const char* stem, const std::function<void(nlohmann::json&)>& change) -> std::string {
      std::string name = ImageNamed(images.path(), stem);
      RunResult dec = RunCommand({RestoreOrch(), "image", "decode", images.File(name)});
      auto json = nlohmann::json::parse(dec.out, nullptr, false);
      if (json.is_discarded()) return "image decode: " + dec.out + dec.err;
      change(json);
      RunResult enc = RunCommand({RestoreOrch(), "image", "encode", "-o", images.File(name)}, json.dump());
      return enc.status == 0 ? std::string() : "image encode: " + enc.err;
    };
    std::string e1 = edit("netdev-", [](nlohmann::json& j) {
      nlohmann::json veth = j["entries"][0];
      veth["type"] = "VETH";
      veth["name"] = "eth0";
      veth["ifindex"] = 2;
      j["entries"].push_back(veth);
    });
    EXPECT_OR_RETURN(e1.empty(), e1);
    RunResult refused = RunCommand({RestoreOrch(), "--images", images.path(), "--detach"});
    EXPECT_OR_RETURN(refused.status == 2 && refused.err.find(": entry 1: link eth0 (VETH): restore-orch restores only the loopback") != std::string::npos,
                     "restore with a veth: " + Str(refused.status) + " " + refused.err);
    EXPECT_OR_RETURN(OtherProcesses() == 0, "a refused restore left a process");
    return std::string();
  });
  EXPECT_EQ(err, "");
}

// What a restore would not bring back: the dump refuses it by name and
// the tree runs on.
TEST(NetNamespace, WhatIsNotRestoredIsRefusedAtDumpAndTheTreeRunsOn) {
  const std::pair<const char*, const char*> cases[] = {
      {"veth", "its network namespace has link v"},
      {"route", "its network namespace has route 10.20.0.0/16 table main proto boot"},
      {"rule", "its network namespace would not come back as it is: restored, it lacks routing rule priority 32765 from 10.0.0.0/8 lookup 100 (IPv4) that the dumped one has"},
      {"sysctl", "its network namespace would not come back as it is: restored, it has sysctl net.ipv4.tcp_keepalive_time = 7200, the dumped one 600"},
      {"qdisc", "its network namespace would not come back as it is: restored, it has link 1's root qdisc noqueue, the dumped one pfifo"},
      {"kernelroute", "its network namespace would not come back as it is: restored, it lacks route 10.9.0.0/16 table main proto kernel"},
      {"split", "it is in another network namespace than the tree's root"},
  };
  for (const auto& [mode, want] : cases) {
    std::string err = InSandbox([mode = mode, want = want] {
      TempDir work, images;
      KillAtEnd tree;
      tree.pid = StartNetTree(work.File("ready"), mode);
      EXPECT_OR_RETURN(tree.pid > 0 && !ReadText(work.File("ready")).empty(), "the program did not start");
      RunResult d = RunDump(tree.pid, images.File("d"));
      EXPECT_OR_RETURN(d.status == 3 && d.err.find(want) != std::string::npos, "dump: " + Str(d.status) + " " + d.err);
      EXPECT_OR_RETURN(::access(images.File("d").c_str(), F_OK) != 0, "the refused dump left its directory");
      EXPECT_OR_RETURN(::kill(tree.pid, 0) == 0 && BindOutcome(work.File("ready")) == "bound", "the tree is gone or changed");
      return std::string();
    });
    EXPECT_EQ(err, "") << mode;
  }
}

}  // namespace
}  // namespace ro::test
