// The System V objects of an IPC namespace of the tree's own, from
// ipcns-shm-, ipcns-msg- and ipcns-sem-<id>.img (CRIU's criu/ipc_ns.c
// writes them; a missing file holds none), checked so that the root task
// can make each with its id before any task runs.
#include <climits>
#include <map>
#include <set>

#include "images/payloads.h"
#include "images/plan/context.h"
#include "images/proto/ipc-msg.pb.h"
#include "images/proto/ipc-sem.pb.h"
#include "images/proto/ipc-shm.pb.h"
#include "sys/sysv_ipc.h"

namespace ro::images::plan {
namespace {

constexpr uint32_t kShmDest = 01000;    // SHM_DEST, include/uapi/linux/shm.h
constexpr uint32_t kShmLocked = 02000;  // SHM_LOCKED
constexpr uint32_t kSemVmx = 32767;     // SEMVMX, include/uapi/linux/sem.h
constexpr uint32_t kIpcMni = 32768;     // IPCMNI, ipc/util.h (without the ipcmni_extend boot option)

// The checks every object shares; false (with a problem added) when it
// cannot be made as it is.
class Objects {
 public:
  Objects(Context& ctx, const Kind& kind, uint32_t ns_id) : ctx_(ctx), name_(MakeFileName(kind, ns_id)), file_(ctx.dir.Find(kind, ns_id)) {}

  const ImageFile* file() const { return file_; }
  const std::string& name() const { return name_; }
  void Add(size_t entry, std::string what) { ctx_.problems.Add(name_, entry, std::move(what)); }

  std::optional<SysvPermPlan> Perm(size_t entry, const img::ipc_desc_entry& d, uint32_t allowed_mode) {
    if (d.id() > INT_MAX) return Problem(entry, "id " + Str(d.id()) + " is not an IPC id (above INT_MAX)");
    // An id is (sequence << 15) + index (ipc/util.h, IPCMNI_SHIFT): two
    // objects of a kind cannot share an index.
    if (auto [it, fresh] = indexes_.emplace(d.id() % kIpcMni, d.id()); !fresh) {
      return Problem(entry, it->second == d.id() ? "id " + Str(d.id()) + " appears twice"
                                                 : "ids " + Str(it->second) + " and " + Str(d.id()) + " share the index " + Str(d.id() % kIpcMni) +
                                                       " (id modulo 32768), which no kernel gives two objects");
    }
    if (d.key() != 0 && !keys_.insert(d.key()).second) return Problem(entry, "key " + sys::SysvKeyName(d.key()) + " appears twice");
    for (auto [field, id] : {std::pair{"uid", d.uid()}, {"gid", d.gid()}, {"cuid", d.cuid()}, {"cgid", d.cgid()}}) {
      if (id == UINT32_MAX) return Problem(entry, std::string(field) + " 4294967295 is no user or group ((uid_t)-1)");
    }
    if ((d.mode() & ~allowed_mode) != 0) return Problem(entry, "mode " + OctStr(d.mode()) + " has bits a restore cannot give (" + OctStr(d.mode() & ~allowed_mode) + ")");
    return SysvPermPlan{static_cast<int32_t>(d.id()), d.key(), d.uid(), d.gid(), d.cuid(), d.cgid(), d.mode() & 0777};
  }

