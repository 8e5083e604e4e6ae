// restore-orch's own heap.
#pragma once

namespace ro::sys {

// Gives the free pages of the process's heap back to the kernel
// (glibc's malloc_trim(0): madvise(MADV_DONTNEED) of free chunks of every
// arena, then the top trimmed). Call after a large temporary structure is
// freed and before many forks: a fork copies the page table entries of
// every resident page, freed or not, and a child write-faults the ones it
// touches. Cannot fail.
void ReleaseFreeHeap();

}  // namespace ro::sys
