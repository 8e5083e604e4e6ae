// The dump's collector, one file per concern in orchestrator/dump/: tree.cc
// (tasks, namespaces), files.cc (fds, pipe and FIFO contents, mapped
// files), mounts.cc (mounts, tmpfs), autofs.cc, seccomp.cc, task_state.cc
// (what a live task's registers and kernel state are, read while frozen),
// attrs.cc (its timer slack and TSC mode; refusals of attributes),
// regs.cc and signals.cc (those into its core), mm.cc (its address space),
// pages.cc (page contents, streamed). Private to the dump.
#pragma once

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/user.h>

#include <array>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "images/proto/autofs.pb.h"
#include "images/proto/core.pb.h"
#include "images/proto/fdinfo.pb.h"
#include "images/proto/mm.pb.h"
#include "images/proto/mnt.pb.h"
#include "images/proto/pipe-data.pb.h"
#include "orchestrator/dump/dump.h"
#include "orchestrator/tmpfs.h"
#include "sys/mount_api.h"
#include "sys/mapping.h"
#include "sys/mountinfo.h"
#include "sys/proc_files.h"
#include "sys/proc_mm.h"
#include "sys/proc_tree.h"
#include "sys/process.h"
#include "sys/ptrace_api.h"
#include "sys/remote_attrs.h"
#include "sys/posix_mqueue.h"
#include "sys/sysv_ipc.h"

namespace ro::dump {

// What the dump reads of one thread while the tree is frozen: its
// registers and the kernel state that is its own (CRIU's thread_info and
// thread_core: every thread has them, in its core-<tid>.img).
struct ThreadLive {
  pid_t outer = 0;          // as restore-orch sees it
  pid_t tid = 0;            // in the tree's PID namespace
  std::string comm;         // its name (/proc/PID/task/TID/stat)
  std::string status;       // its /proc status (credentials)
  sys::ProcStatMm stat;     // its scheduling policy, nice, PF_* flags
  user_regs_struct regs{};  // as read: the thread is never changed
  std::string xstate;       // NT_X86_XSTATE
  std::array<user_desc, 3> tls{};
  uint64_t sigmask = 0;
  std::vector<std::string> pending;  // siginfo_t each, queued to this thread
  sys::RseqConfig rseq;
  uint64_t rseq_cs = 0;  // struct rseq's rseq_cs: set inside a critical section
  struct RseqCs {
    uint32_t version = 0, flags = 0;
    uint64_t start_ip = 0, post_commit_offset = 0, abort_ip = 0;
  } cs;
  sys::RobustList robust;
  // Injected syscalls.
  uint64_t ss_sp = 0, ss_size = 0;
  uint32_t ss_flags = 0;
  uint64_t clear_tid_addr = 0;
  int pdeath_sig = 0, secbits = 0;
  int tsc_mode = 0;          // 0: the CPU has no TSC control
  uint64_t timer_slack = 0;  // ns
  int sched_policy = 0;      // sched_getscheduler: SCHED_* | SCHED_RESET_ON_FORK
  int sched_prio = 0;        // sched_getparam
};

// What the dump reads of a live task while the tree is frozen, before it
// becomes images (task_state.cc): each thread's state, what its threads
// share, and what only the task itself can ask the kernel (injected
// syscalls).
struct LiveState {
  std::vector<sys::Vma> vmas;
  sys::ProcStatMm stat;
  std::vector<ThreadLive> threads;  // threads[0] is the task itself
  std::vector<std::string> pending_shared;  // siginfo_t each, queued to the thread group
  std::vector<rlimit> rlimits;  // RLIMIT_* order
  // Injected syscalls.
  std::array<sys::KernelSigaction, 65> sigactions{};  // by signal number
  struct Itimer {
    uint64_t isec = 0, iusec = 0, vsec = 0, vusec = 0;
  };
  std::array<Itimer, 3> itimers{};  // ITIMER_REAL, VIRTUAL, PROF
  uint64_t brk = 0;
  int dumpable = 0, child_subreaper = 0;

  const ThreadLive& leader() const { return threads.front(); }
};

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
  std::vector<pid_t> thread_ids;  // its other threads' ids in the tree's namespace (pstree: after the task's own)
  sys::TaskInfo info;  // as /proc showed it at the freeze
  std::string who;     // "task 3 (pid 1234 here)"
  std::unique_ptr<LiveState> live;  // live tasks, while they are collected

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
  Collector(const FrozenTree& tree, const CollectOptions& options) : tree_(tree), options_(options) {}
  Result<DumpedImages> Run();

