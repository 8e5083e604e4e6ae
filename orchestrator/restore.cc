#include "orchestrator/restore.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <optional>
#include <set>
#include <nlohmann/json.hpp>

#include "orchestrator/action_scripts.h"
#include "shm/arena.h"
#include "sys/clone.h"
#include "sys/futex.h"
#include "sys/log.h"
#include "worker/task.h"

namespace ro {
namespace {

using images::TaskKind;
using shm::Stage;

constexpr int kPollMs = 50;
constexpr int kReapGraceMs = 5000;
constexpr uint64_t kTaskGraceNs = 2'000'000'000;

int PidfdSend(const UniqueFd& pidfd, int sig) { return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd.get(), sig, nullptr, 0)); }

UniqueFd PidfdOpen(pid_t pid) { return UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0))); }

std::string DescribeWait(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("was killed by ") + strsignal(WTERMSIG(status));
  return "stopped";
}

class Controller {
 public:
  Controller(const images::RestorePlan& plan, const RestoreOptions& options) : plan_(plan), options_(options) {
    for (const auto& t : plan.tasks) {
      helpers_ += t.kind == TaskKind::kHelper;
      zombies_ += t.kind == TaskKind::kZombie;
    }
  }

  int Run() {
    start_ns_ = sys::MonotonicNs();
    fds_at_start_ = CountOpenFds();
    Status s = Start();
    if (s.ok()) s = DriveStages();
    if (!s.ok()) {
      int code = Rollback(std::move(s).error());
      WriteStats(false);
      return code;
    }
    total_ms_ = (sys::MonotonicNs() - start_ns_) / 1e6;
    log::Info("restored {} tasks in {:.1f} ms", plan_.tasks.size() - helpers_, total_ms_);
    if (!options_.pidfile.empty()) WritePidfile();
    if (options_.detach) {
      RestoreSignals();
      pidfds_.clear();
      WriteStats(true);
      std::printf("%d\n", root_outer_);
      std::fflush(stdout);
      return 0;
    }
    int code = WaitRoot();
    pidfds_.clear();
    WriteStats(true);
    return code;
  }

  static int CountOpenFds() {
    int n = 0;
    if (DIR* d = ::opendir("/proc/self/fd")) {
      while (dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
      ::closedir(d);
    }
    return n - 1;  // the directory's own fd
  }

 private:
  Status Start() {
    deadline_ns_ = start_ns_ + static_cast<uint64_t>(options_.timeout_s * 1e9);
    // Tasks give up a little after the orchestrator, so that a timeout is
    // reported by the one who can name the stage and the stragglers.
    RO_ASSIGN_OR_RETURN(shm::Arena arena, shm::Arena::Create(plan_.tasks.size(), deadline_ns_ + kTaskGraceNs, options_.fault));
    arena_.emplace(std::move(arena));
    pidfds_.resize(plan_.tasks.size());
    RO_TRY(PlaceServiceFds());

    // Forwarded signals arrive on a signalfd; during the restore they abort it.
    sigset_t set;
    sigemptyset(&set);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&set, sig);
    if (::sigprocmask(SIG_BLOCK, &set, &old_mask_) != 0) return SysError("sigprocmask");
    signals_.reset(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!signals_) return SysError("signalfd");

    RO_TRY(RunActionScripts(options_.action_scripts, kPreRestore, 0, deadline_ns_));
    if (options_.syscall_fault) {
      int sv[2];
      if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) return SysError("socketpair");
      fault_channel_[0].reset(sv[0]);
      fault_channel_[1].reset(sv[1]);
    }
    arena_->BeginStage(Stage::kRootTask, 1);
    uint64_t flags = (plan_.ns.new_pid ? CLONE_NEWPID : 0) | (plan_.ns.new_mnt ? CLONE_NEWNS : 0);
    if (Status s = arena_->Fault(shm::FaultPoint::kRootClone, "clone3 of the root task"); !s.ok()) {
      return std::move(s).error().Within("root task " + std::to_string(plan_.tasks[0].pid) + ", stage root-task");
    }
    auto root = sys::Clone3(sys::CloneSpec{.flags = flags, .pid = plan_.tasks[0].pid, .want_pidfd = true});
    if (!root.ok()) {
      Error e = std::move(root).error();
      if (e.err == EEXIST) e.what += ": pid " + std::to_string(plan_.tasks[0].pid) + " is taken";
      return e.Within("root task " + std::to_string(plan_.tasks[0].pid));
    }
    if (root->pid == 0) RootTask();
    root_outer_ = root->pid;
    pidfds_[0] = std::move(root->pidfd);
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

