#include "orchestrator/tmpfs.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <unistd.h>

#include <memory>

namespace ro {
namespace {

using ReadArchive = std::unique_ptr<archive, decltype(&archive_read_free)>;
using WriteArchive = std::unique_ptr<archive, decltype(&archive_write_free)>;

Error ArchiveError(archive* a, const std::string& what) {
  const char* msg = archive_error_string(a);
  return Fail(what + ": " + (msg != nullptr ? msg : "libarchive error"));
}

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

}  // namespace

Status UnpackTmpfs(const UniqueFd& root, const std::string& tar_gz) {
  ReadArchive in(archive_read_new(), archive_read_free);
  WriteArchive out(archive_write_disk_new(), archive_write_free);
  if (!in || !out) return Fail("libarchive: out of memory");
  archive_read_support_filter_gzip(in.get());
  archive_read_support_format_tar(in.get());
  archive_write_disk_set_options(out.get(), ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_TIME |
                                                ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                                ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS);
  if (archive_read_open_memory(in.get(), tar_gz.data(), tar_gz.size()) != ARCHIVE_OK) {
    return ArchiveError(in.get(), "tmpfs contents");
  }
  // libarchive writes relative to the cwd: the new mount's root for now.
  CwdGuard guard;
  if (::fchdir(root.get()) != 0) return SysError("chdir into the new tmpfs");
  for (;;) {
    archive_entry* entry = nullptr;
    int r = archive_read_next_header(in.get(), &entry);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK) return ArchiveError(in.get(), "tmpfs contents");
    std::string name = archive_entry_pathname(entry);
    if (archive_write_header(out.get(), entry) != ARCHIVE_OK) return ArchiveError(out.get(), "tmpfs entry " + name);
    const void* block = nullptr;
    size_t size = 0;
    la_int64_t offset = 0;
    while ((r = archive_read_data_block(in.get(), &block, &size, &offset)) == ARCHIVE_OK) {
      if (archive_write_data_block(out.get(), block, size, offset) != ARCHIVE_OK) {
        return ArchiveError(out.get(), "tmpfs entry " + name);
      }
    }
    if (r != ARCHIVE_EOF) return ArchiveError(in.get(), "tmpfs entry " + name);
    if (archive_write_finish_entry(out.get()) != ARCHIVE_OK) return ArchiveError(out.get(), "tmpfs entry " + name);
  }
  if (archive_write_close(out.get()) != ARCHIVE_OK) return ArchiveError(out.get(), "tmpfs contents");
  return {};
}

}  // namespace ro
