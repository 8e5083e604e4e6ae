// Namespaces of tasks: which one a task is in, and a UTS namespace's host
// and domain name (read from another task's namespace, set in the calling
// task's).
#pragma once

#include <sys/types.h>

#include <string>

#include "sys/status.h"

namespace ro::sys {

// The inode of /proc/PID/ns/KIND ("uts", "ipc", "net"...; pid 0 for the
// caller): equal for two tasks exactly when they share the namespace.
// Errors: stat's, naming the path.
Result<ino_t> NamespaceInode(pid_t pid, const std::string& kind);

// What uname(2) reports of a UTS namespace: nodename (sethostname) and
// domainname (setdomainname), each at most kUtsNameMax bytes, without NUL.
struct UtsNames {
  std::string nodename;
  std::string domainname;
};
inline constexpr size_t kUtsNameMax = 64;  // __NEW_UTS_LEN, include/uapi/linux/utsname.h

// The names of the UTS namespace of task `pid` (a pid of the caller's
// /proc): a short-lived thread of the caller joins it (setns(2); a UTS
// namespace is per thread, so the caller's other threads stay where they
// are) and asks uname(2). Needs CAP_SYS_ADMIN. Errors: open of
// /proc/PID/ns/uts, setns, uname, naming the task.
Result<UtsNames> ReadUtsNames(pid_t pid);

// sethostname(2) and setdomainname(2) in the calling task's UTS namespace.
// Errors name the call.
Status SetUtsNames(const UtsNames& names);

}  // namespace ro::sys
