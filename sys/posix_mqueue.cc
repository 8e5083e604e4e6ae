#include "sys/posix_mqueue.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <mqueue.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "sys/unique_fd.h"

namespace ro::sys {
namespace {

std::string QueueName(const std::string& name) { return "POSIX message queue /" + name; }

// The names in the mqueue mount `mnt`, sorted.
Result<std::vector<std::string>> QueueNames(int mnt) {
  int dir = ::openat(mnt, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return SysError("open the mqueue mount");
  DIR* d = ::fdopendir(dir);
  if (d == nullptr) {
    Error e = SysError("fdopendir(the mqueue mount)");
    ::close(dir);
    return e;
  }
  std::vector<std::string> names;
  errno = 0;
  while (dirent* entry = ::readdir(d)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  int err = errno;
  ::closedir(d);
  if (err != 0) return SysError("readdir(the mqueue mount)", err);
  std::sort(names.begin(), names.end());
  return names;
}

// Takes every message of the queue open at `fd` and sends them back in
// the order taken, so that the queue is as it was.
Status ReadMessages(int fd, PosixMqueue& q) {
  const std::string what = QueueName(q.name);
  std::string buf(static_cast<size_t>(q.msgsize), '\0');
  std::vector<PosixMqMessage> taken;
  int err = 0;
  while (static_cast<long>(taken.size()) < q.curmsgs) {
    unsigned prio = 0;
    ssize_t n = ::mq_receive(fd, buf.data(), buf.size(), &prio);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;  // fewer than mq_curmsgs said: someone outside took one
    if (n < 0) {
      err = errno;
      break;
    }
    taken.push_back(PosixMqMessage{prio, buf.substr(0, static_cast<size_t>(n))});
  }
  for (size_t i = 0; i < taken.size(); ++i) {
    if (::mq_send(fd, taken[i].data.data(), taken[i].data.size(), taken[i].prio) != 0) {
      return SysError(what + ": put message " + std::to_string(i) + " back (mq_send): " + std::to_string(taken.size() - i) + " of its " +
                      std::to_string(taken.size()) + " messages are lost");
    }
  }
  if (err != 0) return SysError(what + ": read its messages (mq_receive)", err);
  q.messages = std::move(taken);
  q.messages_read = true;
  return {};
}

Result<PosixMqueue> ReadQueue(int mnt, const std::string& name, bool read_messages) {
  const std::string what = QueueName(name);
  UniqueFd fd(::openat(mnt, name.c_str(), O_RDWR | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return SysError(what + ": open");
  PosixMqueue q;
  q.name = name;
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return SysError(what + ": fstat");
  q.uid = st.st_uid;
  q.gid = st.st_gid;
  q.mode = st.st_mode & 07777;
  mq_attr attr{};
  if (::mq_getattr(fd.get(), &attr) != 0) return SysError(what + ": mq_getattr");
  q.maxmsg = attr.mq_maxmsg;
  q.msgsize = attr.mq_msgsize;
  q.curmsgs = attr.mq_curmsgs;
  // "QSIZE:%-10lu NOTIFY:%-5d SIGNO:%-5d NOTIFY_PID:%-6d\n" (mqueue_read_file).
  char text[128] = {};
  ssize_t n = ::pread(fd.get(), text, sizeof text - 1, 0);
  if (n < 0) return SysError(what + ": read its file");
  unsigned long qsize = 0;
  if (std::sscanf(text, "QSIZE:%lu NOTIFY:%d SIGNO:%d NOTIFY_PID:%d", &qsize, &q.notify, &q.notify_signo, &q.notify_pid) != 4) {
    return Fail(what + ": its file reads '" + std::string(text) + "', not QSIZE, NOTIFY, SIGNO and NOTIFY_PID");
  }
  q.qsize = qsize;
  if (read_messages && q.notify_pid == 0 && q.curmsgs < q.maxmsg) RO_TRY(ReadMessages(fd.get(), q));
  return q;
}

}  // namespace

Result<std::vector<PosixMqueue>> ReadPosixMqueues(bool read_messages, dev_t& dev) {
  dev = 0;
  UniqueFd fs(static_cast<int>(::syscall(SYS_fsopen, "mqueue", FSOPEN_CLOEXEC)));
  if (!fs && errno == ENODEV) return std::vector<PosixMqueue>{};  // CONFIG_POSIX_MQUEUE unset: no queue can exist
  if (!fs) return SysError("fsopen(mqueue)");
  if (::syscall(SYS_fsconfig, fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) return SysError("fsconfig(mqueue, CMD_CREATE)");
  UniqueFd mnt(static_cast<int>(::syscall(SYS_fsmount, fs.get(), FSMOUNT_CLOEXEC, 0)));
  if (!mnt) return SysError("fsmount(mqueue)");
  struct stat st {};
  if (::fstat(mnt.get(), &st) != 0) return SysError("fstat(the mqueue mount)");
  RO_ASSIGN_OR_RETURN(std::vector<std::string> names, QueueNames(mnt.get()));
  std::vector<PosixMqueue> queues;
  for (const std::string& name : names) {
    RO_ASSIGN_OR_RETURN(PosixMqueue q, ReadQueue(mnt.get(), name, read_messages));
    queues.push_back(std::move(q));
  }
  dev = st.st_dev;
  return queues;
}

Status MakePosixMqueues(const std::vector<PosixMqueue>& queues) {
  if (queues.empty()) return {};
  rlimit before{};
  if (::getrlimit(RLIMIT_MSGQUEUE, &before) != 0) return SysError("getrlimit(RLIMIT_MSGQUEUE)");
  rlimit raised{before.rlim_max, before.rlim_max};
  if (::setrlimit(RLIMIT_MSGQUEUE, &raised) != 0) return SysError("setrlimit(RLIMIT_MSGQUEUE) to its hard limit");
  auto make = [](const PosixMqueue& q) -> Status {
    const std::string what = QueueName(q.name);
    mq_attr attr{};
    attr.mq_maxmsg = q.maxmsg;
    attr.mq_msgsize = q.msgsize;
    const std::string path = "/" + q.name;
    UniqueFd fd(::mq_open(path.c_str(), O_CREAT | O_EXCL | O_RDWR | O_NONBLOCK | O_CLOEXEC, q.mode & 0777, &attr));
    if (!fd) {
      int err = errno;
      return SysError(what + ": create it (mq_open, maxmsg " + std::to_string(q.maxmsg) + ", msgsize " + std::to_string(q.msgsize) +
                          (err == EMFILE ? ": beyond RLIMIT_MSGQUEUE" : "") + ")",
                      err);
    }
    if (::fchown(fd.get(), q.uid, q.gid) != 0) return SysError(what + ": fchown to " + std::to_string(q.uid) + ":" + std::to_string(q.gid));
    if (::fchmod(fd.get(), q.mode) != 0) return SysError(what + ": fchmod");
    for (size_t i = 0; i < q.messages.size(); ++i) {
      const PosixMqMessage& m = q.messages[i];
      if (::mq_send(fd.get(), m.data.data(), m.data.size(), m.prio) != 0) {
        return SysError(what + ": send message " + std::to_string(i) + " (mq_send, " + std::to_string(m.data.size()) + " bytes, priority " +
                        std::to_string(m.prio) + ")");
      }
    }
    return {};
  };
  Status made;
  for (const PosixMqueue& q : queues) {
    made = make(q);
    if (!made.ok()) break;
  }
  if (::setrlimit(RLIMIT_MSGQUEUE, &before) != 0 && made.ok()) return SysError("setrlimit(RLIMIT_MSGQUEUE) back");
  return made;
}

}  // namespace ro::sys
