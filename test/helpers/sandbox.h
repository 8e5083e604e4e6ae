// Kernel tests run inside a sandbox: a child in its own mount namespace
// (made private, with its own /proc) and its own PID namespace, as its init.
// When the body returns, the init exits and the kernel kills everything
// left in the sandbox, restored trees included.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "sys/proc.h"

namespace ro::test {

// Runs `body` in a fresh sandbox. Its return value is the failure message
// ("" for success), carried back to the test.
std::string InSandbox(const std::function<std::string()>& body);

// From inside a sandbox: every process of the PID namespace whose init is
// `init` (a pid as the caller sees it), as seen from inside that namespace.
std::vector<sys::ProcStat> ReadTree(pid_t init);

// Mounts in the caller's mount namespace, one line each (id, mountpoint, fstype).
std::vector<std::string> MountTable();

// The names in /dev/shm, sorted.
std::vector<std::string> DevShm();

// From a sandbox's init: reaps what was reparented to it (at least 100 ms,
// and until none is left, up to 3 s), then counts the other processes of
// the sandbox.
int OtherProcesses();

}  // namespace ro::test
