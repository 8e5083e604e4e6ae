// mm, second half: who makes each shared anonymous object (the nearest
// common ancestor of the tasks that map it, before it forks them), and the
// bootstrap zone: the arena, the shared objects, and each continuing task's
// restorer, arguments, stack and premapped VMAs, in one range that no VMA of
// any continuing task's image touches.
#include <algorithm>

#include "images/plan/context.h"

namespace ro::images::plan {
namespace {

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kZoneLimit = 0x7f0000000000ull;  // below the mmap area and stacks
// Candidates for the zone: far from where the kernel puts programs (0x55...,
// 0x56... for PIE), their heaps, mmap areas and stacks (0x7f...).
constexpr uint64_t kFirstCandidate = 0x3e0000000000ull;
constexpr uint64_t kLastCandidate = 0x100000000000ull;
constexpr uint64_t kCandidateStep = 0x10000000000ull;  // 1 TiB
// Room the per-task part of the zone reserves beyond the premap area.
constexpr uint64_t kCodeSize = 256 * 1024;     // the restorer's code, copied (checked at restore)
constexpr uint64_t kStackSize = 256 * 1024;    // the restorer's stack
constexpr uint64_t kThreadStackSize = 16 * 1024;  // the least a thread's part of it may be
constexpr uint64_t kSlotsSize = 4 * kMiB;      // the running kernel's vdso and vvar pages, moved aside
constexpr uint64_t kArgsBase = 256 * 1024;     // the restorer's arguments, plus per VMA and pending signal below

uint64_t RoundUp(uint64_t v, uint64_t to) { return (v + to - 1) / to * to; }

void PlanShmemCreators(Context& ctx) {
  if (ctx.plan.shmem.empty()) return;
  ForkAncestry ancestry(ctx);
  // fork_order is a preorder: the common ancestor of an object's holders is
  // that of the first and the last of them in it.
  std::vector<std::pair<pid_t, pid_t>> ends(ctx.plan.shmem.size());
  for (pid_t pid : ctx.fork_order) {
    const TaskPlan& t = ctx.Task(pid);
    if (!t.cont) continue;
    for (const VmaPlan& v : t.cont->mm.vmas) {
      if (v.kind != VmaKind::kAnonShared) continue;
      if (ends[v.shmem].first == 0) ends[v.shmem].first = pid;
      ends[v.shmem].second = pid;
    }
  }
  for (size_t i = 0; i < ends.size(); ++i) ctx.plan.shmem[i].creator = ancestry.Common(ends[i].first, ends[i].second);
  for (uint32_t i = 0; i < ctx.plan.shmem.size(); ++i) ctx.Task(ctx.plan.shmem[i].creator).makes_shmem.push_back(i);
}

}  // namespace

void PlanZone(Context& ctx) {
  PlanShmemCreators(ctx);
  ZonePlan& z = ctx.plan.zone;
  z.arena_size = RoundUp(kMiB + 512 * ctx.tasks.size() + 128 * ctx.plan.mounts.size(), 2 * kMiB);
  z.shared_offset = z.arena_size;
  for (ShmemPlan& s : ctx.plan.shmem) {
    s.zone_offset = z.shared_offset + z.shared_size;
    z.shared_size += s.size;
  }
  z.task_offset = RoundUp(z.shared_offset + z.shared_size, 2 * kMiB);
  z.code_size = kCodeSize;
  size_t most_threads = 1;
  for (const auto& [pid, t] : ctx.tasks) {
    if (t.cont) most_threads = std::max(most_threads, t.cont->threads.size());
  }
  z.stack_size = std::max<uint64_t>(kStackSize, kThreadStackSize * most_threads);
  z.slots_size = kSlotsSize;
  uint64_t args = kArgsBase;
  std::vector<std::pair<uint64_t, uint64_t>> taken;  // every continuing task's VMAs
  for (const auto& [pid, t] : ctx.tasks) {
    if (!t.cont) continue;
    const ContinuePlan& c = *t.cont;
    z.premap_size = std::max(z.premap_size, c.mm.premap_size);
    size_t pending = c.pending_shared.size();
    for (const ThreadPlan& th : c.threads) pending += th.pending.size();
    size_t creds = 0;  // each thread's restorer::Creds and groups
    for (const ThreadAttrsPlan& a : t.attrs.threads) creds += a.creds ? 64 + 4 * a.creds->groups.size() : 0;
    args = std::max(args, kArgsBase + 128 * c.mm.vmas.size() + 160 * pending + 256 * c.threads.size() + creds);
    for (const VmaPlan& v : c.mm.vmas) {
      if (v.kind != VmaKind::kVsyscall) taken.emplace_back(v.start, v.end);
    }
  }
  z.args_size = RoundUp(args, kPageSize);
  z.premap_offset = z.task_offset + z.code_size + z.args_size + z.stack_size + z.slots_size;
  z.size = RoundUp(z.premap_offset + z.premap_size, 2 * kMiB);
  std::sort(taken.begin(), taken.end());
  auto free_at = [&](uint64_t start) {
    for (const auto& [s, e] : taken) {
      if (s < start + z.size && start < e) return false;
    }
    return true;
  };
  for (uint64_t c = kFirstCandidate; c >= kLastCandidate; c -= kCandidateStep) {
    if (c + z.size <= kZoneLimit && free_at(c)) {
      z.start = c;
      return;
    }
  }
  // What makes the zone that large, named by the mm image it comes from:
  // the largest shared object (made whole in the zone) or private memory
  // of one task (premapped there).
  pid_t biggest_task = 0;
  uint64_t biggest = 0;
  std::string what;
  for (const auto& [pid, t] : ctx.tasks) {
    if (t.cont && t.cont->mm.premap_size >= biggest) {
      biggest = t.cont->mm.premap_size;
      biggest_task = pid;
      what = Str(biggest) + " bytes of private memory of task " + Str(pid);
    }
  }
  for (const ShmemPlan& s : ctx.plan.shmem) {
    if (s.size >= biggest) {
      biggest = s.size;
      biggest_task = s.creator;
      what = "shared memory " + Str(s.id) + " of " + Str(s.size) + " bytes";
    }
  }
  ctx.problems.Add(biggest_task != 0 ? MakeFileName(MmKind(), static_cast<uint32_t>(biggest_task)) : MakeFileName(PstreeKind()),
                   std::nullopt,
                   "no range of " + Str(z.size) + " bytes is free in every continuing task's address space for the restore's own use" +
                       (what.empty() ? std::string() : " (the largest part: " + what + ")"));
}

}  // namespace ro::images::plan
