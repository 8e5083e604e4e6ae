#include "orchestrator/commands.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>

#include "images/image_dir.h"
#include "images/json.h"
#include "images/plan.h"
#include "images/show.h"
#include "orchestrator/attrs.h"
#include "orchestrator/cli.h"
#include "orchestrator/files.h"
#include "orchestrator/mounts.h"
#include "orchestrator/net.h"
#include "orchestrator/restore.h"
#include "orchestrator/tmpfs.h"
#include "orchestrator/verify/verify.h"
#include "shm/faults.h"
#include "shm/stages.h"
#include "sys/files.h"
#include "sys/heap.h"
#include "sys/io.h"
#include "sys/kernel_features.h"
#include "sys/log.h"
#include "sys/meminfo.h"
#include "sys/proc.h"
#include "sys/progress.h"

namespace ro {
namespace {

// One line on stderr per problem; the line is what users grep.
void PrintError(const Error& e) {
  sys::EraseProgressLine();
  std::fprintf(stderr, "restore-orch: %s\n", e.ToString().c_str()); }

Result<std::string> ReadInput(const std::string& input, uint64_t limit) {
  if (!input.empty() && input != "-") return images::ReadWholeFile(input, limit);
  std::string text;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(0, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return SysError("read standard input");
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > limit) return Fail("standard input exceeds " + std::to_string(limit) + " bytes");
  }
  return text;
}

// To standard output ("-" or empty), or to FILE as sys::WriteOutputFile
// writes it (a regular or new file via FILE.tmp and a rename, anything
// else written through).
int WriteOutput(const std::string& output, const std::string& bytes) {
  Status s = output.empty() || output == "-" ? sys::WriteAll(1, bytes, "standard output") : sys::WriteOutputFile(output, bytes);
  if (!s.ok()) {
    PrintError(s.error());
    return kExitFailure;
  }
  return 0;
}

// The stage table as this plan walks it: who takes part, what is skipped,
// the action-script points around each stage.
std::string FormatStages(const images::RestorePlan& plan) {
  std::string out = "stages (each ends when every participant has reached its barrier):\n";
  for (const shm::StageInfo& info : shm::Stages()) {
    std::string who = shm::Skipped(info.stage, plan) ? "skipped"
                                                     : std::to_string(shm::ParticipantCount(info.stage, plan)) + " task(s)";
    out += fmt::format("   {:<10} {:<10} {}", info.name, who, shm::WhatFor(info.stage, plan));
    if (info.action_before != nullptr) out += fmt::format(" [before: {}]", info.action_before);
    if (info.action_after != nullptr) out += fmt::format(" [after: {}]", info.action_after);
    out += "\n";
  }
  return out;
}

// Reads and validates the images; on failure prints every problem and
// returns nullopt.
std::optional<images::RestorePlan> LoadPlan(const std::string& path, const images::PlanOptions& options) {
  images::Limits limits;
  auto dir = images::LoadImageDir(path, limits);
  if (!dir.ok()) {
    PrintError(std::move(dir).error().Within(path));
    return std::nullopt;
  }
  images::PlanOutcome outcome = images::BuildPlan(*dir, options);
  if (!outcome.plan) {
    for (Error& e : outcome.errors) PrintError(e.Within(path));
    return std::nullopt;
  }
  return std::move(outcome.plan);
}

// --external KEY=PATH or mnt[KEY]:PATH, --ext-mount-map auto or KEY:PATH.
Status ParseExternals(const RestoreArgs& args, MountOptions& mounts, bool& automatic) {
  auto add = [&](const std::string& key, const std::string& path, const std::string& given) -> Status {
    if (key.empty() || path.empty()) return Fail(given + ": expected KEY=PATH (or mnt[KEY]:PATH)");
    mounts.externals[key] = path;
    return {};
  };
  for (const std::string& e : args.externals) {
    if (e.rfind("mnt[", 0) == 0) {
      size_t close = e.find("]:");
      if (close == std::string::npos) return Fail("--external " + e + ": expected mnt[KEY]:PATH");
      RO_TRY(add(e.substr(4, close - 4), e.substr(close + 2), "--external " + e));
      continue;
    }
    size_t eq = e.find('=');
    if (eq == std::string::npos) return Fail("--external " + e + ": expected KEY=PATH (or mnt[KEY]:PATH)");
    RO_TRY(add(e.substr(0, eq), e.substr(eq + 1), "--external " + e));
  }
  for (const std::string& m : args.ext_mount_maps) {
    if (m == "auto") {
      automatic = true;
      continue;
    }
    size_t colon = m.find(':');
    if (colon == std::string::npos) return Fail("--ext-mount-map " + m + ": expected auto or KEY:PATH");
    RO_TRY(add(m.substr(0, colon), m.substr(colon + 1), "--ext-mount-map " + m));
  }
  return {};
}

}  // namespace

