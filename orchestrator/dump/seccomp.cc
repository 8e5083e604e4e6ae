// The dump's seccomp: a task's filters read with PTRACE_SECCOMP_GET_FILTER,
// oldest first, into seccomp.img (each newer one chained by `prev` from the
// one before), and its mode and oldest filter into its core.
#include "images/kinds.h"
#include "images/proto/seccomp.pb.h"
#include "orchestrator/dump/collector.h"
#include "sys/proc.h"
#include "sys/ptrace_api.h"

namespace ro::dump {

Status Collector::CollectSeccomp(const Task& t, img::core_entry& core) {
  long mode = t.info.seccomp;
  if (mode <= 0) return {};
  if (mode == 1) return Refuse("it runs in seccomp strict mode, which cannot be restored (it could not exec)");
  images::ImageFile& file = File(images::SeccompKind());
  if (file.entries.empty()) file.entries.push_back(images::Entry{std::make_unique<img::seccomp_entry>(), {}});
  auto& entry = static_cast<img::seccomp_entry&>(*file.entries[0].message);
  uint32_t first = static_cast<uint32_t>(entry.seccomp_filters_size());
  for (unsigned long index = 0;; ++index) {
    auto filter = sys::PtraceSeccompFilter(t.outer, index);
    if (!filter.ok() && filter.error().err == ENOENT && index > 0) break;
    if (!filter.ok() && filter.error().err == EMEDIUMTYPE) {
      return Refuse("its seccomp filter " + Str(static_cast<long long>(index)) +
                  " is not a classic BPF filter (a user-notification or eBPF filter): not supported");
    }
    if (!filter.ok()) return std::move(filter).error();
    if (index > 0) entry.mutable_seccomp_filters(entry.seccomp_filters_size() - 1)->set_prev(static_cast<uint32_t>(entry.seccomp_filters_size()));
    auto* f = entry.add_seccomp_filters();
    f->set_filter(filter->program);
    if (filter->flags != 0) f->set_flags(static_cast<uint32_t>(filter->flags));
  }
  auto* th = core.mutable_thread_core();
  th->set_seccomp_mode(img::filter);
  th->set_seccomp_filter(first);  // its oldest filter; prev leads to newer ones
  return {};
}

}  // namespace ro::dump
