// Reads a whole image directory: every file restore-orch knows, checked
// against Limits, and the names of the image files it does not restore.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "images/image_file.h"
#include "sys/status.h"
#include "sys/unique_fd.h"

namespace ro::images {

struct ImageDir {
  std::string path;
  std::map<std::string, ImageFile> files;  // by file name
  std::vector<std::string> unsupported;    // *.img files of kinds we do not restore

  const ImageFile* Find(const Kind& kind, std::optional<uint64_t> key = std::nullopt) const;
};

// Reads `path`. Files are opened relative to the directory with O_NOFOLLOW;
// a symlink, a non-regular file or an unreadable one is an error naming it.
// Raw kinds (tmpfs archives) are not read: their entry is a PayloadRef to
// the whole file, checked against the file size limit.
// Files not ending in ".img" are not images (CRIU keeps logs and stats
// beside them) and are skipped. A "*.img" file of a kind restore-orch does
// not restore (or does not know) is not opened: its name goes to
// `unsupported`.
Result<ImageDir> LoadImageDir(const std::string& path, const Limits& limits);

// Opens the file a payload reference names, relative to the image
// directory `dirfd` (O_NOFOLLOW; it must still be a regular file holding
// the referenced bytes), positioned at the payload's first byte.
Result<UniqueFd> OpenPayload(int dirfd, const PayloadRef& ref);

// Reads one file into memory, refusing more than `max_bytes`.
Result<std::string> ReadWholeFile(int dirfd, const std::string& name, uint64_t max_bytes);
Result<std::string> ReadWholeFile(const std::string& path, uint64_t max_bytes);

// Writes every file of `dir` into the directory `path` (created if absent).
Status WriteImageDir(const std::string& path, const std::map<std::string, ImageFile>& files);
// The same for files already encoded (SerializeImage): name -> bytes.
Status WriteEncodedDir(const std::string& path, const std::map<std::string, std::string>& files);

}  // namespace ro::images
