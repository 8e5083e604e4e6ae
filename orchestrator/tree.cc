#include "orchestrator/tree.h"

#include <poll.h>
#include <sys/wait.h>

#include <unistd.h>

#include <csignal>

#include "orchestrator/mm.h"
#include "sys/futex.h"
#include "sys/process.h"

namespace ro {
namespace {

constexpr int kReapGraceMs = 5000;

}  // namespace

TaskWatch::TaskWatch(const images::RestorePlan& plan, shm::Arena& arena) : plan_(plan), arena_(arena) {
  pidfds_.resize(plan.tasks.size());
}

void TaskWatch::SetRoot(pid_t outer, UniqueFd pidfd) {
  root_ = outer;
  pidfds_[0] = std::move(pidfd);
}

bool TaskWatch::ExpectedToExit(size_t i, shm::Stage stage) const {
  switch (plan_.tasks[i].kind) {
    case images::TaskKind::kHelper: return stage >= shm::Stage::kReaping;
    case images::TaskKind::kZombie: return stage >= shm::Stage::kDone;
    case images::TaskKind::kAlive: return false;
  }
  return false;
}

Status TaskWatch::Check(shm::Stage stage) {
  std::vector<pollfd> fds;
  std::vector<size_t> who;
  for (size_t i = 0; i < pidfds_.size(); ++i) {
    if (!pidfds_[i]) {
      pid_t outer = arena_.slot(i).outer_pid.load();
      if (outer == 0 || gone_.count(i)) continue;
      auto opened = sys::PidfdOpen(outer);
      if (!opened.ok()) {
        gone_.insert(i);
        if (ExpectedToExit(i, stage)) continue;
        return Fail("task " + std::to_string(plan_.tasks[i].pid) + " (pid " + std::to_string(outer) + " outside) died");
      }
      pidfds_[i] = std::move(opened).value();
    }
    fds.push_back({pidfds_[i].get(), POLLIN, 0});
    who.push_back(i);
  }
  if (fds.empty() || ::poll(fds.data(), fds.size(), 0) <= 0) return {};
  for (size_t k = 0; k < fds.size(); ++k) {
    if (!(fds[k].revents & POLLIN)) continue;
    size_t i = who[k];
    if (ExpectedToExit(i, stage)) {
      pidfds_[i].reset();
      gone_.insert(i);
      continue;
    }
    // A restorer that failed takes its PID namespace (or its children)
    // with it: its report names the cause, whichever death is seen first.
    for (size_t r = 0; r < plan_.tasks.size(); ++r) {
      if (arena_.slot(r).report.step != 0) {
        return Fail("task " + std::to_string(plan_.tasks[r].pid) + " died: " + DescribeRestorerFailure(arena_.slot(r).report));
      }
    }
    std::string how = "died";
    if (i == 0) how = sys::DescribeExitedChild(pidfds_[0]).value_or(how);
    return Fail("task " + std::to_string(plan_.tasks[i].pid) + " " + how);
  }
  return {};
}

std::string TaskWatch::Stragglers(shm::Stage stage) const {
  std::string out;
  int shown = 0;
  for (size_t i = 0; i < plan_.tasks.size(); ++i) {
    if (arena_.slot(i).stage.load() >= static_cast<uint32_t>(stage) || ExpectedToExit(i, stage)) continue;
    if (shown++ == 10) {
      out += ", ...";
      break;
    }
    out += (shown == 1 ? "; still waiting for tasks " : ", ") + std::to_string(plan_.tasks[i].pid);
  }
  return out;
}

void TaskWatch::KillAll(bool new_pid_namespace) {
  if (!pidfds_[0]) return;
  // Killing the init of the new PID namespace kills every task in it; in
  // the caller's namespace each task is killed by its own pidfd.
  (void)sys::PidfdSendSignal(pidfds_[0], SIGKILL);
  if (!new_pid_namespace) {
    // No namespace dies with the root: every task that made itself known
    // is killed by its pidfd; the others die of their parent-death signal.
    for (size_t i = 0; i < pidfds_.size(); ++i) {
      pid_t outer = arena_.slot(i).outer_pid.load();
      if (!pidfds_[i] && outer != 0 && !gone_.count(i)) {
        if (auto opened = sys::PidfdOpen(outer); opened.ok()) pidfds_[i] = std::move(opened).value();
      }
      if (pidfds_[i]) (void)sys::PidfdSendSignal(pidfds_[i], SIGKILL);
    }
  }
  // Reap the root; and every task restore-orch traces (a continuing one
  // whose restorer is done): a traced task that died is released to its
  // parent only once its tracer reaps it, and the dying init of the new PID
  // namespace waits for all of them.
  uint64_t until = sys::MonotonicNs() + uint64_t(kReapGraceMs) * 1000000;
  for (bool root_gone = false; !root_gone && sys::MonotonicNs() < until;) {
    int status = 0;
    pid_t got = ::waitpid(-1, &status, __WALL | WNOHANG);
    if (got == root_ && (WIFEXITED(status) || WIFSIGNALED(status))) root_gone = true;
    if (got < 0 && errno == ECHILD) break;
    if (got <= 0) ::usleep(1000);
  }
  for (auto& fd : pidfds_) {
    if (!fd) continue;
    pollfd p{fd.get(), POLLIN, 0};
    while (::poll(&p, 1, 10) == 0 && sys::MonotonicNs() < until) {
    }
    fd.reset();
  }
}

void TaskWatch::ReleaseAllButRoot() {
  for (size_t i = 1; i < pidfds_.size(); ++i) pidfds_[i].reset();
}

void TaskWatch::ReleaseAll() {
  for (auto& fd : pidfds_) fd.reset();
}

}  // namespace ro
