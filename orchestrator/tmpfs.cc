#include "orchestrator/tmpfs.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>

#include "images/image_dir.h"
#include "orchestrator/libarchive.h"
#include "sys/files.h"

namespace ro {

namespace {

// The process's cwd, put back when this goes away.
class CwdGuard {
 public:
  CwdGuard() : saved_(::open(".", O_PATH | O_DIRECTORY | O_CLOEXEC)) {}
  ~CwdGuard() {
    if (saved_) (void)!::fchdir(saved_.get());
  }

 private:
  UniqueFd saved_;
};

constexpr uint64_t kPage = 4096;
// shmem_symlink() keeps a target of up to this many bytes (its NUL
// included) in the inode; a longer one takes a page of the tmpfs.
constexpr uint64_t kShortSymlink = 128;

std::string Bytes(uint64_t n) {
  if (n >= (1ull << 30) && n % (1ull << 30) == 0) return std::to_string(n >> 30) + " GiB";
  if (n >= (1ull << 20) && n % (1ull << 20) == 0) return std::to_string(n >> 20) + " MiB";
  return std::to_string(n) + " bytes";
}

// What the unpack has charged against its cap so far.
class Budget {
 public:
  Budget(const TmpfsCap& cap, const std::string& file) : cap_(cap), file_(file) {}
  // Charges `bytes` rounded up to pages for entry `name`.
  Status Charge(uint64_t bytes, const std::string& name) {
    uint64_t pages = bytes / kPage + (bytes % kPage != 0 ? 1 : 0);
    if (pages > (cap_.bytes - used_) / kPage) {
      return Fail(file_ + ": entry " + name + ": the unpacked contents would pass " + Bytes(cap_.bytes) + ", the cap from " +
                  cap_.from);
    }
    used_ += pages * kPage;
    return {};
  }

