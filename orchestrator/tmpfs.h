// tmpfs contents: CRIU keeps a tmpfs superblock's files as a gzipped tar
// (tmpfs-dev-<dev>.tar.gz.img); they are unpacked into the new tmpfs.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "images/image_file.h"
#include "sys/status.h"
#include "sys/unique_fd.h"

namespace ro {

// Unpacks the gzipped tar `tar_gz` (read from the image directory
// `images_fd` as it streams) into the (detached) mount `root`, keeping
// modes, owners and times. Entries that are absolute, hold "..", or would
// be written through a symlink are refused: nothing lands outside the mount.
Status UnpackTmpfs(const UniqueFd& root, int images_fd, const images::PayloadRef& tar_gz);

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
