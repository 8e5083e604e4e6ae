// `restore-orch dump`: reads a frozen tree into CRIU-layout images.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "images/image_file.h"
#include "orchestrator/dump/freeze.h"
#include "sys/status.h"
#include "sys/unique_fd.h"

namespace ro {

struct DumpCounts {
  size_t tasks = 0;
  size_t threads = 0;       // of live tasks, each task's own included
  size_t zombies = 0;
  size_t fds = 0;
  size_t pipes = 0;
  size_t pipe_bytes = 0;
  size_t mounts = 0;
  size_t autofs = 0;
  size_t tmpfs_bytes = 0;
  size_t vmas = 0;
  size_t shmem = 0;         // shared anonymous memory objects
  size_t pages = 0;         // pages written
  size_t zero_pages = 0;    // present pages not written: the zero page, or all zero
  uint64_t pages_bytes = 0; // bytes of the pages files
  double pages_ms = 0;      // reading pagemaps and memory, writing pages files
};

struct DumpedImages {
  std::map<std::string, images::ImageFile> files;  // by file name
  std::vector<std::string> warnings;               // accepted oddities, one line each
  DumpCounts counts;
};

// The files a dump writes straight into the target directory while the
// tree is frozen (pages can be gigabytes: never whole in memory). Every one
// is removed again when this goes away, unless Keep() was called.
class StreamedFiles {
 public:
  // `discard` (a dry run): files are counted but their bytes go to /dev/null.
  StreamedFiles(std::string dir, bool discard) : dir_(std::move(dir)), discard_(discard) {}
  StreamedFiles(const StreamedFiles&) = delete;
  StreamedFiles& operator=(const StreamedFiles&) = delete;
  ~StreamedFiles();

  // Creates `name` in the directory (O_EXCL, mode 0600) and remembers it.
  Result<UniqueFd> Create(const std::string& name);
  // Bytes written to `name` so far (for the check and the stats).
  void Account(const std::string& name, uint64_t bytes) { files_[name] += bytes; }
  const std::map<std::string, uint64_t>& files() const { return files_; }
  const std::string& dir() const { return dir_; }
  void Keep() { keep_ = true; }

 private:
  std::string dir_;
  UniqueFd dirfd_;
  std::map<std::string, uint64_t> files_;  // name -> bytes
  bool discard_ = false;
  bool keep_ = false;
};

struct CollectOptions {
  StreamedFiles* streamed = nullptr;      // where pages files go
  std::function<Status()> interrupted;    // an error once the dump is to stop (SIGINT...)
  std::function<void(size_t done, size_t total)> progress;  // before each task: tasks collected, of all; or null
  // --shell-job: tasks in a session or group led from outside the tree are
  // written with sid/pgid 0 (refused without it).
  bool shell_job = false;
};

// Everything restore-orch restores about the tree: tasks, sessions and
// groups, zombies, fds with pipe and FIFO contents, cwd/root, the program
// each task resumes, seccomp filters, and (when the tree has its own
// mount namespace) its mounts with tmpfs contents and AutoFS state; and
// each live task's registers, signal state and memory (mm, pagemaps; the
// pages files are streamed into options.streamed). Any object it could not
// dump is an error naming the task, fd, mount or mapping.
Result<DumpedImages> CollectImages(const FrozenTree& tree, const CollectOptions& options);

// The dump's early-out, before the freeze, touching nothing of the tree:
// every task below `root` (children read from /proc, the pid as restore-orch
// sees it) and each of its fds whose link target alone says it cannot be
// restored (a socket, an anonymous-inode file such as an epoll fd or an
// eventfd, anything else neither a path nor a pipe). Returns the refusal
// (Refuse()) the full check after the freeze gives for that fd, in the
// same words; ok when none is found (tasks or fds gone meanwhile are
// skipped: the full check, which still runs, decides).
Status PrecheckFds(pid_t root);

}  // namespace ro
