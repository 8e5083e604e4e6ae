#include "sys/task_attrs.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>

#include "sys/files.h"
#include "sys/io.h"
#include "sys/proc.h"
#include "sys/process.h"

namespace ro::sys {
namespace {

std::string Num(long long v) { return std::to_string(v); }

Status Prctl(int option, unsigned long arg, const std::string& what) {
  if (::prctl(option, arg, 0, 0, 0) != 0) return SysError("prctl(" + what + ", " + Num(static_cast<long long>(arg)) + ")");
  return {};
}

}  // namespace

Status SetResourceLimit(int resource, uint64_t cur, uint64_t max) {
  rlimit lim{cur, max};
  if (::prlimit(0, static_cast<__rlimit_resource>(resource), &lim, nullptr) != 0) {
    return SysError("prlimit(" + Num(resource) + ", " + Num(static_cast<long long>(cur)) + ", " + Num(static_cast<long long>(max)) + ")");
  }
  return {};
}

Status SetNice(int nice) {
  if (::setpriority(PRIO_PROCESS, 0, nice) != 0) return SysError("setpriority(PRIO_PROCESS, 0, " + Num(nice) + ")");
  return {};
}

Status SetScheduling(uint32_t policy, uint32_t priority) {
  sched_param param{};
  param.sched_priority = static_cast<int>(priority);
  if (::sched_setscheduler(0, static_cast<int>(policy), &param) != 0) {
    return SysError("sched_setscheduler(0, " + Num(policy) + ", " + Num(priority) + ")");
  }
  return {};
}

Status SetTimerSlack(uint64_t ns) { return Prctl(PR_SET_TIMERSLACK, ns, "PR_SET_TIMERSLACK"); }
Status SetTscMode(uint32_t mode) { return Prctl(PR_SET_TSC, mode, "PR_SET_TSC"); }
Status SetNoNewPrivs() { return Prctl(PR_SET_NO_NEW_PRIVS, 1, "PR_SET_NO_NEW_PRIVS"); }
Status SetChildSubreaper(bool on) { return Prctl(PR_SET_CHILD_SUBREAPER, on ? 1 : 0, "PR_SET_CHILD_SUBREAPER"); }
void SetUmask(uint32_t mask) { ::umask(static_cast<mode_t>(mask)); }

Status SetOomScoreAdj(int proc_dir, int adj) {
  RO_ASSIGN_OR_RETURN(UniqueFd fd, OpenAt(proc_dir, "self/oom_score_adj", O_WRONLY | O_CLOEXEC));
  return WriteAll(fd.get(), std::to_string(adj), "/proc/self/oom_score_adj");
}

Result<OwnAttrs> ReadOwnAttrs() {
  OwnAttrs a;
  for (int r = 0; r < static_cast<int>(a.hard_limits.size()); ++r) {
    RO_ASSIGN_OR_RETURN(rlimit lim, GetResourceLimit(0, r));
    a.hard_limits[static_cast<size_t>(r)] = lim.rlim_max;
  }
  if (auto text = ReadProcFile("/proc/sys/fs/nr_open"); text.ok()) a.nr_open = std::strtoull(text->c_str(), nullptr, 10);
  RO_ASSIGN_OR_RETURN(a.cap_sys_resource, HasEffectiveCapability(CAP_SYS_RESOURCE));
  RO_ASSIGN_OR_RETURN(a.cap_sys_nice, HasEffectiveCapability(CAP_SYS_NICE));
  errno = 0;
  int nice = ::getpriority(PRIO_PROCESS, 0);
  if (nice == -1 && errno != 0) return SysError("getpriority(PRIO_PROCESS, 0)");
  a.nice = nice;
  int nnp = ::prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
  if (nnp < 0) return SysError("prctl(PR_GET_NO_NEW_PRIVS)");
  a.no_new_privs = nnp == 1;
  if (auto uid = ReadProcFile("/proc/self/loginuid"); uid.ok()) a.loginuid = static_cast<uint32_t>(std::strtoul(uid->c_str(), nullptr, 10));
  RO_ASSIGN_OR_RETURN(std::string adj, ReadProcFile("/proc/self/oom_score_adj"));
  a.oom_score_adj = std::atoi(adj.c_str());
  RO_ASSIGN_OR_RETURN(std::string status, ReadProcFile("/proc/self/status"));
  std::vector<long> uids = StatusValues(status, "Uid"), gids = StatusValues(status, "Gid");
  if (uids.size() != 4 || gids.size() != 4) return Fail("/proc/self/status has no Uid/Gid lines of four ids");
  for (size_t i = 0; i < 4; ++i) {
    a.uids[i] = static_cast<uint32_t>(uids[i]);
    a.gids[i] = static_cast<uint32_t>(gids[i]);
  }
  const char* sets[] = {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"};
  for (size_t i = 0; i < a.caps.size(); ++i) {
    size_t at = status.find(std::string("\n") + sets[i] + ":");
    if (at != std::string::npos) a.caps[i] = std::strtoull(status.c_str() + at + std::strlen(sets[i]) + 2, nullptr, 16);
  }
  for (long g : StatusValues(status, "Groups")) a.groups.push_back(static_cast<uint32_t>(g));
  int secbits = ::prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
  if (secbits < 0) return SysError("prctl(PR_GET_SECUREBITS)");
  a.securebits = static_cast<uint32_t>(secbits);
  RO_ASSIGN_OR_RETURN(std::string uid_map, ReadProcFile("/proc/self/uid_map"));
  RO_ASSIGN_OR_RETURN(a.uid_map, ParseIdMap(uid_map));
  RO_ASSIGN_OR_RETURN(std::string gid_map, ReadProcFile("/proc/self/gid_map"));
  RO_ASSIGN_OR_RETURN(a.gid_map, ParseIdMap(gid_map));
  return a;
}

Result<std::vector<IdMapLine>> ParseIdMap(const std::string& text) {
  std::vector<IdMapLine> out;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    std::istringstream words(line);
    unsigned long long inside = 0, outside = 0, count = 0;
    std::string rest;
    if (!(words >> inside >> outside >> count) || (words >> rest) || inside > 4294967295ull || outside > 4294967295ull ||
        count > 4294967295ull) {
      return Fail("id map line '" + line + "' is not three ids");
    }
    out.push_back({static_cast<uint32_t>(inside), static_cast<uint32_t>(outside), static_cast<uint32_t>(count)});
  }
  return out;
}

}  // namespace ro::sys
