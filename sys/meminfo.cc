#include "sys/meminfo.h"

#include <unistd.h>

#include <cstdlib>

#include "sys/proc.h"

namespace ro::sys {

uint64_t PhysicalMemoryBytes() {
  long pages = ::sysconf(_SC_PHYS_PAGES);
  long size = ::sysconf(_SC_PAGESIZE);
  return pages > 0 && size > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(size) : 0;
}

uint64_t MmapMinAddr() {
  static const uint64_t value = [] {
    auto text = ReadProcFile("/proc/sys/vm/mmap_min_addr");
    return text.ok() ? std::strtoull(text->c_str(), nullptr, 10) : 0ull;
  }();
  return value;
}

}  // namespace ro::sys
