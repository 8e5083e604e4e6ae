// A mount of the tree that was a slave of a peer group outside it (the
// caller's shared mount, as a container's mounts are slaves of the host's):
// dumped, then restored with --enable-external-masters it is a slave of the
// caller's group again, checked from outside by propagation itself; without
// the flag it is private, said by the restore and by verify; a caller's
// mount that is private cannot be joined, and nothing is left.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "sys/mountinfo.h"
#include "test/helpers/live_tree.h"
#include "test/helpers/sandbox.h"
#include "test/helpers/test_util.h"

namespace ro::test {
namespace {

// The mountinfo of `pid`'s namespace, the entry at `mountpoint` (the top
// one), or nullopt.
std::optional<sys::MountInfo> MountAt(pid_t pid, const std::string& mountpoint) {
  auto mounts = sys::ReadMountInfo("/proc/" + Str(pid) + "/mountinfo");
  if (!mounts.ok()) return std::nullopt;
  std::optional<sys::MountInfo> found;
  for (const sys::MountInfo& m : *mounts) {
    if (m.mountpoint == mountpoint) found = m;
  }
  return found;
}

// Mounts a small tmpfs at `path` in the mount namespace of `pid`; true when it worked.
bool MountIn(pid_t pid, const std::string& path) {
  pid_t child = ::fork();
  if (child == 0) {
    int ns = ::open(("/proc/" + Str(pid) + "/ns/mnt").c_str(), O_RDONLY | O_CLOEXEC);
    if (ns < 0 || ::setns(ns, CLONE_NEWNS) != 0) ::_exit(1);
    ::mkdir(path.c_str(), 0755);
    ::_exit(::mount("inside", path.c_str(), "tmpfs", 0, "size=64k") == 0 ? 0 : 2);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

TEST(ExternalMasters, ASlaveOfTheCallersGroupComesBackOneWhenAsked) {
  EXPECT_EQ(InSandbox([]() -> std::string {
              TempDir work;
              KillAtEnd tree;
              const std::string w = work.path(), src = w + "/src";
              // The caller's shared mount; the tree's copy of it a slave of it.
              EXPECT_OR_RETURN(::mkdir(src.c_str(), 0755) == 0 && ::mount("outer", src.c_str(), "tmpfs", 0, "size=1m") == 0 &&
                                   ::mount(nullptr, src.c_str(), nullptr, MS_SHARED, nullptr) == 0,
                               "cannot make the caller's shared tmpfs");
              WriteFile(src + "/file", "outside");
              std::optional<sys::MountInfo> caller = MountAt(::getpid(), src);
              EXPECT_OR_RETURN(caller && caller->shared != 0, "the caller's mount is not shared");
              pid_t root = StartTree(true, true, [] {
                MUST(::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) == 0);
                ExecSleep();
              });
              tree.pid = root;
              EXPECT_OR_RETURN(root > 0 && WaitSettled(root, 1), "the tree did not settle");
              std::optional<sys::MountInfo> before = MountAt(root, src);
              EXPECT_OR_RETURN(before && before->master == caller->shared && before->shared == 0, "the tree's copy is not a slave");
              RunResult d = Dump(root, work.File("images"));
              tree.pid = 0;
              EXPECT_OR_RETURN(d.status == 0, "dump: " + d.err);
              EXPECT_OR_RETURN(d.out.find("a restore needs --enable-external-masters for " + src + " to come back slaves of peer group " +
                                          Str(caller->shared)) != std::string::npos,
                               "the dump did not say what a restore needs:\n" + d.out);

              // Asked for: a slave of the caller's group again, verify agrees.
              pid_t back = 0;
              std::string failed = RestoreAndVerify(work.File("images"), back, {"--enable-external-masters"});
              tree.pid = back;
              EXPECT_OR_RETURN(failed.empty(), failed);
              std::optional<sys::MountInfo> after = MountAt(back, src);
              EXPECT_OR_RETURN(after && after->master == caller->shared && after->shared == 0,
                               "after: " + (after ? "shared:" + Str(after->shared) + " master:" + Str(after->master) : std::string("no mount")));
              // Propagation itself: the caller's new mount shows in the tree, the tree's does not show outside.
              EXPECT_OR_RETURN(::mkdir((src + "/in").c_str(), 0755) == 0 && ::mount("new", (src + "/in").c_str(), "tmpfs", 0, "size=64k") == 0,
                               "cannot mount in the caller's group");
              EXPECT_OR_RETURN(MountAt(back, src + "/in").has_value(), "a mount made in the caller's group did not reach the restored slave");
              EXPECT_OR_RETURN(MountIn(back, src + "/mine"), "cannot mount inside the restored tree");
              EXPECT_OR_RETURN(!MountAt(::getpid(), src + "/mine").has_value(), "a mount made in the slave reached its master");
              ::umount2((src + "/in").c_str(), MNT_DETACH);
              tree.Now();

              // Not asked for: private, as the warning and verify say.
              RunResult plain = RunCommand({RestoreOrch(), "--images", work.File("images"), "--detach", "--ext-mount-map", "auto"});
              tree.pid = std::atoi(plain.out.c_str());
              EXPECT_OR_RETURN(plain.status == 0 && plain.err.find("mount " + src + " was a slave of peer group " + Str(caller->shared) +
                                                                   " outside the images; it is restored private") != std::string::npos,
                               "restore without the flag: " + plain.err);
              std::optional<sys::MountInfo> priv = MountAt(tree.pid, src);
              EXPECT_OR_RETURN(priv && priv->master == 0 && priv->shared == 0, "without the flag the mount is not private");
              RunResult v = RunCommand({RestoreOrch(), "verify", "--images", work.File("images"), "--pid", Str(tree.pid)});
              EXPECT_OR_RETURN(v.status == 1 && v.out.find(src + ": a slave of no group, images say of peer group " + Str(caller->shared) +
                                                           " outside the tree") != std::string::npos,
                               "verify of the private copy: " + v.out + v.err);
              tree.Now();

              // Its source hidden here under another mount of the caller's: it
              // can be cloned from under it, not joined; private, with a warning.
              EXPECT_OR_RETURN(::mount("cover", src.c_str(), "tmpfs", 0, "size=64k") == 0, "cannot cover the caller's mount");
              RunResult hidden = RunCommand({RestoreOrch(), "--images", work.File("images"), "--detach", "--ext-mount-map", "auto",
                                             "--enable-external-masters"});
              tree.pid = std::atoi(hidden.out.c_str());
              EXPECT_OR_RETURN(hidden.status == 0 && hidden.err.find("is hidden by other mounts here, so it cannot be joined") != std::string::npos,
                               "restore with the source hidden: " + Str(hidden.status) + " " + hidden.err);
              std::optional<sys::MountInfo> alone = MountAt(tree.pid, src);
              EXPECT_OR_RETURN(alone && alone->master == 0 && alone->shared == 0 && alone->fstype == "tmpfs" && alone->source == "outer",
                               "the mount restored from under the cover");
              tree.Now();
              EXPECT_OR_RETURN(::umount2(src.c_str(), 0) == 0, "cannot uncover the caller's mount");

              // A caller's mount in no group cannot be joined: said before anything is created.
              EXPECT_OR_RETURN(::mount(nullptr, src.c_str(), nullptr, MS_PRIVATE, nullptr) == 0, "cannot make the caller's mount private");
              RunResult refused = RunCommand({RestoreOrch(), "--images", work.File("images"), "--detach", "--ext-mount-map", "auto",
                                              "--enable-external-masters"});
              EXPECT_OR_RETURN(refused.status == 1 && refused.err.find("is private: it is in no peer group to be a slave of") != std::string::npos &&
                                   std::count(refused.err.begin(), refused.err.end(), '\n') == 1,
                               "restore from a private mount: " + Str(refused.status) + " " + refused.err);
              EXPECT_OR_RETURN(OtherProcesses() == 0, "a refused restore left a process");
              return "";
            }),
            "");
}

}  // namespace
}  // namespace ro::test
