#include "orchestrator/ipc.h"

#include <fcntl.h>

#include <cstring>

#include "sys/files.h"
#include "sys/namespaces.h"
#include "sys/posix_mqueue.h"
#include "sys/sysv_ipc.h"

namespace ro {
namespace {

sys::SysvPerm Perm(const images::SysvPermPlan& p) { return sys::SysvPerm{p.id, p.key, p.uid, p.gid, p.cuid, p.cgid, p.mode}; }

// A segment's contents into its attachment at `base`: inline bytes, or
// runs of its pages image.
Status FillSegment(const images::SysvShmPlan& s, char* base, int images_fd) {
  std::memcpy(base, s.contents.data(), s.contents.size());
  if (s.runs.empty()) return {};
  RO_ASSIGN_OR_RETURN(UniqueFd pages, sys::OpenAt(images_fd, s.pages_file, O_RDONLY | O_NOFOLLOW));
  for (const images::PagesRun& r : s.runs) {
    // The last page may lie past the segment's size, inside its last page.
    RO_TRY(sys::PreadExactly(pages.get(), base + r.vaddr, r.nr_pages * images::kPageSize, r.offset, s.pages_file));
  }
  return {};
}

}  // namespace

Status RestoreIpcNamespace(const images::IpcPlan& ipc, int proc_fd, int images_fd) {
  RO_TRY(sys::WriteSysctls(proc_fd, ipc.creation));
  for (const images::SysvShmPlan& s : ipc.shm) {
    RO_TRY(sys::MakeShmSegment(proc_fd, Perm(s.perm), s.size, s.locked, [&](char* base) { return FillSegment(s, base, images_fd); }));
  }
  for (const images::SysvMsgQueuePlan& q : ipc.msg) {
    std::vector<sys::SysvMessage> messages;
    messages.reserve(q.messages.size());
    for (const images::SysvMessagePlan& m : q.messages) messages.push_back(sys::SysvMessage{m.mtype, m.text});
    RO_TRY(sys::MakeMsgQueue(proc_fd, Perm(q.perm), q.qbytes, messages));
  }
  for (const images::SysvSemPlan& s : ipc.sem) RO_TRY(sys::MakeSemSet(proc_fd, Perm(s.perm), s.values));
  std::vector<sys::PosixMqueue> queues;
  for (const images::PosixMqueuePlan& p : ipc.mqueues) {
    sys::PosixMqueue q{.name = p.name, .uid = p.uid, .gid = p.gid, .mode = p.mode, .maxmsg = static_cast<long>(p.maxmsg), .msgsize = static_cast<long>(p.msgsize)};
    for (const images::PosixMqMessagePlan& m : p.messages) q.messages.push_back(sys::PosixMqMessage{m.prio, m.data});
    queues.push_back(std::move(q));
  }
  RO_TRY(sys::MakePosixMqueues(queues));
  RO_TRY(sys::WriteSysctls(proc_fd, ipc.sysctls));
  return sys::WriteSysctls(proc_fd, ipc.next_ids);
}

}  // namespace ro