 private:
  // tree.cc
  Status ReadNamespaces();
  // ipc: the System V objects of the tree's own IPC namespace into
  // ipcns-shm-, ipcns-msg- and ipcns-sem-<id>.img (their pages are dumped
  // as they are read: DumpShmemObject).
  Status DumpSysvObjects(sys::SysvObjects objects);
  // ipc: its POSIX message queues (read with their messages while the
  // tree is frozen) into posix-mqueues-<id>.img; refuses a queue with an
  // mq_notify registration, a full one, and one too big for an entry.
  Status DumpPosixMqueues(std::vector<sys::PosixMqueue> queues);
  // The tree's own network namespace (dump/net.cc): its loopback, its
  // addresses and device sysctls; refused when it holds more than that.
  Status DumpNetNamespace(pid_t root);
  // Refuses a segment attached by a task outside the tree: more
  // attachments (VMAs) than the tree's tasks have.
  Status CheckSysvAttachments();
  // mm: the pages of a shmem object (its file `fd`, `extent` bytes, the
  // last page read up to it) into pagemap-shmem-<key>.img and a pages image.
  Status DumpShmemObject(uint64_t key, int fd, uint64_t extent);
  Status CollectTask(const FrozenTree::Task& frozen);
  Status CheckTask(const Task& t);
  Status CollectCore(const Task& t);
  Status CollectLive(Task& t);
  Status CollectResume(const Task& t);
  Status FindOutsideSessions();
  void WritePstreeAndInventory();
  images::ImageFile& File(const images::Kind& kind, std::optional<uint32_t> key = std::nullopt);

  // seccomp.cc
  Status CollectSeccomp(const Task& t, img::core_entry& core);

  // files.cc
  Status CollectFds(const Task& t);
  Status CollectFsDirs(const Task& t);
  // A restore reopens `what` (an fd, the cwd or the root: the file
  // `held`, dev/ino/mount as the task has it) by its `path` in the tree's
  // mount namespace: refused when that path leads elsewhere now (a mount
  // covers it, it was replaced or renamed).
  // `writable`: the fd is open for writing.
  Status CheckReachable(const std::string& what, const std::string& path, const sys::FileIdentity& held, bool writable);
  // An fd on a file of /proc/PID/ (a process's own files) is refused when
  // PID numbers the process in another PID namespace than the tree's: a
  // restore would open another process's.
  Status CheckProcPid(const LiveFd& f);
  bool OnAutofsRoot(const LiveFd& f) const;
  // The root of the tree's mount namespace (O_PATH), opened once: paths of
  // the images are resolved from it, whatever root the tasks have.
  Result<const UniqueFd*> NamespaceRoot();
  Result<uint32_t> DescriptionId(const Task& t, const LiveFd& f, bool& fresh);
  Status AddFile(const Task& t, const LiveFd& f, uint32_t id);
  Status CollectPipeData(const Task& t, const LiveFd& f, uint32_t pipe_id, bool fifo);
  uint32_t AddPathEntry(const std::string& path, uint32_t flags, uint64_t pos, uint32_t mnt_id);
  // The files.img REG entry of a mapped file (or the exe): one per file and
  // open mode, shared by every VMA and task; with its size, mode and ELF
  // build-id as CRIU records them.
  Result<uint32_t> MappedFileId(const sys::MappedFile& f, uint32_t flags, const std::function<Result<UniqueFd>()>& open);

  // task_state.cc
  Status ReadLiveState(Task& t);
  // What a thread (not the leader) must share with its task: fd table,
  // cwd and root, namespaces, seccomp filters. A refusal otherwise.
  Status CheckThreadShares(const Task& t, pid_t tid);
  // One thread's state; `syscall_insn` is where its injected syscalls run.
  Status ReadThread(const Task& t, pid_t outer, uint64_t syscall_insn, LiveState* task_wide, ThreadLive& th);
  // The leader's `task_wide` (sigactions, itimers, break...) too when given.
  Status AskThread(sys::RemoteSyscalls& task, ThreadLive& th, LiveState* task_wide);
  // Every thread but the leader: its core-<tid>.img (thread_info and
  // thread_core only, as CRIU writes a thread's core).
  Status CollectThreadCores(const Task& t);

  // attrs.cc: each thread's attrs-<tid>.img, and the refusals of what
  // no restore could give back.
  Status CollectAttrs(const Task& t);

  // regs.cc
  Status FillThreadInfo(const ThreadLive& th, img::core_entry& core);

