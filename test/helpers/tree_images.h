// Builds image sets for process trees in code, for the restore tests.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "test/helpers/test_util.h"

namespace ro::test {

struct FdSpec {
  int fd = 0;
  uint32_t file = 0;  // a FileSpec id
  bool cloexec = false;
};

struct FileSpec {
  enum Kind { kPipe, kFifo, kRegular } kind = kPipe;
  uint32_t id = 0;
  uint32_t pipe_id = 0;  // pipes and FIFOs
  uint32_t flags = 0;    // O_* flags
  std::string path;      // regular files and FIFOs
  uint64_t pos = 0;
};

struct PipeDataSpec {
  uint32_t pipe_id = 0;
  bool fifo = false;
  uint32_t capacity = 0;
  std::string data;
};

struct TaskSpec {
  pid_t pid = 0;
  pid_t ppid = 0;
  pid_t pgid = 0;
  pid_t sid = 0;
  bool zombie = false;
  uint32_t exit_status = 0;  // wait status, zombies only
  std::string comm = "task";
  std::vector<std::string> argv;  // with exe = argv[0]: a resume image
  std::vector<std::string> env;
  std::string cwd;
  std::vector<FdSpec> fds;
  int seccomp_filters = 0;  // allow-everything filters, stacked
};

// inventory, pstree, core-<pid> for each task and resume-<pid> where argv is
// set. The tree gets its own PID namespace (unless shared_pid_ns) and
// shares the caller's mount namespace.
// With `files`: files.img, fdinfo-<files_id>.img for every task with fds,
// pipes-data.img and fifo-data.img from `data`.
ImageSet TreeImages(const std::vector<TaskSpec>& tasks, bool shared_pid_ns = false,
                    const std::vector<FileSpec>& files = {}, const std::vector<PipeDataSpec>& data = {});

struct MountSpec {
  uint32_t id = 0;
  uint32_t parent = 0;
  uint32_t fstype = 5;  // mnt.proto's fstype: 5 tmpfs, 1 proc, 18 autofs
  std::string mountpoint;
  std::string root = "/";
  std::string source = "none";
  std::string options;
  uint32_t flags = 0;  // MS_* per mount
  uint32_t shared = 0;
  uint32_t master = 0;
  uint32_t dev = 0;    // superblock: binds share their source's
  bool external = false;
  std::string ext_key;
  uint32_t sb_flags = 0;
};

struct AutofsSpec {
  uint32_t dev = 0;  // the mount's superblock
  int fd = -1;       // master's write end, -1 for catatonic
  int pgrp = 0;      // the master
  int timeout = 300;
  int mode = 1;      // 0 direct, 1 indirect, 2 offset
  std::optional<int> read_fd;
};

// Gives the tree its own mount namespace with these mounts.
void AddMounts(ImageSet& set, const std::vector<MountSpec>& mounts, const std::vector<AutofsSpec>& autofs = {});

// tmpfs-dev-<dev>.tar.gz.img with `tar_gz`.
void AddTmpfsContents(ImageSet& set, uint32_t dev, const std::string& tar_gz);
// A gzipped tar with nothing in it (tar czf - -T /dev/null).
std::string EmptyTarGz();

// A chain root(1) -> 2 -> ... -> depth; every task its own group in session 1.
std::vector<TaskSpec> Chain(int depth);
// Root 1 with `n` children 2..n+1, all in session 1, group 1.
std::vector<TaskSpec> Fan(int n);

}  // namespace ro::test
