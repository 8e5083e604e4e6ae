// seccomp(2) for restored tasks' own filters.
#pragma once

#include <string>

#include "sys/status.h"

namespace ro::sys {

// seccomp(SECCOMP_SET_MODE_FILTER, flags, prog) with `program` a struct
// sock_filter array (a multiple of 8 bytes, at most BPF_MAXINSNS).
Status SeccompSetFilter(const std::string& program, unsigned flags);

}  // namespace ro::sys
