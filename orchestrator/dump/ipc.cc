// The System V objects of the tree's own IPC namespace, as CRIU lays them
// out (criu/ipc_ns.c): segments in ipcns-shm-<ns>.img with their pages in
// pagemap-shmem-<segment id>.img (in_pagemaps), queues with their
// messages in ipcns-msg-<ns>.img, semaphore sets with their values in
// ipcns-sem-<ns>.img. POSIX message queues, which CRIU does not keep, go
// into posix-mqueues-<ns>.img (restore-orch's own).
#include <signal.h>

#include "images/image_file.h"
#include "images/kinds.h"
#include "images/payloads.h"
#include "images/proto/ipc-msg.pb.h"
#include "images/proto/ipc-sem.pb.h"
#include "images/proto/ipc-shm.pb.h"
#include "images/proto/posix-mqueue.pb.h"
#include "orchestrator/dump/collector.h"

namespace ro {
namespace dump {
namespace {

void Describe(const sys::SysvPerm& p, img::ipc_desc_entry* d) {
  d->set_key(p.key);
  d->set_uid(p.uid);
  d->set_gid(p.gid);
  d->set_cuid(p.cuid);
  d->set_cgid(p.cgid);
  d->set_mode(p.mode);
  d->set_id(static_cast<uint32_t>(p.id));
}

}  // namespace

Status Collector::DumpSysvObjects(sys::SysvObjects objects) {
  const uint32_t ns = static_cast<uint32_t>(tree_ipc_ns_);
  const std::string who = root_who_ + ": its IPC namespace's ";
  images::ImageFile& shm = File(images::IpcShmKind(), ns);
  for (sys::SysvShmSegment& s : objects.shm) {
    const std::string what = who + "shared memory segment " + Str(s.perm.id);
    if (s.hugetlb) return Refuse(what + " is a hugetlb segment (SHM_HUGETLB): not supported");
    auto e = std::make_unique<img::ipc_shm_entry>();
    Describe(s.perm, e->mutable_desc());
    e->set_size(s.size);
    e->set_in_pagemaps(true);
    shm.entries.push_back(images::Entry{std::move(e), {}});
    sysv_shm_ids_.insert(static_cast<uint64_t>(s.perm.id));
    sysv_nattch_[static_cast<uint64_t>(s.perm.id)] = s.nattch;
  }
  images::ImageFile& msg = File(images::IpcMsgKind(), ns);
  for (sys::SysvMsgQueue& q : objects.msg) {
    auto e = std::make_unique<img::ipc_msg_entry>();
    Describe(q.perm, e->mutable_desc());
    e->set_qbytes(static_cast<uint32_t>(q.qbytes));
    e->set_qnum(static_cast<uint32_t>(q.messages.size()));
    std::vector<images::SysvMessage> messages;
    for (sys::SysvMessage& m : q.messages) messages.push_back(images::SysvMessage{m.mtype, std::move(m.text)});
    msg.entries.push_back(images::Entry{std::move(e), images::MsgQueuePayload(messages)});
  }
  images::ImageFile& sem = File(images::IpcSemKind(), ns);
  for (sys::SysvSemSet& s : objects.sem) {
    auto e = std::make_unique<img::ipc_sem_entry>();
    Describe(s.perm, e->mutable_desc());
    e->set_nsems(static_cast<uint32_t>(s.values.size()));
    sem.entries.push_back(images::Entry{std::move(e), images::SemPayload(s.values)});
  }
  return {};
}

Status Collector::DumpPosixMqueues(std::vector<sys::PosixMqueue> queues) {
  if (queues.empty()) return {};
  const images::Limits limits;
  images::ImageFile& file = File(images::PosixMqueuesKind(), static_cast<uint32_t>(tree_ipc_ns_));
  for (sys::PosixMqueue& q : queues) {
    const std::string what = root_who_ + ": its IPC namespace's POSIX message queue /" + q.name;
    if (q.notify_pid != 0) {
      const char* how = q.notify == SIGEV_SIGNAL ? "a signal" : q.notify == SIGEV_THREAD ? "a thread (a netlink socket)" : "nothing (SIGEV_NONE)";
      return Refuse(what + " has an mq_notify(3) registration (pid " + Str(q.notify_pid) + ", by " + how + "), which restore-orch does not restore");
    }
    if (!q.messages_read) {
      return Refuse(what + " is full (" + Str(q.curmsgs) + " of " + Str(q.maxmsg) +
                    " messages): its messages cannot be read without letting in a sender that may be blocked on it");
    }
    auto e = std::make_unique<img::posix_mqueue_entry>();
    e->set_name(q.name);
    e->set_uid(q.uid);
    e->set_gid(q.gid);
    e->set_mode(q.mode);
    e->set_maxmsg(static_cast<uint64_t>(q.maxmsg));
    e->set_msgsize(static_cast<uint64_t>(q.msgsize));
    for (sys::PosixMqMessage& m : q.messages) {
      if (m.data.size() > limits.max_string_bytes) {
        return Refuse(what + " holds a message of " + Str(static_cast<long long>(m.data.size())) + " bytes, more than an image field may hold (" + Str(static_cast<long long>(limits.max_string_bytes)) + ")");
      }
      img::posix_mqueue_message* msg = e->add_messages();
      msg->set_prio(m.prio);
      msg->set_data(std::move(m.data));
    }
    if (e->ByteSizeLong() > limits.max_entry_bytes) {
      return Refuse(what + " holds " + Str(static_cast<long long>(q.qsize)) + " bytes of messages, more than an image entry may hold (" + Str(static_cast<long long>(limits.max_entry_bytes)) + ")");
    }
    file.entries.push_back(images::Entry{std::move(e), {}});
  }
  return {};
}

Status Collector::CheckSysvAttachments() {
  for (const auto& [id, nattch] : sysv_nattch_) {
    uint64_t ours = sysv_vmas_.count(id) ? sysv_vmas_.at(id) : 0;
    if (nattch > ours) {
      return Refuse("System V shared memory segment " + Str(static_cast<long long>(id)) + " of the tree's IPC namespace is attached by " +
                    Str(static_cast<long long>(nattch - ours)) + " VMA(s) outside the tree (shm_nattch " + Str(static_cast<long long>(nattch)) +
                    ", the tree's tasks map it " + Str(static_cast<long long>(ours)) + " time(s))");
    }
  }
  return {};
}

}  // namespace dump
}  // namespace ro
