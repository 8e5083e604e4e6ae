// ELF facts of a file: its GNU build-id, which CRIU records for every
// mapped file and checks at restore.
#pragma once

#include <string>

#include "sys/status.h"

namespace ro::sys {

// The descriptor bytes of the NT_GNU_BUILD_ID note of the ELF file open at
// `fd` (read with pread), 32- or 64-bit; empty when the file is not ELF or
// has no such note. Errors only for failed reads; `what` names the file.
Result<std::string> ElfBuildId(int fd, const std::string& what);

}  // namespace ro::sys
