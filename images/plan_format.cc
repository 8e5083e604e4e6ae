// FormatPlan: the --dry-run listing, one section per restore stage.
#include <fcntl.h>
#include <fmt/format.h>

#include "images/plan.h"

namespace ro::images {
namespace {

const char* KindName(TaskKind k) {
  switch (k) {
    case TaskKind::kAlive: return "alive";
    case TaskKind::kZombie: return "zombie";
    case TaskKind::kHelper: return "helper";
  }
  return "?";
}

const char* AutofsMode(int mode) {
  switch (mode) {
    case 0: return "direct";
    case 1: return "indirect";
    case 2: return "offset";
    default: return "?";
  }
}

std::string DescribeFile(const FilePlan& f) {
  switch (f.kind) {
    case FileKind::kPipe:
      return fmt::format("pipe:[{}] {} end{}", f.pipe_id, (f.flags & O_ACCMODE) == O_WRONLY ? "write" : "read",
                         (f.flags & O_NONBLOCK) ? " O_NONBLOCK" : "");
    case FileKind::kFifo:
      return fmt::format("fifo {} (pipe {}) flags 0{:o}", f.path, f.pipe_id, f.flags);
    case FileKind::kRegular:
      return fmt::format("file {} flags 0{:o} pos {}", f.path, f.flags, f.pos);
  }
  return "?";
}

std::string DescribeMount(const MountPlan& m) {
  std::string how;
  switch (m.how) {
    case MountSource::kNew: how = "new " + m.fstype; break;
    case MountSource::kBind: how = fmt::format("bind of mnt {}", m.bind_of); break;
    case MountSource::kExternal: how = "external " + m.fstype + " (bind from the caller's namespace)"; break;
  }
  std::string s = fmt::format("mnt {} {} at {} (root {}, source \"{}\", flags {:#x}", m.mnt_id, how, m.mountpoint,
                              m.root, m.source, m.flags);
  if (m.sb_flags != 0) s += fmt::format(", sb flags {:#x}", m.sb_flags);
  if (!m.options.empty()) s += ", options \"" + m.options + "\"";
  if (m.contents) s += fmt::format(", {} bytes of files in {}", m.contents->length, m.contents->file);
  if (m.shared_id != 0) s += fmt::format(", shared:{}", m.shared_id);
  if (m.master_id != 0) s += fmt::format(", master:{}", m.master_id);
  return s + ")";
}

}  // namespace

std::string FormatPlan(const RestorePlan& plan) {
  std::string out;
  auto line = [&out](std::string s) {
    out += s;
    out += '\n';
  };
  size_t helpers = 0, zombies = 0;
  for (const TaskPlan& t : plan.tasks) {
    helpers += t.kind == TaskKind::kHelper;
    zombies += t.kind == TaskKind::kZombie;
  }
  line(fmt::format("restore plan for {}", plan.image_dir));
  line(fmt::format("1. plan: {} tasks ({} zombies, {} helpers), {} fds, {} mounts, {} AutoFS mounts",
                   plan.tasks.size(), zombies, helpers, plan.CountFds(), plan.mounts.size(), plan.autofs.size()));
  for (const std::string& f : plan.unsupported_files) line("   ignored unsupported image: " + f);
  for (const std::string& w : plan.warnings) line("   warning: " + w);

  line("2. namespaces:");
  line(fmt::format("   root task {} cloned into {} PID namespace and {} mount namespace",
                   plan.tasks.empty() ? 0 : plan.tasks.front().pid, plan.ns.new_pid ? "a new" : "the caller's",
                   plan.ns.new_mnt ? "a new" : "the caller's"));
  if (plan.ns.uts) {
    line(fmt::format("   and a new UTS namespace (utsns-{}.img): hostname \"{}\", domainname \"{}\"", plan.ns.uts->ns_id,
                     plan.ns.uts->nodename, plan.ns.uts->domainname));
  } else {
    line("   and the caller's UTS namespace");
  }
  if (plan.ns.ipc) {
    std::string values;
    for (const auto& [path, text] : plan.ns.ipc->sysctls) values += (values.empty() ? "" : ", ") + path + "=" + text;
    for (const auto& [path, text] : plan.ns.ipc->next_ids) values += (values.empty() ? "" : ", ") + path + "=" + text;
    line(fmt::format("   and a new IPC namespace (ipcns-var-{}.img), its sysctls written: {}", plan.ns.ipc->ns_id, values));
    const IpcPlan& ipc = *plan.ns.ipc;
    auto perm = [](const SysvPermPlan& p) {
      return fmt::format("id {} key {:#010x} owner {}:{} creator {}:{} mode {:o}", p.id, p.key, p.uid, p.gid, p.cuid, p.cgid, p.mode);
    };
    for (const SysvShmPlan& s : ipc.shm) {
      line(fmt::format("     System V shared memory segment {}, {} bytes{}, contents {}", perm(s.perm), s.size, s.locked ? ", SHM_LOCKED" : "",
                       s.runs.empty() ? (s.contents.empty() ? "zero" : "inline") : fmt::format("{} runs of {}", s.runs.size(), s.pages_file)));
    }
    for (const SysvMsgQueuePlan& q : ipc.msg) {
      uint64_t bytes = 0;
      for (const SysvMessagePlan& m : q.messages) bytes += m.text.size();
      line(fmt::format("     System V message queue {}, qbytes {}, {} messages ({} bytes)", perm(q.perm), q.qbytes, q.messages.size(), bytes));
    }
    for (const SysvSemPlan& s : ipc.sem) {
      std::string numbers;
      for (uint16_t v : s.values) numbers += (numbers.empty() ? "" : " ") + std::to_string(v);
      line(fmt::format("     System V semaphore set {}, values {}", perm(s.perm), numbers));
    }
    for (const PosixMqueuePlan& q : ipc.mqueues) {
      uint64_t bytes = 0;
      for (const PosixMqMessagePlan& m : q.messages) bytes += m.data.size();
      line(fmt::format("     POSIX message queue /{} (posix-mqueues-{}.img) owner {}:{} mode {:o}, maxmsg {} msgsize {}, {} messages ({} bytes)", q.name,
                       ipc.ns_id, q.uid, q.gid, q.mode, q.maxmsg, q.msgsize, q.messages.size(), bytes));
    }
  } else {
    line("   and the caller's IPC namespace");
  }
  if (plan.ns.net) {
    const NetPlan& net = *plan.ns.net;
    line(fmt::format("   and a new network namespace (netns-, netdev-, ifaddr-{}.img): lo flags {:#x} mtu {}, {} sysctls written where "
                     "they differ from a new namespace's",
                     net.ns_id, net.lo_flags, net.lo_mtu, net.sysctls.size()));
    for (const sys::NetAddress& a : net.addresses) {
      line(fmt::format("     address {} scope {}{}{}", a.Text(), a.scope, a.label.empty() ? "" : " label " + a.label,
                       a.valid_lft == 0xffffffff ? "" : fmt::format(" valid for {} s", a.valid_lft)));
    }
  } else {
    line("   and the caller's network namespace");
  }

  line("3. mounts:");
  if (!plan.ns.new_mnt) line("   none: the tree shares the caller's mount namespace");
  int n = 0;
  for (const MountPlan& m : plan.mounts) line(fmt::format("   create {:>3}. {}", ++n, DescribeMount(m)));
  for (const SharingStep& s : plan.sharing) {
    switch (s.op) {
      case SharingStep::Op::kMakeShared:
        line(fmt::format("   share mnt {}: first of peer group {}", s.mnt, s.group));
        break;
      case SharingStep::Op::kJoinGroup:
        line(fmt::format("   share mnt {}: join mnt {}'s group {} (MOVE_MOUNT_SET_GROUP)", s.mnt, s.peer, s.group));
        break;
      case SharingStep::Op::kSlaveOf:
        line(fmt::format("   share mnt {}: slave of group {} (SET_GROUP from mnt {}, then MS_SLAVE)", s.mnt, s.group, s.peer));
        break;
      case SharingStep::Op::kSlaveOfExternal:
        if (s.peer != 0) {
          line(fmt::format("   share mnt {}: slave of group {} outside the images (SET_GROUP from the caller's mount holding mnt {}'s "
                           "source, then MS_SLAVE)", s.mnt, s.group, s.peer));
        } else {
          line(fmt::format("   share mnt {}: slave of group {}, which is outside the images: private (--enable-external-masters "
                           "makes it a slave of the caller's)", s.mnt, s.group));
        }
        break;
    }
  }
  if (!plan.placement.empty()) {
    std::string order;
    for (uint32_t id : plan.placement) order += fmt::format(" {}", id);
    line("   place (parents first):" + order);
  }
  for (const AutofsPlan& a : plan.autofs) {
    std::string owner = a.catatonic ? "stays catatonic"
                                    : fmt::format("taken over by master {} through its fd {} ({})", a.master, a.pipe_fd,
                                                  a.write_end_closed ? "read end; temporary write end" : "write end");
    line(fmt::format("   autofs mnt {} {} {} timeout {}s proto {}..{}: dummy pipe, catatonic, {}", a.mnt_id, a.path,
                     AutofsMode(a.mode), a.timeout, a.minproto, a.maxproto, owner));
  }

  line("4. tasks (fork order):");
  for (const TaskPlan& t : plan.tasks) {
    std::string s = fmt::format("   pid {} ppid {} pgid {} sid {} {}", t.pid, t.ppid, t.pgid, t.sid, KindName(t.kind));
    if (t.fork_parent != t.ppid) s += fmt::format(", forked by {}", t.fork_parent);
    if (t.before_parent_setsid) s += ", before its parent's setsid";
    if (t.setsid) s += ", setsid";
    if (!t.comm.empty()) s += " \"" + t.comm + "\"";
    if (t.kind == TaskKind::kZombie) s += fmt::format(" exit status {:#x}", t.exit_status);
    if (t.kind == TaskKind::kHelper) s += ": " + t.helper_reason;
    if (t.kind == TaskKind::kAlive && t.threads.size() > 1) {
      s += fmt::format(", {} threads:", t.threads.size());
      for (pid_t tid : t.threads) s += fmt::format(" {}", tid);
    }
    line(s);
  }

  line("5. files:");
  for (const PipeDataPlan& p : plan.pipe_data) {
    line(fmt::format("   {} {}: capacity {}, {} bytes to write back", p.fifo ? "fifo" : "pipe", p.pipe_id,
                     p.capacity == 0 ? std::string("default") : std::to_string(p.capacity), p.data.size()));
  }
  for (const TaskPlan& t : plan.tasks) {
    if (t.fds.empty() && t.cwd.empty()) continue;
    line(fmt::format("   task {}: {} fds{}{}", t.pid, t.fds.size(), t.cwd.empty() ? "" : ", cwd " + t.cwd,
                     t.root.empty() ? "" : ", root " + t.root));
    for (const FdPlan& fd : t.fds) {
      line(fmt::format("     fd {:>4} -> {}{}", fd.fd, DescribeFile(plan.files.at(fd.file_id)), fd.cloexec ? " cloexec" : ""));
    }
  }

  line("6. seccomp:");
  for (const TaskPlan& t : plan.tasks) {
    if (!t.seccomp.empty()) line(fmt::format("   task {}: {} filters", t.pid, t.seccomp.size()));
  }

  line("7. resume:");
  for (const TaskPlan& t : plan.tasks) {
    if (t.kind != TaskKind::kAlive) continue;
    switch (t.resume_mode) {
      case ResumeMode::kContinue: {
        const ContinuePlan& c = *t.cont;
        uint64_t pages = 0;
        for (const PagesRun& r : c.mm.runs) pages += r.nr_pages;
        line(fmt::format("   task {}: continues where it was dumped ({} VMAs, {} pages from {}, {} thread(s))", t.pid,
                         c.mm.vmas.size(), pages, c.mm.pages_file, c.threads.size()));
        break;
      }
      case ResumeMode::kExec: {
        std::string argv;
        for (const std::string& a : t.resume->argv) argv += " " + a;
        line(fmt::format("   task {}: exec {} [{} ]", t.pid, t.resume->exe, argv));
        break;
      }
      case ResumeMode::kHold:
        line(fmt::format("   task {}: holder (keeps its objects until killed)", t.pid));
        break;
      case ResumeMode::kZombie:
        break;  // not alive
    }
  }
  return out;
}

}  // namespace ro::images
