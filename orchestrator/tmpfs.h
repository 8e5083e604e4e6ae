// tmpfs contents: CRIU keeps a tmpfs superblock's files as a gzipped tar
// (tmpfs-dev-<dev>.tar.gz.img); they are unpacked into the new tmpfs.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "images/image_file.h"
#include "sys/status.h"
#include "sys/unique_fd.h"

namespace ro {

// How much a tmpfs archive may unpack to: every restore has a cap.
struct TmpfsCap {
  uint64_t bytes = 0;
  std::string from;  // where it comes from, for the error: "size=64m of the tmpfs", "--tmpfs-limit", ...
};

// Without --tmpfs-limit and without size= among the tmpfs's options: 1 GiB,
// the most an image file may hold packed.
constexpr uint64_t kDefaultTmpfsCap = 1ull << 30;

// The cap for the contents of a tmpfs mounted with `options` (its
// superblock options as the image has them): `limit` (--tmpfs-limit) when
// non-zero, else the tmpfs's size= (bytes with k/m/g/t suffixes, or a
// percentage of `ram_bytes`, as tmpfs(5) reads it), else kDefaultTmpfsCap.
// size=0 (unlimited) also gives kDefaultTmpfsCap. Error: a size= that is
// no size.
Result<TmpfsCap> TmpfsCapFor(const std::string& options, uint64_t limit, uint64_t ram_bytes);

// A tmpfs(5) size: digits with an optional k, m, g, t, p or e (powers of
// 1024), or a percentage (up to 100) of `ram_bytes`; nullopt when it is none.
std::optional<uint64_t> ParseTmpfsSize(const std::string& v, uint64_t ram_bytes);

// Whether `options` make a tmpfs unlimited (size=0, nr_blocks=0 or
// nr_inodes=0, as tmpfs(5) says): the option, or "" when bounded.
std::string UnlimitedTmpfsOption(const std::string& options);

// tar has no socket entry: a dump packs a socket inode (what bind(2)
// leaves once its socket is closed) as an empty regular file carrying this
// extended attribute with the value kSocketMarkerValue, which a plain tar
// reader extracts as an empty file, and from which the unpacker only ever
// makes a socket inode. A dump refuses a file that carries it itself.
inline constexpr char kSocketMarkerXattr[] = "user.restore-orch.type";
inline constexpr char kSocketMarkerValue[] = "socket";

// Unpacks the gzipped tar `tar_gz` (read from the image directory
// `images_fd` as it streams) into the (detached) mount `root`, keeping
// modes, owners, times, extended attributes, POSIX ACLs and inode flags
// (chattr's; immutable and append-only set last, once everything else is
// written), and making a socket inode of each socket-marked entry (with its
// mode, owner and times; a marked entry with data, other extended
// attributes or an ACL is refused). Entries that are absolute, hold "..", or would
// be written through a symlink are refused: nothing lands outside the mount.
// What it writes is charged against `cap` before it is written: each
// entry's data rounded up to pages (as tmpfs's size= counts), a file's
// logical size counted whole (a sparse file's holes too), a hard link's
// data again, a page for a symlink whose target tmpfs keeps in a page (over
// 127 bytes), and extended attributes and ACLs (names and values, in pages); an
// entry that would pass the cap fails the unpack ("entry NAME: the unpacked
// contents would pass N bytes, the cap from ...").
Status UnpackTmpfs(const UniqueFd& root, int images_fd, const images::PayloadRef& tar_gz, const TmpfsCap& cap);

// One file of a tmpfs as verify compares it (orchestrator/tmpfs_compare.cc).
struct TmpfsFile {
  uint32_t mode = 0;  // st_mode: type and permission bits
  uint32_t uid = 0;
  uint32_t gid = 0;
  int64_t mtime = 0;     // seconds (directories' too)
  int64_t mtime_nsec = 0;  // what a pax archive keeps of it (CRIU's GNU tar keeps none: 0)
  uint64_t rdev = 0;     // device nodes
  uint64_t size = 0;     // regular files: bytes
  uint64_t digest = 0;   // regular files: FNV-1a 64 of the data, holes as zeros
  std::string symlink;   // its target
  std::vector<std::string> names;                 // every name of its inode, sorted (hard links)
  std::map<std::string, std::string> xattrs;      // name -> value (not the ACLs)
  std::vector<std::string> acl;                   // "access:user:1000:rwx", "default:mask::r-x"... in libarchive's order
  uint64_t fflags = 0;                            // inode flags (FS_IOC_GETFLAGS) set
};
// Path ("" for the root, "a/b" below it) -> the file there.
using TmpfsListing = std::map<std::string, TmpfsFile>;

// The files a tmpfs archive of the image directory `images_fd` holds (a
// hard link takes its target's data). Errors: the payload cannot be
// opened, libarchive's reading errors.
Result<TmpfsListing> ListTmpfsArchive(int images_fd, const images::PayloadRef& tar_gz);
// The files of the mount whose root is `dir` (not crossing into mounts
// below it), as ListTmpfsArchive would list them once packed (a socket
// as a socket). Errors: libarchive's.
Result<TmpfsListing> ListTmpfsTree(const UniqueFd& dir);
// One line per difference of `live` from `images`, each naming the path
// ("/" for the root): missing files, files the images do not have, and
// type, mode, owner, mtime, size, data, symlink target, device, hard links,
// extended attributes, POSIX ACLs and inode flags. Directories in `made` (paths as listed: the
// mountpoints a restore makes when the images lack them, and their
// parents) may be live without being in the images.
std::vector<std::string> CompareTmpfs(const TmpfsListing& live, const TmpfsListing& images, const std::set<std::string>& made);

// What a dump packs of the mount whose root is `dir`, living in the mount
// namespace of `ns_of`: a copy of that mount alone (sys::CloneMountAlone),
// so the files mounts below it cover are seen; the mount itself when it is
// unbindable (no copy can be made), with `caveat` set to say that covered
// files are not seen. Errors: CloneMountAlone's other ones.
Result<UniqueFd> TmpfsView(pid_t ns_of, const UniqueFd& dir, std::string& caveat);

class LibArchive;

// Packs tmpfs contents for a dump; loads libarchive at its first use and
// keeps it until it goes away.
class TmpfsPacker {
 public:
  TmpfsPacker();
  ~TmpfsPacker();
  TmpfsPacker(const TmpfsPacker&) = delete;
  TmpfsPacker& operator=(const TmpfsPacker&) = delete;

  // The files of the mount whose root is `dir` (an fd of it, O_PATH will
  // do) as a gzipped tar, not descending into mounts below it and not
  // following symlinks; a socket as a marked empty file (kSocketMarkerXattr).
  // Entries libarchive cannot write are left out and named in `skipped`.
  // Errors: a socket with extended attributes or an ACL (not restored on
  // one), a file carrying kSocketMarkerXattr itself, libarchive's.
  Result<std::string> Pack(const UniqueFd& dir, std::vector<std::string>& skipped);

 private:
  std::unique_ptr<LibArchive> lib_;
};

}  // namespace ro
