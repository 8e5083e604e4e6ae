#include "sys/io.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>

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

}  // namespace ro::sys
