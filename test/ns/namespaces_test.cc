// Namespaces of a tree other than its PID and mount namespaces, dumped and
// restored for real: a UTS namespace of the tree's own comes back as a new
// one with its host and domain name, an IPC namespace with its sysctls and
// System V objects, checked from outside with nsenter(1); verify names
// what the images changed; a task in another UTS namespace than the root
// task, an attached segment, a descriptor of a POSIX message queue, a
// full one and one with a notification are refused at dump and the tree
// runs on; POSIX message queues come back with their messages.
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

// Python 3 as the init of new PID, UTS and IPC namespaces: it names its
// UTS namespace, sets IPC sysctls (and, with argv[2] "sysv", makes System
// V objects and attaches a segment; with "shm" makes a segment; with "mq" makes POSIX
// message queues (and keeps a descriptor of one with "mqfd", fills one with
// "mqfull", registers for mq_notify on one with "mqnotify"); with "oldmq"
// it first takes a mount namespace with the old IPC namespace's mqueue
// mounted), forks a
// child (which, with argv[2] "split", takes a UTS namespace of its own),
// writes argv[1] and runs on.
const char kUtsProgram[] = R"py(
import ctypes, os, socket, struct, sys, time
libc = ctypes.CDLL(None, use_errno=True)
mode = sys.argv[2] if len(sys.argv) > 2 else ""
if mode == "oldmq":
    # A mount namespace of its own holding the mqueue of the IPC namespace it leaves.
    if libc.unshare(0x00020000) != 0 or libc.mount(None, b"/", None, 0x4000 | 0x40000, None) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
    mq = os.path.join(os.path.dirname(sys.argv[1]), "mq")
    os.mkdir(mq)
    if libc.mount(b"mqueue", mq.encode(), b"mqueue", 0, None) != 0:
        raise OSError(ctypes.get_errno(), "mount mqueue")
if libc.unshare(0x04000000 | 0x08000000) != 0:
    raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWUTS | CLONE_NEWIPC)")
socket.sethostname("box-1")
domain = b"example.org"
if libc.setdomainname(domain, len(domain)) != 0:
    raise OSError(ctypes.get_errno(), "setdomainname")
for path, value in (("kernel/shmmni", "1000"), ("kernel/sem", "100 2000 20 50"), ("fs/mqueue/msg_max", "20"),
                    ("kernel/msg_next_id", "42")):
    open("/proc/sys/" + path, "w").write(value)
if mode == "shm" and libc.shmget(0x1234, 4096, 0o1000 | 0o600) < 0:
    raise OSError(ctypes.get_errno(), "shmget")
if mode == "sysv":
    # A segment with contents, a queue with messages (its id 42: msg_next_id),
    # a set made by uid 1000 gid 1001 with values.
    libc.shmat.restype = ctypes.c_void_p
    sid = libc.shmget(0x1234, 10000, 0o1000 | 0o640)
    addr = libc.shmat(sid, None, 0)
    if sid < 0 or addr in (None, ctypes.c_void_p(-1).value):
        raise OSError(ctypes.get_errno(), "shmget, shmat")
    ctypes.memmove(addr, bytes((i * 7) % 251 for i in range(10000)), 10000)
    libc.shmdt(ctypes.c_void_p(addr))
    qid = libc.msgget(0x2345, 0o1000 | 0o620)
    for mtype, text in ((1, b"one"), (7, b"seven" * 100), (2, b"")):
        buf = ctypes.create_string_buffer(struct.pack("q", mtype) + text)
        if qid < 0 or libc.msgsnd(qid, buf, len(text), 0) != 0:
            raise OSError(ctypes.get_errno(), "msgget, msgsnd")
    os.setegid(1001)
    os.seteuid(1000)
    semid = libc.semget(0x3456, 3, 0o1000 | 0o660)
    os.seteuid(0)
    os.setegid(0)
    if semid < 0 or libc.semctl(semid, 0, 17, (ctypes.c_ushort * 3)(1, 5, 32767)) != 0:  # SETALL
        raise OSError(ctypes.get_errno(), "semget, semctl(SETALL)")
    # Attached twice, once split by mprotect into three VMAs; the child
    # inherits both: shm_nattch 8.
    seg = libc.shmat(sid, None, 0)
    libc.shmat(sid, None, 0o10000)  # SHM_RDONLY
    libc.mprotect(ctypes.c_void_p(seg + 4096), 4096, 1)
    # A segment never attached, with shm_rmid_forced 1 (a detach would
    # destroy it), and limits lowered below what the objects use (the
    # kernel allows it): msgmax below a queued message, shmmni below the
    # segments.
    if libc.shmget(0x1235, 4096, 0o1000 | 0o600) < 0:
        raise OSError(ctypes.get_errno(), "shmget")
    for path, value in (("kernel/shm_rmid_forced", "1"), ("kernel/msgmax", "100"), ("kernel/shmmni", "1")):
        open("/proc/sys/" + path, "w").write(value)
