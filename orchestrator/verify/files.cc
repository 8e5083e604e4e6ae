// verify, files: each task's fd table as the images have it: the same
// numbers, kinds and paths, flags and close-on-exec, the same open file
// descriptions shared (kcmp), the ends of one pipe on one pipe.
#include <fcntl.h>

#include <map>

#include "orchestrator/verify/verifier.h"
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
          break;
        }
        case images::FileKind::kFifo:
        case images::FileKind::kRegular:
          if (l.target != f.path) Diff(where + ": " + l.target + ", images say " + f.path);
          break;
      }
      unsigned mask = O_ACCMODE | O_NONBLOCK | O_APPEND;
      if ((l.flags & mask) != (f.flags & mask)) Diff(where + ": status flags differ");
      if (((l.flags & O_CLOEXEC) != 0) != fd.cloexec) Diff(where + ": close-on-exec differs");
      auto [first, fresh] = first_of_file.emplace(fd.file_id, std::make_pair(outer, fd.fd));
      if (!fresh && !sys::KcmpSame(first->second.first, outer, sys::KcmpType::kFile,
                                   static_cast<unsigned long>(first->second.second), static_cast<unsigned long>(fd.fd))) {
        Diff(where + ": does not share the open file description it had");
      }
    }
    for (const auto& [extra, e] : live_fds) Diff(who + " fd " + std::to_string(extra) + ": not in the images");
  }
}

}  // namespace ro::verify
