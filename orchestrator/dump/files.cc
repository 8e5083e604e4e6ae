// The dump's fd tables: every fd of every task, open file descriptions
// shared between fds and tasks found with kcmp, pipe and FIFO contents
// copied with tee(2) so the tree keeps them.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <set>
#include <sstream>

#include "images/builders.h"
#include "images/plan.h"
#include "images/kinds.h"
#include "images/proto/fs.pb.h"
#include "images/proto/owners.pb.h"
#include "orchestrator/dump/collector.h"
#include "orchestrator/externals.h"
#include "sys/elf.h"
#include "sys/files.h"
#include "sys/proc.h"
#include "sys/process.h"

namespace ro::dump {
namespace {

// Why fd `n`, whose link in /proc/PID/fd reads `t`, cannot be restored, as
// far as that target alone says (KindOf's first tests, and the pre-check's).
Status RefusedByTarget(int n, const std::string& t) {
  std::string fd = "fd " + Str(n);
  if (t.rfind("pipe:[", 0) == 0) return {};
  if (t.rfind("socket:[", 0) == 0) return Refuse(fd + " is a socket (" + t + "): sockets are not supported");
  if (t.rfind("anon_inode:", 0) == 0) return Refuse(fd + " is " + t + ": anonymous-inode files (eventfd, epoll, signalfd, timerfd, pidfd...) are not supported");
  if (t.empty() || t[0] != '/') return Refuse(fd + " is " + t + ", which restore-orch cannot restore");
  return {};
}

// What kind of file an fd is, or why it cannot be restored.
Result<img::fd_types> KindOf(const LiveFd& f) {
  const std::string& t = f.target;
  std::string fd = "fd " + Str(f.fd);
  RO_TRY(RefusedByTarget(f.fd, t));
  if (t.rfind("pipe:[", 0) == 0) return img::PIPE;
  // (A file that is only named so is no worry: CheckReachable finds it.)
  if (t.ends_with(" (deleted)") && f.st.st_nlink == 0) return Refuse(fd + " is a deleted file (" + t + "): it cannot be reopened");
  if (S_ISFIFO(f.st.st_mode)) return img::FIFO;
  if (S_ISSOCK(f.st.st_mode)) return Refuse(fd + " is a socket (" + t + "): sockets are not supported");
  if (S_ISREG(f.st.st_mode) || S_ISDIR(f.st.st_mode) || S_ISCHR(f.st.st_mode) || S_ISBLK(f.st.st_mode)) return img::REG;
  return Refuse(fd + " is " + t + ", of a kind restore-orch cannot restore");
}

// A file lock held through an fd: restore-orch does not restore locks, so a
// dump that went on would hand the restored tree a file without its lock.
// The kind is the first word after the lock's number (fs/locks.c).
Status CheckLocks(const LiveFd& f) {
  if (f.locks.empty()) return {};
  std::string line = f.locks.front();
  size_t at = line.find(':');
  std::string rest = at == std::string::npos ? line : line.substr(at + 1);
  std::istringstream words(rest);
  std::string kind, mode, access;
  words >> kind >> mode >> access;
  std::string what = kind == "FLOCK"    ? "an flock lock (flock)"
                     : kind == "POSIX"  ? "a POSIX record lock (fcntl F_SETLK)"
                     : kind == "OFDLCK" ? "an open file description lock (fcntl F_OFD_SETLK)"
                     : kind == "LEASE"  ? "a lease (fcntl F_SETLEASE)"
                     : kind == "DELEG"  ? "a delegation"
                                        : "a " + kind + " lock";
  if (kind == "FLOCK" || kind == "POSIX" || kind == "OFDLCK") what += " for " + access;
  std::string more = f.locks.size() > 1 ? " (and " + Str(static_cast<long long>(f.locks.size() - 1)) + " more)" : "";
  return Refuse("fd " + Str(f.fd) + " (" + f.target + ") holds " + what + more + ": file locks are not restored");
}

// The whole queued contents of a pipe, read through another open of it:
// tee(2) duplicates the pipe's buffers into ours without consuming them.
struct PipeContents {
  uint32_t capacity = 0;
  std::string data;
};

Result<PipeContents> ReadPipe(const std::string& path) {
  RO_ASSIGN_OR_RETURN(UniqueFd src, sys::OpenAt(AT_FDCWD, path, O_RDONLY | O_NONBLOCK));
  PipeContents out;
  RO_ASSIGN_OR_RETURN(int capacity, sys::PipeCapacity(src.get()));
  out.capacity = static_cast<uint32_t>(capacity);
  RO_ASSIGN_OR_RETURN(int queued, sys::QueuedBytes(src.get()));
  if (queued == 0) return out;
  RO_ASSIGN_OR_RETURN(sys::PipeEnds copy, sys::Pipe(O_NONBLOCK));
  RO_TRY(sys::SetPipeCapacity(copy.write.get(), capacity));
  RO_ASSIGN_OR_RETURN(size_t n, sys::Tee(src.get(), copy.write.get(), static_cast<size_t>(queued)));
  if (n != static_cast<size_t>(queued)) {
    return Fail("tee from " + path + " copied " + Str(static_cast<long long>(n)) + " of " + Str(queued) + " queued bytes");
  }
  out.data.resize(n);
  RO_TRY(sys::ReadExactly(copy.read.get(), out.data.data(), n, "the copy of " + path));
  return out;
}

}  // namespace

Status Collector::CollectFds(const Task& t) {
  RO_ASSIGN_OR_RETURN(std::vector<LiveFd> table, sys::ReadFdTable(t.outer));
  images::ImageFile* fdinfo = nullptr;
  for (LiveFd& f : table) {
    int n = f.fd;
    RO_TRY(CheckLocks(f));
    // A terminal reopened by its path is another terminal, or the same
    // only when the caller's shell still has it: CRIU's --shell-job.
    if (S_ISCHR(f.st.st_mode) && sys::IsTerminalDevice(f.st.st_rdev)) {
      // A pty master reopened by its path (/dev/ptmx) is a new pty pair:
      // whoever holds the slave would be cut off.
      if (::major(f.st.st_rdev) == 5 && ::minor(f.st.st_rdev) == 2) {
        return Refuse("fd " + Str(n) + " is the master of a pseudo-terminal (" + f.target + "): terminals are not checkpointed");
      }
      if (!options_.shell_job) {
        return Refuse("fd " + Str(n) + " is the terminal " + f.target +
                    ": terminals are not checkpointed (--shell-job takes a shell's job and reopens its terminal by its path)");
      }
    }
    RO_ASSIGN_OR_RETURN(img::fd_types type, KindOf(f));
    // A queue of the tree's IPC namespace opened by mq_open(3), through
    // the namespace's internal mount (no mount of the tree's): its queue
    // comes back, the descriptor would not.
    if (tree_mqueue_dev_ != 0 && f.st.st_dev == tree_mqueue_dev_ &&
        std::none_of(mounts_.begin(), mounts_.end(), [&](const sys::MountInfo& m) { return m.mnt_id == f.mnt_id; })) {
      return Refuse("fd " + Str(n) + " is POSIX message queue " + f.target +
                    " (mq_open(3)): restore-orch restores the queue but not a descriptor of it");
    }
    bool terminal = S_ISCHR(f.st.st_mode) && sys::IsTerminalDevice(f.st.st_rdev);  // --shell-job: the caller's, by design
    if (S_ISFIFO(f.st.st_mode) && (f.flags & O_PATH) != 0) {
      return Refuse("fd " + Str(n) + " (" + f.target + ") is an O_PATH fd on a FIFO: restore-orch would reopen the FIFO itself");
    }
    if (type != img::PIPE && !terminal && !OnAutofsRoot(f)) {
      bool writable = (f.flags & O_PATH) == 0 && (f.flags & O_ACCMODE) != O_RDONLY;
      RO_TRY(CheckReachable("fd " + Str(n) + " (" + f.target + ")", f.target, {f.st.st_dev, f.st.st_ino, f.mnt_id}, writable));
      RO_TRY(CheckProcPid(f));
    }
    bool fresh = false;
    RO_ASSIGN_OR_RETURN(uint32_t id, DescriptionId(t, f, fresh));
    if (fresh) RO_TRY(AddFile(t, f, id));
    if (type == img::PIPE) {  // a FIFO can be opened again by its path: no such worry
      PipeHolders& h = pipes_[f.st.st_ino];
      h.writer |= (f.flags & O_ACCMODE) != O_RDONLY;
      h.reader |= (f.flags & O_ACCMODE) != O_WRONLY;
      if (h.first.empty()) h.first = t.who + " fd " + Str(n);
    }
    auto e = std::make_unique<img::fdinfo_entry>();
    e->set_id(id);
    e->set_flags((f.flags & O_CLOEXEC) != 0 ? FD_CLOEXEC : 0);
    e->set_type(type);
    e->set_fd(static_cast<uint32_t>(n));
    if (fdinfo == nullptr) fdinfo = &File(images::FdinfoKind(), static_cast<uint32_t>(t.pid));
    fdinfo->entries.push_back(images::Entry{std::move(e), {}});
    ++out_.counts.fds;
    fds_[t.outer][n] = std::move(f);
  }
  return {};
}

// kcmp(KCMP_FILE) orders open file descriptions, so the known ones of an
// inode are kept sorted by it and found by binary search: a tree of tasks
// that each opened /dev/null costs n log n comparisons, not n squared.
Result<uint32_t> Collector::DescriptionId(const Task& t, const LiveFd& f, bool& fresh) {
  auto& known = descriptions_[{f.st.st_dev, f.st.st_ino}];
  size_t lo = 0, hi = known.size();
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    const Description& d = known[mid];
    RO_ASSIGN_OR_RETURN(int order, sys::Kcmp(t.outer, d.outer, sys::KcmpType::kFile, static_cast<unsigned long>(f.fd),
                                             static_cast<unsigned long>(d.fd)));
    if (order == 0) {
      fresh = false;
      return d.id;
    }
    if (order == 1) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  fresh = true;
  known.insert(known.begin() + static_cast<std::ptrdiff_t>(lo), Description{next_id_, t.outer, f.fd});
  return next_id_++;
}

uint32_t Collector::AddPathEntry(const std::string& path, uint32_t flags, uint64_t pos, uint32_t mnt_id) {
  uint32_t id = next_id_++;
  File(images::FilesKind()).entries.push_back(images::Entry{images::NewRegularFile(id, path, flags, pos, mnt_id), {}});
  return id;
}

Result<uint32_t> Collector::MappedFileId(const sys::MappedFile& f, uint32_t flags, const std::function<Result<UniqueFd>()>& open) {
  auto key = std::make_tuple(f.st.st_dev, f.st.st_ino, flags);
  if (auto it = mapped_files_.find(key); it != mapped_files_.end()) return it->second;
  std::string build_id;
  if (S_ISREG(f.st.st_mode)) {
    // A restore maps it again by its path: that path must still lead to it.
    RO_TRY(CheckReachable("mapped file " + f.path, f.path, {f.st.st_dev, f.st.st_ino, f.mnt_id}, (flags & O_ACCMODE) != O_RDONLY));
    RO_ASSIGN_OR_RETURN(UniqueFd fd, open());
    RO_ASSIGN_OR_RETURN(build_id, sys::ElfBuildId(fd.get(), f.path));
  }
  uint32_t id = next_id_++;
  auto e = images::NewRegularFile(id, f.path, flags, 0, f.mnt_id);
  img::reg_file_entry& r = *e->mutable_reg();
  if (S_ISREG(f.st.st_mode)) r.set_size(static_cast<uint64_t>(f.st.st_size));
  r.set_mode(f.st.st_mode);
  // CRIU keeps the build-id as 32-bit words, in the file's byte order.
  build_id.resize((build_id.size() + 3) / 4 * 4, '\0');
  for (size_t i = 0; i < build_id.size(); i += 4) {
    uint32_t word = 0;
    std::memcpy(&word, build_id.data() + i, 4);
    r.add_build_id(word);
  }
  File(images::FilesKind()).entries.push_back(images::Entry{std::move(e), {}});
  mapped_files_.emplace(key, id);
  return id;
}

Status Collector::AddFile(const Task& t, const LiveFd& f, uint32_t id) {
  uint32_t flags = f.flags & ~static_cast<uint32_t>(O_CLOEXEC);
  if (f.st.st_ino > UINT32_MAX && S_ISFIFO(f.st.st_mode)) {
    return Refuse("fd " + Str(f.fd) + ": pipe inode " + Str(static_cast<long long>(f.st.st_ino)) + " does not fit the images' 32-bit pipe ids");
  }
  uint32_t pipe_id = static_cast<uint32_t>(f.st.st_ino);
  images::ImageFile& files = File(images::FilesKind());
  if (f.target.rfind("pipe:[", 0) == 0) {
    bool autofs = autofs_pipes_.count(f.st.st_ino) != 0;
    if (flags & O_DIRECT) {
      if (!autofs) return Refuse("fd " + Str(f.fd) + " is a packet-mode (O_DIRECT) pipe that serves no AutoFS mount: not supported");
      flags &= ~static_cast<uint32_t>(O_DIRECT);  // the kernel sets it again when it takes the pipe
    }
    files.entries.push_back(images::Entry{images::NewPipe(id, pipe_id, flags), {}});
    // Its owner and mode, once per pipe, when a restore (as root, with
    // pipe(2)) would not give them; the file itself says the others are root's, 0600.
    images::ImageFile& owners = File(images::PipeOwnersKind());
    uint32_t mode = f.st.st_mode & 07777;
    if ((f.st.st_uid != 0 || f.st.st_gid != 0 || mode != images::kPipeMode) && owned_pipes_.insert(pipe_id).second) {
      auto owner = std::make_unique<img::pipe_owner_entry>();
      owner->set_pipe_id(pipe_id);
      owner->set_uid(f.st.st_uid);
      owner->set_gid(f.st.st_gid);
      if (mode != images::kPipeMode) owner->set_mode(mode);
      owners.entries.push_back(images::Entry{std::move(owner), {}});
    }
    return autofs ? Status() : CollectPipeData(t, f, pipe_id, false);  // an AutoFS pipe is empty (checked with its mount)
  }
  if (S_ISFIFO(f.st.st_mode)) {
    uint32_t path_id = AddPathEntry(f.target, flags, 0, f.mnt_id);
    files.entries.push_back(images::Entry{images::NewFifo(id, pipe_id, path_id), {}});
    return CollectPipeData(t, f, pipe_id, true);
  }
  auto e = images::NewRegularFile(id, f.target, flags, f.pos, f.mnt_id);
  e->mutable_reg()->set_mode(f.st.st_mode);  // its type is checked before it is reopened
  files.entries.push_back(images::Entry{std::move(e), {}});
  return {};
}

Status Collector::CollectPipeData(const Task& t, const LiveFd& f, uint32_t pipe_id, bool fifo) {
  if (!data_done_.insert({fifo, pipe_id}).second) return {};
  auto contents = ReadPipe(t.Proc("fd/" + Str(f.fd)));
  if (!contents.ok()) return std::move(contents).error().Within("fd " + Str(f.fd));
  ++out_.counts.pipes;
  out_.counts.pipe_bytes += contents->data.size();
  auto e = std::make_unique<img::pipe_data_entry>();
  e->set_pipe_id(pipe_id);
  e->set_bytes(static_cast<uint32_t>(contents->data.size()));
  e->set_size(contents->capacity);
  File(fifo ? images::FifoDataKind() : images::PipesDataKind()).entries.push_back(images::Entry{std::move(e), std::move(contents->data)});
  return {};
}

Status Collector::CollectFsDirs(const Task& t) {
  RO_ASSIGN_OR_RETURN(std::string cwd, sys::ReadProcLink(t.Proc("cwd")));
  RO_ASSIGN_OR_RETURN(std::string root, sys::ReadProcLink(t.Proc("root")));
  uint64_t mounts[2] = {};  // of the cwd and the root
  for (int i = 0; i < 2; ++i) {
    const std::string& path = i == 0 ? cwd : root;
    RO_ASSIGN_OR_RETURN(UniqueFd dir, sys::OpenAt(AT_FDCWD, t.Proc(i == 0 ? "cwd" : "root"), O_PATH | O_DIRECTORY));
    struct stat st {};
    if (path.ends_with(" (deleted)") && ::fstat(dir.get(), &st) == 0 && st.st_nlink == 0) {
      return Refuse((i == 0 ? "its working directory " : "its root directory ") + path + " is deleted");
    }
    RO_ASSIGN_OR_RETURN(sys::FileIdentity held, sys::IdentityOf(dir));
    RO_TRY(CheckReachable((i == 0 ? "its working directory " : "its root directory ") + path, path, held, false));
    mounts[i] = held.mnt_id;
  }
  auto fs = std::make_unique<img::fs_entry>();
  fs->set_cwd_id(AddPathEntry(cwd, O_RDONLY | O_DIRECTORY, 0, static_cast<uint32_t>(mounts[0])));
  fs->set_root_id(AddPathEntry(root, O_RDONLY | O_DIRECTORY, 0, static_cast<uint32_t>(mounts[1])));
  if (long umask = sys::StatusOctal(t.info.status, "Umask"); umask >= 0) fs->set_umask(static_cast<uint32_t>(umask));
  File(images::FsKind(), static_cast<uint32_t>(t.pid)).entries.push_back(images::Entry{std::move(fs), {}});
  return {};
}

Status Collector::CheckProcPid(const LiveFd& f) {
  // "/proc/<digits>" or "/proc/<digits>/...": a process's own files.
  const std::string& p = f.target;
  size_t end = p.find('/', 6);
  std::string pid = p.rfind("/proc/", 0) == 0 ? p.substr(6, end == std::string::npos ? std::string::npos : end - 6) : "";
  if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos || !new_pid_) return {};
  // Numbered in the tree's PID namespace only by a proc the tree mounted
  // itself (made anew, for its namespace, at restore).
  auto m = std::find_if(mounts_.begin(), mounts_.end(), [&](const sys::MountInfo& x) { return x.mnt_id == f.mnt_id; });
  if (m != mounts_.end() && m->fstype == "proc") {
    if (!own_devices_) {
      RO_ASSIGN_OR_RETURN(std::set<uint32_t> own, OwnDevices());
      own_devices_ = std::move(own);
    }
    if (!IsExternal(*m, *own_devices_)) return {};
  }
  return Refuse("fd " + Str(f.fd) + " (" + f.target + ") is a file of process " + pid + " as a proc of another PID namespace than the tree's numbers it: "
              "a restore would open another process's");
}

