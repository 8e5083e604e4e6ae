// libarchive, loaded at run time for the tmpfs code (orchestrator/tmpfs.cc
// packs and unpacks, orchestrator/tmpfs_compare.cc lists for verify).
// Private to those files.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <dlfcn.h>

#include <functional>
#include <memory>
#include <string>

#include "sys/status.h"
#include "sys/unique_fd.h"

namespace ro {

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
              lib.Bind(lib.open_fd, "archive_read_open_fd") && lib.Bind(lib.next_header, "archive_read_next_header") &&
              lib.Bind(lib.write_header, "archive_write_header") && lib.Bind(lib.read_block, "archive_read_data_block") &&
              lib.Bind(lib.write_block, "archive_write_data_block") &&
              lib.Bind(lib.finish_entry, "archive_write_finish_entry") && lib.Bind(lib.write_close, "archive_write_close") &&
              lib.Bind(lib.error_string, "archive_error_string") && lib.Bind(lib.pathname, "archive_entry_pathname") &&
              lib.Bind(lib.write_new, "archive_write_new") && lib.Bind(lib.add_gzip, "archive_write_add_filter_gzip") &&
              lib.Bind(lib.set_pax, "archive_write_set_format_pax") && lib.Bind(lib.write_open, "archive_write_open") &&
              lib.Bind(lib.write_data, "archive_write_data") && lib.Bind(lib.disk_new, "archive_read_disk_new") &&
              lib.Bind(lib.disk_physical, "archive_read_disk_set_symlink_physical") &&
              lib.Bind(lib.disk_lookup, "archive_read_disk_set_standard_lookup") &&
              lib.Bind(lib.disk_behavior, "archive_read_disk_set_behavior") && lib.Bind(lib.disk_open, "archive_read_disk_open") &&
              lib.Bind(lib.next_header2, "archive_read_next_header2") && lib.Bind(lib.disk_descend, "archive_read_disk_descend") &&
              lib.Bind(lib.read_data, "archive_read_data") && lib.Bind(lib.entry_new, "archive_entry_new") &&
              lib.Bind(lib.entry_free, "archive_entry_free") && lib.Bind(lib.entry_size, "archive_entry_size") &&
              lib.Bind(lib.entry_size_is_set, "archive_entry_size_is_set") && lib.Bind(lib.entry_symlink, "archive_entry_symlink") &&
              lib.Bind(lib.xattr_reset, "archive_entry_xattr_reset") && lib.Bind(lib.xattr_next, "archive_entry_xattr_next") &&
              lib.Bind(lib.resolver_new, "archive_entry_linkresolver_new") &&
              lib.Bind(lib.resolver_strategy, "archive_entry_linkresolver_set_strategy") &&
              lib.Bind(lib.resolver_free, "archive_entry_linkresolver_free") && lib.Bind(lib.linkify, "archive_entry_linkify") &&
              lib.Bind(lib.entry_hardlink, "archive_entry_hardlink") && lib.Bind(lib.entry_mode, "archive_entry_mode") &&
              lib.Bind(lib.entry_uid, "archive_entry_uid") && lib.Bind(lib.entry_gid, "archive_entry_gid") &&
              lib.Bind(lib.entry_mtime, "archive_entry_mtime") && lib.Bind(lib.entry_rdev, "archive_entry_rdev") &&
              lib.Bind(lib.entry_ino, "archive_entry_ino64") && lib.Bind(lib.entry_nlink, "archive_entry_nlink") &&
              lib.Bind(lib.entry_mtime_nsec, "archive_entry_mtime_nsec") && lib.Bind(lib.entry_atime, "archive_entry_atime") &&
              lib.Bind(lib.entry_atime_nsec, "archive_entry_atime_nsec") &&
              lib.Bind(lib.entry_atime_is_set, "archive_entry_atime_is_set") &&
              lib.Bind(lib.entry_filetype, "archive_entry_filetype") &&
              lib.Bind(lib.entry_set_filetype, "archive_entry_set_filetype") &&
              lib.Bind(lib.entry_set_size, "archive_entry_set_size") &&
              lib.Bind(lib.xattr_count, "archive_entry_xattr_count") &&
              lib.Bind(lib.xattr_add, "archive_entry_xattr_add_entry") &&
              lib.Bind(lib.acl_count, "archive_entry_acl_count") && lib.Bind(lib.acl_reset, "archive_entry_acl_reset") &&
              lib.Bind(lib.acl_next, "archive_entry_acl_next") && lib.Bind(lib.entry_fflags, "archive_entry_fflags") &&
              lib.Bind(lib.entry_set_fflags, "archive_entry_set_fflags");
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
  decltype(&archive_read_open_fd) open_fd = nullptr;
  decltype(&archive_read_next_header) next_header = nullptr;
  decltype(&archive_write_header) write_header = nullptr;
  decltype(&archive_read_data_block) read_block = nullptr;
  decltype(&archive_write_data_block) write_block = nullptr;
  decltype(&archive_write_finish_entry) finish_entry = nullptr;
  decltype(&archive_write_close) write_close = nullptr;
  decltype(&archive_error_string) error_string = nullptr;
  decltype(&archive_entry_pathname) pathname = nullptr;
  decltype(&archive_entry_size) entry_size = nullptr;
  decltype(&archive_entry_size_is_set) entry_size_is_set = nullptr;
  decltype(&archive_entry_symlink) entry_symlink = nullptr;
  decltype(&archive_entry_xattr_reset) xattr_reset = nullptr;
  decltype(&archive_entry_xattr_next) xattr_next = nullptr;
  // Packing (dump).
  decltype(&archive_write_new) write_new = nullptr;
  decltype(&archive_write_add_filter_gzip) add_gzip = nullptr;
  decltype(&archive_write_set_format_pax) set_pax = nullptr;  // pax with subsecond times
  decltype(&archive_write_open) write_open = nullptr;
  decltype(&archive_write_data) write_data = nullptr;
  decltype(&archive_read_disk_new) disk_new = nullptr;
  decltype(&archive_read_disk_set_symlink_physical) disk_physical = nullptr;
  decltype(&archive_read_disk_set_standard_lookup) disk_lookup = nullptr;
  decltype(&archive_read_disk_set_behavior) disk_behavior = nullptr;
  decltype(&archive_read_disk_open) disk_open = nullptr;
  decltype(&archive_read_next_header2) next_header2 = nullptr;
  decltype(&archive_read_disk_descend) disk_descend = nullptr;
  decltype(&archive_read_data) read_data = nullptr;
  decltype(&archive_entry_new) entry_new = nullptr;
  decltype(&archive_entry_free) entry_free = nullptr;
  decltype(&archive_entry_linkresolver_new) resolver_new = nullptr;
  decltype(&archive_entry_linkresolver_set_strategy) resolver_strategy = nullptr;
  decltype(&archive_entry_linkresolver_free) resolver_free = nullptr;
  decltype(&archive_entry_linkify) linkify = nullptr;
  decltype(&archive_entry_hardlink) entry_hardlink = nullptr;
  // Listing (verify).
  decltype(&archive_entry_mode) entry_mode = nullptr;
  decltype(&archive_entry_uid) entry_uid = nullptr;
  decltype(&archive_entry_gid) entry_gid = nullptr;
  decltype(&archive_entry_mtime) entry_mtime = nullptr;
  decltype(&archive_entry_rdev) entry_rdev = nullptr;
  decltype(&archive_entry_ino64) entry_ino = nullptr;
  decltype(&archive_entry_nlink) entry_nlink = nullptr;
  decltype(&archive_entry_mtime_nsec) entry_mtime_nsec = nullptr;
  decltype(&archive_entry_atime) entry_atime = nullptr;
  decltype(&archive_entry_atime_nsec) entry_atime_nsec = nullptr;
  decltype(&archive_entry_atime_is_set) entry_atime_is_set = nullptr;
  // Sockets (carried as marked empty files), POSIX ACLs, inode flags.
  decltype(&archive_entry_filetype) entry_filetype = nullptr;
  decltype(&archive_entry_set_filetype) entry_set_filetype = nullptr;
  decltype(&archive_entry_set_size) entry_set_size = nullptr;
  decltype(&archive_entry_xattr_count) xattr_count = nullptr;
  decltype(&archive_entry_xattr_add_entry) xattr_add = nullptr;
  decltype(&archive_entry_acl_count) acl_count = nullptr;
  decltype(&archive_entry_acl_reset) acl_reset = nullptr;
  decltype(&archive_entry_acl_next) acl_next = nullptr;
  decltype(&archive_entry_fflags) entry_fflags = nullptr;
  decltype(&archive_entry_set_fflags) entry_set_fflags = nullptr;

 private:
  explicit LibArchive(void* handle) : handle_(handle) {}
  template <class F>
  bool Bind(F& f, const char* name) {
    f = reinterpret_cast<F>(::dlsym(handle_, name));
    return f != nullptr;
  }
  void* handle_ = nullptr;
};

// Walks the files of the mount whose root is `dir` (an O_PATH fd will do)
// with libarchive's disk reader: symlinks not followed, not crossing into
// mounts below it, owner names looked up; the root "." first, then "./a"...
// `each` gets the reader (to read the entry's data from) and the entry.
// Changes the cwd meanwhile and puts it back. Errors: libarchive's, or
// the first of `each`.
Status WalkDisk(const LibArchive& lib, const UniqueFd& dir, const std::function<Status(archive*, archive_entry*)>& each);

}  // namespace ro