  // The caller's /proc and the log sink move above every fd number the
  // tasks use or park (worker/fds.h), at the same numbers in every task.
  Status PlaceServiceFds() {
    layout_ = worker::LayoutFor(plan_);
    rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    if (lim.rlim_cur < lim.rlim_max) {
      lim.rlim_cur = lim.rlim_max;
      ::setrlimit(RLIMIT_NOFILE, &lim);
    }
    if (static_cast<rlim_t>(layout_.log_fd) >= lim.rlim_cur) {
      return Fail("the restore needs fd numbers up to " + std::to_string(layout_.log_fd) + " (" +
                  std::to_string(plan_.parked_slots) + " parked files above fd " + std::to_string(plan_.max_fd) +
                  "), RLIMIT_NOFILE allows " + std::to_string(lim.rlim_cur));
    }
    // The lowest free numbers from there on: nothing of ours is clobbered.
    UniqueFd proc(::open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!proc) return SysError("open /proc");
    proc_dir_.reset(::fcntl(proc.get(), F_DUPFD_CLOEXEC, layout_.proc_fd));
    if (!proc_dir_) return SysError("fcntl(/proc, F_DUPFD_CLOEXEC, " + std::to_string(layout_.proc_fd) + ")");
    log_fd_.reset(::fcntl(log::GetSink(), F_DUPFD_CLOEXEC, proc_dir_.get() + 1));
    if (!log_fd_) return SysError("fcntl(log, F_DUPFD_CLOEXEC)");
    layout_.proc_fd = proc_dir_.get();
    layout_.log_fd = log_fd_.get();
    bool masters = std::any_of(plan_.autofs.begin(), plan_.autofs.end(), [](const auto& a) { return !a.catatonic; });
    if (masters) {
      // Opened here: after the pivot /dev may not hold it.
      UniqueFd dev(::open("/dev/autofs", O_RDONLY | O_CLOEXEC));
      if (!dev) return SysError("open /dev/autofs");
      autofs_dev_.reset(::fcntl(dev.get(), F_DUPFD_CLOEXEC, layout_.log_fd + 1));
      if (!autofs_dev_) return SysError("fcntl(/dev/autofs, F_DUPFD_CLOEXEC)");
      layout_.autofs_fd = autofs_dev_.get();
    }
    saved_sink_ = log::GetSink();
    log::SetSink(layout_.log_fd);
    return {};
  }

