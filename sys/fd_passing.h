// Handing an fd to another process over a Unix socket (SCM_RIGHTS).
#pragma once

#include "sys/status.h"
#include "sys/unique_fd.h"

namespace ro::sys {

// Sends a duplicate of `fd` with one byte of data; the caller keeps `fd`.
Status SendFd(const UniqueFd& socket, int fd);
// Receives an fd sent by SendFd, close-on-exec. Fails when none came.
Result<UniqueFd> ReceiveFd(const UniqueFd& socket);

}  // namespace ro::sys
