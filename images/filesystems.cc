#include "images/filesystems.h"

#include "images/proto/mnt.pb.h"

namespace ro::images {

const char* FstypeName(uint32_t code) {
  switch (code) {
    case img::PROC: return "proc";
    case img::SYSFS: return "sysfs";
    case img::DEVTMPFS: return "devtmpfs";
    case img::BINFMT_MISC: return "binfmt_misc";
    case img::TMPFS: return "tmpfs";
    case img::DEVPTS: return "devpts";
    case img::SIMFS: return "simfs";
    case img::PSTORE: return "pstore";
    case img::SECURITYFS: return "securityfs";
    case img::FUSECTL: return "fusectl";
    case img::DEBUGFS: return "debugfs";
    case img::CGROUP: return "cgroup";
    case img::AUFS: return "aufs";
    case img::MQUEUE: return "mqueue";
    case img::FUSE: return "fuse";
    case img::AUTO: return "auto";
    case img::OVERLAYFS: return "overlay";
    case img::AUTOFS: return "autofs";
    case img::TRACEFS: return "tracefs";
    case img::CGROUP2: return "cgroup2";
    default: return "unknown";
  }
}

uint32_t FstypeCode(std::string_view name) {
  for (uint32_t code = 1; code <= img::CGROUP2; ++code) {
    std::string_view known = FstypeName(code);
    if (known != "unknown" && name == known) return code;
  }
  return 0;
}

FsRestore RestoreOf(uint32_t code) {
  switch (code) {
    case img::AUTOFS: return FsRestore::kAutofs;
    case img::TMPFS: return FsRestore::kTmpfs;
    case img::PROC: case img::SYSFS: case img::DEVTMPFS: case img::BINFMT_MISC: case img::DEVPTS: case img::PSTORE:
    case img::SECURITYFS: case img::FUSECTL: case img::DEBUGFS: case img::CGROUP: case img::MQUEUE: case img::TRACEFS:
    case img::CGROUP2:
      return FsRestore::kKernel;
    default:
      return FsRestore::kExternal;
  }
}

bool CreatableFstype(uint32_t code) { return RestoreOf(code) != FsRestore::kExternal; }

std::optional<std::string> NormalizeAbsolutePath(std::string_view path) {
  if (path.empty() || path[0] != '/' || path.find('\0') != std::string_view::npos) return std::nullopt;
  std::string out;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view part = path.substr(i, j - i);
    i = j;
    if (part.empty() || part == ".") continue;
    if (part == "..") return std::nullopt;
    out += '/';
    out += part;
  }
  return out.empty() ? "/" : out;
}

std::optional<std::string> RemovedRoot(std::string_view root) {
  constexpr std::string_view kDeleted = "//deleted";
  if (root.size() <= kDeleted.size() || !root.ends_with(kDeleted)) return std::nullopt;
  return std::string(root.substr(0, root.size() - kDeleted.size()));
}

bool IsBelow(std::string_view path, std::string_view dir) {
  if (dir == "/") return true;
  return path == dir || (path.size() > dir.size() && path.substr(0, dir.size()) == dir && path[dir.size()] == '/');
}

std::string PathBelow(const std::string& path, const std::string& base) {
  if (base == "/") return path.substr(1);
  if (path == base) return "";
  return path.substr(base.size() + 1);
}

}  // namespace ro::images
