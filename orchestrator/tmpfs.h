// tmpfs contents: CRIU keeps a tmpfs superblock's files as a gzipped tar
// (tmpfs-dev-<dev>.tar.gz.img); they are unpacked into the new tmpfs.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
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

// Unpacks the gzipped tar `tar_gz` (read from the image directory
// `images_fd` as it streams) into the (detached) mount `root`, keeping
// modes, owners and times. Entries that are absolute, hold "..", or would
// be written through a symlink are refused: nothing lands outside the mount.
// What it writes is charged against `cap` before it is written: each
// entry's data rounded up to pages (as tmpfs's size= counts), a file's
// logical size counted whole (a sparse file's holes too), a hard link's
// data again, a page for a symlink whose target tmpfs keeps in a page (over
// 127 bytes), and extended attributes (names and values, in pages); an
// entry that would pass the cap fails the unpack ("entry NAME: the unpacked
// contents would pass N bytes, the cap from ...").
Status UnpackTmpfs(const UniqueFd& root, int images_fd, const images::PayloadRef& tar_gz, const TmpfsCap& cap);

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
  // following symlinks. Entries tar cannot hold (sockets) are left out and
  // named in `skipped`.
  Result<std::string> Pack(const UniqueFd& dir, std::vector<std::string>& skipped);

 private:
  std::unique_ptr<LibArchive> lib_;
};

}  // namespace ro
