#include "images/kinds.h"

#include <charconv>

#include "images/proto/autofs.pb.h"
#include "images/proto/core.pb.h"
#include "images/proto/fdinfo.pb.h"
#include "images/proto/fs.pb.h"
#include "images/proto/inventory.pb.h"
#include "images/proto/mnt.pb.h"
#include "images/proto/pipe-data.pb.h"
#include "images/proto/pstree.pb.h"
#include "images/proto/resume.pb.h"
#include "images/proto/seccomp.pb.h"

namespace ro::images {
namespace {

template <class M>
const google::protobuf::Descriptor* Desc() {
  return M::descriptor();
}

// Magic values are CRIU's (criu/include/magic.h); RESUME is ours.
const std::vector<Kind>& Table() {
  static const std::vector<Kind> kinds = {
      {"INVENTORY", 0x58313116, false, Layout::kSingle, "inventory", false, Desc<img::inventory_entry>, false},
      {"PSTREE", 0x50273030, true, Layout::kList, "pstree", false, Desc<img::pstree_entry>, false},
      {"CORE", 0x55053847, true, Layout::kSingle, "core-", true, Desc<img::core_entry>, false},
      {"IDS", 0x54432030, true, Layout::kSingle, "ids-", true, Desc<img::task_kobj_ids_entry>, false},
      {"MNTS", 0x55563928, true, Layout::kList, "mountpoints-", true, Desc<img::mnt_entry>, false},
      {"AUTOFS", 0x49353943, true, Layout::kSingle, "autofs-", true, Desc<img::autofs_entry>, false},
      {"FDINFO", 0x56213732, true, Layout::kList, "fdinfo-", true, Desc<img::fdinfo_entry>, false},
      {"FILES", 0x56303138, true, Layout::kList, "files", false, Desc<img::file_entry>, false},
      {"PIPES_DATA", 0x56453709, true, Layout::kListWithPayload, "pipes-data", false, Desc<img::pipe_data_entry>, false},
      {"FIFO_DATA", 0x59333054, true, Layout::kListWithPayload, "fifo-data", false, Desc<img::pipe_data_entry>, false},
      {"SECCOMP", 0x64413049, true, Layout::kSingle, "seccomp", false, Desc<img::seccomp_entry>, false},
      {"FS", 0x51403912, true, Layout::kSingle, "fs-", true, Desc<img::fs_entry>, false},
      {"RESUME", 0x52534d31, true, Layout::kSingle, "resume-", true, Desc<img::resume_entry>, true},
      // CRIU's tmpfs contents: a gzipped tar of the superblock's files.
      {"TMPFS_DEV", 0, false, Layout::kRaw, "tmpfs-dev-", true, nullptr, false, ".tar.gz.img"},
  };
  return kinds;
}

const Kind& Named(std::string_view name) { return *KindByName(name); }

}  // namespace

const std::vector<Kind>& AllKinds() { return Table(); }

const Kind* KindByName(std::string_view name) {
  for (const Kind& k : Table()) {
    if (k.name == name) return &k;
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
const Kind& FdinfoKind() { return Named("FDINFO"); }
const Kind& FilesKind() { return Named("FILES"); }
const Kind& PipesDataKind() { return Named("PIPES_DATA"); }
const Kind& FifoDataKind() { return Named("FIFO_DATA"); }
const Kind& SeccompKind() { return Named("SECCOMP"); }
const Kind& FsKind() { return Named("FS"); }
const Kind& ResumeKind() { return Named("RESUME"); }
const Kind& TmpfsKind() { return Named("TMPFS_DEV"); }

std::optional<FileName> ParseFileName(std::string_view name) {
  for (const Kind& k : Table()) {
    if (name.size() <= k.suffix.size() || !name.ends_with(k.suffix)) continue;
    std::string_view base = name.substr(0, name.size() - k.suffix.size());
    if (!k.keyed) {
      if (base == k.stem) return FileName{&k, std::nullopt};
      continue;
    }
    if (!base.starts_with(k.stem)) continue;
    std::string_view digits = base.substr(k.stem.size());
    if (digits.empty() || digits.size() > 10) continue;
    if (digits.size() > 1 && digits[0] == '0') continue;  // one spelling per key
    uint32_t key = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), key);
    if (ec != std::errc() || end != digits.data() + digits.size()) continue;
    return FileName{&k, key};
  }
  return std::nullopt;
}

std::string MakeFileName(const Kind& kind, std::optional<uint32_t> key) {
  std::string name(kind.stem);
  if (kind.keyed && key) name += std::to_string(*key);
  return name + std::string(kind.suffix);
}

}  // namespace ro::images