  // Runs in the root task: the whole tree's namespaces first, then the
  // root's own part as a worker.
  [[noreturn]] void RootTask() {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    log::SetStage("root-task");
    Status s;
    if (options_.syscall_fault) {
      // First of all, so that every later call of the task tree is watched.
      s = InstallSyscallFault(*options_.syscall_fault, fault_channel_[1]);
      fault_channel_[0].reset();
      fault_channel_[1].reset();
    }
    if (s.ok() && plan_.ns.new_mnt) {
      // Nothing done in this namespace may propagate to the caller's.
      if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
        s = SysError("mount(/, MS_REC|MS_PRIVATE)");
      } else {
        s = BuildMountTree(plan_, options_.mounts, &autofs_mounts_, *arena_);
      }
    }
    if (s.ok()) s = arena_->FinishStage(0, Stage::kRootTask);
    if (!s.ok()) {
      arena_->Abort(plan_.tasks[0].pid, Stage::kRootTask, s.error());
      _exit(1);
    }
    worker::TaskContext ctx{&plan_, &*arena_, &proc_dir_, layout_, &autofs_mounts_, options_.detach};
    worker::RunTask(ctx, 0);
  }

  Status DriveStages() {
    uint32_t all = static_cast<uint32_t>(plan_.tasks.size());
    uint32_t real = all - static_cast<uint32_t>(helpers_);
    const std::pair<Stage, uint32_t> stages[] = {
        {Stage::kRootTask, 1}, {Stage::kForking, all},  {Stage::kFiles, all},
        {Stage::kReaping, real}, {Stage::kResume, real}, {Stage::kDone, real}};
    for (const auto& [stage, participants] : stages) {
      if (stage == Stage::kReaping && plan_.helpers == 0) continue;  // as the tasks skip it
      uint64_t t0 = sys::MonotonicNs();
      log::SetStage(shm::StageName(stage));
      if (stage == Stage::kDone) RO_TRY(Scripts(kPreResume));
      if (stage != Stage::kRootTask) arena_->BeginStage(stage, participants);
      RO_TRY(WaitStage(stage));
      arena_->RecordStageTime(stage, sys::MonotonicNs() - t0);
      log::Debug("stage {} done in {:.2f} ms", shm::StageName(stage), (sys::MonotonicNs() - t0) / 1e6);
      if (stage == Stage::kRootTask) RO_TRY(Scripts(kPostSetupNamespaces));
      if (stage == Stage::kResume) RO_TRY(Scripts(kPostRestore));
    }
    return Scripts(kPostResume);
  }

  Status Scripts(const char* point) {
    Status s = RunActionScripts(options_.action_scripts, point, root_outer_, deadline_ns_);
    if (!s.ok() && arena_) arena_->Abort(0, arena_->stage(), s.error());
    return s;
  }

  Status WaitStage(Stage stage) {
    for (;;) {
      bool done = arena_->WaitFinished(kPollMs);
      if (arena_->aborted()) return FirstFailure();
      if (done) return {};
      if (Status s = CheckTasks(stage); !s.ok()) {
        arena_->Abort(0, stage, s.error());
        return FirstFailure();
      }
      if (sys::MonotonicNs() > deadline_ns_) {
        arena_->Abort(0, stage, Fail("timed out after " + fmt::format("{:g}", options_.timeout_s) + " s" + Stragglers(stage)));
        return FirstFailure();
      }
      signalfd_siginfo si{};
      if (::read(signals_.get(), &si, sizeof(si)) == sizeof(si)) {
        arena_->Abort(0, stage, Fail(std::string("interrupted by ") + strsignal(static_cast<int>(si.ssi_signo))));
        return FirstFailure();
      }
    }
  }

  // "; still waiting for tasks 4, 7" - the tasks that have not finished `stage`.
  std::string Stragglers(Stage stage) {
    std::string out;
    int shown = 0;
    for (size_t i = 0; i < plan_.tasks.size(); ++i) {
      if (arena_->slot(i).stage.load() >= static_cast<uint32_t>(stage) || ExpectedToExit(i, stage)) continue;
      if (shown++ == 10) {
        out += ", ...";
        break;
      }
      out += (shown == 1 ? "; still waiting for tasks " : ", ") + std::to_string(plan_.tasks[i].pid);
    }
    return out;
  }

  Error FirstFailure() {
    std::optional<shm::Failure> f = arena_->failure();
    if (!f) return Fail("the restore was aborted");
    std::string where = std::string("stage ") + shm::StageName(f->stage);
    if (f->task != 0) where = "task " + std::to_string(f->task) + ", " + where;
    return f->error.Within(where);
  }

  bool ExpectedToExit(size_t i, Stage stage) const {
    TaskKind kind = plan_.tasks[i].kind;
    return (kind == TaskKind::kHelper && stage >= Stage::kReaping) || (kind == TaskKind::kZombie && stage >= Stage::kDone);
  }

  // Opens pidfds for tasks that published their pid and looks for deaths.
  Status CheckTasks(Stage stage) {
    std::vector<pollfd> fds;
    std::vector<size_t> who;
    for (size_t i = 0; i < pidfds_.size(); ++i) {
      if (!pidfds_[i]) {
        pid_t outer = arena_->slot(i).outer_pid.load();
        if (outer == 0 || gone_.count(i)) continue;
        pidfds_[i] = PidfdOpen(outer);
        if (!pidfds_[i]) {
          gone_.insert(i);
          if (ExpectedToExit(i, stage)) continue;
          return Fail("task " + std::to_string(plan_.tasks[i].pid) + " (pid " + std::to_string(outer) + " outside) died");
        }
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
      std::string how = "died";
      if (i == 0) {
        siginfo_t info{};
        if (::waitid(P_PIDFD, static_cast<id_t>(pidfds_[0].get()), &info, WEXITED | WNOHANG | WNOWAIT) == 0) {
          how = info.si_code == CLD_EXITED ? "exited with status " + std::to_string(info.si_status)
                                            : std::string("was killed by ") + strsignal(info.si_status);
        }
      }
      return Fail("task " + std::to_string(plan_.tasks[i].pid) + " " + how);
    }
    return {};
  }

  int Rollback(Error error) {
    std::fprintf(stderr, "restore-orch: %s\n", error.ToString().c_str());
    if (pidfds_.empty() || !pidfds_[0]) {
      RestoreSignals();
      return 1;
    }
    // Killing the init of the new PID namespace kills every task in it; in
    // the caller's namespace each task is killed by its own pidfd.
    PidfdSend(pidfds_[0], SIGKILL);
    if (!plan_.ns.new_pid) {
      // No namespace dies with the root: every task that made itself known
      // is killed by its pidfd; the others die of their parent-death signal.
      for (size_t i = 0; i < pidfds_.size(); ++i) {
        pid_t outer = arena_->slot(i).outer_pid.load();
        if (!pidfds_[i] && outer != 0 && !gone_.count(i)) pidfds_[i] = PidfdOpen(outer);
        if (pidfds_[i]) PidfdSend(pidfds_[i], SIGKILL);
      }
    }
    ::waitpid(root_outer_, nullptr, __WALL);
    uint64_t until = sys::MonotonicNs() + uint64_t(kReapGraceMs) * 1000000;
    for (auto& fd : pidfds_) {
      if (!fd) continue;
      pollfd p{fd.get(), POLLIN, 0};
      while (::poll(&p, 1, 10) == 0 && sys::MonotonicNs() < until) {
      }
      fd.reset();
    }
    RestoreSignals();
    return 1;
  }

  int WaitRoot() {
    for (size_t i = 1; i < pidfds_.size(); ++i) pidfds_[i].reset();
    for (;;) {
      pollfd fds[2] = {{pidfds_[0].get(), POLLIN, 0}, {signals_.get(), POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0 && errno != EINTR) break;
      signalfd_siginfo si{};
      while (::read(signals_.get(), &si, sizeof(si)) == sizeof(si)) {
        log::Info("forwarding {} to the root task", strsignal(static_cast<int>(si.ssi_signo)));
        PidfdSend(pidfds_[0], static_cast<int>(si.ssi_signo));
      }
      if (fds[0].revents & POLLIN) break;
    }
    int status = 0;
    while (::waitpid(root_outer_, &status, __WALL) < 0 && errno == EINTR) {
    }
    log::Info("root task {}", DescribeWait(status));
    RestoreSignals();
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return 1;
  }

  // Back to how the caller left things: signals, log sink, service fds.
  void RestoreSignals() {
    supervisor_.Stop();
    signals_.reset();
    ::sigprocmask(SIG_SETMASK, &old_mask_, nullptr);
    if (saved_sink_ >= 0) log::SetSink(saved_sink_);
    log_fd_.reset();
    proc_dir_.reset();
    autofs_dev_.reset();
  }

  // Written last, once restore-orch has put back everything it opened.
  void WriteStats(bool restored) {
    if (options_.stats_file.empty()) return;
    nlohmann::ordered_json j;
    j["restored"] = restored;
    j["tasks"] = plan_.tasks.size() - helpers_;
    j["helpers"] = helpers_;
    j["zombies"] = zombies_;
    nlohmann::ordered_json stages;
    for (Stage s : {Stage::kRootTask, Stage::kForking, Stage::kFiles, Stage::kReaping, Stage::kResume, Stage::kDone}) {
      stages[shm::StageName(s)] = arena_ ? arena_->StageTime(s) / 1e6 : 0.0;
    }
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

  void WritePidfile() {
    if (FILE* f = std::fopen(options_.pidfile.c_str(), "we")) {
      std::fprintf(f, "%d\n", root_outer_);
      std::fclose(f);
    } else {
      log::Warn("cannot write pidfile {}: {}", options_.pidfile, std::strerror(errno));
    }
  }

  const images::RestorePlan& plan_;
  const RestoreOptions& options_;
  std::optional<shm::Arena> arena_;
  worker::FdLayout layout_;
  UniqueFd fault_channel_[2];
  SyscallFaultSupervisor supervisor_;
  std::vector<worker::AutofsMount> autofs_mounts_;  // the root task's, before it forks
  UniqueFd autofs_dev_;
  UniqueFd proc_dir_;
  UniqueFd log_fd_;
  int saved_sink_ = -1;
  UniqueFd signals_;
  sigset_t old_mask_{};
  std::vector<UniqueFd> pidfds_;
  std::set<size_t> gone_;
  pid_t root_outer_ = 0;
  uint64_t start_ns_ = 0;
  uint64_t deadline_ns_ = 0;
  double total_ms_ = 0;
  int fds_at_start_ = 0;
  size_t helpers_ = 0;
  size_t zombies_ = 0;
};

}  // namespace

int RunRestore(const images::RestorePlan& plan, const RestoreOptions& options) { return Controller(plan, options).Run(); }

}  // namespace ro
