// tmpfs contents for verify: an archive and a live filesystem listed in one
// shape (ListTmpfsArchive, ListTmpfsTree) and compared (CompareTmpfs).
#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

#include "images/image_dir.h"
#include "orchestrator/libarchive.h"
#include "orchestrator/tmpfs.h"
#include "sys/files.h"
#include "sys/mount_api.h"

namespace ro {
namespace {

// "./a/b/" -> "a/b"; "." and "./" -> "" (the root).
std::string Normal(std::string path) {
  while (path.rfind("./", 0) == 0) path.erase(0, 2);
  while (!path.empty() && path.back() == '/') path.pop_back();
  if (path == ".") path.clear();
  return path;
}

std::string Shown(const std::string& path) { return "/" + path; }

// "1234567890.000000123"
std::string Time(int64_t sec, int64_t nsec) {
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%lld.%09lld", static_cast<long long>(sec), static_cast<long long>(nsec));
  return buf;
}

// An ACL entry as "access:user:1000:rwx" (numeric ids: names may differ).
std::string AclEntry(int type, int permset, int tag, int qual) {
  std::string out = type == ARCHIVE_ENTRY_ACL_TYPE_DEFAULT ? "default:" : type == ARCHIVE_ENTRY_ACL_TYPE_ACCESS ? "access:" : "other:";
  switch (tag) {
    case ARCHIVE_ENTRY_ACL_USER: out += "user:" + std::to_string(qual); break;
    case ARCHIVE_ENTRY_ACL_USER_OBJ: out += "user:"; break;
    case ARCHIVE_ENTRY_ACL_GROUP: out += "group:" + std::to_string(qual); break;
    case ARCHIVE_ENTRY_ACL_GROUP_OBJ: out += "group:"; break;
    case ARCHIVE_ENTRY_ACL_MASK: out += "mask:"; break;
    case ARCHIVE_ENTRY_ACL_OTHER: out += "other:"; break;
    default: out += "tag" + std::to_string(tag) + ":" + std::to_string(qual); break;
  }
  out += ":";
  out += (permset & ARCHIVE_ENTRY_ACL_READ) != 0 ? 'r' : '-';
  out += (permset & ARCHIVE_ENTRY_ACL_WRITE) != 0 ? 'w' : '-';
  out += (permset & ARCHIVE_ENTRY_ACL_EXECUTE) != 0 ? 'x' : '-';
  return out;
}

// Inode flags as lsattr names them ("ia"), others in hex ("i+0x100000").
std::string Flags(uint64_t f) {
  if (f == 0) return "none";
  std::string out;
  for (auto [bit, letter] : {std::pair<uint64_t, char>{0x10, 'i'}, {0x20, 'a'}, {0x40, 'd'}, {0x80, 'A'}}) {
    if ((f & bit) != 0) out += letter;
    f &= ~bit;
  }
  if (f != 0) {
    char buf[24];
    std::snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(f));
    out += (out.empty() ? "" : "+") + std::string(buf);
  }
  return out;
}

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& n : v) s += (s.empty() ? "" : " ") + n;
  return s.empty() ? "none" : s;
}

std::string Octal(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0%o", v);
  return buf;
}

// Builds a listing entry by entry; every name of an inode shares its first
// name's data and gets the whole set of names at the end.
class Lister {
 public:
  explicit Lister(const LibArchive& lib) : lib_(lib) {}

