// The sysctls of an IPC namespace as CRIU keeps them (ipcns-var-<id>.img,
// ipc_var_entry) and as /proc/sys shows them to a task of the namespace
// (kernel/shm*, msg*, sem, *_next_id; fs/mqueue/*: ipc/ipc_sysctl.c and
// ipc/mq_sysctl.c).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "images/proto/ipc-var.pb.h"
#include "sys/status.h"

namespace ro::images {

// The /proc/sys paths (relative: "kernel/shmmax") a dump reads.
const std::vector<std::string>& IpcSysctlPaths();

// `text` (path -> the file's contents, as read) as an ipc_var_entry. The
// mqueue defaults and next ids may be missing (older kernels, no
// CONFIG_CHECKPOINT_RESTORE), and a next id of -1 is left out, as CRIU
// leaves it. Errors: another path missing, or a value that is not a
// number of its field's width (kernel/sem: four; a negative one too).
Result<img::ipc_var_entry> IpcVarFromSysctls(const std::map<std::string, std::string>& text);

// What a restore writes, in order: path -> text ("kernel/sem" -> "250 32000
// 32 128"). kernel/auto_msgmni is left out (a no-op since Linux 3.19) and
// so is a *_next_id of 4294967295 (-1: none asked).
std::vector<std::pair<std::string, std::string>> IpcSysctlsToWrite(const img::ipc_var_entry& e);

// What the kernel would refuse to take of `e` (one line each, naming the
// field and the bound): sem_ctls not four values; shm_rmid_forced or
// auto_msgmni other than 0 or 1; msgmax, msgmnb or a *_next_id (but -1)
// above INT_MAX; fs/mqueue's msg_max and msg_default outside 1..65536,
// msgsize_max and msgsize_default outside 128..16 MiB (HARD_MSGMAX,
// HARD_MSGSIZEMAX). The counts bounded by IPCMNI (shmmni, msgmni, semmni)
// are left to the kernel: a boot option raises that bound.
std::vector<std::string> IpcVarProblems(const img::ipc_var_entry& e);

}  // namespace ro::images
