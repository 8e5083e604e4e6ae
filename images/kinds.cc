#include "images/kinds.h"

#include <charconv>

#include "images/proto/attrs.pb.h"
#include "images/proto/autofs.pb.h"
#include "images/proto/cgroup.pb.h"
#include "images/proto/core.pb.h"
#include "images/proto/creds.pb.h"
#include "images/proto/fdinfo.pb.h"
#include "images/proto/fs.pb.h"
#include "images/proto/inventory.pb.h"
#include "images/proto/ipc-msg.pb.h"
#include "images/proto/ipc-sem.pb.h"
#include "images/proto/ipc-shm.pb.h"
#include "images/proto/ipc-var.pb.h"
#include "images/proto/memfd.pb.h"
#include "images/proto/mm.pb.h"
#include "images/proto/mnt.pb.h"
#include "images/proto/netdev.pb.h"
#include "images/proto/owners.pb.h"
#include "images/proto/pagemap.pb.h"
#include "images/proto/pipe-data.pb.h"
#include "images/proto/posix-mqueue.pb.h"
#include "images/proto/pstree.pb.h"
#include "images/proto/resume.pb.h"
#include "images/proto/sa.pb.h"
#include "images/proto/seccomp.pb.h"
#include "images/proto/siginfo.pb.h"
#include "images/proto/stats.pb.h"
#include "images/proto/timens.pb.h"
#include "images/proto/timer.pb.h"
#include "images/proto/tty.pb.h"
#include "images/proto/utsns.pb.h"

