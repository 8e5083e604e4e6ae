#include "sys/files.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>

namespace ro::sys {

Status Chown(int fd, uint32_t uid, uint32_t gid) {
  if (::fchown(fd, uid, gid) != 0) return SysError("fchown to " + std::to_string(uid) + ":" + std::to_string(gid));
  return {};
}

Status Chmod(int fd, uint32_t mode) {
  if (::fchmod(fd, mode) != 0) return SysError(fmt::format("fchmod to {:04o}", mode));
  return {};
}

Result<PipeEnds> Pipe(int flags) {
  int p[2];
  if (::pipe2(p, flags | O_CLOEXEC) != 0) return SysError("pipe2");
  return PipeEnds{UniqueFd(p[0]), UniqueFd(p[1])};
}

Result<UniqueFd> OpenAt(int dirfd, const std::string& path, int flags, mode_t mode, const std::string& what) {
  UniqueFd fd(::openat(dirfd, path.c_str(), flags | O_CLOEXEC, mode));
  if (!fd) return SysError("open " + (what.empty() ? path : what));
  return fd;
}

Result<UniqueFd> DupAtOrAbove(int fd, int lowest) {
  UniqueFd dup(::fcntl(fd, F_DUPFD_CLOEXEC, lowest));
  if (!dup) return SysError("fcntl(" + std::to_string(fd) + ", F_DUPFD_CLOEXEC, " + std::to_string(lowest) + ")");
  return dup;
}

Status Dup3(int from, int to, int flags) {
  if (::dup3(from, to, flags) < 0) return SysError("dup3(" + std::to_string(from) + ", " + std::to_string(to) + ")");
  return {};
}

void CloseRange(unsigned first, unsigned last) {
  if (first <= last) ::close_range(first, last, 0);
}

Result<int> StatusFlags(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return SysError("fcntl(" + std::to_string(fd) + ", F_GETFL)");
  return flags;
}

Status SetStatusFlags(int fd, int flags) {
  if (::fcntl(fd, F_SETFL, flags) != 0) return SysError("fcntl(" + std::to_string(fd) + ", F_SETFL, 0" + std::to_string(flags) + ")");
  return {};
}

Status SeekTo(int fd, uint64_t pos, const std::string& what) {
  if (::lseek(fd, static_cast<off_t>(pos), SEEK_SET) < 0 && errno != ESPIPE) {
    return SysError("lseek(" + what + ", " + std::to_string(pos) + ")");
  }
  return {};
}

Result<int> PipeCapacity(int fd) {
  int capacity = ::fcntl(fd, F_GETPIPE_SZ);
  if (capacity < 0) return SysError("fcntl(" + std::to_string(fd) + ", F_GETPIPE_SZ)");
  return capacity;
}

Status SetPipeCapacity(int fd, int bytes) {
  if (::fcntl(fd, F_SETPIPE_SZ, bytes) < 0) return SysError("fcntl(" + std::to_string(fd) + ", F_SETPIPE_SZ, " + std::to_string(bytes) + ")");
  return {};
}

Result<int> QueuedBytes(int fd) {
  int queued = 0;
  if (::ioctl(fd, FIONREAD, &queued) != 0) return SysError("ioctl(" + std::to_string(fd) + ", FIONREAD)");
  return queued;
}

Result<size_t> Tee(int in, int out, size_t len) {
  ssize_t n = ::tee(in, out, len, SPLICE_F_NONBLOCK);
  if (n < 0) return SysError("tee(" + std::to_string(in) + ", " + std::to_string(out) + ", " + std::to_string(len) + ")");
  return static_cast<size_t>(n);
}

Status PreadExactly(int fd, void* buf, size_t len, uint64_t offset, const std::string& what) {
  size_t got = 0;
  while (got < len) {
    ssize_t k = ::pread(fd, static_cast<char*>(buf) + got, len - got, static_cast<off_t>(offset + got));
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) return SysError("pread " + what + " at " + std::to_string(offset + got));
    if (k == 0) return Fail("pread " + what + ": end of file at " + std::to_string(offset + got));
    got += static_cast<size_t>(k);
  }
  return {};
}