Result<const UniqueFd*> Collector::NamespaceRoot() {
  if (!ns_root_) {
    auto root = sys::OpenNamespaceRoot(tree_.tasks().front().pid);
    if (!root.ok()) return std::move(root).error().Within("the root of the tree's mount namespace");
    ns_root_ = std::move(root).value();
  }
  return &ns_root_;
}

// A master's ioctl fd on its AutoFS mount's root: a restore opens it
// through /dev/autofs, covered or not.
bool Collector::OnAutofsRoot(const LiveFd& f) const {
  return std::any_of(mounts_.begin(), mounts_.end(), [&](const sys::MountInfo& m) {
    return m.mnt_id == f.mnt_id && m.fstype == "autofs" && m.root == "/" && m.mountpoint == f.target;
  });
}

Status Collector::CheckReachable(const std::string& what, const std::string& path, const sys::FileIdentity& held, bool writable) {
  // Many tasks hold the same file by the same path (a /dev/null they all
  // inherited): each pairing is resolved once.
  if (reachable_.count({path, held.dev, held.ino, held.mnt_id})) return {};
  RO_ASSIGN_OR_RETURN(const UniqueFd* root, NamespaceRoot());
  auto there = sys::IdentityAt(*root, path);
  if (!there.ok() && (there.error().err == ENOENT || there.error().err == ENOTDIR)) {
    return Refuse(what + ": nothing is at its path now (renamed, removed, or a mount hides it), and a restore reopens it by its path");
  }
  if (!there.ok()) return std::move(there).error().Within(what);
  if (there->dev != held.dev || there->ino != held.ino) {
    return Refuse(what + ": its path leads to another file now (a mount covers it, or it was replaced), and a restore reopens it by its path");
  }
  if (there->mnt_id == held.mnt_id) {
    reachable_.insert({path, held.dev, held.ino, held.mnt_id});
    return {};
  }
  if (ns_mounts_.empty()) {
    auto mounts = sys::ReadNamespaceMountInfo(tree_.tasks().front().pid);
    if (!mounts.ok()) return std::move(mounts).error().Within("the tree's mount namespace");
    for (const sys::MountInfo& m : *mounts) {
      bool ro = false;
      for (const std::string& o : sys::SplitOptions(m.mount_options)) ro |= o == "ro";
      for (const std::string& o : sys::SplitOptions(m.super_options)) ro |= o == "ro";
      ns_mounts_[m.mnt_id] = ro;
    }
  }
  std::string mounts = " (" + Str(static_cast<long long>(there->mnt_id)) + "; it is open through " + Str(static_cast<long long>(held.mnt_id));
  if (ns_mounts_.count(static_cast<uint32_t>(held.mnt_id)) != 0) {
    return Refuse(what + ": its path leads to the same file through another mount" + mounts + "), and a restore reopens it by its path");
  }
  if (writable && ns_mounts_[static_cast<uint32_t>(there->mnt_id)]) {
    return Refuse(what + ": open for writing through a mount outside the tree's mount namespace" + mounts +
                "), and its path in the tree reaches it through a read-only mount: a restore could not open it so");
  }
  // Open through a mount of another namespace (inherited from the tree's
  // starter, as a runtime's /dev/null): no restore can give it back; the
  // same file through the tree's own mount is what a restore gives.
  if (foreign_mounts_warned_.insert(static_cast<uint32_t>(held.mnt_id)).second) {
    out_.warnings.push_back(what + ": open through a mount outside the tree's mount namespace" + mounts +
                            "), as may be other files: restored through the tree's mounts of the same files");
  }
  reachable_.insert({path, held.dev, held.ino, held.mnt_id});
  return {};
}

}  // namespace ro::dump

