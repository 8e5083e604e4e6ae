// Action scripts: programs the caller hooks into named points of a restore,
// as CRIU's --action-script does.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "shm/stages.h"
#include "sys/status.h"

namespace ro {

// The points are the stage table's (shm/stages.h: kPreRestore ...).
// Runs every script for `point`, one after the other, each with the
// environment of restore-orch plus RESTORE_ORCH_ACTION=<point> and
// RESTORE_ORCH_ROOT_PID=<root task's pid as the caller sees it, or 0>
// (and CRIU's names CRTOOLS_SCRIPT_ACTION and CRTOOLS_INIT_PID, so CRIU's
// scripts work). A script that fails, or is still running at
// `deadline_ns` (CLOCK_MONOTONIC; it is killed), fails the restore.
// A script's stdout and stderr go to restore-orch's stderr (stdout is the
// root task's pid's). Each runs in a process group of its own, killed whole
// when it is stopped. `waiting`, when set, is called every few
// milliseconds while a script runs (the progress line, signals): an error
// from it kills the script and is returned.
Status RunActionScripts(const std::vector<std::string>& scripts, const char* point, pid_t root, uint64_t deadline_ns,
                        const std::function<Status()>& waiting = {});

}  // namespace ro