if mode.startswith("mq"):
    class Attr(ctypes.Structure):
        _fields_ = [("flags", ctypes.c_long), ("maxmsg", ctypes.c_long), ("msgsize", ctypes.c_long), ("curmsgs", ctypes.c_long),
                    ("pad", ctypes.c_long * 4)]
    libc.mq_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
    libc.mq_send.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint]
    def make_queue(name, maxmsg, msgsize, messages):
        fd = libc.mq_open(name, os.O_CREAT | os.O_RDWR, 0o600, ctypes.byref(Attr(0, maxmsg, msgsize, 0)))
        if fd < 0:
            raise OSError(ctypes.get_errno(), "mq_open")
        for prio, data in messages:
            if libc.mq_send(fd, data, len(data), prio) != 0:
                raise OSError(ctypes.get_errno(), "mq_send")
        return fd
    # /q1's maxmsg 30 is above msg_max (20): made under a limit raised for it.
    open("/proc/sys/fs/mqueue/msg_max", "w").write("30")
    q1 = make_queue(b"/q1", 30, 64, ((1, b"low"), (9, b"high"), (1, b""), (9, b"x" * 64)))
    open("/proc/sys/fs/mqueue/msg_max", "w").write("20")
    os.fchown(q1, 1000, 1001)
    os.fchmod(q1, 0o640)
    q2 = make_queue(b"/q2", 2, 16, ((5, b"two"), (5, b"zwei")) if mode == "mqfull" else ())
    if mode == "mqnotify":
        class Sigevent(ctypes.Structure):
            _fields_ = [("value", ctypes.c_long), ("signo", ctypes.c_int), ("notify", ctypes.c_int), ("pad", ctypes.c_int * 12)]
        if libc.mq_notify(q2, ctypes.byref(Sigevent(0, 10, 0))) != 0:  # SIGUSR1, SIGEV_SIGNAL; closing q2 would drop it
            raise OSError(ctypes.get_errno(), "mq_notify")
    elif mode != "mqfd":
        os.close(q1)
        os.close(q2)
r, w = os.pipe()
if os.fork() == 0:
    if mode == "split":
        libc.unshare(0x04000000)
    os.write(w, b"x")
    while True:
        time.sleep(0.05)
os.read(r, 1)
open(sys.argv[1], "w").write("ready\n")
while True:
    time.sleep(0.05)
    # Through the attachment: what another task writes to the segment.
    if mode == "sysv" and ctypes.string_at(seg + 9000, 5) == b"after":
        open(sys.argv[1] + ".seen", "w").write(ctypes.string_at(seg + 9000, 5).decode())
        mode = ""
)py";

pid_t StartUtsTree(const std::string& ready, const char* mode) {
  pid_t root = StartTreeInNewPidNs([&] {
    ::execl("/usr/bin/python3", "python3", "-c", kUtsProgram, ready.c_str(), mode, nullptr);
    ::_exit(127);
  });
  for (int i = 0; root > 0 && i < 500 && ReadText(ready).empty(); ++i) ::usleep(10000);
  return root;
}

