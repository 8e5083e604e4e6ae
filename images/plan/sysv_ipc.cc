// The System V objects of an IPC namespace of the tree's own, from
// ipcns-shm-, ipcns-msg- and ipcns-sem-<id>.img (CRIU's criu/ipc_ns.c
// writes them; a missing file holds none), checked so that the root task
// can make each with its id before any task runs.
#include <climits>
#include <set>

#include "images/payloads.h"
#include "images/plan/context.h"
#include "images/proto/ipc-msg.pb.h"
#include "images/proto/ipc-sem.pb.h"
#include "images/proto/ipc-shm.pb.h"

namespace ro::images::plan {
namespace {

constexpr uint32_t kShmDest = 01000;    // SHM_DEST, include/uapi/linux/shm.h
constexpr uint32_t kShmLocked = 02000;  // SHM_LOCKED
constexpr uint32_t kSemVmx = 32767;     // SEMVMX, include/uapi/linux/sem.h

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
    if (!ids_.insert(d.id()).second) return Problem(entry, "id " + Str(d.id()) + " appears twice");
    if (d.key() != 0 && !keys_.insert(d.key()).second) return Problem(entry, "key " + HexStr(d.key()) + " appears twice");
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
  std::set<uint32_t> ids_, keys_;
};

void PlanSegments(Context& ctx, const img::ipc_var_entry& var, IpcPlan& ipc) {
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
    if (e.size() == 0 || e.size() > var.shm_ctlmax() || e.size() > (1ull << 46)) {
      o.Add(i, what + ": size " + Str(e.size()) + " is not within 1..kernel/shmmax (" + Str(var.shm_ctlmax()) + ")");
      continue;
    }
    SysvShmPlan s{.perm = *perm, .size = e.size(), .locked = (e.desc().mode() & kShmLocked) != 0};
    if (!e.in_pagemaps()) {
      s.contents = std::string(ShmContents(e, o.file()->entries[i].payload));
    } else if (const ImageFile* pm = ctx.dir.Find(ShmemPagemapKind(), e.desc().id())) {
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

void PlanQueues(Context& ctx, const img::ipc_var_entry& var, IpcPlan& ipc) {
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
      } else if (msg.text.size() > var.msg_ctlmax()) {
        o.Add(i, what + ": message " + Str(m) + " of " + Str(msg.text.size()) + " bytes is longer than kernel/msgmax (" +
                     Str(var.msg_ctlmax()) + ")");
        fits = false;
      } else if (bytes > e.qbytes()) {
        o.Add(i, what + ": its messages hold " + Str(bytes) + " bytes or more, above its qbytes " + Str(e.qbytes()));
        fits = false;
      }
      q.messages.push_back(SysvMessagePlan{msg.mtype, std::move(msg.text)});
    }
    if (fits) ipc.msg.push_back(std::move(q));
  }
}

void PlanSets(Context& ctx, const img::ipc_var_entry& var, IpcPlan& ipc) {
  Objects o(ctx, IpcSemKind(), ipc.ns_id);
  if (o.file() == nullptr) return;
  const uint32_t semmsl = var.sem_ctls_size() > 0 ? var.sem_ctls(0) : 0;
  for (size_t i = 0; i < o.file()->entries.size(); ++i) {
    const auto& e = o.file()->As<img::ipc_sem_entry>(i);
    const std::string what = "semaphore set " + Str(e.desc().id());
    auto perm = o.Perm(i, e.desc(), 0777);
    if (!perm) continue;
    if (e.nsems() == 0 || e.nsems() > semmsl) {
      o.Add(i, what + ": " + Str(e.nsems()) + " semaphores is not within 1..SEMMSL (" + Str(semmsl) + ", kernel/sem)");
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
  PlanSegments(ctx, var, ipc);
  PlanQueues(ctx, var, ipc);
  PlanSets(ctx, var, ipc);
}

}  // namespace ro::images::plan
