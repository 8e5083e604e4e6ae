// The kernel's special mappings of the calling process ([vdso], [vvar],
// [vvar_vclock]), as /proc/self/maps shows them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sys/status.h"

namespace ro::sys {

struct SpecialMapping {
  std::string name;  // "[vdso]", "[vvar]", "[vvar_vclock]"
  uint64_t start = 0;
  uint64_t end = 0;
};

// Every special mapping of the calling process but [vsyscall], by address.
Result<std::vector<SpecialMapping>> ReadSpecialMappings();

}  // namespace ro::sys