int CmdVerify(const VerifyArgs& args) {
  log::SetStage("verify");
  const std::string proc = "/proc/" + std::to_string(args.pid);
  auto status = sys::ReadProcFile(proc + "/status");
  if (!status.ok()) {
    std::fprintf(stderr, "restore-orch: verify: no process has pid %d\n", args.pid);
    return kExitFailure;
  }
  images::PlanOptions options;
  options.ignore_unsupported = args.ignore_unsupported;
  options.externals_named_later = true;  // nothing is bound: what the images say is compared
  options.shell_job = true;              // a tree restored with --shell-job is compared too
  std::optional<images::RestorePlan> plan = LoadPlan(args.images, options);
  if (!plan) return kExitBadImages;
  // PID must be the tree's root: its pid in its own namespace is the images'.
  std::vector<long> nspid = sys::StatusValues(*status, "NSpid");
  pid_t want = plan->tasks.front().pid;
  if (nspid.empty() || nspid.back() != want || (plan->ns.new_pid && nspid.size() < 2)) {
    std::string is = nspid.empty()            ? "a process without a pid namespace entry"
                     : nspid.size() < 2 && plan->ns.new_pid ? "a process of restore-orch's own PID namespace, while the images' tree has one of its own"
                                                            : "pid " + std::to_string(nspid.back()) + " in its PID namespace";
    std::fprintf(stderr, "restore-orch: verify: pid %d is not the root task of a tree of these images: it is %s, their root task is pid %d\n",
                 args.pid, is.c_str(), want);
    return kExitFailure;
  }
  auto images_dir = sys::OpenAt(AT_FDCWD, args.images, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (!images_dir.ok()) {
    std::fprintf(stderr, "restore-orch: verify: %s: %s\n", args.images.c_str(), images_dir.error().ToString().c_str());
    return kExitBadImages;
  }
  std::vector<std::string> diffs = VerifyTree(*plan, args.pid, images_dir->get());
  for (const std::string& d : diffs) std::printf("%s\n", d.c_str());
  if (diffs.empty()) {
    std::printf("the tree matches its images\n");
  } else {
    std::printf("%zu difference%s\n", diffs.size(), diffs.size() == 1 ? "" : "s");
  }
  return diffs.empty() ? 0 : kExitFailure;
}

namespace {

// What a restore checks before it creates anything, beyond the plan and
// the external mounts' sources: what the kernel would refuse of its files,
// in the caller's PID namespace every pid and thread id must be free, and the pidfile
// must be writable where it is to go.
Status Preflight(const images::RestorePlan& plan, const RestoreArgs& args) {
  RO_TRY(CheckFileLimits(plan));
  if (!plan.ns.new_pid) {
    for (const auto& t : plan.tasks) {
      if (::kill(t.pid, 0) == 0 || errno == EPERM) {
        return Fail("pid " + std::to_string(t.pid) +
                    " is taken: the tree is restored in restore-orch's PID namespace, where each task needs its own pid free");
      }
      // A thread id is a pid of the namespace too (kill(2) finds threads).
      for (size_t k = 1; k < t.threads.size(); ++k) {
        if (::kill(t.threads[k], 0) == 0 || errno == EPERM) {
          return Fail("thread id " + std::to_string(t.threads[k]) + " of task " + std::to_string(t.pid) +
                      " is taken: the tree is restored in restore-orch's PID namespace, where each thread needs its own id free");
        }
      }
    }
  }
  if (!args.pidfile.empty()) {
    std::string dir = args.pidfile.find('/') == std::string::npos ? "." : args.pidfile.substr(0, args.pidfile.rfind('/') + 1);
    struct stat st {};
    if (::lstat(args.pidfile.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
      return Fail("--pidfile " + args.pidfile + (S_ISDIR(st.st_mode) ? " is a directory" : " exists and is not a regular file"));
    }
    if (::access(dir.c_str(), W_OK) != 0) return SysError("--pidfile " + args.pidfile + ": its directory " + dir + " is not writable");
  }
  return {};
}

}  // namespace

int CmdRestore(const RestoreArgs& args) {
  log::SetStage("plan");
  if (args.quiet && args.progress) {
    PrintError(Fail("-q/--quiet and --progress exclude each other"));
    return kExitUsage;
  }
  // Usage first: nothing is read before the options make sense.
  std::optional<shm::FaultSpec> fault;
  std::string fault_text = args.fault;
  if (fault_text.empty() && std::getenv("RESTORE_ORCH_FAULT") != nullptr) fault_text = std::getenv("RESTORE_ORCH_FAULT");
  if (!fault_text.empty()) {
    auto spec = shm::ParseFault(fault_text);
    if (!spec.ok()) {
      PrintError(spec.error());
      return kExitUsage;
    }
    fault = *spec;
  }
  std::optional<SyscallFault> syscall_fault;
  if (!args.fault_syscall.empty()) {
    auto spec = ParseSyscallFault(args.fault_syscall);
    if (!spec.ok()) {
      PrintError(spec.error());
      return kExitUsage;
    }
    syscall_fault = *spec;
  }
  // Its clock starts here: reading the images counts toward the first second.
  sys::ProgressLine progress(sys::ProgressModeFor(args.quiet, args.progress), "restore");
  RestoreOptions options_run;
  bool automatic = false;
  if (Status s = ParseExternals(args, options_run.mounts, automatic); !s.ok()) {
    PrintError(s.error());
    return kExitUsage;
  }
  images::PlanOptions plan_options;
  plan_options.ignore_unsupported = args.ignore_unsupported;
  plan_options.autofs_orphans_catatonic = args.autofs_orphans == "catatonic";
  plan_options.root_given = !args.root.empty();
  for (const auto& [key, path] : options_run.mounts.externals) plan_options.external_keys.insert(key);
  plan_options.ext_mount_map_auto = automatic;
  plan_options.shell_job = args.shell_job;
  plan_options.external_masters = args.external_masters;
  auto host = ReadHostAttrs();  // what restore-orch here can give the tasks
  if (!host.ok()) return PrintError(host.error()), kExitFailure;
  plan_options.host = *host;
  std::optional<images::RestorePlan> plan = LoadPlan(args.images, plan_options);
  if (!plan) return kExitBadImages;
  // The images were read and freed: what the heap held for them is given
  // back, so that each task forks with the plan only (with memory images,
  // some 35 KiB a task stayed resident and every fork copied it).
  sys::ReleaseFreeHeap();
  log::Info("plan: {} tasks, {} mounts", plan->tasks.size(), plan->mounts.size());
  for (const std::string& w : plan->warnings) log::Warn("{}", w);
  // A key no external mount has is a mistyped one (or one split at the
  // wrong '='): said, not ignored.
  for (const auto& [key, path] : options_run.mounts.externals) {
    std::string keys;
    bool used = false;
    for (const images::MountPlan& m : plan->mounts) {
      if (m.how != images::MountSource::kExternal) continue;
      used |= m.ext_key == key;
      keys += (keys.empty() ? "" : ", ") + m.ext_key;
    }
    if (!used) {
      PrintError(Fail("--external " + key + "=" + path + ": no external mount of the images has the key " + key +
                      (keys.empty() ? " (they have none)" : " (theirs: " + keys + ")")));
      return kExitBadImages;
    }
  }
  // What a restore binds from the caller's tree is found before anything
  // is created, and --dry-run finds it too.
  options_run.mounts.root = args.root;
  auto sources = ResolveExternalSources(*plan, options_run.mounts);
  if (!sources.ok()) {
    PrintError(sources.error());
    return kExitFailure;
  }
  options_run.mounts.sources = std::move(sources).value();
  if (Status s = ResolveExternalMasters(*plan, options_run.mounts); !s.ok()) {
    PrintError(s.error());
    return kExitFailure;
  }
  options_run.mounts.allow_unlimited_tmpfs = args.allow_unlimited_tmpfs;
  if (!args.tmpfs_limit.empty()) {
    std::optional<uint64_t> limit = ParseTmpfsSize(args.tmpfs_limit, sys::PhysicalMemoryBytes());
    if (!limit || *limit == 0) {
      PrintError(Fail("--tmpfs-limit " + args.tmpfs_limit + ": expected a size above 0 (bytes, or with k, m, g, t)"));
      return kExitUsage;
    }
    options_run.mounts.tmpfs_limit = *limit;
  }
  if (Status s = CheckTmpfsOptions(*plan, options_run.mounts); !s.ok()) {
    PrintError(std::move(s).error().Within(args.images));
    return kExitBadImages;
  }
  progress.Update("checking");
  if (Status s = Preflight(*plan, args); !s.ok()) {
    PrintError(s.error());
    return kExitFailure;
  }
  // What the kernel would refuse of the images' network namespace shows
  // when it is made once in a scratch namespace (--dry-run too).
  if (plan->ns.net) {
    if (Status s = TrialNetNamespace(*plan->ns.net); !s.ok()) {
      PrintError(std::move(s).error().Within(images::MakeFileName(images::NetnsKind(), plan->ns.net->ns_id) +
                                             ": the namespace it describes cannot be made"));
      return kExitBadImages;
    }
  }
  if (args.dry_run) {
    // The fds a restore opens first (the caller's /proc, the image
    // directory, /dev/autofs) and the fd numbers it needs under RLIMIT_NOFILE.
    if (auto fds = ServiceFds::Open(*plan); !fds.ok()) {
      PrintError(fds.error());
      return kExitFailure;
    }
    progress.Finish();
    std::string text = images::FormatPlan(*plan) + FormatStages(*plan);
    for (const auto& [id, source] : options_run.mounts.sources) text += fmt::format("external mnt {} from {}\n", id, source.Describe());
    if (Status s = sys::WriteAll(1, text, "standard output"); !s.ok()) {
      PrintError(s.error());
      return kExitFailure;
    }
    return 0;
  }
  options_run.detach = args.detach;
  options_run.pidfile = args.pidfile;
  options_run.stats_file = args.stats_file;
  options_run.timeout_s = args.timeout_s;
  options_run.kill_after_s = args.kill_after_s;
  options_run.check_pages = args.check_pages;
  options_run.action_scripts = args.action_scripts;
  options_run.progress = &progress;
  options_run.fault = fault;
  options_run.syscall_fault = syscall_fault;
  return RunRestore(*plan, options_run);
}

int CmdImageDecode(const std::string& file, bool pretty, const std::string& output) {
  images::Limits limits;
  auto bytes = images::ReadWholeFile(file, limits.max_file_bytes);
  if (!bytes.ok()) {  // a missing or unreadable image, as a bad one
    PrintError(bytes.error());
    return kExitBadImages;
  }
  auto parsed = images::ParseImageFile(*bytes, file, limits);
  if (!parsed.ok()) {
    PrintError(std::move(parsed).error().Within(file));
    return kExitBadImages;
  }
  auto json = images::ImageToJson(*parsed, pretty);
  if (!json.ok()) {
    PrintError(std::move(json).error().Within(file));
    return kExitFailure;
  }
  return WriteOutput(output, *json);
}

int CmdImageEncode(const std::string& input, const std::string& output) {
  images::Limits limits;
  const std::string name = input.empty() || input == "-" ? "standard input" : input;
  auto text = ReadInput(input, limits.max_file_bytes);
  if (!text.ok()) {
    // A missing or unreadable JSON file is a missing image; standard input
    // that fails to read is a failure while running.
    PrintError(text.error());
    return name == "standard input" ? kExitFailure : kExitBadImages;
  }
  auto file = images::ImageFromJson(*text, limits);
  if (!file.ok()) {
    PrintError(std::move(file).error().Within(name));
    return kExitBadImages;
  }
  auto bytes = images::SerializeImage(*file);
  if (!bytes.ok()) {
    PrintError(std::move(bytes).error().Within(name));
    return kExitBadImages;
  }
  if ((output.empty() || output == "-") && ::isatty(1)) {
    PrintError(Fail("refusing to write a binary image to a terminal; redirect standard output or use -o FILE"));
    return kExitUsage;
  }
  return WriteOutput(output, *bytes);
}

int CmdImageShow(const std::string& dir_path) {
  images::Limits limits;
  auto dir = images::LoadImageDir(dir_path, limits);
  if (!dir.ok()) {
    PrintError(std::move(dir).error().Within(dir_path));
    return kExitBadImages;
  }
  std::string text = images::ShowImageDir(*dir);
  if (Status s = sys::WriteAll(1, text, "standard output"); !s.ok()) {
    PrintError(s.error());
    return kExitFailure;
  }
  return 0;
}

int CmdListFaults() {
  std::fputs(shm::ListFaults().c_str(), stdout);
  return 0;
}

std::vector<std::pair<std::string, std::string>> CheckFeatureNames() {
  return {{"clone3-set-tid", "clone3_set_tid"}, {"pid-namespace", ""},      {"mount-namespace", ""},
          {"move-mount-set-group", "move_mount_set_group"}, {"autofs-pipe-ino", "autofs"}, {"dev-autofs", ""},
          {"ptrace-seize-interrupt", ""}, {"prctl-mm-map", ""}, {"rseq", ""}, {"pagemap-scan", ""}, {"madv-populate-write", ""}};
}

int CmdCheck(const CheckArgs& args) {
  log::SetStage("check");
  const auto names = CheckFeatureNames();
  // --feature NAME: ours (with - or _) or CRIU's.
  std::vector<std::string> wanted;
  for (const std::string& f : args.features) {
    if (f == "list") {
      for (const auto& [ours, criu] : names) std::printf("%s%s%s\n", ours.c_str(), criu.empty() ? "" : " ", criu.c_str());
      return 0;
    }
    std::string dashed = f;
    for (char& ch : dashed) ch = ch == '_' ? '-' : ch;
    std::string found;
    for (const auto& [ours, criu] : names) {
      if (dashed == ours || f == criu) found = ours;
    }
    if (found.empty()) {
      std::string all;
      for (const auto& [ours, criu] : names) all += (all.empty() ? "" : ", ") + ours;
      std::fprintf(stderr, "restore-orch: check: unknown feature '%s' (restore-orch checks %s; --feature list prints them with CRIU's names)\nrun 'restore-orch check --help' for usage\n",
                   f.c_str(), all.c_str());
      return kExitUsage;
    }
    wanted.push_back(found);
  }
  auto features = sys::ProbeKernel();
  if (!features.ok()) {
    PrintError(features.error());
    return kExitFailure;
  }
  auto criu_name = [&](const std::string& ours) {
    for (const auto& [o, c] : names) {
      if (o == ours) return c;
    }
    return std::string();
  };
  bool ok = true;
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  std::string text;
  for (const auto& f : features->features) {
    if (!wanted.empty() && std::find(wanted.begin(), wanted.end(), f.name) == wanted.end()) continue;
    // An optional feature (a speed-up) fails the check only when asked for by name.
    bool needed = f.required || !wanted.empty();
    ok = ok && (f.ok || !needed);
    list.push_back({{"name", f.name}, {"criu_name", criu_name(f.name)}, {"ok", f.ok}, {"required", f.required}, {"detail", f.detail}});
    text += fmt::format("{:<22} {:<4} {}{}\n", f.name, f.ok ? "ok" : needed ? "FAIL" : "no", f.required ? "" : "(optional) ", f.detail);
  }
  for (const std::string& w : wanted) {
    bool probed = std::any_of(features->features.begin(), features->features.end(), [&](const auto& f) { return f.name == w; });
    if (!probed) {  // the probe stopped before it (its line says why)
      ok = false;
      list.push_back({{"name", w}, {"criu_name", criu_name(w)}, {"ok", false}, {"required", !sys::IsOptionalFeature(w)}, {"detail", "not probed"}});
      text += fmt::format("{:<22} {:<4} {}\n", w, "FAIL", "not probed");
    }
  }
  if (args.json) {
    nlohmann::ordered_json j;
    j["ok"] = ok;
    j["features"] = list;
    text = j.dump(2) + "\n";
  } else if (wanted.empty()) {
    text += ok ? "all features restore-orch needs are present\n" : "some features restore-orch needs are missing\n";
  }
  if (Status s = sys::WriteAll(1, text, "standard output"); !s.ok()) {
    PrintError(s.error());
    return kExitFailure;
  }
  return ok ? 0 : kExitFailure;
}

}  // namespace ro
