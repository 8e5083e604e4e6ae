// `restore-orch dump --tree PID --images DIR`: freeze, collect, check the
// images restore, write them, then kill or release the tree. Until the
// images are written nothing about the tree changes; on any failure it is
// released running, as it was.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "images/image_dir.h"
#include "images/image_file.h"
#include "images/plan.h"
#include "orchestrator/action_scripts.h"
#include "orchestrator/attrs.h"
#include "orchestrator/cli.h"
#include "orchestrator/commands.h"
#include "orchestrator/dump/dump.h"
#include "orchestrator/dump/freeze.h"
#include "sys/futex.h"
#include "sys/log.h"
#include "sys/progress.h"

namespace ro {
namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::time_point from, Clock::time_point to) { return std::chrono::duration<double, std::milli>(to - from).count(); }

// One line; a refusal's mark is no errno to print.
void PrintDumpError(const Error& e) {
  sys::EraseProgressLine();
  Error line = e;
  if (line.err == kErrRefused) line.err = 0;
  std::fprintf(stderr, "restore-orch: dump: %s\n", line.ToString().c_str());
}

// The directory must hold no images yet: a dump never mixes with another.
// Made when absent, and removed again if the dump fails.
class TargetDir {
 public:
  explicit TargetDir(std::string path) : path_(std::move(path)) {}
  TargetDir(const TargetDir&) = delete;
  TargetDir& operator=(const TargetDir&) = delete;
  ~TargetDir() {
    if (created_ && !keep_) ::rmdir(path_.c_str());
  }

  // A dry run makes nothing: an absent directory is one a dump would make.
  Status Prepare(bool dry_run) {
    if (dry_run) {
      struct stat st {};
      if (::stat(path_.c_str(), &st) != 0) return errno == ENOENT ? Status() : SysError("stat " + path_);
      if (!S_ISDIR(st.st_mode)) return Fail(path_ + " is not a directory");
    } else if (::mkdir(path_.c_str(), 0700) == 0) {
      created_ = true;
      return {};
    }
    if (errno != EEXIST) return SysError("mkdir " + path_);
    DIR* d = ::opendir(path_.c_str());
    if (d == nullptr) return SysError("open " + path_);
    std::string found;
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name.ends_with(".img")) found = name;
    }
    ::closedir(d);
    if (!found.empty()) return Fail(path_ + " already holds images (" + found + "): dump into an empty directory");
    return {};
  }
  void Keep() { keep_ = true; }

 private:
  std::string path_;
  bool created_ = false;
  bool keep_ = false;
};

// SIGINT, SIGTERM and SIGHUP during a dump: noted, acted on between phases
// (the tree released, nothing written) instead of leaving half a dump.
volatile sig_atomic_t g_interrupted = 0;

class InterruptGuard {
 public:
  InterruptGuard() {
    struct sigaction sa {};
    sa.sa_handler = [](int sig) { g_interrupted = sig; };
    for (int i = 0; i < 3; ++i) ::sigaction(kSignals[i], &sa, &old_[i]);
  }
  ~InterruptGuard() {
    for (int i = 0; i < 3; ++i) ::sigaction(kSignals[i], &old_[i], nullptr);
  }
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

  static Status Check(const char* phase) {
    if (g_interrupted == 0) return {};
    return Fail(std::string("interrupted by ") + ::strsignal(g_interrupted) + " while " + phase +
                ": nothing was written and the tree runs on");
  }

 private:
  static constexpr int kSignals[3] = {SIGINT, SIGTERM, SIGHUP};
  struct sigaction old_[3];
};

using Encoded = std::map<std::string, std::string>;  // file name -> bytes

void RemoveImages(const std::string& path, const Encoded& files) {
  for (const auto& [name, bytes] : files) ::unlink((path + "/" + name).c_str());
}

Status WriteImages(const std::string& path, const Encoded& files) {
  Status s = images::WriteEncodedDir(path, files);
  if (!s.ok()) RemoveImages(path, files);  // leave no half dump behind
  return s;
}