// Dumps the tree of `root` into `dir` (the dump kills it; this reaps it,
// or kills it when the dump failed) and restores it detached into
// `restored`: "" or what failed.
std::string DumpAndRestore(pid_t root, const std::string& dir, pid_t& restored) {
  RunResult d = RunDump(root, dir);
  if (d.status != 0) ::kill(root, SIGKILL);
  ::waitpid(root, nullptr, 0);
  if (d.status != 0) return "dump: " + d.err;
  RunResult r = RunCommand({RestoreOrch(), "--images", dir, "--detach"});
  if (r.status != 0) return "restore: " + r.err;
  restored = static_cast<pid_t>(std::atoi(r.out.c_str()));
  return restored > 0 ? std::string() : "restore printed no pid: " + r.out;
}

// What the UTS namespace of `pid` says of itself, asked from outside by
// nsenter(1): "nodename domainname".
std::string UtsOf(pid_t pid) {
  RunResult r = RunCommand({"nsenter", "-t", Str(pid), "-u", "sh", "-c", "echo $(uname -n) $(cat /proc/sys/kernel/domainname)"});
  return r.status == 0 ? r.out : "nsenter failed: " + r.err;
}

// Four IPC sysctls of the IPC namespace of `pid`, asked from outside.
std::string IpcOf(pid_t pid) {
  RunResult r = RunCommand({"nsenter", "-t", Str(pid), "-i", "sh", "-c",
                            "cd /proc/sys && echo $(cat kernel/shmmni kernel/sem fs/mqueue/msg_max kernel/msg_next_id)"});
  return r.status == 0 ? r.out : "nsenter failed: " + r.err;
}

std::string NsLink(pid_t pid, const char* kind = "uts") {
  char buf[64] = {};
  ssize_t n = ::readlink(("/proc/" + Str(pid) + "/ns/" + kind).c_str(), buf, sizeof(buf) - 1);
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
    const std::string ipc = "1000 100 2000 20 50 20 42\n";
    EXPECT_OR_RETURN(IpcOf(root) == ipc, "before: " + IpcOf(root));
    std::string cycle = DumpAndRestore(root, images.path(), tree.pid);
    EXPECT_OR_RETURN(cycle.empty(), cycle);
    // Its own namespace again, named as it was, shared by its child; the
    // caller's names are untouched.
    EXPECT_OR_RETURN(UtsOf(tree.pid) == "box-1 example.org\n", "after: " + UtsOf(tree.pid));
    EXPECT_OR_RETURN(NsLink(tree.pid) != NsLink(::getpid()), "the restored tree shares the caller's UTS namespace");
    std::vector<pid_t> kids = Children(tree.pid);
    EXPECT_OR_RETURN(kids.size() == 1 && NsLink(kids[0]) == NsLink(tree.pid), "the child is not in its parent's UTS namespace");
    EXPECT_OR_RETURN(UtsOf(::getpid()) != "box-1 example.org\n", "the caller's names changed");
    EXPECT_OR_RETURN(IpcOf(tree.pid) == ipc, "after: " + IpcOf(tree.pid));
    EXPECT_OR_RETURN(NsLink(tree.pid, "ipc") != NsLink(::getpid(), "ipc") && NsLink(kids[0], "ipc") == NsLink(tree.pid, "ipc"),
                     "the restored tree is not in one IPC namespace of its own");
    EXPECT_OR_RETURN(IpcOf(::getpid()) != ipc, "the caller's IPC sysctls changed");
    RunResult dry = RunCommand({RestoreOrch(), "--images", images.path(), "--dry-run"});
    EXPECT_OR_RETURN(dry.out.find("hostname \"box-1\", domainname \"example.org\"") != std::string::npos, "dry run: " + dry.out);
    EXPECT_OR_RETURN(dry.out.find("its sysctls written: kernel/sem=100 2000 20 50") != std::string::npos, "dry run: " + dry.out);
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
    // So are the IPC sysctls and an object made since the restore.
    std::string var;
    for (const auto& e : std::filesystem::directory_iterator(images.path())) {
      if (e.path().filename().string().rfind("ipcns-var-", 0) == 0) var = e.path().filename().string();
    }
    EXPECT_OR_RETURN(!var.empty(), "no ipcns-var image");
    decoded = RunCommand({RestoreOrch(), "image", "decode", images.File(var)});
    json = nlohmann::json::parse(decoded.out, nullptr, false);
    EXPECT_OR_RETURN(!json.is_discarded() && json["magic"] == "IPC_VAR", "image decode: " + decoded.out + decoded.err);
    json["entries"][0]["shm_ctlmni"] = 999;
    encoded = RunCommand({RestoreOrch(), "image", "encode", "-o", images.File(var)}, json.dump());
    EXPECT_OR_RETURN(encoded.status == 0, "image encode: " + encoded.err);
    RunResult made = RunCommand({"nsenter", "-t", Str(tree.pid), "-i", "python3", "-c",
                                 "import ctypes; assert ctypes.CDLL(None).shmget(0x99, 4096, 0o1000 | 0o600) >= 0"});
    EXPECT_OR_RETURN(made.status == 0, "shmget in the restored namespace: " + made.err);
    v = RunCommand({RestoreOrch(), "verify", "--images", images.path(), "--pid", Str(tree.pid)});
    for (const std::string& line : {std::string("task 1: IPC sysctl kernel/shmmni 1000, images say 999"),
                                    std::string("task 1: IPC shared memory segment 0 (key 0x00000099): the images do not have it")}) {
      EXPECT_OR_RETURN(v.status == 1 && v.out.find(line) != std::string::npos, "verify does not say '" + line + "':\n" + v.out + v.err);
    }
    return std::string();
  });
  EXPECT_EQ(err, "");
}

