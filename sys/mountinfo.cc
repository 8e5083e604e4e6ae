#include "sys/mountinfo.h"

#include <fcntl.h>
#include <unistd.h>

#include <charconv>

#include "sys/unique_fd.h"

namespace ro::sys {
namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string Unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    auto is_oct = [](char c) { return c >= '0' && c <= '7'; };
    if (s[i] == '\\' && i + 3 < s.size() && is_oct(s[i + 1]) && is_oct(s[i + 2]) && is_oct(s[i + 3])) {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
      continue;
    }
    out += s[i];
  }
  return out;
}

bool ToU32(std::string_view s, uint32_t& v) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && end == s.data() + s.size();
}

std::vector<std::string_view> Split(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    size_t j = line.find(' ', i);
    if (j == std::string_view::npos) j = line.size();
    out.push_back(line.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

}  // namespace

std::string MountInfo::SuperOption(std::string_view key) const {
  std::string_view opts = super_options;
  size_t i = 0;
  while (i <= opts.size()) {
    size_t j = opts.find(',', i);
    if (j == std::string_view::npos) j = opts.size();
    std::string_view opt = opts.substr(i, j - i);
    if (opt.size() > key.size() && opt.substr(0, key.size()) == key && opt[key.size()] == '=') {
      return std::string(opt.substr(key.size() + 1));
    }
    i = j + 1;
  }
  return {};
}

Result<std::vector<MountInfo>> ParseMountInfo(std::string_view text) {
  std::vector<MountInfo> out;
  size_t lineno = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++lineno;
    if (line.empty()) continue;
    auto f = Split(line);
    size_t sep = 6;
    while (sep < f.size() && f[sep] != "-") ++sep;
    if (sep + 2 >= f.size()) {
      return Fail("mountinfo line " + std::to_string(lineno) + " is malformed");
    }
    MountInfo m;
    auto colon = f[2].find(':');
    if (!ToU32(f[0], m.mnt_id) || !ToU32(f[1], m.parent_id) || colon == std::string_view::npos ||
        !ToU32(f[2].substr(0, colon), m.major) || !ToU32(f[2].substr(colon + 1), m.minor)) {
      return Fail("mountinfo line " + std::to_string(lineno) + " has bad ids");
    }
    m.root = Unescape(f[3]);
    m.mountpoint = Unescape(f[4]);
    m.mount_options = std::string(f[5]);
    for (size_t i = 6; i < sep; ++i) {
      std::string_view tag = f[i];
      if (tag.starts_with("shared:")) ToU32(tag.substr(7), m.shared);
      if (tag.starts_with("master:")) ToU32(tag.substr(7), m.master);
      if (tag == "unbindable") m.unbindable = true;
    }
    m.fstype = Unescape(f[sep + 1]);
    m.source = Unescape(f[sep + 2]);
    m.super_options = sep + 3 < f.size() ? Unescape(f[sep + 3]) : std::string();
    out.push_back(std::move(m));
  }
  return out;
}

Result<std::vector<MountInfo>> ReadMountInfo(const std::string& proc_path) { return ReadMountInfoAt(AT_FDCWD, proc_path); }

Result<std::vector<MountInfo>> ReadMountInfoAt(int dir_fd, const std::string& proc_path) {
  UniqueFd fd(proc_path.empty() ? ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0) : ::openat(dir_fd, proc_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return SysError("open " + proc_path);
  std::string text;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return SysError("read " + proc_path);
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  return ParseMountInfo(text);
}

}  // namespace ro::sys
