// Whole writes to an fd.
#pragma once

#include <sys/uio.h>

#include <span>
#include <string>
#include <string_view>

#include "sys/status.h"

namespace ro::sys {

// Writes all of `data`, retrying on EINTR and short writes. `name` is what
// an error calls the fd ("standard output", "pstree.img").
Status WriteAll(int fd, std::string_view data, const std::string& name);
// The same for scattered pieces (writev, IOV_MAX at a time); `pieces` is
// used as scratch.
Status WriteAllV(int fd, std::span<iovec> pieces, const std::string& name);

}  // namespace ro::sys
