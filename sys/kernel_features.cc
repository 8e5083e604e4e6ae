#include "sys/kernel_features.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>

#include "sys/autofs_dev.h"
#include "sys/clone.h"
#include "sys/mountinfo.h"
#include "sys/process.h"

namespace ro::sys {
namespace {

constexpr int kProbeTimeoutMs = 10000;

void Report(int fd, const char* name, bool ok, const std::string& detail) {
  std::string line = std::string(name) + "\t" + (ok ? "1" : "0") + "\t" + detail + "\n";
  (void)!::write(fd, line.data(), line.size());
}

std::string Why(const Error& e) { return e.ToString(); }

const MountInfo* FindMount(const std::vector<MountInfo>& mounts, const std::string& path) {
  const MountInfo* found = nullptr;
  for (const MountInfo& m : mounts) {
    if (m.mountpoint == path) found = &m;  // the last one is on top
  }
  return found;
}

bool ProbeSetTid(int out) {
  auto child = Clone3(CloneSpec{.flags = 0, .pid = 4242, .want_pidfd = false});
  if (!child.ok()) {
    Report(out, "clone3-set-tid", false, Why(child.error()));
    return false;
  }
  if (child->pid == 0) _exit(getpid() == 4242 ? 0 : 1);
  int status = 0;
  ::waitpid(child->pid, &status, 0);
  bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  Report(out, "clone3-set-tid", ok, ok ? "child got pid 4242 as asked" : "child did not get the pid it asked for");
  return ok;
}

void ProbeSetGroup(int out) {
  const char* a = "/tmp/ro-probe/a";
  const char* b = "/tmp/ro-probe/b";
  if (::mkdir("/tmp/ro-probe", 0700) != 0 || ::mkdir(a, 0700) != 0 || ::mkdir(b, 0700) != 0 ||
      ::mount("probe", a, "tmpfs", 0, nullptr) != 0 || ::mkdir("/tmp/ro-probe/a/sub", 0700) != 0 ||
      ::mount(nullptr, a, nullptr, MS_PRIVATE, nullptr) != 0 ||
      ::mount("/tmp/ro-probe/a/sub", b, nullptr, MS_BIND, nullptr) != 0 ||
      ::mount(nullptr, a, nullptr, MS_SHARED, nullptr) != 0) {
    Report(out, "move-mount-set-group", false, Why(SysError("preparing two mounts")));
    return;
  }
  if (::move_mount(AT_FDCWD, a, AT_FDCWD, b, MOVE_MOUNT_SET_GROUP) != 0) {
    Report(out, "move-mount-set-group", false, Why(SysError("move_mount(a -> b, MOVE_MOUNT_SET_GROUP)")));
    return;
  }
  auto mounts = ReadMountInfo();
  if (!mounts.ok()) {
    Report(out, "move-mount-set-group", false, Why(mounts.error()));
    return;
  }
  const MountInfo* ma = FindMount(*mounts, a);
  const MountInfo* mb = FindMount(*mounts, b);
  bool ok = ma != nullptr && mb != nullptr && ma->shared != 0 && ma->shared == mb->shared;
  Report(out, "move-mount-set-group", ok, ok ? "a bind joined its source's peer group" : "peer group not joined");
}

void ProbeAutofs(int out) {
  const char* dir = "/tmp/ro-probe/auto";
  int p[2];
  if (::mkdir(dir, 0700) != 0 || ::pipe2(p, O_CLOEXEC) != 0) {
    Report(out, "autofs-pipe-ino", false, Why(SysError("mkdir/pipe")));
    return;
  }
  UniqueFd rd(p[0]), wr(p[1]);
  std::string opts = "fd=" + std::to_string(wr.get()) + ",pgrp=" + std::to_string(getpgrp()) +
                     ",minproto=5,maxproto=5,indirect";
  if (::mount("probe", dir, "autofs", 0, opts.c_str()) != 0) {
    Report(out, "autofs-pipe-ino", false, Why(SysError("mount(autofs, " + opts + ")")));
    Report(out, "dev-autofs", false, "not probed: no autofs mount to open");
    return;
  }
  auto mounts = ReadMountInfo();
  const MountInfo* m = mounts.ok() ? FindMount(*mounts, dir) : nullptr;
  std::string ino = m != nullptr ? m->SuperOption("pipe_ino") : "";
  struct stat st {};
  ::fstat(rd.get(), &st);
  bool ok = !ino.empty() && ino == std::to_string(st.st_ino);
  Report(out, "autofs-pipe-ino", ok, ok ? "mountinfo shows pipe_ino=" + ino : "no pipe_ino= in the autofs options");

  auto dev = AutofsDevice::Open();
  if (!dev.ok()) {
    Report(out, "dev-autofs", false, Why(dev.error()));
  } else if (auto v = dev->GetVersion(); !v.ok()) {
    Report(out, "dev-autofs", false, Why(v.error()));
  } else {
    // The take-over path: open the mount by path and device, make it catatonic.
    struct stat mst {};
    ::stat(dir, &mst);
    auto mfd = dev->OpenMount(dir, mst.st_dev);
    Status cat = mfd.ok() ? dev->Catatonic(*mfd) : Status(mfd.error());
    bool dok = v->major == 1 && cat.ok();
    Report(out, "dev-autofs", dok,
           "version " + std::to_string(v->major) + "." + std::to_string(v->minor) +
               (cat.ok() ? ", OPENMOUNT and CATATONIC work" : ", " + Why(cat.error())));
  }
  ::umount2(dir, MNT_DETACH);
}

// Runs as pid 1 of the probe's PID namespace; `parent` is a pidfd of the
// process that cloned it.
[[noreturn]] void ProbeChild(int out, const UniqueFd& parent) {
  if (!DieWithParent(parent)) _exit(1);
  // An AutoFS mount is owned by a process group of this namespace: the
  // probe needs one of its own (the caller's is invisible from here).
  ::setsid();
  Report(out, "pid-namespace", getpid() == 1, "probe runs as pid " + std::to_string(getpid()));
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    Report(out, "mount-namespace", false, Why(SysError("mount(/, MS_REC|MS_PRIVATE)")));
    _exit(1);
  }
  // Cover /tmp inside this namespace only, so nothing lands on the host.
  if (::mount("probe", "/tmp", "tmpfs", 0, "mode=0700") != 0) {
    Report(out, "mount-namespace", false, Why(SysError("mount(tmpfs, /tmp)")));
    _exit(1);
  }
  Report(out, "mount-namespace", true, "private mount namespace with its own /tmp");
  ProbeSetTid(out);
  ProbeSetGroup(out);
  ProbeAutofs(out);
  _exit(0);
}

}  // namespace

