// The image kinds restore-orch reads and writes, with CRIU's magics and file
// names, so that a directory written by one tool is read by the other.
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
  kListWithPayload,  // each entry followed by `bytes` raw bytes (pipes-data)
  kRaw,              // no magic, no entries: the file is one payload (tmpfs tarballs)
};

struct Kind {
  std::string_view name;  // crit's magic name: "PSTREE"
  uint32_t magic;
  bool head_magic;        // false only for inventory.img
  Layout layout;
  std::string_view stem;  // "pstree" -> pstree.img; "core-" -> core-<key>.img
  bool keyed;
  const google::protobuf::Descriptor* (*descriptor)();
  bool ours;              // restore-orch's own kind, unknown to CRIU
  std::string_view suffix = ".img";
};

// Every kind, supported or merely known by magic.
const std::vector<Kind>& AllKinds();
const Kind* KindByName(std::string_view name);
const Kind* KindByMagic(uint32_t magic);

// The well-known kinds, for code that reads a specific one.
const Kind& InventoryKind();
const Kind& PstreeKind();
const Kind& CoreKind();
const Kind& IdsKind();
const Kind& MountpointsKind();
const Kind& AutofsKind();
const Kind& FdinfoKind();
const Kind& FilesKind();
const Kind& PipesDataKind();
const Kind& FifoDataKind();
const Kind& SeccompKind();
const Kind& FsKind();
const Kind& ResumeKind();
const Kind& TmpfsKind();

struct FileName {
  const Kind* kind;
  std::optional<uint32_t> key;  // the decimal key of keyed kinds
};

// Recognises "core-42.img", "pstree.img"...; nullopt for any other name.
std::optional<FileName> ParseFileName(std::string_view name);
std::string MakeFileName(const Kind& kind, std::optional<uint32_t> key = std::nullopt);

}  // namespace ro::images
