// Namespaces of tasks: which one a task is in, and a UTS namespace's host
// and domain name (read from another task's namespace, set in the calling
// task's).
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "sys/status.h"
#include "sys/posix_mqueue.h"
#include "sys/sysv_ipc.h"

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

// What an IPC namespace holds, as a task of it sees it.
struct IpcNamespaceState {
  std::map<std::string, std::string> sysctls;  // "kernel/shmmax" (under /proc/sys) -> the file's text
  SysvObjects sysv;                            // its System V objects, with their contents
  std::vector<PosixMqueue> mqueues;  // its POSIX message queues (ReadPosixMqueues), by name
  dev_t mqueue_dev = 0;  // the device of the namespace's mqueue superblock (0: no mqueue filesystem)
};

// The IPC namespace of task `pid` (a pid of the caller's /proc): a
// short-lived thread joins it (setns(2) CLONE_NEWIPC) and reads the
// sysctls at `sysctl_paths`, its System V objects (ReadSysvObjects), and
// its POSIX message queues (ReadPosixMqueues; their messages with
// `read_mqueue_messages`, which only a caller that froze the namespace's
// tasks may ask). A sysctl file that
// does not exist (a kernel without CONFIG_CHECKPOINT_RESTORE has no
// *_next_id) is left out of `sysctls`; a kernel without the mqueue
// filesystem has no queues. Needs CAP_SYS_ADMIN. Errors name the path or
// call (a thread that cannot be started too).
// `read_contents` gets each segment's file (ReadSysvObjects).
Result<IpcNamespaceState> ReadIpcNamespace(pid_t pid, const std::vector<std::string>& sysctl_paths,
                                           const SegmentReader& read_contents = nullptr, bool read_mqueue_messages = false);

// Writes each (path under /proc/sys, text) in order through `proc_dir`
// (an fd of a /proc directory): the calling task's namespaces' values.
// Errors name the path and the text.
Status WriteSysctls(int proc_dir, const std::vector<std::pair<std::string, std::string>>& values);
// The text of the sysctl at `path` under /proc/sys (through `proc_dir`),
// without its last newline. Errors: open and read, naming the path (ENOENT:
// this kernel has none).
Result<std::string> ReadSysctl(int proc_dir, const std::string& path);

}  // namespace ro::sys
