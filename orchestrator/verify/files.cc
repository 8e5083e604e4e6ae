// verify, files: each task's fd table as the images have it: the same
// numbers, kinds and paths, flags and close-on-exec, the same open file
// descriptions shared (kcmp), the ends of one pipe on one pipe.
#include <fcntl.h>
#include <sys/stat.h>

#include <fmt/format.h>

#include <map>

#include "orchestrator/verify/verifier.h"
#include "sys/files.h"
#include "sys/proc.h"
#include "sys/proc_files.h"
#include "sys/process.h"

namespace ro::verify {

void Verifier::CompareFds() {
  std::map<uint32_t, std::pair<pid_t, int>> first_of_file;
  std::map<uint32_t, std::string> pipe_target;
  for (const auto& t : plan_.tasks) {
    auto it = live_.find(t.pid);
    if (t.kind != images::TaskKind::kAlive || it == live_.end()) continue;
    pid_t outer = it->second.info.outer;
    std::string who = "task " + std::to_string(t.pid);
    auto table = sys::ReadFdTable(outer);
    if (!table.ok()) {
      Diff(who + ": " + table.error().ToString());
      continue;
    }
    std::map<int, const sys::FdEntry*> live_fds;
    for (const sys::FdEntry& e : *table) live_fds[e.fd] = &e;
    for (const auto& fd : t.fds) {
      std::string where = who + " fd " + std::to_string(fd.fd);
      auto found = live_fds.find(fd.fd);
      if (found == live_fds.end()) {
        Diff(where + ": missing");
        continue;
      }
      const sys::FdEntry& l = *found->second;
      live_fds.erase(found);
      const images::FilePlan& f = plan_.files.at(fd.file_id);
      switch (f.kind) {
        case images::FileKind::kPipe: {
          auto [at, fresh] = pipe_target.emplace(f.pipe_id, l.target);
          if (l.target.rfind("pipe:", 0) != 0) {
            Diff(where + ": " + l.target + " is not a pipe");
          } else if (at->second != l.target) {
            Diff(where + ": not the same pipe as the other ends of pipe " + std::to_string(f.pipe_id));
          }
          // Compared when the images say: an entry, or a pipe-owners.img
          // without one (root's, 0600). CRIU's dumps keep neither.
          auto owner = plan_.pipe_owners.find(f.pipe_id);
          if (owner != plan_.pipe_owners.end() || plan_.pipe_owners_known) {
            images::PipeOwner want = owner != plan_.pipe_owners.end() ? owner->second : images::PipeOwner{};
            if (l.st.st_uid != want.uid || l.st.st_gid != want.gid) {
              Diff(where + ": pipe owned by " + std::to_string(l.st.st_uid) + ":" + std::to_string(l.st.st_gid) + ", images say " +
                   std::to_string(want.uid) + ":" + std::to_string(want.gid));
            }
            if ((l.st.st_mode & 07777) != want.mode) {
              Diff(where + fmt::format(": pipe mode {:04o}, images say {:04o}", l.st.st_mode & 07777, want.mode));
            }
          }
          break;
        }
        case images::FileKind::kFifo:
        case images::FileKind::kRegular:
          if (l.target != f.path) {
            Diff(where + ": " + l.target + ", images say " + f.path);
          } else if (!(S_ISCHR(l.st.st_mode) && sys::IsTerminalDevice(l.st.st_rdev))) {  // --shell-job: the caller's
            // An AutoFS root is reached through /dev/autofs, not its path:
            // only its mount is compared.
            CompareReached(where, f.autofs_mnt_id != 0 ? "" : l.target, {l.st.st_dev, l.st.st_ino, l.mnt_id}, f.mnt_id);
          }
          break;
      }
      unsigned mask = O_ACCMODE | O_NONBLOCK | O_APPEND | O_PATH;
      if ((l.flags & mask) != (f.flags & mask)) Diff(where + ": status flags differ");
      if (((l.flags & O_CLOEXEC) != 0) != fd.cloexec) Diff(where + ": close-on-exec differs");
      auto [first, fresh] = first_of_file.emplace(fd.file_id, std::make_pair(outer, fd.fd));
      if (!fresh && !sys::KcmpSame(first->second.first, outer, sys::KcmpType::kFile,
                                   static_cast<unsigned long>(first->second.second), static_cast<unsigned long>(fd.fd))) {
        Diff(where + ": does not share the open file description it had");
      }
    }
    for (const auto& [extra, e] : live_fds) Diff(who + " fd " + std::to_string(extra) + ": not in the images");
    CompareFsDirs(t, outer, who);
  }
}

void Verifier::CompareFsDirs(const images::TaskPlan& t, pid_t outer, const std::string& who) {
  bool exec = t.resume_mode == images::ResumeMode::kExec && t.resume && !t.resume->cwd.empty();
  const std::pair<const char*, std::pair<std::string, int64_t>> dirs[] = {
      {"cwd", {exec ? t.resume->cwd : t.cwd, exec ? -1 : t.cwd_mnt_id}}, {"root", {t.root, t.root_mnt_id}}};
  for (const auto& [link, want] : dirs) {
    if (want.first.empty()) continue;
    std::string where = who + " " + link;
    std::string proc = "/proc/" + std::to_string(outer) + "/" + link;
    auto path = sys::ReadProcLink(proc);
    if (!path.ok()) {
      Diff(where + ": " + path.error().ToString());
      continue;
    }
    if (*path != want.first) {
      Diff(where + ": " + *path + ", images say " + want.first);
      continue;
    }
    auto held = [&]() -> Result<sys::FileIdentity> {
      RO_ASSIGN_OR_RETURN(UniqueFd dir, sys::OpenAt(AT_FDCWD, proc, O_PATH | O_DIRECTORY));
      return sys::IdentityOf(dir);
    }();
    if (!held.ok()) {
      Diff(where + ": " + held.error().ToString());
      continue;
    }
    CompareReached(where, *path, *held, want.second);
  }
}

bool Verifier::InTreeNamespace(uint64_t mnt_id) {
  if (!ns_mounts_) {
    ns_mounts_.emplace();
    auto mounts = sys::ReadNamespaceMountInfo(root_);
    if (!mounts.ok()) Diff("the tree's mount namespace: " + mounts.error().ToString());
    if (mounts.ok()) {
      for (const sys::MountInfo& m : *mounts) ns_mounts_->insert(m.mnt_id);
    }
  }
  return ns_mounts_->count(static_cast<uint32_t>(mnt_id)) != 0;
}

void Verifier::CompareReached(const std::string& where, const std::string& path, const sys::FileIdentity& held,
                              int64_t image_mnt_id) {
  if (!ns_root_) {
    auto root = sys::OpenNamespaceRoot(root_);
    if (!root.ok()) Diff("the root of the tree's mount namespace: " + root.error().ToString());
    ns_root_ = root.ok() ? std::move(root).value() : UniqueFd();
  }
  if (!*ns_root_) return;  // said once
  auto there = path.empty() ? Result<sys::FileIdentity>(held) : sys::IdentityAt(*ns_root_, path);
  if (!there.ok()) {
    Diff(where + ": its path leads nowhere: " + there.error().ToString());
  } else if (there->dev != held.dev || there->ino != held.ino) {
    Diff(where + ": its path leads to another file than the one it has open");
  } else if (there->mnt_id != held.mnt_id && InTreeNamespace(held.mnt_id)) {
    // (Open through a mount of another namespace, as the dump accepts it
    // with a warning, it is what a restore of it gives.)
    Diff(where + ": its path leads to its file through another mount than the one it has it open through");
  }
  // Mounts are paired only in a mount namespace of the tree's own.
  auto live = image_mnt_id > 0 ? live_mount_of_.find(static_cast<uint32_t>(image_mnt_id)) : live_mount_of_.end();
  if (live != live_mount_of_.end() && live->second != held.mnt_id) {
    Diff(where + ": on mount " + std::to_string(held.mnt_id) + ", not on the one the images say (restored as " +
         std::to_string(live->second) + ")");
  }
}

}  // namespace ro::verify
