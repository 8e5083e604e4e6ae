#include "orchestrator/verify.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "sys/mountinfo.h"
#include "sys/mount_api.h"
#include "sys/proc.h"
#include "sys/process.h"

namespace ro {
namespace {

using images::FileKind;

std::string Proc(pid_t pid, const std::string& rest) { return "/proc/" + std::to_string(pid) + "/" + rest; }

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The value in the innermost PID namespace of a /proc/PID/status line.
pid_t Innermost(const std::string& status, const std::string& key) {
  return static_cast<pid_t>(sys::StatusInnermost(status, key));
}

struct LiveTask {
  pid_t outer = 0;
  pid_t ppid = 0;  // inner
  pid_t pgid = 0;
  pid_t sid = 0;
  char state = '?';
  int exit_code = 0;
};

class Verifier {
 public:
  Verifier(const images::RestorePlan& plan, pid_t root) : plan_(plan), root_(root) {}

  std::vector<std::string> Run() {
    CollectTasks(root_);
    CompareTasks();
    CompareFds();
    CompareMounts();
    return diffs_;
  }

 private:
  void Diff(std::string line) { diffs_.push_back(std::move(line)); }

  // Walks the live tree from the root through /proc/PID/task/*/children.
  void CollectTasks(pid_t outer) {
    std::string status = ReadText(Proc(outer, "status"));
    if (status.empty()) return;
    pid_t inner = Innermost(status, "NSpid");
    LiveTask t;
    t.outer = outer;
    t.pgid = Innermost(status, "NSpgid");
    t.sid = Innermost(status, "NSsid");
    auto stat = sys::ParseProcStat(ReadText(Proc(outer, "stat")));
    if (stat.ok()) {
      t.state = stat->state;
      t.exit_code = stat->exit_code;
      pid_t outer_ppid = stat->ppid;
      t.ppid = outer == root_ ? 0 : Innermost(ReadText(Proc(outer_ppid, "status")), "NSpid");
    }
    live_[inner] = t;
    if (DIR* d = ::opendir(Proc(outer, "task").c_str())) {
      while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        std::istringstream kids(ReadText(Proc(outer, std::string("task/") + e->d_name + "/children")));
        for (pid_t k; kids >> k;) CollectTasks(k);
      }
      ::closedir(d);
    }
  }

  void CompareTasks() {
    std::set<pid_t> seen;
    for (const auto& t : plan_.tasks) {
      if (t.kind == images::TaskKind::kHelper) continue;
      seen.insert(t.pid);
      auto it = live_.find(t.pid);
      std::string who = "task " + std::to_string(t.pid);
      if (it == live_.end()) {
        Diff(who + ": missing");
        continue;
      }
      const LiveTask& l = it->second;
      if (l.ppid != t.ppid) Diff(who + ": parent " + std::to_string(l.ppid) + ", images say " + std::to_string(t.ppid));
      if (l.sid != t.sid) Diff(who + ": session " + std::to_string(l.sid) + ", images say " + std::to_string(t.sid));
      if (l.pgid != t.pgid) Diff(who + ": process group " + std::to_string(l.pgid) + ", images say " + std::to_string(t.pgid));
      bool zombie = t.kind == images::TaskKind::kZombie;
      if (zombie != (l.state == 'Z')) Diff(who + (zombie ? ": not a zombie" : ": is a zombie"));
      if (zombie && l.state == 'Z' && static_cast<uint32_t>(l.exit_code) != t.exit_status) {
        Diff(who + ": exit status " + std::to_string(l.exit_code) + ", images say " + std::to_string(t.exit_status));
      }
    }
    for (const auto& [pid, l] : live_) {
      if (!seen.count(pid)) Diff("task " + std::to_string(pid) + ": not in the images");
    }
  }

  void CompareFds() {
    std::map<uint32_t, std::pair<pid_t, int>> first_of_file;
    std::map<uint32_t, std::string> pipe_target;
    for (const auto& t : plan_.tasks) {
      auto it = live_.find(t.pid);
      if (t.kind != images::TaskKind::kAlive || it == live_.end()) continue;
      pid_t outer = it->second.outer;
      std::string who = "task " + std::to_string(t.pid);
      std::set<int> live_fds;
      if (DIR* d = ::opendir(Proc(outer, "fd").c_str())) {
        while (dirent* e = ::readdir(d)) {
          if (e->d_name[0] != '.') live_fds.insert(std::atoi(e->d_name));
        }
        ::closedir(d);
      }
      for (const auto& fd : t.fds) {
        std::string where = who + " fd " + std::to_string(fd.fd);
        if (!live_fds.erase(fd.fd)) {
          Diff(where + ": missing");
          continue;
        }
        const images::FilePlan& f = plan_.files.at(fd.file_id);
        char buf[4096];
        ssize_t n = ::readlink(Proc(outer, "fd/" + std::to_string(fd.fd)).c_str(), buf, sizeof(buf) - 1);
        std::string target = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
        if (f.kind == FileKind::kPipe) {
          auto [at, fresh] = pipe_target.emplace(f.pipe_id, target);
          if (target.rfind("pipe:", 0) != 0) Diff(where + ": " + target + " is not a pipe");
          else if (at->second != target) Diff(where + ": not the same pipe as the other ends of pipe " + std::to_string(f.pipe_id));
        } else if (target != f.path) {
          Diff(where + ": " + target + ", images say " + f.path);
        }
        std::string info = ReadText(Proc(outer, "fdinfo/" + std::to_string(fd.fd)));
        size_t at = info.find("flags:");
        unsigned flags = at == std::string::npos ? 0 : static_cast<unsigned>(std::strtoul(info.c_str() + at + 6, nullptr, 8));
        unsigned mask = O_ACCMODE | O_NONBLOCK | O_APPEND;
        if ((flags & mask) != (f.flags & mask)) Diff(where + ": status flags differ");
        if (((flags & O_CLOEXEC) != 0) != fd.cloexec) Diff(where + ": close-on-exec differs");
        auto [first, fresh] = first_of_file.emplace(fd.file_id, std::make_pair(outer, fd.fd));
        if (!fresh && !sys::KcmpSame(first->second.first, outer, sys::KcmpType::kFile, static_cast<unsigned long>(first->second.second),
                                     static_cast<unsigned long>(fd.fd))) {
          Diff(where + ": does not share the open file description it had");
        }
      }
      for (int extra : live_fds) Diff(who + " fd " + std::to_string(extra) + ": not in the images");
    }
  }