 private:
  const TmpfsCap& cap_;
  const std::string& file_;
  uint64_t used_ = 0;
};

// The value of the socket marker `e` carries, or nullopt; `others` counts
// its other extended attributes.
std::optional<std::string> SocketMarker(const LibArchive& lib, archive_entry* e, size_t& others) {
  std::optional<std::string> marker;
  others = 0;
  lib.xattr_reset(e);
  const char* name = nullptr;
  const void* value = nullptr;
  size_t size = 0;
  while (lib.xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
    if (name != nullptr && std::strcmp(name, kSocketMarkerXattr) == 0) marker = std::string(static_cast<const char*>(value), size);
    else ++others;
  }
  return marker;
}

// Makes the socket inode a marked entry `name` stands for below `root`.
Status UnpackSocket(const LibArchive& lib, const UniqueFd& root, archive_entry* e, const std::string& name, const std::string& file) {
  auto refuse = [&](const std::string& why) { return Fail(file + ": entry " + name + ": a socket " + why); };
  std::string path = name;
  while (path.rfind("./", 0) == 0) path.erase(0, 2);
  if (path.empty() || path.front() == '/' || path.back() == '/') return refuse("with no plain name");
  size_t slash = path.rfind('/');
  std::string parent = slash == std::string::npos ? "" : path.substr(0, slash);
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  if (base == "." || base == "..") return refuse("with no plain name");
  // The parent is reached beneath the mount without following symlinks;
  // ".." cannot climb out of it either.
  auto dir = sys::OpenDirBeneath(root.get(), parent);
  if (!dir.ok()) return refuse("cannot be made: " + dir.error().ToString());
  Status made = sys::MakeSocketInode(dir->get(), base, static_cast<mode_t>(lib.entry_mode(e) & 07777),
                                     static_cast<uid_t>(lib.entry_uid(e)), static_cast<gid_t>(lib.entry_gid(e)));
  if (!made.ok()) return refuse("cannot be made: " + made.error().ToString());
  timespec atime{0, UTIME_OMIT};
  if (lib.entry_atime_is_set(e)) atime = timespec{lib.entry_atime(e), lib.entry_atime_nsec(e)};
  return sys::SetTimes(dir->get(), base, atime, timespec{lib.entry_mtime(e), lib.entry_mtime_nsec(e)});
}

}  // namespace

std::optional<uint64_t> ParseTmpfsSize(const std::string& v, uint64_t ram) {  // tmpfs.h
  size_t i = 0;
  uint64_t n = 0;
  while (i < v.size() && v[i] >= '0' && v[i] <= '9') {
    if (n > (UINT64_MAX - 9) / 10) return std::nullopt;
    n = n * 10 + static_cast<uint64_t>(v[i++] - '0');
  }
  if (i == 0) return std::nullopt;
  std::string suffix = v.substr(i);
  if (suffix == "%") return n > 100 ? std::nullopt : std::optional<uint64_t>(ram / 100 * n);
  int shift = 0;
  if (suffix.empty()) shift = 0;
  else if (suffix == "k" || suffix == "K") shift = 10;
  else if (suffix == "m" || suffix == "M") shift = 20;
  else if (suffix == "g" || suffix == "G") shift = 30;
  else if (suffix == "t" || suffix == "T") shift = 40;
  else if (suffix == "p" || suffix == "P") shift = 50;
  else if (suffix == "e" || suffix == "E") shift = 60;
  else return std::nullopt;
  if (shift != 0 && n > (UINT64_MAX >> shift)) return std::nullopt;
  return n << shift;
}

namespace {

std::optional<std::string> OptionValue(const std::string& options, const std::string& key) {
  std::optional<std::string> found;
  size_t start = 0;
  while (start <= options.size()) {
    size_t comma = options.find(',', start);
    if (comma == std::string::npos) comma = options.size();
    std::string opt = options.substr(start, comma - start);
    if (opt.rfind(key + "=", 0) == 0) found = opt.substr(key.size() + 1);  // the last one wins, as in the kernel
    start = comma + 1;
  }
  return found;
}

}  // namespace

Result<TmpfsCap> TmpfsCapFor(const std::string& options, uint64_t limit, uint64_t ram_bytes) {
  if (limit != 0) return TmpfsCap{limit, "--tmpfs-limit"};
  std::optional<std::string> size = OptionValue(options, "size");
  if (!size) return TmpfsCap{kDefaultTmpfsCap, "the default for a tmpfs without size= (--tmpfs-limit sets another)"};
  std::optional<uint64_t> bytes = ParseTmpfsSize(*size, ram_bytes);
  if (!bytes) return Fail("tmpfs option size=" + *size + " is not a size");
  if (*bytes == 0) return TmpfsCap{kDefaultTmpfsCap, "the default for an unlimited tmpfs (--tmpfs-limit sets another)"};
  return TmpfsCap{*bytes, "size=" + *size + " of the tmpfs (--tmpfs-limit sets another)"};
}

std::string UnlimitedTmpfsOption(const std::string& options) {
  for (const char* key : {"size", "nr_blocks", "nr_inodes"}) {
    std::optional<std::string> v = OptionValue(options, key);
    if (v && ParseTmpfsSize(*v, 1) == std::optional<uint64_t>(0)) return std::string(key) + "=" + *v;
  }
  return "";
}

Status UnpackTmpfs(const UniqueFd& root, int images_fd, const images::PayloadRef& tar_gz, const TmpfsCap& cap) {
  RO_ASSIGN_OR_RETURN(UniqueFd file, images::OpenPayload(images_fd, tar_gz));
  RO_ASSIGN_OR_RETURN(std::unique_ptr<LibArchive> loaded, LibArchive::Load());
  const LibArchive& lib = *loaded;
  auto error = [&](archive* a, const std::string& what) {
    const char* msg = lib.error_string(a);
    return Fail(what + ": " + (msg != nullptr ? msg : "libarchive error"));
  };
  std::unique_ptr<archive, decltype(lib.read_free)> in(lib.read_new(), lib.read_free);
  std::unique_ptr<archive, decltype(lib.write_free)> out(lib.write_disk_new(), lib.write_free);
  if (!in || !out) return Fail("libarchive: out of memory");
  lib.support_gzip(in.get());
  lib.support_tar(in.get());
  // libarchive sets ACLs after times, and immutable and append-only flags
  // at write_close, once every entry is written (other flags at once).
  lib.set_options(out.get(), ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_XATTR |
                                 ARCHIVE_EXTRACT_ACL | ARCHIVE_EXTRACT_FFLAGS | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                 ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS);
  if (lib.open_fd(in.get(), file.get(), 64 * 1024) != ARCHIVE_OK) return error(in.get(), "tmpfs contents " + tar_gz.file);
  // libarchive writes relative to the cwd: the new mount's root for now.
  CwdGuard guard;
  if (::fchdir(root.get()) != 0) return SysError("chdir into the new tmpfs");
  Budget budget(cap, tar_gz.file);
  // libarchive sets the root's times as it meets it, before its files
  // change them: they are set again at the end.
  std::optional<std::pair<timespec, timespec>> root_times;
  int root_flags = 0;
  for (;;) {
    archive_entry* entry = nullptr;
    int r = lib.next_header(in.get(), &entry);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK) return error(in.get(), "tmpfs contents");
    const char* path = lib.pathname(entry);
    std::string name = path != nullptr ? path : "(no name)";
    // Charged before anything is written, in pages as tmpfs's size= counts
    // them: its logical size (a sparse file's whole size; a hard link's
    // data writes its target). Inodes are bounded by the tmpfs's nr_inodes.
    la_int64_t declared = lib.entry_size_is_set(entry) ? lib.entry_size(entry) : 0;
    uint64_t charged = declared > 0 ? static_cast<uint64_t>(declared) : 0;
    RO_TRY(budget.Charge(charged, name));
    // A long symlink's page, and extended attributes (kernel memory that
    // size= does not bound): charged too, or an archive of either would
    // unpack without bound.
    const char* target = lib.entry_symlink(entry);
    if (target != nullptr && std::strlen(target) + 1 > kShortSymlink) RO_TRY(budget.Charge(kPage, name));
    uint64_t xattr_bytes = 0;
    lib.xattr_reset(entry);
    const char* xattr_name = nullptr;
    const void* value = nullptr;
    size_t value_size = 0;
    while (lib.xattr_next(entry, &xattr_name, &value, &value_size) == ARCHIVE_OK) {
      xattr_bytes += (xattr_name != nullptr ? std::strlen(xattr_name) : 0) + value_size;
    }
    // An ACL is an extended attribute of 4 bytes and 8 an entry.
    for (int type : {ARCHIVE_ENTRY_ACL_TYPE_ACCESS, ARCHIVE_ENTRY_ACL_TYPE_DEFAULT}) {
      int n = lib.acl_count(entry, type);
      if (n > 0) xattr_bytes += sizeof("system.posix_acl_default") + 4 + 8 * static_cast<uint64_t>(n);
    }
    RO_TRY(budget.Charge(xattr_bytes, name));
    size_t other_xattrs = 0;
    if (std::optional<std::string> marker = SocketMarker(lib, entry, other_xattrs);
        marker && lib.entry_hardlink(entry) == nullptr) {
      auto refuse = [&](const std::string& why) { return Fail(tar_gz.file + ": entry " + name + ": " + why); };
      if (*marker != kSocketMarkerValue) return refuse(std::string(kSocketMarkerXattr) + " is not \"socket\"");
      if (lib.entry_filetype(entry) != AE_IFREG || charged != 0) return refuse("a socket marker on what is no empty file");
      if (other_xattrs != 0 || lib.acl_count(entry, ARCHIVE_ENTRY_ACL_TYPE_ACCESS | ARCHIVE_ENTRY_ACL_TYPE_DEFAULT) > 0) {
        return refuse("a socket with extended attributes or an ACL");
      }
      RO_TRY(UnpackSocket(lib, root, entry, name, tar_gz.file));
      continue;
    }
    if (name == "." || name == "./") {
      root_times = {timespec{UTIME_OMIT, UTIME_OMIT}, timespec{lib.entry_mtime(entry), lib.entry_mtime_nsec(entry)}};
      if (lib.entry_atime_is_set(entry)) root_times->first = timespec{lib.entry_atime(entry), lib.entry_atime_nsec(entry)};
      // The root's flags go last, after its times (an immutable root
      // would refuse them).
      unsigned long set = 0, clear = 0;
      lib.entry_fflags(entry, &set, &clear);
      root_flags = static_cast<int>(set);
      lib.entry_set_fflags(entry, 0, 0);
    }
    if (lib.write_header(out.get(), entry) != ARCHIVE_OK) return error(out.get(), "tmpfs entry " + name);
    const void* block = nullptr;
    size_t size = 0;
    la_int64_t offset = 0;
    while ((r = lib.read_block(in.get(), &block, &size, &offset)) == ARCHIVE_OK) {
      // Data beyond the declared size is charged before it is written.
      if (offset < 0) return Fail(tar_gz.file + ": entry " + name + ": data at a negative offset");
      uint64_t end = static_cast<uint64_t>(offset) + size;
      if (end > charged) {
        RO_TRY(budget.Charge(end - charged, name));
        charged = end;
      }
      if (lib.write_block(out.get(), block, size, offset) != ARCHIVE_OK) return error(out.get(), "tmpfs entry " + name);
    }
    if (r != ARCHIVE_EOF) return error(in.get(), "tmpfs entry " + name);
    if (lib.finish_entry(out.get()) != ARCHIVE_OK) return error(out.get(), "tmpfs entry " + name);
  }
  if (lib.write_close(out.get()) != ARCHIVE_OK) return error(out.get(), "tmpfs contents");
  if (root_times) RO_TRY(sys::SetTimes(root.get(), ".", root_times->first, root_times->second));
  if (root_flags != 0) {
    RO_ASSIGN_OR_RETURN(UniqueFd dir, sys::OpenAt(root.get(), ".", O_RDONLY | O_DIRECTORY, 0, "the new tmpfs's root"));
    RO_TRY(sys::SetInodeFlags(dir.get(), root_flags));
  }
  return {};
}

