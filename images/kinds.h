// The image kinds restore-orch knows, with CRIU's magics and file names, so
// that a directory written by one tool is read by the other. Every kind
// upstream CRIU writes for a process tree without sockets is listed, and
// each says whether restore-orch restores it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace google::protobuf {
class Descriptor;
}

namespace ro::images {

inline constexpr uint32_t kCommonHeadMagic = 0x54564319;
inline constexpr uint32_t kServiceHeadMagic = 0x55105940;

enum class Layout {
  kSingle,           // exactly one entry (core, ids, fs, autofs, inventory, seccomp)
  kList,             // any number of entries
  kListWithPayload,  // each entry followed by raw bytes, as the kind's Payload says
  kRaw,              // no magic, no entries: the file is one payload (pages, tmpfs tarballs)
};

// How many raw bytes follow an entry of a kListWithPayload kind
// (images/payloads.h reads and checks them).
enum class Payload {
  kBytesField,  // the entry's `bytes` (pipes-data, fifo-data)
  kShm,         // round_up(size, 4) bytes of a segment's contents, none when in_pagemaps (ipcns-shm)
  kMsgQueue,    // qnum messages, each an ipc_msg entry and round_up(msize, 8) bytes (ipcns-msg)
  kSemValues,   // nsems u16 values, padded to 8 bytes (ipcns-sem)
};

struct Kind {
  std::string_view name;  // unique; crit's magic name unless json_name says otherwise
  uint32_t magic;         // the type magic (0 for raw kinds)
  uint32_t head_magic;    // kCommonHeadMagic, kServiceHeadMagic, or 0 (inventory, raw kinds)
  Layout layout;
  std::string_view stem;  // "pstree" -> pstree.img; "core-" -> core-<key>.img
  bool keyed;
  const google::protobuf::Descriptor* (*descriptor)();  // entries' type; null for raw kinds
  bool restored;          // restore-orch restores it; other kinds are listed as unsupported
  bool ours = false;      // restore-orch's own kind, unknown to CRIU
  std::string_view suffix = ".img";
  // The first entry's type when it differs from the others' (pagemap_head).
  const google::protobuf::Descriptor* (*head_descriptor)() = nullptr;
  std::string_view json_name = {};  // crit's magic name when `name` is not it
  bool wide_key = false;            // keys are 64-bit (CRIU formats them with %lu)
  Payload payload = Payload::kBytesField;  // kListWithPayload kinds only

  // The name JSON carries in "magic": crit's.
  std::string_view JsonName() const { return json_name.empty() ? name : json_name; }
  // The type of entry `index` (null for raw kinds).
  const google::protobuf::Descriptor* EntryDescriptor(size_t index) const;
};

// Every kind, restored or merely known.
const std::vector<Kind>& AllKinds();
// By `name`, else by crit's magic name (the first kind carrying it); null if none.
const Kind* KindByName(std::string_view name);
// The first non-raw kind with this type magic; null if none.
const Kind* KindByMagic(uint32_t magic);

// The well-known kinds, for code that reads a specific one.
const Kind& InventoryKind();
const Kind& PstreeKind();
const Kind& CoreKind();
const Kind& IdsKind();
const Kind& MountpointsKind();
const Kind& AutofsKind();
const Kind& UtsnsKind();
const Kind& IpcVarKind();
// A network namespace's netns-<id>.img, netdev-<id>.img, ifaddr-<id>.img;
// the other raw kinds of one (ROUTE, ROUTE6, RULE, IPTABLES, IP6TABLES,
// NFTABLES) are found with KindByName.
const Kind& NetnsKind();
const Kind& NetdevKind();
const Kind& IfaddrKind();
// The magics iproute2 writes first: `ip addr save` (ipadd_dump_magic,
// ip/ipaddress.c) and `ip route save` / `ip rule save` (route_dump_magic).
inline constexpr uint32_t kIpAddrSaveMagic = 0x47361222;
inline constexpr uint32_t kIpRouteSaveMagic = 0x45311224;
// pipe-owners.img (restore-orch's own): who owns each pipe root does not.
const Kind& PipeOwnersKind();
const Kind& PosixMqueuesKind();
const Kind& IpcShmKind();
const Kind& IpcMsgKind();
const Kind& IpcSemKind();
const Kind& FdinfoKind();
const Kind& FilesKind();
const Kind& PipesDataKind();
const Kind& FifoDataKind();
const Kind& SeccompKind();
const Kind& FsKind();
const Kind& ResumeKind();
const Kind& AttrsKind();
const Kind& TmpfsKind();
const Kind& MmKind();
const Kind& PagemapKind();
const Kind& ShmemPagemapKind();
const Kind& PagesKind();
const Kind& MemfdInodeKind();

struct FileName {
  const Kind* kind;
  std::optional<uint64_t> key;  // the decimal key of keyed kinds
};

// Recognises "core-42.img", "pstree.img", "pagemap-shmem-7.img",
// "stats-dump"...; nullopt for any other name. A key must be decimal
// without leading zeros and fit 32 bits (64 for wide-key kinds).
std::optional<FileName> ParseFileName(std::string_view name);
std::string MakeFileName(const Kind& kind, std::optional<uint64_t> key = std::nullopt);

}  // namespace ro::images