// The System V objects of the IPC namespace of `pid`, as a program
// outside restore-orch sees them from inside it (nsenter -i): each
// object's /proc/sysvipc columns that a restore keeps, a segment's
// contents' digest, a queue's messages (copied: MSG_COPY) and a set's
// values.
std::string SysvOf(pid_t pid) {
  static const char kChecker[] = R"py(
import ctypes, hashlib, struct
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
# As restore-orch reads them: without destroying a segment on detach, and
# with messages longer than kernel/msgmax copied whole.
saved = {p: open("/proc/sys/" + p).read() for p in ("kernel/shm_rmid_forced", "kernel/msgmax")}
open("/proc/sys/kernel/shm_rmid_forced", "w").write("0")
open("/proc/sys/kernel/msgmax", "w").write("65536")
keep = {"shm": ("key", "shmid", "perms", "size", "nattch", "uid", "gid", "cuid", "cgid"),
        "msg": ("key", "msqid", "perms", "cbytes", "qnum", "uid", "gid", "cuid", "cgid"),
        "sem": ("key", "semid", "perms", "nsems", "uid", "gid", "cuid", "cgid")}
for kind, cols in keep.items():
    lines = open("/proc/sysvipc/" + kind).read().split("\n")
    head = lines[0].split()
    for line in filter(None, lines[1:]):
        row = dict(zip(head, line.split()))
        out = [kind] + [c + "=" + row[c] for c in cols]
        ident = int(row[cols[1]])
        if kind == "shm":
            addr = libc.shmat(ident, None, 0o10000)  # SHM_RDONLY
            out.append(hashlib.sha256(ctypes.string_at(addr, int(row["size"]))).hexdigest()[:16])
            libc.shmdt(ctypes.c_void_p(addr))
        if kind == "msg":
            for n in range(int(row["qnum"])):
                buf = ctypes.create_string_buffer(8 + 65536)
                got = libc.msgrcv(ident, buf, 65536, n, 0o4000 | 0o40000)  # IPC_NOWAIT | MSG_COPY
                out.append("%d:%s" % (struct.unpack_from("q", buf)[0], hashlib.sha256(buf.raw[8:8 + got]).hexdigest()[:8]))
        if kind == "sem":
            values = (ctypes.c_ushort * int(row["nsems"]))()
            libc.semctl(ident, 0, 13, values)  # GETALL
            out.append(",".join(map(str, values)))
        print(" ".join(out))
for p, v in saved.items():
    open("/proc/sys/" + p, "w").write(v)
print("sysctls", " ".join(v.strip() for v in saved.values()))
)py";
  RunResult r = RunCommand({"nsenter", "-t", Str(pid), "-i", "python3", "-c", kChecker});
  return r.status == 0 ? r.out : "nsenter failed: " + r.err;
}

