// RestorePlan: the validated, deterministic description of a restore, built
// from an image directory by pure code. Every check of the input happens
// while it is built; the execution layer only walks it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "images/filesystems.h"
#include "images/image_dir.h"
#include "images/plan_attrs.h"
#include "images/plan_mm.h"
#include "sys/netlink.h"
#include "sys/status.h"

namespace ro::images {

enum class TaskKind {
  kAlive,   // restored and resumed
  kZombie,  // comes back as a zombie with its exit status
  kHelper,  // temporary: holds a dead leader's pid to create its session/group, then exits
};

// How a task hands over once the restore is done (its resume kind); the worker dispatches on
// it with one switch.
enum class ResumeMode {
  kExec,      // execs the program of its resume-<pid>.img
  kHold,      // holds its kernel objects until it is killed (no resume image)
  kZombie,    // exits with its dumped wait status and stays unreaped
  kContinue,  // returns into its dumped registers and memory (its `cont`)
};

enum class FileKind { kRegular, kPipe, kFifo };

struct FilePlan {
  uint32_t id = 0;
  FileKind kind = FileKind::kRegular;
  uint32_t flags = 0;  // O_* flags of the open file description
  uint64_t pos = 0;    // regular files
  std::optional<uint64_t> size;  // regular files: the size the file had (checked when it is mapped)
  std::optional<uint32_t> mode;  // regular files: st_mode as dumped (its type is checked before it is opened)
  std::string build_id;          // regular files: the ELF build-id as dumped (CRIU's words' bytes, at most 64; checked when it is mapped)
  std::string path;    // regular files and FIFOs
  uint32_t pipe_id = 0;  // pipes and FIFOs
  int64_t mnt_id = -1;   // regular files and FIFOs: the mount it was open through at dump (mountinfo's id), -1 unknown
  // Regular files: the root of this AutoFS mount of the images (its
  // master's ioctl fd), opened through /dev/autofs: a mount triggered on it
  // covers it, so its path leads elsewhere. 0: opened by its path.
  uint32_t autofs_mnt_id = 0;

