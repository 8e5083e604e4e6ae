// Whole writes to an fd, and whole files written as crit's -o writes them.
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

// Writes `data` to the file at `path` (an `-o FILE`). A path that names a
// new file or an existing regular file is written as PATH.tmp (made
// afresh, never followed if it is a symlink) and renamed over PATH, so a
// failure leaves no half file. Any other existing path (a device such as
// /dev/null or /dev/full, a FIFO, or a symlink such as /dev/stdout ->
// /proc/self/fd/1, whatever it points at) is opened and written through,
// as crit does, and never replaced. Fails with the operation and errno
// (ENOSPC from /dev/full, EISDIR for a directory); PATH.tmp is removed.
Status WriteOutputFile(const std::string& path, std::string_view data);

}  // namespace ro::sys
