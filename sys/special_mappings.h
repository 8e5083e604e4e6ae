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
// The same from the text of a maps file: its lines whose name is [vdso],
// [vvar] or [vvar_vclock]; a line without a "start-end" range is an error
// naming it.
Result<std::vector<SpecialMapping>> ParseSpecialMappings(const std::string& maps);

// The running kernel's layout of them, the same in every process it runs
// (the vdso's code reaches its data in the vvar pages at a fixed distance):
// read once from restore-orch's own maps.
struct SpecialLayout {
  bool known = false;        // false: the maps could not be read
  uint64_t vdso_size = 0;    // 0: the kernel maps no vdso
  uint64_t vvar_size = 0;    // [vvar] and [vvar_vclock] together; 0: none
  int64_t vdso_offset = 0;   // the vdso's start minus the vvar pages' start
};
const SpecialLayout& HostSpecialLayout();

}  // namespace ro::sys