Status ReadExactly(int fd, void* buf, size_t len, const std::string& what) {
  size_t got = 0;
  while (got < len) {
    ssize_t k = ::read(fd, static_cast<char*>(buf) + got, len - got);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) return SysError("read " + what);
    if (k == 0) return Fail("read " + what + ": end of file after " + std::to_string(got) + " of " + std::to_string(len) + " bytes");
    got += static_cast<size_t>(k);
  }
  return {};
}

bool IsTerminalDevice(dev_t rdev) {
  unsigned major = ::major(rdev), minor = ::minor(rdev);
  if ((major >= 136 && major <= 143) || major == 4 || (major == 5 && minor <= 2)) return true;
  std::string link = "/sys/dev/char/" + std::to_string(major) + ":" + std::to_string(minor) + "/subsystem";
  char buf[256];
  ssize_t n = ::readlink(link.c_str(), buf, sizeof(buf) - 1);
  if (n <= 0) return false;
  std::string_view target(buf, static_cast<size_t>(n));
  return target.ends_with("/tty");
}

Status SetTimes(int dirfd, const std::string& path, const timespec& atime, const timespec& mtime) {
  const timespec times[2] = {atime, mtime};
  if (::utimensat(dirfd, path.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) return SysError("utimensat(" + path + ")");
  return {};
}

Result<UniqueFd> OpenDirBeneath(int root, const std::string& path) {
  open_how how{};
  how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  const std::string at = path.empty() ? "." : path;
  int fd = static_cast<int>(::syscall(SYS_openat2, root, at.c_str(), &how, sizeof(how)));
  if (fd < 0) return SysError("openat2(" + at + ", beneath, no symlinks)");
  return UniqueFd(fd);
}

Status MakeSocketInode(int dirfd, const std::string& name, mode_t perm, uid_t uid, gid_t gid) {
  if (::mknodat(dirfd, name.c_str(), S_IFSOCK | 0600, 0) != 0) return SysError("mknodat(" + name + ", S_IFSOCK)");
  if (::fchownat(dirfd, name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0) return SysError("fchownat(" + name + ")");
  // mknodat applied the umask; the name is ours (just made, in a tmpfs no
  // one else reaches yet), so following is moot.
  if (::fchmodat(dirfd, name.c_str(), perm & 07777, 0) != 0) return SysError("fchmodat(" + name + ")");
  return {};
}

Status SetInodeFlags(int fd, int flags) {
  if (::ioctl(fd, FS_IOC_SETFLAGS, &flags) != 0) return SysError("ioctl(FS_IOC_SETFLAGS, " + std::to_string(flags) + ")");
  return {};
}

Status UnlinkAt(int dirfd, const std::string& name) {
  if (::unlinkat(dirfd, name.c_str(), 0) != 0) return SysError("unlink " + name);
  return {};
}

Result<std::pair<uint64_t, uint64_t>> NextDataRange(int fd, uint64_t from, uint64_t limit) {
  if (from >= limit) return std::pair<uint64_t, uint64_t>{limit, limit};
  off_t data = ::lseek(fd, static_cast<off_t>(from), SEEK_DATA);
  if (data < 0 && errno == ENXIO) return std::pair<uint64_t, uint64_t>{limit, limit};
  if (data < 0) return SysError("lseek(SEEK_DATA, " + std::to_string(from) + ")");
  if (static_cast<uint64_t>(data) >= limit) return std::pair<uint64_t, uint64_t>{limit, limit};
  off_t hole = ::lseek(fd, data, SEEK_HOLE);
  if (hole < 0) return SysError("lseek(SEEK_HOLE, " + std::to_string(data) + ")");
  return std::pair<uint64_t, uint64_t>{static_cast<uint64_t>(data), std::min<uint64_t>(static_cast<uint64_t>(hole), limit)};
}

}  // namespace ro::sys
