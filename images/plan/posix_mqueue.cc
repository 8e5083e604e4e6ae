// The POSIX message queues of an IPC namespace of the tree's own, from
// posix-mqueues-<id>.img (restore-orch's own; a missing file holds none),
// checked so that the root task can make each as it was: mq_open(3)
// refuses what the kernel's bounds do not allow (ipc/mqueue.c).
#include <algorithm>
#include <set>

#include "images/plan/context.h"
#include "images/proto/ipc-var.pb.h"
#include "images/proto/posix-mqueue.pb.h"
#include "sys/posix_mqueue.h"

namespace ro::images::plan {
namespace {

// Why `name` cannot name a queue ("" if it can): the kernel looks it up
// as one component of its mqueue filesystem.
std::string NameProblem(const std::string& name) {
  if (name.empty()) return "has an empty name";
  if (name.size() > sys::kMqueueNameMax) return "has a name of " + Str(name.size()) + " bytes, above NAME_MAX (255)";
  if (name.find('/') != std::string::npos || name.find('\0') != std::string::npos) return "has a name with '/' or NUL in it";
  if (name == "." || name == "..") return "is named '" + name + "', which names no queue";
  return "";
}

}  // namespace

void PlanPosixMqueues(Context& ctx, const img::ipc_var_entry& var, IpcPlan& ipc) {
  const ImageFile* f = ctx.dir.Find(PosixMqueuesKind(), ipc.ns_id);
  if (f == nullptr) return;
  const std::string file = MakeFileName(PosixMqueuesKind(), ipc.ns_id);
  std::set<std::string> names;
  uint64_t maxmsg = 0, msgsize = 0;
  for (size_t i = 0; i < f->entries.size(); ++i) {
    const auto& e = f->As<img::posix_mqueue_entry>(i);
    auto problem = [&](const std::string& what) { ctx.problems.Add(file, i, "POSIX message queue /" + e.name() + " " + what); };
    if (std::string bad = NameProblem(e.name()); !bad.empty()) {
      problem(bad);
      continue;
    }
    if (!names.insert(e.name()).second) {
      problem("appears twice");
      continue;
    }
    if (e.uid() == UINT32_MAX || e.gid() == UINT32_MAX) {
      problem("has owner " + Str(e.uid()) + ":" + Str(e.gid()) + ": -1 is no id");
      continue;
    }
    if ((e.mode() & ~07777u) != 0) {
      problem("has mode " + OctStr(e.mode()) + ": more than permission bits (07777)");
      continue;
    }
    if (e.maxmsg() < 1 || e.maxmsg() > static_cast<uint64_t>(sys::kMqueueHardMsgMax)) {
      problem("has maxmsg " + Str(e.maxmsg()) + ", not within 1..65536 (HARD_MSGMAX)");
      continue;
    }
    if (e.msgsize() < 1 || e.msgsize() > static_cast<uint64_t>(sys::kMqueueHardMsgSizeMax)) {
      problem("has msgsize " + Str(e.msgsize()) + ", not within 1..16777216 (HARD_MSGSIZEMAX)");
      continue;
    }
    if (static_cast<uint64_t>(e.messages_size()) > e.maxmsg()) {
      problem("holds " + Str(static_cast<uint64_t>(e.messages_size())) + " messages, more than its maxmsg " + Str(e.maxmsg()));
      continue;
    }
    PosixMqueuePlan q{.name = e.name(), .uid = e.uid(), .gid = e.gid(), .mode = e.mode(), .maxmsg = e.maxmsg(), .msgsize = e.msgsize()};
    bool fits = true;
    for (int m = 0; m < e.messages_size() && fits; ++m) {
      const auto& msg = e.messages(m);
      if (msg.prio() >= sys::kMqueuePrioMax) {
        problem("message " + Str(static_cast<uint64_t>(m)) + " has priority " + Str(msg.prio()) + ", not below MQ_PRIO_MAX (32768)");
        fits = false;
      } else if (msg.data().size() > e.msgsize()) {
        problem("message " + Str(static_cast<uint64_t>(m)) + " has " + Str(msg.data().size()) + " bytes, more than its msgsize " + Str(e.msgsize()));
        fits = false;
      } else if (m > 0 && msg.prio() > e.messages(m - 1).prio()) {
        // mq_receive gives the highest priority first: the images' order is that.
        problem("message " + Str(static_cast<uint64_t>(m)) + " has priority " + Str(msg.prio()) + ", above the message before it (" +
                Str(e.messages(m - 1).prio()) + "): not the order a queue gives them in");
        fits = false;
      }
      q.messages.push_back(PosixMqMessagePlan{msg.prio(), msg.data()});
    }
    if (!fits) continue;
    maxmsg = std::max(maxmsg, q.maxmsg);
    msgsize = std::max(msgsize, q.msgsize);
    ipc.mqueues.push_back(std::move(q));
  }
  std::sort(ipc.mqueues.begin(), ipc.mqueues.end(), [](const PosixMqueuePlan& a, const PosixMqueuePlan& b) { return a.name < b.name; });
  if (ipc.mqueues.empty()) return;
  // The namespace's limits may be below what its queues use (lowered
  // since, or the queues made with CAP_SYS_RESOURCE): they are made under
  // limits that fit them all, then get the images' values.
  auto at_least = [](uint64_t have, uint64_t need) { return Str(std::max(have, need)); };
  ipc.creation.emplace_back("fs/mqueue/queues_max", at_least(var.mq_queues_max(), ipc.mqueues.size()));
  ipc.creation.emplace_back("fs/mqueue/msg_max", at_least(var.mq_msg_max(), maxmsg));
  ipc.creation.emplace_back("fs/mqueue/msgsize_max", at_least(var.mq_msgsize_max(), msgsize));
}

}  // namespace ro::images::plan
