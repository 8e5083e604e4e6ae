#include "orchestrator/commands.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <optional>

#include "images/image_dir.h"
#include "images/json.h"
#include "images/plan.h"
#include "images/show.h"
#include "orchestrator/cli.h"
#include "orchestrator/restore.h"
#include "orchestrator/verify.h"
#include "shm/faults.h"
#include "sys/io.h"
#include "sys/kernel_features.h"
#include "sys/log.h"

namespace ro {
namespace {

// One line on stderr per problem; the line is what users grep.
void PrintError(const Error& e) { std::fprintf(stderr, "restore-orch: %s\n", e.ToString().c_str()); }

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

}  // namespace

namespace {

// Reads and validates the images; on failure prints every problem and
// returns nullopt.
std::optional<images::RestorePlan> LoadPlan(const RestoreArgs& args) {
  images::Limits limits;
  auto dir = images::LoadImageDir(args.images, limits);
  if (!dir.ok()) {
    PrintError(std::move(dir).error().Within(args.images));
    return std::nullopt;
  }
  images::PlanOptions options;
  options.ignore_unsupported = args.ignore_unsupported;
  options.autofs_orphans_catatonic = args.autofs_orphans == "catatonic";
  images::PlanOutcome outcome = images::BuildPlan(*dir, options);
  if (!outcome.plan) {
    for (Error& e : outcome.errors) PrintError(e.Within(args.images));
    return std::nullopt;
  }
  return std::move(outcome.plan);
}

}  // namespace

int CmdVerify(const RestoreArgs& args, pid_t root) {
  log::SetStage("verify");
  std::optional<images::RestorePlan> plan = LoadPlan(args);
  if (!plan) return kExitBadImages;
  std::vector<std::string> diffs = VerifyTree(*plan, root);
  for (const std::string& d : diffs) std::printf("%s\n", d.c_str());
  std::printf(diffs.empty() ? "the tree matches its images\n" : "%zu differences\n", diffs.size());
  return diffs.empty() ? 0 : kExitFailure;
}

int CmdRestore(const RestoreArgs& args) {
  log::SetStage("plan");
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
  std::optional<images::RestorePlan> plan = LoadPlan(args);
  if (!plan) return kExitBadImages;
  images::PlanOutcome outcome;
  outcome.plan = std::move(plan);
  log::Info("plan: {} tasks, {} mounts", outcome.plan->tasks.size(), outcome.plan->mounts.size());
  for (const std::string& w : outcome.plan->warnings) log::Warn("{}", w);
  if (args.dry_run) {
    std::string text = images::FormatPlan(*outcome.plan);
    if (Status s = sys::WriteAll(1, text, "standard output"); !s.ok()) {
      PrintError(s.error());
      return kExitFailure;
    }
    return 0;
  }
  RestoreOptions options_run;
  options_run.detach = args.detach;
  options_run.pidfile = args.pidfile;
  options_run.stats_file = args.stats_file;
  options_run.timeout_s = args.timeout_s;
  options_run.mounts.root = args.root;
  options_run.action_scripts = args.action_scripts;
  options_run.fault = fault;
  options_run.syscall_fault = syscall_fault;
  for (const std::string& e : args.externals) {
    size_t eq = e.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == e.size()) {
      PrintError(Fail("--external " + e + ": expected KEY=PATH"));
      return kExitUsage;
    }
    options_run.mounts.externals[e.substr(0, eq)] = e.substr(eq + 1);
  }
  return RunRestore(*outcome.plan, options_run);
}

int CmdImageDecode(const std::string& file, bool pretty) {
  images::Limits limits;
  auto bytes = images::ReadWholeFile(file, limits.max_file_bytes);
  if (!bytes.ok()) {
    PrintError(bytes.error());
    return kExitFailure;
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
  if (Status s = sys::WriteAll(1, *json, "standard output"); !s.ok()) {
    PrintError(s.error());
    return kExitFailure;
  }
  return 0;
}

int CmdImageEncode(const std::string& input, const std::string& output) {
  images::Limits limits;
  const std::string name = input.empty() || input == "-" ? "standard input" : input;
  auto text = ReadInput(input, limits.max_file_bytes);
  if (!text.ok()) {
    PrintError(text.error());
    return kExitFailure;
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
  if (output.empty() || output == "-") {
    if (::isatty(1)) {
      PrintError(Fail("refusing to write a binary image to a terminal; redirect standard output or use -o FILE"));
      return kExitUsage;
    }
    if (Status s = sys::WriteAll(1, *bytes, "standard output"); !s.ok()) {
      PrintError(s.error());
      return kExitFailure;
    }
    return 0;
  }
  // Written beside the target and renamed, so a failure leaves no half file.
  std::string tmp = output + ".tmp";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) {
    PrintError(SysError("create " + tmp));
    return kExitFailure;
  }
  Status s = sys::WriteAll(fd.get(), *bytes, tmp);
  if (s.ok() && ::rename(tmp.c_str(), output.c_str()) != 0) s = SysError("rename " + tmp + " to " + output);
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    PrintError(s.error());
    return kExitFailure;
  }
  return 0;
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

int CmdCheck() {
  log::SetStage("check");
  auto features = sys::ProbeKernel();
  if (!features.ok()) {
    PrintError(features.error());
    return kExitFailure;
  }
  for (const auto& f : features->features) {
    std::printf("%-22s %-4s %s\n", f.name.c_str(), f.ok ? "ok" : "FAIL", f.detail.c_str());
  }
  bool ok = features->AllOk();
  std::printf("%s\n", ok ? "all features restore-orch needs are present"
                         : "some features restore-orch needs are missing");
  return ok ? 0 : kExitFailure;
}

}  // namespace ro
