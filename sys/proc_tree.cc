#include "sys/proc_tree.h"

#include <dirent.h>

#include <algorithm>
#include <cstdlib>

namespace ro::sys {
namespace {

std::string Proc(pid_t pid, const std::string& rest) { return "/proc/" + std::to_string(pid) + "/" + rest; }

}  // namespace

Result<TaskInfo> ReadTask(pid_t outer) {
  TaskInfo t;
  t.outer = outer;
  RO_ASSIGN_OR_RETURN(t.status, ReadProcFile(Proc(outer, "status")));
  RO_ASSIGN_OR_RETURN(std::string stat_text, ReadProcFile(Proc(outer, "stat")));
  auto stat = ParseProcStat(stat_text);
  if (!stat.ok()) return std::move(stat).error().Within(Proc(outer, "stat"));
  t.nspid = StatusValues(t.status, "NSpid");
  if (t.nspid.empty()) return Fail(Proc(outer, "status") + " has no NSpid line");
  t.pid = static_cast<pid_t>(t.nspid.back());
  t.pgid = static_cast<pid_t>(StatusInnermost(t.status, "NSpgid"));
  t.sid = static_cast<pid_t>(StatusInnermost(t.status, "NSsid"));
  t.comm = stat->comm;
  t.state = stat->state;
  t.outer_ppid = stat->ppid;
  t.outer_pgid = stat->pgid;
  t.outer_sid = stat->sid;
  t.exit_code = stat->exit_code;
  t.threads = StatusInnermost(t.status, "Threads");
  t.uids = StatusValues(t.status, "Uid");
  t.gids = StatusValues(t.status, "Gid");
  t.blocked = StatusHex(t.status, "SigBlk").value_or(0);
  t.seccomp = StatusInnermost(t.status, "Seccomp");
  t.tracer = StatusInnermost(t.status, "TracerPid");
  return t;
}

Result<std::vector<pid_t>> ReadChildren(pid_t outer) {
  std::vector<pid_t> out;
  std::string dir = Proc(outer, "task");
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return SysError("opendir " + dir);
  std::vector<std::string> threads;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') threads.emplace_back(e->d_name);
  }
  ::closedir(d);
  for (const std::string& tid : threads) {
    auto text = ReadProcFile(dir + "/" + tid + "/children");
    if (!text.ok()) {
      if (text.error().err == ENOENT || text.error().err == ESRCH) continue;  // the thread exited meanwhile
      return std::move(text).error();
    }
    std::vector<pid_t> kids = ParsePidList(*text);
    out.insert(out.end(), kids.begin(), kids.end());
  }
  return out;
}

Result<std::vector<pid_t>> ReadThreadIds(pid_t outer) {
  std::string dir = Proc(outer, "task");
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return SysError("opendir " + dir);
  std::vector<pid_t> others;
  bool leader = false;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    pid_t tid = static_cast<pid_t>(std::atol(e->d_name));
    if (tid == outer) {
      leader = true;
    } else if (tid > 0) {
      others.push_back(tid);
    }
  }
  ::closedir(d);
  std::sort(others.begin(), others.end());
  std::vector<pid_t> out;
  if (leader) out.push_back(outer);
  out.insert(out.end(), others.begin(), others.end());
  return out;
}

}  // namespace ro::sys