namespace ro {

// Only /proc is read: readlink of each fd needs no stop, so a refusal here
// leaves every task's syscalls as they were (a freeze ends an epoll_wait
// with EINTR). Tasks that go meanwhile, or fds closed, are skipped.
Status PrecheckFds(pid_t root) {
  // A /proc of another PID namespace would name other tasks: the freeze
  // refuses to read it, with its own line.
  auto self = sys::ReadProcLink("/proc/self");
  if (!self.ok() || *self != std::to_string(::getpid())) return {};
  std::vector<pid_t> todo = {root};
  std::set<pid_t> seen = {root};
  for (size_t i = 0; i < todo.size(); ++i) {
    pid_t outer = todo[i];
    auto info = sys::ReadTask(outer);
    if (!info.ok()) continue;
    std::string who = "task " + std::to_string(outer);
    if (info->pid != outer) who = "task " + std::to_string(info->pid) + " (pid " + std::to_string(outer) + " here)";
    std::string dir = "/proc/" + std::to_string(outer) + "/fd";
    std::vector<int> fds;
    if (DIR* d = ::opendir(dir.c_str())) {
      while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] != '.') fds.push_back(std::atoi(e->d_name));
      }
      ::closedir(d);
    }
    std::sort(fds.begin(), fds.end());  // the order the full check reads them in
    for (int n : fds) {
      auto target = sys::ReadProcLink(dir + "/" + std::to_string(n));
      if (!target.ok()) continue;
      if (Status s = dump::RefusedByTarget(n, *target); !s.ok()) return std::move(s).error().Within(who);
    }
    auto children = sys::ReadChildren(outer);
    if (!children.ok()) continue;
    for (pid_t c : *children) {
      if (seen.insert(c).second) todo.push_back(c);
    }
  }
  return {};
}

}  // namespace ro