Status WalkDisk(const LibArchive& lib, const UniqueFd& dir, const std::function<Status(archive*, archive_entry*)>& each) {
  std::unique_ptr<archive, decltype(lib.read_free)> disk(lib.disk_new(), lib.read_free);
  std::unique_ptr<archive_entry, decltype(lib.entry_free)> entry(lib.entry_new(), lib.entry_free);
  if (!disk || !entry) return Fail("libarchive: out of memory");
  auto error = [&](const std::string& what) {
    const char* msg = lib.error_string(disk.get());
    return Fail(what + ": " + (msg != nullptr ? msg : "libarchive error"));
  };
  lib.disk_physical(disk.get());
  lib.disk_lookup(disk.get());
  // Stay on this filesystem: mounts below it are dumped as mounts.
  lib.disk_behavior(disk.get(), ARCHIVE_READDISK_NO_TRAVERSE_MOUNTS);
  // libarchive walks relative to the cwd: the mount's root for now.
  CwdGuard guard;
  if (::fchdir(dir.get()) != 0) return SysError("chdir into the tmpfs");
  if (lib.disk_open(disk.get(), ".") != ARCHIVE_OK) return error("tmpfs walk");
  for (;;) {
    int r = lib.next_header2(disk.get(), entry.get());
    if (r == ARCHIVE_EOF) return {};
    if (r == ARCHIVE_RETRY) continue;
    if (r < ARCHIVE_WARN) return error("tmpfs walk");
    lib.disk_descend(disk.get());
    RO_TRY(each(disk.get(), entry.get()));
  }
}

