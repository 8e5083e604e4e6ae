#include "worker/tree.h"

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include "sys/clone.h"
#include "sys/proc.h"
#include "sys/process.h"

namespace ro::worker {
namespace {

using images::TaskKind;
using images::TaskPlan;

std::string Num(long v) { return std::to_string(v); }

const TaskPlan& Plan(const TaskContext& ctx, pid_t pid) {
  return ctx.plan->tasks[static_cast<size_t>(ctx.plan->IndexOf(pid))];
}

// Outside a new PID namespace nothing kills the tree with the root task:
// each task dies with its parent until it resumes, except the children of
// a helper, whose parent exits on purpose (helpers exist only in a new PID
// namespace).
bool DiesWithParent(const TaskContext& ctx, const TaskPlan& parent) {
  return !ctx.plan->ns.new_pid && parent.kind != TaskKind::kHelper;
}

Status Fork(const TaskContext& ctx, const TaskPlan& parent, pid_t child) {
  int index = ctx.plan->IndexOf(child);
  RO_TRY(ctx.arena->Fault(shm::FaultPoint::kFork, "clone3 of task " + Num(child)));
  pid_t self = ::getpid();
  auto cloned = sys::Clone3(sys::CloneSpec{.flags = 0, .pid = child, .want_pidfd = false});
  if (!cloned.ok()) {
    Error e = std::move(cloned).error();
    if (e.err == EEXIST) e.what += ": pid " + Num(child) + " is taken";
    return e;
  }
  if (cloned->pid == 0) {
    // First of all: a parent killed before this line sent no signal.
    if (DiesWithParent(ctx, parent) && !sys::DieWithParent(self)) ::_exit(1);
    RunForkedTask(ctx, static_cast<size_t>(index));
  }
  return {};
}

Status JoinGroup(const TaskContext& ctx, size_t index) {
  const TaskPlan& t = ctx.plan->tasks[index];
  shm::Arena& arena = *ctx.arena;
  if (t.leads_group) {
    // A session leader already leads its group.
    if (!t.setsid) {
      RO_TRY(arena.Fault(shm::FaultPoint::kGroup, "setpgid(0, 0)"));
      if (::setpgid(0, 0) != 0) return SysError("setpgid(0, 0)");
    }
    arena.MarkGroupReady(index);
    return {};
  }
  if (t.pgid == 0 || ::getpgrp() == t.pgid) return {};
  int leader = ctx.plan->IndexOf(t.pgid);
  if (leader < 0) return Fail("no task leads process group " + Num(t.pgid));
  RO_TRY(arena.WaitGroupReady(static_cast<size_t>(leader)));
  RO_TRY(arena.Fault(shm::FaultPoint::kGroup, "setpgid(0, " + Num(t.pgid) + ")"));
  if (::setpgid(0, t.pgid) != 0) return SysError("setpgid(0, " + Num(t.pgid) + ")");
  return {};
}

Status VerifySessionAndGroup(const TaskContext& ctx, const TaskPlan& t) {
  pid_t sid = ::getsid(0);
  pid_t pgid = ::getpgrp();
  pid_t want_sid = t.sid != 0 ? t.sid : ctx.outside_sid;
  pid_t want_pgid = t.pgid != 0 ? t.pgid : ctx.outside_pgid;
  if (sid != want_sid || pgid != want_pgid) {
    return Fail("ended in session " + Num(sid) + " and group " + Num(pgid) + ", images say " + Num(want_sid) + " and " +
                Num(want_pgid));
  }
  return {};
}

}  // namespace

Status VerifyPid(const TaskPlan& t) {
  pid_t got = ::getpid();
  if (got != t.pid) return Fail("task was cloned with pid " + Num(got) + " instead of " + Num(t.pid));
  return {};
}

Status Publish(const TaskContext& ctx, size_t index) {
  const TaskPlan& t = ctx.plan->tasks[index];
  // (Each forked task asked for its parent-death signal in Fork.)
  // Tasks start with the orchestrator's signal mask (it blocks the signals
  // it forwards); a restored task must not keep that.
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  if (!t.comm.empty()) sys::SetName(t.comm);
  RO_ASSIGN_OR_RETURN(pid_t outer, sys::OuterPid(*ctx.proc_dir));
  ctx.arena->slot(index).pid = t.pid;  // published by the store below
  ctx.arena->slot(index).outer_pid.store(outer);
  return {};
}

Status ForkTree(const TaskContext& ctx, size_t index) {
  const TaskPlan& t = ctx.plan->tasks[index];
  for (pid_t child : t.children) {
    if (Plan(ctx, child).before_parent_setsid) RO_TRY(Fork(ctx, t, child));
  }
  if (t.setsid) {
    RO_TRY(ctx.arena->Fault(shm::FaultPoint::kSession, "setsid()"));
    if (::setsid() < 0) return SysError("setsid()");
  }
  for (pid_t child : t.children) {
    if (!Plan(ctx, child).before_parent_setsid) RO_TRY(Fork(ctx, t, child));
  }
  RO_TRY(JoinGroup(ctx, index));
  return VerifySessionAndGroup(ctx, t);
}

Status ReapHelpers(const TaskContext& ctx, const TaskPlan& t) {
  for (pid_t child : t.children) {
    if (Plan(ctx, child).kind != TaskKind::kHelper) continue;
    int status = 0;
    pid_t r;
    do {
      r = ::waitpid(child, &status, __WALL);
    } while (r < 0 && errno == EINTR);
    if (r < 0) return SysError("waitpid(helper " + Num(child) + ")");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return Fail("helper " + Num(child) + " failed");
  }
  return {};
}

}  // namespace ro::worker
