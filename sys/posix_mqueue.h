// POSIX message queues of an IPC namespace (ipc/mqueue.c): each namespace
// has one mqueue filesystem whose files are its queues. They are read
// through a detached mount of it, and made again with mq_open(3), their
// owner, mode and messages.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "sys/status.h"

namespace ro::sys {

// The kernel's bounds (include/linux/ipc_namespace.h, include/uapi/linux/mqueue.h).
inline constexpr long kMqueueHardMsgMax = 65536;            // HARD_MSGMAX: a queue's mq_maxmsg
inline constexpr long kMqueueHardMsgSizeMax = 16L << 20;    // HARD_MSGSIZEMAX: a queue's mq_msgsize, bytes
inline constexpr uint32_t kMqueuePrioMax = 32768;           // MQ_PRIO_MAX: priorities are below it
inline constexpr size_t kMqueueNameMax = 255;               // NAME_MAX: a queue's name, without its '/'

struct PosixMqMessage {
  uint32_t prio = 0;  // below kMqueuePrioMax
  std::string data;   // at most the queue's msgsize bytes
};

struct PosixMqueue {
  std::string name;  // as in the mqueue filesystem: without mq_open's leading '/'
  uint32_t uid = 0, gid = 0;
  uint32_t mode = 0;  // st_mode & 07777
  long maxmsg = 0;    // mq_attr.mq_maxmsg
  long msgsize = 0;   // mq_attr.mq_msgsize, bytes
  long curmsgs = 0;   // mq_attr.mq_curmsgs
  uint64_t qsize = 0;  // bytes of all its messages (the QSIZE its file shows)
  // An mq_notify(3) registration: the registrant's pid in the reader's PID
  // namespace (NOTIFY_PID), how it is told (NOTIFY: SIGEV_*) and its signal.
  pid_t notify_pid = 0;  // 0: none
  int notify = 0;
  int notify_signo = 0;
  // Whether `messages` holds the queue's messages (ReadPosixMqueues).
  bool messages_read = false;
  std::vector<PosixMqMessage> messages;  // in the order mq_receive(3) gives them: highest priority first, oldest first within one
};

// Every queue of the calling thread's IPC namespace, by name, through a
// detached mount of its mqueue filesystem (fsopen, fsmount; dropped
// before returning). `dev` gets the filesystem's device (0, and no
// queues, on a kernel without CONFIG_POSIX_MQUEUE).
//
// With `read_messages`, the messages of each queue are read too: taken
// with mq_timedreceive(2) and sent back at once in the same order, which
// leaves the queue as it was provided no task receives or sends meanwhile
// (the caller has frozen every task that can). A full queue is not read
// (taking a message would let a sender blocked on it in), nor one with an
// mq_notify registration (sending to the emptied queue would fire it):
// messages_read tells. Errors name the queue and the call; one that could
// not put every message back says how many are lost.
Result<std::vector<PosixMqueue>> ReadPosixMqueues(bool read_messages, dev_t& dev);

// Makes `queues` in the calling task's IPC namespace, in order: each with
// mq_open(3) (O_CREAT | O_EXCL, its maxmsg and msgsize: within the
// namespace's fs/mqueue limits unless the caller has CAP_SYS_RESOURCE),
// fchown to uid:gid, fchmod to mode (after the chown, which clears set-id
// bits), then its messages sent in order. Their bytes count against the
// caller's RLIMIT_MSGQUEUE, whose soft limit is raised to the hard one
// meanwhile (EMFILE beyond it). Errors name the queue and the call.
Status MakePosixMqueues(const std::vector<PosixMqueue>& queues);

}  // namespace ro::sys
