#include "orchestrator/syscall_faults.h"

#include <poll.h>
#include <seccomp.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <charconv>
#include <cstring>

#include "sys/fd_passing.h"
#include "sys/log.h"

namespace ro {
namespace {

int ErrnoByName(const std::string& name) {
  static const std::pair<const char*, int> kNames[] = {
      {"EPERM", EPERM},   {"ENOENT", ENOENT}, {"EINTR", EINTR},   {"EIO", EIO},       {"EBADF", EBADF},
      {"EAGAIN", EAGAIN}, {"ENOMEM", ENOMEM}, {"EACCES", EACCES}, {"EFAULT", EFAULT}, {"EBUSY", EBUSY},
      {"EEXIST", EEXIST}, {"ENOTDIR", ENOTDIR}, {"EINVAL", EINVAL}, {"ENFILE", ENFILE}, {"EMFILE", EMFILE},
      {"ENOSPC", ENOSPC}, {"EPIPE", EPIPE},   {"ENOSYS", ENOSYS}, {"ELOOP", ELOOP},   {"ENODEV", ENODEV},
  };
  for (const auto& [n, v] : kNames) {
    if (name == n) return v;
  }
  int v = 0;
  auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), v);
  return ec == std::errc() && end == name.data() + name.size() && v > 0 && v < 4096 ? v : -1;
}

}  // namespace

Result<SyscallFault> ParseSyscallFault(const std::string& text) {
  SyscallFault f;
  std::string rest = text;
  if (size_t at = rest.find('@'); at != std::string::npos) {
    int pid = 0;
    std::string p = rest.substr(at + 1);
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), pid);
    if (ec != std::errc() || end != p.data() + p.size() || pid <= 0) return Fail("--fault-syscall " + text + ": bad task pid");
    f.task = pid;
    rest = rest.substr(0, at);
  }
  size_t c1 = rest.find(':');
  if (c1 == std::string::npos) return Fail("--fault-syscall " + text + ": expected SYSCALL:ERRNO[:N][@PID]");
  f.name = rest.substr(0, c1);
  std::string err = rest.substr(c1 + 1);
  if (size_t c2 = err.find(':'); c2 != std::string::npos) {
    std::string n = err.substr(c2 + 1);
    err = err.substr(0, c2);
    auto [end, ec] = std::from_chars(n.data(), n.data() + n.size(), f.pass);
    if (ec != std::errc() || end != n.data() + n.size() || f.pass == 0) return Fail("--fault-syscall " + text + ": bad pass number");
  }
  f.nr = seccomp_syscall_resolve_name(f.name.c_str());
  if (f.nr == __NR_SCMP_ERROR) return Fail("--fault-syscall " + text + ": unknown syscall " + f.name);
  f.err = ErrnoByName(err);
  if (f.err < 0) return Fail("--fault-syscall " + text + ": unknown errno " + err);
  return f;
}

Status InstallSyscallFault(const SyscallFault& fault, const UniqueFd& channel) {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr) return Fail("seccomp_init failed");
  // We hold CAP_SYS_ADMIN: no need for no_new_privs, which would outlive the restore.
  int r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
  if (r == 0) r = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, fault.nr, 0);
  if (r == 0) r = seccomp_load(ctx);
  int fd = r == 0 ? seccomp_notify_fd(ctx) : -1;
  seccomp_release(ctx);
  if (r != 0) return SysError("seccomp notify filter for " + fault.name, -r);
  if (fd < 0) return Fail("no seccomp notification fd");
  UniqueFd notify(fd);
  return sys::SendFd(channel, notify.get());
}

Status SyscallFaultSupervisor::Start(const SyscallFault& fault, const UniqueFd& channel, shm::Arena& arena, int timeout_ms) {
  fault_ = fault;
  arena_ = &arena;
  pollfd p{channel.get(), POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) return Fail("the root task sent no seccomp notification fd");
  RO_ASSIGN_OR_RETURN(notify_, sys::ReceiveFd(channel));
  stop_.reset(::eventfd(0, EFD_CLOEXEC));
  if (!stop_) return SysError("eventfd");
  thread_ = std::thread([this] { Serve(); });
  return {};
}

void SyscallFaultSupervisor::Stop() {
  if (!thread_.joinable()) return;
  uint64_t one = 1;
  (void)!::write(stop_.get(), &one, sizeof(one));
  thread_.join();
  notify_.reset();
  stop_.reset();
}

void SyscallFaultSupervisor::Serve() {
  seccomp_notif* req = nullptr;
  seccomp_notif_resp* resp = nullptr;
  if (seccomp_notify_alloc(&req, &resp) != 0) return;
  for (;;) {
    pollfd fds[2] = {{notify_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[1].revents & POLLIN) break;
    if (fds[0].revents & (POLLHUP | POLLERR)) break;  // the filter's last task is gone
    if (!(fds[0].revents & POLLIN)) continue;
    std::memset(req, 0, sizeof(*req));
    if (seccomp_notify_receive(notify_.get(), req) != 0) continue;  // the caller died meanwhile
    bool ours = true;
    if (fault_.task) {
      ours = false;
      for (size_t i = 0; i < arena_->task_count(); ++i) {
        if (arena_->slot(i).outer_pid.load() == static_cast<int32_t>(req->pid)) ours = arena_->slot(i).pid == *fault_.task;
      }
    }
    log::Debug("{} called by pid {} ({})", fault_.name, req->pid, ours ? "counted" : "not watched");
    std::memset(resp, 0, sizeof(*resp));
    resp->id = req->id;
    if (ours && ++calls_ == fault_.pass) {
      resp->error = -fault_.err;
      log::Info("failing call {} of {} in pid {} with {}", calls_, fault_.name, req->pid, std::strerror(fault_.err));
    } else {
      resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    }
    seccomp_notify_respond(notify_.get(), resp);
  }
  seccomp_notify_free(req, resp);
}

}  // namespace ro
