#include "sys/mapping.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace ro::sys {

Mapping& Mapping::operator=(Mapping&& o) noexcept {
  if (this != &o) {
    reset();
    base_ = std::exchange(o.base_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

void Mapping::reset() {
  if (base_ != nullptr) ::munmap(base_, size_);
  base_ = nullptr;
  size_ = 0;
}

Result<Mapping> MapSharedAnonymous(size_t size, uint64_t address) {
  size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  size = (size + page - 1) / page * page;
  int flags = MAP_SHARED | MAP_ANONYMOUS | (address != 0 ? MAP_FIXED_NOREPLACE : 0);
  void* want = reinterpret_cast<void*>(address);
  void* base = ::mmap(want, size, PROT_READ | PROT_WRITE, flags, -1, 0);
  char where[32];
  std::snprintf(where, sizeof(where), "%#llx", static_cast<unsigned long long>(address));
  std::string what = "mmap(" + std::string(address != 0 ? where : "anywhere") + ", " + std::to_string(size) +
                     " bytes, MAP_SHARED|MAP_ANONYMOUS" + (address != 0 ? "|MAP_FIXED_NOREPLACE" : "") + ")";
  if (base == MAP_FAILED) return SysError(what);
  // Kernels before 4.17 ignore MAP_FIXED_NOREPLACE and may map elsewhere.
  if (address != 0 && base != want) {
    ::munmap(base, size);
    return SysError(what + " mapped elsewhere", EEXIST);
  }
  return Mapping(base, size);
}

Result<Mapping> MapPrivateAnonymous(size_t size) {
  size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  size = (size + page - 1) / page * page;
  void* base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) return SysError("mmap(" + std::to_string(size) + " bytes, MAP_PRIVATE|MAP_ANONYMOUS)");
  return Mapping(base, size);
}

namespace {

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%#llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

Status MapFixed(uint64_t address, uint64_t len, int prot, int flags, int fd, uint64_t offset, bool replace) {
  void* want = reinterpret_cast<void*>(address);
  void* got = ::mmap(want, len, prot, flags | (replace ? MAP_FIXED : MAP_FIXED_NOREPLACE), fd, static_cast<off_t>(offset));
  if (got == want) return {};
  int err = errno;
  std::string what = "mmap(" + Hex(address) + ", " + std::to_string(len) + " bytes, prot " + std::to_string(prot) + ", flags " +
                     Hex(static_cast<uint64_t>(flags)) + (fd >= 0 ? ", fd " + std::to_string(fd) + ", offset " + std::to_string(offset) : "") + ")";
  if (got == MAP_FAILED) return SysError(what, err);
  ::munmap(got, len);
  return SysError(what + " mapped elsewhere", EEXIST);
}

Status PopulateWrite(uint64_t address, uint64_t len) {
#ifndef MADV_POPULATE_WRITE
  constexpr int MADV_POPULATE_WRITE = 23;  // linux/mman.h, Linux 5.14
#endif
  if (::madvise(reinterpret_cast<void*>(address), len, MADV_POPULATE_WRITE) == 0 || errno == EINVAL) return {};
  return SysError("madvise(" + Hex(address) + ", " + std::to_string(len) + " bytes, MADV_POPULATE_WRITE)");
}

Status Protect(uint64_t address, uint64_t len, int prot) {
  if (::mprotect(reinterpret_cast<void*>(address), len, prot) != 0) {
    return SysError("mprotect(" + Hex(address) + ", " + std::to_string(len) + ", " + std::to_string(prot) + ")");
  }
  return {};
}

}  // namespace ro::sys
