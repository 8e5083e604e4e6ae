#include "orchestrator/files.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "sys/files.h"
#include "sys/log.h"
#include "sys/proc.h"
#include "sys/process.h"

namespace ro {

Status CheckFileLimits(const images::RestorePlan& plan) {
  uint32_t largest = 0;
  const images::PipeDataPlan* which = nullptr;
  for (const images::PipeDataPlan& p : plan.pipe_data) {
    if (p.capacity > largest) {
      largest = p.capacity;
      which = &p;
    }
  }
  if (which == nullptr) return {};
  RO_ASSIGN_OR_RETURN(std::string text, sys::ReadProcFile("/proc/sys/fs/pipe-max-size"));
  uint64_t max = std::strtoull(text.c_str(), nullptr, 10);
  if (largest <= max) return {};
  RO_ASSIGN_OR_RETURN(bool privileged, sys::HasEffectiveCapability(24 /* CAP_SYS_RESOURCE */));
  if (privileged) return {};
  return Fail(std::string(which->fifo ? "FIFO " : "pipe ") + std::to_string(which->pipe_id) + " had a capacity of " + std::to_string(largest) +
              " bytes, above /proc/sys/fs/pipe-max-size (" + std::to_string(max) + ") and restore-orch lacks CAP_SYS_RESOURCE");
}

Result<ServiceFds> ServiceFds::Open(const images::RestorePlan& plan) {
  ServiceFds s;
  s.layout_ = worker::LayoutFor(plan);
  worker::FdLayout& l = s.layout_;
  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
  if (static_cast<rlim_t>(l.images_fd) >= lim.rlim_cur) {
    return Fail("the restore needs fd numbers up to " + std::to_string(l.images_fd) + " (" + std::to_string(plan.parked_slots) +
                " parked files above fd " + std::to_string(plan.max_fd) + "), RLIMIT_NOFILE allows " + std::to_string(lim.rlim_cur));
  }
  // The lowest free numbers from there on: nothing of ours is clobbered.
  RO_ASSIGN_OR_RETURN(UniqueFd proc, sys::OpenAt(AT_FDCWD, "/proc", O_PATH | O_DIRECTORY));
  // Tasks publish their pids as this /proc names them, and restore-orch
  // watches and traces them by those pids: it must be this PID namespace's.
  RO_ASSIGN_OR_RETURN(pid_t self, sys::OuterPid(proc));
  if (self != ::getpid()) {
    return Fail("/proc is not the proc of restore-orch's PID namespace (it says pid " + std::to_string(self) + ", not " +
                std::to_string(::getpid()) + "): mount one, or run restore-orch where it is");
  }
  RO_ASSIGN_OR_RETURN(s.proc_, sys::DupAtOrAbove(proc.get(), l.proc_fd));
  RO_ASSIGN_OR_RETURN(s.log_, sys::DupAtOrAbove(log::GetSink(), s.proc_.get() + 1));
  RO_ASSIGN_OR_RETURN(UniqueFd images, sys::OpenAt(AT_FDCWD, plan.image_dir, O_RDONLY | O_DIRECTORY, 0, "image directory " + plan.image_dir));
  RO_ASSIGN_OR_RETURN(s.images_, sys::DupAtOrAbove(images.get(), s.log_.get() + 1));
  l.proc_fd = s.proc_.get();
  l.log_fd = s.log_.get();
  l.images_fd = s.images_.get();
  bool masters = std::any_of(plan.autofs.begin(), plan.autofs.end(), [](const auto& a) { return !a.catatonic; }) ||
                 std::any_of(plan.files.begin(), plan.files.end(), [](const auto& f) { return f.second.autofs_mnt_id != 0; });
  if (masters) {
    // Opened here: after the pivot /dev may not hold it.
    auto dev = sys::OpenAt(AT_FDCWD, "/dev/autofs", O_RDONLY);
    if (!dev.ok()) {
      Error e = dev.error();
      return e.Within("the images' AutoFS masters take their mounts back through /dev/autofs (a kernel built without AutoFS has none: `restore-orch check`)");
    }
    RO_ASSIGN_OR_RETURN(s.autofs_, sys::DupAtOrAbove(dev->get(), l.images_fd + 1));
    l.autofs_fd = s.autofs_.get();
  }
  s.saved_sink_ = log::GetSink();
  log::SetSink(l.log_fd);
  return s;
}

ServiceFds::~ServiceFds() {
  if (saved_sink_ >= 0) log::SetSink(saved_sink_);
}

}  // namespace ro
