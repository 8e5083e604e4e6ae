#include "orchestrator/cli.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fmt/format.h>
#include <set>

#include "orchestrator/cli_model.h"
#include "orchestrator/cli_values.h"
#include "orchestrator/commands.h"
#include "sys/log.h"
#include "sys/unique_fd.h"

#ifndef RESTORE_ORCH_VERSION
#define RESTORE_ORCH_VERSION "0.0.0"
#endif

namespace ro {
namespace cli {
namespace {

// Each occurrence takes one value; the option may be given again.
CLI::Option* Repeatable(CLI::Option* o) { return o->expected(1)->multi_option_policy(CLI::MultiOptionPolicy::TakeAll); }

// ---------------------------------------------------------------------------
// Help: the usage block is the generated synopsis, the footer the exit
// statuses, so that --help says what the man page and README say.

std::string ExitCodeText(const std::vector<ExitCode>& codes) {
  std::string out = "Exit status:\n";
  for (const ExitCode& c : codes) {
    std::string line = fmt::format("  {:<4}{}", c.code, c.meaning);
    // Wrapped at 100 columns under the meaning.
    while (line.size() > 100) {
      size_t cut = line.rfind(' ', 100);
      if (cut == std::string::npos || cut <= 6) break;
      out += line.substr(0, cut) + "\n";
      line = "      " + line.substr(cut + 1);
    }
    out += line + "\n";
  }
  return out;
}

class HelpFormatter : public CLI::Formatter {
 public:
  std::string make_usage(const CLI::App* app, std::string) const override {
    bool top = app->get_parent() == nullptr;
    return "\nUsage:\n" + (top ? CliSynopsis() : CommandSynopsis(app)) + "\n";
  }
  std::string make_footer(const CLI::App* app) const override {
    std::string out = ExitCodeText(DocOf(app).exit_codes);
    if (!app->get_footer().empty()) out += "\n" + app->get_footer() + "\n";
    return out;
  }
};

void AddLogging(CLI::App& app, Cli& c, bool short_o) {
  app.add_flag("-v,--verbose", c.verbose,
               "more log output: -v info, -vv debug; CRIU's -v0 .. -v4 set the level (see --log-level)")
      ->group(kLoggingGroup);
  app.add_option("--log-level", c.log_level,
                 "N: 0 and 1 errors only, 2 warnings too (the default), 3 info, 4 debug; -vN is the same")
      ->type_name("N")
      ->check(LogLevel())
      ->group(kLoggingGroup);
  app.add_option(short_o ? "-o,--log-file" : "--log-file", c.log_file,
                 "append log lines to FILE (relative to the current directory) instead of standard error; each line "
                 "carries time, pid and stage")
      ->type_name("FILE")
      ->group(kLoggingGroup);
}

void AddProgress(CLI::App& app, bool& quiet, bool& progress, const char* what) {
  // -q with --progress is refused by the command (CLI11's excludes() would
  // print "Excludes:" in the option column of --help).
  app.add_flag("-q,--quiet", quiet,
               std::string("no progress line (warnings and errors still print; -v0: errors only). By default a ") + what +
                   " that runs longer than a second shows one on standard error when it is a terminal (its stage, how many "
                   "of the stage's tasks are through it where it goes task by task, seconds so far), erased when it ends");
  app.add_flag("--progress", progress,
               "show the progress line also when standard error is not a terminal: a whole line at most once a second, "
               "after the first second; not with -q");
}

void AddRestoreOptions(CLI::App& app, RestoreArgs& args) {
  // A missing or unreadable DIR is an image problem (exit 2), found when it is read, not bad usage.
  app.add_option("-D,--images,--images-dir", args.images, "the image directory to restore from")->type_name("DIR");
  app.add_flag("--dry-run", args.dry_run,
               "check everything a restore checks before it creates anything (images, external mounts' sources, the "
               "pids, fd limits, the pidfile's directory), print the restore plan stage by stage, create nothing");
  app.add_flag("-d,--detach,--restore-detached", args.detach,
               "return once every task has resumed, printing the root task's pid (as the caller sees it); the tree "
               "runs on");
  app.add_flag("-j,--shell-job", args.shell_job,
               "restore a shell job: tasks whose session is outside the tree (sid 0 in the images, or in CRIU's dumps "
               "the root task's session when no task of the tree leads it) stay in restore-orch's session, and their "
               "group outside the tree is restore-orch's; without it such images are refused (exit 2). Terminal fds are "
               "reopened by their path; no terminal state is restored");
  app.add_option("--pidfile", args.pidfile,
                 "write the root task's pid (as the caller sees it) to FILE once every task has resumed; a pidfile that "
                 "cannot be written fails the restore (rolled back)")
      ->type_name("FILE");
  app.add_option("--timeout", args.timeout_s,
                 "give up and roll back if the restore has not resumed every task after SEC seconds")
      ->type_name("SEC")
      ->check(Seconds())
      ->capture_default_str();
  app.add_option("--kill-after", args.kill_after_s,
                 "after the hand-over, when a SIGINT or SIGTERM forwarded to the root task has not ended it within SEC "
                 "seconds, kill the tree")
      ->type_name("SEC")
      ->check(Seconds())
      ->capture_default_str();
  app.add_option("--stats", args.stats_file,
                 "write per-stage wall times, counts, peak RSS and restore-orch's fd count at start and end as JSON to FILE")
      ->type_name("FILE");
  app.add_option("-r,--root", args.root,
                 "directory of the caller's tree to bind as the tree's root mount (CRIU never dumps the root mount: its "
                 "dumps need this)")
      ->type_name("DIR")
      ->check(ExistingDir());
  Repeatable(app.add_option("--external", args.externals,
                            "KEY=PATH or CRIU's mnt[KEY]:PATH: bind PATH of the caller's tree for the external mount with "
                            "that key (its ext_key, or its mountpoint); repeatable. External mounts come only from what "
                            "the caller names: one without a source fails the restore before anything is created"))
      ->type_name("KEY=PATH");
  Repeatable(app.add_option("--ext-mount-map", args.ext_mount_maps,
                            "'auto': bind each external mount without --external from the caller's mount of the same "
                            "device that holds its root (CRIU's --ext-mount-map auto); or KEY:PATH, the same as "
                            "--external KEY=PATH; repeatable"))
      ->type_name("auto|KEY:PATH");
  app.add_flag("--enable-external-masters", args.external_masters,
               "a mount that was a slave of a peer group outside the images (the host's shared / typically) comes back "
               "a slave of the group of the caller's mount holding its source (an external mount, or one bound from "
               "it), as CRIU's flag does; that mount must be shared or a slave. Without it such a mount comes back "
               "private, with a warning");
  Repeatable(app.add_option("--action-script", args.action_scripts,
                            "run FILE at pre-restore, post-setup-namespaces, post-restore, pre-resume and post-resume, "
                            "with RESTORE_ORCH_ACTION and RESTORE_ORCH_ROOT_PID (and CRIU's CRTOOLS_SCRIPT_ACTION, "
                            "CRTOOLS_INIT_PID) set; repeatable; a failing script fails the restore"))
      ->type_name("FILE")
      ->check(Executable());
  app.add_flag("--ignore-unsupported", args.ignore_unsupported,
               "restore even though the directory holds image kinds restore-orch does not restore (they are left out)");
  app.add_option("--autofs-orphans", args.autofs_orphans,
                 "an AutoFS mount whose master is not in the tree (or holds no pipe at the dumped fd): 'fail' the "
                 "restore, or leave it 'catatonic' with a warning")
      ->type_name("fail|catatonic")
      ->check(OneOf({"fail", "catatonic"}))
      ->capture_default_str();
  app.add_flag("--check-pages", args.check_pages,
               "before any task that continues runs, compare its memory, every VMA in place, with its pages images "
               "(each dumped page, read back through /proc/PID/mem); a difference fails the restore, one line each");
  app.add_option("--tmpfs-limit", args.tmpfs_limit,
                 "cap on what each tmpfs's contents may unpack to (bytes, or with k, m, g, t; default: the tmpfs's "
                 "size= option, or 1g without one); an archive that would unpack to more fails the restore")
      ->type_name("SIZE");
  app.add_flag("--allow-unlimited-tmpfs", args.allow_unlimited_tmpfs,
               "restore tmpfs mounts whose images make them unlimited (size=0, nr_blocks=0, nr_inodes=0); refused "
               "otherwise. Their contents stay capped (--tmpfs-limit)");
  app.add_option("--fault", args.fault,
                 "NAME[:N]: make the Nth pass (default 1) through fault point NAME fail with EIO, as if its operation "
                 "had (--list-faults lists them; RESTORE_ORCH_FAULT does the same); for fault-injection runs")
      ->type_name("NAME[:N]");
  app.add_option("--fault-syscall", args.fault_syscall,
                 "SYSCALL:ERRNO[:N][@PID]: make the Nth call (default 1) of SYSCALL in the restored tasks (or in the "
                 "task with image pid PID) fail with ERRNO (a name like EIO, or a number), through a supervised seccomp "
                 "filter; for fault-injection runs: the filter stays with the tasks")
      ->type_name("SYSCALL:ERRNO[:N][@PID]");
}

}  // namespace

std::unique_ptr<Cli> BuildCli() {
  auto c = std::make_unique<Cli>();
  c->app = std::make_unique<CLI::App>(
      "restore-orch restores a checkpointed Linux process tree from a CRIU-layout image directory: its PID and mount "
      "namespaces, its mounts (AutoFS and propagation groups included), every task with its exact pid, session and "
      "process group, its pipes and fds at their numbers, its memory and registers; and checkpoints one (dump).",
      "restore-orch");
  CLI::App& app = *c->app;
  app.formatter(std::make_shared<HelpFormatter>());
  app.set_version_flag("--version", std::string("restore-orch ") + RESTORE_ORCH_VERSION,
                       "print restore-orch's version and exit");
  app.require_subcommand(0, 1);
  app.footer("Without a command, restore-orch restores (the options above are restore's). "
             "'restore-orch COMMAND --help' lists a command's options and exit statuses; man restore-orch-COMMAND.");
  AddRestoreOptions(app, c->top_restore);
  AddProgress(app, c->top_restore.quiet, c->top_restore.progress, "restore");
  app.add_flag("--list-faults", c->list_faults, "print every fault point --fault can name, with what it breaks, and exit");
  AddLogging(app, *c, true);

  c->restore = app.add_subcommand("restore", "restore a tree from its images (the default command)");
  AddRestoreOptions(*c->restore, c->sub_restore);
  AddProgress(*c->restore, c->sub_restore.quiet, c->sub_restore.progress, "restore");
  c->restore->get_option("--images")->required();
  AddLogging(*c->restore, *c, true);

  DumpArgs& d = c->dump_args;
  c->dump = app.add_subcommand(
      "dump", "checkpoint a live process tree into an image directory: freeze it, read it, write the images, then kill it "
              "(or let it run on)");
  CLI::App& dump = *c->dump;
  dump.add_option("-t,--tree", d.tree,
                  "the tree's root task, as this process sees it (the init of the tree's PID namespace when it has one)")
      ->type_name("PID")
      ->check(ProcessId())
      ->required();
  dump.add_option("-D,--images,--images-dir", d.images,
                  "directory to write the images to (made if absent; it must hold no images)")
      ->type_name("DIR")
      ->required();
  dump.add_flag("--dry-run", d.dry_run,
                "freeze, read and check the tree as a dump does, then release it running and print what would be "
                "written (files, sizes, counts): nothing is written, DIR is not made");
  dump.add_flag("-R,--leave-running", d.leave_running, "let the tree run on after the dump instead of killing it");
  dump.add_flag("-j,--shell-job", d.shell_job,
                "dump a shell job: a tree with tasks in a session or process group whose leader is outside the tree "
                "(a shell's); they are written with sid/pgid 0 and restored with --shell-job into restore-orch's "
                "session and group; an fd on a terminal is written by its path. Without it such a tree, or a terminal fd, is "
                "refused (exit 3). No terminal state is dumped");
  dump.add_option("--freeze-timeout,--timeout", d.freeze_timeout_s,
                  "give up (exit 75, the tree released) when a task has not stopped after SEC seconds: it is in an "
                  "uninterruptible wait (CRIU's --timeout of a dump); a task in vfork is refused at once instead")
      ->type_name("SEC")
      ->check(Seconds())
      ->capture_default_str();
  dump.add_option("--stats", d.stats_file,
                  "write per-phase times (freeze, collect, check, write, finish), the tree's downtime and counts as JSON "
                  "to FILE")
      ->type_name("FILE");
  Repeatable(dump.add_option("--action-script", d.action_scripts,
                             "run FILE at pre-dump (before the freeze) and post-dump (images written, the tree still "
                             "frozen unless --leave-running), with RESTORE_ORCH_ACTION, RESTORE_ORCH_ROOT_PID (and "
                             "CRIU's CRTOOLS_SCRIPT_ACTION, CRTOOLS_INIT_PID) set; repeatable; a failing script fails "
                             "the dump, the tree runs on"))
      ->type_name("FILE")
      ->check(Executable());
  AddProgress(dump, d.quiet, d.progress, "dump");
  AddLogging(dump, *c, true);

  CheckArgs& k = c->check_args;
  c->check = app.add_subcommand(
      "check", "probe the kernel for every feature a restore needs, in a throw-away child in new namespaces");
  Repeatable(c->check->add_option("--feature", k.features,
                                  "check only NAME (restore-orch's name or CRIU's, see FEATURES); 'list' prints the "
                                  "names; repeatable"))
      ->type_name("NAME");
  c->check->add_flag("--all", k.all,
                     "check every feature (CRIU's --all): what check does without --feature (the optional ones, "
                     "speed-ups, are shown but do not fail it)");
  c->check->add_flag("--json", k.json,
                     "print the result as JSON: {\"ok\": ..., \"features\": [{\"name\", \"criu_name\", \"ok\", \"required\", "
                     "\"detail\"}]}");
  AddLogging(*c->check, *c, true);

  VerifyArgs& v = c->verify_args;
  c->verify = app.add_subcommand(
      "verify", "compare a live tree (tasks, fds, mounts, memory) with its images; print each difference, one line each");
  c->verify->add_option("-D,--images,--images-dir", v.images, "the image directory")->type_name("DIR")->required();
  c->verify->add_option("-t,--pid,--tree", v.pid, "the tree's root task, as this process sees it")
      ->type_name("PID")
      ->required()
      ->check(ProcessId());
  c->verify->add_flag("--ignore-unsupported", v.ignore_unsupported, "ignore image kinds restore-orch does not restore");
  AddLogging(*c->verify, *c, true);

  c->image = app.add_subcommand("image", "read and write single image files and directories (as CRIU's crit does)");
  c->image->require_subcommand(1);
  c->decode = c->image->add_subcommand("decode", "print an image file as JSON, as crit decode does");
  c->decode->add_option("FILE,-i,--input", c->decode_file, "the image file (crit's -i FILE is the same)")
      ->type_name("FILE")
      ->required();
  c->decode->add_option("-o,--output", c->encode_out,
                        "write the JSON to FILE (default: standard output): a new or regular FILE via FILE.tmp and a "
                        "rename; a device, FIFO or symlink (/dev/stdout) is written through, as crit does")
      ->type_name("FILE");
  c->decode->add_flag("--pretty", c->pretty,
                      "indent, and show the integers CRIU's schemas mark as crit show does (hex, devices, flags)");
  AddLogging(*c->decode, *c, false);
  c->encode = c->image->add_subcommand("encode", "turn JSON (ours or crit's, plain or pretty) into a binary image file");
  c->encode->add_option("-i,--input", c->encode_in, "the JSON file (default: standard input)")->type_name("JSON");
  c->encode->add_option("-o,--output", c->encode_out,
                        "the image file to write (default: standard output, never a terminal): a new or regular FILE "
                        "via FILE.tmp and a rename; a device, FIFO or symlink (/dev/stdout) is written through, as crit "
                        "does")
      ->type_name("FILE");
  AddLogging(*c->encode, *c, false);
  c->show = c->image->add_subcommand("show", "summarise an image directory: tasks, fds, mounts, AutoFS");
  c->show->add_option("DIR", c->show_dir, "the image directory")->type_name("DIR")->required();
  AddLogging(*c->show, *c, true);
  // Each command's own pointer to its man page (CLI11 copies the parent's footer).
  for (CLI::App* sub : {c->restore, c->dump, c->check, c->verify, c->image, c->decode, c->encode, c->show}) {
    sub->footer("man " + ManPageOf(sub) + " says more.");
  }
  return c;
}

}  // namespace cli

namespace {

using cli::Cli;

int Usage(const std::string& message, const CLI::App* where) {
  std::string path = where != nullptr ? cli::CommandPath(where) : "restore-orch";
  std::fprintf(stderr, "restore-orch: %s\nrun '%s --help' for usage\n", message.c_str(), path.c_str());
  return kExitUsage;
}

// The deepest command the parse selected.
const CLI::App* Selected(const CLI::App& app) {
  const CLI::App* at = &app;
  for (;;) {
    auto subs = at->get_subcommands();
    if (subs.empty()) return at;
    at = subs.front();
  }
}

// Which other command takes an option a command was given by mistake.
std::string OwnerOf(const Cli& c, const std::string& name) {
  for (const CLI::App* app : cli::Commands(c)) {
    for (const CLI::Option* o : cli::DocumentedOptions(app)) {
      for (const std::string& n : cli::OptionNames(o)) {
        if (n == name) return app->get_parent() == nullptr ? "restore" : cli::CommandPath(app).substr(13);
      }
    }
  }
  return {};
}

// CLI11's messages, said as a person would.
int ParseFailure(const Cli& c, const CLI::ParseError& e) {
  const CLI::App* where = Selected(*c.app);
  std::string cmd = where->get_parent() == nullptr ? "restore-orch" : cli::CommandPath(where).substr(13);
  std::string what = e.what();
  if (dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr) {
    size_t colon = what.find(": ");
    std::string extras = colon == std::string::npos ? what : what.substr(colon + 2);
    // CLI11 lists them last first: the first given is the first option, or else the first word.
    std::vector<std::string> words;
    for (size_t at = 0; at < extras.size();) {
      size_t space = extras.find(' ', at);
      if (space == std::string::npos) space = extras.size();
      words.insert(words.begin(), extras.substr(at, space - at));
      at = space + 1;
    }
    std::string first = words.empty() ? extras : words.front();
    for (const std::string& w : words) {
      if (w.starts_with("-")) {
        first = w;
        break;
      }
    }
    if (first.starts_with("-")) {
      std::string name = first.substr(0, first.find('='));
      std::string owner = OwnerOf(c, name);
      if (!owner.empty() && owner != cmd) return Usage(name + " is an option of " + owner + ", not of " + cmd, where);
      return Usage(cmd + " has no option " + name, where);
    }
    if (where->get_parent() == nullptr) {
      return Usage("'" + first + "' is not a command (restore, dump, check, verify, image) or an option", where);
    }
    return Usage(cmd + " takes no argument '" + first + "'", where);
  }
  if (dynamic_cast<const CLI::RequiredError*>(&e) != nullptr && what.starts_with("A subcommand")) {
    return Usage(cmd + " needs a command: decode, encode or show", where);
  }
  return Usage(what, where);
}

// CRIU's -v0 .. -v4 (a level glued to -v) become --log-level N.
std::vector<std::string> Arguments(int argc, char** argv) {
  std::vector<std::string> args;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (i > 0 && a.size() > 2 && a.starts_with("-v") && a.find_first_not_of("0123456789", 2) == std::string::npos) {
      a = "--log-level=" + a.substr(2);
    }
    args.push_back(std::move(a));
  }
  return args;
}

// Options given at the top level that belong to restore, when a command
// was named: each command takes only its own.
std::string TopLevelRestoreOption(const Cli& c) {
  for (const CLI::Option* o : c.app->get_options()) {
    if (o->get_group() == cli::kLoggingGroup || o == c.app->get_help_ptr() || o->count() == 0) continue;
    return o->get_name();
  }
  return {};
}

}  // namespace

