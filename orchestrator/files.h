// The orchestrator half of files: the service fds every restored task
// finds at the same numbers, above every fd number the images use or park
// (worker/files.h): the caller's /proc, the log sink, the image directory,
// and /dev/autofs when AutoFS masters take their mounts over.
#pragma once

#include <utility>

#include "images/plan.h"
#include "sys/status.h"
#include "sys/unique_fd.h"
#include "worker/files.h"

namespace ro {

// What the kernel would refuse of the plan's files, found before anything
// is created: a pipe capacity above /proc/sys/fs/pipe-max-size without
// CAP_SYS_RESOURCE (F_SETPIPE_SZ fails with EPERM).
Status CheckFileLimits(const images::RestorePlan& plan);

class ServiceFds {
 public:
  // Raises RLIMIT_NOFILE to its hard limit, then opens every service fd at
  // the lowest free number from the layout's first service slot on, and
  // sends the log there. Fails when the layout needs more fds than the
  // limit allows, or an open fails.
  static Result<ServiceFds> Open(const images::RestorePlan& plan);
  ServiceFds(ServiceFds&& o) noexcept
      : layout_(o.layout_),
        proc_(std::move(o.proc_)),
        log_(std::move(o.log_)),
        images_(std::move(o.images_)),
        autofs_(std::move(o.autofs_)),
        saved_sink_(std::exchange(o.saved_sink_, -1)) {}
  ServiceFds& operator=(ServiceFds&&) = delete;
  ServiceFds(const ServiceFds&) = delete;
  // Puts the log sink back and closes every service fd.
  ~ServiceFds();

  const worker::FdLayout& layout() const { return layout_; }
  const UniqueFd& proc_dir() const { return proc_; }

 private:
  ServiceFds() = default;

  worker::FdLayout layout_;
  UniqueFd proc_, log_, images_, autofs_;
  int saved_sink_ = -1;
};

}  // namespace ro
