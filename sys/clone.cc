#include "sys/clone.h"

#include <linux/sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>

namespace ro::sys {

Result<Cloned> Clone3(const CloneSpec& spec) {
  clone_args args{};
  int pidfd = -1;
  pid_t tid = spec.pid.value_or(0);
  args.flags = spec.flags | (spec.want_pidfd ? CLONE_PIDFD : 0);
  args.exit_signal = SIGCHLD;
  if (spec.want_pidfd) args.pidfd = reinterpret_cast<uint64_t>(&pidfd);
  if (spec.pid) {
    args.set_tid = reinterpret_cast<uint64_t>(&tid);
    args.set_tid_size = 1;
  }
  long r = ::syscall(SYS_clone3, &args, sizeof(args));
  if (r < 0) {
    char what[96];
    std::snprintf(what, sizeof(what), "clone3(flags %#llx, set_tid %d)", static_cast<unsigned long long>(spec.flags),
                  spec.pid.value_or(0));
    return SysError(what);
  }
  Cloned out;
  out.pid = static_cast<pid_t>(r);
  if (r > 0 && spec.want_pidfd) out.pidfd.reset(pidfd);
  return out;
}

}  // namespace ro::sys
