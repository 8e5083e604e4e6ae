#include "orchestrator/tmpfs.h"

#include <archive.h>
#include <archive_entry.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <unistd.h>

#include <memory>

namespace ro {
namespace {

// libarchive is loaded only when an image set has tmpfs contents, and
// unloaded afterwards: linked in, it and the ten libraries it brings would
// be mapped in every restored task and make every fork dearer.
class LibArchive {
 public:
  static Result<std::unique_ptr<LibArchive>> Load() {
    void* h = ::dlopen("libarchive.so.13", RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) return Fail(std::string("cannot load libarchive: ") + ::dlerror());
    std::unique_ptr<LibArchive> owned(new LibArchive(h));
    LibArchive& lib = *owned;
    bool ok = lib.Bind(lib.read_new, "archive_read_new") && lib.Bind(lib.read_free, "archive_read_free") &&
              lib.Bind(lib.write_disk_new, "archive_write_disk_new") && lib.Bind(lib.write_free, "archive_write_free") &&
              lib.Bind(lib.support_gzip, "archive_read_support_filter_gzip") &&
              lib.Bind(lib.support_tar, "archive_read_support_format_tar") &&
              lib.Bind(lib.set_options, "archive_write_disk_set_options") &&
              lib.Bind(lib.open_memory, "archive_read_open_memory") && lib.Bind(lib.next_header, "archive_read_next_header") &&
              lib.Bind(lib.write_header, "archive_write_header") && lib.Bind(lib.read_block, "archive_read_data_block") &&
              lib.Bind(lib.write_block, "archive_write_data_block") &&
              lib.Bind(lib.finish_entry, "archive_write_finish_entry") && lib.Bind(lib.write_close, "archive_write_close") &&
              lib.Bind(lib.error_string, "archive_error_string") && lib.Bind(lib.pathname, "archive_entry_pathname");
    if (!ok) return Fail("libarchive lacks a function restore-orch needs");
    return owned;
  }
  LibArchive(const LibArchive&) = delete;
  LibArchive& operator=(const LibArchive&) = delete;
  ~LibArchive() {
    if (handle_ != nullptr) ::dlclose(handle_);
  }

  decltype(&archive_read_new) read_new = nullptr;
  decltype(&archive_read_free) read_free = nullptr;
  decltype(&archive_write_disk_new) write_disk_new = nullptr;
  decltype(&archive_write_free) write_free = nullptr;
  decltype(&archive_read_support_filter_gzip) support_gzip = nullptr;
  decltype(&archive_read_support_format_tar) support_tar = nullptr;
  decltype(&archive_write_disk_set_options) set_options = nullptr;
  decltype(&archive_read_open_memory) open_memory = nullptr;
  decltype(&archive_read_next_header) next_header = nullptr;
  decltype(&archive_write_header) write_header = nullptr;
  decltype(&archive_read_data_block) read_block = nullptr;
  decltype(&archive_write_data_block) write_block = nullptr;
  decltype(&archive_write_finish_entry) finish_entry = nullptr;
  decltype(&archive_write_close) write_close = nullptr;
  decltype(&archive_error_string) error_string = nullptr;
  decltype(&archive_entry_pathname) pathname = nullptr;

 private:
  explicit LibArchive(void* handle) : handle_(handle) {}
  template <class F>
  bool Bind(F& f, const char* name) {
    f = reinterpret_cast<F>(::dlsym(handle_, name));
    return f != nullptr;
  }
  void* handle_ = nullptr;
};

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
  lib.set_options(out.get(), ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_XATTR |
                                 ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                 ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS);
  if (lib.open_memory(in.get(), tar_gz.data(), tar_gz.size()) != ARCHIVE_OK) return error(in.get(), "tmpfs contents");
  // libarchive writes relative to the cwd: the new mount's root for now.
  CwdGuard guard;
  if (::fchdir(root.get()) != 0) return SysError("chdir into the new tmpfs");
  for (;;) {
    archive_entry* entry = nullptr;
    int r = lib.next_header(in.get(), &entry);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK) return error(in.get(), "tmpfs contents");
    std::string name = lib.pathname(entry);
    if (lib.write_header(out.get(), entry) != ARCHIVE_OK) return error(out.get(), "tmpfs entry " + name);
    const void* block = nullptr;
    size_t size = 0;
    la_int64_t offset = 0;
    while ((r = lib.read_block(in.get(), &block, &size, &offset)) == ARCHIVE_OK) {
      if (lib.write_block(out.get(), block, size, offset) != ARCHIVE_OK) return error(out.get(), "tmpfs entry " + name);
    }
    if (r != ARCHIVE_EOF) return error(in.get(), "tmpfs entry " + name);
    if (lib.finish_entry(out.get()) != ARCHIVE_OK) return error(out.get(), "tmpfs entry " + name);
  }
  if (lib.write_close(out.get()) != ARCHIVE_OK) return error(out.get(), "tmpfs contents");
  return {};
}

}  // namespace ro
