#include "sys/heap.h"

#include <malloc.h>

namespace ro::sys {

void ReleaseFreeHeap() { ::malloc_trim(0); }

}  // namespace ro::sys
