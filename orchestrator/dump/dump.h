// `restore-orch dump`: reads a frozen tree into CRIU-layout images.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "images/image_file.h"
#include "orchestrator/dump/freeze.h"
#include "sys/status.h"

namespace ro {

struct DumpCounts {
  size_t tasks = 0;
  size_t zombies = 0;
  size_t fds = 0;
  size_t pipes = 0;
  size_t pipe_bytes = 0;
  size_t mounts = 0;
  size_t autofs = 0;
  size_t tmpfs_bytes = 0;
};

struct DumpedImages {
  std::map<std::string, images::ImageFile> files;  // by file name
  std::vector<std::string> warnings;               // accepted oddities, one line each
  DumpCounts counts;
};

// Everything restore-orch restores about the tree: tasks, sessions and
// groups, zombies, fds with pipe and FIFO contents, cwd/root, the program
// each task resumes, seccomp filters, and (when the tree has its own
// mount namespace) its mounts with tmpfs contents and AutoFS state. Any
// object it could not restore is an error naming the task, fd or mount.
Result<DumpedImages> CollectImages(const FrozenTree& tree);

}  // namespace ro
