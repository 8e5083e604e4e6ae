// Mounts stacked on one mountpoint, each covering the one below at its
// root: dumped with the contents of every tmpfs of the stack (the covered
// ones read from a private copy of the namespace where the mounts above
// are detached), external ones (a bind of the caller's filesystem, the
// caller's own /proc stack) with a key each, restored in their stacking
// order (an external one the caller's tree hides cloned from under what
// hides it), and compared by verify, covered ones included. Checked from
// outside by taking the stack apart in a private copy of the restored
// tree's namespace.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <sstream>

#include "test/helpers/live_tree.h"
#include "test/helpers/sandbox.h"
#include "test/helpers/test_util.h"

namespace ro::test {
namespace {

// The tree's root mounts three tmpfs on t/, each with files of its own (the
// lowest with a hard link and a file in a directory a mount covers), then
// sleeps.
void BuildStack(const std::string& w) {
  MUST(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0);
  std::string t = w + "/t";
  MUST(::mkdir(t.c_str(), 0755) == 0);
  MUST(::mount("low", t.c_str(), "tmpfs", 0, "size=1m") == 0);
  MUST(::mkdir((t + "/d").c_str(), 0755) == 0);
  WriteFile(t + "/d/x", "lowest");
  MUST(::link((t + "/d/x").c_str(), (t + "/h").c_str()) == 0);
  MUST(::mkdir((t + "/sub").c_str(), 0755) == 0);
  WriteFile(t + "/sub/under", "under a mount of its own");
  MUST(::mount("sub", (t + "/sub").c_str(), "tmpfs", 0, "size=64k") == 0);
  MUST(::mount("middle", t.c_str(), "tmpfs", 0, "size=1m") == 0);
  WriteFile(t + "/m", "middle");
  MUST(::mount("top", t.c_str(), "tmpfs", 0, "size=1m") == 0);
  WriteFile(t + "/top", "top");
  ExecSleep();
}

// In a child: joins `pid`'s mount namespace, makes a private copy of it,
// detaches the mount on top at each of `detach` in turn, and reports what
// `files` hold in t/ (one line each: name=contents or name=?), and the
// link count of d/x.
std::string LookUnder(pid_t pid, const std::string& t, const std::vector<std::string>& detach, const std::vector<std::string>& files) {
  int pipefd[2];
  if (::pipe(pipefd) != 0) return "pipe";
  pid_t child = ::fork();
  if (child == 0) {
    ::close(pipefd[0]);
    int ns = ::open(("/proc/" + Str(pid) + "/ns/mnt").c_str(), O_RDONLY);
    MUST(ns >= 0 && ::setns(ns, CLONE_NEWNS) == 0);
    MUST(::unshare(CLONE_NEWNS) == 0 && ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0);
    for (const std::string& at : detach) MUST(::umount2(at.c_str(), MNT_DETACH) == 0);
    std::string out;
    for (const std::string& f : files) {
      int fd = ::open((t + "/" + f).c_str(), O_RDONLY);
      char buf[256];
      ssize_t n = fd >= 0 ? ::read(fd, buf, sizeof(buf)) : -1;
      out += f + "=" + (n >= 0 ? std::string(buf, static_cast<size_t>(n)) : "?") + "\n";
      if (fd >= 0) ::close(fd);
    }
    struct stat st {};
    out += "links=" + std::to_string(::stat((t + "/d/x").c_str(), &st) == 0 ? st.st_nlink : 0) + "\n";
    MUST(::write(pipefd[1], out.data(), out.size()) == static_cast<ssize_t>(out.size()));
    ::_exit(0);
  }
  ::close(pipefd[1]);
  std::string got;
  char buf[4096];
  for (ssize_t n; (n = ::read(pipefd[0], buf, sizeof(buf))) > 0;) got.append(buf, static_cast<size_t>(n));
  ::close(pipefd[0]);
  ::waitpid(child, nullptr, 0);
  return got;
}

// The sources of the mounts of `pid`'s mount table at `t`, bottom first
// (each is the parent of the next), one space after each.
std::string StackAt(pid_t pid, const std::string& t) {
  std::istringstream in(ReadFile("/proc/" + Str(pid) + "/mountinfo"));
  std::map<std::string, std::pair<std::string, std::string>> at;  // id -> (parent id, source)
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::string w[5], word;
    for (auto& x : w) words >> x;
    if (w[4] != t) continue;
    while (words >> word && word != "-") {
    }
    std::string fstype, source;
    words >> fstype >> source;
    at[w[0]] = {w[1], source};
  }
  std::string out, below;
  for (size_t n = 0; n < at.size(); ++n) {
    auto next = std::find_if(at.begin(), at.end(), [&](const auto& e) {
      return below.empty() ? at.count(e.second.first) == 0 : e.second.first == below;
    });
    if (next == at.end()) return out + "(not one stack)";
    out += next->second.second + " ";
    below = next->first;
  }
  return out;
}

TEST(Stacks, ThreeTmpfsOnOneMountpointComeBackInOrderWithTheirFiles) {
  EXPECT_EQ(InSandbox([] {
              TempDir work;
              const std::string w = work.path(), t = w + "/t";
              pid_t root = StartTree(true, true, [&] { BuildStack(w); });
              EXPECT_OR_RETURN(root > 0 && WaitSettled(root, 1), "the tree did not settle");
              std::string stack = StackAt(root, t);
              RunResult d = Dump(root, work.File("images"));
              if (d.status != 0) KillTree(root);  // a refused dump leaves it running
              ::waitpid(root, nullptr, 0);
              EXPECT_OR_RETURN(d.status == 0, "dump: " + d.err);
              pid_t restored = 0;
              if (std::string e = RestoreAndVerify(work.File("images"), restored); !e.empty()) return e;
              std::string after = StackAt(restored, t);
              std::string top = LookUnder(restored, t, {}, {"top", "m", "d/x"});
              std::string middle = LookUnder(restored, t, {t}, {"top", "m", "d/x"});
              std::string low = LookUnder(restored, t, {t, t}, {"m", "d/x", "h"});
              // The file under the lowest tmpfs's own submount, seen with that one detached too.
              std::string under = LookUnder(restored, t, {t, t, t + "/sub"}, {"sub/under"});
              // verify against images whose lowest tmpfs holds other data.
              TempDir other;
              EXPECT_OR_RETURN(::mkdir(other.File("d").c_str(), 0755) == 0, "mkdir");
              other.Write("d/x", "LOWEST");  // as long: the data differs, not the size
              TempDir packed;  // not in the directory tar reads ("file changed as we read it")
              RunResult tar = RunCommand({"tar", "-czf", packed.File("t.tar.gz"), "-C", other.path(), "."});
              RunResult list = RunCommand({"sh", "-c", "ls " + work.File("images") + " | grep tmpfs-dev"});
              std::string lowest_image;
              {
                // The tmpfs image holding d/x: the lowest's.
                std::istringstream names(list.out);
                for (std::string n; std::getline(names, n);) {
                  RunResult has = RunCommand({"sh", "-c", "tar -tzf " + work.File("images") + "/" + n + " | grep -qx './d/x'"});
                  if (has.status == 0) lowest_image = n;
                }
              }
              RunResult v{};
              if (tar.status == 0 && !lowest_image.empty()) {
                RunCommand({"cp", packed.File("t.tar.gz"), work.File("images") + "/" + lowest_image});
                v = RunCommand({RestoreOrch(), "verify", "--images", work.File("images"), "--pid", Str(restored)});
              }
              KillTree(restored);
              EXPECT_OR_RETURN(stack == "low middle top ", "the stack dumped: " + stack);
              EXPECT_OR_RETURN(after == stack, "restored stack: " + after + ", dumped " + stack);
              EXPECT_OR_RETURN(top == "top=top\nm=?\nd/x=?\nlinks=0\n", "top: " + top);
              EXPECT_OR_RETURN(middle == "top=?\nm=middle\nd/x=?\nlinks=0\n", "middle: " + middle);
              EXPECT_OR_RETURN(low == "m=?\nd/x=lowest\nh=lowest\nlinks=2\n", "lowest: " + low);
              EXPECT_OR_RETURN(under == "sub/under=under a mount of its own\nlinks=2\n", "under sub: " + under);
              EXPECT_OR_RETURN(!lowest_image.empty(), "no tmpfs image holds d/x: " + list.out);
              EXPECT_OR_RETURN(tar.status == 0, "tar: " + tar.err);
              EXPECT_OR_RETURN(v.status == 1 && v.out.find("mount " + t + ": /d/x: data differs") != std::string::npos,
                               "verify with the lowest's files changed: " + Str(v.status) + " " + v.out + v.err);
              return std::string();
            }),
            "");
}

// A tmpfs whose mountpoint another tmpfs hides (mounted on its parent
// directory, so no path reaches it): its files come back under it.
TEST(Stacks, ATmpfsHiddenByOneOnItsParentDirectoryComesBack) {
  EXPECT_EQ(InSandbox([] {
              TempDir work;
              const std::string w = work.path();
              pid_t root = StartTree(true, true, [&] {
                MUST(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0);
                MUST(::mkdir((w + "/base").c_str(), 0755) == 0 && ::mkdir((w + "/base/under").c_str(), 0755) == 0);
                MUST(::mount("A", (w + "/base/under").c_str(), "tmpfs", 0, "size=64k") == 0);
                WriteFile(w + "/base/under/file", "in A");
                MUST(::mount("B", (w + "/base").c_str(), "tmpfs", 0, "size=64k") == 0);
                WriteFile(w + "/base/b", "in B");
                ExecSleep();
              });
              EXPECT_OR_RETURN(root > 0 && WaitSettled(root, 1), "the tree did not settle");
              RunResult d = Dump(root, work.File("images"));
              if (d.status != 0) KillTree(root);
              ::waitpid(root, nullptr, 0);
              EXPECT_OR_RETURN(d.status == 0, "dump: " + d.err);
              pid_t restored = 0;
              if (std::string e = RestoreAndVerify(work.File("images"), restored); !e.empty()) return e;
              std::string shown = LookUnder(restored, w + "/base", {}, {"b", "under/file"});
              std::string under = LookUnder(restored, w + "/base", {w + "/base"}, {"b", "under/file"});
              KillTree(restored);
              EXPECT_OR_RETURN(shown == "b=in B\nunder/file=?\nlinks=0\n", "seen: " + shown);
              EXPECT_OR_RETURN(under == "b=?\nunder/file=in A\nlinks=0\n", "under B: " + under);
              return std::string();
            }),
            "");
}

// The external mounts of a stack: a bind of a directory of the caller's
// filesystem covered by a tmpfs, and /proc, where the tree's own proc
// covers the sandbox's, which covers the host's (hidden in the caller's
// tree too). All come back in their order, the bind with its files.
TEST(Stacks, ExternalMountsCoveredAtTheirRootComeBack) {
  EXPECT_EQ(InSandbox([] {
              TempDir work;
              const std::string w = work.path(), x = w + "/x";
              pid_t root = StartTree(true, true, [&] {
                MUST(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0);
                MUST(::mkdir((w + "/src").c_str(), 0755) == 0 && ::mkdir(x.c_str(), 0755) == 0);
                WriteFile(w + "/src/file", "the caller's");
                MUST(::mount((w + "/src").c_str(), x.c_str(), nullptr, MS_BIND, nullptr) == 0);
                MUST(::mount("cover", x.c_str(), "tmpfs", 0, "size=64k") == 0);
                WriteFile(x + "/top", "top");
                MUST(::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) == 0);
                ExecSleep();
              });
              EXPECT_OR_RETURN(root > 0 && WaitSettled(root, 1), "the tree did not settle");
              std::string stack = StackAt(root, x), procs = StackAt(root, "/proc");
              RunResult d = Dump(root, work.File("images"));
              if (d.status != 0) KillTree(root);
              ::waitpid(root, nullptr, 0);
              EXPECT_OR_RETURN(d.status == 0, "dump: " + d.err);
              EXPECT_OR_RETURN(d.err.find("left out") == std::string::npos, "dump: " + d.err);
              EXPECT_OR_RETURN(d.out.find("--external " + x + "#1=PATH for mount " + x) != std::string::npos &&
                                   d.out.find("--external /proc#1=PATH") != std::string::npos &&
                                   d.out.find("--external /proc#2=PATH") != std::string::npos,
                               "a key for each covered external mount: " + d.out);
              RunResult dry = RunCommand({RestoreOrch(), "--images", work.File("images"), "--dry-run", "--ext-mount-map", "auto"});
              pid_t restored = 0;
              if (std::string e = RestoreAndVerify(work.File("images"), restored); !e.empty()) return e;
              std::string after = StackAt(restored, x), procs_after = StackAt(restored, "/proc");
              std::string top = LookUnder(restored, x, {}, {"top", "file"});
              std::string under = LookUnder(restored, x, {x}, {"top", "file"});
              // The restored /proc stack, taken apart: the tree's own proc
              // shows pid 1, the ones below show the sandbox's processes.
              std::string own = LookUnder(restored, "/proc", {}, {"1/comm"});
              // verify against images whose covered bind has another root.
              RunResult names = RunCommand({"sh", "-c", "ls " + work.File("images") + " | grep mountpoints-"});
              std::string image = work.File("images") + "/" + names.out.substr(0, names.out.find('\n'));
              RunResult rooted = RunCommand(
                  {"sh", "-c",
                   RestoreOrch() + " image decode " + image + " | python3 -c '\n"
                   "import json, sys\n"
                   "j = json.load(sys.stdin)\n"
                   "[e for e in j[\"entries\"] if e.get(\"ext_key\") == sys.argv[1]][0][\"root\"] = sys.argv[2]\n"
                   "json.dump(j, sys.stdout)' " + x + "#1 " + w + "/other | " + RestoreOrch() + " image encode -o " + image + ".rooted"});
              RunResult v_root;
              if (rooted.status == 0 && ::rename(image.c_str(), (image + ".kept").c_str()) == 0 &&
                  ::rename((image + ".rooted").c_str(), image.c_str()) == 0) {
                v_root = RunCommand({RestoreOrch(), "verify", "--images", work.File("images"), "--pid", Str(restored)});
                ::rename((image + ".kept").c_str(), image.c_str());
              } else {
                v_root.err = "editing the images: " + rooted.err;
              }
              // verify against images without the covered bind, as a dump
              // that left it out wrote them.
              RunResult v;
              {
                RunResult edit = RunCommand({"sh", "-c",
                                             RestoreOrch() + " image decode " + image +
                                                 " | python3 -c '\n"
                                                 "import json, sys\n"
                                                 "j = json.load(sys.stdin)\n"
                                                 "gone = [e for e in j[\"entries\"] if e.get(\"ext_key\") == sys.argv[1]][0]\n"
                                                 "j[\"entries\"].remove(gone)\n"
                                                 "for e in j[\"entries\"]:\n"
                                                 "    if e[\"parent_mnt_id\"] == gone[\"mnt_id\"]: e[\"parent_mnt_id\"] = gone[\"parent_mnt_id\"]\n"
                                                 "json.dump(j, sys.stdout)' " +
                                                 x + "#1 | " + RestoreOrch() + " image encode -o " + image});
                if (edit.status == 0) v = RunCommand({RestoreOrch(), "verify", "--images", work.File("images"), "--pid", Str(restored)});
                else v.err = "editing the images: " + edit.err;
              }
              KillTree(restored);
              EXPECT_OR_RETURN(std::count(stack.begin(), stack.end(), ' ') == 2 && stack.find(" cover ") != std::string::npos,
                               "the stack dumped: " + stack);
              EXPECT_OR_RETURN(std::count(procs.begin(), procs.end(), ' ') == 3, "the /proc stack dumped: " + procs);
              EXPECT_OR_RETURN(after == stack, "restored stack: " + after + ", dumped " + stack);
              EXPECT_OR_RETURN(procs_after == procs, "restored /proc stack: " + procs_after + ", dumped " + procs);
              EXPECT_OR_RETURN(dry.out.find(" from /proc, cloned from under what hides it here\n") != std::string::npos,
                               "the host's /proc, hidden in the sandbox, comes from under the sandbox's: " + dry.out + dry.err);
              EXPECT_OR_RETURN(top == "top=top\nfile=?\nlinks=0\n", "on top: " + top);
              EXPECT_OR_RETURN(under == "top=?\nfile=the caller's\nlinks=0\n", "under the tmpfs: " + under);
              EXPECT_OR_RETURN(own == "1/comm=sleep\n\nlinks=0\n", "the tree's own proc: " + own);
              EXPECT_OR_RETURN(v_root.status == 1 && v_root.out.find("mount " + x + ": root " + w + "/src, images say " + w + "/other") !=
                                                         std::string::npos,
                               "verify of images with another root for the covered bind: " + Str(v_root.status) + " " + v_root.out +
                                   v_root.err);
              EXPECT_OR_RETURN(v.status == 1 && v.out.find("mounts: ") != std::string::npos,
                               "verify of images without the covered bind: " + Str(v.status) + " " + v.out + v.err);
              return std::string();
            }),
            "");
}

