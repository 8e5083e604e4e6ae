#include "orchestrator/action_scripts.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "sys/futex.h"
#include "sys/log.h"

namespace ro {

Status RunActionScripts(const std::vector<std::string>& scripts, const char* point, pid_t root, uint64_t deadline_ns,
                        const std::function<void()>& waiting) {
  for (const std::string& script : scripts) {
    log::Info("action script {} at {}", script, point);
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
      ::execl(script.c_str(), script.c_str(), point, nullptr);
      _exit(127);
    }
    int status = 0;
    for (;;) {
      pid_t r = ::waitpid(pid, &status, WNOHANG);
      if (r == pid) break;
      if (r < 0 && errno != EINTR) return SysError("waitpid(action script " + script + ")");
      if (sys::MonotonicNs() > deadline_ns) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        return Fail("action script " + script + " at " + point + " did not finish in time");
      }
      if (waiting) waiting();
      ::usleep(2000);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::string how = WIFEXITED(status) ? "exited with status " + std::to_string(WEXITSTATUS(status))
                                          : "was killed by signal " + std::to_string(WTERMSIG(status));
      return Fail("action script " + script + " at " + point + " " + how);
    }
  }
  return {};
}

}  // namespace ro
