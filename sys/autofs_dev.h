// The /dev/autofs control device (AUTOFS_DEV_IOCTL_*), and the classic
// ioctls on a mount's ioctl fd.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "sys/status.h"
#include "sys/unique_fd.h"

namespace ro::sys {

class AutofsDevice {
 public:
  // Opens /dev/autofs (the kernel loads the module on first open).
  static Result<AutofsDevice> Open();
  // Uses a duplicate of an already open /dev/autofs fd (it may no longer be
  // reachable by path, after pivot_root).
  static Result<AutofsDevice> FromFd(int fd);

  struct Version {
    uint32_t major = 0;
    uint32_t minor = 0;
  };
  Result<Version> GetVersion() const;

  // An ioctl fd for the autofs mount at `path` with superblock `devid`
  // (AUTOFS_DEV_IOCTL_OPENMOUNT). It works on a mount covered by another.
  Result<UniqueFd> OpenMount(const std::string& path, dev_t devid) const;
  // Hands the mount to the caller's process group: the kernel writes its
  // requests to `pipe_write_end`. The mount must be catatonic.
  Status SetPipeFd(const UniqueFd& mount, int pipe_write_end) const;
  Status Catatonic(const UniqueFd& mount) const;

 private:
  explicit AutofsDevice(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

// AUTOFS_IOC_SETTIMEOUT on an ioctl fd from OpenMount, or on an fd of the
// mount's root directory.
Status AutofsSetTimeout(const UniqueFd& mount, unsigned long seconds);
// AUTOFS_IOC_CATATONIC on such an fd: the mount stops asking its master.
Status AutofsMakeCatatonic(const UniqueFd& mount);

}  // namespace ro::sys
