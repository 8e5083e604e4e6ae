#include "orchestrator/action_scripts.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "sys/files.h"
#include "sys/futex.h"
#include "sys/io.h"
#include "sys/log.h"
#include "sys/progress.h"

namespace ro {

namespace {

// Copies what a script wrote so far (up to end of file, or nothing more to
// read yet) to restore-orch's stderr, the progress line erased first.
void Relay(int from) {
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(from, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    sys::EraseProgressLine();
    (void)sys::WriteAll(2, std::string_view(buf, static_cast<size_t>(n)), "standard error");
  }
}

}  // namespace

Status RunActionScripts(const std::vector<std::string>& scripts, const char* point, pid_t root, uint64_t deadline_ns,
                        const std::function<Status()>& waiting) {
  for (const std::string& script : scripts) {
    log::Info("action script {} at {}", script, point);
    // Its stdout and stderr reach restore-orch's stderr through a pipe:
    // stdout is where restore-orch prints the root task's pid, and a line
    // it writes never lands on the progress line.
    RO_ASSIGN_OR_RETURN(sys::PipeEnds output, sys::Pipe(0));
    pid_t pid = ::fork();
    if (pid < 0) return SysError("fork for action script " + script);
    if (pid == 0) {
      std::string pid_text = std::to_string(root);
      ::setenv("RESTORE_ORCH_ACTION", point, 1);
      ::setenv("RESTORE_ORCH_ROOT_PID", pid_text.c_str(), 1);
      ::setenv("CRTOOLS_SCRIPT_ACTION", point, 1);
      ::setenv("CRTOOLS_INIT_PID", pid_text.c_str(), 1);
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      // A process group of its own: what it started goes with it when it is killed.
      if (::setpgid(0, 0) != 0 || ::dup2(output.write.get(), 1) < 0 || ::dup2(output.write.get(), 2) < 0) _exit(127);
      ::execl(script.c_str(), script.c_str(), point, nullptr);
      _exit(127);
    }
    output.write.reset();
    ::fcntl(output.read.get(), F_SETFL, O_NONBLOCK);
    int status = 0;
    for (;;) {
      Relay(output.read.get());
      pid_t r = ::waitpid(pid, &status, WNOHANG);
      if (r == pid) break;
      if (r < 0 && errno != EINTR) return SysError("waitpid(action script " + script + ")");
      Status stop = waiting ? waiting() : Status();
      if (stop.ok() && sys::MonotonicNs() > deadline_ns) stop = Fail("action script " + script + " at " + point + " did not finish in time");
      if (!stop.ok()) {
        ::kill(-pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        Relay(output.read.get());
        return stop;
      }
      ::usleep(2000);
    }
    // What it wrote before it exited (a child it left may write on: not waited for).
    Relay(output.read.get());
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::string how = WIFEXITED(status) ? "exited with status " + std::to_string(WEXITSTATUS(status))
                                          : "was killed by signal " + std::to_string(WTERMSIG(status));
      return Fail("action script " + script + " at " + point + " " + how);
    }
  }
  return {};
}

}  // namespace ro
