#include "worker/files.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <map>

#include "sys/autofs_dev.h"
#include "sys/files.h"
#include "sys/io.h"

namespace ro::worker {
namespace {

using images::FileKind;
using images::FilePlan;

// The status flags F_SETFL can change.
constexpr uint32_t kSettableFlags = O_APPEND | O_ASYNC | O_DIRECT | O_NOATIME | O_NONBLOCK;

const char* TypeName(uint32_t type) {
  switch (type) {
    case S_IFREG: return "a regular file";
    case S_IFDIR: return "a directory";
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
    case S_IFIFO: return "a FIFO";
    case S_IFSOCK: return "a socket";
    case S_IFLNK: return "a symlink";
    default: return "of an unknown type";
  }
}

Error About(const FilePlan& f, Error e) {
  return e.Within("task " + std::to_string(f.first_holder) + " fd " + std::to_string(f.first_fd));
}

int SlotFd(const FilePlan& f, const FdLayout& layout) { return layout.parked_base + static_cast<int>(f.slot); }

// Moves `fd` to the file's parked slot (close-on-exec until it is placed).
Status Park(UniqueFd fd, const FilePlan& f, const FdLayout& layout) { return sys::Dup3(fd.get(), SlotFd(f, layout), O_CLOEXEC); }

Status SetStatusFlags(int fd, uint32_t flags) {
  if ((flags & kSettableFlags) == 0) return {};  // fresh descriptions have none set
  RO_ASSIGN_OR_RETURN(int current, sys::StatusFlags(fd));
  int want = (current & ~static_cast<int>(kSettableFlags)) | static_cast<int>(flags & kSettableFlags);
  return want == current ? Status() : sys::SetStatusFlags(fd, want);
}

// Another open file description of the object behind `fd`.
Result<UniqueFd> Reopen(int fd, uint32_t flags, const FdLayout& layout) {
  std::string link = "self/fd/" + std::to_string(fd);
  int open_flags = static_cast<int>(flags & ~kSettableFlags) & ~O_CREAT;
  return sys::OpenAt(layout.proc_fd, link, open_flags, 0, "/proc/" + link);
}

Status FillPipe(int write_fd, const images::PipeDataPlan* data, const std::string& what, shm::Arena& arena) {
  if (data == nullptr) return {};
  RO_TRY(arena.Fault(shm::FaultPoint::kPipeData, "write back the contents of " + what));
  if (data->capacity != 0) RO_TRY(sys::SetPipeCapacity(write_fd, static_cast<int>(data->capacity)));
  return sys::WriteAll(write_fd, data->data, what);
}

// One pipe: every description of it, from one pipe2().
Status CreatePipe(const std::vector<const FilePlan*>& ofds, const images::RestorePlan& plan, const FdLayout& layout,
                  shm::Arena& arena) {
  const FilePlan& first = *ofds.front();
  std::string what = "pipe " + std::to_string(first.pipe_id);
  auto made = sys::Pipe(0);
  if (!made.ok()) return About(first, std::move(made).error().Within(what));
  if (auto owner = plan.pipe_owners.find(first.pipe_id); owner != plan.pipe_owners.end()) {
    // The mode after the owner: fchown(2) clears set-user-ID and set-group-ID.
    Status s = sys::Chown(made->read.get(), owner->second.uid, owner->second.gid);
    if (s.ok() && owner->second.mode != images::kPipeMode) s = sys::Chmod(made->read.get(), owner->second.mode);
    if (!s.ok()) return About(first, std::move(s).error().Within(what));
  }
  const UniqueFd* ends[2] = {&made->read, &made->write};
  if (Status s = FillPipe(made->write.get(), plan.PipeData(false, first.pipe_id), what, arena); !s.ok()) {
    return About(first, std::move(s).error());
  }
  bool used[2] = {false, false};
  for (const FilePlan* f : ofds) {
    int end = (f->flags & O_ACCMODE) == O_WRONLY ? 1 : 0;
    Status s;
    if (!used[end]) {
      // The first description of an end is the one pipe2() made.
      used[end] = true;
      s = sys::Dup3(ends[end]->get(), SlotFd(*f, layout), O_CLOEXEC);
    } else {
      auto again = Reopen(ends[end]->get(), f->flags & O_ACCMODE, layout);
      s = again.ok() ? Park(std::move(again).value(), *f, layout) : Status(std::move(again).error());
    }
    if (s.ok()) s = SetStatusFlags(SlotFd(*f, layout), f->flags);
    if (!s.ok()) return About(*f, std::move(s).error());
  }
  return {};
}

// What `path` names, looked at without opening it for anything (O_PATH, the
// last component not followed): what the image says it is, or an error.
// `type` is an S_IFMT value, 0 for any of a regular file, a directory or a
// device.
Result<UniqueFd> LookAt(const std::string& path, uint32_t type) {
  RO_ASSIGN_OR_RETURN(UniqueFd at, sys::OpenAt(AT_FDCWD, path, O_PATH | O_NOFOLLOW));
  struct stat st {};
  if (::fstat(at.get(), &st) != 0) return SysError("fstat " + path);
  uint32_t have = st.st_mode & S_IFMT;
  bool ok = type != 0 ? have == type : (have == S_IFREG || have == S_IFDIR || have == S_IFCHR || have == S_IFBLK);
  if (!ok) {
    return Fail(path + " is " + TypeName(have) + ", the images say " + (type != 0 ? TypeName(type) : "a file, directory or device") +
                ": not opened");
  }
  return at;
}

// One FIFO: a read-write handle keeps it open (and never blocks) while its
// descriptions are opened and its contents written back. It is checked to
// be a FIFO before it is opened: nothing but a pipe is ever written to.
Status CreateFifo(const std::vector<const FilePlan*>& ofds, const images::RestorePlan& plan, const FdLayout& layout,
                  shm::Arena& arena) {
  const FilePlan& first = *ofds.front();
  auto at = LookAt(first.path, S_IFIFO);
  if (!at.ok()) return About(first, std::move(at).error());
  auto keeper = Reopen(at->get(), O_RDWR | O_NONBLOCK, layout);
  if (!keeper.ok()) return About(first, std::move(keeper).error());
  if (Status s = FillPipe(keeper->get(), plan.PipeData(true, first.pipe_id), "FIFO " + first.path, arena); !s.ok()) {
    return About(first, std::move(s).error());
  }
  for (const FilePlan* f : ofds) {
    auto fd = Reopen(keeper->get(), f->flags & O_ACCMODE, layout);
    Status s = fd.ok() ? SetStatusFlags(fd->get(), f->flags) : Status(fd.error());
    if (s.ok()) s = Park(std::move(fd).value(), *f, layout);
    if (!s.ok()) return About(*f, std::move(s).error());
  }
  return {};
}

// The root of an AutoFS mount of the tree, through /dev/autofs: found so
// even when a mount it triggered covers it.
Result<UniqueFd> OpenAutofsRoot(const FilePlan& f, const images::RestorePlan& plan, const FdLayout& layout,
                                const shm::Arena& arena) {
  int index = plan.MountIndex(f.autofs_mnt_id);
  std::optional<uint64_t> dev = index < 0 ? std::nullopt : arena.MountDevice(static_cast<size_t>(index));
  if (!dev) return Fail("AutoFS mount " + f.path + " was not mounted");
  RO_ASSIGN_OR_RETURN(sys::AutofsDevice device, sys::AutofsDevice::FromFd(layout.autofs_fd));
  return device.OpenMount(f.path, static_cast<dev_t>(*dev));
}

// A file, directory or device, checked to be of the type the image says
// (when it says) before it is opened with its flags.
Status CreateRegular(const FilePlan& f, const images::RestorePlan& plan, const FdLayout& layout, const shm::Arena& arena) {
  uint32_t flags = f.flags & ~static_cast<uint32_t>(O_CREAT | O_EXCL | O_TRUNC | O_NOFOLLOW);
  auto at = f.autofs_mnt_id != 0 ? OpenAutofsRoot(f, plan, layout, arena) : LookAt(f.path, f.mode ? (*f.mode & S_IFMT) : 0);
  auto fd = at.ok() ? Reopen(at->get(), flags, layout) : Result<UniqueFd>(at.error());
  Status s = fd.ok() ? SetStatusFlags(fd->get(), flags) : Status(fd.error());
  if (s.ok() && f.pos != 0) s = sys::SeekTo(fd->get(), f.pos, f.path);
  if (s.ok()) s = Park(std::move(fd).value(), f, layout);
  return s.ok() ? s : About(f, std::move(s).error());
}

unsigned U(int fd) { return static_cast<unsigned>(fd); }

}  // namespace

FdLayout LayoutFor(const images::RestorePlan& plan) {
  FdLayout l;
  l.parked_base = std::max(plan.max_fd + 1, 3);
  l.parked_end = l.parked_base + static_cast<int>(plan.parked_slots);
  l.proc_fd = l.parked_end;
  l.log_fd = l.parked_end + 1;
  l.images_fd = l.parked_end + 2;
  return l;
}

void CloseInherited(const FdLayout& layout) {
  // The service fds are increasing from proc_fd on: close what lies between.
  int keep[] = {layout.proc_fd, layout.log_fd, layout.images_fd, layout.autofs_fd};
  int next = 0;
  for (int fd : keep) {
    if (fd < 0) continue;
    if (fd > next) sys::CloseRange(U(next), U(fd - 1));
    next = fd + 1;
  }
  sys::CloseRange(U(next), ~0U);
}

void DropUnkept(const images::TaskPlan& t, const images::RestorePlan& plan, const FdLayout& layout) {
  int next = layout.parked_base;
  for (uint32_t id : t.keeps) {
    int slot = SlotFd(plan.files.at(id), layout);
    if (slot > next) sys::CloseRange(U(next), U(slot - 1));
    next = slot + 1;
  }
  if (layout.parked_end > next) sys::CloseRange(U(next), U(layout.parked_end - 1));
}

Status CreateFiles(const images::TaskPlan& t, const images::RestorePlan& plan, const FdLayout& layout,
                   shm::Arena& arena) {
  size_t i = 0;
  while (i < t.creates.size()) {
    const FilePlan& f = plan.files.at(t.creates[i]);
    if (Status s = arena.Fault(shm::FaultPoint::kFileCreate, "create file " + std::to_string(f.id)); !s.ok()) {
      return About(f, std::move(s).error());
    }
    // The descriptions of one pipe or FIFO are consecutive: made together.
    std::vector<const FilePlan*> group;
    while (i < t.creates.size()) {
      const FilePlan& g = plan.files.at(t.creates[i]);
      if (!group.empty() && (f.kind == FileKind::kRegular || g.kind != f.kind || g.pipe_id != f.pipe_id)) break;
      group.push_back(&g);
      ++i;
    }
    switch (f.kind) {
      case FileKind::kRegular: RO_TRY(CreateRegular(f, plan, layout, arena)); break;
      case FileKind::kPipe: RO_TRY(CreatePipe(group, plan, layout, arena)); break;
      case FileKind::kFifo: RO_TRY(CreateFifo(group, plan, layout, arena)); break;
    }
  }
  return {};
}

Status PlaceFds(const images::TaskPlan& t, const images::RestorePlan& plan, const FdLayout& layout, shm::Arena& arena) {
  for (const images::FdPlan& fd : t.fds) {
    int slot = SlotFd(plan.files.at(fd.file_id), layout);
    RO_TRY(arena.Fault(shm::FaultPoint::kFdPlace, "dup3(" + std::to_string(slot) + ", " + std::to_string(fd.fd) + ")"));
    RO_TRY(sys::Dup3(slot, fd.fd, fd.cloexec ? O_CLOEXEC : 0));
  }
  if (layout.parked_end > layout.parked_base) sys::CloseRange(U(layout.parked_base), U(layout.parked_end - 1));
  return {};
}

void CloseAllButOwn(const images::TaskPlan& t, std::vector<int> keep) {
  for (const images::FdPlan& fd : t.fds) keep.push_back(fd.fd);
  std::sort(keep.begin(), keep.end());
  int next = 0;
  for (int fd : keep) {
    if (fd < next) continue;
    if (fd > next) sys::CloseRange(U(next), U(fd - 1));
    next = fd + 1;
  }
  sys::CloseRange(U(next), ~0U);
}

}  // namespace ro::worker
