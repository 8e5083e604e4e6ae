#include "worker/autofs.h"

#include <fcntl.h>
#include <unistd.h>

#include "sys/autofs_dev.h"
#include "sys/log.h"

namespace ro::worker {

Status TakeOverAutofs(const images::TaskPlan& t, const images::RestorePlan& plan, const std::vector<AutofsMount>& mounts,
                      const FdLayout& layout, shm::Arena& arena) {
  for (const images::AutofsPlan& a : plan.autofs) {
    if (a.catatonic || a.master != t.pid) continue;
    const AutofsMount* m = nullptr;
    for (const AutofsMount& candidate : mounts) {
      if (candidate.mnt_id == a.mnt_id) m = &candidate;
    }
    if (m == nullptr) return Fail("AutoFS mount " + a.path + " was not mounted");
    RO_ASSIGN_OR_RETURN(sys::AutofsDevice dev, sys::AutofsDevice::FromFd(layout.autofs_fd));
    RO_ASSIGN_OR_RETURN(UniqueFd mount, dev.OpenMount(m->path, m->dev));
    UniqueFd temporary;
    int write_end = a.pipe_fd;
    if (a.write_end_closed) {
      std::string link = "self/fd/" + std::to_string(a.pipe_fd);
      temporary.reset(::openat(layout.proc_fd, link.c_str(), O_WRONLY | O_CLOEXEC));
      if (!temporary) return SysError("open a temporary write end (/proc/" + link + ")");
      write_end = temporary.get();
    }
    RO_TRY(arena.Fault(shm::FaultPoint::kAutofsSetPipeFd, "SETPIPEFD of " + m->path));
    RO_TRY(dev.SetPipeFd(mount, write_end));
    log::Debug("AutoFS {} taken over through fd {}", m->path, write_end);
  }
  return {};
}

}  // namespace ro::worker
