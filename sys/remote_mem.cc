#include "sys/remote_mem.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>

namespace ro::sys {
namespace {

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%#llx", static_cast<unsigned long long>(v));
  return buf;
}

// The address of byte `done` of the remote ranges.
uint64_t AddressAt(std::span<const iovec> remote, size_t done) {
  for (const iovec& v : remote) {
    if (done < v.iov_len) return reinterpret_cast<uint64_t>(v.iov_base) + done;
    done -= v.iov_len;
  }
  return 0;
}

}  // namespace

Status ReadTaskMemory(pid_t pid, void* local, std::span<const iovec> remote) {
  size_t total = 0;
  for (const iovec& v : remote) total += v.iov_len;
  size_t done = 0;
  // The kernel stops at the first range it cannot read; a read interrupted
  // part-way through a large batch continues where it stopped.
  while (done < total) {
    size_t skip = done;
    size_t first = 0;
    while (first < remote.size() && skip >= remote[first].iov_len) skip -= remote[first++].iov_len;
    iovec head = remote[first];
    head.iov_base = static_cast<char*>(head.iov_base) + skip;
    head.iov_len -= skip;
    iovec dst{static_cast<char*>(local) + done, total - done};
    std::span<const iovec> rest = remote.subspan(first);
    // The first range is shortened by what was read already: pass a copy.
    iovec ranges[1024];
    size_t n = std::min(rest.size(), std::size(ranges));
    ranges[0] = head;
    for (size_t i = 1; i < n; ++i) ranges[i] = rest[i];
    ssize_t got = ::process_vm_readv(pid, &dst, 1, ranges, n, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return SysError("process_vm_readv(" + std::to_string(pid) + ", " + Hex(AddressAt(remote, done)) + ")");
    if (got == 0) return SysError("process_vm_readv(" + std::to_string(pid) + ", " + Hex(AddressAt(remote, done)) + ")", EFAULT);
    done += static_cast<size_t>(got);
  }
  return {};
}

Status ReadTaskMemory(pid_t pid, uint64_t addr, void* local, size_t len) {
  iovec remote{reinterpret_cast<void*>(addr), len};
  return ReadTaskMemory(pid, local, std::span<const iovec>(&remote, 1));
}

Status WriteTaskMemory(pid_t pid, uint64_t addr, const void* local, size_t len) {
  size_t done = 0;
  while (done < len) {
    iovec src{const_cast<char*>(static_cast<const char*>(local)) + done, len - done};
    iovec dst{reinterpret_cast<void*>(addr + done), len - done};
    ssize_t got = ::process_vm_writev(pid, &src, 1, &dst, 1, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return SysError("process_vm_writev(" + std::to_string(pid) + ", " + Hex(addr + done) + ")", got < 0 ? errno : EFAULT);
    done += static_cast<size_t>(got);
  }
  return {};
}

Status PokeTaskMemory(pid_t pid, uint64_t addr, const void* local, size_t len) {
  std::string path = "/proc/" + std::to_string(pid) + "/mem";
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return SysError("open " + path + " for writing");
  size_t done = 0;
  while (done < len) {
    ssize_t got = ::pwrite(fd.get(), static_cast<const char*>(local) + done, len - done, static_cast<off_t>(addr + done));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return SysError("pwrite " + path + " at " + Hex(addr + done), got < 0 ? errno : EIO);
    done += static_cast<size_t>(got);
  }
  return {};
}

Result<UniqueFd> OpenTaskMem(pid_t outer) {
  std::string path = "/proc/" + std::to_string(outer) + "/mem";
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return SysError("open " + path);
  return fd;
}

}  // namespace ro::sys
