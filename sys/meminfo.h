// How much memory the machine has, and where user mappings may start.
#pragma once

#include <cstdint>

namespace ro::sys {

// Bytes of physical memory: sysconf's _SC_PHYS_PAGES times the page size
// (glibc reads them from sysinfo(2)); 0 when unknown. What a tmpfs's
// size=N% is a share of (tmpfs(5)).
uint64_t PhysicalMemoryBytes();

// vm.mmap_min_addr (/proc/sys/vm/mmap_min_addr), read once: the lowest
// address PR_SET_MM_MAP accepts for an mm field; 0 when it cannot be read.
uint64_t MmapMinAddr();

}  // namespace ro::sys