// What a restore of these images must be told: --shell-job for a shell's
// job, one line per external mount with the flag that maps it; empty when
// the images need nothing.
std::string RestoreNeeds(const images::RestorePlan& plan) {
  std::string out;
  for (const images::TaskPlan& t : plan.tasks) {
    if (t.sid != 0 || t.kind == images::TaskKind::kHelper) continue;
    out += "a restore needs --shell-job (-j): task " + std::to_string(t.pid) +
           " is in a session led from outside the tree, which a restore leaves it in restore-orch's\n";
    break;
  }
  for (const images::MountPlan& m : plan.mounts) {
    if (m.how != images::MountSource::kExternal) continue;
    std::string flag = m.mountpoint == "/" && m.parent_id == 0 ? "--root DIR" : images::ExternalFlag(m.ext_key);
    out += "a restore needs " + flag + " for mount " + m.mountpoint + " (" + m.fstype + " " + m.source + ", root " + m.root +
           "), or --ext-mount-map auto\n";
  }
  // Every mount of such a group, its peers included (they follow its first).
  std::map<uint32_t, std::string> slaves;  // outside group -> mountpoints
  for (const images::MountPlan& m : plan.mounts) {
    bool outside = plan.MasterOutside(m);
    if (outside) slaves[m.master_id] += (slaves[m.master_id].empty() ? "" : ", ") + m.mountpoint;
  }
  for (const auto& [group, mountpoints] : slaves) {
    out += "a restore needs --enable-external-masters for " + mountpoints + " to come back slaves of peer group " +
           std::to_string(group) + " outside the tree (without it, private)\n";
  }
  return out;
}

// A dump's exit status for an error of its freeze, collect or check: 3
// for a refusal (Refuse(): the tree holds what restore-orch cannot
// checkpoint or restore), 75 for "try again", 1 for anything else (a
// syscall, an interruption, a logical failure of restore-orch's own).
int ExitFor(const Error& e) {
  if (e.err == kErrTryAgain) return kExitTryAgain;
  return e.err == kErrRefused ? kExitRefused : kExitFailure;
}

// --dry-run: what the dump would have written, then the counts.
void PrintDryRun(const std::string& dir, const Encoded& files, const std::map<std::string, uint64_t>& streamed,
                 const DumpCounts& c) {
  std::map<std::string, uint64_t> sizes = streamed;
  for (const auto& [name, bytes] : files) sizes[name] = bytes.size();
  uint64_t total = 0;
  for (const auto& [name, size] : sizes) total += size;
  std::string out = fmt::format("dry run: the tree was frozen, read, checked and released; nothing was written\n"
                                "a dump would write {} files, {} bytes, into {}:\n",
                                sizes.size(), total, dir);
  for (const auto& [name, size] : sizes) out += fmt::format("  {:<40} {:>12}\n", name, size);
  out += fmt::format("tasks {}, threads {}, zombies {}, fds {}, pipes {} ({} bytes queued), mounts {}, autofs {}, tmpfs {} bytes\n",
                     c.tasks, c.threads, c.zombies, c.fds, c.pipes, c.pipe_bytes, c.mounts, c.autofs, c.tmpfs_bytes);
  std::fputs(out.c_str(), stdout);
}

}  // namespace

