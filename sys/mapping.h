// Owned memory mappings: a Mapping unmaps itself when it goes away.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "sys/status.h"

namespace ro::sys {

class Mapping {
 public:
  Mapping() = default;
  Mapping(void* base, size_t size) : base_(base), size_(size) {}
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  Mapping(Mapping&& o) noexcept : base_(std::exchange(o.base_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  Mapping& operator=(Mapping&& o) noexcept;
  ~Mapping() { reset(); }

  void* base() const { return base_; }
  size_t size() const { return size_; }
  explicit operator bool() const { return base_ != nullptr; }
  void reset();

 private:
  void* base_ = nullptr;
  size_t size_ = 0;
};

// An anonymous MAP_SHARED read-write mapping of `size` bytes (rounded up to
// pages), inherited by children at the same address. At `address` exactly
// when it is not 0 (MAP_FIXED_NOREPLACE: EEXIST when something is mapped
// there already), anywhere otherwise.
Result<Mapping> MapSharedAnonymous(size_t size, uint64_t address);

// An anonymous private read-write mapping of `size` bytes (rounded up to
// pages), anywhere: a large buffer that is given back whole.
Result<Mapping> MapPrivateAnonymous(size_t size);

// mmap(2) at exactly `address`: over what is there when `replace`
// (MAP_FIXED), or only where nothing is (MAP_FIXED_NOREPLACE: EEXIST).
// `flags` gives the mapping's kind (MAP_PRIVATE|MAP_ANONYMOUS, MAP_SHARED
// ...); `fd` -1 for anonymous memory. The mapping is not owned: the caller
// lays out an address space it hands over whole.
Status MapFixed(uint64_t address, uint64_t len, int prot, int flags, int fd, uint64_t offset, bool replace);
// Fills `len` bytes at `address` (a private or shared writable mapping)
// with writable pages in one call, madvise(MADV_POPULATE_WRITE, Linux
// 5.14): the pages a pread will write then take no fault each. A kernel
// without it (EINVAL) leaves the range as it is: it is only faster.
Status PopulateWrite(uint64_t address, uint64_t len);
// mprotect(2).
Status Protect(uint64_t address, uint64_t len, int prot);

}  // namespace ro::sys
