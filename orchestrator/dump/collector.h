// The dump's collector, one file per concern in orchestrator/dump/: tree.cc
// (tasks, namespaces), files.cc (fds, pipe and FIFO contents), mounts.cc
// (mounts, tmpfs), autofs.cc, seccomp.cc. Private to the dump.
#pragma once

#include <sys/stat.h>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "images/proto/autofs.pb.h"
#include "images/proto/core.pb.h"
#include "images/proto/fdinfo.pb.h"
#include "images/proto/mnt.pb.h"
#include "images/proto/pipe-data.pb.h"
#include "orchestrator/dump/dump.h"
#include "orchestrator/tmpfs.h"
#include "sys/mountinfo.h"
#include "sys/proc_files.h"
#include "sys/proc_tree.h"

namespace ro::dump {

struct Task {
  const FrozenTree::Task* frozen = nullptr;
  pid_t outer = 0;  // as restore-orch sees it
  pid_t pid = 0;    // in the tree's PID namespace
  pid_t ppid = 0;
  pid_t pgid = 0;
  pid_t sid = 0;
  bool zombie = false;
  uint32_t exit_status = 0;
  std::string comm;
  sys::TaskInfo info;  // as /proc showed it at the freeze
  std::string who;     // "task 3 (pid 1234 here)"

  std::string Proc(const std::string& rest) const { return "/proc/" + std::to_string(outer) + "/" + rest; }
};

// One fd of a task as /proc shows it.
using LiveFd = sys::FdEntry;

// An open file description already given an id: fds are compared with it
// by kcmp.
struct Description {
  uint32_t id = 0;
  pid_t outer = 0;
  int fd = 0;
};

class Collector {
 public:
  explicit Collector(const FrozenTree& tree) : tree_(tree) {}
  Result<DumpedImages> Run();

 private:
  // tree.cc
  Status ReadNamespaces();
  Status CollectTask(const FrozenTree::Task& frozen);
  Status CheckTask(const Task& t);
  Status CollectCore(const Task& t);
  Status CollectResume(const Task& t);
  void MapOutsideSessions();
  void WritePstreeAndInventory();
  images::ImageFile& File(const images::Kind& kind, std::optional<uint32_t> key = std::nullopt);

  // seccomp.cc
  Status CollectSeccomp(const Task& t, img::core_entry& core);

  // files.cc
  Status CollectFds(const Task& t);
  Status CollectFsDirs(const Task& t);
  Result<uint32_t> DescriptionId(const Task& t, const LiveFd& f, bool& fresh);
  Status AddFile(const Task& t, const LiveFd& f, uint32_t id);
  Status CollectPipeData(const Task& t, const LiveFd& f, uint32_t pipe_id, bool fifo);
  uint32_t AddPathEntry(const std::string& path, uint32_t flags, uint64_t pos, uint32_t mnt_id);

  // mounts.cc
  Status ReadMounts();
  Status CollectMounts();
  Status PackTmpfsContents(const sys::MountInfo& m, uint32_t dev);

  // autofs.cc
  Status CollectAutofs(const sys::MountInfo& m, uint32_t dev);

  const FrozenTree& tree_;
  DumpedImages out_;
  std::vector<Task> tasks_;
  std::map<pid_t, size_t> by_outer_;

  // Namespaces, by inode.
  ino_t own_pid_ns_ = 0, own_mnt_ns_ = 0, tree_pid_ns_ = 0, tree_mnt_ns_ = 0;
  size_t pid_levels_ = 0;  // NSpid entries of the tree's tasks
  bool new_pid_ = false, new_mnt_ = false;

  // Files.
  uint32_t next_id_ = 1;
  std::map<std::pair<dev_t, ino_t>, std::vector<Description>> descriptions_;
  std::set<std::pair<bool, uint32_t>> data_done_;  // (fifo, pipe id) whose contents are read
  struct PipeHolders {
    bool reader = false;
    bool writer = false;
    std::string first;  // "task 3 fd 4", for messages
  };
  std::map<ino_t, PipeHolders> pipes_;  // anonymous pipes, by inode
  std::map<pid_t, std::map<int, LiveFd>> fds_;  // outer pid -> its fds

  // Mounts.
  std::vector<sys::MountInfo> mounts_;
  std::set<uint64_t> autofs_pipes_;  // pipe_ino of every AutoFS mount
  TmpfsPacker packer_;

  // restore-orch's own namespaces, by name ("net"): 0 when the kernel has none.
  std::map<std::string, ino_t> own_ns_;
  std::vector<long> own_uids_, own_gids_;  // restore-orch's, from its status
};

std::string Str(long long v);

// The integer value of superblock option `key` of a mount, or nullopt.
std::optional<long long> IntOption(const sys::MountInfo& m, const char* key);

}  // namespace ro::dump
