// Named fault points: every step of a restore that creates something can be
// made to fail on purpose (--fault NAME[:N] or RESTORE_ORCH_FAULT), as if
// its operation had failed with EIO, so that callers can test their error
// paths and the rollback. Passes are counted across all tasks in the arena.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "sys/status.h"

namespace ro::shm {

enum class FaultPoint : unsigned {
  kRootClone,       // clone3 of the root task into its namespaces
  kMountCreate,     // making one mount (new superblock, bind or external)
  kMountPlace,      // moving one mount into place
  kMountShare,      // one peer-group, slave or unbindable step
  kPivot,           // pivot_root into the new tree
  kAutofsMount,     // an AutoFS superblock with its dummy pipe
  kAutofsCatatonic, // making a new AutoFS mount catatonic
  kAutofsSetPipeFd, // a master taking its mount over
  kFork,            // forking one task with its pid
  kSession,         // setsid() of a session leader
  kGroup,           // setpgid() into a process group
  kBarrier,         // a task finishing a stage
  kFileCreate,      // making one open file description
  kPipeData,        // writing a pipe's contents back
  kFdPlace,         // dup3 of one fd to its number
  kSeccomp,         // installing a task's seccomp filters
  kResume,          // the exec of a resumed program
  kMmPremap,        // premapping one VMA (or making one shared object) of a continuing task
  kMmPages,         // reading one run of pages into place
  kMmRestorer,      // the restorer failing once it has unmapped the task's old memory
  kMmContinue,      // the orchestrator setting a continuing task's registers
  kCount,
};

struct FaultInfo {
  std::string_view name;
  std::string_view description;
};

const FaultInfo& Describe(FaultPoint point);

// "NAME" or "NAME:N" (N >= 1, default 1).
struct FaultSpec {
  FaultPoint point;
  unsigned pass = 1;
};
Result<FaultSpec> ParseFault(std::string_view text);

// Every point, one line each: "name  description".
std::string ListFaults();

}  // namespace ro::shm
