#include "worker/autofs.h"

#include <fcntl.h>

#include "sys/autofs_dev.h"
#include "sys/files.h"
#include "sys/log.h"

namespace ro::worker {

Status TakeOverAutofs(const images::TaskPlan& t, const images::RestorePlan& plan, const FdLayout& layout, shm::Arena& arena) {
  for (const images::AutofsPlan& a : plan.autofs) {
    if (a.catatonic || a.master != t.pid) continue;
    int index = plan.MountIndex(a.mnt_id);
    std::optional<uint64_t> dev = index < 0 ? std::nullopt : arena.MountDevice(static_cast<size_t>(index));
    if (!dev) return Fail("AutoFS mount " + a.path + " was not mounted");
    // The temporary write end first: it must sit at its number before any
    // other fd of this step can take it.
    UniqueFd temporary;
    int write_end = a.pipe_fd;
    if (a.write_end_closed) {
      std::string link = "self/fd/" + std::to_string(a.pipe_fd);
      auto opened = sys::OpenAt(layout.proc_fd, link, O_WRONLY, 0, "a temporary write end (/proc/" + link + ")");
      if (!opened.ok()) return std::move(opened).error();
      temporary = std::move(opened).value();
      if (a.write_fd >= 0 && a.write_fd != temporary.get()) {
        // At the number the mount's fd= had: the kernel shows this one.
        RO_TRY(sys::Dup3(temporary.get(), a.write_fd, O_CLOEXEC));
        temporary.reset(a.write_fd);
      }
      write_end = temporary.get();
    }
    RO_ASSIGN_OR_RETURN(sys::AutofsDevice device, sys::AutofsDevice::FromFd(layout.autofs_fd));
    RO_ASSIGN_OR_RETURN(UniqueFd mount, device.OpenMount(a.path, static_cast<dev_t>(*dev)));
    RO_TRY(arena.Fault(shm::FaultPoint::kAutofsSetPipeFd, "SETPIPEFD of " + a.path));
    RO_TRY(device.SetPipeFd(mount, write_end));
    log::Debug("AutoFS {} taken over through fd {}", a.path, write_end);
  }
  return {};
}

}  // namespace ro::worker