int CmdDump(const DumpArgs& args) {
  log::SetStage("dump");
  if (args.quiet && args.progress) {
    PrintDumpError(Fail("-q/--quiet and --progress exclude each other"));
    return kExitUsage;
  }
  Clock::time_point start = Clock::now();
  InterruptGuard interrupts;
  sys::ProgressLine progress(sys::ProgressModeFor(args.quiet, args.progress), "dump");
  TargetDir target(args.images);
  if (Status s = target.Prepare(args.dry_run); !s.ok()) {
    PrintDumpError(s.error());
    return kExitFailure;
  }
  const uint64_t script_deadline = 60'000'000'000;
  if (!args.dry_run) {
    if (Status s = RunActionScripts(args.action_scripts, "pre-dump", args.tree, sys::MonotonicNs() + script_deadline,
                                    [&progress] {
                                      progress.Update("action script at pre-dump");
                                      return InterruptGuard::Check("the pre-dump action script ran");
                                    });
        !s.ok()) {
      PrintDumpError(s.error());
      return kExitFailure;
    }
  }
  // Pages files are written while the tree is frozen, straight into the
  // directory; they go again (before the directory) if the dump fails. A
  // dry run reads the pages and counts them, writing nothing.
  StreamedFiles streamed(args.images, args.dry_run);
  // What /proc alone shows refused is refused before the freeze, which
  // would end some of the tree's waits (epoll_wait) with EINTR. The full
  // check after the freeze stays: the tree may change in between.
  if (Status s = PrecheckFds(args.tree); !s.ok()) {
    PrintDumpError(s.error());
    return ExitFor(s.error());
  }
  progress.Update("freezing");
  Clock::time_point freeze_start = Clock::now();  // the pre-dump scripts and the pre-check are not the freeze's
  auto frozen = FrozenTree::Freeze(args.tree, static_cast<int>(args.freeze_timeout_s * 1000));
  if (!frozen.ok()) {
    Error e = std::move(frozen).error();
    PrintDumpError(Error(e).Within("freezing the tree"));
    return ExitFor(e);
  }
  FrozenTree& tree = *frozen;
  if (Status s = InterruptGuard::Check("freezing"); !s.ok()) {
    PrintDumpError(s.error());
    return kExitFailure;
  }
  Clock::time_point frozen_at = Clock::now();
  log::Info("froze {} tasks in {:.1f} ms", tree.tasks().size(), Ms(freeze_start, frozen_at));

  CollectOptions collect;
  collect.streamed = &streamed;
  collect.interrupted = [] { return InterruptGuard::Check("collecting"); };
  collect.shell_job = args.shell_job;
  collect.progress = [&progress](size_t done, size_t total) { progress.Update("collecting", done, total); };
  auto dumped = CollectImages(tree, collect);
  if (!dumped.ok()) {
    const Error& e = dumped.error();
    PrintDumpError(e);
    return ExitFor(e);  // the tree is released as it was
  }
  if (Status s = InterruptGuard::Check("collecting"); !s.ok()) {
    PrintDumpError(s.error());
    return kExitFailure;
  }
  Clock::time_point collected = Clock::now();

  // Images that would not restore are not written: they are checked as a
  // restore reads them, encoded, parsed back under its limits, planned.
  progress.Update("checking");
  const char* unrestorable = "the tree could not be restored from its images";
  Encoded encoded;
  images::ImageDir dir;
  dir.path = args.images;
  for (auto& [name, file] : dumped->files) {
    auto bytes = images::SerializeImage(file);
    auto parsed = bytes.ok() ? images::ParseImage(*bytes, file.kind, images::Limits{}) : Result<images::ImageFile>(bytes.error());
    if (!parsed.ok()) {
      PrintDumpError(std::move(parsed).error().Within(name).Within(unrestorable));
      return kExitRefused;
    }
    dir.files.emplace(name, std::move(parsed).value());
    encoded.emplace(name, std::move(bytes).value());
  }
  dumped->files.clear();
  // The pages files are on disk already: checked as a restore sees them.
  for (const auto& [name, bytes] : streamed.files()) {
    auto parsed = images::ParseFileName(name);
    images::ImageFile raw;
    raw.kind = parsed ? parsed->kind : nullptr;
    raw.entries.push_back(images::Entry{nullptr, {}, images::PayloadRef{name, 0, bytes}});
    dir.files.emplace(name, std::move(raw));
  }
  images::PlanOptions check;
  check.externals_named_later = true;  // the caller names them at restore
  check.shell_job = args.shell_job;    // a shell's job: written with sid/pgid 0
  // What restore-orch here could not give a task back (a hard limit above
  // its own...) is refused now, with the tree running, not at restore.
  auto host = ReadHostAttrs();
  if (!host.ok()) {
    PrintDumpError(host.error());
    return kExitFailure;
  }
  check.host = *host;
  images::PlanOutcome outcome = images::BuildPlan(dir, check);
  if (!outcome.plan) {
    for (const Error& e : outcome.errors) PrintDumpError(Error(e).Within(unrestorable));
    return kExitRefused;
  }
  std::string needs = RestoreNeeds(*outcome.plan);
  Clock::time_point checked = Clock::now();
  for (const std::string& w : dumped->warnings) log::Warn("{}", w);
  for (const std::string& w : outcome.plan->warnings) log::Warn("{}", w);

  // A tree that runs on needs nothing more from its freeze: the images are
  // in memory. One that dies stays frozen until they are on disk, so that
  // a failed write leaves it running.
  if (args.dry_run) {
    tree.Release();
    progress.Finish();
    if (Status s = InterruptGuard::Check("checking"); !s.ok()) {
      PrintDumpError(s.error());
      return kExitFailure;
    }
    PrintDryRun(args.images, encoded, streamed.files(), dumped->counts);
    if (!needs.empty()) std::fputs(needs.c_str(), stdout);
    return 0;
  }
  Clock::time_point released{};
  if (args.leave_running) {
    tree.Release();
    released = Clock::now();
  }
  progress.Update("writing");
  Status written_ok = InterruptGuard::Check("checking");
  if (written_ok.ok()) written_ok = WriteImages(args.images, encoded);
  if (written_ok.ok()) {
    written_ok = InterruptGuard::Check("writing");
    if (!written_ok.ok()) RemoveImages(args.images, encoded);
  }
  if (written_ok.ok()) {
    written_ok = RunActionScripts(args.action_scripts, "post-dump", args.tree, sys::MonotonicNs() + script_deadline,
                                  [&progress] {
                                    progress.Update("action script at post-dump");
                                    return InterruptGuard::Check("the post-dump action script ran");
                                  });
    if (!written_ok.ok()) RemoveImages(args.images, encoded);  // the tree is released running
  }
  if (!written_ok.ok()) {
    PrintDumpError(written_ok.error());
    return kExitFailure;
  }
  target.Keep();
  streamed.Keep();
  Clock::time_point written = Clock::now();
  Status finish;
  if (!args.leave_running) {
    finish = tree.Kill();
    released = Clock::now();
  }
  Clock::time_point done = Clock::now();
  progress.Finish();
  if (!finish.ok()) {
    PrintDumpError(finish.error());
    return kExitFailure;
  }
  if (!needs.empty()) std::fputs(needs.c_str(), stdout);
  log::Info("dumped {} tasks, {} fds, {} mounts, {} pages ({} bytes) into {} in {:.1f} ms (tree stopped {:.1f} ms)",
            dumped->counts.tasks, dumped->counts.fds, dumped->counts.mounts, dumped->counts.pages, dumped->counts.pages_bytes,
            args.images, Ms(start, done), Ms(tree.frozen_at(), released));

  if (!args.stats_file.empty()) {
    nlohmann::ordered_json j;
    j["freeze_ms"] = Ms(freeze_start, frozen_at);
    j["collect_ms"] = Ms(frozen_at, collected);
    j["check_ms"] = Ms(collected, checked);
    j["write_ms"] = Ms(checked, written) - (args.leave_running ? Ms(checked, released) : 0.0);
    j["finish_ms"] = args.leave_running ? Ms(checked, released) : Ms(written, done);
    j["downtime_ms"] = Ms(tree.frozen_at(), released);
    j["total_ms"] = Ms(start, done);
    j["left_running"] = args.leave_running;
    const DumpCounts& c = dumped->counts;
    j["tasks"] = c.tasks;
    j["threads"] = c.threads;
    j["zombies"] = c.zombies;
    j["fds"] = c.fds;
    j["pipes"] = c.pipes;
    j["pipe_bytes"] = c.pipe_bytes;
    j["mounts"] = c.mounts;
    j["autofs"] = c.autofs;
    j["tmpfs_bytes"] = c.tmpfs_bytes;
    j["vmas"] = c.vmas;
    j["shmem"] = c.shmem;
    j["pages"] = c.pages;
    j["zero_pages"] = c.zero_pages;
    j["pages_bytes"] = c.pages_bytes;
    j["pages_ms"] = c.pages_ms;
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    j["peak_rss_kib"] = ru.ru_maxrss;
    if (FILE* f = std::fopen(args.stats_file.c_str(), "we")) {
      std::fputs((j.dump(2) + "\n").c_str(), f);
      std::fclose(f);
    } else {
      log::Warn("cannot write stats to {}: {}", args.stats_file, std::strerror(errno));
    }
  }
  return 0;
}

}  // namespace ro