  // Every open file description is made once, by `creator` (the nearest
  // common ancestor, in the fork tree, of the tasks holding it) before it
  // forks, and inherited by the holders. Until it is placed it is parked at
  // the service fd `slot` above every fd number the images use.
  pid_t creator = 0;
  uint32_t slot = 0;
  pid_t first_holder = 0;  // for messages: a task and fd that hold it
  int first_fd = 0;
};

struct FdPlan {
  int fd = 0;
  uint32_t file_id = 0;
  bool cloexec = false;
};

struct PipeDataPlan {
  uint32_t pipe_id = 0;
  uint32_t capacity = 0;  // 0: leave the kernel's default
  std::string data;
  bool fifo = false;
};

struct ResumePlan {
  std::string exe;
  std::vector<std::string> argv;
  std::vector<std::string> env;
  std::string cwd;
};

struct SeccompFilterPlan {
  std::string program;  // struct sock_filter array
  uint32_t flags = 0;
};

struct TaskPlan {
  pid_t pid = 0;
  pid_t ppid = 0;  // 0 for the root task
  pid_t pgid = 0;  // 0: stays in the group it is born in (restore-orch's: outside the tree, --shell-job)
  pid_t sid = 0;   // 0: stays in the session it is born in (restore-orch's: outside the tree, --shell-job)
  TaskKind kind = TaskKind::kAlive;
  std::vector<pid_t> threads;  // its threads' ids in its PID namespace, the task's own first
  ResumeMode resume_mode = ResumeMode::kHold;  // helpers exit before the resume stage
  uint32_t exit_status = 0;  // wait status, zombies only
  std::string comm;
  // How the task comes to be. A task is forked by `fork_parent` (its
  // parent in the image, or a helper that exits afterwards so that the task
  // is inherited by the root task, as it was at dump). `children` are the
  // tasks it forks itself, in order; those marked `before_parent_setsid` are
  // forked before the parent's setsid(), so they keep the session it had.
  pid_t fork_parent = 0;
  std::vector<pid_t> children;
  bool before_parent_setsid = false;
  bool setsid = false;       // pid == sid: calls setsid()
  bool leads_group = false;  // pid == pgid: its group exists once it has run
  std::vector<FdPlan> fds;      // sorted by fd number
  std::string cwd;   // paths in the tree's mount namespace
  std::string root;
  int64_t cwd_mnt_id = -1, root_mnt_id = -1;  // the mounts they were on at dump, -1 unknown
  std::optional<ResumePlan> resume;  // kExec only
  std::shared_ptr<const ContinuePlan> cont;  // kContinue only
  std::vector<uint32_t> makes_shmem;  // shared anonymous objects (RestorePlan::shmem) it makes before forking
  std::vector<SeccompFilterPlan> seccomp;  // in install order
  AttrsPlan attrs;                         // live tasks: limits, scheduling, parent-death signal, umask...
  // Open file descriptions this task makes before forking (file ids; the
  // descriptions of one pipe or FIFO are consecutive), and the parked ones
  // it inherits and must keep because a task of its subtree holds them.
  std::vector<uint32_t> creates;
  std::vector<uint32_t> keeps;
  std::string helper_reason;               // helpers only
};

enum class MountSource {
  kNew,       // a new superblock (fsopen/fsmount)
  kBind,      // a bind of another mount of the same superblock
  kExternal,  // a bind from the caller's namespace
};

// Where an external mount is bound from: only ever what the caller named.
enum class ExternalSource {
  kRootDir,  // --root DIR: the tree's root mount
  kGiven,    // --external KEY=PATH
  kAuto,     // --ext-mount-map auto: the caller's mount of the same device holding the same root
};

struct AutofsPlan {
  uint32_t mnt_id = 0;
  std::string path;  // inside the restored mount namespace
  uint32_t dev = 0;  // superblock device at dump (for naming only)
  bool catatonic = false;
  pid_t master = 0;           // task whose pgrp owns the mount
  int pipe_fd = -1;           // master's fd of the kernel's write end
  bool write_end_closed = false;  // the master held only its read end, at pipe_fd
  int write_fd = -1;              // write_end_closed: the fd= number the mount had, where the temporary write end goes
  int timeout = 0;
  int minproto = 0;
  int maxproto = 0;
  int mode = 0;  // 0 direct, 1 indirect, 2 offset
  std::optional<int> uid;
  std::optional<int> gid;
};

// The flag that names the source of the external mount with this key:
// "--external KEY=PATH", or CRIU's "--external mnt[KEY]:PATH" when the key
// holds a '=' (KEY=PATH splits at the first one).
std::string ExternalFlag(const std::string& ext_key);

struct MountPlan {
  uint32_t mnt_id = 0;
  uint32_t parent_id = 0;  // 0 for the namespace's root mount
  std::string fstype;      // "tmpfs", "autofs", or the fsname of an external mount
  uint32_t fstype_code = 0;
  std::string mountpoint;  // absolute, normalised
  std::string root;        // root of the mount inside its filesystem
  std::string source;
  std::string options;
  uint32_t flags = 0;
  uint32_t sb_flags = 0;
  uint32_t root_dev = 0;
  uint32_t shared_id = 0;
  uint32_t master_id = 0;
  MountSource how = MountSource::kNew;
  uint32_t bind_of = 0;  // kBind: the mount it is cloned from
  std::string ext_key;   // kExternal: the key for --external (the mountpoint when the image has none)
  ExternalSource external = ExternalSource::kAuto;  // kExternal: where it is bound from
  std::optional<PayloadRef> contents;  // kNew tmpfs: gzipped tar of its files (tmpfs-dev-<dev>.tar.gz.img)
};

struct SharingStep {
  enum class Op {
    kMakeShared,      // mnt becomes the first member of a new peer group
    kJoinGroup,       // move_mount(peer -> mnt, MOVE_MOUNT_SET_GROUP)
    kSlaveOf,         // join peer's group, then MS_SLAVE: mnt receives from it
    // The master group lives outside the images (its id in `group`). With
    // --enable-external-masters, `peer` is the external mount (mnt or the
    // one its binds lead to) whose source in the caller's tree is joined
    // (MOVE_MOUNT_SET_GROUP from the caller's mount holding it), then
    // MS_SLAVE; 0: restored private, with a warning.
    kSlaveOfExternal,
  };
  Op op;
  uint32_t mnt = 0;
  uint32_t peer = 0;
  uint32_t group = 0;
};

// A UTS namespace of the tree's own (utsns-<id>.img): the root task is
// cloned into a new one and sets its names first.
struct UtsPlan {
  uint32_t ns_id = 0;
  std::string nodename;    // at most 64 bytes (__NEW_UTS_LEN), no NUL
  std::string domainname;  // likewise
};

// struct ipc_perm of a System V object to make (ipc-desc.proto).
struct SysvPermPlan {
  int32_t id = 0;
  uint32_t key = 0, uid = 0, gid = 0, cuid = 0, cgid = 0;
  uint32_t mode = 0;  // permission bits (0777)
};

// A shared memory segment: its contents are inline (ipcns-shm's payload)
// or runs of a pages image (in_pagemaps: pagemap-shmem-<segment id>.img,
// vaddr = offset in the segment); what is in neither reads zero.
struct SysvShmPlan {
  SysvPermPlan perm;
  uint64_t size = 0;  // bytes
  bool locked = false;  // SHM_LOCKED
  std::string contents;
  std::string pages_file;
  std::vector<PagesRun> runs;
};

struct SysvMessagePlan {
  uint64_t mtype = 0;  // > 0
  std::string text;
};

struct SysvMsgQueuePlan {
  SysvPermPlan perm;
  uint64_t qbytes = 0;
  std::vector<SysvMessagePlan> messages;  // oldest first
};

struct SysvSemPlan {
  SysvPermPlan perm;
  std::vector<uint16_t> values;
};

struct PosixMqMessagePlan {
  uint32_t prio = 0;  // below MQ_PRIO_MAX
  std::string data;   // at most the queue's msgsize bytes
};

// A POSIX message queue (posix-mqueues-<id>.img, restore-orch's own).
struct PosixMqueuePlan {
  std::string name;  // without mq_open's '/': 1..255 bytes, no '/', not "." or ".."
  uint32_t uid = 0, gid = 0;
  uint32_t mode = 0;  // 07777 bits
  uint64_t maxmsg = 0;   // 1..65536
  uint64_t msgsize = 0;  // bytes, 1..16 MiB
  std::vector<PosixMqMessagePlan> messages;  // in mq_receive's order, at most maxmsg
};

// An IPC namespace of the tree's own (ipcns-var-<id>.img): the root task
// is cloned into a new one, writes `creation` (limits its objects fit
// in), makes its System V objects (ipcns-shm-, ipcns-msg-,
// ipcns-sem-<id>.img) with their ids and its POSIX message queues
// (posix-mqueues-<id>.img), then writes its sysctls (under
// /proc/sys, in order: "kernel/sem" -> "250 32000 32 128") and last
// next_ids (kernel/*_next_id, which making an object resets).
struct IpcPlan {
  uint32_t ns_id = 0;
  std::vector<std::pair<std::string, std::string>> creation;
  std::vector<std::pair<std::string, std::string>> sysctls;
  std::vector<std::pair<std::string, std::string>> next_ids;
  std::vector<SysvShmPlan> shm;
  std::vector<SysvMsgQueuePlan> msg;
  std::vector<SysvSemPlan> sem;
  std::vector<PosixMqueuePlan> mqueues;  // by name
};

// A network namespace of the tree's own (netns-, netdev-, ifaddr-<id>.img,
// CRIU's layout): the root task is cloned into a new one, writes
// `sysctls` (those that differ from the new namespace's, in order: all,
// default, then the loopback's), sets the loopback's flags and MTU, then
// makes its addresses exactly `addresses`. A namespace with other links,
// routes, rules or firewall tables than a new one has is refused at plan.
struct NetPlan {
  uint32_t ns_id = 0;
  std::vector<std::pair<std::string, std::string>> sysctls;  // path under /proc/sys ("net/ipv4/conf/all/forwarding") -> text
  uint32_t lo_flags = 0;  // IFF_*: only sys::kSettableLinkFlags are set
  uint32_t lo_mtu = 0;    // bytes
  std::vector<sys::NetAddress> addresses;  // the loopback's (ifindex 1)
};

struct NamespacePlan {
  bool new_pid = true;
  bool new_mnt = true;
  uint32_t mnt_ns_id = 0;
  std::optional<UtsPlan> uts;  // none: the tree shares the caller's UTS namespace
  std::optional<IpcPlan> ipc;  // none: the tree shares the caller's IPC namespace
  std::optional<NetPlan> net;  // none: the tree shares the caller's network namespace
};

// What pipe(2) gives a pipe's inode: owned by the maker's fsuid and fsgid,
// mode 0600 (get_pipe_inode, fs/pipe.c).
inline constexpr uint32_t kPipeMode = 0600;
struct PipeOwner {
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t mode = kPipeMode;  // permission bits, at most 07777
  bool operator==(const PipeOwner&) const = default;
};

struct RestorePlan {
  std::string image_dir;
  ZonePlan zone;  // the arena at zone.start (MAP_FIXED_NOREPLACE), and what continuing tasks keep there
  std::vector<ShmemPlan> shmem;
  NamespacePlan ns;
  std::vector<TaskPlan> tasks;  // fork order: parents before children
  std::map<uint32_t, FilePlan> files;
  std::vector<PipeDataPlan> pipe_data;
  std::vector<MountPlan> mounts;  // creation order: new superblocks, then binds
  std::vector<uint32_t> placement;  // mnt ids, parents before children
  std::vector<SharingStep> sharing;
  std::vector<AutofsPlan> autofs;
  std::vector<std::string> unsupported_files;
  std::vector<std::string> warnings;  // accepted problems, one line each
  std::map<pid_t, int> index;  // pid -> position in tasks
  int max_fd = -1;             // the highest fd number any task restores
  size_t helpers = 0;          // helper tasks among `tasks`
  uint32_t parked_slots = 0;   // parking slots needed at most in one task
  std::map<std::pair<bool, uint32_t>, size_t> pipe_data_index;  // (fifo, pipe_id) -> pipe_data
  // pipe_id -> owner and mode of a pipe root does not own or whose mode is
  // not 0600 (pipe-owners.img); the task that makes it gives them back with
  // fchown(2) and fchmod(2). `pipe_owners_known`: the images hold the file,
  // so a pipe it names no entry for was root's, 0600 (verify compares it).
  std::map<uint32_t, PipeOwner> pipe_owners;
  bool pipe_owners_known = false;

