#include "orchestrator/restore.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <optional>
#include <nlohmann/json.hpp>

#include "orchestrator/action_scripts.h"
#include "orchestrator/files.h"
#include "orchestrator/mm.h"
#include "orchestrator/ipc.h"
#include "orchestrator/net.h"
#include "orchestrator/mounts.h"
#include "orchestrator/resume.h"
#include "orchestrator/tree.h"
#include "shm/arena.h"
#include "shm/stages.h"
#include "sys/clone.h"
#include "sys/futex.h"
#include "sys/log.h"
#include "sys/process.h"
#include "sys/proc.h"
#include "sys/namespaces.h"
#include "worker/task.h"

namespace ro {
namespace {

using images::TaskKind;
using shm::Stage;

constexpr int kPollMs = 50;
constexpr uint64_t kTaskGraceNs = 2'000'000'000;

std::string DescribeWait(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("was killed by ") + strsignal(WTERMSIG(status));
  return "stopped";
}

int CountOpenFds() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
    ::closedir(d);
  }
  return n - 1;  // the directory's own fd
}

class Controller {
 public:
  Controller(const images::RestorePlan& plan, const RestoreOptions& options) : plan_(plan), options_(options) {
    for (const auto& t : plan.tasks) zombies_ += t.kind == TaskKind::kZombie;
  }

  int Run() {
    start_ns_ = sys::MonotonicNs();
    fds_at_start_ = CountOpenFds();
    Status s = Start();
    if (s.ok()) s = DriveStages();
    // Erased before anything else is printed: the error, the pid, the tree's own output.
    if (options_.progress != nullptr) options_.progress->Finish();
    if (!s.ok()) {
      int code = Rollback(std::move(s).error());
      WriteStats(false);
      return code;
    }
    total_ms_ = (sys::MonotonicNs() - start_ns_) / 1e6;
    log::Info("restored {} tasks in {:.1f} ms", plan_.tasks.size() - plan_.helpers, total_ms_);
    if (!options_.pidfile.empty()) {
      if (Status p = WritePidfile(); !p.ok()) {  // as CRIU: the restore fails, rolled back
        int code = Rollback(std::move(p).error());
        WriteStats(false);
        return code;
      }
    }
    if (options_.detach) {
      RestoreCaller();
      watch_->ReleaseAll();
      WriteStats(true);
      std::printf("%d\n", watch_->root());
      std::fflush(stdout);
      return 0;
    }
    int code = WaitRoot();
    watch_->ReleaseAll();
    WriteStats(true);
    return code;
  }

 private:
  Status Start() {
    deadline_ns_ = start_ns_ + static_cast<uint64_t>(options_.timeout_s * 1e9);
    // Tasks give up a little after the orchestrator, so that a timeout is
    // reported by the one who can name the stage and the stragglers.
    shm::Arena::Spec spec{.address = plan_.zone.start,
                          .tasks = plan_.tasks.size(),
                          .mounts = plan_.mounts.size(),
                          .deadline_ns = deadline_ns_ + kTaskGraceNs,
                          .fault = options_.fault};
    RO_ASSIGN_OR_RETURN(shm::Arena arena, shm::Arena::Create(spec));
    arena_.emplace(std::move(arena));
    watch_.emplace(plan_, *arena_);
    continuation_.emplace(plan_, *arena_);
    execs_.emplace(plan_, *arena_);
    RO_ASSIGN_OR_RETURN(ServiceFds fds, ServiceFds::Open(plan_));
    service_.emplace(std::move(fds));
    if (options_.check_pages) continuation_->CheckPages(service_->layout().images_fd);

    // Forwarded signals arrive on a signalfd; during the restore they abort it.
    sigset_t set;
    sigemptyset(&set);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&set, sig);
    if (::sigprocmask(SIG_BLOCK, &set, &old_mask_) != 0) return SysError("sigprocmask");
    signals_.reset(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!signals_) return SysError("signalfd");

