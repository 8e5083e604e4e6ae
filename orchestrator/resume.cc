#include "orchestrator/resume.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cstring>

#include "sys/files.h"
#include "sys/futex.h"

namespace ro {

Status ExecWatch::Open() {
  for (size_t i = 0; i < plan_.tasks.size(); ++i) {
    if (plan_.tasks[i].resume_mode != images::ResumeMode::kExec) continue;
    int fd = arena_.slot(i).exec_status_fd.load();
    pid_t outer = arena_.slot(i).outer_pid.load();
    std::string path = "/proc/" + std::to_string(outer) + "/fd/" + std::to_string(fd);
    auto opened = sys::OpenAt(AT_FDCWD, path, O_RDONLY | O_NONBLOCK);
    if (!opened.ok()) return std::move(opened).error().Within("task " + std::to_string(plan_.tasks[i].pid) + "'s exec status pipe");
    pipes_.emplace_back(i, std::move(opened).value());
  }
  return {};
}

Status ExecWatch::Await(uint64_t deadline_ns) {
  while (!pipes_.empty()) {
    std::vector<pollfd> fds;
    for (const auto& [i, fd] : pipes_) fds.push_back({fd.get(), POLLIN, 0});
    int ready = ::poll(fds.data(), fds.size(), 20);
    if (ready < 0 && errno != EINTR) return SysError("poll the exec status pipes");
    for (size_t k = fds.size(); k-- > 0;) {
      if (!(fds[k].revents & (POLLIN | POLLHUP))) continue;
      size_t i = pipes_[k].first;
      int err = 0;
      ssize_t n = ::read(pipes_[k].second.get(), &err, sizeof(err));
      if (n == sizeof(err)) {
        return SysError("task " + std::to_string(plan_.tasks[i].pid) + ": execve(" + plan_.tasks[i].resume->exe + ")", err);
      }
      if (n == 0) pipes_.erase(pipes_.begin() + static_cast<std::ptrdiff_t>(k));  // the exec happened
    }
    if (arena_.aborted()) return Fail("the restore was aborted");
    if (!pipes_.empty() && sys::MonotonicNs() > deadline_ns) {
      return Fail("task " + std::to_string(plan_.tasks[pipes_.front().first].pid) + " has not exec'd its program in time");
    }
  }
  return {};
}

}  // namespace ro
