#include "sys/process.h"

#include "sys/proc.h"

#include <poll.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>

namespace ro::sys {

Result<UniqueFd> PidfdOpen(pid_t pid) {
  UniqueFd fd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!fd) return SysError("pidfd_open(" + std::to_string(pid) + ")");
  return fd;
}

Status PidfdSendSignal(const UniqueFd& pidfd, int sig) {
  if (::syscall(SYS_pidfd_send_signal, pidfd.get(), sig, nullptr, 0) != 0) {
    return SysError("pidfd_send_signal(" + std::string(::strsignal(sig)) + ")");
  }
  return {};
}

std::optional<std::string> DescribeExitedChild(const UniqueFd& pidfd) {
  siginfo_t info{};
  if (::waitid(P_PIDFD, static_cast<id_t>(pidfd.get()), &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0) {
    return std::nullopt;
  }
  if (info.si_code == CLD_EXITED) return "exited with status " + std::to_string(info.si_status);
  return std::string("was killed by ") + ::strsignal(info.si_status);
}

Result<int> Kcmp(pid_t pid1, pid_t pid2, KcmpType type, unsigned long fd1, unsigned long fd2) {
  long r = ::syscall(SYS_kcmp, pid1, pid2, static_cast<int>(type), fd1, fd2);
  if (r < 0) {
    return SysError("kcmp(" + std::to_string(pid1) + ", " + std::to_string(pid2) + ", type " +
                    std::to_string(static_cast<int>(type)) + ", " + std::to_string(fd1) + ", " + std::to_string(fd2) + ")");
  }
  return static_cast<int>(r);
}

bool KcmpSame(pid_t pid1, pid_t pid2, KcmpType type, unsigned long fd1, unsigned long fd2) {
  auto r = Kcmp(pid1, pid2, type, fd1, fd2);
  return r.ok() && *r == 0;
}

Result<rlimit> GetResourceLimit(pid_t pid, int resource) {
  rlimit old{};
  if (::prlimit(pid, static_cast<__rlimit_resource>(resource), nullptr, &old) == 0) return old;
  Error e = SysError("prlimit(" + std::to_string(pid) + ", " + std::to_string(resource) + ")");
  if (e.err != EPERM || pid == 0) return e;
  const std::string path = "/proc/" + std::to_string(pid) + "/limits";
  RO_ASSIGN_OR_RETURN(std::string text, ReadProcFile(path));
  auto limit = ParseProcLimit(text, resource);
  if (!limit) return Fail(path + ": no line for resource " + std::to_string(resource));
  old.rlim_cur = limit->first;
  old.rlim_max = limit->second;
  return old;
}

Result<Scheduling> GetScheduling(pid_t tid) {
  Scheduling s;
  s.policy = ::sched_getscheduler(tid);
  if (s.policy < 0) return SysError("sched_getscheduler(" + std::to_string(tid) + ")");
  sched_param param{};
  if (::sched_getparam(tid, &param) != 0) return SysError("sched_getparam(" + std::to_string(tid) + ")");
  s.priority = param.sched_priority;
  return s;
}

Result<RobustList> GetRobustList(pid_t pid) {
  void* head = nullptr;
  size_t len = 0;
  if (::syscall(SYS_get_robust_list, pid, &head, &len) != 0) return SysError("get_robust_list(" + std::to_string(pid) + ")");
  return RobustList{reinterpret_cast<uint64_t>(head), len};
}

void SetParentDeathSignal(int sig) { ::prctl(PR_SET_PDEATHSIG, sig); }

bool DieWithParent(pid_t expected_parent) {
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return false;
  return ::getppid() == expected_parent;
}

bool DieWithParent(const UniqueFd& parent) {
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return false;
  pollfd pfd{parent.get(), POLLIN, 0};
  int n;
  do {
    n = ::poll(&pfd, 1, 0);
  } while (n < 0 && errno == EINTR);
  return n == 0;  // not readable: the parent still runs (an error counts as gone)
}

void BlockAllSignals() {
  sigset_t all;
  sigfillset(&all);
  ::sigprocmask(SIG_SETMASK, &all, nullptr);
}

Result<bool> HasEffectiveCapability(int cap) {
  RO_ASSIGN_OR_RETURN(std::string status, ReadProcFile("/proc/self/status"));
  std::optional<uint64_t> caps = StatusHex(status, "CapEff");
  if (!caps) return Fail("/proc/self/status has no CapEff line");
  return (*caps >> cap) & 1;
}

void SetName(const std::string& comm) { ::prctl(PR_SET_NAME, comm.c_str()); }

}  // namespace ro::sys