TmpfsPacker::TmpfsPacker() = default;
TmpfsPacker::~TmpfsPacker() = default;

Result<std::string> TmpfsPacker::Pack(const UniqueFd& dir, std::vector<std::string>& skipped) {
  if (!lib_) {
    RO_ASSIGN_OR_RETURN(lib_, LibArchive::Load());
  }
  const LibArchive& lib = *lib_;
  auto error = [&](archive* a, const std::string& what) {
    const char* msg = lib.error_string(a);
    return Fail(what + ": " + (msg != nullptr ? msg : "libarchive error"));
  };
  // Before the archive: freeing an archive left open on an error flushes
  // into it, so it must outlive the archive.
  std::string tar;
  std::unique_ptr<archive, decltype(lib.write_free)> out(lib.write_new(), lib.write_free);
  // Every name of an inode after its first becomes a hard link to it.
  std::unique_ptr<archive_entry_linkresolver, decltype(lib.resolver_free)> links(lib.resolver_new(), lib.resolver_free);
  if (!out || !links) return Fail("libarchive: out of memory");
  lib.resolver_strategy(links.get(), ARCHIVE_FORMAT_TAR_PAX_INTERCHANGE);
  auto append = [](archive*, void* data, const void* buffer, size_t length) -> la_ssize_t {
    static_cast<std::string*>(data)->append(static_cast<const char*>(buffer), length);
    return static_cast<la_ssize_t>(length);
  };
  if (lib.add_gzip(out.get()) != ARCHIVE_OK || lib.set_pax(out.get()) != ARCHIVE_OK ||
      lib.write_open(out.get(), &tar, nullptr, append, nullptr) != ARCHIVE_OK) {
    return error(out.get(), "tmpfs archive");
  }
  std::vector<char> buffer(1 << 16);
  RO_TRY(WalkDisk(lib, dir, [&](archive* disk, archive_entry* entry) -> Status {
    std::string name = lib.pathname(entry);
    size_t other_xattrs = 0;
    if (SocketMarker(lib, entry, other_xattrs)) {
      return Fail("tmpfs entry " + name + " carries the extended attribute " + kSocketMarkerXattr +
                  ", which restore-orch's archives keep to mark sockets");
    }
    const bool socket = lib.entry_filetype(entry) == AE_IFSOCK;
    if (socket) {
      // tar has no socket entry: an empty file marked as one.
      if (other_xattrs != 0 || lib.acl_count(entry, ARCHIVE_ENTRY_ACL_TYPE_ACCESS | ARCHIVE_ENTRY_ACL_TYPE_DEFAULT) > 0) {
        return Fail("tmpfs entry " + name + ": a socket with extended attributes or an ACL, which a restore would not bring back");
      }
      lib.entry_set_filetype(entry, AE_IFREG);
      lib.entry_set_size(entry, 0);
      lib.xattr_add(entry, kSocketMarkerXattr, kSocketMarkerValue, std::strlen(kSocketMarkerValue));
    }
    // tar's strategy hands back the same entry, as a link from its second
    // name on, and never one held back (the spare).
    archive_entry* e = entry;
    archive_entry* spare = nullptr;
    lib.linkify(links.get(), &e, &spare);
    if (e != entry || spare != nullptr) return Fail("tmpfs entry " + name + ": libarchive's link resolver held it back");
    int r = lib.write_header(out.get(), entry);
    if (r == ARCHIVE_FAILED) {
      skipped.push_back(name + " skipped: " + lib.error_string(out.get()));
      return {};
    }
    if (r < ARCHIVE_WARN) return error(out.get(), "tmpfs entry " + name);
    if (lib.entry_hardlink(entry) != nullptr) return {};  // its data went with its first name
    if (socket) return {};  // no data, and nothing to open
    for (;;) {
      la_ssize_t n = lib.read_data(disk, buffer.data(), buffer.size());
      if (n == 0) return {};
      if (n < 0) return error(disk, "tmpfs entry " + name);
      if (lib.write_data(out.get(), buffer.data(), static_cast<size_t>(n)) < 0) return error(out.get(), "tmpfs entry " + name);
    }
  }));
  if (lib.write_close(out.get()) != ARCHIVE_OK) return error(out.get(), "tmpfs archive");
  return tar;
}

}  // namespace ro
