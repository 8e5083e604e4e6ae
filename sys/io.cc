#include "sys/io.h"

#include <unistd.h>

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

}  // namespace ro::sys
