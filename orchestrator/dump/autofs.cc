// The dump's AutoFS: each AutoFS superblock's state as CRIU keeps it
// (autofs-<dev>.img), with its master found through the mount's pipe:
// the task whose pid is pgrp reads the pipe with inode pipe_ino.
#include <fcntl.h>

#include <set>

#include "images/kinds.h"
#include "orchestrator/dump/collector.h"
#include "sys/files.h"
#include "sys/mount_api.h"

namespace ro::dump {

Status Collector::CollectAutofs(const sys::MountInfo& m, uint32_t dev) {
  auto need = [&](const char* key) -> Result<long long> {
    auto v = IntOption(m, key);
    if (!v) return Fail("option " + std::string(key) + "= is missing or not a number in \"" + m.super_options + "\"");
    return *v;
  };
  auto e = std::make_unique<img::autofs_entry>();
  RO_ASSIGN_OR_RETURN(long long fd, need("fd"));
  RO_ASSIGN_OR_RETURN(long long pgrp, need("pgrp"));
  RO_ASSIGN_OR_RETURN(long long timeout, need("timeout"));
  RO_ASSIGN_OR_RETURN(long long minproto, need("minproto"));
  RO_ASSIGN_OR_RETURN(long long maxproto, need("maxproto"));
  std::set<std::string> opts;
  for (const std::string& o : sys::SplitOptions(m.super_options)) opts.insert(o);
  int mode = opts.count("direct") ? 0 : opts.count("offset") ? 2 : opts.count("indirect") ? 1 : -1;
  if (mode < 0) return Fail("none of direct, indirect or offset is in \"" + m.super_options + "\"");
  e->set_timeout(static_cast<int32_t>(timeout));
  e->set_minproto(static_cast<int32_t>(minproto));
  e->set_maxproto(static_cast<int32_t>(maxproto));
  e->set_mode(mode);
  if (auto uid = IntOption(m, "uid")) e->set_uid(static_cast<int32_t>(*uid));
  if (auto gid = IntOption(m, "gid")) e->set_gid(static_cast<int32_t>(*gid));
  auto catatonic = [&] {
    e->set_fd(-1);
    e->set_pgrp(static_cast<int32_t>(pgrp));
  };
  if (fd == -1) {
    catatonic();
  } else {
    RO_ASSIGN_OR_RETURN(long long pipe_ino, need("pipe_ino"));
    auto holders = pipes_.find(static_cast<ino_t>(pipe_ino));  // who in the tree holds the mount's pipe
    bool held = holders != pipes_.end();
    auto master = by_outer_.find(static_cast<pid_t>(pgrp));
    const Task* owner = master == by_outer_.end() ? nullptr : &tasks_[master->second];
    std::optional<int> read_fd;
    if (owner != nullptr && !owner->zombie) {
      for (const auto& [n, f] : fds_[owner->outer]) {
        if (f.target.rfind("pipe:[", 0) == 0 && static_cast<long long>(f.st.st_ino) == pipe_ino && (f.flags & O_ACCMODE) != O_WRONLY) {
          read_fd = n;
          break;
        }
      }
    }
    if (!read_fd && held) {
      return Refuse("its pipe (inode " + Str(pipe_ino) + ") is held by " + holders->second.first +
                  ", but not read by its master, the leader of process group " + Str(pgrp) +
                  " (control delegated to another task is not supported)");
    }
    if (!read_fd && owner == nullptr && ::access(("/proc/" + Str(pgrp)).c_str(), F_OK) == 0) {
      return Refuse("its master, process group " + Str(pgrp) + ", is outside the tree");
    }
    if (!read_fd) {
      out_.warnings.push_back("AutoFS mount " + m.mountpoint + ": nobody in the tree holds its pipe (its master is gone); dumped catatonic");
      catatonic();
    } else {
      // A pending request would be lost: the kernel waits for its answer.
      std::string path = owner->Proc("fd/" + Str(*read_fd));
      RO_ASSIGN_OR_RETURN(UniqueFd probe, sys::OpenAt(AT_FDCWD, path, O_RDONLY | O_NONBLOCK));
      RO_ASSIGN_OR_RETURN(int queued, sys::QueuedBytes(probe.get()));
      if (queued > 0) {
        return SysError("its pipe (inode " + Str(pipe_ino) + ", " + owner->who + " fd " + Str(*read_fd) + ") holds " + Str(queued) +
                            " bytes of an unanswered request: try again once the master has read it",
                        kErrTryAgain);
      }
      auto write_end = fds_[owner->outer].find(static_cast<int>(fd));
      bool holds_write_end = write_end != fds_[owner->outer].end() && static_cast<long long>(write_end->second.st.st_ino) == pipe_ino &&
                             (write_end->second.flags & O_ACCMODE) == O_WRONLY;
      e->set_fd(static_cast<int32_t>(fd));
      e->set_pgrp(owner->pid);
      if (!holds_write_end) e->set_read_fd(*read_fd);
    }
  }
  File(images::AutofsKind(), dev).entries.push_back(images::Entry{std::move(e), {}});
  return {};
}

}  // namespace ro::dump
