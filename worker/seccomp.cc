#include "worker/seccomp.h"

#include <linux/seccomp.h>

#include "sys/seccomp.h"

namespace ro::worker {

Status InstallSeccomp(const images::TaskPlan& t) {
  for (size_t i = 0; i < t.seccomp.size(); ++i) {
    const images::SeccompFilterPlan& f = t.seccomp[i];
    // TSYNC concerns threads, and restored tasks have one.
    unsigned flags = f.flags & ~static_cast<unsigned>(SECCOMP_FILTER_FLAG_TSYNC);
    if (Status s = sys::SeccompSetFilter(f.program, flags); !s.ok()) {
      return std::move(s).error().Within("filter " + std::to_string(i + 1) + " of " + std::to_string(t.seccomp.size()));
    }
  }
  return {};
}

}  // namespace ro::worker