// System V objects come back with their ids, keys, owners, creators,
// modes and contents: the same, seen by a program of its own from inside
// the namespace, before the dump and after the restore; verify agrees,
// and names a message, a semaphore value and a segment byte edited in the
// images.
TEST(Namespaces, SystemVObjectsComeBackWithTheirIdsOwnersAndContents) {
  std::string err = InSandbox([] {
    TempDir work, images;
    KillAtEnd tree;
    pid_t root = StartUtsTree(work.File("ready"), "sysv");
    EXPECT_OR_RETURN(root > 0 && !ReadText(work.File("ready")).empty(), "the program did not start");
    const std::string before = SysvOf(root);
    for (const char* want : {"shm key=4660 shmid=0 perms=640 size=10000 nattch=8 uid=0 gid=0 cuid=0 cgid=0 ",
                             "shm key=4661 shmid=1 perms=600 size=4096 nattch=0 ", "sysctls 1 100\n",
                             "msg key=9029 msqid=42 perms=620 cbytes=503 qnum=3 ",
                             "sem key=13398 semid=0 perms=660 nsems=3 uid=1000 gid=1001 cuid=1000 cgid=1001 1,5,32767"}) {
      EXPECT_OR_RETURN(before.find(want) != std::string::npos, "before, no '" + std::string(want) + "' in:\n" + before);
    }
    std::string cycle = DumpAndRestore(root, images.path(), tree.pid);
    EXPECT_OR_RETURN(cycle.empty(), cycle);
    EXPECT_OR_RETURN(SysvOf(tree.pid) == before, "after:\n" + SysvOf(tree.pid) + "before:\n" + before);
    EXPECT_OR_RETURN(SysvOf(::getpid()).find("key=4660 ") == std::string::npos, "the caller's IPC namespace has the segment");
    RunResult same = RunCommand({RestoreOrch(), "verify", "--images", images.path(), "--pid", Str(tree.pid)});
    EXPECT_OR_RETURN(same.status == 0, "verify: " + same.out + same.err);
    // The restored program goes on reading the segment through its
    // attachment: bytes written to it from outside reach it.
    RunResult wrote = RunCommand({"nsenter", "-t", Str(tree.pid), "-i", "python3", "-c",
                                  "import ctypes; libc = ctypes.CDLL(None); libc.shmat.restype = ctypes.c_void_p\n"
                                  "a = libc.shmat(0, None, 0); ctypes.memmove(a + 9000, b'after', 5); libc.shmdt(ctypes.c_void_p(a))"});
    EXPECT_OR_RETURN(wrote.status == 0, "writing to the segment: " + wrote.err);
    for (int i = 0; i < 300 && ReadText(work.File("ready") + ".seen").empty(); ++i) ::usleep(10000);
    EXPECT_OR_RETURN(ReadText(work.File("ready") + ".seen") == "after", "the restored program did not see the segment's new bytes");
    // Edited images: verify names each difference.
    auto edit = [&](const char* stem, const std::function<void(nlohmann::json&)>& change) -> std::string {
      std::string name;
      for (const auto& e : std::filesystem::directory_iterator(images.path())) {
        if (e.path().filename().string().rfind(stem, 0) == 0) name = e.path().filename().string();
      }
      if (name.empty()) return std::string("no ") + stem + " image";
      RunResult dec = RunCommand({RestoreOrch(), "image", "decode", images.File(name)});
      auto json = nlohmann::json::parse(dec.out, nullptr, false);
      if (json.is_discarded()) return "image decode: " + dec.out + dec.err;
      change(json);
      RunResult enc = RunCommand({RestoreOrch(), "image", "encode", "-o", images.File(name)}, json.dump());
      return enc.status == 0 ? std::string() : "image encode: " + enc.err;
    };
    std::string e1 = edit("ipcns-msg-", [](nlohmann::json& j) { j["entries"][0]["extra"][1] = "b3Rx\n"; });  // "one" -> "otq"
    EXPECT_OR_RETURN(e1.empty(), e1);
    std::string e2 = edit("ipcns-sem-", [](nlohmann::json& j) { j["entries"][0]["extra"][1] = 6; });
    EXPECT_OR_RETURN(e2.empty(), e2);
    std::string e3 = edit("ipcns-shm-", [](nlohmann::json& j) { j["entries"][0]["desc"]["uid"] = 7; });
    EXPECT_OR_RETURN(e3.empty(), e3);
    RunResult v = RunCommand({RestoreOrch(), "verify", "--images", images.path(), "--pid", Str(tree.pid)});
    for (const std::string& line : {std::string("task 1: IPC message queue 42: message 0 (type 1, 3 bytes) differs from the images' (type 1, 3 bytes)"),
                                    std::string("task 1: IPC semaphore set 0: semaphore 1 is 5, images say 6"),
                                    std::string("task 1: IPC shared memory segment 0: uid 0, images say 7")}) {
      EXPECT_OR_RETURN(v.status == 1 && v.out.find(line) != std::string::npos, "verify does not say '" + line + "':\n" + v.out + v.err);
    }
    // shmget fails in the root task (injected, through the kernel's own
    // error path): the restore says where and why and is rolled back.
    RunResult failed = RunCommand({RestoreOrch(), "--images", images.path(), "--detach", "--fault-syscall", "shmget:ENOSPC"});
    EXPECT_OR_RETURN(failed.status == 1 && failed.err.find("shared memory segment 0: create it (key 0x00001234): ") != std::string::npos &&
                         failed.err.find("No space left on device") != std::string::npos,
                     "restore with shmget failing: " + Str(failed.status) + " " + failed.err);
    // An attachment that lost a piece (a VMA of it removed from the
    // images) could not be attached again as it was: refused at plan.
    std::string e5 = edit("mm-1.img", [](nlohmann::json& j) {
      auto& vmas = j["entries"][0]["vmas"];
      for (size_t i = 0; i < vmas.size(); ++i) {
        if ((vmas[i]["status"].get<uint32_t>() & (1u << 10)) && vmas[i]["pgoff"].get<uint64_t>() == 4096) {  // VMA_AREA_SYSVIPC
          vmas.erase(i);
          return;
        }
      }
    });
    EXPECT_OR_RETURN(e5.empty(), e5);
    RunResult partial = RunCommand({RestoreOrch(), "--images", images.path(), "--detach"});
    EXPECT_OR_RETURN(partial.status == 2 && partial.err.find("mm-1.img: entry 0: VMA ") != std::string::npos &&
                         partial.err.find(" of System V segment 0 is part of an attachment (0x1000 of its 0x3000 bytes, from offset 0, in order)") !=
                             std::string::npos,
                     "restore of a partial attachment: " + Str(partial.status) + " " + partial.err);
    return std::string();
  });
  EXPECT_EQ(err, "");
}

