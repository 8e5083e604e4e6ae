#include "sys/namespaces.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include "sys/unique_fd.h"

namespace ro::sys {

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
  std::thread([&] {
    if (::setns(ns.get(), CLONE_NEWUTS) != 0) {
      err = errno;
      failed = "setns(CLONE_NEWUTS) into ";
    } else if (::uname(&u) != 0) {
      err = errno;
      failed = "uname in ";
    }
  }).join();
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

}  // namespace ro::sys
