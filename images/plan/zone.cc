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
constexpr uint64_t kSlotsSize = 4 * kMiB;      // the running kernel's vdso and vvar pages, moved aside
constexpr uint64_t kArgsBase = 256 * 1024;     // the restorer's arguments, plus per VMA and pending signal below

uint64_t RoundUp(uint64_t v, uint64_t to) { return (v + to - 1) / to * to; }

void PlanShmemCreators(Context& ctx) {
  if (ctx.plan.shmem.empty()) return;
  ForkAncestry ancestry(ctx);
  for (pid_t pid : ctx.fork_order) {
    const TaskPlan& t = ctx.Task(pid);
    if (!t.cont) continue;
    for (const VmaPlan& v : t.cont->mm.vmas) {
      if (v.kind != VmaKind::kAnonShared) continue;
      ShmemPlan& s = ctx.plan.shmem[v.shmem];
      s.creator = s.creator == 0 ? pid : ancestry.Common(s.creator, pid);
    }
  }
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
  z.stack_size = kStackSize;
  z.slots_size = kSlotsSize;
  uint64_t args = kArgsBase;
  std::vector<std::pair<uint64_t, uint64_t>> taken;  // every continuing task's VMAs
  for (const auto& [pid, t] : ctx.tasks) {
    if (!t.cont) continue;
    const ContinuePlan& c = *t.cont;
    z.premap_size = std::max(z.premap_size, c.mm.premap_size);
    args = std::max(args, kArgsBase + 128 * c.mm.vmas.size() + 160 * (c.pending_thread.size() + c.pending_shared.size()));
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
  ctx.problems.Add(MakeFileName(PstreeKind()), std::nullopt,
                   "no range of " + Str(z.size) + " bytes is free in every continuing task's address space for the restore's own use");
}

}  // namespace ro::images::plan
