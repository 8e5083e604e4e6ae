#include "sys/kernel_features.h"

#include <fcntl.h>
#include <linux/ptrace.h>
#include <poll.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/rseq.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>

#include "sys/autofs_dev.h"
#include "sys/clone.h"
#include "sys/mapping.h"
#include "sys/mountinfo.h"
#include "sys/proc.h"
#include "sys/proc_mm.h"
#include "sys/process.h"
#include "sys/ptrace_api.h"
#include "sys/ptrace_regs.h"

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

// Runs `body` in a forked child (its exit status 0 is success) so that
// what it changes of its own task stays there; the child's status.
template <class F>
int InChild(F body) {
  pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) _exit(body());
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// The orchestrator's hold on a continuing task: PTRACE_SEIZE with the
// options a restore gives (exit-kill, seccomp suspended, clones traced),
// then PTRACE_INTERRUPT stops it.
void ProbePtrace(int out) {
  pid_t pid = ::fork();
  if (pid < 0) {
    Report(out, "ptrace-seize-interrupt", false, Why(SysError("fork")));
    return;
  }
  if (pid == 0) {
    for (;;) ::pause();
  }
  Status seized = PtraceSeizeWith(pid, PTRACE_O_EXITKILL | PTRACE_O_SUSPEND_SECCOMP | PTRACE_O_TRACECLONE);
  Result<PtraceStop> stop = seized.ok() ? PtraceInterruptAndWait(pid, 2000) : Result<PtraceStop>(seized.error());
  bool ok = stop.ok() && !stop->exited;
  Report(out, "ptrace-seize-interrupt", ok,
         ok ? "a child seized (EXITKILL, SUSPEND_SECCOMP, TRACECLONE) stopped on PTRACE_INTERRUPT"
            : stop.ok() ? "the seized child exited instead of stopping" : Why(stop.error()));
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
}

// PR_SET_MM_MAP, as the restorer sets a task's mm fields: a child sets its
// own, unchanged (it needs no CAP_SYS_RESOURCE, and no exe change).
void ProbeMmMap(int out) {
  struct MmMap {
    uint64_t start_code, end_code, start_data, end_data, start_brk, brk, start_stack, arg_start, arg_end, env_start, env_end;
    uint64_t auxv;
    uint32_t auxv_size, exe_fd;
  };
  unsigned int size = 0;
  if (::prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE, &size, 0, 0) != 0 || size != sizeof(MmMap)) {
    Report(out, "prctl-mm-map", false,
           size != 0 ? "PR_SET_MM_MAP_SIZE is " + std::to_string(size) + ", not " + std::to_string(sizeof(MmMap))
                     : Why(SysError("prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE)")));
    return;
  }
  int status = InChild([] {
    auto text = ReadProcFile("/proc/self/stat");
    auto st = text.ok() ? ParseProcStatMm(*text) : Result<ProcStatMm>(text.error());
    if (!st.ok()) return 2;
    MmMap m{st->start_code, st->end_code, st->start_data, st->end_data, st->start_brk,
            static_cast<uint64_t>(::syscall(SYS_brk, 0)), st->start_stack, st->arg_start, st->arg_end, st->env_start,
            st->env_end, 0, 0, ~0u};
    return ::prctl(PR_SET_MM, PR_SET_MM_MAP, &m, sizeof(m), 0) == 0 ? 0 : 3;
  });
  Report(out, "prctl-mm-map", status == 0,
         status == 0 ? "a task set its mm fields with PR_SET_MM_MAP" : "PR_SET_MM_MAP of a task's own fields failed (status " + std::to_string(status) + ")");
}

// rseq(2) as the restorer uses it: the worker's registration undone, the
// image's area registered.
void ProbeRseq(int out) {
  int status = InChild([] {
    if (__rseq_size > 0) {
      auto* mine = reinterpret_cast<char*>(__builtin_thread_pointer()) + __rseq_offset;
      if (::syscall(SYS_rseq, mine, __rseq_size < 32 ? 32 : __rseq_size, 1 /* RSEQ_FLAG_UNREGISTER */, RSEQ_SIG) != 0) return 2;
    }
    static struct rseq area __attribute__((aligned(32)));
    return ::syscall(SYS_rseq, &area, 32, 0, RSEQ_SIG) == 0 ? 0 : 3;
  });
  Report(out, "rseq", status == 0,
         status == 0 ? "an rseq area unregistered and another registered"
                     : status == 2 ? "unregistering glibc's rseq area failed" : "registering an rseq area failed");
}

// What only makes a dump or restore faster: PAGEMAP_SCAN (Linux 6.7; the
// dump reads every pagemap entry without it) and MADV_POPULATE_WRITE
// (Linux 5.14; pages are faulted in one by one without it).
void ProbeSpeedups(int out) {
  auto page = MapPrivateAnonymous(4096);
  if (!page.ok()) {
    Report(out, "pagemap-scan", false, Why(page.error()));
    Report(out, "madv-populate-write", false, Why(page.error()));
    return;
  }
  uint64_t at = reinterpret_cast<uint64_t>(page->base());
  int populate = ::madvise(page->base(), 4096, 23 /* MADV_POPULATE_WRITE */);
  Report(out, "madv-populate-write", populate == 0,
         populate == 0 ? "madvise(MADV_POPULATE_WRITE) filled a page" : Why(SysError("madvise(MADV_POPULATE_WRITE)")));
  // This process as the caller's /proc numbers it (the probe runs in a PID
  // namespace of its own, /proc is the caller's).
  auto self = ReadProcLink("/proc/self");
  auto pm = self.ok() ? Pagemap::Open(static_cast<pid_t>(std::atoi(self->c_str()))) : Result<Pagemap>(self.error());
  auto ranges = pm.ok() ? pm->PopulatedRanges(at, at + 4096)
                        : Result<std::optional<std::vector<std::pair<uint64_t, uint64_t>>>>(pm.error());
  bool ok = ranges.ok() && ranges->has_value();
  Report(out, "pagemap-scan", ok,
         !ranges.ok() ? Why(ranges.error()) : ok ? "ioctl(PAGEMAP_SCAN) found " + std::to_string((*ranges)->size()) + " range(s)"
                                                 : "ioctl(PAGEMAP_SCAN) is not there (ENOTTY or EINVAL)");
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
  ProbePtrace(out);
  ProbeMmMap(out);
  ProbeRseq(out);
  ProbeSpeedups(out);
  _exit(0);
}

}  // namespace

bool IsOptionalFeature(const std::string& name) { return name == "pagemap-scan" || name == "madv-populate-write"; }

bool KernelFeatures::AllOk() const {
  for (const auto& f : features) {
    if (!f.ok && f.required) return false;
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
    std::string name = line.substr(0, t1);
    bool optional = IsOptionalFeature(name);
    result.features.push_back({name, line.substr(t1 + 1, t2 - t1 - 1) == "1", line.substr(t2 + 1), !optional});
  }
  return result;
}

}  // namespace ro::sys
