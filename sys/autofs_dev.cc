#include "sys/autofs_dev.h"

#include <fcntl.h>
#include <linux/auto_fs.h>
#include <sys/ioctl.h>

#include <cstring>
#include <vector>

#include "sys/compat.h"

namespace ro::sys {
namespace {

// struct autofs_dev_ioctl with room for a path after it.
void Init(AutofsDevIoctl* req, size_t size) {
  req->ver_major = kAutofsDevIoctlVersionMajor;
  req->ver_minor = kAutofsDevIoctlVersionMinor;
  req->size = static_cast<uint32_t>(size);
  req->ioctlfd = -1;
}

std::vector<uint64_t> Request(const std::string& path) {
  size_t size = sizeof(AutofsDevIoctl) + path.size() + 1;
  std::vector<uint64_t> buf((size + 7) / 8, 0);
  auto* req = reinterpret_cast<AutofsDevIoctl*>(buf.data());
  Init(req, size);
  std::memcpy(req->path, path.c_str(), path.size() + 1);
  return buf;
}

}  // namespace

Result<AutofsDevice> AutofsDevice::Open() {
  UniqueFd fd(::open("/dev/autofs", O_RDONLY | O_CLOEXEC));
  if (!fd) return SysError("open /dev/autofs");
  return AutofsDevice(std::move(fd));
}

Result<AutofsDevice> AutofsDevice::FromFd(int fd) {
  UniqueFd dup(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
  if (!dup) return SysError("dup /dev/autofs fd " + std::to_string(fd));
  return AutofsDevice(std::move(dup));
}

Result<AutofsDevice::Version> AutofsDevice::GetVersion() const {
  AutofsDevIoctl req{};
  Init(&req, sizeof(req));
  if (::ioctl(fd_.get(), kAutofsDevIoctlVersion, &req) != 0) return SysError("ioctl(/dev/autofs, VERSION)");
  return Version{req.ver_major, req.ver_minor};
}

Result<UniqueFd> AutofsDevice::OpenMount(const std::string& path, dev_t devid) const {
  auto buf = Request(path);
  auto* req = reinterpret_cast<AutofsDevIoctl*>(buf.data());
  req->arg.devid = static_cast<uint32_t>(devid);
  if (::ioctl(fd_.get(), kAutofsDevIoctlOpenMount, req) != 0) {
    return SysError("ioctl(/dev/autofs, OPENMOUNT " + path + ", devid " + std::to_string(devid) + ")");
  }
  return UniqueFd(req->ioctlfd);
}

Status AutofsDevice::SetPipeFd(const UniqueFd& mount, int pipe_write_end) const {
  AutofsDevIoctl req{};
  Init(&req, sizeof(req));
  req.ioctlfd = mount.get();
  req.arg.pipefd = pipe_write_end;
  if (::ioctl(fd_.get(), kAutofsDevIoctlSetPipeFd, &req) != 0) {
    return SysError("ioctl(/dev/autofs, SETPIPEFD " + std::to_string(pipe_write_end) + ")");
  }
  return {};
}

Status AutofsDevice::Catatonic(const UniqueFd& mount) const {
  AutofsDevIoctl req{};
  Init(&req, sizeof(req));
  req.ioctlfd = mount.get();
  if (::ioctl(fd_.get(), kAutofsDevIoctlCatatonic, &req) != 0) return SysError("ioctl(/dev/autofs, CATATONIC)");
  return {};
}

Status AutofsSetTimeout(const UniqueFd& mount, unsigned long seconds) {
  if (::ioctl(mount.get(), AUTOFS_IOC_SETTIMEOUT, &seconds) != 0) {
    return SysError("ioctl(AUTOFS_IOC_SETTIMEOUT " + std::to_string(seconds) + ")");
  }
  return {};
}

Status AutofsMakeCatatonic(const UniqueFd& mount) {
  if (::ioctl(mount.get(), AUTOFS_IOC_CATATONIC, 0) != 0) return SysError("ioctl(AUTOFS_IOC_CATATONIC)");
  return {};
}

}  // namespace ro::sys
