// System V IPC objects of an IPC namespace (ipc/shm.c, ipc/msg.c,
// ipc/sem.c): read with their contents from inside the namespace, and made
// again with the identifiers they had (kernel/*_next_id, present with
// CONFIG_CHECKPOINT_RESTORE, names the id the next *get takes).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sys/status.h"
#include "sys/unique_fd.h"

namespace ro::sys {

// A key as ipcs(1) and /proc/sysvipc show it in hex: "0x00001234".
std::string SysvKeyName(uint32_t key);

// struct ipc_perm of one object.
struct SysvPerm {
  int id = 0;
  uint32_t key = 0;
  uint32_t uid = 0, gid = 0;    // owner
  uint32_t cuid = 0, cgid = 0;  // creator
  uint32_t mode = 0;            // permission bits; segments add SHM_DEST (01000) and SHM_LOCKED (02000)
};

struct SysvShmSegment {
  SysvPerm perm;
  uint64_t size = 0;    // bytes, as shmget was asked
  uint64_t nattch = 0;  // attachments, before this reader's own
  bool hugetlb = false;  // made with SHM_HUGETLB: its contents are not read
};

// Called with each segment (not hugetlb) and its shmem file, open O_RDONLY
// for the call only (pread; SEEK_DATA finds what was written): one file
// open at a time, however many segments there are.
using SegmentReader = std::function<Status(const SysvShmSegment& segment, int contents)>;

struct SysvMessage {
  uint64_t mtype = 0;
  std::string text;
};

struct SysvMsgQueue {
  SysvPerm perm;
  uint64_t qbytes = 0;                // msg_qbytes: the byte limit
  std::vector<SysvMessage> messages;  // oldest first
};

struct SysvSemSet {
  SysvPerm perm;
  std::vector<uint16_t> values;  // semctl GETALL
};

struct SysvObjects {
  std::vector<SysvShmSegment> shm;
  std::vector<SysvMsgQueue> msg;
  std::vector<SysvSemSet> sem;
};

// Every object of the calling thread's IPC namespace, in id order (to be
// called on a thread that joined it). Messages are copied, not taken
// (msgrcv MSG_COPY, CONFIG_CHECKPOINT_RESTORE); a segment's file is opened
// (for `read_contents`, when given) through a read-only attachment of
// this process, detached again (it updates the segment's shm_atime,
// shm_dtime and shm_lpid). Errors name the call and the object, or are
// read_contents' own.
Result<SysvObjects> ReadSysvObjects(const SegmentReader& read_contents = nullptr);

// Makes objects in the calling task's IPC namespace (run by the root task
// of a restore, single-threaded), through `proc_dir` (an fd of its /proc)
// for the sysctls. Each is made as its creator (effective uid and gid
// cuid and cgid, for the kernel to record them), then given its owner
// and mode (IPC_SET); its contents are written as the caller. Errors name
// the object and the call; "took id N" when the kernel did not give the
// id asked for.

// A segment of `size` bytes: `fill` gets its contents mapped writable at
// `base` (an attachment that is detached afterwards); `locked`: SHM_LOCK.
Status MakeShmSegment(int proc_dir, const SysvPerm& perm, uint64_t size, bool locked,
                      const std::function<Status(char* base)>& fill);
// A queue holding `messages`, with the byte limit `qbytes` (made while
// kernel/msgmnb says so: raising it later would need CAP_SYS_RESOURCE).
Status MakeMsgQueue(int proc_dir, const SysvPerm& perm, uint64_t qbytes, const std::vector<SysvMessage>& messages);
// A set with these values.
Status MakeSemSet(int proc_dir, const SysvPerm& perm, const std::vector<uint16_t>& values);

}  // namespace ro::sys