  // `first` is the path of the inode's first name when this is another
  // name of it, else empty. Reads the entry's data from `a`.
  Status Add(archive* a, archive_entry* e, const std::string& path, const std::string& first) {
    if (!first.empty()) {
      auto it = listing_.find(first);
      if (it == listing_.end()) return Fail(Shown(path) + ": a hard link to " + Shown(first) + ", which comes nowhere before it");
      listing_[path] = it->second;
      groups_[first].push_back(path);
      return {};
    }
    TmpfsFile f;
    f.mode = lib_.entry_mode(e);
    f.uid = static_cast<uint32_t>(lib_.entry_uid(e));
    f.gid = static_cast<uint32_t>(lib_.entry_gid(e));
    f.mtime = lib_.entry_mtime(e);
    f.mtime_nsec = lib_.entry_mtime_nsec(e);
    if (S_ISCHR(f.mode) || S_ISBLK(f.mode)) f.rdev = lib_.entry_rdev(e);
    if (const char* t = lib_.entry_symlink(e); t != nullptr) f.symlink = t;
    lib_.xattr_reset(e);
    const char* name = nullptr;
    const void* value = nullptr;
    size_t size = 0;
    while (lib_.xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
      if (name != nullptr) f.xattrs[name].assign(static_cast<const char*>(value), size);
    }
    // A socket, as a dump packs it (tmpfs.h).
    if (auto m = f.xattrs.find(kSocketMarkerXattr); m != f.xattrs.end() && m->second == kSocketMarkerValue && S_ISREG(f.mode)) {
      f.xattrs.erase(m);
      f.mode = S_IFSOCK | (f.mode & 07777);
    }
    for (int want : {ARCHIVE_ENTRY_ACL_TYPE_ACCESS, ARCHIVE_ENTRY_ACL_TYPE_DEFAULT}) {
      if (lib_.acl_count(e, want) <= 0) continue;
      lib_.acl_reset(e, want);
      int type = 0, permset = 0, tag = 0, qual = 0;
      const char* who = nullptr;
      while (lib_.acl_next(e, want, &type, &permset, &tag, &qual, &who) == ARCHIVE_OK) {
        f.acl.push_back(AclEntry(type, permset, tag, qual));
      }
    }
    unsigned long set = 0, clear = 0;
    lib_.entry_fflags(e, &set, &clear);
    f.fflags = set;
    if (S_ISREG(f.mode)) {
      uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a 64
      for (;;) {
        la_ssize_t n = lib_.read_data(a, buffer_.data(), buffer_.size());
        if (n == 0) break;
        if (n < 0) return Fail(Shown(path) + ": " + (lib_.error_string(a) != nullptr ? lib_.error_string(a) : "read error"));
        for (la_ssize_t i = 0; i < n; ++i) h = (h ^ static_cast<unsigned char>(buffer_[static_cast<size_t>(i)])) * 0x100000001b3ull;
        f.size += static_cast<uint64_t>(n);
      }
      f.digest = h;
    }
    listing_[path] = std::move(f);
    groups_[path].push_back(path);
    return {};
  }

  TmpfsListing Take() {
    for (auto& [first, names] : groups_) {
      std::sort(names.begin(), names.end());
      for (const std::string& n : names) listing_[n].names = names;
    }
    return std::move(listing_);
  }

 private:
  const LibArchive& lib_;
  std::vector<char> buffer_ = std::vector<char>(1 << 16);
  TmpfsListing listing_;
  std::map<std::string, std::vector<std::string>> groups_;  // first name -> every name
};

}  // namespace

Result<TmpfsListing> ListTmpfsArchive(int images_fd, const images::PayloadRef& tar_gz) {
  RO_ASSIGN_OR_RETURN(UniqueFd file, images::OpenPayload(images_fd, tar_gz));
  RO_ASSIGN_OR_RETURN(std::unique_ptr<LibArchive> loaded, LibArchive::Load());
  const LibArchive& lib = *loaded;
  std::unique_ptr<archive, decltype(lib.read_free)> in(lib.read_new(), lib.read_free);
  if (!in) return Fail("libarchive: out of memory");
  lib.support_gzip(in.get());
  lib.support_tar(in.get());
  auto error = [&](const std::string& what) {
    const char* msg = lib.error_string(in.get());
    return Fail(tar_gz.file + ": " + what + ": " + (msg != nullptr ? msg : "libarchive error"));
  };
  if (lib.open_fd(in.get(), file.get(), 64 * 1024) != ARCHIVE_OK) return error("open");
  Lister lister(lib);
  for (;;) {
    archive_entry* e = nullptr;
    int r = lib.next_header(in.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK) return error("entry");
    const char* name = lib.pathname(e);
    const char* link = lib.entry_hardlink(e);
    RO_TRY(lister.Add(in.get(), e, Normal(name != nullptr ? name : ""), link != nullptr ? Normal(link) : ""));
  }
  return lister.Take();
}

