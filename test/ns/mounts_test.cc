// Restores mount namespaces for real: the tree, its flags and peer groups,
// AutoFS mounts taken over by their masters; read back from the root
// task's mountinfo.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sched.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <set>
#include <map>
#include <sstream>

#include "images/kinds.h"
#include "images/proto/mnt.pb.h"
#include "sys/mountinfo.h"
#include "test/helpers/sandbox.h"
#include "test/helpers/test_util.h"
#include "test/helpers/tree_images.h"

namespace ro::test {
namespace {

struct Live {
  pid_t root = 0;
  std::map<std::string, sys::MountInfo> mounts;  // by mountpoint, as the tree sees them
  std::string error;
};

Live RestoreDetached(const ImageSet& images, const std::vector<std::string>& extra = {}) {
  Live live;
  TempDir dir;
  if (Status s = images::WriteImageDir(dir.path(), images); !s.ok()) {
    live.error = s.error().ToString();
    return live;
  }
  std::vector<std::string> argv = {RestoreOrch(), "--images", dir.path(), "--detach"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  RunResult r = RunCommand(argv);
  if (r.status != 0) {
    live.error = "restore failed (" + std::to_string(r.status) + "): " + r.err;
    return live;
  }
  live.root = static_cast<pid_t>(std::atoi(r.out.c_str()));
  auto mounts = sys::ReadMountInfo("/proc/" + std::to_string(live.root) + "/mountinfo");
  if (!mounts.ok()) {
    live.error = mounts.error().ToString();
    return live;
  }
  for (auto& m : *mounts) live.mounts[m.mountpoint] = m;
  return live;
}

std::vector<TaskSpec> OneTask() { return {{.pid = 1, .ppid = 0, .pgid = 1, .sid = 1}}; }

TEST(Mounts, TreeFlagsAndPeerGroupsUpToRenumbering) {
  EXPECT_EQ(InSandbox([] {
              ImageSet set = TreeImages(OneTask());
              // The image lists children before parents and peers out of
              // order: the restore must not care (seed 004).
              AddMounts(set, {
                                 {.id = 60, .parent = 50, .mountpoint = "/d/c", .root = "/sub", .master = 1, .dev = 11},
                                 {.id = 61, .parent = 50, .mountpoint = "/d/e", .shared = 2, .master = 1, .dev = 11},
                                 {.id = 50, .parent = 40, .mountpoint = "/d", .options = "mode=755", .dev = 12},
                                 {.id = 43, .parent = 40, .mountpoint = "/b", .shared = 1, .dev = 11},
                                 {.id = 42, .parent = 40, .mountpoint = "/a", .options = "size=1m", .shared = 1, .dev = 11},
                                 {.id = 44, .parent = 40, .fstype = 1, .mountpoint = "/proc", .source = "proc",
                                  .flags = MS_NOSUID | MS_NODEV | MS_NOEXEC, .dev = 13},
                                 {.id = 45, .parent = 40, .mountpoint = "/ro", .flags = MS_RDONLY, .dev = 14},
                                 {.id = 46, .parent = 40, .mountpoint = "/u", .flags = MS_UNBINDABLE, .dev = 15},
                                 {.id = 40, .parent = 1, .mountpoint = "/", .options = "mode=755", .dev = 10},
                             });
              Live live = RestoreDetached(set);
              if (!live.error.empty()) return live.error;
              std::ostringstream p;
              for (const char* mp : {"/", "/a", "/b", "/d", "/d/c", "/d/e", "/proc", "/ro", "/u"}) {
                if (!live.mounts.count(mp)) p << "missing mount " << mp << "\n";
              }
              if (!p.str().empty()) {
                for (auto& [mp, m] : live.mounts) p << "  have " << mp << "\n";
                KillTree(live.root);
                return p.str();
              }
              auto& a = live.mounts["/a"];
              auto& b = live.mounts["/b"];
              auto& c = live.mounts["/d/c"];
              auto& e = live.mounts["/d/e"];
              if (a.fstype != "tmpfs" || live.mounts["/proc"].fstype != "proc") p << "wrong fstypes\n";
              if (a.shared == 0 || a.shared != b.shared) p << "/a and /b are not peers\n";
              if (c.master != a.shared || c.shared != 0) p << "/d/c is not a plain slave of /a's group\n";
              if (e.master != a.shared || e.shared == 0 || e.shared == a.shared) p << "/d/e is not shared and slave of /a's group\n";
              if (c.root != "/sub") p << "/d/c has root " << c.root << "\n";
              if (live.mounts["/"].shared != 0 || live.mounts["/d"].shared != 0) p << "private mounts became shared\n";
              if (live.mounts["/ro"].mount_options.rfind("ro", 0) != 0) p << "/ro is " << live.mounts["/ro"].mount_options << "\n";
              if (live.mounts["/proc"].mount_options.find("nosuid") == std::string::npos) p << "/proc lost nosuid\n";
              if (!live.mounts["/u"].unbindable) p << "/u is not unbindable\n";
              if (a.SuperOption("size") != "1024k") p << "/a has options " << a.super_options << "\n";
              // Exactly these mounts: nothing multiplied by propagation.
              if (live.mounts.size() != 9) p << live.mounts.size() << " mounts, want 9\n";
              KillTree(live.root);
              return p.str();
            }),
            "");
}

TEST(Mounts, KernelFilesystemsAndOvermounts) {
  EXPECT_EQ(InSandbox([] {
              ImageSet set = TreeImages(OneTask());
              AddMounts(set, {{.id = 40, .parent = 1, .mountpoint = "/", .dev = 10},
                              {.id = 41, .parent = 40, .mountpoint = "/dev", .options = "mode=755", .dev = 11},
                              {.id = 42, .parent = 41, .fstype = 6, .mountpoint = "/dev/pts", .source = "devpts",
                               .options = "mode=620,ptmxmode=666", .dev = 12},
                              {.id = 43, .parent = 41, .fstype = 14, .mountpoint = "/dev/mqueue", .source = "mqueue", .dev = 13},
                              {.id = 44, .parent = 40, .fstype = 2, .mountpoint = "/sys", .source = "sysfs",
                               .flags = MS_RDONLY, .dev = 14},
                              // Two tmpfs stacked on /over: the upper one hides the lower.
                              {.id = 45, .parent = 40, .mountpoint = "/over", .dev = 15},
                              {.id = 46, .parent = 45, .mountpoint = "/over", .options = "size=2m", .dev = 16}});
              Live live = RestoreDetached(set);
              if (!live.error.empty()) return live.error;
              std::string p;
              const std::pair<const char*, const char*> want[] = {
                  {"/dev/pts", "devpts"}, {"/dev/mqueue", "mqueue"}, {"/sys", "sysfs"}, {"/over", "tmpfs"}};
              for (const auto& [mp, fstype] : want) {
                if (live.mounts[mp].fstype != fstype) p += std::string(mp) + " is '" + live.mounts[mp].fstype + "'\n";
              }
              if (live.mounts["/dev/pts"].SuperOption("ptmxmode") != "666") p += "devpts options: " + live.mounts["/dev/pts"].super_options + "\n";
              auto mounts = sys::ReadMountInfo("/proc/" + std::to_string(live.root) + "/mountinfo");
              int over = 0;
              std::string upper_size;
              for (const auto& m : *mounts) {
                if (m.mountpoint == "/over") {
                  ++over;
                  upper_size = m.SuperOption("size");
                }
              }
              if (over != 2 || upper_size != "2048k") p += "/over is not two stacked tmpfs with the 2m one on top\n";
              KillTree(live.root);
              return p;
            }),
            "");
}

TEST(Mounts, ExternalBindsFromTheCallersTree) {
  EXPECT_EQ(InSandbox([] {
              TempDir host;
              host.Write("marker", "from the caller");
              ImageSet set = TreeImages(OneTask());
              host.Write("single", "a file bound alone");
              AddMounts(set, {{.id = 40, .parent = 1, .mountpoint = "/", .dev = 10},
                              {.id = 41, .parent = 40, .mountpoint = "/ext", .dev = 99, .external = true, .ext_key = "data"},
                              {.id = 42, .parent = 40, .mountpoint = "/etc/one-file", .dev = 98, .external = true,
                               .ext_key = "file"}});
              Live live = RestoreDetached(set, {"--external", "data=" + host.path(), "--external", "file=" + host.File("single")});
              if (!live.error.empty()) return live.error;
              std::string got, file;
              std::ifstream in("/proc/" + std::to_string(live.root) + "/root/ext/marker");
              std::getline(in, got);
              std::ifstream in2("/proc/" + std::to_string(live.root) + "/root/etc/one-file");
              std::getline(in2, file);
              KillTree(live.root);
              std::string p;
              if (got != "from the caller") p += "the external bind shows '" + got + "'\n";
              if (file != "a file bound alone") p += "the file bind shows '" + file + "'\n";
              return p;
            }),
            "");
}

TEST(Mounts, MissingExternalIsAClearError) {
  EXPECT_EQ(InSandbox([] {
              ImageSet set = TreeImages(OneTask());
              AddMounts(set, {{.id = 40, .parent = 1, .mountpoint = "/", .dev = 10},
                              {.id = 41, .parent = 40, .mountpoint = "/ext", .dev = 0xfff00000u, .external = true, .ext_key = "data"}});
              TempDir dir;
              if (Status s = images::WriteImageDir(dir.path(), set); !s.ok()) return s.error().ToString();
              auto before = MountTable();
              std::string p;
              // Only what the caller names is bound: without a flag, the plan says which one.
              RunResult r = RunCommand({RestoreOrch(), "--images", dir.path()});
              if (r.status != 2) p += "status " + std::to_string(r.status) + " without a source\n";
              if (r.err.find("mount /ext (tmpfs) is external (key \"data\"): give --external data=PATH, or --ext-mount-map auto") ==
                  std::string::npos) {
                p += r.err;
              }
              // Asked to find it by device, it names the device nobody here has.
              r = RunCommand({RestoreOrch(), "--images", dir.path(), "--ext-mount-map", "auto"});
              if (r.status != 1) p += "status " + std::to_string(r.status) + " with --ext-mount-map auto\n";
              if (r.err.find("external tmpfs mount /ext (--ext-mount-map auto): no mount of device 4095:0") == std::string::npos ||
                  r.err.find("give --external data=PATH") == std::string::npos) {
                p += r.err;
              }
              if (before != MountTable()) p += "the caller's mounts changed\n";
              return p;
            }),
            "");
}

// A master (task 2) with its pipe: read end fd 4, write end fd 5 (or none).
// With `serve_log`, the master resumes as test/helpers/autofs_master,
// bound in from the build tree, and logs what it serves there.
ImageSet AutofsImages(bool write_end_closed, const std::string& serve_log = "") {
  std::vector<FileSpec> files = {{.kind = FileSpec::kPipe, .id = 1, .pipe_id = 77, .flags = O_RDONLY},
                                 {.kind = FileSpec::kPipe, .id = 2, .pipe_id = 77, .flags = O_WRONLY}};
  std::vector<TaskSpec> tasks = {{.pid = 1, .ppid = 0, .pgid = 1, .sid = 1},
                                 {.pid = 2, .ppid = 1, .pgid = 2, .sid = 2}};
  tasks[1].fds = {{4, 1}};
  if (!write_end_closed) tasks[1].fds.push_back({5, 2});
  if (!serve_log.empty()) tasks[1].argv = {"/helpers/autofs_master", "4", "/auto", "/work/" + serve_log};
  ImageSet set = TreeImages(tasks, false, files);
  AutofsSpec live{.dev = 20, .fd = 5, .pgrp = 2, .mode = 1};
  if (write_end_closed) live.read_fd = 4;
  AddMounts(set,
            {{.id = 40, .parent = 1, .mountpoint = "/", .dev = 10},
             {.id = 41, .parent = 40, .fstype = 18, .mountpoint = "/auto", .source = "automount",
              .options = "fd=5,pgrp=2,timeout=300,minproto=5,maxproto=5,indirect,pipe_ino=77", .dev = 20},
             {.id = 42, .parent = 40, .fstype = 18, .mountpoint = "/dead", .source = "automount",
              .options = "fd=-1,pgrp=9,timeout=300,minproto=5,maxproto=5,direct", .dev = 21},
             {.id = 43, .parent = 40, .mountpoint = "/helpers", .dev = 98, .external = true, .ext_key = "helpers"},
             {.id = 44, .parent = 40, .mountpoint = "/work", .dev = 97, .external = true, .ext_key = "work"}},
            {live, {.dev = 21, .fd = -1, .pgrp = 9, .mode = 0}});
  return set;
}

// From a process that is not one of the tree's, in its PID and mount
// namespaces (the kernel only asks a master on behalf of processes it can
// see): stat `path`, at most 10 s. Returns errno, 0 on success; `took`
// gets the seconds.
int StatInside(pid_t root, const std::string& path, double* took) {
  auto t0 = std::chrono::steady_clock::now();
  pid_t child = ::fork();
  if (child == 0) {
    ::alarm(10);
    int pid_ns = ::open(("/proc/" + std::to_string(root) + "/ns/pid").c_str(), O_RDONLY);
    int mnt_ns = ::open(("/proc/" + std::to_string(root) + "/ns/mnt").c_str(), O_RDONLY);
    if (pid_ns < 0 || mnt_ns < 0 || ::setns(pid_ns, CLONE_NEWPID) != 0) _exit(200);
    pid_t inside = ::fork();  // the first child enters the PID namespace
    if (inside == 0) {
      if (::setns(mnt_ns, CLONE_NEWNS) != 0 || ::chdir("/") != 0) _exit(201);
      ::signal(SIGPIPE, SIG_IGN);
      struct stat st {};
      _exit(::stat(path.c_str(), &st) == 0 ? 0 : errno);
    }
    int status = 0;
    ::waitpid(inside, &status, 0);
    _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 255);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  *took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return WIFEXITED(status) ? WEXITSTATUS(status) : 255;
}

std::string ServeAfterRestore(bool write_end_closed) {
  TempDir work;
  std::vector<std::string> ext = {"--external", std::string("helpers=") + RO_HELPERS_DIR, "--external", "work=" + work.path()};
  Live live = RestoreDetached(AutofsImages(write_end_closed, "served"), ext);
  if (!live.error.empty()) return live.error;
  std::ostringstream p;
  double took = 0;
  int err = StatInside(live.root, "/auto/key1", &took);
  if (err != 0) p << "stat /auto/key1 failed: " << std::strerror(err) << " after " << took << " s\n";
  if (work.Read("served") != "key1 0\n") p << "the master logged '" << work.Read("served") << "'\n";
  err = StatInside(live.root, "/dead/key", &took);
  if (err != ENOENT || took > 1.0) p << "the catatonic mount answered " << std::strerror(err) << " after " << took << " s\n";
  KillTree(live.root);
  return p.str();
}

TEST(Autofs, TheRestoredMasterServesRequests) {
  RO_SKIP_WITHOUT_AUTOFS();
  EXPECT_EQ(InSandbox([] { return ServeAfterRestore(false); }), "");
}

TEST(Autofs, TheRestoredMasterServesThroughItsReadEndAlone) {
  RO_SKIP_WITHOUT_AUTOFS();
  EXPECT_EQ(InSandbox([] { return ServeAfterRestore(true); }), "");
}

std::string CheckAutofs(bool write_end_closed) {
  TempDir work;
  Live live = RestoreDetached(AutofsImages(write_end_closed),
                              {"--external", std::string("helpers=") + RO_HELPERS_DIR, "--external", "work=" + work.path()});
  if (!live.error.empty()) return live.error;
  std::ostringstream p;
  // The master, seen from the sandbox: the root's only child.
  std::string child;
  std::ifstream("/proc/" + std::to_string(live.root) + "/task/" + std::to_string(live.root) + "/children") >> child;
  pid_t master = static_cast<pid_t>(std::atoi(child.c_str()));
  auto& a = live.mounts["/auto"];
  auto& d = live.mounts["/dead"];
  struct stat st {};
  ::stat(("/proc/" + std::to_string(master) + "/fd/4").c_str(), &st);
  if (a.fstype != "autofs" || a.SuperOption("pgrp") != std::to_string(master)) {
    p << "/auto is not owned by the master's group " << master << ": " << a.super_options << "\n";
  }
  if (a.SuperOption("pipe_ino") != std::to_string(st.st_ino)) p << "/auto's pipe is not the master's: " << a.super_options << "\n";
  if (!write_end_closed && a.SuperOption("fd") != "5") p << "/auto's fd is not 5: " << a.super_options << "\n";
  if (a.SuperOption("timeout") != "300" || a.super_options.find("indirect") == std::string::npos) p << a.super_options << "\n";
  if (d.SuperOption("fd") != "-1" || d.super_options.find("direct") == std::string::npos) p << "/dead: " << d.super_options << "\n";
  // The master's fd table is as dumped: a temporary write end is gone.
  std::set<std::string> fds;
  for (int fd = 0; fd < 64; ++fd) {
    if (::access(("/proc/" + std::to_string(master) + "/fd/" + std::to_string(fd)).c_str(), F_OK) == 0) fds.insert(std::to_string(fd));
  }
  std::set<std::string> want = write_end_closed ? std::set<std::string>{"4"} : std::set<std::string>{"4", "5"};
  if (fds != want) p << "the master holds " << fds.size() << " fds\n";
  KillTree(live.root);
  return p.str();
}

TEST(Autofs, OffsetMountsToo) {
  RO_SKIP_WITHOUT_AUTOFS();
  EXPECT_EQ(InSandbox([] {
              std::vector<FileSpec> files = {{.kind = FileSpec::kPipe, .id = 1, .pipe_id = 7, .flags = O_RDONLY},
                                             {.kind = FileSpec::kPipe, .id = 2, .pipe_id = 7, .flags = O_WRONLY}};
              std::vector<TaskSpec> tasks = {{.pid = 1, .ppid = 0, .pgid = 1, .sid = 1},
                                             {.pid = 2, .ppid = 1, .pgid = 2, .sid = 2, .fds = {{4, 1}, {5, 2}}}};
              ImageSet set = TreeImages(tasks, false, files);
              AddMounts(set, {{.id = 40, .parent = 1, .mountpoint = "/", .dev = 10},
                              {.id = 41, .parent = 40, .fstype = 18, .mountpoint = "/off", .source = "auto", .dev = 20}},
                        {{.dev = 20, .fd = 5, .pgrp = 2, .mode = 2}});
              Live live = RestoreDetached(set);
              if (!live.error.empty()) return live.error;
              std::string opts = live.mounts["/off"].super_options;
              KillTree(live.root);
              return opts.find("offset") != std::string::npos && opts.find("fd=5") != std::string::npos ? std::string()
                                                                                                       : "/off: " + opts;
            }),
            "");
}

TEST(Autofs, MastersTakeOverTheirMounts) {
  RO_SKIP_WITHOUT_AUTOFS();
  EXPECT_EQ(InSandbox([] { return CheckAutofs(false); }), "");
}

TEST(Autofs, MasterThatClosedItsWriteEnd) {
  RO_SKIP_WITHOUT_AUTOFS();
  EXPECT_EQ(InSandbox([] { return CheckAutofs(true); }), "");
}

// A gzipped tar of `dir`, made by tar(1) with the given extra members.
std::string TarGz(const TempDir& dir, const std::vector<std::string>& members) {
  std::vector<std::string> argv = {"tar", "-czf", dir.File("out.tar.gz"), "-C", dir.path()};
  argv.insert(argv.end(), members.begin(), members.end());
  RunCommand(argv);
  return dir.Read("out.tar.gz");
}

TEST(Tmpfs, ContentsComeBackAndReadOnlyStaysReadOnly) {
  EXPECT_EQ(InSandbox([] {
              TempDir src;
              ::mkdir(src.File("sub").c_str(), 0750);
              src.Write("sub/a.txt", "restored contents\n");
              if (::symlink("a.txt", src.File("sub/link").c_str()) != 0) return std::string("symlink failed");
              std::string tar = TarGz(src, {"sub"});
              ImageSet set = TreeImages(OneTask());
              AddMounts(set, {{.id = 40, .parent = 1, .mountpoint = "/", .dev = 10},
                              {.id = 41, .parent = 40, .mountpoint = "/data", .dev = 50},
                              {.id = 42, .parent = 40, .mountpoint = "/ro", .dev = 51, .sb_flags = MS_RDONLY}});
              AddTmpfsContents(set, 50, tar);
              AddTmpfsContents(set, 51, tar);
              Live live = RestoreDetached(set);
              if (!live.error.empty()) return live.error;
              std::string p;
              std::string root = "/proc/" + std::to_string(live.root) + "/root";
              for (const char* where : {"/data", "/ro"}) {
                std::ifstream in(root + where + "/sub/a.txt");
                std::string line;
                std::getline(in, line);
                if (line != "restored contents") p += std::string(where) + "/sub/a.txt holds '" + line + "'\n";
                char target[64] = {};
                if (::readlink((root + where + "/sub/link").c_str(), target, sizeof(target) - 1) <= 0 ||
                    std::string(target) != "a.txt") {
                  p += std::string(where) + "/sub/link is not a symlink to a.txt\n";
                }
                struct stat st {};
                ::stat((root + where + "/sub").c_str(), &st);
                if ((st.st_mode & 07777) != 0750) p += std::string(where) + "/sub lost its mode\n";
              }
              if (live.mounts["/ro"].super_options.rfind("ro", 0) != 0) p += "/ro is " + live.mounts["/ro"].super_options + "\n";
              KillTree(live.root);
              return p;
            }),
            "");
}

TEST(Tmpfs, AnEntryThatClimbsOutIsRefused) {
  EXPECT_EQ(InSandbox([] {
              TempDir src;
              ::mkdir(src.File("in").c_str(), 0755);
              src.Write("escape", "x");
              // "in/../../escape" climbs out of the mount.
              std::string tar = TarGz(src, {"--transform=s,^escape,in/../../escape,", "escape"});
              ImageSet set = TreeImages(OneTask());
              AddMounts(set, {{.id = 40, .parent = 1, .mountpoint = "/", .dev = 10},
                              {.id = 41, .parent = 40, .mountpoint = "/data", .dev = 50}});
              AddTmpfsContents(set, 50, tar);
              TempDir dir;
              if (Status s = images::WriteImageDir(dir.path(), set); !s.ok()) return s.error().ToString();
              RunResult r = RunCommand({RestoreOrch(), "--images", dir.path()});
              std::string p;
              if (r.status != 1) p += "status " + std::to_string(r.status) + "\n";
              if (r.err.find("tmpfs entry in/../../escape") == std::string::npos) p += r.err;
              return p;
            }),
            "");
}

// The shipped action script runs the caller's commands inside the
// restored namespaces after the resume.
TEST(ActionScripts, RestartAutofsMastersRunsCommandsInside) {
  EXPECT_EQ(InSandbox([] {
              TempDir work;
              ImageSet set = TreeImages(OneTask());
              AddMounts(set, {{.id = 40, .parent = 1, .mountpoint = "/", .dev = 10},
                              {.id = 41, .parent = 40, .mountpoint = "/usr", .dev = 90, .external = true, .ext_key = "usr"},
                              {.id = 42, .parent = 40, .mountpoint = "/lib", .dev = 91, .external = true, .ext_key = "lib"},
                              {.id = 43, .parent = 40, .mountpoint = "/lib64", .dev = 92, .external = true, .ext_key = "lib64"},
                              {.id = 44, .parent = 40, .mountpoint = "/work", .dev = 93, .external = true, .ext_key = "work"}});
              ::setenv("RESTORE_ORCH_RESTART_COMMANDS", "echo restarted as $$ > /work/marker", 1);
              Live live = RestoreDetached(set, {"--external", "usr=/usr", "--external", "lib=/usr/lib", "--external",
                                                "lib64=/usr/lib64", "--external", "work=" + work.path(), "--action-script",
                                                std::string(RO_SOURCE_DIR) + "/scripts/restart-autofs-masters.sh"});
              ::unsetenv("RESTORE_ORCH_RESTART_COMMANDS");
              if (!live.error.empty()) return live.error;
              std::string got = work.Read("marker");
              KillTree(live.root);
              // Run in the tree's PID namespace, the shell is not pid 1 there but a small pid.
              return got.rfind("restarted as ", 0) == 0 && std::atoi(got.c_str() + 13) < 100 ? std::string()
                                                                                               : "marker holds '" + got + "'";
            }),
            "");
}

TEST(Verify, AgreesWithItsImagesAndNamesEachDifference) {
  RO_SKIP_WITHOUT_AUTOFS();
  EXPECT_EQ(InSandbox([] {
              TempDir work, same, other;
              ImageSet set = AutofsImages(false);
              if (Status s = images::WriteImageDir(same.path(), set); !s.ok()) return s.error().ToString();
              Live live = RestoreDetached(set, {"--external", std::string("helpers=") + RO_HELPERS_DIR, "--external",
                                                "work=" + work.path()});
              if (!live.error.empty()) return live.error;
              std::string p;
              RunResult ok = RunCommand({RestoreOrch(), "verify", "--images", same.path(), "--pid", std::to_string(live.root)});
              if (ok.status != 0) p += "verify against its own images:\n" + ok.out + ok.err;
              // The same tree against images that differ in a mount flag and an fd.
              ImageSet changed = CloneSet(set);
              for (auto& [name, file] : changed) {
                if (file.kind == &images::MountpointsKind()) {
                  for (auto& e : file.entries) {
                    auto& m = static_cast<img::mnt_entry&>(*e.message);
                    if (m.mountpoint() == "/dead") m.set_flags(MS_RDONLY);
                  }
                }
              }
              auto& fds = changed.at("fdinfo-3.img").entries;
              fds.pop_back();  // the master's fd 5: in these images it had closed its write end
              auto& autofs = *changed.at("autofs-20.img").entries[0].message;
              autofs.GetReflection()->SetInt32(&autofs, autofs.GetDescriptor()->FindFieldByName("read_fd"), 4);
              if (Status s = images::WriteImageDir(other.path(), changed); !s.ok()) return s.error().ToString();
              RunResult bad = RunCommand({RestoreOrch(), "verify", "--images", other.path(), "--pid", std::to_string(live.root)});
              if (bad.status != 1) p += "verify found no difference:\n" + bad.out + bad.err;
              for (const char* line : {"task 2 fd 5: not in the images", "mount /dead: ro differs"}) {
                if (bad.out.find(line) == std::string::npos) p += std::string("missing '") + line + "' in:\n" + bad.out;
              }
              KillTree(live.root);
              return p;
            }),
            "");
}

// Debian's automount, resumed by exec as the master of a restored AutoFS
// mount, re-attaches to it and serves it.
TEST(Autofs, DebiansAutomountServesTheRestoredMount) {
  RO_SKIP_WITHOUT_AUTOFS();
  if (::access("/usr/sbin/automount", X_OK) != 0) GTEST_SKIP() << "automount (Debian package autofs) is not installed";
  EXPECT_EQ(InSandbox([] {
              TempDir work;
              work.Write("auto.master", "/auto /work/auto.map --timeout=300\n");
              work.Write("auto.map", "key -fstype=tmpfs,size=1m :tmpfs\n");
              work.Write("automount.log", "");
              std::vector<FileSpec> files = {{.kind = FileSpec::kPipe, .id = 1, .pipe_id = 77, .flags = O_RDONLY},
                                             {.kind = FileSpec::kPipe, .id = 2, .pipe_id = 77, .flags = O_WRONLY},
                                             {.kind = FileSpec::kRegular, .id = 3, .flags = O_WRONLY | O_APPEND,
                                              .path = "/work/automount.log"}};
              std::vector<TaskSpec> tasks = {
                  {.pid = 1, .ppid = 0, .pgid = 1, .sid = 1},
                  {.pid = 2, .ppid = 1, .pgid = 2, .sid = 2, .comm = "automount",
                   .argv = {"/usr/sbin/automount", "-f", "-d", "-t", "0", "/work/auto.master"},
                   .env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
                   .fds = {{1, 3}, {2, 3}, {4, 1}, {5, 2}}}};
              ImageSet set = TreeImages(tasks, false, files);
              auto ext = [](uint32_t id, const char* mp, const char* key) {
                return MountSpec{.id = id, .parent = 40, .mountpoint = mp, .dev = 200 + id, .external = true, .ext_key = key};
              };
              AddMounts(set,
                        {{.id = 40, .parent = 1, .mountpoint = "/", .dev = 10},
                         ext(41, "/usr", "usr"), ext(42, "/lib", "lib"), ext(43, "/lib64", "lib64"), ext(44, "/bin", "bin"),
                         ext(45, "/sbin", "sbin"), ext(46, "/etc", "etc"), ext(47, "/dev", "dev"), ext(48, "/work", "work"),
                         {.id = 49, .parent = 40, .fstype = 1, .mountpoint = "/proc", .source = "proc", .dev = 11},
                         {.id = 50, .parent = 40, .mountpoint = "/run", .dev = 12},
                         {.id = 51, .parent = 40, .mountpoint = "/tmp", .dev = 13},
                         {.id = 53, .parent = 40, .mountpoint = "/var/run", .dev = 14},
                         {.id = 52, .parent = 40, .fstype = 18, .mountpoint = "/auto", .source = "/work/auto.map",
                          .options = "fd=5,pgrp=2,timeout=300,minproto=5,maxproto=5,indirect", .dev = 20}},
                        {{.dev = 20, .fd = 5, .pgrp = 2, .mode = 1}});
              Live live = RestoreDetached(set, {"--external", "usr=/usr", "--external", "lib=/usr/lib", "--external",
                                                "lib64=/usr/lib64", "--external", "bin=/usr/bin", "--external", "sbin=/usr/sbin",
                                                "--external", "etc=/etc", "--external", "dev=/dev", "--external",
                                                "work=" + work.path()});
              if (!live.error.empty()) return live.error;
              std::string p;
              double took = 0;
              int err = -1;
              // automount needs a moment to start and re-attach.
              for (int i = 0; i < 50 && err != 0; ++i) {
                ::usleep(100000);
                err = StatInside(live.root, "/auto/key/.", &took);
              }
              if (err != 0) p += std::string("stat /auto/key failed: ") + std::strerror(err) + "\n";
              auto mounts = sys::ReadMountInfo("/proc/" + std::to_string(live.root) + "/mountinfo");
              bool served = false;
              int autofs_at_auto = 0;
              for (const auto& m : *mounts) {
                served = served || (m.mountpoint == "/auto/key" && m.fstype == "tmpfs");
                autofs_at_auto += m.mountpoint == "/auto" && m.fstype == "autofs";
              }
              if (!served) p += "automount mounted nothing on /auto/key\n";
              // Re-attached to the restored mount, not a new one on top.
              if (autofs_at_auto != 1) p += std::to_string(autofs_at_auto) + " autofs mounts at /auto\n";
              if (!p.empty()) p += "automount said:\n" + work.Read("automount.log");
              KillTree(live.root);
              return p;
            }),
            "");
}

// CRIU's shared_slave_mount_children: unmounting in this order only works
// (no EBUSY) when the peer groups came back, since unmounting the child
// must propagate to its copy under the peer.
TEST(Mounts, SharedSlaveMountChildrenUnmountInOrder) {
  EXPECT_EQ(InSandbox([] {
              ImageSet set = TreeImages(OneTask());
              AddMounts(set, {{.id = 40, .parent = 1, .mountpoint = "/", .dev = 10},
                              {.id = 41, .parent = 40, .mountpoint = "/dir", .dev = 30},
                              {.id = 42, .parent = 41, .mountpoint = "/dir/share", .shared = 1, .dev = 31},
                              {.id = 43, .parent = 41, .mountpoint = "/dir/slave1", .shared = 2, .master = 1, .dev = 31},
                              {.id = 44, .parent = 41, .mountpoint = "/dir/slave2", .shared = 2, .master = 1, .dev = 31},
                              {.id = 45, .parent = 43, .mountpoint = "/dir/slave1/child", .dev = 32},
                              {.id = 46, .parent = 44, .mountpoint = "/dir/slave2/child", .dev = 32}});
              Live live = RestoreDetached(set);
              if (!live.error.empty()) return live.error;
              std::string p;
              pid_t child = ::fork();
              if (child == 0) {
                int ns = ::open(("/proc/" + std::to_string(live.root) + "/ns/mnt").c_str(), O_RDONLY);
                if (ns < 0 || ::setns(ns, CLONE_NEWNS) != 0) _exit(100);
                int step = 1;
                for (const char* mp : {"/dir/slave1/child", "/dir/slave2", "/dir/slave1", "/dir/share", "/dir"}) {
                  if (::umount2(mp, 0) != 0) _exit(step);
                  ++step;
                }
                _exit(0);
              }
              int status = 0;
              ::waitpid(child, &status, 0);
              if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                p = "unmount step " + std::to_string(WEXITSTATUS(status)) + " failed: propagation was not restored";
              }
              KillTree(live.root);
              return p;
            }),
            "");
}

// Two masters with two mounts each (indirect and direct), and a bind of
// an AutoFS mount: each mount owned by its master's group and pipe.
TEST(Autofs, SeveralMastersSeveralMountsAndABind) {
  RO_SKIP_WITHOUT_AUTOFS();
  EXPECT_EQ(InSandbox([] {
              std::vector<FileSpec> files;
              std::vector<TaskSpec> tasks = {{.pid = 1, .ppid = 0, .pgid = 1, .sid = 1},
                                             {.pid = 2, .ppid = 1, .pgid = 2, .sid = 2},
                                             {.pid = 3, .ppid = 1, .pgid = 3, .sid = 3}};
              std::vector<AutofsSpec> autofs;
              std::vector<MountSpec> mounts = {{.id = 40, .parent = 1, .mountpoint = "/", .dev = 10}};
              uint32_t id = 1, mnt = 41;
              for (int master : {2, 3}) {
                for (int k = 0; k < 2; ++k) {
                  uint32_t pipe = static_cast<uint32_t>(master * 10 + k);
                  int rfd = 10 + 2 * k, wfd = 11 + 2 * k;
                  files.push_back({.kind = FileSpec::kPipe, .id = id, .pipe_id = pipe, .flags = O_RDONLY});
                  files.push_back({.kind = FileSpec::kPipe, .id = id + 1, .pipe_id = pipe, .flags = O_WRONLY});
                  tasks[static_cast<size_t>(master - 1)].fds.push_back({rfd, id});
                  tasks[static_cast<size_t>(master - 1)].fds.push_back({wfd, id + 1});
                  id += 2;
                  uint32_t dev = 100 + pipe;
                  std::string mp = "/m" + std::to_string(master) + "-" + std::to_string(k);
                  mounts.push_back({.id = mnt++, .parent = 40, .fstype = 18, .mountpoint = mp, .source = "auto", .dev = dev});
                  autofs.push_back({.dev = dev, .fd = wfd, .pgrp = master, .mode = k == 0 ? 1 : 0});  // indirect, then direct
                }
              }
              mounts.push_back({.id = mnt, .parent = 40, .fstype = 18, .mountpoint = "/bind", .source = "auto", .dev = 120});
              ImageSet set = TreeImages(tasks, false, files);
              AddMounts(set, mounts, autofs);
              Live live = RestoreDetached(set);
              if (!live.error.empty()) return live.error;
              std::ostringstream p;
              auto outer = [&](int inner) {
                // Children of the root, in fork order: 2, then 3.
                std::ifstream in("/proc/" + std::to_string(live.root) + "/task/" + std::to_string(live.root) + "/children");
                std::vector<pid_t> kids;
                for (pid_t k; in >> k;) kids.push_back(k);
                return kids.size() == 2 ? kids[static_cast<size_t>(inner - 2)] : 0;
              };
              for (int master : {2, 3}) {
                pid_t m = outer(master);
                for (int k = 0; k < 2; ++k) {
                  std::string mp = "/m" + std::to_string(master) + "-" + std::to_string(k);
                  auto& info = live.mounts[mp];
                  struct stat st {};
                  ::stat(("/proc/" + std::to_string(m) + "/fd/" + std::to_string(10 + 2 * k)).c_str(), &st);
                  if (info.SuperOption("pgrp") != std::to_string(m) || info.SuperOption("pipe_ino") != std::to_string(st.st_ino) ||
                      info.SuperOption("fd") != std::to_string(11 + 2 * k) ||
                      info.super_options.find(k == 0 ? "indirect" : "direct") == std::string::npos) {
                    p << mp << ": " << info.super_options << " (master " << m << ")\n";
                  }
                }
              }
              auto& bind = live.mounts["/bind"];
              if (bind.fstype != "autofs" || bind.super_options != live.mounts["/m2-0"].super_options) {
                p << "/bind is not a bind of /m2-0: " << bind.fstype << " " << bind.super_options << "\n";
              }
              KillTree(live.root);
              return p.str();
            }),
            "");
}

}  // namespace
}  // namespace ro::test
