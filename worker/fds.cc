#include "worker/fds.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <unistd.h>

#include <map>

namespace ro::worker {
namespace {

using images::FileKind;
using images::FilePlan;

// The status flags F_SETFL can change.
constexpr uint32_t kSettableFlags = O_APPEND | O_ASYNC | O_DIRECT | O_NOATIME | O_NONBLOCK;

std::string Holder(const FilePlan& f) {
  return "task " + std::to_string(f.first_holder) + " fd " + std::to_string(f.first_fd);
}

Error About(const FilePlan& f, Error e) { return e.Within(Holder(f)); }

// Moves `fd` to the file's parked slot (close-on-exec until it is placed).
Status Park(int fd, const FilePlan& f, const FdLayout& layout) {
  int slot = layout.parked_base + static_cast<int>(f.slot);
  if (::dup3(fd, slot, O_CLOEXEC) < 0) {
    int err = errno;
    ::close(fd);
    return SysError("dup3(" + std::to_string(fd) + ", " + std::to_string(slot) + ")", err);
  }
  ::close(fd);
  return {};
}

Status SetStatusFlags(int fd, uint32_t flags, const std::string& what) {
  if ((flags & kSettableFlags) == 0) return {};  // fresh descriptions have none set
  int current = ::fcntl(fd, F_GETFL);
  if (current < 0) return SysError("fcntl(" + what + ", F_GETFL)");
  int want = (current & ~static_cast<int>(kSettableFlags)) | static_cast<int>(flags & kSettableFlags);
  if (want != current && ::fcntl(fd, F_SETFL, want) != 0) return SysError("fcntl(" + what + ", F_SETFL, 0" + std::to_string(want) + ")");
  return {};
}

// Another open file description of the object behind `fd`.
Result<int> Reopen(int fd, uint32_t flags, const FdLayout& layout) {
  std::string link = "self/fd/" + std::to_string(fd);
  int opened = ::openat(layout.proc_fd, link.c_str(), static_cast<int>((flags & ~kSettableFlags) | O_CLOEXEC) & ~O_CREAT);
  if (opened < 0) return SysError("open(/proc/" + link + ")");
  return opened;
}

Status FillPipe(int write_fd, const images::PipeDataPlan* data, const std::string& what, shm::Arena& arena) {
  if (data == nullptr) return {};
  RO_TRY(arena.Fault(shm::FaultPoint::kPipeData, "write back the contents of " + what));
  if (data->capacity != 0 && ::fcntl(write_fd, F_SETPIPE_SZ, static_cast<int>(data->capacity)) < 0) {
    return SysError("fcntl(" + what + ", F_SETPIPE_SZ, " + std::to_string(data->capacity) + ")");
  }
  size_t off = 0;
  while (off < data->data.size()) {
    ssize_t n = ::write(write_fd, data->data.data() + off, data->data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return SysError("write " + std::to_string(data->data.size()) + " bytes back into " + what);
    off += static_cast<size_t>(n);
  }
  return {};
}

// One pipe: every description of it, from one pipe2().
Status CreatePipe(const std::vector<const FilePlan*>& ofds, const images::RestorePlan& plan, const FdLayout& layout,
                  shm::Arena& arena) {
  const FilePlan& first = *ofds.front();
  std::string what = "pipe " + std::to_string(first.pipe_id);
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return About(first, SysError("pipe2 for " + what));
  if (Status s = FillPipe(p[1], plan.PipeData(false, first.pipe_id), what, arena); !s.ok()) {
    ::close(p[0]);
    ::close(p[1]);
    return About(first, std::move(s).error());
  }
  int ends[2] = {p[0], p[1]};
  bool used[2] = {false, false};
  Status result;
  for (const FilePlan* f : ofds) {
    int end = (f->flags & O_ACCMODE) == O_WRONLY ? 1 : 0;
    int slot = layout.parked_base + static_cast<int>(f->slot);
    if (!used[end]) {
      // The first description of an end is the one pipe2() made.
      used[end] = true;
      if (::dup3(ends[end], slot, O_CLOEXEC) < 0) {
        result = About(*f, SysError("dup3(" + std::to_string(ends[end]) + ", " + std::to_string(slot) + ")"));
        break;
      }
    } else {
      auto again = Reopen(ends[end], f->flags & O_ACCMODE, layout);
      if (!again.ok()) {
        result = About(*f, std::move(again).error());
        break;
      }
      if (Status s = Park(*again, *f, layout); !s.ok()) {
        result = About(*f, std::move(s).error());
        break;
      }
    }
    if (Status s = SetStatusFlags(slot, f->flags, what); !s.ok()) {
      result = About(*f, std::move(s).error());
      break;
    }
  }
  ::close(p[0]);
  ::close(p[1]);
  return result;
}

// One FIFO: a read-write handle keeps it open (and never blocks) while its
// descriptions are opened and its contents written back.
Status CreateFifo(const std::vector<const FilePlan*>& ofds, const images::RestorePlan& plan, const FdLayout& layout,
                  shm::Arena& arena) {
  const FilePlan& first = *ofds.front();
  int keeper = ::open(first.path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (keeper < 0) return About(first, SysError("open FIFO " + first.path));
  Status result = FillPipe(keeper, plan.PipeData(true, first.pipe_id), "FIFO " + first.path, arena);
  for (const FilePlan* f : ofds) {
    if (!result.ok()) break;
    auto fd = Reopen(keeper, f->flags & O_ACCMODE, layout);
    if (!fd.ok()) {
      result = About(*f, std::move(fd).error());
      break;
    }
    result = SetStatusFlags(*fd, f->flags, "FIFO " + f->path);
    if (result.ok()) result = Park(*fd, *f, layout);
    if (!result.ok()) result = About(*f, std::move(result).error());
  }
  ::close(keeper);
  return result;
}

Status CreateRegular(const FilePlan& f, const FdLayout& layout) {
  int flags = static_cast<int>(f.flags & ~static_cast<uint32_t>(O_CREAT | O_EXCL | O_TRUNC)) | O_CLOEXEC;
  int fd = ::open(f.path.c_str(), flags);
  if (fd < 0) return About(f, SysError("open " + f.path));
  if (f.pos != 0 && ::lseek(fd, static_cast<off_t>(f.pos), SEEK_SET) < 0 && errno != ESPIPE) {
    Error e = SysError("lseek(" + f.path + ", " + std::to_string(f.pos) + ")");
    ::close(fd);
    return About(f, e);
  }
  return Park(fd, f, layout);
}

void CloseRange(int from, int to_inclusive) {
  if (from <= to_inclusive) ::close_range(static_cast<unsigned>(from), static_cast<unsigned>(to_inclusive), 0);
}

}  // namespace

FdLayout LayoutFor(const images::RestorePlan& plan) {
  FdLayout l;
  l.parked_base = std::max(plan.max_fd + 1, 3);
  l.parked_end = l.parked_base + static_cast<int>(plan.parked_slots);
  l.proc_fd = l.parked_end;
  l.log_fd = l.parked_end + 1;
  return l;
}

void CloseInherited(const FdLayout& layout) {
  CloseRange(0, layout.proc_fd - 1);
  CloseRange(layout.proc_fd + 1, layout.log_fd - 1);
  int last = layout.log_fd;
  if (layout.autofs_fd >= 0) {
    CloseRange(layout.log_fd + 1, layout.autofs_fd - 1);
    last = layout.autofs_fd;
  }
  ::close_range(static_cast<unsigned>(last + 1), ~0U, 0);
}

void DropUnkept(const images::TaskPlan& t, const images::RestorePlan& plan, const FdLayout& layout) {
  int next = layout.parked_base;
  for (uint32_t id : t.keeps) {
    int slot = layout.parked_base + static_cast<int>(plan.files.at(id).slot);
    CloseRange(next, slot - 1);
    next = slot + 1;
  }
  CloseRange(next, layout.parked_end - 1);
}

Status CreateFiles(const images::TaskPlan& t, const images::RestorePlan& plan, const FdLayout& layout,
                   shm::Arena& arena) {
  size_t i = 0;
  while (i < t.creates.size()) {
    const FilePlan& f = plan.files.at(t.creates[i]);
    if (Status s = arena.Fault(shm::FaultPoint::kFileCreate, "create file " + std::to_string(f.id)); !s.ok()) {
      return About(f, std::move(s).error());
    }
    if (f.kind == FileKind::kRegular) {
      RO_TRY(CreateRegular(f, layout));
      ++i;
      continue;
    }
    std::vector<const FilePlan*> group;
    while (i < t.creates.size()) {
      const FilePlan& g = plan.files.at(t.creates[i]);
      if (g.kind != f.kind || g.pipe_id != f.pipe_id) break;
      group.push_back(&g);
      ++i;
    }
    RO_TRY(f.kind == FileKind::kPipe ? CreatePipe(group, plan, layout, arena) : CreateFifo(group, plan, layout, arena));
  }
  return {};
}

Status PlaceFds(const images::TaskPlan& t, const images::RestorePlan& plan, const FdLayout& layout, shm::Arena& arena) {
  for (const images::FdPlan& fd : t.fds) {
    int slot = layout.parked_base + static_cast<int>(plan.files.at(fd.file_id).slot);
    RO_TRY(arena.Fault(shm::FaultPoint::kFdPlace, "dup3(" + std::to_string(slot) + ", " + std::to_string(fd.fd) + ")"));
    if (::dup3(slot, fd.fd, fd.cloexec ? O_CLOEXEC : 0) < 0) {
      return SysError("dup3(" + std::to_string(slot) + ", " + std::to_string(fd.fd) + ")");
    }
  }
  CloseRange(layout.parked_base, layout.parked_end - 1);
  return {};
}

void CloseAllButOwn(const images::TaskPlan& t, const FdLayout& layout, bool keep_log) {
  int next = 0;
  for (const images::FdPlan& fd : t.fds) {
    CloseRange(next, fd.fd - 1);
    next = fd.fd + 1;
  }
  if (keep_log && next <= layout.log_fd) {
    CloseRange(next, layout.log_fd - 1);
    ::close_range(static_cast<unsigned>(layout.log_fd + 1), ~0U, 0);
  } else {
    ::close_range(static_cast<unsigned>(next), ~0U, 0);
  }
}

}  // namespace ro::worker
