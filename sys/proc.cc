#include "sys/proc.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>
#include <vector>

namespace ro::sys {

Result<pid_t> OuterPid(const UniqueFd& proc_dir) {
  // /proc/self names the reader in the proc mount's PID namespace.
  char buf[32];
  ssize_t n = ::readlinkat(proc_dir.get(), "self", buf, sizeof(buf) - 1);
  if (n <= 0) return SysError("readlink /proc/self");
  buf[n] = '\0';
  pid_t pid = static_cast<pid_t>(std::strtol(buf, nullptr, 10));
  if (pid <= 0) return Fail(std::string("/proc/self points at ") + buf);
  return pid;
}

Result<ProcStat> ParseProcStat(const std::string& text) {
  ProcStat st;
  size_t open = text.find('(');
  size_t close = text.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open) return Fail("malformed /proc stat");
  st.pid = static_cast<pid_t>(std::strtol(text.c_str(), nullptr, 10));
  st.comm = text.substr(open + 1, close - open - 1);
  std::istringstream rest(text.substr(close + 1));
  std::vector<std::string> f;
  for (std::string w; rest >> w;) f.push_back(w);
  // f[0] is field 3 (state); field N is f[N - 3].
  if (f.size() < 4) return Fail("short /proc stat");
  st.state = f[0].empty() ? '?' : f[0][0];
  st.ppid = static_cast<pid_t>(std::atoi(f[1].c_str()));
  st.pgid = static_cast<pid_t>(std::atoi(f[2].c_str()));
  st.sid = static_cast<pid_t>(std::atoi(f[3].c_str()));
  if (f.size() >= 50) st.exit_code = std::atoi(f[49].c_str());
  return st;
}

}  // namespace ro::sys
