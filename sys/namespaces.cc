#include "sys/namespaces.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <functional>
#include <system_error>
#include <thread>

#include "sys/proc.h"
#include "sys/unique_fd.h"

namespace ro::sys {
namespace {

// Runs `body` on a thread of its own (which may join other namespaces:
// they are per thread) and waits for it. `body` must not throw; starting
// the thread may (EAGAIN), which is an error here.
Status RunInThread(const std::function<void()>& body) {
  try {
    std::thread(body).join();
  } catch (const std::system_error& e) {
    return SysError("start a thread to join the namespace", e.code().value());
  }
  return {};
}

}  // namespace

Result<ino_t> NamespaceInode(pid_t pid, const std::string& kind) {
  const std::string path = (pid == 0 ? std::string("/proc/self") : "/proc/" + std::to_string(pid)) + "/ns/" + kind;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return SysError("stat " + path);
  return st.st_ino;
}

Result<UtsNames> ReadUtsNames(pid_t pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/ns/uts";
  UniqueFd ns(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns) return SysError("open " + path);
  struct utsname u {};
  int err = 0;
  const char* failed = nullptr;
  auto join = [&] {
    if (::setns(ns.get(), CLONE_NEWUTS) != 0) {
      err = errno;
      failed = "setns(CLONE_NEWUTS) into ";
    } else if (::uname(&u) != 0) {
      err = errno;
      failed = "uname in ";
    }
  };
  if (Status s = RunInThread(join); !s.ok()) return std::move(s).error();
  if (failed != nullptr) return SysError(failed + path, err);
  return UtsNames{u.nodename, u.domainname};
}

Status SetUtsNames(const UtsNames& names) {
  if (::sethostname(names.nodename.data(), names.nodename.size()) != 0) return SysError("sethostname(\"" + names.nodename + "\")");
  if (::setdomainname(names.domainname.data(), names.domainname.size()) != 0) {
    return SysError("setdomainname(\"" + names.domainname + "\")");
  }
  return {};
}

Result<IpcNamespaceState> ReadIpcNamespace(pid_t pid, const std::vector<std::string>& sysctl_paths, const SegmentReader& read_contents,
                                           bool read_mqueue_messages) {
  const std::string path = "/proc/" + std::to_string(pid) + "/ns/ipc";
  UniqueFd ns(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns) return SysError("open " + path);
  IpcNamespaceState state;
  Status status;
  auto read = [&] {
    if (::setns(ns.get(), CLONE_NEWIPC) != 0) {
      status = SysError("setns(CLONE_NEWIPC) into " + path);
      return;
    }
    for (const std::string& p : sysctl_paths) {
      auto text = ReadProcFile("/proc/sys/" + p);
      if (!text.ok() && text.error().err == ENOENT) continue;  // not in this kernel
      if (!text.ok()) {
        status = text.error();
        return;
      }
      state.sysctls[p] = *text;
    }
    auto sysv = ReadSysvObjects(read_contents);
    if (!sysv.ok()) {
      status = std::move(sysv).error();
      return;
    }
    state.sysv = std::move(sysv).value();
    auto queues = ReadPosixMqueues(read_mqueue_messages, state.mqueue_dev);
    if (!queues.ok()) {
      status = std::move(queues).error();
      return;
    }
    state.mqueues = std::move(queues).value();
  };
  if (Status s = RunInThread(read); !s.ok()) return std::move(s).error();
  if (!status.ok()) return std::move(status).error().Within("the IPC namespace of " + std::to_string(pid));
  return state;
}

Status WriteSysctls(int proc_dir, const std::vector<std::pair<std::string, std::string>>& values) {
  for (const auto& [path, text] : values) {
    const std::string rel = "sys/" + path;
    UniqueFd fd(::openat(proc_dir, rel.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd) return SysError("open /proc/" + rel);
    ssize_t n = ::write(fd.get(), text.data(), text.size());
    if (n < 0) return SysError("write '" + text + "' to /proc/" + rel);
    if (static_cast<size_t>(n) != text.size()) return Fail("write '" + text + "' to /proc/" + rel + ": short write");
  }
  return {};
}

Result<std::string> ReadSysctl(int proc_dir, const std::string& path) {
  const std::string rel = "sys/" + path;
  UniqueFd fd(::openat(proc_dir, rel.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return SysError("open /proc/" + rel);
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return SysError("read /proc/" + rel);
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  if (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

}  // namespace ro::sys