    RO_TRY(RunActionScripts(options_.action_scripts, shm::kPreRestore, 0, deadline_ns_, ScriptProgress(shm::kPreRestore)));
    if (options_.syscall_fault) {
      int sv[2];
      if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) return SysError("socketpair");
      fault_channel_[0].reset(sv[0]);
      fault_channel_[1].reset(sv[1]);
    }
    arena_->BeginStage(Stage::kRootTask, shm::ParticipantCount(Stage::kRootTask, plan_));
    uint64_t flags = (plan_.ns.new_pid ? CLONE_NEWPID : 0) | (plan_.ns.new_mnt ? CLONE_NEWNS : 0) | (plan_.ns.uts ? CLONE_NEWUTS : 0) |
                     (plan_.ns.ipc ? CLONE_NEWIPC : 0) | (plan_.ns.net ? CLONE_NEWNET : 0);
    if (Status s = arena_->Fault(shm::FaultPoint::kRootClone, "clone3 of the root task"); !s.ok()) {
      return std::move(s).error().Within("root task " + std::to_string(plan_.tasks[0].pid) + ", stage root-task");
    }
    // What the root task checks its parent against once it asked for its
    // parent-death signal: our pid, or (from inside its own PID namespace,
    // where getppid() is 0) a pidfd of ours.
    self_pid_ = ::getpid();
    if (plan_.ns.new_pid) {
      RO_ASSIGN_OR_RETURN(self_pidfd_, sys::PidfdOpen(self_pid_));
    }
    auto root = sys::Clone3(sys::CloneSpec{.flags = flags, .pid = plan_.tasks[0].pid, .want_pidfd = true});
    self_pidfd_.reset();
    if (!root.ok()) {
      Error e = std::move(root).error();
      if (e.err == EEXIST) e.what += ": pid " + std::to_string(plan_.tasks[0].pid) + " is taken";
      return e.Within("root task " + std::to_string(plan_.tasks[0].pid));
    }
    if (root->pid == 0) RootTask();
    watch_->SetRoot(root->pid, std::move(root->pidfd));
    if (options_.syscall_fault) {
      fault_channel_[1].reset();
      if (Status s = supervisor_.Start(*options_.syscall_fault, fault_channel_[0], *arena_, 5000); !s.ok()) {
        if (arena_->aborted()) return FirstFailure();  // the root task's own word on what went wrong
        return s;
      }
      fault_channel_[0].reset();
    }
    return {};
  }

  // Runs in the root task: the whole tree's namespaces first, then the
  // root's own part as a worker.
  [[noreturn]] void RootTask() {
    // First of all: killed before this line, restore-orch sent no signal.
    if (!(plan_.ns.new_pid ? sys::DieWithParent(self_pidfd_) : sys::DieWithParent(self_pid_))) _exit(1);
    self_pidfd_.reset();
    log::SetStage(shm::StageName(Stage::kRootTask));
    Status s;
    if (options_.syscall_fault) {
      // First of all, so that every later call of the task tree is watched.
      s = InstallSyscallFault(*options_.syscall_fault, fault_channel_[1]);
      fault_channel_[0].reset();
      fault_channel_[1].reset();
    }
    if (s.ok() && plan_.ns.uts) {
      s = sys::SetUtsNames(sys::UtsNames{plan_.ns.uts->nodename, plan_.ns.uts->domainname});
      if (!s.ok()) s = std::move(s).error().Within("the tree's UTS namespace");
    }
    if (s.ok() && plan_.ns.ipc) {
      s = RestoreIpcNamespace(*plan_.ns.ipc, service_->layout().proc_fd, service_->layout().images_fd);
      if (!s.ok()) s = std::move(s).error().Within("the tree's IPC namespace");
    }
    if (s.ok() && plan_.ns.net) {
      s = RestoreNetNamespace(*plan_.ns.net, service_->layout().proc_fd);
      if (!s.ok()) s = std::move(s).error().Within("the tree's network namespace");
    }
    if (s.ok() && plan_.ns.new_mnt) s = BuildMountTree(plan_, options_.mounts, service_->layout().images_fd, *arena_);
    if (s.ok()) s = arena_->FinishStage(0, Stage::kRootTask);
    if (!s.ok()) {
      arena_->Abort(plan_.tasks[0].pid, Stage::kRootTask, s.error());
      _exit(1);
    }
    worker::TaskContext ctx{&plan_, &*arena_, &service_->proc_dir(), service_->layout(), options_.detach};
    // A task the plan leaves in restore-orch's session and group
    // (--shell-job) sees them from a new PID namespace as 0.
    if (!plan_.ns.new_pid) {
      ctx.outside_sid = ::getsid(0);
      ctx.outside_pgid = ::getpgrp();
    }
    worker::RunTask(ctx, 0);
  }

  // Opens each stage of the table in turn (the root task's is open since
  // the clone) and waits until its participants have finished it.
  Status DriveStages() {
    for (const shm::StageInfo& info : shm::Stages()) {
      if (shm::Skipped(info.stage, plan_)) continue;  // as the tasks skip it
      uint64_t t0 = sys::MonotonicNs();
      log::SetStage(info.name);
      if (info.action_before != nullptr) RO_TRY(Scripts(info.action_before));
      // Continuing tasks are traced from before they leave for their restorer.
      if (info.stage == Stage::kDone) RO_TRY(Aborting(info.stage, execs_->Open()));
      if (info.stage == Stage::kDone && continuation_->any()) {
        RO_TRY(Aborting(info.stage, watch_->AwaitZombies(deadline_ns_)));
        RO_TRY(Aborting(info.stage, continuation_->Seize()));
      }
      if (info.stage != Stage::kRootTask) arena_->BeginStage(info.stage, shm::ParticipantCount(info.stage, plan_));
      ShowProgress(info);
      RO_TRY(WaitStage(info));
      if (info.stage == Stage::kDone && continuation_->any()) RO_TRY(Aborting(info.stage, continuation_->Finish(deadline_ns_)));
      // Success is reported only once every exec has happened.
      if (info.stage == Stage::kDone) RO_TRY(Aborting(info.stage, execs_->Await(deadline_ns_)));
      arena_->RecordStageTime(info.stage, sys::MonotonicNs() - t0);
      log::Debug("stage {} done in {:.2f} ms", info.name, (sys::MonotonicNs() - t0) / 1e6);
      if (info.action_after != nullptr) RO_TRY(Scripts(info.action_after));
    }
    // A signal that came with the last stage's end: the restore is not
    // reported done (the caller's mask, restored next, would deliver it).
    RO_TRY(Aborting(Stage::kDone, PendingSignal()));
    return {};
  }

  // A failure of the orchestrator's own step aborts the restore.
  Status Aborting(Stage stage, Status s) {
    if (!s.ok()) arena_->Abort(0, stage, s.error());
    return s.ok() ? s : Status(FirstFailure());
  }

  Status Scripts(const char* point) {
    Status s = RunActionScripts(options_.action_scripts, point, watch_->root(), deadline_ns_, ScriptProgress(point));
    if (!s.ok() && arena_) arena_->Abort(0, arena_->stage(), s.error());
    return s;
  }

  // While an action script runs: the progress line says which point's,
  // and a forwarded signal ends the script and the restore.
  std::function<Status()> ScriptProgress(const char* point) {
    return [this, point]() -> Status {
      if (options_.progress != nullptr) options_.progress->Update(std::string("action script at ") + point);
      return PendingSignal();
    };
  }

  // SIGINT, SIGTERM or SIGHUP received during the restore (read from the
  // signalfd): an error saying which; ok when none.
  Status PendingSignal() {
    signalfd_siginfo si{};
    if (signals_ && ::read(signals_.get(), &si, sizeof(si)) == sizeof(si)) {
      return Fail(std::string("interrupted by ") + strsignal(static_cast<int>(si.ssi_signo)));
    }
    return {};
  }

  // The stage and how many of its participants are through it.
  void ShowProgress(const shm::StageInfo& info) {
    if (options_.progress == nullptr) return;
    uint32_t all = shm::ParticipantCount(info.stage, plan_);
    options_.progress->Update(info.name, all - std::min(all, arena_->pending()), all);
  }

  Status WaitStage(const shm::StageInfo& info) {
    Stage stage = info.stage;
    for (;;) {
      bool done = arena_->WaitFinished(kPollMs);
      ShowProgress(info);
      if (arena_->aborted()) return FirstFailure();
      // Before a stage that finished is taken as done: a signal must not
      // wait for a slow stage to be seen.
      if (Status s = PendingSignal(); !s.ok()) {
        arena_->Abort(0, stage, s.error());
        return FirstFailure();
      }
      if (done) return {};
      if (Status s = watch_->Check(stage); !s.ok()) {
        arena_->Abort(0, stage, s.error());
        return FirstFailure();
      }
      if (sys::MonotonicNs() > deadline_ns_) {
        arena_->Abort(0, stage, Fail("timed out after " + fmt::format("{:g}", options_.timeout_s) + " s" + watch_->Stragglers(stage)));
        return FirstFailure();
      }
    }
  }

  Error FirstFailure() {
    std::optional<shm::Failure> f = arena_->failure();
    if (!f) return Fail("the restore was aborted");
    std::string where = std::string("stage ") + shm::StageName(f->stage);
    if (f->task != 0) where = "task " + std::to_string(f->task) + ", " + where;
    return f->error.Within(where);
  }

  int Rollback(Error error) {
    std::fprintf(stderr, "restore-orch: %s\n", error.ToString().c_str());
    if (watch_) watch_->KillAll(plan_.ns.new_pid);
    continuation_.reset();
    execs_.reset();
    RestoreCaller();
    return 1;
  }

  // SIGINT, SIGTERM and SIGHUP reach the root task as they would an
  // ordinary process: forwarded when it catches them (or is not a PID
  // namespace's init); when it is the init and leaves the signal at its
  // default, the kernel would drop it, so the tree is killed, as the default
  // action kills an ordinary process. After a forwarded SIGINT or SIGTERM,
  // a second one or kill_after_s without the root exiting kills the tree.
  int WaitRoot() {
    watch_->ReleaseAllButRoot();
    const UniqueFd& root = watch_->root_pidfd();
    uint64_t kill_at = 0;  // monotonic ns, 0: none pending
    int stopping = 0;      // the SIGINT/SIGTERM forwarded
    bool killed = false;
    auto kill_tree = [&](const std::string& why) {
      if (killed) return;
      killed = true;
      std::fprintf(stderr, "restore-orch: %s: killing the tree\n", why.c_str());
      (void)sys::PidfdSendSignal(root, SIGKILL);
    };
    for (;;) {
      int timeout = -1;
      if (kill_at != 0 && !killed) {
        uint64_t now = sys::MonotonicNs();
        timeout = now >= kill_at ? 0 : static_cast<int>((kill_at - now) / 1'000'000 + 1);
      }
      pollfd fds[2] = {{root.get(), POLLIN, 0}, {signals_.get(), POLLIN, 0}};
      if (::poll(fds, 2, timeout) < 0 && errno != EINTR) break;
      signalfd_siginfo si{};
      while (::read(signals_.get(), &si, sizeof(si)) == sizeof(si)) {
        int sig = static_cast<int>(si.ssi_signo);
        std::string name = sigabbrev_np(sig) != nullptr ? std::string("SIG") + sigabbrev_np(sig) : strsignal(sig);
        bool stop = sig != SIGHUP;
        if (stop && stopping != 0) {
          kill_tree("a second " + name + " after " + std::string("SIG") + sigabbrev_np(stopping));
        } else if (plan_.ns.new_pid && !Catches(watch_->root(), sig)) {
          kill_tree(name + ": the root task, init of the tree's PID namespace, does not catch it (the kernel would drop it)");
        } else {
          log::Info("forwarding {} to the root task", name);
          (void)sys::PidfdSendSignal(root, sig);
          if (stop) {
            stopping = sig;
            kill_at = sys::MonotonicNs() + static_cast<uint64_t>(options_.kill_after_s * 1e9);
          }
        }
      }
      if (fds[0].revents & POLLIN) break;
      if (kill_at != 0 && sys::MonotonicNs() >= kill_at) {
        kill_tree(fmt::format("the root task is still running {:g} s after SIG{}", options_.kill_after_s, sigabbrev_np(stopping)));
      }
    }
    int status = 0;
    while (::waitpid(watch_->root(), &status, __WALL) < 0 && errno == EINTR) {
    }
    log::Info("root task {}", DescribeWait(status));
    RestoreCaller();
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return 1;
  }

  // Whether task `pid` has a handler for `sig` (SigCgt of its status).
  static bool Catches(pid_t pid, int sig) {
    auto status = sys::ReadProcFile("/proc/" + std::to_string(pid) + "/status");
    if (!status.ok()) return true;  // unknown: forward it
    std::optional<uint64_t> mask = sys::StatusHex(*status, "SigCgt");
    if (!mask) return true;
    return (*mask >> (sig - 1)) & 1;
  }

  // Back to how the caller left things: signals, log sink, service fds.
  void RestoreCaller() {
    supervisor_.Stop();
    signals_.reset();
    ::sigprocmask(SIG_SETMASK, &old_mask_, nullptr);
    service_.reset();
  }

  // Written last, once restore-orch has put back everything it opened.
  void WriteStats(bool restored) {
    if (options_.stats_file.empty()) return;
    nlohmann::ordered_json j;
    j["restored"] = restored;
    j["tasks"] = plan_.tasks.size() - plan_.helpers;
    j["helpers"] = plan_.helpers;
    j["zombies"] = zombies_;
    nlohmann::ordered_json stages;
    for (const shm::StageInfo& info : shm::Stages()) stages[std::string(info.name)] = arena_ ? arena_->StageTime(info.stage) / 1e6 : 0.0;
    j["stages_ms"] = stages;
    j["total_ms"] = total_ms_;
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    j["orchestrator_peak_rss_kib"] = ru.ru_maxrss;
    j["orchestrator_fds"] = {{"start", fds_at_start_}, {"end", CountOpenFds()}};
    std::string text = j.dump(2) + "\n";
    if (FILE* f = std::fopen(options_.stats_file.c_str(), "we")) {
      std::fwrite(text.data(), 1, text.size(), f);
      std::fclose(f);
    } else {
      log::Warn("cannot write stats to {}: {}", options_.stats_file, std::strerror(errno));
    }
  }

  // Only a regular file is written (never a device or a fifo), and only a
  // file it made is removed again when the write fails.
  Status WritePidfile() {
    const std::string& path = options_.pidfile;
    struct stat st {};
    bool existed = ::lstat(path.c_str(), &st) == 0;
    if (existed && !S_ISREG(st.st_mode)) return Fail("pidfile " + path + " exists and is not a regular file");
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (!fd) return SysError("write pidfile " + path);
    std::string text = std::to_string(watch_->root()) + "\n";
    if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()) || ::close(fd.release()) != 0) {
      Error e = SysError("write pidfile " + path);
      if (!existed) ::unlink(path.c_str());
      return e;
    }
    return {};
  }

  const images::RestorePlan& plan_;
  const RestoreOptions& options_;
  std::optional<shm::Arena> arena_;
  std::optional<TaskWatch> watch_;
  std::optional<Continuation> continuation_;
  std::optional<ExecWatch> execs_;
  std::optional<ServiceFds> service_;
  UniqueFd fault_channel_[2];
  pid_t self_pid_ = 0;    // restore-orch, as the root task's parent
  UniqueFd self_pidfd_;   // the same, open only while the root task is cloned
  SyscallFaultSupervisor supervisor_;
  UniqueFd signals_;
  sigset_t old_mask_{};
  uint64_t start_ns_ = 0;
  uint64_t deadline_ns_ = 0;
  double total_ms_ = 0;
  int fds_at_start_ = 0;
  size_t zombies_ = 0;
};

}  // namespace

int RunRestore(const images::RestorePlan& plan, const RestoreOptions& options) { return Controller(plan, options).Run(); }

}  // namespace ro