namespace ro::images {
namespace {

template <class M>
const google::protobuf::Descriptor* Desc() {
  return M::descriptor();
}

constexpr uint32_t kCommon = kCommonHeadMagic;

// Magics and file names are CRIU's (criu/include/magic.h,
// criu/image-desc.c); RESUME and ATTRS are ours. The first fourteen keep their places:
// the fuzz corpus picks kinds by index.
const std::vector<Kind>& Table() {
  static const std::vector<Kind> kinds = {
      // Restored.
      {"INVENTORY", 0x58313116, 0, Layout::kSingle, "inventory", false, Desc<img::inventory_entry>, true},
      {"PSTREE", 0x50273030, kCommon, Layout::kList, "pstree", false, Desc<img::pstree_entry>, true},
      {"CORE", 0x55053847, kCommon, Layout::kSingle, "core-", true, Desc<img::core_entry>, true},
      {"IDS", 0x54432030, kCommon, Layout::kSingle, "ids-", true, Desc<img::task_kobj_ids_entry>, true},
      {"MNTS", 0x55563928, kCommon, Layout::kList, "mountpoints-", true, Desc<img::mnt_entry>, true},
      {"AUTOFS", 0x49353943, kCommon, Layout::kSingle, "autofs-", true, Desc<img::autofs_entry>, true},
      {"FDINFO", 0x56213732, kCommon, Layout::kList, "fdinfo-", true, Desc<img::fdinfo_entry>, true},
      {"FILES", 0x56303138, kCommon, Layout::kList, "files", false, Desc<img::file_entry>, true},
      {"PIPES_DATA", 0x56453709, kCommon, Layout::kListWithPayload, "pipes-data", false, Desc<img::pipe_data_entry>, true},
      {"FIFO_DATA", 0x59333054, kCommon, Layout::kListWithPayload, "fifo-data", false, Desc<img::pipe_data_entry>, true},
      {"SECCOMP", 0x64413049, kCommon, Layout::kSingle, "seccomp", false, Desc<img::seccomp_entry>, true},
      {"FS", 0x51403912, kCommon, Layout::kSingle, "fs-", true, Desc<img::fs_entry>, true},
      {"RESUME", 0x52534d31, kCommon, Layout::kSingle, "resume-", true, Desc<img::resume_entry>, true, true},
      // CRIU's tmpfs contents: a gzipped tar of the superblock's files.
      {"TMPFS_DEV", 0, 0, Layout::kRaw, "tmpfs-dev-", true, nullptr, true, false, ".tar.gz.img"},

      // Memory: a task with an mm image continues where it stopped.
      {"MM", 0x57492820, kCommon, Layout::kSingle, "mm-", true, Desc<img::mm_entry>, true},
      {.name = "PAGEMAP", .magic = 0x56084025, .head_magic = kCommon, .layout = Layout::kList, .stem = "pagemap-",
       .keyed = true, .descriptor = Desc<img::pagemap_entry>, .restored = true, .head_descriptor = Desc<img::pagemap_head>,
       .wide_key = true},
      // Shared memory's pagemap: PAGEMAP's magic (crit calls it PAGEMAP), keyed by shm id.
      {.name = "SHMEM_PAGEMAP", .magic = 0x56084025, .head_magic = kCommon, .layout = Layout::kList,
       .stem = "pagemap-shmem-", .keyed = true, .descriptor = Desc<img::pagemap_entry>, .restored = true,
       .head_descriptor = Desc<img::pagemap_head>, .json_name = "PAGEMAP", .wide_key = true},
      // Page contents, raw: no magic; crit cannot decode them. Read by reference.
      {"PAGES", 0, 0, Layout::kRaw, "pages-", true, nullptr, true},
      // CRIU 4's stand-in for shared anonymous memory (name /dev/zero).
      {"MEMFD_INODE", 0x48453499, kCommon, Layout::kList, "memfd", false, Desc<img::memfd_inode_entry>, true},

      // The clocks at dump time, in every CRIU dump; needed only by a time
      // namespace of the tree's own, which the tree planner refuses.
      {"TIMENS", 0x43114433, kCommon, Layout::kSingle, "timens-", true, Desc<img::timens_entry>, true},

      // A live thread's timer slack and TSC mode, which CRIU's core has no field for.
      {"ATTRS", 0x41545231, kCommon, Layout::kSingle, "attrs-", true, Desc<img::thread_attrs_entry>, true, true},

      // Known, not restored: listed as unsupported by the directory loader.
      {"TMPFS", 0, 0, Layout::kRaw, "tmpfs-", true, nullptr, false, false, ".tar.gz.img"},
      // (Restored, kept in their places for the fuzz corpus: the host and
      // domain name of a UTS namespace of the tree's own, the sysctls of an
      // IPC namespace of its own.)
      {"UTSNS", 0x54473203, kCommon, Layout::kSingle, "utsns-", true, Desc<img::utsns_entry>, true},
      {"IPC_VAR", 0x53115007, kCommon, Layout::kSingle, "ipcns-var-", true, Desc<img::ipc_var_entry>, true},  // restored too
      {"CGROUP", 0x59383330, kCommon, Layout::kSingle, "cgroup", false, Desc<img::cgroup_entry>, false},
      {"TTY_FILES", 0x59433025, kCommon, Layout::kList, "tty", false, Desc<img::tty_file_entry>, false},
      {"TTY_INFO", 0x59453036, kCommon, Layout::kList, "tty-info", false, Desc<img::tty_info_entry>, false},
      {"TTY_DATA", 0x59413026, kCommon, Layout::kList, "tty-data", false, Desc<img::tty_data_entry>, false},
      // Per-task state that older CRIU kept in files of its own (now in core).
      {"CREDS", 0x54023547, kCommon, Layout::kSingle, "creds-", true, Desc<img::creds_entry>, false},
      {"SIGACT", 0x55344201, kCommon, Layout::kList, "sigacts-", true, Desc<img::sa_entry>, false},
      {"ITIMERS", 0x57464056, kCommon, Layout::kList, "itimers-", true, Desc<img::itimer_entry>, false},
      {"POSIX_TIMERS", 0x52603957, kCommon, Layout::kList, "posix-timers-", true, Desc<img::posix_timer_entry>, false},
      {"RLIMIT", 0x57113925, kCommon, Layout::kList, "rlimit-", true, Desc<img::rlimit_entry>, false},
      {"SIGNAL", 0x59255647, kCommon, Layout::kList, "signal-s-", true, Desc<img::siginfo_entry>, false},
      {.name = "PSIGNAL", .magic = 0x59255647, .head_magic = kCommon, .layout = Layout::kList, .stem = "signal-p-",
       .keyed = true, .descriptor = Desc<img::siginfo_entry>, .restored = false, .json_name = "SIGNAL"},
      {"VMAS", 0x54123737, kCommon, Layout::kList, "vmas-", true, Desc<img::vma_entry>, false},
      // File objects that older CRIU kept in files of their own (now in files.img).
      {"REG_FILES", 0x50363636, kCommon, Layout::kList, "reg-files", false, Desc<img::reg_file_entry>, false},
      {"NS_FILES", 0x61394011, kCommon, Layout::kList, "ns-files", false, Desc<img::ns_file_entry>, false},
      {"PIPES", 0x56513555, kCommon, Layout::kList, "pipes", false, Desc<img::pipe_entry>, false},
      {"FIFO", 0x58364939, kCommon, Layout::kList, "fifo", false, Desc<img::fifo_entry>, false},
      // CRIU's statistics: service head magic, no ".img".
      {"STATS", 0x57093306, kServiceHeadMagic, Layout::kSingle, "stats-dump", false, Desc<img::stats_entry>, false,
       false, ""},
      {.name = "STATS_RESTORE", .magic = 0x57093306, .head_magic = kServiceHeadMagic, .layout = Layout::kSingle,
       .stem = "stats-restore", .keyed = false, .descriptor = Desc<img::stats_entry>, .restored = false, .suffix = "",
       .json_name = "STATS"},
      // The System V objects of an IPC namespace of the tree's own (restored;
      // appended here so that the kinds above keep their places).
      {.name = "IPCNS_SHM", .magic = 0x46283044, .head_magic = kCommon, .layout = Layout::kListWithPayload,
       .stem = "ipcns-shm-", .keyed = true, .descriptor = Desc<img::ipc_shm_entry>, .restored = true, .payload = Payload::kShm},
      {.name = "IPCNS_MSG", .magic = 0x55453737, .head_magic = kCommon, .layout = Layout::kListWithPayload,
       .stem = "ipcns-msg-", .keyed = true, .descriptor = Desc<img::ipc_msg_entry>, .restored = true, .payload = Payload::kMsgQueue},
      {.name = "IPCNS_SEM", .magic = 0x59573019, .head_magic = kCommon, .layout = Layout::kListWithPayload,
       .stem = "ipcns-sem-", .keyed = true, .descriptor = Desc<img::ipc_sem_entry>, .restored = true, .payload = Payload::kSemValues},
      // A network namespace of the tree's own: its sysctls, its links, and
      // what `ip addr save` (magic 0x47361222, then RTM_NEWADDR messages)
      // and `ip route save` / `ip rule save` (0x45311224) write; CRIU keeps
      // iptables-save's and nft's output beside them. Restored: the
      // loopback link; the rest is checked to hold only what a new
      // namespace has.
      {"NETNS", 0x55933752, kCommon, Layout::kSingle, "netns-", true, Desc<img::netns_entry>, true},
      {"NETDEV", 0x57373951, kCommon, Layout::kList, "netdev-", true, Desc<img::net_device_entry>, true},
      {"IFADDR", 0, 0, Layout::kRaw, "ifaddr-", true, nullptr, true},
      {"ROUTE", 0, 0, Layout::kRaw, "route-", true, nullptr, true},
      {"ROUTE6", 0, 0, Layout::kRaw, "route6-", true, nullptr, true},
      {"RULE", 0, 0, Layout::kRaw, "rule-", true, nullptr, true},
      {"IPTABLES", 0, 0, Layout::kRaw, "iptables-", true, nullptr, true},
      {"IP6TABLES", 0, 0, Layout::kRaw, "ip6tables-", true, nullptr, true},
      {"NFTABLES", 0, 0, Layout::kRaw, "nftables-", true, nullptr, true},
      // The owner of each pipe that root does not own (restore-orch's own).
      {"PIPE_OWNERS", 0x4f574e31, kCommon, Layout::kList, "pipe-owners", false, Desc<img::pipe_owner_entry>, true, true},
      // The POSIX message queues of an IPC namespace of the tree's own (restore-orch's own).
      {"POSIX_MQUEUES", 0x504d5131, kCommon, Layout::kList, "posix-mqueues-", true, Desc<img::posix_mqueue_entry>, true, true},
  };
  return kinds;
}

const Kind& Named(std::string_view name) { return *KindByName(name); }

// The decimal key after a stem: no sign, no leading zero, within 32 bits
// (or 64 for wide-key kinds).
std::optional<uint64_t> ParseKey(std::string_view digits, bool wide) {
  if (digits.empty() || digits.size() > (wide ? 20u : 10u)) return std::nullopt;
  if (digits.size() > 1 && digits[0] == '0') return std::nullopt;  // one spelling per key
  uint64_t key = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), key);
  if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  if (!wide && key > UINT32_MAX) return std::nullopt;
  return key;
}

}  // namespace