  void CompareMounts() {
    if (!plan_.ns.new_mnt) return;
    auto mounts = sys::ReadMountInfo(Proc(root_, "mountinfo"));
    if (!mounts.ok()) {
      Diff("mounts: " + mounts.error().ToString());
      return;
    }
    std::map<std::string, std::vector<const sys::MountInfo*>> by_point;
    for (const auto& m : *mounts) by_point[m.mountpoint].push_back(&m);
    std::map<uint32_t, uint32_t> group;  // image peer group -> live one
    auto same_group = [&](uint32_t image, uint32_t live, const std::string& where, const char* what) {
      if (image == 0 || live == 0) {
        if ((image == 0) != (live == 0)) Diff(where + ": " + what + (image == 0 ? " is set, images have none" : " is missing"));
        return;
      }
      auto [it, fresh] = group.emplace(image, live);
      if (!fresh && it->second != live) Diff(where + ": " + what + " is not the group its peers are in");
    };
    size_t expected = 0;
    for (uint32_t id : plan_.placement) {
      const images::MountPlan& m = *plan_.FindMount(id);
      ++expected;
      std::string where = "mount " + m.mountpoint;
      auto& stack = by_point[m.mountpoint];
      if (stack.empty()) {
        Diff(where + ": missing");
        continue;
      }
      const sys::MountInfo& l = *stack.front();  // parents are placed first: the lowest is ours
      stack.erase(stack.begin());
      if (m.how != images::MountSource::kExternal && l.fstype != m.fstype) Diff(where + ": " + l.fstype + ", images say " + m.fstype);
      if (m.how != images::MountSource::kExternal && l.root != m.root) Diff(where + ": root " + l.root + ", images say " + m.root);
      auto opts = sys::SplitOptions(l.mount_options);
      std::set<std::string> have(opts.begin(), opts.end());
      const std::pair<uint32_t, const char*> flags[] = {{MS_RDONLY, "ro"}, {MS_NOSUID, "nosuid"}, {MS_NODEV, "nodev"}, {MS_NOEXEC, "noexec"}};
      for (const auto& [bit, name] : flags) {
        if (((m.flags & bit) != 0) != (have.count(name) != 0)) Diff(where + ": " + name + " differs");
      }
      if (((m.flags & MS_UNBINDABLE) != 0) != l.unbindable) Diff(where + ": unbindable differs");
      if (m.how != images::MountSource::kExternal && m.fstype != "autofs") {
        auto live_opts = sys::SplitOptions(l.super_options);
        std::set<std::string> live_set(live_opts.begin(), live_opts.end());
        for (const std::string& o : sys::SplitOptions(m.options)) {
          if (o != "rw" && o != "ro" && !live_set.count(o)) Diff(where + ": superblock option " + o + " is missing");
        }
      }
      same_group(m.shared_id, l.shared, where, "peer group");
      bool external_master = m.master_id != 0 && std::none_of(plan_.mounts.begin(), plan_.mounts.end(),
                                                              [&](const auto& o) { return o.shared_id == m.master_id; });
      if (!external_master) same_group(m.master_id, l.master, where, "master group");
      CompareAutofs(m, l, where);
    }
    size_t live_count = mounts->size();
    if (live_count != expected) Diff("mounts: " + std::to_string(live_count) + " live, images have " + std::to_string(expected));
  }

  void CompareAutofs(const images::MountPlan& m, const sys::MountInfo& l, const std::string& where) {
    if (m.fstype != "autofs") return;
    const images::AutofsPlan* a = nullptr;
    for (const auto& candidate : plan_.autofs) {
      if (candidate.mnt_id == m.mnt_id) a = &candidate;
    }
    if (a == nullptr) return;  // a bind of another AutoFS mount
    if (a->catatonic) {
      if (l.SuperOption("fd") != "-1") Diff(where + ": not catatonic");
      return;
    }
    auto master = live_.find(a->master);
    if (master == live_.end()) return;  // reported with the tasks
    auto stat = sys::ParseProcStat(ReadText(Proc(master->second.outer, "stat")));
    if (stat.ok() && l.SuperOption("pgrp") != std::to_string(stat->pgid)) Diff(where + ": not owned by its master's process group");
    struct stat st {};
    if (::stat(Proc(master->second.outer, "fd/" + std::to_string(a->pipe_fd)).c_str(), &st) != 0 ||
        l.SuperOption("pipe_ino") != std::to_string(st.st_ino)) {
      Diff(where + ": its pipe is not the one its master holds at fd " + std::to_string(a->pipe_fd));
    }
  }

  const images::RestorePlan& plan_;
  pid_t root_;
  std::map<pid_t, LiveTask> live_;  // by inner pid
  std::vector<std::string> diffs_;
};

}  // namespace

std::vector<std::string> VerifyTree(const images::RestorePlan& plan, pid_t root) { return Verifier(plan, root).Run(); }

}  // namespace ro
