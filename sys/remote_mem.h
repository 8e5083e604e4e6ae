// Another task's memory, read and written with process_vm_readv/writev
// (the caller must be allowed to ptrace it), and through /proc/PID/mem
// for what those refuse (mappings without PROT_READ).
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "sys/status.h"
#include "sys/unique_fd.h"

namespace ro::sys {

// Reads the remote ranges `remote` (at most IOV_MAX of them) of `pid`, one
// after the other, into `local` (their total length). A short read (a range
// unmapped or not readable) is an error naming the first address missed.
Status ReadTaskMemory(pid_t pid, void* local, std::span<const iovec> remote);
// One range.
Status ReadTaskMemory(pid_t pid, uint64_t addr, void* local, size_t len);
// Writes `len` bytes at `addr` of `pid`, all or an error.
Status WriteTaskMemory(pid_t pid, uint64_t addr, const void* local, size_t len);
// The same through /proc/PID/mem, which writes as a debugger does: into
// mappings without PROT_WRITE too (the caller must be `pid`'s tracer where
// the kernel's proc_mem.force_override says so, and it may say never).
Status PokeTaskMemory(pid_t pid, uint64_t addr, const void* local, size_t len);

// /proc/OUTER/mem opened for reading: what ptrace's access to memory sees,
// mappings without PROT_READ included.
Result<UniqueFd> OpenTaskMem(pid_t outer);
// Read it with sys::PreadExactly (sys/files.h) at the address.

}  // namespace ro::sys
