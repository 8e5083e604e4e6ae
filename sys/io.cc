#include "sys/io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "sys/unique_fd.h"

namespace ro::sys {

Status WriteAll(int fd, std::string_view data, const std::string& name) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return SysError("write " + name);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

Status WriteAllV(int fd, std::span<iovec> pieces, const std::string& name) {
  constexpr size_t kMaxIov = 1024;
  while (!pieces.empty()) {
    size_t n = std::min(pieces.size(), kMaxIov);
    ssize_t done = ::writev(fd, pieces.data(), static_cast<int>(n));
    if (done < 0 && errno == EINTR) continue;
    if (done < 0) return SysError("write " + name);
    size_t left = static_cast<size_t>(done);
    while (!pieces.empty() && left >= pieces.front().iov_len) {
      left -= pieces.front().iov_len;
      pieces = pieces.subspan(1);
    }
    if (left > 0) {
      pieces.front().iov_base = static_cast<char*>(pieces.front().iov_base) + left;
      pieces.front().iov_len -= left;
    }
  }
  return {};
}

Status WriteOutputFile(const std::string& path, std::string_view data) {
  struct stat st {};
  bool replace = false;
  if (::lstat(path.c_str(), &st) == 0) {
    replace = S_ISREG(st.st_mode);
  } else if (errno == ENOENT) {
    replace = true;
  } else {
    return SysError("stat " + path);
  }
  if (!replace) {
    // O_TRUNC and O_CREAT as crit's open(..., "wb"): a device or FIFO
    // ignores them; a symlink's target is written where it is.
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0644));
    if (!fd) return SysError("open " + path);
    return WriteAll(fd.get(), data, path);
  }
  std::string tmp = path + ".tmp";
  // A PATH.tmp left by someone else (a symlink, say) is never written through.
  if (::unlink(tmp.c_str()) != 0 && errno != ENOENT) return SysError("remove " + tmp);
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (!fd) return SysError("create " + tmp);
  Status s = WriteAll(fd.get(), data, tmp);
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) s = SysError("rename " + tmp + " to " + path);
  if (!s.ok()) ::unlink(tmp.c_str());
  return s;
}

}  // namespace ro::sys
