// Files, pipes and fd tables, thinly wrapped: every call that makes an fd
// returns it owned; every failure is an Error naming the call.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "sys/status.h"
#include "sys/unique_fd.h"

namespace ro::sys {

struct PipeEnds {
  UniqueFd read;
  UniqueFd write;
};
// fchown(fd, uid, gid). Errors name the call and the ids.
Status Chown(int fd, uint32_t uid, uint32_t gid);
// fchmod(fd, mode). Errors name the call and the mode (octal).
Status Chmod(int fd, uint32_t mode);

// pipe2(flags); O_CLOEXEC is always added.
Result<PipeEnds> Pipe(int flags);

// openat(dirfd, path, flags | O_CLOEXEC, mode). `what` names the file in
// errors (default: path).
Result<UniqueFd> OpenAt(int dirfd, const std::string& path, int flags, mode_t mode = 0, const std::string& what = "");

// fcntl(fd, F_DUPFD_CLOEXEC, lowest): a duplicate at `lowest` or above.
Result<UniqueFd> DupAtOrAbove(int fd, int lowest);
// dup3(from, to, flags): `to` then belongs to the fd table slot it names
// (a restored fd, a parked service fd), not to any UniqueFd.
Status Dup3(int from, int to, int flags);
// close_range(first, last, 0); nothing when first > last.
void CloseRange(unsigned first, unsigned last);

// The status flags of an open file description (F_GETFL / F_SETFL).
Result<int> StatusFlags(int fd);
Status SetStatusFlags(int fd, int flags);

// lseek(fd, pos, SEEK_SET); ESPIPE is not an error (pipes, ttys).
Status SeekTo(int fd, uint64_t pos, const std::string& what);

// A pipe's capacity (F_GETPIPE_SZ / F_SETPIPE_SZ) and the bytes queued in
// it (FIONREAD).
Result<int> PipeCapacity(int fd);
Status SetPipeCapacity(int fd, int bytes);
Result<int> QueuedBytes(int fd);
// tee(2) without blocking: copies up to `len` queued bytes of pipe `in`
// into pipe `out` without consuming them.
Result<size_t> Tee(int in, int out, size_t len);

// pread(2) until `len` bytes from `offset` are in `buf` (EINTR and short
// reads retried); end of file before is an error.
Status PreadExactly(int fd, void* buf, size_t len, uint64_t offset, const std::string& what);

// The first range of data (SEEK_DATA, then SEEK_HOLE) at or after `from`
// and before `limit` of a file; {limit, limit} when there is none.
Result<std::pair<uint64_t, uint64_t>> NextDataRange(int fd, uint64_t from, uint64_t limit);

// Whether the character device `rdev` is a terminal: a pty slave (majors
// 136-143, UNIX98_PTY_SLAVE_MAJOR), /dev/tty, /dev/console, /dev/ptmx
// (major 5), a virtual console or serial port (major 4), or any device
// whose sysfs class is tty (/sys/dev/char/MAJOR:MINOR/subsystem).
bool IsTerminalDevice(dev_t rdev);

// Sets the access and modification times of `path` below `dirfd` ("." for
// the directory itself; symlinks not followed), with nanoseconds.
Status SetTimes(int dirfd, const std::string& path, const timespec& atime, const timespec& mtime);

// The directory `path` below `root` (O_PATH | O_DIRECTORY), resolved by
// openat2 with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS
// | RESOLVE_NO_XDEV: no symlink followed, nothing outside `root`'s mount.
// "" or "." is `root` itself. Errors: openat2's (ELOOP: a symlink on the
// way, EXDEV: it leaves the mount, ENOTDIR, ENOENT).
Result<UniqueFd> OpenDirBeneath(int root, const std::string& path);

// A socket inode (no one listening: what bind(2) leaves once its socket is
// closed) named `name` in `dirfd`: mknodat(S_IFSOCK), then fchownat to
// `uid`:`gid` (symlinks not followed) and fchmodat to `perm` (07777 bits;
// after the chown, which clears set-id bits). Errors: mknodat's (EEXIST:
// the name is taken), fchownat's, fchmodat's.
Status MakeSocketInode(int dirfd, const std::string& name, mode_t perm, uid_t uid, gid_t gid);

// Sets the inode flags (chattr's FS_*_FL: immutable, append-only, noatime,
// nodump...) of the file `fd` is open on (not O_PATH: ioctl needs a real
// open) to `flags` with FS_IOC_SETFLAGS. Errors: EPERM (immutable or
// append-only without CAP_LINUX_IMMUTABLE), EOPNOTSUPP (a flag the
// filesystem lacks), ENOTTY (no flags on this filesystem).
Status SetInodeFlags(int fd, int flags);

// unlinkat(dirfd, name, 0).
Status UnlinkAt(int dirfd, const std::string& name);

// Reads exactly `len` bytes (EINTR retried); EOF before is an error.
Status ReadExactly(int fd, void* buf, size_t len, const std::string& what);

}  // namespace ro::sys