// What the POSIX message queues /q1 and /q2 of the IPC namespace of `pid`
// hold, read from outside (nsenter -i, mq_receive: it takes their
// messages): "/q1 uid:gid mode maxmsg/msgsize prio:data,...; /q2 ...".
std::string TakeQueues(pid_t pid) {
  static const char kRead[] = R"py(
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
class Attr(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_long), ("maxmsg", ctypes.c_long), ("msgsize", ctypes.c_long), ("curmsgs", ctypes.c_long),
                ("pad", ctypes.c_long * 4)]
libc.mq_open.argtypes = [ctypes.c_char_p, ctypes.c_int]
out = []
for name in sys.argv[1:]:
    fd = libc.mq_open(name.encode(), os.O_RDONLY | os.O_NONBLOCK)
    if fd < 0:
        out.append(name + " missing")
        continue
    st, a = os.fstat(fd), Attr()
    libc.mq_getattr(fd, ctypes.byref(a))
    buf, prio, messages = ctypes.create_string_buffer(a.msgsize), ctypes.c_uint(), []
    while (n := libc.mq_receive(fd, buf, ctypes.c_size_t(a.msgsize), ctypes.byref(prio))) >= 0:
        messages.append("%d:%s" % (prio.value, buf.raw[:n].decode()))
    out.append("%s %d:%d %o %d/%d %s" % (name, st.st_uid, st.st_gid, st.st_mode & 0o7777, a.maxmsg, a.msgsize, ",".join(messages)))
