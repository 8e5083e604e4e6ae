#include "sys/mapping.h"

#include <sys/mman.h>
#include <unistd.h>

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

}  // namespace ro::sys
