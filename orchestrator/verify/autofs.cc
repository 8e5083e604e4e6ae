// verify, autofs: a catatonic mount is catatonic; any other is owned by its
// master's process group, through the pipe its master holds at the dumped
// fd. fd=, pgrp= and pipe_ino= are compared by what they name, not as
// numbers (they change with every restore).
#include <algorithm>

#include "orchestrator/verify/verifier.h"
#include "sys/proc_files.h"

namespace ro::verify {

void Verifier::CompareAutofs(const images::MountPlan& m, const sys::MountInfo& l, const std::string& where) {
  if (images::RestoreOf(m.fstype_code) != images::FsRestore::kAutofs) return;
  const images::AutofsPlan* a = nullptr;
  for (const auto& candidate : plan_.autofs) {
    if (candidate.mnt_id == m.mnt_id) a = &candidate;
  }
  if (a == nullptr) return;  // a bind of another AutoFS mount
  if (a->catatonic) {
    if (l.SuperOption("fd") != "-1") Diff(where + ": not catatonic");
    return;
  }
  auto master = live_.find(a->master);
  if (master == live_.end()) return;  // reported with the tasks
  const sys::TaskInfo& task = master->second.info;
  if (l.SuperOption("pgrp") != std::to_string(task.outer_pgid)) Diff(where + ": not owned by its master's process group");
  // fd= names the write end the master handed over: the one it holds, or
  // the temporary one put where the dumped mount had it.
  int want_fd = a->write_end_closed ? a->write_fd : a->pipe_fd;
  if (want_fd >= 0 && l.SuperOption("fd") != std::to_string(want_fd)) {
    Diff(where + ": fd=" + l.SuperOption("fd") + ", images say fd=" + std::to_string(want_fd));
  }
  auto table = sys::ReadFdTable(task.outer);
  if (!table.ok()) {
    Diff(where + ": its master's fds: " + table.error().ToString());
    return;
  }
  auto fd = std::find_if(table->begin(), table->end(), [&](const sys::FdEntry& e) { return e.fd == a->pipe_fd; });
  if (fd == table->end() || l.SuperOption("pipe_ino") != std::to_string(fd->st.st_ino)) {
    Diff(where + ": its pipe is not the one its master holds at fd " + std::to_string(a->pipe_fd));
  }
}

}  // namespace ro::verify
