#include "shm/faults.h"

#include <charconv>

namespace ro::shm {
namespace {

constexpr FaultInfo kFaults[] = {
    {"root-clone", "clone3 of the root task into its new PID and mount namespaces"},
    {"mount-create", "making one mount: a new superblock, a bind or an external bind"},
    {"mount-place", "moving one mount into its place in the tree"},
    {"mount-share", "one peer-group, slave or unbindable step"},
    {"pivot", "pivot_root into the restored tree"},
    {"autofs-mount", "mounting an AutoFS superblock with its dummy pipe"},
    {"autofs-catatonic", "setting the timeout of a new AutoFS mount and making it catatonic"},
    {"autofs-setpipefd", "a master taking its AutoFS mount over (SETPIPEFD)"},
    {"fork", "clone3 of one task with its pid"},
    {"session", "setsid() of a session leader"},
    {"group", "setpgid() into a process group"},
    {"barrier", "a task finishing a stage"},
    {"file-create", "making one open file description (pipe, FIFO, file)"},
    {"pipe-data", "writing a pipe's or FIFO's contents back"},
    {"fd-place", "dup3 of one fd to its number"},
    {"seccomp", "installing a task's seccomp filters"},
    {"resume", "the exec of a resumed program"},
    {"mm-premap", "premapping one VMA (or making one shared memory object) of a task that continues"},
    {"mm-pages", "reading one run of pages into a task's premapped memory"},
    {"mm-restorer", "the restorer failing after it has unmapped everything of the task but the zone"},
    {"mm-continue", "setting a continuing task's registers, once its restorer is done"},
};
static_assert(sizeof(kFaults) / sizeof(kFaults[0]) == static_cast<size_t>(FaultPoint::kCount));

}  // namespace

const FaultInfo& Describe(FaultPoint point) { return kFaults[static_cast<size_t>(point)]; }

Result<FaultSpec> ParseFault(std::string_view text) {
  std::string_view name = text.substr(0, text.find(':'));
  FaultSpec spec{FaultPoint::kCount, 1};
  for (size_t i = 0; i < static_cast<size_t>(FaultPoint::kCount); ++i) {
    if (kFaults[i].name == name) spec.point = static_cast<FaultPoint>(i);
  }
  if (spec.point == FaultPoint::kCount) {
    return Fail("unknown fault point '" + std::string(name) + "' (restore-orch --list-faults lists them)");
  }
  if (name.size() < text.size()) {
    std::string_view n = text.substr(name.size() + 1);
    auto [end, ec] = std::from_chars(n.data(), n.data() + n.size(), spec.pass);
    if (ec != std::errc() || end != n.data() + n.size() || spec.pass == 0) {
      return Fail("fault '" + std::string(text) + "': the pass must be a number from 1");
    }
  }
  return spec;
}

std::string ListFaults() {
  std::string out;
  for (const FaultInfo& f : kFaults) {
    out += std::string(f.name);
    out.append(f.name.size() < 18 ? 18 - f.name.size() : 1, ' ');
    out += std::string(f.description) + "\n";
  }
  return out;
}

}  // namespace ro::shm
