// /proc/PID/maps, parsed: the VMAs of a process as the kernel shows them.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "sys/status.h"

namespace ro::sys {

struct MapsEntry {
  uint64_t start = 0;
  uint64_t end = 0;
  std::string perms;   // "rw-p"
  uint64_t offset = 0;
  uint64_t inode = 0;
  std::string path;    // "/usr/lib/x.so", "[heap]", "/dev/zero (deleted)", "" for anonymous memory
};

// Parses maps text; a malformed line is an error naming it.
Result<std::vector<MapsEntry>> ParseMaps(const std::string& text);
// Reads /proc/PID/maps.
Result<std::vector<MapsEntry>> ReadMaps(pid_t pid);

}  // namespace ro::sys