int RunCli(int argc, char** argv) {
  std::unique_ptr<Cli> c = cli::BuildCli();
  CLI::App& app = *c->app;
  std::vector<std::string> args = Arguments(argc, argv);
  std::vector<char*> ptrs;
  for (std::string& a : args) ptrs.push_back(a.data());
  try {
    app.parse(static_cast<int>(ptrs.size()), ptrs.data());
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    return ParseFailure(*c, e);
  }
  const CLI::App* where = Selected(app);
  if (where != &app) {
    std::string stray = TopLevelRestoreOption(*c);
    if (!stray.empty()) {
      return Usage(stray + " is restore's option: it cannot come before '" + cli::CommandPath(where).substr(13) +
                       "' (each command takes only its own options, after its name)",
                   where);
    }
  }

  int level = c->log_level >= 0 ? c->log_level : 2 + c->verbose;
  log::SetLevel(level >= 4 ? log::Level::kDebug : level == 3 ? log::Level::kInfo : level == 2 ? log::Level::kWarn : log::Level::kError);
  UniqueFd log_fd;
  if (!c->log_file.empty()) {
    log_fd.reset(::open(c->log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (!log_fd) {
      std::fprintf(stderr, "restore-orch: open log file %s: %m\n", c->log_file.c_str());
      return kExitFailure;
    }
    log::SetSink(log_fd.get());
  }

  if (c->list_faults) return CmdListFaults();
  if (*c->decode) return CmdImageDecode(c->decode_file, c->pretty, c->encode_out);
  if (*c->encode) return CmdImageEncode(c->encode_in, c->encode_out);
  if (*c->show) return CmdImageShow(c->show_dir);
  if (*c->check) return CmdCheck(c->check_args);
  if (*c->dump) return CmdDump(c->dump_args);
  if (*c->verify) return CmdVerify(c->verify_args);
  const RestoreArgs& restore = *c->restore ? c->sub_restore : c->top_restore;
  if (restore.images.empty()) {
    return Usage("--images DIR is required (or name a command: restore, dump, check, verify, image)", &app);
  }
  return CmdRestore(restore);
}

}  // namespace ro