Result<TmpfsListing> ListTmpfsTree(const UniqueFd& dir) {
  RO_ASSIGN_OR_RETURN(std::unique_ptr<LibArchive> loaded, LibArchive::Load());
  const LibArchive& lib = *loaded;
  Lister lister(lib);
  std::map<int64_t, std::string> first_name;  // inode with more than one name -> the first met
  RO_TRY(WalkDisk(lib, dir, [&](archive* disk, archive_entry* e) -> Status {
    uint32_t mode = lib.entry_mode(e);
    std::string path = Normal(lib.pathname(e));
    std::string first;
    if (!S_ISDIR(mode) && lib.entry_nlink(e) > 1) {
      auto [it, fresh] = first_name.emplace(lib.entry_ino(e), path);
      if (!fresh) first = it->second;
    }
    return lister.Add(disk, e, path, first);
  }));
  return lister.Take();
}

Result<UniqueFd> TmpfsView(pid_t ns_of, const UniqueFd& dir, std::string& caveat) {
  auto alone = sys::CloneMountAlone(ns_of, dir);
  if (alone.ok() || alone.error().err != EINVAL) return alone;
  // open_tree refuses to copy an unbindable mount.
  caveat = "it is unbindable, so the files mounts below it cover are not seen";
  return sys::OpenAt(dir.get(), ".", O_PATH | O_DIRECTORY);
}

std::vector<std::string> CompareTmpfs(const TmpfsListing& live, const TmpfsListing& images, const std::set<std::string>& made) {
  std::vector<std::string> out;
  for (const auto& [path, want] : images) {
    auto it = live.find(path);
    std::string at = Shown(path) + ": ";
    if (it == live.end()) {
      out.push_back(at + "missing");
      continue;
    }
    const TmpfsFile& got = it->second;
    if ((got.mode & S_IFMT) != (want.mode & S_IFMT)) {
      out.push_back(at + "type " + Octal(got.mode & S_IFMT) + ", images say " + Octal(want.mode & S_IFMT));
      continue;
    }
    if ((got.mode & 07777) != (want.mode & 07777)) out.push_back(at + "mode " + Octal(got.mode & 07777) + ", images say " + Octal(want.mode & 07777));
    if (got.uid != want.uid || got.gid != want.gid) {
      out.push_back(at + "owner " + std::to_string(got.uid) + ":" + std::to_string(got.gid) + ", images say " + std::to_string(want.uid) +
                    ":" + std::to_string(want.gid));
    }
    if (got.mtime != want.mtime || got.mtime_nsec != want.mtime_nsec) {
      out.push_back(at + "mtime " + Time(got.mtime, got.mtime_nsec) + ", images say " + Time(want.mtime, want.mtime_nsec));
    }
    if (got.size != want.size) {
      out.push_back(at + std::to_string(got.size) + " bytes, images say " + std::to_string(want.size));
    } else if (got.digest != want.digest) {
      out.push_back(at + "data differs");
    }
    if (got.symlink != want.symlink) out.push_back(at + "symlink to " + got.symlink + ", images say " + want.symlink);
    if (got.rdev != want.rdev) out.push_back(at + "device differs");
    if (got.names != want.names) {
      auto join = [](const std::vector<std::string>& v) {
        std::string s;
        for (const std::string& n : v) s += (s.empty() ? "" : " ") + Shown(n);
        return s;
      };
      out.push_back(at + "names of its inode " + join(got.names) + ", images say " + join(want.names));
    }
    for (const auto& [name, value] : want.xattrs) {
      auto x = got.xattrs.find(name);
      if (x == got.xattrs.end()) out.push_back(at + "extended attribute " + name + " missing");
      else if (x->second != value) out.push_back(at + "extended attribute " + name + " differs");
    }
    for (const auto& [name, value] : got.xattrs) {
      if (!want.xattrs.count(name)) out.push_back(at + "extended attribute " + name + " not in the images");
    }
    if (got.acl != want.acl) out.push_back(at + "ACL " + Join(got.acl) + ", images say " + Join(want.acl));
    if (got.fflags != want.fflags) out.push_back(at + "inode flags " + Flags(got.fflags) + ", images say " + Flags(want.fflags));
  }
  for (const auto& [path, f] : live) {
    if (!images.count(path) && !(S_ISDIR(f.mode) && made.count(path))) out.push_back(Shown(path) + ": not in the images");
  }
  return out;
}

}  // namespace ro