const google::protobuf::Descriptor* Kind::EntryDescriptor(size_t index) const {
  if (index == 0 && head_descriptor != nullptr) return head_descriptor();
  return descriptor == nullptr ? nullptr : descriptor();
}

const std::vector<Kind>& AllKinds() { return Table(); }

const Kind* KindByName(std::string_view name) {
  for (const Kind& k : Table()) {
    if (k.name == name) return &k;
  }
  for (const Kind& k : Table()) {
    if (k.JsonName() == name) return &k;
  }
  return nullptr;
}

const Kind* KindByMagic(uint32_t magic) {
  for (const Kind& k : Table()) {
    if (k.layout != Layout::kRaw && k.magic == magic) return &k;
  }
  return nullptr;
}

const Kind& InventoryKind() { return Named("INVENTORY"); }
const Kind& PstreeKind() { return Named("PSTREE"); }
const Kind& CoreKind() { return Named("CORE"); }
const Kind& IdsKind() { return Named("IDS"); }
const Kind& MountpointsKind() { return Named("MNTS"); }
const Kind& AutofsKind() { return Named("AUTOFS"); }
const Kind& UtsnsKind() { return Named("UTSNS"); }
const Kind& IpcVarKind() { return Named("IPC_VAR"); }
const Kind& NetnsKind() { return Named("NETNS"); }
const Kind& NetdevKind() { return Named("NETDEV"); }
const Kind& IfaddrKind() { return Named("IFADDR"); }
const Kind& PipeOwnersKind() { return Named("PIPE_OWNERS"); }
const Kind& PosixMqueuesKind() { return Named("POSIX_MQUEUES"); }
const Kind& IpcShmKind() { return Named("IPCNS_SHM"); }
const Kind& IpcMsgKind() { return Named("IPCNS_MSG"); }
const Kind& IpcSemKind() { return Named("IPCNS_SEM"); }
const Kind& FdinfoKind() { return Named("FDINFO"); }
const Kind& FilesKind() { return Named("FILES"); }
const Kind& PipesDataKind() { return Named("PIPES_DATA"); }
const Kind& FifoDataKind() { return Named("FIFO_DATA"); }
const Kind& SeccompKind() { return Named("SECCOMP"); }
const Kind& FsKind() { return Named("FS"); }
const Kind& ResumeKind() { return Named("RESUME"); }
const Kind& AttrsKind() { return Named("ATTRS"); }
const Kind& TmpfsKind() { return Named("TMPFS_DEV"); }
const Kind& MmKind() { return Named("MM"); }
const Kind& PagemapKind() { return Named("PAGEMAP"); }
const Kind& ShmemPagemapKind() { return Named("SHMEM_PAGEMAP"); }
const Kind& PagesKind() { return Named("PAGES"); }
const Kind& MemfdInodeKind() { return Named("MEMFD_INODE"); }

std::optional<FileName> ParseFileName(std::string_view name) {
  // Stems overlap ("pagemap-" and "pagemap-shmem-", "tmpfs-" and
  // "tmpfs-dev-"), but a key is digits only, so at most one kind matches.
  for (const Kind& k : Table()) {
    if (name.size() <= k.suffix.size() || !name.ends_with(k.suffix)) continue;
    std::string_view base = name.substr(0, name.size() - k.suffix.size());
    if (!k.keyed) {
      if (base == k.stem) return FileName{&k, std::nullopt};
      continue;
    }
    if (!base.starts_with(k.stem)) continue;
    if (std::optional<uint64_t> key = ParseKey(base.substr(k.stem.size()), k.wide_key)) return FileName{&k, key};
  }
  return std::nullopt;
}

std::string MakeFileName(const Kind& kind, std::optional<uint64_t> key) {
  std::string name(kind.stem);
  if (kind.keyed && key) name += std::to_string(*key);
  return name + std::string(kind.suffix);
}

}  // namespace ro::images