bool KernelFeatures::AllOk() const {
  for (const auto& f : features) {
    if (!f.ok) return false;
  }
  return !features.empty();
}

bool KernelFeatures::Has(const std::string& name) const {
  for (const auto& f : features) {
    if (f.name == name) return f.ok;
  }
  return false;
}

Result<KernelFeatures> ProbeKernel() {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return SysError("pipe2");
  UniqueFd rd(p[0]), wr(p[1]);
  KernelFeatures result;
  // The probe dies with us, even when we die before it asked to.
  UniqueFd self;
  if (auto opened = PidfdOpen(::getpid()); opened.ok()) self = std::move(opened).value();
  auto child = Clone3(CloneSpec{.flags = CLONE_NEWPID | CLONE_NEWNS, .pid = 1, .want_pidfd = true});
  if (!child.ok()) {
    int err = child.error().err;
    result.features.push_back({"clone3-set-tid", false, child.error().ToString()});
    if (err == EINVAL || err == ENOSYS) {
      // Tell set_tid apart from namespaces: try the namespaces alone.
      child = Clone3(CloneSpec{.flags = CLONE_NEWPID | CLONE_NEWNS, .pid = std::nullopt, .want_pidfd = true});
    }
    if (!child.ok()) {
      result.features.push_back({"pid-namespace", false, child.error().ToString()});
      return result;
    }
  }
  if (child->pid == 0) {
    rd.reset();
    ProbeChild(wr.get(), self);
  }
  wr.reset();
  std::string text;
  char buf[4096];
  for (;;) {
    pollfd pfd{rd.get(), POLLIN, 0};
    int n = ::poll(&pfd, 1, kProbeTimeoutMs);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::syscall(SYS_pidfd_send_signal, child->pidfd.get(), SIGKILL, nullptr, 0);
      result.features.push_back({"probe", false, "the probe child did not finish within 10 s"});
      break;
    }
    ssize_t r = ::read(rd.get(), buf, sizeof(buf));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    text.append(buf, static_cast<size_t>(r));
  }
  ::waitpid(child->pid, nullptr, 0);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) break;
    std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    size_t t1 = line.find('\t');
    size_t t2 = line.find('\t', t1 + 1);
    if (t1 == std::string::npos || t2 == std::string::npos) continue;
    result.features.push_back({line.substr(0, t1), line.substr(t1 + 1, t2 - t1 - 1) == "1", line.substr(t2 + 1)});
  }
  return result;
}

}  // namespace ro::sys
