#include "sys/proc.h"

#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <sstream>
#include <string_view>
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

namespace {

// The text after "Key:" on the line of `status` that starts with it, up to
// the end of that line; nullopt when no line does.
std::optional<std::string_view> StatusLine(const std::string& status, const std::string& key) {
  std::string tag = key + ":";
  size_t at = status.rfind(tag, 0) == 0 ? 0 : status.find("\n" + tag);
  if (at == std::string::npos) return std::nullopt;
  if (status[at] == '\n') ++at;
  at += tag.size();
  size_t end = status.find('\n', at);
  return std::string_view(status).substr(at, end == std::string::npos ? std::string::npos : end - at);
}

}  // namespace

std::vector<long> StatusValues(const std::string& status, const std::string& key) {
  std::vector<long> out;
  std::optional<std::string_view> line = StatusLine(status, key);
  if (!line) return out;
  std::istringstream in{std::string(*line)};
  for (long v; in >> v;) out.push_back(v);
  return out;
}

long StatusInnermost(const std::string& status, const std::string& key) {
  std::vector<long> v = StatusValues(status, key);
  return v.empty() ? -1 : v.back();
}

std::optional<uint64_t> StatusHex(const std::string& status, const std::string& key) {
  std::optional<std::string_view> line = StatusLine(status, key);
  if (!line) return std::nullopt;
  std::string_view v = *line;
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  uint64_t out = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out, 16);
  if (ec != std::errc() || end == v.data()) return std::nullopt;
  return out;
}

std::vector<pid_t> ParsePidList(const std::string& text) {
  std::vector<pid_t> out;
  std::istringstream in(text);
  for (pid_t p; in >> p;) out.push_back(p);
  return out;
}

long StatusOctal(const std::string& status, const std::string& key) {
  std::string tag = "\n" + key + ":";
  size_t at = status.find(tag);
  if (at == std::string::npos) return -1;
  char* end = nullptr;
  const char* from = status.c_str() + at + tag.size();
  long v = std::strtol(from, &end, 8);
  return end == from ? -1 : v;
}

Result<FdInfo> ParseFdInfo(const std::string& text) {
  FdInfo info;
  bool have_flags = false;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon);
    const char* value = line.c_str() + colon + 1;
    if (key == "pos") info.pos = std::strtoull(value, nullptr, 10);
    if (key == "flags") {
      info.flags = static_cast<uint32_t>(std::strtoul(value, nullptr, 8));
      have_flags = true;
    }
    if (key == "mnt_id") info.mnt_id = static_cast<uint32_t>(std::strtoul(value, nullptr, 10));
    if (key == "lock") {
      std::string lock = value;
      lock.erase(0, lock.find_first_not_of(" \t"));
      info.locks.push_back(std::move(lock));
    }
  }
  if (!have_flags) return Fail("fdinfo without flags");
  return info;
}

std::optional<std::pair<uint64_t, uint64_t>> ParseProcLimit(const std::string& text, int resource) {
  constexpr size_t kNameWidth = 25;  // "%-25s " in proc_pid_limits
  if (resource < 0) return std::nullopt;
  std::istringstream lines(text);
  std::string line;
  std::getline(lines, line);  // the header
  for (int i = 0; i <= resource; ++i) {
    if (!std::getline(lines, line)) return std::nullopt;
  }
  if (line.size() <= kNameWidth) return std::nullopt;
  std::istringstream words(line.substr(kNameWidth));
  uint64_t values[2] = {};
  for (uint64_t& v : values) {
    std::string word;
    if (!(words >> word)) return std::nullopt;
    if (word == "unlimited") {
      v = ~uint64_t{0};  // RLIM_INFINITY
      continue;
    }
    auto [end, ec] = std::from_chars(word.data(), word.data() + word.size(), v);
    if (ec != std::errc() || end != word.data() + word.size()) return std::nullopt;
  }
  return std::make_pair(values[0], values[1]);
}

Result<std::string> ReadProcFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return SysError("open " + path);
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return SysError("read " + path);
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Result<std::string> ReadProcLink(const std::string& path) {
  std::string buf(4096, '\0');
  ssize_t n = ::readlink(path.c_str(), buf.data(), buf.size());
  if (n < 0) return SysError("readlink " + path);
  if (static_cast<size_t>(n) == buf.size()) return Fail("readlink " + path + ": target longer than 4096 bytes");
  buf.resize(static_cast<size_t>(n));
  return buf;
}

std::vector<std::string> SplitNul(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\0', start);
    if (end == std::string::npos) end = text.size();
    out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

}  // namespace ro::sys
