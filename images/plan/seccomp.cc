// Seccomp: each task's filter mode from its core, and in filter mode its
// chain of filters from seccomp.img, oldest first (the order they are
// installed in).
#include <set>

#include "images/plan/context.h"
#include "images/proto/seccomp.pb.h"

namespace ro::images::plan {
namespace {

constexpr size_t kMaxSeccompInsns = 4096;  // BPF_MAXINSNS

// The mode and the index of the oldest filter: per thread now, per task in
// old images.
std::pair<uint32_t, uint32_t> ModeOf(const img::core_entry& core) {
  if (core.has_thread_core() && core.thread_core().has_seccomp_mode()) {
    return {core.thread_core().seccomp_mode(), core.thread_core().seccomp_filter()};
  }
  if (core.has_tc() && core.tc().has_old_seccomp_mode()) return {core.tc().old_seccomp_mode(), core.tc().old_seccomp_filter()};
  return {img::disabled, 0};
}

void ReadChain(Context& ctx, const img::seccomp_entry& entry, const std::string& name, TaskPlan& t, uint32_t first) {
  // The task's index names its oldest filter; prev leads to newer ones.
  std::set<uint32_t> visited;
  std::optional<uint32_t> index = first;
  while (index) {
    if (*index >= static_cast<uint32_t>(entry.seccomp_filters_size())) {
      ctx.problems.Add(name, 0, "task " + Str(t.pid) + " names seccomp filter " + Str(*index) + " of " +
                                    Str(entry.seccomp_filters_size()));
      return;
    }
    if (!visited.insert(*index).second) {
      ctx.problems.Add(name, 0, "seccomp filter chain of task " + Str(t.pid) + " loops at filter " + Str(*index));
      return;
    }
    const auto& filter = entry.seccomp_filters(static_cast<int>(*index));
    size_t len = filter.filter().size();
    if (len == 0 || len % 8 != 0 || len / 8 > kMaxSeccompInsns) {
      ctx.problems.Add(name, 0, "seccomp filter " + Str(*index) + " is " + Str(len) + " bytes: not 1.." +
                                    Str(kMaxSeccompInsns) + " instructions of 8 bytes");
      return;
    }
    // SECCOMP_FILTER_FLAG_NEW_LISTENER makes seccomp() return a new fd,
    // one the task's images do not have.
    if (filter.flags() & (1u << 3)) {
      ctx.problems.Add(name, 0, "seccomp filter " + Str(*index) + " of task " + Str(t.pid) +
                                    " has SECCOMP_FILTER_FLAG_NEW_LISTENER: its listener fd cannot be restored");
      return;
    }
    t.seccomp.push_back(SeccompFilterPlan{filter.filter(), filter.flags()});
    index = filter.has_prev() ? std::optional<uint32_t>(filter.prev()) : std::nullopt;
  }
}

}  // namespace

void PlanSeccomp(Context& ctx) {
  const ImageFile* f = ctx.dir.Find(SeccompKind());
  const std::string name = MakeFileName(SeccompKind());
  for (auto& [pid, t] : ctx.tasks) {
    const img::core_entry* core = ctx.Core(pid);
    if (core == nullptr) continue;  // reported with the tree
    auto [mode, first] = ModeOf(*core);
    const std::string core_name = MakeFileName(CoreKind(), static_cast<uint32_t>(pid));
    if (mode == img::strict) {
      ctx.problems.Add(core_name, 0, "seccomp strict mode cannot be restored (the task could not exec)");
    } else if (mode == img::filter) {
      if (f == nullptr) {
        ctx.problems.Add(core_name, 0, "seccomp filter mode but seccomp.img is missing");
        continue;
      }
      ReadChain(ctx, f->As<img::seccomp_entry>(0), name, t, first);
    }
  }
}

}  // namespace ro::images::plan