 private:
  std::nullopt_t Problem(size_t entry, std::string what) {
    Add(entry, std::move(what));
    return std::nullopt;
  }
  Context& ctx_;
  std::string name_;
  const ImageFile* file_;
  std::map<uint32_t, uint32_t> indexes_;  // id % IPCMNI -> id
  std::set<uint32_t> keys_;
};

void PlanSegments(Context& ctx, IpcPlan& ipc) {
  Objects o(ctx, IpcShmKind(), ipc.ns_id);
  if (o.file() == nullptr) return;
  for (size_t i = 0; i < o.file()->entries.size(); ++i) {
    const auto& e = o.file()->As<img::ipc_shm_entry>(i);
    const std::string what = "shared memory segment " + Str(e.desc().id());
    if (e.desc().mode() & kShmDest) {
      o.Add(i, what + " was marked for removal (IPC_RMID) while attached: it is not restored");
      continue;
    }
    auto perm = o.Perm(i, e.desc(), 0777 | kShmLocked);
    if (!perm) continue;
    if (e.has_hugetlb_flag() && e.hugetlb_flag() != 0) {
      o.Add(i, what + " is a hugetlb segment (SHM_HUGETLB): not supported");
      continue;
    }
    if (e.size() == 0 || e.size() > (1ull << 46)) {
      o.Add(i, what + ": size " + Str(e.size()) + " is not within 1..2^46 (64 TiB)");
      continue;
    }
    SysvShmPlan s{.perm = *perm, .size = e.size(), .locked = (e.desc().mode() & kShmLocked) != 0};
    if (!e.in_pagemaps()) {
      s.contents = std::string(ShmContents(e, o.file()->entries[i].payload));
    } else if (const ImageFile* pm = ctx.dir.Find(ShmemPagemapKind(), e.desc().id()); pm == nullptr) {
      // CRIU writes it for every segment, pages or not (criu/shmem.c).
      o.Add(i, what + " has its contents in pagemaps, but " + MakeFileName(ShmemPagemapKind(), e.desc().id()) + " is missing");
      continue;
    } else {
      const uint64_t span = (e.size() + kPageSize - 1) / kPageSize * kPageSize;
      auto split = [span](const PagesRun& run, std::vector<PagesRun>& pieces) {
        if (run.vaddr + run.nr_pages * kPageSize > span) return false;
        pieces.push_back(run);
        return true;
      };
      if (!ReadPagemap(ctx, *pm, MakeFileName(ShmemPagemapKind(), e.desc().id()), s.pages_file, s.runs, split)) continue;
    }
    ipc.shm.push_back(std::move(s));
  }
}

void PlanQueues(Context& ctx, IpcPlan& ipc) {
  Objects o(ctx, IpcMsgKind(), ipc.ns_id);
  if (o.file() == nullptr) return;
  for (size_t i = 0; i < o.file()->entries.size(); ++i) {
    const auto& e = o.file()->As<img::ipc_msg_entry>(i);
    const std::string what = "message queue " + Str(e.desc().id());
    auto perm = o.Perm(i, e.desc(), 0777);
    if (!perm) continue;
    if (e.qbytes() > INT_MAX) {
      o.Add(i, what + ": qbytes " + Str(e.qbytes()) + " is above INT_MAX, which kernel/msgmnb cannot be");
      continue;
    }
    auto messages = MsgQueueMessages(e, o.file()->entries[i].payload);
    if (!messages.ok()) {
      o.Add(i, what + ": " + messages.error().what);
      continue;
    }
    SysvMsgQueuePlan q{.perm = *perm, .qbytes = e.qbytes()};
    uint64_t bytes = 0;
    bool fits = true;
    for (size_t m = 0; m < messages->size() && fits; ++m) {
      SysvMessage& msg = (*messages)[m];
      bytes += msg.text.size();
      if (msg.mtype == 0 || msg.mtype > LONG_MAX) {
        o.Add(i, what + ": message " + Str(m) + " has type " + Str(msg.mtype) + " (a message type is 1..LONG_MAX)");
        fits = false;
      } else if (bytes > e.qbytes() || m + 1 > e.qbytes()) {
        // msgsnd takes a message while bytes and count both stay within
        // msg_qbytes (ipc/msg.c, msg_fits_inqueue).
        o.Add(i, what + ": " + Str(m + 1) + " messages of " + Str(bytes) + " bytes do not fit its qbytes " + Str(e.qbytes()) +
                     " (a bound on both)");
        fits = false;
      }
      q.messages.push_back(SysvMessagePlan{msg.mtype, std::move(msg.text)});
    }
    if (fits) ipc.msg.push_back(std::move(q));
  }
}

void PlanSets(Context& ctx, IpcPlan& ipc) {
  Objects o(ctx, IpcSemKind(), ipc.ns_id);
  if (o.file() == nullptr) return;
  for (size_t i = 0; i < o.file()->entries.size(); ++i) {
    const auto& e = o.file()->As<img::ipc_sem_entry>(i);
    const std::string what = "semaphore set " + Str(e.desc().id());
    auto perm = o.Perm(i, e.desc(), 0777);
    if (!perm) continue;
    if (e.nsems() == 0 || e.nsems() > INT_MAX) {
      o.Add(i, what + ": " + Str(e.nsems()) + " semaphores is not within 1..INT_MAX");
      continue;
    }
    auto values = SemValues(e, o.file()->entries[i].payload);
    if (!values.ok()) {
      o.Add(i, what + ": " + values.error().what);
      continue;
    }
    bool fits = true;
    for (size_t v = 0; v < values->size() && fits; ++v) {
      if ((*values)[v] > kSemVmx) {
        o.Add(i, what + ": semaphore " + Str(v) + " has value " + Str((*values)[v]) + ", above SEMVMX (32767)");
        fits = false;
      }
    }
    if (fits) ipc.sem.push_back(SysvSemPlan{*perm, std::move(values).value()});
  }
}

}  // namespace

void PlanSysvObjects(Context& ctx, const img::ipc_var_entry& var, IpcPlan& ipc) {
  PlanSegments(ctx, ipc);
  PlanQueues(ctx, ipc);
  PlanSets(ctx, ipc);
  if (ipc.shm.empty() && ipc.msg.empty() && ipc.sem.empty()) return;
  // The namespace's limits may have been lowered below what its objects
  // use (the kernel allows it): they are made under limits that fit them
  // all, then get the images' values. shm_rmid_forced 0 meanwhile: with 1
  // the detach after writing a segment's contents would destroy it.
  uint64_t shm_pages = 0, shm_max = 0, msg_max = 0, sems = 0, nsems_max = 0;
  for (const SysvShmPlan& s : ipc.shm) {
    shm_pages += (s.size + kPageSize - 1) / kPageSize;
    shm_max = std::max(shm_max, s.size);
  }
  for (const SysvMsgQueuePlan& q : ipc.msg) {
    for (const SysvMessagePlan& m : q.messages) msg_max = std::max<uint64_t>(msg_max, m.text.size());
  }
  for (const SysvSemPlan& s : ipc.sem) {
    sems += s.values.size();
    nsems_max = std::max<uint64_t>(nsems_max, s.values.size());
  }
  if (sems > INT_MAX) {
    ctx.problems.Add(MakeFileName(IpcSemKind(), ipc.ns_id), std::nullopt, "its sets hold " + Str(sems) + " semaphores, above INT_MAX (SEMMNS)");
    return;
  }
  auto at_least = [](uint64_t have, uint64_t need) { return Str(std::max(have, need)); };
  auto sem = [&](int i) -> uint64_t { return var.sem_ctls_size() > i ? var.sem_ctls(i) : 0; };
  ipc.creation = {
      {"kernel/shmmax", at_least(var.shm_ctlmax(), shm_max)},
      {"kernel/shmall", at_least(var.shm_ctlall(), shm_pages)},
      {"kernel/shmmni", at_least(var.shm_ctlmni(), ipc.shm.size())},
      {"kernel/shm_rmid_forced", "0"},
      {"kernel/msgmax", at_least(var.msg_ctlmax(), msg_max)},
      {"kernel/msgmni", at_least(var.msg_ctlmni(), ipc.msg.size())},
      {"kernel/sem", at_least(sem(0), nsems_max) + " " + at_least(sem(1), sems) + " " + Str(sem(2)) + " " + at_least(sem(3), ipc.sem.size())},
  };
}

}  // namespace ro::images::plan
