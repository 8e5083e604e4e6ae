#include "sys/unique_fd.h"

#include <unistd.h>

namespace ro {

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

}  // namespace ro