  const TaskPlan* FindTask(pid_t pid) const;
  // Index of the task in `tasks`, or -1.
  int IndexOf(pid_t pid) const;
  const MountPlan* FindMount(uint32_t mnt_id) const;
  // Whether `m` was a slave of a peer group no mount of the plan belongs to
  // (a group outside the images: the caller's, or another host's).
  bool MasterOutside(const MountPlan& m) const;
  size_t CountFds() const;
  const PipeDataPlan* PipeData(bool fifo, uint32_t pipe_id) const;
  // Index of the mount in `mounts`, or -1.
  int MountIndex(uint32_t mnt_id) const;
};

struct PlanOptions {
  bool ignore_unsupported = false;
  bool autofs_orphans_catatonic = false;  // else an AutoFS mount without its master fails the plan
  // External mounts come only from what the caller names; one it names no
  // source for fails the plan with the flag that would map it.
  bool root_given = false;                // --root DIR
  std::set<std::string> external_keys;    // the KEYs of --external KEY=PATH
  bool ext_mount_map_auto = false;        // --ext-mount-map auto
  bool externals_named_later = false;     // the dump's check: the caller names them at restore (kAuto)
  // --enable-external-masters (CRIU's): a mount that was a slave of a peer
  // group outside the images comes back a slave of the group of the
  // caller's mount it is bound from; without it, private with a warning.
  bool external_masters = false;
  // --shell-job: tasks in a session outside the tree (sid 0, or in a CRIU
  // dump the root's session when it does not lead it) stay in restore-orch's
  // session and group (sid/pgid 0 in the plan); without it they fail the plan.
  bool shell_job = false;
  // What restore-orch here can give a task (its own limits, capabilities,
  // login uid...): values beyond it are problems. Unset: only the images
  // are checked (verify, which restores nothing).
  std::optional<HostAttrs> host;
};

// Each problem is one line: "file: entry N: what is wrong".
struct PlanOutcome {
  std::optional<RestorePlan> plan;
  std::vector<Error> errors;
};

// Builds the plan: images/plan/build.cc runs the per-concern planners of
// images/plan/ in order. Every problem found is in `errors`, one each.
PlanOutcome BuildPlan(const ImageDir& dir, const PlanOptions& options);

// Human-readable, one section per concern (what --dry-run prints after the
// stage list).
std::string FormatPlan(const RestorePlan& plan);

}  // namespace ro::images