print("; ".join(out))
)py";
  RunResult r = RunCommand({"nsenter", "-t", Str(pid), "-i", "python3", "-c", kRead, "/q1", "/q2"});
  return r.status == 0 ? r.out : "nsenter failed: " + r.err;
}

const std::string kQueues = "/q1 1000:1001 640 30/64 9:high,9:" + std::string(64, 'x') + ",1:low,1:; /q2 0:0 600 2/16 \n";

TEST(Namespaces, PosixMessageQueuesComeBackWithTheirOwnersLimitsAndMessages) {
  std::string err = InSandbox([] {
    TempDir work, images;
    KillAtEnd tree;
    pid_t root = StartUtsTree(work.File("ready"), "mq");
    EXPECT_OR_RETURN(root > 0 && !ReadText(work.File("ready")).empty(), "the program did not start");
    std::string cycle = DumpAndRestore(root, images.path(), tree.pid);
    EXPECT_OR_RETURN(cycle.empty(), cycle);
    EXPECT_OR_RETURN(IpcOf(tree.pid) == "1000 100 2000 20 50 20 42\n", "the restored sysctls: " + IpcOf(tree.pid));
    RunResult same = RunCommand({RestoreOrch(), "verify", "--images", images.path(), "--pid", Str(tree.pid)});
    EXPECT_OR_RETURN(same.status == 0, "verify: " + same.out + same.err);
    // Edited images: verify names each difference.
    std::string name;
    for (const auto& e : std::filesystem::directory_iterator(images.path())) {
      if (e.path().filename().string().rfind("posix-mqueues-", 0) == 0) name = e.path().filename().string();
    }
    RunResult dec = RunCommand({RestoreOrch(), "image", "decode", images.File(name)});
    auto json = nlohmann::json::parse(dec.out, nullptr, false);
    EXPECT_OR_RETURN(!name.empty() && !json.is_discarded() && json["entries"].size() == 2, "image decode of '" + name + "': " + dec.out + dec.err);
    json["entries"][0]["mode"] = 0600;
    json["entries"][0]["messages"][0]["data"] = "aGlnaGVy";  // "higher"
    RunResult enc = RunCommand({RestoreOrch(), "image", "encode", "-o", images.File(name)}, json.dump());
    EXPECT_OR_RETURN(enc.status == 0, "image encode: " + enc.err);
    RunResult v = RunCommand({RestoreOrch(), "verify", "--images", images.path(), "--pid", Str(tree.pid)});
    for (const std::string& line : {std::string("task 1: POSIX message queue /q1: mode 640, images say 600"),
                                    std::string("task 1: POSIX message queue /q1: holds 4 messages of 71 bytes, images say 4 of 73")}) {
      EXPECT_OR_RETURN(v.status == 1 && v.out.find(line) != std::string::npos, "verify does not say '" + line + "':\n" + v.out + v.err);
    }
    // mq_open fails in the root task (injected): the restore says where
    // and why and is rolled back.
    RunResult failed = RunCommand({RestoreOrch(), "--images", images.path(), "--detach", "--fault-syscall", "mq_open:EMFILE"});
    EXPECT_OR_RETURN(failed.status == 1 && failed.err.find("POSIX message queue /q1: create it (mq_open, maxmsg 30, msgsize 64: beyond RLIMIT_MSGQUEUE)") !=
                                               std::string::npos,
                     "restore with mq_open failing: " + Str(failed.status) + " " + failed.err);
    // From outside, last: the queues, their owners, limits and messages in order.
    std::string queues = TakeQueues(tree.pid);
    EXPECT_OR_RETURN(queues == kQueues, "the restored queues: " + queues + "want: " + kQueues);
    return std::string();
  });
  EXPECT_EQ(err, "");
}

