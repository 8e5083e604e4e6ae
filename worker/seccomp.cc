#include "worker/seccomp.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace ro::worker {

Status InstallSeccomp(const images::TaskPlan& t) {
  for (size_t i = 0; i < t.seccomp.size(); ++i) {
    const images::SeccompFilterPlan& f = t.seccomp[i];
    sock_fprog prog{};
    prog.len = static_cast<unsigned short>(f.program.size() / sizeof(sock_filter));
    prog.filter = reinterpret_cast<sock_filter*>(const_cast<char*>(f.program.data()));
    // TSYNC concerns threads, and restored tasks have one.
    unsigned flags = f.flags & ~static_cast<unsigned>(SECCOMP_FILTER_FLAG_TSYNC);
    if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog) != 0) {
      return SysError("seccomp(SET_MODE_FILTER, filter " + std::to_string(i + 1) + " of " +
                      std::to_string(t.seccomp.size()) + ", " + std::to_string(prog.len) + " instructions)");
    }
  }
  return {};
}

}  // namespace ro::worker