// A bind of a directory of the caller's filesystem, whose source the
// caller has since mounted over: --ext-mount-map auto clones the caller's
// filesystem from under that mount, and the bind shows the files it had.
TEST(Stacks, AnExternalSourceTheCallerMountedOverIsClonedFromUnderIt) {
  EXPECT_EQ(InSandbox([] {
              TempDir work;
              const std::string w = work.path(), t = w + "/t", src = w + "/src";
              pid_t root = StartTree(true, true, [&] {
                MUST(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0);
                MUST(::mkdir(src.c_str(), 0755) == 0 && ::mkdir(t.c_str(), 0755) == 0);
                WriteFile(src + "/file", "the source's");
                MUST(::mount(src.c_str(), t.c_str(), nullptr, MS_BIND, nullptr) == 0);
                ExecSleep();
              });
              EXPECT_OR_RETURN(root > 0 && WaitSettled(root, 1), "the tree did not settle");
              RunResult d = Dump(root, work.File("images"));
              if (d.status != 0) KillTree(root);
              ::waitpid(root, nullptr, 0);
              EXPECT_OR_RETURN(d.status == 0, "dump: " + d.err);
              // The caller (this sandbox) covers the source.
              EXPECT_OR_RETURN(::mount("over", src.c_str(), "tmpfs", 0, "size=64k") == 0, "mount over the source");
              WriteFile(src + "/file", "the caller's tmpfs");
              RunResult dry = RunCommand({RestoreOrch(), "--images", work.File("images"), "--dry-run", "--ext-mount-map", "auto"});
              pid_t restored = 0;
              std::string e = RestoreAndVerify(work.File("images"), restored);
              std::string seen = restored > 0 ? LookUnder(restored, t, {}, {"file"}) : "";
              if (restored > 0) KillTree(restored);
              ::umount2(src.c_str(), MNT_DETACH);
              if (!e.empty()) return e;
              EXPECT_OR_RETURN(dry.out.find(" from " + src + ", cloned from under what hides it here\n") != std::string::npos,
                               "dry-run: " + dry.out + dry.err);
              EXPECT_OR_RETURN(seen == "file=the source's\nlinks=0\n", "the bind shows: " + seen);
              return std::string();
            }),
            "");
}

}  // namespace
}  // namespace ro::test
