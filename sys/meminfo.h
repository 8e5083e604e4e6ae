// How much memory the machine has.
#pragma once

#include <cstdint>

namespace ro::sys {

// Bytes of physical memory: sysconf's _SC_PHYS_PAGES times the page size
// (glibc reads them from sysinfo(2)); 0 when unknown. What a tmpfs's
// size=N% is a share of (tmpfs(5)).
uint64_t PhysicalMemoryBytes();

}  // namespace ro::sys
