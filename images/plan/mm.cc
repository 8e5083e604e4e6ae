// mm: the address-space layout every restored task shares. For now only
// where the shared arena goes; once memory is restored, the arena (and the
// restorer) must avoid every VMA of every task's images.
#include "images/plan/context.h"

namespace ro::images::plan {
namespace {

// Far from where the kernel puts programs (0x55..., 0x56... for PIE),
// their heaps, mmap areas and stacks (0x7f...), below the 47-bit limit.
constexpr uint64_t kArenaAddress = 0x3e0000000000;

}  // namespace

void PlanLayout(Context& ctx) { ctx.plan.layout.arena_address = kArenaAddress; }

}  // namespace ro::images::plan