// What is not restored of an IPC namespace (a descriptor of a POSIX
// message queue, a full queue, an mq_notify registration), and an mqueue
// mount of the namespace the tree left (it would come back as its own):
// the dump refuses each by name and the tree runs on with its queues as
// they were.
TEST(Namespaces, QueueDescriptorsFullQueuesNotificationsAndAnotherNamespacesMqueueMountAreRefusedAndTheTreeRunsOn) {
  for (const auto& [mode, want] : {std::pair<const char*, const char*>{"mqfd", " is POSIX message queue /q1 (mq_open(3)): restore-orch restores the queue but not a descriptor of it"},
                                   {"mqfull", "its IPC namespace's POSIX message queue /q2 is full (2 of 2 messages): its messages cannot be read"},
                                   {"mqnotify", "its IPC namespace's POSIX message queue /q2 has an mq_notify(3) registration (pid "},
                                   {"oldmq", "/mq: the mqueue filesystem of another IPC namespace than the tree's"}}) {
    std::string err = InSandbox([mode = mode, want = want] {
      TempDir work, images;
      KillAtEnd tree;
      tree.pid = StartUtsTree(work.File("ready"), mode);
      EXPECT_OR_RETURN(tree.pid > 0 && !ReadText(work.File("ready")).empty(), "the program did not start");
      RunResult d = RunDump(tree.pid, images.File("d"));
      EXPECT_OR_RETURN(d.status == 3 && d.err.find(want) != std::string::npos, "dump: " + Str(d.status) + " " + d.err);
      EXPECT_OR_RETURN(::access(images.File("d").c_str(), F_OK) != 0, "the refused dump left its directory");
      EXPECT_OR_RETURN(::kill(tree.pid, 0) == 0 && IpcOf(tree.pid) == "1000 100 2000 20 50 20 42\n", "the tree is gone or changed");
      if (std::string(mode) == "mqfd") {
        // The dump read /q1's messages and put them back before it refused the descriptor.
        std::string queues = TakeQueues(tree.pid);
        EXPECT_OR_RETURN(queues == kQueues, "the queues after the refused dump: " + queues + "want: " + kQueues);
      }
      return std::string();
    });
    EXPECT_EQ(err, "") << mode;
  }
}

// A segment of the tree's namespace that a process outside the tree has
// attached: a restore could not give that process its attachment back,
// so the dump refuses it by name and the tree runs on.
TEST(Namespaces, ASegmentAttachedOutsideTheTreeIsRefusedAndTheTreeRunsOn) {
  std::string err = InSandbox([] {
    TempDir work, images;
    KillAtEnd tree, outsider;
    tree.pid = StartUtsTree(work.File("ready"), "shm");
    EXPECT_OR_RETURN(tree.pid > 0 && !ReadText(work.File("ready")).empty(), "the program did not start");
    const std::string attached = work.File("attached");
    outsider.pid = ::fork();
    if (outsider.pid == 0) {
      ::execlp("nsenter", "nsenter", "-t", Str(tree.pid).c_str(), "-i", "python3", "-c",
               "import ctypes, sys, time\nlibc = ctypes.CDLL(None); libc.shmat.restype = ctypes.c_void_p\n"
               "assert libc.shmat(0, None, 0) not in (None, ctypes.c_void_p(-1).value)\n"
               "open(sys.argv[1], 'w').write('x')\ntime.sleep(600)",
               attached.c_str(), nullptr);
      ::_exit(127);
    }
    for (int i = 0; i < 500 && ReadText(attached).empty(); ++i) ::usleep(10000);
    EXPECT_OR_RETURN(!ReadText(attached).empty(), "the outside process did not attach the segment");
    RunResult d = RunDump(tree.pid, images.File("d"));
    const std::string want = "System V shared memory segment 0 of the tree's IPC namespace is attached by 1 VMA(s) outside the tree";
    EXPECT_OR_RETURN(d.status == 3 && d.err.find(want) != std::string::npos, "dump: " + Str(d.status) + " " + d.err);
    EXPECT_OR_RETURN(::access(images.File("d").c_str(), F_OK) != 0, "the refused dump left its directory");
    EXPECT_OR_RETURN(::kill(tree.pid, 0) == 0, "the tree is gone");
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