  // signals.cc: the task-wide part (core.tc) of the leader's core, and
  // each thread's own (core.thread_core).
  Status FillSignalState(const Task& t, img::core_entry& core);
  Status FillThreadCore(const ThreadLive& th, img::thread_core_entry& core);

  // mm.cc
  Status CollectMm(const Task& t);
  Result<img::vma_entry> DescribeVma(const Task& t, const sys::Vma& v);
  Result<img::vma_entry> DescribeFileVma(const Task& t, const sys::Vma& v, img::vma_entry e);

  // pages.cc
  Status DumpTaskPages(const Task& t, const img::mm_entry& mm);
  Status DumpSharedMemory();

  // mounts.cc
  Status ReadMounts();
  Status CollectMounts();
  Status PackTmpfsContents(const sys::MountInfo& m, uint32_t dev);

  // autofs.cc
  Status CollectAutofs(const sys::MountInfo& m, uint32_t dev);

  const FrozenTree& tree_;
  CollectOptions options_;
  DumpedImages out_;
  std::vector<Task> tasks_;
  std::map<pid_t, size_t> by_outer_;

  // Namespaces, by inode.
  ino_t own_pid_ns_ = 0, own_mnt_ns_ = 0, tree_pid_ns_ = 0, tree_mnt_ns_ = 0;
  ino_t own_uts_ns_ = 0, tree_uts_ns_ = 0;  // a tree of its own UTS namespace gets utsns-<id>.img
  ino_t own_ipc_ns_ = 0, tree_ipc_ns_ = 0;  // and of its own IPC namespace ipcns-var-<id>.img
  std::string root_who_;  // "task 1 (pid N here)": the root task as refusals of its namespaces name it
  ino_t own_net_ns_ = 0, tree_net_ns_ = 0;  // and of its own network namespace netns-, netdev-, ifaddr-<id>.img
  dev_t tree_mqueue_dev_ = 0;               // the mqueue superblock of the tree's own IPC namespace
  std::set<uint64_t> sysv_shm_ids_;         // its System V segments, whose pages go in pagemap-shmem-<id>.img
  std::map<uint64_t, uint64_t> sysv_nattch_;  // segment id -> its shm_nattch (one per VMA that maps it, ipc/shm.c)
  std::map<uint64_t, uint64_t> sysv_vmas_;    // segment id -> the tree's VMAs that map it
  size_t pid_levels_ = 0;  // NSpid entries of the tree's tasks
  bool new_pid_ = false, new_mnt_ = false;
  // Sessions and groups led from outside the tree (--shell-job): written as 0.
  std::set<pid_t> outside_sids_, outside_pgids_;
  UniqueFd ns_root_;  // the root of the tree's mount namespace, once CheckReachable needs it
  std::map<uint32_t, bool> ns_mounts_;  // the mounts of the tree's mount namespace (id -> read-only), once CheckReachable needs them
  std::optional<std::set<uint32_t>> own_devices_;  // of restore-orch's own namespace's superblocks, once needed
  std::set<uint32_t> foreign_mounts_warned_;  // mounts of other namespaces files are open through, said once each
  std::set<std::tuple<std::string, dev_t, uint64_t, uint64_t>> reachable_;  // (path, dev, ino, mount) checked by CheckReachable

  // Files.
  uint32_t next_id_ = 1;
  std::map<std::pair<dev_t, ino_t>, std::vector<Description>> descriptions_;
  std::set<std::pair<bool, uint32_t>> data_done_;  // (fifo, pipe id) whose contents are read
  std::set<uint32_t> owned_pipes_;                   // pipe ids whose owner is written
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

  // Memory.
  std::map<std::tuple<dev_t, ino_t, uint32_t>, uint32_t> mapped_files_;  // (dev, ino, O_* mode) -> files.img id
  struct Shmem {
    UniqueFd fd;          // the shmem object, through a task's map_files
    uint64_t extent = 0;  // bytes mapped by some task
  };
  std::map<uint64_t, Shmem> shmem_;  // shared anonymous memory by inode
  uint32_t next_pages_id_ = 1;
  sys::Mapping page_buffer_;          // pages read, a few MiB, reused
  std::vector<uint64_t> pagemap_buffer_;
  std::optional<uint64_t> zero_pfn_;
  std::optional<dev_t> anon_shared_dev_;

  // restore-orch's own namespaces, by name ("net"): 0 when the kernel has none.
  std::map<std::string, ino_t> own_ns_;
};

std::string Str(long long v);

// The integer value of superblock option `key` of a mount, or nullopt.
std::optional<long long> IntOption(const sys::MountInfo& m, const char* key);

}  // namespace ro::dump
